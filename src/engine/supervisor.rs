//! The engine loop: commands from the UI and reports from agent threads, one at a time, on its own thread.

use crate::protocol::script::{Answer, ErrorKind, ScriptError, TurnEnd, WaitOutcome};
use crate::protocol::CrewFileMark;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::agent::{self, Running, SpawnArgs, TermMsg, WriteOp};
use super::detect::{hook_state, HookReport};
use super::git_jobs::{self, ConflictOp, Job, JobKind};
use super::inbox::JobDone;
use super::store::{self, SavedAgent, SavedCrew};
use super::{
    hooks, script_socket, AgentInfo, AgentState, Asker, Command, EngineConfig, EngineHandle, Event, EventSink,
};
use crate::config::crew::AgentSpec;
use crate::config::preset;
use crate::git::watch::WorktreeWatch;
use crate::git::{diffstat, merge, worktree};
use crate::pty::tree::AgentTree;
use crate::pty::{signals, ExitInfo, PtyBackend, SpawnSpec};
use crate::term::input;

mod crew;
mod findings;
mod gates;
mod jobs;
mod launch;
mod lead;
mod lifecycle;
mod mail;
mod review;
mod scripts;
mod viewers;
mod waves;
pub use super::inbox::{EngineMsg, Report, ScriptMsg};
use jobs::{clean_stale_git_files, spawn_diff_worker, spawn_overlap_worker, DiffJob};
pub use launch::{child_env, command_line};
use lifecycle::GraceKill;
pub use mail::{muster_command, MAIL_SNAPSHOT};
use scripts::{PendingSend, PendingWait};
use viewers::Watcher;

struct Slot {
    spec: AgentSpec,
    /// The crew file's new word on this agent, applied when it next starts (it ran when the file changed).
    pending_spec: Option<AgentSpec>,
    info: AgentInfo,
    running: Option<Running>,
    ran_before: bool,
    stopping: bool,
    restart_after_exit: bool,
    prompt_pending: bool,
    last_diff_request: Option<Instant>,
    /// When a periodic checkpoint was last asked for, while busy.
    last_periodic: Option<Instant>,
    /// Which files changed in the worktree since its last checkpoint.
    files: Option<Arc<WorktreeWatch>>,
    /// The watcher's change count when the last diffstat was asked for.
    diffed_at_change: Option<u64>,
    /// Every process of the running agent: pause, stop and quit act on all of them.
    tree: Option<Arc<AgentTree>>,
    /// This run has muster's hooks (its state comes from them as well as its screen).
    hooked: bool,
    /// The state its screen and hooks last said (a resume from pause goes back to it).
    detected: AgentState,
    /// The CLI's own session id, from its hooks.
    session: Option<String>,
    /// The running agent's secret (`MUSTER_AGENT_TOKEN`): hook reports must carry it.
    token: String,
    /// Its terminal's size (rows, cols), and the client that set it last.
    size: (u16, u16),
    sized_by: Option<u64>,
    /// Some client shows its screen.
    watched: bool,
    mail: mail::MailSlot,
    /// Turns it started (a gate's result is stale once another began).
    turns: u64,
    /// Why its gates hold it for the operator, while they do: shown as waiting.
    gate_hold: Option<String>,
    /// What its screen and hooks last said of why it is in its state.
    detected_why: String,
    /// Its stop hook ended its turn (checkpoint, gates): the end its CLI reports after is not counted again.
    turn_end_taken: bool,
    /// The number of its newest checkpoint (0: none yet): what a finding's file is restored from.
    newest_checkpoint: u32,
    /// Its watcher's change count as the stall timer last saw it, when it last moved, and whether this stall
    /// was said.
    stall: findings::StallClock,
    /// It was done as its `advance` says, once (the agents after it may start; done stays done).
    done: bool,
    /// Its turns' checkpoints queued and not yet taken: until they are, its turn's work is not what a checkpoint
    /// (a reviewer's verdict, the next wave) can name.
    turn_jobs: std::cell::Cell<u32>,
    /// Its turn count when it was last given a task (a prompt, a steer, mail, the operator's Enter; its start
    /// for one that works unprompted): a plan counts it done only at rest after a turn since.
    task_turn: Option<u64>,
}

impl Slot {
    /// It was handed a task: the turn that takes it is this one, when it works already (a CLI reads what is
    /// typed into its turn), else its next.
    fn task_given(&mut self) {
        let now = if self.detected == AgentState::Busy { self.turns.saturating_sub(1) } else { self.turns };
        self.task_turn = Some(now);
        // Its result is of the work before: kept, no longer what it is done with. (Not at any turn's start: a
        // CLI that prints on after setting it — a shell's prompt, a model's closing words — is still done.)
        if let Some(r) = self.info.result.as_mut() {
            r.current = false;
        }
    }

    /// The operator paused it: the tree keeps that, so there is one truth (a job's hold is not a pause).
    fn paused(&self) -> bool {
        self.tree.as_ref().is_some_and(|t| t.is_paused())
    }
}

struct Supervisor {
    cfg: EngineConfig,
    backend: Arc<dyn PtyBackend>,
    sink: EventSink,
    tx: Sender<EngineMsg>,
    slots: Vec<Slot>,
    presets: BTreeMap<String, preset::Preset>,
    /// What each client shows: the agent and its pane's size. The in-process UI is client 0.
    watchers: BTreeMap<u64, Watcher>,
    /// The size a new agent starts at: the last pane a client sized.
    size: (u16, u16),
    size_from: Option<u64>,
    generation: u64,
    diff_tx: Sender<(String, DiffJob)>,
    jobs: Sender<Job>,
    /// How many jobs wait, and whether the crew is stopping (shared with the checkpoint worker).
    queue: Arc<git_jobs::Queue>,
    /// Set by a signal: the engine stops the crew before it handles anything else queued.
    stop_asked: Arc<AtomicBool>,
    /// Watches the repository's branches while the engine runs.
    _refs: Option<crate::git::refwatch::RefWatch>,
    /// When to measure diffstats and overlaps again after branches moved (moves within it are one).
    remeasure_at: Option<Instant>,
    /// Watches the crew file while the engine runs.
    _crew_watch: Option<super::crew_watch::CrewWatch>,
    /// When to read the crew file again after it was written (writes within it are one).
    crew_reload_at: Option<Instant>,
    /// The waves the operator let start (`approve = true`).
    approved: std::collections::BTreeSet<u32>,
    /// The crew was started (a plan's agents start as what they follow gets done, from then on).
    crew_started: bool,
    /// When agents that advance once merged last had their branches checked against their bases.
    merged_checked: Option<Instant>,
    /// The operator was told the job queue is full (once until it has room again).
    queue_full_said: std::cell::Cell<bool>,
    overlap_tx: Sender<(PathBuf, Vec<(String, String)>)>,
    run_dir: PathBuf,
    shutting_down: bool,
    /// The hook socket, removed with the engine.
    hooks_socket: Option<crate::ipc::Listening>,
    /// This engine owns the repository's crew while it runs.
    instance: Option<crate::ipc::Instance>,
    /// Since when the saved state is behind (a state change not yet written).
    unsaved_since: Option<Instant>,
    /// `muster send --wait` requests waiting for their agent's turn to end.
    sends: Vec<PendingSend>,
    /// `muster wait` requests.
    waits: Vec<PendingWait>,
    /// The crew's mailbox, when it opened.
    mailbox: Option<crate::mailbox::Store>,
    /// Which agent each client's operator is writing a steer to.
    composing: BTreeMap<u64, String>,
    mail_waits: Vec<mail::MailWait>,
    /// When the next undelivered mail expires.
    next_expiry: Option<Instant>,
    /// Stopped agents to kill if they are still running when their grace ends.
    kills: Vec<GraceKill>,
    /// What exited agents left running (SIGTERMed), killed when the grace ends.
    leftovers: Vec<(Instant, Arc<AgentTree>)>,
    /// The crew's gate runs, queued and under way, and each agent's loops.
    gates: gates::Gates,
    /// The watchdog's worker, and the findings it made.
    guard: super::guard::Guard,
    findings: findings::Findings,
    /// The git folder's command-running parts as last read (its hooks, config keys, HEAD).
    git_folder: Option<(PathBuf, crate::guard::git_folder::GitFolder)>,
    /// `muster spawn` requests waiting for their agent to settle.
    spawns: Vec<lead::PendingSpawn>,
    /// The crew's event log (`muster events`).
    events: std::cell::RefCell<super::events::EventLog>,
}

pub use crate::protocol::script::WaitFor;

/// How long after a branch moves its diffstats and overlaps are measured again.
const REMEASURE_AFTER: Duration = Duration::from_millis(300);

/// How long after the crew file is written it is read again.
const CREW_RELOAD_AFTER: Duration = Duration::from_millis(200);

/// How soon a change of an agent's state reaches `.muster/state.json`.
const SAVE_AFTER: Duration = Duration::from_secs(1);

/// Start the engine on its own thread.
pub fn start(cfg: EngineConfig, backend: Arc<dyn PtyBackend>, sink: EventSink) -> Result<EngineHandle> {
    let (tx, rx) = mpsc::channel();
    let run_dir = hooks::run_dir(&cfg.root)?;
    // One muster per repository: a second would show the first one's agents as stopped and start them again.
    let instance = crate::ipc::Instance::acquire(&run_dir, &cfg.root)?;
    clean_stale_git_files(&cfg.root, &sink);
    let listening = script_socket::listen(&run_dir, &cfg.root.join(".muster"), tx.clone())
        // Hooks are one layer of state detection; screen rules still work without them.
        .inspect_err(|e| tracing::warn!("hook socket unavailable: {e:#}"))
        .ok();
    let diff_tx = spawn_diff_worker(tx.clone());
    let queue = Arc::new(git_jobs::Queue::default());
    let jobs = git_jobs::spawn_worker(tx.clone(), sink.clone(), queue.clone());
    let stop_asked = Arc::new(AtomicBool::new(false));
    let overlap_tx = spawn_overlap_worker(sink.clone());
    let moved = tx.clone();
    let tampered = tx.clone();
    let refs = crate::git::refwatch::watch(
        &cfg.root,
        move || {
            let _ = moved.send(EngineMsg::Report(Report::RefsMoved));
        },
        move || {
            let _ = tampered.send(EngineMsg::Report(Report::GitFolderChanged));
        },
    )
    // Without it, merges made through muster still measure again.
    .inspect_err(|e| tracing::warn!("watching the repository's branches: {e:#}"))
    .ok();
    let changed = tx.clone();
    let crew_watch = super::crew_watch::watch(&cfg.root, move || {
        let _ = changed.send(EngineMsg::Report(Report::CrewFileChanged));
    })
    // Without it, the crew file is read when the server starts, as before.
    .inspect_err(|e| tracing::warn!("watching the crew file: {e:#}"))
    .ok();
    let (saved, load_errors) = store::load_or_set_aside(&cfg.root);
    let events_root = cfg.root.clone();
    for e in load_errors {
        tracing::warn!("saved state: {e}");
        sink.event(Event::Message { text: format!("saved state: {e}"), error: true });
    }
    // Their warnings were said when the crew was loaded.
    let (presets, _) = preset::load(Some(&cfg.root));
    let mut sup = Supervisor {
        cfg,
        backend,
        sink,
        tx: tx.clone(),
        slots: Vec::new(),
        presets,
        watchers: BTreeMap::new(),
        size: (24, 80),
        size_from: None,
        generation: 0,
        diff_tx,
        jobs,
        queue,
        stop_asked: stop_asked.clone(),
        queue_full_said: Default::default(),
        _refs: refs,
        remeasure_at: None,
        _crew_watch: crew_watch,
        crew_reload_at: None,
        approved: saved.approved.iter().copied().collect(),
        crew_started: false,
        merged_checked: None,
        overlap_tx,
        run_dir,
        shutting_down: false,
        hooks_socket: listening,
        instance: Some(instance),
        unsaved_since: None,
        sends: Vec::new(),
        waits: Vec::new(),
        mailbox: None,
        composing: BTreeMap::new(),
        mail_waits: Vec::new(),
        next_expiry: None,
        kills: Vec::new(),
        leftovers: Vec::new(),
        gates: Default::default(),
        guard: super::guard::Guard::start(tx.clone()),
        findings: Default::default(),
        git_folder: None,
        spawns: Vec::new(),
        events: std::cell::RefCell::new(super::events::EventLog::open(&events_root)),
    };
    sup.load_slots(saved);
    sup.open_mailbox();
    sup.load_gates();
    sup.load_findings();
    sup.guard_main();
    sup.branches_moved();
    sup.git_folder = git2::Repository::open(&sup.cfg.root).ok().map(|r| {
        let common = r.commondir().to_path_buf();
        let now = crate::guard::git_folder::read(&common);
        (common, now)
    });
    // What a muster that died (kill -9) saved says its agents still run: from now on the file speaks for this one.
    sup.save();
    std::thread::Builder::new().name("engine".into()).spawn(move || sup.run(rx)).context("starting the engine")?;
    Ok(EngineHandle::local(tx, stop_asked))
}

impl Supervisor {
    fn load_slots(&mut self, saved: SavedCrew) {
        let mut seen = HashSet::new();
        let crew_specs = self.cfg.crew.agents.clone();
        for spec in crew_specs {
            let previous = saved.agents.iter().find(|a| a.spec.name == spec.name);
            seen.insert(spec.name.clone());
            self.slots.push(self.new_slot(spec, previous));
        }
        // Agents of an earlier session that left the crew file are still shown, so their work is not forgotten.
        for a in &saved.agents {
            if !seen.contains(&a.spec.name) {
                let mut slot = self.new_slot(a.spec.clone(), Some(a));
                slot.info.crew_file = CrewFileMark::Left;
                self.slots.push(slot);
            }
        }
        for slot in &self.slots {
            self.sink.event(Event::Agent(slot.info.clone()));
        }
        self.end_leftovers();
        // Stopped agents of an earlier session still show what their worktrees hold.
        let existing: Vec<String> =
            self.slots.iter().filter(|s| self.worktree_of(s).is_some()).map(|s| s.spec.name.clone()).collect();
        for name in existing {
            self.request_diffstat(&name, true);
            self.job(&name, JobKind::List, false);
        }
    }

    fn handle(&mut self, msg: EngineMsg) {
        match msg {
            EngineMsg::Gated(msg, ticket) => {
                self.handle(*msg);
                drop(ticket);
            }
            EngineMsg::Request(super::Request { from, command, permit }) => {
                self.request(from, command);
                drop(permit);
            }
            EngineMsg::Script(msg) => self.script(msg),
            EngineMsg::Report(report) => self.report(report),
            EngineMsg::ClientGone { client } => {
                self.watchers.remove(&client);
                if let Some(name) = self.composing.remove(&client) {
                    self.pump(&name);
                }
                for r in self.slots.iter().filter_map(|s| s.running.as_ref()) {
                    let _ = r.term.send(TermMsg::ScrollBottom { viewer: client, typed: false });
                }
                self.rewatch(None);
            }
        }
    }

    fn report(&mut self, report: Report) {
        match report {
            Report::Checkpoints(done) => self.checkpoints_done(done),
            Report::CrewFileChanged => {
                // An editor writes, renames and sets modes: one change, read once it settles.
                self.crew_reload_at.get_or_insert(Instant::now() + CREW_RELOAD_AFTER);
            }
            Report::RefsMoved => {
                // A commit writes several files; what follows within the pause is the same move.
                self.remeasure_at.get_or_insert(Instant::now() + REMEASURE_AFTER);
            }
            Report::Detected { name, generation, state, why, title, last_output_ms } => {
                self.detected(&name, generation, state, why, title, last_output_ms)
            }
            Report::Exited { name, generation, exit } => self.exited(&name, generation, exit),
            Report::MailEntered { name, generation } => self.mail_entered(&name, generation),
            Report::MailTaken { name, generation } => self.mail_taken(&name, generation),
            Report::GateDone { run, turn } => self.gate_done(run, turn),
            Report::Findings { agent, found } => self.findings_seen(agent, found),
            Report::ScreenVerdict { name, generation, approved, target, reasons } => {
                self.screen_verdict(&name, generation, approved, target.as_deref(), &reasons)
            }
            Report::GitFolderChanged => self.git_folder_changed(),
            Report::Diffstat { name, stat } => {
                if let Some(slot) = self.slot_mut(&name) {
                    if slot.info.diffstat != stat {
                        slot.info.diffstat = stat;
                        let info = slot.info.clone();
                        self.sink.event(Event::Agent(info));
                    }
                }
            }
        }
    }

    fn run(mut self, rx: Receiver<EngineMsg>) {
        loop {
            let save_at = self.unsaved_since.map(|t| t + SAVE_AFTER);
            let forget_wait = self.waits.iter().filter_map(|w| w.until_time).min();
            let wake = [
                self.next_periodic(),
                save_at,
                forget_wait,
                self.next_mail_wake(),
                self.next_timer(),
                self.next_spawn_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();
            let msg = match wake {
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(m) => m,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if save_at.is_some_and(|t| t <= Instant::now()) {
                            self.save();
                        }
                        self.periodic_checkpoints();
                        self.settle_waits();
                        self.settle_spawns();
                        self.mail_tick();
                        self.timers();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                },
                None => match rx.recv() {
                    Ok(m) => m,
                    Err(_) => return,
                },
            };
            if self.stop_asked.load(Ordering::SeqCst) && !self.shutting_down {
                // A signal goes before whatever clients queued (the signal's own message wakes this loop).
                self.request(Asker::NOBODY, Command::Shutdown);
            }
            if self.next_timer().is_some_and(|t| t <= Instant::now()) {
                self.timers();
            }
            self.handle(msg);
            if !self.waits.is_empty() {
                self.settle_waits();
            }
            if !self.spawns.is_empty() {
                self.settle_spawns();
            }
            self.advance_waves();
            if self.shutting_down && self.slots.iter().all(|s| s.running.as_ref().is_none_or(|r| r.exited)) {
                self.save();
                // Gone before the UI is told: the process may end as soon as it is.
                self.hooks_socket = None;
                self.instance = None;
                for slot in &mut self.slots {
                    slot.files = None;
                }
                self.sink.event(Event::ShutdownComplete);
                return;
            }
        }
    }

    /// The folder an agent works in, when it is there and is what muster made: for a worktree agent a real
    /// folder holding a worktree of this repository (never one a committed symlink points to).
    fn worktree_of(&self, slot: &Slot) -> Option<PathBuf> {
        if !slot.spec.worktree {
            return Some(self.cfg.root.clone()).filter(|r| r.is_dir());
        }
        worktree::existing_worktree(&self.cfg.root, &slot.spec.name)
            .inspect_err(|e| tracing::warn!("{}: {e:#}", slot.spec.name))
            .ok()
            .flatten()
    }

    fn slot_mut(&mut self, name: &str) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.spec.name == name)
    }

    fn emit(&self, name: &str) {
        if let Some(slot) = self.slots.iter().find(|s| s.spec.name == name) {
            self.record_info(&slot.info);
            self.sink.event(Event::Agent(slot.info.clone()));
        }
    }

    fn message(&self, text: String, error: bool) {
        if error {
            tracing::warn!("{text}");
        }
        self.sink.event(Event::Message { text, error });
    }

    fn command(&mut self, from: Asker, cmd: Command) {
        // Scrolling and typing act on the view of the client that asked.
        let client = from.client;
        match cmd {
            Command::StartCrew => {
                let names: Vec<String> = self
                    .slots
                    .iter()
                    // One the crew file no longer has waits for the operator's word (R), as a new one does.
                    .filter(|s| !s.ran_before && s.running.is_none())
                    .filter(|s| !matches!(s.info.crew_file, CrewFileMark::Left | CrewFileMark::Added))
                    .map(|s| s.spec.name.clone())
                    .collect();
                for name in names {
                    // An agent of a plan waits for what it follows.
                    if self.slot_mut(&name).is_some_and(|s| s.spec.after.is_empty()) {
                        self.start(&name, false);
                    }
                }
                self.crew_started = true;
                self.advance_waves();
            }
            Command::Start { name, resume } => self.start(&name, resume),
            Command::Stop { name } => self.stop(&name, false),
            Command::Restart { name } => {
                let running = self.slot_mut(&name).is_some_and(|s| s.running.as_ref().is_some_and(|r| !r.exited));
                if running {
                    self.stop(&name, true);
                } else {
                    self.start(&name, true);
                }
            }
            Command::Pause { name } => self.pause(&name, true),
            Command::Resume { name } => self.pause(&name, false),
            Command::CheckRemove { name } => {
                if let Some(slot) = self.slots.iter().find(|s| s.spec.name == name) {
                    let status = if slot.spec.worktree {
                        worktree::worktree_status(&self.cfg.root, &name, &slot.info.base).unwrap_or_default()
                    } else {
                        Default::default()
                    };
                    self.sink.reply(from, Event::RemoveCheck { name, status });
                }
            }
            Command::Remove { name, force } => {
                // Said as a message when refused.
                let _ = self.remove(&name, force);
            }
            Command::Rename { name, new_name } => {
                let _ = self.rename(&name, &new_name);
            }
            Command::DuplicateAgent { name, new_name, start } => {
                let _ = self.duplicate_agent(&name, &new_name, start);
            }
            Command::AddAgent { agent: new, start } => {
                let _ = self.add_agent(new, start);
            }
            Command::Key { name, key } => {
                // The operator's Enter at an attached agent's prompt (or into its turn) hands it what they typed: a
                // task. Not an Enter that answers a dialog or a first-run screen.
                if key.code == crate::key::KeyCode::Enter {
                    if let Some(slot) = self.slot_mut(&name) {
                        let task = matches!(slot.detected, AgentState::Idle | AgentState::Busy);
                        if task {
                            slot.task_given();
                        }
                        // A task, or a dialog answered: the turn goes on (where its CLI is slow to show it).
                        if task || slot.detected == AgentState::Waiting {
                            if let Some(r) = slot.running.as_ref() {
                                let _ = r.term.send(TermMsg::Task(Instant::now()));
                            }
                        }
                    }
                }
                self.input(&name, client, |r| input::encode_key(key, r.modes()))
            }
            Command::Paste { name, text } => self.input(&name, client, |r| input::encode_paste(&text, r.modes())),
            Command::Steer { name, text, force } => {
                if let Err(e) = self.steer(&name, text, force, from) {
                    self.message(e.message, true);
                }
            }
            Command::Watch { name, rows, cols, also } => self.watch(client, name, rows, cols, also),
            Command::Scroll { name, lines } => self.with_running(&name, |r| {
                let viewer = client;
                let _ = r.term.send(TermMsg::Scroll { viewer, lines });
            }),
            Command::Search { name, pattern, from: start, older } => self.with_running(&name, |r| {
                let _ = r.term.send(TermMsg::Search { viewer: client, asker: from, pattern, from: start, older });
            }),
            Command::CopyText { name, from: start, to } => self.with_running(&name, |r| {
                let _ = r.term.send(TermMsg::Copy { asker: from, from: start, to });
            }),
            Command::ScrollBottom { name } => self.with_running(&name, |r| {
                let _ = r.term.send(TermMsg::ScrollBottom { viewer: client, typed: false });
            }),
            Command::Wheel { name, up, col, row } => self.with_running(&name, |r| {
                let modes = r.modes();
                if modes.mouse {
                    let _ = r.write(input::encode_wheel(up, col, row, modes));
                } else if modes.alt_screen {
                    // Full-screen programs without mouse reporting scroll with arrow keys, as in xterm.
                    let key =
                        crate::key::Key::new(if up { crate::key::KeyCode::Up } else { crate::key::KeyCode::Down }, 0);
                    let _ = r.write(input::encode_key(key, modes).repeat(3));
                } else {
                    let _ = r.term.send(TermMsg::Scroll { viewer: client, lines: if up { 3 } else { -3 } });
                }
            }),
            Command::Hook { name, token, event, detail, session } => self.hook(&name, &token, event, detail, session),
            Command::Checkpoint { name } => self.job(&name, JobKind::Create { trigger: "key".into() }, false),
            Command::CheckpointDiff { name, n, base } => self.job(&name, JobKind::Diff { n, base, to: from }, false),
            Command::Review { name } => {
                if let Some(base) = self.slots.iter().find(|s| s.spec.name == name).map(|s| s.info.base.clone()) {
                    self.job(&name, JobKind::Review { base, to: from }, false);
                }
            }
            Command::RollbackPreview { name, n, files } => {
                self.job(&name, JobKind::Preview { n, files, to: from }, false)
            }
            Command::Rollback { name, n, files } => self.job(&name, JobKind::Rollback { n, files }, true),
            Command::UndoRollback { name } => self.job(&name, JobKind::Undo, true),
            Command::Merge { name, into_agent, message, skip_gates } => {
                let then = gates::AfterGates::Merge { into_agent, message, reply: None };
                if skip_gates || into_agent || !self.gates_before_merge(&name, then.clone()) {
                    self.merge_now(&name, then);
                }
            }
            Command::CheckMerge { name, into_agent } => {
                let then = gates::AfterGates::Check { into_agent, to: from };
                if into_agent || !self.gates_before_merge(&name, then.clone()) {
                    self.merge_now(&name, then);
                }
            }
            Command::ReadConflict { name, path } => self.conflict(&name, ConflictOp::Read { path, to: from }),
            Command::StageResolved { name, path, content } => self.conflict(&name, ConflictOp::Stage { path, content }),
            Command::TakeSide { name, path, side } => self.conflict(&name, ConflictOp::Take { path, side }),
            Command::FinishMerge { name, message } => self.conflict(&name, ConflictOp::Finish { message }),
            Command::AbortMerge { name } => self.conflict(&name, ConflictOp::Abort),
            Command::MailSend { to, body, reply_to, urgent } => {
                use crate::protocol::mail::MailOp;
                self.operator_mail(MailOp::Send { to, body, reply_to, urgent, ask: false, expires: None })
            }
            Command::MailSeen { ids } => self.mail_seen(ids),
            Command::MailRetry { id, recipient } => {
                self.operator_mail(crate::protocol::mail::MailOp::Retry { id, recipient })
            }
            Command::MailDrop { id, recipient } => {
                self.operator_mail(crate::protocol::mail::MailOp::Drop { id, recipient })
            }
            Command::Composing { name } => {
                let before = match name {
                    Some(n) => self.composing.insert(client, n),
                    None => self.composing.remove(&client),
                };
                if let Some(before) = before {
                    self.pump(&before);
                }
            }
            Command::Gate { op } => self.gate_command(from, op),
            Command::Guard { op } => self.guard_command(from, op),
            Command::ApproveWave { wave } => self.approve_wave(wave),
            Command::Shutdown => {
                // Each running agent is checkpointed, then stopped; asked again, everything stops now.
                let again = std::mem::replace(&mut self.shutting_down, true);
                self.gates_on_shutdown();
                self.queue.stopping.store(true, Ordering::SeqCst);
                let running: Vec<(String, bool)> = self
                    .slots
                    .iter()
                    .map(|s| (s.spec.name.clone(), s.running.as_ref().is_some_and(|r| !r.exited)))
                    .collect();
                for (name, running) in running {
                    let stop = JobKind::Create { trigger: "stop".into() };
                    if again || !running || !self.job_with(&name, stop, false, None, true) {
                        self.stop(&name, false);
                    }
                }
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        let reload = self.crew_reload_at;
        self.kills
            .iter()
            .map(|k| k.at)
            .chain(self.leftovers.iter().map(|l| l.0))
            .chain(self.remeasure_at)
            .chain(reload)
            .chain(self.next_take_timeout())
            .chain(self.next_stall())
            .min()
    }

    /// Stops whose grace ran out, and leftovers of exited agents.
    fn timers(&mut self) {
        let now = Instant::now();
        if self.remeasure_at.is_some_and(|t| t <= now) {
            self.remeasure();
        }
        if self.crew_reload_at.is_some_and(|t| t <= now) {
            self.crew_reload_at = None;
            self.reload_crew();
        }
        self.expire_takes();
        self.stall_check();
        let (due, kept): (Vec<GraceKill>, Vec<GraceKill>) =
            std::mem::take(&mut self.kills).into_iter().partition(|k| k.at <= now);
        self.kills = kept;
        for k in due {
            let running = self.slots.iter().any(|s| {
                s.spec.name == k.name && s.running.as_ref().is_some_and(|r| r.generation == k.generation && !r.exited)
            });
            if running {
                let _ = signals::kill(k.control.as_ref());
                if let Some(t) = k.tree {
                    t.kill_all();
                }
            }
        }
        let (due, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.leftovers).into_iter().partition(|l| l.0 <= now);
        self.leftovers = kept;
        for (_, tree) in due {
            tree.kill_all();
        }
    }

    /// A client's commands: what it watches and where it types decide the sizes of agents' terminals.
    fn request(&mut self, from: Asker, cmd: Command) {
        let client = from.client;
        match cmd {
            Command::Watch { name, rows, cols, also } => self.watch(client, name, rows, cols, also),
            Command::Key { ref name, .. } | Command::Paste { ref name, .. } | Command::Steer { ref name, .. } => {
                let name = name.clone();
                self.size_to(client, &name);
                if let Some(slot) = self.slot_mut(&name) {
                    slot.mail.operator_at = Some(Instant::now());
                }
                self.command(from, cmd);
            }
            cmd => self.command(from, cmd),
        }
    }

    fn save(&mut self) {
        self.unsaved_since = None;
        let crew = self.saved_crew();
        if let Err(e) = store::save(&self.cfg.root, &crew) {
            self.message(format!("saving crew state: {e:#}"), true);
        }
    }

    /// The crew as `.muster/state.json` keeps it, as it is now.
    fn saved_crew(&self) -> SavedCrew {
        SavedCrew {
            version: 1,
            agents: self
                .slots
                .iter()
                .map(|s| SavedAgent {
                    spec: s.spec.clone(),
                    branch: s.info.branch.clone(),
                    base: s.info.base.clone(),
                    worktree: s.info.worktree.clone(),
                    state: s.info.state,
                    exit: s.info.exit,
                    ran: s.ran_before,
                    port_base: s.info.port_base,
                    session: s.session.clone(),
                    run: s.running.as_ref().map_or(0, |r| r.generation),
                    done: s.done,
                })
                .collect(),
            approved: self.approved.iter().copied().collect(),
        }
    }
}

/// End what an agent left running after its first process exited: SIGTERM, a moment to go, then SIGKILL.
#[cfg(test)]
mod tests {
    use super::*;

    /// The engine on the fake PTY: no process, every byte in and out seen by the test.
    #[test]
    fn engine_drives_a_fake_pty() {
        use crate::pty::FakePty;
        use std::time::Duration;
        let repo = crate::git::worktree::tests::temp_repo();
        let text = "[[agent]]\nname='f'\ncommand='fake-agent'\nargs=['--x']\nenter_delay_ms=0\n";
        let crew = crate::config::crew::parse_crew(
            std::path::Path::new("c.toml"),
            text,
            &preset::builtin(),
            &Default::default(),
        )
        .unwrap();
        let cfg = EngineConfig {
            root: repo.path().to_path_buf(),
            crew,
            scrollback: 100,
            muster_exe: "/bin/muster".into(),
            stop_grace: Duration::from_secs(1),
            palette: Default::default(),
            checkpoint_every: Duration::from_secs(300),
        };
        let fake = Arc::new(FakePty::default());
        let (sink, events) = super::super::channel_sink();
        let engine = start(cfg, fake.clone(), sink).unwrap();
        engine.send(Command::Watch { name: Some("f".into()), rows: 10, cols: 40, also: vec![] });
        engine.send(Command::StartCrew);
        let end = Instant::now() + Duration::from_secs(20);
        let wait = |what: &str, pred: &mut dyn FnMut(&Event) -> bool| loop {
            let left = end.saturating_duration_since(Instant::now());
            match events.recv_timeout(left) {
                Ok(e) if pred(&e) => return e,
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for {what}"),
            }
        };
        wait(
            "the agent",
            &mut |e| matches!(e, Event::Agent(i) if i.state == AgentState::Stopped && i.pid.is_none() && !i.branch.is_empty()),
        );
        let wait_child = || loop {
            if let Some(c) = fake.children().into_iter().next() {
                return c;
            }
            assert!(Instant::now() < end, "never spawned");
            std::thread::yield_now();
        };
        let child = wait_child();
        // Spawned in its worktree, with its command line and a clean environment, at the pane's size.
        assert_eq!((child.spec.program.as_str(), child.spec.args.clone()), ("fake-agent", vec!["--x".to_string()]));
        assert!(child.spec.cwd.ends_with(".muster/worktrees/f"));
        assert!(child.spec.env.contains(&("MUSTER_AGENT".into(), "f".into())));
        assert_eq!((child.spec.rows, child.spec.cols), (10, 40));
        // Output reaches the screen; the child turns on application cursor keys and bracketed paste.
        child.output.send(b"hello\x1b[?1h\x1b[?2004h".to_vec()).unwrap();
        wait("the screen", &mut |e| matches!(e, Event::Screen { screen, .. } if screen.row_text(0) == "hello"));
        let input = || child.input.lock().unwrap().clone();
        let until = |want: &[u8]| {
            while !input().windows(want.len()).any(|w| w == want) {
                assert!(Instant::now() < end, "input never held {want:?}: {:?}", String::from_utf8_lossy(&input()));
                std::thread::yield_now();
            }
        };
        engine.send(Command::Key { name: "f".into(), key: crate::key::Key::parse("up").unwrap() });
        until(b"\x1bOA");
        engine.send(Command::Steer { name: "f".into(), text: "two\nlines".into(), force: false });
        until(b"\x1b[200~two\nlines\x1b[201~\r");
        engine.send(Command::Watch { name: Some("f".into()), rows: 20, cols: 60, also: vec![] });
        while *child.size.lock().unwrap() != (20, 60) {
            assert!(Instant::now() < end, "never resized");
            std::thread::yield_now();
        }
        child.exit.send(ExitInfo { code: Some(4), signal: None }).unwrap();
        wait(
            "the exit",
            &mut |e| matches!(e, Event::Agent(i) if i.state == AgentState::Exited && i.exit.and_then(|x| x.code) == Some(4)),
        );
        engine.send(Command::Shutdown);
        wait("shutdown", &mut |e| matches!(e, Event::ShutdownComplete));
    }
}
