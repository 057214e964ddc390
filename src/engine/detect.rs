//! Agent state detection in layers: the agent's own hooks, then the preset's screen rules, then output
//! activity with a debounce.

use std::time::{Duration, Instant};

use regex::Regex;

use super::AgentState;

/// Output within this long counts as busy when no rule or hook says otherwise.
pub const ACTIVITY_DEBOUNCE: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    All,
    /// The last N non-empty rows.
    Bottom(usize),
    Top(usize),
    Title,
}

impl Region {
    pub fn parse(s: &str) -> Option<Region> {
        let n = |v: &str| v.parse::<usize>().ok().filter(|n| *n > 0);
        match s.split_once(':') {
            None if s == "all" => Some(Region::All),
            None if s == "title" => Some(Region::Title),
            Some(("bottom", v)) => n(v).map(Region::Bottom),
            Some(("top", v)) => n(v).map(Region::Top),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub state: AgentState,
    pub regex: Regex,
    pub region: Region,
    pub priority: i32,
}

/// The text a rule looks at.
fn region_text(region: Region, lines: &[String], title: Option<&str>) -> String {
    let non_empty: Vec<&String> = lines.iter().filter(|l| !l.trim().is_empty()).collect();
    match region {
        Region::All => lines.join("\n"),
        Region::Title => title.unwrap_or("").to_string(),
        Region::Top(n) => lines.iter().take(n).cloned().collect::<Vec<_>>().join("\n"),
        Region::Bottom(n) => {
            let start = non_empty.len().saturating_sub(n);
            non_empty[start..].iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
        }
    }
}

/// The first matching rule's state (rules are sorted by priority, highest first).
pub fn match_rules(rules: &[Rule], lines: &[String], title: Option<&str>) -> Option<AgentState> {
    rules.iter().find(|r| r.regex.is_match(&region_text(r.region, lines, title))).map(|r| r.state)
}

/// What the hooks last said, and when.
#[derive(Debug, Clone, Copy)]
pub struct HookReport {
    pub state: AgentState,
    pub at: Instant,
}

/// Map a Claude Code hook event to a state.
pub fn hook_state(event: &str) -> Option<AgentState> {
    match event {
        "UserPromptSubmit" | "PreToolUse" | "PostToolUse" | "SessionStart" => Some(AgentState::Busy),
        "Stop" | "SubagentStop" => Some(AgentState::Idle),
        "Notification" | "PermissionRequest" => Some(AgentState::Waiting),
        _ => None,
    }
}

/// Combine the layers. A waiting screen wins over everything: a prompt on screen is what the operator must
/// see. Otherwise a recent hook report wins over screen rules, which win over activity.
pub fn detect(
    rule_state: Option<AgentState>,
    hook: Option<HookReport>,
    last_output: Option<Instant>,
    now: Instant,
) -> AgentState {
    if rule_state == Some(AgentState::Waiting) {
        return AgentState::Waiting;
    }
    if let Some(h) = hook {
        // Output after the hook's report means the agent moved on (e.g. a new turn before its hook fired).
        let stale = h.state != AgentState::Busy && last_output.is_some_and(|o| o > h.at + ACTIVITY_DEBOUNCE);
        if !stale {
            return h.state;
        }
    }
    if let Some(s) = rule_state {
        return s;
    }
    match last_output {
        Some(t) if now.duration_since(t) < ACTIVITY_DEBOUNCE => AgentState::Busy,
        Some(_) => AgentState::Idle,
        None => AgentState::Starting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::preset::builtin;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn regions() {
        assert_eq!(Region::parse("bottom:3"), Some(Region::Bottom(3)));
        assert_eq!(Region::parse("title"), Some(Region::Title));
        assert_eq!(Region::parse("bottom:0"), None);
        assert_eq!(Region::parse("middle"), None);
        let l = lines(&["a", "b", "", "c", "", ""]);
        assert_eq!(region_text(Region::Bottom(2), &l, None), "b\nc");
        assert_eq!(region_text(Region::Top(1), &l, None), "a");
    }

    #[test]
    fn demo_rules_find_question_and_prompt() {
        let p = builtin();
        let rules = &p["demo"].rules;
        let q = lines(&["work done", "Apply the refactor to src/lib.rs? [y/n] ", "", ""]);
        assert_eq!(match_rules(rules, &q, None), Some(AgentState::Waiting));
        let idle = lines(&["You said: hi", "demo> ", ""]);
        assert_eq!(match_rules(rules, &idle, None), Some(AgentState::Idle));
        let busy = lines(&["⠋ thinking"]);
        assert_eq!(match_rules(rules, &busy, None), None);
    }

    #[test]
    fn claude_rules() {
        let p = builtin();
        let rules = &p["claude"].rules;
        let perm = lines(&["Bash command", " rm -rf target", "Do you want to proceed?", "❯ 1. Yes", "  2. No"]);
        assert_eq!(match_rules(rules, &perm, None), Some(AgentState::Waiting));
        let busy = lines(&["✻ Thinking… (esc to interrupt)"]);
        assert_eq!(match_rules(rules, &busy, None), Some(AgentState::Busy));
    }

    #[test]
    fn layers_combine() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(10);
        assert_eq!(detect(None, None, None, t0), AgentState::Starting);
        assert_eq!(detect(None, None, Some(t0), t0 + Duration::from_millis(100)), AgentState::Busy);
        assert_eq!(detect(None, None, Some(t0), later), AgentState::Idle);
        assert_eq!(detect(Some(AgentState::Idle), None, Some(t0), t0), AgentState::Idle);
        let hook = HookReport { state: AgentState::Busy, at: t0 };
        assert_eq!(detect(Some(AgentState::Idle), Some(hook), Some(t0), later), AgentState::Busy);
        assert_eq!(detect(Some(AgentState::Waiting), Some(hook), Some(t0), later), AgentState::Waiting);
        let stop = HookReport { state: AgentState::Idle, at: t0 };
        assert_eq!(detect(None, Some(stop), Some(t0 + Duration::from_millis(200)), later), AgentState::Idle);
        // Much later output than the Stop hook: the agent is working again.
        let out = t0 + Duration::from_secs(5);
        assert_eq!(detect(None, Some(stop), Some(out), out), AgentState::Busy);
    }

    #[test]
    fn hook_events() {
        assert_eq!(hook_state("Stop"), Some(AgentState::Idle));
        assert_eq!(hook_state("Notification"), Some(AgentState::Waiting));
        assert_eq!(hook_state("PreToolUse"), Some(AgentState::Busy));
        assert_eq!(hook_state("Bogus"), None);
    }
}
