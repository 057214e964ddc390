//! What the engine thread takes, by who sends it: a client's request, a script's request, a worker's report, a
//! client gone. Its own module, so the agents' threads and the workers that send to the engine need nothing of
//! the supervisor.

use std::sync::mpsc::Sender;
use std::time::Duration;

use super::{AgentState, Command};
use crate::protocol::git::{Checkpoint, DiffStat};
use crate::protocol::messages::ExitInfo;
use crate::protocol::script::{Answer, Caller, WaitFor};

/// What the engine thread takes, by who sends it.
pub enum EngineMsg {
    /// A client's command (the workbench in this process, a client of the server, or no client: a hook's report,
    /// the server's own shutdown).
    Request(super::Request),
    /// A script's request from the script socket, answered on its own channel.
    Script(ScriptMsg),
    /// What the engine's workers and each agent's threads found.
    Report(Report),
    /// A client of the server went away: it watches nothing and sizes nothing any more.
    ClientGone { client: u64 },
    /// A message from the script socket, with its place in the engine's queue (given back once handled).
    Gated(Box<EngineMsg>, crate::ipc::Ticket),
}

/// A script's request (`protocol::script::Request`), with the channel its typed answers go back on.
pub enum ScriptMsg {
    /// `send`: answered `sent` or an error; with `wait`, then `turn` once the agent went busy and came back, asks
    /// something, or its run ends.
    Send { name: String, text: String, force: bool, wait: bool, from: Option<Caller>, reply: Sender<Answer> },
    /// `run`: a change to an agent (checkpoint, rollback, merge, conflicts), run by the engine so it never races
    /// it on the same worktree; answered `done` or an error.
    Run {
        cmd: Command,
        /// What a checkpoint is called (`cli` unless the script says).
        trigger: String,
        from: Option<Caller>,
        reply: Sender<Answer>,
    },
    /// `status`: the crew as it is now.
    Status { reply: Sender<Answer> },
    /// `wait`: answered once settled (`waited`), or an error naming an agent the crew does not have.
    Wait { agents: Vec<String>, until: WaitFor, timeout: Option<Duration>, any: bool, reply: Sender<Answer> },
    /// `spawn`: answered `spawned` once the new agent settled.
    Spawn { from: Option<Caller>, spawn: crate::protocol::lead::Spawn, reply: Sender<Answer> },
    /// `read`: answered `text` by the agent's terminal thread.
    Read { name: String, what: crate::protocol::lead::ReadWhat, ansi: bool, reply: Sender<Answer> },
    /// `result`: set or get.
    Result { from: Option<Caller>, op: crate::protocol::lead::ResultOp, reply: Sender<Answer> },
    /// `events`: the log after `since`; following, each new event too (a bounded channel: one that falls too
    /// far behind is let go).
    Events {
        since: u64,
        follow: bool,
        agents: Vec<String>,
        kinds: Vec<crate::protocol::lead::EventKind>,
        tx: std::sync::mpsc::SyncSender<Answer>,
        /// Dropped when its connection ends (the engine lets the follower go).
        alive: std::sync::Weak<()>,
    },
    /// `explain`: the agent's state and why.
    Explain { name: String, reply: Sender<Answer> },
    /// `mail`: as the agent whose secret it carries (None: the operator).
    Mail { who: Option<(String, String)>, op: crate::protocol::mail::MailOp, reply: Sender<Answer> },
    /// `gate`: run, list, log, grant, stop, cancel.
    Gate { op: crate::protocol::gate::GateOp, reply: Sender<Answer> },
    /// `guard`: findings, and the operator's answers to them.
    Guard { op: crate::protocol::guard::GuardOp, reply: Sender<Answer> },
    /// `review`: a verdict, from the reviewer whose secret it carries (None: the operator).
    Review {
        who: Option<(String, String)>,
        target: String,
        verdict: crate::protocol::review::Verdict,
        reply: Sender<Answer>,
    },
}

/// What a worker thread or an agent's threads tell the engine.
pub enum Report {
    /// The detector's verdict on an agent's state.
    Detected {
        name: String,
        generation: u64,
        state: AgentState,
        why: String,
        title: Option<String>,
        last_output_ms: Option<u64>,
    },
    Exited {
        name: String,
        generation: u64,
        exit: ExitInfo,
    },
    Diffstat {
        name: String,
        stat: DiffStat,
    },
    /// A git job is done.
    Checkpoints(JobDone),
    /// A branch of the repository moved (a commit on the base outside muster): what merges would bring is
    /// measured again, once the moves settle.
    RefsMoved,
    /// `.muster/crew.toml` was written: read again (once the writes settle) and applied as a difference.
    CrewFileChanged,
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
    /// A gate run ended (`turn`: the agent's turn count when it was queued; another now makes it stale).
    GateDone {
        run: crate::protocol::gate::GateRun,
        turn: u64,
    },
    /// A git hook, the repository's config or the main checkout's HEAD changed.
    GitFolderChanged,
    /// A reviewer's turn ended on a new verdict line (`VERDICT: APPROVED|CHANGES [agent]`) on its screen, with
    /// the lines above it (its reasons).
    ScreenVerdict {
        name: String,
        generation: u64,
        approved: bool,
        target: Option<String>,
        reasons: String,
    },
    /// The watchdog found something in an agent's worktree.
    Findings {
        agent: String,
        found: Vec<crate::guard::Found>,
    },
}

/// What a finished job tells the engine.
pub struct JobDone {
    pub name: String,
    /// The agent's checkpoints after a job that may have changed them; None when it cannot have.
    pub checkpoints: Option<Vec<Checkpoint>>,
    /// Some(true) after a rollback, Some(false) after an undo.
    pub rolled_back: Option<bool>,
    pub message: Option<(String, bool)>,
    pub stop_after: bool,
    /// A merge (or its end) may have moved a branch: every agent's diffstat and the overlaps are taken again.
    pub branches_moved: bool,
    /// The checkpoint a turn ended on (new, or the last one when nothing changed): its gates run on it.
    pub turn: Option<Checkpoint>,
    /// The job was the checkpoint of a turn's end.
    pub turn_job: bool,
    /// That turn changed the tree (a new checkpoint).
    pub turn_changed: bool,
    /// A result job's outcome (the result kept, naming its checkpoint, or why not), and who waits for it.
    pub kept: Option<Box<Result<crate::protocol::lead::StoredResult, String>>>,
    pub reply: Option<Sender<crate::protocol::script::Answer>>,
}
