//! Lines added and removed by an agent against its base branch, including files it has not committed.

use std::path::Path;

pub use crate::protocol::git::DiffStat;
use anyhow::Result;
use git2::{DiffOptions, Repository};

pub fn diffstat(worktree: &Path, base: &str) -> Result<DiffStat> {
    let repo = Repository::open(worktree)?;
    let base_commit = repo.revparse_single(base)?.peel_to_commit()?;
    // Against the merge base, so work merged into the base meanwhile is not counted against the agent.
    let tree = match repo.head().ok().and_then(|h| h.target()) {
        Some(head) => {
            let mb = repo.merge_base(head, base_commit.id()).unwrap_or(base_commit.id());
            repo.find_commit(mb)?.tree()?
        }
        None => base_commit.tree()?,
    };
    let mut opts = DiffOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true).show_untracked_content(true);
    let diff = repo.diff_tree_to_workdir_with_index(Some(&tree), Some(&mut opts))?;
    let stats = diff.stats()?;
    let untracked = diff.deltas().filter(|d| d.status() == git2::Delta::Untracked).count();
    Ok(DiffStat { files: stats.files_changed(), added: stats.insertions(), removed: stats.deletions(), untracked })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::worktree::{ensure_worktree, tests::temp_repo};

    #[test]
    fn counts_committed_and_uncommitted_work() {
        let repo = temp_repo();
        let info = ensure_worktree(repo.path(), "d", None).unwrap();
        assert_eq!(diffstat(&info.path, "main").unwrap(), DiffStat::default());
        std::fs::write(info.path.join("a.txt"), "one\nTWO\nthree\n").unwrap();
        std::fs::write(info.path.join("new.txt"), "x\ny\n").unwrap();
        let s = diffstat(&info.path, "main").unwrap();
        assert_eq!(s, DiffStat { files: 2, added: 4, removed: 1, untracked: 1 });
        // A binary file git does not track (an editor's swap file) adds no line, and is counted all the same.
        std::fs::write(info.path.join("blob.bin"), [0u8, 159, 146, 150, 0, 1]).unwrap();
        let s = diffstat(&info.path, "main").unwrap();
        assert_eq!((s.files, s.untracked), (3, 2));
    }
}
