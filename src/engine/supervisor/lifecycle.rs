//! An agent's life after launch: the states its detector and hooks report, pausing, stopping, its exit, and
//! its removal; leftovers of a run before are ended.

use super::*;

/// A stop's second step, on the engine's clock instead of a thread per stop.
pub(super) struct GraceKill {
    pub(super) at: Instant,
    pub(super) name: String,
    pub(super) generation: u64,
    pub(super) control: Arc<dyn crate::pty::PtyControl>,
    pub(super) tree: Option<Arc<AgentTree>>,
}

/// How long what an exited agent left behind has after SIGTERM.
pub(super) const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

impl Supervisor {
    /// Processes an earlier muster of this crew left when it died (kill -9): their terminal is gone, and
    /// starting the agent again would run it twice in one worktree. Checkpointed first, then ended.
    pub(super) fn end_leftovers(&mut self) {
        for (name, pids) in crate::pty::tree::orphans(&self.run_dir) {
            // Here, not as a job: the line that says what happened names the checkpoint too.
            let checkpoint = match self.slots.iter().find(|s| s.spec.name == name).and_then(|s| self.worktree_of(s)) {
                Some(wt) => {
                    match crate::git::checkpoint::create(&wt, &name, "before ending an earlier run's processes") {
                        Ok((cp, _)) => format!("; checkpoint {} holds its files", cp.n),
                        Err(e) => format!("; the checkpoint before failed: {e:#}"),
                    }
                }
                None => String::new(),
            };
            crate::pty::tree::end_orphans(&pids);
            self.message(
                format!(
                    "{name}: ended {} process(es) an earlier muster left running ({pids:?}){checkpoint}",
                    pids.len()
                ),
                false,
            );
        }
    }

    pub(super) fn stop(&mut self, name: &str, restart: bool) {
        let grace = self.cfg.stop_grace;
        let Some(slot) = self.slot_mut(name) else {
            return;
        };
        let Some(running) = slot.running.as_mut().filter(|r| !r.exited) else {
            if restart {
                self.start(name, true);
            }
            return;
        };
        slot.stopping = true;
        slot.restart_after_exit = restart;
        let tree = slot.tree.clone();
        // A frozen process would not act on SIGTERM.
        if let Some(t) = &tree {
            let _ = t.set_paused(false);
        }
        let _ = signals::terminate(running.control.as_ref());
        // After the grace period a child that ignored SIGTERM is killed, with everything it started.
        let kill = GraceKill {
            at: Instant::now() + grace,
            name: name.to_string(),
            generation: running.generation,
            control: running.control.clone(),
            tree,
        };
        self.kills.retain(|k| k.name != name);
        self.kills.push(kill);
    }

    pub(super) fn exited(&mut self, name: &str, generation: u64, exit: ExitInfo) {
        self.settle_sends(name, generation, None);
        let shutting_down = self.shutting_down;
        let Some(slot) = self.slot_mut(name) else {
            return;
        };
        let Some(r) = slot.running.as_mut().filter(|r| r.generation == generation) else {
            return;
        };
        r.exited = true;
        // What it started and left behind (daemons in their own sessions) ends with it.
        let mut leftover = None;
        if let Some(tree) = slot.tree.take() {
            if shutting_down {
                // muster is about to end: the leftovers go now, not after a grace it would not wait out.
                tree.kill_all();
            } else if !tree.pids().is_empty() {
                let _ = tree.set_paused(false);
                tree.signal_all(rustix::process::Signal::TERM);
                leftover = Some(tree);
            }
        }
        slot.info.exit = Some(exit);
        slot.info.why = format!("its process ended ({exit})");
        slot.info.pid = None;
        slot.info.state = if slot.stopping { AgentState::Stopped } else { AgentState::Exited };
        let restart = std::mem::take(&mut slot.restart_after_exit);
        let stopped = slot.stopping || shutting_down;
        self.kills.retain(|k| k.name != name);
        if let Some(tree) = leftover {
            self.leftovers.push((Instant::now() + LEFTOVER_GRACE, tree));
        }
        self.emit(name);
        self.mail_on_exit(name, stopped);
        self.request_diffstat(name, true);
        self.save();
        if restart {
            self.start(name, true);
        }
    }

    pub(super) fn pause(&mut self, name: &str, pause: bool) {
        let Some(slot) = self.slot_mut(name) else {
            return;
        };
        let (Some(running), Some(tree)) = (slot.running.as_ref().filter(|r| !r.exited), slot.tree.as_ref()) else {
            return;
        };
        // Sticky: a checkpoint or rollback that holds the agent meanwhile leaves this pause as it is.
        match tree.set_paused(pause) {
            Ok(()) => {
                slot.info.state = if pause { AgentState::Paused } else { slot.detected };
                if !pause {
                    // Its screen decides again: an agent that prints nothing after a resume is not busy.
                    let _ = running.term.send(TermMsg::Redetect);
                }
                self.emit(name);
            }
            Err(e) => {
                self.message(format!("{name}: could not {} it: {e}", if pause { "pause" } else { "resume" }), true)
            }
        }
    }

    /// Stop the agent, checkpoint its worktree, remove the worktree (refused when work would be lost, unless
    /// `force`) and take its entry out of the crew file. What happened, or why not (both also said).
    pub(super) fn remove(&mut self, name: &str, force: bool) -> Result<String, String> {
        let Some(idx) = self.slots.iter().position(|s| s.spec.name == name) else {
            return Err(format!("no agent named {name}"));
        };
        if let Some(r) = self.slots[idx].running.as_ref().filter(|r| !r.exited) {
            let _ = signals::kill(r.control.as_ref());
        }
        if let Some(t) = &self.slots[idx].tree {
            t.kill_all();
        }
        let slot = &self.slots[idx];
        if slot.spec.worktree && self.worktree_of(slot).is_some() {
            // The refs outlive the worktree: what it held can still be restored from the checkpoint.
            let before_remove =
                |c: &_| crate::git::checkpoint::create_with(&slot.info.worktree, name, "before remove", c);
            if let Err(e) = WorktreeWatch::checkpoint(slot.files.as_deref(), before_remove) {
                let text = format!("{name}: not removed, the checkpoint before removal failed: {e:#}");
                self.message(text.clone(), true);
                return Err(text);
            }
        }
        if slot.spec.worktree {
            if let Err(e) = worktree::remove_worktree(&self.cfg.root, name, &slot.info.base, force) {
                let text = format!("{name}: {e:#}");
                self.message(text.clone(), true);
                return Err(text);
            }
        }
        self.slots.remove(idx);
        self.sink.event(Event::Removed { name: name.to_string() });
        self.request_overlaps();
        self.mail_on_remove(name);
        self.gates_on_remove(name);
        self.findings_on_remove(name);
        // Gone from the crew file too, so the next start does not bring it back (the watcher then sees no change).
        let edited = crate::config::edit_crew_file(&self.cfg.root, |t| crate::config::crew_edit::remove_agent(t, name));
        self.cfg.crew.agents.retain(|a| a.name != name);
        let text = match edited {
            Ok(true) => format!("removed {name} (and its entry in crew.toml)"),
            Ok(false) => format!("removed {name}"),
            Err(e) => {
                self.message(format!("{name}: its entry stays in the crew file: {e:#}"), true);
                format!("removed {name} (its entry stays in crew.toml)")
            }
        };
        self.message(text.clone(), false);
        self.save();
        Ok(text)
    }

    pub(super) fn detected(
        &mut self,
        name: &str,
        generation: u64,
        state: AgentState,
        why: String,
        title: Option<String>,
        last_output_ms: Option<u64>,
    ) {
        let Some(slot) = self.slot_mut(name) else {
            return;
        };
        if slot.running.as_ref().is_none_or(|r| r.generation != generation || r.exited) {
            return;
        }
        let before = slot.info.clone();
        let turn_started = state == AgentState::Busy && slot.detected != AgentState::Busy;
        slot.detected = state;
        slot.detected_why = why.clone();
        if turn_started {
            // The operator, mail or the CLI itself started a turn: a gate's hold ends.
            slot.turns += 1;
            slot.gate_hold = None;
            slot.turn_end_taken = false;
        }
        if !slot.paused() {
            slot.info.state = state;
            slot.info.why = why;
        }
        gates::shown_state(slot);
        let state_changed = slot.info.state != before.state;
        slot.info.title = title;
        slot.info.last_output_ms = last_output_ms;
        let settled = matches!(state, AgentState::Idle | AgentState::Waiting);
        let turn_ended = settled && before.state == AgentState::Busy && !slot.paused();
        if state == AgentState::Busy && slot.last_periodic.is_none() {
            slot.last_periodic = Some(Instant::now());
        } else if state != AgentState::Busy {
            slot.last_periodic = None;
        }
        let send_prompt = slot.prompt_pending && state == AgentState::Idle;
        if send_prompt {
            slot.prompt_pending = false;
        }
        let changed = before != slot.info;
        let spec = slot.spec.clone();
        let prompt = self.with_note(&spec).prompt;
        if changed {
            self.emit(name);
        }
        if send_prompt {
            if let Some(p) = prompt {
                if let Err(e) = self.steer(name, p, false, Asker::NOBODY) {
                    self.message(e.message, true);
                }
            }
        }
        if state_changed {
            // Saved soon, not at once: a state can flap several times a second.
            self.unsaved_since.get_or_insert_with(Instant::now);
        }
        if !self.sends.is_empty() {
            self.settle_sends(name, generation, Some(state));
        }
        let now_state = self.slot_mut(name).map(|s| s.info.state).unwrap_or(state);
        self.mail_on_state(name, generation, before.state, now_state);
        self.request_diffstat(name, settled && before.state != state);
        // No checkpoint when the watcher saw nothing change: there would be nothing to record.
        let dirty = self
            .slots
            .iter()
            .find(|s| s.spec.name == name)
            .is_some_and(|s| s.files.as_ref().is_none_or(|w| w.is_dirty()));
        // Its stop hook took this turn's end already (its checkpoint, its gates): not counted twice.
        let taken = turn_ended && self.slot_mut(name).is_some_and(|s| std::mem::take(&mut s.turn_end_taken));
        if turn_ended && dirty && !taken {
            self.job(name, JobKind::Create { trigger: "turn".into() }, false);
        } else if turn_ended && !taken {
            self.gates_unchanged_turn(name);
        }
    }

    pub(super) fn hook(
        &mut self,
        name: &str,
        token: &str,
        event: String,
        detail: Option<String>,
        session: Option<String>,
    ) {
        let Some(slot) = self.slot_mut(name) else { return };
        if slot.token.is_empty() || slot.token != token {
            crate::warn_limited!(
                "hook secret",
                "hook {event} for {name} with a wrong secret: ignored (another agent reporting as {name}?)"
            );
            return;
        }
        if session.is_some() && slot.session != session {
            slot.session = session;
            self.save();
        }
        if let Some(state) = hook_state(&event, detail.as_deref()) {
            let report = HookReport { state, event, at: Instant::now() };
            self.with_running(name, |r| {
                let _ = r.term.send(TermMsg::Hook(report));
            });
        }
    }
}
