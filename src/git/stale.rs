//! What a muster killed in the middle of a write leaves in the repository's git folder: a ref's `.lock` under
//! `refs/muster/` (libgit2 writes `<ref>.lock` and renames it over the ref: killed between the two, every later
//! update of that ref fails, across restarts) and the pack indexer's `pack_git2_*` temporaries. They are removed
//! at start, while the repository's lock proves no other muster writes there, when they are older than this
//! start and no process has them open (a lock held by a live git is reported, not removed).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;

#[derive(Debug, Default, PartialEq)]
pub struct Cleaned {
    pub removed: Vec<PathBuf>,
    /// Left where they are: a live process has them open (its pid).
    pub held: Vec<(PathBuf, u32)>,
}

/// Remove what killed writes left in the git folder of the repository at `root`, older than `started`.
pub fn clean(root: &Path, started: SystemTime) -> Result<Cleaned> {
    let repo = git2::Repository::open(root)?;
    let common = repo.commondir().to_path_buf();
    let mut found = Vec::new();
    ref_locks(&common.join("refs/muster"), 0, &mut found);
    if let Ok(entries) = std::fs::read_dir(common.join("objects/pack")) {
        found.extend(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("pack_git2_"))
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.path()),
        );
    }
    let old = |p: &PathBuf| std::fs::symlink_metadata(p).and_then(|m| m.modified()).is_ok_and(|t| t < started);
    found.retain(old);
    let mut cleaned = Cleaned::default();
    if found.is_empty() {
        return Ok(cleaned);
    }
    let open = open_files();
    for path in found {
        match open.get(&path) {
            Some(&pid) => cleaned.held.push((path, pid)),
            None => {
                if std::fs::remove_file(&path).is_ok() {
                    cleaned.removed.push(path);
                }
            }
        }
    }
    Ok(cleaned)
}

/// `.lock` files below `dir` (refs nest as folders; symlinks are not followed).
fn ref_locks(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() && depth < 16 {
            ref_locks(&e.path(), depth + 1, out);
        } else if kind.is_file() && e.file_name().to_string_lossy().ends_with(".lock") {
            out.push(e.path());
        }
    }
}

/// Every file some process (of those this one may look into) has open, and one pid that has it.
fn open_files() -> HashMap<PathBuf, u32> {
    let mut open = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return open };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                open.entry(target).or_insert(pid);
            }
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_killed_write_left_goes_and_what_a_live_process_holds_stays() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/muster/checkpoints/a")).unwrap();
        let (stale, held, pack) = (
            git.join("refs/muster/checkpoints/a/5.lock"),
            git.join("refs/muster/checkpoints/a/6.lock"),
            git.join("objects/pack/pack_git2_1234"),
        );
        for p in [&stale, &held, &pack] {
            std::fs::write(p, "").unwrap();
        }
        let keep_open = std::fs::File::open(&held).unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(1);
        let cleaned = clean(dir.path(), later).unwrap();
        let mut removed = cleaned.removed.clone();
        removed.sort();
        assert_eq!(removed, vec![pack.clone(), stale.clone()]);
        assert_eq!(cleaned.held, vec![(held.clone(), std::process::id())]);
        assert!(!stale.exists() && !pack.exists() && held.exists());
        drop(keep_open);
        // Newer than the start: written by this run, not left by a dead one.
        std::fs::write(&stale, "").unwrap();
        let before = SystemTime::now() - std::time::Duration::from_secs(3600);
        assert_eq!(clean(dir.path(), before).unwrap(), Cleaned::default());
        assert!(stale.exists());
    }
}
