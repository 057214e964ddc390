//! The well's copy mode, as tmux's: a cursor over the agent's whole buffer (its history, then its screen) that
//! the view follows, a selection copied to the operator's clipboard, and a regex search of the whole history.
//! The buffer stays in the server: the view scrolls there, searches run there and copied text comes back.

use super::editor_keys::{prompt_key, Prompt};
use super::msg::Effect;
use super::state::{CopyView, State};
use crate::config::keymap::Action;
use crate::key::Key;
use crate::protocol::screen::{BufferPos, Found, Screen};
use crate::protocol::Command;

/// Enter copy mode on the selected agent's terminal, its cursor where the agent's is (else the last row);
/// `search`: with a search to type.
pub(super) fn enter(state: &mut State, search: bool) {
    let Some(agent) = state.selected_agent() else { return };
    let (w, h) = state.size;
    if super::layout::areas(w, h, state.roster_len(), true, false).terminal.is_none() {
        state.status = Some(("no room for the terminal: make the pane taller".into(), true));
        return;
    }
    let Some(screen) = agent.screen.as_deref() else {
        state.status = Some((format!("{} has no terminal to copy from", agent.info.name), true));
        return;
    };
    let (row, col) = screen.cursor.unwrap_or((screen.rows.saturating_sub(1), 0));
    let mut view = CopyView::new(agent.info.name.clone(), BufferPos { row: screen.buffer_row(row), col });
    view.typing = search.then(String::new);
    state.copy = Some(view);
    state.well_open = true;
    state.tab = super::state::WellTab::Terminal;
}

pub(super) fn on_copy_key(state: &mut State, key: Key, action: Option<Action>, fx: &mut Vec<Effect>) {
    let Some(view) = state.copy.as_mut() else { return };
    if view.typing.is_some() {
        if let Prompt::Done(pattern) = prompt_key(&mut view.typing, key) {
            if !pattern.is_empty() {
                search(state, Some(pattern), true, fx);
            }
        }
        return;
    }
    let Some(screen) = state.selected_agent().and_then(|a| a.screen.clone()) else {
        state.copy = None;
        return;
    };
    let page = screen.rows.saturating_sub(1).max(1) as i64;
    match action {
        Some(Action::CursorUp) => move_by(state, &screen, -1, 0, fx),
        Some(Action::CursorDown) => move_by(state, &screen, 1, 0, fx),
        Some(Action::CursorLeft) => move_by(state, &screen, 0, -1, fx),
        Some(Action::CursorRight) => move_by(state, &screen, 0, 1, fx),
        Some(Action::PageUp) => move_by(state, &screen, -page, 0, fx),
        Some(Action::PageDown) => move_by(state, &screen, page, 0, fx),
        Some(Action::Top) => move_by(state, &screen, i64::MIN / 2, 0, fx),
        Some(Action::Bottom) => move_by(state, &screen, i64::MAX / 2, 0, fx),
        Some(Action::LineStart) => move_by(state, &screen, 0, -(u16::MAX as i64), fx),
        Some(Action::LineEnd) => {
            // The last character of the line on screen, not the padding after it.
            let view = state.copy.as_ref().map(|c| (c.cursor, c.top));
            if let Some((cursor, top)) = view {
                let end = screen_row_of(&screen, top, cursor.row)
                    .map(|r| screen.row_text(r).chars().count().saturating_sub(1) as i64)
                    .unwrap_or(screen.cols as i64 - 1);
                move_by(state, &screen, 0, end - cursor.col as i64, fx);
            }
        }
        Some(Action::Select) => {
            if let Some(c) = state.copy.as_mut() {
                c.anchor = if c.anchor.is_some() { None } else { Some(c.cursor) };
            }
        }
        Some(Action::CopySelection) => {
            let c = state.copy.as_ref().map(|c| (c.agent.clone(), c.cursor, c.anchor));
            if let Some((name, cursor, anchor)) = c {
                // No selection: the cursor's whole line, as tmux's copy-line.
                let (from, to) = match anchor {
                    Some(a) => (a, cursor),
                    None => (BufferPos { row: cursor.row, col: 0 }, BufferPos { row: cursor.row, col: u16::MAX }),
                };
                fx.push(Effect::Engine(Command::CopyText { name, from, to }));
                leave(state, fx);
            }
        }
        Some(Action::Search) => {
            if let Some(c) = state.copy.as_mut() {
                c.typing = Some(String::new());
            }
        }
        Some(Action::SearchNext) => search(state, None, true, fx),
        Some(Action::SearchPrev) => search(state, None, false, fx),
        Some(Action::Close) => leave(state, fx),
        _ => {}
    }
}

/// Leave copy mode: the view follows the output again.
pub(super) fn leave(state: &mut State, fx: &mut Vec<Effect>) {
    if let Some(c) = state.copy.take() {
        fx.push(Effect::Engine(Command::ScrollBottom { name: c.agent }));
    }
}

/// Search (a new `pattern`, or the last one again) from the cursor, toward older rows or newer ones.
fn search(state: &mut State, pattern: Option<String>, older: bool, fx: &mut Vec<Effect>) {
    let Some(c) = state.copy.as_mut() else { return };
    if let Some(p) = pattern {
        // The server ends a connection that sends a longer one: said here instead.
        if p.len() > crate::protocol::MAX_PATTERN {
            state.status = Some((format!("a search of at most {} bytes", crate::protocol::MAX_PATTERN), true));
            return;
        }
        match crate::text::search_regex(&p) {
            Ok(re) => c.pattern = Some((p, re)),
            Err(e) => {
                state.status = Some((format!("not a search pattern: {e}"), true));
                return;
            }
        }
    }
    let Some((pattern, _)) = &c.pattern else {
        state.status = Some(("no search yet: / searches".into(), false));
        return;
    };
    fx.push(Effect::Engine(Command::Search {
        name: c.agent.clone(),
        pattern: pattern.clone(),
        from: Some(c.cursor),
        older,
    }));
}

/// The server's answer to a search: the cursor goes to the match (the view already moved there).
pub(super) fn on_found(state: &mut State, name: &str, pattern: &str, found: Result<Option<Found>, String>) {
    let Some(c) = state.copy.as_mut().filter(|c| c.agent == name) else { return };
    match found {
        Ok(Some(f)) => {
            c.cursor = f.start;
            c.found = Some(f);
            c.top = None;
            state.status = Some((format!("/{pattern}: match {} of {}", f.index, f.count), false));
        }
        Ok(None) => state.status = Some((format!("/{pattern}: no more matches that way"), false)),
        Err(e) => state.status = Some((format!("not a search pattern: {e}"), true)),
    }
}

/// The text the server read for a copy: to the clipboard.
pub(super) fn on_copied(state: &mut State, text: String, cut: bool, fx: &mut Vec<Effect>) {
    let chars = text.chars().count();
    let lines = text.lines().count().max(1);
    state.status = Some((
        format!(
            "copied {chars} characters, {lines} line{}{}",
            if lines == 1 { "" } else { "s" },
            if cut { " (cut at 1 MiB)" } else { "" }
        ),
        false,
    ));
    fx.push(Effect::Copy(text));
}

/// Where buffer row `row` is on `screen`, the view's top being `top` where one was asked for since it came.
fn screen_row_of(screen: &Screen, top: Option<u64>, row: u64) -> Option<u16> {
    let top = top.unwrap_or_else(|| screen.buffer_row(0));
    (row >= top && row < top + screen.rows as u64).then(|| (row - top) as u16)
}

/// Move the cursor by rows and columns within the buffer; the view scrolls to keep it shown.
fn move_by(state: &mut State, screen: &Screen, rows: i64, cols: i64, fx: &mut Vec<Effect>) {
    let Some(c) = state.copy.as_mut() else { return };
    let last = (screen.history + screen.rows as usize).saturating_sub(1) as i64;
    c.cursor.row = (c.cursor.row as i64).saturating_add(rows).clamp(0, last) as u64;
    c.cursor.col = (c.cursor.col as i64 + cols).clamp(0, screen.cols.saturating_sub(1) as i64) as u16;
    let top = c.top.unwrap_or_else(|| screen.buffer_row(0));
    let height = screen.rows.max(1) as u64;
    let scroll = if c.cursor.row < top {
        (top - c.cursor.row) as i64
    } else if c.cursor.row >= top + height {
        -((c.cursor.row - (top + height - 1)) as i64)
    } else {
        0
    };
    if scroll != 0 {
        c.top = Some((top as i64 - scroll) as u64);
        fx.push(Effect::Engine(Command::Scroll {
            name: c.agent.clone(),
            lines: scroll.clamp(-1 << 30, 1 << 30) as i32,
        }));
    }
}

/// A screen arrived for `name`: it says where the view is now.
pub(super) fn on_screen(state: &mut State, name: &str) {
    if let Some(c) = state.copy.as_mut().filter(|c| c.agent == name) {
        c.top = None;
    }
}
