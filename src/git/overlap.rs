//! Early warning of collisions between agents: which agents change the same files, and whether a trial merge of
//! their work (in memory, touching no worktree) would conflict. An agent's work is its newest checkpoint (which
//! includes uncommitted files), else its branch tip.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Result;
use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};

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

/// Compare every pair of agents (name, base branch) of a repository.
pub fn check(root: &Path, agents: &[(String, String)]) -> Result<OverlapReport> {
    let repo = Repository::open(root)?;
    let mut work: BTreeMap<&str, (git2::Tree, BTreeSet<String>, Oid)> = BTreeMap::new();
    for (name, base) in agents {
        let Some(tree_id) = work_tree(&repo, name) else { continue };
        let Ok(base_tree) = repo.revparse_single(base).and_then(|o| o.peel_to_tree()) else { continue };
        let tree = repo.find_tree(tree_id)?;
        let files = changed(&repo, &base_tree, &tree)?;
        if !files.is_empty() {
            work.insert(name.as_str(), (tree, files, base_tree.id()));
        }
    }
    let names: Vec<&str> = work.keys().copied().collect();
    let mut overlaps = Vec::new();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            let (ta, fa, base_a) = &work[a];
            let (tb, fb, _) = &work[b];
            let files: Vec<String> = fa.intersection(fb).cloned().collect();
            if files.is_empty() {
                continue;
            }
            let ancestor = repo.find_tree(*base_a)?;
            let index = repo.merge_trees(&ancestor, ta, tb, None)?;
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
