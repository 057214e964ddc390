//! The emulator keeps no history of its own (alacritty allocates history a thousand full rows at a time): the
//! parser drives the emulator through this handler, which copies a row into the compact history just before
//! it scrolls off the top of the screen, and forwards everything else untouched.
//!
//! A row leaves the screen into history only when the whole screen (or a scroll region starting at its top
//! line) scrolls up on the primary screen: a line feed or an auto-wrap on the region's last line, `CSI S`,
//! `CSI M` on the top line, and clearing the screen (which alacritty does by scrolling the content up).

use std::ops::Range;

use alacritty_terminal::grid::{Dimensions, GridCell};
use alacritty_terminal::index::{Column, Line};
use alacritty_terminal::term::cell::{Cell, Flags};
use alacritty_terminal::term::{Term, TermMode};
use alacritty_terminal::vte::ansi::cursor_icon::CursorIcon;
use alacritty_terminal::vte::ansi::{
    Attr, CharsetIndex, ClearMode, CursorShape, CursorStyle, Handler, Hyperlink, KeyboardModes,
    KeyboardModesApplyBehavior, LineClearMode, Mode, ModifyOtherKeys, PrivateMode, Rgb, ScpCharPath, ScpUpdateMode,
    StandardCharset, TabulationClearMode,
};

use super::history::{Encoded, History, Marks, Part, LEADING_SPACER};
use super::model::{cell_char, cell_parts, text_end, Listener};
use super::screen::{CellColor, CellFlags};

/// The scroll region as alacritty keeps it (private there): lines `start..end` of the screen.
pub type Region = Range<i32>;

pub fn full_region<T>(term: &Term<T>) -> Region {
    0..term.screen_lines() as i32
}

/// A leading spacer the history must see in a row: a wide character that did not fit in that column is about
/// to wrap to the next row (colours and attributes of the cursor's template).
pub type Spacer = (usize, CellColor, CellColor, u16);

/// A grid row, encoded for the history into `out`: all of it when it wraps into the next row (or is about to:
/// `wraps`), else without its trailing blanks.
pub fn history_row(term: &Term<Listener>, line: i32, wraps: bool, spacer: Option<Spacer>, out: &mut Encoded) {
    let cols = term.columns();
    let row = &term.grid()[Line(line)][..Column(cols)];
    let wrapped = wraps || row.last().is_some_and(|c| c.flags.contains(Flags::WRAPLINE));
    let keep = if wrapped { cols } else { text_end(row) };
    let spacer_at = spacer.map(|s| s.0);
    // A spacer written over the second half of a wide character clears its first half, as alacritty does.
    let cleared = spacer_at.filter(|&c| c > 0 && row[c].flags.contains(Flags::WIDE_CHAR_SPACER)).map(|c| c - 1);
    out.set_runs(
        keep,
        wrapped,
        |c| match spacer {
            Some((col, fg, bg, flags)) if col == c => Part { ch: ' ', fg, bg, flags, marks: Marks::None },
            _ if cleared == Some(c) => {
                let mut p = part(&row[c]);
                p.ch = ' ';
                p.flags &= !CellFlags::WIDE;
                p
            }
            _ => part(&row[c]),
        },
        // Most of a row is runs of one style: told by comparing the emulator's own fields, not converted ones.
        |c| {
            let (cell, before) = (&row[c], &row[c - 1]);
            let same = cell.fg == before.fg
                && cell.bg == before.bg
                && cell.flags == before.flags
                && spacer_at != Some(c)
                && spacer_at != Some(c - 1)
                && cleared != Some(c)
                && cleared != Some(c - 1);
            same.then(|| (cell_char(cell), cell.zerowidth().is_some_and(|z| !z.is_empty())))
        },
    );
}

/// An emulator cell as the history's encoder takes it (what `convert_cell` would make of it).
fn part(cell: &Cell) -> Part<'_> {
    let (ch, fg, bg, flags) = cell_parts(cell);
    let mut flags = flags.0;
    if cell.flags.contains(Flags::LEADING_WIDE_CHAR_SPACER) {
        flags |= LEADING_SPACER;
    }
    Part { ch, fg, bg, flags, marks: cell.zerowidth().map_or(Marks::None, Marks::Chars) }
}

/// How a character wraps the line it is typed on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wrap {
    /// The line was full: the character goes to the next.
    Pending,
    /// A wide character did not fit in the last column: a blank takes it.
    Wide,
}

pub struct Capture<'a> {
    pub term: &'a mut Term<Listener>,
    pub region: &'a mut Region,
    pub history: &'a mut History,
    /// Where a row is encoded before it scrolls off (its allocation kept between rows).
    pub scratch: &'a mut Encoded,
    /// Rows changed since the last frame: told of each scroll of the whole screen.
    pub changes: &'a mut super::changes::RowChanges,
}

impl Capture<'_> {
    fn primary(&self) -> bool {
        !self.term.mode().contains(TermMode::ALT_SCREEN)
    }

    /// Where the first cell of a screen line's row lives: rows move, their cells do not, so after a call the
    /// row now on top says how far the screen scrolled.
    fn row_at(&self, line: i32) -> *const Cell {
        &self.term.grid()[Line(line)][Column(0)] as *const Cell
    }

    /// Whether a line feed now would push the top line into history.
    fn feed_scrolls(&self) -> bool {
        let cursor = self.term.grid().cursor.point.line.0;
        self.primary() && self.region.start == 0 && cursor + 1 == self.region.end
    }

    /// Copies the top row, runs `f`, and keeps the copy if the screen scrolled by a row. `wrap`: the call
    /// wraps the cursor's line first, which marks it (and may add a leading spacer) before it scrolls.
    fn maybe_one(&mut self, wrap: Option<Wrap>, f: impl FnOnce(&mut Term<Listener>)) {
        // A one-line screen scrolls onto itself: nothing to compare, and the caller's condition is exact.
        let second = (self.term.screen_lines() > 1).then(|| self.row_at(1));
        let cursor = &self.term.grid().cursor;
        let wraps = wrap.is_some() && cursor.point.line.0 == 0;
        let spacer = (wraps && wrap == Some(Wrap::Wide) && cursor.point.column.0 < self.term.columns()).then(|| {
            let (_, fg, bg, flags) = cell_parts(&cursor.template);
            (cursor.point.column.0, fg, bg, (flags.0 & !(CellFlags::WIDE | CellFlags::SPACER)) | LEADING_SPACER)
        });
        history_row(self.term, 0, wraps, spacer, self.scratch);
        // A scroll of the whole screen moves the changed rows up; one of a region above a bottom margin does
        // not (the emulator's full damage stands).
        let whole = self.region.end as usize == self.term.screen_lines();
        if whole {
            self.changes.absorb(self.term);
        }
        f(self.term);
        if second.is_none_or(|s| self.row_at(0) == s) {
            self.history.push_encoded(self.scratch);
            if whole {
                self.changes.scrolled(self.term, 1);
            }
        }
    }

    /// Copies the top `n` rows (what a known scroll of `n` pushes out) and runs `f`.
    fn exactly(&mut self, n: usize, f: impl FnOnce(&mut Term<Listener>)) {
        for line in 0..n.min(self.term.screen_lines()) {
            history_row(self.term, line as i32, false, None, self.scratch);
            self.history.push_encoded(self.scratch);
        }
        f(self.term);
    }
}

macro_rules! forward {
    ($( fn $name:ident(&mut self $(, $arg:ident : $ty:ty)*); )*) => {
        $(
            fn $name(&mut self $(, $arg: $ty)*) {
                <Term<Listener> as Handler>::$name(self.term $(, $arg)*)
            }
        )*
    };
}

impl Handler for Capture<'_> {
    fn input(&mut self, c: char) {
        // As alacritty decides: a pending wrap is taken by any printing character (a combining mark joins the
        // last cell instead), and a wide character that does not fit in the last column wraps.
        let width = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        let cursor = &self.term.grid().cursor;
        let wrap = if cursor.input_needs_wrap && width > 0 {
            Some(Wrap::Pending)
        } else if width == 2 && cursor.point.column.0 + 1 >= self.term.columns() {
            Some(Wrap::Wide)
        } else {
            None
        };
        if wrap.is_some() && self.term.mode().contains(TermMode::LINE_WRAP) && self.feed_scrolls() {
            self.maybe_one(wrap, |t| Handler::input(t, c));
        } else {
            Handler::input(self.term, c);
        }
    }

    /// A tab with a wrap pending is a line break.
    fn put_tab(&mut self, count: u16) {
        let wraps = self.term.grid().cursor.input_needs_wrap && self.term.mode().contains(TermMode::LINE_WRAP);
        if wraps && self.feed_scrolls() {
            self.maybe_one(Some(Wrap::Pending), |t| Handler::put_tab(t, count));
        } else {
            Handler::put_tab(self.term, count);
        }
    }

    fn linefeed(&mut self) {
        if self.feed_scrolls() {
            self.maybe_one(None, Handler::linefeed);
        } else {
            Handler::linefeed(self.term);
        }
    }

    fn newline(&mut self) {
        if self.feed_scrolls() {
            self.maybe_one(None, Handler::newline);
        } else {
            Handler::newline(self.term);
        }
    }

    fn scroll_up(&mut self, lines: usize) {
        if self.primary() && self.region.start == 0 {
            let n = lines.min((self.region.end - self.region.start).max(0) as usize);
            self.exactly(n, |t| Handler::scroll_up(t, lines));
        } else {
            Handler::scroll_up(self.term, lines);
        }
    }

    fn delete_lines(&mut self, lines: usize) {
        let origin = self.term.grid().cursor.point.line.0;
        if self.primary() && self.region.start == 0 && origin == 0 && self.region.contains(&origin) {
            let n = lines.min(self.term.screen_lines()).min(self.region.end.max(0) as usize);
            self.exactly(n, |t| Handler::delete_lines(t, lines));
        } else {
            Handler::delete_lines(self.term, lines);
        }
    }

    fn clear_screen(&mut self, mode: ClearMode) {
        match mode {
            // Clearing the screen scrolls everything up to its last non-blank line into history.
            ClearMode::All if self.primary() => {
                let grid = self.term.grid();
                let cols = self.term.columns();
                let used = (0..self.term.screen_lines() as i32)
                    .rev()
                    .find(|l| (0..cols).any(|c| !grid[Line(*l)][Column(c)].is_empty()))
                    .map(|l| l as usize + 1)
                    // A blank screen over no history scrolls one blank row up (alacritty's search for the
                    // content stops at the top of the grid); over history, none.
                    .unwrap_or(usize::from(self.history.rows() == 0));
                self.exactly(used, |t| Handler::clear_screen(t, mode));
            }
            // The alternate screen has no history of its own to clear; the primary's stays.
            ClearMode::Saved if self.primary() => {
                self.history.clear();
                Handler::clear_screen(self.term, mode);
            }
            _ => Handler::clear_screen(self.term, mode),
        }
    }

    fn reset_state(&mut self) {
        Handler::reset_state(self.term);
        self.history.clear();
        *self.region = full_region(self.term);
    }

    fn set_scrolling_region(&mut self, top: usize, bottom: Option<usize>) {
        // As alacritty does: 1-based inclusive bounds, clamped to the screen, an empty region ignored.
        let lines = self.term.screen_lines();
        let last = bottom.unwrap_or(lines);
        if top < last {
            let lines = lines as i32;
            let clamp = |v: usize| v.min(i32::MAX as usize) as i32;
            *self.region = (clamp(top) - 1).min(lines)..clamp(last).min(lines);
        }
        Handler::set_scrolling_region(self.term, top, bottom);
    }

    forward! {
        fn set_title(&mut self, title: Option<String>);
        fn set_cursor_style(&mut self, style: Option<CursorStyle>);
        fn set_cursor_shape(&mut self, shape: CursorShape);
        fn goto(&mut self, line: i32, col: usize);
        fn goto_line(&mut self, line: i32);
        fn goto_col(&mut self, col: usize);
        fn insert_blank(&mut self, count: usize);
        fn move_up(&mut self, lines: usize);
        fn move_down(&mut self, lines: usize);
        fn identify_terminal(&mut self, intermediate: Option<char>);
        fn device_status(&mut self, arg: usize);
        fn move_forward(&mut self, col: usize);
        fn move_backward(&mut self, col: usize);
        fn move_down_and_cr(&mut self, row: usize);
        fn move_up_and_cr(&mut self, row: usize);
        fn backspace(&mut self);
        fn carriage_return(&mut self);
        fn bell(&mut self);
        fn substitute(&mut self);
        fn set_horizontal_tabstop(&mut self);
        fn scroll_down(&mut self, lines: usize);
        fn insert_blank_lines(&mut self, lines: usize);
        fn erase_chars(&mut self, count: usize);
        fn delete_chars(&mut self, count: usize);
        fn move_backward_tabs(&mut self, count: u16);
        fn move_forward_tabs(&mut self, count: u16);
        fn save_cursor_position(&mut self);
        fn restore_cursor_position(&mut self);
        fn clear_line(&mut self, mode: LineClearMode);
        fn clear_tabs(&mut self, mode: TabulationClearMode);
        fn set_tabs(&mut self, interval: u16);
        fn reverse_index(&mut self);
        fn terminal_attribute(&mut self, attr: Attr);
        fn set_mode(&mut self, mode: Mode);
        fn unset_mode(&mut self, mode: Mode);
        fn report_mode(&mut self, mode: Mode);
        fn set_private_mode(&mut self, mode: PrivateMode);
        fn unset_private_mode(&mut self, mode: PrivateMode);
        fn report_private_mode(&mut self, mode: PrivateMode);
        fn set_keypad_application_mode(&mut self);
        fn unset_keypad_application_mode(&mut self);
        fn set_active_charset(&mut self, index: CharsetIndex);
        fn configure_charset(&mut self, index: CharsetIndex, charset: StandardCharset);
        fn set_color(&mut self, index: usize, color: Rgb);
        fn dynamic_color_sequence(&mut self, prefix: String, index: usize, terminator: &str);
        fn reset_color(&mut self, index: usize);
        fn clipboard_store(&mut self, clipboard: u8, data: &[u8]);
        fn clipboard_load(&mut self, clipboard: u8, terminator: &str);
        fn decaln(&mut self);
        fn push_title(&mut self);
        fn pop_title(&mut self);
        fn text_area_size_pixels(&mut self);
        fn text_area_size_chars(&mut self);
        fn set_hyperlink(&mut self, link: Option<Hyperlink>);
        fn set_mouse_cursor_icon(&mut self, icon: CursorIcon);
        fn report_keyboard_mode(&mut self);
        fn push_keyboard_mode(&mut self, mode: KeyboardModes);
        fn pop_keyboard_modes(&mut self, to_pop: u16);
        fn set_keyboard_mode(&mut self, mode: KeyboardModes, behavior: KeyboardModesApplyBehavior);
        fn set_modify_other_keys(&mut self, mode: ModifyOtherKeys);
        fn report_modify_other_keys(&mut self);
        fn set_scp(&mut self, char_path: ScpCharPath, update_mode: ScpUpdateMode);
    }
}
