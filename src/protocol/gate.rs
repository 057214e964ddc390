//! Gates (issue #28): the crew's checks, run after an agent's turn on the checkpoint that ended it. What crosses
//! the boundary: a run and its outcome, an agent's gate mark in the roster, and the script API's gate requests.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a gate run ended. Only `Fail` is the agent's: `Error` is the check's own trouble (not found, timeout,
/// killed) and never counts as an attempt; `Stale` ran on a tree the agent has moved on from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GateOutcome {
    Pass,
    Fail,
    Error,
    Stale,
}

impl GateOutcome {
    pub fn label(self) -> &'static str {
        match self {
            GateOutcome::Pass => "pass",
            GateOutcome::Fail => "fail",
            GateOutcome::Error => "error",
            GateOutcome::Stale => "stale",
        }
    }

    pub fn parse(s: &str) -> Option<GateOutcome> {
        [GateOutcome::Pass, GateOutcome::Fail, GateOutcome::Error, GateOutcome::Stale]
            .into_iter()
            .find(|o| o.label() == s)
    }
}

/// One run of one gate for one agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GateRun {
    pub id: i64,
    pub agent: String,
    pub gate: String,
    /// The checkpoint (commit id) whose tree it checked; empty for a run asked by hand on the live worktree.
    pub checkpoint: String,
    /// The checkpoint's number in the agent's timeline (0: none).
    #[serde(default)]
    pub checkpoint_n: u32,
    /// None while it runs.
    pub outcome: Option<GateOutcome>,
    /// Its exit code, when it exited.
    pub exit: Option<i32>,
    /// In words: `exit 1`, `command not found (exit 127)`, `timed out after 600 s`, `killed by signal 9`.
    pub why: String,
    /// Which attempt of the agent's this run was (1-based; 0 when it was not one: a pass, an error).
    pub attempt: u32,
    pub attempts: u32,
    /// The failing tests its output names, when it could be read (cargo, pytest, go, jest, TAP).
    #[serde(default)]
    pub failed: Vec<String>,
    /// The last lines of its output (`feedback_lines` of the gate).
    #[serde(default)]
    pub tail: String,
    pub started_ms: u64,
    /// 0 while it runs.
    pub took_ms: u64,
}

/// The roster's word on an agent's gates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GateMark {
    /// No gate has run on this agent's work.
    #[default]
    None,
    /// A gate runs (or waits for its turn) on its latest checkpoint.
    Running,
    /// Every gate passed on its latest checkpoint.
    Green { checkpoint_n: u32 },
    /// A gate failed: attempt `attempt` of `of`.
    Red { gate: String, attempt: u32, of: u32 },
    /// A gate could not run (the check's fault, not the agent's).
    Error { gate: String },
}

impl GateMark {
    /// The roster's cell: `✓`, `…`, `✗2/4 test`, `!`.
    pub fn cell(&self) -> String {
        match self {
            GateMark::None => String::new(),
            GateMark::Running => "…".into(),
            GateMark::Green { .. } => "✓".into(),
            GateMark::Red { gate, attempt, of } => format!("✗{attempt}/{of} {gate}"),
            GateMark::Error { gate } => format!("! {gate}"),
        }
    }
}

/// The gate requests of the script API (`muster gate …`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum GateOp {
    /// Run an agent's gates (or one of them) now on its worktree as it is, as a turn's end would.
    Run {
        agent: String,
        #[serde(default)]
        gate: Option<String>,
    },
    /// The latest runs (of one agent, when named), newest first.
    Status {
        #[serde(default)]
        agent: Option<String>,
        #[serde(default)]
        limit: Option<usize>,
    },
    /// One run's whole output (capped as it was kept).
    Log { id: i64 },
    /// Give an agent held by its gate one more attempt (its failure is sent now).
    Grant {
        agent: String,
        #[serde(default)]
        gate: Option<String>,
    },
    /// Stop steering an agent on its gates' failures (they still run and show); `resume` undoes it.
    Stop {
        agent: String,
        #[serde(default)]
        resume: bool,
    },
    /// End the agent's running gates, with every process they started.
    Cancel { agent: String },
}

/// What a gate request is answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GateAnswer {
    /// `run`: the runs queued (their ids).
    Queued {
        runs: Vec<i64>,
    },
    Runs {
        runs: Vec<GateRun>,
    },
    Log {
        run: GateRun,
        log: String,
    },
    Done {
        message: String,
    },
}

/// The most of a run's output a steer carries (a mail is at most `mail::MAX_BODY`).
const MAX_TAIL: usize = 32 << 10;

/// The steer a failed run sends its agent: which gate, on which checkpoint, which attempt, the failing tests, the
/// output's tail, and what to do.
pub fn steer_text(run: &GateRun) -> String {
    let on = if run.checkpoint_n > 0 { format!("checkpoint {}", run.checkpoint_n) } else { "your worktree".into() };
    let mut s =
        format!("The gate `{}` failed on {on} ({}), attempt {} of {}.", run.gate, run.why, run.attempt, run.attempts);
    if !run.failed.is_empty() {
        let names: Vec<&str> = run.failed.iter().take(20).map(String::as_str).collect();
        s.push_str(&format!("\nFailing: {}", names.join(", ")));
        if run.failed.len() > names.len() {
            s.push_str(&format!(" and {} more", run.failed.len() - names.len()));
        }
    }
    if !run.tail.trim().is_empty() {
        // Its end, within what one mail carries (`feedback_lines` long lines could pass it).
        let tail = run.tail.trim_end();
        let from = tail.ceil_char_boundary(tail.len().saturating_sub(MAX_TAIL));
        s.push_str("\nThe end of its output:\n");
        s.push_str(&tail[from..]);
    }
    s.push_str(
        "\nFix the cause; do not skip or weaken tests. When you end your turn with changed files, muster runs the gate again.",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_read_as_the_roster_shows_them() {
        assert_eq!(GateMark::Red { gate: "test".into(), attempt: 2, of: 4 }.cell(), "✗2/4 test");
        assert_eq!(GateMark::Green { checkpoint_n: 3 }.cell(), "✓");
        assert_eq!(GateMark::None.cell(), "");
        for o in [GateOutcome::Pass, GateOutcome::Fail, GateOutcome::Error, GateOutcome::Stale] {
            assert_eq!(GateOutcome::parse(o.label()), Some(o));
        }
    }

    #[test]
    fn a_steer_names_gate_checkpoint_attempt_tests_and_tail() {
        let run = GateRun {
            id: 1,
            agent: "api".into(),
            gate: "test".into(),
            checkpoint: "abc".into(),
            checkpoint_n: 7,
            outcome: Some(GateOutcome::Fail),
            exit: Some(101),
            why: "exit 101".into(),
            attempt: 2,
            attempts: 4,
            failed: vec!["greet::works".into()],
            tail: "thread panicked\n".into(),
            started_ms: 0,
            took_ms: 10,
        };
        let text = steer_text(&run);
        for part in ["`test`", "checkpoint 7", "attempt 2 of 4", "greet::works", "thread panicked", "do not skip"] {
            assert!(text.contains(part), "{part}: {text}");
        }
        // The longest tail a gate may ask for still fits in one mail, its end kept.
        let long =
            GateRun { tail: format!("{}THE END\n", "é".repeat(100_000)), failed: vec!["x".repeat(400); 30], ..run };
        let text = steer_text(&long);
        assert!(super::super::mail::check_body(&text).is_ok() && text.contains("THE END"), "{}", text.len());
    }
}
