//! Helpers shared by the integration tests: real engines on real repositories, polling with deadlines.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use muster::config::crew::parse_crew;
use muster::config::preset;
use muster::engine::{self, AgentInfo, Command, EngineConfig, EngineHandle, Event};
use muster::pty::NativePty;
use muster::term::Screen;

pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct Rig {
    pub root: PathBuf,
    pub engine: EngineHandle,
    pub events: Receiver<Event>,
    pub agents: std::collections::HashMap<String, AgentInfo>,
    pub screens: std::collections::HashMap<String, Screen>,
    /// Messages for the operator, in order.
    pub messages: Vec<String>,
    pub timelines: std::collections::HashMap<String, Vec<muster::git::checkpoint::Checkpoint>>,
    pub shut_down: bool,
    /// The crew's mail as the engine last told of it, by id.
    pub mail: std::collections::BTreeMap<i64, muster::protocol::mail::Mail>,
    /// The newest overlap report.
    pub overlaps: Option<muster::git::overlap::OverlapReport>,
    /// Merge checks answered, in order.
    pub merge_checks: Vec<muster::protocol::git::Preflight>,
    /// Gate logs answered (the text a client is sent).
    pub gate_logs: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// A demo repository with the given crew file, and an engine on it watching `watch` at 24x80.
    pub fn new(crew: &str, watch: &str) -> Rig {
        Rig::with_checkpoints_every(crew, watch, Duration::from_secs(300))
    }

    pub fn with_checkpoints_every(crew: &str, watch: &str, checkpoint_every: Duration) -> Rig {
        Rig::start(crew, watch, checkpoint_every, |_| {})
    }

    /// A rig whose repository `setup` changes before the engine starts on it.
    pub fn with_setup(crew: &str, watch: &str, setup: impl FnOnce(&Path)) -> Rig {
        Rig::start(crew, watch, Duration::from_secs(300), setup)
    }

    fn start(crew: &str, watch: &str, checkpoint_every: Duration, setup: impl FnOnce(&Path)) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let root = muster::demo::create_repo(dir.path(), 1).unwrap();
        std::fs::write(root.join(".muster/crew.toml"), crew).unwrap();
        setup(&root);
        let (engine, events) = Rig::engine(&root, crew, watch, checkpoint_every);
        Rig {
            root,
            engine,
            events,
            agents: Default::default(),
            screens: Default::default(),
            messages: Vec::new(),
            timelines: Default::default(),
            shut_down: false,
            mail: Default::default(),
            overlaps: None,
            merge_checks: Vec::new(),
            gate_logs: Vec::new(),
            _dir: dir,
        }
    }

    fn engine(root: &Path, crew: &str, watch: &str, checkpoint_every: Duration) -> (EngineHandle, Receiver<Event>) {
        // The repository's own manifests (`.muster/agents/`) count, as they do for muster.
        let crew = parse_crew(Path::new("crew.toml"), crew, &preset::load(Some(root)).0, &Default::default()).unwrap();
        let (sink, events) = engine::channel_sink();
        let cfg = EngineConfig {
            root: root.to_path_buf(),
            crew,
            scrollback: 10_000,
            muster_exe: PathBuf::from(env!("CARGO_BIN_EXE_muster")),
            stop_grace: Duration::from_secs(2),
            palette: Default::default(),
            checkpoint_every,
        };
        let engine = engine::supervisor::start(cfg, Arc::new(NativePty), sink).unwrap();
        engine.send(Command::Watch { name: Some(watch.into()), rows: 24, cols: 80, also: vec![] });
        engine.send(Command::StartCrew);
        (engine, events)
    }

    /// Stop the crew (as quitting muster does) and start a new engine on the same repository and crew file: what
    /// muster keeps across a restart is what this one finds.
    pub fn restart(&mut self, watch: &str) {
        self.engine.send(Command::Shutdown);
        self.wait_for("the crew to stop", |r| r.shut_down);
        let crew = std::fs::read_to_string(self.root.join(".muster/crew.toml")).unwrap();
        let (engine, events) = Rig::engine(&self.root, &crew, watch, Duration::from_secs(300));
        (self.engine, self.events) = (engine, events);
        self.shut_down = false;
        self.agents.clear();
        self.screens.clear();
        self.messages.clear();
    }

    fn absorb(&mut self, e: Event) {
        match e {
            Event::Agent(info) => {
                self.agents.insert(info.name.clone(), info);
            }
            Event::Screen { name, screen, .. } => {
                self.screens.insert(name, screen);
            }
            Event::Message { text, .. } => self.messages.push(text),
            Event::Timeline { name, checkpoints } => {
                self.timelines.insert(name, checkpoints);
            }
            Event::ShutdownComplete => self.shut_down = true,
            Event::Overlaps(report) => self.overlaps = Some(report),
            Event::MergeCheck { check, .. } => self.merge_checks.push(check),
            Event::GateLog { log, .. } => self.gate_logs.push(log),
            Event::Mail(mails) => {
                for m in mails {
                    self.mail.insert(m.id, m);
                }
            }
            _ => {}
        }
    }

    /// Take events until `done` holds, or fail after the deadline with what was seen.
    pub fn wait_for(&mut self, what: &str, mut done: impl FnMut(&Rig) -> bool) {
        let end = Instant::now() + DEADLINE;
        while !done(self) {
            let left = end.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) => self.absorb(e),
                Err(_) => panic!(
                    "timed out waiting for {what}; agents: {:?}; messages: {:?}; screens: {:#?}",
                    self.agents.values().map(|a| (&a.name, a.state, a.exit)).collect::<Vec<_>>(),
                    self.messages,
                    self.screens.iter().map(|(n, s)| (n, s.text())).collect::<Vec<_>>()
                ),
            }
        }
    }

    pub fn screen_text(&self, name: &str) -> String {
        self.screens.get(name).map(|s| s.text().join("\n")).unwrap_or_default()
    }

    /// Take events for `window` (an observation period, not a wait for something), checking `ok` after each.
    pub fn watch_for(&mut self, window: Duration, mut ok: impl FnMut(&Rig) -> Result<(), String>) {
        let end = Instant::now() + window;
        loop {
            if let Err(e) = ok(self) {
                panic!("{e}");
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            if let Ok(e) = self.events.recv_timeout(left) {
                self.absorb(e);
            }
        }
    }

    /// Where the copy of message `id` for `recipient` is.
    pub fn receipt(&self, id: i64, recipient: &str) -> Option<muster::protocol::mail::ReceiptState> {
        self.mail.get(&id).and_then(|m| m.receipt(recipient)).map(|r| r.state)
    }

    /// `muster ARGS…` run as the operator in the repository, (success, stdout + stderr).
    pub fn muster(&self, args: &[&str]) -> (bool, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_muster"))
            .args(args)
            .current_dir(&self.root)
            .env_remove("MUSTER_AGENT")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    pub fn state(&self, name: &str) -> Option<engine::AgentState> {
        self.agents.get(name).map(|a| a.state)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if self.shut_down {
            return;
        }
        self.engine.send(Command::Shutdown);
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            match self.events.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(Event::ShutdownComplete) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}
