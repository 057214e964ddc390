//! Requests from scripts (the script socket): steers that may wait for the turn they start, changes run for
//! the command line, waits, status and explanations, each answered with its typed `Answer`.

use super::*;

/// A script waiting for agents to reach a state, tied to the runs they had when it asked.
pub(super) struct PendingWait {
    pub(super) agents: Vec<(String, Option<u64>)>,
    pub(super) until: WaitFor,
    /// Settled by the first agent in the state asked.
    pub(super) any: bool,
    /// Given up on after this (the script stopped waiting).
    pub(super) until_time: Option<Instant>,
    pub(super) reply: Sender<Answer>,
}

/// A script's message that waits for the agent to take it and come back to its prompt.
pub(super) struct PendingSend {
    pub(super) name: String,
    /// The run it was sent to: another run is not the one that got it.
    pub(super) generation: u64,
    /// The agent went busy (or anything but idle) after the message.
    pub(super) left_idle: bool,
    pub(super) reply: Sender<Answer>,
}

/// A change to the crew the engine made or refused at once, told to the script that asked.
fn done_or_refused(reply: Option<Sender<Answer>>, outcome: Result<String, String>) -> bool {
    let answer = match outcome {
        Ok(text) => Answer::Done { message: Some(text) },
        Err(e) => Answer::error(ErrorKind::Refused, e),
    };
    if let Some(r) = reply {
        let _ = r.send(answer);
    }
    true
}

impl Supervisor {
    /// A script's request from the script socket.
    pub(super) fn script(&mut self, msg: ScriptMsg) {
        match msg {
            ScriptMsg::Explain { name, reply } => {
                let _ = reply.send(Answer::Explained { text: self.explain(&name) });
            }
            ScriptMsg::Run { cmd, trigger, from, reply } => match self.may_run(from, &cmd) {
                Ok(()) => self.run_for_script(cmd, trigger, reply),
                Err(e) => {
                    let _ = reply.send(Answer::Error(e));
                }
            },
            ScriptMsg::Spawn { from, spawn, reply } => self.spawn_agent(from, spawn, reply),
            ScriptMsg::Read { name, what, ansi, reply } => self.read_agent(&name, what, ansi, reply),
            ScriptMsg::Result { from, op, reply } => self.result_request(from, op, reply),
            ScriptMsg::Events { since, follow, agents, kinds, tx, alive } => {
                let f = crate::engine::events::Follower { agents, kinds, tx, alive };
                self.events.borrow_mut().serve(since, follow, f);
            }
            ScriptMsg::Status { reply } => {
                let crew = serde_json::to_value(self.saved_crew()).unwrap_or_default();
                let _ = reply.send(Answer::Status { crew });
            }
            ScriptMsg::Wait { agents, until, timeout, any, reply } => {
                let mut runs = Vec::new();
                for name in agents {
                    let Some(slot) = self.slots.iter().find(|s| s.spec.name == name) else {
                        let _ =
                            reply.send(Answer::error(ErrorKind::Unknown, format!("no agent `{name}` in this crew")));
                        runs.clear();
                        break;
                    };
                    let run = slot.running.as_ref().filter(|r| !r.exited).map(|r| r.generation);
                    runs.push((name, run));
                }
                if !runs.is_empty() {
                    let until_time = timeout.map(|t| Instant::now() + t);
                    self.waits.push(PendingWait { agents: runs, until, any, until_time, reply });
                }
            }
            ScriptMsg::Send { name, text, force, wait, from, reply } => match self
                .may(from, crate::config::lead::Verb::Send, &name)
                .and_then(|()| self.steer(&name, text, force, Asker::NOBODY))
            {
                Ok(()) => {
                    let _ = reply.send(Answer::Sent {});
                    let generation = self.slot_mut(&name).and_then(|s| s.running.as_ref()).map(|r| r.generation);
                    if let (true, Some(generation)) = (wait, generation) {
                        self.sends.push(PendingSend { name, generation, left_idle: false, reply });
                    }
                }
                Err(e) => {
                    let _ = reply.send(Answer::Error(e));
                }
            },
            ScriptMsg::Mail { who, op, reply } => self.mail_request(who, op, reply),
            ScriptMsg::Gate { op, reply } => {
                let answer = match self.gate_request(op) {
                    Ok(a) => Answer::Gate(a),
                    Err(e) => Answer::error(ErrorKind::Refused, e),
                };
                let _ = reply.send(answer);
            }
            ScriptMsg::Review { who, target, verdict, reply } => {
                let answer = match self.review_verdict(who, &target, verdict) {
                    Ok(message) => Answer::Done { message: Some(message) },
                    Err(e) => Answer::error(ErrorKind::Refused, e),
                };
                let _ = reply.send(answer);
            }
            ScriptMsg::Guard { op, reply } => {
                let answer = match self.guard_request(op) {
                    Ok(a) => Answer::Guard(a),
                    Err(e) => Answer::error(ErrorKind::Refused, e),
                };
                let _ = reply.send(answer);
            }
        }
    }

    /// Steer messages go through the agent's input queue, so two in a row arrive whole and in order.
    /// Type a message into the agent (through its input queue, so two in a row arrive whole and in order).
    /// A client's steer brings its own view of the agent to the bottom; a script's (`Asker::NOBODY`) moves nobody's.
    pub(super) fn steer(&mut self, name: &str, text: String, force: bool, from: Asker) -> Result<(), ScriptError> {
        let err = |kind, message: String| ScriptError { kind, message };
        crate::protocol::mail::check_body(&text).map_err(|e| err(ErrorKind::Refused, e))?;
        let slot = self.slot_mut(name).ok_or_else(|| err(ErrorKind::Unknown, format!("no agent named {name}")))?;
        let enter_delay = Duration::from_millis(slot.spec.enter_delay_ms);
        let waiting = slot.info.state == AgentState::Waiting;
        let r = slot
            .running
            .as_ref()
            .filter(|r| !r.exited)
            .ok_or_else(|| err(ErrorKind::NotRunning, format!("{name} is not running: message not sent")))?;
        if waiting && !force {
            // Typed into a permission or trust dialog, a message answers it.
            let why = format!("{name} is showing a dialog: message not sent (confirm to send anyway)");
            return Err(err(ErrorKind::Refused, why));
        }
        if from != Asker::NOBODY {
            let _ = r.term.send(TermMsg::ScrollBottom { viewer: from.client, typed: true });
        }
        r.writer
            .send(WriteOp::Steer { text, enter_delay, confirm: false })
            .map_err(|e| err(ErrorKind::NotRunning, format!("{name}: message not sent: {e}")))?;
        let _ = r.term.send(TermMsg::Task(Instant::now()));
        if let Some(slot) = self.slot_mut(name) {
            slot.task_given();
        }
        Ok(())
    }

    /// Answer the `send --wait` requests this state change settles.
    pub(super) fn settle_sends(&mut self, name: &str, generation: u64, state: Option<AgentState>) {
        self.sends.retain_mut(|p| {
            if p.name != name {
                return true;
            }
            let answer = match state {
                _ if p.generation != generation => Some(TurnEnd::Exited),
                None => Some(TurnEnd::Exited),
                Some(AgentState::Waiting) => Some(TurnEnd::Waiting),
                Some(AgentState::Idle) if p.left_idle => Some(TurnEnd::Idle),
                Some(AgentState::Idle) => None,
                Some(s) if !s.is_running() => Some(TurnEnd::Exited),
                Some(_) => {
                    p.left_idle = true;
                    None
                }
            };
            match answer {
                Some(end) => {
                    let _ = p.reply.send(Answer::Turn { end });
                    false
                }
                None => true,
            }
        });
    }

    pub(super) fn run_for_script(&mut self, cmd: Command, trigger: String, reply: Sender<Answer>) {
        let reply = Some(reply);
        match cmd {
            Command::Checkpoint { name } => self.job_with(&name, JobKind::Create { trigger }, false, reply, false),
            Command::DuplicateAgent { name, new_name, start } => {
                done_or_refused(reply, self.duplicate_agent(&name, &new_name, start))
            }
            Command::AddAgent { agent: new, start } => done_or_refused(reply, self.add_agent(new, start)),
            Command::Remove { name, force } => done_or_refused(reply, self.remove(&name, force)),
            Command::Rollback { name, n, files } => {
                self.job_with(&name, JobKind::Rollback { n, files }, true, reply, false)
            }
            Command::UndoRollback { name } => self.job_with(&name, JobKind::Undo, true, reply, false),
            Command::Merge { name, into_agent, message, skip_gates } => {
                let then = gates::AfterGates::Merge { into_agent, message, reply };
                if skip_gates || into_agent || !self.gates_before_merge(&name, then.clone()) {
                    self.merge_now(&name, then);
                }
                true
            }
            Command::StageResolved { name, path, content } => {
                self.conflict_with(&name, ConflictOp::Stage { path, content }, reply)
            }
            Command::TakeSide { name, path, side } => self.conflict_with(&name, ConflictOp::Take { path, side }, reply),
            Command::FinishMerge { name, message } => self.conflict_with(&name, ConflictOp::Finish { message }, reply),
            Command::AbortMerge { name } => self.conflict_with(&name, ConflictOp::Abort, reply),
            other => {
                self.command(Asker::NOBODY, other);
                if let Some(r) = reply {
                    let _ = r.send(Answer::Done { message: None });
                }
                true
            }
        };
    }

    /// Answer the `muster wait`s that are settled now (matched, or their agent's run ended), or past their time.
    pub(super) fn settle_waits(&mut self) {
        let now = Instant::now();
        let mut waits = std::mem::take(&mut self.waits);
        waits.retain(|w| match self.wait_answer(w) {
            Some(answer) => {
                let _ = w.reply.send(Answer::Waited { outcome: answer });
                false
            }
            None => w.until_time.is_none_or(|t| t > now),
        });
        self.waits = waits;
    }

    pub(super) fn wait_answer(&self, w: &PendingWait) -> Option<WaitOutcome> {
        let mut all = true;
        for (name, run) in &w.agents {
            let Some(slot) = self.slots.iter().find(|s| &s.spec.name == name) else {
                return Some(WaitOutcome::Gone { agent: name.clone() });
            };
            let current = slot.running.as_ref().filter(|r| !r.exited).map(|r| r.generation);
            let ended = run.is_none() || current != *run;
            if ended && !matches!(w.until, WaitFor::Exited | WaitFor::Any) {
                return Some(WaitOutcome::Ended { agent: name.clone() });
            }
            let matched = ended || w.until.matches_info(&slot.info);
            if w.any && matched {
                return Some(WaitOutcome::First { agent: name.clone() });
            }
            all &= matched;
        }
        all.then_some(WaitOutcome::Matched)
    }

    pub(super) fn explain(&self, name: &str) -> String {
        let Some(slot) = self.slots.iter().find(|s| s.spec.name == name) else {
            return format!("no agent named {name}");
        };
        let i = &slot.info;
        let why = match (&i.error, i.why.is_empty()) {
            (Some(e), _) if i.state == AgentState::Error => e.as_str(),
            (_, true) => "no decision yet",
            _ => &i.why,
        };
        let mut out = format!("{name}: {} — {why}\n", i.state_label());
        if let Some(r) = i.result.as_ref() {
            let when = if i.is_done() { "done: it set" } else { "its last" };
            out.push_str(&format!("{when} result {} ({}): {}\n", r.attempt, r.status.word(), r.summary));
        }
        if let Some(p) = &i.parent {
            out.push_str(&format!("spawned by {p}\n"));
        }
        if slot.paused() {
            out.push_str(&format!("paused by the operator (detected before: {})\n", slot.detected.label()));
        }
        if let Some(t) = &slot.tree {
            out.push_str(&format!("processes: {:?}, pause by {}\n", t.pids(), t.method().describe()));
        }
        if let Some(s) = &slot.session {
            out.push_str(&format!("CLI session: {s}\n"));
        }
        out
    }
}
