//! A split well: two to four agents' live terminals side by side or stacked, each sized by its own pane. The
//! selected agent is the focused pane's; keys, scrolling and copy mode act on it alone.

use super::roster::select;
use super::state::{SplitView, State};
use crate::config::keymap::Action;

/// `split`, `split_stacked`, `next_pane` and `unsplit`.
pub(super) fn on_action(state: &mut State, action: Action) {
    let Some(selected) = state.selected_name() else { return };
    match action {
        Action::SplitSide | Action::SplitStacked => {
            let stacked = action == Action::SplitStacked;
            let mut split =
                state.split.take().unwrap_or(SplitView { agents: vec![selected.clone()], stacked, focus: 0 });
            split.stacked = stacked;
            if split.agents.len() >= crate::protocol::MAX_PANES {
                state.status = Some((format!("{} panes at most", crate::protocol::MAX_PANES), true));
            } else {
                // The next agent after the selected one (in roster order) that no pane shows.
                let n = state.agents.len();
                let from = state.selected;
                let next = (1..n)
                    .map(|i| &state.agents[(from + i) % n].info.name)
                    .find(|name| !split.agents.contains(name))
                    .cloned();
                match next {
                    Some(name) => split.agents.push(name),
                    None => state.status = Some(("every agent is shown already".into(), false)),
                }
            }
            state.well_open = true;
            state.split = (split.agents.len() > 1).then_some(split);
        }
        Action::NextPane => {
            let Some(split) = state.split.as_mut() else { return };
            split.focus = (split.focus + 1) % split.agents.len();
            let name = split.agents[split.focus].clone();
            if let Some(i) = state.agents.iter().position(|a| a.info.name == name) {
                select(state, i);
            }
        }
        Action::Unsplit => state.split = None,
        _ => {}
    }
}

/// After any change: the focused pane shows the selected agent (another one selected takes its place, or
/// trades places with the pane that had it), and agents no longer in the crew leave their panes.
pub(super) fn sync(state: &mut State) {
    let Some(selected) = state.selected_name() else {
        state.split = None;
        return;
    };
    let names: Vec<String> = state.agents.iter().map(|a| a.info.name.clone()).collect();
    let Some(split) = state.split.as_mut() else { return };
    split.agents.retain(|a| names.contains(a));
    split.focus = split.focus.min(split.agents.len().saturating_sub(1));
    match split.agents.iter().position(|a| *a == selected) {
        Some(i) => split.focus = i,
        None if !split.agents.is_empty() => split.agents[split.focus] = selected,
        None => {}
    }
    if split.agents.len() < 2 {
        state.split = None;
    }
}
