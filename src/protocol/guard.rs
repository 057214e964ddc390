//! Ownership and the watchdog (issue #29): what an agent did to files it should not have, as the watcher saw it,
//! and what the operator did about it. What crosses the boundary: a finding, the guard's requests and answers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A file changed outside the agent's `owns`.
    OutsideOwns,
    /// A file of the crew's `shared` changed (only the operator or a merge changes those).
    Shared,
    /// A symbolic link whose target lies outside the worktree.
    SymlinkEscape,
    /// A file that became executable (new, or not executable in the agent's branch).
    NewExecutable,
    /// A git hook written, or a git config key that runs commands, in the repository's git folder.
    GitTamper,
    /// A file of the main checkout changed by a process of the agent (its working folder there, or the file
    /// open for writing).
    MainCheckout,
    /// Its worktree takes 80 % of its `disk_quota`.
    QuotaNear,
    /// Its worktree takes all of its `disk_quota`: it was paused.
    QuotaFull,
    /// Busy for its `stall` seconds with no output and no file change.
    Stalled,
}

impl FindingKind {
    pub const ALL: [FindingKind; 9] = [
        FindingKind::OutsideOwns,
        FindingKind::Shared,
        FindingKind::SymlinkEscape,
        FindingKind::NewExecutable,
        FindingKind::GitTamper,
        FindingKind::MainCheckout,
        FindingKind::QuotaNear,
        FindingKind::QuotaFull,
        FindingKind::Stalled,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FindingKind::OutsideOwns => "outside owns",
            FindingKind::Shared => "shared file",
            FindingKind::SymlinkEscape => "link escapes",
            FindingKind::NewExecutable => "new executable",
            FindingKind::GitTamper => "git tampering",
            FindingKind::MainCheckout => "main checkout",
            FindingKind::QuotaNear => "disk quota 80 %",
            FindingKind::QuotaFull => "disk quota full",
            FindingKind::Stalled => "stalled",
        }
    }

    /// As kept in the store.
    pub fn key(self) -> &'static str {
        match self {
            FindingKind::OutsideOwns => "outside_owns",
            FindingKind::Shared => "shared",
            FindingKind::SymlinkEscape => "symlink_escape",
            FindingKind::NewExecutable => "new_executable",
            FindingKind::GitTamper => "git_tamper",
            FindingKind::MainCheckout => "main_checkout",
            FindingKind::QuotaNear => "quota_near",
            FindingKind::QuotaFull => "quota_full",
            FindingKind::Stalled => "stalled",
        }
    }

    pub fn parse(s: &str) -> Option<FindingKind> {
        FindingKind::ALL.into_iter().find(|k| k.key() == s)
    }

    /// Worth the terminal's bell: a way out of the worktree, or into git's own machinery.
    pub fn rings(self) -> bool {
        matches!(
            self,
            FindingKind::SymlinkEscape | FindingKind::GitTamper | FindingKind::MainCheckout | FindingKind::QuotaFull
        )
    }
}

/// Where a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FindingStatus {
    /// Seen, nothing done yet.
    #[default]
    Open,
    /// The file was put back as it was at the finding's checkpoint.
    Restored,
    /// The operator allowed the path for this run of the agent.
    Allowed,
    /// The operator saw it and left it.
    Dismissed,
}

impl FindingStatus {
    pub fn label(self) -> &'static str {
        match self {
            FindingStatus::Open => "open",
            FindingStatus::Restored => "restored",
            FindingStatus::Allowed => "allowed",
            FindingStatus::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<FindingStatus> {
        [FindingStatus::Open, FindingStatus::Restored, FindingStatus::Allowed, FindingStatus::Dismissed]
            .into_iter()
            .find(|k| k.label() == s)
    }
}

/// One thing an agent did that its ownership or the watchdog does not allow; a path written again while the
/// finding is open counts on the same finding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    pub id: i64,
    /// The agent whose worktree it was in (empty: in the repository's git folder, not attributed).
    pub agent: String,
    pub kind: Option<FindingKind>,
    /// Relative to the worktree (or to the git folder for `git_tamper`).
    pub path: String,
    /// More in words: the link's target, the agent's `owns`, the config key.
    pub detail: String,
    pub first_ms: u64,
    pub last_ms: u64,
    /// How many times it was seen while open.
    pub count: u32,
    /// The agent's newest checkpoint when it was first seen: what a restore puts the file back to (0: none).
    pub checkpoint_n: u32,
    pub status: FindingStatus,
    /// What was done about it, in words.
    #[serde(default)]
    pub note: String,
}

impl Finding {
    /// One line, as `muster guard status` and the findings tab show it.
    pub fn line(&self) -> String {
        let kind = self.kind.map_or("?", FindingKind::label);
        let times = if self.count > 1 { format!(" ×{}", self.count) } else { String::new() };
        let detail = if self.detail.is_empty() { String::new() } else { format!(" ({})", self.detail) };
        format!("{kind}: {}{detail}{times}", self.path)
    }
}

/// The guard's requests (`muster guard …`, the findings tab).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum GuardOp {
    /// The findings (of one agent, when named), newest first; `all` includes resolved ones.
    Status {
        #[serde(default)]
        agent: Option<String>,
        #[serde(default)]
        all: bool,
    },
    /// Put the finding's file back as it was at its checkpoint (a rescue checkpoint first, as every rollback).
    Restore { id: i64 },
    /// Allow the finding's path for this run of the agent: no more findings on it until it restarts.
    Allow { id: i64 },
    /// Seen, left as it is.
    Dismiss { id: i64 },
    /// Tell the agent (as mail from `guard`) what it did and what it owns.
    Steer { id: i64 },
}

/// What a guard request is answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GuardAnswer {
    Findings { findings: Vec<Finding> },
    Done { message: String },
}

/// The message a steer sends: what was seen, what the agent owns, what to do.
pub fn steer_text(f: &Finding, owns: &[String]) -> String {
    let what = match f.kind {
        Some(FindingKind::OutsideOwns) => format!("You changed `{}`, which is outside the files you own.", f.path),
        Some(FindingKind::Shared) => {
            format!("You changed `{}`, a shared file: only the operator or a merge changes it.", f.path)
        }
        Some(FindingKind::SymlinkEscape) => {
            format!("You made `{}` a link to `{}`, outside your worktree.", f.path, f.detail)
        }
        Some(FindingKind::NewExecutable) => format!("You made `{}` executable.", f.path),
        Some(FindingKind::MainCheckout) => {
            format!("You changed `{}` in the main checkout, outside your worktree ({}).", f.path, f.detail)
        }
        Some(FindingKind::QuotaNear | FindingKind::QuotaFull) => {
            format!("Your worktree takes {}: remove what you do not need (build output, caches).", f.detail)
        }
        Some(FindingKind::Stalled) => {
            format!("You have been {}. Are you stuck? Say what you are waiting for.", f.detail)
        }
        Some(FindingKind::GitTamper) | None => format!("You changed git's own `{}` ({}).", f.path, f.detail),
    };
    let owned = if owns.is_empty() { String::new() } else { format!("\nYou own: {}.", owns.join(", ")) };
    format!("{what}{owned}\nPut it back as it was and keep to your files; ask the operator if you need it changed.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_read_back_as_kept() {
        for k in FindingKind::ALL {
            assert_eq!(FindingKind::parse(k.key()), Some(k));
        }
        for s in [FindingStatus::Open, FindingStatus::Restored, FindingStatus::Allowed, FindingStatus::Dismissed] {
            assert_eq!(FindingStatus::parse(s.label()), Some(s));
        }
    }

    #[test]
    fn a_line_and_a_steer_name_the_path() {
        let f = Finding {
            kind: Some(FindingKind::OutsideOwns),
            path: "src/db.rs".into(),
            count: 3,
            detail: "owns src/api/".into(),
            ..Finding::default()
        };
        assert_eq!(f.line(), "outside owns: src/db.rs (owns src/api/) ×3");
        let s = steer_text(&f, &["src/api/".into()]);
        assert!(s.contains("`src/db.rs`") && s.contains("You own: src/api/."), "{s}");
    }
}
