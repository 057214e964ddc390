//! The engine owns the agents (PTYs, emulators, worktrees) and speaks serde `Command`s and `Event`s, so the UI
//! never holds a PTY, a git handle or an emulator lock — and the engine can later move into a server.

pub mod agent;
pub mod crew_watch;
pub mod detect;
pub mod events;
mod gather;
pub mod git_jobs;
pub mod guard;
pub mod hooks;
pub mod inbox;
pub mod ports;
mod pty_io;
pub mod results;
pub mod script_socket;
pub mod store;
pub mod supervisor;

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};

pub use crate::protocol::messages::{AgentInfo, AgentState, Command, Event};
pub use supervisor::MAIL_SNAPSHOT;

/// Who asked: a client of the server (the workbench in this process is client 0) and its request's id. An
/// answer goes to the asker alone, addressed by this, never by what it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Asker {
    pub client: u64,
    pub id: u64,
}

impl Asker {
    /// The workbench in this process.
    pub const LOCAL: Asker = Asker { client: 0, id: 0 };
    /// No client: a script's command (answered on its own channel) or the server's own; no view is its, no reply
    /// is sent.
    pub const NOBODY: Asker = Asker { client: u64::MAX, id: 0 };
}

/// One client's command, with its address.
pub struct Request {
    pub from: Asker,
    pub command: Command,
    /// Held until the engine takes the command: a client has a bounded number of commands queued.
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Request {
    /// A command of no client's (a script's, or the server's own).
    pub fn of_nobody(command: Command) -> Request {
        Request { from: Asker::NOBODY, command, permit: None }
    }
}

/// What the engine puts out: an event for every client, a screen for one viewer, or the answer to one request.
/// Only `Event` crosses the wire as it is; the server's hub turns the other two into frames for one client.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Event(Event),
    /// The screen one viewer sees of an agent it scrolled back in (or the live one, once it returns).
    ScreenFor {
        name: String,
        viewer: u64,
        screen: crate::protocol::screen::Screen,
    },
    /// The answer to one request (a diff, a preview, a removal check, a conflict file, a merge check).
    Reply {
        to: Asker,
        event: Event,
    },
}

impl From<Event> for Out {
    fn from(e: Event) -> Out {
        Out::Event(e)
    }
}

/// Where the engine's output goes: the UI's channel in-process, the server's hub once the engine is a server.
#[derive(Clone)]
pub struct EventSink(std::sync::Arc<dyn Fn(Out) + Send + Sync>);

impl EventSink {
    pub fn new(f: impl Fn(Out) + Send + Sync + 'static) -> EventSink {
        EventSink(std::sync::Arc::new(f))
    }

    /// For every client.
    pub fn event(&self, e: Event) {
        (self.0)(Out::Event(e))
    }

    /// For the client that asked alone.
    pub fn reply(&self, to: Asker, event: Event) {
        if to != Asker::NOBODY {
            (self.0)(Out::Reply { to, event })
        }
    }

    pub fn screen_for(&self, name: String, viewer: u64, screen: crate::protocol::screen::Screen) {
        (self.0)(Out::ScreenFor { name, viewer, screen })
    }
}

/// The UI's end of the engine: the engine thread in this process, or a connection to the server.
#[derive(Clone)]
pub struct EngineHandle {
    send: crate::protocol::Commands,
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
        let send = crate::protocol::Commands::new(move |command| {
            let _ = to.send(supervisor::EngineMsg::Request(Request { from: Asker::LOCAL, command, permit: None }));
        });
        EngineHandle { send, local: Some(tx), stop: Some(stop) }
    }

    pub fn send(&self, command: Command) {
        self.send.send(command)
    }

    /// Where a client's commands go: what the workbench holds of this engine.
    pub fn commands(&self) -> crate::protocol::Commands {
        self.send.clone()
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
/// screens, the live ones of an agent it looks back into are held back, as the server's hub does per client, and
/// every answer is its.
pub fn one_viewer(f: impl Fn(Event) + Send + Sync + 'static) -> EventSink {
    let scrolled = std::sync::Mutex::new(std::collections::HashSet::<String>::new());
    EventSink::new(move |out| {
        let mut scrolled = scrolled.lock().unwrap_or_else(|p| p.into_inner());
        match out {
            Out::ScreenFor { name, viewer: 0, screen } => {
                if screen.scrolled_back > 0 {
                    scrolled.insert(name.clone());
                } else {
                    scrolled.remove(&name);
                }
                drop(scrolled);
                f(Event::Screen { name, screen, change: None })
            }
            Out::ScreenFor { .. } => {}
            Out::Event(Event::Screen { ref name, .. }) if scrolled.contains(name) => {}
            Out::Event(e) | Out::Reply { event: e, .. } => {
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
