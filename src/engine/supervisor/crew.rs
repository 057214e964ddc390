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
    pub(super) left: Vec<String>,
}

/// The difference from the crew the engine has (`before`: the file as last applied, `shown`: every agent in
/// the roster, some of an earlier session) to the crew file now.
pub(super) fn crew_diff(before: &[AgentSpec], shown: &[&str], now: &[AgentSpec]) -> CrewDiff {
    let mut diff = CrewDiff::default();
    for spec in now {
        match before.iter().find(|b| b.name == spec.name) {
            Some(b) if b == spec => {}
            Some(_) => diff.changed.push(spec.clone()),
            // Back in the file (an agent of an earlier session is still shown): its spec is the file's.
            None if shown.contains(&spec.name.as_str()) => diff.changed.push(spec.clone()),
            None => diff.added.push(spec.clone()),
        }
    }
    diff.left = before.iter().filter(|b| now.iter().all(|n| n.name != b.name)).map(|b| b.name.clone()).collect();
    diff
}

impl Supervisor {
    pub(super) fn reload_crew(&mut self) {
        let crew = match crate::config::load_crew(&self.cfg.root) {
            Ok((crew, _, _)) => crew,
            Err(e) => {
                self.message(format!("{e:#} — the crew file was not applied; the crew runs as it was"), true);
                return;
            }
        };
        let shown: Vec<String> = self.slots.iter().map(|s| s.spec.name.clone()).collect();
        let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
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
        for name in diff.left {
            let Some(slot) = self.slot_mut(&name) else { continue };
            slot.info.crew_file = CrewFileMark::Left;
            slot.pending_spec = None;
            self.emit(&name);
            said.push(format!("{name} left the file (D removes it, its work checkpointed first)"));
        }
        self.message(format!("crew.toml: {}", said.join("; ")), false);
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
        let diff = crew_diff(&before, &["a", "b", "old"], &now);
        assert_eq!(diff.added.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["c"]);
        assert_eq!(diff.changed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["old"], "back in the file");
        assert_eq!(diff.left, ["b"]);
        let edited = specs("[[agent]]\nname='a'\ncommand='bash'\nargs=['-l']\n[[agent]]\nname='b'\ncommand='bash'\n");
        let diff = crew_diff(&before, &["a", "b"], &edited);
        assert_eq!(diff.changed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a"]);
        assert!(diff.added.is_empty() && diff.left.is_empty());
        assert_eq!(crew_diff(&before, &["a", "b"], &before), CrewDiff::default());
    }
}
