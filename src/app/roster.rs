//! The roster's keys: selecting, attaching, starting and stopping agents, checkpoints, merges and removal, and
//! what the operator confirms.

use super::msg::Effect;
use super::state::{Confirmed, Dialog, EditPurpose, State, WellTab};
use crate::config::keymap::{Action, Mode};
use crate::protocol::{AgentState, Command};
use ratatui_textarea::TextArea;

pub(super) fn on_roster_action(state: &mut State, action: Action, fx: &mut Vec<Effect>) {
    let name = state.selected_name();
    let engine = |fx: &mut Vec<Effect>, c: Command| fx.push(Effect::Engine(c));
    match action {
        // The roster's order, which is a tree's: children under their parent, a fold's out of sight.
        Action::SelectNext | Action::SelectPrev | Action::SelectFirst | Action::SelectLast => {
            let shown: Vec<usize> = state.roster_rows().into_iter().flatten().collect();
            let at = shown.iter().position(|&i| i == state.selected);
            let to = match (action, at) {
                (Action::SelectNext, Some(at)) => shown.get(at + 1).or(shown.last()),
                (Action::SelectPrev, Some(at)) => shown.get(at.saturating_sub(1)),
                (Action::SelectLast, _) => shown.last(),
                _ => shown.first(),
            };
            if let Some(&to) = to {
                select(state, to);
            }
        }
        Action::TreeOut | Action::TreeIn => tree_key(state, action),
        Action::ToggleWell => state.well_open = !state.well_open,
        Action::OpenTimeline => {
            state.tab = WellTab::Timeline;
            state.well_open = true;
        }
        Action::CopyMode => super::copy::enter(state, false),
        Action::SplitSide | Action::SplitStacked | Action::NextPane | Action::Unsplit => {
            super::split::on_action(state, action)
        }
        Action::Review => super::review::open(state, fx),
        Action::Gates => super::gates::open(state, fx),
        Action::Findings => super::findings::open(state, fx),
        Action::Search => super::copy::enter(state, true),
        Action::OpenMail => super::mail::open(state, false),
        Action::Mailbox => super::mail::open(state, true),
        Action::Compose => {
            state.tab = WellTab::Mail;
            state.well_open = true;
            super::mail::on_action(state, Action::Compose, fx);
        }
        Action::Reply => super::mail::reply_from_roster(state),
        Action::Help => open_help(state),
        Action::Messages => {
            state.help_scroll = 0;
            state.dialog = Some(Dialog::Messages);
        }
        Action::DuplicateAgent => {
            if let Some(from) = state.selected_name() {
                let taken = |n: &str| state.agents.iter().any(|a| a.info.name == n);
                let free = (2..).map(|i| format!("{from}-{i}")).find(|n| !taken(n)).unwrap_or_default();
                let mut editor = TextArea::new(vec![format!("name = \"{free}\"")]);
                editor.move_cursor(ratatui_textarea::CursorMove::End);
                state.dialog =
                    Some(Dialog::Edit { purpose: EditPurpose::Duplicate { from }, editor: Box::new(editor) });
            }
        }
        Action::Rename => {
            let Some(agent) = state.selected_agent() else { return };
            let from = agent.info.name.clone();
            if agent.info.state.is_running() {
                state.status = Some((format!("{from} is running: stop it (x) first, then rename it"), true));
                return;
            }
            let mut editor = TextArea::new(vec![format!("name = \"{from}\"")]);
            editor.move_cursor(ratatui_textarea::CursorMove::End);
            editor.move_cursor(ratatui_textarea::CursorMove::Back);
            state.dialog = Some(Dialog::Edit { purpose: EditPurpose::Rename { from }, editor: Box::new(editor) });
        }
        Action::NewAgent => {
            let mut editor = TextArea::new(super::new_agent::template());
            editor.move_cursor(ratatui_textarea::CursorMove::Jump(0, 8));
            state.dialog = Some(Dialog::Edit { purpose: EditPurpose::NewAgent, editor: Box::new(editor) });
        }
        Action::StartAll => {
            // Pending agents are the plan's: W starts their wave.
            let names: Vec<String> = state
                .agents
                .iter()
                .filter(|a| !a.info.state.is_running() && !a.info.pending)
                .map(|a| a.info.name.clone())
                .collect();
            if names.is_empty() {
                state.status = Some(("every agent is running".into(), false));
            } else {
                let shown: Vec<String> = names.iter().take(12).cloned().collect();
                let more = names.len().saturating_sub(shown.len());
                let mut lines =
                    vec![shown.join(", ") + &if more > 0 { format!(" and {more} more") } else { String::new() }];
                lines.push("Each resumes its conversation where its CLI can (as R does).".into());
                let title = format!("Start {}?", crate::text::counted(names.len(), "agent"));
                state.dialog = Some(Dialog::Confirm { title, lines, then: Confirmed::StartAll { names } });
            }
        }
        Action::ApproveWave => approve_wave(state),
        Action::Quit if state.detaches => fx.push(Effect::Quit),
        Action::Quit | Action::StopCrew => {
            let running = state.running();
            if running == 0 {
                state.quitting = true;
                engine(fx, Command::Shutdown);
            } else {
                state.dialog = Some(Dialog::Confirm {
                    title: if state.detaches { "Stop the crew?".into() } else { "Quit muster?".into() },
                    lines: vec![
                        format!(
                            "{} will be checkpointed, then stopped (SIGTERM, SIGKILL).",
                            crate::text::counted(running, "running agent")
                        ),
                        "Their worktrees and branches stay; restart them later with their resume arguments.".into(),
                    ],
                    then: Confirmed::Quit,
                });
            }
        }
        _ => {}
    }
    let Some(name) = name else { return };
    let state_of = state.selected_agent().map(|a| a.info.state);
    match action {
        Action::Attach => {
            if state_of.is_some_and(AgentState::is_running) {
                state.attached = true;
                state.well_open = true;
                state.tab = WellTab::Terminal;
                engine(fx, Command::ScrollBottom { name });
            } else {
                state.status = Some((format!("{name} is not running: R restarts it"), true));
            }
        }
        Action::Steer => {
            if state_of.is_some_and(AgentState::is_running) {
                let mut editor = TextArea::default();
                editor.set_placeholder_text("message for the agent");
                state.dialog = Some(Dialog::Steer { name, editor: Box::new(editor) });
            } else {
                state.status = Some((format!("{name} is not running: R restarts it"), true));
            }
        }
        Action::Pause => match state_of {
            Some(AgentState::Paused) => engine(fx, Command::Resume { name }),
            Some(s) if s.is_running() => engine(fx, Command::Pause { name }),
            _ => {}
        },
        Action::Stop => engine(fx, Command::Stop { name }),
        Action::Checkpoint => engine(fx, Command::Checkpoint { name }),
        Action::Merge | Action::MergeIntoAgent => {
            // Checked first: nothing is asked for a merge that would be refused or has nothing to do.
            let into_agent = action == Action::MergeIntoAgent;
            state.status = Some((format!("{name}: checking the merge…"), false));
            engine(fx, Command::CheckMerge { name, into_agent });
        }
        Action::Restart => engine(fx, Command::Restart { name }),
        Action::Remove => engine(fx, Command::CheckRemove { name }),
        Action::ScrollUp => engine(fx, Command::Scroll { name, lines: 1 }),
        Action::ScrollDown => engine(fx, Command::Scroll { name, lines: -1 }),
        Action::PageUp => engine(fx, Command::Scroll { name, lines: state.terminal_rows() as i32 - 1 }),
        Action::PageDown => engine(fx, Command::Scroll { name, lines: -(state.terminal_rows() as i32 - 1) }),
        Action::ScrollBottom => engine(fx, Command::ScrollBottom { name }),
        _ => {}
    }
}

/// The answer to a merge check: why it cannot run, that there is nothing to merge, or the question (with what
/// it would commit and what it overlaps).
pub(super) fn merge_checked(state: &mut State, name: String, into_agent: bool, check: crate::protocol::git::Preflight) {
    if let Some(why) = check.refused {
        state.status = Some((format!("{name}: merge refused: {why}"), true));
        return;
    }
    if check.up_to_date {
        state.status = Some((format!("{name}: already up to date, nothing to merge"), false));
        return;
    }
    state.status = None;
    let base = state.agents.iter().find(|a| a.info.name == name).map(|a| a.info.base.clone()).unwrap_or_default();
    let branch = format!("muster/{name}");
    let mut lines = if into_agent {
        vec![
            format!("Merge {base} into {branch}, in the agent's worktree."),
            "The agent is paused during the merge and checkpointed first; its uncommitted work is committed on its \
             branch."
                .to_string(),
        ]
    } else {
        vec![
            format!("Merge {branch} into {base}, in the repository's main worktree."),
            "A checkpoint of the agent is taken first; its uncommitted work is committed on its branch.".to_string(),
        ]
    };
    if !check.untracked.is_empty() {
        let n = check.untracked.len();
        let shown: Vec<&str> = check.untracked.iter().take(8).map(String::as_str).collect();
        let more = if n > 8 { format!(" and {} more", n - 8) } else { String::new() };
        let files = if n == 1 { "file".to_string() } else { format!("{n} files") };
        lines.push(format!("New {files} git does not track yet will be committed: {}{more}.", shown.join(", ")));
    }
    if !check.outside_owns.is_empty() {
        let n = check.outside_owns.len();
        let shown: Vec<&str> = check.outside_owns.iter().take(8).map(String::as_str).collect();
        let more = if n > 8 { format!(" and {} more", n - 8) } else { String::new() };
        lines.push(format!("Outside its files (owns, shared): {}{more}.", shown.join(", ")));
    }
    if let Some((others, conflicts)) = state.overlap_of(&name) {
        let how = if conflicts { "would conflict with" } else { "overlaps" };
        lines.push(format!("Its work {how}: {}.", others.join(", ")));
    }
    if !state.overlaps.merge_order.is_empty() {
        lines.push(format!("Suggested merge order: {}.", state.overlaps.merge_order.join(", ")));
    }
    // Its merge gates ran on its worktree for this check: a red one makes the question an override.
    let red: Vec<String> = check
        .gates
        .iter()
        .filter(|(_, o, _)| *o != crate::protocol::gate::GateOutcome::Pass)
        .map(|(g, o, why)| format!("{g} {} ({why})", o.label()))
        .collect();
    if !check.gates.is_empty() {
        let all: Vec<String> = check.gates.iter().map(|(g, o, _)| format!("{g}: {}", o.label())).collect();
        lines.push(format!("Merge gates, run now on its worktree: {}.", all.join(", ")));
    }
    let title = match (red.is_empty(), into_agent) {
        (false, _) => format!("Gate {} — merge {name} into {base} anyway?", red.join(", ")),
        (true, true) => format!("Merge {base} into {name}?"),
        (true, false) => format!("Merge {name} into {base}?"),
    };
    state.dialog = Some(Dialog::Confirm { title, lines, then: Confirmed::Merge { name, into_agent } });
}

/// The modes whose keys the help of `mode` lists: its own, then the roster's for a view whose unbound keys work
/// as the roster's.
pub fn help_modes(mode: Mode) -> Vec<Mode> {
    match mode {
        Mode::Timeline | Mode::Conflicts | Mode::Mail | Mode::Review | Mode::Gates | Mode::Findings => {
            vec![mode, Mode::Roster]
        }
        // Attached, every key but one is the agent's: its help is the roster's, which says that key.
        Mode::Roster => vec![mode, Mode::Attached],
        _ => vec![mode],
    }
}

/// Lines of the help of `mode`: a heading and a line per bound action of each mode it lists, at most.
pub fn help_len(state: &State, mode: Mode) -> usize {
    let editor = if super::editor_keys::edits_text(mode) { 1 + super::editor_keys::EDITOR_KEYS.len() } else { 0 };
    help_modes(mode).iter().map(|m| 1 + state.keymap.bindings(*m).len()).sum::<usize>() + editor
}

/// The keys of the mode the operator is in, over whatever is open.
pub(super) fn open_help(state: &mut State) {
    state.help_scroll = 0;
    state.help = Some(state.mode());
}

/// `h`: fold the agent's children, or go to its parent; `l`: show them, or go to its first child.
fn tree_key(state: &mut State, action: Action) {
    let Some(name) = state.selected_name() else { return };
    let nodes = state.tree_nodes();
    let parent = crate::app::tree::ancestors(&nodes, &name).first().map(|p| p.to_string());
    let first_child = nodes.iter().position(|n| n.parent == Some(name.as_str()) && n.name != name);
    drop(nodes);
    let folded = state.folded.contains(&name);
    match (action, first_child, parent) {
        (Action::TreeOut, Some(_), _) if !folded => {
            state.folded.insert(name);
        }
        (Action::TreeOut, _, Some(parent)) => {
            if let Some(i) = state.agents.iter().position(|a| a.info.name == parent) {
                select(state, i);
            }
        }
        (Action::TreeIn, Some(_), _) if folded => {
            state.folded.remove(&name);
        }
        (Action::TreeIn, Some(child), _) => select(state, child),
        (Action::TreeOut, ..) => {
            state.status = Some((format!("{name} has no parent (an agent a lead spawned has one)"), false))
        }
        _ => state.status = Some((format!("{name} has no children (muster spawn, from inside it, starts one)"), false)),
    }
}

pub(super) fn select(state: &mut State, index: usize) {
    // What is selected is in sight: the folds above it open.
    if let Some(name) = state.agents.get(index).map(|a| a.info.name.clone()) {
        let nodes = state.tree_nodes();
        let above: Vec<String> = crate::app::tree::ancestors(&nodes, &name).iter().map(|a| a.to_string()).collect();
        drop(nodes);
        for a in above {
            state.folded.remove(&a);
        }
    }
    state.selected = index;
    if let Some(a) = state.agents.get_mut(index) {
        a.attention = false;
        a.unseen = false;
    }
}

pub(super) fn confirmed(state: &mut State, then: Confirmed, fx: &mut Vec<Effect>) {
    match then {
        Confirmed::Quit => {
            state.quitting = true;
            state.status = Some(("stopping agents…".into(), false));
            fx.push(Effect::Engine(Command::Shutdown));
        }
        Confirmed::ApproveWave { wave } => fx.push(Effect::Engine(Command::ApproveWave { wave })),
        Confirmed::StartAll { names } => {
            for name in names {
                fx.push(Effect::Engine(Command::Start { name, resume: true }));
            }
        }
        Confirmed::Remove { name, force } => fx.push(Effect::Engine(Command::Remove { name, force })),
        Confirmed::Rollback { name, n, files } => fx.push(Effect::Engine(Command::Rollback { name, n, files })),
        Confirmed::UndoRollback { name } => fx.push(Effect::Engine(Command::UndoRollback { name })),
        Confirmed::RestoreFinding { id } => {
            let op = crate::protocol::guard::GuardOp::Restore { id };
            fx.push(Effect::Engine(Command::Guard { op }))
        }
        Confirmed::Merge { name, into_agent } => {
            // The default message, for the person to edit before the merge runs.
            let base =
                state.agents.iter().find(|a| a.info.name == name).map(|a| a.info.base.clone()).unwrap_or_default();
            let branch = format!("muster/{name}");
            let message =
                if into_agent { format!("Merge {base} into {branch}") } else { format!("Merge {branch} into {base}") };
            let mut editor = TextArea::new(vec![message]);
            editor.move_cursor(ratatui_textarea::CursorMove::End);
            state.dialog = Some(Dialog::Edit {
                purpose: EditPurpose::MergeMessage { name, into_agent },
                editor: Box::new(editor),
            });
        }
        Confirmed::FinishMerge { name } => fx.push(Effect::Engine(Command::FinishMerge { name, message: None })),
        Confirmed::AbortMerge { name } => fx.push(Effect::Engine(Command::AbortMerge { name })),
        Confirmed::DropMail { copies } => {
            state.status = Some((format!("{} dropped", crate::text::counted(copies.len(), "dead letter")), false));
            fx.extend(copies.into_iter().map(|(id, recipient)| Effect::Engine(Command::MailDrop { id, recipient })));
        }
        Confirmed::SteerIntoDialog { name, text } => {
            state.status = Some((format!("sent to {name}"), false));
            fx.push(Effect::Engine(Command::Steer { name, text, force: true }));
        }
    }
}

/// `W` on a pending agent: its wave starts now, once the operator confirms with what is not done listed.
fn approve_wave(state: &mut State) {
    let Some(agent) = state.selected_agent() else { return };
    let (Some(wave), true) = (agent.info.wave, agent.info.pending) else {
        state.status = Some(("W starts a pending agent's wave: select one (·)".into(), true));
        return;
    };
    let pending: Vec<&crate::app::AgentView> =
        state.agents.iter().filter(|a| a.info.wave == Some(wave) && a.info.pending).collect();
    let mut lines =
        vec![format!("To start now: {}.", pending.iter().map(|a| a.info.name.as_str()).collect::<Vec<_>>().join(", "))];
    for a in &pending {
        lines.push(format!("{}: {}", a.info.name, a.info.why.trim_start_matches("pending: ")));
    }
    state.dialog =
        Some(Dialog::Confirm { title: format!("Start wave {wave}?"), lines, then: Confirmed::ApproveWave { wave } });
}
