//! The watchdog's side of the engine (issue #29): an agent's worktree watched by its rules from each start, what
//! the guard worker finds kept and counted (the roster's mark), and the operator's answers to a finding: restore
//! the file (a rescue checkpoint first), allow the path for this run, dismiss it, or tell the agent.

use std::collections::BTreeSet;

use super::Supervisor;
use crate::engine::agent::now_ms;
use crate::engine::git_jobs::JobKind;
use crate::guard::Found;
use crate::guard::Rules;
use crate::protocol::guard::{steer_text, Finding, FindingKind, FindingStatus, GuardAnswer, GuardOp};
use crate::protocol::AgentState;
use crate::protocol::Event;
use std::time::{Duration, Instant};

/// Findings a status lists at most.
const MAX_LIST: usize = 500;
/// Open findings kept per agent: a tool writing a whole tree outside its files makes one each, and what goes
/// past this is said once and not kept (the operator has enough to act on; `guard check` lists every file).
const MAX_OPEN: usize = 1000;

/// What the stall timer knows of an agent.
#[derive(Default)]
pub(super) struct StallClock {
    changes: Option<u64>,
    changed_ms: u64,
    /// The activity (ms) the stall said was based on: said once until the agent does something.
    said_at: Option<u64>,
}

#[derive(Default)]
pub(super) struct Findings {
    /// The open ones, oldest first.
    pub open: Vec<Finding>,
    /// Paths the operator allowed, per agent, until it next starts.
    pub allowed: std::collections::BTreeMap<String, BTreeSet<String>>,
    /// Ids for findings while no mailbox keeps them.
    next_id: i64,
    /// Restores under way: the agent, the findings its rollback settles, what is said of them.
    pub restoring: Vec<(String, Vec<i64>, String)>,
    /// How many moves of each agent's branch its reflog had when last read.
    pub reflogs: std::collections::BTreeMap<String, usize>,
}

impl Supervisor {
    /// The open findings kept in the database, read when the mailbox opens.
    pub(super) fn load_findings(&mut self) {
        let Some(store) = self.mailbox.as_ref() else { return };
        match store.findings(None, false, MAX_LIST) {
            Ok(mut open) => {
                open.reverse();
                self.findings.open = open;
            }
            Err(e) => tracing::warn!("findings: {e}"),
        }
        let names: Vec<String> = self.slots.iter().map(|s| s.spec.name.clone()).collect();
        for name in names {
            self.set_findings_mark(&name);
        }
    }

    /// Watch the main checkout, unless an agent runs in it (its own watcher sees it then).
    pub(super) fn guard_main(&mut self) {
        if self.slots.iter().any(|s| !s.spec.worktree) {
            return;
        }
        match crate::git::watch::WorktreeWatch::new(&self.cfg.root) {
            Ok(w) => self.guard.watch_main(self.cfg.root.clone(), w),
            Err(e) => tracing::warn!("the main checkout is not watched: {e:#}"),
        }
    }

    /// Watch the agent's worktree by its rules (at each start: its rules may have changed; allowed paths end).
    pub(super) fn guard_agent(&mut self, name: &str) {
        let Some(slot) = self.slots.iter().find(|s| s.spec.name == name) else { return };
        let ignore = self.presets.get(&slot.spec.kind).map(|p| p.ignore.clone()).unwrap_or_default();
        let rules =
            Rules::new(slot.spec.owns.as_deref(), &self.cfg.crew.shared, &ignore).with_quota(slot.spec.disk_quota);
        let (root, files, tree) = (slot.info.worktree.clone(), slot.files.clone(), slot.tree.clone());
        // An agent kept to its files gets a checkpoint to restore them from before it writes any.
        let first = slot.info.checkpoints == 0 && (slot.spec.owns.is_some() || !self.cfg.crew.shared.is_empty());
        self.guard.watch(name, root, rules, files, tree);
        self.findings.allowed.remove(name);
        if first {
            self.job(name, JobKind::Create { trigger: "start".into() }, false);
        }
    }

    /// What the guard worker found in `agent`'s worktree: a path already open counts again, a new one is kept
    /// (with the checkpoint a restore goes back to) and said.
    pub(super) fn findings_seen(&mut self, agent: String, found: Vec<Found>) {
        // An empty name: the repository's own (its git folder), not laid at an agent.
        let checkpoint_n = match self.slots.iter().find(|s| s.spec.name == agent) {
            // A stopped agent's worktree changed by someone else (the operator) is not its doing.
            Some(slot) if slot.running.as_ref().is_none_or(|r| r.exited) => return,
            Some(slot) => slot.newest_checkpoint,
            None if agent.is_empty() => 0,
            None => return,
        };
        let allowed = self.findings.allowed.get(&agent).cloned().unwrap_or_default();
        let now = now_ms();
        let mut rings = false;
        let full = found.iter().any(|(k, _, _)| *k == FindingKind::QuotaFull);
        let mut new = Vec::new();
        let mut dropped = 0usize;
        let mut kept = self.findings.open.iter().filter(|f| f.agent == agent).count();
        for (kind, path, detail) in found {
            if allowed.contains(&path) {
                continue;
            }
            let same =
                self.findings.open.iter_mut().find(|f| f.agent == agent && f.kind == Some(kind) && f.path == path);
            if let Some(f) = same {
                f.count += 1;
                f.last_ms = now;
                f.detail = detail;
                let f = f.clone();
                if let Some(store) = self.mailbox.as_mut() {
                    if let Err(e) = store.finding_update(&f) {
                        tracing::warn!("saving finding {}: {e}", f.id);
                    }
                }
                continue;
            }
            if kept >= MAX_OPEN {
                dropped += 1;
                continue;
            }
            kept += 1;
            let mut f = Finding {
                id: 0,
                agent: agent.clone(),
                kind: Some(kind),
                path,
                detail,
                first_ms: now,
                last_ms: now,
                count: 1,
                checkpoint_n,
                status: FindingStatus::Open,
                note: String::new(),
            };
            f.id = match self.mailbox.as_mut().map(|s| s.finding_new(&f)) {
                Some(Ok(id)) => id,
                other => {
                    if let Some(Err(e)) = other {
                        tracing::warn!("keeping a finding of {agent}: {e}");
                    }
                    self.findings.next_id -= 1;
                    self.findings.next_id
                }
            };
            // What no agent's process explains may well be the operator's own edit: kept, not rung.
            rings |= kind.rings() && !(agent.is_empty() && kind == FindingKind::MainCheckout);
            tracing::info!("{agent}: {}", f.line());
            let who = (!agent.is_empty()).then_some(agent.as_str());
            self.record(crate::protocol::lead::EventKind::Finding, who, &format!("{agent}: {}", f.line()));
            new.push(f.line());
            self.findings.open.push(f);
        }
        if dropped > 0 {
            crate::warn_limited!("findings kept", "{agent}: {MAX_OPEN} open findings: {dropped} more not kept");
        }
        if let (false, Some(store)) = (new.is_empty(), self.mailbox.as_mut()) {
            if let Err(e) = store.findings_prune(&agent) {
                tracing::warn!("pruning the findings of {agent}: {e}");
            }
        }
        if full {
            // At its quota it is paused (the freezer), as the operator's `p` would: `p` resumes it.
            self.pause(&agent, true);
            self.message(format!("{agent}: paused: its worktree is at its disk quota (p resumes it)"), true);
        }
        if new.is_empty() {
            return;
        }
        self.set_findings_mark(&agent);
        // A burst (a tool writing a whole tree outside its files) is said in one short line.
        let text = match new.len() {
            1 => new.remove(0),
            n if n <= 3 => format!("{n} findings: {}", new.join("; ")),
            n => format!("{n} findings: {}; and {} more", new[..3].join("; "), n - 3),
        };
        let name = if agent.is_empty() { "repository".to_string() } else { agent.clone() };
        match rings {
            true => self.sink.event(Event::Alarm { name, text }),
            false => self.sink.event(Event::Notification { name, text }),
        }
        if rings {
            self.sink.event(Event::Bell { name: agent });
        }
    }

    /// When a busy agent with a `stall` would be stalled if nothing happens.
    pub(super) fn next_stall(&self) -> Option<Instant> {
        let now = now_ms();
        self.slots
            .iter()
            .filter(|s| s.info.state == AgentState::Busy && s.stall.said_at.is_none())
            .filter_map(|s| {
                let at = Self::activity_ms(s).saturating_add(s.spec.stall? * 1000);
                Some(Instant::now() + Duration::from_millis(at.saturating_sub(now)))
            })
            .min()
    }

    fn activity_ms(slot: &super::Slot) -> u64 {
        slot.info.last_output_ms.unwrap_or(0).max(slot.stall.changed_ms)
    }

    /// The stall timer: a busy agent with no output and no file change for its `stall` seconds is a finding
    /// (once, until it does something).
    pub(super) fn stall_check(&mut self) {
        let now = now_ms();
        let mut stalled = Vec::new();
        for slot in self.slots.iter_mut().filter(|s| s.spec.stall.is_some()) {
            let count = slot.files.as_ref().and_then(|w| w.change_count());
            if count != slot.stall.changes {
                slot.stall.changes = count;
                slot.stall.changed_ms = now;
            }
            if slot.info.state != AgentState::Busy {
                // Its next busy spell is timed from its start.
                slot.stall.changed_ms = now;
                slot.stall.said_at = None;
                continue;
            }
            let activity = Self::activity_ms(slot);
            if slot.stall.said_at.is_some_and(|at| activity > at) {
                slot.stall.said_at = None;
            }
            let limit = slot.spec.stall.unwrap_or(u64::MAX).saturating_mul(1000);
            if slot.stall.said_at.is_none() && now.saturating_sub(activity) >= limit {
                slot.stall.said_at = Some(activity);
                let secs = now.saturating_sub(activity) / 1000;
                stalled.push((slot.spec.name.clone(), format!("busy {secs} s with no output and no file change")));
            }
        }
        for (agent, detail) in stalled {
            self.findings_seen(agent, vec![(FindingKind::Stalled, String::new(), detail)]);
        }
    }

    /// The git folder changed: a new hook, a config key that runs commands, a switched HEAD are findings of the
    /// repository (nobody's process can be named for them).
    pub(super) fn git_folder_changed(&mut self) {
        let Some((common, before)) = self.git_folder.take() else { return };
        let now = crate::guard::git_folder::read(&common);
        let found: Vec<Found> = crate::guard::git_folder::changes(&before, &now)
            .into_iter()
            .map(|(path, detail)| (crate::protocol::guard::FindingKind::GitTamper, path, detail))
            .collect();
        self.git_folder = Some((common, now));
        if !found.is_empty() {
            self.findings_seen(String::new(), found);
        }
    }

    /// The branches moved: an agent's branch taken back (its history no longer on it) by anything but muster is
    /// the repository's finding — a `reset --hard` or a forced update, by the agent or another.
    pub(super) fn branches_moved(&mut self) {
        let Ok(repo) = git2::Repository::open(&self.cfg.root) else { return };
        let names: Vec<String> = self.slots.iter().map(|s| s.spec.name.clone()).collect();
        let now = crate::guard::git_folder::reflog_lengths(&repo, &names);
        let before = std::mem::replace(&mut self.findings.reflogs, now);
        // muster's own rollbacks and merges move branches too.
        let before: std::collections::BTreeMap<_, _> =
            before.into_iter().filter(|(n, _)| !self.guard.is_muted(n)).collect();
        let found: Vec<Found> = crate::guard::git_folder::rewound(&repo, &before)
            .into_iter()
            .map(|(path, detail)| (FindingKind::GitTamper, path, detail))
            .collect();
        if !found.is_empty() {
            self.findings_seen(String::new(), found);
        }
    }

    /// The roster's count of the agent's open findings.
    pub(super) fn set_findings_mark(&mut self, agent: &str) {
        let n = self.findings.open.iter().filter(|f| f.agent == agent).count() as u32;
        let Some(slot) = self.slot_mut(agent) else { return };
        if slot.info.findings != n {
            slot.info.findings = n;
            self.emit(agent);
        }
    }

    /// A guard request of a script or a client.
    pub(super) fn guard_request(&mut self, op: GuardOp) -> Result<GuardAnswer, String> {
        let open = |s: &Self, id: i64| {
            s.findings.open.iter().position(|f| f.id == id).ok_or_else(|| format!("no open finding #{id}"))
        };
        match op {
            GuardOp::Status { agent, all } => {
                if let Some(a) = &agent {
                    if !self.slots.iter().any(|s| &s.spec.name == a) {
                        return Err(format!("no agent `{a}` in this crew"));
                    }
                }
                let findings = match (self.mailbox.as_ref(), all) {
                    (Some(store), true) => {
                        store.findings(agent.as_deref(), true, MAX_LIST).map_err(|e| e.to_string())?
                    }
                    _ => {
                        // The repository's own findings go with every agent's.
                        let of = |f: &&Finding| agent.as_ref().is_none_or(|a| &f.agent == a || f.agent.is_empty());
                        self.findings.open.iter().rev().filter(of).take(MAX_LIST).cloned().collect()
                    }
                };
                Ok(GuardAnswer::Findings { findings })
            }
            GuardOp::Restore { id } => {
                let i = open(self, id)?;
                let f = self.findings.open[i].clone();
                if f.checkpoint_n == 0 {
                    return Err(format!(
                        "{}: no checkpoint before `{}` changed: nothing to restore it from",
                        f.agent, f.path
                    ));
                }
                if !self.slots.iter().any(|s| s.spec.name == f.agent) {
                    return Err(format!("no agent `{}` in this crew", f.agent));
                }
                // As a rollback of that one file, which takes a rescue checkpoint first. Every open finding on
                // that file is settled by it — once it is done: a failed one leaves them open.
                self.job(&f.agent, JobKind::Rollback { n: f.checkpoint_n, files: Some(vec![f.path.clone()]) }, true);
                let note = format!("restored from checkpoint {}", f.checkpoint_n);
                let ids = self.same_path(&f).into_iter().map(|j| self.findings.open[j].id).collect();
                self.findings.restoring.push((f.agent.clone(), ids, note));
                Ok(GuardAnswer::Done {
                    message: format!("{}: restoring {} from checkpoint {}", f.agent, f.path, f.checkpoint_n),
                })
            }
            GuardOp::Allow { id } => {
                let i = open(self, id)?;
                let f = self.findings.open[i].clone();
                self.findings.allowed.entry(f.agent.clone()).or_default().insert(f.path.clone());
                // Every open finding on that path goes with it.
                for j in self.same_path(&f) {
                    self.resolve(j, FindingStatus::Allowed, "allowed for this run".into());
                }
                Ok(GuardAnswer::Done { message: format!("{}: {} allowed until it restarts", f.agent, f.path) })
            }
            GuardOp::Dismiss { id } => {
                let i = open(self, id)?;
                let f = self.findings.open[i].clone();
                self.resolve(i, FindingStatus::Dismissed, "dismissed".into());
                Ok(GuardAnswer::Done { message: format!("{}: finding on {} dismissed", f.agent, f.path) })
            }
            GuardOp::Steer { id } => {
                let i = open(self, id)?;
                let f = self.findings.open[i].clone();
                let owns = self.slots.iter().find(|s| s.spec.name == f.agent).and_then(|s| s.spec.owns.clone());
                match self.send_mail_as(crate::mailbox::GUARD, &f.agent, steer_text(&f, &owns.unwrap_or_default())) {
                    Err(error) => Err(format!("{}: not sent: {error}", f.agent)),
                    Ok(_) => Ok(GuardAnswer::Done { message: format!("{}: told about {}", f.agent, f.path) }),
                }
            }
        }
    }

    /// The open findings on `f`'s agent and path, last first (for removing them in turn).
    fn same_path(&self, f: &Finding) -> Vec<usize> {
        let open = &self.findings.open;
        (0..open.len()).filter(|&j| open[j].agent == f.agent && open[j].path == f.path).rev().collect()
    }

    /// A job of `agent`'s ended: a restore that went through settles its findings; one that failed (said as an
    /// error) leaves them open.
    pub(super) fn restores_done(&mut self, agent: &str, rolled_back: bool, failed: bool) {
        if !rolled_back && !failed {
            return;
        }
        let Some(k) = self.findings.restoring.iter().position(|(a, _, _)| a == agent) else { return };
        let (_, ids, note) = self.findings.restoring.remove(k);
        if failed {
            return;
        }
        for id in ids {
            if let Some(i) = self.findings.open.iter().position(|f| f.id == id) {
                self.resolve(i, FindingStatus::Restored, note.clone());
            }
        }
    }

    /// The open finding at `i` is settled: kept with what was done, and the roster's count goes down.
    fn resolve(&mut self, i: usize, status: FindingStatus, note: String) {
        let mut f = self.findings.open.remove(i);
        f.status = status;
        f.note = note;
        if let Some(store) = self.mailbox.as_mut() {
            if let Err(e) = store.finding_update(&f) {
                tracing::warn!("saving finding {}: {e}", f.id);
            }
        }
        self.set_findings_mark(&f.agent);
    }

    /// A client's guard request: a list is answered to it alone, the rest said as a message.
    pub(super) fn guard_command(&mut self, from: crate::engine::Asker, op: GuardOp) {
        let agent = match &op {
            GuardOp::Status { agent, .. } => agent.clone(),
            _ => None,
        };
        match self.guard_request(op) {
            Ok(GuardAnswer::Findings { findings }) => self.sink.reply(from, Event::Findings { agent, findings }),
            Ok(GuardAnswer::Done { message }) => self.message(message, false),
            Err(e) => self.message(e, true),
        }
    }

    /// A removed agent's open findings close with it.
    pub(super) fn findings_on_remove(&mut self, agent: &str) {
        self.guard.forget(agent);
        let mine: Vec<usize> =
            (0..self.findings.open.len()).filter(|&i| self.findings.open[i].agent == agent).rev().collect();
        for i in mine {
            self.resolve(i, FindingStatus::Dismissed, "the agent was removed".into());
        }
    }
}
