//! `muster gate …`: the crew's gates through its server (runs, grants, the loop); runs and logs are read from
//! the crew's database when no server runs.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};

use super::{printable, printable_line};
use crate::cli::GateCmd;
use crate::engine::script_socket::{self, Request};
use crate::protocol::gate::{GateAnswer, GateOp, GateOutcome, GateRun};
use crate::protocol::script::Answer;

/// How often `gate run --wait` looks again at its runs.
const POLL: Duration = Duration::from_millis(200);

fn ask(root: &Path, op: GateOp) -> Result<Option<Result<GateAnswer, String>>> {
    let run_dir = crate::ipc::run_dir(root)?;
    match script_socket::ask(&run_dir, &Request::Gate { op }, Some(Duration::from_secs(30)))? {
        Some(Answer::Gate(a)) => Ok(Some(Ok(a))),
        Some(Answer::Error(e)) => Ok(Some(Err(e.message))),
        Some(other) => bail!("the running muster answered {other:?}"),
        None if crate::ipc::holder(&run_dir).is_some() => bail!("the muster server did not answer"),
        None => Ok(None),
    }
}

/// A gate request that needs the server (it runs the gates).
fn ask_server(root: &Path, op: GateOp) -> Result<Result<GateAnswer, String>> {
    match ask(root, op)? {
        Some(a) => Ok(a),
        None => Ok(Err("the crew is not running: gates run in its server (`muster up`)".into())),
    }
}

fn run_line(r: &GateRun) -> String {
    let outcome = r.outcome.map_or("running", GateOutcome::label);
    let at = if r.checkpoint_n > 0 { format!("checkpoint {}", r.checkpoint_n) } else { "by hand".into() };
    let attempt = if r.attempt > 0 { format!(" attempt {}/{}", r.attempt, r.attempts) } else { String::new() };
    let took = if r.outcome.is_some() { format!(" {:.1}s", r.took_ms as f64 / 1000.0) } else { String::new() };
    let failed = if r.failed.is_empty() { String::new() } else { format!(" failing: {}", r.failed.join(", ")) };
    printable_line(&format!("#{} {} {} {outcome} ({}) {at}{attempt}{took}{failed}", r.id, r.agent, r.gate, r.why))
}

pub(super) fn run(root: &Path, action: GateCmd) -> Result<ExitCode> {
    let said = |a: Result<GateAnswer, String>| -> Result<GateAnswer, ExitCode> {
        a.map_err(|e| {
            eprintln!("muster: {}", printable_line(&e));
            ExitCode::from(3)
        })
    };
    match action {
        GateCmd::Run { agent, gate, wait } => {
            let answer = match said(ask_server(root, GateOp::Run { agent: agent.clone(), gate })?) {
                Ok(a) => a,
                Err(code) => return Ok(code),
            };
            let GateAnswer::Queued { runs } = answer else { bail!("muster answered {answer:?}") };
            if !wait {
                println!("queued: {}", runs.iter().map(|r| format!("#{r}")).collect::<Vec<_>>().join(" "));
                return Ok(ExitCode::SUCCESS);
            }
            loop {
                let op = GateOp::Status { agent: Some(agent.clone()), limit: Some(200) };
                let listed = match said(ask_server(root, op)?) {
                    Ok(GateAnswer::Runs { runs }) => runs,
                    Ok(other) => bail!("muster answered {other:?}"),
                    Err(code) => return Ok(code),
                };
                let mine: Vec<&GateRun> = listed.iter().filter(|r| runs.contains(&r.id)).collect();
                if mine.len() == runs.len() && mine.iter().all(|r| r.outcome.is_some()) {
                    for r in &mine {
                        println!("{}", run_line(r));
                    }
                    let worst = |o: GateOutcome| mine.iter().any(|r| r.outcome == Some(o));
                    return Ok(if worst(GateOutcome::Error) || worst(GateOutcome::Stale) {
                        ExitCode::from(2)
                    } else if worst(GateOutcome::Fail) {
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    });
                }
                if mine.len() < runs.len() {
                    // Cancelled before it started, or pruned: nothing more will come.
                    eprintln!("muster: a run asked for is gone (cancelled?)");
                    return Ok(ExitCode::from(2));
                }
                std::thread::sleep(POLL);
            }
        }
        GateCmd::Status { agent, limit, json } => {
            let op = GateOp::Status { agent: agent.clone(), limit: Some(limit) };
            let runs = match ask(root, op)? {
                Some(a) => match said(a) {
                    Ok(GateAnswer::Runs { runs }) => runs,
                    Ok(other) => bail!("muster answered {other:?}"),
                    Err(code) => return Ok(code),
                },
                None => crate::mailbox::Store::open_in(root)?.gate_runs(agent.as_deref(), limit)?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else if runs.is_empty() {
                println!("no gate runs yet");
            } else {
                for r in &runs {
                    println!("{}", run_line(r));
                }
            }
        }
        GateCmd::Log { id } => {
            let (run, log) = match ask(root, GateOp::Log { id })? {
                Some(a) => match said(a) {
                    Ok(GateAnswer::Log { run, log }) => (run, log),
                    Ok(other) => bail!("muster answered {other:?}"),
                    Err(code) => return Ok(code),
                },
                None => {
                    let store = crate::mailbox::Store::open_in(root)?;
                    let Some(run) = store.gate_run(id)? else {
                        eprintln!("muster: no gate run #{id}");
                        return Ok(ExitCode::from(3));
                    };
                    let path = root.join(".muster/gates").join(format!("{id}.log"));
                    (run, crate::gate::run::log_end(&path, crate::gate::run::MAX_LOG * 2).unwrap_or_default())
                }
            };
            println!("{}", run_line(&run));
            print!("{}", printable(&crate::gate::output::plain(&log)));
        }
        GateCmd::Grant { agent, gate } => return done(said(ask_server(root, GateOp::Grant { agent, gate })?)),
        GateCmd::Stop { agent, resume } => return done(said(ask_server(root, GateOp::Stop { agent, resume })?)),
        GateCmd::Cancel { agent } => return done(said(ask_server(root, GateOp::Cancel { agent })?)),
    }
    Ok(ExitCode::SUCCESS)
}

fn done(a: Result<GateAnswer, ExitCode>) -> Result<ExitCode> {
    match a {
        Ok(GateAnswer::Done { message }) => {
            println!("{}", printable_line(&message));
            Ok(ExitCode::SUCCESS)
        }
        Ok(other) => bail!("muster answered {other:?}"),
        Err(code) => Ok(code),
    }
}
