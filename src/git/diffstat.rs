//! Lines added and removed by an agent against its base branch, including files it has not committed.

use std::io::Read;
use std::path::Path;

pub use crate::protocol::git::DiffStat;
use anyhow::Result;
use git2::{Delta, DiffOptions, Patch, Repository};

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
    opts.include_untracked(true).recurse_untracked_dirs(true);
    // Only which files differ (hashing reads them); their lines are counted below from copies in memory:
    // libgit2 would map each worktree file to diff it, and an agent truncating a file it maps is SIGBUS for
    // the whole server.
    let diff = repo.diff_tree_to_workdir_with_index(Some(&tree), Some(&mut opts))?;
    let mut stat = DiffStat::default();
    for delta in diff.deltas() {
        stat.files += 1;
        if delta.status() == Delta::Untracked {
            stat.untracked += 1;
        }
        let old = match delta.old_file().id() {
            id if id.is_zero() => Vec::new(),
            id => repo.find_blob(id).map(|b| b.content().to_vec()).unwrap_or_default(),
        };
        let new = match delta.new_file().path() {
            Some(path) if delta.status() != Delta::Deleted => worktree_content(&worktree.join(path)),
            _ => Some(Vec::new()),
        };
        let Some(new) = new else { continue };
        let patch = Patch::from_buffers(&old, None, &new, None, None)?;
        let (_, added, removed) = patch.line_stats()?;
        stat.added += added;
        stat.removed += removed;
    }
    Ok(stat)
}

/// What git would store for a worktree path: a link's target, a regular file's bytes (none past
/// `MAX_COUNTED`), nothing for a fifo or a device (an agent's link to `/dev/zero` is not followed). `None`: a
/// file too big to count the lines of (git's own diff gives up on big files too).
fn worktree_content(path: &Path) -> Option<Vec<u8>> {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Some(Vec::new()) };
    if meta.file_type().is_symlink() {
        return Some(std::fs::read_link(path).map(|t| t.into_os_string().into_encoded_bytes()).unwrap_or_default());
    }
    if !meta.is_file() {
        return Some(Vec::new());
    }
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(MAX_COUNTED + 1).read_to_end(&mut bytes));
    (read.is_ok() && bytes.len() as u64 <= MAX_COUNTED).then_some(bytes)
}

/// Lines of files bigger than this are not counted (the file is).
const MAX_COUNTED: u64 = 32 << 20;

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
        // A link is its target's name, never what it points at: an endless device is not read.
        std::os::unix::fs::symlink("/dev/zero", info.path.join("zero")).unwrap();
        let s = diffstat(&info.path, "main").unwrap();
        assert_eq!((s.files, s.added, s.untracked), (4, 5, 3));
        // A fifo nobody writes to is not waited on.
        assert!(std::process::Command::new("mkfifo").arg(info.path.join("fifo")).status().unwrap().success());
        assert_eq!(diffstat(&info.path, "main").unwrap().added, 5);
    }

    /// An agent truncating and rewriting a big file while its lines are counted: libgit2 maps a worktree file
    /// to diff it, and reading a mapped page past a truncated end is SIGBUS, which ended the whole server.
    #[test]
    fn a_file_rewritten_while_counted_is_read_not_mapped() {
        let repo = temp_repo();
        let info = ensure_worktree(repo.path(), "r", None).unwrap();
        let big = info.path.join("big.txt");
        let text: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&big, &text).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (stop, big) = (stop.clone(), big.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Truncated, then written again a piece at a time, as `cmd > file` does.
                    let mut f = std::fs::File::create(&big).unwrap();
                    for chunk in text.as_bytes().chunks(64 * 1024) {
                        std::io::Write::write_all(&mut f, chunk).unwrap();
                    }
                }
            })
        };
        for _ in 0..200 {
            let s = diffstat(&info.path, "main").unwrap();
            assert!(s.files <= 2 && s.untracked <= 1, "{s:?}");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
    }
}
