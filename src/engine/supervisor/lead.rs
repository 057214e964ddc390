//! Agents that drive muster (issue #31): `spawn` a child with everything an operator's agent has, `read` an
//! agent's output, set and get `result`s, follow the crew's `events`; who may do what to whom
//! (`config::lead`); and each child's result or failing gate mailed to its parent through the arbiter.

use std::time::{Duration, Instant};

use super::*;
use crate::config::lead::{self as rules, Verb};
use crate::protocol::gate::GateMark;
use crate::protocol::lead::{EventKind, ReadWhat, ResultOp, Spawn};
use crate::protocol::script::{Caller, WaitFor};

/// A `spawn` answered once its agent is at its prompt with its kickoff delivered (and then as `wait` asks).
pub(super) struct PendingSpawn {
    name: String,
    wait: Option<WaitFor>,
    /// Given up on after this; None: waited for as long as it takes (its client may close).
    until: Option<Instant>,
    kickoff: bool,
    delivered: bool,
    reply: Sender<Answer>,
}

/// The agent a command acts on, and what it is as far as the permissions go; None: the operator's only.
fn command_target(cmd: &Command) -> Option<(Verb, &str)> {
    match cmd {
        Command::Start { name, .. }
        | Command::Stop { name }
        | Command::Restart { name }
        | Command::Pause { name }
        | Command::Resume { name } => Some((Verb::Stop, name)),
        Command::Remove { name, .. } | Command::CheckRemove { name } => Some((Verb::Remove, name)),
        Command::Steer { name, .. } | Command::Key { name, .. } | Command::Paste { name, .. } => {
            Some((Verb::Send, name))
        }
        _ => None,
    }
}

impl Supervisor {
    /// Who asks: an agent whose secret matches (None: the operator); a forged identity is refused.
    pub(super) fn caller(&self, from: Option<Caller>) -> Result<Option<String>, ScriptError> {
        let Some(c) = from else { return Ok(None) };
        let ok = self.slots.iter().any(|s| s.spec.name == c.agent && !s.token.is_empty() && s.token == c.token);
        if !ok {
            let shown = crate::protocol::lead::cut(&c.agent, 64);
            return Err(ScriptError {
                kind: ErrorKind::Refused,
                message: format!("cannot act as {shown}: MUSTER_AGENT_TOKEN is not {shown}'s"),
            });
        }
        Ok(Some(c.agent))
    }

    fn parent_of(&self, name: &str) -> Option<String> {
        self.slots.iter().find(|s| s.spec.name == name).and_then(|s| s.spec.parent.clone())
    }

    /// Whether `from` may do `verb` to `target` (the operator may do anything).
    pub(super) fn may(&self, from: Option<Caller>, verb: Verb, target: &str) -> Result<(), ScriptError> {
        let who = self.caller(from)?;
        rules::may(&self.cfg.crew.lead, who.as_deref(), verb, target, |n| self.parent_of(n))
            .map_err(|message| ScriptError { kind: ErrorKind::Refused, message })
    }

    /// Whether `from` may run `cmd`: an agent only what acts on its descendants.
    pub(super) fn may_run(&self, from: Option<Caller>, cmd: &Command) -> Result<(), ScriptError> {
        if from.is_none() {
            return Ok(());
        }
        match command_target(cmd) {
            Some((verb, target)) => self.may(from, verb, target),
            None => {
                self.caller(from)?;
                Err(ScriptError { kind: ErrorKind::Refused, message: "only the operator may do that".into() })
            }
        }
    }

    /// `spawn`: checked against the asking agent's limits, added to the crew file with its parent, started;
    /// answered when it settles (`settle_spawns`).
    pub(super) fn spawn_agent(&mut self, from: Option<Caller>, sp: Spawn, reply: Sender<Answer>) {
        let refuse = |reply: Sender<Answer>, kind, message: String| {
            let _ = reply.send(Answer::error(kind, message));
        };
        let who = match self.caller(from) {
            Ok(w) => w,
            Err(e) => return refuse(reply, e.kind, e.message),
        };
        if let Some(w) = &who {
            // How deep it is (the operator's agents are at 0), and how many children it has.
            let depth = rules::ancestors(w, |n| {
                self.slots.iter().find(|s| s.spec.name == n).and_then(|s| s.spec.parent.as_deref())
            })
            .len() as u32;
            let children = self.slots.iter().filter(|s| s.spec.parent.as_deref() == Some(w.as_str())).count() as u32;
            if let Err(e) = rules::may_spawn(&self.cfg.crew.lead, w, depth, children) {
                return refuse(reply, ErrorKind::Refused, e);
            }
        }
        // Checked here too, so that a name from the socket is said back cut (the crew file would echo it whole).
        if let Err(e) = crate::config::crew::validate_name(&sp.name) {
            let shown = crate::protocol::lead::cut(&sp.name, 64);
            return refuse(reply, ErrorKind::Malformed, format!("`{shown}`: {}", e.replace(&sp.name, "…")));
        }
        if sp.kind.is_some() == sp.role.is_some() {
            return refuse(
                reply,
                ErrorKind::Malformed,
                "a spawn names a kind (--kind) or a role (--role), one of them".into(),
            );
        }
        let base = match (&sp.from, &sp.base) {
            (Some(_), Some(_)) => {
                return refuse(
                    reply,
                    ErrorKind::Malformed,
                    "a spawn starts from a branch (--base) or an agent (--from), one".into(),
                )
            }
            (Some(a), None) => match self.slots.iter().find(|s| &s.spec.name == a && s.spec.worktree) {
                Some(s) => Some(s.info.branch.clone()),
                None => {
                    let shown = crate::protocol::lead::cut(a, 64);
                    return refuse(
                        reply,
                        ErrorKind::Unknown,
                        format!("no agent `{shown}` with a branch to start from"),
                    );
                }
            },
            (None, b) => b.clone(),
        };
        let new = crate::protocol::NewAgent {
            name: sp.name.clone(),
            kind: sp.kind.clone(),
            role: sp.role.clone(),
            prompt: sp.prompt.clone(),
            base,
            parent: who.clone(),
            owns: sp.owns.clone(),
            ..Default::default()
        };
        if let Err(e) = self.add_agent(new, true) {
            return refuse(reply, ErrorKind::Refused, e);
        }
        let by = who.clone().unwrap_or_else(|| crate::protocol::mail::OPERATOR.to_string());
        self.record(EventKind::Spawn, Some(&sp.name), &format!("{} spawned by {by}", sp.name));
        let boot = self
            .slots
            .iter()
            .find(|s| s.spec.name == sp.name)
            .and_then(|s| self.presets.get(&s.spec.kind))
            .map_or(crate::config::preset::BOOT_TIMEOUT, |p| p.boot_timeout);
        let until = match (sp.timeout, sp.wait) {
            (Some(t), _) => Some(Instant::now() + Duration::from_secs_f64(t.clamp(0.0, 1e7))),
            (None, None) => Some(Instant::now() + boot + Duration::from_secs(60)),
            (None, Some(_)) => None,
        };
        self.spawns.push(PendingSpawn {
            name: sp.name,
            wait: sp.wait,
            until,
            kickoff: sp.prompt.is_some(),
            delivered: false,
            reply,
        });
        self.settle_spawns();
    }

    /// Answer the spawns that settled: at the prompt with the kickoff taken (a turn began on it), and as their
    /// `wait` asks; or ended, removed, past their time.
    pub(super) fn settle_spawns(&mut self) {
        let now = Instant::now();
        let mut spawns = std::mem::take(&mut self.spawns);
        spawns.retain_mut(|p| {
            let Some(slot) = self.slots.iter().find(|s| s.spec.name == p.name) else {
                let _ = p.reply.send(Answer::error(ErrorKind::Unknown, format!("{} was removed", p.name)));
                return false;
            };
            let i = &slot.info;
            if matches!(i.state, AgentState::Exited | AgentState::Error) {
                let why = i.error.clone().unwrap_or_else(|| i.why.clone());
                let _ = p.reply.send(Answer::error(ErrorKind::NotRunning, format!("{}: its run ended: {why}", p.name)));
                return false;
            }
            if !p.delivered {
                p.delivered = match p.kickoff {
                    // A turn began after it started: the kickoff went in and the CLI works on it.
                    true => slot.turns > 0 && !slot.prompt_pending,
                    false => matches!(i.state, AgentState::Idle),
                };
            }
            let settled = p.delivered && p.wait.is_none_or(|w| w.matches_info(i) && i.state != AgentState::Busy);
            if settled {
                let _ = p.reply.send(Answer::Spawned {
                    name: p.name.clone(),
                    branch: i.branch.clone(),
                    worktree: i.worktree.display().to_string(),
                });
                return false;
            }
            if p.until.is_some_and(|t| now >= t) {
                let what =
                    if p.delivered { "reach the state asked" } else { "reach its prompt with its kickoff delivered" };
                let _ = p.reply.send(Answer::error(
                    ErrorKind::Failed,
                    format!(
                        "{} did not {what} in time (it is {}: {}); it keeps running",
                        p.name,
                        i.state_label(),
                        i.why
                    ),
                ));
                return false;
            }
            true
        });
        self.spawns = spawns;
    }

    pub(super) fn next_spawn_deadline(&self) -> Option<Instant> {
        self.spawns.iter().filter_map(|p| p.until).min()
    }

    /// `read`: the agent's terminal answers (its thread has the screen and history).
    pub(super) fn read_agent(&mut self, name: &str, what: ReadWhat, ansi: bool, reply: Sender<Answer>) {
        let Some(slot) = self.slots.iter().find(|s| s.spec.name == name) else {
            let shown = crate::protocol::lead::cut(name, 64);
            let _ = reply.send(Answer::error(ErrorKind::Unknown, format!("no agent `{shown}` in this crew")));
            return;
        };
        match slot.running.as_ref().filter(|r| !r.exited) {
            Some(r) => {
                if let Err(e) = r.term.send(TermMsg::Read { what, ansi, reply: reply.clone() }) {
                    let _ = reply.send(Answer::error(ErrorKind::NotRunning, format!("{name}: {e}")));
                }
            }
            None => {
                let _ = reply.send(Answer::error(ErrorKind::NotRunning, format!("{name} is not running")));
            }
        }
    }

    /// `result`: an agent sets its own (a checkpoint of its work is taken first and named; then it is done and
    /// its parent is mailed: `result_kept`), or anyone gets an agent's.
    pub(super) fn result_request(&mut self, from: Option<Caller>, op: ResultOp, reply: Sender<Answer>) {
        let answer = match op {
            ResultOp::Get { agent } => {
                let results = crate::engine::results::all(&self.cfg.root, &agent);
                if results.is_empty() && !self.slots.iter().any(|s| s.spec.name == agent) {
                    let shown = crate::protocol::lead::cut(&agent, 64);
                    Answer::error(ErrorKind::Unknown, format!("no agent `{shown}` in this crew"))
                } else {
                    Answer::Results { results }
                }
            }
            ResultOp::Set { result } => match self.caller(from) {
                Ok(Some(who)) => {
                    let job = JobKind::Result { root: self.cfg.root.clone(), result };
                    self.job_with(&who, job, false, Some(reply), false);
                    return;
                }
                Ok(None) => Answer::error(
                    ErrorKind::Refused,
                    "a result is an agent's own: `muster result set` runs inside the agent",
                ),
                Err(e) => Answer::Error(e),
            },
        };
        let _ = reply.send(answer);
    }

    /// A result the job worker kept (or could not): the agent is done, the log and its parent hear of it, and
    /// its `result set` is answered.
    pub(super) fn result_kept(
        &mut self,
        who: &str,
        kept: Result<crate::protocol::lead::StoredResult, String>,
        reply: Option<Sender<Answer>>,
    ) {
        let stored = match kept {
            Ok(s) => s,
            Err(e) => {
                if let Some(r) = reply {
                    let _ = r.send(Answer::error(ErrorKind::Refused, format!("{who}'s result not kept: {e}")));
                }
                return;
            }
        };
        let mark = stored.mark(true);
        let Some(slot) = self.slot_mut(who) else { return };
        slot.info.result = Some(mark.clone());
        let parent = slot.spec.parent.clone();
        self.emit(who);
        let said = format!(
            "result {} ({}) on checkpoint {}: {}",
            mark.attempt,
            mark.status.word(),
            stored.checkpoint,
            mark.summary
        );
        self.record(EventKind::Result, Some(who), &format!("{who}: {said}"));
        if let Some(parent) = parent {
            let body = format!("[muster] your child {who} set its {said}\nRead it: muster result get {who}");
            self.mail_parent(who, &parent, body);
        }
        if let Some(r) = reply {
            let _ = r.send(Answer::Results { results: vec![stored] });
        }
    }

    /// Mail from a child to its parent, through the arbiter (at its prompt; never into a dialog or a turn).
    fn mail_parent(&mut self, child: &str, parent: &str, body: String) {
        if let Err(error) = self.send_mail_as(child, parent, body) {
            self.message(format!("{child}: its parent {parent} was not told: {error}"), true);
        }
    }

    /// A gate failed on a child's work: its parent hears of it.
    pub(super) fn tell_parent_of_gate(&mut self, name: &str) {
        let Some(slot) = self.slots.iter().find(|s| s.spec.name == name) else { return };
        let (Some(parent), GateMark::Red { .. }) = (slot.spec.parent.clone(), &slot.info.gate) else { return };
        let body = format!(
            "[muster] a gate failed on your child {name}'s work: {}\n(muster gate status {name})",
            slot.info.gate.cell()
        );
        self.mail_parent(name, &parent, body);
    }

    /// One event in the crew's log (and to its followers).
    pub(super) fn record(&self, kind: EventKind, agent: Option<&str>, text: &str) {
        self.events.borrow_mut().record(kind, agent, text);
    }

    /// The state and gate events an agent's new info makes (only what changed since the last one logged).
    pub(super) fn record_info(&self, info: &AgentInfo) {
        let mut log = self.events.borrow_mut();
        let (name, state) = (&info.name, info.state_label());
        let said = || format!("{name}: {state} — {}", info.why);
        log.record_change(format!("state {name}"), state, false, EventKind::State, Some(name), said);
        let gate = info.gate.cell();
        if !gate.is_empty() {
            let said = || format!("{name}: {gate}");
            log.record_change(format!("gate {name}"), &gate, false, EventKind::Gate, Some(name), said);
        }
    }
}
