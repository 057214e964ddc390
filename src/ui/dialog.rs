//! Overlays: help generated from the keymap, confirmations, the steer composer.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;
use ratatui_textarea::TextArea;

use crate::app::State;
use crate::config::keymap::Mode;

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h)
}

fn block<'a>(state: &State, title: String) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, state.theme.style("ui.dialog.title")))
        .style(state.theme.style("ui.dialog"))
}

/// The help lines of some modes: one line per action, with every key bound to it.
fn help_lines<'a>(state: &State, modes: &[Mode]) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    for mode in modes {
        let bindings = state.keymap.bindings(*mode);
        if bindings.is_empty() {
            continue;
        }
        lines.push(Line::from(Span::styled(mode.name().to_string(), state.theme.style("ui.help.section"))));
        let mut seen: Vec<(crate::config::keymap::Action, Vec<String>, String)> = Vec::new();
        for b in bindings {
            match seen.iter_mut().find(|(a, _, d)| *a == b.action && *d == b.desc) {
                Some((_, keys, _)) => keys.push(b.key.to_string()),
                None => seen.push((b.action, vec![b.key.to_string()], b.desc.clone())),
            }
        }
        // What pausing does is the server's machine's: said where the selected agent has run.
        let paused_by = state.selected_agent().map(|a| a.info.paused_by.as_str()).filter(|p| !p.is_empty());
        let editor = crate::app::editor_keys::edits_text(*mode).then_some(crate::app::editor_keys::EDITOR_KEYS);
        for (action, keys, mut desc) in seen {
            if let (crate::config::keymap::Action::Pause, Some(by)) = (action, paused_by) {
                desc = format!("Pause or resume the agent's processes ({by})");
            }
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<16}", keys.join(" ")), state.theme.style("ui.help.key")),
                Span::raw(desc),
            ]));
        }
        if editor.is_some() {
            lines.push(Line::from(Span::styled("text editor", state.theme.style("ui.help.section"))));
        }
        for (keys, desc) in editor.into_iter().flatten() {
            lines.push(Line::from(vec![
                Span::styled(format!("  {keys:<16}"), state.theme.style("ui.help.key")),
                Span::raw(desc),
            ]));
        }
    }
    lines
}

/// The keys of one mode, as the active keymap binds them; a mode whose unbound keys work as the roster's lists
/// those after its own.
pub fn help(state: &State, frame: &mut Frame, area: Rect, mode: Mode) {
    let lines = help_lines(state, &crate::app::help_modes(mode));
    let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2)).max(3);
    let rect = centered(area, 80.min(area.width), height);
    frame.render_widget(Clear, rect);
    let title = format!(" keys · {} · j/k scroll · esc closes ", mode.name());
    let outer = block(state, title);
    let inner = outer.inner(rect);
    frame.render_widget(outer, rect);
    // Scrolled to its end at most: the last line stays at the bottom.
    let scroll = state.help_scroll.min((lines.len() as u16).saturating_sub(inner.height));
    frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), inner);
}

/// The config files' warnings, then the latest messages, newest first, each with its age.
pub fn messages(state: &State, frame: &mut Frame, area: Rect) {
    let theme = &state.theme;
    let rect = centered(area, 100, area.height.saturating_sub(2));
    frame.render_widget(Clear, rect);
    let outer = block(state, " messages · j/k scroll · esc closes ".into());
    let inner = outer.inner(rect);
    frame.render_widget(outer, rect);
    let mut lines = Vec::new();
    if !state.warnings.is_empty() {
        let title = crate::text::counted(state.warnings.len(), "warning");
        lines.push(Line::from(Span::styled(format!("{title} in the config files"), theme.style("ui.help.section"))));
        lines.extend(state.warnings.iter().map(|w| Line::from(Span::styled(w.clone(), theme.style("ui.warning")))));
        lines.push(Line::from(""));
    }
    if state.messages.is_empty() {
        lines.push(Line::from("No messages yet."));
    }
    for (at, text, error) in state.messages.iter().rev() {
        let age = super::roster::age(state.now_ms, Some(*at));
        let style = if *error { theme.style("ui.error") } else { Style::default() };
        lines.push(Line::from(vec![
            Span::styled(format!("{age:>4}  "), theme.style("roster.age")),
            Span::styled(text.clone(), style),
        ]));
    }
    let text = Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }).scroll((state.help_scroll, 0));
    frame.render_widget(text, inner);
}

pub fn confirm(state: &State, frame: &mut Frame, area: Rect, title: &str, body: &[String]) {
    let mut lines: Vec<Line> = body.iter().map(|l| Line::from(l.clone())).collect();
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        Span::styled("y", state.theme.style("ui.help.key")),
        Span::raw(" yes   "),
        Span::styled("n", state.theme.style("ui.help.key")),
        Span::raw(" no"),
    ]));
    let width = 70.min(area.width);
    let inner = width.saturating_sub(2).max(1) as usize;
    let height: usize = body.iter().map(|l| l.chars().count().div_ceil(inner).max(1)).sum::<usize>() + 4;
    let rect = centered(area, width, height as u16);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(block(state, format!(" {title} "))),
        rect,
    );
}

pub fn steer(state: &State, frame: &mut Frame, area: Rect, name: &str, editor: &TextArea<'static>) {
    let rows = (editor.lines().len() as u16 + 2).clamp(3, 10);
    let width = area.width.saturating_sub(4).min(100);
    let rect = Rect::new(area.x + (area.width - width) / 2, area.height.saturating_sub(rows + 2), width, rows);
    frame.render_widget(Clear, rect);
    let mut editor = editor.clone();
    editor.set_block(block(
        state,
        format!(" steer {name} · enter sends · C-j new line · tab: another agent · esc cancels "),
    ));
    editor.set_style(state.theme.style("ui.dialog"));
    frame.render_widget(&editor, rect);
}

/// Writing mail: To on one line, the message below; the title says what it answers.
pub fn compose(state: &State, frame: &mut Frame, area: Rect, c: &crate::app::Compose) {
    let body_rows = (c.body.lines().len() as u16).clamp(3, area.height.saturating_sub(10).max(3));
    let width = area.width.saturating_sub(4).min(100);
    let rect = centered(area, width, body_rows + 5);
    frame.render_widget(Clear, rect);
    let title = match (&c.answering, c.reply_to) {
        _ if !c.replaces.is_empty() => {
            format!(" edit dead letter #{} (sent anew; the old one is dropped) ", c.replaces[0].0)
        }
        (Some(q), _) => format!(" answer: {} ", q.chars().take(60).collect::<String>()),
        (None, Some(id)) => format!(" reply to #{id} "),
        (None, None) => " new mail ".to_string(),
    };
    let urgent = if c.urgent { " · URGENT" } else { "" };
    let outer = block(state, format!("{title}· C-s sends · tab: To/message · C-t urgent{urgent} · esc cancels "));
    let inner = outer.inner(rect);
    frame.render_widget(outer, rect);
    if inner.height < 3 {
        return;
    }
    let label = |focus: bool| if focus { state.theme.style("ui.tab.active") } else { state.theme.style("ui.tab") };
    frame.render_widget(Paragraph::new(Span::styled("To: ", label(!c.body_focus))), Rect::new(inner.x, inner.y, 4, 1));
    let mut to = c.to.clone();
    to.set_style(state.theme.style("ui.dialog"));
    if c.body_focus {
        to.set_cursor_style(Style::default());
    }
    frame.render_widget(&to, Rect::new(inner.x + 4, inner.y, inner.width.saturating_sub(4), 1));
    frame.render_widget(
        Paragraph::new(Span::styled("─".repeat(inner.width as usize), state.theme.style("ui.border"))),
        Rect::new(inner.x, inner.y + 1, inner.width, 1),
    );
    let mut body = c.body.clone();
    body.set_style(state.theme.style("ui.dialog"));
    if !c.body_focus {
        body.set_cursor_style(Style::default());
    }
    frame.render_widget(&body, Rect::new(inner.x, inner.y + 2, inner.width, inner.height - 2));
}

pub fn edit(
    state: &State,
    frame: &mut Frame,
    area: Rect,
    purpose: &crate::app::EditPurpose,
    editor: &TextArea<'static>,
) {
    let rows = (editor.lines().len() as u16 + 2).clamp(5, area.height.saturating_sub(4).max(5));
    let width = area.width.saturating_sub(4).min(110);
    let rect = centered(area, width, rows);
    frame.render_widget(Clear, rect);
    let mut editor = editor.clone();
    let title = match purpose {
        crate::app::EditPurpose::ConflictResult => " edit the result of this conflict · C-s saves · esc cancels ",
        crate::app::EditPurpose::MergeMessage { .. } => " merge commit message · C-s merges · esc cancels ",
        crate::app::EditPurpose::NewAgent => " a new agent, as in crew.toml · C-s adds and starts it · esc cancels ",
        crate::app::EditPurpose::Duplicate { .. } => {
            " a copy of the agent · its name · C-s adds and starts it · esc cancels "
        }
        crate::app::EditPurpose::Rename { .. } => {
            " a new name · its worktree, branch and checkpoints follow · C-s renames · esc cancels "
        }
    };
    editor.set_block(block(state, title.into()));
    editor.set_style(state.theme.style("ui.dialog"));
    frame.render_widget(&editor, rect);
}
