//! The interactive loop: terminal set-up and restore (on panic too), input thread, drain-then-draw with frame
//! coalescing, and effects carried out against the engine.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event as CtEvent,
    KeyEventKind, MouseButton, MouseEventKind,
};
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::Terminal;

use crate::app::mouse::Press;
use crate::app::{update, Effect, Msg, State};
use crate::key::Key;
use crate::protocol::{now_ms, Command, Commands, Event};
use crate::ui::well_painter::WellPainter;

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

/// Whether the input thread reads the terminal, or has lent it (to the operator's editor).
#[derive(Default)]
struct InputGate {
    lent: std::sync::Mutex<(bool, bool)>,
    changed: std::sync::Condvar,
}

impl InputGate {
    /// On the input thread: wait while the terminal is lent, saying that it no longer reads.
    fn wait_while_lent(&self) {
        let mut g = self.lent.lock().unwrap_or_else(|p| p.into_inner());
        while g.0 {
            g.1 = true;
            self.changed.notify_all();
            g = self.changed.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        g.1 = false;
    }

    /// Lend the terminal (true) and wait, a second at most, until the input thread stopped reading; or take it
    /// back (false).
    fn lend(&self, on: bool) {
        let mut g = self.lent.lock().unwrap_or_else(|p| p.into_inner());
        g.0 = on;
        self.changed.notify_all();
        let end = Instant::now() + Duration::from_secs(1);
        while on && !g.1 && Instant::now() < end {
            g = self.changed.wait_timeout(g, Duration::from_millis(50)).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

static INPUT_GATE: std::sync::OnceLock<std::sync::Arc<InputGate>> = std::sync::OnceLock::new();

/// The command line that opens `path` at `line` in `editor` (as `$VISUAL`/`$EDITOR` say it, arguments and
/// all): `+LINE path` for vi, vim, nvim, nano, emacs, micro, kak…; `path:line` for helix; `-g path:line` for VS
/// Code.
pub fn editor_command(editor: &str, path: &Path, line: usize) -> Vec<String> {
    let mut words: Vec<String> = editor.split_whitespace().map(String::from).collect();
    if words.is_empty() {
        words.push("vi".into());
    }
    let program = Path::new(&words[0]).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let at = format!("{}:{line}", path.display());
    match program.as_str() {
        "hx" | "helix" => words.push(at),
        "code" | "codium" => words.extend(["-g".into(), at]),
        _ => words.extend([format!("+{line}"), path.display().to_string()]),
    }
    words
}

/// Open `path` at `line` in the operator's editor, the workbench's terminal handed over meanwhile (as lazygit
/// does); what to say of it.
fn edit_file(path: &Path, line: usize) -> (String, bool) {
    if !path.exists() {
        return (format!("{} is not on this machine (or no longer there)", path.display()), true);
    }
    let set = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let editor = set("VISUAL").or_else(|| set("EDITOR")).unwrap_or_else(|| "vi".into());
    let words = editor_command(&editor, path, line);
    let gate = INPUT_GATE.get();
    if let Some(g) = gate {
        g.lend(true);
    }
    restore_terminal();
    let status =
        std::process::Command::new(&words[0]).args(&words[1..]).current_dir(path.parent().unwrap_or(path)).status();
    let _ = enter_screen();
    if let Some(g) = gate {
        g.lend(false);
    }
    match status {
        Ok(s) if s.success() => (format!("back from {}", words[0]), false),
        Ok(s) => (format!("{} ended: {s}", words[0]), true),
        Err(e) => (format!("could not run {} (VISUAL or EDITOR): {e}", words[0]), true),
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
    enter_screen()?;
    Ok(TerminalGuard)
}

/// Raw mode, the alternate screen, pasting and the mouse (and the keyboard protocol where there is one).
fn enter_screen() -> Result<()> {
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
    Ok(())
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
            MouseEventKind::Down(MouseButton::Left) => {
                Some(Msg::Mouse { press: Press::Down, col: m.column, row: m.row })
            }
            MouseEventKind::Drag(MouseButton::Left) => {
                Some(Msg::Mouse { press: Press::Drag, col: m.column, row: m.row })
            }
            MouseEventKind::Up(MouseButton::Left) => Some(Msg::Mouse { press: Press::Up, col: m.column, row: m.row }),
            _ => None,
        },
        _ => None,
    }
}

/// When the roster's ages next change their text ("59s" → "1m"), so the clock wakes the loop only then.
fn next_age_change(state: &State) -> Option<Duration> {
    // The timeline, while it is open, shows the selected agent's checkpoints' ages too.
    let timeline = (state.tab == crate::app::WellTab::Timeline)
        .then(|| state.selected_agent())
        .flatten()
        .into_iter()
        .flat_map(|a| a.checkpoints.iter().map(|c| c.time.max(0) as u64 * 1000));
    // A message leaves the status line after a while: the loop wakes then.
    let status_ends = state.status.as_ref().map(|_| {
        let end = state.status_at + crate::app::update::STATUS_FOR_MS;
        Duration::from_millis(end.saturating_sub(state.now_ms))
    });
    let ages = state
        .agents
        .iter()
        .filter_map(|a| a.info.last_output_ms)
        .chain(timeline)
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
        .min();
    ages.into_iter().chain(status_ends).min()
}

/// Run the loop until the engine has shut down. Generic over the backend so benchmarks can drive it headless.
pub fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    state: &mut State,
    engine: &Commands,
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
    // Only the cells of the well's live terminal changed: painted apart, without a frame of ratatui.
    let mut well_dirty = false;
    let mut painter = WellPainter::default();
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
        if dirty || well_dirty {
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
            let (effects, redraw) = apply(state, msg, &mut painter);
            match redraw {
                Redraw::Nothing => {}
                Redraw::Well => well_dirty = true,
                Redraw::All => dirty = true,
            }
            for effect in effects {
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
                    Effect::Notify(text) => {
                        let var = |k: &str| std::env::var(k).unwrap_or_default();
                        let tmux = std::env::var_os("TMUX").is_some();
                        let bytes = crate::term::notify::notification(&text, &var("TERM"), &var("TERM_PROGRAM"), tmux);
                        let _ = std::io::stdout().write_all(&bytes);
                        let _ = std::io::stdout().flush();
                    }
                    Effect::Copy(text) => {
                        // The terminal may refuse OSC 52 (or sit behind a tmux that does): the file always has it.
                        let file = crate::config::paths::state_dir().join("copied.txt");
                        let saved = std::fs::create_dir_all(file.parent().unwrap_or(Path::new(".")))
                            .and_then(|_| std::fs::write(&file, &text));
                        let _ = std::io::stdout().write_all(&crate::term::notify::clipboard(&text));
                        let _ = std::io::stdout().flush();
                        let said = state.status.as_ref().map(|s| s.0.clone()).unwrap_or_else(|| "copied".into());
                        let (msg, error) = match saved {
                            Ok(()) => (format!("{said} (OSC 52), also in {}", file.display()), false),
                            Err(e) => (format!("could not keep it in {}: {e}", file.display()), true),
                        };
                        let (fx, _) = apply(state, Msg::Engine(Event::Message { text: msg, error }), &mut painter);
                        debug_assert!(fx.is_empty());
                        dirty = true;
                    }
                    Effect::Edit { path, line } => {
                        let (text, error) = edit_file(&path, line);
                        let _ = terminal.clear();
                        painter.forget();
                        let (fx, _) = apply(state, Msg::Engine(Event::Message { text, error }), &mut painter);
                        debug_assert!(fx.is_empty());
                        dirty = true;
                    }
                    Effect::Quit => return Ok(()),
                }
            }
        }
        if quit_deadline.is_some_and(|q| Instant::now() >= q) {
            // The engine did not confirm in time; its grace threads still kill what is left.
            return Ok(());
        }
        if (dirty || well_dirty) && !headless && last_draw.is_none_or(|t| t.elapsed() >= interval(last_key)) {
            let drawn = draw(terminal, state, &mut painter, dirty);
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
            well_dirty = false;
        }
    }
}

/// What a message leaves to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Redraw {
    Nothing,
    /// The cells of the well's live terminal only.
    Well,
    All,
}

/// The message applied to the state: its effects, and what it leaves to draw. A screen of an agent not on view
/// (another agent, or the well on its timeline or mail) draws nothing; a new screen of the terminal in the well,
/// its cells; unless the well's bar shows something new.
fn apply(state: &mut State, msg: Msg, painter: &mut WellPainter) -> (Vec<Effect>, Redraw) {
    let screen_of = match &msg {
        Msg::Engine(Event::Screen { name, change, .. }) => {
            painter.note(name, change.as_ref());
            Some(name.clone())
        }
        _ => None,
    };
    let facts = screen_of.as_ref().map(|_| crate::ui::well::screen_facts(state));
    let effects = update(state, msg);
    let redraw = match (screen_of, facts) {
        (Some(name), _) if state.selected_agent().is_none_or(|a| a.info.name != name) => Redraw::Nothing,
        (Some(_), Some(facts)) if facts == crate::ui::well::screen_facts(state) => {
            if crate::ui::well::shows_terminal(state) {
                Redraw::Well
            } else {
                Redraw::Nothing
            }
        }
        _ => Redraw::All,
    };
    (effects, redraw)
}

/// A new screen of an agent arrives and the workbench draws what it leaves to draw, as its loop does (for
/// `muster bench`).
pub(crate) fn frame_after_screen<B: Backend>(
    terminal: &mut Terminal<B>,
    state: &mut State,
    painter: &mut WellPainter,
    name: String,
    (screen, change): (crate::term::Screen, Option<crate::term::Change>),
) -> Result<(), B::Error> {
    match apply(state, Msg::Engine(Event::Screen { name, screen, change }), painter).1 {
        Redraw::Nothing => Ok(()),
        redraw => draw(terminal, state, painter, redraw == Redraw::All),
    }
}

/// One frame: ratatui draws everything (`all`) or nothing, and the well's live terminal is painted apart when
/// it shows one (else ratatui draws it too).
fn draw<B: Backend>(
    terminal: &mut Terminal<B>,
    state: &State,
    painter: &mut WellPainter,
    mut all: bool,
) -> Result<(), B::Error> {
    let before = terminal.get_frame().area();
    // A new size clears the terminal: what was painted is gone. Asked of the terminal on a whole frame only (the
    // ask opens /dev/tty: a sixth of a streaming agent's frame); a resize always comes with one.
    if all {
        terminal.autoresize()?;
    }
    let area = terminal.get_frame().area();
    if area != before {
        painter.forget();
        all = true;
    }
    let target = crate::ui::well_painter::target(state, area.width, area.height);
    let Some(target) = target else {
        painter.forget();
        return terminal.draw(|f| crate::ui::render(state, f)).map(drop);
    };
    if all {
        terminal.draw(|f| crate::ui::render_around_well(state, f))?;
    }
    painter.paint(terminal.backend_mut(), &target, state.theme.mode)
}

/// The workbench on a real terminal; the state as it ended.
pub fn run(mut state: State, engine: Commands, tx: Sender<AppMsg>, rx: Receiver<AppMsg>) -> Result<State> {
    let _guard = setup_terminal()?;
    // A frame goes out in one write: stdout's own buffer is a line's (1 KiB, and flushed at each newline).
    let mut terminal =
        Terminal::new(CrosstermBackend::new(std::io::BufWriter::with_capacity(1 << 16, std::io::stdout())))?;
    terminal.clear()?;
    let size = terminal.size()?;
    let input_tx = tx.clone();
    let gate = INPUT_GATE.get_or_init(Default::default).clone();
    std::thread::Builder::new().name("input".into()).spawn(move || loop {
        // Parked while an editor has the terminal: its keys are the editor's.
        gate.wait_while_lent();
        // A bounded wait, so a loan is noticed (4 wake-ups a second: nothing measurable).
        match crossterm::event::poll(Duration::from_millis(250)) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(_) => break,
        }
        let Ok(ev) = crossterm::event::read() else { break };
        if input_tx.send(AppMsg::Input(ev)).is_err() {
            break;
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
    if let Some((name, rows, cols, also)) = state.watching.clone() {
        engine.send(Command::Watch { name, rows, cols, also });
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
fn send_commands(engine: &Commands, effects: Vec<Effect>) {
    for e in effects {
        if let Effect::Engine(c) = e {
            engine.send(c);
        }
    }
}

/// Stop the crew and wait (bounded) for the engine to confirm.
fn stop_crew(engine: &Commands, rx: &Receiver<AppMsg>) {
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

#[cfg(test)]
mod tests {
    #[test]
    fn each_editor_is_told_the_line_its_way() {
        let p = std::path::Path::new("/w/src/a b.rs");
        assert_eq!(editor_command("nvim", p, 7), ["nvim", "+7", "/w/src/a b.rs"]);
        assert_eq!(editor_command("emacs -nw", p, 7), ["emacs", "-nw", "+7", "/w/src/a b.rs"]);
        assert_eq!(editor_command("/usr/bin/hx", p, 7), ["/usr/bin/hx", "/w/src/a b.rs:7"]);
        assert_eq!(editor_command("code -w", p, 7), ["code", "-w", "-g", "/w/src/a b.rs:7"]);
        assert_eq!(editor_command("", p, 1), ["vi", "+1", "/w/src/a b.rs"]);
    }

    use super::*;
    use crate::app::AgentView;
    use crate::config::keymap::Keymap;
    use crate::config::theme::{ColorMode, Theme};
    use crate::protocol::{AgentInfo, AgentState};
    use crate::term::{AlacrittyModel, TerminalModel};
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;

    /// What a person sees: each cell's character and style, leaving out the column a wide character covers.
    fn seen(buf: &Buffer) -> Vec<String> {
        let w = buf.area.width as usize;
        buf.content
            .chunks(w)
            .map(|row| {
                let mut line = String::new();
                let mut covered = 0;
                for cell in row {
                    if covered > 0 {
                        covered -= 1;
                        continue;
                    }
                    covered = unicode_width::UnicodeWidthStr::width(cell.symbol()).saturating_sub(1);
                    line.push_str(&format!("{}{:?}{:?}{:?}|", cell.symbol(), cell.fg, cell.bg, cell.modifier));
                }
                line
            })
            .collect()
    }

    struct Bench {
        terminal: Terminal<TestBackend>,
        state: State,
        painter: WellPainter,
        models: Vec<AlacrittyModel>,
    }

    impl Bench {
        fn new(width: u16, height: u16) -> Bench {
            let mut state = State::new(
                "repo".into(),
                Keymap::builtin(),
                Theme::builtin("default", ColorMode::TrueColor),
                (width, height),
            );
            for name in ["a", "b"] {
                let info = AgentInfo { worktree: "/tmp/x".into(), ..AgentInfo::new(name, "demo", AgentState::Busy) };
                state.agents.push(AgentView {
                    info,
                    screen: None,
                    checkpoints: Vec::new(),
                    attention: false,
                    unseen: false,
                    in_turn: false,
                });
            }
            update(&mut state, Msg::Resize(width, height));
            let term = crate::ui::layout::areas(width, height, 2, true, false).terminal.expect("a well");
            let models = (0..2).map(|_| AlacrittyModel::new(term.height, term.width, 1000)).collect();
            let terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
            let mut b = Bench { terminal, state, painter: WellPainter::default(), models };
            b.frame(Redraw::All);
            b
        }

        /// Output from agent `i`, its screen sent as the engine sends it; a frame drawn as the loop draws it.
        fn output(&mut self, i: usize, bytes: &str) -> Redraw {
            self.models[i].feed(bytes.as_bytes());
            let name = ["a", "b"][i].to_string();
            // As a client gets them: with the rows that changed since the frame before.
            let (screen, change) = self.models[i].live_frame();
            let (_, redraw) =
                apply(&mut self.state, Msg::Engine(Event::Screen { name, screen, change }), &mut self.painter);
            if redraw != Redraw::Nothing {
                self.frame(redraw);
            }
            redraw
        }

        fn msg(&mut self, msg: Msg) {
            let (_, redraw) = apply(&mut self.state, msg, &mut self.painter);
            self.frame(redraw);
        }

        fn frame(&mut self, redraw: Redraw) {
            draw(&mut self.terminal, &self.state, &mut self.painter, redraw == Redraw::All).expect("drawn");
        }

        /// The screen equals a frame drawn whole by ratatui from the same state, and the cursor is where that
        /// frame puts it.
        fn check(&mut self, step: &str) {
            let area = self.terminal.backend().buffer().area;
            let mut whole = Terminal::new(TestBackend::new(area.width, area.height)).expect("a test terminal");
            whole.draw(|f| crate::ui::render(&self.state, f)).expect("drawn");
            assert_eq!(seen(self.terminal.backend().buffer()), seen(whole.backend().buffer()), "after {step}");
            if self.state.attached {
                let want = whole.backend_mut().get_cursor_position().expect("a cursor");
                let at = self.terminal.backend_mut().get_cursor_position().expect("a cursor");
                assert_eq!(at, want, "the cursor after {step}");
            }
        }
    }

    #[test]
    fn a_well_painted_apart_shows_what_a_whole_frame_would() {
        let mut b = Bench::new(80, 24);
        // The first screen replaces "waiting for output…": a whole frame; then only the well's cells.
        assert_eq!(b.output(0, "\x1b[1;32mhello\x1b[0m 界 wide\r\n$ "), Redraw::All);
        b.check("the first output");
        assert_eq!(b.output(0, "ls\r\n"), Redraw::Well);
        b.check("the next");
        assert_eq!(b.output(1, "agent b is not on view\r\n"), Redraw::Nothing);
        b.check("output of an agent not on view");
        for i in 0..30 {
            b.output(0, &format!("\x1b[3{}mline {i}\x1b[0m {}\r\n", i % 8, "界".repeat(i % 3)));
            b.check(&format!("line {i}"));
        }
        b.output(0, &"x\r\n".repeat(40));
        b.check("more lines than the well has rows");
        b.output(0, "typed");
        b.check("an echo");
        b.msg(Msg::Key(Key::parse("?").expect("a key")));
        assert!(b.state.help.is_some());
        b.output(0, "\r\nunder the help\r\n");
        b.check("output under the help");
        b.msg(Msg::Key(Key::parse("Esc").expect("a key")));
        assert!(b.state.dialog.is_none());
        b.check("the help closed");
        b.msg(Msg::Key(Key::parse("tab").expect("a key")));
        assert_eq!(b.state.tab, crate::app::WellTab::Timeline);
        assert_eq!(b.output(0, "behind the timeline\r\n"), Redraw::Nothing, "a screen not on view draws nothing");
        b.check("output behind the timeline");
        b.msg(Msg::Key(Key::parse("Esc").expect("a key")));
        assert_eq!(b.state.tab, crate::app::WellTab::Terminal);
        b.check("back on the terminal");
        // A conflicts tab with no conflicts of this agent's shows its terminal: new output is drawn.
        // (A merge's conflicts of another agent leave the tab so when the selection moves.)
        b.state.tab = crate::app::WellTab::Conflicts;
        b.frame(Redraw::All);
        assert_eq!(b.output(0, "beside no conflicts\r\n"), Redraw::Well);
        b.check("output on a conflicts tab with nothing in it");
        b.state.tab = crate::app::WellTab::Terminal;
        b.frame(Redraw::All);
        b.msg(Msg::Key(Key::parse("j").expect("a key")));
        b.check("the other agent selected (no screen yet)");
        b.output(1, "now b\r\n");
        b.check("the other agent's screen");
        b.msg(Msg::Key(Key::parse("k").expect("a key")));
        b.check("back to the first");
        b.output(0, "\x1b[2J\x1b[Hcleared\r\n");
        b.check("a cleared screen");
        b.msg(Msg::Key(Key::parse("Enter").expect("a key")));
        assert!(b.state.attached);
        b.output(0, "$ echo hello");
        b.check("typed, attached");
        // The cursor moves back and no cell changes: it is still put where the agent's cursor is.
        b.output(0, "\x1b[2D");
        b.check("the cursor moved left");
    }
}
