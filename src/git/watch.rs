//! Which files of a worktree changed since the last checkpoint, known from inotify (through notify), so a
//! checkpoint reads only those paths instead of every file of the repository.
//!
//! Correctness rests on two things. Events are only taken while the agent is paused, after a barrier: a file
//! written in a private folder watched by the same inotify instance; once its event is seen, every event the agent
//! caused before the pause has been recorded (one instance, one queue, in order). And whenever the watches could
//! have missed something (events lost, a watched folder moved, a watch refused), the next checkpoint scans
//! everything, as one without a watcher does.
//!
//! Content changes are signalled when they happen (create, modify, attribute, move, delete). "Closed after
//! writing" can come late — a child forked meanwhile holds the descriptor until its exec — and then only makes
//! the next checkpoint read that file again; it is kept because writes through a shared mapping signal nothing
//! else.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// Beyond this many changed paths one scan of the worktree is cheaper than a long list of them.
const MAX_PATHS: usize = 2_000;
/// How long to wait for the barrier's own event before giving up on the events and scanning everything.
const SYNC_TIMEOUT: Duration = Duration::from_secs(2);

/// What the next checkpoint has to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// Anything may have changed: scan the whole worktree.
    All,
    /// Only these paths, relative and `/`-separated; a folder stands for everything below it.
    Paths(Vec<String>),
}

#[derive(Debug)]
struct Seen {
    paths: BTreeSet<String>,
    /// Folders created or moved in since they were last looked at: they need a watch.
    new_dirs: Vec<String>,
    /// Scan everything next time.
    all: bool,
    /// The watches no longer describe the tree (a watched folder moved, events were lost): watch it again.
    rewatch: bool,
    /// A watch was refused (inotify's limit): never trust the events again for this worktree.
    degraded: bool,
    watched: BTreeSet<String>,
    /// The highest barrier number whose event has been seen.
    synced: u64,
    /// Changes seen so far (paths, rescans): what a diffstat was last taken at tells whether it is still true.
    changes: u64,
}

impl Default for Seen {
    fn default() -> Self {
        // Nothing is watched yet: the first checkpoint scans everything and sets the watches up.
        Seen {
            paths: BTreeSet::new(),
            new_dirs: Vec::new(),
            all: true,
            rewatch: true,
            degraded: false,
            watched: BTreeSet::new(),
            synced: 0,
            changes: 0,
        }
    }
}

struct Shared {
    seen: Mutex<Seen>,
    synced: Condvar,
    /// Told of every changed path as it is seen (the watchdog).
    tap: Mutex<Option<Tap>>,
}

/// Called with the paths (relative, `/`-separated) an event changed, on the watcher's thread: it must not block.
pub type Tap = Arc<dyn Fn(Vec<String>) + Send + Sync>;

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct WorktreeWatch {
    root: PathBuf,
    sync_dir: PathBuf,
    shared: Arc<Shared>,
    ticks: AtomicU64,
}

/// One inotify instance, and its thread, for every worktree of this process (a thread an agent before): each
/// event goes to the worktree whose folder holds its path. One instance is one queue, so a worktree's barrier
/// still orders its events.
struct Hub {
    watcher: Mutex<RecommendedWatcher>,
    routes: Arc<Mutex<Vec<Route>>>,
}

struct Route {
    root: PathBuf,
    sync_dir: PathBuf,
    shared: std::sync::Weak<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    fn get() -> anyhow::Result<&'static Hub> {
        static HUB: std::sync::OnceLock<Hub> = std::sync::OnceLock::new();
        static START: Mutex<()> = Mutex::new(());
        if let Some(hub) = HUB.get() {
            return Ok(hub);
        }
        // One start at a time; a failed start (inotify instances used up) is tried again by the next worktree.
        let _once = lock(&START);
        if let Some(hub) = HUB.get() {
            return Ok(hub);
        }
        let routes: Arc<Mutex<Vec<Route>>> = Arc::default();
        let handler = {
            let routes = routes.clone();
            move |res: notify::Result<Event>| dispatch(&lock(&routes), res)
        };
        use anyhow::Context;
        let watcher = notify::recommended_watcher(handler).context("starting a file watcher")?;
        Ok(HUB.get_or_init(|| Hub { watcher: Mutex::new(watcher), routes }))
    }
}

/// Hand each path of an event to the worktree (or barrier folder) holding it, the innermost when folders nest;
/// an event about the watcher itself (lost events, an error) goes to every worktree.
fn dispatch(routes: &[Route], res: notify::Result<Event>) {
    // Each path's worktree, looked up once.
    let owner = |path: &Path| {
        routes
            .iter()
            .enumerate()
            .filter(|(_, r)| path.starts_with(&r.sync_dir) || path.starts_with(&r.root))
            .max_by_key(|(_, r)| if path.starts_with(&r.sync_dir) { usize::MAX } else { r.root.as_os_str().len() })
            .map(|(i, _)| i)
    };
    match res {
        Ok(ev) if ev.need_rescan() || ev.paths.is_empty() => {
            for r in routes {
                deliver(r, Ok(ev.clone()));
            }
        }
        Ok(ev) => {
            let mut by_route: Vec<(usize, Vec<PathBuf>)> = Vec::new();
            for path in &ev.paths {
                let Some(i) = owner(path) else { continue };
                match by_route.iter_mut().find(|(r, _)| *r == i) {
                    Some((_, paths)) => paths.push(path.clone()),
                    None => by_route.push((i, vec![path.clone()])),
                }
            }
            for (i, paths) in by_route {
                deliver(&routes[i], Ok(Event { kind: ev.kind, paths, attrs: ev.attrs.clone() }));
            }
        }
        Err(e) => {
            tracing::warn!("file watcher: {e}");
            for r in routes {
                deliver(r, Err(()));
            }
        }
    }
}

fn deliver(route: &Route, res: Result<Event, ()>) {
    let Some(shared) = route.shared.upgrade() else { return };
    let mut seen = shared.lock();
    match res {
        Ok(ev) => {
            if let Some(tick) = record(&mut seen, &route.root, &route.sync_dir, &ev) {
                seen.synced = seen.synced.max(tick);
                shared.synced.notify_all();
            }
            drop(seen);
            let tap = lock(&shared.tap).clone();
            if let Some(tap) = tap {
                let paths = changed(&route.root, &ev);
                if !paths.is_empty() {
                    tap(paths);
                }
            }
        }
        Err(()) => {
            seen.all = true;
            seen.rewatch = true;
            seen.changes += 1;
        }
    }
}

/// `path` relative to `root` with `/` separators; None for the root itself, paths outside it and anything in
/// `.git` (git's own files, or the `.git` file of a linked worktree).
fn relative(root: &Path, path: &Path) -> Option<Result<String, ()>> {
    let rel = path.strip_prefix(root).ok()?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str().ok_or(())),
            _ => return None,
        }
    }
    if parts.is_empty() || parts[0] == Ok(".git") {
        return None;
    }
    Some(parts.into_iter().collect::<Result<Vec<_>, ()>>().map(|p| p.join("/")))
}

fn is_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Whether `dir` or a folder below it is watched.
fn watches_under(watched: &BTreeSet<String>, dir: &str) -> bool {
    let prefix = format!("{dir}/");
    watched.contains(dir) || watched.range(prefix.clone()..).next().is_some_and(|w| w.starts_with(&prefix))
}

/// The paths of the worktree an event changed (reads, and the barrier's own files, are not changes).
fn changed(root: &Path, ev: &Event) -> Vec<String> {
    match ev.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => return Vec::new(),
        _ if ev.need_rescan() => return Vec::new(),
        _ => {}
    }
    ev.paths.iter().filter_map(|p| relative(root, p)?.ok()).collect()
}

/// Record one event. Returns the barrier number it carries, if it is the barrier's.
fn record(seen: &mut Seen, root: &Path, sync_dir: &Path, ev: &Event) -> Option<u64> {
    if ev.need_rescan() {
        seen.all = true;
        seen.rewatch = true;
        seen.changes += 1;
        return None;
    }
    let mut tick = None;
    for path in &ev.paths {
        if let Ok(name) = path.strip_prefix(sync_dir) {
            tick = tick.max(name.to_str().and_then(|n| n.parse::<u64>().ok()));
            continue;
        }
        let rel = match relative(root, path) {
            None => continue,
            Some(Err(())) => {
                // A path that is not UTF-8 cannot be named to libgit2 as a path list entry.
                seen.all = true;
                seen.changes += 1;
                continue;
            }
            Some(Ok(rel)) => rel,
        };
        match ev.kind {
            // Reads (ours included: a checkpoint reads files) change nothing.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
            EventKind::Access(_) => continue,
            // notify also reports each half on its own.
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => continue,
            // The watches inside a moved folder keep its old name: events there would name the wrong paths.
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) if watches_under(&seen.watched, &rel) => {
                seen.rewatch = true;
                seen.all = true;
            }
            EventKind::Remove(_) => {
                let prefix = format!("{rel}/");
                seen.watched.retain(|w| w != &rel && !w.starts_with(&prefix));
            }
            EventKind::Create(CreateKind::Folder) => seen.new_dirs.push(rel.clone()),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) | EventKind::Create(_) if is_dir(path) => {
                seen.new_dirs.push(rel.clone())
            }
            _ => {}
        }
        seen.changes += 1;
        // Once everything is to be scanned, the paths are not needed: memory stays bounded however busy it gets.
        if !seen.all {
            seen.paths.insert(rel);
            if seen.paths.len() > MAX_PATHS {
                seen.all = true;
                seen.paths.clear();
            }
        }
    }
    tick
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Remove the barrier folders of musters that died without cleaning up (`watch-<pid>-<n>` whose pid is gone).
fn sweep_barriers(parent: &Path) {
    for dir in crate::ipc::left_by_dead_runs(parent, "watch-") {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Remove this process's barrier folders: called as a server ends, when a worker may still hold a watch (and so
/// its folder) that no drop will run for.
pub fn remove_own_barriers() {
    let Ok(parent) = crate::ipc::user_dir() else { return };
    let prefix = format!("watch-{}-", std::process::id());
    let Ok(entries) = std::fs::read_dir(&parent) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl WorktreeWatch {
    /// Start watching `root`. Cheap: the folders get their watches at the first checkpoint, which scans everything.
    pub fn new(root: &Path) -> anyhow::Result<Arc<WorktreeWatch>> {
        use anyhow::Context;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        // In this user's private folder: a predictable name in the shared temp dir could be taken by another user.
        let parent = crate::ipc::user_dir()?;
        if id == 0 {
            sweep_barriers(&parent);
        }
        let sync_dir = parent.join(format!("watch-{}-{id}", std::process::id()));
        std::fs::create_dir_all(&sync_dir).with_context(|| format!("creating {}", sync_dir.display()))?;
        let shared =
            Arc::new(Shared { seen: Mutex::new(Seen::default()), synced: Condvar::new(), tap: Mutex::new(None) });
        let started = Hub::get().and_then(|hub| {
            lock(&hub.routes).push(Route {
                root: root.to_path_buf(),
                sync_dir: sync_dir.clone(),
                shared: Arc::downgrade(&shared),
            });
            // Not under the routes' lock: the watcher's thread takes it to deliver events.
            let watched = lock(&hub.watcher).watch(&sync_dir, RecursiveMode::NonRecursive);
            watched.context("watching the barrier folder")
        });
        let watch = WorktreeWatch { root: root.to_path_buf(), sync_dir, shared, ticks: AtomicU64::new(0) };
        // No watcher (this user's inotify instances all taken, say): its barrier folder and route go (drop).
        started?;
        Ok(Arc::new(watch))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Tell `tap` of every change from now on (None: stop).
    pub fn set_tap(&self, tap: Option<Tap>) {
        *lock(&self.shared.tap) = tap;
    }

    /// Whether anything may have changed since the last checkpoint.
    pub fn is_dirty(&self) -> bool {
        let seen = self.shared.lock();
        seen.all || seen.degraded || seen.rewatch || !seen.paths.is_empty() || !seen.new_dirs.is_empty()
    }

    /// A number that moves whenever a file of the worktree changes, while the watches cover the whole worktree
    /// (None before `arm` sets them up, while new folders wait for theirs, or once they cannot be trusted).
    pub fn change_count(&self) -> Option<u64> {
        let seen = self.shared.lock();
        (!seen.rewatch && !seen.degraded && seen.new_dirs.is_empty()).then_some(seen.changes)
    }

    /// The next checkpoint must scan everything (the last one failed, say).
    pub fn rescan(&self) {
        self.shared.lock().all = true;
    }

    /// Run a checkpoint on what changed (everything without a watcher). If it fails, what was taken is not
    /// lost: the next one scans everything.
    pub fn checkpoint<T>(watch: Option<&Self>, f: impl FnOnce(&Changes) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let Some(watch) = watch else { return f(&Changes::All) };
        let result = f(&watch.take());
        if result.is_err() {
            watch.rescan();
        }
        result
    }

    /// A checkpoint of a worktree whose agent keeps running: `f` gets what changed since the last checkpoint,
    /// and a way to ask what changed while it read — the watcher's events, and `writing()`, the files the agent
    /// holds open for writing — None once nothing did. Paths still changing when it gave up are read again by
    /// the next checkpoint.
    pub fn checkpoint_settled<T>(
        watch: Option<&Self>,
        writing: &dyn Fn() -> Vec<String>,
        f: impl FnOnce(&Changes, &mut dyn FnMut() -> Option<Changes>) -> anyhow::Result<(T, Vec<String>)>,
    ) -> anyhow::Result<T> {
        let mut again = || {
            // Open files first, events second: a writer that closes its file in between wrote before the
            // barrier, so its events are in. The other order misses a write that ends between the two.
            let open = writing();
            let mut paths = match watch.map(WorktreeWatch::take) {
                Some(Changes::All) => return Some(Changes::All),
                Some(Changes::Paths(p)) => p,
                None => Vec::new(),
            };
            paths.extend(open);
            paths.sort();
            paths.dedup();
            (!paths.is_empty()).then_some(Changes::Paths(paths))
        };
        let Some(watch) = watch else { return f(&Changes::All, &mut again).map(|(t, _)| t) };
        match f(&watch.take(), &mut again) {
            Ok((t, unsettled)) => {
                watch.give_back(unsettled);
                Ok(t)
            }
            Err(e) => {
                watch.rescan();
                Err(e)
            }
        }
    }

    /// Paths the next checkpoint must read again ("*": everything).
    fn give_back(&self, paths: Vec<String>) {
        let mut seen = self.shared.lock();
        for p in paths {
            if p == "*" {
                seen.all = true;
            } else if !seen.all {
                seen.paths.insert(p);
            }
        }
    }

    /// Wait until every event caused before this call has been recorded.
    fn barrier(&self) -> bool {
        let n = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        let file = self.sync_dir.join(n.to_string());
        if std::fs::write(&file, b"").is_err() {
            return false;
        }
        let deadline = Instant::now() + SYNC_TIMEOUT;
        let mut seen = self.shared.lock();
        let ok = loop {
            if seen.synced >= n {
                break true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            seen = self.shared.synced.wait_timeout(seen, left).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
        };
        drop(seen);
        let _ = std::fs::remove_file(&file);
        ok
    }

    /// What changed since the last call: call it with the agent paused, right before the checkpoint reads the
    /// worktree. Folders that appeared get their watches first, so nothing written after is missed.
    pub fn take(&self) -> Changes {
        let synced = self.barrier();
        if !synced {
            self.shared.lock().all = true;
        }
        self.arm();
        let mut seen = self.shared.lock();
        let paths = std::mem::take(&mut seen.paths);
        if std::mem::take(&mut seen.all) || seen.degraded {
            Changes::All
        } else {
            Changes::Paths(paths.into_iter().collect())
        }
    }

    /// Put watches on whatever is not watched yet (everything at first, then new folders). What changed stays
    /// recorded for the next checkpoint; from now on `change_count` can tell when nothing changed.
    pub fn arm(&self) {
        let (rewatch, new_dirs) = {
            let mut seen = self.shared.lock();
            (std::mem::take(&mut seen.rewatch), std::mem::take(&mut seen.new_dirs))
        };
        if rewatch {
            self.unwatch_all();
            self.watch_trees(&[String::new()]);
        } else if !new_dirs.is_empty() {
            self.watch_trees(&new_dirs);
        }
    }

    fn absolute(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    fn unwatch_all(&self) {
        let dirs = std::mem::take(&mut self.shared.lock().watched);
        let Ok(hub) = Hub::get() else { return };
        let mut watcher = lock(&hub.watcher);
        for dir in dirs {
            let _ = watcher.unwatch(&self.absolute(&dir));
        }
    }

    /// Watch `dirs` (relative; "" for the root) and the folders below them, except `.git` and ignored folders
    /// that git tracks nothing in.
    fn watch_trees(&self, dirs: &[String]) {
        let repo = git2::Repository::open(&self.root).ok();
        let index = repo.as_ref().and_then(|r| r.index().ok());
        let skip = |rel: &str| {
            let Some(repo) = &repo else { return false };
            repo.is_path_ignored(rel).unwrap_or(false)
                && index.as_ref().is_none_or(|i| i.find_prefix(format!("{rel}/")).is_err())
        };
        let mut stack = dirs.to_vec();
        let Ok(hub) = Hub::get() else {
            self.shared.lock().degraded = true;
            return;
        };
        let mut watcher = lock(&hub.watcher);
        while let Some(rel) = stack.pop() {
            if !rel.is_empty() && skip(&rel) {
                continue;
            }
            let path = self.absolute(&rel);
            match watcher.watch(&path, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.shared.lock().watched.insert(rel.clone());
                }
                // Gone since: its removal is an event of the parent's watch.
                Err(_) if !path.exists() => continue,
                Err(e) => {
                    tracing::warn!("cannot watch {}: {e}; checkpoints of it will scan every file", path.display());
                    self.shared.lock().degraded = true;
                    return;
                }
            }
            let Ok(entries) = std::fs::read_dir(&path) else { continue };
            for entry in entries.flatten() {
                if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    // Its paths could not be named to libgit2: never trust the events, scan every time.
                    self.shared.lock().degraded = true;
                    continue;
                };
                if !(rel.is_empty() && name == ".git") {
                    stack.push(if rel.is_empty() { name } else { format!("{rel}/{name}") });
                }
            }
        }
    }
}

impl Drop for WorktreeWatch {
    fn drop(&mut self) {
        // Its watches and its route go with it: the instance is shared.
        self.unwatch_all();
        if let Ok(hub) = Hub::get() {
            let _ = lock(&hub.watcher).unwatch(&self.sync_dir);
            lock(&hub.routes).retain(|r| r.sync_dir != self.sync_dir);
        }
        let _ = std::fs::remove_dir_all(&self.sync_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    fn fresh() -> Seen {
        Seen { all: false, rewatch: false, ..Seen::default() }
    }

    #[test]
    fn relative_paths_skip_git_and_outside() {
        let root = Path::new("/w");
        assert_eq!(relative(root, Path::new("/w/src/a.rs")), Some(Ok("src/a.rs".into())));
        assert_eq!(relative(root, Path::new("/w/.git/index")), None);
        assert_eq!(relative(root, Path::new("/w/.git")), None);
        assert_eq!(relative(root, Path::new("/w")), None);
        assert_eq!(relative(root, Path::new("/other/a")), None);
        assert_eq!(relative(root, Path::new("/w/.github/x")), Some(Ok(".github/x".into())));
    }

    #[test]
    fn reads_are_not_changes_and_writes_are() {
        let (root, sync) = (Path::new("/w"), Path::new("/s"));
        let mut seen = fresh();
        record(&mut seen, root, sync, &ev(EventKind::Access(AccessKind::Open(AccessMode::Any)), "/w/a"));
        assert!(seen.paths.is_empty());
        record(&mut seen, root, sync, &ev(EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any)), "/w/a"));
        record(&mut seen, root, sync, &ev(EventKind::Remove(notify::event::RemoveKind::File), "/w/b"));
        assert_eq!(seen.paths.iter().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn one_watcher_routes_each_path_to_the_innermost_worktree_and_trouble_to_all() {
        let shared = || Arc::new(Shared { seen: Mutex::new(fresh()), synced: Condvar::new(), tap: Mutex::new(None) });
        let (outer, inner) = (shared(), shared());
        let routes = vec![
            Route { root: "/r".into(), sync_dir: "/s/1".into(), shared: Arc::downgrade(&outer) },
            Route { root: "/r/.muster/worktrees/a".into(), sync_dir: "/s/2".into(), shared: Arc::downgrade(&inner) },
        ];
        let write = EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any));
        dispatch(&routes, Ok(ev(write, "/r/.muster/worktrees/a/x.rs")));
        dispatch(&routes, Ok(ev(write, "/r/y.rs")));
        dispatch(&routes, Ok(ev(EventKind::Create(CreateKind::File), "/s/2/7")));
        assert_eq!(inner.lock().paths.iter().collect::<Vec<_>>(), ["x.rs"]);
        assert_eq!(outer.lock().paths.iter().collect::<Vec<_>>(), ["y.rs"]);
        assert_eq!((inner.lock().synced, outer.lock().synced), (7, 0), "a barrier is its worktree's own");
        dispatch(&routes, Ok(Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan)));
        assert!(inner.lock().all && outer.lock().all, "lost events concern every worktree");
        // A worktree that went away is skipped.
        drop(inner);
        dispatch(&routes, Ok(ev(write, "/r/.muster/worktrees/a/z.rs")));
    }

    #[test]
    fn the_change_count_moves_with_writes_and_not_with_reads_or_barriers() {
        let (root, sync) = (Path::new("/w"), Path::new("/s"));
        let mut seen = fresh();
        record(&mut seen, root, sync, &ev(EventKind::Access(AccessKind::Open(AccessMode::Any)), "/w/a"));
        record(&mut seen, root, sync, &ev(EventKind::Create(CreateKind::File), "/s/3"));
        record(&mut seen, root, sync, &ev(EventKind::Modify(ModifyKind::Any), "/w/.git/index"));
        assert_eq!(seen.changes, 0);
        record(&mut seen, root, sync, &ev(EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any)), "/w/a"));
        assert_eq!(seen.changes, 1);
        record(&mut seen, root, sync, &Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan));
        assert_eq!(seen.changes, 2);
    }

    #[test]
    fn a_worktree_without_watches_has_no_change_count_and_one_with_them_counts_real_writes() {
        let dir = tempfile::tempdir().unwrap();
        let watch = WorktreeWatch::new(dir.path()).unwrap();
        // Before the watches are set up the count cannot say that nothing changed.
        assert_eq!(watch.change_count(), None);
        watch.arm();
        let before = watch.change_count().expect("watched once armed");
        std::fs::write(dir.path().join("f.txt"), "x").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while watch.change_count() == Some(before) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(watch.change_count() > Some(before), "a write is seen");
        // A new folder has no watch until it is armed again: no count meanwhile, then writes in it count.
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        while watch.change_count().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(watch.change_count(), None, "a new folder waits for its watch");
        watch.arm();
        let before = watch.change_count().expect("armed again");
        std::fs::write(dir.path().join("sub/g.txt"), "y").unwrap();
        while watch.change_count() == Some(before) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(watch.change_count() > Some(before), "a write in the new folder is seen");
        // What changed is still there for the next checkpoint.
        assert!(watch.is_dirty());
    }

    #[test]
    fn the_barrier_event_carries_its_number() {
        let (root, sync) = (Path::new("/w"), Path::new("/s"));
        let mut seen = fresh();
        let tick = record(&mut seen, root, sync, &ev(EventKind::Create(CreateKind::File), "/s/7"));
        assert_eq!(tick, Some(7));
        assert!(seen.paths.is_empty());
    }

    #[test]
    fn too_many_paths_become_a_full_scan_and_stop_being_kept() {
        let (root, sync) = (Path::new("/w"), Path::new("/s"));
        let mut seen = fresh();
        let modify = EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any));
        for i in 0..=MAX_PATHS {
            record(&mut seen, root, sync, &ev(modify, &format!("/w/f{i}")));
        }
        assert!(seen.all && seen.paths.is_empty());
        record(&mut seen, root, sync, &ev(modify, "/w/more"));
        assert!(seen.paths.is_empty());
    }

    #[test]
    fn a_watched_folder_moving_away_means_watching_again() {
        let (root, sync) = (Path::new("/w"), Path::new("/s"));
        let mut seen = fresh();
        seen.watched.insert("src".into());
        seen.watched.insert("src/deep".into());
        record(&mut seen, root, sync, &ev(EventKind::Modify(ModifyKind::Name(RenameMode::From)), "/w/sr"));
        assert!(!seen.rewatch, "a sibling whose name is a prefix is not the folder");
        record(&mut seen, root, sync, &ev(EventKind::Modify(ModifyKind::Name(RenameMode::From)), "/w/src"));
        assert!(seen.rewatch && seen.all);
    }

    #[test]
    fn a_removed_folder_is_no_longer_watched_and_lost_events_rescan() {
        let (root, sync) = (Path::new("/w"), Path::new("/s"));
        let mut seen = fresh();
        seen.watched.extend(["a".to_string(), "a/b".into(), "ab".into()]);
        record(&mut seen, root, sync, &ev(EventKind::Remove(notify::event::RemoveKind::Folder), "/w/a"));
        assert_eq!(seen.watched.iter().collect::<Vec<_>>(), ["ab"]);
        record(&mut seen, root, sync, &Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan));
        assert!(seen.all && seen.rewatch);
    }
}
