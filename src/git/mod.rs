//! git work as plain functions on a path (each opens the repository itself), run off the UI thread.

pub mod checkpoint;
pub mod diffstat;
pub mod merge;
pub mod overlap;
pub mod ownership;
pub mod pack;
pub mod refwatch;
pub mod stale;
pub mod watch;
pub mod worktree;
