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
use crate::guard::Rules;
use crate::protocol::guard::FindingKind;

/// Paths waiting to be judged per agent; more (a tool rewriting a whole tree at once) are dropped, said once.
const MAX_TOUCHED: usize = 4096;
/// Files of a folder that appeared, judged at most.
const MAX_IN_NEW_FOLDER: usize = 1000;
/// A path keeps making the same finding while it is written: it is reported at most this often.
const SAME_AGAIN: Duration = Duration::from_secs(1);
/// After muster wrote a worktree (a rollback, a merge into it), its events may come this late.
const MUTED_AFTER: Duration = Duration::from_secs(1);

/// What an agent's findings are found in and judged by.
#[derive(Clone)]
struct Watched {
    root: PathBuf,
    rules: Arc<Rules>,
    watch: Option<Arc<WorktreeWatch>>,
}

#[derive(Default)]
struct Pending {
    agents: BTreeMap<String, Watched>,
    touched: BTreeMap<String, BTreeSet<String>>,
    /// Worktrees whose watches are to be set up (the watcher sets them at the first checkpoint otherwise).
    arm: Vec<Arc<WorktreeWatch>>,
    /// Agents whose worktree muster itself writes (until the instant, or None: until it is done).
    muted: BTreeMap<String, Option<Instant>>,
    /// Agents whose paths overflowed (said once each).
    overflowed: BTreeSet<String>,
    stop: bool,
}

struct Inner {
    pending: Mutex<Pending>,
    wake: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The watchdog; it stops with its last handle.
pub struct Guard {
    inner: Arc<Inner>,
}

/// A finding as the worker makes it: the agent, what, the path, its detail.
pub type Found = (FindingKind, String, String);

impl Guard {
    pub fn start(engine: Sender<EngineMsg>) -> Guard {
        let inner = Arc::new(Inner { pending: Mutex::default(), wake: Condvar::new() });
        let worker = inner.clone();
        let spawned = std::thread::Builder::new().name("guard".into()).spawn(move || run(&worker, &engine));
        if let Err(e) = spawned {
            tracing::warn!("no watchdog (cannot start its thread): {e}");
        }
        Guard { inner }
    }

    /// Watch `agent`'s worktree by `rules` from now on (again, with new rules, after a restart).
    pub fn watch(&self, agent: &str, root: PathBuf, rules: Rules, watch: Option<Arc<WorktreeWatch>>) {
        if let Some(w) = &watch {
            let (inner, name) = (Arc::downgrade(&self.inner), agent.to_string());
            w.set_tap(Some(Arc::new(move |paths: Vec<String>| {
                let Some(inner) = inner.upgrade() else { return };
                let mut p = inner.lock();
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
                inner.wake.notify_one();
            })));
        }
        let mut p = self.inner.lock();
        if let Some(w) = &watch {
            p.arm.push(w.clone());
            self.inner.wake.notify_one();
        }
        p.agents.insert(agent.to_string(), Watched { root, rules: Arc::new(rules), watch });
    }

    /// muster is about to write `agent`'s worktree: what changes there is not the agent's doing.
    pub fn mute(&self, agent: &str) {
        self.inner.lock().muted.insert(agent.to_string(), None);
    }

    /// A job of `agent`'s is done: if it was muster writing its worktree, the write's last events are still
    /// let pass a moment (a later job does not make that moment longer).
    pub fn unmute_soon(&self, agent: &str) {
        let mut p = self.inner.lock();
        let now = Instant::now();
        match p.muted.get_mut(agent) {
            Some(until @ None) => *until = Some(now + MUTED_AFTER),
            Some(Some(u)) if *u <= now => {
                p.muted.remove(agent);
            }
            _ => {}
        }
    }

    /// Stop watching `agent` (removed).
    pub fn forget(&self, agent: &str) {
        let mut p = self.inner.lock();
        if let Some(w) = p.agents.remove(agent).and_then(|w| w.watch) {
            w.set_tap(None);
        }
        p.touched.remove(agent);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut p = self.inner.lock();
        p.stop = true;
        for w in p.agents.values().filter_map(|w| w.watch.as_ref()) {
            w.set_tap(None);
        }
        self.inner.wake.notify_all();
    }
}

fn run(inner: &Inner, engine: &Sender<EngineMsg>) {
    let mut repos: BTreeMap<PathBuf, git2::Repository> = BTreeMap::new();
    let mut reported: BTreeMap<(String, FindingKind, String), Instant> = BTreeMap::new();
    loop {
        let (batch, agents) = {
            let mut p = inner.lock();
            while p.touched.is_empty() && p.arm.is_empty() && !p.stop {
                p = inner.wake.wait(p).unwrap_or_else(|e| e.into_inner());
            }
            if p.stop {
                return;
            }
            let arm = std::mem::take(&mut p.arm);
            if !arm.is_empty() {
                drop(p);
                for w in arm {
                    w.arm();
                }
                continue;
            }
            p.overflowed.clear();
            let now = Instant::now();
            p.muted.retain(|_, until| until.is_none_or(|u| u > now));
            let mut batch = std::mem::take(&mut p.touched);
            batch.retain(|agent, _| !p.muted.contains_key(agent));
            let agents: BTreeMap<String, Watched> =
                batch.keys().filter_map(|a| p.agents.get(a).map(|w| (a.clone(), w.clone()))).collect();
            (batch, agents)
        };
        let now = Instant::now();
        reported.retain(|_, at| now.duration_since(*at) < SAME_AGAIN);
        for (agent, paths) in batch {
            let Some(Watched { root, rules, watch }) = agents.get(&agent) else { continue };
            if !repos.contains_key(root) {
                if let Ok(r) = git2::Repository::open(root) {
                    repos.insert(root.clone(), r);
                }
            }
            let repo = repos.get(root);
            let mut found: Vec<Found> = Vec::new();
            for rel in paths {
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
        let roots: BTreeSet<PathBuf> = inner.lock().agents.values().map(|w| w.root.clone()).collect();
        repos.retain(|r, _| roots.contains(r));
    }
}
