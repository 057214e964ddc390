//! Finding a repository's server, and starting one detached when none runs.

use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{LOG, SOCKET};

/// How long a new server may take to listen (it loads the crew and its saved state first).
const START_WITHIN: Duration = Duration::from_secs(15);

/// A connection to the repository's server, if one answers.
pub fn connect(root: &Path) -> Result<Option<UnixStream>> {
    let path = crate::ipc::run_dir(root)?.join(SOCKET);
    Ok(UnixStream::connect(path).ok())
}

/// Connect to the repository's server, starting it (detached: its own session, its output to `server.log` in
/// the run folder) when none answers. `args` go to `muster server run`.
pub fn connect_or_start(root: &Path, args: &[String]) -> Result<UnixStream> {
    let run_dir = crate::ipc::run_dir(root)?;
    let path = run_dir.join(SOCKET);
    if let Ok(s) = UnixStream::connect(&path) {
        return Ok(s);
    }
    let deadline = Instant::now() + START_WITHIN;
    if let Some(pid) = crate::ipc::holder(&run_dir) {
        // Starting up, or an older muster that runs the crew in its own window.
        while Instant::now() < deadline {
            if let Ok(s) = UnixStream::connect(&path) {
                return Ok(s);
            }
            if crate::ipc::holder(&run_dir).is_none() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(pid) = crate::ipc::holder(&run_dir).filter(|&p| p == pid) {
            bail!(
                "muster pid {pid} runs this repository's crew but does not answer on {} (an older muster without a \
                 server?): quit it, or end it with `kill {pid}`",
                path.display()
            );
        }
    }
    let log_path = run_dir.join(LOG);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let exe = std::env::current_exe().context("locating the muster binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("-C").arg(root).args(["server", "run"]).args(args);
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // SAFETY: setsid is async-signal-safe; the server gets a session of its own, so the terminal's hangup and
    // its job control never reach it (or its agents).
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting the muster server")?;
    while Instant::now() < deadline {
        if let Ok(s) = UnixStream::connect(&path) {
            // The server outlives us; nobody waits for it, so it must not stay our child when it ends first.
            std::thread::Builder::new().name("server reaper".into()).spawn(move || child.wait()).ok();
            return Ok(s);
        }
        if let Some(status) = child.try_wait()? {
            // A second server refused (one started meanwhile) is not an error: attach to that one.
            if let Ok(s) = UnixStream::connect(&path) {
                return Ok(s);
            }
            bail!("the muster server ended ({status}) before it listened:\n{}", log_tail(&log_path));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("the muster server did not listen within {START_WITHIN:?}:\n{}", log_tail(&log_path))
}

/// The last lines of a server's log, for an error message.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}
