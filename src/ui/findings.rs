//! The findings tab: the watchdog's open findings on the selected agent, newest first, and the selected one's
//! detail.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use crate::app::State;
use crate::protocol::guard::{Finding, FindingKind};

fn scope(f: &Finding) -> &'static str {
    match f.kind {
        Some(FindingKind::SymlinkEscape | FindingKind::GitTamper) => "ui.error",
        _ => "ui.warning",
    }
}

fn finding_line(state: &State, f: &Finding, selected: bool, width: u16) -> Line<'static> {
    let theme = &state.theme;
    let base = if selected { theme.style("roster.selected") } else { theme.style("roster") };
    let kind = f.kind.map_or("?", FindingKind::label);
    let times = if f.count > 1 { format!("×{}", f.count) } else { String::new() };
    let ago = super::roster::age(state.now_ms, Some(f.last_ms));
    let mut spans = vec![
        Span::styled(format!(" #{:<5} ", f.id), base),
        Span::styled(super::roster::name_cell(kind, 15), base.patch(theme.style(scope(f)))),
        Span::styled(format!("{:>4} {:>4} ago  ", times, ago), base),
        Span::styled(if f.agent.is_empty() { format!("{} (the repository's)", f.path) } else { f.path.clone() }, base),
    ];
    let used: usize = spans.iter().map(|s| unicode_width::UnicodeWidthStr::width(s.content.as_ref())).sum();
    spans.push(Span::styled(" ".repeat((width as usize).saturating_sub(used)), base));
    Line::from(spans)
}

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let theme = &state.theme;
    let Some(view) = &state.findings else { return };
    let mut lines = vec![Line::from(Span::styled(format!("{} · findings", view.agent), theme.style("ui.tab.active")))];
    let findings = match &view.findings {
        None => {
            lines.push(Line::from(Span::styled("reading…", theme.style("roster.kind"))));
            frame.render_widget(Paragraph::new(lines), area);
            return;
        }
        Some(f) => f,
    };
    if findings.is_empty() {
        lines.push(Line::from(Span::styled(
            "Nothing found: the watchdog reports files changed outside the agent's `owns` or in the crew's `shared`, \
             links out of its worktree and new executables, as they are written.",
            theme.style("roster.kind"),
        )));
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
        return;
    }
    // Half the height for the list (the selected one kept in view), the rest for its detail.
    let list_rows = (area.height.saturating_sub(2) / 2).clamp(1, 12) as usize;
    let first = view.selected.saturating_sub(list_rows - 1);
    for (i, f) in findings.iter().enumerate().skip(first).take(list_rows) {
        lines.push(finding_line(state, f, i == view.selected, area.width));
    }
    let Some(f) = findings.get(view.selected) else { return };
    lines.push(Line::from(Span::styled(format!("── #{} ", f.id), theme.style("roster.kind"))));
    lines.push(Line::from(Span::raw(f.line())));
    let since = if f.checkpoint_n > 0 {
        format!("First seen after checkpoint {}: a restore puts the file back as it was there.", f.checkpoint_n)
    } else {
        "First seen before any checkpoint: there is nothing to restore it from.".into()
    };
    lines.push(Line::from(Span::styled(since, theme.style("roster.kind"))));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}
