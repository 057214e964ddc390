//! Agent worktrees: `.muster/worktrees/<name>` on branch `muster/<name>`, reused when they exist, never removed
//! with uncommitted changes or unmerged commits unless the operator confirmed it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use crate::protocol::git::WorktreeStatus;
use anyhow::{anyhow, bail, Context, Result};
use git2::{BranchType, Repository, StatusOptions, WorktreeAddOptions, WorktreePruneOptions};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorktreeInfo {
    pub path: PathBuf,
    pub branch: String,
    /// The branch the agent's branch started from (for diffstats and merges).
    pub base: String,
}

/// The main working directory of the repository that contains `dir`.
pub fn find_repo_root(dir: &Path) -> Result<PathBuf> {
    let repo = Repository::discover(dir)
        .map_err(|_| anyhow!("{} is not inside a git repository (run `git init` first)", dir.display()))?;
    if repo.is_bare() {
        bail!("{} is a bare repository: muster needs a working tree", repo.path().display());
    }
    let root = if repo.is_worktree() {
        // From inside an agent's worktree, the crew lives in the main working tree.
        repo.commondir().parent().map(Path::to_path_buf).context("locating the main worktree")?
    } else {
        repo.workdir().context("repository has no working directory")?.to_path_buf()
    };
    Ok(root.canonicalize().unwrap_or(root))
}

pub fn worktree_path(root: &Path, name: &str) -> PathBuf {
    root.join(".muster").join("worktrees").join(name)
}

pub fn branch_name(name: &str) -> String {
    format!("muster/{name}")
}

/// What never shows up as an agent's work, in any worktree: muster's own folder, Claude's local settings that
/// muster writes, and editors' swap files (an agent running vim left `.README.md.swp` to be merged). A
/// repository's own `.gitignore` can take a pattern back (`!*.swp`): it comes before `info/exclude`.
const EXCLUDED: [&str; 3] = ["/.muster/", ".claude/settings.local.json", "*.sw[po]"];

/// Make sure `EXCLUDED`, and the `extra` patterns an agent's preset names (its CLI's own history files), never
/// show up as changes.
pub fn ensure_excluded(root: &Path) -> Result<()> {
    exclude(root, &[])
}

pub fn exclude(root: &Path, extra: &[String]) -> Result<()> {
    let repo = Repository::open(root)?;
    let info = repo.commondir().join("info");
    std::fs::create_dir_all(&info).context("creating .git/info")?;
    let exclude = info.join("exclude");
    let current = std::fs::read_to_string(&exclude).unwrap_or_default();
    let mut add = String::new();
    for pattern in EXCLUDED.iter().copied().chain(extra.iter().map(String::as_str)) {
        let pattern = pattern.trim();
        if pattern.is_empty() || pattern.starts_with('#') || pattern.contains('\n') {
            continue;
        }
        if !current.lines().any(|l| l.trim() == pattern) && !add.lines().any(|l| l == pattern) {
            add.push_str(pattern);
            add.push('\n');
        }
    }
    if !add.is_empty() {
        let sep = if current.is_empty() || current.ends_with('\n') { "" } else { "\n" };
        std::fs::write(&exclude, format!("{current}{sep}# muster\n{add}")).context("writing .git/info/exclude")?;
    }
    Ok(())
}

/// The name of the branch checked out in the main worktree, or the commit id when detached.
pub fn current_branch(root: &Path) -> Result<String> {
    let repo = Repository::open(root)?;
    let head = repo.head().context("the repository has no commits yet: make a first commit")?;
    Ok(if head.is_branch() {
        head.shorthand().unwrap_or("HEAD").to_string()
    } else {
        head.peel_to_commit()?.id().to_string()
    })
}

/// The agent's worktree, when it exists: a real folder at `.muster/worktrees/<name>` (no symlink on the way)
/// holding a worktree of this repository. A symlink (committed to the repository?) or another repository there
/// is an error: it would send the agent, and its checkpoints, somewhere else.
pub fn existing_worktree(root: &Path, name: &str) -> Result<Option<PathBuf>> {
    crate::config::crew::validate_name(name).map_err(anyhow::Error::msg)?;
    let path = worktree_path(root, name);
    if !crate::safefs::existing_real_dir(root, Path::new(".muster/worktrees").join(name))? {
        return Ok(None);
    }
    if !path.join(".git").is_file() {
        return Ok(None);
    }
    let (Ok(wt), Ok(repo)) = (Repository::open(&path), Repository::open(root)) else { return Ok(None) };
    if wt.commondir().canonicalize().ok() != repo.commondir().canonicalize().ok() {
        bail!("{} is a git repository other than this one: muster does not run an agent there", path.display());
    }
    Ok(Some(path))
}

/// Create or reuse the agent's worktree and branch.
pub fn ensure_worktree(root: &Path, name: &str, base: Option<&str>) -> Result<WorktreeInfo> {
    ensure_excluded(root)?;
    let repo = Repository::open(root).with_context(|| format!("opening {}", root.display()))?;
    crate::safefs::real_dir(root, ".muster/worktrees")?;
    let existing = existing_worktree(root, name)?;
    let path = worktree_path(root, name);
    let branch = branch_name(name);
    let base = match base {
        Some(b) => b.to_string(),
        None => current_branch(root)?,
    };
    if let Some(path) = existing {
        return Ok(WorktreeInfo { path, branch, base });
    }
    let base_commit = repo
        .revparse_single(&base)
        .and_then(|o| o.peel_to_commit())
        .with_context(|| format!("base branch `{base}` of agent `{name}` not found"))?;
    let branch_ref = match repo.find_branch(&branch, BranchType::Local) {
        Ok(b) => b,
        Err(_) => repo.branch(&branch, &base_commit, false).with_context(|| format!("creating branch {branch}"))?,
    };
    let wt_name = format!("muster-{name}");
    // Metadata left from a worktree whose folder was deleted blocks re-adding it.
    if let Ok(old) = repo.find_worktree(&wt_name) {
        if old.validate().is_err() {
            old.prune(Some(WorktreePruneOptions::new().valid(true).working_tree(true)))
                .with_context(|| format!("pruning stale worktree {wt_name}"))?;
        }
    }
    let reference = branch_ref.into_reference();
    let mut opts = WorktreeAddOptions::new();
    opts.reference(Some(&reference));
    repo.worktree(&wt_name, &path, Some(&opts))
        .with_context(|| format!("adding worktree {} on {branch}", path.display()))?;
    Ok(WorktreeInfo { path, branch, base })
}

pub fn worktree_status(root: &Path, name: &str, base: &str) -> Result<WorktreeStatus> {
    let path = worktree_path(root, name);
    let mut status = WorktreeStatus::default();
    if let Ok(wt) = Repository::open(&path) {
        let mut opts = StatusOptions::new();
        opts.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false);
        status.changed_files = wt.statuses(Some(&mut opts))?.len();
    }
    let repo = Repository::open(root)?;
    if let (Ok(branch), Ok(base)) = (
        repo.revparse_single(&branch_name(name)).and_then(|o| o.peel_to_commit()),
        repo.revparse_single(base).and_then(|o| o.peel_to_commit()),
    ) {
        let mut walk = repo.revwalk()?;
        walk.push(branch.id())?;
        walk.hide(base.id())?;
        status.unmerged_commits = walk.count();
    }
    Ok(status)
}

/// Give a stopped agent's worktree, branch, checkpoints and checkpoint index a new name: the worktree moves to
/// `.muster/worktrees/<new>` (git records the move, and its administrative folder takes the new name too, so the
/// old name is free again), `muster/<old>` becomes `muster/<new>`, and its checkpoint and rollback refs follow.
pub fn rename(root: &Path, old: &str, new: &str) -> Result<()> {
    for n in [old, new] {
        crate::config::crew::validate_name(n).map_err(anyhow::Error::msg)?;
    }
    let repo = Repository::open(root).with_context(|| format!("opening {}", root.display()))?;
    let (from, to) = (worktree_path(root, old), worktree_path(root, new));
    if std::fs::symlink_metadata(&to).is_ok() {
        bail!("{} exists already", to.display());
    }
    if repo.find_branch(&branch_name(new), BranchType::Local).is_ok() {
        bail!("branch {} exists already", branch_name(new));
    }
    let (admin_old, admin_new) = (format!("muster-{old}"), format!("muster-{new}"));
    if repo.find_worktree(&admin_new).is_ok() {
        bail!("git has a worktree named {admin_new} already");
    }
    if existing_worktree(root, old)?.is_some() {
        // libgit2 cannot move a worktree: git's own command records it.
        let out = std::process::Command::new("git")
            .args(["worktree", "move"])
            .arg(&from)
            .arg(&to)
            .current_dir(root)
            .output()
            .context("running git worktree move")?;
        if !out.status.success() {
            bail!("git worktree move: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        // Its administrative folder, by the new name: the worktree's `.git` file points there.
        let admin = repo.commondir().join("worktrees");
        if admin.join(&admin_old).is_dir() {
            std::fs::rename(admin.join(&admin_old), admin.join(&admin_new))
                .context("renaming git's worktree folder")?;
            let gitdir = admin.join(&admin_new);
            crate::safefs::write_file(&to, ".git", format!("gitdir: {}\n", gitdir.display()).as_bytes())?;
            let index = (gitdir.join(format!("muster-index-{old}")), gitdir.join(format!("muster-index-{new}")));
            if index.0.exists() {
                std::fs::rename(&index.0, &index.1).context("renaming the checkpoint index")?;
            }
        }
    }
    if let Ok(mut b) = repo.find_branch(&branch_name(old), BranchType::Local) {
        b.rename(&branch_name(new), false).with_context(|| format!("renaming branch {}", branch_name(old)))?;
    }
    for prefix in ["refs/muster/checkpoints", "refs/muster/rollback"] {
        let (old_ref, new_ref) = (format!("{prefix}/{old}"), format!("{prefix}/{new}"));
        let names: Vec<String> = repo
            .references()?
            .flatten()
            .filter_map(|r| r.name().ok().map(String::from))
            .filter(|n| n == &old_ref || n.starts_with(&format!("{old_ref}/")))
            .collect();
        for name in names {
            let mut r = repo.find_reference(&name)?;
            r.rename(&name.replacen(&old_ref, &new_ref, 1), false, &format!("muster: {old} renamed {new}"))?;
        }
    }
    Ok(())
}

/// Remove the agent's worktree and branch. Refuses when work would be lost, unless `force` (the operator
/// confirmed).
pub fn remove_worktree(root: &Path, name: &str, base: &str, force: bool) -> Result<()> {
    let status = worktree_status(root, name, base)?;
    if !force && !status.is_safe_to_remove() {
        bail!(
            "worktree of `{name}` has {} and {}: not removed",
            crate::text::counted(status.changed_files, "changed file"),
            crate::text::counted(status.unmerged_commits, "unmerged commit")
        );
    }
    crate::config::crew::validate_name(name).map_err(anyhow::Error::msg)?;
    crate::safefs::remove_inside(&root.join(".muster").join("worktrees"), &worktree_path(root, name))?;
    let repo = Repository::open(root)?;
    archive(&repo, name)?;
    if let Ok(wt) = repo.find_worktree(&format!("muster-{name}")) {
        wt.prune(Some(WorktreePruneOptions::new().valid(true).working_tree(true)))?;
    }
    if let Ok(mut b) = repo.find_branch(&branch_name(name), BranchType::Local) {
        if force || status.unmerged_commits == 0 {
            b.delete()?;
        }
    }
    Ok(())
}

/// Where a removed agent's branch tip and checkpoints are kept, until the operator prunes them.
pub const REMOVED_PREFIX: &str = "refs/muster/removed";

/// Keep what a removed agent made reachable from a private ref: its branch tip as `…/<name>/<time>/branch`, its
/// checkpoints (and rollback rescue) moved to `…/<name>/<time>/checkpoints/<n>`, so `git gc` keeps them and a new
/// agent of the same name starts its own numbering.
pub fn archive(repo: &Repository, name: &str) -> Result<Option<String>> {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut prefix = format!("{REMOVED_PREFIX}/{name}/{stamp}");
    let mut n = 1;
    while repo.references_glob(&format!("{prefix}/*")).map(|mut r| r.next().is_some()).unwrap_or(false) {
        n += 1;
        prefix = format!("{REMOVED_PREFIX}/{name}/{stamp}.{n}");
    }
    let mut kept = 0;
    if let Ok(tip) = repo.find_branch(&branch_name(name), BranchType::Local).map(|b| b.into_reference()) {
        if let Some(oid) = tip.target() {
            repo.reference(&format!("{prefix}/branch"), oid, false, "muster: agent removed")?;
            kept += 1;
        }
    }
    let mut moved = Vec::new();
    for glob in [format!("refs/muster/checkpoints/{name}/*"), format!("refs/muster/rollback/{name}")] {
        for r in repo.references_glob(&glob)?.flatten() {
            if let (Some(full), Some(oid)) = (r.name().ok().map(str::to_string), r.target()) {
                moved.push((full, oid));
            }
        }
    }
    for (full, oid) in moved {
        let leaf = match full.rsplit_once('/') {
            Some((_, n)) if full.contains("/checkpoints/") => format!("checkpoints/{n}"),
            _ => "rollback".to_string(),
        };
        repo.reference(&format!("{prefix}/{leaf}"), oid, false, "muster: agent removed")?;
        repo.find_reference(&full)?.delete()?;
        kept += 1;
    }
    Ok((kept > 0).then_some(prefix))
}

/// A removed agent's kept work: the ref folder, its branch tip and how many checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Removed {
    pub name: String,
    pub prefix: String,
    pub removed_at: u64,
    pub tip: Option<String>,
    pub checkpoints: usize,
}

pub fn list_removed(root: &Path) -> Result<Vec<Removed>> {
    let repo = Repository::open(root)?;
    let mut out: BTreeMap<String, Removed> = BTreeMap::new();
    for r in repo.references_glob(&format!("{REMOVED_PREFIX}/*"))?.flatten() {
        let Some(full) = r.name().ok() else { continue };
        let Some(rest) = full.strip_prefix(&format!("{REMOVED_PREFIX}/")) else { continue };
        let mut parts = rest.splitn(3, '/');
        let (Some(name), Some(stamp), Some(leaf)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let prefix = format!("{REMOVED_PREFIX}/{name}/{stamp}");
        let e = out.entry(prefix.clone()).or_insert_with(|| Removed {
            name: name.to_string(),
            prefix,
            removed_at: stamp.split('.').next().and_then(|s| s.parse().ok()).unwrap_or(0),
            tip: None,
            checkpoints: 0,
        });
        if leaf == "branch" {
            e.tip = r.target().map(|o| o.to_string());
        } else if leaf.starts_with("checkpoints/") {
            e.checkpoints += 1;
        }
    }
    Ok(out.into_values().collect())
}

/// Forget what removed agents left (all of them, or one name's): their commits become garbage for `git gc`.
pub fn prune_removed(root: &Path, name: Option<&str>) -> Result<usize> {
    let repo = Repository::open(root)?;
    let glob = match name {
        Some(n) => format!("{REMOVED_PREFIX}/{n}/*"),
        None => format!("{REMOVED_PREFIX}/*"),
    };
    let names: Vec<String> =
        repo.references_glob(&glob)?.flatten().filter_map(|r| r.name().ok().map(str::to_string)).collect();
    for n in &names {
        repo.find_reference(n)?.delete()?;
    }
    Ok(names.len())
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::process::Command;

    /// A throwaway repository with one commit on `main`.
    pub fn temp_repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let out = Command::new("git").args(args).current_dir(dir.path()).output().unwrap();
            assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        git(&["init", "-q", "-b", "main"]);
        git(&["config", "user.email", "t@example.com"]);
        git(&["config", "user.name", "t"]);
        std::fs::write(dir.path().join("a.txt"), "one\ntwo\n").unwrap();
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "init"]);
        dir
    }

    /// A rename moves the worktree (uncommitted work and all), the branch, the checkpoints and git's own record of
    /// the worktree; the old name is free again for a new agent.
    #[test]
    fn a_rename_moves_worktree_branch_and_checkpoints() {
        let repo = temp_repo();
        let root = find_repo_root(repo.path()).unwrap();
        let info = ensure_worktree(&root, "old", None).unwrap();
        std::fs::write(info.path.join("work.txt"), "uncommitted\n").unwrap();
        let (cp, _) = crate::git::checkpoint::create(&info.path, "old", "manual").unwrap();
        rename(&root, "old", "new").unwrap();
        let moved = worktree_path(&root, "new");
        assert!(!info.path.exists());
        assert_eq!(std::fs::read_to_string(moved.join("work.txt")).unwrap(), "uncommitted\n");
        let git = |dir: &Path, args: &[&str]| {
            let out = Command::new("git").args(args).current_dir(dir).output().unwrap();
            assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(git(&moved, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "muster/new");
        assert!(git(&moved, &["status", "--porcelain"]).contains("work.txt"));
        assert!(git(&root, &["worktree", "list"]).contains(".muster/worktrees/new"));
        let cps = crate::git::checkpoint::list(&moved, "new").unwrap();
        assert_eq!(cps.iter().map(|c| &c.id).collect::<Vec<_>>(), [&cp.id]);
        assert!(crate::git::checkpoint::list(&moved, "old").unwrap().is_empty());
        // The next checkpoint goes on from the moved index, numbered after the first.
        std::fs::write(moved.join("work.txt"), "more\n").unwrap();
        let (next, _) = crate::git::checkpoint::create(&moved, "new", "manual").unwrap();
        assert_eq!(next.n, 2);
        // The old name is free: a new agent gets a fresh worktree there; a taken name is refused.
        ensure_worktree(&root, "old", None).unwrap();
        assert!(git(&root, &["worktree", "list"]).contains(".muster/worktrees/old"));
        let e = rename(&root, "old", "new").unwrap_err().to_string();
        assert!(e.contains("exists already"), "{e}");
    }

    /// An editor's swap file and a CLI's own history are never an agent's work: not counted, never merged.
    #[test]
    fn swap_files_and_cli_histories_are_not_work() {
        let repo = temp_repo();
        let root = find_repo_root(repo.path()).unwrap();
        let info = ensure_worktree(&root, "v", None).unwrap();
        exclude(&root, &[".aider*".to_string()]).unwrap();
        exclude(&root, &[".aider*".to_string()]).unwrap();
        std::fs::write(info.path.join(".a.txt.swp"), [0u8, 1, 2, 3]).unwrap();
        std::fs::write(info.path.join(".aider.chat.history.md"), "# chat\n").unwrap();
        assert_eq!(crate::git::diffstat::diffstat(&info.path, "main").unwrap(), Default::default());
        let exclude = std::fs::read_to_string(root.join(".git/info/exclude")).unwrap();
        assert_eq!(exclude.lines().filter(|l| *l == ".aider*").count(), 1, "{exclude}");
    }

    #[test]
    fn creates_and_reuses_worktree() {
        let repo = temp_repo();
        let root = find_repo_root(repo.path()).unwrap();
        let info = ensure_worktree(&root, "api", None).unwrap();
        assert_eq!(info.branch, "muster/api");
        assert_eq!(info.base, "main");
        assert!(info.path.join("a.txt").exists());
        let exclude = std::fs::read_to_string(root.join(".git/info/exclude")).unwrap();
        assert!(exclude.contains("/.muster/"));
        // Reopening reuses it, keeping files in it.
        std::fs::write(info.path.join("new.txt"), "x").unwrap();
        let again = ensure_worktree(&root, "api", None).unwrap();
        assert_eq!(again, info);
        assert!(again.path.join("new.txt").exists());
        // The main worktree sees no change from muster's files.
        let out = Command::new("git").args(["status", "--porcelain"]).current_dir(&root).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
        // From inside the agent's worktree the root is the main one.
        assert_eq!(find_repo_root(&info.path).unwrap(), root);
    }

    #[test]
    fn removed_agents_work_survives_gc_until_pruned() {
        let repo = temp_repo();
        let root = find_repo_root(repo.path()).unwrap();
        let info = ensure_worktree(&root, "w", None).unwrap();
        std::fs::write(info.path.join("a.txt"), "agent work\n").unwrap();
        let git = |dir: &Path, args: &[&str]| {
            let out = Command::new("git").args(args).current_dir(dir).output().unwrap();
            assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        git(&info.path, &["commit", "-qam", "work"]);
        let tip = git(&info.path, &["rev-parse", "HEAD"]);
        std::fs::write(info.path.join("b.txt"), "uncommitted\n").unwrap();
        let (cp, _) = crate::git::checkpoint::create(&info.path, "w", "test").unwrap();
        remove_worktree(&root, "w", "main", true).unwrap();
        assert!(!info.path.exists());
        git(&root, &["reflog", "expire", "--expire=now", "--all"]);
        git(&root, &["gc", "-q", "--prune=now"]);
        assert_eq!(git(&root, &["cat-file", "-t", &tip]), "commit");
        assert_eq!(git(&root, &["cat-file", "-t", &cp.id]), "commit");
        let kept = list_removed(&root).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].name.as_str(), kept[0].tip.as_deref(), kept[0].checkpoints), ("w", Some(tip.as_str()), 1));
        // A new agent of the same name starts its own checkpoints.
        assert!(crate::git::checkpoint::list(&root, "w").unwrap().is_empty());
        assert_eq!(prune_removed(&root, Some("w")).unwrap(), 2);
        assert!(list_removed(&root).unwrap().is_empty());
    }

    #[test]
    fn a_symlinked_or_foreign_worktree_folder_is_refused() {
        let repo = temp_repo();
        let other = temp_repo();
        let root = find_repo_root(repo.path()).unwrap();
        std::fs::create_dir_all(root.join(".muster/worktrees")).unwrap();
        std::os::unix::fs::symlink(other.path(), root.join(".muster/worktrees/x")).unwrap();
        let err = format!("{:#}", ensure_worktree(&root, "x", None).unwrap_err());
        assert!(err.contains("symbolic link"), "{err}");
        // Removing it deletes the link only.
        remove_worktree(&root, "x", "main", true).unwrap();
        assert!(other.path().join("a.txt").exists());
        // Another repository's worktree placed there is not this repository's agent.
        let foreign = ensure_worktree(&find_repo_root(other.path()).unwrap(), "y", None).unwrap();
        std::fs::rename(&foreign.path, root.join(".muster/worktrees/y")).unwrap();
        let err = format!("{:#}", ensure_worktree(&root, "y", None).unwrap_err());
        assert!(err.contains("other than this one"), "{err}");
        assert!(ensure_worktree(&root, "../../x", None).is_err());
    }

    #[test]
    fn refuses_to_remove_dirty_or_unmerged_worktree() {
        let repo = temp_repo();
        let root = find_repo_root(repo.path()).unwrap();
        let info = ensure_worktree(&root, "w", None).unwrap();
        std::fs::write(info.path.join("a.txt"), "changed\n").unwrap();
        let err = remove_worktree(&root, "w", "main", false).unwrap_err();
        assert!(err.to_string().contains("1 changed file and"), "{err}");
        assert!(info.path.join("a.txt").exists());
        // Commit it: now it is clean but unmerged.
        let git = |args: &[&str]| Command::new("git").args(args).current_dir(&info.path).output().unwrap();
        git(&["commit", "-qam", "work"]);
        let err = remove_worktree(&root, "w", "main", false).unwrap_err();
        assert!(err.to_string().contains("1 unmerged commit:"), "{err}");
        // With confirmation it goes.
        remove_worktree(&root, "w", "main", true).unwrap();
        assert!(!info.path.exists());
    }

    #[test]
    fn clean_worktree_is_removed_and_can_be_recreated() {
        let repo = temp_repo();
        let root = find_repo_root(repo.path()).unwrap();
        ensure_worktree(&root, "c", None).unwrap();
        remove_worktree(&root, "c", "main", false).unwrap();
        let info = ensure_worktree(&root, "c", None).unwrap();
        assert!(info.path.join("a.txt").exists());
        // A folder deleted under muster's feet is recreated.
        std::fs::remove_dir_all(&info.path).unwrap();
        assert!(ensure_worktree(&root, "c", None).unwrap().path.join("a.txt").exists());
    }

    #[test]
    fn outside_a_repository_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_repo_root(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not inside a git repository"), "{err}");
    }

    #[test]
    fn unknown_base_branch_is_named() {
        let repo = temp_repo();
        let err = ensure_worktree(repo.path(), "x", Some("nope")).unwrap_err();
        assert!(format!("{err:#}").contains("base branch `nope`"), "{err:#}");
    }
}
