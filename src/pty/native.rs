//! The real backend on portable-pty.

use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};

use super::{ChildWaiter, ExitInfo, PtyBackend, PtyControl, PtyProcess, SpawnSpec};

#[derive(Default)]
pub struct NativePty;

struct Control {
    master: Mutex<Box<dyn MasterPty + Send>>,
    pid: Option<u32>,
}

impl PtyControl for Control {
    fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        let master = self.master.lock().map_err(|_| anyhow!("pty lock poisoned"))?;
        master
            .resize(PtySize { rows: rows.max(1), cols: cols.max(1), pixel_width: 0, pixel_height: 0 })
            .map_err(|e| anyhow!("resizing the pty: {e}"))
    }

    fn pid(&self) -> Option<u32> {
        self.pid
    }

    fn foreground_group(&self) -> Option<i32> {
        self.master.lock().ok()?.process_group_leader()
    }
}

struct Waiter(Box<dyn Child + Send + Sync>);

impl ChildWaiter for Waiter {
    fn wait(&mut self) -> Result<ExitInfo> {
        let status = self.0.wait().context("waiting for the agent process")?;
        Ok(exit_info(&status))
    }

    fn try_wait(&mut self) -> Result<Option<ExitInfo>> {
        let status = self.0.try_wait().context("waiting for the agent process")?;
        Ok(status.as_ref().map(exit_info))
    }

    fn pid(&self) -> Option<u32> {
        self.0.process_id()
    }
}

fn exit_info(status: &portable_pty::ExitStatus) -> ExitInfo {
    // portable-pty folds a death by signal into a code of 1 and a message naming the signal.
    let signal = status.signal().and_then(signal_number);
    let code = if signal.is_some() { None } else { Some(status.exit_code() as i32) };
    ExitInfo { code, signal }
}

fn signal_number(name: &str) -> Option<i32> {
    let known = [
        ("Hangup", 1),
        ("Interrupt", 2),
        ("Quit", 3),
        ("Aborted", 6),
        ("Killed", 9),
        ("Segmentation fault", 11),
        ("Broken pipe", 13),
        ("Terminated", 15),
    ];
    known.iter().find(|(n, _)| name.contains(n)).map(|(_, s)| *s).or(Some(0))
}

impl PtyBackend for NativePty {
    fn spawn(&self, spec: &SpawnSpec) -> Result<PtyProcess> {
        let system = native_pty_system();
        let pair = system
            .openpty(PtySize { rows: spec.rows.max(1), cols: spec.cols.max(1), pixel_width: 0, pixel_height: 0 })
            .map_err(|e| anyhow!("opening a pty: {e}"))?;
        let mut cmd = CommandBuilder::new(&spec.program);
        cmd.args(&spec.args);
        cmd.cwd(&spec.cwd);
        cmd.env_clear();
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        let child = pair
            .slave
            .spawn_command(cmd)
            .map_err(|e| anyhow!("starting `{}` in {}: {e}", spec.program, spec.cwd.display()))?;
        // The slave end belongs to the child now; keeping it open would hide the child's exit from the reader.
        drop(pair.slave);
        let reader = pair.master.try_clone_reader().map_err(|e| anyhow!("pty reader: {e}"))?;
        let writer = pair.master.take_writer().map_err(|e| anyhow!("pty writer: {e}"))?;
        let pid = child.process_id();
        let poll_fd = pair.master.as_raw_fd().and_then(|fd| {
            // SAFETY: the master is open (we hold it) for the length of this borrow; the copy is our own.
            let master = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            master.try_clone_to_owned().ok()
        });
        Ok(PtyProcess {
            reader,
            poll_fd,
            writer,
            control: Box::new(Control { master: Mutex::new(pair.master), pid }),
            waiter: Box::new(Waiter(child)),
        })
    }
}
