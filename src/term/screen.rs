//! A serialisable copy of the visible part of an agent's terminal: what the engine hands to the UI.

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Screen {
    pub rows: u16,
    pub cols: u16,
    /// Row-major, `rows * cols` cells.
    pub cells: Vec<ScreenCell>,
    /// Cursor position within the visible rows, when it is shown and on screen.
    pub cursor: Option<(u16, u16)>,
    /// How many lines the view is scrolled back into history (0 = following the output).
    pub scrolled_back: usize,
    /// Lines of history above the screen.
    pub history: usize,
    pub alt_screen: bool,
}

impl Screen {
    pub fn cell(&self, row: u16, col: u16) -> Option<&ScreenCell> {
        if row >= self.rows || col >= self.cols {
            return None;
        }
        self.cells.get(row as usize * self.cols as usize + col as usize)
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
