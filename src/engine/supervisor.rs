//! The engine loop: commands from the UI and reports from agent threads, one at a time, on its own thread.

use crate::protocol::script::{Answer, ErrorKind, ScriptError, TurnEnd, WaitOutcome};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::agent::{self, Running, SpawnArgs, TermMsg, WriteOp};
use super::checkpoints::{self, ConflictOp, Job, JobDone, JobKind};
use super::detect::{hook_state, HookReport};
use super::store::{self, SavedAgent, SavedCrew};
use super::{hooks, AgentInfo, AgentState, Asker, Command, EngineConfig, EngineHandle, Event, EventSink};
use crate::config::crew::AgentSpec;
use crate::config::preset;
use crate::git::watch::WorktreeWatch;
use crate::git::{diffstat, merge, ports, worktree};
use crate::pty::tree::AgentTree;
use crate::pty::{signals, ExitInfo, PtyBackend, SpawnSpec};
use crate::term::keys;

mod mail;
pub use mail::{muster_command, MAIL_SNAPSHOT};

pub enum EngineMsg {
    /// A client's command (the workbench in this process, a client of the server, or a script with no client).
    Request(super::Request),
    /// A request from the hook socket, with its place in the engine's queue (given back once handled).
    Gated(Box<EngineMsg>, crate::ipc::Ticket),
    /// A branch of the repository moved (a commit on the base outside muster): what merges would bring is
    /// measured again, once the moves settle.
    RefsMoved,
    /// A client of the server went away: it watches nothing and sizes nothing any more.
    ClientGone {
        client: u64,
    },
    Detected {
        name: String,
        generation: u64,
        state: AgentState,
        why: String,
        title: Option<String>,
        last_output_ms: Option<u64>,
    },
    /// `muster send`: a steer from a script, answered on the channel: `sent`, or `error: …`; with `wait`, then
    /// `idle` once the agent went busy and came back, `waiting` if it asks something, `exited` if its run ends.
    Send {
        name: String,
        text: String,
        force: bool,
        wait: bool,
        reply: Sender<Answer>,
    },
    /// A command line's change to an agent (checkpoint, rollback, merge, conflicts), run by the engine so it never
    /// races it on the same worktree; answered with the outcome (`error: …` on failure).
    Run {
        cmd: Command,
        /// What a checkpoint is called (`cli` unless the script says).
        trigger: String,
        reply: Sender<Answer>,
    },
    /// `muster status`: the crew as it is now, as the JSON of `.muster/state.json`.
    Status {
        reply: Sender<Answer>,
    },
    /// `muster wait`: answered `matched`, `ended NAME` (its run ended), `gone NAME` (removed) or `unknown NAME`.
    Wait {
        agents: Vec<String>,
        until: WaitFor,
        timeout: Option<Duration>,
        reply: Sender<Answer>,
    },
    /// `muster explain`: the agent's state and why, answered on the channel.
    Explain {
        name: String,
        reply: Sender<Answer>,
    },
    Exited {
        name: String,
        generation: u64,
        exit: ExitInfo,
    },
    Diffstat {
        name: String,
        stat: diffstat::DiffStat,
    },
    Checkpoints(JobDone),
    /// A delivery's Enter went into the agent (the confirmation clock starts).
    MailEntered {
        name: String,
        generation: u64,
    },
    /// The agent's screen changed after a delivery's Enter: it took the text.
    MailTaken {
        name: String,
        generation: u64,
    },
    /// `muster mail …`: as the agent whose secret it carries (None: the operator); answered with a
    /// `MailAnswer` as JSON.
    Mail {
        who: Option<(String, String)>,
        op: crate::protocol::mail::MailOp,
        reply: Sender<Answer>,
    },
}

/// Environment variables of the parent that would mislead an agent CLI about its terminal.
const STRIPPED_ENV: [&str; 12] = [
    "TMUX",
    "TMUX_PANE",
    "ZELLIJ",
    "ZELLIJ_SESSION_NAME",
    "ZELLIJ_PANE_ID",
    "STY",
    "TERM_PROGRAM",
    "TERM_PROGRAM_VERSION",
    "KITTY_WINDOW_ID",
    "WEZTERM_PANE",
    "COLUMNS",
    "LINES",
];

/// The complete environment of an agent: the parent's, cleaned, plus muster's variables and the crew's.
pub fn child_env(
    parent: impl Iterator<Item = (String, String)>,
    spec: &AgentSpec,
    run_dir: &std::path::Path,
    port_base: u16,
) -> Vec<(String, String)> {
    let inherited = |k: &str| {
        spec.inherit_env.as_ref().is_none_or(|list| {
            list.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => k.starts_with(prefix),
                None => k == p,
            })
        })
    };
    let mut env: BTreeMap<String, String> = parent
        .filter(|(k, _)| !STRIPPED_ENV.contains(&k.as_str()) && !k.starts_with("MUSTER_") && inherited(k))
        .collect();
    env.insert("TERM".into(), "xterm-256color".into());
    env.insert("COLORTERM".into(), "truecolor".into());
    env.insert("MUSTER_AGENT".into(), spec.name.clone());
    env.insert("MUSTER_RUN_DIR".into(), run_dir.to_string_lossy().into_owned());
    env.insert("MUSTER_PORT_BASE".into(), port_base.to_string());
    env.insert("MUSTER_PORT_COUNT".into(), ports::BLOCK.to_string());
    for (k, v) in &spec.env {
        env.insert(k.clone(), v.clone());
    }
    env.into_iter().collect()
}

/// The command line of an agent, with `{muster}`, `{shell}`, `{prompt}` and `{session}` filled in. A resume
/// with the CLI's own session id (from its hooks) continues exactly that conversation.
pub fn command_line(
    spec: &AgentSpec,
    muster_exe: &std::path::Path,
    resume: bool,
    session: Option<&str>,
) -> (String, Vec<String>) {
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
    let fill = |s: &str| s.replace("{muster}", &muster_exe.to_string_lossy()).replace("{shell}", &shell);
    let program = fill(&spec.command);
    let mut args: Vec<String> = spec.args.iter().map(|a| fill(a)).collect();
    if let (true, Some(id), false) = (resume, session, spec.resume_session_args.is_empty()) {
        args.extend(spec.resume_session_args.iter().map(|a| fill(a).replace("{session}", id)));
    } else if resume {
        args.extend(spec.resume_args.iter().map(|a| fill(a)));
    } else if let (Some(prompt), false) = (&spec.prompt, spec.prompt_args.is_empty()) {
        args.extend(spec.prompt_args.iter().map(|a| fill(a).replace("{prompt}", prompt)));
    }
    (program, args)
}

struct Slot {
    spec: AgentSpec,
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
}

impl Slot {
    /// The operator paused it: the tree keeps that, so there is one truth (a job's hold is not a pause).
    fn paused(&self) -> bool {
        self.tree.as_ref().is_some_and(|t| t.is_paused())
    }
}

/// Whether a periodic checkpoint is due: the agent stayed busy for a period and its watcher saw files change (an
/// unchanged tree would make no checkpoint anyway). A period that ran out restarts either way, or the engine
/// would wake at once, again and again, for an agent that changes nothing.
fn periodic_due(
    state: AgentState,
    last: &mut Option<Instant>,
    dirty: impl FnOnce() -> bool,
    every: Duration,
    now: Instant,
) -> bool {
    if state != AgentState::Busy || !last.is_some_and(|t| now.duration_since(t) >= every) {
        return false;
    }
    *last = Some(now);
    dirty()
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
    queue: Arc<checkpoints::Queue>,
    /// Set by a signal: the engine stops the crew before it handles anything else queued.
    stop_asked: Arc<AtomicBool>,
    /// Watches the repository's branches while the engine runs.
    _refs: Option<crate::git::refwatch::RefWatch>,
    /// When to measure diffstats and overlaps again after branches moved (moves within it are one).
    remeasure_at: Option<Instant>,
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
}

/// A stop's second step, on the engine's clock instead of a thread per stop.
struct GraceKill {
    at: Instant,
    name: String,
    generation: u64,
    control: Arc<dyn crate::pty::PtyControl>,
    tree: Option<Arc<AgentTree>>,
}

/// How long what an exited agent left behind has after SIGTERM.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

struct Watcher {
    name: Option<String>,
    rows: u16,
    cols: u16,
}

pub use crate::protocol::script::WaitFor;

/// A script waiting for agents to reach a state, tied to the runs they had when it asked.
struct PendingWait {
    agents: Vec<(String, Option<u64>)>,
    until: WaitFor,
    /// Given up on after this (the script stopped waiting).
    until_time: Option<Instant>,
    reply: Sender<Answer>,
}

/// A script's message that waits for the agent to take it and come back to its prompt.
struct PendingSend {
    name: String,
    /// The run it was sent to: another run is not the one that got it.
    generation: u64,
    /// The agent went busy (or anything but idle) after the message.
    left_idle: bool,
    reply: Sender<Answer>,
}

/// How long after a branch moves its diffstats and overlaps are measured again.
const REMEASURE_AFTER: Duration = Duration::from_millis(300);

/// How soon a change of an agent's state reaches `.muster/state.json`.
const SAVE_AFTER: Duration = Duration::from_secs(1);

/// Start the engine on its own thread.
pub fn start(cfg: EngineConfig, backend: Arc<dyn PtyBackend>, sink: EventSink) -> Result<EngineHandle> {
    let (tx, rx) = mpsc::channel();
    let run_dir = hooks::run_dir(&cfg.root)?;
    // One muster per repository: a second would show the first one's agents as stopped and start them again.
    let instance = crate::ipc::Instance::acquire(&run_dir, &cfg.root)?;
    clean_stale_git_files(&cfg.root, &sink);
    let listening = hooks::listen(&run_dir, tx.clone())
        // Hooks are one layer of state detection; screen rules still work without them.
        .inspect_err(|e| tracing::warn!("hook socket unavailable: {e:#}"))
        .ok();
    let diff_tx = spawn_diff_worker(tx.clone());
    let queue = Arc::new(checkpoints::Queue::default());
    let jobs = checkpoints::spawn_worker(tx.clone(), sink.clone(), queue.clone());
    let stop_asked = Arc::new(AtomicBool::new(false));
    let overlap_tx = spawn_overlap_worker(sink.clone());
    let moved = tx.clone();
    let refs = crate::git::refwatch::watch(&cfg.root, move || {
        let _ = moved.send(EngineMsg::RefsMoved);
    })
    // Without it, merges made through muster still measure again.
    .inspect_err(|e| tracing::warn!("watching the repository's branches: {e:#}"))
    .ok();
    let (saved, load_errors) = store::load_or_set_aside(&cfg.root);
    for e in load_errors {
        tracing::warn!("saved state: {e}");
        sink.event(Event::Message { text: format!("saved state: {e}"), error: true });
    }
    let presets = preset::builtin();
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
    };
    sup.load_slots(saved);
    sup.open_mailbox();
    // What a muster that died (kill -9) saved says its agents still run: from now on the file speaks for this one.
    sup.save();
    std::thread::Builder::new().name("engine".into()).spawn(move || sup.run(rx)).context("starting the engine")?;
    Ok(EngineHandle::local(tx, stop_asked))
}

/// What a muster killed mid-write left in the git folder (a ref lock would stop an agent's checkpoints for
/// good): removed now that this engine holds the repository's lock, with a log line; one a live process holds is
/// reported.
fn clean_stale_git_files(root: &std::path::Path, sink: &EventSink) {
    match crate::git::stale::clean(root, std::time::SystemTime::now()) {
        Ok(cleaned) => {
            for path in cleaned.removed {
                tracing::info!("removed {}, left by a muster that was killed", path.display());
            }
            for (path, pid) in cleaned.held {
                let text = format!(
                    "{} is held by process {pid} (a git still running?): checkpoints it locks fail until it ends",
                    path.display()
                );
                tracing::warn!("{text}");
                sink.event(Event::Message { text, error: true });
            }
        }
        Err(e) => tracing::warn!("looking for stale git locks: {e:#}"),
    }
}

/// Overlap passes: requests that pile up while one runs are folded into the next (only the newest matters).
fn spawn_overlap_worker(sink: EventSink) -> Sender<(PathBuf, Vec<(String, String)>)> {
    let (tx, rx) = mpsc::channel::<(PathBuf, Vec<(String, String)>)>();
    let _ = std::thread::Builder::new().name("overlaps".into()).spawn(move || {
        while let Ok(mut req) = rx.recv() {
            while let Ok(newer) = rx.try_recv() {
                req = newer;
            }
            match crate::git::overlap::check(&req.0, &req.1) {
                Ok(report) => sink.event(Event::Overlaps(report)),
                Err(e) => tracing::warn!("overlap check: {e:#}"),
            }
        }
    });
    tx
}

/// At most this often a busy agent's diffstat is taken again while its files change.
const DIFFSTAT_EVERY: Duration = Duration::from_secs(2);
/// The share of one core the whole crew's diffstats may take: after a diffstat that took `d`, the next waits
/// `d × (1 / share − 1)`, so many agents in a large repository cannot add up to a busy core.
const DIFFSTAT_SHARE: f64 = 0.1;

/// A diffstat to take: the worktree, its base, and its watcher (armed first, so that the figure holds until the
/// watcher sees a change).
struct DiffJob {
    path: PathBuf,
    base: String,
    watch: Option<Arc<WorktreeWatch>>,
}

fn spawn_diff_worker(engine: Sender<EngineMsg>) -> Sender<(String, DiffJob)> {
    let (tx, rx) = mpsc::channel::<(String, DiffJob)>();
    let _ = std::thread::Builder::new().name("diffstat".into()).spawn(move || {
        let mut rest_until: Option<Instant> = None;
        while let Ok(first) = rx.recv() {
            if let Some(t) = rest_until.take() {
                // Requests that arrive meanwhile are coalesced below.
                std::thread::sleep(t.saturating_duration_since(Instant::now()));
            }
            // Coalesce a burst of requests into one pass per agent.
            let mut batch: BTreeMap<String, DiffJob> = BTreeMap::new();
            batch.insert(first.0, first.1);
            while let Ok((n, job)) = rx.try_recv() {
                batch.insert(n, job);
            }
            let started = Instant::now();
            for (name, job) in batch {
                if let Some(w) = &job.watch {
                    w.arm();
                }
                if let Ok(stat) = diffstat::diffstat(&job.path, &job.base) {
                    if engine.send(EngineMsg::Diffstat { name, stat }).is_err() {
                        return;
                    }
                }
            }
            let took = started.elapsed();
            let rest = took.mul_f64(1.0 / DIFFSTAT_SHARE - 1.0).min(Duration::from_secs(10));
            rest_until = Some(Instant::now() + rest);
        }
    });
    tx
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
                self.slots.push(self.new_slot(a.spec.clone(), Some(a)));
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

    /// Processes an earlier muster of this crew left when it died (kill -9): their terminal is gone, and
    /// starting the agent again would run it twice in one worktree. Checkpointed first, then ended.
    fn end_leftovers(&mut self) {
        for (name, pids) in crate::pty::tree::orphans(&self.run_dir) {
            // Here, not as a job: the line that says what happened names the checkpoint too.
            let checkpoint = match self.slots.iter().find(|s| s.spec.name == name).and_then(|s| self.worktree_of(s)) {
                Some(wt) => {
                    match crate::git::checkpoint::create(&wt, &name, "before ending an earlier run's processes") {
                        Ok((cp, _)) => format!("; checkpoint {} holds its files", cp.n),
                        Err(e) => format!("; the checkpoint before failed: {e:#}"),
                    }
                }
                None => String::new(),
            };
            crate::pty::tree::end_orphans(&pids);
            self.message(
                format!(
                    "{name}: ended {} process(es) an earlier muster left running ({pids:?}){checkpoint}",
                    pids.len()
                ),
                false,
            );
        }
    }

    fn new_slot(&self, spec: AgentSpec, previous: Option<&SavedAgent>) -> Slot {
        let root = &self.cfg.root;
        let info = AgentInfo {
            name: spec.name.clone(),
            kind: spec.kind.clone(),
            branch: previous.map(|p| p.branch.clone()).unwrap_or_else(|| {
                if spec.worktree {
                    worktree::branch_name(&spec.name)
                } else {
                    String::new()
                }
            }),
            base: previous.map(|p| p.base.clone()).or_else(|| spec.base.clone()).unwrap_or_default(),
            worktree: previous.map(|p| p.worktree.clone()).unwrap_or_else(|| {
                if spec.worktree {
                    worktree::worktree_path(root, &spec.name)
                } else {
                    root.clone()
                }
            }),
            state: if previous.is_some_and(|p| p.ran) { AgentState::Stopped } else { AgentState::Starting },
            exit: previous.and_then(|p| p.exit),
            last_output_ms: None,
            title: None,
            port_base: previous.map(|p| p.port_base).unwrap_or(0),
            pid: None,
            diffstat: Default::default(),
            error: None,
            checkpoints: 0,
            rolled_back: false,
            why: String::new(),
            mail: Default::default(),
        };
        Slot {
            prompt_pending: spec.prompt.is_some() && spec.prompt_args.is_empty(),
            spec,
            info,
            running: None,
            ran_before: previous.is_some_and(|p| p.ran),
            stopping: false,
            restart_after_exit: false,
            last_diff_request: None,
            last_periodic: None,
            files: None,
            diffed_at_change: None,
            tree: None,
            detected: AgentState::Starting,
            session: previous.and_then(|p| p.session.clone()),
            token: String::new(),
            size: self.size,
            sized_by: None,
            watched: false,
            mail: Default::default(),
        }
    }

    /// When the next periodic checkpoint of a busy agent is due.
    fn next_periodic(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|s| s.info.state == AgentState::Busy)
            .filter_map(|s| s.last_periodic.map(|t| t + self.cfg.checkpoint_every))
            .min()
    }

    fn periodic_checkpoints(&mut self) {
        let every = self.cfg.checkpoint_every;
        let now = Instant::now();
        let mut due = Vec::new();
        for slot in &mut self.slots {
            let dirty = || slot.files.as_ref().is_none_or(|w| w.is_dirty());
            if periodic_due(slot.info.state, &mut slot.last_periodic, dirty, every, now) {
                due.push(slot.spec.name.clone());
            }
        }
        for name in due {
            self.job(&name, JobKind::Create { trigger: "periodic".into() }, true);
        }
    }

    /// Queue a checkpoint job; `pause` freezes a running agent while it runs (jobs that write its files).
    /// Checkpoints never stop the agent: they read optimistically and read again what changed meanwhile.
    fn job(&self, name: &str, kind: JobKind, pause: bool) {
        self.job_with(name, kind, pause, None, false);
    }

    /// Queue a job for an agent's worktree; whether it was queued (not when the worktree is missing, which
    /// `reply` is told).
    fn job_with(
        &self,
        name: &str,
        kind: JobKind,
        pause: bool,
        reply: Option<Sender<Answer>>,
        stop_after: bool,
    ) -> bool {
        let Some(slot) = self.slots.iter().find(|s| s.spec.name == name) else {
            if let Some(r) = reply {
                let _ = r.send(Answer::error(ErrorKind::Unknown, format!("no agent `{name}` in this crew")));
            }
            return false;
        };
        if self.worktree_of(slot).is_none() {
            let text = format!("{name}: no worktree at {}", slot.info.worktree.display());
            if let Some(r) = reply {
                let _ = r.send(Answer::error(ErrorKind::Refused, text.clone()));
            }
            if !matches!(kind, JobKind::List) {
                self.message(text, true);
            }
            return false;
        }
        if !stop_after && self.queue.queued.load(Ordering::SeqCst) >= checkpoints::MAX_QUEUED {
            let text = format!("{name}: not done: {} checkpoint jobs are waiting already", checkpoints::MAX_QUEUED);
            match reply {
                Some(r) => {
                    let _ = r.send(Answer::error(ErrorKind::Refused, text.clone()));
                }
                // Said once while the queue is full, not once per refused job.
                None if !self.queue_full_said.replace(true) => {
                    self.message(text, true);
                }
                None => {}
            }
            return false;
        }
        let tree = slot.running.as_ref().filter(|r| !r.exited).and(slot.tree.clone());
        let job = Job {
            name: name.to_string(),
            worktree: slot.info.worktree.clone(),
            pause: if pause { tree.clone() } else { None },
            agent: tree,
            files: slot.files.clone(),
            kind,
            reply,
            stop_after,
        };
        // Counted before it goes: the worker may finish it before this thread runs again.
        self.queue.queued.fetch_add(1, Ordering::SeqCst);
        let queued = self.jobs.send(job).is_ok();
        if !queued {
            self.queue.queued.fetch_sub(1, Ordering::SeqCst);
        }
        queued
    }

    fn conflict(&self, name: &str, op: ConflictOp) {
        self.conflict_with(name, op, None);
    }

    fn conflict_with(&self, name: &str, op: ConflictOp, reply: Option<Sender<Answer>>) -> bool {
        // A merge into the agent runs in its worktree: writes there hold the agent still; reads need nothing.
        let in_agent =
            self.slots.iter().find(|s| s.spec.name == name).is_some_and(|s| merge::in_progress(&s.info.worktree));
        let pause = in_agent && !matches!(op, ConflictOp::Read { .. });
        self.job_with(name, JobKind::Conflict { root: self.cfg.root.clone(), op }, pause, reply, false)
    }

    /// Compare every pair of agents' work, off this thread; at most one pass runs at a time.
    fn request_overlaps(&mut self) {
        let agents: Vec<(String, String)> = self
            .slots
            .iter()
            .filter(|s| s.spec.worktree && !s.info.base.is_empty())
            .map(|s| (s.spec.name.clone(), s.info.base.clone()))
            .collect();
        if agents.len() < 2 {
            // Nobody to overlap with: a report from before (naming a removed agent) must not stand.
            self.sink.event(Event::Overlaps(Default::default()));
            return;
        }
        let _ = self.overlap_tx.send((self.cfg.root.clone(), agents));
    }

    fn checkpoints_done(&mut self, done: JobDone) {
        if self.queue.queued.load(Ordering::SeqCst) < checkpoints::MAX_QUEUED {
            self.queue_full_said.set(false);
        }
        if done.stop_after {
            self.stop(&done.name, false);
        }
        if let Some((text, error)) = &done.message {
            self.message(text.clone(), *error);
        }
        if done.branches_moved {
            // The base may have moved under every agent: what each would merge is measured again.
            self.remeasure();
        }
        let Some(checkpoints) = done.checkpoints else { return };
        let name = done.name;
        let Some(slot) = self.slot_mut(&name) else { return };
        slot.info.checkpoints = checkpoints.len();
        if let Some(r) = done.rolled_back {
            slot.info.rolled_back = r;
        }
        self.emit(&name);
        self.sink.event(Event::Timeline { name: name.clone(), checkpoints });
        if done.rolled_back.is_some() {
            self.request_diffstat(&name, true);
        }
        self.request_overlaps();
    }

    fn handle(&mut self, msg: EngineMsg) {
        match msg {
            EngineMsg::Gated(msg, ticket) => {
                self.handle(*msg);
                drop(ticket);
            }
            EngineMsg::Checkpoints(done) => self.checkpoints_done(done),
            EngineMsg::Request(super::Request { from, command, permit }) => {
                self.request(from, command);
                drop(permit);
            }
            EngineMsg::RefsMoved => {
                // A commit writes several files; what follows within the pause is the same move.
                self.remeasure_at.get_or_insert(Instant::now() + REMEASURE_AFTER);
            }
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
            EngineMsg::Detected { name, generation, state, why, title, last_output_ms } => {
                self.detected(&name, generation, state, why, title, last_output_ms)
            }
            EngineMsg::Explain { name, reply } => {
                let _ = reply.send(Answer::Explained { text: self.explain(&name) });
            }
            EngineMsg::Run { cmd, trigger, reply } => self.run_for_script(cmd, trigger, reply),
            EngineMsg::Status { reply } => {
                let crew = serde_json::to_value(self.saved_crew()).unwrap_or_default();
                let _ = reply.send(Answer::Status { crew });
            }
            EngineMsg::Wait { agents, until, timeout, reply } => {
                let mut runs = Vec::new();
                for name in agents {
                    let Some(slot) = self.slots.iter().find(|s| s.spec.name == name) else {
                        let _ =
                            reply.send(Answer::error(ErrorKind::Unknown, format!("no agent `{name}` in this crew")));
                        runs.clear();
                        break;
                    };
                    let run = slot.running.as_ref().filter(|r| !r.exited).map(|r| r.generation);
                    runs.push((name, run));
                }
                if !runs.is_empty() {
                    let until_time = timeout.map(|t| Instant::now() + t);
                    self.waits.push(PendingWait { agents: runs, until, until_time, reply });
                }
            }
            EngineMsg::Send { name, text, force, wait, reply } => match self.steer(&name, text, force, Asker::NOBODY) {
                Ok(()) => {
                    let _ = reply.send(Answer::Sent {});
                    let generation = self.slot_mut(&name).and_then(|s| s.running.as_ref()).map(|r| r.generation);
                    if let (true, Some(generation)) = (wait, generation) {
                        self.sends.push(PendingSend { name, generation, left_idle: false, reply });
                    }
                }
                Err(e) => {
                    let _ = reply.send(Answer::Error(e));
                }
            },
            EngineMsg::Exited { name, generation, exit } => self.exited(&name, generation, exit),
            EngineMsg::Mail { who, op, reply } => self.mail_request(who, op, reply),
            EngineMsg::MailEntered { name, generation } => self.mail_entered(&name, generation),
            EngineMsg::MailTaken { name, generation } => self.mail_taken(&name, generation),
            EngineMsg::Diffstat { name, stat } => {
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
            let wake = [self.next_periodic(), save_at, forget_wait, self.next_mail_wake(), self.next_timer()]
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
                    .filter(|s| !s.ran_before && s.running.is_none())
                    .map(|s| s.spec.name.clone())
                    .collect();
                for name in names {
                    self.start(&name, false);
                }
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
            Command::Remove { name, force } => self.remove(&name, force),
            Command::Key { name, key } => self.input(&name, client, |r| keys::encode_key(key, r.modes())),
            Command::Paste { name, text } => self.input(&name, client, |r| keys::encode_paste(&text, r.modes())),
            Command::Steer { name, text, force } => {
                if let Err(e) = self.steer(&name, text, force, from) {
                    self.message(e.message, true);
                }
            }
            Command::Watch { name, rows, cols } => self.watch(client, name, rows, cols),
            Command::Scroll { name, lines } => self.with_running(&name, |r| {
                let viewer = client;
                let _ = r.term.send(TermMsg::Scroll { viewer, lines });
            }),
            Command::ScrollBottom { name } => self.with_running(&name, |r| {
                let _ = r.term.send(TermMsg::ScrollBottom { viewer: client, typed: false });
            }),
            Command::Wheel { name, up, col, row } => self.with_running(&name, |r| {
                let modes = r.modes();
                if modes.mouse {
                    let _ = r.write(keys::encode_wheel(up, col, row, modes));
                } else if modes.alt_screen {
                    // Full-screen programs without mouse reporting scroll with arrow keys, as in xterm.
                    let key =
                        crate::key::Key::new(if up { crate::key::KeyCode::Up } else { crate::key::KeyCode::Down }, 0);
                    let _ = r.write(keys::encode_key(key, modes).repeat(3));
                } else {
                    let _ = r.term.send(TermMsg::Scroll { viewer: client, lines: if up { 3 } else { -3 } });
                }
            }),
            Command::Hook { name, token, event, detail, session } => self.hook(&name, &token, event, detail, session),
            Command::Checkpoint { name } => self.job(&name, JobKind::Create { trigger: "key".into() }, false),
            Command::CheckpointDiff { name, n, base } => self.job(&name, JobKind::Diff { n, base, to: from }, false),
            Command::RollbackPreview { name, n, files } => {
                self.job(&name, JobKind::Preview { n, files, to: from }, false)
            }
            Command::Rollback { name, n, files } => self.job(&name, JobKind::Rollback { n, files }, true),
            Command::UndoRollback { name } => self.job(&name, JobKind::Undo, true),
            Command::Merge { name, into_agent, message } => {
                let base =
                    self.slots.iter().find(|s| s.spec.name == name).map(|s| s.info.base.clone()).unwrap_or_default();
                // Merging into the agent writes its files: it is frozen meanwhile. Into the base, it runs on.
                self.job(&name, JobKind::Merge { root: self.cfg.root.clone(), base, into_agent, message }, into_agent);
            }
            Command::CheckMerge { name, into_agent } => {
                let base = self.slots.iter().find(|s| s.spec.name == name).map(|s| s.info.base.clone());
                let root = self.cfg.root.clone();
                self.job(
                    &name,
                    JobKind::MergeCheck { root, base: base.unwrap_or_default(), into_agent, to: from },
                    false,
                );
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
            Command::Shutdown => {
                // Each running agent is checkpointed, then stopped; asked again, everything stops now.
                let again = std::mem::replace(&mut self.shutting_down, true);
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

    /// Keys and pastes from the operator: to the bottom of the agent's screen, and into its input queue.
    fn input(&mut self, name: &str, viewer: u64, bytes: impl FnOnce(&Running) -> Vec<u8>) {
        let mut failed = None;
        self.with_running(name, |r| {
            let _ = r.term.send(TermMsg::ScrollBottom { viewer, typed: true });
            failed = r.write(bytes(r)).err();
        });
        if let Some(e) = failed {
            self.message(format!("{name}: {e}"), true);
        }
    }

    fn hook(&mut self, name: &str, token: &str, event: String, detail: Option<String>, session: Option<String>) {
        let Some(slot) = self.slot_mut(name) else { return };
        if slot.token.is_empty() || slot.token != token {
            crate::warn_limited!(
                "hook secret",
                "hook {event} for {name} with a wrong secret: ignored (another agent reporting as {name}?)"
            );
            return;
        }
        if session.is_some() && slot.session != session {
            slot.session = session;
            self.save();
        }
        if let Some(state) = hook_state(&event, detail.as_deref()) {
            let report = HookReport { state, event, at: Instant::now() };
            self.with_running(name, |r| {
                let _ = r.term.send(TermMsg::Hook(report));
            });
        }
    }

    fn explain(&self, name: &str) -> String {
        let Some(slot) = self.slots.iter().find(|s| s.spec.name == name) else {
            return format!("no agent named {name}");
        };
        let i = &slot.info;
        let why = match (&i.error, i.why.is_empty()) {
            (Some(e), _) if i.state == AgentState::Error => e.as_str(),
            (_, true) => "no decision yet",
            _ => &i.why,
        };
        let mut out = format!("{name}: {} — {why}\n", i.state.label());
        if slot.paused() {
            out.push_str(&format!("paused by the operator (detected before: {})\n", slot.detected.label()));
        }
        if let Some(t) = &slot.tree {
            out.push_str(&format!("processes: {:?}, pause by {}\n", t.pids(), t.method().describe()));
        }
        if let Some(s) = &slot.session {
            out.push_str(&format!("CLI session: {s}\n"));
        }
        out
    }

    fn with_running(&mut self, name: &str, f: impl FnOnce(&Running)) {
        if let Some(r) = self.slot_mut(name).and_then(|s| s.running.as_ref()).filter(|r| !r.exited) {
            f(r);
        }
    }

    fn start(&mut self, name: &str, resume: bool) {
        if self.shutting_down {
            return;
        }
        let Some(idx) = self.slots.iter().position(|s| s.spec.name == name) else {
            return;
        };
        if self.slots[idx].running.as_ref().is_some_and(|r| !r.exited) {
            return;
        }
        match self.launch(idx, resume) {
            Ok(()) => {}
            Err(e) => {
                let slot = &mut self.slots[idx];
                slot.info.state = AgentState::Error;
                slot.info.error = Some(format!("{e:#}"));
                self.emit(name);
                self.message(format!("{name}: {e:#}"), true);
            }
        }
        self.save();
    }

    fn launch(&mut self, idx: usize, resume: bool) -> Result<()> {
        let root = self.cfg.root.clone();
        let spec = self.slots[idx].spec.clone();
        if let Some(p) = self.presets.get(&spec.kind).filter(|p| !p.ignore.is_empty()) {
            worktree::exclude(&root, &p.ignore)?;
        }
        let (cwd, branch, base) = if spec.worktree {
            let wt = worktree::ensure_worktree(&root, &spec.name, spec.base.as_deref())?;
            (wt.path, wt.branch, wt.base)
        } else {
            (root.clone(), String::new(), spec.base.clone().unwrap_or(worktree::current_branch(&root)?))
        };
        let taken: Vec<u16> =
            self.slots.iter().enumerate().filter(|(i, _)| *i != idx).map(|(_, s)| s.info.port_base).collect();
        let port_base = match self.slots[idx].info.port_base {
            0 => ports::port_base(&spec.name, &taken),
            p => p,
        };
        if spec.worktree {
            if let Err(e) = write_ports_env(&cwd, port_base) {
                // The ports are in the agent's environment too: this file is a convenience, never worth a write
                // outside the worktree.
                self.message(format!("{}: no .muster/ports.env: {e:#}", spec.name), true);
            }
        }
        let session = self.slots[idx].session.clone();
        let (program, mut args) =
            command_line(&self.with_note(&spec), &self.cfg.muster_exe, resume, session.as_deref());
        // The mailbox note, in the CLI's system prompt where it has an option for one.
        if let Some(p) = self.presets.get(&spec.kind).filter(|p| !p.note_args.is_empty()) {
            let note = crate::mailbox::agent_note(&spec.name, &muster_command(&self.cfg.muster_exe));
            args.extend(p.note_args.iter().map(|a| a.replace("{note}", &note)));
        }
        let tree = Arc::new(AgentTree::new());
        let token = hooks::new_token();
        let mut env = child_env(std::env::vars(), &spec, &self.run_dir, port_base);
        env.push(tree.mark());
        env.push(("MUSTER_AGENT_TOKEN".into(), token.clone()));
        // Hooks for this session only, so neither the worktree (nor Claude's trust dialog) nor the user's
        // configuration changes.
        match spec.hooks.as_deref() {
            Some("claude") => {
                args.splice(0..0, ["--settings".to_string(), hooks::claude_settings(&self.cfg.muster_exe)]);
            }
            Some("codex") => {
                args.splice(0..0, hooks::codex_notify(&self.cfg.muster_exe));
            }
            Some("gemini") => {
                let system = hooks::gemini_system_settings_path(&env);
                let dir =
                    crate::config::paths::state_dir().join("gemini").join(self.run_dir.file_name().unwrap_or_default());
                match hooks::gemini_system_settings(&dir, &spec.name, &self.cfg.muster_exe, Some(&system)) {
                    Ok(path) => {
                        env.retain(|(k, _)| k != "GEMINI_CLI_SYSTEM_SETTINGS_PATH");
                        env.push(("GEMINI_CLI_SYSTEM_SETTINGS_PATH".into(), path.to_string_lossy().into_owned()));
                    }
                    Err(e) => tracing::info!("{}: no Gemini hooks: {e:#}", spec.name),
                }
            }
            Some("opencode") if !env.iter().any(|(k, _)| k == "OPENCODE_CONFIG_DIR") => {
                match hooks::opencode_config_dir(&self.run_dir, &self.cfg.muster_exe) {
                    Ok(dir) => env.push(("OPENCODE_CONFIG_DIR".into(), dir.to_string_lossy().into_owned())),
                    Err(e) => tracing::warn!("{}: no opencode plugin: {e:#}", spec.name),
                }
            }
            _ => {}
        }
        self.generation += 1;
        let spawn_spec = SpawnSpec { program, args, cwd: cwd.clone(), env, rows: self.size.0, cols: self.size.1 };
        let running = agent::spawn(
            self.backend.as_ref(),
            SpawnArgs {
                name: spec.name.clone(),
                generation: self.generation,
                spec: spawn_spec,
                scrollback: self.cfg.scrollback,
                rules: self.presets.get(&spec.kind).map(|p| p.rules.clone()).unwrap_or_default(),
                version_regex: self.presets.get(&spec.kind).and_then(|p| p.version_regex.clone()),
                watched: self.watchers.values().any(|w| w.name.as_deref() == Some(spec.name.as_str())),
                palette: self.cfg.palette,
                foreground_busy: self.presets.get(&spec.kind).is_some_and(|p| p.foreground_busy),
            },
            self.tx.clone(),
            self.sink.clone(),
        )?;
        if let Some(pid) = running.control.pid() {
            tree.adopt(pid);
        }
        let watched = self.watchers.values().any(|w| w.name.as_deref() == Some(spec.name.as_str()));
        let slot = &mut self.slots[idx];
        slot.size = self.size;
        slot.sized_by = self.size_from;
        slot.watched = watched;
        slot.tree = Some(tree);
        slot.token = token;
        slot.detected = AgentState::Starting;
        slot.running = Some(running);
        slot.ran_before = true;
        slot.stopping = false;
        slot.info.state = AgentState::Starting;
        slot.info.exit = None;
        slot.info.error = None;
        slot.info.branch = branch;
        slot.info.base = base;
        if slot.files.as_ref().is_none_or(|w| w.root() != cwd) {
            slot.files = WorktreeWatch::new(&cwd)
                .inspect_err(|e| tracing::warn!("{}: no file watcher, checkpoints scan every file: {e:#}", spec.name))
                .ok();
        }
        slot.info.worktree = cwd;
        slot.info.port_base = port_base;
        slot.info.pid = slot.running.as_ref().and_then(|r| r.control.pid());
        self.emit(&spec.name);
        self.request_diffstat(&spec.name, true);
        self.mail_on_start(&spec.name);
        Ok(())
    }

    /// The spec with the mailbox note before its first prompt, for CLIs without a system-prompt option.
    fn with_note(&self, spec: &AgentSpec) -> AgentSpec {
        let mut spec = spec.clone();
        let system_prompt = self.presets.get(&spec.kind).is_some_and(|p| !p.note_args.is_empty());
        if let (Some(p), false) = (&spec.prompt, system_prompt) {
            let note = crate::mailbox::agent_note(&spec.name, &muster_command(&self.cfg.muster_exe));
            spec.prompt = Some(format!("{note}\n\n{p}"));
        }
        spec
    }

    fn stop(&mut self, name: &str, restart: bool) {
        let grace = self.cfg.stop_grace;
        let Some(slot) = self.slot_mut(name) else {
            return;
        };
        let Some(running) = slot.running.as_mut().filter(|r| !r.exited) else {
            if restart {
                self.start(name, true);
            }
            return;
        };
        slot.stopping = true;
        slot.restart_after_exit = restart;
        let tree = slot.tree.clone();
        // A frozen process would not act on SIGTERM.
        if let Some(t) = &tree {
            let _ = t.set_paused(false);
        }
        let _ = signals::terminate(running.control.as_ref());
        // After the grace period a child that ignored SIGTERM is killed, with everything it started.
        let kill = GraceKill {
            at: Instant::now() + grace,
            name: name.to_string(),
            generation: running.generation,
            control: running.control.clone(),
            tree,
        };
        self.kills.retain(|k| k.name != name);
        self.kills.push(kill);
    }

    fn next_timer(&self) -> Option<Instant> {
        self.kills.iter().map(|k| k.at).chain(self.leftovers.iter().map(|l| l.0)).chain(self.remeasure_at).min()
    }

    /// Every agent's diffstat and the overlaps, taken again: the branches their merges are measured on moved.
    fn remeasure(&mut self) {
        self.remeasure_at = None;
        let names: Vec<String> = self.slots.iter().map(|s| s.spec.name.clone()).collect();
        for name in names {
            self.request_diffstat(&name, true);
        }
        self.request_overlaps();
    }

    /// Stops whose grace ran out, and leftovers of exited agents.
    fn timers(&mut self) {
        let now = Instant::now();
        if self.remeasure_at.is_some_and(|t| t <= now) {
            self.remeasure();
        }
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

    fn pause(&mut self, name: &str, pause: bool) {
        let Some(slot) = self.slot_mut(name) else {
            return;
        };
        let (Some(running), Some(tree)) = (slot.running.as_ref().filter(|r| !r.exited), slot.tree.as_ref()) else {
            return;
        };
        // Sticky: a checkpoint or rollback that holds the agent meanwhile leaves this pause as it is.
        match tree.set_paused(pause) {
            Ok(()) => {
                slot.info.state = if pause { AgentState::Paused } else { slot.detected };
                if !pause {
                    // Its screen decides again: an agent that prints nothing after a resume is not busy.
                    let _ = running.term.send(TermMsg::Redetect);
                }
                self.emit(name);
            }
            Err(e) => {
                self.message(format!("{name}: could not {} it: {e}", if pause { "pause" } else { "resume" }), true)
            }
        }
    }

    fn remove(&mut self, name: &str, force: bool) {
        let Some(idx) = self.slots.iter().position(|s| s.spec.name == name) else {
            return;
        };
        if let Some(r) = self.slots[idx].running.as_ref().filter(|r| !r.exited) {
            let _ = signals::kill(r.control.as_ref());
        }
        if let Some(t) = &self.slots[idx].tree {
            t.kill_all();
        }
        let slot = &self.slots[idx];
        if slot.spec.worktree && self.worktree_of(slot).is_some() {
            // The refs outlive the worktree: what it held can still be restored from the checkpoint.
            let before_remove =
                |c: &_| crate::git::checkpoint::create_with(&slot.info.worktree, name, "before remove", c);
            if let Err(e) = WorktreeWatch::checkpoint(slot.files.as_deref(), before_remove) {
                self.message(format!("{name}: not removed, the checkpoint before removal failed: {e:#}"), true);
                return;
            }
        }
        if slot.spec.worktree {
            if let Err(e) = worktree::remove_worktree(&self.cfg.root, name, &slot.info.base, force) {
                self.message(format!("{name}: {e:#}"), true);
                return;
            }
        }
        self.slots.remove(idx);
        self.sink.event(Event::Removed { name: name.to_string() });
        self.request_overlaps();
        self.mail_on_remove(name);
        self.message(format!("removed {name}"), false);
        self.save();
    }

    /// Steer messages go through the agent's input queue, so two in a row arrive whole and in order.
    /// Type a message into the agent (through its input queue, so two in a row arrive whole and in order).
    /// A client's steer brings its own view of the agent to the bottom; a script's (`Asker::NOBODY`) moves nobody's.
    fn steer(&mut self, name: &str, text: String, force: bool, from: Asker) -> Result<(), ScriptError> {
        let err = |kind, message: String| ScriptError { kind, message };
        crate::protocol::mail::check_body(&text).map_err(|e| err(ErrorKind::Refused, e))?;
        let slot = self.slot_mut(name).ok_or_else(|| err(ErrorKind::Unknown, format!("no agent named {name}")))?;
        let enter_delay = Duration::from_millis(slot.spec.enter_delay_ms);
        let waiting = slot.info.state == AgentState::Waiting;
        let r = slot
            .running
            .as_ref()
            .filter(|r| !r.exited)
            .ok_or_else(|| err(ErrorKind::NotRunning, format!("{name} is not running: message not sent")))?;
        if waiting && !force {
            // Typed into a permission or trust dialog, a message answers it.
            let why = format!("{name} is showing a dialog: message not sent (confirm to send anyway)");
            return Err(err(ErrorKind::Refused, why));
        }
        if from != Asker::NOBODY {
            let _ = r.term.send(TermMsg::ScrollBottom { viewer: from.client, typed: true });
        }
        r.writer
            .send(WriteOp::Steer { text, enter_delay, confirm: false })
            .map_err(|e| err(ErrorKind::NotRunning, format!("{name}: message not sent: {e}")))
    }

    /// Answer the `send --wait` requests this state change settles.
    fn settle_sends(&mut self, name: &str, generation: u64, state: Option<AgentState>) {
        self.sends.retain_mut(|p| {
            if p.name != name {
                return true;
            }
            let answer = match state {
                _ if p.generation != generation => Some(TurnEnd::Exited),
                None => Some(TurnEnd::Exited),
                Some(AgentState::Waiting) => Some(TurnEnd::Waiting),
                Some(AgentState::Idle) if p.left_idle => Some(TurnEnd::Idle),
                Some(AgentState::Idle) => None,
                Some(s) if !s.is_running() => Some(TurnEnd::Exited),
                Some(_) => {
                    p.left_idle = true;
                    None
                }
            };
            match answer {
                Some(end) => {
                    let _ = p.reply.send(Answer::Turn { end });
                    false
                }
                None => true,
            }
        });
    }

    /// A client's commands: what it watches and where it types decide the sizes of agents' terminals.
    fn request(&mut self, from: Asker, cmd: Command) {
        let client = from.client;
        match cmd {
            Command::Watch { name, rows, cols } => self.watch(client, name, rows, cols),
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

    fn watch(&mut self, client: u64, name: Option<String>, rows: u16, cols: u16) {
        // The server refuses larger sizes by name; held here too for clients in this process.
        let (rows, cols) = crate::protocol::clamp_size(rows.max(1), cols.max(2));
        // Looking away from an agent leaves its history: back there, the view follows the output again.
        let before = self.watchers.get(&client).and_then(|w| w.name.clone());
        if before.is_some() && before != name {
            if let Some(r) =
                self.slots.iter().find(|s| Some(&s.spec.name) == before.as_ref()).and_then(|s| s.running.as_ref())
            {
                let _ = r.term.send(TermMsg::ScrollBottom { viewer: client, typed: false });
            }
        }
        self.watchers.insert(client, Watcher { name, rows, cols });
        self.size = (rows, cols);
        self.size_from = Some(client);
        self.rewatch(Some(client));
    }

    /// After a client changed what it watches (or left): every agent's screen is sent while some client shows
    /// it, and `sizer` takes the size of every agent no other live client sized, so switching between agents
    /// never reflows; an agent sized by another viewer keeps that size until this one types into it.
    fn rewatch(&mut self, sizer: Option<u64>) {
        let pane = sizer.and_then(|c| self.watchers.get(&c)).map(|w| (w.rows, w.cols));
        for slot in &mut self.slots {
            let Some(r) = slot.running.as_ref() else {
                continue;
            };
            let mut resized = false;
            if let (Some(client), Some(size)) = (sizer, pane) {
                let free = slot.sized_by.is_none_or(|c| c == client || !self.watchers.contains_key(&c));
                if free {
                    slot.sized_by = Some(client);
                    if slot.size != size {
                        slot.size = size;
                        resized = true;
                        if !r.exited {
                            let _ = r.control.resize(size.0, size.1);
                        }
                        let _ = r.term.send(TermMsg::Resize(size.0, size.1));
                    }
                }
            }
            let watched = self.watchers.values().any(|w| w.name.as_deref() == Some(slot.spec.name.as_str()));
            if watched != slot.watched || (watched && resized) {
                let _ = r.term.send(TermMsg::Watch(watched));
            }
            slot.watched = watched;
        }
    }

    /// The client that types into an agent sizes it, to its pane.
    fn size_to(&mut self, client: u64, name: &str) {
        let Some(w) = self.watchers.get(&client) else { return };
        let size = (w.rows, w.cols);
        let Some(slot) = self.slots.iter_mut().find(|s| s.spec.name == name) else { return };
        slot.sized_by = Some(client);
        if slot.size == size {
            return;
        }
        slot.size = size;
        if let Some(r) = slot.running.as_ref() {
            if !r.exited {
                let _ = r.control.resize(size.0, size.1);
            }
            let _ = r.term.send(TermMsg::Resize(size.0, size.1));
            if slot.watched {
                let _ = r.term.send(TermMsg::Watch(true));
            }
        }
    }

    fn detected(
        &mut self,
        name: &str,
        generation: u64,
        state: AgentState,
        why: String,
        title: Option<String>,
        last_output_ms: Option<u64>,
    ) {
        let Some(slot) = self.slot_mut(name) else {
            return;
        };
        if slot.running.as_ref().is_none_or(|r| r.generation != generation || r.exited) {
            return;
        }
        let before = slot.info.clone();
        slot.detected = state;
        if !slot.paused() {
            slot.info.state = state;
            slot.info.why = why;
        }
        let state_changed = slot.info.state != before.state;
        slot.info.title = title;
        slot.info.last_output_ms = last_output_ms;
        let settled = matches!(state, AgentState::Idle | AgentState::Waiting);
        let turn_ended = settled && before.state == AgentState::Busy && !slot.paused();
        if state == AgentState::Busy && slot.last_periodic.is_none() {
            slot.last_periodic = Some(Instant::now());
        } else if state != AgentState::Busy {
            slot.last_periodic = None;
        }
        let send_prompt = slot.prompt_pending && state == AgentState::Idle;
        if send_prompt {
            slot.prompt_pending = false;
        }
        let changed = before != slot.info;
        let spec = slot.spec.clone();
        let prompt = self.with_note(&spec).prompt;
        if changed {
            self.emit(name);
        }
        if send_prompt {
            if let Some(p) = prompt {
                if let Err(e) = self.steer(name, p, false, Asker::NOBODY) {
                    self.message(e.message, true);
                }
            }
        }
        if state_changed {
            // Saved soon, not at once: a state can flap several times a second.
            self.unsaved_since.get_or_insert_with(Instant::now);
        }
        if !self.sends.is_empty() {
            self.settle_sends(name, generation, Some(state));
        }
        let now_state = self.slot_mut(name).map(|s| s.info.state).unwrap_or(state);
        self.mail_on_state(name, generation, before.state, now_state);
        self.request_diffstat(name, settled && before.state != state);
        // No checkpoint when the watcher saw nothing change: there would be nothing to record.
        let dirty = self
            .slots
            .iter()
            .find(|s| s.spec.name == name)
            .is_some_and(|s| s.files.as_ref().is_none_or(|w| w.is_dirty()));
        if turn_ended && dirty {
            self.job(name, JobKind::Create { trigger: "turn".into() }, false);
        }
    }

    fn request_diffstat(&mut self, name: &str, force: bool) {
        let diff_tx = self.diff_tx.clone();
        let Some(slot) = self.slot_mut(name) else {
            return;
        };
        // The watcher knows when no file changed: then the last figure still stands, however busy the agent.
        let changes = slot.files.as_ref().and_then(|w| w.change_count());
        let unchanged = changes.is_some() && changes == slot.diffed_at_change;
        let due = force || (!unchanged && slot.last_diff_request.is_none_or(|t| t.elapsed() > DIFFSTAT_EVERY));
        if due && !slot.info.base.is_empty() {
            slot.last_diff_request = Some(Instant::now());
            slot.diffed_at_change = changes;
            let job =
                DiffJob { path: slot.info.worktree.clone(), base: slot.info.base.clone(), watch: slot.files.clone() };
            let _ = diff_tx.send((name.to_string(), job));
        }
    }

    fn exited(&mut self, name: &str, generation: u64, exit: ExitInfo) {
        self.settle_sends(name, generation, None);
        let shutting_down = self.shutting_down;
        let Some(slot) = self.slot_mut(name) else {
            return;
        };
        let Some(r) = slot.running.as_mut().filter(|r| r.generation == generation) else {
            return;
        };
        r.exited = true;
        // What it started and left behind (daemons in their own sessions) ends with it.
        let mut leftover = None;
        if let Some(tree) = slot.tree.take() {
            if shutting_down {
                // muster is about to end: the leftovers go now, not after a grace it would not wait out.
                tree.kill_all();
            } else if !tree.pids().is_empty() {
                let _ = tree.set_paused(false);
                tree.signal_all(rustix::process::Signal::TERM);
                leftover = Some(tree);
            }
        }
        slot.info.exit = Some(exit);
        slot.info.why = format!("its process ended ({exit})");
        slot.info.pid = None;
        slot.info.state = if slot.stopping { AgentState::Stopped } else { AgentState::Exited };
        let restart = std::mem::take(&mut slot.restart_after_exit);
        let stopped = slot.stopping || shutting_down;
        self.kills.retain(|k| k.name != name);
        if let Some(tree) = leftover {
            self.leftovers.push((Instant::now() + LEFTOVER_GRACE, tree));
        }
        self.emit(name);
        self.mail_on_exit(name, stopped);
        self.request_diffstat(name, true);
        self.save();
        if restart {
            self.start(name, true);
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
                })
                .collect(),
        }
    }

    fn run_for_script(&mut self, cmd: Command, trigger: String, reply: Sender<Answer>) {
        let reply = Some(reply);
        match cmd {
            Command::Checkpoint { name } => self.job_with(&name, JobKind::Create { trigger }, false, reply, false),
            Command::Rollback { name, n, files } => {
                self.job_with(&name, JobKind::Rollback { n, files }, true, reply, false)
            }
            Command::UndoRollback { name } => self.job_with(&name, JobKind::Undo, true, reply, false),
            Command::Merge { name, into_agent, message } => {
                let base =
                    self.slots.iter().find(|s| s.spec.name == name).map(|s| s.info.base.clone()).unwrap_or_default();
                let kind = JobKind::Merge { root: self.cfg.root.clone(), base, into_agent, message };
                self.job_with(&name, kind, into_agent, reply, false)
            }
            Command::StageResolved { name, path, content } => {
                self.conflict_with(&name, ConflictOp::Stage { path, content }, reply)
            }
            Command::TakeSide { name, path, side } => self.conflict_with(&name, ConflictOp::Take { path, side }, reply),
            Command::FinishMerge { name, message } => self.conflict_with(&name, ConflictOp::Finish { message }, reply),
            Command::AbortMerge { name } => self.conflict_with(&name, ConflictOp::Abort, reply),
            other => {
                self.command(Asker::NOBODY, other);
                if let Some(r) = reply {
                    let _ = r.send(Answer::Done { message: None });
                }
                true
            }
        };
    }

    /// Answer the `muster wait`s that are settled now (matched, or their agent's run ended), or past their time.
    fn settle_waits(&mut self) {
        let now = Instant::now();
        let mut waits = std::mem::take(&mut self.waits);
        waits.retain(|w| match self.wait_answer(w) {
            Some(answer) => {
                let _ = w.reply.send(Answer::Waited { outcome: answer });
                false
            }
            None => w.until_time.is_none_or(|t| t > now),
        });
        self.waits = waits;
    }

    fn wait_answer(&self, w: &PendingWait) -> Option<WaitOutcome> {
        let mut all = true;
        for (name, run) in &w.agents {
            let Some(slot) = self.slots.iter().find(|s| &s.spec.name == name) else {
                return Some(WaitOutcome::Gone { agent: name.clone() });
            };
            let current = slot.running.as_ref().filter(|r| !r.exited).map(|r| r.generation);
            let ended = run.is_none() || current != *run;
            if ended && !matches!(w.until, WaitFor::Exited | WaitFor::Any) {
                return Some(WaitOutcome::Ended { agent: name.clone() });
            }
            all &= ended || w.until.matches(slot.info.state);
        }
        all.then_some(WaitOutcome::Matched)
    }
}

/// `.muster/ports.env` in the agent's worktree, for tools that read their ports from a file. A symlink the
/// repository carries there (or as `.muster`) is refused, never written through.
fn write_ports_env(worktree: &std::path::Path, port_base: u16) -> Result<()> {
    let dir = crate::safefs::real_dir(worktree, ".muster")?;
    let target = dir.join("ports.env");
    if crate::safefs::is_symlink(&target) {
        anyhow::bail!("{} is a symbolic link in the repository: not written", target.display());
    }
    let text = format!("MUSTER_PORT_BASE={port_base}\nMUSTER_PORT_COUNT={}\n", ports::BLOCK);
    crate::safefs::write_file(&dir, "ports.env", text.as_bytes())
}

/// End what an agent left running after its first process exited: SIGTERM, a moment to go, then SIGKILL.
#[cfg(test)]
mod tests {
    use super::*;

    fn crew(text: &str) -> crate::config::crew::Crew {
        crate::config::crew::parse_crew(std::path::Path::new("c.toml"), text, &preset::builtin(), &Default::default())
            .unwrap()
    }

    fn spec() -> AgentSpec {
        crew("[[agent]]\nname='a'\nkind='claude'\nprompt='fix it'\nenv={X='1'}\n").agents[0].clone()
    }

    #[test]
    fn periodic_checkpoints_need_a_whole_busy_period_and_changed_files() {
        let every = Duration::from_secs(300);
        let start = Instant::now();
        let later = start + every;
        let mut last = Some(start);
        assert!(!periodic_due(AgentState::Busy, &mut last, || true, every, start + Duration::from_secs(10)));
        assert!(!periodic_due(AgentState::Idle, &mut last, || true, every, later));
        assert_eq!(last, Some(start));
        // Due but nothing changed: no checkpoint, and the next period starts now (no wake-up loop).
        assert!(!periodic_due(AgentState::Busy, &mut last, || false, every, later));
        assert_eq!(last, Some(later));
        assert!(periodic_due(AgentState::Busy, &mut last, || true, every, later + every));
        assert_eq!(last, Some(later + every));
        let mut never = None;
        assert!(!periodic_due(AgentState::Busy, &mut never, || true, every, later));
    }

    #[test]
    fn only_listed_variables_are_inherited_when_the_crew_says_so() {
        let parent = vec![
            ("PATH".to_string(), "/bin".to_string()),
            ("LC_ALL".to_string(), "C".to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), "s3cr3t".to_string()),
            ("GITHUB_TOKEN".to_string(), "ghp".to_string()),
        ];
        let listed =
            crew("[defaults]\ninherit_env = ['PATH', 'LC_*']\n[[agent]]\nname='a'\nkind='shell'\nenv={X='1'}\n").agents
                [0]
            .clone();
        let env = child_env(parent.clone().into_iter(), &listed, std::path::Path::new("/run/m"), 20040);
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert!(names.contains(&"PATH") && names.contains(&"LC_ALL") && names.contains(&"X"), "{names:?}");
        assert!(!names.contains(&"AWS_SECRET_ACCESS_KEY") && !names.contains(&"GITHUB_TOKEN"), "{names:?}");
        assert!(names.contains(&"MUSTER_AGENT") && names.contains(&"TERM"));
        // Unset, everything is inherited (as shells and tmux do).
        let env = child_env(parent.into_iter(), &spec(), std::path::Path::new("/run/m"), 20040);
        assert!(env.iter().any(|(k, _)| k == "GITHUB_TOKEN"));
    }

    #[test]
    fn child_environment_is_clean() {
        let parent = vec![
            ("PATH".to_string(), "/bin".to_string()),
            ("TMUX".to_string(), "/tmp/t,1,0".to_string()),
            ("ZELLIJ".to_string(), "0".to_string()),
            ("TERM".to_string(), "screen".to_string()),
            ("MUSTER_AGENT".to_string(), "outer".to_string()),
        ];
        let env = child_env(parent.into_iter(), &spec(), std::path::Path::new("/run/m"), 20040);
        let get = |k: &str| env.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/bin"));
        assert_eq!(get("TMUX"), None);
        assert_eq!(get("ZELLIJ"), None);
        assert_eq!(get("TERM"), Some("xterm-256color"));
        assert_eq!(get("COLORTERM"), Some("truecolor"));
        assert_eq!(get("MUSTER_AGENT"), Some("a"));
        assert_eq!(get("MUSTER_RUN_DIR"), Some("/run/m"));
        assert_eq!(get("MUSTER_PORT_BASE"), Some("20040"));
        assert_eq!(get("X"), Some("1"));
    }

    #[test]
    fn command_line_fills_prompt_and_resume() {
        let s = spec();
        let exe = std::path::Path::new("/bin/muster");
        assert_eq!(command_line(&s, exe, false, None), ("claude".to_string(), vec!["fix it".to_string()]));
        assert_eq!(command_line(&s, exe, true, None), ("claude".to_string(), vec!["--continue".to_string()]));
        // With the CLI's own session id, a resume continues exactly that conversation.
        assert_eq!(
            command_line(&s, exe, true, Some("5e1f")),
            ("claude".to_string(), vec!["--resume".to_string(), "5e1f".to_string()])
        );
        let mut demo = s.clone();
        demo.command = "{muster}".into();
        demo.args = vec!["demo-agent".into()];
        demo.prompt_args = vec![];
        assert_eq!(command_line(&demo, exe, false, None), ("/bin/muster".to_string(), vec!["demo-agent".to_string()]));
    }

    /// The engine on the fake PTY: no process, every byte in and out seen by the test.
    #[test]
    fn engine_drives_a_fake_pty() {
        use crate::pty::FakePty;
        use std::time::Duration;
        let repo = crate::git::worktree::tests::temp_repo();
        let crew = crew("[[agent]]\nname='f'\ncommand='fake-agent'\nargs=['--x']\nenter_delay_ms=0\n");
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
        engine.send(Command::Watch { name: Some("f".into()), rows: 10, cols: 40 });
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
            &mut |e| matches!(e, Event::Agent(i) if i.state == AgentState::Starting && i.pid.is_none() && !i.branch.is_empty()),
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
        engine.send(Command::Watch { name: Some("f".into()), rows: 20, cols: 60 });
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
