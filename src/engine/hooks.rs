//! Agent hooks calling back into muster: Claude Code's hooks (passed per session with `--settings`, so the
//! worktree is never touched) run `muster hook <Event>`, which reads the hook's JSON payload from stdin for the
//! CLI's session id and notification kind, and reports to the engine over a Unix socket in the crew's run
//! directory. The same socket answers `muster explain <agent>`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::Duration;

use super::supervisor::{EngineMsg, ScriptMsg};
use super::Command;
pub use crate::protocol::script::Request;
use crate::protocol::script::{Answer, ErrorKind};
use anyhow::{bail, Context, Result};

pub const SOCKET: &str = "hook.sock";
/// Claude Code's hook events that tell muster something (SessionStart only carries the session id).
const CLAUDE_EVENTS: [&str; 7] =
    ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PermissionRequest", "Notification", "Stop"];
/// A hook payload larger than this is not read further (only a few small fields are wanted).
const MAX_PAYLOAD: u64 = 1 << 20;
/// The largest Gemini CLI system settings file muster copies.
const MAX_SETTINGS: u64 = 4 << 20;

/// The repository's private run folder (see `ipc::run_dir`).
pub fn run_dir(root: &Path) -> Result<PathBuf> {
    crate::ipc::run_dir(root)
}

/// A new agent secret: 128 random bits, hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
        // No urandom: the time and the pid still differ between agents and runs.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        bytes[..8].copy_from_slice(&(t.as_nanos() as u64).to_le_bytes());
        bytes[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Claude Code's `--settings` argument: the hooks as inline JSON, merged by Claude with the user's settings
/// for this session only.
pub fn claude_settings(muster_exe: &Path) -> String {
    let exe = muster_exe.to_string_lossy().replace('\'', "'\\''");
    let hooks: serde_json::Map<String, serde_json::Value> = CLAUDE_EVENTS
        .iter()
        .map(|event| {
            let command = format!("'{exe}' hook {event}");
            (event.to_string(), serde_json::json!([{ "hooks": [{ "type": "command", "command": command }] }]))
        })
        .collect();
    serde_json::json!({ "hooks": hooks }).to_string()
}

/// Codex's `-c notify=[…]`: Codex runs the program after every turn with the turn's JSON as its last argument.
pub fn codex_notify(muster_exe: &Path) -> Vec<String> {
    let exe = serde_json::to_string(&muster_exe.to_string_lossy()).unwrap_or_else(|_| "\"muster\"".into());
    vec!["-c".into(), format!("notify=[{exe},\"hook\",\"agent-turn-complete\"]")]
}

/// opencode loads plugins from `$OPENCODE_CONFIG_DIR/plugins/` besides the project's and the user's: muster's
/// plugin goes into the crew's run directory, so neither the worktree nor the user's config is touched. It
/// reports opencode's session events (`session.status`, `session.idle`, `permission.*`) through `muster hook`.
pub fn opencode_config_dir(run_dir: &Path, muster_exe: &Path) -> Result<PathBuf> {
    let dir = run_dir.join("opencode");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).with_context(|| format!("creating {}", plugins.display()))?;
    let exe = serde_json::to_string(&muster_exe.to_string_lossy())?;
    let plugin = format!(
        "// Written by muster: reports this opencode session's state to the muster that started it.\n\
         const {{ spawn }} = require(\"node:child_process\");\n\
         const exe = {exe};\n\
         export const Muster = async () => ({{\n\
         \x20 event: async ({{ event }}) => {{\n\
         \x20   const p = event.properties || {{}};\n\
         \x20   let name = null;\n\
         \x20   if (event.type === \"session.status\") name = p.status && p.status.type === \"idle\" ? \"session.idle\" : \"session.busy\";\n\
         \x20   else if ([\"session.idle\", \"permission.asked\", \"permission.updated\"].includes(event.type)) name = event.type;\n\
         \x20   if (!name) return;\n\
         \x20   try {{\n\
         \x20     const child = spawn(exe, [\"hook\", name, JSON.stringify({{ session_id: p.sessionID || null }})], {{ stdio: \"ignore\" }});\n\
         \x20     child.on(\"error\", () => {{}});\n\
         \x20   }} catch (e) {{}}\n\
         \x20 }},\n\
         }});\n"
    );
    let path = plugins.join("muster.js");
    std::fs::write(&path, plugin).with_context(|| format!("writing {}", path.display()))?;
    Ok(dir)
}

/// Gemini CLI's hook events that tell muster something.
const GEMINI_EVENTS: [&str; 6] =
    ["SessionStart", "BeforeAgent", "AfterAgent", "BeforeTool", "AfterTool", "Notification"];

/// Gemini CLI reads hooks only from settings files; the system one can be moved with
/// `GEMINI_CLI_SYSTEM_SETTINGS_PATH`. muster writes a copy of the system settings (the file that variable or
/// the platform names; none on most machines) with its hooks added, so the user's and the project's settings
/// stay as they are. Gemini concatenates hook lists across settings files: the user's own hooks still run.
///
/// Gemini skips (with a security warning on screen) a settings file below a folder that others may write to,
/// such as the temp dir: the file goes into `dir` (muster's state folder), and nowhere when that folder or one
/// above it is not safe, so Gemini's screen never changes.
pub fn gemini_system_settings(dir: &Path, agent: &str, muster_exe: &Path, existing: Option<&Path>) -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let open_to_others = |d: &Path| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o022 != 0);
    if let Some(d) = dir.ancestors().find(|d| open_to_others(d)) {
        bail!("{} may be written by others, and Gemini CLI would refuse (and warn about) a file below it", d.display());
    }
    let mut settings: serde_json::Value = match existing.filter(|p| p.exists()) {
        Some(p) => {
            // Named by the crew's environment: a FIFO or a device there must not hang the engine.
            let bytes = crate::safefs::read_config_file(p, MAX_SETTINGS)?.unwrap_or_default();
            let text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{} is not plain JSON", p.display()))?
        }
        None => serde_json::json!({}),
    };
    let exe = muster_exe.to_string_lossy().replace('\'', "'\\''");
    let root = settings.as_object_mut().context("system settings are not a JSON object")?;
    let hooks = root.entry("hooks").or_insert_with(|| serde_json::json!({}));
    let hooks = hooks.as_object_mut().context("`hooks` in the system settings is not an object")?;
    for event in GEMINI_EVENTS {
        let list = hooks.entry(event).or_insert_with(|| serde_json::json!([]));
        if let Some(list) = list.as_array_mut() {
            list.push(serde_json::json!({
                "hooks": [{ "name": "muster", "type": "command", "command": format!("'{exe}' hook {event}") }]
            }));
        }
    }
    let path = dir.join(format!("gemini-{agent}-settings.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&settings)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The system settings file Gemini CLI would read.
pub fn gemini_system_settings_path(env: &[(String, String)]) -> PathBuf {
    env.iter()
        .find(|(k, _)| k == "GEMINI_CLI_SYSTEM_SETTINGS_PATH")
        .map(|(_, v)| PathBuf::from(v))
        .unwrap_or_else(|| PathBuf::from("/etc/gemini-cli/settings.json"))
}

/// The fields of a hook payload muster uses: the CLI's session id and the kind of notification.
pub fn payload_fields(payload: &str) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(payload) else { return (None, None) };
    let field = |k: &str| v.get(k).and_then(|s| s.as_str()).map(str::to_string);
    // Claude Code and Gemini CLI say `session_id`, opencode's plugin too; Codex's notify says `thread-id`.
    (field("session_id").or_else(|| field("sessionId")).or_else(|| field("thread-id")), field("notification_type"))
}

/// Requests of the socket that may wait in the engine's queue at once: a client that sends faster (one
/// connection can stream hook lines forever) waits for room, its socket unread.
const QUEUED: usize = 256;
/// How long a request waits for room in the engine's queue before its client is told muster is busy.
const ROOM_WITHIN: Duration = Duration::from_secs(10);

/// Accept hook reports and questions, and hand them to the engine; each client is served on its own (an idle
/// one holds up nobody), a request is at most 64 KiB. The socket goes when the returned value is dropped.
pub fn listen(run_dir: &Path, engine: Sender<EngineMsg>) -> Result<crate::ipc::Listening> {
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
            Request::Send { agent, text, force, wait } => (
                EngineMsg::Script(ScriptMsg::Send { name: agent, text, force, wait, reply: tx }),
                None,
                if wait { 2 } else { 1 },
            ),
            // A merge or a checkpoint of a large tree takes what it takes.
            Request::Run { command, trigger } => {
                let trigger = trigger.unwrap_or_else(|| "cli".into());
                (EngineMsg::Script(ScriptMsg::Run { cmd: command, trigger, reply: tx }), None, 1)
            }
            Request::Status {} => (EngineMsg::Script(ScriptMsg::Status { reply: tx }), Some(Duration::from_secs(5)), 1),
            // Held until settled; a script that stopped waiting (its client closed) frees its place.
            Request::Wait { agents, until, timeout } => {
                let timeout = timeout.map(|t| Duration::from_secs_f64(t.clamp(0.0, 1e9)));
                (EngineMsg::Script(ScriptMsg::Wait { agents, until, timeout, reply: tx }), None, 1)
            }
            // A mail `wait` is held until settled; the rest are answered at once.
            Request::Mail { agent, token, op } => {
                let who = agent.map(|a| (a, token.unwrap_or_default()));
                (EngineMsg::Script(ScriptMsg::Mail { who, op, reply: tx }), None, 1)
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

/// A stop hook's turn: the agent's queued mail as the text of its next turn, when it can take it now.
pub fn take_mail(run_dir: &Path, agent: &str, token: &str) -> Option<String> {
    use crate::protocol::mail::{MailAnswer, MailOp};
    let req = Request::Mail { agent: Some(agent.into()), token: Some(token.into()), op: MailOp::Take {} };
    match ask(run_dir, &req, Some(Duration::from_secs(5))).ok().flatten()? {
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
    let req = Request::Send { agent: agent.into(), text: text.into(), force, wait };
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

/// Read a hook's payload from stdin, when there is one (not a terminal), bounded.
pub fn read_payload() -> String {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return String::new();
    }
    let mut text = String::new();
    let _ = stdin.lock().take(MAX_PAYLOAD).read_to_string(&mut text);
    text
}

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

    #[test]
    fn claude_settings_carry_every_hook_and_quote_the_path() {
        let v: serde_json::Value = serde_json::from_str(&claude_settings(Path::new("/opt/mu ster"))).unwrap();
        assert_eq!(v["hooks"]["Stop"][0]["hooks"][0]["command"], "'/opt/mu ster' hook Stop");
        assert_eq!(v["hooks"].as_object().unwrap().len(), CLAUDE_EVENTS.len());
    }

    #[test]
    fn codex_and_opencode_hooks_call_back_into_muster() {
        let args = codex_notify(Path::new("/opt/mu ster"));
        assert_eq!(args, vec!["-c".to_string(), r#"notify=["/opt/mu ster","hook","agent-turn-complete"]"#.to_string()]);
        let dir = tempfile::tempdir().unwrap();
        let config = opencode_config_dir(dir.path(), Path::new("/opt/muster")).unwrap();
        let plugin = std::fs::read_to_string(config.join("plugins/muster.js")).unwrap();
        assert!(plugin.contains(r#"const exe = "/opt/muster";"#), "{plugin}");
        assert!(plugin.contains("export const Muster") && plugin.contains(r#""hook", name"#), "{plugin}");
        assert_eq!(payload_fields(r#"{"type":"agent-turn-complete","thread-id":"t-9"}"#).0.as_deref(), Some("t-9"));
    }

    #[test]
    fn gemini_settings_are_never_put_below_a_folder_others_may_write() {
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        let err = gemini_system_settings(&dir.path().join("s"), "g", Path::new("/m"), None).unwrap_err();
        assert!(err.to_string().contains("/tmp may be written by others"), "{err}");
    }

    /// A folder in the crate's target folder (Gemini wants no folder above its file open to others), and
    /// whether every folder above it is closed to others here.
    fn private_folder() -> (tempfile::TempDir, bool) {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        std::fs::create_dir_all(&base).unwrap();
        let dir = tempfile::tempdir_in(&base).unwrap();
        let secure = dir.path().ancestors().all(|d| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o022 == 0)
        });
        (dir, secure)
    }

    /// A crew's environment may name a FIFO or a device as Gemini's system settings: copying it fails at once
    /// with what it is, and never waits for a writer or reads without end.
    #[test]
    fn a_fifo_or_a_device_as_gemini_settings_is_refused_not_waited_on() {
        let (dir, secure) = private_folder();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let settings = dir.path().join("s");
        std::thread::spawn(move || {
            for named in [fifo.as_path(), Path::new("/dev/zero")] {
                let made = gemini_system_settings(&settings, "g", Path::new("/m"), Some(named));
                let _ = tx.send(made.map_err(|e| format!("{e:#}")));
            }
        });
        for _ in 0..2 {
            let made = rx.recv_timeout(Duration::from_secs(10)).expect("the settings copy hangs");
            let err = made.unwrap_err();
            let expected = if secure { "not a regular file" } else { "may be written by others" };
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn gemini_hooks_join_the_system_settings() {
        let (dir, secure) = private_folder();
        let system = dir.path().join("system.json");
        std::fs::write(
            &system,
            r#"{"general":{"x":1},"hooks":{"AfterAgent":[{"hooks":[{"type":"command","command":"mine"}]}]}}"#,
        )
        .unwrap();
        let made = gemini_system_settings(&dir.path().join("s"), "g", Path::new("/opt/muster"), Some(&system));
        if !secure {
            // Refused, as Gemini would refuse the file.
            assert!(made.is_err());
            return;
        }
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(made.unwrap()).unwrap()).unwrap();
        assert_eq!(v["general"]["x"], 1);
        assert_eq!(v["hooks"]["AfterAgent"][0]["hooks"][0]["command"], "mine");
        assert_eq!(v["hooks"]["AfterAgent"][1]["hooks"][0]["command"], "'/opt/muster' hook AfterAgent");
        assert_eq!(v["hooks"]["SessionStart"][0]["hooks"][0]["command"], "'/opt/muster' hook SessionStart");
        let path = gemini_system_settings(&dir.path().join("s"), "h", Path::new("/m"), Some(&dir.path().join("none")));
        assert!(std::fs::read_to_string(path.unwrap()).unwrap().contains("BeforeAgent"));
        std::fs::write(&system, "// comments\n{").unwrap();
        assert!(gemini_system_settings(&dir.path().join("s"), "i", Path::new("/m"), Some(&system)).is_err());
    }

    #[test]
    fn payloads_give_session_and_notification_kind() {
        let p = r#"{"session_id":"abc-1","hook_event_name":"Notification","notification_type":"permission_prompt"}"#;
        assert_eq!(payload_fields(p), (Some("abc-1".into()), Some("permission_prompt".into())));
        assert_eq!(payload_fields("not json"), (None, None));
        assert_eq!(payload_fields(""), (None, None));
    }

    #[test]
    fn a_malformed_or_unknown_request_is_told_what_was_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, _rx) = std::sync::mpsc::channel();
        let _l = listen(dir.path(), tx).unwrap();
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
        let _l = listen(dir.path(), tx).unwrap();
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
        let _l = listen(dir.path(), tx).unwrap();
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
