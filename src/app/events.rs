//! What the engine tells the workbench: agents, screens, timelines, diffs, merges, mail and messages.

use super::msg::Effect;
use super::roster::{merge_checked, select};
use super::state::{AgentView, Confirmed, ConflictView, Dialog, State, WellTab};
use crate::conflict::Resolver;
use crate::protocol::{AgentState, Event};

pub(super) fn on_event(state: &mut State, event: Event, fx: &mut Vec<Effect>) {
    match event {
        Event::Agent(info) => {
            let selected = state.selected;
            match state.agents.iter_mut().position(|a| a.info.name == info.name) {
                Some(i) => {
                    // Looked at: the agent is selected and its terminal shown (or attached to), or in a pane.
                    let in_view = (i == selected && (state.attached || state.well_open))
                        || state.panes().iter().any(|p| p.name == info.name);
                    let view = &mut state.agents[i];
                    let newly_waiting = info.state == AgentState::Waiting && view.info.state != AgentState::Waiting;
                    if newly_waiting {
                        if i != selected || !state.attached {
                            view.attention = true;
                        }
                        if state.bell_on_waiting {
                            fx.push(Effect::Bell);
                        }
                        if state.notify && !in_view {
                            fx.push(Effect::Notify(format!("{} is waiting for you", info.name)));
                        }
                    }
                    // A turn ended (busy, then back at its prompt) where the operator did not see it.
                    // A CLI drawing itself at start is busy too, but that is no turn to report.
                    if info.state == AgentState::Busy && view.info.state != AgentState::Busy {
                        view.in_turn = view.info.state != AgentState::Starting;
                    }
                    let turn_ended = view.in_turn && info.state == AgentState::Idle;
                    if info.state != AgentState::Busy {
                        view.in_turn = false;
                    }
                    if turn_ended && !in_view {
                        view.unseen = true;
                        if state.notify {
                            fx.push(Effect::Notify(format!("{} finished its turn", info.name)));
                        }
                    }
                    if !info.state.is_running() && state.attached && i == selected {
                        state.attached = false;
                    }
                    let gate_changed = view.info.gate != info.gate;
                    let findings_changed = view.info.findings != info.findings;
                    view.info = info;
                    let name = state.agents[i].info.name.clone();
                    if gate_changed {
                        super::gates::on_mark_changed(state, &name, fx);
                    }
                    if findings_changed {
                        super::findings::on_count_changed(state, &name, fx);
                    }
                }
                None => state.agents.push(AgentView {
                    // Busy when this workbench joins: a turn it will see end.
                    in_turn: info.state == AgentState::Busy,
                    info,
                    screen: None,
                    checkpoints: Vec::new(),
                    attention: false,
                    unseen: false,
                }),
            }
        }
        Event::Removed { name } => {
            state.agents.retain(|a| a.info.name != name);
            // Its overlaps go with it (the engine's next report says the same).
            state.overlaps.overlaps.retain(|o| o.a != name && o.b != name);
            state.overlaps.merge_order.retain(|n| *n != name);
            state.selected = state.selected.min(state.agents.len().saturating_sub(1));
            state.attached = false;
        }
        // One viewer's own scrolled screen is its screen (the sink or the server has picked what it sees).
        Event::Screen { name, screen, .. } => {
            super::copy::on_screen(state, &name);
            if let Some(a) = state.agents.iter_mut().find(|a| a.info.name == name) {
                a.screen = Some(std::sync::Arc::new(screen));
            }
        }
        Event::SearchFound { name, pattern, found } => super::copy::on_found(state, &name, &pattern, found),
        Event::Copied { text, cut, .. } => super::copy::on_copied(state, text, cut, fx),
        Event::Review { name, review, .. } => super::review::on_review(state, name, review),
        Event::GateRuns { agent, runs } => super::gates::on_runs(state, agent, runs),
        Event::GateLog { run, log } => super::gates::on_log(state, run, log),
        Event::Findings { agent, findings } => super::findings::on_findings(state, agent, findings),
        Event::Bell { name } => {
            let selected = state.selected;
            if let Some((i, a)) = state.agents.iter_mut().enumerate().find(|(_, a)| a.info.name == name) {
                if i != selected {
                    a.attention = true;
                }
            }
        }
        Event::Notification { name, text } => state.status = Some((format!("{name}: {text}"), false)),
        Event::Alarm { name, text } => {
            state.status = Some((format!("{name}: {text}"), true));
            if state.bell_on_waiting {
                fx.push(Effect::Bell);
            }
        }
        Event::RemoveCheck { name, status } => {
            let mut lines = vec![format!(
                "Remove agent {name}, its worktree, its branch muster/{name} and its entry in crew.toml?"
            )];
            if !status.is_safe_to_remove() {
                lines.push(format!(
                    "Not merged into its base: {}, {}.",
                    crate::text::counted(status.changed_files, "changed file"),
                    crate::text::counted(status.unmerged_commits, "commit")
                ));
            }
            lines.push(format!(
                "A checkpoint is taken first; it and the branch stay in refs/muster/removed/{name} until \
                 `muster removed --prune`."
            ));
            state.dialog = Some(Dialog::Confirm {
                title: format!("Remove {name}?"),
                lines,
                then: Confirmed::Remove { name, force: !status.is_safe_to_remove() },
            });
        }
        Event::Message { text, error } => state.status = Some((text, error)),
        Event::MergeCheck { name, into_agent, check } => merge_checked(state, name, into_agent, check),
        Event::MergeConflicts { name, into_agent, files } => {
            let opened = state.conflicts.as_ref().is_some_and(|v| v.agent == name);
            if files.is_empty() {
                if let Some(v) = state.conflicts.as_mut() {
                    v.files = files;
                    v.loaded = None;
                }
                state.status = Some(("every conflict is resolved: F finishes the merge".into(), false));
                return;
            }
            if opened {
                if let Some(v) = state.conflicts.as_mut() {
                    let current = v.files.get(v.file).map(|f| f.path.clone());
                    v.file = current.and_then(|p| files.iter().position(|f| f.path == p)).unwrap_or(0);
                    v.files = files;
                }
            } else {
                state.conflicts = Some(ConflictView {
                    agent: name.clone(),
                    into_agent,
                    files,
                    file: 0,
                    loaded: None,
                    requested: None,
                    hunk: 0,
                });
                if let Some(i) = state.agents.iter().position(|a| a.info.name == name) {
                    select(state, i);
                }
                state.tab = WellTab::Conflicts;
                state.well_open = true;
                state.attached = false;
            }
        }
        Event::ConflictFile { name, path, parsed } => {
            if let Some(v) = state.conflicts.as_mut().filter(|v| v.agent == name) {
                let parsed = parsed
                    .map(Resolver::new)
                    .map_err(|e| format!("{path}:{}: {}; the file will not be rewritten from here", e.line, e.message));
                v.loaded = Some((path, parsed));
                v.hunk = 0;
            }
        }
        Event::MergeEnded { name, text } => {
            if state.conflicts.as_ref().is_some_and(|v| v.agent == name) {
                state.conflicts = None;
                if state.tab == WellTab::Conflicts {
                    state.tab = WellTab::Terminal;
                }
            }
            state.status = Some((format!("{name}: {text}"), false));
        }
        Event::Overlaps(report) => state.overlaps = report,
        Event::Timeline { name, checkpoints } => {
            let shown = state.timeline.agent.as_deref() == Some(name.as_str());
            let Some(a) = state.agents.iter_mut().find(|a| a.info.name == name) else { return };
            if shown {
                // The selection follows its checkpoint (a new one comes first and moved every index), and the
                // diff is asked again: a rollback or a new checkpoint changes what it shows.
                let tl = &mut state.timeline;
                let n = a.checkpoints.get(tl.selected).map(|c| c.n);
                tl.selected = n.and_then(|n| checkpoints.iter().position(|c| c.n == n)).unwrap_or(0);
                tl.requested = None;
            }
            a.checkpoints = checkpoints;
        }
        Event::CheckpointDiff { name, n, base, files } => {
            if state.timeline.requested.as_ref() == Some(&(name.clone(), n, base)) {
                if let Some(path) = state.timeline.focus.take() {
                    state.timeline.file = files.iter().position(|f| f.path == path).unwrap_or(0);
                }
                state.timeline.file = state.timeline.file.min(files.len().saturating_sub(1));
                state.timeline.diff = Some((name, n, base, files));
            }
        }
        Event::RollbackPreview { name, n, files, changes, moves_head } => {
            if changes.is_empty() {
                state.status =
                    Some((format!("nothing to roll back: {name}'s files already match checkpoint {n}"), false));
                return;
            }
            let what = match &files {
                Some(_) => {
                    format!("Restore {} of {name} from checkpoint {n}?", crate::text::counted(changes.len(), "file"))
                }
                None => format!("Roll {name} back to checkpoint {n}?"),
            };
            let mut lines = vec![format!("{} will change:", crate::text::counted(changes.len(), "file"))];
            lines.extend(changes.iter().take(12).map(|c| format!("  {c}")));
            if changes.len() > 12 {
                lines.push(format!("  … and {} more", changes.len() - 12));
            }
            if moves_head {
                lines.push("Its branch goes back to the commit it was on then.".into());
            }
            lines.push("A rescue checkpoint is taken first: u (undo rollback) returns to now.".into());
            state.dialog = Some(Dialog::Confirm { title: what, lines, then: Confirmed::Rollback { name, n, files } });
        }
        Event::Mail(mails) => super::mail::on_mail(state, mails, fx),
        Event::ShutdownComplete => {
            if !state.quitting {
                // Stopped from elsewhere: another workbench's stop key, `muster server stop`, a signal.
                state.closed = Some("the crew was stopped and its server ended".into());
            }
            fx.push(Effect::Quit)
        }
    }
}
