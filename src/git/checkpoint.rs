//! Checkpoints: snapshots of an agent's worktree as it is on disk, stored as commits on private refs
//! (`refs/muster/checkpoints/<agent>/<n>`) that never touch the user's index, HEAD or branches; rollback to any
//! of them, whole or file by file, always preceded by a rescue checkpoint so it can be undone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use git2::{Delta, DiffOptions, Oid, Repository, Signature, Tree};
use serde::{Deserialize, Serialize};

use super::watch::Changes;
pub use crate::protocol::git::{Checkpoint, DiffBase, FileDiff, LineKind};

const PREFIX: &str = "refs/muster/checkpoints";
const UNDO_PREFIX: &str = "refs/muster/rollback";

/// How a checkpoint read a worktree that kept changing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settle {
    /// Rounds of reading again what changed during the previous read.
    pub rereads: u32,
    /// Paths still changing after the last round: recorded in the checkpoint, and to be read next time.
    pub unsettled: Vec<String>,
    /// Nested git repositories left out of the snapshot.
    pub skipped: Vec<String>,
}

/// How many times a checkpoint reads again what changed while it read, before it records what is still changing.
pub const MAX_REREADS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackReport {
    /// The checkpoint taken just before, which "undo rollback" returns to.
    pub rescue: u32,
    pub target: u32,
    pub changed: Vec<String>,
}

fn refname(agent: &str, n: u32) -> String {
    format!("{PREFIX}/{agent}/{n}")
}

fn open(worktree: &Path) -> Result<Repository> {
    if !worktree.exists() {
        bail!("worktree {} does not exist (deleted?)", worktree.display());
    }
    Repository::open(worktree).with_context(|| format!("{} is not a git worktree", worktree.display()))
}

fn trailer<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(": ")))
}

fn list_trailer(msg: &str, key: &str) -> Vec<String> {
    trailer(msg, key).map(|v| v.split(", ").filter(|p| !p.is_empty()).map(str::to_string).collect()).unwrap_or_default()
}

fn parse(n: u32, commit: &git2::Commit) -> Checkpoint {
    let msg = commit.message().unwrap_or("");
    let num = |k: &str| trailer(msg, k).and_then(|v| v.parse().ok()).unwrap_or(0);
    Checkpoint {
        n,
        id: commit.id().to_string(),
        time: commit.time().seconds(),
        trigger: trailer(msg, "Muster-Trigger").unwrap_or("?").to_string(),
        head: trailer(msg, "Muster-Head").unwrap_or("").to_string(),
        branch: trailer(msg, "Muster-Branch").unwrap_or("").to_string(),
        files: num("Muster-Files"),
        added: num("Muster-Added"),
        removed: num("Muster-Removed"),
        unsettled: list_trailer(msg, "Muster-Unsettled"),
        skipped: list_trailer(msg, "Muster-Skipped"),
        green: false,
    }
}

/// Checkpoint numbers and commit ids of an agent, oldest first. Refs that do not parse are skipped.
fn numbered(repo: &Repository, agent: &str) -> Result<Vec<(u32, Oid)>> {
    let mut out = Vec::new();
    for r in repo.references_glob(&format!("{PREFIX}/{agent}/*"))?.flatten() {
        let Ok(name) = r.name() else { continue };
        let Some(n) = name.rsplit('/').next().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(oid) = r.target() {
            out.push((n, oid));
        }
    }
    out.sort_by_key(|(n, _)| *n);
    Ok(out)
}

/// The newest checkpoint's number and commit: from the refs' names alone, so only its own ref file is read.
fn latest(repo: &Repository, agent: &str) -> Result<Option<(u32, Oid)>> {
    let mut names = repo.references_glob(&format!("{PREFIX}/{agent}/*"))?;
    let newest = names.names().flatten().filter_map(|name| name.rsplit('/').next()?.parse::<u32>().ok()).max();
    Ok(newest.and_then(|n| Some((n, repo.refname_to_id(&refname(agent, n)).ok()?))))
}

/// An agent's checkpoints, newest first.
pub fn list(worktree: &Path, agent: &str) -> Result<Vec<Checkpoint>> {
    let repo = open(worktree)?;
    let mut out = Vec::new();
    for (n, oid) in numbered(&repo, agent)?.into_iter().rev() {
        match repo.find_commit(oid) {
            Ok(c) => out.push(parse(n, &c)),
            Err(_) => tracing::warn!("checkpoint {n} of {agent} points to a missing commit"),
        }
    }
    Ok(out)
}

fn find<'r>(repo: &'r Repository, agent: &str, n: u32) -> Result<git2::Commit<'r>> {
    let r = repo.find_reference(&refname(agent, n)).map_err(|_| anyhow!("checkpoint {n} of {agent} not found"))?;
    r.peel_to_commit().map_err(|e| anyhow!("checkpoint {n} of {agent} is corrupt: {}", e.message()))
}

/// The tree of the worktree as it is on disk (tracked and untracked files that are not ignored, deletions,
/// executable bits, symlinks), written to the object database. It goes through muster's own index file beside
/// the worktree's (seeded from it): the user's index is never written, and the stat cache kept in ours means
/// only files changed since the last checkpoint are read again. With `Changes::Paths` (from a watcher) only those
/// paths are even looked at; everything else is taken as it was at the last checkpoint through this index.
///
/// The index is returned unsaved: the caller saves it once the objects it names are on disk.
///
/// The agent keeps running meanwhile: `again` says what changed while the files were read (from the watcher's
/// barrier), and those paths are read again, up to `MAX_REREADS` times; what still changes after that is
/// reported in the `Settle`.
fn disk_tree(
    repo: &Repository,
    agent: &str,
    changes: &Changes,
    again: &mut dyn FnMut() -> Option<Changes>,
) -> Result<(Oid, git2::Index, Settle)> {
    let path = repo.path().join(format!("muster-index-{agent}"));
    let users = repo.path().join("index");
    let mut changes = changes;
    if !path.exists() {
        // A new index knows nothing of the files' state: look at all of them.
        changes = &Changes::All;
        if users.exists() {
            std::fs::copy(&users, &path).context("seeding the checkpoint index")?;
        }
    }
    let mut index = git2::Index::open(&path).context("opening the checkpoint index")?;
    // Binds the index to this in-memory repository only; nothing on disk changes.
    repo.set_index(&mut index)?;
    let mut settle = Settle::default();
    let mut unread = update_index(repo, &mut index, changes, &mut settle.skipped)?;
    loop {
        // Files that could not be read (rewritten as they were read) are read again with the changes.
        let more = match again() {
            Some(Changes::All) => Some(Changes::All),
            Some(Changes::Paths(mut p)) => {
                p.extend(unread.iter().cloned());
                Some(Changes::Paths(p))
            }
            None if unread.is_empty() => None,
            None => Some(Changes::Paths(unread.clone())),
        };
        let Some(more) = more else { break };
        if settle.rereads == MAX_REREADS {
            if let Some(path) = unread.first() {
                bail!("reading {path}: it kept changing as it was read");
            }
            settle.unsettled = match more {
                Changes::Paths(mut p) => {
                    p.sort();
                    p.dedup();
                    p
                }
                Changes::All => vec!["*".to_string()],
            };
            break;
        }
        // A writer caught mid-file usually finishes within milliseconds: each round gives it a moment longer.
        std::thread::sleep(std::time::Duration::from_millis(10 << settle.rereads));
        settle.rereads += 1;
        if let Changes::Paths(p) = &more {
            // Read these again whatever their stat says: libgit2 may have recorded the size and time of a file
            // that grew as it was read, next to the content it read before.
            index.remove_all(p.iter(), None).context("forgetting files to read again")?;
        }
        unread = update_index(repo, &mut index, &more, &mut settle.skipped)?;
    }
    let tree = index.write_tree().context("writing the snapshot tree")?;
    Ok((tree, index, settle))
}

/// A file's size and modification time as the index records them.
fn stat_now(path: &Path) -> Option<(u32, i32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    Some((m.size() as u32, m.mtime() as i32, m.mtime_nsec() as u32))
}

/// Bring the index up to date with the worktree on disk, looking only at what `changes` names. Returns the
/// files that changed as they were read (libgit2 reports a file that shrank under it as unreadable): their
/// entries are left as they were, for the caller to read again. A git repository nested in the worktree is left
/// out and named in `skipped` (libgit2 cannot add it as files, and its history is its own).
fn update_index(
    repo: &Repository,
    index: &mut git2::Index,
    changes: &Changes,
    skipped: &mut Vec<String>,
) -> Result<Vec<String>> {
    // One scan of the worktree against the index's stat cache; only what differs is read and hashed.
    let mut opts = DiffOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true).include_typechange(true).update_index(true);
    if let Changes::Paths(paths) = changes {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        // Exact paths (a folder covers what is below it): libgit2 then reads only those parts of the tree.
        opts.disable_pathspec_match(true);
        for p in paths {
            opts.pathspec(p);
        }
    }
    // libgit2 hashes a file whose stat changed as it diffs; a file rewritten under it meanwhile fails that read
    // (short, class Os). The agent is running: look again, a few times.
    let mut tries = 0;
    let diff = loop {
        match repo.diff_index_to_workdir(Some(index), Some(&mut opts)) {
            Ok(diff) => break diff,
            Err(e) if e.class() == git2::ErrorClass::Os && tries < 5 => tries += 1,
            Err(e) => return Err(e).context("reading the worktree's files"),
        }
    };
    let mut removed = Vec::new();
    let mut added = Vec::new();
    for d in diff.deltas() {
        let Some(path) = d.new_file().path().or(d.old_file().path()).map(Path::to_path_buf) else { continue };
        match d.status() {
            Delta::Deleted => removed.push(path),
            Delta::Untracked | Delta::Added | Delta::Modified | Delta::Typechange => added.push(path),
            _ => {}
        }
    }
    for path in removed {
        index.remove_path(&path).with_context(|| format!("recording the deletion of {}", path.display()))?;
    }
    let mut unread = Vec::new();
    let workdir = repo.workdir().map(Path::to_path_buf).unwrap_or_default();
    for path in added {
        let rel = path.to_string_lossy().into_owned();
        if rel.ends_with('/') {
            // libgit2 names an untracked folder it did not enter, with its slash: a nested repository.
            if !skipped.contains(&rel) {
                skipped.push(rel);
            }
            continue;
        }
        match index.add_path(&path) {
            // libgit2 reads as many bytes as its stat said: a file that grew or was rewritten meanwhile was read
            // half-done. Its stat now, against the one recorded, tells.
            Ok(()) => {
                let recorded =
                    index.get_path(&path, 0).map(|e| (e.file_size, e.mtime.seconds(), e.mtime.nanoseconds()));
                if recorded != stat_now(&workdir.join(&path)) {
                    unread.push(rel);
                }
            }
            Err(e) => {
                // Deleted or rewritten while read: the agent is running. Read again; a file that cannot be
                // read at all is an error.
                let now = std::fs::symlink_metadata(workdir.join(&path));
                if now.is_err() || e.class() == git2::ErrorClass::Os {
                    unread.push(rel);
                } else {
                    return Err(e).with_context(|| format!("reading {}", path.display()));
                }
            }
        }
    }
    Ok(unread)
}

/// The tree of the worktree on disk, its objects written and muster's index saved.
fn saved_disk_tree(repo: &Repository, agent: &str) -> Result<Oid> {
    let (tree, mut index, _) = disk_tree(repo, agent, &Changes::All, &mut || None)?;
    index.write().with_context(|| crate::safefs::write_failure(repo.path(), "saving the checkpoint index"))?;
    Ok(tree)
}

fn head_info(repo: &Repository) -> (Option<Oid>, String) {
    match repo.head() {
        Ok(h) => (h.target(), if h.is_branch() { h.name().unwrap_or("").to_string() } else { String::new() }),
        Err(_) => (None, String::new()),
    }
}

/// libgit2 checks, for every entry of every tree it writes, that the object exists: one file opened per entry
/// (10,000 for 100 changed folders of 100 files), most of a checkpoint's time. Checkpoint trees are written from
/// an index whose blobs were just written or read, so the check buys nothing here. It is a process-wide libgit2
/// setting and only relaxes validation of objects muster itself creates.
fn relax_tree_validation() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| git2::opts::strict_object_creation(false));
}

/// Whether an agent's worktree is as it started: no checkpoint of it yet and nothing changed on disk (tracked
/// or new). An automatic checkpoint then records nothing ("#1 turn 0 files" at every agent's first idle).
pub fn untouched(worktree: &Path, agent: &str) -> bool {
    let Ok(repo) = open(worktree) else { return false };
    if latest(&repo, agent).ok().flatten().is_some() {
        return false;
    }
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).include_ignored(false);
    repo.statuses(Some(&mut opts)).is_ok_and(|s| s.is_empty())
}

/// Take a checkpoint. Returns it and whether it is new (a tree and HEAD equal to the last checkpoint's make
/// none, and the last one is returned).
pub fn create(worktree: &Path, agent: &str, trigger: &str) -> Result<(Checkpoint, bool)> {
    create_with(worktree, agent, trigger, &Changes::All)
}

/// Take a checkpoint, looking only at what `changes` names (see `git::watch`).
pub fn create_with(worktree: &Path, agent: &str, trigger: &str, changes: &Changes) -> Result<(Checkpoint, bool)> {
    create_settled(worktree, agent, trigger, changes, &mut || None).map(|(cp, new, _)| (cp, new))
}

/// Take a checkpoint of a worktree whose agent keeps running: `again` gives what changed while it was read.
pub fn create_settled(
    worktree: &Path,
    agent: &str,
    trigger: &str,
    changes: &Changes,
    again: &mut dyn FnMut() -> Option<Changes>,
) -> Result<(Checkpoint, bool, Settle)> {
    let repo = open(worktree)?;
    relax_tree_validation();
    let (cp, new, settle) = create_in(&repo, agent, trigger, changes, again)?;
    if new {
        // Only once its objects are written does a ref point to the checkpoint.
        let oid = Oid::from_str(&cp.id)?;
        repo.reference(&refname(agent, cp.n), oid, false, "muster checkpoint")
            .with_context(|| format!("writing {}", refname(agent, cp.n)))?;
    }
    Ok((cp, new, settle))
}

/// Merge checkpoint packs after checkpoints were taken (see `pack::tidy`), with the agent running again: it is
/// housekeeping, so a failure is only logged.
pub fn tidy(worktree: &Path) {
    match open(worktree).and_then(|repo| super::pack::tidy(&repo)) {
        Ok(0) => {}
        Ok(n) => tracing::debug!("merged {n} checkpoint packs of {}", worktree.display()),
        Err(e) => tracing::warn!("merging checkpoint packs of {}: {e:#}", worktree.display()),
    }
}

fn create_in(
    repo: &Repository,
    agent: &str,
    trigger: &str,
    changes: &Changes,
    again: &mut dyn FnMut() -> Option<Changes>,
) -> Result<(Checkpoint, bool, Settle)> {
    // New objects stay in memory until they are written as one packfile below.
    let odb = repo.odb()?;
    let mempack = odb.add_new_mempack_backend(1000)?;
    let (tree_id, mut index, settle) = disk_tree(repo, agent, changes, again)?;
    let tree = repo.find_tree(tree_id)?;
    let (head, branch) = head_info(repo);
    let newest = latest(repo, agent)?;
    let previous = newest.and_then(|(n, oid)| repo.find_commit(oid).ok().map(|c| (n, c)));
    if let Some((n, prev)) = &previous {
        let prev_head = trailer(prev.message().unwrap_or(""), "Muster-Head").unwrap_or("");
        if prev.tree_id() == tree_id && prev_head == head.map(|h| h.to_string()).unwrap_or_default() {
            // Same tree: every object the index names is already on disk.
            index.write().with_context(|| crate::safefs::write_failure(repo.path(), "saving the checkpoint index"))?;
            return Ok((parse(*n, prev), false, settle));
        }
    }
    let prev_tree = previous.as_ref().and_then(|(_, c)| c.tree().ok());
    let base_tree = match &prev_tree {
        Some(t) => Some(t.clone()),
        None => head.and_then(|h| repo.find_commit(h).ok()).and_then(|c| c.tree().ok()),
    };
    let diff = repo.diff_tree_to_tree(base_tree.as_ref(), Some(&tree), None)?;
    let stats = diff.stats()?;
    let n = newest.map_or(1, |(n, _)| n + 1);
    let message = format!(
        "muster checkpoint {n} of {agent} ({trigger})\n\nMuster-Trigger: {trigger}\nMuster-Head: {}\n\
         Muster-Branch: {branch}\nMuster-Files: {}\nMuster-Added: {}\nMuster-Removed: {}\n{}",
        head.map(|h| h.to_string()).unwrap_or_default(),
        stats.files_changed(),
        stats.insertions(),
        stats.deletions(),
        [("Muster-Unsettled", &settle.unsettled), ("Muster-Skipped", &settle.skipped)]
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}: {}\n", v.join(", ")))
            .collect::<String>(),
    );
    let sig = Signature::now("muster", "muster@localhost")?;
    let parents: Vec<&git2::Commit> = previous.iter().map(|(_, c)| c).collect();
    // No update_ref: the commit is written, then pointed to by our private ref only.
    let oid = repo.commit(None, &sig, &sig, &message, &tree, &parents)?;
    super::pack::write_objects(repo, &odb, &new_objects(&diff, &tree, base_tree.is_none(), oid)?)?;
    mempack.reset()?;
    index.write().with_context(|| crate::safefs::write_failure(repo.path(), "saving the checkpoint index"))?;
    let made = parse(n, &repo.find_commit(oid)?);
    Ok((made, true, settle))
}

/// The objects a checkpoint adds: the commit, every blob that differs from the base tree (already on disk), and
/// the trees holding them — a tree differs exactly when something below it does. Without a base, all of them.
fn new_objects(diff: &git2::Diff, tree: &Tree, no_base: bool, commit: Oid) -> Result<Vec<Oid>> {
    let mut ids = vec![commit, tree.id()];
    if no_base {
        tree.walk(git2::TreeWalkMode::PreOrder, |_, entry| {
            // A submodule's commit lives in the submodule's repository.
            if entry.kind() != Some(git2::ObjectType::Commit) {
                ids.push(entry.id());
            }
            git2::TreeWalkResult::Ok
        })?;
        return Ok(ids);
    }
    let mut dirs = std::collections::BTreeSet::new();
    for d in diff.deltas() {
        let new = d.new_file();
        if !new.id().is_zero() && new.mode() != git2::FileMode::Commit {
            ids.push(new.id());
        }
        let path = new.path().or(d.old_file().path()).unwrap_or(Path::new(""));
        dirs.extend(path.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()).map(Path::to_path_buf));
    }
    for dir in dirs {
        // A folder that held only deleted files is gone from the new tree.
        if let Ok(entry) = tree.get_path(&dir) {
            ids.push(entry.id());
        }
    }
    Ok(ids)
}

fn check_not_locked(repo: &Repository) -> Result<()> {
    let lock = repo.path().join("index.lock");
    if lock.exists() {
        bail!("{} exists: another git command is running (or crashed); nothing was restored", lock.display());
    }
    Ok(())
}

/// What rolling back to `n` would do: the files that change on disk (only `files` when given), and whether
/// the branch moves (a whole rollback to a checkpoint taken on another commit).
pub fn rollback_preview(worktree: &Path, agent: &str, n: u32, files: Option<&[String]>) -> Result<(Vec<String>, bool)> {
    let repo = open(worktree)?;
    let target = find(&repo, agent, n)?;
    let moves_head = files.is_none() && Oid::from_str(&parse(n, &target).head).ok() != head_info(&repo).0;
    let current = repo.find_tree(saved_disk_tree(&repo, agent)?)?;
    let changed = changes(&repo, &current, &target.tree()?, files)?.into_iter().map(|c| c.path_string()).collect();
    Ok((changed, moves_head))
}

struct Change {
    path: PathBuf,
    /// The blob and mode to write, or None to delete.
    new: Option<(Oid, i32)>,
}

impl Change {
    fn path_string(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

fn changes(repo: &Repository, from: &Tree, to: &Tree, only: Option<&[String]>) -> Result<Vec<Change>> {
    let mut opts = DiffOptions::new();
    opts.include_typechange(true);
    let diff = repo.diff_tree_to_tree(Some(from), Some(to), Some(&mut opts))?;
    let mut out = Vec::new();
    for d in diff.deltas() {
        let path = d.new_file().path().or(d.old_file().path()).map(Path::to_path_buf).context("delta path")?;
        if let Some(only) = only {
            if !only.iter().any(|o| Path::new(o) == path) {
                continue;
            }
        }
        match d.status() {
            Delta::Deleted => out.push(Change { path, new: None }),
            Delta::Added | Delta::Modified | Delta::Typechange => {
                if d.status() == Delta::Typechange {
                    out.push(Change { path: path.clone(), new: None });
                }
                out.push(Change { path, new: Some((d.new_file().id(), i32::from(d.new_file().mode()))) })
            }
            _ => {}
        }
    }
    Ok(out)
}

fn remove_path(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        // A folder goes only when empty: its tracked files have deltas of their own, and what is left in it
        // (ignored files) was never part of a snapshot and is never touched.
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir(path);
            Ok(())
        }
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Write the changes: removals first, then each file's content.
fn apply(repo: &Repository, root: &Path, changes: &[Change]) -> Result<()> {
    for c in changes.iter().filter(|c| c.new.is_none()) {
        let p = root.join(&c.path);
        remove_path(&p).with_context(|| format!("removing {}", p.display()))?;
        // Folders emptied by the removal go too; a folder still holding anything (ignored files) stays.
        let mut dir = p.parent();
        while let Some(d) = dir.filter(|d| *d != root) {
            if std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
    for c in changes {
        let Some((oid, mode)) = c.new else { continue };
        write_restored(repo, root, &c.path, oid, mode)?;
    }
    Ok(())
}

/// Write one restored file as a new file renamed over the old one: a process holding the old file open for
/// writing keeps writing to the old inode, never into the restored content (rewriting in place left a file the
/// agent held open with NUL bytes). Folders on the way must be real folders in the worktree, not symlinks.
fn write_restored(repo: &Repository, root: &Path, path: &Path, oid: Oid, mode: i32) -> Result<()> {
    let p = root.join(path);
    let name = p.file_name().map(|f| f.to_string_lossy().into_owned()).context("file has a name")?;
    // Anything still in the way was not part of the snapshot (an ignored file): it is never removed, and the
    // rollback fails and puts everything back instead.
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => crate::safefs::real_dir(root, d)?,
        None => root.to_path_buf(),
    };
    let blob = repo.find_blob(oid)?;
    if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
        // Its tracked files are already removed; a folder still holding ignored files stays, and this fails.
        std::fs::remove_dir(&p).with_context(|| format!("{} holds files outside the snapshot", p.display()))?;
    }
    if mode == 0o120000 {
        let target = std::str::from_utf8(blob.content()).context("symlink target is not UTF-8")?;
        let tmp = dir.join(format!(".{name}.muster-restore"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp)?;
        return std::fs::rename(&tmp, &p).with_context(|| format!("replacing {}", p.display()));
    }
    let perm = if mode == 0o100755 { 0o755 } else { 0o644 };
    crate::safefs::write_file_mode(&dir, &name, blob.content(), perm)?;
    // The mode given at creation is cut by the umask; the snapshot's mode is what it had.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(perm))
        .with_context(|| format!("setting the mode of {}", p.display()))
}

/// Point HEAD's branch (or a detached HEAD) at `head` and reset the worktree's index to it, as `git reset`.
fn reset_head(repo: &Repository, head: &str, branch: &str) -> Result<()> {
    let Ok(oid) = Oid::from_str(head) else {
        return Ok(());
    };
    if head_info(repo).0 == Some(oid) {
        return Ok(());
    }
    let commit =
        repo.find_commit(oid).with_context(|| format!("the HEAD recorded in the checkpoint ({head}) is gone"))?;
    if branch.is_empty() {
        repo.set_head_detached(oid)?;
    } else {
        repo.reference(branch, oid, true, "muster rollback")?;
        repo.set_head(branch)?;
    }
    let mut index = repo.index()?;
    index.read_tree(&commit.tree()?)?;
    index.write()?;
    Ok(())
}

/// Roll the worktree back to checkpoint `n`: all of it, or only `files`. A rescue checkpoint is taken first;
/// if anything fails half-way, the worktree is put back to that rescue state.
pub fn rollback(worktree: &Path, agent: &str, n: u32, files: Option<&[String]>) -> Result<RollbackReport> {
    rollback_with(worktree, agent, n, files, &Changes::All)
}

/// Rollback where `changes` says what changed since the last checkpoint, for the rescue checkpoint taken first.
pub fn rollback_with(
    worktree: &Path,
    agent: &str,
    n: u32,
    files: Option<&[String]>,
    changed: &Changes,
) -> Result<RollbackReport> {
    let repo = open(worktree)?;
    check_not_locked(&repo)?;
    let target = find(&repo, agent, n)?;
    let target_info = parse(n, &target);
    let target_tree = target.tree()?;
    if files.is_none() {
        if let Ok(head) = Oid::from_str(&target_info.head) {
            repo.find_commit(head).with_context(|| {
                format!("checkpoint {n} was taken on commit {head}, which is gone (pruned by `git gc`?): nothing was changed")
            })?;
        }
    }
    let trigger = match files {
        Some(_) => format!("rescue before restoring files from {n}"),
        None => format!("rescue before rollback to {n}"),
    };
    let (rescue, _) = create_with(worktree, agent, &trigger, changed)?;
    let rescue_commit = find(&repo, agent, rescue.n)?;
    let current_tree = rescue_commit.tree()?;
    let todo = changes(&repo, &current_tree, &target_tree, files)?;
    // Verify before replacing: every object the restore needs must be readable.
    for c in &todo {
        if let Some((oid, _)) = c.new {
            repo.find_blob(oid)
                .with_context(|| format!("checkpoint {n} is missing the content of {}", c.path.display()))?;
        }
    }
    let root = repo.workdir().context("worktree has a working directory")?.to_path_buf();
    let result = apply(&repo, &root, &todo).and_then(|()| match files {
        None => reset_head(&repo, &target_info.head, &target_info.branch),
        Some(_) => Ok(()),
    });
    if let Err(e) = result {
        // Put back what was there: the rescue checkpoint holds it.
        let undo = changes(&repo, &target_tree, &current_tree, files).unwrap_or_default();
        let restored = apply(&repo, &root, &undo);
        return Err(e.context(match restored {
            Ok(()) => "rollback failed; the worktree was put back as it was".to_string(),
            Err(r) => format!(
                "rollback failed and putting the worktree back failed too ({r:#}); checkpoint {} holds it",
                rescue.n
            ),
        }));
    }
    repo.reference(&format!("{UNDO_PREFIX}/{agent}"), rescue_commit.id(), true, "muster rollback")?;
    Ok(RollbackReport { rescue: rescue.n, target: n, changed: todo.iter().map(Change::path_string).collect() })
}

/// Return to the state before the last rollback.
pub fn undo_rollback(worktree: &Path, agent: &str) -> Result<RollbackReport> {
    let repo = open(worktree)?;
    let oid = repo
        .find_reference(&format!("{UNDO_PREFIX}/{agent}"))
        .ok()
        .and_then(|r| r.target())
        .ok_or_else(|| anyhow!("no rollback of {agent} to undo"))?;
    let n = numbered(&repo, agent)?
        .into_iter()
        .find(|(_, o)| *o == oid)
        .map(|(n, _)| n)
        .ok_or_else(|| anyhow!("the checkpoint taken before the last rollback of {agent} was pruned"))?;
    rollback(worktree, agent, n, None)
}

/// Keep the newest `keep` checkpoints of an agent; returns how many were removed.
pub fn prune(repo_path: &Path, agent: &str, keep: usize) -> Result<usize> {
    let repo = Repository::open(repo_path)?;
    let all = numbered(&repo, agent)?;
    let drop = all.len().saturating_sub(keep);
    for (n, _) in &all[..drop] {
        repo.find_reference(&refname(agent, *n))?.delete()?;
    }
    Ok(drop)
}

/// At most this many diff lines per file reach the UI.
const MAX_LINES: usize = 2000;

pub fn diff(worktree: &Path, agent: &str, n: u32, base: DiffBase) -> Result<Vec<FileDiff>> {
    let repo = open(worktree)?;
    let commit = find(&repo, agent, n)?;
    let tree = commit.tree()?;
    let mut opts = DiffOptions::new();
    opts.include_typechange(true);
    let diff = match base {
        DiffBase::Previous => {
            let prev = commit.parent(0).ok().and_then(|p| p.tree().ok());
            let prev = match prev {
                Some(t) => Some(t),
                None => Oid::from_str(&parse(n, &commit).head)
                    .ok()
                    .and_then(|h| repo.find_commit(h).ok())
                    .and_then(|c| c.tree().ok()),
            };
            repo.diff_tree_to_tree(prev.as_ref(), Some(&tree), Some(&mut opts))?
        }
        DiffBase::Worktree => {
            let now = repo.find_tree(saved_disk_tree(&repo, agent)?)?;
            repo.diff_tree_to_tree(Some(&tree), Some(&now), Some(&mut opts))?
        }
    };
    file_diffs(&diff)
}

/// What merging the agent would bring: its branch and its worktree as it is on disk (uncommitted and untracked
/// work too, as a checkpoint records it) against the merge base with `base`; and that merge base. A file new
/// since HEAD (not committed yet) has status `?`. Read from a tree of the disk, never from mapped worktree files.
pub fn review(worktree: &Path, agent: &str, base: &str) -> Result<(String, Vec<FileDiff>)> {
    let repo = open(worktree)?;
    let base_commit =
        repo.revparse_single(base).with_context(|| format!("no base branch `{base}`"))?.peel_to_commit()?;
    let head = repo.head().ok().and_then(|h| h.target());
    let merge_base = match head {
        Some(h) => repo.merge_base(h, base_commit.id()).unwrap_or(base_commit.id()),
        None => base_commit.id(),
    };
    let from = repo.find_commit(merge_base)?.tree()?;
    let now = repo.find_tree(saved_disk_tree(&repo, agent)?)?;
    let mut opts = DiffOptions::new();
    opts.include_typechange(true);
    let diff = repo.diff_tree_to_tree(Some(&from), Some(&now), Some(&mut opts))?;
    let mut files = file_diffs(&diff)?;
    let head_tree = head.and_then(|h| repo.find_commit(h).ok()).and_then(|c| c.tree().ok());
    for f in files.iter_mut().filter(|f| f.status == 'A') {
        if head_tree.as_ref().is_none_or(|t| t.get_path(Path::new(&f.path)).is_err()) {
            f.status = '?';
        }
    }
    Ok((merge_base.to_string(), files))
}

/// A diff as files: each with its status, counts and lines (at most `MAX_LINES` of them).
fn file_diffs(diff: &git2::Diff) -> Result<Vec<FileDiff>> {
    let mut files: BTreeMap<String, FileDiff> = BTreeMap::new();
    diff.print(git2::DiffFormat::Patch, |delta, hunk, line| {
        let path = delta
            .new_file()
            .path()
            .or(delta.old_file().path())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let status = match delta.status() {
            Delta::Added => 'A',
            Delta::Deleted => 'D',
            Delta::Typechange => 'T',
            _ => 'M',
        };
        let f =
            files.entry(path.clone()).or_insert_with(|| FileDiff { path, status, added: 0, removed: 0, lines: vec![] });
        let text = String::from_utf8_lossy(line.content()).trim_end_matches(['\n', '\r']).to_string();
        let kind = match line.origin() {
            '+' => {
                f.added += 1;
                Some(LineKind::Added)
            }
            '-' => {
                f.removed += 1;
                Some(LineKind::Removed)
            }
            ' ' => Some(LineKind::Context),
            'H' => hunk.map(|_| LineKind::Hunk),
            'B' => {
                f.lines.push((LineKind::Hunk, "binary file differs".into()));
                None
            }
            _ => None,
        };
        if let Some(k) = kind {
            if f.lines.len() < MAX_LINES {
                f.lines.push((k, text));
            }
        }
        true
    })?;
    Ok(files.into_values().collect())
}
