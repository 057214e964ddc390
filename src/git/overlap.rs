//! Early warning of collisions between agents: which agents change the same files, and whether a trial merge of
//! their work (in memory, touching no worktree) would conflict. An agent's work is its newest checkpoint (which
//! includes uncommitted files), else its branch tip.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub use crate::protocol::git::{Overlap, OverlapReport};
use anyhow::Result;
use git2::{Oid, Repository};

/// The commit an agent's branch is at.
fn branch_head(repo: &Repository, agent: &str) -> Option<Oid> {
    repo.revparse_single(&format!("refs/heads/muster/{agent}")).ok()?.peel_to_commit().ok().map(|c| c.id())
}

/// The tree holding an agent's current work.
fn work_tree(repo: &Repository, agent: &str) -> Option<Oid> {
    let newest = repo
        .references_glob(&format!("refs/muster/checkpoints/{agent}/*"))
        .ok()?
        .flatten()
        .filter_map(|r| {
            let n = r.name().ok()?.rsplit('/').next()?.parse::<u32>().ok()?;
            Some((n, r.peel_to_commit().ok()?.tree_id()))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, t)| t);
    newest.or_else(|| {
        repo.revparse_single(&format!("refs/heads/muster/{agent}")).ok()?.peel_to_commit().ok().map(|c| c.tree_id())
    })
}

fn changed(repo: &Repository, base: &git2::Tree, tree: &git2::Tree) -> Result<BTreeSet<String>> {
    let diff = repo.diff_tree_to_tree(Some(base), Some(tree), None)?;
    Ok(diff
        .deltas()
        .filter_map(|d| d.new_file().path().or(d.old_file().path()).map(|p| p.to_string_lossy().into_owned()))
        .collect())
}

/// One agent's work: its tree, the files it changed against its merge base with its base branch (what merging
/// it would bring, not what the base gained since), and the commit its branch is at.
struct Work<'r> {
    tree: git2::Tree<'r>,
    files: BTreeSet<String>,
    head: Oid,
}

/// Compare every pair of agents (name, base branch) of a repository. Each agent's changes are taken against its
/// merge base with its base branch, so work merged into the base since it started is not counted as its own;
/// two agents' trial merge is taken on their own merge base, as `git merge-tree` would.
pub fn check(root: &Path, agents: &[(String, String)]) -> Result<OverlapReport> {
    compare(&Repository::open(root)?, agents)
}

fn compare(repo: &Repository, agents: &[(String, String)]) -> Result<OverlapReport> {
    let mut work: BTreeMap<&str, Work> = BTreeMap::new();
    for (name, base) in agents {
        let Some(tree_id) = work_tree(repo, name) else { continue };
        let Ok(base_tip) = repo.revparse_single(base).and_then(|o| o.peel_to_commit()) else { continue };
        let head = branch_head(repo, name).unwrap_or(base_tip.id());
        let since = repo.merge_base(head, base_tip.id()).unwrap_or(base_tip.id());
        let base_tree = repo.find_commit(since)?.tree()?;
        let tree = repo.find_tree(tree_id)?;
        let files = changed(repo, &base_tree, &tree)?;
        if !files.is_empty() {
            work.insert(name.as_str(), Work { tree, files, head });
        }
    }
    let names: Vec<&str> = work.keys().copied().collect();
    let mut overlaps = Vec::new();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            let (wa, wb) = (&work[a], &work[b]);
            let files: Vec<String> = wa.files.intersection(&wb.files).cloned().collect();
            if files.is_empty() {
                continue;
            }
            let ancestor = repo.find_commit(repo.merge_base(wa.head, wb.head)?)?.tree()?;
            let index = repo.merge_trees(&ancestor, &wa.tree, &wb.tree, None)?;
            let mut conflicts: Vec<String> = index
                .conflicts()?
                .filter_map(Result::ok)
                .filter_map(|c| {
                    [c.our, c.their, c.ancestor]
                        .into_iter()
                        .flatten()
                        .next()
                        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                })
                .collect();
            conflicts.sort();
            conflicts.dedup();
            overlaps.push(Overlap { a: a.to_string(), b: b.to_string(), files, conflicts });
        }
    }
    Ok(OverlapReport { merge_order: merge_order(&names, &overlaps), overlaps })
}

/// Greedy order: first the agent whose work conflicts with the fewest others (then overlaps least), so each
/// merge meets as few conflicts as possible.
pub fn merge_order(names: &[&str], overlaps: &[Overlap]) -> Vec<String> {
    let score = |n: &str| {
        let with: Vec<&Overlap> = overlaps.iter().filter(|o| o.a == n || o.b == n).collect();
        (with.iter().filter(|o| !o.conflicts.is_empty()).count(), with.len(), n.to_string())
    };
    let mut order: Vec<(usize, usize, String)> = names.iter().map(|n| score(n)).collect();
    order.sort();
    order.into_iter().map(|(_, _, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::worktree::{ensure_worktree, tests::temp_repo};
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn commit(dir: &Path, file: &str, text: &str) {
        std::fs::write(dir.join(file), text).unwrap();
        git(dir, &["add", "."]);
        git(dir, &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", file]);
    }

    /// alpha changes a.txt, beta b.txt, gamma nothing; alpha is merged. Against the base's new tip, beta and
    /// gamma both seemed to undo alpha's a.txt: "overlaps" that nobody made.
    #[test]
    fn after_a_merge_only_real_overlaps_are_reported() {
        let repo = temp_repo();
        let root = repo.path();
        let wt: Vec<_> = ["alpha", "beta", "gamma"].iter().map(|n| ensure_worktree(root, n, None).unwrap()).collect();
        commit(&wt[0].path, "a.txt", "one\ntwo\nthree\n");
        commit(&wt[1].path, "b.txt", "y\n");
        let agents: Vec<(String, String)> =
            ["alpha", "beta", "gamma"].iter().map(|n| (n.to_string(), "main".to_string())).collect();
        assert_eq!(check(root, &agents).unwrap().overlaps, vec![], "nobody touched the same file");
        git(root, &["-c", "user.name=t", "-c", "user.email=t@e", "merge", "-q", "--no-ff", "-m", "m", "muster/alpha"]);
        let report = check(root, &agents).unwrap();
        assert_eq!(report.overlaps, vec![], "after alpha's merge");
        // A real overlap is still one, and its conflict is what git's own trial merge says.
        commit(&wt[1].path, "c.txt", "beta's\n");
        commit(&wt[2].path, "c.txt", "gamma's\n");
        let report = check(root, &agents).unwrap();
        assert_eq!(report.overlaps.len(), 1, "{report:?}");
        let o = &report.overlaps[0];
        assert_eq!((o.a.as_str(), o.b.as_str(), o.files.clone()), ("beta", "gamma", vec!["c.txt".to_string()]));
        let base = git(root, &["merge-base", "muster/beta", "muster/gamma"]);
        let tree = Command::new("git")
            .args([
                "merge-tree",
                "--write-tree",
                "--name-only",
                "--merge-base",
                base.trim(),
                "muster/beta",
                "muster/gamma",
            ])
            .current_dir(root)
            .output()
            .unwrap();
        let said: Vec<String> = String::from_utf8_lossy(&tree.stdout)
            .lines()
            .skip(1)
            .take_while(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        assert_eq!(o.conflicts, said);
    }
}
