//! The mailbox in the workbench: mail as it arrives, the mailbox view, compose, reply, retry and drop.

use super::msg::Effect;
use super::state::State;
use crate::protocol::mail::{Mail, ReceiptState, OPERATOR};

/// The client keeps at most this many messages (the newest).
pub const KEEP: usize = 5000;

/// New or changed mail: remembered; mail for the operator that is new rings the bell.
pub fn on_mail(state: &mut State, mails: Vec<Mail>, fx: &mut Vec<Effect>) {
    let mut arrived = 0;
    for m in mails {
        let new = !state.mail.contains_key(&m.id);
        let recent = m.created_ms + 10_000 >= state.now_ms;
        if new
            && recent
            && m.receipt(OPERATOR).is_some_and(|r| r.state == ReceiptState::Delivered)
            && m.from != OPERATOR
        {
            arrived += 1;
        }
        state.mail.insert(m.id, m);
    }
    while state.mail.len() > KEEP {
        state.mail.pop_first();
    }
    if arrived > 0 && state.bell_on_waiting {
        fx.push(Effect::Bell);
    }
}

use ratatui_textarea::TextArea;

use super::state::{Compose, Confirmed, Dialog, WellTab};
use crate::config::keymap::Action;
use crate::key::Key;
use crate::protocol::Command;

/// One thread as the mail tab lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub id: i64,
    /// Its messages, oldest first.
    pub ids: Vec<i64>,
}

/// Whether `m` is to or from `name`.
fn involves(m: &Mail, name: &str) -> bool {
    m.from == name || m.receipt(name).is_some()
}

/// The threads shown: the crew's, or those of the selected agent; newest activity first.
pub fn threads(state: &State) -> Vec<Thread> {
    let agent = if state.mail_view.crew { None } else { state.selected_agent().map(|a| a.info.name.clone()) };
    let mut by_thread: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for m in state.mail.values() {
        if agent.as_deref().is_none_or(|a| involves(m, a)) {
            by_thread.entry(m.thread).or_default().push(m.id);
        }
    }
    let mut out: Vec<Thread> = by_thread.into_iter().map(|(id, ids)| Thread { id, ids }).collect();
    out.sort_by_key(|t| std::cmp::Reverse(t.ids.last().copied().unwrap_or(t.id)));
    out
}

pub fn selected_thread(state: &State) -> Option<Thread> {
    let all = threads(state);
    let i = state.mail_view.selected.min(all.len().saturating_sub(1));
    all.into_iter().nth(i)
}

/// What the operator has not read of a message: it reached their mailbox and was not opened.
pub fn unread(m: &Mail) -> bool {
    m.from != OPERATOR && m.receipt(OPERATOR).is_some_and(|r| r.state == ReceiptState::Delivered)
}

/// The copies of a thread's messages that could not be delivered.
pub fn dead_copies(state: &State, t: &Thread) -> Vec<(i64, String)> {
    t.ids
        .iter()
        .filter_map(|id| state.mail.get(id))
        .flat_map(|m| {
            m.receipts
                .iter()
                .filter(|r| matches!(r.state, ReceiptState::Dead | ReceiptState::Expired))
                .map(|r| (m.id, r.recipient.clone()))
        })
        .collect()
}

/// Open the agent's mail tab (`crew`: the crew's mailbox).
pub fn open(state: &mut State, crew: bool) {
    let switching = state.tab == WellTab::Mail && state.mail_view.crew != crew;
    state.tab = WellTab::Mail;
    state.well_open = true;
    state.mail_view.crew = crew;
    if switching || state.mail_view.selected >= threads(state).len() {
        state.mail_view.selected = 0;
        state.mail_view.open = false;
    }
}

fn compose(to: &str, reply_to: Option<i64>, body: &str, answering: Option<String>) -> Dialog {
    let mut to_area = TextArea::new(vec![to.to_string()]);
    to_area.move_cursor(ratatui_textarea::CursorMove::End);
    to_area.set_placeholder_text("agent names, comma-separated, or crew");
    let mut body_area = TextArea::new(body.lines().map(str::to_string).collect::<Vec<_>>());
    if body.is_empty() {
        body_area = TextArea::default();
    }
    body_area.move_cursor(ratatui_textarea::CursorMove::Bottom);
    body_area.move_cursor(ratatui_textarea::CursorMove::End);
    body_area.set_placeholder_text("the message");
    Dialog::Compose(Box::new(Compose {
        to: to_area,
        body: body_area,
        body_focus: !to.is_empty(),
        reply_to,
        urgent: false,
        answering,
        replaces: Vec::new(),
    }))
}

/// A reply to the thread's newest message that is not the operator's own (an agent's question first).
fn reply_to_thread(state: &mut State, t: &Thread) {
    let mails: Vec<&Mail> = t.ids.iter().filter_map(|id| state.mail.get(id)).collect();
    let target = mails
        .iter()
        .rev()
        .find(|m| m.open_question())
        .or_else(|| mails.iter().rev().find(|m| m.from != OPERATOR))
        .or(mails.last())
        .copied();
    let Some(m) = target else { return };
    let to = if m.from == OPERATOR { m.to.join(",") } else { m.from.clone() };
    let answering = m.open_question().then(|| m.summary().to_string());
    state.dialog = Some(compose(&to, Some(m.id), "", answering));
}

/// The selected agent's open question, or its newest mail to the operator: what `reply` answers from the roster.
pub fn reply_from_roster(state: &mut State) {
    let Some(name) = state.selected_agent().map(|a| a.info.name.clone()) else { return };
    let newest =
        |f: &dyn Fn(&Mail) -> bool| state.mail.values().rev().find(|m| m.from == name && f(m)).map(|m| m.thread);
    let thread = newest(&|m| m.open_question()).or_else(|| newest(&|m| m.receipt(OPERATOR).is_some()));
    match thread {
        Some(id) => {
            let ids = state.mail.values().filter(|m| m.thread == id).map(|m| m.id).collect();
            reply_to_thread(state, &Thread { id, ids });
        }
        None => state.dialog = Some(compose(&name, None, "", None)),
    }
}

/// Mark what an opened thread shows as read by the operator (each message once).
fn mark_seen(state: &mut State, t: &Thread, fx: &mut Vec<Effect>) {
    let ids: Vec<i64> = t
        .ids
        .iter()
        .filter(|id| state.mail.get(id).is_some_and(unread) && !state.mail_seen_sent.contains(id))
        .copied()
        .collect();
    if !ids.is_empty() {
        state.mail_seen_sent.extend(&ids);
        fx.push(Effect::Engine(Command::MailSeen { ids }));
    }
}

/// After every message: what the open thread shows is read; the engine knows which agent a steer is being
/// written to (mail waits for it meanwhile).
pub fn sync(state: &mut State, fx: &mut Vec<Effect>) {
    let looking = state.tab == WellTab::Mail && state.mail_view.open && state.well_open && !state.attached;
    if looking {
        if let Some(t) = selected_thread(state) {
            mark_seen(state, &t, fx);
        }
    }
    let composing = match &state.dialog {
        Some(Dialog::Steer { name, .. }) => Some(name.clone()),
        _ => None,
    };
    if composing != state.composing {
        state.composing = composing.clone();
        fx.push(Effect::Engine(Command::Composing { name: composing }));
    }
}

/// Keys of the mail tab and the crew's mailbox. What it does not handle goes to the roster (`false`).
pub fn on_action(state: &mut State, action: Action, fx: &mut Vec<Effect>) -> bool {
    let n = threads(state).len();
    let view = &mut state.mail_view;
    match action {
        Action::SelectNext => view.selected = (view.selected + 1).min(n.saturating_sub(1)),
        Action::SelectPrev => view.selected = view.selected.saturating_sub(1),
        Action::SelectFirst => view.selected = 0,
        Action::SelectLast => view.selected = n.saturating_sub(1),
        Action::OpenThread => {
            view.open = !view.open && n > 0;
        }
        Action::Compose => {
            let to = if view.crew {
                String::new()
            } else {
                state.selected_agent().map(|a| a.info.name.clone()).unwrap_or_default()
            };
            state.dialog = Some(compose(&to, None, "", None));
        }
        Action::Reply => match selected_thread(state) {
            Some(t) => reply_to_thread(state, &t),
            None => state.status = Some(("no thread to reply to".into(), true)),
        },
        Action::Forward => {
            let last = selected_thread(state).and_then(|t| t.ids.last().copied()).and_then(|id| state.mail.get(&id));
            if let Some(m) = last {
                let body = format!("Forwarded: #{} from {} to {}:\n{}", m.id, m.from, m.to.join(","), m.body);
                state.dialog = Some(compose("", None, &body, None));
            }
        }
        Action::RetryMail | Action::DropMail => {
            let copies = selected_thread(state).map(|t| dead_copies(state, &t)).unwrap_or_default();
            if copies.is_empty() {
                state.status = Some(("no dead letters in this thread".into(), false));
            } else if action == Action::RetryMail {
                state.status =
                    Some((format!("{} queued again", crate::text::counted(copies.len(), "dead letter")), false));
                fx.extend(
                    copies.into_iter().map(|(id, recipient)| Effect::Engine(Command::MailRetry { id, recipient })),
                );
            } else {
                let lines = copies.iter().map(|(id, r)| format!("  #{id} to {r}")).collect();
                state.dialog = Some(Dialog::Confirm {
                    title: "Drop these dead letters?".into(),
                    lines,
                    then: Confirmed::DropMail { copies },
                });
            }
        }
        Action::EditMail => {
            // The newest message of the thread with dead copies: its text again, to the ones it never reached.
            let copies = selected_thread(state).map(|t| dead_copies(state, &t)).unwrap_or_default();
            let Some(&(id, _)) = copies.iter().max_by_key(|(id, _)| *id) else {
                state.status = Some(("no dead letters in this thread".into(), false));
                return true;
            };
            let Some(m) = state.mail.get(&id).cloned() else { return true };
            let replaces: Vec<(i64, String)> = copies.into_iter().filter(|(i, _)| *i == id).collect();
            let to: Vec<String> = replaces.iter().map(|(_, r)| r.clone()).collect();
            let mut dialog = compose(&to.join(","), m.reply_to, &m.body, None);
            if let Dialog::Compose(c) = &mut dialog {
                c.urgent = m.urgent;
                c.replaces = replaces;
            }
            state.dialog = Some(dialog);
        }
        Action::Mailbox => open(state, !state.mail_view.crew),
        Action::Close => {
            state.tab = WellTab::Terminal;
            state.mail_view.crew = false;
            state.mail_view.open = false;
        }
        _ => return false,
    }
    true
}

/// Keys while writing mail.
pub fn on_compose_key(state: &mut State, key: Key, action: Option<Action>, fx: &mut Vec<Effect>) {
    let Some(Dialog::Compose(c)) = &mut state.dialog else { return };
    match action {
        Some(Action::Send) => {
            let to: Vec<String> =
                c.to.lines()
                    .join(",")
                    .split([',', ' '])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
            let body = c.body.lines().join("\n");
            if to.is_empty() {
                c.body_focus = false;
                state.status = Some(("who is it for? (To: agent names, or crew)".into(), true));
                return;
            }
            if body.trim().is_empty() {
                c.body_focus = true;
                return;
            }
            let (reply_to, urgent) = (c.reply_to, c.urgent);
            // An edited dead letter: the new text goes, the old copies are dropped.
            for (id, recipient) in std::mem::take(&mut c.replaces) {
                fx.push(Effect::Engine(Command::MailDrop { id, recipient }));
            }
            state.status = Some((format!("mail to {}", to.join(", ")), false));
            fx.push(Effect::Engine(Command::MailSend { to, body, reply_to, urgent }));
            state.dialog = None;
        }
        Some(Action::NextField) => c.body_focus = !c.body_focus,
        Some(Action::ToggleUrgent) => c.urgent = !c.urgent,
        Some(Action::Cancel) => state.dialog = None,
        _ if !c.body_focus && key.code == crate::key::KeyCode::Enter => c.body_focus = true,
        _ => {
            let input = super::editor_keys::to_textarea_input(key);
            if c.body_focus {
                c.body.input(input);
            } else {
                c.to.input(input);
            }
        }
    }
}

pub fn on_compose_paste(c: &mut Compose, text: &str) {
    let text = text.replace("\r\n", "\n");
    if c.body_focus {
        c.body.insert_str(text);
    } else {
        c.to.insert_str(text.replace('\n', ","));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::update::{update, Msg};
    use crate::config::keymap::Keymap;
    use crate::config::theme::{ColorMode, Theme};
    use crate::protocol::mail::{Mail, Receipt, ReceiptState as R};
    use crate::protocol::{AgentInfo, AgentState, Event};

    fn mail(id: i64, from: &str, to: &str, state: R, ask: bool) -> Mail {
        Mail {
            id,
            thread: id,
            reply_to: None,
            from: from.into(),
            to: vec![to.into()],
            body: format!("body {id}"),
            urgent: false,
            ask,
            created_ms: 1000,
            receipts: vec![Receipt { recipient: to.into(), state, detail: None, attempts: 0, at_ms: 1000 }],
        }
    }

    fn state() -> State {
        let mut s =
            State::new("r".into(), Keymap::builtin(), Theme::builtin("default", ColorMode::TrueColor), (120, 40));
        for n in ["api", "docs"] {
            s.agents.push(crate::app::AgentView {
                info: AgentInfo::new(n, "demo", AgentState::Idle),
                screen: None,
                checkpoints: Vec::new(),
                attention: false,
                unseen: false,
                in_turn: false,
            });
        }
        let mails = vec![mail(1, "operator", "api", R::Dead, false), mail(2, "docs", OPERATOR, R::Delivered, true)];
        update(&mut s, Msg::Engine(Event::Mail(mails)));
        s
    }

    fn keys(s: &mut State, keys: &[&str]) -> Vec<Command> {
        let mut out = Vec::new();
        for k in keys {
            for fx in update(s, Msg::Key(Key::parse(k).unwrap())) {
                if let Effect::Engine(c) = fx {
                    out.push(c);
                }
            }
        }
        out
    }

    #[test]
    fn a_question_is_answered_from_the_roster_as_a_reply() {
        let mut s = state();
        s.selected = 1;
        keys(&mut s, &["a"]);
        let Some(Dialog::Compose(c)) = &s.dialog else { panic!("no compose: {:?}", s.dialog) };
        assert_eq!((c.to.lines()[0].as_str(), c.reply_to, c.answering.as_deref()), ("docs", Some(2), Some("body 2")));
        let sent = keys(&mut s, &["y", "e", "s", "C-s"]);
        let expect =
            Command::MailSend { to: vec!["docs".into()], body: "yes".into(), reply_to: Some(2), urgent: false };
        assert!(sent.contains(&expect), "{sent:?}");
        assert!(s.dialog.is_none());
    }

    #[test]
    fn dead_letters_are_retried_edited_or_dropped_from_the_mailbox() {
        let mut s = state();
        keys(&mut s, &["I"]);
        assert_eq!(threads(&s).iter().map(|t| t.id).collect::<Vec<_>>(), [2, 1]);
        keys(&mut s, &["j"]);
        assert_eq!(keys(&mut s, &["R"]), [Command::MailRetry { id: 1, recipient: "api".into() }]);
        keys(&mut s, &["X"]);
        assert!(matches!(s.dialog, Some(Dialog::Confirm { .. })));
        assert_eq!(keys(&mut s, &["y"]), [Command::MailDrop { id: 1, recipient: "api".into() }]);
        keys(&mut s, &["e"]);
        let sent = keys(&mut s, &["!", "C-s"]);
        assert_eq!(
            sent,
            [
                Command::MailDrop { id: 1, recipient: "api".into() },
                Command::MailSend { to: vec!["api".into()], body: "body 1!".into(), reply_to: None, urgent: false }
            ]
        );
    }

    #[test]
    fn opening_a_thread_marks_it_read_once_and_new_mail_for_the_operator_rings() {
        let mut s = state();
        keys(&mut s, &["I"]);
        assert_eq!(keys(&mut s, &["enter"]), [Command::MailSeen { ids: vec![2] }]);
        assert!(keys(&mut s, &["j", "k"]).is_empty(), "told once");
        s.now_ms = 2000;
        let fx = update(&mut s, Msg::Engine(Event::Mail(vec![mail(3, "api", OPERATOR, R::Delivered, false)])));
        assert!(fx.iter().any(|f| matches!(f, Effect::Bell)));
    }
}
