//! The interactive loop: terminal set-up and restore (on panic too), input thread, drain-then-draw with frame
//! coalescing, and effects carried out against the engine.

use std::io::Write;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event as CtEvent,
    KeyEventKind, MouseEventKind,
};
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::Terminal;

use crate::app::{update, Effect, Msg, State};
use crate::engine::{agent::now_ms, Command, EngineHandle, Event, EventSink};
use crate::key::Key;

/// At most this often a frame is drawn…
const FRAME: Duration = Duration::from_millis(16);
/// …except just after a key: what follows it is its echo, drawn at once.
const ECHO_GRACE: Duration = Duration::from_millis(50);
/// How long the engine has to stop the crew (checkpoints, grace periods) before the UI ends anyway.
const SHUTDOWN_WITHIN: Duration = Duration::from_secs(10);

// Moved once through the channel; boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum AppMsg {
    Input(CtEvent),
    Engine(Event),
    /// SIGHUP (the terminal closed: nothing can be drawn any more), SIGTERM or SIGINT: a workbench attached to
    /// a server just ends (the crew runs on); one that runs the crew itself stops it cleanly first.
    Signal(i32),
    /// The connection to the server ended.
    Closed(String),
}

/// An event sink that feeds the UI loop.
pub fn sink(tx: Sender<AppMsg>) -> EventSink {
    crate::engine::one_viewer(move |e| {
        let _ = tx.send(AppMsg::Engine(e));
    })
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    if ENHANCED_KEYS.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::PopKeyboardEnhancementFlags);
    }
    let _ = crossterm::execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Restores the terminal when dropped, whatever way the loop ends.
pub struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// The outer terminal was asked for the kitty keyboard protocol (and must be told to stop).
static ENHANCED_KEYS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn setup_terminal() -> Result<TerminalGuard> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // The terminal first, so the panic message is readable.
        restore_terminal();
        tracing::error!("panic: {info}");
        previous(info);
    }));
    enable_raw_mode().context("switching the terminal to raw mode (is this a terminal?)")?;
    crossterm::execute!(std::io::stdout(), EnterAlternateScreen, EnableBracketedPaste, EnableMouseCapture)?;
    // Where the terminal speaks the kitty keyboard protocol, Shift-Enter, Ctrl-Enter and other modified keys
    // reach muster, and through it the agents that asked for them (as codex's own TUI does).
    if crossterm::terminal::supports_keyboard_enhancement().unwrap_or(false) {
        use crossterm::event::{KeyboardEnhancementFlags as F, PushKeyboardEnhancementFlags};
        if crossterm::execute!(std::io::stdout(), PushKeyboardEnhancementFlags(F::DISAMBIGUATE_ESCAPE_CODES)).is_ok() {
            ENHANCED_KEYS.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    Ok(TerminalGuard)
}

/// Raw mode and the alternate screen only (no mouse, no paste, no keyboard protocol): for `muster watch`,
/// restored however it ends, as the workbench's terminal is.
pub fn setup_plain_terminal() -> Result<TerminalGuard> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
    enable_raw_mode().context("switching the terminal to raw mode (is this a terminal?)")?;
    crossterm::execute!(std::io::stdout(), EnterAlternateScreen, crossterm::cursor::Hide)?;
    Ok(TerminalGuard)
}

fn to_msg(ev: CtEvent) -> Option<Msg> {
    match ev {
        CtEvent::Key(k) if k.kind != KeyEventKind::Release => Key::from_crossterm(&k).map(Msg::Key),
        CtEvent::Paste(text) => Some(Msg::Paste(text)),
        CtEvent::Resize(w, h) => Some(Msg::Resize(w, h)),
        CtEvent::Mouse(m) => match m.kind {
            MouseEventKind::ScrollUp => Some(Msg::Wheel { up: true, col: m.column, row: m.row }),
            MouseEventKind::ScrollDown => Some(Msg::Wheel { up: false, col: m.column, row: m.row }),
            _ => None,
        },
        _ => None,
    }
}

/// When the roster's ages next change their text ("59s" → "1m"), so the clock wakes the loop only then.
fn next_age_change(state: &State) -> Option<Duration> {
    state
        .agents
        .iter()
        .filter_map(|a| a.info.last_output_ms)
        .map(|t| {
            // Ages count whole seconds of the clock (`ui::roster::age`): they change on a second's boundary.
            let elapsed = (state.now_ms / 1000).saturating_sub(t / 1000);
            let unit = match elapsed {
                0..=59 => 1,
                60..=3599 => 60,
                _ => 3600,
            };
            Duration::from_millis((unit - elapsed % unit) * 1000 - state.now_ms % 1000)
        })
        .min()
}

/// Run the loop until the engine has shut down. Generic over the backend so benchmarks can drive it headless.
/// A backend that can pass bytes straight to its terminal (the well's scroll); the in-memory one cannot.
pub trait RawTerminal {
    const CAN_SCROLL: bool;
    /// Whether the bytes went out.
    fn raw(&mut self, bytes: &[u8]) -> bool;
}

impl<W: Write> RawTerminal for CrosstermBackend<W> {
    const CAN_SCROLL: bool = true;
    fn raw(&mut self, bytes: &[u8]) -> bool {
        self.write_all(bytes).is_ok()
    }
}

impl RawTerminal for ratatui::backend::TestBackend {
    const CAN_SCROLL: bool = false;
    fn raw(&mut self, _: &[u8]) -> bool {
        false
    }
}

pub fn event_loop<B: Backend + RawTerminal>(
    terminal: &mut Terminal<B>,
    state: &mut State,
    engine: &EngineHandle,
    rx: &Receiver<AppMsg>,
    mut on_frame: impl FnMut(),
) -> Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut quit_deadline: Option<Instant> = None;
    // After a hangup nothing can be drawn: the crew is stopped without a screen.
    let mut headless = false;
    // The last frame, and what its well showed: output that scrolls by is scrolled by the terminal.
    let mut last_frame: Option<ratatui::buffer::Buffer> = None;
    let mut well_shown: Option<crate::ui::scroll::WellShown> = None;
    let mut last_key: Option<Instant> = None;
    // Just after a key, what follows is its echo: drawn at once, not at the next frame.
    let interval = |last_key: Option<Instant>| {
        if last_key.is_some_and(|k| k.elapsed() < ECHO_GRACE) {
            Duration::ZERO
        } else {
            FRAME
        }
    };
    loop {
        let mut timeout = next_age_change(state);
        if dirty {
            let wait = last_draw.map_or(Duration::ZERO, |t| interval(last_key).saturating_sub(t.elapsed()));
            timeout = Some(timeout.map_or(wait, |t| t.min(wait)));
        }
        if let Some(q) = quit_deadline {
            timeout = Some(timeout.map_or(q.saturating_duration_since(Instant::now()), |t| {
                t.min(q.saturating_duration_since(Instant::now()))
            }));
        }
        let first = match timeout {
            Some(t) => match rx.recv_timeout(t) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            },
            None => Some(rx.recv().context("event channel closed")?),
        };
        let mut msgs: Vec<AppMsg> = first.into_iter().collect();
        // Drain what is queued, then draw once.
        msgs.extend(rx.try_iter());
        let now = now_ms();
        if now / 1000 != state.now_ms / 1000 {
            dirty = true;
        }
        update(state, Msg::Tick(now));
        for m in msgs {
            let msg = match m {
                AppMsg::Input(ev) => {
                    if matches!(ev, CtEvent::Key(_) | CtEvent::Paste(_)) {
                        last_key = Some(Instant::now());
                    }
                    to_msg(ev)
                }
                AppMsg::Engine(ev) => Some(Msg::Engine(ev)),
                AppMsg::Closed(reason) => {
                    state.closed = Some(reason);
                    return Ok(());
                }
                AppMsg::Signal(_) if state.detaches => return Ok(()),
                AppMsg::Signal(sig) => {
                    headless |= sig == signal_hook::consts::SIGHUP;
                    if quit_deadline.is_none() {
                        tracing::info!("signal {sig}: stopping the crew");
                        state.quitting = true;
                        state.status = Some(("stopping agents…".into(), false));
                        quit_deadline = Some(Instant::now() + SHUTDOWN_WITHIN);
                        engine.send(Command::Shutdown);
                    }
                    dirty = true;
                    continue;
                }
            };
            let Some(msg) = msg else { continue };
            dirty = true;
            for effect in update(state, msg) {
                match effect {
                    Effect::Engine(cmd) => {
                        if cmd == Command::Shutdown {
                            quit_deadline = Some(Instant::now() + SHUTDOWN_WITHIN);
                        }
                        engine.send(cmd);
                    }
                    Effect::Bell => {
                        let _ = std::io::stdout().write_all(b"\x07");
                        let _ = std::io::stdout().flush();
                    }
                    Effect::Quit => return Ok(()),
                }
            }
        }
        if quit_deadline.is_some_and(|q| Instant::now() >= q) {
            // The engine did not confirm in time; its grace threads still kill what is left.
            return Ok(());
        }
        if dirty && !headless && last_draw.is_none_or(|t| t.elapsed() >= interval(last_key)) {
            let area = terminal.current_buffer_mut().area;
            // Nothing to compare or keep where the terminal cannot scroll or the well shows no live terminal.
            let now_shown =
                if B::CAN_SCROLL { crate::ui::scroll::well_shown(state, area.width, area.height) } else { None };
            let scrolled = crate::ui::scroll::scrolled(well_shown.as_ref(), now_shown.as_ref());
            if let (Some((region, k)), Some(previous)) = (scrolled, last_frame.as_mut()) {
                // The terminal moves the lines; ratatui is told that it did (its last frame, moved the same way),
                // so the diff writes only what is new.
                if previous.area == area
                    && terminal.backend_mut().raw(crate::ui::scroll::scroll_sequence(region, k).as_bytes())
                {
                    crate::ui::scroll::shift_up(previous, region, k);
                    std::mem::swap(terminal.current_buffer_mut(), previous);
                    terminal.swap_buffers();
                }
            }
            let keep = now_shown.is_some();
            well_shown = now_shown;
            let drawn = terminal.draw(|f| crate::ui::render(state, f)).map(|done| match (keep, &mut last_frame) {
                (false, _) => last_frame = None,
                // Into the copy's own allocation (a buffer's derived clone_from would allocate a new one).
                (true, Some(copy)) => {
                    copy.area = done.buffer.area;
                    copy.content.clone_from(&done.buffer.content);
                }
                (true, None) => last_frame = Some(done.buffer.clone()),
            });
            if let Err(e) = drawn {
                if state.detaches {
                    tracing::info!("drawing failed ({e}): the workbench ends, the crew runs on");
                    return Ok(());
                }
                // The terminal went away (EIO after a hangup): stop the crew without it.
                tracing::warn!("drawing failed ({e}); stopping the crew");
                headless = true;
                if quit_deadline.is_none() {
                    quit_deadline = Some(Instant::now() + SHUTDOWN_WITHIN);
                    engine.send(Command::Shutdown);
                }
                continue;
            }
            on_frame();
            last_draw = Some(Instant::now());
            dirty = false;
        }
    }
}

/// The workbench on a real terminal; the state as it ended.
pub fn run(mut state: State, engine: EngineHandle, tx: Sender<AppMsg>, rx: Receiver<AppMsg>) -> Result<State> {
    let _guard = setup_terminal()?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;
    let size = terminal.size()?;
    let input_tx = tx.clone();
    std::thread::Builder::new().name("input".into()).spawn(move || {
        while let Ok(ev) = crossterm::event::read() {
            if input_tx.send(AppMsg::Input(ev)).is_err() {
                break;
            }
        }
    })?;
    let signal_tx = tx.clone();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("handling signals")?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            if signal_tx.send(AppMsg::Signal(sig)).is_err() {
                break;
            }
        }
    })?;
    // The crew the engine loaded is known before anything starts: with the roster's real height, the pane
    // size — and so every agent's first frame — is right from the start.
    let pending: Vec<AppMsg> = rx.try_iter().collect();
    update(&mut state, Msg::Resize(size.width, size.height));
    let mut later = Vec::new();
    for m in pending {
        match m {
            AppMsg::Engine(ev) => send_commands(&engine, update(&mut state, Msg::Engine(ev))),
            other => later.push(other),
        }
    }
    send_commands(&engine, update(&mut state, Msg::Tick(now_ms())));
    // Watch before starting, so the agents start at the pane's size.
    if let Some((name, rows, cols)) = state.watching.clone() {
        engine.send(Command::Watch { name, rows, cols });
    }
    engine.send(Command::StartCrew);
    // Input and signals that came meanwhile are handled in order by the loop.
    for m in later {
        let _ = tx.send(m);
    }
    let result = event_loop(&mut terminal, &mut state, &engine, &rx, || {});
    if !state.detaches && (!state.quitting || result.is_err()) {
        // However the loop ended, a crew this workbench runs itself does not outlive it.
        stop_crew(&engine, &rx);
    }
    result.map(|()| state)
}

/// Before the loop runs only the engine's commands matter (nothing to ring or quit yet).
fn send_commands(engine: &EngineHandle, effects: Vec<Effect>) {
    for e in effects {
        if let Effect::Engine(c) = e {
            engine.send(c);
        }
    }
}

/// Stop the crew and wait (bounded) for the engine to confirm.
fn stop_crew(engine: &EngineHandle, rx: &Receiver<AppMsg>) {
    engine.send(Command::Shutdown);
    let end = Instant::now() + SHUTDOWN_WITHIN;
    while let Ok(m) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        if matches!(m, AppMsg::Engine(Event::ShutdownComplete)) {
            return;
        }
    }
}

/// Keep only what a channel of the loop needs.
pub fn channel() -> (Sender<AppMsg>, Receiver<AppMsg>) {
    mpsc::channel()
}
