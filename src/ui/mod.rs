//! `render`: a pure function of `State` onto a ratatui frame. One file per widget.

pub mod conflicts;
pub mod dialog;
// Where each part of the screen goes is the core's (update needs it too): rendered here from there.
pub use crate::app::layout;
pub mod mail;
pub mod roster;
pub mod status;
pub mod terminal;
pub mod timeline;
pub mod well;
pub mod well_painter;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::{Dialog, State};
use crate::protocol::AgentState;

pub fn render(state: &State, frame: &mut Frame) {
    render_parts(state, frame, false);
}

/// Everything but the cells of the well's live terminal, which `well_painter` paints apart.
pub fn render_around_well(state: &State, frame: &mut Frame) {
    render_parts(state, frame, true);
}

fn render_parts(state: &State, frame: &mut Frame, well_apart: bool) {
    let area = frame.area();
    let a = layout::areas(area.width, area.height, state.agents.len(), state.well_open, state.attached);
    if let Some(line) = a.summary {
        frame.render_widget(Paragraph::new(summary(state)).style(state.theme.style("ui.header")), line);
        return;
    }
    header(state, frame, a.header);
    let mail_in_roster = a.terminal.is_none() && state.well_open && state.tab == crate::app::WellTab::Mail;
    if mail_in_roster {
        // No room for the well (a small pane): the mailbox takes the roster's place while it is open.
        mail::render(state, frame, a.roster);
    } else {
        roster::render(state, frame, a.roster);
    }
    if let (Some(bar), Some(term)) = (a.well_bar, a.terminal) {
        well::render(state, frame, bar, term, well_apart);
    }
    status::render(state, frame, a.status);
    match &state.dialog {
        Some(Dialog::Help) => dialog::help(state, frame, area),
        Some(Dialog::Messages) => dialog::messages(state, frame, area),
        Some(Dialog::Confirm { title, lines, .. }) => dialog::confirm(state, frame, area, title, lines),
        Some(Dialog::Steer { name, editor }) => dialog::steer(state, frame, area, name, editor),
        Some(Dialog::Edit { purpose, editor }) => dialog::edit(state, frame, area, purpose, editor),
        Some(Dialog::Compose(c)) => dialog::compose(state, frame, area, c),
        None => {}
    }
}

/// "3 busy · 1 waiting · 2 idle", in a fixed order, leaving out zeros.
pub fn counts(state: &State) -> String {
    let order = [
        AgentState::Waiting,
        AgentState::Busy,
        AgentState::Idle,
        AgentState::Starting,
        AgentState::Paused,
        AgentState::Error,
        AgentState::Exited,
        AgentState::Stopped,
    ];
    let parts: Vec<String> = order
        .iter()
        .filter_map(|s| match state.count(*s) {
            0 => None,
            n => Some(format!("{n} {}", s.label())),
        })
        .collect();
    if parts.is_empty() {
        "no agents".into()
    } else {
        parts.join(" · ")
    }
}

fn summary(state: &State) -> String {
    format!("muster {} · {}", state.repo, counts(state))
}

fn header(state: &State, frame: &mut Frame, area: Rect) {
    let style = state.theme.style("ui.header");
    let right = format!(" {} ", counts(state));
    let width = area.width as usize;
    let full = format!(" muster · repo: {} · {} ", state.repo, crate::text::counted(state.agents.len(), "agent"));
    let fits = unicode_width::UnicodeWidthStr::width(full.as_str()) + right.chars().count() <= width;
    let left = if fits { full } else { format!(" muster · {} ", state.repo) };
    let fill = width.saturating_sub(unicode_width::UnicodeWidthStr::width(left.as_str()) + right.chars().count());
    let line = Line::from(vec![Span::raw(left), Span::raw(" ".repeat(fill)), Span::raw(right)]);
    frame.render_widget(Paragraph::new(line).style(style), area);
}
