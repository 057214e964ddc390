//! The conflict view: conflicted files, the current conflict as ours / base / theirs panes labelled with the
//! branch names, and the result with the current conflict highlighted.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::app::{ConflictView, State};
use crate::conflict::{Resolver, Segment};

/// The lines of a text, lazily (without their endings), so a caller takes only what it shows.
fn lines_of(bytes: &[u8]) -> impl DoubleEndedIterator<Item = String> + '_ {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.split(|&b| b == b'\n').map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
}

pub fn render(state: &State, view: &ConflictView, frame: &mut Frame, area: Rect) {
    let theme = &state.theme;
    let list_w = (area.width / 4).clamp(20, 36).min(area.width);
    let list = Rect::new(area.x, area.y, list_w, area.height);
    let right = Rect::new(area.x + list_w + 1, area.y, area.width.saturating_sub(list_w + 1), area.height);
    let mut lines = vec![Line::from(Span::styled(
        if view.files.is_empty() {
            "all resolved: F finishes".to_string()
        } else {
            crate::text::counted(view.files.len(), "conflicted file")
        },
        theme.style("ui.help.section"),
    ))];
    for (i, f) in view.files.iter().enumerate() {
        let cur = i == view.file;
        let style = if cur { theme.style("roster.selected") } else { Style::default() };
        // The file on screen counts what is resolved here; the others, what is left on disk.
        let left = match (&view.loaded, cur, f.unresolved) {
            (Some((p, Ok(r))), true, _) if *p == f.path => format!(" {}", r.unresolved()),
            (_, _, Some(n)) => format!(" {n}"),
            _ => String::new(),
        };
        lines.push(Line::from(Span::styled(format!("{}{}{left}", if cur { "▸" } else { " " }, f.path), style)));
        lines.push(Line::from(Span::styled(format!("   {}", f.kind.label()), theme.style("roster.kind"))));
    }
    frame.render_widget(Paragraph::new(lines), list);
    frame.render_widget(
        Paragraph::new(vec![Line::from("│"); area.height as usize]).style(theme.style("ui.border")),
        Rect::new(area.x + list_w, area.y, 1, area.height),
    );
    if right.width < 12 {
        return;
    }
    let Some(file) = view.files.get(view.file) else { return };
    if !file.kind.has_markers() {
        let msg = format!(
            "{} is {}: there are no markers to resolve hunk by hunk.\n\no keeps our side, t takes theirs \
             (a side that deleted the file deletes it).",
            file.path,
            file.kind.label()
        );
        frame.render_widget(Paragraph::new(msg).wrap(Wrap { trim: false }), right);
        return;
    }
    let resolver = match &view.loaded {
        Some((p, Ok(r))) if *p == file.path => r,
        Some((p, Err(e))) if *p == file.path => {
            frame.render_widget(
                Paragraph::new(e.clone()).style(theme.style("ui.error")).wrap(Wrap { trim: false }),
                right,
            );
            return;
        }
        _ => {
            frame.render_widget(Paragraph::new("reading…").style(theme.style("roster.kind")), right);
            return;
        }
    };
    let conflicts = resolver.conflicts();
    let Some(region) = conflicts.get(view.hunk) else { return };
    let size = resolver.marker_size();
    let panes_h = (right.height / 2).max(3);
    let has_base = region.base.is_some();
    let n = if has_base { 3 } else { 2 };
    let pane_w = right.width / n;
    let chosen = resolver.choice(view.hunk);
    let mut panes: Vec<(String, Vec<u8>, &str)> =
        vec![(format!("ours: {}", region.ours_label(size)), region.ours.clone(), "roster.added")];
    if let Some((marker, base)) = &region.base {
        let label = String::from_utf8_lossy(&marker[size.min(marker.len())..]).trim().to_string();
        panes.push((format!("base: {label}"), base.clone(), "roster.kind"));
    }
    panes.push((format!("theirs: {}", region.theirs_label(size)), region.theirs.clone(), "roster.removed"));
    for (i, (title, body, scope)) in panes.into_iter().enumerate() {
        let w = if i as u16 == n - 1 { right.width - pane_w * (n - 1) } else { pane_w };
        let rect = Rect::new(right.x + pane_w * i as u16, right.y, w, panes_h);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.style("ui.border"))
            .title(Span::styled(format!(" {title} "), theme.style(scope)));
        let lines: Vec<Line> = lines_of(&body).take(rect.height as usize).map(Line::from).collect();
        frame.render_widget(Paragraph::new(lines).block(block), rect);
    }
    // The result around the current conflict: two lines of context, then as much as fits. Only these lines
    // are built, so a large file costs no more per frame than a small one.
    let result_rect = Rect::new(right.x, right.y + panes_h, right.width, right.height.saturating_sub(panes_h));
    let room = result_rect.height as usize;
    let segments = &resolver.original().segments;
    let Some(at) =
        segments.iter().enumerate().filter(|(_, s)| matches!(s, Segment::Conflict(_))).nth(view.hunk).map(|(i, _)| i)
    else {
        return;
    };
    let mut lines: Vec<Line> = Vec::new();
    if let Some(Segment::Text(t)) = at.checked_sub(1).and_then(|i| segments.get(i)) {
        let mut before: Vec<String> = lines_of(t).rev().take(2).collect();
        before.reverse();
        lines.extend(before.into_iter().map(Line::from));
    }
    let mut k = view.hunk;
    for seg in &segments[at..] {
        if lines.len() >= room {
            break;
        }
        let left = room - lines.len();
        match seg {
            Segment::Text(t) => lines.extend(lines_of(t).take(left).map(Line::from)),
            Segment::Conflict(c) => {
                let hl =
                    if k == view.hunk { Style::default().add_modifier(Modifier::REVERSED) } else { Style::default() };
                let (text, scope) = match resolver.choice(k) {
                    Some(choice) => (Resolver::resolution(c, choice), "roster.added"),
                    None => (c.raw(), "ui.warning"),
                };
                let style = theme.style(scope).patch(hl);
                lines.extend(lines_of(&text).take(left).map(|l| Line::from(Span::styled(l, style))));
                k += 1;
            }
        }
    }
    let state_word = match chosen {
        Some(c) => format!("resolved: {}", c.label()),
        None => "unresolved".into(),
    };
    let block = Block::default().borders(Borders::TOP).border_style(theme.style("ui.border")).title(Span::styled(
        format!(
            " result · conflict {} of {} ({state_word}) · {} left ",
            view.hunk + 1,
            conflicts.len(),
            resolver.unresolved()
        ),
        theme.style("ui.tab.active"),
    ));
    frame.render_widget(Paragraph::new(lines).block(block), result_rect);
}
