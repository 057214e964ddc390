//! `TerminalModel`: the emulator an agent's output is fed into, behind a trait so the engine does not depend on
//! one emulator. The real one wraps `alacritty_terminal`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use alacritty_terminal::event::{Event as TermEvent, EventListener, WindowSize};
use alacritty_terminal::grid::Dimensions;
use alacritty_terminal::index::{Column, Line};
use alacritty_terminal::term::cell::Flags;
use alacritty_terminal::term::{Config, Term, TermMode};
use alacritty_terminal::vte::ansi::{Color, CursorShape, NamedColor, Processor, StdSyncHandler};

use super::capture::{self, Capture, Region};
use super::changes::{Change, RowChanges};
use super::guard::{OutputGuard, MAX_COMBINING};
use super::history::History;
use super::palette::xterm_rgb;
use super::screen::{CellColor, CellFlags, Row, Screen, ScreenCell};

/// The input modes the child has switched on, which decide how keys and pastes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct InputModes {
    pub app_cursor: bool,
    pub bracketed_paste: bool,
    /// Kitty keyboard protocol flags (bit 0 disambiguate, 1 event types, 2 alternate keys, 3 all keys as
    /// escapes, 4 associated text); 0 when the protocol is off.
    pub kitty_flags: u8,
    pub mouse: bool,
    pub sgr_mouse: bool,
    pub alt_screen: bool,
}

/// What an emulator must offer the engine.
pub trait TerminalModel: Send {
    fn feed(&mut self, bytes: &[u8]);
    fn resize(&mut self, rows: u16, cols: u16);
    fn size(&self) -> (u16, u16);
    /// Bytes the emulator wants written back to the child (answers to queries).
    fn take_replies(&mut self) -> Vec<u8>;
    /// Whether a bell rang since the last call.
    fn take_bell(&mut self) -> bool;
    /// Desktop notifications (OSC 9/99/777) since the last call.
    fn take_notifications(&mut self) -> Vec<String>;
    fn title(&self) -> Option<String>;
    /// The last progress report (OSC 9;4) as `STATE;VALUE`, while one stands.
    fn progress(&self) -> Option<String> {
        None
    }
    fn modes(&self) -> InputModes;
    fn snapshot(&self) -> Screen;
    /// The live screen (as `snapshot`) and how it differs from the one this returned last (`None`: all new):
    /// only the rows that changed are converted, and a client is sent only those.
    fn live_frame(&mut self) -> (Screen, Option<Change>) {
        (self.snapshot(), None)
    }
    /// The screen as a viewer scrolled `offset` lines back into history sees it (the model's own view stays).
    fn snapshot_at(&self, offset: usize) -> Screen;
    /// Lines of history above the screen.
    fn history_size(&self) -> usize;
    /// Rows that ever scrolled into history (trimming does not lower it).
    fn rows_pushed(&self) -> u64 {
        0
    }
    /// Rows of the whole buffer: the history's, then the screen's (`BufferPos::row` counts them).
    fn buffer_rows(&self) -> usize {
        self.history_size() + self.size().0 as usize
    }
    /// Buffer rows `from..from + count` as text, for search and copy.
    fn text_rows(&self, from: usize, count: usize) -> Vec<super::search::TextRow>;
    /// The live screen's rows as text (trailing blanks trimmed), whatever the operator scrolled to: for state
    /// rules. Cheaper than a snapshot.
    fn text_lines(&self) -> Vec<String>;
    /// A hash of what the live screen says (its text, which screen): equal hashes mean a redraw changed nothing
    /// a person could read, which is not activity.
    fn content_hash(&self) -> u64;
    /// As `content_hash`, with the rows whose text matches one of `inert` read as blank (lines muster itself makes
    /// a CLI show: their coming and going is no activity).
    fn content_hash_except(&self, inert: &[regex::Regex]) -> u64;
    /// Scroll the view: positive goes back into history.
    fn scroll(&mut self, lines: i32);
    /// Follow the output again; whether the view moved (it was scrolled back).
    fn scroll_to_bottom(&mut self) -> bool;
    /// When a synchronized update (mode 2026) must be given up on if it has not ended.
    fn sync_deadline(&self) -> Option<Instant>;
    fn flush_sync(&mut self);
    /// When history that has stopped changing is due to be compacted (`compact_history`).
    fn history_deadline(&self) -> Option<Instant>;
    fn compact_history(&mut self, now: Instant);
}

#[derive(Default)]
struct Pending {
    replies: Vec<u8>,
    bell: bool,
    title: Option<String>,
    size: (u16, u16),
    palette: Palette,
}

/// The colours agents are told the terminal has when they ask (OSC 10/11/4): the operator's real terminal's,
/// where it answered, else the theme's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Palette {
    pub foreground: (u8, u8, u8),
    pub background: (u8, u8, u8),
    pub cursor: Option<(u8, u8, u8)>,
    /// The 16 base colours; None where unknown (xterm's are answered).
    pub base: [Option<(u8, u8, u8)>; 16],
}

impl Default for Palette {
    fn default() -> Self {
        Palette { foreground: (229, 229, 229), background: (0, 0, 0), cursor: None, base: [None; 16] }
    }
}

impl Palette {
    /// The colour an OSC query asks for: 0–255 indexed, 256 foreground, 257 background, 258 cursor.
    pub fn answer(&self, index: usize) -> (u8, u8, u8) {
        match index {
            0..=15 => self.base[index].unwrap_or_else(|| xterm_rgb(index as u8)),
            16..=255 => xterm_rgb(index as u8),
            256 => self.foreground,
            258 => self.cursor.unwrap_or(self.foreground),
            _ => self.background,
        }
    }
}

#[derive(Clone, Default)]
pub struct Listener(Arc<Mutex<Pending>>);

impl Listener {
    fn with<R>(&self, f: impl FnOnce(&mut Pending) -> R) -> R {
        // A poisoned lock only means a panic elsewhere mid-update; the data is still usable.
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

impl EventListener for Listener {
    fn send_event(&self, event: TermEvent) {
        match event {
            TermEvent::PtyWrite(text) => self.with(|p| p.replies.extend_from_slice(text.as_bytes())),
            TermEvent::Bell => self.with(|p| p.bell = true),
            // A title is a line in the roster: a program that sets a huge one gets its first few hundred chars.
            TermEvent::Title(t) => self.with(|p| p.title = Some(t.chars().take(MAX_TITLE).collect())),
            TermEvent::ResetTitle => self.with(|p| p.title = None),
            TermEvent::ColorRequest(index, format) => {
                let rgb = self.with(|p| p.palette.answer(index));
                let reply = format(alacritty_terminal::vte::ansi::Rgb { r: rgb.0, g: rgb.1, b: rgb.2 });
                self.with(|p| p.replies.extend_from_slice(reply.as_bytes()));
            }
            TermEvent::TextAreaSizeRequest(format) => {
                let (rows, cols) = self.with(|p| p.size);
                let reply = format(WindowSize { num_lines: rows, num_cols: cols, cell_width: 8, cell_height: 16 });
                self.with(|p| p.replies.extend_from_slice(reply.as_bytes()));
            }
            // Clipboard access from an agent is refused: it could read the operator's clipboard.
            _ => {}
        }
    }
}

struct Size {
    rows: usize,
    cols: usize,
}

impl Dimensions for Size {
    fn total_lines(&self) -> usize {
        self.rows
    }
    fn screen_lines(&self) -> usize {
        self.rows
    }
    fn columns(&self) -> usize {
        self.cols
    }
}

/// Characters of a title kept.
pub const MAX_TITLE: usize = 256;

pub struct AlacrittyModel {
    term: Term<Listener>,
    parser: Processor<StdSyncHandler>,
    listener: Listener,
    guard: OutputGuard,
    /// Lines above the screen: the emulator itself keeps none (see `capture`).
    history: History,
    /// The emulator's scroll region, which decides what scrolls into history.
    region: Region,
    /// How far the model's own view is scrolled back.
    view: usize,
    scratch: super::history::Encoded,
    /// Rows changed since the last live frame, and that frame.
    changes: RowChanges,
    last_live: Option<Screen>,
}

impl AlacrittyModel {
    pub fn new(rows: u16, cols: u16, scrollback: usize) -> AlacrittyModel {
        AlacrittyModel::with_palette(rows, cols, scrollback, Palette::default())
    }

    pub fn with_palette(rows: u16, cols: u16, scrollback: usize, palette: Palette) -> AlacrittyModel {
        let rows = rows.max(1);
        let cols = cols.max(2);
        let listener = Listener::default();
        listener.with(|p| {
            p.size = (rows, cols);
            p.palette = palette;
        });
        // Kitty keyboard on: agent CLIs ask for it and our key encoder speaks it. No history in the emulator:
        // rows that scroll off go to the compact history.
        let config = Config { scrolling_history: 0, kitty_keyboard: true, ..Config::default() };
        let term = Term::new(config, &Size { rows: rows as usize, cols: cols as usize }, listener.clone());
        AlacrittyModel {
            region: capture::full_region(&term),
            term,
            parser: Processor::new(),
            listener,
            guard: OutputGuard::default(),
            history: History::new(scrollback, cols),
            view: 0,
            scratch: Default::default(),
            changes: RowChanges::default(),
            last_live: None,
        }
    }

    /// Bytes the history holds, for the benchmark.
    pub fn history_bytes(&self) -> usize {
        self.history.bytes()
    }

    fn alt_screen(&self) -> bool {
        self.term.mode().contains(TermMode::ALT_SCREEN)
    }
}

/// Rows go back above the screen, as history the emulator holds (it has room for them): the screen scrolls
/// up by their number into history, then every row moves down again, and they fill the rows above.
fn put_back(term: &mut Term<Listener>, rows: Vec<Vec<ScreenCell>>) {
    use alacritty_terminal::grid::Row;
    let k = rows.len();
    let screen = term.screen_lines();
    let cols = term.columns();
    if k == 0 {
        return;
    }
    let grid = term.grid_mut();
    grid.scroll_up(&(Line(0)..Line(screen as i32)), k);
    for line in (0..screen as i32).rev() {
        grid[Line(line)] = grid[Line(line - k as i32)].clone();
    }
    for (i, cells) in rows.into_iter().enumerate() {
        let mut row = Row::new(cols);
        for (c, cell) in cells.iter().take(cols).enumerate() {
            row[Column(c)] = emulator_cell(cell);
        }
        row[Column(cols - 1)].flags.insert(Flags::WRAPLINE);
        grid[Line(i as i32 - k as i32)] = row;
    }
}

/// A history cell as an emulator cell again (for a reflow).
fn emulator_cell(cell: &ScreenCell) -> alacritty_terminal::term::cell::Cell {
    let color = |c: CellColor, default: NamedColor| match c {
        CellColor::Default => Color::Named(default),
        CellColor::Indexed(i) => Color::Indexed(i),
        CellColor::Rgb(r, g, b) => Color::Spec(alacritty_terminal::vte::ansi::Rgb { r, g, b }),
    };
    let leading = (Flags::LEADING_WIDE_CHAR_SPACER, Flags::LEADING_WIDE_CHAR_SPACER, super::history::LEADING_SPACER);
    let flags = FLAGS
        .iter()
        .chain([&leading])
        .filter(|(_, _, bit)| cell.flags.has(*bit))
        .fold(Flags::empty(), |acc, (_, to, _)| acc | *to);
    let mut chars = cell.text.chars();
    let mut out = alacritty_terminal::term::cell::Cell {
        c: chars.next().unwrap_or(' '),
        fg: color(cell.fg, NamedColor::Foreground),
        bg: color(cell.bg, NamedColor::Background),
        flags,
        extra: None,
    };
    for mark in chars {
        out.push_zerowidth(mark);
    }
    out
}

/// Cut every visible cell's combining marks to `MAX_COMBINING`. The guard caps a run of marks in the output, but
/// a program that moves the cursor back between runs stacks them on one cell; this bounds that too.
fn trim_marks(term: &mut Term<Listener>) {
    use alacritty_terminal::index::{Column, Line};
    let (rows, cols) = (term.screen_lines(), term.columns());
    let grid = term.grid_mut();
    for row in 0..rows {
        for col in 0..cols {
            let cell = &mut grid[Line(row as i32)][Column(col)];
            let Some(marks) = cell.zerowidth().filter(|m| m.len() > MAX_COMBINING) else { continue };
            let keep: Vec<char> = marks[..MAX_COMBINING].to_vec();
            let (link, underline) = (cell.hyperlink(), cell.underline_color());
            cell.extra = None;
            cell.set_hyperlink(link);
            cell.set_underline_color(underline);
            for c in keep {
                cell.push_zerowidth(c);
            }
        }
    }
}

/// An emulator row as a screen row.
fn convert_row(row: &alacritty_terminal::grid::Row<alacritty_terminal::term::cell::Cell>, cols: usize) -> Row {
    row[..Column(cols)].iter().map(convert_cell).collect()
}

/// One emulator cell as a screen cell.
pub(super) fn convert_cell(cell: &alacritty_terminal::term::cell::Cell) -> ScreenCell {
    let (ch, fg, bg, flags) = cell_parts(cell);
    // Built whole (inline, no reserve) for a lone character, which nearly every cell is.
    let mut text = compact_str::CompactString::new(ch.encode_utf8(&mut [0u8; 4]));
    if let Some(extra) = cell.zerowidth() {
        text.extend(extra.iter());
    }
    ScreenCell { text, fg, bg, flags }
}

/// A cell's character (a blank for the NUL and tab alacritty keeps), colours and attributes.
pub(super) fn cell_parts(cell: &alacritty_terminal::term::cell::Cell) -> (char, CellColor, CellColor, CellFlags) {
    (cell_char(cell), convert_color(cell.fg), convert_color(cell.bg), convert_flags(cell.flags))
}

/// A cell's character: a blank for the NUL and tab alacritty keeps.
pub(super) fn cell_char(cell: &alacritty_terminal::term::cell::Cell) -> char {
    if cell.c == '\0' || cell.c == '\t' {
        ' '
    } else {
        cell.c
    }
}

/// The blank cell an emulator leaves (the rest of a row past its text is that), told at once: every test taken
/// (`&`, not `&&`), so that a row's trailing blanks are searched without a branch per field.
fn emulator_blank(cell: &alacritty_terminal::term::cell::Cell) -> bool {
    (cell.c == ' ')
        & matches!(cell.fg, Color::Named(NamedColor::Foreground))
        & matches!(cell.bg, Color::Named(NamedColor::Background))
        & !cell.flags.intersects(SHOWN_FLAGS | Flags::LEADING_WIDE_CHAR_SPACER)
        & cell.zerowidth().is_none()
}

/// Where a row's text ends: the columns after it are blank. Eight cells a step while they are the emulator's
/// own blanks (most of a row past its text), one at a time for the rest.
pub(super) fn text_end(row: &[alacritty_terminal::term::cell::Cell]) -> usize {
    let mut end = row.len();
    while end >= 8 && row[end - 8..end].iter().fold(true, |all, c| all & emulator_blank(c)) {
        end -= 8;
    }
    row[..end].iter().rposition(|c| !is_blank(c)).map_or(0, |c| c + 1)
}

/// Whether a cell converts to `ScreenCell::default()`, told without converting it (most of a row is blank, and
/// every row that scrolls into history is looked at).
pub(super) fn is_blank(cell: &alacritty_terminal::term::cell::Cell) -> bool {
    emulator_blank(cell) || converts_blank(cell)
}

/// The whole rule of `is_blank`, on converted fields.
fn converts_blank(cell: &alacritty_terminal::term::cell::Cell) -> bool {
    matches!(cell.c, ' ' | '\t' | '\0')
        && convert_color(cell.fg) == CellColor::Default
        && convert_color(cell.bg) == CellColor::Default
        && convert_flags(cell.flags).0 == 0
        && !cell.flags.contains(Flags::LEADING_WIDE_CHAR_SPACER)
        && cell.zerowidth().is_none_or(|z| z.is_empty())
}

fn convert_color(color: Color) -> CellColor {
    match color {
        Color::Spec(rgb) => CellColor::Rgb(rgb.r, rgb.g, rgb.b),
        Color::Indexed(i) => CellColor::Indexed(i),
        Color::Named(named) => {
            let n = named as usize;
            if n < 16 {
                CellColor::Indexed(n as u8)
            } else {
                match named {
                    NamedColor::DimBlack => CellColor::Indexed(0),
                    NamedColor::DimRed => CellColor::Indexed(1),
                    NamedColor::DimGreen => CellColor::Indexed(2),
                    NamedColor::DimYellow => CellColor::Indexed(3),
                    NamedColor::DimBlue => CellColor::Indexed(4),
                    NamedColor::DimMagenta => CellColor::Indexed(5),
                    NamedColor::DimCyan => CellColor::Indexed(6),
                    NamedColor::DimWhite => CellColor::Indexed(7),
                    _ => CellColor::Default,
                }
            }
        }
    }
}

/// Each attribute: the emulator's flags that mean it, the flag it is written back as, and muster's bit.
const FLAGS: [(Flags, Flags, u16); 9] = [
    (Flags::BOLD, Flags::BOLD, CellFlags::BOLD),
    (Flags::DIM, Flags::DIM, CellFlags::DIM),
    (Flags::ITALIC, Flags::ITALIC, CellFlags::ITALIC),
    (Flags::ALL_UNDERLINES, Flags::UNDERLINE, CellFlags::UNDERLINE),
    (Flags::INVERSE, Flags::INVERSE, CellFlags::INVERSE),
    (Flags::HIDDEN, Flags::HIDDEN, CellFlags::HIDDEN),
    (Flags::STRIKEOUT, Flags::STRIKEOUT, CellFlags::STRIKE),
    (Flags::WIDE_CHAR, Flags::WIDE_CHAR, CellFlags::WIDE),
    (Flags::WIDE_CHAR_SPACER, Flags::WIDE_CHAR_SPACER, CellFlags::SPACER),
];

/// Every emulator flag the table keeps.
const SHOWN_FLAGS: Flags = {
    let mut all = Flags::empty();
    let mut i = 0;
    while i < FLAGS.len() {
        all = all.union(FLAGS[i].0);
        i += 1;
    }
    all
};

fn convert_flags(flags: Flags) -> CellFlags {
    // Most cells have none of them (a wrapped line's mark is not one).
    if !flags.intersects(SHOWN_FLAGS) {
        return CellFlags(0);
    }
    CellFlags(FLAGS.iter().filter(|(f, _, _)| flags.intersects(*f)).fold(0, |acc, (_, _, bit)| acc | bit))
}

/// The handler the parser feeds: the model's emulator inside the capture of rows into history. A macro, not a
/// method, so the parser and the guard's filtered bytes stay borrowable beside it.
macro_rules! capture {
    ($model:expr) => {
        Capture {
            term: &mut $model.term,
            region: &mut $model.region,
            history: &mut $model.history,
            scratch: &mut $model.scratch,
            changes: &mut $model.changes,
        }
    };
}

impl TerminalModel for AlacrittyModel {
    fn feed(&mut self, bytes: &[u8]) {
        let bytes = self.guard.filter(bytes);
        self.parser.advance(&mut capture!(self), bytes);
        if self.guard.marks_passed > MAX_COMBINING {
            trim_marks(&mut self.term);
            self.changes.everything();
        }
    }

    fn resize(&mut self, rows: u16, cols: u16) {
        let rows = rows.max(1);
        let cols = cols.max(2);
        self.listener.with(|p| p.size = (rows, cols));
        let (old_rows, old_cols) = (self.term.screen_lines(), self.term.columns());
        if (old_rows, old_cols) == (rows as usize, cols as usize) {
            return;
        }
        let primary = !self.alt_screen();
        // A shorter or narrower screen pushes rows up: the emulator gets room to keep them for the moment of
        // the resize (a reflow can make each row several), and they go to the history after. A line that
        // began in history and goes on on the screen goes back to the emulator first, to reflow whole.
        let back = if primary { self.history.take_open_line().unwrap_or_default() } else { Vec::new() };
        self.history.set_width(cols);
        if primary {
            let room = (old_rows + back.len()) * (old_cols / cols as usize + 2);
            self.term.grid_mut().update_history(room);
            put_back(&mut self.term, back);
        }
        self.term.resize(Size { rows: rows as usize, cols: cols as usize });
        if primary {
            let pushed = self.term.grid().history_size();
            for line in (1..=pushed).rev() {
                capture::history_row(&self.term, -(line as i32), false, None, &mut self.scratch);
                self.history.push_encoded(&self.scratch);
            }
            let grid = self.term.grid_mut();
            grid.update_history(0);
            // Give back the rows the emulator allocated for the resize.
            grid.truncate();
        }
        self.region = capture::full_region(&self.term);
    }

    fn size(&self) -> (u16, u16) {
        (self.term.screen_lines() as u16, self.term.columns() as u16)
    }

    fn take_replies(&mut self) -> Vec<u8> {
        self.listener.with(|p| std::mem::take(&mut p.replies))
    }

    fn take_bell(&mut self) -> bool {
        self.listener.with(|p| std::mem::take(&mut p.bell))
    }

    fn take_notifications(&mut self) -> Vec<String> {
        self.guard.take_notifications()
    }

    fn title(&self) -> Option<String> {
        self.listener.with(|p| p.title.clone())
    }

    fn progress(&self) -> Option<String> {
        self.guard.progress.clone()
    }

    fn modes(&self) -> InputModes {
        let mode = *self.term.mode();
        let kitty = [
            TermMode::DISAMBIGUATE_ESC_CODES,
            TermMode::REPORT_EVENT_TYPES,
            TermMode::REPORT_ALTERNATE_KEYS,
            TermMode::REPORT_ALL_KEYS_AS_ESC,
            TermMode::REPORT_ASSOCIATED_TEXT,
        ]
        .iter()
        .enumerate()
        .filter(|(_, m)| mode.contains(**m))
        .fold(0u8, |acc, (i, _)| acc | (1 << i));
        InputModes {
            app_cursor: mode.contains(TermMode::APP_CURSOR),
            bracketed_paste: mode.contains(TermMode::BRACKETED_PASTE),
            kitty_flags: kitty,
            mouse: mode.intersects(TermMode::MOUSE_MODE),
            sgr_mouse: mode.contains(TermMode::SGR_MOUSE),
            alt_screen: mode.contains(TermMode::ALT_SCREEN),
        }
    }

    fn snapshot(&self) -> Screen {
        self.snapshot_at(self.view)
    }

    fn rows_pushed(&self) -> u64 {
        self.history.pushed()
    }

    fn history_size(&self) -> usize {
        // The alternate screen has no history (as in every terminal): the primary's waits behind it.
        if self.alt_screen() {
            0
        } else {
            self.history.rows()
        }
    }

    fn text_rows(&self, from: usize, count: usize) -> Vec<super::search::TextRow> {
        use super::search::TextRow;
        let history = self.history_size();
        let end = from.saturating_add(count).min(self.buffer_rows());
        let mut out: Vec<TextRow> =
            if from < history { self.history.text_rows(from, end.min(history) - from) } else { Vec::new() };
        let grid = self.term.grid();
        let cols = self.term.columns();
        for row in from.max(history)..end {
            let grid_row = &grid[Line((row - history) as i32)];
            let wrapped = grid_row[Column(cols - 1)].flags.contains(Flags::WRAPLINE);
            out.push(TextRow::new(&convert_row(grid_row, cols), wrapped));
        }
        out
    }

    fn snapshot_at(&self, offset: usize) -> Screen {
        let grid = self.term.grid();
        let rows = self.term.screen_lines();
        let cols = self.term.columns();
        let history = self.history_size();
        let offset = offset.min(history);
        let mut lines = Vec::with_capacity(rows);
        let above = offset.min(rows);
        for mut row in self.history.rows_at(history - offset, above) {
            row.resize(cols, ScreenCell::default());
            lines.push(Row::from(row));
        }
        lines.resize(above, super::screen::blank_row(cols as u16));
        for row in above..rows {
            lines.push(convert_row(&grid[Line((row - offset) as i32)], cols));
        }
        self.screen_of(lines, offset)
    }

    fn live_frame(&mut self) -> (Screen, Option<Change>) {
        let change = self.changes.take(&mut self.term);
        let last = self.last_live.take();
        let (rows, cols) = (self.term.screen_lines(), self.term.columns());
        let screen = match (&change, last) {
            (Some(c), Some(last))
                if self.view == 0
                    && (last.rows as usize, last.cols as usize) == (rows, cols)
                    && last.is_whole()
                    && c.rows.iter().all(|&r| (r as usize) < rows) =>
            {
                // The last frame's rows, moved up as the screen moved (the rows that come round to the bottom
                // are among the changed ones), and the changed rows converted anew.
                let mut lines = last.lines;
                lines.rotate_left((c.scroll as usize).min(rows));
                let grid = self.term.grid();
                for &row in &c.rows {
                    lines[row as usize] = convert_row(&grid[Line(row as i32)], cols);
                }
                self.screen_of(lines, 0)
            }
            _ => self.snapshot_at(0),
        };
        // A copy of the frame is a pointer per row.
        self.last_live = (self.view == 0).then(|| screen.clone());
        (screen, change.filter(|_| self.view == 0))
    }

    fn text_lines(&self) -> Vec<String> {
        let grid = self.term.grid();
        (0..self.term.screen_lines())
            .map(|row| {
                let grid_row = &grid[Line(row as i32)];
                let mut line: String = (0..self.term.columns())
                    .map(|c| &grid_row[Column(c)])
                    .filter(|cell| !cell.flags.contains(Flags::WIDE_CHAR_SPACER))
                    .map(|cell| if cell.c == '\0' || cell.c == '\t' { ' ' } else { cell.c })
                    .collect();
                line.truncate(line.trim_end().len());
                line
            })
            .collect()
    }

    fn content_hash(&self) -> u64 {
        self.content_hash_except(&[])
    }

    fn content_hash_except(&self, inert: &[regex::Regex]) -> u64 {
        // Run on every state check of every agent with output: a multiply-rotate hash (as FxHash does), far
        // cheaper per cell than SipHash, and collisions only cost a missed "busy" for one check.
        let mix = |h: u64, v: u64| (h.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
        let grid = self.term.grid();
        // Text is read only where a preset names inert lines (one CLI's): the common path reads cells alone.
        let blank: Vec<bool> = if inert.is_empty() {
            Vec::new()
        } else {
            self.text_lines().iter().map(|l| inert.iter().any(|re| re.is_match(l))).collect()
        };
        let mut h = 0u64;
        for row in 0..self.term.screen_lines() {
            let grid_row = &grid[Line(row as i32)];
            let as_blank = blank.get(row).copied().unwrap_or(false);
            for col in 0..self.term.columns() {
                h = mix(h, if as_blank { ' ' as u64 } else { grid_row[Column(col)].c as u64 });
            }
            h = mix(h, u64::MAX);
        }
        // Not the history's size: a repaint after `ESC [2J` pushes the old screen into it, and is no activity.
        mix(h, u64::from(self.term.mode().contains(TermMode::ALT_SCREEN)))
    }

    fn scroll(&mut self, lines: i32) {
        self.view = (self.view as i64 + lines as i64).clamp(0, self.history_size() as i64) as usize;
    }

    fn scroll_to_bottom(&mut self) -> bool {
        std::mem::take(&mut self.view) > 0
    }

    fn sync_deadline(&self) -> Option<Instant> {
        self.parser.sync_timeout().sync_timeout()
    }

    fn flush_sync(&mut self) {
        self.parser.stop_sync(&mut capture!(self));
    }

    fn history_deadline(&self) -> Option<Instant> {
        self.history.seal_deadline()
    }

    fn compact_history(&mut self, now: Instant) {
        self.history.seal_due(now);
    }
}

impl AlacrittyModel {
    /// A screen of these cells, `offset` lines back into history.
    fn screen_of(&self, lines: Vec<Row>, offset: usize) -> Screen {
        let rows = self.term.screen_lines();
        let cols = self.term.columns();
        let history = self.history_size();
        let content = self.term.renderable_content();
        let cursor_point = content.cursor.point;
        let visible_row = cursor_point.line.0 + offset as i32;
        let cursor = (content.cursor.shape != CursorShape::Hidden
            && self.term.mode().contains(TermMode::SHOW_CURSOR)
            && (0..rows as i32).contains(&visible_row))
        .then_some((visible_row as u16, cursor_point.column.0 as u16));
        Screen {
            rows: rows as u16,
            cols: cols as u16,
            lines,
            cursor,
            scrolled_back: offset,
            history,
            alt_screen: self.term.mode().contains(TermMode::ALT_SCREEN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Where a row's text ends, searched eight cells a step, is where a search one cell at a time by the whole
        /// rule ends.
        #[test]
        fn a_rows_text_ends_where_a_cell_by_cell_search_says(
            cells in proptest::collection::vec((0u8..6, 0usize..3), 0..40),
        ) {
            use alacritty_terminal::term::cell::Cell;
            let row: Vec<Cell> = cells
                .iter()
                .map(|&(kind, at)| {
                    let mut c = Cell::default();
                    match kind {
                        0..=2 => {}
                        3 => c.c = 'x',
                        4 => c.bg = Color::Indexed(at as u8 + 1),
                        _ => c.flags = [Flags::UNDERLINE, Flags::INVERSE, Flags::LEADING_WIDE_CHAR_SPACER][at],
                    }
                    c
                })
                .collect();
            // The fast rule never calls blank what the whole rule does not.
            prop_assert!(row.iter().all(|c| !emulator_blank(c) || converts_blank(c)));
            let slow = row.iter().rposition(|c| !converts_blank(c)).map_or(0, |c| c + 1);
            prop_assert_eq!(text_end(&row), slow);
        }
    }

    impl AlacrittyModel {
        /// Every row, history first.
        fn all_rows(&self) -> Vec<Vec<ScreenCell>> {
            let cols = self.term.columns();
            let mut rows = self.history.rows_at(0, self.history_size());
            for row in rows.iter_mut() {
                row.resize(cols, ScreenCell::default());
            }
            let grid = self.term.grid();
            for line in 0..self.term.screen_lines() as i32 {
                rows.push((0..cols).map(|c| convert_cell(&grid[Line(line)][Column(c)])).collect());
            }
            rows
        }
    }

    /// alacritty with a history that never fills: what the compact history must read back as.
    struct Oracle {
        term: Term<Listener>,
        parser: Processor<StdSyncHandler>,
        /// The same output guard as the model's: what it lets through is what both emulators see.
        guard: OutputGuard,
    }

    impl Oracle {
        fn new(rows: u16, cols: u16) -> Oracle {
            let config = Config { scrolling_history: 1_000_000, kitty_keyboard: true, ..Config::default() };
            let size = Size { rows: rows as usize, cols: cols as usize };
            Oracle {
                term: Term::new(config, &size, Listener::default()),
                parser: Processor::new(),
                guard: OutputGuard::default(),
            }
        }

        fn feed(&mut self, bytes: &[u8]) {
            let bytes = self.guard.filter(bytes);
            self.parser.advance(&mut self.term, bytes);
        }

        fn resize(&mut self, rows: u16, cols: u16) {
            self.term.resize(Size { rows: rows as usize, cols: cols as usize });
        }

        fn all_rows(&self) -> Vec<Vec<ScreenCell>> {
            let grid = self.term.grid();
            let cols = self.term.columns();
            let top = -(grid.history_size() as i32);
            (top..self.term.screen_lines() as i32)
                .map(|l| (0..cols).map(|c| convert_cell(&grid[Line(l)][Column(c)])).collect())
                .collect()
        }
    }

    /// What a reader finds, whatever the rows' layout: every visible cell in order.
    fn visible(rows: &[Vec<ScreenCell>]) -> Vec<ScreenCell> {
        rows.iter().flatten().filter(|c| **c != ScreenCell::default() && !c.text.trim().is_empty()).cloned().collect()
    }

    /// Pieces of output; `full`: cursor addressing, clears, scroll regions, line insertion and deletion, the
    /// alternate screen and resets too, else streamed output only (text, colours, line ends, scrolls).
    fn piece(full: bool) -> impl Strategy<Value = String> {
        let mut pieces = vec![
            "word ",
            "longer-words-that-wrap ",
            "界面",
            "e\u{301}",
            "\u{1F600}",
            "\r\n",
            "\n",
            "\r\n\r\n",
            "\t",
            "\x1b[31m",
            "\x1b[1;4m",
            "\x1b[38;2;10;200;30m",
            "\x1b[48;5;208m",
            "\x1b[0m",
            "\x1b[K",
            "\x1bD",
            "\x1bE",
        ];
        if full {
            pieces.extend(["\x1b[2S", "\x1b[2J", "\x1b[3J", "\x1b[3;2H", "\x1b[99;1H", "\x1b[H\x1b[M"]);
            pieces.extend(["\x1b[1;4r", "\x1b[2;5r", "\x1b[r", "\x1bM", "\x1b[L", "\x1b[?1049h", "\x1b[?1049l"]);
            pieces.push("\x1bc");
        }
        let text = "[a-z]{1,30}".prop_map(|s| s + " ");
        prop_oneof![3 => prop::sample::select(pieces).prop_map(str::to_string), 2 => text]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: std::env::var("MUSTER_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200), ..ProptestConfig::default() })]

        /// Without resizes the history reads back row for row, cell for cell, as alacritty's own does.
        #[test]
        fn the_history_reads_back_as_an_unbounded_emulator(
            pieces in prop::collection::vec(piece(true), 1..300),
            rows in 1u16..8, cols in 2u16..30, split in 1usize..64,
        ) {
            let bytes = pieces.concat().into_bytes();
            let mut model = AlacrittyModel::new(rows, cols, 1_000_000);
            let mut oracle = Oracle::new(rows, cols);
            for chunk in bytes.chunks(split) {
                model.feed(chunk);
                oracle.feed(chunk);
            }
            model.flush_sync();
            let (ours, theirs) = (model.all_rows(), oracle.all_rows());
            prop_assert_eq!(ours.len(), theirs.len());
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                prop_assert_eq!(a, b, "row {}", i);
            }
            // And through the snapshots a scrolled-back viewer gets.
            let history = model.history_size();
            let back = model.snapshot_at(history);
            prop_assert_eq!(back.scrolled_back, history);
            let top: Vec<ScreenCell> = theirs.iter().take(rows as usize).flatten().cloned().collect();
            prop_assert_eq!(back.cells().cloned().collect::<Vec<_>>(), top);
        }

        /// Across resizes nothing is lost, doubled or restyled: the visible cells read in the same order. Between
        /// resizes output streams (a screen laid out again differs where alacritty pulls its history back onto
        /// the screen: addressed writes would land on other rows).
        #[test]
        fn the_history_keeps_every_cell_across_resizes(
            first in prop::collection::vec(piece(true), 0..60),
            steps in prop::collection::vec((prop::collection::vec(piece(false), 1..40), 1u16..8, 2u16..30), 1..8),
            rows in 1u16..8, cols in 2u16..30,
        ) {
            let mut model = AlacrittyModel::new(rows, cols, 1_000_000);
            let mut oracle = Oracle::new(rows, cols);
            let first = first.concat().into_bytes();
            model.feed(&first);
            oracle.feed(&first);
            let mut height = rows;
            for (pieces, rows, cols) in steps {
                // Output after a resize starts on a new line below the last: where a reflow leaves the cursor is
                // alacritty's choice and differs with what its history holds (it pulls rows back from history
                // onto a wider screen, muster adds blank rows below), so output would overwrite other cells. And
                // before a resize the cursor goes to the last line: alacritty's reflow drops rows below the
                // cursor when the screen gets wider (muster keeps them).
                let bytes = format!("\x1b[99;1H\r\n{}\x1b[r\x1b[99;1H", pieces.concat()).into_bytes();
                model.feed(&bytes);
                oracle.feed(&bytes);
                // A taller screen is not compared: alacritty pulls history rows back onto it, muster adds
                // blank rows below (as xterm does), and what follows lands on different rows.
                height = height.min(rows);
                model.resize(height, cols);
                oracle.resize(height, cols);
                prop_assert_eq!(visible(&model.all_rows()), visible(&oracle.all_rows()));
            }
            prop_assert_eq!(visible(&model.all_rows()), visible(&oracle.all_rows()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: std::env::var("MUSTER_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200), ..ProptestConfig::default() })]

        /// A live frame built from the rows that changed is the whole snapshot, whatever came in between
        /// (hostile pieces, split anywhere, frames taken at any point, resizes, scrolling back and forth); and
        /// the change it reports turns the frame before into it.
        #[test]
        fn a_live_frame_of_the_rows_that_changed_is_the_whole_screen(
            steps in prop::collection::vec((prop::collection::vec(piece(true), 0..30), 0u8..10), 1..12),
            rows in 1u16..8, cols in 2u16..30, split in 1usize..64,
        ) {
            let mut model = AlacrittyModel::new(rows, cols, 1_000);
            let mut before: Option<Screen> = None;
            let mut check = |model: &mut AlacrittyModel| -> Result<(), TestCaseError> {
                let (frame, change) = model.live_frame();
                prop_assert_eq!(&frame, &model.snapshot_at(0));
                if let (Some(change), Some(before)) = (change, before.as_ref()) {
                    let mut moved = before.lines.clone();
                    let blank = super::super::screen::blank_row(before.cols);
                    moved.drain(..(change.scroll as usize).min(moved.len()));
                    moved.resize(before.lines.len(), blank);
                    for r in &change.rows {
                        moved[*r as usize] = frame.lines[*r as usize].clone();
                    }
                    prop_assert_eq!(&moved, &frame.lines, "the change {:?}", change);
                }
                before = Some(frame);
                Ok(())
            };
            for (pieces, then) in steps {
                for chunk in pieces.concat().as_bytes().chunks(split) {
                    model.feed(chunk);
                    check(&mut model)?;
                }
                match then {
                    0 => model.resize(rows.saturating_sub(1).max(1), cols + 1),
                    1 => model.resize(rows, cols),
                    2 => model.scroll(3),
                    3 => { model.scroll_to_bottom(); }
                    _ => {}
                }
                check(&mut model)?;
            }
        }
    }

    #[test]
    fn output_scrolling_by_is_a_scroll_and_the_rows_written() {
        let mut m = model(6, 20);
        m.feed(b"one\r\ntwo\r\nthree\r\n");
        assert_eq!(m.live_frame().1, None, "the first frame is all new");
        m.feed(b"four\r\nfive\r\nsix\r\nseven\r\n");
        let (screen, change) = m.live_frame();
        assert_eq!(screen.row_text(4), "seven");
        // Two lines went into history; "four" to "seven" were written (rows 1 to 4 now) and the cursor is on 5.
        assert_eq!(change, Some(Change { scroll: 2, rows: vec![1, 2, 3, 4, 5] }));
        m.feed(b"\x1b[31mx");
        assert_eq!(m.live_frame().1, Some(Change { scroll: 0, rows: vec![5] }));
        assert_eq!(m.live_frame().1, Some(Change { scroll: 0, rows: vec![5] }), "the cursor's row, always");
    }

    fn model(rows: u16, cols: u16) -> AlacrittyModel {
        AlacrittyModel::new(rows, cols, 10_000)
    }

    #[test]
    fn plain_text_and_cursor() {
        let mut m = model(5, 20);
        m.feed(b"hello\r\nworld");
        let s = m.snapshot();
        assert_eq!(s.row_text(0), "hello");
        assert_eq!(s.row_text(1), "world");
        assert_eq!(s.cursor, Some((1, 5)));
    }

    #[test]
    fn colours_and_attributes() {
        let mut m = model(3, 20);
        m.feed(b"\x1b[1;31mR\x1b[0m\x1b[38;2;1;2;3mT\x1b[38;5;208mI\x1b[7mV");
        let s = m.snapshot();
        let c = |col| s.cell(0, col).unwrap().clone();
        assert_eq!(c(0).fg, CellColor::Indexed(1));
        assert!(c(0).flags.has(CellFlags::BOLD));
        assert_eq!(c(1).fg, CellColor::Rgb(1, 2, 3));
        assert_eq!(c(2).fg, CellColor::Indexed(208));
        assert!(c(3).flags.has(CellFlags::INVERSE));
    }

    #[test]
    fn wide_characters_take_two_cells() {
        let mut m = model(2, 10);
        m.feed("界x".as_bytes());
        let s = m.snapshot();
        assert_eq!(m.text_lines(), s.text());
        assert!(s.cell(0, 0).unwrap().flags.has(CellFlags::WIDE));
        assert!(s.cell(0, 1).unwrap().flags.has(CellFlags::SPACER));
        assert_eq!(s.cell(0, 2).unwrap().text, "x");
        assert_eq!(s.row_text(0), "界x");
    }

    #[test]
    fn answers_cursor_position_and_device_attributes() {
        let mut m = model(10, 40);
        m.feed(b"ab\x1b[6n");
        assert_eq!(m.take_replies(), b"\x1b[1;3R");
        m.feed(b"\x1b[c");
        let reply = m.take_replies();
        assert!(reply.starts_with(b"\x1b[?"), "{reply:?}");
    }

    #[test]
    fn answers_kitty_keyboard_query_and_tracks_flags() {
        let mut m = model(5, 20);
        m.feed(b"\x1b[?u");
        assert_eq!(m.take_replies(), b"\x1b[?0u");
        m.feed(b"\x1b[>1u");
        assert_eq!(m.modes().kitty_flags, 1);
        m.feed(b"\x1b[<u");
        assert_eq!(m.modes().kitty_flags, 0);
    }

    #[test]
    fn colour_queries_get_the_palette() {
        let palette = Palette { foreground: (1, 2, 3), background: (250, 250, 250), ..Palette::default() };
        let mut m = AlacrittyModel::with_palette(5, 20, 100, palette);
        m.feed(b"\x1b]11;?\x07");
        assert_eq!(String::from_utf8_lossy(&m.take_replies()), "\x1b]11;rgb:fafa/fafa/fafa\x07");
        m.feed(b"\x1b]10;?\x1b\\");
        assert_eq!(String::from_utf8_lossy(&m.take_replies()), "\x1b]10;rgb:0101/0202/0303\x1b\\");
    }

    #[test]
    fn a_redraw_of_the_same_text_keeps_the_hash_and_new_text_changes_it() {
        let mut m = model(5, 20);
        m.feed(b"\x1b[2J\x1b[Hprompt> \x1b[1;31mred");
        let h = m.content_hash();
        // Clear and repaint, cursor moves, a colour change only: nothing a reader sees changed.
        m.feed(b"\x1b[2J\x1b[H\x1b[0mprompt> \x1b[32mred\x1b[3;4H\x1b[?25l");
        assert_eq!(m.content_hash(), h);
        m.feed(b"!");
        assert_ne!(m.content_hash(), h);
        // Scrolling the view back is the operator's doing, not the agent's.
        let h = m.content_hash();
        m.scroll(3);
        assert_eq!(m.content_hash(), h);
    }

    #[test]
    fn scrollback_keeps_history_and_scrolls() {
        let mut m = model(3, 10);
        for i in 0..20 {
            m.feed(format!("line{i}\r\n").as_bytes());
        }
        let s = m.snapshot();
        assert_eq!(s.row_text(1), "line19");
        assert!(s.history >= 17);
        m.scroll(5);
        let s = m.snapshot();
        assert_eq!(s.scrolled_back, 5);
        assert_eq!(s.row_text(1), "line14");
        m.scroll_to_bottom();
        assert_eq!(m.snapshot().scrolled_back, 0);
    }

    #[test]
    fn resize_reflows_and_reports_size() {
        let mut m = model(5, 10);
        m.feed(b"abcdefghijkl");
        assert_eq!(m.snapshot().row_text(0), "abcdefghij");
        m.resize(5, 20);
        assert_eq!(m.size(), (5, 20));
        assert_eq!(m.snapshot().row_text(0), "abcdefghijkl");
    }

    #[test]
    fn hostile_marks_titles_and_strings_stay_small() {
        let mut m = model(5, 20);
        let mark = "\u{301}";
        // Marks between cursor moves all land on the first cell: the guard alone would pass 8 per run.
        let mut s = String::from("a");
        for _ in 0..200 {
            s.push_str(&format!("{}x\x1b[D", mark.repeat(8)));
        }
        m.feed(s.as_bytes());
        let first = m.snapshot().row_text(0);
        let marks_on_a = first.chars().take_while(|c| *c != 'x').filter(|c| *c == '\u{301}').count();
        assert!(marks_on_a <= MAX_COMBINING, "{marks_on_a} marks kept on one cell");
        let huge = format!("\x1b]0;{}\x07", "t".repeat(1 << 20));
        m.feed(huge.as_bytes());
        assert_eq!(m.title().map(|t| t.chars().count()), Some(MAX_TITLE));
    }

    #[test]
    fn title_bell_and_modes() {
        let mut m = model(5, 20);
        m.feed(b"\x1b]0;my agent\x07\x07\x1b[?1h\x1b[?2004h\x1b[?1049h");
        assert_eq!(m.title().as_deref(), Some("my agent"));
        assert!(m.take_bell());
        assert!(!m.take_bell());
        let modes = m.modes();
        assert!(modes.app_cursor && modes.bracketed_paste && modes.alt_screen);
    }

    #[test]
    fn synchronized_output_is_held_until_the_end_marker() {
        let mut m = model(3, 20);
        m.feed(b"\x1b[?2026hheld");
        assert_eq!(m.snapshot().row_text(0), "");
        assert!(m.sync_deadline().is_some());
        m.feed(b"\x1b[?2026l");
        assert_eq!(m.snapshot().row_text(0), "held");
        m.feed(b"\x1b[?2026hmore");
        m.flush_sync();
        assert_eq!(m.snapshot().row_text(0), "heldmore");
    }

    #[test]
    fn hostile_input_never_panics() {
        let mut m = model(4, 8);
        let junk: Vec<u8> = (0..=255u8).cycle().take(20_000).collect();
        m.feed(&junk);
        m.feed(b"\x1b[99999;99999H\x1b[2147483647X\x1b[?9999999h\x1b]52;c;!!!\x07");
        m.resize(1, 2);
        let _ = m.snapshot();
    }
}
