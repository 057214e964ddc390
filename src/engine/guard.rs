//! The watchdog's worker (issue #29): the paths each worktree's watcher saw change, judged against the agent's
//! rules on a thread of its own (it reads files and asks git), the findings sent to the engine. Nothing polls:
//! the watcher's events wake it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::inbox::{EngineMsg, Report};
use crate::git::watch::WorktreeWatch;
use crate::guard::{Found, Rules};
use crate::protocol::guard::FindingKind;
use crate::pty::tree::AgentTree;

/// The key the main checkout's changes are queued (and muted) under: no agent has an empty name.
pub const MAIN: &str = "";

/// Paths waiting to be judged per agent; more (a tool rewriting a whole tree at once) are dropped, said once.
const MAX_TOUCHED: usize = 4096;
/// Files of a folder that appeared, judged at most.
const MAX_IN_NEW_FOLDER: usize = 1000;
/// A path keeps making the same finding while it is written: it is reported at most this often.
const SAME_AGAIN: Duration = Duration::from_secs(1);
/// After muster wrote a worktree (a rollback, a merge into it), its events may come this late.
const MUTED_AFTER: Duration = Duration::from_secs(1);
/// How long the worker lets a burst of events gather before it judges them.
const GATHER: Duration = Duration::from_millis(20);
/// A worktree with a disk quota is measured at most this often (a walk of every file), after it changed.
const MEASURE_EVERY: Duration = Duration::from_secs(5);

/// What an agent's findings are found in and judged by.
#[derive(Clone)]
struct Watched {
    root: PathBuf,
    rules: Arc<Rules>,
    watch: Option<Arc<WorktreeWatch>>,
    /// Its processes, while it runs: what a change of the main checkout is laid at.
    tree: Option<Arc<AgentTree>>,
}

/// What the watchers' taps and the engine hand the worker. It owns no watch: a tap runs on the file watcher's
/// own thread, and dropping the last handle of a watch there would wait on that very thread.
#[derive(Default)]
struct Pending {
    touched: BTreeMap<String, BTreeSet<String>>,
    /// Agents whose watches are to be set up now (the watcher sets them at the first checkpoint otherwise).
    arm: BTreeSet<String>,
    /// Agents whose worktree muster itself writes (until the instant, or None: until it is done).
    muted: BTreeMap<String, Option<Instant>>,
    /// Agents whose paths overflowed (said once each).
    overflowed: BTreeSet<String>,
    stop: bool,
}

#[derive(Default)]
struct Signal {
    pending: Mutex<Pending>,
    wake: Condvar,
}

impl Signal {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Book = Arc<Mutex<BTreeMap<String, Watched>>>;

fn book(b: &Book) -> MutexGuard<'_, BTreeMap<String, Watched>> {
    b.lock().unwrap_or_else(|e| e.into_inner())
}

/// The watchdog; it stops with its handle.
pub struct Guard {
    signal: Arc<Signal>,
    agents: Book,
}

impl Guard {
    pub fn start(engine: Sender<EngineMsg>) -> Guard {
        let (signal, agents) = (Arc::new(Signal::default()), Book::default());
        let (s, a) = (signal.clone(), agents.clone());
        let spawned = std::thread::Builder::new().name("guard".into()).spawn(move || run(&s, &a, &engine));
        if let Err(e) = spawned {
            tracing::warn!("no watchdog (cannot start its thread): {e}");
        }
        Guard { signal, agents }
    }

    /// Watch the main checkout: a change there made by an agent's process is a finding of that agent.
    pub fn watch_main(&self, root: PathBuf, watch: Arc<WorktreeWatch>) {
        self.watch(MAIN, root, Rules::new(None, &[], &[]), Some(watch), None);
    }

    /// Watch `agent`'s worktree by `rules` from now on (again, with new rules, after a restart); `tree` is its
    /// processes.
    pub fn watch(
        &self,
        agent: &str,
        root: PathBuf,
        rules: Rules,
        watch: Option<Arc<WorktreeWatch>>,
        tree: Option<Arc<AgentTree>>,
    ) {
        if let Some(w) = &watch {
            let (signal, name) = (Arc::downgrade(&self.signal), agent.to_string());
            w.set_tap(Some(Arc::new(move |paths: Vec<String>| {
                let Some(signal) = signal.upgrade() else { return };
                let mut p = signal.lock();
                let Pending { touched, overflowed, .. } = &mut *p;
                let set = touched.entry(name.clone()).or_default();
                for path in paths {
                    if set.len() >= MAX_TOUCHED {
                        if overflowed.insert(name.clone()) {
                            tracing::warn!("{name}: more files changed at once than the watchdog judges; some unseen");
                        }
                        break;
                    }
                    set.insert(path);
                }
                signal.wake.notify_one();
            })));
        }
        let armed = watch.is_some();
        book(&self.agents).insert(agent.to_string(), Watched { root, rules: Arc::new(rules), watch, tree });
        if armed {
            self.signal.lock().arm.insert(agent.to_string());
            self.signal.wake.notify_one();
        }
    }

    /// Stop watching `agent` (removed).
    pub fn forget(&self, agent: &str) {
        if let Some(w) = book(&self.agents).remove(agent).and_then(|w| w.watch) {
            w.set_tap(None);
        }
        self.signal.lock().touched.remove(agent);
    }

    /// muster is about to write `agent`'s worktree: what changes there is not the agent's doing.
    pub fn mute(&self, agent: &str) {
        self.signal.lock().muted.insert(agent.to_string(), None);
    }

    /// muster writes (or just wrote) `agent`'s worktree or branch.
    pub fn is_muted(&self, agent: &str) -> bool {
        let now = Instant::now();
        self.signal.lock().muted.get(agent).is_some_and(|until| until.is_none_or(|u| u > now))
    }

    /// A job of `agent`'s is done: if it was muster writing its worktree, the write's last events are still
    /// let pass a moment (a later job does not make that moment longer).
    pub fn unmute_soon(&self, agent: &str) {
        let mut p = self.signal.lock();
        let now = Instant::now();
        match p.muted.get_mut(agent) {
            Some(until @ None) => *until = Some(now + MUTED_AFTER),
            Some(Some(u)) if *u <= now => {
                p.muted.remove(agent);
            }
            _ => {}
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for w in book(&self.agents).values().filter_map(|w| w.watch.as_ref()) {
            w.set_tap(None);
        }
        self.signal.lock().stop = true;
        self.signal.wake.notify_all();
    }
}

fn run(signal: &Signal, agents: &Book, engine: &Sender<EngineMsg>) {
    let mut repos: BTreeMap<PathBuf, git2::Repository> = BTreeMap::new();
    let mut reported: BTreeMap<(String, FindingKind, String), Instant> = BTreeMap::new();
    // Worktrees with a quota that changed: when each may be measured next. And each one's quota level.
    let mut measure: BTreeMap<String, Instant> = BTreeMap::new();
    let mut measured_at: BTreeMap<String, Instant> = BTreeMap::new();
    let mut levels: BTreeMap<String, u8> = BTreeMap::new();
    loop {
        let (batch, arm) = {
            let mut p = signal.lock();
            loop {
                if !p.touched.is_empty() || !p.arm.is_empty() || p.stop {
                    break;
                }
                let due = measure.values().min().copied();
                match due {
                    Some(at) if at <= Instant::now() => break,
                    Some(at) => {
                        let left = at.saturating_duration_since(Instant::now());
                        p = signal.wake.wait_timeout(p, left).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
                    }
                    None => p = signal.wake.wait(p).unwrap_or_else(|e| e.into_inner()),
                }
            }
            if p.stop {
                return;
            }
            if !p.touched.is_empty() {
                // A write comes as several events (create, modify, close): they are taken together, once.
                drop(p);
                std::thread::sleep(GATHER);
                p = signal.lock();
            }
            p.overflowed.clear();
            let now = Instant::now();
            p.muted.retain(|_, until| until.is_none_or(|u| u > now));
            let mut batch = std::mem::take(&mut p.touched);
            batch.retain(|agent, _| !p.muted.contains_key(agent));
            (batch, std::mem::take(&mut p.arm))
        };
        // The main checkout's changes are laid at the agents: all of them are needed then.
        let watched: BTreeMap<String, Watched> = {
            let b = book(agents);
            if batch.contains_key(MAIN) {
                b.clone()
            } else {
                batch.keys().chain(arm.iter()).filter_map(|a| b.get(a).map(|w| (a.clone(), w.clone()))).collect()
            }
        };
        for w in arm.iter().filter_map(|a| watched.get(a)?.watch.as_ref()) {
            w.arm();
        }
        let now = Instant::now();
        reported.retain(|_, at| now.duration_since(*at) < SAME_AGAIN);
        // A changed worktree with a quota is measured once its interval allows.
        for agent in batch.keys().filter(|a| watched.get(*a).is_some_and(|w| w.rules.quota.is_some())) {
            let next = measured_at.get(agent).map_or(now, |t| (*t + MEASURE_EVERY).max(now));
            measure.entry(agent.clone()).or_insert(next);
        }
        let due: Vec<String> = measure.iter().filter(|(_, at)| **at <= now).map(|(a, _)| a.clone()).collect();
        for agent in due {
            measure.remove(&agent);
            measured_at.insert(agent.clone(), now);
            let Some(w) = book(agents).get(&agent).cloned() else { continue };
            let Some(quota) = w.rules.quota else { continue };
            let used = crate::guard::disk_use(&w.root, quota.saturating_mul(2));
            let level = crate::guard::quota_level(used, quota);
            let was = levels.insert(agent.clone(), level).unwrap_or(0);
            if level > was {
                let kind = if level == 2 { FindingKind::QuotaFull } else { FindingKind::QuotaNear };
                let mib = |b: u64| b >> 20;
                let detail = format!(
                    "{} MiB of its {} MiB ({} %)",
                    mib(used),
                    mib(quota),
                    used.saturating_mul(100) / quota.max(1)
                );
                let found = vec![(kind, String::new(), detail)];
                if engine.send(EngineMsg::Report(Report::Findings { agent, found })).is_err() {
                    return;
                }
            }
        }
        for (agent, paths) in batch {
            let Some(Watched { root, rules, watch, .. }) = watched.get(&agent) else { continue };
            if !repos.contains_key(root) {
                if let Ok(r) = git2::Repository::open(root) {
                    repos.insert(root.clone(), r);
                }
            }
            let repo = repos.get(root);
            if agent == MAIN {
                for (agent, found) in main_checkout(root, repo, paths, &watched) {
                    if engine.send(EngineMsg::Report(Report::Findings { agent, found })).is_err() {
                        return;
                    }
                }
                continue;
            }
            let mut found: Vec<Found> = Vec::new();
            for rel in paths {
                if crate::guard::clearly_fine(rules, root, &rel) {
                    continue;
                }
                let files = match crate::guard::facts(root, &rel, repo) {
                    Some(facts) => vec![(rel, facts)],
                    None => {
                        // A folder that appeared: watch it now, then judge what it holds already (what comes
                        // after is an event of its own).
                        if let Some(w) = watch {
                            w.arm();
                        }
                        crate::guard::files_under(root, &rel, MAX_IN_NEW_FOLDER)
                            .into_iter()
                            .filter_map(|f| crate::guard::facts(root, &f, repo).map(|facts| (f, facts)))
                            .collect()
                    }
                };
                for (path, facts) in files {
                    for (kind, detail) in crate::guard::judge(rules, &path, &facts) {
                        let key = (agent.clone(), kind, path.clone());
                        if reported.contains_key(&key) {
                            continue;
                        }
                        reported.insert(key, now);
                        found.push((kind, path.clone(), detail));
                    }
                }
            }
            if !found.is_empty() && engine.send(EngineMsg::Report(Report::Findings { agent, found })).is_err() {
                return;
            }
        }
        // Repositories of agents no longer watched go.
        let roots: BTreeSet<PathBuf> = book(agents).values().map(|w| w.root.clone()).collect();
        repos.retain(|r, _| roots.contains(r));
    }
}

/// Changes of the main checkout laid at the agent whose process made them: one whose working folder is there, or
/// that holds the file open for writing. What no agent's process explains, while agents run, is the repository's
/// unattributed finding (muster cannot tell a person's editor from a stray process: it does not ring).
fn main_checkout(
    root: &std::path::Path,
    repo: Option<&git2::Repository>,
    paths: BTreeSet<String>,
    agents: &BTreeMap<String, Watched>,
) -> BTreeMap<String, Vec<Found>> {
    let mut out: BTreeMap<String, Vec<Found>> = BTreeMap::new();
    let paths: Vec<String> = paths
        .into_iter()
        .filter(|p| !p.starts_with(".muster/") && p != ".muster")
        .filter(|p| crate::guard::facts(root, p, repo).is_some_and(|f| !f.ignored && !f.as_committed))
        .collect();
    if paths.is_empty() {
        return out;
    }
    let muster_dir = root.join(".muster");
    let mut running = false;
    let mut laid: BTreeSet<&String> = BTreeSet::new();
    for (name, w) in agents.iter().filter(|(n, _)| n.as_str() != MAIN) {
        let Some(tree) = &w.tree else { continue };
        let pids = tree.pids();
        running |= !pids.is_empty();
        let inside = pids.into_iter().any(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd"))
                .is_ok_and(|cwd| cwd.starts_with(root) && !cwd.starts_with(&muster_dir))
        });
        let open = tree.files_open_for_writing(root);
        for p in &paths {
            let why = if open.contains(p) {
                "a process of it had it open for writing"
            } else if inside {
                "a process of it works in the main checkout"
            } else {
                continue;
            };
            laid.insert(p);
            out.entry(name.clone()).or_default().push((FindingKind::MainCheckout, p.clone(), why.into()));
        }
    }
    if running {
        let nobody = "no agent's process could be named (yours?)";
        for p in paths.iter().filter(|p| !laid.contains(p)) {
            out.entry(MAIN.to_string()).or_default().push((FindingKind::MainCheckout, p.clone(), nobody.into()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file watcher's thread runs the taps: a tap once held the guard's last handle, and dropping it there
    /// dropped a worktree's watch, whose unwatch waited on that same thread — every watch of the process hung.
    /// Guards dropped while their worktrees are being written leave the watcher working.
    #[test]
    fn guards_dropped_while_their_worktrees_change_leave_the_watcher_working() {
        let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        for round in 0..20 {
            let (tx, _rx) = std::sync::mpsc::channel();
            let guard = Guard::start(tx);
            for (i, d) in dirs.iter().enumerate() {
                let w = WorktreeWatch::new(d.path()).unwrap();
                w.arm();
                guard.watch(&format!("a{i}"), d.path().to_path_buf(), Rules::new(Some(&[]), &[], &[]), Some(w), None);
            }
            let writer = {
                let paths: Vec<PathBuf> = dirs.iter().map(|d| d.path().join("f")).collect();
                std::thread::spawn(move || {
                    for n in 0..50 {
                        for p in &paths {
                            let _ = std::fs::write(p, format!("{round} {n}"));
                        }
                    }
                })
            };
            drop(guard);
            writer.join().unwrap();
        }
        // Still answering: a new watch is set up (it would wait forever on a stuck watcher thread).
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let w = WorktreeWatch::new(&path).unwrap();
            w.arm();
            let _ = done_tx.send(());
        });
        assert!(done_rx.recv_timeout(Duration::from_secs(30)).is_ok(), "the file watcher's thread is stuck");
    }
}
