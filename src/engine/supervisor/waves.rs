//! A crew's plan at work: agents with an `after` (or a later wave) stay pending until every agent they follow is
//! done as its `advance` says, then start — in the crew file's order, once each (`config::plan::ready` decides).
//! Done stays done and is saved, with the operator's approvals: a restarted server resumes in the same wave.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;
use crate::config::gate::When;
use crate::config::plan::{self, Advance, Node, Progress};
use crate::protocol::gate::GateMark;

/// How often branches of agents that advance once merged are checked against their bases.
const MERGED_EVERY: Duration = Duration::from_secs(1);

impl Supervisor {
    /// Latch what is done, start what may start, and say why the rest waits.
    pub(super) fn advance_waves(&mut self) {
        // It runs after every message the engine handles: nothing to do once no agent waits.
        if !self.crew_started || !self.slots.iter().any(|s| Self::progress(s) == Progress::Pending) {
            return;
        }
        let check_merged = self.merged_checked.is_none_or(|t| t.elapsed() >= MERGED_EVERY);
        let mut latched = false;
        for i in 0..self.slots.len() {
            if !self.slots[i].done && self.is_done(i, check_merged) {
                self.slots[i].done = true;
                latched = true;
            }
        }
        if check_merged {
            self.merged_checked = Some(Instant::now());
        }
        if latched {
            self.unsaved_since.get_or_insert_with(Instant::now);
        }
        let progress: BTreeMap<String, Progress> =
            self.slots.iter().map(|s| (s.spec.name.clone(), Self::progress(s))).collect();
        let nodes: Vec<Node> = self
            .slots
            .iter()
            .map(|s| Node {
                name: s.spec.name.clone(),
                after: s.spec.after.clone(),
                approve: s.spec.approve,
                wave: s.spec.wave,
            })
            .collect();
        for name in plan::ready(&nodes, &progress, &self.approved) {
            tracing::info!("{name}: what it follows is done: starting it");
            self.start(&name, false);
        }
        self.say_pending();
    }

    /// Where a slot is in the plan.
    fn progress(s: &Slot) -> Progress {
        let waits = !s.ran_before
            && s.running.is_none()
            && !s.spec.after.is_empty()
            && !matches!(s.info.crew_file, CrewFileMark::Left | CrewFileMark::Added);
        match () {
            _ if s.done => Progress::Done,
            _ if waits => Progress::Pending,
            _ => Progress::Started,
        }
    }

    /// Whether slot `i` is done now, as its `advance` says.
    fn is_done(&self, i: usize, check_merged: bool) -> bool {
        let s = &self.slots[i];
        if s.running.is_none() && !s.ran_before {
            return false;
        }
        // At its prompt after a turn on the task it was given last (a CLI at its first prompt has done nothing),
        // with that turn's work checkpointed (what follows branches from it, reviews name it).
        let worked = s.task_turn.is_some_and(|t| s.turns > t);
        let idle = s.info.state == AgentState::Idle && worked && s.turn_jobs.get() == 0;
        // A reviewer is done once it approved the newest work of every agent it reviews: its approval is what
        // lets the plan go on.
        if s.spec.reviews.iter().any(|r| self.review_open(r)) {
            return false;
        }
        match s.spec.advance {
            Advance::Idle => idle,
            Advance::Green => {
                let gates = s.spec.gates_at(&self.cfg.crew.gates, When::Turn);
                idle && (gates.is_empty() || matches!(s.info.gate, GateMark::Green { .. }))
            }
            Advance::Merged => {
                // Its work is in its base: a clean worktree, no commit the base lacks, and some work done.
                check_merged
                    && !matches!(s.info.state, AgentState::Busy | AgentState::Starting)
                    && s.info.checkpoints > 0
                    && crate::git::worktree::worktree_status(&self.cfg.root, &s.spec.name, &s.info.base)
                        .is_ok_and(|w| w.is_safe_to_remove())
            }
        }
    }

    /// Each pending agent's reason, with what it waits for and how that is doing.
    fn say_pending(&mut self) {
        let mut changed = Vec::new();
        for i in 0..self.slots.len() {
            let pending = Self::progress(&self.slots[i]) == Progress::Pending;
            let why = if pending { self.waiting_for(i) } else { String::new() };
            let s = &mut self.slots[i];
            if s.info.pending != pending || (pending && s.info.why != why) {
                s.info.pending = pending;
                if pending || s.info.why.starts_with("pending") {
                    s.info.why = why;
                }
                changed.push(s.info.clone());
            }
        }
        for info in changed {
            self.sink.event(Event::Agent(info));
        }
    }

    fn waiting_for(&self, i: usize) -> String {
        let s = &self.slots[i];
        let open: Vec<String> = s
            .spec
            .after
            .iter()
            .filter_map(|d| self.slots.iter().find(|o| &o.spec.name == d))
            .filter(|o| !o.done)
            .map(|o| {
                let mut how = match (&o.info.gate, o.info.pending) {
                    (_, true) => "pending".to_string(),
                    (GateMark::None, _) => o.info.state.label().to_string(),
                    (g, _) => format!("{} {}", o.info.state.label(), g.cell()),
                };
                // A reviewer's open reviews: what it has not approved yet.
                let open: Vec<&str> =
                    o.spec.reviews.iter().filter(|r| self.review_open(r)).map(String::as_str).collect();
                if !o.info.pending && !open.is_empty() {
                    how.push_str(&format!(", to approve: {}", open.join(", ")));
                }
                format!("{} ({how}, done when {})", o.spec.name, o.spec.advance.word())
            })
            .collect();
        match (open.is_empty(), s.spec.wave) {
            (true, Some(w)) => format!("pending: wave {w} waits for your word (W starts it)"),
            (true, None) => "pending".into(),
            (false, _) => format!("pending: after {}", open.join(", ")),
        }
    }

    /// The operator's word for wave `wave`: its pending agents start now, what they follow done or not.
    pub(super) fn approve_wave(&mut self, wave: u32) {
        self.approved.insert(wave);
        self.unsaved_since.get_or_insert_with(Instant::now);
        let names: Vec<String> = self
            .slots
            .iter()
            .filter(|s| s.spec.wave == Some(wave) && Self::progress(s) == Progress::Pending)
            .map(|s| s.spec.name.clone())
            .collect();
        if names.is_empty() {
            self.message(format!("wave {wave}: nothing pending"), false);
        }
        for name in names {
            self.start(&name, false);
        }
        self.say_pending();
    }
}
