//! The roster: one line per agent — state, name, kind, branch, diffstat, state word, age, and what needs a look.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::{AgentView, State};
use crate::protocol::gate::GateMark;
use crate::protocol::{AgentState, CrewFileMark};

/// "2s", "3m", "1h", "4d": how long since the agent last printed anything.
pub fn age(now_ms: u64, then_ms: Option<u64>) -> String {
    let Some(then) = then_ms else {
        return "-".into();
    };
    // Whole seconds of the clock, so every age on the screen changes at the same moment: one frame a second.
    let s = (now_ms / 1000).saturating_sub(then / 1000);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn pad(s: &str, width: usize) -> String {
    let mut out: String = s.chars().take(width).collect();
    let len = out.chars().count();
    if len < width {
        out.push_str(&" ".repeat(width - len));
    }
    out
}

/// A name in a column of `width` (a space after it): a longer one keeps its start and its end around `…`, so
/// `frontend-api-v1` and `frontend-api-v2` stay told apart.
pub fn name_cell(name: &str, width: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    let room = width.saturating_sub(1);
    if chars.len() <= room {
        return pad(name, width);
    }
    let tail = 4.min(room.saturating_sub(2));
    let head = room.saturating_sub(tail + 1);
    let cut: String = chars[..head].iter().chain(['…'].iter()).chain(chars[chars.len() - tail..].iter()).collect();
    pad(&cut, width)
}

fn state_scope(state: AgentState) -> String {
    format!("state.{}", state.label())
}

fn row<'a>(state: &State, agent: &'a AgentView, place: (usize, usize), selected: bool, width: u16) -> Line<'a> {
    let theme = &state.theme;
    let info = &agent.info;
    let st = theme.style(&state_scope(info.state));
    let base = if selected { theme.style("roster.selected") } else { theme.style("roster") };
    let with = |s: Style| base.patch(s);
    let wide = width >= 100;
    let medium = width >= 70;
    // A turn that ended while you looked elsewhere: marked until you select the agent.
    let marker = if selected {
        "▸"
    } else if agent.unseen {
        "•"
    } else {
        " "
    };
    let mut spans = vec![
        Span::styled(marker, with(theme.style("roster.attention"))),
        // Pending: not started, waiting for the agents it follows (its plan's wave or `after`).
        Span::styled(format!("{} ", info.state_glyph()), with(st)),
        Span::styled(
            // A spawned agent under its parent: indented by how deep it is.
            name_cell(&tree_name(info, place), 14),
            with(if agent.attention { theme.style("roster.attention") } else { Style::default() }),
        ),
    ];
    if medium {
        spans.push(Span::styled(name_cell(&info.kind, 9), with(theme.style("roster.kind"))));
    }
    // Gates: a column only when the crew has a gate mark at all (a crew without gates keeps its room); it takes
    // its room from the branch (muster/<name> says little the name does not).
    let gates = state.agents.iter().any(|a| a.info.gate != GateMark::None);
    if wide {
        let room = if gates && width < 140 { 14 } else { 20 };
        spans.push(Span::styled(name_cell(&info.branch, room), with(theme.style("roster.branch"))));
    }
    if medium {
        let d = info.diffstat;
        let added = format!("+{}", d.added);
        let removed = format!("−{}", d.removed);
        spans.push(Span::styled(added.clone(), with(theme.style("roster.added"))));
        spans.push(Span::styled(" ", base));
        spans.push(Span::styled(removed.clone(), with(theme.style("roster.removed"))));
        // New files git does not track yet (a merge commits them): binary ones add no line to count.
        let new = if d.untracked > 0 { format!(" ·{}", d.untracked) } else { String::new() };
        spans.push(Span::styled(new.clone(), with(theme.style("roster.added"))));
        let used = added.chars().count() + 1 + removed.chars().count() + new.chars().count();
        spans.push(Span::styled(" ".repeat(12usize.saturating_sub(used).max(1)), base));
    }
    if medium {
        let cps = format!("◷{}{}", info.checkpoints, if info.rolled_back { " ↺" } else { "" });
        spans.push(Span::styled(pad(&cps, 7), with(theme.style("roster.kind"))));
    }
    if gates {
        let scope = match &info.gate {
            GateMark::Green { .. } => "roster.added",
            GateMark::Red { .. } => "ui.error",
            GateMark::Error { .. } => "ui.warning",
            _ => "roster.kind",
        };
        // `✗2/4 test` when there is room; the attempts alone, or the glyph alone, when not.
        let cell = info.gate.cell();
        let shown = if width >= 140 {
            pad(&cell, 12)
        } else if medium {
            pad(cell.split(' ').next().unwrap_or(""), 6)
        } else {
            pad(&cell.chars().take(1).collect::<String>(), 2)
        };
        spans.push(Span::styled(shown, with(theme.style(scope))));
    }
    // Mail: unread by you (✉), waiting to be delivered to it (→), dead letters (✗). A column when wide; at
    // the front of the note when not.
    let m = &info.mail;
    let mut mail = String::new();
    for (n, glyph) in [(m.unread, "✉"), (m.pending, "→"), (m.dead, "✗")] {
        if n > 0 {
            mail.push_str(&format!("{glyph}{n}"));
        }
    }
    let mail_scope = if m.dead > 0 {
        "ui.error"
    } else if m.unread > 0 {
        "roster.attention"
    } else {
        "roster.kind"
    };
    if wide {
        spans.push(Span::styled(pad(&mail, 7), with(theme.style(mail_scope))));
    }
    let word = match (info.state, info.exit) {
        _ if info.pending => match info.wave {
            Some(w) if medium => format!("pending · wave {w}"),
            _ => "pending".to_string(),
        },
        (AgentState::Exited | AgentState::Stopped, Some(exit)) if medium => {
            format!("{} ({exit})", info.state.label())
        }
        _ => info.state_label().to_string(),
    };
    spans.push(Span::styled(pad(&word, if medium { 19 } else { 9 }), with(st)));
    spans.push(Span::styled(" ", base));
    spans.push(Span::styled(pad(&age(state.now_ms, info.last_output_ms), 5), with(theme.style("roster.age"))));
    let note = if let Some(err) = &info.error {
        Some((format!("✗ {err}"), "ui.error"))
    } else if let Some(q) = &info.mail.asking {
        // Its question to the operator, waiting for an answer (`a` answers).
        Some((format!("? {}", q.lines().next().unwrap_or("")), "roster.attention"))
    } else if info.findings > 0 {
        // The watchdog's open findings (f shows them).
        Some((format!("⊘ {} (f)", crate::text::counted(info.findings as usize, "finding")), "ui.warning"))
    } else if agent.attention && info.state == AgentState::Waiting {
        Some(("⚑ needs you".to_string(), "roster.attention"))
    } else if info.crew_file != CrewFileMark::Same {
        // The crew file changed while the crew ran: what it asks waits for the operator's key.
        Some(match info.crew_file {
            CrewFileMark::Added => ("+ new: R starts it".to_string(), "roster.attention"),
            CrewFileMark::Changed => ("↻ changed: R applies".to_string(), "ui.warning"),
            _ => ("− left crew file: D".to_string(), "ui.warning"),
        })
    } else if let Some(r) = info.result.as_ref().filter(|r| r.current) {
        // Done: what its result says.
        let scope = if r.status == crate::protocol::lead::ResultStatus::Done { "roster.added" } else { "ui.warning" };
        Some((format!("✓ {}: {}", r.status.word(), r.summary), scope))
    } else if info.pending {
        // What it waits for, and how that is doing.
        Some((info.why.trim_start_matches("pending: ").to_string(), "roster.kind"))
    } else if let Some(r) = &info.review {
        Some((r.cell(), if r.approved { "roster.added" } else { "ui.warning" }))
    } else if let Some((others, conflicts)) = state.overlap_of(&info.name) {
        match conflicts {
            true => Some((format!("✗ conflicts with: {}", others.join(", ")), "ui.error")),
            false => Some((format!("⚠ overlaps: {}", others.join(", ")), "ui.warning")),
        }
    } else {
        info.title.as_ref().filter(|_| medium).map(|t| (t.clone(), "roster.kind"))
    };
    if !wide && !mail.is_empty() {
        spans.push(Span::styled(format!("{mail} "), with(theme.style(mail_scope))));
    }
    if let Some((text, scope)) = note {
        spans.push(Span::styled(text, with(theme.style(scope))));
    }
    let used: usize = spans.iter().map(|s| unicode_width::UnicodeWidthStr::width(s.content.as_ref())).sum();
    spans.push(Span::styled(" ".repeat((width as usize).saturating_sub(used)), base));
    Line::from(spans)
}

/// A wave's heading, over its first agent (`first`): its number and how it is doing — what it waits for while
/// pending (`wave 2 · after planner (waiting, done when green)`), else how many of its agents run.
fn wave_heading<'a>(state: &State, first: Option<usize>, width: u16) -> Line<'a> {
    let wave = first.and_then(|i| state.agents.get(i)).and_then(|a| a.info.wave);
    let members: Vec<&AgentView> = state.agents.iter().filter(|a| a.info.wave == wave).collect();
    let title = match wave {
        Some(w) => format!("wave {w}"),
        None => "no wave".to_string(),
    };
    let how = match members.iter().find(|a| a.info.pending) {
        Some(p) => p.info.why.trim_start_matches("pending: ").to_string(),
        None => {
            let running = members.iter().filter(|a| a.info.state.is_running()).count();
            format!("{running} of {} running", members.len())
        }
    };
    let text = format!("── {title} · {how} ");
    let used = unicode_width::UnicodeWidthStr::width(text.as_str());
    let line = format!("{text}{}", "─".repeat((width as usize).saturating_sub(used)));
    let cut: String = line.chars().take(width as usize).collect();
    Line::from(Span::styled(cut, state.theme.style("roster.kind")))
}

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    if area.height == 0 {
        return;
    }
    if state.agents.is_empty() {
        let msg = " No agents. Add some to .muster/crew.toml (`muster init` writes a commented one): they appear here \
                   when it is saved.";
        frame.render_widget(Paragraph::new(msg).style(state.theme.style("roster.kind")), area);
        return;
    }
    // Keep the selection in view when there are more agents than lines.
    let visible = area.height as usize;
    let first = state.roster_first();
    let rows = state.roster_rows();
    let places = state.tree_places();
    let lines: Vec<Line> = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(at, r)| match r {
            Some(i) => row(state, &state.agents[*i], places[*i], *i == state.selected, area.width),
            None => wave_heading(state, rows.get(at + 1).copied().flatten(), area.width),
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
    // More agents than lines: how many are out of sight, at the edge they are beyond.
    let below = rows.len().saturating_sub(first + visible);
    let style = state.theme.style("roster.attention");
    for (n, glyph, y) in [(first, "↑", area.y), (below, "↓", area.y + area.height - 1)] {
        if n > 0 {
            let mark = format!(" {glyph}{n} more ");
            let w = (mark.chars().count() as u16).min(area.width);
            frame.render_widget(Paragraph::new(mark).style(style), Rect::new(area.x + area.width - w, y, w, 1));
        }
    }
}

/// An agent's name as the roster shows it: a spawned one indented under its parent by how deep it is; a folded
/// parent with how many agents its fold hides (`lead +3`; `l` shows them).
fn tree_name(info: &crate::protocol::AgentInfo, (depth, hidden): (usize, usize)) -> String {
    let name = match hidden {
        0 => info.name.clone(),
        n => format!("{} +{n}", info.name),
    };
    match depth {
        0 => name,
        d => format!("{}└{name}", " ".repeat(d - 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_in_the_middle_and_stay_apart() {
        assert_eq!(name_cell("api", 14), "api           ");
        assert_eq!(name_cell("thirteen-char", 14), "thirteen-char ");
        let (a, b) = (name_cell("frontend-api-v1", 14), name_cell("frontend-api-v2", 14));
        assert_eq!(a, "frontend…i-v1 ");
        assert_ne!(a, b);
        assert_eq!(name_cell("ünïcödé-nämes-here", 14).chars().count(), 14);
        assert_eq!(name_cell("abcdef", 4), "a…f ");
    }

    #[test]
    fn ages() {
        assert_eq!(age(10_000, None), "-");
        assert_eq!(age(10_000, Some(8_000)), "2s");
        assert_eq!(age(200_000, Some(0)), "3m");
        assert_eq!(age(7_200_000, Some(0)), "2h");
        assert_eq!(age(0, Some(5_000)), "0s");
    }
}
