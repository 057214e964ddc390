//! A preset's screen rules as its table says them: regexes over regions of the screen, the state they mean, and
//! the CLI versions they were written for. The engine's detector (`engine::detect`) applies them.

use regex::Regex;

use crate::protocol::AgentState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    All,
    /// The last N non-empty rows.
    Bottom(usize),
    Top(usize),
    Title,
    /// The last OSC 9;4 progress report, as `STATE;VALUE` (empty when there is none or it was cleared).
    Progress,
}

impl Region {
    pub fn parse(s: &str) -> Option<Region> {
        let n = |v: &str| v.parse::<usize>().ok().filter(|n| *n > 0);
        match s.split_once(':') {
            None if s == "all" => Some(Region::All),
            None if s == "title" => Some(Region::Title),
            None if s == "progress" => Some(Region::Progress),
            Some(("bottom", v)) => n(v).map(Region::Bottom),
            Some(("top", v)) => n(v).map(Region::Top),
            _ => None,
        }
    }
}

/// Which screen a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScreenKind {
    #[default]
    Any,
    /// The alternate screen (full-screen TUIs).
    Alt,
    Main,
}

/// One regex over one region of the screen.
#[derive(Debug, Clone)]
pub struct Cond {
    pub regex: Regex,
    pub region: Region,
}

/// A screen rule: it matches when every `all` condition, at least one `any` condition (if there are any) and
/// no `not` condition matches, on the right screen and CLI version.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub state: AgentState,
    pub priority: i32,
    pub all: Vec<Cond>,
    pub any: Vec<Cond>,
    pub not: Vec<Cond>,
    pub screen: ScreenKind,
    /// Versions of the CLI the rule was written for: at least `min`, below `below` (dotted numbers).
    pub min_version: Option<Vec<u64>>,
    pub below_version: Option<Vec<u64>>,
}

/// A dotted version number ("2.1.332", "v0.61.0") as its numbers; None if it has none.
pub fn parse_version(s: &str) -> Option<Vec<u64>> {
    let s = s.trim().trim_start_matches('v');
    let parts: Vec<u64> = s.split('.').map_while(|p| p.parse().ok()).collect();
    (!parts.is_empty()).then_some(parts)
}
