//! The mouse: a click selects an agent in the roster, a tab of the well or a pane of a split well; a drag in an
//! agent's terminal selects its text (copy mode's selection, by the mouse) and letting go copies it, as
//! terminals do; the wheel scrolls what is under it.

use super::msg::Effect;
use super::roster::{on_roster_action, select};
use super::state::{CopyView, State, WellTab};
use crate::config::keymap::Action;
use crate::protocol::screen::BufferPos;
use crate::protocol::Command;
use ratatui::layout::Rect;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press {
    Down,
    Drag,
    Up,
}

fn inside(r: Rect, col: u16, row: u16) -> bool {
    col >= r.x && col < r.right() && row >= r.y && row < r.bottom()
}

/// The agent terminal under the mouse: its agent and where it is drawn (a pane's, or the well's one).
fn terminal_at(state: &State, col: u16, row: u16) -> Option<(String, Rect)> {
    let panes = state.panes();
    if !panes.is_empty() {
        return panes.into_iter().find(|p| inside(p.terminal, col, row)).map(|p| (p.name, p.terminal));
    }
    let t = state.areas().terminal?;
    let shows = state.attached || (state.well_open && state.tab == WellTab::Terminal);
    if !shows || !inside(t, col, row) {
        return None;
    }
    Some((state.selected_name()?, t))
}

/// Where a cell of the terminal drawn in `area` is in the agent's buffer.
fn buffer_pos(state: &State, name: &str, area: Rect, col: u16, row: u16) -> Option<BufferPos> {
    let screen = state.agents.iter().find(|a| a.info.name == name)?.screen.as_deref()?;
    let top = super::layout::top_row(screen, area);
    let r = (row.saturating_sub(area.y) + top).min(screen.rows.saturating_sub(1));
    Some(BufferPos { row: screen.buffer_row(r), col: col.saturating_sub(area.x).min(screen.cols.saturating_sub(1)) })
}

pub(super) fn on_press(state: &mut State, press: Press, col: u16, row: u16, fx: &mut Vec<Effect>) {
    if state.dialog.is_some() || state.help.is_some() {
        return;
    }
    match press {
        Press::Down => down(state, col, row),
        Press::Drag => {
            let Some(c) = state.copy.as_ref().filter(|c| c.mouse) else { return };
            let (name, area) = (c.agent.clone(), c.area);
            let (col, row) =
                (col.clamp(area.x, area.right().saturating_sub(1)), row.clamp(area.y, area.bottom().saturating_sub(1)));
            if let Some(at) = buffer_pos(state, &name, area, col, row) {
                if let Some(c) = state.copy.as_mut() {
                    c.cursor = at;
                }
            }
        }
        Press::Up => {
            let Some(c) = state.copy.as_ref().filter(|c| c.mouse) else { return };
            let (name, from, to) = (c.agent.clone(), c.anchor, c.cursor);
            // A click is no selection: copy mode started by it ends with it.
            state.copy = None;
            if let Some(from) = from.filter(|f| *f != to) {
                fx.push(Effect::Engine(Command::CopyText { name, from, to }));
            }
        }
    }
}

fn down(state: &mut State, col: u16, row: u16) {
    let a = state.areas();
    if inside(a.roster, col, row) && !state.attached {
        let line = state.roster_first() + (row - a.roster.y) as usize;
        // A wave's heading selects nothing.
        if let Some(Some(i)) = state.roster_rows().get(line).copied() {
            select(state, i);
        }
        return;
    }
    if let Some(bar) = a.well_bar.filter(|b| inside(*b, col, row)) {
        if let Some(tab) = state.tab_at(col - bar.x) {
            state.tab = tab;
        }
        return;
    }
    // A pane's title focuses it.
    if let Some(p) = state.panes().into_iter().find(|p| inside(p.title, col, row)) {
        if let Some(i) = state.agents.iter().position(|a| a.info.name == p.name) {
            select(state, i);
        }
        return;
    }
    let Some((name, area)) = terminal_at(state, col, row) else { return };
    if let Some(i) = state.agents.iter().position(|a| a.info.name == name) {
        if i != state.selected {
            select(state, i);
        }
    }
    let Some(at) = buffer_pos(state, &name, area, col, row) else { return };
    match state.copy.as_mut().filter(|c| c.agent == name && !c.mouse) {
        // In copy mode already: the cursor goes where the click is.
        Some(c) => c.cursor = at,
        None => state.copy = Some(CopyView { anchor: Some(at), mouse: true, area, ..CopyView::new(name, at) }),
    }
}

/// The wheel: the history of the terminal under it (or the agent's own mouse, when attached and it asked for
/// one), else the roster's selection.
pub(super) fn on_wheel(state: &mut State, up: bool, col: u16, row: u16, fx: &mut Vec<Effect>) {
    if state.dialog.is_some() || state.help.is_some() {
        return;
    }
    if let Some((name, t)) = terminal_at(state, col, row) {
        let focused = state.selected_name().as_deref() == Some(name.as_str());
        let cmd = if state.attached && focused {
            Command::Wheel { name, up, col: col - t.x, row: row - t.y }
        } else {
            Command::Scroll { name, lines: if up { 3 } else { -3 } }
        };
        fx.push(Effect::Engine(cmd));
        return;
    }
    if inside(state.areas().roster, col, row) && !state.attached {
        let action = if up { Action::SelectPrev } else { Action::SelectNext };
        on_roster_action(state, action, fx);
    }
}
