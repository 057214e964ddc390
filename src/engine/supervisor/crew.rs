//! The crew file changed while the crew runs: read again and applied as a difference. Agents added to it join
//! the roster stopped; one changed takes the change when it next starts (at once when it is not running); one
//! that left the file stays, with its work, until the operator removes it. Nothing running is touched, and a
//! file that does not parse changes nothing (its error names the place).

use super::*;

/// What a new crew file changes, by agent name.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct CrewDiff {
    pub(super) added: Vec<AgentSpec>,
    pub(super) changed: Vec<AgentSpec>,
    /// Shown (of an earlier session, or taken out before) and in the file again as it is.
    pub(super) back: Vec<String>,
    pub(super) left: Vec<String>,
}

/// The difference from the crew the engine has (`before`: the file as last applied, `shown`: the spec of every
/// agent in the roster, some of an earlier session) to the crew file now.
pub(super) fn crew_diff(before: &[AgentSpec], shown: &[&AgentSpec], now: &[AgentSpec]) -> CrewDiff {
    let mut diff = CrewDiff::default();
    for spec in now {
        match (before.iter().find(|b| b.name == spec.name), shown.iter().find(|s| s.name == spec.name)) {
            (Some(b), _) if b == spec => {}
            (Some(_), _) => diff.changed.push(spec.clone()),
            // Back in the file (an agent of an earlier session is still shown): the file's spec is its own.
            (None, Some(s)) if *s == spec => diff.back.push(spec.name.clone()),
            (None, Some(_)) => diff.changed.push(spec.clone()),
            (None, None) => diff.added.push(spec.clone()),
        }
    }
    diff.left = before.iter().filter(|b| now.iter().all(|n| n.name != b.name)).map(|b| b.name.clone()).collect();
    diff
}

impl Supervisor {
    /// Add an agent: into the crew file first (checked as a crew; its comments kept), then into the roster as
    /// the changed file says; started when asked. What happened, or why not (both also said).
    pub(super) fn add_agent(&mut self, new: crate::protocol::NewAgent, start: bool) -> Result<String, String> {
        let name = new.name.clone();
        self.add_entry(&name, start, |t| crate::config::crew_edit::add_agent(t, &new).map(Some))?;
        Ok(if start { format!("added {name} and started it") } else { format!("added {name} (R starts it)") })
    }

    /// Add a copy of agent `name` as `new_name`, as `add_agent` adds one.
    pub(super) fn duplicate_agent(&mut self, name: &str, new_name: &str, start: bool) -> Result<String, String> {
        self.add_entry(new_name, start, |t| {
            crate::config::crew_edit::duplicate_agent(t, name, new_name)?
                .map(Some)
                .ok_or_else(|| format!("no agent `{name}` in the crew file to copy"))
        })?;
        Ok(format!("added {new_name}, a copy of {name}{}", if start { ", and started it" } else { " (R starts it)" }))
    }

    /// A stopped agent by a new name: its worktree, branch, checkpoints and crew file entry follow; what to say.
    pub(super) fn rename(&mut self, name: &str, new_name: &str) -> Result<String, String> {
        let refuse = |s: &mut Self, text: String| {
            s.message(text.clone(), true);
            Err(text)
        };
        if let Err(e) = crate::config::crew::validate_name(new_name) {
            return refuse(self, format!("{name} not renamed: {e}"));
        }
        if self.slots.iter().any(|s| s.spec.name == new_name) {
            return refuse(self, format!("{name} not renamed: an agent named {new_name} is in the crew already"));
        }
        let Some(idx) = self.slots.iter().position(|s| s.spec.name == name) else {
            return refuse(self, format!("no agent named {name}"));
        };
        if self.slots[idx].running.as_ref().is_some_and(|r| !r.exited) {
            return refuse(self, format!("{name} is running: stop it (x) first, then rename it"));
        }
        let root = self.cfg.root.clone();
        if self.slots[idx].spec.worktree {
            if let Err(e) = crate::git::worktree::rename(&root, name, new_name) {
                return refuse(self, format!("{name} not renamed: {e:#}"));
            }
        }
        let slot = &mut self.slots[idx];
        slot.spec.name = new_name.to_string();
        if let Some(p) = slot.pending_spec.as_mut() {
            p.name = new_name.to_string();
        }
        slot.info.name = new_name.to_string();
        if slot.spec.worktree {
            slot.info.branch = crate::git::worktree::branch_name(new_name);
            slot.info.worktree = crate::git::worktree::worktree_path(&root, new_name);
        }
        // The watcher watched the old folder; a start makes a new one.
        slot.files = None;
        let info = slot.info.clone();
        for a in self.cfg.crew.agents.iter_mut().filter(|a| a.name == name) {
            a.name = new_name.to_string();
        }
        self.sink.event(Event::Removed { name: name.to_string() });
        self.sink.event(Event::Agent(info));
        self.save();
        self.job(new_name, JobKind::List, false);
        self.request_overlaps();
        let edited =
            crate::config::edit_crew_file(&root, |t| crate::config::crew_edit::rename_agent(t, name, new_name));
        self.crew_reload_at = None;
        self.reload_crew();
        let text = match edited {
            Ok(_) => format!("renamed {name} to {new_name}: its worktree, branch and checkpoints too"),
            Err(e) => format!("renamed {name} to {new_name}, but its crew file entry is not: {e:#}"),
        };
        self.message(text.clone(), false);
        Ok(text)
    }

    /// The crew file changed by `edit` (checked as a crew before it is written), applied at once, and the new
    /// agent `name` started when asked; why not, when the file refused the change.
    fn add_entry(
        &mut self,
        name: &str,
        start: bool,
        edit: impl FnOnce(&str) -> Result<Option<String>, String>,
    ) -> Result<(), String> {
        if let Err(e) = crate::config::edit_crew_file(&self.cfg.root, edit) {
            let text = format!("{name} not added: {e:#}");
            self.message(text.clone(), true);
            return Err(text);
        }
        self.crew_reload_at = None;
        self.reload_crew();
        if start {
            self.start(name, false);
        }
        Ok(())
    }

    pub(super) fn reload_crew(&mut self) {
        let crew = match crate::config::load_crew_owned(&self.cfg.root, crate::git::ownership::tracked_files) {
            Ok((crew, _, warnings)) => {
                for w in warnings {
                    self.message(w.to_string(), true);
                }
                crew
            }
            Err(e) => {
                self.message(format!("crew file not applied (the crew runs as it was): {e:#}"), true);
                return;
            }
        };
        // Manifests are read again with the crew: a changed override applies to the agents started from now.
        self.presets = crate::config::preset::load(Some(&self.cfg.root)).0;
        let shown: Vec<&AgentSpec> = self.slots.iter().map(|s| s.pending_spec.as_ref().unwrap_or(&s.spec)).collect();
        let diff = crew_diff(&self.cfg.crew.agents, &shown, &crew.agents);
        self.cfg.crew = crew;
        if diff == CrewDiff::default() {
            return;
        }
        let mut said = Vec::new();
        for spec in diff.added {
            let name = spec.name.clone();
            let mut slot = self.new_slot(spec, None);
            // Nothing starts without the operator's word: it waits, stopped, for R (or A for every one).
            slot.info.state = AgentState::Stopped;
            slot.info.crew_file = CrewFileMark::Added;
            slot.info.why = "added to the crew file: R starts it".into();
            self.slots.push(slot);
            self.emit(&name);
            said.push(format!("{name} added (R starts it)"));
        }
        for spec in diff.changed {
            let name = spec.name.clone();
            let Some(slot) = self.slot_mut(&name) else { continue };
            let running = slot.running.as_ref().is_some_and(|r| !r.exited);
            if running {
                slot.pending_spec = Some(spec);
                slot.info.crew_file = CrewFileMark::Changed;
                said.push(format!("{name} changed (restart it to apply: R)"));
            } else {
                slot.info.kind = spec.kind.clone();
                slot.spec = spec;
                slot.pending_spec = None;
                slot.info.crew_file = CrewFileMark::Same;
                said.push(format!("{name} changed (applied: it is not running)"));
            }
            self.emit(&name);
        }
        for name in diff.back {
            let Some(slot) = self.slot_mut(&name) else { continue };
            if slot.info.crew_file == CrewFileMark::Left {
                slot.info.crew_file = CrewFileMark::Same;
                self.emit(&name);
                said.push(format!("{name} is back in the file"));
            }
        }
        for name in diff.left {
            let Some(slot) = self.slot_mut(&name) else { continue };
            slot.info.crew_file = CrewFileMark::Left;
            slot.pending_spec = None;
            self.emit(&name);
            said.push(format!("{name} left the file (D removes it, its work checkpointed first)"));
        }
        if !said.is_empty() {
            self.message(format!("crew.toml: {}", said.join("; ")), false);
        }
        self.save();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(text: &str) -> Vec<AgentSpec> {
        crate::config::crew::parse_crew(std::path::Path::new("c.toml"), text, &preset::builtin(), &Default::default())
            .unwrap()
            .agents
    }

    #[test]
    fn a_new_file_is_told_apart_into_added_changed_and_left() {
        let before = specs("[[agent]]\nname='a'\ncommand='bash'\n[[agent]]\nname='b'\ncommand='bash'\n");
        let now = specs(
            "[[agent]]\nname='a'\ncommand='bash'\n[[agent]]\nname='c'\ncommand='bash'\n[[agent]]\nname='old'\ncommand='sh'\n",
        );
        // `old` is shown from an earlier session, with another command than the file gives it now.
        let old = specs("[[agent]]\nname='old'\ncommand='bash'\n");
        let shown: Vec<&AgentSpec> = before.iter().chain(&old).collect();
        let diff = crew_diff(&before, &shown, &now);
        assert_eq!(diff.added.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["c"]);
        assert_eq!(diff.changed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["old"], "back, changed");
        assert_eq!(diff.left, ["b"]);
        // Back as it was: nothing to apply.
        let same_old = specs("[[agent]]\nname='a'\ncommand='bash'\n[[agent]]\nname='b'\ncommand='bash'\n[[agent]]\nname='old'\ncommand='bash'\n");
        let diff = crew_diff(&before, &shown, &same_old);
        assert_eq!(diff.back, ["old"]);
        assert!(diff.changed.is_empty() && diff.added.is_empty() && diff.left.is_empty());
        let edited = specs("[[agent]]\nname='a'\ncommand='bash'\nargs=['-l']\n[[agent]]\nname='b'\ncommand='bash'\n");
        let shown: Vec<&AgentSpec> = before.iter().collect();
        let diff = crew_diff(&before, &shown, &edited);
        assert_eq!(diff.changed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a"]);
        assert!(diff.added.is_empty() && diff.left.is_empty());
        assert_eq!(crew_diff(&before, &shown, &before), CrewDiff::default());
    }
}
