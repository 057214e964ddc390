//! Child processes in pseudo-terminals, behind `PtyBackend` so the engine can be driven by a fake in tests.

mod fake;
mod native;
pub mod reaper;
pub mod signals;
pub mod tree;

pub use fake::FakePty;
pub use native::NativePty;

pub use crate::protocol::messages::ExitInfo;

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};

/// What to start and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnSpec {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// The complete environment of the child: nothing is inherited beyond it.
    pub env: Vec<(String, String)>,
    pub rows: u16,
    pub cols: u16,
}

/// Control over a running child that does not need its output streams.
pub trait PtyControl: Send + Sync {
    fn resize(&self, rows: u16, cols: u16) -> Result<()>;
    /// The child's process id, which is also its process group (it leads its own session).
    fn pid(&self) -> Option<u32>;
    /// The terminal's foreground process group, which may be a job the agent started.
    fn foreground_group(&self) -> Option<i32>;
}

/// How the child ends.
pub trait ChildWaiter: Send {
    /// Blocks until the child exits.
    fn wait(&mut self) -> Result<ExitInfo>;
    /// Its exit status if it has ended (reaping it), without blocking.
    fn try_wait(&mut self) -> Result<Option<ExitInfo>>;
    /// Its process id, when it is a real process (the reaper watches it through a pidfd).
    fn pid(&self) -> Option<u32>;
}

pub struct PtyProcess {
    pub reader: Box<dyn Read + Send>,
    /// The master's descriptor: the agent's I/O thread makes it non-blocking and polls it for output and for room
    /// for input. None: `reader` blocks (the fake backend), and a thread of its own reads it.
    pub poll_fd: Option<std::os::fd::OwnedFd>,
    pub writer: Box<dyn Write + Send>,
    pub control: Box<dyn PtyControl>,
    pub waiter: Box<dyn ChildWaiter>,
}

pub trait PtyBackend: Send + Sync {
    fn spawn(&self, spec: &SpawnSpec) -> Result<PtyProcess>;
}
