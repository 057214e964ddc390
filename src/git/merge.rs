//! Merging an agent's branch into its base (in the main worktree) or the base into the agent's worktree.
//! git's index conflicts are the source of truth for what is unresolved; abort returns the worktree and index
//! exactly to their state before the merge.

use std::path::{Path, PathBuf};

pub use crate::protocol::git::{ConflictFile, ConflictKind, MergeOutcome, Preflight, Side};
use anyhow::{anyhow, bail, Context, Result};
use git2::{build::CheckoutBuilder, MergeOptions, Oid, Repository, ResetType, StatusOptions};

const BACKUP: &str = "muster-merge-backup";

/// The largest conflicted file muster reads to count or show its conflicts.
pub const MAX_CONFLICT_FILE: u64 = 16 << 20;

/// The marker size git uses for a file (the `conflict-marker-size` attribute).
pub fn marker_size(worktree: &Path, path: &str) -> usize {
    Repository::open(worktree)
        .ok()
        .and_then(|r| {
            r.get_attr(Path::new(path), "conflict-marker-size", git2::AttrCheckFlags::FILE_THEN_INDEX)
                .ok()
                .flatten()
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(crate::conflict::DEFAULT_MARKER_SIZE)
}

/// What stops a merge in `worktree`: tracked changes, listed.
pub fn dirty_files(repo: &Repository) -> Result<Vec<String>> {
    let mut opts = StatusOptions::new();
    opts.include_untracked(false).include_ignored(false);
    Ok(repo.statuses(Some(&mut opts))?.iter().filter_map(|e| e.path().ok().map(str::to_string)).collect())
}

/// The conflicted files of the index in `worktree`.
pub fn conflicts(worktree: &Path) -> Result<Vec<ConflictFile>> {
    let repo = Repository::open(worktree)?;
    let index = repo.index()?;
    let mut out = Vec::new();
    for c in index.conflicts()? {
        let c = c?;
        let path = [&c.our, &c.their, &c.ancestor]
            .iter()
            .find_map(|e| e.as_ref().map(|e| String::from_utf8_lossy(&e.path).into_owned()))
            .unwrap_or_default();
        let binary = [&c.our, &c.their]
            .iter()
            .filter_map(|e| e.as_ref())
            .any(|e| repo.find_blob(e.id).is_ok_and(|b| b.is_binary()));
        let kind = match (&c.ancestor, &c.our, &c.their) {
            _ if binary => ConflictKind::Binary,
            (_, None, Some(_)) => ConflictKind::DeletedByUs,
            (_, Some(_), None) => ConflictKind::DeletedByThem,
            (None, Some(_), Some(_)) => ConflictKind::AddAdd,
            _ => ConflictKind::Content,
        };
        let unresolved = if kind.has_markers() {
            crate::safefs::read_own_file(&worktree.join(&path), MAX_CONFLICT_FILE)
                .ok()
                .flatten()
                .and_then(|b| crate::conflict::parse(&b, marker_size(worktree, &path)).ok())
                .map(|p| p.conflict_count())
        } else {
            None
        };
        out.push(ConflictFile { path, kind, unresolved });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn signature(repo: &Repository) -> Result<git2::Signature<'static>> {
    Ok(repo.signature().or_else(|_| git2::Signature::now("muster", "muster@localhost"))?.to_owned())
}

/// Merge `theirs` (a branch or commit) into the branch checked out in `worktree`.
pub fn merge(worktree: &Path, theirs: &str, message: &str) -> Result<MergeOutcome> {
    let repo = Repository::open(worktree).with_context(|| format!("opening {}", worktree.display()))?;
    if repo.state() != git2::RepositoryState::Clean {
        bail!(
            "{} is in the middle of another operation ({:?}): finish or abort it first",
            worktree.display(),
            repo.state()
        );
    }
    let dirty = dirty_files(&repo)?;
    if !dirty.is_empty() {
        let shown: Vec<&str> = dirty.iter().take(5).map(String::as_str).collect();
        let more = if dirty.len() > 5 { format!(" and {} more", dirty.len() - 5) } else { String::new() };
        bail!(
            "{} has uncommitted changes ({}{more}): commit or stash them before merging",
            worktree.display(),
            shown.join(", ")
        );
    }
    let their_commit = repo
        .revparse_single(theirs)
        .and_then(|o| o.peel_to_commit())
        .with_context(|| format!("`{theirs}` not found"))?;
    let annotated = repo.find_annotated_commit(their_commit.id())?;
    let (analysis, _) = repo.merge_analysis(&[&annotated])?;
    if analysis.is_up_to_date() {
        return Ok(MergeOutcome::UpToDate);
    }
    // Saved for abort: the index bytes and HEAD, beside the worktree's git files.
    let head = repo.head()?.peel_to_commit()?.id();
    let index_bytes = std::fs::read(repo.path().join("index")).unwrap_or_default();
    let mut backup = head.to_string().into_bytes();
    backup.push(b'\n');
    backup.extend_from_slice(&index_bytes);
    std::fs::write(repo.path().join(BACKUP), backup).context("saving the pre-merge state")?;

    let ours_label =
        repo.head().ok().and_then(|h| h.shorthand().ok().map(str::to_string)).unwrap_or_else(|| "HEAD".to_string());
    let mut checkout = CheckoutBuilder::new();
    // Markers labelled with branch names, as `git merge` writes them.
    checkout.allow_conflicts(true).conflict_style_merge(true).our_label(&ours_label).their_label(theirs);
    repo.merge(&[&annotated], Some(&mut MergeOptions::new()), Some(&mut checkout)).context("merging")?;
    let files = conflicts(worktree)?;
    if !files.is_empty() {
        std::fs::write(repo.path().join("MERGE_MSG"), message)?;
        return Ok(MergeOutcome::Conflicts { files });
    }
    let commit = commit_merge(&repo, message)?;
    Ok(MergeOutcome::Merged { commit: commit.to_string() })
}

fn commit_merge(repo: &Repository, message: &str) -> Result<Oid> {
    let mut index = repo.index()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let head = repo.head()?.peel_to_commit()?;
    // MERGE_HEAD lists the commits being merged, one per line.
    let theirs: Vec<Oid> = std::fs::read_to_string(repo.path().join("MERGE_HEAD"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| Oid::from_str(l.trim()).ok())
        .collect();
    let their_commits: Vec<git2::Commit> = theirs.iter().filter_map(|o| repo.find_commit(*o).ok()).collect();
    let mut parents: Vec<&git2::Commit> = vec![&head];
    parents.extend(their_commits.iter());
    let sig = signature(repo)?;
    let oid = repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)?;
    repo.cleanup_state()?;
    let _ = std::fs::remove_file(repo.path().join(BACKUP));
    Ok(oid)
}

/// Write a resolved file and stage it, which marks it resolved in the index.
pub fn stage_resolved(worktree: &Path, path: &str, content: &[u8]) -> Result<()> {
    let repo = Repository::open(worktree)?;
    let conflicted =
        repo.index()?.conflicts()?.filter_map(Result::ok).any(|c| {
            [&c.our, &c.their, &c.ancestor].iter().any(|e| e.as_ref().is_some_and(|e| e.path == path.as_bytes()))
        });
    if !conflicted {
        bail!("{path} is not conflicted");
    }
    crate::safefs::write_in(worktree, Path::new(path), content).with_context(|| format!("writing {path}"))?;
    let mut index = repo.index()?;
    index.add_path(Path::new(path))?;
    index.write()?;
    Ok(())
}

/// Resolve a conflict without markers by keeping one side: its content, or its deletion.
pub fn take_side(worktree: &Path, path: &str, side: Side) -> Result<()> {
    let repo = Repository::open(worktree)?;
    let mut index = repo.index()?;
    let c = index
        .conflicts()?
        .filter_map(Result::ok)
        .find(|c| [&c.our, &c.their, &c.ancestor].iter().any(|e| e.as_ref().is_some_and(|e| e.path == path.as_bytes())))
        .ok_or_else(|| anyhow!("{path} is not conflicted"))?;
    let entry = match side {
        Side::Ours => c.our,
        Side::Theirs => c.their,
    };
    let target = worktree.join(path);
    match entry {
        Some(e) => {
            let blob = repo.find_blob(e.id)?;
            crate::safefs::write_in(worktree, Path::new(path), blob.content())?;
            index.add_path(Path::new(path))?;
        }
        None => {
            let _ = crate::safefs::remove_inside(worktree, &target);
            index.remove_path(Path::new(path))?;
        }
    }
    index.write()?;
    Ok(())
}

/// Create the merge commit once nothing is unresolved.
pub fn finish(worktree: &Path, message: Option<&str>) -> Result<String> {
    let repo = Repository::open(worktree)?;
    if repo.state() != git2::RepositoryState::Merge {
        bail!("no merge in progress in {}", worktree.display());
    }
    let left = conflicts(worktree)?;
    if !left.is_empty() {
        let names: Vec<&str> = left.iter().map(|c| c.path.as_str()).collect();
        bail!("{} still unresolved: {}", crate::text::counted(left.len(), "file"), names.join(", "));
    }
    let saved = std::fs::read_to_string(repo.path().join("MERGE_MSG")).unwrap_or_else(|_| "Merge".into());
    Ok(commit_merge(&repo, message.unwrap_or(&saved))?.to_string())
}

/// Return the worktree and index to exactly their state before the merge.
pub fn abort(worktree: &Path) -> Result<()> {
    let repo = Repository::open(worktree)?;
    let backup = std::fs::read(repo.path().join(BACKUP)).ok();
    let head = match &backup {
        Some(b) => {
            let line = b.split(|&c| c == b'\n').next().unwrap_or_default();
            Oid::from_str(&String::from_utf8_lossy(line))?
        }
        None => repo.head()?.peel_to_commit()?.id(),
    };
    let commit = repo.find_commit(head)?;
    repo.reset(commit.as_object(), ResetType::Hard, Some(CheckoutBuilder::new().force().remove_untracked(false)))?;
    repo.cleanup_state()?;
    if let Some(b) = backup {
        if let Some(pos) = b.iter().position(|&c| c == b'\n') {
            std::fs::write(repo.path().join("index"), &b[pos + 1..]).context("restoring the index")?;
        }
        let _ = std::fs::remove_file(repo.path().join(BACKUP));
    }
    Ok(())
}

/// Whether a merge is in progress in `worktree` (git's own state, so merges started anywhere count).
pub fn in_progress(worktree: &Path) -> bool {
    Repository::open(worktree).is_ok_and(|r| r.state() == git2::RepositoryState::Merge)
}

/// Check a merge of `agent_worktree`'s work into `root`'s branch (or of `base` into the agent, `into_agent`)
/// without changing anything: the place it runs must not be in the middle of another operation, the main
/// worktree must have no uncommitted changes to tracked files.
pub fn preflight(root: &Path, agent_worktree: &Path, branch: &str, base: &str, into_agent: bool) -> Result<Preflight> {
    let place = merge_worktree(root, agent_worktree, into_agent);
    let repo = Repository::open(&place).with_context(|| format!("opening {}", place.display()))?;
    let agent = Repository::open(agent_worktree).with_context(|| format!("opening {}", agent_worktree.display()))?;
    let mut opts = StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false);
    let statuses = agent.statuses(Some(&mut opts))?;
    let uncommitted = !statuses.is_empty();
    let untracked: Vec<String> = statuses
        .iter()
        .filter(|e| e.status().contains(git2::Status::WT_NEW))
        .filter_map(|e| e.path().ok().map(str::to_string))
        .collect();
    let mut check = Preflight { untracked, ..Preflight::default() };
    if repo.state() != git2::RepositoryState::Clean {
        check.refused = Some(format!(
            "{} is in the middle of another operation ({:?}): finish or abort it first",
            place.display(),
            repo.state()
        ));
        return Ok(check);
    }
    if !into_agent {
        let dirty = dirty_files(&repo)?;
        if !dirty.is_empty() {
            let shown: Vec<&str> = dirty.iter().take(5).map(String::as_str).collect();
            let more = if dirty.len() > 5 { format!(" and {} more", dirty.len() - 5) } else { String::new() };
            check.refused = Some(format!(
                "{} has uncommitted changes ({}{more}): commit or stash them before merging",
                place.display(),
                shown.join(", ")
            ));
            return Ok(check);
        }
    }
    let theirs = if into_agent { base } else { branch };
    let their_commit = repo
        .revparse_single(theirs)
        .and_then(|o| o.peel_to_commit())
        .with_context(|| format!("`{theirs}` not found"))?;
    let (analysis, _) = repo.merge_analysis(&[&repo.find_annotated_commit(their_commit.id())?])?;
    // Into the base, uncommitted work is still to merge (it is committed first); into the agent, only the base's.
    check.up_to_date = analysis.is_up_to_date() && (into_agent || !uncommitted);
    Ok(check)
}

/// Where a merge of `agent` runs: the main worktree (into base), or the agent's worktree (base into it).
pub fn merge_worktree(root: &Path, agent_worktree: &Path, into_agent: bool) -> PathBuf {
    if into_agent {
        agent_worktree.to_path_buf()
    } else {
        root.to_path_buf()
    }
}
