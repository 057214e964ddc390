//! A serialisable copy of the visible part of an agent's terminal: what the engine hands to the UI.

use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum CellColor {
    #[default]
    Default,
    Indexed(u8),
    Rgb(u8, u8, u8),
}

/// Cell attributes as bits, so a cell stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct CellFlags(pub u16);

impl CellFlags {
    pub const BOLD: u16 = 1;
    pub const DIM: u16 = 1 << 1;
    pub const ITALIC: u16 = 1 << 2;
    pub const UNDERLINE: u16 = 1 << 3;
    pub const INVERSE: u16 = 1 << 4;
    pub const HIDDEN: u16 = 1 << 5;
    pub const STRIKE: u16 = 1 << 6;
    /// The first half of a double-width character.
    pub const WIDE: u16 = 1 << 7;
    /// The second half of a double-width character: drawn by its first half.
    pub const SPACER: u16 = 1 << 8;

    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

#[derive(Debug, Clone, Eq, Serialize, Deserialize)]
pub struct ScreenCell {
    /// The character and any combining characters after it.
    pub text: CompactString,
    pub fg: CellColor,
    pub bg: CellColor,
    pub flags: CellFlags,
}

/// Field by field, as derived, but the cheap fields first and a one-byte text without a call to `memcmp`:
/// screens are compared row by row every frame (the server's damage, the well's painter).
impl PartialEq for ScreenCell {
    fn eq(&self, other: &Self) -> bool {
        if self.flags != other.flags || self.fg != other.fg || self.bg != other.bg {
            return false;
        }
        let (a, b) = (self.text.as_bytes(), other.text.as_bytes());
        match (a, b) {
            ([x], [y]) => x == y,
            _ => a == b,
        }
    }
}

impl Default for ScreenCell {
    fn default() -> Self {
        ScreenCell { text: " ".into(), fg: CellColor::Default, bg: CellColor::Default, flags: CellFlags::default() }
    }
}

/// One line of a screen. Shared: a frame keeps the rows of the frame before that did not change (a screen
/// that scrolled by a line is a new bottom row and the rest moved up), so making, sending, keeping and
/// dropping a frame cost a pointer per row, not a copy of every cell.
pub type Row = Arc<[ScreenCell]>;

/// A row of `cols` blank cells.
pub fn blank_row(cols: u16) -> Row {
    vec![ScreenCell::default(); cols as usize].into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Screen {
    pub rows: u16,
    pub cols: u16,
    /// `rows` rows of `cols` cells.
    pub lines: Vec<Row>,
    /// Cursor position within the visible rows, when it is shown and on screen.
    pub cursor: Option<(u16, u16)>,
    /// How many lines the view is scrolled back into history (0 = following the output).
    pub scrolled_back: usize,
    /// Lines of history above the screen.
    pub history: usize,
    pub alt_screen: bool,
}

impl Screen {
    /// A screen of `rows` rows of `cols` cells, from its cells in row-major order (blanks pad a short list).
    pub fn from_cells(rows: u16, cols: u16, mut cells: Vec<ScreenCell>) -> Screen {
        let w = cols as usize;
        cells.resize(rows as usize * w, ScreenCell::default());
        let lines = if w == 0 { vec![Row::from([]); rows as usize] } else { cells.chunks(w).map(Row::from).collect() };
        Screen { rows, cols, lines, ..Screen::default() }
    }

    /// Whether it holds `rows` rows of `cols` cells (a screen from outside may not).
    pub fn is_whole(&self) -> bool {
        self.lines.len() == self.rows as usize && self.lines.iter().all(|l| l.len() == self.cols as usize)
    }

    /// Both hold whole rows of the same size: one can be told as rows changed from the other.
    pub fn same_shape(&self, other: &Screen) -> bool {
        (self.rows, self.cols) == (other.rows, other.cols) && self.is_whole() && other.is_whole()
    }

    /// The cells of one row (none past the last).
    pub fn row(&self, row: u16) -> &[ScreenCell] {
        self.lines.get(row as usize).map_or(&[], |l| &l[..])
    }

    /// Every cell, row by row.
    pub fn cells(&self) -> impl Iterator<Item = &ScreenCell> {
        self.lines.iter().flat_map(|l| l.iter())
    }

    pub fn cell(&self, row: u16, col: u16) -> Option<&ScreenCell> {
        if col >= self.cols {
            return None;
        }
        self.row(row).get(col as usize)
    }

    /// A cell to change in place (its row copied first if another frame shares it).
    pub fn cell_mut(&mut self, row: u16, col: u16) -> Option<&mut ScreenCell> {
        if col >= self.cols {
            return None;
        }
        Arc::make_mut(self.lines.get_mut(row as usize)?).get_mut(col as usize)
    }

    /// The text of one row, trailing blanks trimmed.
    pub fn row_text(&self, row: u16) -> String {
        let mut s = String::new();
        for col in 0..self.cols {
            if let Some(c) = self.cell(row, col) {
                if !c.flags.has(CellFlags::SPACER) {
                    s.push_str(&c.text);
                }
            }
        }
        s.trim_end().to_string()
    }

    /// All rows as text, for tests and state-detection rules.
    pub fn text(&self) -> Vec<String> {
        (0..self.rows).map(|r| self.row_text(r)).collect()
    }
}

/// A place in an agent's whole buffer: `row` counts from the oldest row of history kept (the screen's rows come
/// after its history's), `col` is a column. A screen scrolled back `scrolled_back` of `history` rows shows rows
/// `history - scrolled_back ..` of it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
pub struct BufferPos {
    pub row: u64,
    pub col: u16,
}

impl Screen {
    /// The buffer row shown on this screen's `row`.
    pub fn buffer_row(&self, row: u16) -> u64 {
        (self.history.saturating_sub(self.scrolled_back) + row as usize) as u64
    }

    /// Where buffer row `row` is on this screen, if it is shown.
    pub fn screen_row(&self, row: u64) -> Option<u16> {
        let top = self.buffer_row(0);
        (row >= top && row < top + self.rows as u64).then(|| (row - top) as u16)
    }
}

/// One row of an agent's buffer as text, to search and to copy from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextRow {
    pub text: String,
    /// The column of each byte of `text` (every byte of a character has its column).
    pub cols: Vec<u16>,
    /// The line goes on in the next row.
    pub wrapped: bool,
}

impl TextRow {
    /// A row's cells as text: the second halves of wide characters are not characters, and a row that ends its
    /// line loses its trailing blanks (padding, not text).
    pub fn new(cells: &[ScreenCell], wrapped: bool) -> TextRow {
        let mut text = String::with_capacity(cells.len());
        let mut cols = Vec::with_capacity(cells.len());
        for (col, cell) in cells.iter().enumerate() {
            if cell.flags.has(CellFlags::SPACER) {
                continue;
            }
            match cell.text.as_str() {
                "" | "\0" | "\t" => text.push(' '),
                t => text.push_str(t),
            }
            cols.resize(text.len(), col.min(u16::MAX as usize) as u16);
        }
        if !wrapped {
            let keep = text.trim_end().len();
            text.truncate(keep);
            cols.truncate(keep);
        }
        TextRow { text, cols, wrapped }
    }
}

/// A match of a search in an agent's buffer: from `start` to `end` (its last cell), the `index`-th of `count`
/// counted from the newest (1: the one nearest the bottom).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    pub start: BufferPos,
    pub end: BufferPos,
    pub index: u32,
    pub count: u32,
}

/// How a screen differs from the frame before it of the same model: its rows moved up `scroll`, then `rows`
/// changed (ascending). `None` where a frame is all new.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Change {
    pub scroll: u16,
    pub rows: Vec<u16>,
}

impl Change {
    /// This change followed by `next` (on a screen of `rows` rows), as one; false where the two scrolled the
    /// whole screen away.
    pub fn then(&mut self, next: &Change, rows: u16) -> bool {
        self.scroll = self.scroll.saturating_add(next.scroll);
        if self.scroll >= rows {
            return false;
        }
        let moved = self.rows.iter().filter(|&&r| r >= next.scroll).map(|&r| r - next.scroll);
        let mut all: Vec<u16> = moved.chain(next.rows.iter().copied()).collect();
        all.sort_unstable();
        all.dedup();
        self.rows = all;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_one_after_another_are_one() {
        let mut a = Change { scroll: 1, rows: vec![0, 4, 5] };
        assert!(a.then(&Change { scroll: 2, rows: vec![1, 5] }, 6));
        // Row 0 scrolled away, 4 and 5 moved to 2 and 3.
        assert_eq!(a, Change { scroll: 3, rows: vec![1, 2, 3, 5] });
        assert!(!a.then(&Change { scroll: 3, rows: vec![] }, 6), "the whole screen scrolled away");
    }
}
