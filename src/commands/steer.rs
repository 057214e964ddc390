//! `muster send` and `muster wait`: typing into a running agent, and waiting for agents to reach a state.

use super::*;

pub(super) fn send(root: &Path, agent: &str, text: Option<String>, force: bool, wait: bool) -> Result<ExitCode> {
    let text = match text {
        Some(t) => t,
        None => {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::Read::take(std::io::stdin(), 1 << 20), &mut t)
                .context("reading the message")?;
            t.trim_end_matches('\n').to_string()
        }
    };
    if let Err(e) = crate::protocol::mail::check_body(&text) {
        eprintln!("muster: {e}");
        return Ok(ExitCode::from(1));
    }
    let run_dir = crate::ipc::run_dir(root)?;
    if crate::ipc::holder(&run_dir).is_none() {
        eprintln!("muster: not running for {}", root.display());
        return Ok(ExitCode::from(3));
    }
    let mut code = ExitCode::from(3);
    engine::script_socket::send(&run_dir, agent, &text, force, wait, |answer| {
        use crate::protocol::script::{Answer, ErrorKind, TurnEnd};
        let (word, exit) = match answer {
            Answer::Error(e) => {
                // Said once, on stderr, with the exit code `--help` gives: 3 when there is nobody to send to.
                let gone = matches!(e.kind, ErrorKind::Unknown | ErrorKind::NotRunning | ErrorKind::Stopping);
                let error = e.message.replace("(confirm to send anyway)", "(--force sends it anyway)");
                eprintln!("muster: {}", printable_line(&error));
                code = ExitCode::from(if gone { 3 } else { 1 });
                return;
            }
            Answer::Sent {} if wait => (None, 0),
            Answer::Sent {} => (Some("sent"), 0),
            Answer::Turn { end: TurnEnd::Idle } => (Some("idle"), 0),
            Answer::Turn { end: TurnEnd::Waiting } => (Some("waiting"), 2),
            Answer::Turn { end: TurnEnd::Exited } => (Some("exited"), 3),
            other => {
                eprintln!("muster: the running muster answered {other:?}");
                (None, 3)
            }
        };
        code = ExitCode::from(exit);
        if let Some(word) = word {
            println!("{word}");
        }
    })?;
    Ok(code)
}

/// `muster wait`: the server answers at the transition. Without one nothing can change: the state file says
/// whether the agents are known, and that their runs are over.
pub(super) fn wait(root: &Path, agents: &[String], until: &str, timeout: Option<f64>, any: bool) -> Result<ExitCode> {
    use engine::supervisor::WaitFor;
    let run_dir = crate::ipc::run_dir(root)?;
    let until_state = match until {
        "idle" => WaitFor::Idle,
        "waiting" => WaitFor::Waiting,
        "exited" => WaitFor::Exited,
        "green" => WaitFor::Green,
        "gate-failed" => WaitFor::GateFailed,
        "done" => WaitFor::Done,
        _ => WaitFor::Any,
    };
    let gates = matches!(until_state, WaitFor::Green | WaitFor::GateFailed | WaitFor::Done);
    if crate::ipc::holder(&run_dir).is_some() {
        let req = engine::script_socket::Request::Wait { agents: agents.to_vec(), until: until_state, timeout, any };
        let within = timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
        match engine::script_socket::ask(&run_dir, &req, within) {
            Ok(Some(answer)) => {
                use crate::protocol::script::{Answer, WaitOutcome};
                return Ok(match answer {
                    Answer::Waited { outcome: WaitOutcome::Matched } => ExitCode::SUCCESS,
                    Answer::Waited { outcome: WaitOutcome::First { agent } } => {
                        println!("{}", printable_line(&agent));
                        ExitCode::SUCCESS
                    }
                    Answer::Waited { outcome: WaitOutcome::Ended { agent } } => {
                        eprintln!("muster: {} is not running (its run ended)", printable_line(&agent));
                        ExitCode::from(3)
                    }
                    Answer::Waited { outcome: WaitOutcome::Gone { agent } } => {
                        eprintln!("muster: {} was removed from the crew", printable_line(&agent));
                        ExitCode::from(3)
                    }
                    Answer::Error(e) => {
                        eprintln!("muster: {}", printable_line(&e.message));
                        ExitCode::from(3)
                    }
                    other => bail!("muster answered {other:?}"),
                });
            }
            Ok(None) if timeout.is_some() && crate::ipc::holder(&run_dir).is_some() => return Ok(ExitCode::from(124)),
            // It ended meanwhile: the state file has the last word.
            _ => {}
        }
    }
    if gates {
        eprintln!("muster: the crew is not running: gates and results live in its server (`muster up`)");
        return Ok(ExitCode::from(3));
    }
    wait_on_file(root, agents, until, timeout)
}

/// `muster wait` without a server: polls the state file (an older muster that runs its crew in its window
/// keeps it current within a second).
pub(super) fn wait_on_file(root: &Path, agents: &[String], until: &str, timeout: Option<f64>) -> Result<ExitCode> {
    use engine::AgentState as S;
    let matches = |s: S| match until {
        "idle" => s == S::Idle,
        "waiting" => s == S::Waiting,
        "exited" => !s.is_running(),
        _ => matches!(s, S::Idle | S::Waiting) || !s.is_running(),
    };
    let deadline = timeout.map(|t| std::time::Instant::now() + Duration::from_secs_f64(t.max(0.0)));
    let mut runs: std::collections::HashMap<String, u64> = Default::default();
    loop {
        let (saved, _, running) = engine::store::load_live(root)?;
        let running = running.is_some();
        let mut all = true;
        for name in agents {
            let Some(a) = saved.agents.iter().find(|a| &a.spec.name == name) else {
                eprintln!("muster: no agent `{name}` in this crew");
                return Ok(ExitCode::from(3));
            };
            let run = *runs.entry(name.clone()).or_insert(a.run);
            // Without a muster, or in a later run, the run this wait began on has ended.
            let ended = !running || a.run != run;
            if ended && until != "exited" && until != "any" {
                eprintln!("muster: {name} is not running{}", if running { " (its run ended)" } else { "" });
                return Ok(ExitCode::from(3));
            }
            all &= ended || matches(a.state);
        }
        if all {
            return Ok(ExitCode::SUCCESS);
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Ok(ExitCode::from(124));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
