//! The review tab: what merging the selected agent would bring, file by file.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::State;

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let theme = &state.theme;
    let Some(view) = &state.review else { return };
    let mut lines: Vec<Line<'static>> =
        vec![Line::from(vec![Span::styled(format!("{} → {}", view.agent, view.base), theme.style("ui.tab.active"))])];
    let what = " · what a merge would bring: branch and worktree (? not committed)";
    match &view.diff {
        None => {
            lines[0].spans.push(Span::styled(what, theme.style("roster.kind")));
            lines.push(Line::from(Span::styled("reading…", theme.style("roster.kind"))));
            frame.render_widget(Paragraph::new(lines), area);
        }
        Some(Err(e)) => {
            lines.push(Line::from(Span::styled(format!("cannot review: {e}"), theme.style("ui.error"))));
            frame.render_widget(Paragraph::new(lines), area);
        }
        Some(Ok((merge_base, files))) => {
            let (added, removed) = files.iter().fold((0, 0), |(a, r), f| (a + f.added, r + f.removed));
            lines[0].spans.push(Span::styled(
                format!(
                    " · merge base {} · {} +{added} −{removed}",
                    &merge_base[..merge_base.len().min(8)],
                    crate::text::counted(files.len(), "file")
                ),
                theme.style("roster.kind"),
            ));
            lines[0].spans.push(Span::styled(what, theme.style("roster.kind")));
            super::timeline::files_and_lines(state, files, view.file, view.scroll, None, lines, area, frame);
        }
    }
}
