//! Work off the engine thread: git jobs for the one worker (checkpoints, rollbacks, merges, diffs, conflicts),
//! diffstats and overlaps measured again when worktrees or branches move, periodic checkpoints.

use super::*;

/// What a muster killed mid-write left in the git folder (a ref lock would stop an agent's checkpoints for
/// good): removed now that this engine holds the repository's lock, with a log line; one a live process holds is
/// reported.
pub(super) fn clean_stale_git_files(root: &std::path::Path, sink: &EventSink) {
    match crate::git::stale::clean(root, std::time::SystemTime::now()) {
        Ok(cleaned) => {
            for path in cleaned.removed {
                tracing::info!("removed {}, left by a muster that was killed", path.display());
            }
            for (path, pid) in cleaned.held {
                let text = format!(
                    "{} is held by process {pid} (a git still running?): checkpoints it locks fail until it ends",
                    path.display()
                );
                tracing::warn!("{text}");
                sink.event(Event::Message { text, error: true });
            }
        }
        Err(e) => tracing::warn!("looking for stale git locks: {e:#}"),
    }
}

/// Overlap passes: requests that pile up while one runs are folded into the next (only the newest matters).
pub(super) fn spawn_overlap_worker(sink: EventSink) -> Sender<(PathBuf, Vec<(String, String)>)> {
    let (tx, rx) = mpsc::channel::<(PathBuf, Vec<(String, String)>)>();
    let _ = std::thread::Builder::new().name("overlaps".into()).spawn(move || {
        while let Ok(mut req) = rx.recv() {
            while let Ok(newer) = rx.try_recv() {
                req = newer;
            }
            match crate::git::overlap::check(&req.0, &req.1) {
                Ok(report) => sink.event(Event::Overlaps(report)),
                Err(e) => tracing::warn!("overlap check: {e:#}"),
            }
        }
    });
    tx
}

/// At most this often a busy agent's diffstat is taken again while its files change.
pub(super) const DIFFSTAT_EVERY: Duration = Duration::from_secs(2);

/// The share of one core the whole crew's diffstats may take: after a diffstat that took `d`, the next waits
/// `d × (1 / share − 1)`, so many agents in a large repository cannot add up to a busy core.
pub(super) const DIFFSTAT_SHARE: f64 = 0.1;

/// A diffstat to take: the worktree, its base, and its watcher (armed first, so that the figure holds until the
/// watcher sees a change).
pub(super) struct DiffJob {
    pub(super) path: PathBuf,
    pub(super) base: String,
    pub(super) watch: Option<Arc<WorktreeWatch>>,
}

pub(super) fn spawn_diff_worker(engine: Sender<EngineMsg>) -> Sender<(String, DiffJob)> {
    let (tx, rx) = mpsc::channel::<(String, DiffJob)>();
    let _ = std::thread::Builder::new().name("diffstat".into()).spawn(move || {
        let mut rest_until: Option<Instant> = None;
        while let Ok(first) = rx.recv() {
            if let Some(t) = rest_until.take() {
                // Requests that arrive meanwhile are coalesced below.
                std::thread::sleep(t.saturating_duration_since(Instant::now()));
            }
            // Coalesce a burst of requests into one pass per agent.
            let mut batch: BTreeMap<String, DiffJob> = BTreeMap::new();
            batch.insert(first.0, first.1);
            while let Ok((n, job)) = rx.try_recv() {
                batch.insert(n, job);
            }
            let started = Instant::now();
            for (name, job) in batch {
                if let Some(w) = &job.watch {
                    w.arm();
                }
                if let Ok(stat) = diffstat::diffstat(&job.path, &job.base) {
                    if engine.send(EngineMsg::Report(Report::Diffstat { name, stat })).is_err() {
                        return;
                    }
                }
            }
            let took = started.elapsed();
            let rest = took.mul_f64(1.0 / DIFFSTAT_SHARE - 1.0).min(Duration::from_secs(10));
            rest_until = Some(Instant::now() + rest);
        }
    });
    tx
}

/// Whether a periodic checkpoint is due: the agent stayed busy for a period and its watcher saw files change (an
/// unchanged tree would make no checkpoint anyway). A period that ran out restarts either way, or the engine
/// would wake at once, again and again, for an agent that changes nothing.
pub(super) fn periodic_due(
    state: AgentState,
    last: &mut Option<Instant>,
    dirty: impl FnOnce() -> bool,
    every: Duration,
    now: Instant,
) -> bool {
    if state != AgentState::Busy || !last.is_some_and(|t| now.duration_since(t) >= every) {
        return false;
    }
    *last = Some(now);
    dirty()
}

impl Supervisor {
    /// When the next periodic checkpoint of a busy agent is due.
    pub(super) fn next_periodic(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|s| s.info.state == AgentState::Busy)
            .filter_map(|s| s.last_periodic.map(|t| t + self.cfg.checkpoint_every))
            .min()
    }

    pub(super) fn periodic_checkpoints(&mut self) {
        let every = self.cfg.checkpoint_every;
        let now = Instant::now();
        let mut due = Vec::new();
        for slot in &mut self.slots {
            let dirty = || slot.files.as_ref().is_none_or(|w| w.is_dirty());
            if periodic_due(slot.info.state, &mut slot.last_periodic, dirty, every, now) {
                due.push(slot.spec.name.clone());
            }
        }
        for name in due {
            self.job(&name, JobKind::Create { trigger: "periodic".into() }, true);
        }
    }

    /// Queue a checkpoint job; `pause` freezes a running agent while it runs (jobs that write its files).
    /// Checkpoints never stop the agent: they read optimistically and read again what changed meanwhile.
    pub(super) fn job(&self, name: &str, kind: JobKind, pause: bool) {
        self.job_with(name, kind, pause, None, false);
    }

    /// Queue a job for an agent's worktree; whether it was queued (not when the worktree is missing, which
    /// `reply` is told).
    pub(super) fn job_with(
        &self,
        name: &str,
        kind: JobKind,
        pause: bool,
        reply: Option<Sender<Answer>>,
        stop_after: bool,
    ) -> bool {
        let Some(slot) = self.slots.iter().find(|s| s.spec.name == name) else {
            if let Some(r) = reply {
                let _ = r.send(Answer::error(ErrorKind::Unknown, format!("no agent `{name}` in this crew")));
            }
            return false;
        };
        if self.worktree_of(slot).is_none() {
            let text = format!("{name}: no worktree at {}", slot.info.worktree.display());
            if let Some(r) = reply {
                let _ = r.send(Answer::error(ErrorKind::Refused, text.clone()));
            }
            if !matches!(kind, JobKind::List) {
                self.message(text, true);
            }
            return false;
        }
        if !stop_after && self.queue.queued.load(Ordering::SeqCst) >= git_jobs::MAX_QUEUED {
            let text = format!("{name}: not done: {} checkpoint jobs are waiting already", git_jobs::MAX_QUEUED);
            match reply {
                Some(r) => {
                    let _ = r.send(Answer::error(ErrorKind::Refused, text.clone()));
                }
                // Said once while the queue is full, not once per refused job.
                None if !self.queue_full_said.replace(true) => {
                    self.message(text, true);
                }
                None => {}
            }
            return false;
        }
        if matches!(
            kind,
            JobKind::Rollback { .. }
                | JobKind::Undo
                | JobKind::Merge { into_agent: true, .. }
                | JobKind::Conflict { .. }
        ) {
            // muster writes the worktree: not the agent's doing.
            self.guard.mute(name);
        }
        if matches!(kind, JobKind::Merge { into_agent: false, .. } | JobKind::Conflict { .. }) {
            // A merge into the base writes the main checkout.
            self.guard.mute(crate::engine::guard::MAIN);
        }
        let turn = matches!(&kind, JobKind::Create { trigger } if trigger == "turn");
        if turn {
            slot.turn_jobs.set(slot.turn_jobs.get() + 1);
        }
        let tree = slot.running.as_ref().filter(|r| !r.exited).and(slot.tree.clone());
        let job = Job {
            name: name.to_string(),
            worktree: slot.info.worktree.clone(),
            pause: if pause { tree.clone() } else { None },
            agent: tree,
            files: slot.files.clone(),
            kind,
            reply,
            stop_after,
        };
        // Counted before it goes: the worker may finish it before this thread runs again.
        self.queue.queued.fetch_add(1, Ordering::SeqCst);
        let queued = self.jobs.send(job).is_ok();
        if !queued {
            self.queue.queued.fetch_sub(1, Ordering::SeqCst);
            if let Some(slot) = self.slots.iter().find(|s| s.spec.name == name && turn) {
                slot.turn_jobs.set(slot.turn_jobs.get().saturating_sub(1));
            }
        }
        queued
    }

    pub(super) fn conflict(&self, name: &str, op: ConflictOp) {
        self.conflict_with(name, op, None);
    }

    pub(super) fn conflict_with(&self, name: &str, op: ConflictOp, reply: Option<Sender<Answer>>) -> bool {
        // A merge into the agent runs in its worktree: writes there hold the agent still; reads need nothing.
        let in_agent =
            self.slots.iter().find(|s| s.spec.name == name).is_some_and(|s| merge::in_progress(&s.info.worktree));
        let pause = in_agent && !matches!(op, ConflictOp::Read { .. });
        self.job_with(name, JobKind::Conflict { root: self.cfg.root.clone(), op }, pause, reply, false)
    }

    /// Compare every pair of agents' work, off this thread; at most one pass runs at a time.
    pub(super) fn request_overlaps(&mut self) {
        let agents: Vec<(String, String)> = self
            .slots
            .iter()
            .filter(|s| s.spec.worktree && !s.info.base.is_empty())
            .map(|s| (s.spec.name.clone(), s.info.base.clone()))
            .collect();
        if agents.len() < 2 {
            // Nobody to overlap with: a report from before (naming a removed agent) must not stand.
            self.sink.event(Event::Overlaps(Default::default()));
            return;
        }
        let _ = self.overlap_tx.send((self.cfg.root.clone(), agents));
    }

    pub(super) fn checkpoints_done(&mut self, mut done: JobDone) {
        self.guard.unmute_soon(&done.name);
        self.guard.unmute_soon(crate::engine::guard::MAIN);
        let failed = done.message.as_ref().is_some_and(|(_, error)| *error);
        self.restores_done(&done.name, done.rolled_back == Some(true), failed);
        if self.queue.queued.load(Ordering::SeqCst) < git_jobs::MAX_QUEUED {
            self.queue_full_said.set(false);
        }
        if done.stop_after {
            self.stop(&done.name, false);
        }
        if let Some((text, error)) = &done.message {
            self.message(text.clone(), *error);
        }
        if done.branches_moved {
            // The base may have moved under every agent: what each would merge is measured again.
            self.remeasure();
        }
        if done.turn_job {
            if let Some(slot) = self.slots.iter().find(|s| s.spec.name == done.name) {
                slot.turn_jobs.set(slot.turn_jobs.get().saturating_sub(1));
            }
        }
        if done.turn_job && !done.turn_changed {
            // The watcher saw writes, but the tree is the one checkpointed already: no progress.
            self.gates_unchanged_turn(&done.name);
        }
        if let Some(cp) = &done.turn {
            self.gates_after_turn(&done.name, cp);
            if done.turn_changed {
                self.ask_for_a_new_look(&done.name, cp.n);
            }
        }
        if done.turn_job {
            // A stop hook that waited for this turn's gates: answered now if none runs.
            self.answer_takes(&done.name, false);
        }
        if let Some(kept) = done.kept.take() {
            self.result_kept(&done.name, *kept, done.reply.take());
        }
        let Some(mut checkpoints) = done.checkpoints else { return };
        let name = done.name;
        self.mark_green(&name, &mut checkpoints);
        let Some(slot) = self.slot_mut(&name) else { return };
        slot.info.checkpoints = checkpoints.len();
        slot.newest_checkpoint = checkpoints.iter().map(|c| c.n).max().unwrap_or(0);
        if let Some(r) = done.rolled_back {
            slot.info.rolled_back = r;
        }
        self.emit(&name);
        self.diffs_after_checkpoint(&name);
        self.sink.event(Event::Timeline { name: name.clone(), checkpoints });
        if done.rolled_back.is_some() {
            self.request_diffstat(&name, true);
        }
        self.request_overlaps();
        self.branches_moved();
    }

    pub(super) fn request_diffstat(&mut self, name: &str, force: bool) {
        let diff_tx = self.diff_tx.clone();
        let Some(slot) = self.slot_mut(name) else {
            return;
        };
        // The watcher knows when no file changed: then the last figure still stands, however busy the agent.
        let changes = slot.files.as_ref().and_then(|w| w.change_count());
        let unchanged = changes.is_some() && changes == slot.diffed_at_change;
        let due = force || (!unchanged && slot.last_diff_request.is_none_or(|t| t.elapsed() > DIFFSTAT_EVERY));
        if due && !slot.info.base.is_empty() {
            slot.last_diff_request = Some(Instant::now());
            slot.diffed_at_change = changes;
            let job =
                DiffJob { path: slot.info.worktree.clone(), base: slot.info.base.clone(), watch: slot.files.clone() };
            let _ = diff_tx.send((name.to_string(), job));
        }
    }

    /// Every agent's diffstat and the overlaps, taken again: the branches their merges are measured on moved.
    pub(super) fn remeasure(&mut self) {
        self.remeasure_at = None;
        let names: Vec<String> = self.slots.iter().map(|s| s.spec.name.clone()).collect();
        for name in names {
            self.request_diffstat(&name, true);
        }
        self.request_overlaps();
        // A branch taken back outside muster is found when it moves, not at the agent's next checkpoint (a
        // reset back to a tree checkpointed before makes none).
        self.branches_moved();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_checkpoints_need_a_whole_busy_period_and_changed_files() {
        let every = Duration::from_secs(300);
        let start = Instant::now();
        let later = start + every;
        let mut last = Some(start);
        assert!(!periodic_due(AgentState::Busy, &mut last, || true, every, start + Duration::from_secs(10)));
        assert!(!periodic_due(AgentState::Idle, &mut last, || true, every, later));
        assert_eq!(last, Some(start));
        // Due but nothing changed: no checkpoint, and the next period starts now (no wake-up loop).
        assert!(!periodic_due(AgentState::Busy, &mut last, || false, every, later));
        assert_eq!(last, Some(later));
        assert!(periodic_due(AgentState::Busy, &mut last, || true, every, later + every));
        assert_eq!(last, Some(later + every));
        let mut never = None;
        assert!(!periodic_due(AgentState::Busy, &mut never, || true, every, later));
    }
}
