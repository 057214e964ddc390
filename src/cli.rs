//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "muster",
    version,
    about = "A terminal workbench for a crew of AI coding agents on one git repository"
)]
pub struct Cli {
    /// Theme: default, light, high-contrast, or a file name in ~/.config/muster/themes or .muster/themes.
    #[arg(long, global = true)]
    pub theme: Option<String>,
    /// Directory inside the repository to open (default: the current directory).
    #[arg(long, short = 'C', global = true)]
    pub dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Open the workbench on a built-in demo crew in a throwaway repository (no agent CLI or network needed).
    Demo {
        /// How many demo agents.
        #[arg(long, default_value_t = 3)]
        agents: usize,
        /// The crew as waves: a planner, then api and docs, then a read-only reviewer, each wave starting once
        /// the one before is green.
        #[arg(long)]
        waves: bool,
    },
    /// The repository's muster server, which runs the crew whether or not a workbench is open.
    Server {
        #[command(subcommand)]
        action: ServerCmd,
    },
    /// Start the crew without a workbench: its server (when none runs) and every agent that is not running,
    /// each resuming its conversation where its CLI can. Prints each agent's state once started; then, in the
    /// foreground, every change until interrupted, and stops the crew. Exit 1 when an agent did not start.
    Up {
        /// Return once every agent has started; the crew runs on in its server.
        #[arg(long, short = 'd')]
        detach: bool,
    },
    /// Stop the crew (each agent checkpointed first) and its server, as `muster server stop --yes`.
    Down,
    /// Add an agent to the crew: written into .muster/crew.toml (its comments kept) and shown by the running
    /// crew at once. A preset (`--kind claude`, `codex`, …) or a `--command` (with its arguments after `--`).
    Add {
        name: String,
        #[arg(long, required_unless_present_any = ["command", "like"])]
        kind: Option<String>,
        /// A copy of this agent: its entry in the crew file, with a worktree and branch of its own.
        #[arg(long, conflicts_with_all = ["kind", "command", "prompt", "base", "args"])]
        like: Option<String>,
        #[arg(long)]
        command: Option<String>,
        /// What the agent is told first.
        #[arg(long)]
        prompt: Option<String>,
        /// The branch its worktree starts from.
        #[arg(long)]
        base: Option<String>,
        /// Start it now.
        #[arg(long)]
        start: bool,
        /// The command's arguments.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Remove an agent: stopped, checkpointed, its worktree and its entry in the crew file removed (refused when
    /// work would be lost, unless --force; the checkpoint and branch stay under refs/muster/removed).
    Rm {
        name: String,
        #[arg(long)]
        force: bool,
    },
    /// Stop an agent of the running crew (checkpointed first; inside an agent, only one it spawned).
    Stop { name: String },
    /// Start (resume) a stopped agent of the running crew (inside an agent, only one it spawned).
    Start { name: String },
    /// This user's running muster servers and their crews.
    Ls,
    /// The JSON Schema of the scripting socket (`hook.sock` in the run folder): requests, and what each answers.
    Schema,
    /// Bridge standard input and output to this repository's server (starting it if none runs), for
    /// `muster attach --via 'ssh HOST muster proxy -C /path/to/repo'`.
    Proxy,
    /// Open the workbench on a crew served elsewhere: `--via` is a command whose standard input and output reach
    /// a muster server (`ssh HOST muster proxy -C /path/to/repo`, or any other byte stream).
    Attach {
        #[arg(long)]
        via: String,
    },
    /// Write a commented .muster/crew.toml for this repository.
    Init {
        /// Overwrite an existing crew file.
        #[arg(long)]
        force: bool,
    },
    /// Check git, the terminal and which agent CLIs are on PATH.
    Doctor,
    /// The crew's plan: its waves, who waits for whom and when each counts as done (`plan`); the operator's word
    /// for a wave that waits for it (`approve`).
    Crew {
        #[command(subcommand)]
        action: CrewCmd,
    },
    /// A reviewer's verdict on an agent's work (run by the agent whose `reviews` name it, or by you): approved,
    /// or what blocks it (sent to it as mail); tech debt and skippable points are recorded and block nothing.
    Review {
        agent: String,
        #[arg(long, conflicts_with = "blocker")]
        approve: bool,
        /// Something that must change (repeat for more).
        #[arg(long)]
        blocker: Vec<String>,
        /// Tech debt, recorded (repeat for more).
        #[arg(long)]
        debt: Vec<String>,
        /// A point that may be skipped, recorded (repeat for more).
        #[arg(long)]
        skip: Vec<String>,
    },
    /// The agent CLIs muster knows (their manifests: built in, `~/.config/muster/agents/`, `.muster/agents/`).
    Agents {
        #[command(subcommand)]
        action: AgentsCmd,
    },
    /// Print the crew's agents and their last known state (for scripts and tmux status lines).
    Status {
        /// As JSON.
        #[arg(long)]
        json: bool,
        /// `tmux`: one short line of counts by state for a tmux status bar (waiting agents highlighted).
        #[arg(long, value_parser = ["tmux"])]
        format: Option<String>,
    },
    /// Wait until every named agent is in a state: `idle`, `waiting` (for the operator), `exited` (its run
    /// ended), or `any` of those; or until its gates are `green` (every one passed on its latest checkpoint) or
    /// `gate-failed` (one failed, or could not run). Returns at once when they already are. Exit 0 when matched,
    /// 124 on timeout, 3 when an agent is unknown, muster is not running, or (unless waiting for `exited`) the
    /// run ended.
    Wait {
        #[arg(required = true)]
        agents: Vec<String>,
        #[arg(long, value_parser = ["idle", "waiting", "exited", "any", "green", "gate-failed", "done"])]
        until: String,
        /// Give up after this many seconds.
        #[arg(long)]
        timeout: Option<f64>,
        /// Return when the first of them is in the state (its name on stdout), not all of them.
        #[arg(long)]
        any: bool,
    },
    /// Start a new agent of the running crew (inside an agent: as its child, within `max_children` and
    /// `max_depth`). Prints its name, branch and worktree as JSON once it is at its prompt with its kickoff
    /// prompt delivered (or as --wait asks). Exit 0 when it settled, 1 when refused, 3 when its run ended, 124
    /// past --timeout.
    Spawn(SpawnArgs),
    /// An agent's output: its last --lines N (default 40), its last --turn, or its visible --screen.
    Read {
        agent: String,
        #[arg(long, conflicts_with_all = ["turn", "screen"])]
        lines: Option<usize>,
        #[arg(long, conflicts_with = "screen")]
        turn: bool,
        #[arg(long)]
        screen: bool,
        /// With colours and styles (SGR escape sequences).
        #[arg(long)]
        ansi: bool,
    },
    /// An agent's structured result: `set` (inside the agent: kept as a new attempt, never rewritten; the agent
    /// is done and its parent is mailed) or `get`.
    Result {
        #[command(subcommand)]
        action: ResultCmd,
    },
    /// The crew's event log as JSON lines (`seq`, `at_ms`, `kind`, `agent`, `text`): after --since SEQ, and
    /// with --follow each new one as it happens. Resume after a disconnect with the last `seq` seen: nothing is
    /// missed or repeated.
    Events {
        #[arg(long)]
        follow: bool,
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Only these agents' (comma-separated).
        #[arg(long, value_delimiter = ',')]
        agents: Vec<String>,
        /// Only these kinds: state, gate, finding, mail, result, spawn (comma-separated).
        #[arg(long, value_delimiter = ',', value_parser = ["state", "gate", "finding", "mail", "result", "spawn"])]
        kinds: Vec<String>,
    },
    /// A read-only live roster for a narrow tmux pane (down to 30x5): one line per agent, those waiting for you
    /// first and highlighted. `q` quits.
    Watch {
        /// Every running crew of this user, not only this repository's.
        #[arg(long)]
        all: bool,
    },
    /// Type a message into an agent of the running crew, as the steer key does (refused while it shows a dialog,
    /// unless --force). With --wait idle, return when the agent took it and is back at its prompt. Exit 0 when
    /// sent (and idle again), 2 when it then asks something, 3 when not running or its run ended, 1 on refusal.
    Send {
        agent: String,
        /// The message; read from stdin when not given.
        text: Option<String>,
        /// Send even into a question or permission dialog.
        #[arg(long)]
        force: bool,
        #[arg(long, value_parser = ["idle"])]
        wait: Option<String>,
    },
    /// The crew's mailbox: messages between the operator and agents, delivered into an agent only when it can
    /// take them, with receipts (queued → delivered → seen → acked). Inside an agent muster started, you are that
    /// agent; elsewhere, the operator.
    Mail {
        #[command(subcommand)]
        action: MailCmd,
    },
    /// Gates: the crew's checks (`[[gate]]` in crew.toml), run in an agent's worktree after each turn that
    /// changed files; a failure goes back to the agent until it passes. Run them now, list runs, read a log,
    /// grant an attempt, stop or resume the loop, cancel.
    Gate {
        #[command(subcommand)]
        action: GateCmd,
    },
    /// Ownership (`owns` per agent, `shared` in [defaults]): `muster guard check` lists, for CI, what each agent's
    /// branch and worktree changed outside its `owns` or in `shared`, and agents whose `owns` take a same file;
    /// exit 1 when there is any.
    Guard {
        #[command(subcommand)]
        action: GuardCmd,
    },
    /// Checkpoints of agents' worktrees, for scripts: list, create, diff, restore, undo, prune.
    Checkpoint {
        #[command(subcommand)]
        action: CheckpointCmd,
    },
    /// Merge an agent's branch into its base (in the main worktree), or the base into the agent (--into-agent).
    /// A checkpoint of the agent is taken first. On conflicts, resolve them (`muster conflicts`, or the
    /// conflicts tab) then `muster merge --finish`, or `muster merge --abort`.
    Merge {
        /// The agent to merge (not needed with --finish or --abort).
        agent: Option<String>,
        #[arg(long)]
        into_agent: bool,
        /// The merge commit's message.
        #[arg(long, short = 'm')]
        message: Option<String>,
        /// Create the merge commit once every conflict is resolved.
        #[arg(long, conflicts_with = "abort")]
        finish: bool,
        /// Return to the state before the merge.
        #[arg(long)]
        abort: bool,
        /// Merge without running the agent's `when = "merge"` gates first (a merge is refused while one fails).
        #[arg(long)]
        skip_gates: bool,
    },
    /// Conflicts of a merge in progress: list them, or resolve a file's from the command line.
    Conflicts {
        /// Work in this agent's worktree (a base-into-agent merge) instead of the main one.
        #[arg(long, global = true)]
        agent: Option<String>,
        #[command(subcommand)]
        action: ConflictsCmd,
    },
    /// What removed agents left: their branch tips and checkpoints, kept under refs/muster/removed so `git gc`
    /// keeps them. Lists them; `--prune` forgets them (all, or one agent's).
    Removed {
        /// Forget what was kept (then `git gc` may delete those commits).
        #[arg(long)]
        prune: bool,
        /// Only this agent's.
        agent: Option<String>,
    },
    /// Why an agent of the running crew is in its state: which screen rule or hook decided, its processes, how
    /// it is paused.
    Explain { agent: String },
    /// Report an agent hook event to the running muster (called by agent CLIs' hooks; the payload on stdin).
    Hook {
        /// The hook event, e.g. Stop, Notification, UserPromptSubmit, PreToolUse.
        event: String,
        /// The event's JSON, for CLIs that pass it as an argument (Codex's notify); otherwise read from stdin.
        payload: Option<String>,
    },
    /// Measure muster: CPU with idle and streaming agents, frame time, emulator throughput, memory per agent.
    Bench {
        /// Number of agents.
        #[arg(long, default_value_t = 16)]
        agents: usize,
        /// Seconds per CPU measurement.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Only the checkpoint and rollback latencies.
        #[arg(long)]
        checkpoints_only: bool,
        /// Only the conflict parser and overlap figures.
        #[arg(long)]
        conflicts_only: bool,
        /// Only the server's figures (attach, echo latency, CPU with 1 and 3 clients), beside the in-process CPU.
        #[arg(long)]
        server_only: bool,
        /// Only the mailbox's figures (a large mailbox, send → another client, delivery, sends per second).
        #[arg(long)]
        mail_only: bool,
        /// Only the terminal's figures (emulator throughput, history weight, frame time, in-process CPU).
        #[arg(long)]
        terminal_only: bool,
        /// Only the server under floods: memory and `muster status` while hostile clients push (huge screens,
        /// request and hook floods, abandoned waits, slow clients), and SIGTERM mid-flood.
        #[arg(long)]
        floods_only: bool,
        /// Only the gates' figures (gate start after a turn, failure → agent, server CPU per run).
        #[arg(long)]
        gates_only: bool,
        /// Only the watchdog's figures (a write outside owns → the roster, its CPU with busy agents, the overlap
        /// check at load on a large repository).
        #[arg(long)]
        guard_only: bool,
        /// Only the cost of reading a state from a screen: every manifest's rules on the recorded screens (run in
        /// muster's checkout: it reads tests/fixtures/screens/).
        #[arg(long)]
        rules_only: bool,
        /// Only the figures of agents driving muster: spawn, `wait --any`, `events --follow`, a hundred children.
        #[arg(long)]
        lead_only: bool,
    },
    /// A stand-in coding agent for the demo crew and tests.
    #[command(hide = true)]
    DemoAgent {
        /// Continue a previous session: skip the first task.
        #[arg(long)]
        resume: bool,
        /// Print this many coloured lines per second forever (for benchmarks).
        #[arg(long)]
        stream: Option<u32>,
        /// With --stream: a spinner line redrawn in place this many times a second, as CLIs draw while they work.
        #[arg(long, requires = "stream")]
        spinner: Option<u32>,
        /// Seconds each spinner runs.
        #[arg(long, default_value_t = 1.2)]
        think: f64,
        /// Its kickoff (as `muster spawn --prompt` gives it): worked on at once instead of the demo's first task,
        /// ending with its result set.
        #[arg(long)]
        prompt: Option<String>,
    },
    /// Run a command that may write only beneath the folders given (Landlock): how `guard = "enforce"` starts
    /// an agent.
    #[command(hide = true)]
    Sandbox {
        #[arg(long = "write")]
        write: Vec<std::path::PathBuf>,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CrewCmd {
    /// The waves and dependencies of the crew file, checked (cycles, unknown roles and agents, overlapping `owns`):
    /// a mistake names file:line:col and exits 1.
    Plan {
        #[arg(long)]
        json: bool,
    },
    /// Start a wave that waits for the operator's word (`approve = true`), what it follows done or not.
    Approve { wave: u32 },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCmd {
    /// Every manifest: its tier (verified, partial, community), the version it was checked with, whether the CLI
    /// is on PATH, and where it was read from.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One manifest in full: how the CLI starts, resumes, takes a prompt, and its state rules.
    Show { id: String },
    /// The state a manifest's rules read from a screen: text as `tmux capture-pane -p` prints it, or a terminal's
    /// raw output (played into muster's emulator). Exit 0 when a rule matches, 1 when none does.
    Test {
        id: String,
        #[arg(long)]
        screen: PathBuf,
        /// The terminal title (OSC 0/2) to match `title` regions against.
        #[arg(long)]
        title: Option<String>,
        /// The progress report (OSC 9;4) as `STATE;VALUE`, for `progress` regions.
        #[arg(long)]
        progress: Option<String>,
        /// The CLI's version (else read from the screen with the manifest's `version_regex`).
        #[arg(long)]
        version: Option<String>,
        /// The terminal size a raw recording is played at.
        #[arg(long, default_value = "120x40")]
        size: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GuardCmd {
    /// What each agent changed outside its `owns` or in `shared`, and overlapping `owns`; exit 1 when any.
    Check {
        #[arg(long)]
        json: bool,
    },
    /// The watchdog's findings (open ones; --all: with what was done about each), newest first; read from the
    /// crew's database when no server runs.
    Status {
        agent: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Put a finding's file back as it was at its checkpoint (a rescue checkpoint is taken first).
    Restore { id: i64 },
    /// Allow a finding's path for this run of its agent.
    Allow { id: i64 },
    /// Dismiss a finding: seen, left as it is.
    Dismiss { id: i64 },
    /// Tell the agent (as mail from `guard`) what it did and what it owns.
    Tell { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum GateCmd {
    /// Run an agent's gates (every `when = "turn"` one, or the one named) now, on its worktree as it is. With
    /// --wait, print how each ended: exit 0 when all passed, 1 when one failed, 2 when one could not run.
    Run {
        agent: String,
        gate: Option<String>,
        #[arg(long)]
        wait: bool,
    },
    /// The latest runs (of one agent), newest first.
    Status {
        agent: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// A run's output, as kept (its log).
    Log { id: i64 },
    /// Give an agent one more attempt at a failing gate: its failure is sent to it now.
    Grant { agent: String, gate: Option<String> },
    /// Stop sending an agent its gates' failures (they still run and show); --resume sends them again.
    Stop {
        agent: String,
        #[arg(long)]
        resume: bool,
    },
    /// End an agent's running gates, with every process they started.
    Cancel { agent: String },
}

#[derive(Debug, Subcommand)]
pub enum MailCmd {
    /// Send a message: to agents (`--to api,docs`), the whole crew (`--to crew`) or the operator. Prints its id.
    Send {
        #[arg(long, required = true)]
        to: Vec<String>,
        /// The message; read from stdin when not given.
        text: Option<String>,
        /// Answer message ID (in its thread; it counts as your acknowledgement of it).
        #[arg(long)]
        reply_to: Option<i64>,
        /// May be typed into a busy agent whose CLI queues input (Claude Code; the demo agent).
        #[arg(long)]
        urgent: bool,
        /// Give up on it if not delivered within this many seconds.
        #[arg(long)]
        expires: Option<f64>,
        #[arg(long)]
        json: bool,
    },
    /// Your mail, newest first (the operator's: what agents sent them).
    Inbox {
        /// Only what you have not seen yet.
        #[arg(long)]
        unread: bool,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Read a message (it counts as seen; one still queued for you is not typed in after this).
    Read {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge a message.
    Ack { id: i64 },
    /// Ask the operator a question: you show as waiting on them, with the question in the roster; the answer
    /// comes back as mail (with --wait, it is printed here instead).
    Ask {
        text: Option<String>,
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Where each copy of a message is, and every step it took.
    Status {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Wait until every copy of a message is delivered, seen or acked. Exit 0 when it is, 124 on timeout, 3 when
    /// a copy cannot arrive (dead, expired, dropped) or there is no such message.
    Wait {
        id: i64,
        #[arg(long, value_parser = ["delivered", "seen", "acked"])]
        until: String,
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Send a dead letter again (to one recipient, or every one it died for).
    Retry { id: i64, recipient: Option<String> },
    /// Give up on a dead letter.
    Drop { id: i64, recipient: Option<String> },
}

#[derive(Debug, Subcommand)]
pub enum ServerCmd {
    /// Stop the crew (each agent checkpointed, then SIGTERM, then SIGKILL after a grace) and the server. Asks
    /// while agents run; without a terminal to ask on, needs --yes.
    Stop {
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Whether the server runs: its pid, version, clients, socket and log, and the crew's states. Exit 3 when
    /// it does not run.
    Status,
    /// Run the server in the foreground (what `muster` starts detached).
    #[command(hide = true)]
    Run {
        /// The terminal's colours, as JSON (the workbench that starts the server asks its terminal).
        #[arg(long)]
        palette: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CheckpointCmd {
    /// List an agent's checkpoints, newest first (all agents when none is named).
    List { agent: Option<String> },
    /// Take a checkpoint now (none is made when nothing changed since the last one).
    Create {
        agent: String,
        #[arg(long, default_value = "cli")]
        trigger: String,
    },
    /// Show what checkpoint N changed since the one before, or how the worktree differs from it (--worktree).
    Diff {
        agent: String,
        n: u32,
        #[arg(long)]
        worktree: bool,
    },
    /// Roll the worktree back to checkpoint N (only --file F when given). Without --yes, only says what would
    /// change. A rescue checkpoint is taken first.
    Restore {
        agent: String,
        n: u32,
        #[arg(long = "file")]
        files: Vec<String>,
        #[arg(long)]
        yes: bool,
    },
    /// Return to the state before the last rollback.
    Undo { agent: String },
    /// Keep only the newest N checkpoints of an agent.
    Prune {
        agent: String,
        #[arg(long)]
        keep: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Take {
    Ours,
    Theirs,
    Base,
    Both,
    Union,
}

#[derive(Debug, Subcommand)]
pub enum ConflictsCmd {
    /// The conflicted files, with their kind and number of conflicts.
    List,
    /// Resolve FILE's conflicts (all, or only --conflict N, counted from 1) with one side; stages the file when
    /// nothing in it is left unresolved.
    Resolve {
        file: String,
        #[arg(long, value_enum)]
        take: Take,
        #[arg(long)]
        conflict: Option<usize>,
    },
}

#[derive(Debug, clap::Args)]
pub struct SpawnArgs {
    pub name: String,
    /// Its CLI (a kind: claude, codex, demo…).
    #[arg(long, conflicts_with = "role", required_unless_present = "role")]
    pub kind: Option<String>,
    /// A [[role]] of the crew file.
    #[arg(long)]
    pub role: Option<String>,
    /// Its kickoff prompt (`-`: read from stdin).
    #[arg(long)]
    pub prompt: Option<String>,
    /// The branch it starts from (default: the crew's base).
    #[arg(long, conflicts_with = "from")]
    pub base: Option<String>,
    /// Start from this agent's branch.
    #[arg(long)]
    pub from: Option<String>,
    /// The files it may change (globs; repeat for more).
    #[arg(long)]
    pub owns: Vec<String>,
    /// Return only once it is idle, green (its gates passed) or done (it set a result).
    #[arg(long, value_parser = ["idle", "green", "done"])]
    pub wait: Option<String>,
    /// Give up after this many seconds (it keeps running).
    #[arg(long)]
    pub timeout: Option<f64>,
}

#[derive(Debug, Subcommand)]
pub enum ResultCmd {
    /// Set this agent's result: JSON (`summary`, `status` done|blocked|failed, `deliverables` [{path}], `gaps`,
    /// `blockers`, `risks`) from --file or stdin, or just --summary TEXT.
    Set {
        #[arg(long, conflicts_with = "summary")]
        file: Option<std::path::PathBuf>,
        #[arg(long)]
        summary: Option<String>,
        #[arg(long, value_parser = ["done", "blocked", "failed"], requires = "summary")]
        status: Option<String>,
        /// A file of the agent's worktree the work delivered (repeat for more).
        #[arg(long, requires = "summary")]
        deliverable: Vec<String>,
    },
    /// An agent's results (the newest; --all for every attempt).
    Get {
        agent: String,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        all: bool,
    },
}
