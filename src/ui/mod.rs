//! `render`: a pure function of `State` onto a ratatui frame. One file per widget.

pub mod conflicts;
pub mod copy_marks;
pub mod dialog;
pub mod findings;
pub mod gates;
// Where each part of the screen goes is the core's (update needs it too): rendered here from there.
pub use crate::app::layout;
pub mod mail;
pub mod review;
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

pub fn render(state: &State, frame: &mut Frame) {
    render_parts(state, frame, false);
}

/// Everything but the cells of the well's live terminal, which `well_painter` paints apart.
pub fn render_around_well(state: &State, frame: &mut Frame) {
    render_parts(state, frame, true);
}

fn render_parts(state: &State, frame: &mut Frame, well_apart: bool) {
    let area = frame.area();
    let a = layout::areas(area.width, area.height, state.roster_len(), state.well_open, state.attached);
    if let Some(line) = a.summary {
        let text = summary(state, line.width as usize);
        frame.render_widget(Paragraph::new(text).style(state.theme.style("ui.header")), line);
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
        Some(Dialog::Messages) => dialog::messages(state, frame, area),
        Some(Dialog::Confirm { title, lines, .. }) => dialog::confirm(state, frame, area, title, lines),
        Some(Dialog::Steer { name, editor }) => dialog::steer(state, frame, area, name, editor),
        Some(Dialog::Edit { purpose, editor }) => dialog::edit(state, frame, area, purpose, editor),
        Some(Dialog::Compose(c)) => dialog::compose(state, frame, area, c),
        None => {}
    }
    if let Some(mode) = state.help {
        dialog::help(state, frame, area, mode);
    }
}

/// The order the roster's words are counted in, those that want you first.
const COUNTED: [&str; 10] =
    ["waiting", "busy", "done", "idle", "starting", "paused", "error", "exited", "stopped", "pending"];

/// Each word the roster shows with agents in it (`AgentInfo::shown`), in the fixed order: (word, glyph, count).
fn each_count(state: &State) -> Vec<(&'static str, &'static str, usize)> {
    COUNTED
        .iter()
        .filter_map(|word| {
            let mut shown = state.agents.iter().map(|a| a.info.shown()).filter(|(w, _)| w == word);
            let glyph = shown.next()?.1;
            Some((*word, glyph, 1 + shown.count()))
        })
        .collect()
}

/// "3 busy · 1 waiting · 2 idle", in a fixed order, leaving out zeros.
pub fn counts(state: &State) -> String {
    let parts: Vec<String> = each_count(state).iter().map(|(word, _, n)| format!("{n} {word}")).collect();
    if parts.is_empty() {
        "no agents".into()
    } else {
        parts.join(" · ")
    }
}

/// "◆1 ●3 ○2": the counts in the roster's glyphs, for a header or a line too narrow for words.
pub fn glyph_counts(state: &State) -> String {
    each_count(state).iter().map(|(_, glyph, n)| format!("{glyph}{n}")).collect::<Vec<_>>().join(" ")
}

fn width_of(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// The one line of a tiny pane: in words when they fit, else the repository and the glyphs, else the glyphs.
fn summary(state: &State, width: usize) -> String {
    let long = format!("muster {} · {}", state.repo, counts(state));
    if width_of(&long) <= width {
        return long;
    }
    let short = format!("{} {}", state.repo, glyph_counts(state));
    if width_of(&short) <= width {
        return short;
    }
    glyph_counts(state)
}

fn header(state: &State, frame: &mut Frame, area: Rect) {
    let style = state.theme.style("ui.header");
    let width = area.width as usize;
    let full = format!(" muster · repo: {} · {} ", state.repo, crate::text::counted(state.agents.len(), "agent"));
    let short = format!(" muster · {} ", state.repo);
    let (words, glyphs) = (format!(" {} ", counts(state)), format!(" {} ", glyph_counts(state)));
    // The counts stay, in glyphs when words do not fit; the repository's name gives way first.
    let (left, right) = [(&full, &words), (&short, &words), (&short, &glyphs), (&format!(" {} ", state.repo), &glyphs)]
        .into_iter()
        .find(|(l, r)| width_of(l) + width_of(r) <= width)
        .map_or((String::new(), glyphs.clone()), |(l, r)| (l.clone(), r.clone()));
    let fill = width.saturating_sub(width_of(&left) + width_of(&right));
    let line = Line::from(vec![Span::raw(left), Span::raw(" ".repeat(fill)), Span::raw(right)]);
    frame.render_widget(Paragraph::new(line).style(style), area);
}
