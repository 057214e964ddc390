//! Gates in the engine (issue #28): after a turn that changed files, the agent's gates run on the checkpoint
//! that ended it, one queue for the crew; a failure is handed back through the mail arbiter until it passes or
//! the guard holds the agent for the operator. Only a gate's exit code decides; its error is never the agent's.

use std::collections::VecDeque;

use super::*;
use crate::config::gate::{GateSpec, When};
use crate::gate::guard::{Action, Loop};
use crate::gate::{failures, outcome, output, run};
use crate::mailbox::receipt::Step;
use crate::protocol::gate::{steer_text, GateAnswer, GateMark, GateOp, GateOutcome, GateRun};
use crate::protocol::mail::ReceiptState;
use crate::protocol::now_ms;

use crate::mailbox::GATE as GATE_SENDER;
/// Runs a status lists unless asked for more (and at most).
const LIST: usize = 20;
const MAX_LIST: usize = 500;

/// A run waiting for a place.
struct Queued {
    agent: String,
    gate: GateSpec,
    checkpoint: String,
    checkpoint_n: u32,
    /// The agent's turn count when it was queued.
    turn: u64,
}

/// A run under way.
struct Active {
    id: i64,
    agent: String,
    gate: String,
    when: When,
    cancel: run::Cancel,
}

/// What waits for an agent's merge gates.
#[derive(Clone)]
pub(super) enum AfterGates {
    /// The workbench's merge check (`m`): answered with the gates' outcomes, for the operator to confirm.
    Check { into_agent: bool, to: Asker },
    /// A merge: carried out when every gate passed, refused otherwise (told to `reply`, or as a message).
    Merge { into_agent: bool, message: Option<String>, reply: Option<Sender<Answer>> },
}

/// A CLI's stop hook that waits for the gates of the turn it ends (their failure is its answer).
struct ParkedTake {
    agent: String,
    reply: Sender<Answer>,
    until: Instant,
}

struct PendingMerge {
    agent: String,
    then: AfterGates,
}

#[derive(Default)]
pub(super) struct Gates {
    merges: Vec<PendingMerge>,
    takes: Vec<ParkedTake>,
    queue: VecDeque<Queued>,
    active: Vec<Active>,
    /// Each agent's loop on each gate (by agent, then gate).
    loops: BTreeMap<(String, String), Loop>,
    /// The checkpoint each gate last judged (passed or failed) for each agent: the same tree is not run again.
    judged: BTreeMap<(String, String), String>,
    /// The last outcome of each gate for each agent, and the run.
    last: BTreeMap<(String, String), GateRun>,
    /// Ids for runs when the database is not available.
    local_ids: i64,
    /// `.muster/gates`, once made (and found a real folder).
    logs: Option<std::path::PathBuf>,
    /// Each agent's checkpoints every turn gate passed on.
    green: BTreeMap<String, std::collections::BTreeSet<String>>,
}

/// Half the cores, at least one: gates are test suites, and the agents need the rest. Read once: asking reads
/// the cgroup's files each time.
fn default_parallel() -> usize {
    static HALF: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *HALF.get_or_init(|| std::thread::available_parallelism().map(|n| n.get() / 2).unwrap_or(1).max(1))
}

impl Supervisor {
    fn gate_specs(&self, name: &str, when: When) -> Vec<GateSpec> {
        let Some(slot) = self.slots.iter().find(|s| s.spec.name == name) else { return Vec::new() };
        let spec = slot.pending_spec.as_ref().unwrap_or(&slot.spec);
        spec.gates_at(&self.cfg.crew.gates, when).into_iter().cloned().collect()
    }

    /// The loops and last runs kept in the database, read when the mailbox opens.
    pub(super) fn load_gates(&mut self) {
        let Some(store) = self.mailbox.as_mut() else { return };
        if let Err(e) = store.gate_runs_interrupted() {
            tracing::warn!("gate runs: {e}");
        }
        if let Ok(loops) = store.gate_loops::<Loop>() {
            for (agent, gate, l) in loops {
                self.gates.loops.insert((agent, gate), l);
            }
        }
        if let Ok(runs) = store.gate_runs(None, MAX_LIST) {
            // Green: a checkpoint on which every turn gate of its agent has a pass.
            let mut passed: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
            for r in runs.iter().filter(|r| r.outcome == Some(GateOutcome::Pass) && !r.checkpoint.is_empty()) {
                passed.entry((r.agent.clone(), r.checkpoint.clone())).or_default().push(r.gate.clone());
            }
            for ((agent, cp), gates) in passed {
                let specs = self.gate_specs(&agent, When::Turn);
                if !specs.is_empty() && specs.iter().all(|g| gates.contains(&g.name)) {
                    self.gates.green.entry(agent).or_default().insert(cp);
                }
            }
            for r in runs.into_iter().rev() {
                if matches!(r.outcome, Some(GateOutcome::Pass | GateOutcome::Fail)) {
                    self.gates.judged.insert((r.agent.clone(), r.gate.clone()), r.checkpoint.clone());
                }
                self.gates.last.insert((r.agent.clone(), r.gate.clone()), r);
            }
        }
        let names: Vec<String> = self.slots.iter().map(|s| s.spec.name.clone()).collect();
        for name in names {
            let hold = self.gates.loops.iter().find(|((a, _), l)| a == &name && l.held.is_some());
            let hold = hold.and_then(|(_, l)| l.held.clone());
            let mark = self.gate_mark(&name);
            let stopped = self.gates.loops.iter().any(|((a, _), l)| a == &name && l.stopped);
            if let Some(slot) = self.slot_mut(&name) {
                slot.info.gate = mark;
                slot.info.gates_stopped = stopped;
                slot.gate_hold = hold;
            }
        }
    }

    /// A turn ended on checkpoint `cp`: its gates run on it, unless they judged that tree already.
    pub(super) fn gates_after_turn(&mut self, name: &str, cp: &crate::protocol::git::Checkpoint) {
        let specs = self.gate_specs(name, When::Turn);
        self.queue_gates(name, specs, &cp.id, cp.n, false);
    }

    fn queue_gates(&mut self, name: &str, specs: Vec<GateSpec>, checkpoint: &str, n: u32, again: bool) -> Vec<i64> {
        let Some(turn) = self.slots.iter().find(|s| s.spec.name == name).map(|s| s.turns) else { return Vec::new() };
        let mut queued = false;
        for gate in specs {
            let key = (name.to_string(), gate.name.clone());
            if !again && !checkpoint.is_empty() && self.gates.judged.get(&key).is_some_and(|c| c == checkpoint) {
                continue;
            }
            let running = self.gates.active.iter().any(|a| a.agent == name && a.gate == gate.name);
            if running {
                // The run under way checks a tree the agent moved on from; this one replaces it.
                self.cancel_gate(name, Some(&gate.name));
            }
            self.gates.queue.retain(|q| !(q.agent == name && q.gate.name == gate.name));
            // A changed tree after a steer is progress: the guard's count of turns without a change restarts.
            if let Some(l) = self.gates.loops.get_mut(&key) {
                l.idle_turns = 0;
            }
            self.gates.queue.push_back(Queued {
                agent: name.to_string(),
                gate,
                checkpoint: checkpoint.to_string(),
                checkpoint_n: n,
                turn,
            });
            queued = true;
        }
        if !queued {
            return Vec::new();
        }
        self.set_gate_mark(name);
        self.pump_gates()
    }

    /// Start what waits, while there is a place; the ids started.
    fn pump_gates(&mut self) -> Vec<i64> {
        let limit = self.cfg.crew.max_parallel_gates.unwrap_or_else(default_parallel);
        let mut started = Vec::new();
        while self.gates.active.len() < limit {
            let Some(q) = self.gates.queue.pop_front() else { break };
            if let Some(id) = self.start_gate(q) {
                started.push(id);
            }
        }
        started
    }

    fn start_gate(&mut self, q: Queued) -> Option<i64> {
        let slot = self.slots.iter().find(|s| s.spec.name == q.agent)?;
        let spec = slot.pending_spec.clone().unwrap_or_else(|| slot.spec.clone());
        let dir = slot.info.worktree.clone();
        let mut env = child_env(std::env::vars(), &spec, &self.run_dir, slot.info.port_base);
        env.push(("MUSTER_GATE".into(), q.gate.name.clone()));
        let loops = self.gates.loops.get(&(q.agent.clone(), q.gate.name.clone())).cloned().unwrap_or_default();
        let mut record = GateRun {
            id: 0,
            agent: q.agent.clone(),
            gate: q.gate.name.clone(),
            checkpoint: q.checkpoint.clone(),
            checkpoint_n: q.checkpoint_n,
            outcome: None,
            exit: None,
            why: "running".into(),
            attempt: 0,
            attempts: q.gate.attempts.saturating_add(loops.granted),
            failed: Vec::new(),
            tail: String::new(),
            started_ms: now_ms(),
            took_ms: 0,
        };
        record.id = match self.mailbox.as_mut().map(|s| s.gate_started(&record)) {
            Some(Ok(id)) => id,
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!("recording a gate run: {e}");
                }
                self.gates.local_ids -= 1;
                self.gates.local_ids
            }
        };
        let logs = match self
            .gates
            .logs
            .clone()
            .map_or_else(|| crate::safefs::real_dir(&self.cfg.root, ".muster/gates"), Ok)
        {
            Ok(d) => d,
            Err(e) => {
                let why = format!("not run: {e:#}");
                self.message(format!("{}: gate {} {why}", q.agent, q.gate.name), true);
                let failed = GateRun { outcome: Some(GateOutcome::Error), why, ..record };
                self.gates.last.insert((q.agent.clone(), q.gate.name.clone()), failed);
                return None;
            }
        };
        self.gates.logs = Some(logs.clone());
        let job = run::Job {
            run: q.gate.run.clone(),
            dir,
            env,
            timeout: Duration::from_secs(q.gate.timeout_s),
            log: logs.join(format!("{}.log", record.id)),
        };
        let cancel = run::Cancel::default();
        self.gates.active.push(Active {
            id: record.id,
            agent: q.agent.clone(),
            gate: q.gate.name.clone(),
            when: q.gate.when,
            cancel: cancel.clone(),
        });
        self.gates.last.insert((q.agent.clone(), q.gate.name.clone()), record.clone());
        let tx = self.tx.clone();
        let (turn, gate) = (q.turn, q.gate);
        let id = record.id;
        let spawned = std::thread::Builder::new().name("gate".into()).spawn(move || {
            let finished = run::run(&job, &cancel);
            let (outcome, why) = outcome::classify(&finished.ended);
            let plain = output::plain(&finished.tail);
            record.outcome = Some(outcome);
            record.exit = match finished.ended {
                outcome::Ended::Exited(n) => Some(n),
                _ => None,
            };
            record.why = why;
            record.failed = failures::failing(&plain, gate.parse);
            record.tail = output::tail(&plain, gate.feedback_lines);
            record.took_ms = finished.took.as_millis() as u64;
            let _ = tx.send(EngineMsg::Report(Report::GateDone { run: record, turn }));
        });
        if let Err(e) = spawned {
            self.gates.active.retain(|a| a.id != id);
            self.message(format!("gate not run: no thread for it ({e})"), true);
            return None;
        }
        Some(id)
    }

    /// Some of the agent's gates of `when` wait for a place or run.
    fn gates_pending(&self, agent: &str, when: When) -> bool {
        self.gates.queue.iter().any(|q| q.agent == agent && q.gate.when == when)
            || self.gates.active.iter().any(|a| a.agent == agent && a.when == when)
    }

    /// A stop hook asks for the agent's mail as its turn ends: where the turn changed files and the agent has
    /// gates, its checkpoint is taken now and the answer waits for the gates (up to `within`), so a failure goes in
    /// through the hook, nothing typed. The reply back when there is nothing to wait for.
    pub(super) fn park_take(&mut self, agent: &str, within: Duration, reply: Sender<Answer>) -> Option<Sender<Answer>> {
        let specs = self.gate_specs(agent, When::Turn);
        let stopped = self.gates.loops.iter().any(|((a, _), l)| a == agent && l.stopped);
        if specs.is_empty() || stopped {
            return Some(reply);
        }
        // Whether the turn changed files is the checkpoint's to say: the file watcher may not have seen a write
        // made the moment before the hook ran.
        if !self.gates_pending(agent, When::Turn) {
            // The hook answers before the CLI reports its turn's end: the turn's checkpoint is taken now (its
            // gates follow), and the end reported after it is not counted again.
            if !self.job_with(agent, JobKind::Create { trigger: "turn".into() }, false, None, false) {
                return Some(reply);
            }
            if let Some(slot) = self.slot_mut(agent) {
                slot.turn_end_taken = true;
            }
        }
        tracing::info!("{agent}: its stop hook waits for its gates");
        self.gates.takes.push(ParkedTake { agent: agent.to_string(), reply, until: Instant::now() + within });
        None
    }

    /// Its stop hook waits for its gates: mail is not typed meanwhile (the hook hands it over).
    pub(super) fn hook_waits_for_gates(&self, agent: &str) -> bool {
        self.gates.takes.iter().any(|t| t.agent == agent)
    }

    /// When the operator's keys stop holding this agent's mail (`OPERATOR_GRACE` after them), while they do.
    fn operator_grace_end(&self, agent: &str) -> Option<Instant> {
        let at = self.slots.iter().find(|s| s.spec.name == agent)?.mail.operator_at?;
        Some(at + crate::mailbox::OPERATOR_GRACE).filter(|end| *end > Instant::now())
    }

    /// Answer the stop hooks that wait on this agent's gates, once none is queued or runs and the operator's keys
    /// no longer hold its mail (or, `now`, at once).
    pub(super) fn answer_takes(&mut self, agent: &str, now: bool) {
        if !now && (self.gates_pending(agent, When::Turn) || self.operator_grace_end(agent).is_some()) {
            return;
        }
        let (mine, rest): (Vec<ParkedTake>, Vec<ParkedTake>) =
            std::mem::take(&mut self.gates.takes).into_iter().partition(|t| t.agent == agent);
        self.gates.takes = rest;
        for t in mine {
            let text = self.take_mail(agent);
            tracing::info!("{agent}: its stop hook answered ({})", if text.is_some() { "mail" } else { "nothing" });
            let _ = t.reply.send(Answer::Mail(crate::protocol::mail::MailAnswer::Taken { text }));
        }
        // What waited for the hook and did not go with it goes the usual way.
        self.pump(agent);
    }

    /// When a waiting stop hook must be looked at again: its time is up, or the operator's grace ends.
    pub(super) fn next_take_timeout(&self) -> Option<Instant> {
        let grace = self.gates.takes.iter().filter_map(|t| self.operator_grace_end(&t.agent));
        self.gates.takes.iter().map(|t| t.until).chain(grace).min()
    }

    /// Stop hooks whose gates are done once the operator's grace ended, or that waited as long as they may
    /// (answered with what there is; the gates go on).
    pub(super) fn expire_takes(&mut self) {
        let now = Instant::now();
        let mut agents: Vec<(String, bool)> =
            self.gates.takes.iter().map(|t| (t.agent.clone(), t.until <= now)).collect();
        agents.dedup();
        for (agent, due) in agents {
            self.answer_takes(&agent, due);
        }
    }

    /// Run the agent's `when = "merge"` gates on its worktree before `then`; false when it has none.
    pub(super) fn gates_before_merge(&mut self, name: &str, then: AfterGates) -> bool {
        let specs = self.gate_specs(name, When::Merge);
        if specs.is_empty() {
            return false;
        }
        // Runs that wait for a place have no id yet: the merge waits until none of its gates is queued or runs.
        self.queue_gates(name, specs, "", 0, true);
        self.message(format!("{name}: running its merge gates first"), false);
        self.gates.merges.push(PendingMerge { agent: name.to_string(), then });
        self.settle_merges();
        true
    }

    /// Carry out `then` now, with the merge gates' outcomes when they ran.
    pub(super) fn merge_now(&mut self, name: &str, then: AfterGates) {
        self.merge_after(name, then, Vec::new());
    }

    fn merge_after(&mut self, name: &str, then: AfterGates, gates: Vec<(String, GateOutcome, String)>) {
        let base = self.slots.iter().find(|s| s.spec.name == name).map(|s| s.info.base.clone()).unwrap_or_default();
        let root = self.cfg.root.clone();
        match then {
            AfterGates::Check { into_agent, to } => {
                let owns = self.slots.iter().find(|s| s.spec.name == name).and_then(|s| s.spec.owns.clone());
                let shared = self.cfg.crew.shared.clone();
                self.job(name, JobKind::MergeCheck { root, base, into_agent, to, gates, owns, shared }, false);
            }
            AfterGates::Merge { into_agent, message, reply } => {
                let red: Vec<String> = gates
                    .iter()
                    .filter(|(_, o, _)| *o != GateOutcome::Pass)
                    .map(|(g, o, why)| format!("gate {g} {} ({why})", o.label()))
                    .collect();
                if !red.is_empty() {
                    let text = format!("{name}: not merged: {} (merge anyway: --skip-gates)", red.join(", "));
                    match reply {
                        Some(r) => {
                            let _ = r.send(Answer::error(ErrorKind::Refused, text));
                        }
                        None => self.message(text, true),
                    }
                    return;
                }
                // Merging into the agent writes its files: it is frozen meanwhile. Into the base, it runs on.
                let kind = JobKind::Merge { root, base, into_agent, message };
                self.job_with(name, kind, into_agent, reply, false);
            }
        }
    }

    /// Merges whose gates have all ended go on.
    fn settle_merges(&mut self) {
        let mut i = 0;
        while i < self.gates.merges.len() {
            let agent = self.gates.merges[i].agent.clone();
            if self.gates_pending(&agent, When::Merge) {
                i += 1;
                continue;
            }
            let p = self.gates.merges.remove(i);
            let outcomes: Vec<(String, GateOutcome, String)> = self
                .gate_specs(&agent, When::Merge)
                .iter()
                .filter_map(|g| self.gates.last.get(&(agent.clone(), g.name.clone())))
                .map(|r| (r.gate.clone(), r.outcome.unwrap_or(GateOutcome::Error), r.why.clone()))
                .collect();
            self.merge_after(&agent, p.then, outcomes);
        }
    }

    /// A run ended: recorded, judged, and acted on (steer, hold, green) unless the agent moved on meanwhile.
    pub(super) fn gate_done(&mut self, mut run: GateRun, turn: u64) {
        self.gates.active.retain(|a| a.id != run.id);
        let name = run.agent.clone();
        let key = (name.clone(), run.gate.clone());
        let current = self.slots.iter().find(|s| s.spec.name == name).map(|s| s.turns);
        let removed = current.is_none();
        // The agent started another turn meanwhile: the result is kept, not acted on.
        if current.is_some_and(|t| t != turn) && run.outcome != Some(GateOutcome::Error) {
            run.outcome = Some(GateOutcome::Stale);
        }
        let spec = self.cfg.crew.gates.iter().find(|g| g.name == run.gate).cloned();
        let outcome = run.outcome.unwrap_or(GateOutcome::Error);
        let mut action = Action::Nothing;
        // The loop is a turn gate's: a merge or manual gate's failure is the operator's to act on.
        if let Some(spec) = spec.as_ref().filter(|g| g.when == When::Turn && !removed) {
            let undelivered = self.undelivered_steer(&key).is_some();
            let l = self.gates.loops.entry(key.clone()).or_default();
            action = l.on_outcome(&spec.name, spec.attempts, outcome, undelivered);
            run.attempts = spec.attempts.saturating_add(l.granted);
            run.attempt = match action {
                Action::Steer { attempt, .. } => attempt,
                _ if outcome == GateOutcome::Fail => l.steers,
                _ => 0,
            };
        }
        if matches!(outcome, GateOutcome::Pass | GateOutcome::Fail) && !run.checkpoint.is_empty() {
            self.gates.judged.insert(key.clone(), run.checkpoint.clone());
        }
        self.gates.last.insert(key.clone(), run.clone());
        self.save_loop(&key);
        if let Some(store) = self.mailbox.as_mut() {
            if let Err(e) = store.gate_ended(&run) {
                tracing::warn!("recording gate run {}: {e}", run.id);
            }
            if run.id % 20 == 0 {
                if let Ok(gone) = store.prune_gate_runs(&name, crate::mailbox::gates::KEEP_RUNS) {
                    remove_logs(&self.cfg.root, &gone);
                }
            }
        }
        match action {
            Action::Steer { .. } => self.steer_on_gate(&run),
            Action::Hold { reason } => self.hold_for_gate(&name, reason),
            Action::Passed => {
                if self.slot_mut(&name).is_some_and(|s| s.gate_hold.take().is_some()) {
                    self.restate(&name);
                }
            }
            Action::Nothing if outcome == GateOutcome::Error && !removed => {
                // The check is broken, not the work: the operator hears it; the agent does not.
                self.message(format!("{name}: gate {} could not judge its work: {}", run.gate, run.why), true);
            }
            Action::Nothing => {}
        }
        if outcome == GateOutcome::Pass && !run.checkpoint.is_empty() && self.all_passed_on(&name, &run.checkpoint) {
            let green = self.gates.green.entry(name.clone()).or_default();
            if green.insert(run.checkpoint.clone()) {
                // The timeline marks it: listed again.
                self.job(&name, JobKind::List, false);
            }
        }
        self.set_gate_mark(&name);
        self.pump_gates();
        self.settle_merges();
        self.answer_takes(&name, false);
        self.settle_waits();
    }

    /// Keep an agent's loop on a gate (attempts, the guard's counts) across restarts.
    fn save_loop(&mut self, key: &(String, String)) {
        if let (Some(store), Some(l)) = (self.mailbox.as_mut(), self.gates.loops.get(key)) {
            if let Err(e) = store.save_gate_loop(&key.0, &key.1, l) {
                tracing::warn!("keeping {}'s loop on gate {}: {e}", key.0, key.1);
            }
        }
    }

    /// The last steer of this loop, while it has not reached its agent (queued, or held).
    fn undelivered_steer(&self, key: &(String, String)) -> Option<i64> {
        let id = self.gates.loops.get(key)?.mail?;
        let mail = self.mailbox.as_ref()?.get(id).ok()??;
        let state = mail.receipt(&key.0)?.state;
        matches!(state, ReceiptState::Queued | ReceiptState::Held).then_some(id)
    }

    /// Hand a failure back to the agent as mail from `gate`: the arbiter delivers it at its prompt, never into
    /// a dialog or while the operator types. A steer of the same loop not delivered yet is replaced by it.
    fn steer_on_gate(&mut self, run: &GateRun) {
        let key = (run.agent.clone(), run.gate.clone());
        let replaced = self.undelivered_steer(&key);
        if self.mailbox.is_none() {
            self.message(
                format!("{}: gate {} failed, and the mailbox that would tell it is not open", run.agent, run.gate),
                true,
            );
            return;
        }
        if let Some(old) = replaced {
            self.drop_steer(&run.agent, old, &format!("replaced by the failure on checkpoint {}", run.checkpoint_n));
        }
        match self.send_mail_as(GATE_SENDER, &run.agent, steer_text(run)) {
            Ok(id) => {
                let l = self.gates.loops.entry(key.clone()).or_default();
                l.mail = Some(id);
                self.save_loop(&key);
            }
            Err(error) => {
                self.message(format!("{}: the failure of gate {} was not sent: {error}", run.agent, run.gate), true);
            }
        }
    }

    /// A gate's steer that has not reached its agent goes no further (its receipt says why).
    fn drop_steer(&mut self, agent: &str, id: i64, why: &str) {
        let Some(store) = self.mailbox.as_mut() else { return };
        if store.apply(id, agent, &Step::Replace(why.to_string()), now_ms()).is_ok() {
            let mut changed = crate::mailbox::ops::Changed::default();
            changed.mails.push(id);
            changed.recipients.push(agent.to_string());
            self.mail_changed(changed);
        }
    }

    /// The guard stopped the loop: the agent waits for the operator (◆, with the reason, and the bell).
    fn hold_for_gate(&mut self, name: &str, reason: String) {
        self.message(
            format!("{name}: {reason}: it waits for you (grant an attempt, steer it, or stop the loop)"),
            true,
        );
        if let Some(slot) = self.slot_mut(name) {
            slot.gate_hold = Some(reason);
        }
        self.restate(name);
    }

    /// The state shown again after a hold began or ended: a hold shows an agent at its prompt as waiting.
    pub(super) fn restate(&mut self, name: &str) {
        let Some(slot) = self.slot_mut(name) else { return };
        let before = slot.info.clone();
        shown_state(slot);
        if slot.info != before {
            self.emit(name);
        }
    }

    /// The turn ended without a changed file: after a steer, the guard counts it.
    pub(super) fn gates_unchanged_turn(&mut self, name: &str) {
        let keys: Vec<(String, String)> = self.gates.loops.keys().filter(|(a, _)| a == name).cloned().collect();
        for key in keys {
            let action = match self.gates.loops.get_mut(&key) {
                Some(l) => l.on_unchanged_turn(&key.1),
                None => continue,
            };
            self.save_loop(&key);
            if let Action::Hold { reason } = action {
                self.hold_for_gate(name, reason);
            }
        }
    }

    /// The roster's word: running; else the first failing turn gate; else an error; else green when every turn
    /// gate passed (on the newest checkpoint one of them judged).
    fn gate_mark(&self, name: &str) -> GateMark {
        if self.gates.queue.iter().any(|q| q.agent == name) || self.gates.active.iter().any(|a| a.agent == name) {
            return GateMark::Running;
        }
        let specs = self.gate_specs(name, When::Turn);
        let runs: Vec<&GateRun> =
            specs.iter().filter_map(|g| self.gates.last.get(&(name.to_string(), g.name.clone()))).collect();
        if let Some(r) = runs.iter().find(|r| r.outcome == Some(GateOutcome::Fail)) {
            return GateMark::Red { gate: r.gate.clone(), attempt: r.attempt, of: r.attempts };
        }
        if let Some(r) = runs.iter().find(|r| r.outcome == Some(GateOutcome::Error)) {
            return GateMark::Error { gate: r.gate.clone() };
        }
        let all_passed =
            !specs.is_empty() && runs.len() == specs.len() && runs.iter().all(|r| r.outcome == Some(GateOutcome::Pass));
        match runs.iter().map(|r| r.checkpoint_n).max() {
            Some(checkpoint_n) if all_passed => GateMark::Green { checkpoint_n },
            _ => GateMark::None,
        }
    }

    /// Every turn gate of the agent passed on this checkpoint.
    fn all_passed_on(&self, name: &str, checkpoint: &str) -> bool {
        let specs = self.gate_specs(name, When::Turn);
        !specs.is_empty()
            && specs.iter().all(|g| {
                self.gates
                    .last
                    .get(&(name.to_string(), g.name.clone()))
                    .is_some_and(|r| r.outcome == Some(GateOutcome::Pass) && r.checkpoint == checkpoint)
            })
    }

    /// Mark the checkpoints every turn gate passed on, for the timeline.
    pub(super) fn mark_green(&self, name: &str, checkpoints: &mut [crate::protocol::git::Checkpoint]) {
        if let Some(green) = self.gates.green.get(name) {
            for cp in checkpoints {
                cp.green = green.contains(&cp.id);
            }
        }
    }

    fn set_gate_mark(&mut self, name: &str) {
        let mark = self.gate_mark(name);
        if let Some(slot) = self.slot_mut(name) {
            if slot.info.gate != mark {
                let red = matches!(mark, GateMark::Red { .. });
                slot.info.gate = mark;
                self.emit(name);
                if red {
                    self.tell_parent_of_gate(name);
                }
            }
        }
    }

    fn cancel_gate(&mut self, name: &str, gate: Option<&str>) -> usize {
        let mut n = 0;
        for a in self.gates.active.iter().filter(|a| a.agent == name && gate.is_none_or(|g| g == a.gate)) {
            a.cancel.cancel();
            n += 1;
        }
        let before = self.gates.queue.len();
        self.gates.queue.retain(|q| !(q.agent == name && gate.is_none_or(|g| g == q.gate.name)));
        n + before - self.gates.queue.len()
    }

    /// An agent left the crew: its runs end, its loops are forgotten, a merge that waited on its gates is not done.
    pub(super) fn gates_on_remove(&mut self, name: &str) {
        self.answer_takes(name, true);
        let (gone, kept): (Vec<PendingMerge>, Vec<PendingMerge>) =
            std::mem::take(&mut self.gates.merges).into_iter().partition(|p| p.agent == name);
        self.gates.merges = kept;
        for p in gone {
            if let AfterGates::Merge { reply: Some(r), .. } = p.then {
                let _ = r.send(Answer::error(ErrorKind::Refused, format!("{name} was removed: not merged")));
            }
        }
        self.cancel_gate(name, None);
        self.gates.loops.retain(|(a, _), _| a != name);
        self.gates.judged.retain(|(a, _), _| a != name);
        self.gates.last.retain(|(a, _), _| a != name);
        if let Some(store) = self.mailbox.as_mut() {
            let _ = store.forget_gate_loops(name);
        }
    }

    /// A gate request of a script or a client.
    pub(super) fn gate_request(&mut self, op: GateOp) -> Result<GateAnswer, String> {
        let known = |s: &Self, agent: &str| {
            if s.slots.iter().any(|x| x.spec.name == agent) {
                Ok(())
            } else {
                Err(format!("no agent `{agent}` in this crew"))
            }
        };
        match op {
            GateOp::Run { agent, gate } => {
                known(self, &agent)?;
                let all: Vec<GateSpec> = self.cfg.crew.gates.clone();
                let specs: Vec<GateSpec> = match &gate {
                    Some(g) => all.into_iter().filter(|s| &s.name == g).collect(),
                    None => self.gate_specs(&agent, When::Turn),
                };
                if specs.is_empty() {
                    return Err(match gate {
                        Some(g) => format!("no gate `{g}` in the crew file"),
                        None => format!("{agent} has no gates to run after its turns (see [[gate]] in crew.toml)"),
                    });
                }
                // By hand: on the worktree as it is, whatever ran before.
                let runs = self.queue_gates(&agent, specs, "", 0, true);
                Ok(GateAnswer::Queued { runs })
            }
            GateOp::Status { agent, limit } => {
                if let Some(a) = &agent {
                    known(self, a)?;
                }
                let limit = limit.unwrap_or(LIST).min(MAX_LIST);
                let runs = match self.mailbox.as_ref() {
                    Some(store) => store.gate_runs(agent.as_deref(), limit).map_err(|e| e.to_string())?,
                    None => {
                        let mut r: Vec<GateRun> = self
                            .gates
                            .last
                            .values()
                            .filter(|r| agent.as_ref().is_none_or(|a| &r.agent == a))
                            .cloned()
                            .collect();
                        r.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
                        r
                    }
                };
                Ok(GateAnswer::Runs { runs })
            }
            GateOp::Log { id } => {
                let run = self.mailbox.as_ref().and_then(|s| s.gate_run(id).ok().flatten());
                let run = run.ok_or_else(|| format!("no gate run #{id}"))?;
                let path = self.cfg.root.join(".muster/gates").join(format!("{id}.log"));
                // Its end only: a whole log (4 MiB and a tail) would not fit in one frame to a client.
                let log = match run::log_end(&path, crate::protocol::MAX_COPY as u64) {
                    Ok(text) => text,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => "(its log is gone)".into(),
                    Err(e) => format!("(its log cannot be read: {e})"),
                };
                Ok(GateAnswer::Log { run, log })
            }
            GateOp::Grant { agent, gate } => {
                known(self, &agent)?;
                let gate = match gate {
                    Some(g) => g,
                    None => self.failing_gate(&agent).ok_or_else(|| format!("{agent} has no failing gate"))?,
                };
                let spec = self.cfg.crew.gates.iter().find(|g| g.name == gate).cloned();
                let spec = spec.ok_or_else(|| format!("no gate `{gate}` in the crew file"))?;
                let key = (agent.clone(), gate.clone());
                let action = self.gates.loops.entry(key.clone()).or_default().grant(spec.attempts);
                self.save_loop(&key);
                if let Some(slot) = self.slot_mut(&agent) {
                    slot.gate_hold = None;
                }
                self.restate(&agent);
                let last = self.gates.last.get(&key).cloned().filter(|r| r.outcome == Some(GateOutcome::Fail));
                if let (Action::Steer { attempt, of }, Some(mut last)) = (action, last) {
                    last.attempt = attempt;
                    last.attempts = of;
                    self.steer_on_gate(&last);
                    return Ok(GateAnswer::Done {
                        message: format!("{agent}: attempt {attempt} of {of} of gate {gate}: its failure is sent"),
                    });
                }
                Ok(GateAnswer::Done { message: format!("{agent}: one more attempt of gate {gate}") })
            }
            GateOp::Stop { agent, resume } => {
                known(self, &agent)?;
                let gates: Vec<String> = self.cfg.crew.gates.iter().map(|g| g.name.clone()).collect();
                for gate in gates {
                    let key = (agent.clone(), gate.clone());
                    let l = self.gates.loops.entry(key.clone()).or_default();
                    l.stopped = !resume;
                    l.held = None;
                    self.save_loop(&key);
                    // A failure on its way goes no further once the loop is stopped.
                    if let (false, Some(id)) = (resume, self.undelivered_steer(&key)) {
                        self.drop_steer(&agent, id, "the operator stopped its gates' loop");
                    }
                }
                if let Some(slot) = self.slot_mut(&agent) {
                    slot.gate_hold = None;
                    slot.info.gates_stopped = !resume;
                }
                self.restate(&agent);
                self.emit(&agent);
                Ok(GateAnswer::Done {
                    message: if resume {
                        format!("{agent}: its gates' failures are sent to it again")
                    } else {
                        format!("{agent}: its gates still run, but their failures are no longer sent to it")
                    },
                })
            }
            GateOp::Cancel { agent } => {
                known(self, &agent)?;
                let n = self.cancel_gate(&agent, None);
                self.set_gate_mark(&agent);
                Ok(GateAnswer::Done { message: format!("{agent}: {} cancelled", crate::text::counted(n, "gate run")) })
            }
        }
    }

    fn failing_gate(&self, agent: &str) -> Option<String> {
        self.gates
            .last
            .iter()
            .find(|((a, _), r)| a == agent && r.outcome == Some(GateOutcome::Fail))
            .map(|((_, g), _)| g.clone())
    }

    /// A client's gate request: lists and logs answered to it alone, the rest said as a message.
    pub(super) fn gate_command(&mut self, from: Asker, op: GateOp) {
        let agent = match &op {
            GateOp::Status { agent, .. } => agent.clone(),
            _ => None,
        };
        match self.gate_request(op) {
            Ok(GateAnswer::Runs { runs }) => self.sink.reply(from, Event::GateRuns { agent, runs }),
            Ok(GateAnswer::Log { run, log }) => self.sink.reply(from, Event::GateLog { run, log }),
            Ok(GateAnswer::Done { message }) => self.message(message, false),
            Ok(GateAnswer::Queued { runs }) => {
                self.message(format!("{} queued", crate::text::counted(runs.len(), "gate run")), false)
            }
            Err(e) => self.message(e, true),
        }
    }

    /// Every gate run ends with the crew.
    pub(super) fn gates_on_shutdown(&mut self) {
        self.gates.queue.clear();
        for a in &self.gates.active {
            a.cancel.cancel();
        }
    }
}

/// What the roster shows of a slot's state: a hold shows an agent at its prompt as waiting, with its reason.
pub(super) fn shown_state(slot: &mut Slot) {
    match &slot.gate_hold {
        Some(reason) if slot.info.state == AgentState::Idle && !slot.paused() => {
            slot.info.state = AgentState::Waiting;
            slot.info.why = reason.clone();
        }
        None if slot.info.state == AgentState::Waiting && slot.detected == AgentState::Idle && !slot.paused() => {
            slot.info.state = AgentState::Idle;
            slot.info.why = slot.detected_why.clone();
        }
        _ => {}
    }
}

fn remove_logs(root: &std::path::Path, ids: &[i64]) {
    for id in ids {
        let _ = std::fs::remove_file(root.join(".muster/gates").join(format!("{id}.log")));
    }
}
