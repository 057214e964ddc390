//! The engine owns the agents (PTYs, emulators, worktrees) and speaks serde `Command`s and `Event`s, so the UI
//! never holds a PTY, a git handle or an emulator lock — and the engine can later move into a server.

pub mod agent;
pub mod checkpoints;
pub mod detect;
pub mod hooks;
mod pty_io;
pub mod store;
pub mod supervisor;

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};

pub use crate::protocol::messages::{AgentInfo, AgentState, Command, Event};
pub use supervisor::MAIL_SNAPSHOT;

/// Where the engine's events go: the UI's channel in-process, a socket once the engine is a server.
pub type EventSink = std::sync::Arc<dyn Fn(Event) + Send + Sync>;

/// The UI's end of the engine: the engine thread in this process, or a connection to the server.
#[derive(Clone)]
pub struct EngineHandle {
    send: std::sync::Arc<dyn Fn(Command) + Send + Sync>,
    local: Option<Sender<supervisor::EngineMsg>>,
    stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl EngineHandle {
    pub(crate) fn local(
        tx: Sender<supervisor::EngineMsg>,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> EngineHandle {
        let to = tx.clone();
        // A gone engine means shutdown already happened; there is nobody left to tell.
        let send = std::sync::Arc::new(move |c| {
            let _ = to.send(supervisor::EngineMsg::Command(c));
        });
        EngineHandle { send, local: Some(tx), stop: Some(stop) }
    }

    /// Commands that go elsewhere (a connection to the server).
    pub fn from_fn(f: impl Fn(Command) + Send + Sync + 'static) -> EngineHandle {
        EngineHandle { send: std::sync::Arc::new(f), local: None, stop: None }
    }

    pub fn send(&self, command: Command) {
        (self.send)(command)
    }

    /// Stop the crew before anything already queued (a signal): whatever clients sent first waits.
    pub fn stop_first(&self) {
        if let Some(stop) = &self.stop {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        self.send(Command::Shutdown);
    }

    /// The engine's own channel, for the server that serves it to clients.
    pub fn engine_channel(&self) -> Option<&Sender<supervisor::EngineMsg>> {
        self.local.as_ref()
    }
}

/// An event sink that feeds a channel, for tests and tools.
pub fn channel_sink() -> (EventSink, Receiver<Event>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = one_viewer(move |e| {
        let _ = tx.send(e);
    });
    (sink, rx)
}

/// The sink of an engine with one viewer in its own process (client 0): its scrolled-back screens arrive as its
/// screens, and the live ones of an agent it looks back into are held back, as the server's hub does per client.
pub fn one_viewer(f: impl Fn(Event) + Send + Sync + 'static) -> EventSink {
    let scrolled = std::sync::Mutex::new(std::collections::HashSet::<String>::new());
    std::sync::Arc::new(move |e| {
        let mut scrolled = scrolled.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::ScreenFor { name, viewer: 0, screen } => {
                if screen.scrolled_back > 0 {
                    scrolled.insert(name.clone());
                } else {
                    scrolled.remove(&name);
                }
                drop(scrolled);
                f(Event::Screen { name, screen, change: None })
            }
            Event::ScreenFor { .. } => {}
            Event::Screen { ref name, .. } if scrolled.contains(name) => {}
            e => {
                drop(scrolled);
                f(e)
            }
        }
    })
}

/// Where an engine works and what it starts.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub root: PathBuf,
    pub crew: crate::config::crew::Crew,
    pub scrollback: usize,
    /// The muster binary agents' hooks call back into.
    pub muster_exe: PathBuf,
    /// Grace between SIGTERM and SIGKILL.
    pub stop_grace: std::time::Duration,
    /// The colours agents are told the terminal has.
    pub palette: crate::term::Palette,
    /// How often a busy agent is checkpointed (when its files changed).
    pub checkpoint_every: std::time::Duration,
}
