//! What a lead agent (or a script) runs to drive the crew: `muster spawn`, `read`, `result`, `events`. Inside an
//! agent each asks as that agent (its name and secret from its environment); outside, as the operator.

use std::io::Write;

use super::*;
use crate::cli::{ResultCmd, SpawnArgs};
use crate::protocol::lead::{AgentResult, EventKind, ReadWhat, ResultOp, ResultStatus, Spawn};
use crate::protocol::script::{Answer, ErrorKind, Request, WaitFor};

/// Where the running crew is asked: the agent's own run folder inside an agent, else the repository's.
fn run_dir(dir: &Path) -> Result<PathBuf> {
    match engine::script_socket::inside_agent() {
        Some((run, _)) => Ok(run),
        None => crate::ipc::run_dir(&find_repo_root(dir)?),
    }
}

/// An error answer on stderr, with the exit code the commands document: 3 nobody to ask, 1 refused.
fn said(e: &crate::protocol::script::ScriptError) -> ExitCode {
    eprintln!("muster: {}", printable_line(&e.message));
    let gone = matches!(e.kind, ErrorKind::Unknown | ErrorKind::NotRunning | ErrorKind::Stopping);
    ExitCode::from(if gone { 3 } else { 1 })
}

fn no_server() -> Result<ExitCode> {
    eprintln!("muster: no muster server runs for this repository (`muster up` starts one)");
    Ok(ExitCode::from(3))
}

fn text_arg(text: Option<String>) -> Result<Option<String>> {
    match text.as_deref() {
        Some("-") => {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::Read::take(std::io::stdin(), 1 << 20), &mut t)?;
            Ok(Some(t.trim_end_matches('\n').to_string()))
        }
        _ => Ok(text),
    }
}

pub(super) fn spawn(dir: &Path, a: SpawnArgs) -> Result<ExitCode> {
    let wait = a.wait.as_deref().map(|w| match w {
        "green" => WaitFor::Green,
        "done" => WaitFor::Done,
        _ => WaitFor::Idle,
    });
    let spawn = Spawn {
        name: a.name,
        kind: a.kind,
        role: a.role,
        prompt: text_arg(a.prompt)?,
        base: a.base,
        from: a.from,
        owns: (!a.owns.is_empty()).then_some(a.owns),
        wait,
        timeout: a.timeout,
    };
    let req = Request::Spawn { from: engine::script_socket::caller(), spawn };
    let within = a.timeout.map(|t| Duration::from_secs_f64(t.max(0.0) + 5.0));
    match engine::script_socket::ask(&run_dir(dir)?, &req, within)? {
        Some(Answer::Spawned { name, branch, worktree }) => {
            println!("{}", serde_json::json!({ "name": name, "branch": branch, "worktree": worktree }));
            Ok(ExitCode::SUCCESS)
        }
        Some(Answer::Error(e)) if e.kind == ErrorKind::Failed && e.message.contains("in time") => {
            eprintln!("muster: {}", printable_line(&e.message));
            Ok(ExitCode::from(124))
        }
        Some(Answer::Error(e)) => Ok(said(&e)),
        Some(other) => bail!("the running muster answered {other:?}"),
        None if a.timeout.is_some() => Ok(ExitCode::from(124)),
        None => no_server(),
    }
}

pub(super) fn read(
    dir: &Path,
    agent: String,
    lines: Option<usize>,
    turn: bool,
    screen: bool,
    ansi: bool,
) -> Result<ExitCode> {
    let what = match (turn, screen) {
        (true, _) => ReadWhat::Turn {},
        (_, true) => ReadWhat::Screen {},
        _ => ReadWhat::Lines { n: lines.unwrap_or(40) },
    };
    match engine::script_socket::ask(
        &run_dir(dir)?,
        &Request::Read { agent, what, ansi },
        Some(Duration::from_secs(15)),
    )? {
        Some(Answer::Text { text }) => {
            // Its own output, as it printed it: control characters other than SGR are the agent's business,
            // but never reach this terminal raw unless asked for with --ansi.
            let text = if ansi { text } else { printable(&text) };
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            Ok(ExitCode::SUCCESS)
        }
        Some(Answer::Error(e)) => Ok(said(&e)),
        Some(other) => bail!("the running muster answered {other:?}"),
        None => no_server(),
    }
}

pub(super) fn result(dir: &Path, action: ResultCmd) -> Result<ExitCode> {
    let (op, json, all) = match action {
        ResultCmd::Set { file, summary, status, deliverable } => {
            let result = match (file, summary) {
                (_, Some(summary)) => AgentResult {
                    summary,
                    status: match status.as_deref() {
                        Some("blocked") => ResultStatus::Blocked,
                        Some("failed") => ResultStatus::Failed,
                        _ => ResultStatus::Done,
                    },
                    deliverables: deliverable
                        .into_iter()
                        .map(|path| crate::protocol::lead::Deliverable { path, sha256: None })
                        .collect(),
                    ..Default::default()
                },
                (file, None) => {
                    let text = match file {
                        Some(f) if f.as_os_str() != "-" => {
                            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?
                        }
                        _ => text_arg(Some("-".into()))?.unwrap_or_default(),
                    };
                    serde_json::from_str(&text).context("the result is not JSON of the shape `muster schema` gives")?
                }
            };
            if let Err(e) = result.check() {
                eprintln!("muster: {e}");
                return Ok(ExitCode::from(1));
            }
            (ResultOp::Set { result }, false, false)
        }
        ResultCmd::Get { agent, json, all } => (ResultOp::Get { agent }, json, all),
    };
    let req = Request::Result { from: engine::script_socket::caller(), op };
    match engine::script_socket::ask(&run_dir(dir)?, &req, Some(Duration::from_secs(40)))? {
        Some(Answer::Results { mut results }) => {
            if !all && results.len() > 1 {
                results.drain(..results.len() - 1);
            }
            if results.is_empty() {
                eprintln!("muster: no result yet");
                return Ok(ExitCode::from(1));
            }
            for r in &results {
                if json {
                    println!("{}", serde_json::to_string(r)?);
                } else {
                    let mut text = format!(
                        "{} result {} ({}), checkpoint {}: {}\n",
                        r.agent,
                        r.attempt,
                        r.result.status.word(),
                        r.checkpoint,
                        r.result.summary
                    );
                    for d in &r.result.deliverables {
                        text.push_str(&format!(
                            "  deliverable {} sha256 {}\n",
                            d.path,
                            d.sha256.as_deref().unwrap_or("?")
                        ));
                    }
                    for (word, list) in
                        [("gap", &r.result.gaps), ("blocker", &r.result.blockers), ("risk", &r.result.risks)]
                    {
                        for item in list {
                            text.push_str(&format!("  {word}: {item}\n"));
                        }
                    }
                    print!("{}", printable(&text));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Answer::Error(e)) => Ok(said(&e)),
        Some(other) => bail!("the running muster answered {other:?}"),
        None => no_server(),
    }
}

pub(super) fn events(
    dir: &Path,
    follow: bool,
    since: u64,
    agents: Vec<String>,
    kinds: Vec<String>,
) -> Result<ExitCode> {
    let kinds: Vec<EventKind> =
        kinds.iter().filter_map(|k| serde_json::from_value(serde_json::Value::String(k.clone())).ok()).collect();
    let run = run_dir(dir)?;
    let mut out = std::io::stdout().lock();
    let mut since = since;
    let mut connected = false;
    loop {
        let req = Request::Events { since, follow, agents: agents.clone(), kinds: kinds.clone() };
        let Some(answers) = engine::script_socket::stream(&run, &req)? else {
            if connected {
                // The server ended while followed: all it logged was printed.
                return Ok(ExitCode::SUCCESS);
            }
            if follow {
                return no_server();
            }
            // No server: what the log on disk holds.
            let root = find_repo_root(dir)?;
            for e in engine::events::read_after(&root.join(".muster"), since) {
                if engine::events::wanted(&agents, &kinds, &e)
                    && writeln!(out, "{}", serde_json::to_string(&e)?).is_err()
                {
                    break;
                }
            }
            return Ok(ExitCode::SUCCESS);
        };
        connected = true;
        let mut again = false;
        for answer in answers {
            match answer? {
                Answer::Event(e) => {
                    since = e.seq;
                    if writeln!(out, "{}", serde_json::to_string(&e)?).and_then(|()| out.flush()).is_err() {
                        return Ok(ExitCode::SUCCESS);
                    }
                }
                // More than one answer held, or this reader fell behind: on from the last one printed.
                Answer::Error(e) if e.kind == ErrorKind::Busy => again = true,
                Answer::Error(e) => return Ok(said(&e)),
                other => bail!("the running muster answered {other:?}"),
            }
        }
        // A follower the server let go (it fell behind) comes back after the last event it printed.
        if !(again || follow) {
            return Ok(ExitCode::SUCCESS);
        }
        // Not at once: a server that refuses (busy) is not asked again in a tight loop.
        std::thread::sleep(Duration::from_millis(100));
    }
}
