//! `[[gate]]` in the crew file: a check run in an agent's worktree (after each turn, before a merge, or by hand).

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::ConfigError;

/// When a gate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum When {
    /// After every turn that changed files.
    #[default]
    Turn,
    /// Before the agent's branch is merged.
    Merge,
    /// Only when asked (`muster gate run`, the gates view).
    Manual,
}

/// How a gate's output names its failing tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Parse {
    #[default]
    Auto,
    Cargo,
    Pytest,
    Go,
    Jest,
    Tap,
    None,
}

/// One gate, as the crew file says it (with defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateSpec {
    pub name: String,
    /// A shell command (`sh -c`), run in the agent's worktree with its environment and ports.
    pub run: String,
    pub when: When,
    pub timeout_s: u64,
    /// Failed runs the agent is steered on before it is held for the operator.
    pub attempts: u32,
    /// How many of the output's last lines go back to the agent.
    pub feedback_lines: usize,
    pub parse: Parse,
}

pub const DEFAULT_TIMEOUT_S: u64 = 600;
pub const DEFAULT_ATTEMPTS: u32 = 4;
pub const DEFAULT_FEEDBACK_LINES: usize = 40;
/// Bounds on what the crew file may ask, so one gate cannot hold a slot for days or fill a message.
const MAX_TIMEOUT_S: u64 = 24 * 3600;
const MAX_ATTEMPTS: u32 = 100;
const MAX_FEEDBACK_LINES: usize = 400;
pub const MAX_GATES: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGate {
    name: Spanned<String>,
    run: Spanned<String>,
    #[serde(default)]
    when: When,
    timeout: Option<Spanned<u64>>,
    attempts: Option<Spanned<u32>>,
    feedback_lines: Option<Spanned<usize>>,
    #[serde(default)]
    parse: Parse,
}

/// The crew file's gates, checked: names unique and safe, bounds kept; an error names its place.
pub(super) fn gates(file: &std::path::Path, text: &str, raw: Vec<RawGate>) -> Result<Vec<GateSpec>, ConfigError> {
    let at = |offset: usize, m: String| ConfigError::at(file, text, offset, m);
    let mut out: Vec<GateSpec> = Vec::new();
    for g in raw {
        let (name, name_at) = (g.name.get_ref().clone(), g.name.span().start);
        let ok = !name.is_empty()
            && name.len() <= 32
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !ok {
            return Err(at(
                name_at,
                format!("key `name`: gate name `{name}`: use 1 to 32 letters, digits, `-`, `_`, `.`"),
            ));
        }
        if out.iter().any(|o| o.name == name) {
            return Err(at(name_at, format!("key `name`: duplicate gate name `{name}`")));
        }
        if g.run.get_ref().trim().is_empty() {
            return Err(at(g.run.span().start, "key `run`: a gate needs a command".into()));
        }
        let bounded = |v: Option<&Spanned<u64>>, key: &str, max: u64, default: u64| match v {
            Some(s) if *s.get_ref() == 0 || *s.get_ref() > max => {
                Err(at(s.span().start, format!("key `{key}`: between 1 and {max}")))
            }
            Some(s) => Ok(*s.get_ref()),
            None => Ok(default),
        };
        let timeout_s = bounded(g.timeout.as_ref(), "timeout", MAX_TIMEOUT_S, DEFAULT_TIMEOUT_S)?;
        let attempts = g.attempts.map(|s| Spanned::new(s.span(), u64::from(*s.get_ref())));
        let attempts = bounded(attempts.as_ref(), "attempts", u64::from(MAX_ATTEMPTS), u64::from(DEFAULT_ATTEMPTS))?;
        let lines = g.feedback_lines.map(|s| Spanned::new(s.span(), *s.get_ref() as u64));
        let lines =
            bounded(lines.as_ref(), "feedback_lines", MAX_FEEDBACK_LINES as u64, DEFAULT_FEEDBACK_LINES as u64)?;
        out.push(GateSpec {
            name,
            run: g.run.into_inner(),
            when: g.when,
            timeout_s,
            attempts: attempts as u32,
            feedback_lines: lines as usize,
            parse: g.parse,
        });
    }
    if out.len() > MAX_GATES {
        return Err(at(0, format!("at most {MAX_GATES} gates")));
    }
    Ok(out)
}
