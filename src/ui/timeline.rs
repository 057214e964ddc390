//! The timeline tab: an agent's checkpoints, newest first, and the selected one's diff with its file list.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::State;
use crate::protocol::git::{DiffBase, FileDiff, LineKind};

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let theme = &state.theme;
    let Some(agent) = state.selected_agent() else { return };
    if agent.checkpoints.is_empty() {
        let key = state
            .keymap
            .key_for(crate::config::keymap::Mode::Timeline, crate::config::keymap::Action::Checkpoint)
            .map(|k| k.to_string())
            .unwrap_or_default();
        let msg = format!(
            "No checkpoints of {} yet. One is taken at the end of each turn, every few minutes while it works, \
             and when you press {key}.",
            agent.info.name
        );
        frame.render_widget(
            Paragraph::new(msg).style(theme.style("roster.kind")).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let list_w = (area.width / 3).clamp(24, 44).min(area.width);
    let list = Rect::new(area.x, area.y, list_w, area.height);
    let right = Rect::new(area.x + list_w + 1, area.y, area.width.saturating_sub(list_w + 1), area.height);
    let tl = &state.timeline;

    // The list, keeping the selection in view.
    let first = tl.selected.saturating_sub(list.height.saturating_sub(1) as usize);
    let lines: Vec<Line> = agent
        .checkpoints
        .iter()
        .enumerate()
        .skip(first)
        .take(list.height as usize)
        .map(|(i, c)| {
            let selected = i == tl.selected;
            let base = if selected { theme.style("roster.selected") } else { Style::default() };
            let age = super::roster::age(state.now_ms, Some(c.time.max(0) as u64 * 1000));
            let text =
                format!("{}#{:<3} {:>4} {:<9}", if selected { "▸" } else { " " }, c.n, age, short(&c.trigger, 9));
            let mut spans = vec![Span::styled(text, base)];
            // Every gate passed on it: what `G` rolls back to.
            spans.push(Span::styled(if c.green { "✓" } else { " " }, base.patch(theme.style("roster.added"))));
            spans.push(Span::styled(format!(" {}f ", c.files), base.patch(theme.style("roster.kind"))));
            spans.push(Span::styled(format!("+{}", c.added), base.patch(theme.style("roster.added"))));
            spans.push(Span::styled(format!(" −{}", c.removed), base.patch(theme.style("roster.removed"))));
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list);
    if right.width < 10 {
        return;
    }
    let sep = Rect::new(area.x + list_w, area.y, 1, area.height);
    frame.render_widget(
        Paragraph::new(vec![Line::from("│"); area.height as usize]).style(theme.style("ui.border")),
        sep,
    );

    let Some(cp) = agent.checkpoints.get(tl.selected) else { return };
    let against = match tl.base {
        DiffBase::Previous => "what it changed since the checkpoint before".to_string(),
        DiffBase::Worktree => "how the worktree differs from it now".to_string(),
    };
    let mut lines: Vec<Line<'static>> = vec![Line::from(vec![
        Span::styled(format!("#{} {} ", cp.n, cp.trigger), theme.style("ui.tab.active")),
        Span::styled(format!("· {against}"), theme.style("roster.kind")),
    ])];
    let files = match &tl.diff {
        Some((name, n, base, files)) if *name == agent.info.name && *n == cp.n && *base == tl.base => files,
        _ => {
            lines.push(Line::from(Span::styled("reading…", theme.style("roster.kind"))));
            frame.render_widget(Paragraph::new(lines), right);
            return;
        }
    };
    files_and_lines(state, files, tl.file, tl.scroll, Some(&tl.marked), lines, right, frame);
}

/// Under `lines` (a heading): a diff's file list (at most a third of `area`, the current file kept in view),
/// then the current file's lines from `scroll`.
#[allow(clippy::too_many_arguments)]
pub fn files_and_lines(
    state: &State,
    files: &[FileDiff],
    file: usize,
    scroll: u16,
    marked: Option<&std::collections::BTreeSet<String>>,
    mut lines: Vec<Line<'static>>,
    area: Rect,
    frame: &mut Frame,
) {
    let theme = &state.theme;
    if files.is_empty() {
        lines.push(Line::from(Span::styled("no changes", theme.style("roster.kind"))));
    }
    let max_files = (area.height as usize / 3).max(1);
    let file_first = file.saturating_sub(max_files.saturating_sub(1));
    for (i, f) in files.iter().enumerate().skip(file_first).take(max_files) {
        let cur = i == file;
        let mark = if marked.is_some_and(|m| m.contains(&f.path)) { "●" } else { " " };
        let style = if cur { theme.style("roster.selected") } else { Style::default() };
        lines.push(Line::from(vec![
            Span::styled(format!("{}{mark}{} {} ", if cur { "▸" } else { " " }, f.status, f.path), style),
            Span::styled(format!("+{}", f.added), style.patch(theme.style("roster.added"))),
            Span::styled(format!(" −{}", f.removed), style.patch(theme.style("roster.removed"))),
        ]));
    }
    if let Some(f) = files.get(file) {
        lines.push(Line::from(Span::styled("─".repeat(area.width as usize), theme.style("ui.border"))));
        let room = area.height as usize - lines.len().min(area.height as usize);
        for (kind, text) in f.lines.iter().skip(scroll as usize).take(room) {
            let (prefix, scope) = match kind {
                LineKind::Added => ("+", "roster.added"),
                LineKind::Removed => ("-", "roster.removed"),
                LineKind::Hunk => ("", "roster.branch"),
                LineKind::Context => (" ", "roster"),
            };
            lines.push(Line::from(Span::styled(format!("{prefix}{text}"), theme.style(scope))));
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(1)).chain(['…']).collect()
    }
}
