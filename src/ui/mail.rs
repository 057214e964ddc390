//! The mail tab (the selected agent's threads) and the crew's mailbox: threads newest first, the open thread's
//! messages with each recipient's receipt.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use crate::app::mail::{dead_copies, threads, unread, Thread};
use crate::app::State;
use crate::protocol::mail::{Mail, ReceiptState, OPERATOR};

fn receipt_scope(s: ReceiptState) -> &'static str {
    match s {
        ReceiptState::Dead | ReceiptState::Expired => "ui.error",
        ReceiptState::Queued | ReceiptState::Held | ReceiptState::Delivering => "ui.warning",
        ReceiptState::Dropped => "roster.kind",
        _ => "mail.receipt",
    }
}

/// The mark before a thread: unread by the operator, an open question, a dead letter.
fn mark(state: &State, t: &Thread) -> (&'static str, &'static str) {
    let mails: Vec<&Mail> = t.ids.iter().filter_map(|id| state.mail.get(id)).collect();
    if !dead_copies(state, t).is_empty() {
        ("✗", "ui.error")
    } else if mails.iter().any(|m| m.open_question()) {
        ("?", "roster.attention")
    } else if mails.iter().any(|m| unread(m)) {
        ("✉", "roster.attention")
    } else {
        (" ", "roster")
    }
}

fn thread_line<'a>(state: &State, t: &Thread, selected: bool, width: u16) -> Line<'a> {
    let theme = &state.theme;
    let base = if selected { theme.style("roster.selected") } else { theme.style("roster") };
    let Some(last) = t.ids.last().and_then(|id| state.mail.get(id)) else { return Line::from("") };
    let (m, scope) = mark(state, t);
    let count = if t.ids.len() > 1 { format!(" ({})", t.ids.len()) } else { String::new() };
    let who = format!("{} → {}", last.from, last.to.join(","));
    let spans = vec![
        Span::styled(if selected { "▸" } else { " " }, base.patch(theme.style("roster.attention"))),
        Span::styled(format!("{m} "), base.patch(theme.style(scope))),
        Span::styled(format!("#{:<5}", last.id), base.patch(theme.style("roster.kind"))),
        Span::styled(format!("{:<24} ", truncate(&who, 24)), base),
        Span::styled(
            format!("{:>4}  ", super::roster::age(state.now_ms, Some(last.created_ms))),
            base.patch(theme.style("roster.age")),
        ),
        Span::styled(format!("{}{count}", last.summary()), base),
    ];
    let used: usize = spans.iter().map(|s| unicode_width::UnicodeWidthStr::width(s.content.as_ref())).sum();
    let mut spans = spans;
    spans.push(Span::styled(" ".repeat((width as usize).saturating_sub(used)), base));
    Line::from(spans)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// One message of an open thread: who, when, each copy's receipt, the text.
fn message_lines<'a>(state: &State, m: &Mail) -> Vec<Line<'a>> {
    let theme = &state.theme;
    let mut head = vec![
        Span::styled(format!("#{} ", m.id), theme.style("roster.kind")),
        Span::styled(format!("{} → {}", m.from, m.to.join(",")), theme.style("mail.from")),
        Span::styled(
            format!("  {} ago", super::roster::age(state.now_ms, Some(m.created_ms))),
            theme.style("roster.age"),
        ),
    ];
    if let Some(r) = m.reply_to {
        head.push(Span::styled(format!("  re #{r}"), theme.style("roster.kind")));
    }
    if m.urgent {
        head.push(Span::styled("  urgent", theme.style("ui.warning")));
    }
    if m.open_question() {
        head.push(Span::styled("  ? waits for your answer (a)", theme.style("roster.attention")));
    }
    let mut lines = vec![Line::from(head)];
    let mut receipts = vec![Span::raw("  ")];
    for (i, r) in m.receipts.iter().enumerate() {
        if i > 0 {
            receipts.push(Span::raw(" · "));
        }
        let detail = r.detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default();
        let who = if r.recipient == OPERATOR { "you".to_string() } else { r.recipient.clone() };
        receipts.push(Span::styled(format!("{who}: {}{detail}", r.state.label()), theme.style(receipt_scope(r.state))));
    }
    lines.push(Line::from(receipts));
    lines.extend(m.body.lines().map(|l| Line::from(format!("  {l}"))));
    lines.push(Line::from(""));
    lines
}

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let theme = &state.theme;
    let all = threads(state);
    if all.is_empty() {
        let who = state.selected_agent().map(|a| a.info.name.clone()).filter(|_| !state.mail_view.crew);
        let msg = match who {
            Some(name) => format!(" No mail for or from {name} yet. w writes to it; I shows the crew's mailbox."),
            None => " No mail yet. w writes to the selected agent; agents write with `muster mail send`.".to_string(),
        };
        frame.render_widget(Paragraph::new(msg).style(theme.style("roster.kind")), area);
        return;
    }
    let selected = state.mail_view.selected.min(all.len() - 1);
    let open = state.mail_view.open.then(|| &all[selected]);
    // Wide: the list beside the open thread; narrow: the open thread instead of the list.
    let (list_area, thread_area) = match open {
        Some(_) if area.width >= 100 => {
            let w = (area.width * 2 / 5).max(40);
            (
                Some(Rect::new(area.x, area.y, w, area.height)),
                Some(Rect::new(area.x + w + 2, area.y, area.width - w - 2, area.height)),
            )
        }
        Some(_) => (None, Some(area)),
        None => (Some(area), None),
    };
    if let Some(la) = list_area {
        let visible = la.height as usize;
        let first = selected.saturating_sub(visible.saturating_sub(1));
        let lines: Vec<Line> = all
            .iter()
            .enumerate()
            .skip(first)
            .take(visible)
            .map(|(i, t)| thread_line(state, t, i == selected, la.width))
            .collect();
        frame.render_widget(Paragraph::new(lines), la);
    }
    if let (Some(la), Some(_)) = (list_area, thread_area) {
        let bar = vec![Line::from(Span::styled("│", theme.style("ui.border"))); la.height as usize];
        frame.render_widget(Paragraph::new(bar), Rect::new(la.right(), la.y, 1, la.height));
    }
    if let (Some(ta), Some(t)) = (thread_area, open) {
        let lines: Vec<Line> =
            t.ids.iter().filter_map(|id| state.mail.get(id)).flat_map(|m| message_lines(state, m)).collect();
        // The newest message at the bottom, in view.
        let height = lines.len() as u16;
        let scroll = height.saturating_sub(ta.height);
        let para = Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((scroll, 0)).style(Style::default());
        frame.render_widget(para, ta);
    }
}
