//! One running agent: a terminal thread that owns the emulator, turning output into screen snapshots and detected
//! states, and an I/O thread that reads and writes its PTY (`pty_io`). Its exit status comes from the
//! process-wide reaper (`pty::reaper`): two threads an agent.

use std::os::fd::OwnedFd;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::detect::{self, Decision, HookReport, Rule, View};
use super::gather::{Gather, Look};
use super::inbox::{EngineMsg, Report};
use super::pty_io::{self, wake_up, Output};
pub use super::pty_io::{WriteError, WriteOp, Writer};
use super::{AgentState, Event, EventSink};
use crate::protocol::screen::BufferPos;
use crate::pty::{PtyBackend, PtyControl, SpawnSpec};
use crate::term::{search, AlacrittyModel, InputModes, Palette, TerminalModel};

/// At most this often a watched agent's screen is sent to the UI while someone types into it (~60 fps)…
const FRAME: Duration = Duration::from_millis(16);
/// …and while it only streams output (~30 fps: a flood scrolls as smoothly to the eye, at half the drawing).
const FLOOD_FRAME: Duration = super::gather::GATHER;
/// Output this soon after a key is its echo: it goes out at once, not at the next frame.
const ECHO_GRACE: Duration = Duration::from_millis(50);
/// For this long after a key the agent counts as typed into (frames at the faster rate).
const TYPING: Duration = Duration::from_secs(2);
/// A command the agent waits for counts as work when it has run since the screen last changed, give or take
/// this (the screen changes as the command line is echoed, the command starts a moment later).
const CHILD_SLACK: Duration = Duration::from_millis(250);
/// How often a job in the terminal's foreground is looked at again while nothing is drawn.
const FOREGROUND_EVERY: Duration = Duration::from_secs(1);
/// How long the output must hold still before a screen rule's new verdict counts on one read.
const REDRAW_SETTLE: Duration = Duration::from_millis(50);
/// At most this often the screen is checked against state rules.
const DETECT_EVERY: Duration = Duration::from_millis(100);
/// At most this often the time of last activity is reported while the screen keeps changing.
const ACTIVITY_REPORT: Duration = Duration::from_secs(1);

/// What the engine tells an agent's terminal thread.
pub enum TermMsg {
    Resize(u16, u16),
    /// One viewer's view moves back into history (positive) or forward; the other viewers' stay.
    Scroll {
        viewer: u64,
        lines: i32,
    },
    /// That viewer follows the output again; `typed`: because its operator typed into the agent (its frames
    /// then go faster, and the echo at once).
    ScrollBottom {
        viewer: u64,
        typed: bool,
    },
    Watch(bool),
    Hook(HookReport),
    /// Look at the screen again now (after a resume, say) and report, even if nothing changed.
    Redetect,
    /// The Enter of a delivery went in, then: the engine is told, and told again once the screen changed after.
    Entered(Instant),
    /// A task went in (a steer, the operator's Enter at its prompt or on its dialog): busy at once for a CLI
    /// whose own first sign comes late (`SpawnArgs::busy_on_task`).
    Task(Instant),
    /// `muster read`: the agent's output, answered on `reply`.
    Read {
        what: crate::protocol::lead::ReadWhat,
        ansi: bool,
        reply: std::sync::mpsc::Sender<crate::protocol::script::Answer>,
    },
    /// `Command::Search` of one viewer: the answer goes to `asker`, and that viewer's view moves to the match.
    Search {
        viewer: u64,
        asker: super::Asker,
        pattern: String,
        from: Option<BufferPos>,
        older: bool,
    },
    /// `Command::CopyText`, answered to `asker`.
    Copy {
        asker: super::Asker,
        from: BufferPos,
        to: BufferPos,
    },
}

/// The engine's handles on a running agent.
pub struct Running {
    pub generation: u64,
    pub writer: Writer,
    pub control: Arc<dyn PtyControl>,
    pub term: TermInbox,
    pub modes: Arc<Mutex<InputModes>>,
    pub exited: bool,
}

/// The engine's way into an agent's terminal thread: a message, then a wake-up. Dropping it ends the thread.
pub struct TermInbox {
    /// An Option so that `drop` lets go of it before the wake-up: woken, the thread must see it closed.
    tx: Option<Sender<TermMsg>>,
    wake: Arc<OwnedFd>,
}

impl TermInbox {
    pub fn send(&self, msg: TermMsg) -> Result<(), mpsc::SendError<TermMsg>> {
        match &self.tx {
            Some(tx) => tx.send(msg)?,
            None => return Err(mpsc::SendError(msg)),
        }
        wake_up(&self.wake);
        Ok(())
    }
}

impl Drop for TermInbox {
    fn drop(&mut self) {
        // The thread hears that its inbox closed only when it looks.
        drop(self.tx.take());
        wake_up(&self.wake);
    }
}

impl Running {
    pub fn write(&self, bytes: Vec<u8>) -> Result<(), WriteError> {
        self.writer.send(WriteOp::Bytes(bytes))
    }

    pub fn modes(&self) -> InputModes {
        self.modes.lock().map(|m| *m).unwrap_or_default()
    }
}

pub struct SpawnArgs {
    pub name: String,
    pub generation: u64,
    pub spec: SpawnSpec,
    pub scrollback: usize,
    pub rules: Vec<Rule>,
    pub version_regex: Option<regex::Regex>,
    pub watched: bool,
    pub palette: Palette,
    /// A command in the terminal's foreground other than the agent's own process means it works (shells).
    pub foreground_busy: bool,
    /// Lines whose coming and going is not activity (the preset's `inert`).
    pub inert: Vec<regex::Regex>,
    /// How long it may draw nothing and still be starting (its manifest's `boot_timeout_s`).
    pub boot_within: std::time::Duration,
    /// It reviews others: a verdict line its turn leaves on the screen is read (`protocol::review::verdict_line`).
    pub reads_verdicts: bool,
    /// A task that goes in shows busy at once for up to this long (its manifest's `busy_on_task_ms`, with hooks).
    pub busy_on_task: Option<Duration>,
    /// How long an idle hook report waits for a still screen (its manifest's `idle_settle_ms`).
    pub idle_settle: Duration,
}

pub use crate::protocol::now_ms;

pub fn spawn(backend: &dyn PtyBackend, args: SpawnArgs, engine: Sender<EngineMsg>, sink: EventSink) -> Result<Running> {
    let process = backend.spawn(&args.spec)?;
    let modes = Arc::new(Mutex::new(InputModes::default()));
    let control: Arc<dyn PtyControl> = Arc::from(process.control);
    let wake = pty_io::eventfd()?;
    let (term_tx, term_rx) = mpsc::channel::<TermMsg>();
    let entered = Arc::new(Mutex::new(None));
    let (writer, output) = pty_io::start(pty_io::Io {
        name: args.name.clone(),
        reader: process.reader,
        poll_fd: process.poll_fd,
        writer: process.writer,
        modes: modes.clone(),
        entered: entered.clone(),
        term_wake: wake.clone(),
    })?;

    let model = AlacrittyModel::with_palette(args.spec.rows, args.spec.cols, args.scrollback, args.palette);
    let term_state = TermThread {
        name: args.name.clone(),
        generation: args.generation,
        model: Box::new(model),
        writer: writer.clone(),
        modes: modes.clone(),
        engine: engine.clone(),
        sink,
        rules: args.rules,
        foreground: args.foreground_busy.then(|| control.clone()),
        inert: args.inert,
        drawn: false,
        started: Instant::now(),
        boot_within: args.boot_within,
        busy_on_task: args.busy_on_task,
        idle_settle: args.idle_settle,
        task_at: None,
        verdicts: args.reads_verdicts.then_some(None),
        turn_began: None,
        version_regex: args.version_regex,
        version: None,
        watched: args.watched,
        views: Default::default(),
        history_seen: 0,
        screen_dirty: true,
        detect_dirty: true,
        force_report: false,
        unsettled: None,
        last_frame: None,
        last_output: None,
        last_hash: None,
        last_change: None,
        last_detect: None,
        last_activity_report: None,
        reported: None,
        hook: None,
        entered: None,
        entered_slot: entered,
        last_key: None,
        gather: Gather::default(),
        quiet_ended: false,
    };
    let thread_wake = wake.clone();
    std::thread::Builder::new()
        .name(format!("term-{}", args.name))
        .spawn(move || term_state.run(&term_rx, &thread_wake, &output))?;

    let name = args.name.clone();
    let generation = args.generation;
    crate::pty::reaper::watch(
        process.waiter,
        Box::new(move |exit| {
            let _ = engine.send(EngineMsg::Report(Report::Exited { name, generation, exit }));
        }),
    );

    Ok(Running {
        generation: args.generation,
        writer,
        control,
        term: TermInbox { tx: Some(term_tx), wake },
        modes,
        exited: false,
    })
}

/// What the terminal thread tells the engine it decided.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reported {
    decision: Decision,
    title: Option<String>,
}

struct TermThread {
    name: String,
    generation: u64,
    model: Box<dyn TerminalModel>,
    writer: Writer,
    modes: Arc<Mutex<InputModes>>,
    engine: Sender<EngineMsg>,
    sink: EventSink,
    rules: Vec<Rule>,
    /// Where the terminal's foreground process group is read, for presets that read it.
    foreground: Option<Arc<dyn PtyControl>>,
    /// Whether the screen has shown text yet, and since when the agent runs.
    drawn: bool,
    started: Instant,
    boot_within: std::time::Duration,
    busy_on_task: Option<Duration>,
    idle_settle: Duration,
    /// When the last task went in (for `busy_on_task`).
    task_at: Option<Instant>,
    /// Where its last turn began: rows scrolled into history by then, and the screen's rows then.
    turn_began: Option<u64>,
    /// For a reviewer: how many verdict lines the buffer held when its turn began (None: no turn yet).
    verdicts: Option<Option<usize>>,
    version_regex: Option<regex::Regex>,
    /// The CLI's version, once its screen showed it.
    version: Option<Vec<u64>>,
    watched: bool,
    /// How far back in history each viewer that scrolled looks (the live view is everyone else's).
    views: std::collections::BTreeMap<u64, usize>,
    history_seen: usize,
    /// The screen changed since the last frame sent.
    screen_dirty: bool,
    /// Output arrived (or something else happened) since the last rule check.
    detect_dirty: bool,
    force_report: bool,
    /// A new state read from the screen while output still came, and when it was first read: a screen read in
    /// the middle of a redraw (a spinner's line cleared, the next line not written yet; a dialog clearing its
    /// line to draw it again) shows what is not so — an answered question, a dialog gone — so such a state
    /// counts once the output held still or a second read `REDRAW_SETTLE` later gives it again.
    unsettled: Option<(AgentState, Instant)>,
    last_frame: Option<Instant>,
    last_output: Option<Instant>,
    /// What the live screen said at the last check, and when it last said something new.
    last_hash: Option<u64>,
    last_change: Option<Instant>,
    inert: Vec<regex::Regex>,
    last_detect: Option<Instant>,
    last_activity_report: Option<Instant>,
    reported: Option<Reported>,
    hook: Option<HookReport>,
    /// When a delivery's Enter went in, until the screen changes after it.
    entered: Option<Instant>,
    /// Where the writer leaves the moment a delivery's Enter went in.
    entered_slot: Arc<Mutex<Option<Instant>>>,
    /// When a key was last typed into it.
    last_key: Option<Instant>,
    /// When output read is taken to be emulated.
    gather: Gather,
    /// A key ended the output's quiet time: the I/O thread is told once the message is handled.
    quiet_ended: bool,
}

impl TermThread {
    fn run(mut self, rx: &Receiver<TermMsg>, wake: &OwnedFd, output: &Output) {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        // Two buffers go back and forth with the reader: a flood is emulated a batch at a time while it reads on.
        let mut batch = Vec::new();
        let mut ended = false;
        loop {
            let timeout = self.next_deadline().map(|d| {
                let d = d.saturating_duration_since(Instant::now());
                Timespec { tv_sec: d.as_secs() as i64, tv_nsec: d.subsec_nanos() as _ }
            });
            // EINTR or a failed poll: look at everything again.
            let _ = poll(&mut [PollFd::new(wake, PollFlags::IN)], timeout.as_ref());
            pty_io::clear(wake);
            if !ended {
                let now = Instant::now();
                let (waiting, ends) = output.waiting();
                let echo = self.last_key.is_some_and(|k| now.saturating_duration_since(k) < ECHO_GRACE);
                match self.gather.look(now, waiting, ends, echo) {
                    Look::Leave => {}
                    Look::EndQuiet => output.quiet_until(None),
                    Look::Take => {
                        ended = output.take(&mut batch);
                        if !batch.is_empty() {
                            // Output that follows within a frame's time is gathered without waking this thread:
                            // it looks once, then.
                            output.quiet_until(Some(self.gather.took(now)));
                            self.output(&batch);
                        }
                        if ended {
                            // The last output is in: send the final screen.
                            self.mark_dirty();
                        }
                    }
                }
            }
            if let Some(at) = self.entered_slot.lock().ok().and_then(|mut s| s.take()) {
                self.handle(TermMsg::Entered(at));
            }
            loop {
                match rx.try_recv() {
                    Ok(m) => self.handle(m),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if std::mem::take(&mut self.quiet_ended) {
                output.quiet_until(None);
            }
            self.after_batch();
        }
    }

    fn output(&mut self, bytes: &[u8]) {
        self.model.feed(bytes);
        // Viewers back in history keep looking at the same lines while new ones arrive.
        let history = self.model.history_size();
        let grew = history.saturating_sub(self.history_seen);
        self.history_seen = history;
        for at in self.views.values_mut() {
            *at = (*at + grew).min(history);
        }
        self.last_output = Some(Instant::now());
        self.mark_dirty();
    }

    fn handle(&mut self, msg: TermMsg) {
        match msg {
            TermMsg::Resize(rows, cols) => {
                if self.model.size() != (rows, cols) {
                    let before = self.model.history_size();
                    self.model.resize(rows, cols);
                    self.mark_dirty();
                    // A reflow is muster's doing, not the agent's: the new text is the new baseline.
                    self.last_hash = Some(self.activity_hash());
                    // Viewers back in history see it at the new size too (they get no live frames), from the
                    // same line: rows a shorter screen pushed into history (or a taller one took back) move it.
                    let history = self.model.history_size();
                    self.history_seen = history;
                    for (&viewer, at) in &mut self.views {
                        *at = (*at + history).saturating_sub(before).min(history);
                        let screen = self.model.snapshot_at(*at);
                        self.sink.screen_for(self.name.clone(), viewer, screen);
                    }
                    self.views.retain(|_, at| *at > 0);
                }
            }
            TermMsg::Scroll { viewer, lines } => {
                let history = self.model.history_size() as i64;
                let at = self.views.get(&viewer).copied().unwrap_or(0) as i64;
                let to = (at + lines as i64).clamp(0, history) as usize;
                if to == 0 {
                    self.views.remove(&viewer);
                } else {
                    self.views.insert(viewer, to);
                }
                self.sink.screen_for(self.name.clone(), viewer, self.model.snapshot_at(to));
            }
            TermMsg::ScrollBottom { viewer, typed } => {
                if typed {
                    self.last_key = Some(Instant::now());
                    // Its echo is taken the moment it comes, not with a stream's next batch.
                    self.gather.typed();
                    self.quiet_ended = true;
                }
                // Every key asks for this: a frame only when the view moves, or the key's own frame would go
                // out just before its echo, and the echo wait out the frame interval.
                if self.views.remove(&viewer).is_some() {
                    self.sink.screen_for(self.name.clone(), viewer, self.model.snapshot());
                }
            }
            TermMsg::Watch(on) => {
                self.watched = on;
                self.screen_dirty = true;
                self.last_frame = None;
            }
            TermMsg::Hook(report) => {
                self.hook = Some(report);
                self.last_detect = None;
                self.detect_dirty = true;
            }
            TermMsg::Task(at) => {
                if self.busy_on_task.is_some() {
                    self.task_at = Some(at);
                    self.last_detect = None;
                    self.detect_dirty = true;
                }
            }
            TermMsg::Entered(at) => {
                self.entered = Some(at);
                // The screen may already have answered: the next check says so.
                self.detect_dirty = true;
                let _ = self.engine.send(EngineMsg::Report(Report::MailEntered {
                    name: self.name.clone(),
                    generation: self.generation,
                }));
            }
            TermMsg::Search { viewer, asker, pattern, from, older } => {
                let found = search::compile(&pattern).map(|re| {
                    let rows = self.model.text_rows(0, self.model.buffer_rows());
                    let hits = search::find_all(&rows, 0, &re);
                    // By default from just below the viewer's view: its bottom row is searched first.
                    let at = self.views.get(&viewer).copied().unwrap_or(0);
                    let below = (self.model.history_size() - at.min(self.model.history_size())) as u64
                        + self.model.size().0 as u64;
                    let found = search::pick(&hits, from.unwrap_or(BufferPos { row: below, col: 0 }), older);
                    if let Some(f) = found {
                        self.show_row(viewer, f.start.row);
                    }
                    found
                });
                self.sink.reply(asker, Event::SearchFound { name: self.name.clone(), pattern, found });
            }
            TermMsg::Copy { asker, from, to } => {
                // Rows a client names may be anywhere: only those the buffer has are read.
                let total = self.model.buffer_rows() as u64;
                let (first, last) = (from.min(to).row.min(total), from.max(to).row.min(total));
                let rows = self.model.text_rows(first as usize, (last - first) as usize + 1);
                let mut text = search::text_between(&rows, first, from, to);
                let cut = text.len() > crate::protocol::MAX_COPY;
                text.truncate(text.floor_char_boundary(crate::protocol::MAX_COPY));
                self.sink.reply(asker, Event::Copied { name: self.name.clone(), text, cut });
            }
            TermMsg::Read { what, ansi, reply } => {
                let text = self.read_out(what, ansi);
                let _ = reply.send(crate::protocol::script::Answer::Text { text });
            }
            TermMsg::Redetect => {
                self.last_detect = None;
                self.detect_dirty = true;
                self.force_report = true;
            }
        }
    }

    /// What `muster read` asks for, as text (or with its styles as SGR).
    fn read_out(&self, what: crate::protocol::lead::ReadWhat, ansi: bool) -> String {
        use crate::protocol::lead::ReadWhat;
        /// At most this many rows are read back at once.
        const MAX_ROWS: usize = 100_000;
        let total = self.model.buffer_rows();
        let screen_rows = self.model.size().0 as usize;
        let count = match what {
            ReadWhat::Screen {} => screen_rows,
            ReadWhat::Lines { n } => n,
            // Rows that scrolled in since the turn began, and the screen.
            ReadWhat::Turn {} => match self.turn_began {
                Some(at) => (self.model.rows_pushed().saturating_sub(at) as usize).saturating_add(screen_rows),
                None => 0,
            },
        }
        .min(total)
        .min(MAX_ROWS);
        let from = total - count;
        let mut lines: Vec<String> = if ansi {
            // Screens scrolled back far enough to show each row, taken a screen at a time.
            let history = self.model.history_size();
            let mut out = Vec::with_capacity(count);
            let mut row = from;
            while row < total {
                let offset = history.saturating_sub(row);
                let screen = self.model.snapshot_at(offset);
                let top = history - offset;
                for r in row..(top + screen_rows).min(total) {
                    out.push(crate::term::ansi::line(screen.row((r - top) as u16)));
                }
                row = (top + screen_rows).min(total).max(row + 1);
            }
            out
        } else {
            self.model.text_rows(from, count).into_iter().map(|r| r.text.trim_end().to_string()).collect()
        };
        while lines.last().is_some_and(|l| l.trim().is_empty()) {
            lines.pop();
        }
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }

    /// A reviewer's turn: the verdict lines the buffer holds are counted when it begins; when it ends with more,
    /// the newest is its verdict (one from an earlier turn still on screen is not counted again; one scrolled out
    /// of a capped history is missed, never invented).
    fn verdict_on_turn(&mut self, was: Option<AgentState>, now: AgentState) {
        let Some(base) = self.verdicts else { return };
        let busy = |s: Option<AgentState>| s == Some(AgentState::Busy);
        if now == AgentState::Busy && !busy(was) {
            self.verdicts = Some(Some(self.verdict_scan().0));
        } else if busy(was) && matches!(now, AgentState::Idle | AgentState::Waiting) {
            let (count, last) = self.verdict_scan();
            self.verdicts = Some(None);
            if let (Some(base), Some((approved, target, reasons))) = (base, last) {
                if count > base {
                    let _ = self.engine.send(EngineMsg::Report(Report::ScreenVerdict {
                        name: self.name.clone(),
                        generation: self.generation,
                        approved,
                        target,
                        reasons,
                    }));
                }
            }
        }
    }

    /// How many verdict lines the buffer holds, and the newest with up to 12 lines of text above it.
    fn verdict_scan(&self) -> (usize, Option<(bool, Option<String>, String)>) {
        let rows = self.model.text_rows(0, self.model.buffer_rows());
        let mut count = 0;
        let mut last = None;
        for (i, row) in rows.iter().enumerate() {
            if let Some((approved, target)) = crate::protocol::review::verdict_line(&row.text) {
                count += 1;
                last = Some((i, approved, target.map(str::to_string)));
            }
        }
        let last = last.map(|(i, approved, target)| {
            let above: Vec<&str> =
                rows[..i].iter().rev().map(|r| r.text.trim()).filter(|t| !t.is_empty()).take(12).collect();
            let reasons: Vec<&str> = above.into_iter().rev().collect();
            (approved, target, reasons.join("\n"))
        });
        (count, last)
    }

    /// Moves `viewer`'s view so that buffer row `row` shows (near its middle, when it has to move).
    fn show_row(&mut self, viewer: u64, row: u64) {
        let history = self.model.history_size();
        let rows = self.model.size().0 as usize;
        let at = self.views.get(&viewer).copied().unwrap_or(0);
        let top = history - at.min(history);
        let row = row as usize;
        if (top..top + rows).contains(&row) {
            return;
        }
        let to = (history + rows / 2).saturating_sub(row).min(history);
        if to == 0 {
            self.views.remove(&viewer);
        } else {
            self.views.insert(viewer, to);
        }
        self.sink.screen_for(self.name.clone(), viewer, self.model.snapshot_at(to));
    }

    /// The name of what runs in the terminal's foreground when it is not the agent's own process group (a
    /// shell's job), for presets that read it.
    fn foreground_command(&self) -> Option<String> {
        let control = self.foreground.as_ref()?;
        let (own, group) = (control.pid()? as i32, control.foreground_group()?);
        if group <= 0 {
            return None;
        }
        if group != own {
            return Some(crate::pty::tree::command_name(group).unwrap_or_else(|| format!("process group {group}")));
        }
        // No job control (a REPL's `os.system`, a script's command): the agent waits for a child it started and
        // that has run since the screen last changed (a loop's `sleep 0.2` between repaints of the same screen
        // started long after: it is no work).
        if !crate::pty::tree::waiting_for_child(own) {
            return None;
        }
        let child = crate::pty::tree::first_child(own)?;
        let age = crate::pty::tree::process_age(child)?;
        let quiet = self.last_change.map_or(Duration::MAX, |c| c.elapsed());
        if age + CHILD_SLACK < quiet {
            return None;
        }
        Some(crate::pty::tree::command_name(child).unwrap_or_else(|| "a command".into()))
    }

    /// While the agent reads busy, the moments its state can change without new output: activity going
    /// quiet, a busy hook report expiring.
    fn settle_deadline(&self) -> Option<Instant> {
        let state = self.reported.as_ref().map(|r| r.decision.state);
        if state == Some(AgentState::Waiting) {
            // A waiting hook report's hold ends with no output to wake this thread.
            let hook = self.hook.as_ref().filter(|h| h.state == AgentState::Waiting);
            return hook.map(|h| h.at + detect::HOOK_WAITING_QUIET).filter(|t| self.last_detect.is_none_or(|d| d < *t));
        }
        if state == Some(AgentState::Starting) && !self.drawn {
            // Starting ends by itself when it has drawn nothing for long enough.
            return Some(self.started + self.boot_within).filter(|t| self.last_detect.is_none_or(|d| d < *t));
        }
        if state != Some(AgentState::Busy) {
            return None;
        }
        let mut at = Vec::new();
        if self.reported.as_ref().is_some_and(|r| r.decision.why.ends_with("runs in the foreground")) {
            // A quiet job ends without output the shell's prompt has not drawn yet: looked at again each second.
            at.push(self.last_detect.map_or(Instant::now(), |d| d + FOREGROUND_EVERY));
        }
        if let Some(c) = self.last_change {
            at.push(c + detect::ACTIVITY_DEBOUNCE);
        }
        // A task's hold ends with no output to wake this thread.
        if let (Some(t), Some(hold)) = (self.task_held(Instant::now()), self.busy_on_task) {
            at.push(t + hold);
        }
        if let Some(h) = self.hook.as_ref().filter(|h| h.state == AgentState::Busy) {
            at.push(self.last_change.map_or(h.at, |c| c.max(h.at)) + detect::HOOK_BUSY_QUIET);
        }
        // An idle report waiting for the screen to be still: looked at again when it may be.
        if let Some(h) = self.hook.as_ref().filter(|h| h.state == AgentState::Idle) {
            at.push(self.last_change.map_or(h.at, |c| c.max(h.at)) + self.idle_settle);
        }
        at.into_iter().filter(|t| self.last_detect.is_none_or(|d| d < *t)).min()
    }

    /// The task that went in, while it still holds the agent busy: within the hold, and its hooks silent since.
    fn task_held(&self, now: Instant) -> Option<Instant> {
        let (at, hold) = (self.task_at?, self.busy_on_task?);
        let spoken = self.hook.as_ref().is_some_and(|h| h.at >= at);
        (now.saturating_duration_since(at) < hold && !spoken).then_some(at)
    }

    /// When an unsettled verdict is read again: when the output has held still, or a second read may confirm it.
    fn recheck_deadline(&self) -> Option<Instant> {
        let (_, first) = self.unsettled?;
        // Output after the first read: the second read then; none since: when the output has held still.
        let at = self.last_output?.min(first) + REDRAW_SETTLE;
        Some(at).filter(|t| self.last_detect.is_none_or(|d| d < *t))
    }

    /// How long after the last frame the next may go: at once for the echo of a key, faster while typed into.
    fn frame_interval(&self, now: Instant) -> Duration {
        match self.last_key.map(|k| now.saturating_duration_since(k)) {
            Some(since) if since < ECHO_GRACE => Duration::ZERO,
            Some(since) if since < TYPING => FRAME,
            _ => FLOOD_FRAME,
        }
    }

    fn mark_dirty(&mut self) {
        self.screen_dirty = true;
        self.detect_dirty = true;
    }

    /// The earliest moment something must happen without new input.
    fn next_deadline(&self) -> Option<Instant> {
        let frame = match (self.screen_dirty, self.watched, self.last_frame) {
            (true, true, Some(f)) => Some(f + self.frame_interval(Instant::now())),
            _ => None,
        };
        let detect = self.last_detect.filter(|_| self.detect_dirty).map(|d| d + DETECT_EVERY);
        [
            self.model.sync_deadline(),
            self.model.history_deadline(),
            frame,
            detect,
            self.settle_deadline(),
            self.recheck_deadline(),
            self.gather.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn after_batch(&mut self) {
        let now = Instant::now();
        if self.model.sync_deadline().is_some_and(|d| d <= now) {
            self.model.flush_sync();
            self.mark_dirty();
        }
        if self.model.history_deadline().is_some_and(|d| d <= now) {
            self.model.compact_history(now);
        }
        let replies = self.model.take_replies();
        if !replies.is_empty() {
            // A child that does not read gets no answers; the terminal thread never waits for it.
            let _ = self.writer.send(WriteOp::Bytes(replies));
        }
        if let Ok(mut m) = self.modes.lock() {
            *m = self.model.modes();
        }
        if self.model.take_bell() {
            self.sink.event(Event::Bell { name: self.name.clone() });
        }
        for text in self.model.take_notifications() {
            self.sink.event(Event::Notification { name: self.name.clone(), text });
        }
        if self.screen_dirty && self.watched && self.last_frame.is_none_or(|f| now >= f + self.frame_interval(now)) {
            let (screen, change) = self.model.live_frame();
            self.sink.event(Event::Screen { name: self.name.clone(), screen, change });
            self.last_frame = Some(now);
            self.screen_dirty = false;
        }
        let detect_due = self.detect_dirty && self.last_detect.is_none_or(|d| now >= d + DETECT_EVERY);
        let settle_due = [self.settle_deadline(), self.recheck_deadline()].into_iter().flatten().any(|d| now >= d);
        if detect_due || settle_due {
            self.detect(now);
            self.detect_dirty = false;
        }
    }

    /// Whether a state read from the screen (`by_screen`: by a rule or by its activity), new against `was`,
    /// waits for the screen to settle: read while output still comes, it counts when a read `REDRAW_SETTLE`
    /// later gives it again.
    fn unsure(&mut self, by_screen: bool, state: AgentState, was: Option<AgentState>, now: Instant) -> bool {
        let moving = self.last_output.is_some_and(|o| now.saturating_duration_since(o) < REDRAW_SETTLE);
        if !by_screen || !moving || was.is_none_or(|w| w == state) {
            self.unsettled = None;
            return false;
        }
        match self.unsettled {
            Some((s, first)) if s == state && now.saturating_duration_since(first) >= REDRAW_SETTLE => {
                self.unsettled = None;
                false
            }
            Some((s, _)) if s == state => true,
            _ => {
                self.unsettled = Some((state, now));
                true
            }
        }
    }

    /// What the screen says, as a hash: equal hashes, no activity. Lines the preset calls inert (muster's own
    /// doing) read as the blank they leave when they go.
    fn activity_hash(&self) -> u64 {
        self.model.content_hash_except(&self.inert)
    }

    fn detect(&mut self, now: Instant) {
        self.last_detect = Some(now);
        // Activity is a change of what the screen says, not bytes: a repaint after SIGCONT or SIGWINCH, a
        // cursor blink or an identical spinner frame is not work.
        let hash = self.activity_hash();
        if self.last_hash != Some(hash) {
            if self.last_hash.is_some() || self.last_output.is_some() {
                self.last_change = self.last_output.or(Some(now));
            }
            self.last_hash = Some(hash);
        }
        if let (Some(t), Some(c)) = (self.entered, self.last_change) {
            if c > t {
                // What was typed in left the prompt: the agent answered it on screen.
                self.entered = None;
                let _ = self.engine.send(EngineMsg::Report(Report::MailTaken {
                    name: self.name.clone(),
                    generation: self.generation,
                }));
            }
        }
        let foreground = self.foreground_command();
        let lines = self.model.text_lines();
        let title = self.model.title();
        let progress = self.model.progress();
        if self.version.is_none() {
            if let Some(re) = &self.version_regex {
                self.version = re.captures(&lines.join("\n")).and_then(|c| detect::parse_version(c.get(1)?.as_str()));
            }
        }
        let view = View {
            lines: &lines,
            title: title.as_deref(),
            progress: progress.as_deref(),
            alt_screen: self.model.modes().alt_screen,
            version: self.version.as_deref(),
        };
        let rule = detect::match_rules(&self.rules, &view);
        self.drawn = self.drawn || lines.iter().any(|l| !l.trim().is_empty());
        let signals = detect::Signals {
            rule,
            hook: self.hook.as_ref(),
            last_change: self.last_change,
            sees_dialogs: self.rules.iter().any(|r| r.state == AgentState::Waiting),
            foreground: foreground.as_deref(),
            drawn: self.drawn,
            started: self.started,
            boot_within: self.boot_within,
            task: self.task_held(now),
            idle_settle: self.idle_settle,
        };
        let decision = detect::detect(&signals, now);
        let was = self.reported.as_ref().map(|r| r.decision.state);
        if self.unsure(decision.screen, decision.state, was, now) {
            return;
        }
        let current = Reported { decision, title };
        let activity_due = self
            .last_change
            .is_some_and(|c| self.last_activity_report.is_none_or(|r| now >= r + ACTIVITY_REPORT && c > r));
        // A new reason alone is worth telling (activity said idle, then the prompt rule matched).
        let changed = self.reported.as_ref() != Some(&current);
        if changed {
            if current.decision.state == AgentState::Busy && was != Some(AgentState::Busy) {
                self.turn_began = Some(self.model.rows_pushed());
            }
            self.verdict_on_turn(was, current.decision.state);
        }
        if changed || activity_due || std::mem::take(&mut self.force_report) {
            let last_output_ms =
                self.last_change.map(|o| now_ms().saturating_sub(now.duration_since(o).as_millis() as u64));
            let _ = self.engine.send(EngineMsg::Report(Report::Detected {
                name: self.name.clone(),
                generation: self.generation,
                state: current.decision.state,
                why: current.decision.why.clone(),
                title: current.title.clone(),
                last_output_ms,
            }));
            self.last_activity_report = Some(now);
        }
        self.reported = Some(current);
    }
}
