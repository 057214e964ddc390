//! The editing dialog's keys: a conflict's result by hand, a merge's commit message, a new agent's form, a
//! copy's name. `C-s` takes the text; a form that does not read stays open, its error on the status line.

use super::conflicts::current_resolver;
use super::editor_keys::to_textarea_input;
use super::msg::Effect;
use super::state::{Dialog, EditPurpose, State};
use crate::config::keymap::Action;
use crate::conflict::Choice;
use crate::key::Key;
use crate::protocol::Command;

pub(super) fn on_edit_key(state: &mut State, key: Key, action: Option<Action>, fx: &mut Vec<Effect>) {
    let Some(Dialog::Edit { purpose, editor }) = &mut state.dialog else { return };
    match action {
        Some(Action::Send) => {
            let text = editor.lines().join("\n");
            let command = match purpose.clone() {
                EditPurpose::NewAgent => super::new_agent::parse(&text),
                EditPurpose::Duplicate { from } => super::new_agent::parse_copy(&text, &from),
                EditPurpose::Rename { from } => super::new_agent::parse_rename(&text, &from),
                EditPurpose::MergeMessage { name, into_agent } => {
                    let message = (!text.trim().is_empty()).then_some(text);
                    Ok(Command::Merge { name, into_agent, message, skip_gates: true })
                }
                EditPurpose::ConflictResult => {
                    state.dialog = None;
                    let mut text = text;
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    if let Some((hunk, resolver)) = current_resolver(state) {
                        if let Err(e) = resolver.choose(hunk, Choice::Edit(text.into_bytes())) {
                            state.status = Some((e, true));
                        }
                    }
                    return;
                }
            };
            match command {
                Ok(command) => {
                    state.dialog = None;
                    fx.push(Effect::Engine(command));
                }
                Err(e) => state.status = Some((e, true)),
            }
        }
        Some(Action::Cancel) => state.dialog = None,
        _ => {
            editor.input(to_textarea_input(key));
        }
    }
}
