//! The life of one copy of a message, as a pure function: which steps may follow which. The store applies these
//! inside one transaction per step, so a step happens once or not at all.

use crate::protocol::mail::{Receipt, ReceiptState};

/// Typed deliveries not confirmed this many times make a dead letter.
pub const MAX_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Wait for something outside (why).
    Hold(String),
    /// What it waited for happened: queued again.
    Release,
    /// Typed into the agent; confirmation pending.
    Attempt,
    /// Delivered, and how.
    Confirm(String),
    /// The typed attempt was not confirmed (why): queued again, or dead after `MAX_ATTEMPTS`.
    Unconfirmed(String),
    /// The recipient's turn that reads it started.
    Seen,
    /// Acknowledged (how: `ack`, or the reply's id).
    Ack(String),
    Expire,
    /// Cannot be delivered (why).
    Kill(String),
    /// The operator sends a dead or expired letter again.
    Retry,
    /// The operator gives up on it.
    Drop,
    /// Its sender sent a newer one in its place before it was delivered (why): a gate's newer failure.
    Replace(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} message cannot be {step}")]
pub struct Invalid {
    pub from: &'static str,
    pub step: &'static str,
}

impl Step {
    fn label(&self) -> &'static str {
        match self {
            Step::Hold(_) => "held",
            Step::Release => "released",
            Step::Attempt => "typed",
            Step::Confirm(_) => "confirmed",
            Step::Unconfirmed(_) => "unconfirmed",
            Step::Seen => "seen",
            Step::Ack(_) => "acked",
            Step::Expire => "expired",
            Step::Kill(_) => "killed",
            Step::Retry => "retried",
            Step::Drop => "dropped",
            Step::Replace(_) => "replaced",
        }
    }
}

/// The receipt after `step`, or why that step cannot happen now.
pub fn apply(r: &Receipt, step: &Step, now_ms: u64) -> Result<Receipt, Invalid> {
    use ReceiptState as S;
    let to = |state: S, detail: Option<String>, attempts: u32| Receipt {
        recipient: r.recipient.clone(),
        state,
        detail,
        attempts,
        at_ms: now_ms,
    };
    let next = match (r.state, step) {
        (S::Queued, Step::Hold(why)) => to(S::Held, Some(why.clone()), r.attempts),
        (S::Held, Step::Release) => to(S::Queued, None, r.attempts),
        (S::Queued, Step::Attempt) => to(S::Delivering, None, r.attempts),
        (S::Queued | S::Delivering, Step::Confirm(how)) => to(S::Delivered, Some(how.clone()), r.attempts),
        (S::Delivering, Step::Unconfirmed(why)) if r.attempts + 1 >= MAX_ATTEMPTS => {
            to(S::Dead, Some(format!("{why} ({} attempts)", r.attempts + 1)), r.attempts + 1)
        }
        (S::Delivering, Step::Unconfirmed(why)) => to(S::Queued, Some(why.clone()), r.attempts + 1),
        (S::Delivered, Step::Seen) => to(S::Seen, r.detail.clone(), r.attempts),
        (S::Delivered | S::Seen, Step::Ack(how)) => to(S::Acked, Some(how.clone()), r.attempts),
        (S::Queued | S::Held, Step::Expire) => to(S::Expired, Some("not delivered in time".into()), r.attempts),
        (S::Queued | S::Held | S::Delivering, Step::Kill(why)) => to(S::Dead, Some(why.clone()), r.attempts),
        (S::Dead | S::Expired, Step::Retry) => to(S::Queued, Some("retried by the operator".into()), 0),
        (S::Dead | S::Expired | S::Queued | S::Held, Step::Drop) => {
            to(S::Dropped, Some("dropped by the operator".into()), r.attempts)
        }
        (S::Queued | S::Held, Step::Replace(why)) => to(S::Dropped, Some(why.clone()), r.attempts),
        (from, step) => return Err(Invalid { from: from.label(), step: step.label() }),
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mail::ALL_STATES;
    use proptest::prelude::*;

    fn queued() -> Receipt {
        Receipt { recipient: "api".into(), state: ReceiptState::Queued, detail: None, attempts: 0, at_ms: 0 }
    }

    #[test]
    fn a_typed_delivery_is_confirmed_seen_and_acked() {
        let mut r = queued();
        for step in [Step::Attempt, Step::Confirm("typed".into()), Step::Seen, Step::Ack("ack".into())] {
            r = apply(&r, &step, 5).unwrap();
        }
        assert_eq!((r.state, r.detail.as_deref(), r.at_ms), (ReceiptState::Acked, Some("ack"), 5));
    }

    #[test]
    fn unconfirmed_attempts_end_as_a_dead_letter_that_can_be_retried() {
        let mut r = queued();
        for _ in 0..MAX_ATTEMPTS {
            r = apply(&r, &Step::Attempt, 1).unwrap();
            r = apply(&r, &Step::Unconfirmed("its turn did not start".into()), 1).unwrap();
        }
        assert_eq!(r.state, ReceiptState::Dead);
        assert!(r.detail.as_deref().unwrap().contains("3 attempts"), "{r:?}");
        let again = apply(&r, &Step::Retry, 2).unwrap();
        assert_eq!((again.state, again.attempts), (ReceiptState::Queued, 0));
        assert_eq!(apply(&r, &Step::Drop, 2).unwrap().state, ReceiptState::Dropped);
    }

    #[test]
    fn nothing_is_delivered_twice() {
        let r = apply(&queued(), &Step::Confirm("hook".into()), 1).unwrap();
        assert!(apply(&r, &Step::Confirm("typed".into()), 1).is_err());
        assert!(apply(&r, &Step::Attempt, 1).is_err());
        let err = apply(&r, &Step::Retry, 1).unwrap_err();
        assert_eq!(err.to_string(), "a delivered message cannot be retried");
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::Hold("stopped".into())),
            Just(Step::Release),
            Just(Step::Attempt),
            Just(Step::Confirm("typed".into())),
            Just(Step::Unconfirmed("no turn".into())),
            Just(Step::Seen),
            Just(Step::Ack("ack".into())),
            Just(Step::Expire),
            Just(Step::Kill("removed".into())),
            Just(Step::Retry),
            Just(Step::Drop),
            Just(Step::Replace("a newer failure".into())),
        ]
    }

    proptest! {
        /// Whatever happens, a copy is delivered at most once, goes only forward once delivered, and acked
        /// and dropped are final.
        #[test]
        fn random_steps_keep_the_rules(steps in proptest::collection::vec(step(), 0..60)) {
            let mut r = queued();
            let mut deliveries = 0;
            for s in &steps {
                let before = r.state;
                match apply(&r, s, 1) {
                    Ok(next) => {
                        if next.state == ReceiptState::Delivered {
                            deliveries += 1;
                        }
                        if before.reached() {
                            prop_assert!(next.state.at_least(before), "{before:?} -> {:?}", next.state);
                        }
                        prop_assert!(!matches!(before, ReceiptState::Acked | ReceiptState::Dropped));
                        prop_assert!(next.attempts <= MAX_ATTEMPTS);
                        r = next;
                    }
                    Err(_) => prop_assert!(ALL_STATES.contains(&before)),
                }
            }
            // Retries bring back only letters that never arrived: one delivery per copy, ever.
            prop_assert!(deliveries <= 1);
        }
    }
}
