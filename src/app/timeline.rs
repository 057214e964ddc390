//! The timeline view: an agent's checkpoints, the diff of one, and rolling back to it (all of it or some files).

use super::msg::Effect;
use super::roster::on_roster_action;
use super::state::{Confirmed, Dialog, State, TimelineView, WellTab};
use crate::config::keymap::Action;
use crate::protocol::git::DiffBase;
use crate::protocol::Command;

/// Keep the timeline view on the selected agent and ask the engine for the diff it shows.
pub(super) fn sync_timeline(state: &mut State, fx: &mut Vec<Effect>) {
    let name = state.selected_name();
    if state.timeline.agent != name {
        state.timeline = TimelineView { agent: name.clone(), ..TimelineView::default() };
    }
    if state.tab != WellTab::Timeline || state.attached {
        return;
    }
    let count = state.selected_agent().map_or(0, |a| a.checkpoints.len());
    state.timeline.selected = state.timeline.selected.min(count.saturating_sub(1));
    let Some(agent) = state.selected_agent() else { return };
    let Some(cp) = agent.checkpoints.get(state.timeline.selected) else { return };
    let want = (agent.info.name.clone(), cp.n, state.timeline.base);
    if state.timeline.requested.as_ref() != Some(&want) {
        fx.push(Effect::Engine(Command::CheckpointDiff { name: want.0.clone(), n: want.1, base: want.2 }));
        state.timeline.requested = Some(want);
    }
}

/// The checkpoint selected in the timeline.
pub(super) fn selected_checkpoint(state: &State) -> Option<u32> {
    state.selected_agent()?.checkpoints.get(state.timeline.selected).map(|c| c.n)
}

/// The files of the diff on screen.
pub(super) fn diff_files(state: &State) -> Vec<String> {
    state.timeline.diff.as_ref().map(|d| d.3.iter().map(|f| f.path.clone()).collect()).unwrap_or_default()
}

pub(super) fn on_timeline_action(state: &mut State, action: Action, fx: &mut Vec<Effect>) {
    let Some(name) = state.selected_name() else {
        state.tab = WellTab::Terminal;
        return;
    };
    let count = state.selected_agent().map_or(0, |a| a.checkpoints.len());
    let tl = &mut state.timeline;
    let fresh_selection = |tl: &mut TimelineView| {
        tl.file = 0;
        tl.scroll = 0;
        tl.marked.clear();
    };
    match action {
        Action::SelectNext if tl.selected + 1 < count => {
            tl.selected += 1;
            fresh_selection(tl);
        }
        Action::SelectPrev if tl.selected > 0 => {
            tl.selected -= 1;
            fresh_selection(tl);
        }
        Action::SelectNext | Action::SelectPrev => {}
        Action::NextFile => {
            let files = diff_files(state).len();
            let tl = &mut state.timeline;
            if tl.file + 1 < files {
                tl.file += 1;
                tl.scroll = 0;
            }
        }
        Action::PrevFile => {
            tl.file = tl.file.saturating_sub(1);
            tl.scroll = 0;
        }
        Action::MarkFile => {
            if let Some(path) = diff_files(state).get(state.timeline.file).cloned() {
                let marked = &mut state.timeline.marked;
                if !marked.remove(&path) {
                    marked.insert(path);
                }
            }
        }
        Action::PageDown => tl.scroll = tl.scroll.saturating_add(10),
        Action::PageUp => tl.scroll = tl.scroll.saturating_sub(10),
        Action::ToggleDiffBase => {
            tl.base = match tl.base {
                DiffBase::Previous => DiffBase::Worktree,
                DiffBase::Worktree => DiffBase::Previous,
            };
            fresh_selection(tl);
        }
        Action::Checkpoint => fx.push(Effect::Engine(Command::Checkpoint { name })),
        Action::Rollback => {
            if let Some(n) = selected_checkpoint(state) {
                fx.push(Effect::Engine(Command::RollbackPreview { name, n, files: None }));
            }
        }
        Action::RollbackGreen => {
            // The newest green one (the list is newest first); asked as every rollback is, with its rescue.
            let green = state.selected_agent().and_then(|a| a.checkpoints.iter().position(|c| c.green));
            match green {
                Some(i) => {
                    state.timeline.selected = i;
                    let n = state.selected_agent().map(|a| a.checkpoints[i].n).unwrap_or_default();
                    fx.push(Effect::Engine(Command::RollbackPreview { name, n, files: None }));
                }
                None => state.status = Some(("no checkpoint of this agent has passed every gate (✓)".into(), true)),
            }
        }
        Action::RollbackFiles => {
            let files: Vec<String> = if state.timeline.marked.is_empty() {
                diff_files(state).get(state.timeline.file).cloned().into_iter().collect()
            } else {
                state.timeline.marked.iter().cloned().collect()
            };
            match (selected_checkpoint(state), files.is_empty()) {
                (Some(n), false) => fx.push(Effect::Engine(Command::RollbackPreview { name, n, files: Some(files) })),
                _ => state.status = Some(("no file selected: [ and ] move between files, space marks".into(), true)),
            }
        }
        Action::UndoRollback => {
            state.dialog = Some(Dialog::Confirm {
                title: format!("Undo the last rollback of {name}?"),
                lines: vec![
                    "The worktree returns to the checkpoint taken just before that rollback.".into(),
                    "A new rescue checkpoint is taken first, so this can be undone too.".into(),
                ],
                then: Confirmed::UndoRollback { name },
            });
        }
        Action::Close => state.tab = WellTab::Terminal,
        other => on_roster_action(state, other, fx),
    }
}
