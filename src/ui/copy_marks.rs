//! What copy mode marks over the agent's terminal: every match of the search on screen, the current match, the
//! selection, and the cursor.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::Frame;

use crate::app::state::CopyView;
use crate::app::State;
use crate::protocol::screen::{BufferPos, Screen, TextRow};

/// Marks `view` over `screen` as drawn in `area` (from its row `top`).
pub fn render(state: &State, view: &CopyView, screen: &Screen, area: Rect, top: u16, frame: &mut Frame) {
    let theme = &state.theme;
    let (all, current, selected) =
        (theme.style("ui.search"), theme.style("ui.search.current"), theme.style("ui.selection"));
    let selection = view.anchor.map(|a| if a <= view.cursor { (a, view.cursor) } else { (view.cursor, a) });
    let buf: &mut Buffer = frame.buffer_mut();
    for y in 0..area.height.min(screen.rows.saturating_sub(top)) {
        let row = y + top;
        let b = screen.buffer_row(row);
        let mark = |buf: &mut Buffer, col: u16, style| {
            if col < area.width {
                if let Some(cell) = buf.cell_mut(Position::new(area.x + col, area.y + y)) {
                    cell.set_style(style);
                }
            }
        };
        if let Some((_, re)) = &view.pattern {
            // Matches within the row (the server's search also finds those a wrap cuts).
            let text = TextRow::new(screen.row(row), false);
            for m in re.find_iter(&text.text).filter(|m| !m.is_empty()) {
                for col in text.cols[m.start()]..=text.cols[m.end() - 1] {
                    mark(buf, col, all);
                }
            }
        }
        for col in 0..screen.cols.min(area.width) {
            let at = BufferPos { row: b, col };
            if view.found.is_some_and(|f| f.start <= at && at <= f.end) {
                mark(buf, col, current);
            }
            if selection.is_some_and(|(from, to)| from <= at && at <= to) {
                mark(buf, col, selected);
            }
        }
    }
    if let Some(row) = screen.screen_row(view.cursor.row).and_then(|r| r.checked_sub(top)) {
        let col = view.cursor.col.min(area.width.saturating_sub(1));
        if row < area.height && view.typing.is_none() {
            frame.set_cursor_position(Position::new(area.x + col, area.y + row));
        }
    }
}
