//! The live terminal in the well, painted apart from ratatui. ratatui renders and diffs the whole screen each
//! frame; an agent streaming output changes a line or two of it a frame, and its rows move up. So while the well
//! shows a live terminal across the screen's whole width with nothing over it, ratatui leaves the well's cells
//! alone (skipped in its diff) and this paints them: the rows that moved are moved by the terminal itself (a
//! scroll region), and only the cells that differ from the screen last painted are written. Nothing is copied:
//! the screen last painted is the agent's screen as the state held it (shared).

use std::ops::Range;
use std::sync::Arc;

use ratatui::backend::Backend;
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Rect};

use crate::app::State;
use crate::config::theme::ColorMode;
use crate::protocol::screen::{CellFlags, Change, Screen, ScreenCell};

/// What the well shows when it is painted apart.
pub struct Target<'a> {
    pub name: &'a str,
    pub area: Rect,
    pub screen: &'a Arc<Screen>,
    /// Where the terminal's cursor goes (attached), in screen coordinates.
    pub cursor: Option<Position>,
}

/// The well's live terminal, when it fills the well's whole width at the agent's size with nothing over it.
pub fn target(state: &State, width: u16, height: u16) -> Option<Target<'_>> {
    let a = super::layout::areas(width, height, state.roster_len(), state.well_open, state.attached);
    let area = a.terminal?;
    if !super::well::shows_terminal(state)
        || state.dialog.is_some()
        || state.help.is_some()
        || state.copy_view().is_some()
        || state.split.is_some()
        || area.x != 0
        || area.width != width
    {
        return None;
    }
    let agent = state.selected_agent()?;
    let screen = agent.screen.as_ref()?;
    let fits = (screen.rows, screen.cols) == (area.height, area.width) && screen.is_whole();
    fits.then(|| Target {
        name: &agent.info.name,
        area,
        screen,
        cursor: screen.cursor.filter(|_| state.attached).map(|(row, col)| Position::new(area.x + col, area.y + row)),
    })
}

/// The terminal work that turns the screen last painted into the new one: move the region up `scroll` rows, then
/// write these columns of these rows.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub scroll: u16,
    pub spans: Vec<(u16, Range<u16>)>,
}

/// The plan from `before` (what the terminal shows; `None`: unknown) to `now`.
pub fn plan(before: Option<&Screen>, now: &Screen) -> Plan {
    let full = |r| (r, 0..now.cols);
    let Some(before) = before.filter(|b| b.same_shape(now)) else {
        return Plan { scroll: 0, spans: (0..now.rows).map(full).collect() };
    };
    let scroll = crate::protocol::damage::scrolled_by(before, now);
    let spans = (0..now.rows)
        .filter_map(|r| {
            // What the terminal has on row r once scrolled: a row of before, or a blank one come in at the bottom.
            let old = (r + scroll < now.rows).then(|| before.row(r + scroll));
            changed(old, now.row(r)).map(|cols| (r, cols))
        })
        .collect();
    Plan { scroll, spans }
}

/// The plan from `before` to `now` when the rows that changed between them are known: only those are looked at.
pub fn plan_known(before: &Screen, now: &Screen, change: &Change) -> Plan {
    if !before.same_shape(now) {
        return plan(None, now);
    }
    let scroll = change.scroll.min(now.rows);
    let spans = change
        .rows
        .iter()
        .filter(|&&r| r < now.rows)
        .filter_map(|&r| {
            let old = (r + scroll < now.rows).then(|| before.row(r + scroll));
            changed(old, now.row(r)).map(|cols| (r, cols))
        })
        .collect();
    Plan { scroll, spans }
}

/// The columns of a row to write again: from the first cell that differs to the last, a wide character and
/// the column it covers together.
fn changed(old: Option<&[ScreenCell]>, new: &[ScreenCell]) -> Option<Range<u16>> {
    // A row shared by both screens is the same row (frames share the rows that did not change).
    if old.is_some_and(|o| std::ptr::eq(o, new)) || old == Some(new) {
        return None;
    }
    let blank = ScreenCell::default();
    let old_at = |i: usize| old.map_or(&blank, |o| o.get(i).unwrap_or(&blank));
    let differs = |i: &usize| old_at(*i) != &new[*i];
    let first = (0..new.len()).find(differs)?;
    let last = (first..new.len()).rev().find(differs)?;
    let spacer = |c: &ScreenCell| c.flags.has(CellFlags::SPACER);
    let wide = |c: &ScreenCell| c.flags.has(CellFlags::WIDE);
    let start = if first > 0 && (spacer(&new[first]) || spacer(old_at(first))) { first - 1 } else { first };
    let end = if last + 1 < new.len() && (wide(&new[last]) || wide(old_at(last))) { last + 2 } else { last + 1 };
    Some(start as u16..end as u16)
}

/// Paints the well's live terminal apart from ratatui; remembers what it painted.
#[derive(Default)]
pub struct WellPainter {
    shown: Option<Shown>,
    /// Cells of one paint, kept for their allocation.
    cells: Vec<(u16, u16, Cell)>,
    /// How the agent's screen changed since the one painted, while every change is known.
    pending: Option<Change>,
    /// Where the painter last put the terminal's cursor.
    cursor: Option<Position>,
}

struct Shown {
    name: String,
    area: Rect,
    screen: Arc<Screen>,
    mode: ColorMode,
}

impl WellPainter {
    /// The terminal's well holds something else now (ratatui drew there, or the terminal was cleared): the next
    /// paint writes every row.
    pub fn forget(&mut self) {
        self.shown = None;
        self.pending = None;
        self.cursor = None;
    }

    /// A new screen of agent `name` arrived, differing so from the one before it (`None`: not known).
    pub fn note(&mut self, name: &str, change: Option<&Change>) {
        let Some(shown) = self.shown.as_ref().filter(|s| s.name == name) else { return };
        let rows = shown.screen.rows;
        let composed = match (self.pending.as_mut(), change) {
            (Some(p), Some(c)) => p.then(c, rows),
            _ => false,
        };
        if !composed {
            self.pending = None;
        }
    }

    pub fn paint<B: Backend>(&mut self, backend: &mut B, target: &Target, mode: ColorMode) -> Result<(), B::Error> {
        let area = target.area;
        let before = self
            .shown
            .as_ref()
            .filter(|s| s.name == target.name && s.area == area && s.mode == mode)
            .map(|s| s.screen.as_ref());
        let screen = target.screen.as_ref();
        let plan = match (before, &self.pending) {
            (Some(b), Some(change)) => plan_known(b, screen, change),
            _ => plan(before, screen),
        };
        if plan.scroll > 0 {
            backend.scroll_region_up(area.y..area.y + area.height, plan.scroll)?;
        }
        self.cells.clear();
        for (r, cols) in &plan.spans {
            let cells = screen.row(*r);
            for c in cols.clone() {
                let Some(cell) = cells.get(c as usize) else { break };
                // Drawn by the wide character on its left.
                if cell.flags.has(CellFlags::SPACER) {
                    continue;
                }
                let mut out = Cell::EMPTY;
                super::terminal::paint_cell(&mut out, cell, c + 1 >= area.width, mode);
                self.cells.push((area.x + c, area.y + r, out));
            }
        }
        if !self.cells.is_empty() {
            backend.draw(self.cells.iter().map(|(x, y, c)| (*x, *y, c)))?;
        }
        // Painting moves the cursor; and it moves on its own where no cell changed (a left arrow at a prompt).
        if plan.scroll > 0 || !self.cells.is_empty() || target.cursor != self.cursor {
            if let Some(p) = target.cursor {
                backend.set_cursor_position(p)?;
            }
            backend.flush()?;
        }
        self.cursor = target.cursor;
        self.pending = Some(Change::default());
        match &mut self.shown {
            Some(s) if s.name == target.name => {
                s.area = area;
                s.screen = Arc::clone(target.screen);
                s.mode = mode;
            }
            _ => {
                self.shown =
                    Some(Shown { name: target.name.to_string(), area, screen: Arc::clone(target.screen), mode })
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::screen::CellColor;
    use proptest::prelude::*;

    fn screen(lines: &[&str], cols: u16) -> Screen {
        let mut cells = Vec::new();
        for line in lines {
            let mut row: Vec<ScreenCell> =
                line.chars().map(|c| ScreenCell { text: c.to_string().into(), ..Default::default() }).collect();
            row.resize(cols as usize, ScreenCell::default());
            cells.extend(row);
        }
        Screen::from_cells(lines.len() as u16, cols, cells)
    }

    /// What a terminal holds after a plan: the region moved up (blank rows in), then the planned cells written.
    fn apply(shown: &Screen, now: &Screen, p: &Plan) -> Vec<ScreenCell> {
        let w = now.cols as usize;
        let now = flat(now);
        let mut cells = flat(shown);
        if cells.len() != now.len() {
            cells = vec![ScreenCell::default(); now.len()];
        }
        let k = (p.scroll as usize * w).min(cells.len());
        cells.drain(..k);
        cells.resize(now.len(), ScreenCell::default());
        for (r, cols) in &p.spans {
            for c in cols.clone() {
                let i = *r as usize * w + c as usize;
                cells[i] = now[i].clone();
            }
        }
        cells
    }

    fn flat(screen: &Screen) -> Vec<ScreenCell> {
        screen.cells().cloned().collect()
    }

    #[test]
    fn output_scrolling_by_is_a_scroll_and_the_new_lines() {
        let before = screen(&["one", "two", "three", "four", "five", "$"], 8);
        let now = screen(&["three", "four", "five", "six", "seven", "$"], 8);
        let p = plan(Some(&before), &now);
        assert_eq!(p.scroll, 2);
        assert_eq!(p.spans, vec![(3, 0..3), (4, 0..5), (5, 0..1)]);
        assert_eq!(apply(&before, &now, &p), flat(&now));
    }

    #[test]
    fn a_key_echo_writes_one_cell_and_nothing_changed_writes_nothing() {
        let before = screen(&["hello", "$ ls", "", "", ""], 10);
        let now = screen(&["hello", "$ ls -", "", "", ""], 10);
        assert_eq!(plan(Some(&before), &now), Plan { scroll: 0, spans: vec![(1, 5..6)] });
        assert_eq!(plan(Some(&now), &now), Plan::default());
        let unknown = plan(None, &now);
        assert_eq!(unknown.spans.len(), 5);
        assert!(unknown.spans.iter().all(|(_, c)| *c == (0..10)));
    }

    #[test]
    fn a_wide_character_is_written_with_the_column_it_covers() {
        let before = screen(&["ab  ", "", "", ""], 4);
        let mut now = before.clone();
        *now.cell_mut(0, 1).unwrap() =
            ScreenCell { text: "字".into(), flags: CellFlags(CellFlags::WIDE), ..Default::default() };
        *now.cell_mut(0, 2).unwrap() =
            ScreenCell { text: " ".into(), flags: CellFlags(CellFlags::SPACER), ..Default::default() };
        assert_eq!(plan(Some(&before), &now).spans, vec![(0, 1..3)]);
        // Only its spacer changed (its colour): the character is written again.
        let mut then = now.clone();
        then.cell_mut(0, 2).unwrap().bg = CellColor::Indexed(1);
        assert_eq!(plan(Some(&now), &then).spans, vec![(0, 1..3)]);
    }

    fn arb_cell() -> impl Strategy<Value = ScreenCell> {
        (prop::sample::select(vec![" ", "a", "b", "x"]), 0u8..3, any::<bool>()).prop_map(|(t, c, bold)| ScreenCell {
            text: t.into(),
            fg: if c == 0 { CellColor::Default } else { CellColor::Indexed(c) },
            bg: CellColor::Default,
            flags: CellFlags(if bold { CellFlags::BOLD } else { 0 }),
        })
    }

    fn arb_screen(rows: u16, cols: u16) -> impl Strategy<Value = Screen> {
        prop::collection::vec(arb_cell(), rows as usize * cols as usize)
            .prop_map(move |cells| Screen::from_cells(rows, cols, cells))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: std::env::var("MUSTER_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256), ..ProptestConfig::default() })]

        /// Whatever the two screens, the terminal ends up holding the new one.
        #[test]
        fn a_plan_turns_what_was_painted_into_the_new_screen(
            before in arb_screen(8, 6),
            fresh in arb_screen(8, 6),
            k in 0u16..8,
            edits in prop::collection::vec((0usize..48, arb_cell()), 0..6),
        ) {
            // The new screen: often the old one scrolled by k with fresh rows in and a few cells edited.
            let w = 6usize;
            let mut now = before.clone();
            now.lines.drain(..k as usize);
            now.lines.extend(fresh.lines[..k as usize].iter().cloned());
            for (i, c) in edits {
                if let Some(cell) = now.cell_mut((i / w) as u16, (i % w) as u16) {
                    *cell = c;
                }
            }
            let p = plan(Some(&before), &now);
            prop_assert_eq!(apply(&before, &now, &p), flat(&now));
            prop_assert_eq!(apply(&fresh, &now, &plan(Some(&fresh), &now)), flat(&now));
        }
    }
}
