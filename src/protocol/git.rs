//! The git values that cross the boundary: checkpoints and their diffs, diffstats, merge conflicts and outcomes,
//! overlaps, what removing a worktree would lose. `git/` makes them; clients show them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub n: u32,
    pub id: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
    pub trigger: String,
    /// The worktree's HEAD commit when it was taken.
    pub head: String,
    /// The branch HEAD was on (empty when detached).
    pub branch: String,
    /// Against the previous checkpoint.
    pub files: usize,
    pub added: usize,
    pub removed: usize,
    /// Files that were still changing while the checkpoint read them (their version may be mid-write).
    #[serde(default)]
    pub unsettled: Vec<String>,
    /// Folders left out: git repositories of their own inside the worktree (their history is theirs).
    #[serde(default)]
    pub skipped: Vec<String>,
    /// Every gate the agent runs after its turns passed on it (the engine's word, not git's).
    #[serde(default)]
    pub green: bool,
}

/// One line of a unified diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineKind {
    Context,
    Added,
    Removed,
    Hunk,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    pub path: String,
    pub status: char,
    pub added: usize,
    pub removed: usize,
    pub lines: Vec<(LineKind, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum DiffBase {
    /// What checkpoint n changed since the one before.
    Previous,
    /// How the worktree now differs from checkpoint n.
    Worktree,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffStat {
    pub files: usize,
    pub added: usize,
    pub removed: usize,
    /// Files git does not track yet (not ignored): a merge commits them, so they are shown apart.
    #[serde(default)]
    pub untracked: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConflictKind {
    /// Both sides changed the same lines: the file holds conflict markers.
    Content,
    /// Deleted on our side, modified on theirs.
    DeletedByUs,
    /// Modified on our side, deleted on theirs.
    DeletedByThem,
    /// Added on both sides with different content (markers when text).
    AddAdd,
    /// A binary file: no markers, pick a side.
    Binary,
}

impl ConflictKind {
    pub fn label(self) -> &'static str {
        match self {
            ConflictKind::Content => "both modified",
            ConflictKind::DeletedByUs => "deleted by us",
            ConflictKind::DeletedByThem => "deleted by them",
            ConflictKind::AddAdd => "both added",
            ConflictKind::Binary => "binary",
        }
    }

    /// Whether the file on disk holds conflict markers to resolve hunk by hunk.
    pub fn has_markers(self) -> bool {
        matches!(self, ConflictKind::Content | ConflictKind::AddAdd)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictFile {
    pub path: String,
    pub kind: ConflictKind,
    /// Conflict regions left in the file on disk (None without markers, or when they do not parse).
    pub unresolved: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergeOutcome {
    UpToDate,
    Merged { commit: String },
    Conflicts { files: Vec<ConflictFile> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Side {
    Ours,
    Theirs,
}

/// What a merge would do, known before anything changes: why it cannot run, that there is nothing to merge,
/// and the agent's files git does not track yet, which it commits on the agent's branch first (ignored files
/// never).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preflight {
    pub refused: Option<String>,
    pub up_to_date: bool,
    pub untracked: Vec<String>,
    /// The agent's `when = "merge"` gates, run on its worktree for this check: each one's name, outcome and why.
    #[serde(default)]
    pub gates: Vec<(String, super::gate::GateOutcome, String)>,
    /// Files the merge would bring that are outside the agent's `owns` or among the crew's `shared`.
    #[serde(default)]
    pub outside_owns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlap {
    pub a: String,
    pub b: String,
    /// Files both changed.
    pub files: Vec<String>,
    /// Files a trial merge of the two would leave conflicted.
    pub conflicts: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlapReport {
    pub overlaps: Vec<Overlap>,
    /// Agents in the order that conflicts least when merged one after another.
    pub merge_order: Vec<String>,
}

/// What would be lost by removing a worktree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorktreeStatus {
    pub changed_files: usize,
    pub unmerged_commits: usize,
}

impl WorktreeStatus {
    pub fn is_safe_to_remove(&self) -> bool {
        self.changed_files == 0 && self.unmerged_commits == 0
    }
}
