//! What an agent's work touches, for ownership (issue #29): the files its branch changed since it left its base,
//! and those changed in its worktree and not committed; and the files of the repository, to check `owns` on.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use git2::{Repository, StatusOptions};

/// Files `branch` changed since its merge base with `base`, and (when `worktree` is there) files changed there and
/// not committed, new ones included; relative paths, sorted, each once. Nothing is written.
pub fn changed_files(root: &Path, worktree: Option<&Path>, branch: &str, base: &str) -> Result<Vec<String>> {
    let repo = Repository::open(root).with_context(|| format!("opening {}", root.display()))?;
    let mut out = BTreeSet::new();
    let tip = repo.revparse_single(branch).with_context(|| format!("no branch `{branch}`"))?.peel_to_commit()?;
    let from = repo.revparse_single(base).with_context(|| format!("no base `{base}`"))?.peel_to_commit()?;
    let merge_base = repo.merge_base(tip.id(), from.id()).unwrap_or(from.id());
    let old = repo.find_commit(merge_base)?.tree()?;
    let diff = repo.diff_tree_to_tree(Some(&old), Some(&tip.tree()?), None)?;
    for d in diff.deltas() {
        for f in [d.old_file(), d.new_file()] {
            if let Some(p) = f.path().and_then(|p| p.to_str()) {
                out.insert(p.to_string());
            }
        }
    }
    if let Some(wt) = worktree.filter(|w| w.exists()) {
        let repo = Repository::open(wt).with_context(|| format!("opening {}", wt.display()))?;
        let mut opts = StatusOptions::new();
        opts.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false);
        for s in repo.statuses(Some(&mut opts))?.iter() {
            if let Ok(p) = s.path() {
                out.insert(p.to_string());
            }
        }
    }
    // muster's own folder in a worktree is never the agent's work.
    Ok(out.into_iter().filter(|p| !p.starts_with(".muster/")).collect())
}

/// The files the repository's main checkout tracks (its index), relative paths.
pub fn tracked_files(root: &Path) -> Result<Vec<String>> {
    let repo = Repository::open(root).with_context(|| format!("opening {}", root.display()))?;
    let index = repo.index()?;
    Ok(index.iter().filter_map(|e| String::from_utf8(e.path).ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_branch_and_its_worktree_changes_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("r");
        let git = |cwd: &Path, args: &[&str]| {
            let o = Command::new("git").args(args).current_dir(cwd).output().unwrap();
            assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        };
        std::fs::create_dir_all(root.join("src")).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        std::fs::write(root.join("src/a.rs"), "a").unwrap();
        std::fs::write(root.join("README.md"), "r").unwrap();
        git(&root, &["add", "."]);
        git(&root, &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "one"]);
        let wt = dir.path().join("wt");
        git(&root, &["worktree", "add", "-q", "-b", "muster/api", wt.to_str().unwrap()]);
        std::fs::write(wt.join("src/a.rs"), "changed").unwrap();
        git(&wt, &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "two"]);
        std::fs::write(wt.join("README.md"), "not committed").unwrap();
        std::fs::write(wt.join("new.txt"), "new").unwrap();
        assert_eq!(
            changed_files(&root, Some(&wt), "muster/api", "main").unwrap(),
            ["README.md", "new.txt", "src/a.rs"]
        );
        assert_eq!(changed_files(&root, None, "muster/api", "main").unwrap(), ["src/a.rs"]);
        assert_eq!(tracked_files(&root).unwrap(), ["README.md", "src/a.rs"]);
    }
}
