//! Steering: the message the operator composes to type into an agent.

use super::editor_keys::to_textarea_input;
use super::msg::Effect;
use super::state::{Confirmed, Dialog, State};
use crate::config::keymap::Action;
use crate::key::Key;
use crate::protocol::{AgentState, Command};

pub(super) fn on_steer_key(state: &mut State, key: Key, action: Option<Action>, fx: &mut Vec<Effect>) {
    let Some(Dialog::Steer { name, editor }) = &mut state.dialog else {
        return;
    };
    match action {
        Some(Action::Send) => {
            let text = editor.lines().join("\n");
            if text.trim().is_empty() {
                return;
            }
            let name = name.clone();
            let waiting = state.agents.iter().any(|a| a.info.name == name && a.info.state == AgentState::Waiting);
            if waiting {
                // Typed into a permission or trust dialog, the message would answer it: ask first.
                state.dialog = Some(Dialog::Confirm {
                    title: format!("{name} is showing a dialog"),
                    lines: vec![
                        "It is waiting for an answer (a question, a permission or trust dialog).".into(),
                        "Your message would be typed into that dialog. Send it anyway?".into(),
                    ],
                    then: Confirmed::SteerIntoDialog { name, text },
                });
                return;
            }
            state.status = Some((format!("sent to {name}"), false));
            fx.push(Effect::Engine(Command::Steer { name, text, force: false }));
            state.dialog = None;
        }
        Some(Action::Newline) => editor.insert_newline(),
        Some(Action::NextTarget) => {
            // Any agent can take the message: cycle through the crew in roster order.
            let names: Vec<&String> = state.agents.iter().map(|a| &a.info.name).collect();
            if let Some(i) = names.iter().position(|n| *n == name) {
                *name = names[(i + 1) % names.len()].clone();
            }
        }
        Some(Action::Cancel) => state.dialog = None,
        _ => {
            editor.input(to_textarea_input(key));
        }
    }
}
