//! The script socket (`hook.sock` in the repository's run folder): agents' hooks report on it and scripts ask
//! the running crew through it (`protocol::script`: one request per connection, typed answers). The server side
//! hands each request to the engine; the client side is what `muster hook`, `send`, `wait`, `status`, `mail`
//! and `explain` use.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::Sender;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::hooks::payload_fields;
use super::inbox::{EngineMsg, ScriptMsg};
use super::Command;
pub use crate::protocol::script::Request;
use crate::protocol::script::{Answer, ErrorKind};

pub const SOCKET: &str = "hook.sock";

/// Requests of the socket that may wait in the engine's queue at once: a client that sends faster (one
/// connection can stream hook lines forever) waits for room, its socket unread.
const QUEUED: usize = 256;
/// How long a request waits for room in the engine's queue before its client is told muster is busy.
const ROOM_WITHIN: Duration = Duration::from_secs(10);

/// Accept hook reports and questions, and hand them to the engine; each client is served on its own (an idle
/// one holds up nobody), a request is at most 64 KiB. The socket goes when the returned value is dropped.
pub fn listen(run_dir: &Path, events_dir: &Path, engine: Sender<EngineMsg>) -> Result<crate::ipc::Listening> {
    let events_dir = events_dir.to_path_buf();
    let gate = crate::ipc::Gate::new(QUEUED);
    let limits = crate::ipc::Limits { refusal: refusal_line, ..Default::default() };
    crate::ipc::serve_lines(&run_dir.join(SOCKET), limits, move |line, out| {
        use crate::ipc::Flow;
        let say = |out: &mut crate::ipc::Conn, answer: Answer| out.write_all(answer.line().as_bytes()).is_ok();
        let request = match serde_json::from_str::<Request>(line) {
            Ok(r) => r,
            Err(e) => {
                // What was wrong, and where: a script is told, not left with an empty answer.
                let why = format!("not a request muster knows ({e}; `muster schema` lists them)");
                say(out, Answer::error(ErrorKind::Malformed, why));
                return Flow::Continue;
            }
        };
        if request == (Request::Version {}) {
            say(
                out,
                Answer::Version { script: crate::protocol::script::VERSION, muster: env!("CARGO_PKG_VERSION").into() },
            );
            return Flow::Continue;
        }
        let Some(ticket) = gate.enter(ROOM_WITHIN) else {
            say(out, Answer::error(ErrorKind::Busy, format!("muster is busy: {QUEUED} requests wait for it")));
            return Flow::Close;
        };
        let send = |msg: EngineMsg| engine.send(EngineMsg::Gated(Box::new(msg), ticket)).is_ok();
        let stopping = || Answer::error(ErrorKind::Stopping, "muster is stopping");
        let (tx, rx) = std::sync::mpsc::channel();
        let (msg, within, answers) = match request {
            Request::Hook { agent, token, event, detail, session } => {
                // Acknowledged, so that `muster hook` can say when a report did not go in.
                let hook = Command::Hook { name: agent, token, event, detail, session };
                let sent = send(EngineMsg::Request(super::Request::of_nobody(hook)));
                say(out, if sent { Answer::Reported {} } else { stopping() });
                return Flow::Continue;
            }
            Request::Explain { agent } => {
                (EngineMsg::Script(ScriptMsg::Explain { name: agent, reply: tx }), Some(Duration::from_secs(5)), 1)
            }
            // The first answer says whether it was sent; with `wait` the second comes when the turn ends.
            Request::Send { agent, text, force, wait, from } => (
                EngineMsg::Script(ScriptMsg::Send { name: agent, text, force, wait, from, reply: tx }),
                None,
                if wait { 2 } else { 1 },
            ),
            // A merge or a checkpoint of a large tree takes what it takes.
            Request::Run { command, trigger, from } => {
                let trigger = trigger.unwrap_or_else(|| "cli".into());
                (EngineMsg::Script(ScriptMsg::Run { cmd: command, trigger, from, reply: tx }), None, 1)
            }
            Request::Status {} => (EngineMsg::Script(ScriptMsg::Status { reply: tx }), Some(Duration::from_secs(5)), 1),
            // Held until settled; a script that stopped waiting (its client closed) frees its place.
            Request::Wait { agents, until, timeout, any } => {
                let timeout = timeout.map(|t| Duration::from_secs_f64(t.clamp(0.0, 1e9)));
                (EngineMsg::Script(ScriptMsg::Wait { agents, until, timeout, any, reply: tx }), None, 1)
            }
            // Held until the agent settles (or its time is up).
            Request::Spawn { from, spawn } => (EngineMsg::Script(ScriptMsg::Spawn { from, spawn, reply: tx }), None, 1),
            Request::Read { agent, what, ansi } => (
                EngineMsg::Script(ScriptMsg::Read { name: agent, what, ansi, reply: tx }),
                Some(Duration::from_secs(10)),
                1,
            ),
            Request::Result { from, op } => {
                (EngineMsg::Script(ScriptMsg::Result { from, op, reply: tx }), Some(Duration::from_secs(30)), 1)
            }
            // A stream: every event after `since`, then (following) each new one until the client closes.
            Request::Events { since, follow, agents, kinds } => {
                // What the log on disk holds goes out from here, off the engine's thread; the engine sends the
                // rest (it writes each event before it tells anyone, so nothing falls between the two).
                let mut since = since;
                for e in super::events::read_after(&events_dir, since) {
                    since = e.seq;
                    if super::events::wanted(&agents, &kinds, &e) && !say(out, Answer::Event(e)) {
                        return Flow::Close;
                    }
                }
                let (etx, erx) = std::sync::mpsc::sync_channel(super::events::FOLLOWER_ROOM);
                let alive = std::sync::Arc::new(());
                let weak = std::sync::Arc::downgrade(&alive);
                if !send(EngineMsg::Script(ScriptMsg::Events { since, follow, agents, kinds, tx: etx, alive: weak })) {
                    say(out, stopping());
                    return Flow::Close;
                }
                while let Some(answer) = out.answer(&erx, None) {
                    if !say(out, answer) {
                        break;
                    }
                }
                return Flow::Close;
            }
            // A mail `wait` is held until settled; the rest are answered at once.
            Request::Mail { agent, token, op } => {
                let who = agent.map(|a| (a, token.unwrap_or_default()));
                (EngineMsg::Script(ScriptMsg::Mail { who, op, reply: tx }), None, 1)
            }
            Request::Gate { op } => {
                (EngineMsg::Script(ScriptMsg::Gate { op, reply: tx }), Some(Duration::from_secs(10)), 1)
            }
            Request::Review { agent, token, target, verdict } => {
                let who = agent.map(|a| (a, token.unwrap_or_default()));
                (
                    EngineMsg::Script(ScriptMsg::Review { who, target, verdict, reply: tx }),
                    Some(Duration::from_secs(10)),
                    1,
                )
            }
            Request::Guard { op } => {
                (EngineMsg::Script(ScriptMsg::Guard { op, reply: tx }), Some(Duration::from_secs(10)), 1)
            }
            Request::Version {} => return Flow::Continue,
        };
        if !send(msg) {
            say(out, stopping());
            return Flow::Close;
        }
        for _ in 0..answers {
            let Some(answer) = out.answer(&rx, within) else { break };
            let more = answer == Answer::Sent {};
            if !say(out, answer) || !more {
                break;
            }
        }
        Flow::Close
    })
}

/// A refusal of the line server (busy, or a request past a limit) as a typed answer.
fn refusal_line(busy: bool, why: &str) -> String {
    Answer::error(if busy { ErrorKind::Busy } else { ErrorKind::Malformed }, why).line()
}

/// One request to the running engine and its one answer; `None` when no muster runs for `run_dir`, or it did
/// not answer within `within`.
pub fn ask(run_dir: &Path, req: &Request, within: Option<Duration>) -> Result<Option<Answer>> {
    let Ok(stream) = connect(run_dir) else { return Ok(None) };
    let mut answers = request(stream, req, within)?;
    answers.next().transpose()
}

/// A request whose answers stream (`events`): each as it comes, until the server closes; `None` when no
/// muster runs for `run_dir`.
pub fn stream(run_dir: &Path, req: &Request) -> Result<Option<impl Iterator<Item = Result<Answer>>>> {
    let Ok(stream) = connect(run_dir) else { return Ok(None) };
    Ok(Some(request(stream, req, None)?))
}

/// Send `req` on a fresh connection; its answers, line by line, as they come.
fn request(
    mut stream: UnixStream,
    req: &Request,
    within: Option<Duration>,
) -> Result<impl Iterator<Item = Result<Answer>>> {
    stream.write_all(format!("{}\n", serde_json::to_string(req)?).as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    stream.set_read_timeout(within.map(|d| d.max(Duration::from_millis(1))))?;
    let lines = std::io::BufRead::lines(std::io::BufReader::new(stream));
    Ok(lines.map_while(|line| line.ok()).map(|line| parse_answer(&line)))
}

/// An answer line; one this muster cannot read (a server of another version) is an error naming it.
pub fn parse_answer(line: &str) -> Result<Answer> {
    serde_json::from_str(line).with_context(|| {
        let shown: String = line.chars().take(200).collect();
        format!("an answer this muster does not understand (another version's server?): {shown}")
    })
}

/// The agent this process runs inside, with its secret (`MUSTER_AGENT`, `MUSTER_AGENT_TOKEN`): what it asks,
/// it asks as that agent. None outside an agent (the operator).
pub fn caller() -> Option<crate::protocol::script::Caller> {
    let agent = std::env::var("MUSTER_AGENT").ok().filter(|a| !a.is_empty())?;
    let token = std::env::var("MUSTER_AGENT_TOKEN").ok()?;
    Some(crate::protocol::script::Caller { agent, token })
}

/// Inside an agent: its crew's run folder (`MUSTER_RUN_DIR`) and who asks. None elsewhere (the operator asks
/// the repository's crew).
pub fn inside_agent() -> Option<(std::path::PathBuf, crate::protocol::script::Caller)> {
    let run = std::env::var_os("MUSTER_RUN_DIR")?;
    Some((std::path::PathBuf::from(run), caller()?))
}

/// How long a stop hook waits for the gates of the turn it ends (Claude Code gives a hook 60 s by default).
pub const HOOK_WAITS_FOR_GATES: f64 = 50.0;

/// A stop hook's turn: the agent's queued mail as the text of its next turn, when it can take it now; a failure of
/// the gates of the turn that ends is such mail, waited for up to `HOOK_WAITS_FOR_GATES`.
pub fn take_mail(run_dir: &Path, agent: &str, token: &str) -> Option<String> {
    use crate::protocol::mail::{MailAnswer, MailOp};
    let op = MailOp::Take { wait_gates: Some(HOOK_WAITS_FOR_GATES) };
    let req = Request::Mail { agent: Some(agent.into()), token: Some(token.into()), op };
    let within = Duration::from_secs_f64(HOOK_WAITS_FOR_GATES + 5.0);
    match ask(run_dir, &req, Some(within)).ok().flatten()? {
        Answer::Mail(MailAnswer::Taken { text }) => text,
        _ => None,
    }
}

/// `muster send`: the engine's answers (`sent`, then with `wait` a `turn`; or an error), handed to `each` as
/// they come.
pub fn send(
    run_dir: &Path,
    agent: &str,
    text: &str,
    force: bool,
    wait: bool,
    mut each: impl FnMut(Answer),
) -> Result<()> {
    let req = Request::Send { agent: agent.into(), text: text.into(), force, wait, from: caller() };
    for answer in request(connect(run_dir)?, &req, None)? {
        each(answer?);
    }
    Ok(())
}

fn connect(run_dir: &Path) -> Result<UnixStream> {
    UnixStream::connect(run_dir.join(SOCKET)).context("muster is not running for this repository")
}

/// What `muster hook <event>` does: read the payload the CLI gives on stdin, report to the engine named by the
/// environment.
pub fn report(run_dir: &Path, agent: &str, token: &str, event: &str, payload: &str) -> Result<()> {
    let (session, detail) = payload_fields(payload);
    let req = Request::Hook { agent: agent.into(), token: token.into(), event: event.into(), detail, session };
    // The engine's word that the report went in (an agent's CLI waits for its hook: a bounded wait).
    match request(connect(run_dir)?, &req, Some(REPORT_WITHIN))?.next() {
        Some(Ok(Answer::Reported {})) => Ok(()),
        Some(Ok(Answer::Error(e))) => bail!("muster did not take it: {e}"),
        Some(Ok(other)) => bail!("muster answered {other:?}"),
        Some(Err(e)) => Err(e),
        None => bail!("muster did not answer"),
    }
}

/// How long `muster hook` waits for the engine to take its report.
const REPORT_WITHIN: Duration = Duration::from_secs(5);

/// `muster explain <agent>`: ask the running engine why the agent is in its state.
pub fn explain(run_dir: &Path, agent: &str) -> Result<String> {
    let req = Request::Explain { agent: agent.into() };
    match request(connect(run_dir)?, &req, Some(Duration::from_secs(10)))?.next() {
        Some(Ok(Answer::Explained { text })) => Ok(text),
        Some(Ok(Answer::Error(e))) => bail!("{e}"),
        Some(Ok(other)) => bail!("muster answered {other:?}"),
        Some(Err(e)) => Err(e),
        None => bail!("muster did not answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_malformed_or_unknown_request_is_told_what_was_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, _rx) = std::sync::mpsc::channel();
        let _l = listen(dir.path(), dir.path(), tx).unwrap();
        for (line, says) in [("{\"bogus\":{}}", "unknown variant `bogus`"), ("{\"status\":", "EOF while parsing")] {
            let mut s = UnixStream::connect(dir.path().join(SOCKET)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(format!("{line}\n").as_bytes()).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            let Ok(Answer::Error(e)) = parse_answer(answer.trim_end()) else { panic!("{answer}") };
            assert_eq!(e.kind, ErrorKind::Malformed, "{answer}");
            assert!(e.message.starts_with("not a request muster knows") && e.message.contains(says), "{answer}");
        }
    }

    #[test]
    fn reports_reach_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let _l = listen(dir.path(), dir.path(), tx).unwrap();
        report(dir.path(), "a", "t0k", "Stop", r#"{"session_id":"s1"}"#).unwrap();
        let EngineMsg::Gated(msg, _ticket) = rx.recv_timeout(Duration::from_secs(10)).unwrap() else { panic!() };
        match *msg {
            EngineMsg::Request(crate::engine::Request {
                command: Command::Hook { name, token, event, session, .. },
                ..
            }) => {
                assert_eq!((name.as_str(), event.as_str(), session.as_deref()), ("a", "Stop", Some("s1")));
                assert_eq!(token, "t0k");
            }
            _ => panic!("unexpected message"),
        }
    }

    #[test]
    fn explain_is_answered_by_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let _l = listen(dir.path(), dir.path(), tx).unwrap();
        let gated = |m| match m {
            EngineMsg::Gated(m, _) => *m,
            m => m,
        };
        let engine = std::thread::spawn(move || match gated(rx.recv_timeout(Duration::from_secs(10)).unwrap()) {
            EngineMsg::Script(ScriptMsg::Explain { name, reply }) => {
                reply.send(Answer::Explained { text: format!("{name}: idle — screen rule `prompt`") }).unwrap()
            }
            _ => panic!("unexpected message"),
        });
        assert_eq!(explain(dir.path(), "a").unwrap(), "a: idle — screen rule `prompt`");
        engine.join().unwrap();
    }
}
