//! The gates tab: the selected agent's gate runs, newest first, with the selected run's output (its tail, or
//! its whole log on Enter), and keys to run the gates again, grant an attempt, stop the loop or cancel.

use super::msg::Effect;
use super::state::{GatesView, State, WellTab};
use crate::config::keymap::Action;
use crate::protocol::gate::GateOp;
use crate::protocol::Command;

/// Runs the tab lists.
const RUNS: usize = 50;

fn ask_runs(agent: &str, fx: &mut Vec<Effect>) {
    let op = GateOp::Status { agent: Some(agent.to_string()), limit: Some(RUNS) };
    fx.push(Effect::Engine(Command::Gate { op }));
}

/// Show the gates of the selected agent, read anew.
pub(super) fn open(state: &mut State, fx: &mut Vec<Effect>) {
    let Some(agent) = state.selected_agent() else { return };
    let name = agent.info.name.clone();
    state.gates = Some(GatesView { agent: name.clone(), ..Default::default() });
    state.tab = WellTab::Gates;
    state.well_open = true;
    ask_runs(&name, fx);
}

/// A gates tab's key; false: not one of its own (the roster's then).
pub(super) fn on_action(state: &mut State, action: Action, fx: &mut Vec<Effect>) -> bool {
    let page = state.terminal_rows().saturating_sub(2).max(1);
    let Some(view) = state.gates.as_mut() else { return false };
    let runs = view.runs.as_deref().unwrap_or(&[]);
    let agent = view.agent.clone();
    let gate_op = |op: GateOp, fx: &mut Vec<Effect>| fx.push(Effect::Engine(Command::Gate { op }));
    match action {
        Action::SelectNext if view.selected + 1 < runs.len() => {
            view.selected += 1;
            view.log = None;
            view.scroll = 0;
        }
        Action::SelectPrev if view.selected > 0 => {
            view.selected -= 1;
            view.log = None;
            view.scroll = 0;
        }
        Action::SelectNext | Action::SelectPrev => {}
        // The output is read from its end: back is up.
        Action::PageUp => view.scroll = view.scroll.saturating_add(page),
        Action::PageDown => view.scroll = view.scroll.saturating_sub(page),
        Action::OpenLog => match (&view.log, runs.get(view.selected)) {
            (Some(_), _) => {
                view.log = None;
                view.scroll = 0;
            }
            (None, Some(run)) => gate_op(GateOp::Log { id: run.id }, fx),
            (None, None) => {}
        },
        Action::RunGates | Action::Refresh => gate_op(GateOp::Run { agent, gate: None }, fx),
        Action::GrantAttempt => gate_op(GateOp::Grant { agent, gate: None }, fx),
        Action::StopLoop => {
            // The same key stops the loop and resumes a stopped one.
            let stopped = state.agents.iter().any(|a| a.info.name == agent && a.info.gates_stopped);
            gate_op(GateOp::Stop { agent, resume: stopped }, fx);
        }
        Action::CancelGates => gate_op(GateOp::Cancel { agent }, fx),
        Action::Close | Action::Gates => {
            state.gates = None;
            state.tab = WellTab::Terminal;
        }
        _ => return false,
    }
    true
}

/// The engine's list of runs: shown if it is of the tab open.
pub(super) fn on_runs(state: &mut State, agent: Option<String>, runs: Vec<crate::protocol::gate::GateRun>) {
    let Some(view) = state.gates.as_mut() else { return };
    if agent.is_some_and(|a| a != view.agent) {
        return;
    }
    // The run selected stays selected as new ones arrive above it.
    let id = view.runs.as_ref().and_then(|r| r.get(view.selected)).map(|r| r.id);
    view.selected = id.and_then(|id| runs.iter().position(|r| r.id == id)).unwrap_or(0);
    view.runs = Some(runs);
}

pub(super) fn on_log(state: &mut State, run: crate::protocol::gate::GateRun, log: String) {
    if let Some(view) = state.gates.as_mut().filter(|v| v.agent == run.agent) {
        view.log = Some((run.id, log));
        view.scroll = 0;
    }
}

/// An agent's gate mark changed: the tab open on it reads its runs again.
pub(super) fn on_mark_changed(state: &State, agent: &str, fx: &mut Vec<Effect>) {
    if state.gates.as_ref().is_some_and(|v| v.agent == agent) {
        ask_runs(agent, fx);
    }
}
