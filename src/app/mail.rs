//! The mailbox in the workbench: mail as it arrives, the mailbox view, compose, reply, retry and drop.

use super::state::State;
use super::update::Effect;
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
