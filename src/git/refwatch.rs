//! Telling the engine when a branch of the repository moves: a commit on the base made outside muster (the
//! operator's own `git commit`, a `git pull`) changes what every agent's merge would bring, so diffstats and
//! overlaps are measured again. The kernel says when (inotify on the branch refs and `packed-refs`): nothing runs
//! while nothing moves.

use std::path::Path;

use anyhow::{Context, Result};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// Watches the branches of the repository at `root` until dropped; `moved` is called (on the watcher's thread)
/// after a branch ref or `packed-refs` changed.
pub struct RefWatch {
    _watcher: RecommendedWatcher,
}

/// `git_folder` is called (on the watcher's thread) after a hook, the repository's `config` or the main
/// checkout's `HEAD` changed: what can make git run a command, or move the operator's checkout.
pub fn watch(
    root: &Path,
    moved: impl Fn() + Send + 'static,
    git_folder: impl Fn() + Send + 'static,
) -> Result<RefWatch> {
    let repo = git2::Repository::open(root)?;
    let common = repo.commondir().to_path_buf();
    let heads = common.join("refs/heads");
    let packed = common.join("packed-refs");
    let hooks = common.join("hooks");
    let handler = {
        let (heads, packed, common, hooks) = (heads.clone(), packed.clone(), common.clone(), hooks.clone());
        move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            if matches!(ev.kind, EventKind::Access(_)) {
                return;
            }
            if ev.paths.iter().any(|p| is_branch(p, &heads, &packed)) {
                moved();
            }
            if ev.paths.iter().any(|p| is_command_place(p, &common, &hooks)) {
                git_folder();
            }
        }
    };
    let mut watcher = notify::recommended_watcher(handler).context("starting a file watcher")?;
    watcher.watch(&heads, RecursiveMode::Recursive).with_context(|| format!("watching {}", heads.display()))?;
    // `packed-refs` is replaced by a rename: its folder is watched, its other files ignored.
    watcher.watch(&common, RecursiveMode::NonRecursive).with_context(|| format!("watching {}", common.display()))?;
    // A repository may have no hooks folder: nothing to watch there then (its creation is seen in `common`).
    if hooks.is_dir() {
        watcher.watch(&hooks, RecursiveMode::NonRecursive).with_context(|| format!("watching {}", hooks.display()))?;
    }
    Ok(RefWatch { _watcher: watcher })
}

/// A hook, the repository's `config` or its `HEAD` (not their `.lock`s).
fn is_command_place(p: &Path, common: &Path, hooks: &Path) -> bool {
    let lock = p.extension().is_some_and(|e| e == "lock");
    !lock && (p.parent() == Some(hooks) || p == common.join("config") || p == common.join("HEAD") || p == hooks)
}

/// A ref under `refs/heads` (not its `.lock`), or `packed-refs` itself.
fn is_branch(p: &Path, heads: &Path, packed: &Path) -> bool {
    let lock = p.extension().is_some_and(|e| e == "lock");
    (p.starts_with(heads) && !lock) || p == packed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_branch_ref_or_packed_refs_counts_and_locks_do_not() {
        let (heads, packed) = (Path::new("/r/.git/refs/heads"), Path::new("/r/.git/packed-refs"));
        assert!(is_branch(Path::new("/r/.git/refs/heads/main"), heads, packed));
        assert!(is_branch(Path::new("/r/.git/refs/heads/muster/a"), heads, packed));
        assert!(is_branch(packed, heads, packed));
        assert!(!is_branch(Path::new("/r/.git/refs/heads/main.lock"), heads, packed));
        assert!(!is_branch(Path::new("/r/.git/index"), heads, packed));
        assert!(!is_branch(Path::new("/r/.git/refs/muster/checkpoints/a/1"), heads, packed));
    }
}
