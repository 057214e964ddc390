//! Telling the engine when the crew file changes: `.muster/crew.toml` written while the crew runs (by hand, by
//! `muster add`, by the workbench's `n`) is read again and applied as a difference. The kernel says when
//! (inotify on `.muster`, where editors replace the file by renaming a new one over it): nothing runs while
//! nothing is written.

use std::path::Path;

use anyhow::{Context, Result};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// Watches the crew file of the repository at `root` until dropped; `changed` is called (on the watcher's
/// thread) after it was written, replaced or removed.
pub struct CrewWatch {
    _watcher: RecommendedWatcher,
}

pub fn watch(root: &Path, changed: impl Fn() + Send + 'static) -> Result<CrewWatch> {
    let dir = root.join(".muster");
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, EventKind::Access(_)) {
            return;
        }
        if ev.paths.iter().any(|p| is_crew_file(p)) {
            changed();
        }
    };
    let mut watcher = notify::recommended_watcher(handler).context("starting a file watcher")?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).with_context(|| format!("watching {}", dir.display()))?;
    Ok(CrewWatch { _watcher: watcher })
}

/// The crew file itself (an editor's swap or backup file beside it is not).
fn is_crew_file(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n == "crew.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_crew_file_counts() {
        assert!(is_crew_file(Path::new("/r/.muster/crew.toml")));
        assert!(!is_crew_file(Path::new("/r/.muster/crew.toml.swp")));
        assert!(!is_crew_file(Path::new("/r/.muster/.crew.toml.swp")));
        assert!(!is_crew_file(Path::new("/r/.muster/state.json")));
        assert!(!is_crew_file(Path::new("/r/.muster/crew.toml~")));
    }
}
