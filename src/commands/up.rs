//! `muster up` and `muster down`: the crew's server and agents without a workbench (for scripts, CI, a machine
//! that rebooted). `up` starts the server when none runs and every agent that is not running, and returns once
//! each runs (`--detach`), or stays and prints their states until interrupted, then stops them; `down` stops
//! the crew and its server, as `muster server stop` does.

use std::collections::BTreeMap;
use std::sync::mpsc;

use super::*;
use crate::protocol::{AgentInfo, AgentState, ClientKind, Command, Event, Hello};

/// How long `up` waits for every agent to have started.
const START_WITHIN: Duration = Duration::from_secs(60);

enum Heard {
    Event(Box<Event>),
    Closed(String),
    Signal,
}

pub(super) fn up(root: &Path, detach: bool) -> Result<ExitCode> {
    let (crew, _, warnings) = crate::config::load_crew_owned(root, crate::git::ownership::tracked_files)?;
    for w in warnings {
        eprintln!("muster: {}", printable_line(&w.to_string()));
    }
    if crew.agents.is_empty() {
        eprintln!("muster: no agents in .muster/crew.toml (`muster init` writes a commented one)");
        return Ok(ExitCode::from(1));
    }
    let stream = crate::server::spawn::connect_or_start(root, &[])?;
    let read = stream.try_clone().context("connecting to the muster server")?;
    let (tx, rx) = mpsc::channel();
    let hello = Hello::new(ClientKind::Script, None);
    let heard = tx.clone();
    let (commands, _) = crate::client::attach(Box::new(read), Box::new(stream), hello, move |m| {
        let _ = heard.send(match m {
            crate::client::Incoming::Event(e) => Heard::Event(Box::new(e)),
            crate::client::Incoming::Closed(reason) => Heard::Closed(reason),
        });
    })?;
    // The crew as the server has it came first (the snapshot): the agents that never ran start as the
    // workbench starts them, and whoever else is not running resumes.
    let mut agents: BTreeMap<String, AgentInfo> = BTreeMap::new();
    while let Ok(Heard::Event(e)) = rx.try_recv() {
        note(&mut agents, *e);
    }
    commands.send(Command::StartCrew);
    for (name, info) in &agents {
        if !info.state.is_running() {
            commands.send(Command::Start { name: name.clone(), resume: true });
        }
    }
    let end = std::time::Instant::now() + START_WITHIN;
    let started = |a: &AgentInfo| a.state.is_running() && a.state != AgentState::Starting;
    let ended = |a: &AgentInfo| matches!(a.state, AgentState::Error | AgentState::Exited);
    while !agents.values().all(|a| started(a) || ended(a)) {
        match rx.recv_timeout(end.saturating_duration_since(std::time::Instant::now())) {
            Ok(Heard::Event(e)) => note(&mut agents, *e),
            Ok(Heard::Closed(reason)) => bail!("the muster server closed the connection: {reason}"),
            Ok(Heard::Signal) => {}
            Err(_) => break,
        }
    }
    for a in agents.values() {
        println!("{}", printable_line(&line(a)));
    }
    let failed = agents.values().filter(|a| !started(a)).count();
    if detach {
        return Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    // In the foreground: every change of state, until interrupted; then the crew stops, as `down` does.
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])?;
    let stop = signals.handle();
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            let _ = tx.send(Heard::Signal);
        }
    });
    loop {
        match rx.recv() {
            Ok(Heard::Event(e)) if matches!(*e, Event::Agent(_)) => {
                let Event::Agent(info) = *e else { continue };
                let changed = agents.get(&info.name).is_none_or(|a| a.state != info.state);
                let text = line(&info);
                agents.insert(info.name.clone(), info);
                if changed {
                    println!("{}", printable_line(&text));
                }
            }
            Ok(Heard::Event(e)) => note(&mut agents, *e),
            Ok(Heard::Closed(reason)) => {
                println!("{}", printable_line(&format!("the server ended: {reason}")));
                stop.close();
                return Ok(ExitCode::SUCCESS);
            }
            Ok(Heard::Signal) | Err(_) => break,
        }
    }
    stop.close();
    drop(commands);
    down(root)
}

fn note(agents: &mut BTreeMap<String, AgentInfo>, e: Event) {
    match e {
        Event::Agent(info) => {
            agents.insert(info.name.clone(), info);
        }
        Event::Removed { name } => {
            agents.remove(&name);
        }
        _ => {}
    }
}

fn line(a: &AgentInfo) -> String {
    let why = a.error.as_deref().or((!a.why.is_empty()).then_some(a.why.as_str()));
    format!("{:<16} {:<9} {}{}", a.name, a.kind, a.state.label(), why.map(|w| format!(" — {w}")).unwrap_or_default())
}

/// A change to the crew (`add`, `rm`), made by its server so it never races it: the running one, or one started
/// for it (its agents are not started; it ends by itself after, when nothing runs).
pub(super) fn through_the_crew(root: &Path, command: Command) -> Result<ExitCode> {
    // Inside an agent: its own crew's server, which runs. Elsewhere held until the answer: a server started for
    // this has a client until then.
    let inside = engine::script_socket::inside_agent();
    let _held = match inside {
        Some(_) => None,
        None => Some(crate::server::spawn::connect_or_start(root, &[])?),
    };
    let (run_dir, from) = match inside {
        Some((run, who)) => (run, Some(who)),
        None => (crate::ipc::run_dir(root)?, None),
    };
    let req = crate::protocol::script::Request::Run { command, trigger: None, from };
    let answer = crate::engine::script_socket::ask(&run_dir, &req, None)?;
    use crate::protocol::script::Answer;
    match answer {
        Some(Answer::Done { message }) => {
            println!("{}", printable_line(message.as_deref().unwrap_or("done")));
            Ok(ExitCode::SUCCESS)
        }
        Some(Answer::Error(e)) => {
            eprintln!("muster: {}", printable_line(&e.message));
            Ok(ExitCode::from(1))
        }
        Some(other) => bail!("the muster server answered {other:?}"),
        None => bail!("the muster server did not answer (see {})", run_dir.join(crate::server::LOG).display()),
    }
}

/// Stop the crew (each agent checkpointed first) and its server.
pub(super) fn down(root: &Path) -> Result<ExitCode> {
    server_cmd(root, ServerCmd::Stop { yes: true })
}
