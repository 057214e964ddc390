//! One running agent: a reader thread that drains the PTY, a terminal thread that owns the emulator and turns
//! output into screen snapshots and detected states, and a waiter thread for the exit status.

use std::io::{Read, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;

use super::detect::{self, HookReport, Rule};
use super::supervisor::EngineMsg;
use super::{AgentState, Event, EventSink};
use crate::pty::{PtyBackend, PtyControl, SpawnSpec};
use crate::term::{AlacrittyModel, InputModes, TerminalModel};

/// At most this often a watched agent's screen is sent to the UI (~60 fps).
const FRAME: Duration = Duration::from_millis(16);
/// At most this often the screen is checked against state rules.
const DETECT_EVERY: Duration = Duration::from_millis(100);
/// At most this often the time of last output is reported while output flows.
const ACTIVITY_REPORT: Duration = Duration::from_secs(1);

pub enum TermMsg {
    Output(Vec<u8>),
    Eof,
    Resize(u16, u16),
    Scroll(i32),
    ScrollBottom,
    Watch(bool),
    Hook(AgentState),
}

/// The engine's handles on a running agent.
pub struct Running {
    pub generation: u64,
    pub writer: Arc<Mutex<Box<dyn Write + Send>>>,
    pub control: Arc<dyn PtyControl>,
    pub term: Sender<TermMsg>,
    pub modes: Arc<Mutex<InputModes>>,
    pub exited: bool,
    /// Fires once when the child exits; taken by whoever waits out a stop's grace period.
    pub exit_signal: Option<Receiver<()>>,
}

impl Running {
    pub fn write(&self, bytes: &[u8]) {
        if let Ok(mut w) = self.writer.lock() {
            // A child that has gone cannot take input; its exit is reported separately.
            let _ = w.write_all(bytes).and_then(|_| w.flush());
        }
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
    pub watched: bool,
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn spawn(backend: &dyn PtyBackend, args: SpawnArgs, engine: Sender<EngineMsg>, sink: EventSink) -> Result<Running> {
    let process = backend.spawn(&args.spec)?;
    let writer: Arc<Mutex<Box<dyn Write + Send>>> = Arc::new(Mutex::new(process.writer));
    let control: Arc<dyn PtyControl> = Arc::from(process.control);
    let modes = Arc::new(Mutex::new(InputModes::default()));
    // Bounded: a child that outpaces the emulator is slowed by the PTY instead of growing memory.
    let (term_tx, term_rx) = mpsc::sync_channel::<TermMsg>(64);
    let (term_fwd_tx, term_fwd_rx) = mpsc::channel::<TermMsg>();

    let reader_tx = term_tx.clone();
    let mut reader = process.reader;
    std::thread::Builder::new().name(format!("pty-read-{}", args.name)).spawn(move || {
        read_loop(&mut reader, &reader_tx);
    })?;

    // Engine-side messages (resize, scroll, …) go through an unbounded channel and a forwarder, so the engine
    // thread never blocks on a busy terminal thread.
    let fwd_tx = term_tx;
    std::thread::Builder::new().name(format!("term-fwd-{}", args.name)).spawn(move || {
        for msg in term_fwd_rx {
            if fwd_tx.send(msg).is_err() {
                break;
            }
        }
    })?;

    let model = AlacrittyModel::new(args.spec.rows, args.spec.cols, args.scrollback);
    let term_state = TermThread {
        name: args.name.clone(),
        generation: args.generation,
        model: Box::new(model),
        writer: writer.clone(),
        modes: modes.clone(),
        engine: engine.clone(),
        sink,
        rules: args.rules,
        watched: args.watched,
        screen_dirty: true,
        detect_dirty: true,
        last_frame: None,
        last_output: None,
        last_detect: None,
        last_activity_report: None,
        reported: None,
        hook: None,
    };
    std::thread::Builder::new().name(format!("term-{}", args.name)).spawn(move || term_state.run(term_rx))?;

    let (exit_tx, exit_rx) = mpsc::channel();
    let mut waiter = process.waiter;
    let name = args.name.clone();
    let generation = args.generation;
    std::thread::Builder::new().name(format!("wait-{}", args.name)).spawn(move || {
        let exit = waiter.wait().unwrap_or(crate::pty::ExitInfo { code: None, signal: None });
        let _ = exit_tx.send(());
        let _ = engine.send(EngineMsg::Exited { name, generation, exit });
    })?;

    Ok(Running {
        generation: args.generation,
        writer,
        control,
        term: term_fwd_tx,
        modes,
        exited: false,
        exit_signal: Some(exit_rx),
    })
}

fn read_loop(reader: &mut Box<dyn Read + Send>, tx: &SyncSender<TermMsg>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if tx.send(TermMsg::Output(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // EIO is how Linux reports that the child side closed.
            Err(_) => break,
        }
    }
    let _ = tx.send(TermMsg::Eof);
}

struct TermThread {
    name: String,
    generation: u64,
    model: Box<dyn TerminalModel>,
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
    modes: Arc<Mutex<InputModes>>,
    engine: Sender<EngineMsg>,
    sink: EventSink,
    rules: Vec<Rule>,
    watched: bool,
    /// The screen changed since the last frame sent.
    screen_dirty: bool,
    /// The screen changed since the last rule check.
    detect_dirty: bool,
    last_frame: Option<Instant>,
    last_output: Option<Instant>,
    last_detect: Option<Instant>,
    last_activity_report: Option<Instant>,
    reported: Option<(AgentState, Option<String>)>,
    hook: Option<HookReport>,
}

impl TermThread {
    fn run(mut self, rx: Receiver<TermMsg>) {
        loop {
            let msg = match self.next_deadline() {
                Some(deadline) => match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => return,
                },
            };
            if let Some(m) = msg {
                self.handle(m);
                // Drain what is queued before doing per-batch work.
                while let Ok(m) = rx.try_recv() {
                    self.handle(m);
                }
            }
            self.after_batch();
        }
    }

    fn handle(&mut self, msg: TermMsg) {
        match msg {
            TermMsg::Output(bytes) => {
                self.model.feed(&bytes);
                self.last_output = Some(Instant::now());
                self.mark_dirty();
            }
            // The last output is in: send the final screen.
            TermMsg::Eof => self.mark_dirty(),
            TermMsg::Resize(rows, cols) => {
                if self.model.size() != (rows, cols) {
                    self.model.resize(rows, cols);
                    self.mark_dirty();
                }
            }
            TermMsg::Scroll(lines) => {
                self.model.scroll(lines);
                self.mark_dirty();
            }
            TermMsg::ScrollBottom => {
                self.model.scroll_to_bottom();
                self.mark_dirty();
            }
            TermMsg::Watch(on) => {
                self.watched = on;
                self.mark_dirty();
                self.last_frame = None;
            }
            TermMsg::Hook(state) => {
                self.hook = Some(HookReport { state, at: Instant::now() });
                self.last_detect = None;
                self.mark_dirty();
            }
        }
    }

    /// Busy-by-activity turns idle once output has been quiet for the debounce: the moment to look again,
    /// unless a check already happened after it.
    fn debounce_deadline(&self) -> Option<Instant> {
        let quiet_at = self.last_output? + detect::ACTIVITY_DEBOUNCE;
        let busy = matches!(self.reported, Some((AgentState::Busy, _)));
        (busy && self.last_detect.is_none_or(|d| d < quiet_at)).then_some(quiet_at)
    }

    fn mark_dirty(&mut self) {
        self.screen_dirty = true;
        self.detect_dirty = true;
    }

    /// The earliest moment something must happen without new input.
    fn next_deadline(&self) -> Option<Instant> {
        let mut deadlines = Vec::new();
        if let Some(d) = self.model.sync_deadline() {
            deadlines.push(d);
        }
        if let (true, true, Some(f)) = (self.screen_dirty, self.watched, self.last_frame) {
            deadlines.push(f + FRAME);
        }
        if let (true, Some(d)) = (self.detect_dirty, self.last_detect) {
            deadlines.push(d + DETECT_EVERY);
        }
        if let Some(d) = self.debounce_deadline() {
            deadlines.push(d);
        }
        deadlines.into_iter().min()
    }

    fn after_batch(&mut self) {
        let now = Instant::now();
        if self.model.sync_deadline().is_some_and(|d| d <= now) {
            self.model.flush_sync();
            self.mark_dirty();
        }
        let replies = self.model.take_replies();
        if !replies.is_empty() {
            if let Ok(mut w) = self.writer.lock() {
                let _ = w.write_all(&replies).and_then(|_| w.flush());
            }
        }
        if let Ok(mut m) = self.modes.lock() {
            *m = self.model.modes();
        }
        if self.model.take_bell() {
            (self.sink)(Event::Bell { name: self.name.clone() });
        }
        for text in self.model.take_notifications() {
            (self.sink)(Event::Notification { name: self.name.clone(), text });
        }
        if self.screen_dirty && self.watched && self.last_frame.is_none_or(|f| now >= f + FRAME) {
            (self.sink)(Event::Screen { name: self.name.clone(), screen: self.model.snapshot() });
            self.last_frame = Some(now);
            self.screen_dirty = false;
        }
        let detect_due = self.detect_dirty && self.last_detect.is_none_or(|d| now >= d + DETECT_EVERY);
        let debounce_due = self.debounce_deadline().is_some_and(|d| now >= d);
        if detect_due || debounce_due {
            self.detect(now);
            self.detect_dirty = false;
        }
    }

    fn detect(&mut self, now: Instant) {
        self.last_detect = Some(now);
        let lines = self.model.text_lines();
        let title = self.model.title();
        let rule_state = detect::match_rules(&self.rules, &lines, title.as_deref());
        let state = detect::detect(rule_state, self.hook, self.last_output, now);
        let current = (state, title);
        let activity_due = self.last_output.is_some()
            && self.last_activity_report.is_none_or(|r| now >= r + ACTIVITY_REPORT)
            && self.last_output.is_some_and(|o| self.last_activity_report.is_none_or(|r| o > r));
        if self.reported.as_ref() != Some(&current) || activity_due {
            let last_output_ms =
                self.last_output.map(|o| now_ms().saturating_sub(now.duration_since(o).as_millis() as u64));
            let _ = self.engine.send(EngineMsg::Detected {
                name: self.name.clone(),
                generation: self.generation,
                state: current.0,
                title: current.1.clone(),
                last_output_ms,
            });
            self.reported = Some(current);
            self.last_activity_report = Some(now);
        }
    }
}
