//! The messages between the engine and its clients: commands in, events out, and what they say of an agent.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::git::{Checkpoint, ConflictFile, DiffBase, DiffStat, FileDiff, OverlapReport, Side, WorktreeStatus};
use crate::key::Key;
use crate::protocol::screen::Screen;

use super::mail::{Mail, MailMarks};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    Starting,
    Busy,
    Idle,
    Waiting,
    Paused,
    Exited,
    Error,
    /// Not running: from an earlier session, or stopped by the operator.
    Stopped,
}

impl AgentState {
    pub fn label(self) -> &'static str {
        match self {
            AgentState::Starting => "starting",
            AgentState::Busy => "busy",
            AgentState::Idle => "idle",
            AgentState::Waiting => "waiting",
            AgentState::Paused => "paused",
            AgentState::Exited => "exited",
            AgentState::Error => "error",
            AgentState::Stopped => "stopped",
        }
    }

    pub fn glyph(self) -> &'static str {
        match self {
            AgentState::Starting => "◌",
            AgentState::Busy => "●",
            AgentState::Idle => "○",
            AgentState::Waiting => "◆",
            AgentState::Paused => "‖",
            AgentState::Exited => "■",
            AgentState::Error => "✗",
            AgentState::Stopped => "□",
        }
    }

    pub fn is_running(self) -> bool {
        matches!(
            self,
            AgentState::Starting | AgentState::Busy | AgentState::Idle | AgentState::Waiting | AgentState::Paused
        )
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit {c}"),
            (None, Some(s)) => write!(f, "signal {s}"),
            (None, None) => f.write_str("exited"),
        }
    }
}

/// What the UI knows of an agent.
/// One more agent a client shows beside the selected one, and the size of its pane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Pane {
    pub name: String,
    pub rows: u16,
    pub cols: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub name: String,
    pub kind: String,
    pub branch: String,
    pub base: String,
    pub worktree: PathBuf,
    pub state: AgentState,
    pub exit: Option<ExitInfo>,
    /// Milliseconds since the Unix epoch of the last output, if any.
    pub last_output_ms: Option<u64>,
    pub title: Option<String>,
    pub port_base: u16,
    /// The agent's process id (and process group) while it runs.
    pub pid: Option<u32>,
    pub diffstat: DiffStat,
    pub error: Option<String>,
    pub checkpoints: usize,
    /// The worktree was rolled back (and not undone since).
    pub rolled_back: bool,
    /// Why the state is what it is: the rule or hook that decided (`muster explain`).
    #[serde(default)]
    pub why: String,
    /// Its mail: unread by the operator, waiting for delivery, dead letters, an open question.
    #[serde(default)]
    pub mail: MailMarks,
    /// What the crew file, changed while the crew runs, says of this agent that it does not have yet.
    #[serde(default)]
    pub crew_file: CrewFileMark,
    /// How pausing stops its processes on the server's machine ("cgroup v2 freezer", "SIGSTOP"); empty until
    /// it first ran.
    #[serde(default)]
    pub paused_by: String,
    /// Its gates' word on its latest work (`✓`, `…`, `✗2/4 test`, `!`).
    #[serde(default)]
    pub gate: super::gate::GateMark,
    /// The operator stopped its gates' loop: they run and show, but nothing is sent to it.
    #[serde(default)]
    pub gates_stopped: bool,
    /// Its open findings (the watchdog's: files outside its `owns`, links out of its worktree…).
    #[serde(default)]
    pub findings: u32,
    /// Its wave, in a crew with waves.
    #[serde(default)]
    pub wave: Option<u32>,
    /// Not started yet: it waits for the agents it follows (its `why` says which, and their state).
    #[serde(default)]
    pub pending: bool,
    /// Its latest review, where an agent of the crew `reviews` it.
    #[serde(default)]
    pub review: Option<super::review::ReviewMark>,
    /// The agent that spawned it.
    #[serde(default)]
    pub parent: Option<String>,
    /// Its latest result (`muster result set`).
    #[serde(default)]
    pub result: Option<super::lead::ResultMark>,
}

/// An agent to add, in the crew file's own words: a preset (`kind`) or a `command` (with its `args`), what it
/// is told first, the branch it starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    pub name: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub base: Option<String>,
    /// A `[[role]]` of the crew file it takes its fields from.
    #[serde(default)]
    pub role: Option<String>,
    /// The agent that spawned it.
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub owns: Option<Vec<String>>,
}

/// How an agent stands to the crew file as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrewFileMark {
    /// As the file says.
    #[default]
    Same,
    /// Added to the file while the crew ran: not started yet.
    Added,
    /// Changed in the file while it ran: a restart applies the change.
    Changed,
    /// No longer in the file: kept (with its work) until the operator removes it.
    Left,
}

impl AgentInfo {
    /// At its prompt with a result set since its last turn: done, not merely idle.
    pub fn is_done(&self) -> bool {
        self.state == AgentState::Idle && self.result.as_ref().is_some_and(|r| r.current)
    }

    /// What the roster says of it, as (word, glyph): `pending` (`·`) for a plan's agent not started yet, `done`
    /// (`✓`) for one done, else its state's.
    pub fn shown(&self) -> (&'static str, &'static str) {
        match () {
            _ if self.pending => ("pending", "·"),
            _ if self.is_done() => ("done", "✓"),
            _ => (self.state.label(), self.state.glyph()),
        }
    }

    /// Its state's word as the roster shows it.
    pub fn state_label(&self) -> &'static str {
        self.shown().0
    }

    /// Its state's glyph as the roster shows it.
    pub fn state_glyph(&self) -> &'static str {
        self.shown().1
    }

    /// An agent of the crew before anything is known of it: on branch `muster/<name>` off `main`.
    pub fn new(name: &str, kind: &str, state: AgentState) -> AgentInfo {
        AgentInfo {
            name: name.into(),
            kind: kind.into(),
            branch: format!("muster/{name}"),
            base: "main".into(),
            worktree: PathBuf::new(),
            state,
            exit: None,
            last_output_ms: None,
            title: None,
            port_base: 0,
            pid: None,
            diffstat: DiffStat::default(),
            error: None,
            checkpoints: 0,
            rolled_back: false,
            why: String::new(),
            mail: MailMarks::default(),
            crew_file: CrewFileMark::Same,
            paused_by: String::new(),
            gate: Default::default(),
            gates_stopped: false,
            findings: 0,
            wave: None,
            pending: false,
            review: None,
            parent: None,
            result: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Command {
    /// Start every agent of the crew that is not from an earlier session.
    StartCrew,
    Start {
        name: String,
        resume: bool,
    },
    Stop {
        name: String,
    },
    Restart {
        name: String,
    },
    Pause {
        name: String,
    },
    Resume {
        name: String,
    },
    /// Ask what removing would lose; answered with `Event::RemoveCheck`.
    CheckRemove {
        name: String,
    },
    /// Remove the agent: stopped, checkpointed, its worktree removed (refused when work would be lost, unless
    /// `force`) and its entry taken out of the crew file.
    Remove {
        name: String,
        force: bool,
    },
    /// Add an agent to the crew: written into the crew file (its comments kept), shown at once, started when
    /// `start`.
    AddAgent {
        agent: NewAgent,
        #[serde(default)]
        start: bool,
    },
    /// Add a copy of agent `name` to the crew as `new_name`: its crew file entry copied (kind or command,
    /// arguments, prompt, base), with a worktree and branch of its own; started when `start`.
    DuplicateAgent {
        name: String,
        new_name: String,
        #[serde(default)]
        start: bool,
    },
    /// Give a stopped agent a new name: its crew file entry, worktree, branch and checkpoints follow.
    Rename {
        name: String,
        new_name: String,
    },
    Key {
        name: String,
        key: Key,
    },
    Paste {
        name: String,
        text: String,
    },
    /// A message typed in without attaching: pasted, then Enter after the preset's delay. Refused while the
    /// agent shows a dialog (waiting), unless `force`.
    Steer {
        name: String,
        text: String,
        force: bool,
    },
    /// The agent the UI shows and the size of its pane; None hides all. `also`: the agents of the well's other
    /// panes (a split) and their panes' sizes, each sized by its own pane.
    Watch {
        name: Option<String>,
        rows: u16,
        cols: u16,
        #[serde(default)]
        also: Vec<Pane>,
    },
    Scroll {
        name: String,
        lines: i32,
    },
    ScrollBottom {
        name: String,
    },
    /// Search the agent's whole buffer (history and screen) for `pattern` (a regex; all lower case: case does
    /// not count), from `from` (else the bottom of this client's view) toward older rows or newer ones. The view
    /// moves to show the match: `Event::SearchFound`.
    Search {
        name: String,
        pattern: String,
        from: Option<crate::protocol::screen::BufferPos>,
        older: bool,
    },
    /// The text of the agent's buffer from `from` to `to` (both cells included), wrapped rows joined:
    /// `Event::Copied`.
    CopyText {
        name: String,
        from: crate::protocol::screen::BufferPos,
        to: crate::protocol::screen::BufferPos,
    },
    Wheel {
        name: String,
        up: bool,
        col: u16,
        row: u16,
    },
    Hook {
        name: String,
        /// The agent's secret, which only its own processes have.
        token: String,
        event: String,
        /// The kind of notification, where the CLI says.
        detail: Option<String>,
        /// The CLI's own session id, to resume exactly that conversation.
        session: Option<String>,
    },
    /// Take a checkpoint now.
    Checkpoint {
        name: String,
    },
    /// The diff of checkpoint n against the previous one or the worktree: `Event::CheckpointDiff`.
    CheckpointDiff {
        name: String,
        n: u32,
        base: DiffBase,
    },
    /// What merging the agent into its base would bring (its branch and worktree against their merge base):
    /// `Event::Review`.
    Review {
        name: String,
    },
    /// What a rollback would change: `Event::RollbackPreview`.
    RollbackPreview {
        name: String,
        n: u32,
        files: Option<Vec<String>>,
    },
    Rollback {
        name: String,
        n: u32,
        files: Option<Vec<String>>,
    },
    UndoRollback {
        name: String,
    },
    /// What merging the agent (or its base into it) would do, checked before asking anything: `Event::MergeCheck`.
    CheckMerge {
        name: String,
        into_agent: bool,
    },
    /// Merge the agent into its base (in the main worktree), or its base into it.
    Merge {
        name: String,
        into_agent: bool,
        /// The merge commit's message; None takes the default.
        message: Option<String>,
        /// Merge without running the agent's `when = "merge"` gates first (the operator saw them fail and
        /// confirmed).
        #[serde(default)]
        skip_gates: bool,
    },
    /// Read a conflicted file of the agent's merge: `Event::ConflictFile`.
    ReadConflict {
        name: String,
        path: String,
    },
    /// Write a resolved file and stage it.
    StageResolved {
        name: String,
        path: String,
        content: Vec<u8>,
    },
    /// Resolve a conflict without markers (delete/modify, binary) by keeping one side.
    TakeSide {
        name: String,
        path: String,
        side: Side,
    },
    FinishMerge {
        name: String,
        message: Option<String>,
    },
    AbortMerge {
        name: String,
    },
    /// Mail from the operator: to agents (names or `crew`), a reply, urgent.
    MailSend {
        to: Vec<String>,
        body: String,
        reply_to: Option<i64>,
        urgent: bool,
    },
    /// The operator read these messages.
    MailSeen {
        ids: Vec<i64>,
    },
    /// Send a dead letter again, or drop it.
    MailRetry {
        id: i64,
        recipient: String,
    },
    MailDrop {
        id: i64,
        recipient: String,
    },
    /// This client's operator is writing a steer to the agent (None: no more): mail waits meanwhile.
    Composing {
        name: Option<String>,
    },
    /// A gate request (run, list, a run's log, grant an attempt, stop the loop, cancel); lists and logs are
    /// answered to the asker (`GateRuns`, `GateLog`).
    Gate {
        op: super::gate::GateOp,
    },
    /// A watchdog request (findings; restore, allow, dismiss, tell the agent); lists are answered to the asker
    /// (`Findings`).
    Guard {
        op: super::guard::GuardOp,
    },
    /// The operator's word for a wave with `approve = true`: its pending agents start (their dependencies done
    /// or not).
    ApproveWave {
        wave: u32,
    },
    Shutdown,
}

// Events travel by value a few at a time; boxing the agent's info would only add an allocation per update.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Agent(AgentInfo),
    Removed {
        name: String,
    },
    /// The live screen of an agent, for every client that shows it and follows its output.
    Screen {
        name: String,
        screen: Screen,
        /// How it differs from the agent's screen before it, when known (never sent: a client gets damage).
        #[serde(skip)]
        change: Option<crate::protocol::screen::Change>,
    },
    Bell {
        name: String,
    },
    Notification {
        name: String,
        text: String,
    },
    /// What the operator must see now (the watchdog's escapes, git tampering, a full quota): said and rung.
    Alarm {
        name: String,
        text: String,
    },
    RemoveCheck {
        name: String,
        status: WorktreeStatus,
    },
    /// An agent's checkpoints, newest first.
    Timeline {
        name: String,
        checkpoints: Vec<Checkpoint>,
    },
    CheckpointDiff {
        name: String,
        n: u32,
        base: DiffBase,
        files: Vec<FileDiff>,
    },
    /// The answer to `Command::Review`: the merge base and the files, or why there are none.
    Review {
        name: String,
        base: String,
        review: Result<(String, Vec<FileDiff>), String>,
    },
    RollbackPreview {
        name: String,
        n: u32,
        files: Option<Vec<String>>,
        changes: Vec<String>,
        /// The rollback also moves the agent's branch back.
        moves_head: bool,
    },
    /// The answer to `Command::CheckMerge`.
    MergeCheck {
        name: String,
        into_agent: bool,
        check: super::git::Preflight,
    },
    /// A merge of the agent stopped on conflicts (also sent again as files get resolved).
    MergeConflicts {
        name: String,
        into_agent: bool,
        files: Vec<ConflictFile>,
    },
    /// The agent's merge ended: committed or aborted.
    MergeEnded {
        name: String,
        text: String,
    },
    /// A conflicted file, parsed off the UI thread (or why it cannot be resolved hunk by hunk).
    ConflictFile {
        name: String,
        path: String,
        parsed: Result<crate::conflict::Parsed, crate::conflict::ParseError>,
    },
    /// The answer to `Command::Search`: the match (none: no more that way), or why the pattern is no regex.
    SearchFound {
        name: String,
        pattern: String,
        found: Result<Option<crate::protocol::screen::Found>, String>,
    },
    /// The answer to `Command::CopyText`; `cut`: the text was longer than `MAX_COPY` and stops there.
    Copied {
        name: String,
        text: String,
        cut: bool,
    },
    /// Agents whose work collides, newest pass.
    Overlaps(OverlapReport),
    /// Something the operator should read (a refusal, a failure).
    Message {
        text: String,
        error: bool,
    },
    /// Messages that are new or changed (each whole, with its receipts); the snapshot has the newest ones.
    Mail(Vec<Mail>),
    /// The newest gate runs (of one agent), newest first: the answer to a `Gate { Status }`.
    GateRuns {
        agent: Option<String>,
        runs: Vec<super::gate::GateRun>,
    },
    /// One run's log: the answer to a `Gate { Log }`.
    GateLog {
        run: super::gate::GateRun,
        log: String,
    },
    /// Findings (of one agent), newest first: the answer to a `Guard { Status }`.
    Findings {
        agent: Option<String>,
        findings: Vec<super::guard::Finding>,
    },
    ShutdownComplete,
}
