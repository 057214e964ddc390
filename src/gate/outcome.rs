//! What a gate's process ended as, decided from how it ended, never from what it printed: only a check that ran
//! and said no is the agent's failure.

use crate::protocol::gate::GateOutcome;

/// How the gate's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signalled(i32),
    TimedOut {
        after_s: u64,
    },
    Cancelled,
    /// It could not be started at all.
    NotStarted(String),
}

/// The outcome and its reason in words.
pub fn classify(ended: &Ended) -> (GateOutcome, String) {
    match ended {
        Ended::Exited(0) => (GateOutcome::Pass, "exit 0".into()),
        // The shell's own codes: the command is missing or cannot run — the check is broken, not the work.
        Ended::Exited(126) => (GateOutcome::Error, "not executable (exit 126)".into()),
        Ended::Exited(127) => (GateOutcome::Error, "command not found (exit 127)".into()),
        Ended::Exited(n) => (GateOutcome::Fail, format!("exit {n}")),
        Ended::Signalled(9) => (GateOutcome::Error, "killed by signal 9 (out of memory?)".into()),
        Ended::Signalled(n) => (GateOutcome::Error, format!("killed by signal {n}")),
        Ended::TimedOut { after_s } => (GateOutcome::Error, format!("timed out after {after_s} s")),
        Ended::Cancelled => (GateOutcome::Error, "cancelled".into()),
        Ended::NotStarted(e) => (GateOutcome::Error, format!("could not start: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_check_that_ran_and_said_no_is_a_failure() {
        let o = |e: Ended| classify(&e).0;
        assert_eq!(o(Ended::Exited(0)), GateOutcome::Pass);
        for n in [1, 2, 101, 255] {
            assert_eq!(o(Ended::Exited(n)), GateOutcome::Fail, "{n}");
        }
        for e in [
            Ended::Exited(126),
            Ended::Exited(127),
            Ended::Signalled(9),
            Ended::Signalled(15),
            Ended::TimedOut { after_s: 5 },
            Ended::Cancelled,
            Ended::NotStarted("no sh".into()),
        ] {
            assert_eq!(o(e.clone()), GateOutcome::Error, "{e:?}");
        }
        assert_eq!(classify(&Ended::Exited(127)).1, "command not found (exit 127)");
    }
}
