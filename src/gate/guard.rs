//! The loop that steers an agent until its gate passes, and the guard that stops it: every failure is handed
//! back at most `attempts` times (more if the operator grants them); a turn after a steer that changed nothing
//! is neither run nor steered again, and two of them hold the agent for the operator as spent attempts do.

use serde::{Deserialize, Serialize};

use crate::protocol::gate::GateOutcome;

/// Turns without a change after a steer that hold the agent.
pub const IDLE_TURNS: u32 = 2;

/// One agent's loop on one gate; what survives a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loop {
    /// Failures handed back to the agent since the gate last passed.
    pub steers: u32,
    /// Attempts the operator added.
    pub granted: u32,
    /// Turns since the last steer that changed no file.
    pub idle_turns: u32,
    /// The operator stopped the loop: failures show, nobody is steered.
    pub stopped: bool,
    /// A steer is out and its agent has not yet ended a turn with changed files.
    pub steered: bool,
    /// Why the agent waits for the operator, while it does.
    pub held: Option<String>,
    /// The mail of the last steer (replaced by a newer failure while it is not delivered yet).
    #[serde(default)]
    pub mail: Option<i64>,
}

/// What the engine does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Hand the failure back: attempt `attempt` of `of`.
    Steer {
        attempt: u32,
        of: u32,
    },
    /// Hold the agent for the operator (with the bell).
    Hold {
        reason: String,
    },
    /// It passed: the loop is over.
    Passed,
}

impl Loop {
    fn allowed(&self, attempts: u32) -> u32 {
        attempts.saturating_add(self.granted)
    }

    /// A run of `gate` (with `attempts`) ended as `outcome` on the agent's latest work; `undelivered`: the last
    /// steer has not reached the agent yet (its newer failure replaces it, as the same attempt).
    pub fn on_outcome(&mut self, gate: &str, attempts: u32, outcome: GateOutcome, undelivered: bool) -> Action {
        match outcome {
            GateOutcome::Pass => {
                let (stopped, mail) = (self.stopped, self.mail);
                *self = Loop { stopped, mail, ..Loop::default() };
                Action::Passed
            }
            // The check's own trouble, or a tree the agent moved on from: not the agent's attempt.
            GateOutcome::Error | GateOutcome::Stale => Action::Nothing,
            GateOutcome::Fail if self.stopped => Action::Nothing,
            GateOutcome::Fail if undelivered && self.steered && self.steers > 0 => {
                Action::Steer { attempt: self.steers, of: self.allowed(attempts) }
            }
            GateOutcome::Fail => {
                self.steered = false;
                self.idle_turns = 0;
                if self.steers < self.allowed(attempts) {
                    self.steers += 1;
                    self.steered = true;
                    self.held = None;
                    Action::Steer { attempt: self.steers, of: self.allowed(attempts) }
                } else {
                    let reason = format!("gate {gate} failed {}/{}", self.steers, self.allowed(attempts));
                    self.held = Some(reason.clone());
                    Action::Hold { reason }
                }
            }
        }
    }

    /// The agent ended a turn without changing a file: after a steer, that is no progress.
    pub fn on_unchanged_turn(&mut self, gate: &str) -> Action {
        if !self.steered || self.stopped {
            return Action::Nothing;
        }
        self.idle_turns += 1;
        if self.idle_turns < IDLE_TURNS {
            return Action::Nothing;
        }
        self.steered = false;
        let reason = format!("gate {gate}: no file changed in {} turns after its failure was sent", self.idle_turns);
        self.held = Some(reason.clone());
        Action::Hold { reason }
    }

    /// The operator grants one more attempt: the failure is handed back now (attempt n of the new total).
    pub fn grant(&mut self, attempts: u32) -> Action {
        self.granted += 1;
        self.held = None;
        self.idle_turns = 0;
        if self.stopped {
            return Action::Nothing;
        }
        self.steers += 1;
        self.steered = true;
        Action::Steer { attempt: self.steers, of: self.allowed(attempts) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn four_attempts_are_four_steers_then_a_hold() {
        let mut l = Loop::default();
        let mut steers = 0;
        for _ in 0..4 {
            match l.on_outcome("test", 4, GateOutcome::Fail, false) {
                Action::Steer { attempt, of } => {
                    steers += 1;
                    assert_eq!((attempt, of), (steers, 4));
                }
                a => panic!("{a:?}"),
            }
        }
        assert_eq!(
            l.on_outcome("test", 4, GateOutcome::Fail, false),
            Action::Hold { reason: "gate test failed 4/4".into() }
        );
        assert_eq!(l.held.as_deref(), Some("gate test failed 4/4"));
        // Granted one more: sent at once.
        assert_eq!(l.grant(4), Action::Steer { attempt: 5, of: 5 });
        assert_eq!(l.held, None);
        assert_eq!(l.on_outcome("test", 4, GateOutcome::Pass, false), Action::Passed);
        assert_eq!(l, Loop::default());
    }

    #[test]
    fn a_newer_failure_replaces_a_steer_not_yet_delivered_as_the_same_attempt() {
        let mut l = Loop::default();
        assert_eq!(l.on_outcome("t", 3, GateOutcome::Fail, false), Action::Steer { attempt: 1, of: 3 });
        assert_eq!(l.on_outcome("t", 3, GateOutcome::Fail, true), Action::Steer { attempt: 1, of: 3 });
        assert_eq!(l.steers, 1);
        assert_eq!(l.on_outcome("t", 3, GateOutcome::Fail, false), Action::Steer { attempt: 2, of: 3 });
    }

    #[test]
    fn errors_and_stale_runs_are_no_attempt() {
        let mut l = Loop::default();
        for o in [GateOutcome::Error, GateOutcome::Stale, GateOutcome::Error] {
            assert_eq!(l.on_outcome("t", 1, o, false), Action::Nothing);
        }
        assert_eq!(l.on_outcome("t", 1, GateOutcome::Fail, false), Action::Steer { attempt: 1, of: 1 });
    }

    #[test]
    fn two_turns_without_a_change_after_a_steer_hold() {
        let mut l = Loop::default();
        assert_eq!(l.on_unchanged_turn("t"), Action::Nothing, "no steer out: nothing to guard");
        l.on_outcome("t", 4, GateOutcome::Fail, false);
        assert_eq!(l.on_unchanged_turn("t"), Action::Nothing);
        assert!(matches!(l.on_unchanged_turn("t"), Action::Hold { reason } if reason.contains("2 turns")));
        assert_eq!(l.on_unchanged_turn("t"), Action::Nothing, "held once, not again and again");
    }

    #[test]
    fn a_stopped_loop_steers_nobody() {
        let mut l = Loop { stopped: true, ..Loop::default() };
        assert_eq!(l.on_outcome("t", 4, GateOutcome::Fail, false), Action::Nothing);
        assert_eq!(l.on_outcome("t", 4, GateOutcome::Pass, false), Action::Passed);
        assert!(l.stopped, "a pass does not restart a loop the operator stopped");
    }

    proptest! {
        /// Whatever happens, steers never pass the attempts allowed, and a steer is only ever for a failure.
        #[test]
        fn steers_never_pass_the_attempts(events in proptest::collection::vec(0u8..5, 0..60), attempts in 1u32..6) {
            let mut l = Loop::default();
            let mut since_pass = 0;
            for e in events {
                let action = match e {
                    0 => l.on_outcome("t", attempts, GateOutcome::Fail, false),
                    1 => l.on_outcome("t", attempts, GateOutcome::Pass, false),
                    2 => l.on_outcome("t", attempts, GateOutcome::Error, false),
                    3 => l.on_unchanged_turn("t"),
                    _ => l.grant(attempts),
                };
                if action == Action::Passed { since_pass = 0; }
                if let Action::Steer { .. } = action { since_pass += 1; }
                prop_assert!(since_pass <= attempts + l.granted);
                prop_assert!(l.steers <= attempts + l.granted);
            }
        }
    }
}
