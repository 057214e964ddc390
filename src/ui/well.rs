//! The detail well: the selected agent's tab line and live terminal.

use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::{State, WellTab};
use crate::protocol::AgentState;

/// `apart`: the live terminal's cells are painted by `well_painter`, not here.
pub fn render(state: &State, frame: &mut Frame, bar: Rect, term: Rect, apart: bool) {
    let theme = &state.theme;
    let Some(agent) = state.selected_agent() else {
        frame.render_widget(Paragraph::new("").style(theme.style("ui.border")), bar);
        return;
    };
    let border = if state.attached { theme.style("ui.border.attached") } else { theme.style("ui.border") };
    let info = &agent.info;
    let mut spans =
        vec![Span::styled("─ ", border), Span::styled(info.name.clone(), border), Span::styled(" ─ ", border)];
    for (label, which) in state.well_tabs() {
        spans.push(tab(state, &label, which));
        spans.push(Span::styled(" ", border));
    }
    if state.copy_view().is_some() {
        spans.push(Span::styled(" COPY MODE ", theme.style("ui.scrolled")));
    }
    if state.attached {
        let detach = state
            .keymap
            .key_for(crate::config::keymap::Mode::Attached, crate::config::keymap::Action::Detach)
            .map(|k| k.to_string())
            .unwrap_or_default();
        spans.push(Span::styled(format!(" ATTACHED · {detach} detaches "), border));
    }
    if let Some(screen) = &agent.screen {
        // With a server, the agent's terminal has the size of the pane of whoever typed into it last (in a split
        // well, its own pane is the focused one).
        let pane = state.panes().into_iter().find(|p| p.focused).map_or(term, |p| p.terminal);
        if state.detaches && info.state.is_running() && (screen.rows, screen.cols) != (pane.height, pane.width) {
            spans.push(Span::styled(
                format!(" sized by another viewer ({}x{}) ", screen.cols, screen.rows),
                theme.style("ui.scrolled"),
            ));
        }
        if screen.scrolled_back > 0 {
            spans.push(Span::styled(
                format!(" ↑ {} of {} lines back ", screen.scrolled_back, screen.history),
                theme.style("ui.scrolled"),
            ));
        }
    }
    // Which files a trial merge with other agents' work would leave conflicted.
    for o in
        state.overlaps.overlaps.iter().filter(|o| !o.conflicts.is_empty() && (o.a == info.name || o.b == info.name))
    {
        let other = if o.a == info.name { &o.b } else { &o.a };
        spans.push(Span::styled(format!(" ✗ with {other}: {} ", o.conflicts.join(", ")), theme.style("ui.error")));
    }
    if let Some(exit) = info.exit {
        spans.push(Span::styled(format!(" {} ", exit), theme.style("state.exited")));
    }
    let used: usize = spans.iter().map(|s| unicode_width::UnicodeWidthStr::width(s.content.as_ref())).sum();
    // Why the agent is in its state (the rule or hook that decided), at the right end when it fits; for one
    // done, what its result says.
    let why = match info.result.as_ref().filter(|r| r.current) {
        Some(r) => Some(format!(" ✓ {}: {} ", r.status.word(), r.summary)),
        None => (!info.why.is_empty()).then(|| format!(" {}: {} ", info.state_label(), info.why)),
    };
    let why_width = why.as_deref().map_or(0, unicode_width::UnicodeWidthStr::width);
    let fill = (bar.width as usize).saturating_sub(used);
    match why {
        Some(why) if fill >= why_width + 2 => {
            spans.push(Span::styled("─".repeat(fill - why_width - 1), border));
            spans.push(Span::styled(why, theme.style("ui.tab")));
            spans.push(Span::styled("─", border));
        }
        _ => spans.push(Span::styled("─".repeat(fill), border)),
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), bar);

    match body(state) {
        WellTab::Conflicts => {
            if let Some(view) = &state.conflicts {
                super::conflicts::render(state, view, frame, term);
            }
            return;
        }
        WellTab::Timeline => return super::timeline::render(state, frame, term),
        WellTab::Mail => return super::mail::render(state, frame, term),
        WellTab::Review => return super::review::render(state, frame, term),
        WellTab::Gates => return super::gates::render(state, frame, term),
        WellTab::Findings => return super::findings::render(state, frame, term),
        WellTab::Terminal => {}
    }
    let panes = state.panes();
    if !panes.is_empty() {
        return render_panes(state, &panes, frame);
    }
    match &agent.screen {
        Some(screen) => {
            if apart {
                super::terminal::leave_alone(term, frame.buffer_mut());
            } else {
                super::terminal::draw(screen, term, frame.buffer_mut(), theme.mode);
            }
            if let Some(view) = state.copy_view().filter(|_| state.dialog.is_none() && state.help.is_none()) {
                let top = super::terminal::top_row(screen, term);
                super::copy_marks::render(state, view, screen, term, top, frame);
            }
            if state.attached && state.dialog.is_none() && state.help.is_none() {
                if let Some((row, col)) = screen.cursor {
                    let row = row.wrapping_sub(super::terminal::top_row(screen, term));
                    if row < term.height && col < term.width {
                        frame.set_cursor_position(Position::new(term.x + col, term.y + row));
                    }
                }
            }
        }
        None => {
            let (msg, scope) = match (&info.error, info.state) {
                // The whole reason, wrapped: the roster's line has room for its start only.
                (Some(e), AgentState::Error) => {
                    (format!("{} could not start: {e}\n\nR tries again once it is fixed.", info.name), "ui.error")
                }
                (_, s) if s.is_running() => ("waiting for output…".to_string(), "roster.kind"),
                // A plan's agent that has not started: what it waits for, and the keys that start it anyway.
                _ if info.pending => (
                    format!(
                        "{} has not started: {}.\n\nIt starts by itself once that is done; W starts its wave now, R \
                         starts it alone.",
                        info.name,
                        info.why.trim_start_matches("pending: ")
                    ),
                    "roster.kind",
                ),
                _ => (format!("{} is not running — R restarts it with its resume arguments", info.name), "roster.kind"),
            };
            let text = Paragraph::new(msg).style(theme.style(scope)).wrap(ratatui::widgets::Wrap { trim: false });
            frame.render_widget(text, term);
        }
    }
}

fn tab<'a>(state: &State, label: &str, which: WellTab) -> Span<'a> {
    if state.tab == which && !(state.attached && which != WellTab::Terminal) {
        Span::styled(format!("[{label}]"), state.theme.style("ui.tab.active"))
    } else {
        Span::styled(format!(" {label} "), state.theme.style("ui.tab"))
    }
}

/// A split well: each pane's title (the focused one's marked) and its agent's terminal; the cursor in the
/// focused pane when attached, copy mode's marks there too.
fn render_panes(state: &State, panes: &[crate::app::PaneArea], frame: &mut Frame) {
    let theme = &state.theme;
    for pane in panes {
        let agent = state.agents.iter().find(|a| a.info.name == pane.name);
        let (border, mark) = match (pane.focused, state.attached) {
            (true, true) => (theme.style("ui.border.attached"), "▶ "),
            (true, false) => (theme.style("ui.tab.active"), "▶ "),
            _ => (theme.style("ui.border"), ""),
        };
        let what = agent.map_or(String::new(), |a| {
            let back = a.screen.as_ref().filter(|s| s.scrolled_back > 0).map(|s| format!(" ↑{}", s.scrolled_back));
            format!(" · {}{}", a.info.state.label(), back.unwrap_or_default())
        });
        let title = format!("{mark}{}{what} ", pane.name);
        let fill = (pane.title.width as usize).saturating_sub(unicode_width::UnicodeWidthStr::width(title.as_str()));
        frame.render_widget(
            Paragraph::new(Line::from(vec![Span::styled(title, border), Span::styled("─".repeat(fill), border)])),
            pane.title,
        );
        // The column between side-by-side panes.
        if pane.title.right() < pane.terminal.right() + 1 && pane.terminal.right() < frame.area().right() {
            let sep = Rect::new(pane.terminal.right(), pane.title.y, 1, pane.terminal.height + 1);
            if panes.iter().any(|p| p.title.x == sep.x + 1) {
                frame.render_widget(
                    Paragraph::new(vec![Line::from("│"); sep.height as usize]).style(theme.style("ui.border")),
                    sep,
                );
            }
        }
        let Some(screen) = agent.and_then(|a| a.screen.as_ref()) else {
            frame.render_widget(Paragraph::new("waiting for output…").style(theme.style("roster.kind")), pane.terminal);
            continue;
        };
        super::terminal::draw(screen, pane.terminal, frame.buffer_mut(), theme.mode);
        if !pane.focused || state.dialog.is_some() || state.help.is_some() {
            continue;
        }
        let top = super::terminal::top_row(screen, pane.terminal);
        if let Some(view) = state.copy_view() {
            super::copy_marks::render(state, view, screen, pane.terminal, top, frame);
        } else if let Some((row, col)) = screen.cursor.filter(|_| state.attached) {
            let row = row.wrapping_sub(top);
            if row < pane.terminal.height && col < pane.terminal.width {
                frame.set_cursor_position(Position::new(pane.terminal.x + col, pane.terminal.y + row));
            }
        }
    }
}

/// What the well's body shows of the selected agent: its terminal while attached or when the conflicts tab has
/// nothing of this agent's, else the tab's view.
fn body(state: &State) -> WellTab {
    let conflicts_here =
        || state.conflicts.as_ref().is_some_and(|v| state.selected_agent().is_some_and(|a| a.info.name == v.agent));
    match state.tab {
        _ if state.attached => WellTab::Terminal,
        WellTab::Conflicts if !conflicts_here() => WellTab::Terminal,
        WellTab::Review if state.review.as_ref().is_none_or(|v| state.selected_name().as_ref() != Some(&v.agent)) => {
            WellTab::Terminal
        }
        WellTab::Gates if state.gates.as_ref().is_none_or(|v| state.selected_name().as_ref() != Some(&v.agent)) => {
            WellTab::Terminal
        }
        WellTab::Findings
            if state.findings.as_ref().is_none_or(|v| state.selected_name().as_ref() != Some(&v.agent)) =>
        {
            WellTab::Terminal
        }
        tab => tab,
    }
}

/// Whether the selected agent's terminal is on screen (what the painter and a new screen's redraw go by).
pub fn shows_terminal(state: &State) -> bool {
    state.attached || (state.well_open && body(state) == WellTab::Terminal)
}

/// What the well's bar and the terminal's cursor show of the selected agent's screen: a new screen that leaves
/// these as they were changes only the cells of the well.
#[derive(PartialEq, Eq)]
pub struct ScreenFacts {
    size: (u16, u16),
    scrolled_back: usize,
    history: usize,
    cursor_shown: bool,
}

pub fn screen_facts(state: &State) -> Option<ScreenFacts> {
    let screen = state.selected_agent()?.screen.as_ref()?;
    Some(ScreenFacts {
        size: (screen.rows, screen.cols),
        scrolled_back: screen.scrolled_back,
        // Shown only while scrolled back ("n of h lines back").
        history: if screen.scrolled_back > 0 { screen.history } else { 0 },
        cursor_shown: screen.cursor.is_some(),
    })
}
