//! Output that scrolls by in the well is moved on the real terminal by the terminal itself (a scroll region and
//! `CSI n S`), so a frame writes the new lines, not every row of the well again: ratatui diffs cell by cell and
//! sees a scrolled screen as all changed. This holds the pure part: which screen the well shows, by how much it
//! scrolled since the last frame, and the last frame's buffer moved the way the terminal moved it.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use crate::app::{State, WellTab};
use crate::term::Screen;

/// The agent's screen as the well showed it in a frame: a hash of each row is enough to see a scroll, and
/// cheaper than a copy of the screen every frame.
#[derive(Clone)]
pub struct WellShown {
    name: String,
    area: Rect,
    rows: Vec<u64>,
}

/// A fast hash (a multiply and rotate a word, as rustc's FxHasher): rows are compared with rows of the frame
/// before, so a collision costs at most a redraw of that row; SipHash was a tenth of a workbench's time.
#[derive(Default)]
struct RowHasher(u64);

impl std::hash::Hasher for RowHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, v: u8) {
        self.write_u64(v as u64);
    }

    fn write_u16(&mut self, v: u16) {
        self.write_u64(v as u64);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

fn row_hashes(screen: &Screen) -> Vec<u64> {
    use std::hash::{Hash, Hasher};
    let width = screen.cols.max(1) as usize;
    screen
        .cells
        .chunks(width)
        .map(|row| {
            let mut h = RowHasher::default();
            row.hash(&mut h);
            h.finish()
        })
        .collect()
}

/// What the well shows now, when it shows a live terminal filling its whole area and the screen's full width.
pub fn well_shown(state: &State, width: u16, height: u16) -> Option<WellShown> {
    let a = super::layout::areas(width, height, state.agents.len(), state.well_open, state.attached);
    let area = a.terminal?;
    if state.tab != WellTab::Terminal && !state.attached {
        return None;
    }
    let agent = state.selected_agent()?;
    let screen = agent.screen.as_ref()?;
    // A scroll region spans whole lines: only a well as wide as the terminal, showing the screen as it is.
    let fits = area.x == 0 && area.width == width && (screen.rows, screen.cols) == (area.height, area.width);
    fits.then(|| WellShown { name: agent.info.name.clone(), area, rows: row_hashes(screen) })
}

/// Lines the well's content moved up between two frames (0: none, or not a plain scroll).
pub fn scrolled(before: Option<&WellShown>, now: Option<&WellShown>) -> Option<(Rect, u16)> {
    let (b, n) = (before?, now?);
    if b.name != n.name || b.area != n.area {
        return None;
    }
    let k = crate::protocol::damage::scrolled_by_rows(&b.rows, &n.rows);
    (k > 0 && k < n.area.height).then_some((n.area, k))
}

/// The rows of `area` in `buf` moved up by `k`, blank rows coming in at the bottom: what the terminal shows
/// after scrolling that region.
pub fn shift_up(buf: &mut Buffer, area: Rect, k: u16) {
    let width = buf.area.width as usize;
    let start = (area.y - buf.area.y) as usize * width;
    let end = (start + area.height as usize * width).min(buf.content.len());
    let moved = (k as usize * width).min(end - start);
    // Rows move, cells are not copied one by one; the rows that wrap round to the bottom are blanked.
    let region = &mut buf.content[start..end];
    region.rotate_left(moved);
    let len = region.len();
    for cell in &mut region[len - moved..] {
        cell.reset();
    }
}

/// The bytes that scroll lines `area` of the real terminal up by `k`: default colours first (the lines that
/// come in take the current background), the region set, scrolled, and reset to the whole screen.
pub fn scroll_sequence(area: Rect, k: u16) -> String {
    format!("\x1b[0m\x1b[{};{}r\x1b[{k}S\x1b[r", area.y + 1, area.y + area.height)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Style;

    #[test]
    fn shifting_moves_the_region_only_and_blanks_what_comes_in() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 3, 5));
        for y in 0..5 {
            buf.set_string(0, y, format!("{y}{y}{y}"), Style::default());
        }
        shift_up(&mut buf, Rect::new(0, 1, 3, 3), 2);
        let rows: Vec<String> =
            (0..5).map(|y| (0..3).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>()).collect();
        assert_eq!(rows, ["000", "333", "   ", "   ", "444"]);
        assert_eq!(scroll_sequence(Rect::new(0, 1, 3, 3), 2), "\x1b[0m\x1b[2;4r\x1b[2S\x1b[r");
    }
}
