//! Agent CLIs' hooks calling back into muster: how each CLI is told to run `muster hook <Event>` (Claude Code's
//! `--settings` per session, Codex's `notify`, an opencode plugin, Gemini CLI's system settings — the worktree is
//! never touched), and what `muster hook` reads of the payload (the CLI's session id, the notification kind)
//! before it reports on the script socket (`script_socket`).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

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
pub fn opencode_config_dir(run_dir: &Path, muster_exe: &Path, cli: &str) -> Result<PathBuf> {
    let dir = run_dir.join(cli);
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

/// The variable naming the extra config folder opencode (`OPENCODE_CONFIG_DIR`) or its fork Kilo Code
/// (`KILO_CONFIG_DIR`) reads plugins from.
pub fn config_dir_var(cli: &str) -> &'static str {
    match cli {
        "kilo" => "KILO_CONFIG_DIR",
        _ => "OPENCODE_CONFIG_DIR",
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        let config = opencode_config_dir(dir.path(), Path::new("/opt/muster"), "opencode").unwrap();
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
}
