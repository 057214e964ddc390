//! What a lead agent (or any script) asks of the crew beyond steering: spawn a child, read an agent's output,
//! set and get a structured result, follow the crew's event log. `protocol::script` carries them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::gate::GateMark;
use super::AgentState;

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WaitFor {
    Idle,
    Waiting,
    /// Its run ended.
    Exited,
    /// Idle, waiting or exited: anything but working.
    Any,
    /// Every gate passed on its latest checkpoint.
    Green,
    /// A gate failed on its latest work, or could not run.
    #[serde(rename = "gate-failed")]
    GateFailed,
    /// At its prompt with a result set (`muster result set`) since its last turn.
    Done,
}

impl WaitFor {
    pub fn matches(self, s: AgentState, gate: &GateMark) -> bool {
        match self {
            WaitFor::Idle => s == AgentState::Idle,
            WaitFor::Waiting => s == AgentState::Waiting,
            WaitFor::Exited => !s.is_running(),
            WaitFor::Any => matches!(s, AgentState::Idle | AgentState::Waiting) || !s.is_running(),
            WaitFor::Green => matches!(gate, GateMark::Green { .. }),
            WaitFor::GateFailed => matches!(gate, GateMark::Red { .. } | GateMark::Error { .. }),
            // Read from the agent's info: `matches_info`.
            WaitFor::Done => false,
        }
    }

    /// Whether an agent is in the state asked.
    pub fn matches_info(self, info: &super::AgentInfo) -> bool {
        match self {
            WaitFor::Done => info.is_done(),
            other => other.matches(info.state, &info.gate),
        }
    }
}

/// `spawn`: a new agent, with everything an operator's agent has, recorded with its parent (the asking agent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spawn {
    pub name: String,
    /// A CLI (`claude`, `demo`…) or a `[[role]]` of the crew file; one of them.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    /// Its kickoff prompt.
    #[serde(default)]
    pub prompt: Option<String>,
    /// The branch it starts from, or the agent whose branch it starts from (`from`); neither: the crew's base.
    #[serde(default)]
    pub base: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    /// The files it may change (globs).
    #[serde(default)]
    pub owns: Option<Vec<String>>,
    /// Answered once it is at its prompt with its kickoff delivered, or later: once it is idle, green or done.
    #[serde(default)]
    pub wait: Option<WaitFor>,
    /// Seconds; unset: its CLI's boot timeout and a minute for the kickoff.
    #[serde(default)]
    pub timeout: Option<f64>,
}

/// What `read` returns of an agent's terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadWhat {
    /// The last N lines of its history and screen.
    Lines { n: usize },
    /// What its last turn printed (from the row where it began).
    Turn {},
    /// Its visible screen.
    Screen {},
}

/// How a result says the work went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    #[default]
    Done,
    Blocked,
    Failed,
}

impl ResultStatus {
    pub fn word(self) -> &'static str {
        match self {
            ResultStatus::Done => "done",
            ResultStatus::Blocked => "blocked",
            ResultStatus::Failed => "failed",
        }
    }
}

/// A file the work delivered: its path in the agent's worktree, and its SHA-256 (muster computes it; one given
/// must match).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deliverable {
    pub path: String,
    #[serde(default)]
    pub sha256: Option<String>,
}

/// An agent's structured result (`muster result set`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentResult {
    pub summary: String,
    #[serde(default)]
    pub status: ResultStatus,
    #[serde(default)]
    pub deliverables: Vec<Deliverable>,
    #[serde(default)]
    pub gaps: Vec<String>,
    #[serde(default)]
    pub blockers: Vec<String>,
    #[serde(default)]
    pub risks: Vec<String>,
}

/// The largest result, as JSON.
pub const MAX_RESULT: usize = 64 * 1024;

impl AgentResult {
    /// Why it cannot be taken: no summary, too big, a path that leaves the worktree.
    pub fn check(&self) -> Result<(), String> {
        if self.summary.trim().is_empty() {
            return Err("a result needs a summary".into());
        }
        if serde_json::to_string(self).map_or(usize::MAX, |t| t.len()) > MAX_RESULT {
            return Err(format!("a result is at most {} KiB", MAX_RESULT / 1024));
        }
        if self.deliverables.len() > 200 {
            return Err("at most 200 deliverables".into());
        }
        for d in &self.deliverables {
            let p = std::path::Path::new(&d.path);
            let inside = !d.path.is_empty()
                && p.is_relative()
                && p.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
            if !inside {
                return Err(format!("deliverable `{}`: a path inside the agent's worktree", cut(&d.path, 100)));
            }
        }
        Ok(())
    }
}

impl StoredResult {
    pub fn mark(&self, current: bool) -> ResultMark {
        ResultMark {
            attempt: self.attempt,
            status: self.result.status,
            summary: cut(self.result.summary.lines().next().unwrap_or_default(), 200),
            current,
        }
    }
}

/// A result as kept: whose, which attempt (1, 2, … never rewritten), when, and the checkpoint it names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoredResult {
    pub agent: String,
    pub attempt: u32,
    pub at_ms: u64,
    /// The agent's newest checkpoint when it set it (0: none yet).
    pub checkpoint: u32,
    pub result: AgentResult,
}

/// What the roster shows of an agent's latest result; `current` until it starts another turn.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResultMark {
    pub attempt: u32,
    pub status: ResultStatus,
    pub summary: String,
    pub current: bool,
}

/// `result`: set one's own, or get an agent's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum ResultOp {
    Set { result: AgentResult },
    Get { agent: String },
}

/// The kinds of the crew's event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// An agent's state (with pending and done).
    State,
    /// A gate's verdict on an agent's work.
    Gate,
    /// The watchdog found something.
    Finding,
    /// Mail sent, delivered, answered.
    Mail,
    /// An agent set a result.
    Result,
    /// An agent spawned another.
    Spawn,
}

/// One line of the crew's event log: numbered from 1 without gaps, kept in `.muster/events.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CrewEvent {
    pub seq: u64,
    pub at_ms: u64,
    pub kind: EventKind,
    #[serde(default)]
    pub agent: Option<String>,
    /// What happened, in words.
    pub text: String,
}

/// `s` cut to `n` characters.
pub fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_has_a_summary_and_deliverables_inside_the_worktree() {
        let ok = AgentResult { summary: "done".into(), ..Default::default() };
        assert!(ok.check().is_ok());
        assert!(AgentResult::default().check().is_err());
        for bad in ["../x", "/etc/passwd", "", "a/../../b"] {
            let r = AgentResult {
                summary: "s".into(),
                deliverables: vec![Deliverable { path: bad.into(), sha256: None }],
                ..Default::default()
            };
            assert!(r.check().is_err(), "{bad}");
        }
        let big = AgentResult { summary: "x".repeat(MAX_RESULT), ..Default::default() };
        assert!(big.check().unwrap_err().contains("KiB"));
    }
}
