//! The mailbox requests of `muster mail …`, carried out on a store for one sender: the engine runs them (and
//! then delivers), and without a server the command runs them on the database itself.

use super::receipt::Step;
use super::store::{MailError, NewMail, Store};
use crate::protocol::mail::{Mail, MailAnswer, MailOp, ReceiptState, OPERATOR};

/// What a request changed: these messages (to send to clients) and these recipients (to deliver to).
#[derive(Debug, Default)]
pub struct Changed {
    pub mails: Vec<i64>,
    pub recipients: Vec<String>,
}

/// Carry out `op` for `who` (an agent's name, or `operator`); `crew` is every agent's name. `Wait` and `Take`
/// are the caller's (they need the engine); here they are errors.
pub fn run(store: &mut Store, who: &str, op: MailOp, crew: &[String], now_ms: u64) -> (MailAnswer, Changed) {
    let mut changed = Changed::default();
    let answer = match run_inner(store, who, op, crew, now_ms, &mut changed) {
        Ok(a) => a,
        Err(error) => MailAnswer::Error { error },
    };
    (answer, changed)
}

fn run_inner(
    store: &mut Store,
    who: &str,
    op: MailOp,
    crew: &[String],
    now_ms: u64,
    changed: &mut Changed,
) -> Result<MailAnswer, String> {
    let e = |e: MailError| e.to_string();
    match op {
        MailOp::Send { to, body, reply_to, urgent, ask, expires } => {
            let to = if ask { vec![OPERATOR.to_string()] } else { to };
            let recipients = super::recipients(&to, who, crew)?;
            let expires_ms = match expires {
                Some(s) => Some(now_ms + super::seconds(s).ok_or("--expires takes seconds")?.as_millis() as u64),
                None => None,
            };
            let new = NewMail { from: who.into(), to, recipients, body, urgent, ask, reply_to, expires_ms };
            let mail = store.send(&new, now_ms).map_err(e)?;
            changed.mails.push(mail.id);
            changed.mails.extend(reply_to);
            changed.recipients = mail.receipts.iter().map(|r| r.recipient.clone()).collect();
            changed.recipients.push(who.to_string());
            Ok(MailAnswer::Sent { mail })
        }
        MailOp::Inbox { unread, limit } => {
            Ok(MailAnswer::Mails { mails: store.inbox(who, unread, limit.unwrap_or(100)).map_err(e)? })
        }
        MailOp::Read { id } => {
            let mail = readable(store, who, id)?;
            // Reading it is taking it: it is not typed in again.
            let steps: Vec<Step> = match mail.receipt(who).map(|r| r.state) {
                Some(ReceiptState::Queued) => vec![Step::Confirm("read with muster mail read".into()), Step::Seen],
                Some(ReceiptState::Delivered) => vec![Step::Seen],
                _ => vec![],
            };
            for s in steps {
                store.apply(id, who, &s, now_ms).map_err(e)?;
                changed.mails = vec![id];
                changed.recipients = vec![who.to_string()];
            }
            with_history(store, id)
        }
        MailOp::Ack { id } => {
            let mail = readable(store, who, id)?;
            let state = mail.receipt(who).map(|r| r.state).ok_or(format!("message #{id} was not sent to {who}"))?;
            if state == ReceiptState::Acked {
                return with_history(store, id);
            }
            if state.pending() {
                store.apply(id, who, &Step::Confirm("read with muster mail ack".into()), now_ms).map_err(e)?;
            }
            store.apply(id, who, &Step::Ack("ack".into()), now_ms).map_err(e)?;
            changed.mails = vec![id];
            changed.recipients = vec![who.to_string(), mail.from.clone()];
            with_history(store, id)
        }
        MailOp::Status { id } => {
            readable(store, who, id)?;
            with_history(store, id)
        }
        MailOp::Retry { id, recipient } => operator_step(store, who, id, &recipient, Step::Retry, now_ms, changed),
        MailOp::Drop { id, recipient } => operator_step(store, who, id, &recipient, Step::Drop, now_ms, changed),
        MailOp::Wait { .. } | MailOp::Take { .. } => Err("this needs the muster server (none runs here)".into()),
    }
}

/// Dead letters are the operator's to retry or drop (and the sender's).
fn operator_step(
    store: &mut Store,
    who: &str,
    id: i64,
    recipient: &str,
    step: Step,
    now_ms: u64,
    changed: &mut Changed,
) -> Result<MailAnswer, String> {
    let mail = store.get(id).map_err(|e| e.to_string())?.ok_or(format!("no message #{id}"))?;
    if who != OPERATOR && who != mail.from {
        return Err(format!("message #{id} is not yours to retry or drop"));
    }
    store.apply(id, recipient, &step, now_ms).map_err(|e| e.to_string())?;
    changed.mails = vec![id];
    changed.recipients = vec![recipient.to_string(), mail.from];
    with_history(store, id)
}

/// A message `who` may read: one it sent or was sent (the operator reads everything).
fn readable(store: &Store, who: &str, id: i64) -> Result<Mail, String> {
    let mail = store.get(id).map_err(|e| e.to_string())?.ok_or(format!("no message #{id}"))?;
    if who == OPERATOR || mail.from == who || mail.receipt(who).is_some() {
        Ok(mail)
    } else {
        Err(format!("message #{id} is neither from nor to {who}"))
    }
}

fn with_history(store: &Store, id: i64) -> Result<MailAnswer, String> {
    let mail = store.get(id).map_err(|e| e.to_string())?.ok_or(format!("no message #{id}"))?;
    let history = store
        .history(id)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|h| (h.recipient, h.state, h.detail, h.at_ms))
        .collect();
    Ok(MailAnswer::Mail { mail, history })
}

/// Whether a `wait` is settled: every copy reached `until`, or one cannot any more.
pub fn wait_settled(mail: &Mail, until: ReceiptState) -> Option<bool> {
    if mail.receipts.iter().all(|r| r.state.at_least(until)) {
        return Some(true);
    }
    mail.receipts.iter().any(|r| r.state.failed()).then_some(false)
}
