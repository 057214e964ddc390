//! The findings tab: the watchdog's open findings on the selected agent, newest first, and keys to restore the
//! file (after a confirmation), allow the path for this run, dismiss, tell the agent, or see the file's diff.

use super::msg::Effect;
use super::state::{Confirmed, Dialog, FindingsView, State, TimelineView, WellTab};
use crate::config::keymap::Action;
use crate::protocol::git::DiffBase;
use crate::protocol::guard::{Finding, GuardOp};
use crate::protocol::Command;

fn ask(agent: &str, fx: &mut Vec<Effect>) {
    let op = GuardOp::Status { agent: Some(agent.to_string()), all: false };
    fx.push(Effect::Engine(Command::Guard { op }));
}

/// Show the findings of the selected agent, read anew.
pub(super) fn open(state: &mut State, fx: &mut Vec<Effect>) {
    let Some(agent) = state.selected_agent() else { return };
    let name = agent.info.name.clone();
    state.findings = Some(FindingsView { agent: name.clone(), ..Default::default() });
    state.tab = WellTab::Findings;
    state.well_open = true;
    ask(&name, fx);
}

/// A findings tab's key; false: not one of its own (the roster's then).
pub(super) fn on_action(state: &mut State, action: Action, fx: &mut Vec<Effect>) -> bool {
    let Some(view) = state.findings.as_mut() else { return false };
    let list = view.findings.as_deref().unwrap_or(&[]);
    let chosen: Option<Finding> = list.get(view.selected).cloned();
    let guard = |op: GuardOp, fx: &mut Vec<Effect>| fx.push(Effect::Engine(Command::Guard { op }));
    match action {
        Action::SelectNext if view.selected + 1 < list.len() => view.selected += 1,
        Action::SelectPrev if view.selected > 0 => view.selected -= 1,
        Action::SelectNext | Action::SelectPrev => {}
        Action::RestoreFinding => {
            let Some(f) = chosen else { return true };
            let lines = if f.checkpoint_n == 0 {
                vec![format!("{} changed before its first checkpoint: there is nothing to restore it from.", f.path)]
            } else {
                vec![
                    format!("Put {} back as it was at checkpoint {} of {}?", f.path, f.checkpoint_n, f.agent),
                    "A rescue checkpoint is taken first (the timeline's undo brings the file back); the agent's \
                     other changes stay."
                        .into(),
                ]
            };
            state.dialog = Some(Dialog::Confirm {
                title: format!("Restore {}?", f.path),
                lines,
                then: Confirmed::RestoreFinding { id: f.id },
            });
        }
        Action::AllowFinding => {
            if let Some(f) = chosen {
                guard(GuardOp::Allow { id: f.id }, fx);
            }
        }
        Action::DismissFinding => {
            if let Some(f) = chosen {
                guard(GuardOp::Dismiss { id: f.id }, fx);
            }
        }
        Action::TellAgent => {
            if let Some(f) = chosen {
                guard(GuardOp::Steer { id: f.id }, fx);
            }
        }
        Action::FindingDiff => {
            let Some(f) = chosen else { return true };
            let Some(agent) = state.agents.iter().find(|a| a.info.name == f.agent) else { return true };
            // The worktree now against the finding's checkpoint, at the file.
            let Some(i) = agent.checkpoints.iter().position(|c| c.n == f.checkpoint_n) else {
                state.status =
                    Some((format!("checkpoint {} of {} is not in its timeline", f.checkpoint_n, f.agent), true));
                return true;
            };
            state.timeline = TimelineView {
                agent: Some(f.agent.clone()),
                selected: i,
                base: DiffBase::Worktree,
                focus: Some(f.path.clone()),
                ..TimelineView::default()
            };
            state.tab = WellTab::Timeline;
            super::timeline::sync_timeline(state, fx);
        }
        Action::Refresh => {
            let agent = view.agent.clone();
            ask(&agent, fx);
        }
        Action::Close | Action::Findings => {
            state.findings = None;
            state.tab = WellTab::Terminal;
        }
        _ => return false,
    }
    true
}

/// The engine's list: shown if it is of the tab open.
pub(super) fn on_findings(state: &mut State, agent: Option<String>, findings: Vec<Finding>) {
    let Some(view) = state.findings.as_mut() else { return };
    if agent.is_some_and(|a| a != view.agent) {
        return;
    }
    // The finding selected stays selected as new ones arrive above it.
    let id = view.findings.as_ref().and_then(|f| f.get(view.selected)).map(|f| f.id);
    view.selected = id.and_then(|id| findings.iter().position(|f| f.id == id)).unwrap_or(0);
    view.selected = view.selected.min(findings.len().saturating_sub(1));
    view.findings = Some(findings);
}

/// An agent's count of findings changed: the tab open on it reads them again.
pub(super) fn on_count_changed(state: &State, agent: &str, fx: &mut Vec<Effect>) {
    if state.findings.as_ref().is_some_and(|v| v.agent == agent) {
        ask(agent, fx);
    }
}
