//! The gates tab: the selected agent's gate runs, newest first, and the selected run's output.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::State;
use crate::protocol::gate::{GateOutcome, GateRun};

fn outcome_cell(run: &GateRun) -> (&'static str, &'static str) {
    match run.outcome {
        None => ("… running", "roster.kind"),
        Some(GateOutcome::Pass) => ("✓ pass", "roster.added"),
        Some(GateOutcome::Fail) => ("✗ fail", "ui.error"),
        Some(GateOutcome::Error) => ("! error", "ui.warning"),
        Some(GateOutcome::Stale) => ("~ stale", "roster.kind"),
    }
}

fn run_line(state: &State, run: &GateRun, selected: bool, width: u16) -> Line<'static> {
    let theme = &state.theme;
    let base = if selected { theme.style("roster.selected") } else { theme.style("roster") };
    let (word, scope) = outcome_cell(run);
    let took = if run.outcome.is_none() { String::new() } else { format!("{:.1}s", run.took_ms as f64 / 1000.0) };
    let attempt = if run.attempt > 0 { format!("{}/{}", run.attempt, run.attempts) } else { String::new() };
    let at = if run.checkpoint_n > 0 { format!("◷{}", run.checkpoint_n) } else { "by hand".into() };
    let ago = super::roster::age(state.now_ms, Some(run.started_ms));
    let text = format!(" #{:<5} {}", run.id, super::roster::name_cell(&run.gate, 13));
    let why = super::roster::name_cell(&run.why, 25);
    let rest = format!(" {why}{at:<8} {attempt:<5} {took:>6} {ago:>4} ago  {}", run.failed.join(", "));
    let mut spans = vec![Span::styled(text, base)];
    spans.push(Span::styled(format!("{word:<9}"), base.patch(theme.style(scope))));
    spans.push(Span::styled(rest, base));
    let used: usize = spans.iter().map(|s| unicode_width::UnicodeWidthStr::width(s.content.as_ref())).sum();
    spans.push(Span::styled(" ".repeat((width as usize).saturating_sub(used)), base));
    Line::from(spans)
}

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let theme = &state.theme;
    let Some(view) = &state.gates else { return };
    let info = state.agents.iter().find(|a| a.info.name == view.agent).map(|a| &a.info);
    let mut head = vec![Span::styled(format!("{} · gates", view.agent), theme.style("ui.tab.active"))];
    if let Some(i) = info {
        let cell = i.gate.cell();
        if !cell.is_empty() {
            head.push(Span::styled(format!(" · {cell}"), theme.style("roster.kind")));
        }
        if i.gates_stopped {
            head.push(Span::styled(" · loop stopped: failures are not sent", theme.style("ui.warning")));
        }
    }
    let mut lines = vec![Line::from(head)];
    let runs = match &view.runs {
        None => {
            lines.push(Line::from(Span::styled("reading…", theme.style("roster.kind"))));
            frame.render_widget(Paragraph::new(lines), area);
            return;
        }
        Some(r) => r,
    };
    if runs.is_empty() {
        lines.push(Line::from(Span::styled(
            "No gate has run for this agent. Gates are [[gate]] tables in .muster/crew.toml, run after each turn \
             that changed files; r runs them now.",
            theme.style("roster.kind"),
        )));
        frame.render_widget(Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }), area);
        return;
    }
    // A third of the height for the runs (the selected one kept in view), the rest for its output.
    let list_rows = (area.height.saturating_sub(3) / 3).clamp(1, 10) as usize;
    let first = view.selected.saturating_sub(list_rows - 1);
    for (i, run) in runs.iter().enumerate().skip(first).take(list_rows) {
        lines.push(run_line(state, run, i == view.selected, area.width));
    }
    let Some(run) = runs.get(view.selected) else { return };
    let (what, text) = match &view.log {
        Some((id, log)) if *id == run.id => ("its whole log (Enter: the tail)", crate::gate::output::plain(log)),
        _ => ("the end of its output (Enter: the whole log)", run.tail.clone()),
    };
    lines.push(Line::from(Span::styled(format!("── #{} {}: {what} ", run.id, run.gate), theme.style("roster.kind"))));
    let room = (area.height as usize).saturating_sub(lines.len());
    let body: Vec<&str> = text.lines().collect();
    // The end shows first (where a test runner says what failed); page up reads back.
    let last_start = body.len().saturating_sub(room);
    let start = last_start.saturating_sub(view.scroll as usize);
    for l in body.iter().skip(start).take(room) {
        lines.push(Line::from(Span::raw(l.to_string())));
    }
    if body.is_empty() {
        lines.push(Line::from(Span::styled("(no output)", theme.style("roster.kind"))));
    }
    frame.render_widget(Paragraph::new(lines), area);
}
