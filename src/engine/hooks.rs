//! Agent hooks calling back into muster: Claude Code's hooks run `muster hook <Event>`, which reports to the
//! engine over a Unix socket in the crew's run directory.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::supervisor::EngineMsg;
use super::Command;

pub const SOCKET: &str = "hook.sock";
const CLAUDE_EVENTS: [&str; 5] = ["SessionStart", "UserPromptSubmit", "PreToolUse", "Stop", "Notification"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HookReport {
    pub agent: String,
    pub event: String,
}

/// A short per-repository directory for sockets (Unix socket paths are limited to ~100 bytes).
pub fn run_dir(root: &Path) -> PathBuf {
    let h =
        root.to_string_lossy().bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    std::env::temp_dir().join(format!("muster-{h:016x}"))
}

/// Write Claude Code hooks into the worktree's local settings, keeping whatever else is there.
pub fn install_claude_hooks(worktree: &Path, muster_exe: &Path) -> Result<()> {
    let dir = worktree.join(".claude");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("settings.local.json");
    let mut settings: serde_json::Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(|v: &serde_json::Value| v.is_object())
        .unwrap_or_else(|| serde_json::json!({}));
    let exe = muster_exe.to_string_lossy().replace('\'', "'\\''");
    let hooks = settings
        .as_object_mut()
        .context("settings is an object")?
        .entry("hooks")
        .or_insert_with(|| serde_json::json!({}));
    if !hooks.is_object() {
        *hooks = serde_json::json!({});
    }
    for event in CLAUDE_EVENTS {
        hooks[event] =
            serde_json::json!([{ "hooks": [{ "type": "command", "command": format!("'{exe}' hook {event}") }] }]);
    }
    std::fs::write(&path, serde_json::to_string_pretty(&settings)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Accept hook reports and hand them to the engine as commands.
pub fn listen(run_dir: &Path, engine: Sender<EngineMsg>) -> Result<()> {
    std::fs::create_dir_all(run_dir)?;
    let path = run_dir.join(SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).with_context(|| format!("listening on {}", path.display()))?;
    std::thread::Builder::new().name("hooks".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Ok(report) = serde_json::from_str::<HookReport>(&line) {
                    let cmd = Command::Hook { name: report.agent, event: report.event };
                    if engine.send(EngineMsg::Command(cmd)).is_err() {
                        return;
                    }
                }
            }
        }
    })?;
    Ok(())
}

/// What `muster hook <event>` does: report to the engine named by the environment.
pub fn report(run_dir: &Path, agent: &str, event: &str) -> Result<()> {
    let mut stream = UnixStream::connect(run_dir.join(SOCKET)).context("muster is not running for this agent")?;
    let line = serde_json::to_string(&HookReport { agent: agent.into(), event: event.into() })?;
    stream.write_all(format!("{line}\n").as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_hooks_merge_into_existing_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".claude")).unwrap();
        std::fs::write(dir.path().join(".claude/settings.local.json"), r#"{"permissions":{"allow":["Bash"]}}"#)
            .unwrap();
        install_claude_hooks(dir.path(), Path::new("/opt/mu ster")).unwrap();
        install_claude_hooks(dir.path(), Path::new("/opt/mu ster")).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(".claude/settings.local.json")).unwrap())
                .unwrap();
        assert_eq!(v["permissions"]["allow"][0], "Bash");
        assert_eq!(v["hooks"]["Stop"][0]["hooks"][0]["command"], "'/opt/mu ster' hook Stop");
        assert_eq!(v["hooks"]["Stop"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn reports_reach_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        listen(dir.path(), tx).unwrap();
        report(dir.path(), "a", "Stop").unwrap();
        match rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap() {
            EngineMsg::Command(Command::Hook { name, event }) => {
                assert_eq!((name.as_str(), event.as_str()), ("a", "Stop"))
            }
            _ => panic!("unexpected message"),
        }
    }
}
