//! The conflicts view: a merge's conflicted files, each resolved hunk by hunk (or a side taken), edited, written
//! and staged, and the merge finished or aborted.

use super::msg::Effect;
use super::roster::on_roster_action;
use super::state::{Confirmed, Dialog, EditPurpose, State, WellTab};
use crate::config::keymap::Action;
use crate::conflict::{Choice, Resolver, WholeFile};
use crate::protocol::git::Side;
use crate::protocol::Command;
use ratatui_textarea::TextArea;

/// Ask the engine for the conflicted file on screen when it changes.
pub(super) fn sync_conflicts(state: &mut State, fx: &mut Vec<Effect>) {
    let Some(view) = &mut state.conflicts else { return };
    view.file = view.file.min(view.files.len().saturating_sub(1));
    let Some(f) = view.files.get(view.file) else { return };
    let loaded = view.loaded.as_ref().is_some_and(|(p, _)| *p == f.path);
    if !loaded && view.requested.as_ref() != Some(&f.path) {
        view.requested = Some(f.path.clone());
        view.hunk = 0;
        if f.kind.has_markers() {
            fx.push(Effect::Engine(Command::ReadConflict { name: view.agent.clone(), path: f.path.clone() }));
        }
    }
}

/// The current conflict's index and the resolver of the file on screen, when it has one.
pub(super) fn current_resolver(state: &mut State) -> Option<(usize, &mut Resolver)> {
    let view = state.conflicts.as_mut()?;
    let hunk = view.hunk;
    match view.loaded.as_mut() {
        Some((_, Ok(r))) => Some((hunk, r)),
        _ => None,
    }
}

pub(super) fn on_conflict_action(state: &mut State, action: Action, fx: &mut Vec<Effect>) {
    let Some(view) = state.conflicts.as_mut() else { return };
    let name = view.agent.clone();
    let file = view.files.get(view.file).cloned();
    let markers = file.as_ref().is_some_and(|f| f.kind.has_markers());
    let engine = |fx: &mut Vec<Effect>, c: Command| fx.push(Effect::Engine(c));
    let mut problem: Option<String> = None;
    match action {
        Action::NextFile => {
            if view.file + 1 < view.files.len() {
                view.file += 1;
            }
        }
        Action::PrevFile => view.file = view.file.saturating_sub(1),
        Action::NextConflict | Action::PrevConflict => {
            let count = match &view.loaded {
                Some((_, Ok(r))) => r.len(),
                _ => 0,
            };
            view.hunk = match action {
                Action::NextConflict => (view.hunk + 1).min(count.saturating_sub(1)),
                _ => view.hunk.saturating_sub(1),
            };
        }
        Action::TakeOurs | Action::TakeTheirs if !markers => {
            if let Some(f) = file {
                let side = if action == Action::TakeOurs { Side::Ours } else { Side::Theirs };
                engine(fx, Command::TakeSide { name, path: f.path, side });
            }
        }
        Action::TakeOurs | Action::TakeTheirs | Action::TakeBase | Action::TakeBoth | Action::TakeBothReversed => {
            let choice = match action {
                Action::TakeOurs => Choice::Ours,
                Action::TakeTheirs => Choice::Theirs,
                Action::TakeBase => Choice::Base,
                Action::TakeBoth => Choice::Both,
                _ => Choice::BothReversed,
            };
            match current_resolver(state) {
                Some((hunk, r)) => {
                    if let Err(e) = r.choose(hunk, choice) {
                        problem = Some(e);
                    } else if let Some(v) = state.conflicts.as_mut() {
                        // On to the next unresolved conflict, as lazygit does.
                        if let Some((_, Ok(r))) = &v.loaded {
                            if let Some(next) = (0..r.len()).find(|i| r.choice(*i).is_none()) {
                                v.hunk = next;
                            }
                        }
                    }
                }
                None => problem = Some("nothing to resolve here: pick a file with conflict markers".into()),
            }
        }
        Action::EditConflict => match current_resolver(state) {
            Some((hunk, r)) => {
                let region = r.conflicts().get(hunk).map(|c| (*c).clone());
                if let Some(c) = region {
                    let start = r.choice(hunk).map(|ch| Resolver::resolution(&c, ch)).unwrap_or_else(|| c.ours.clone());
                    let text = String::from_utf8_lossy(&start).into_owned();
                    let lines: Vec<String> =
                        text.strip_suffix('\n').unwrap_or(&text).lines().map(str::to_string).collect();
                    let mut editor = TextArea::new(if lines.is_empty() { vec![String::new()] } else { lines });
                    editor.move_cursor(ratatui_textarea::CursorMove::Bottom);
                    editor.move_cursor(ratatui_textarea::CursorMove::End);
                    state.dialog =
                        Some(Dialog::Edit { purpose: EditPurpose::ConflictResult, editor: Box::new(editor) });
                }
            }
            None => problem = Some("nothing to edit here".into()),
        },
        Action::Undo | Action::Redo => {
            if let Some((_, r)) = current_resolver(state) {
                let done = if action == Action::Undo { r.undo() } else { r.redo() };
                if !done {
                    problem = Some(format!("nothing to {}", if action == Action::Undo { "undo" } else { "redo" }));
                }
            }
        }
        Action::WholeOurs | Action::WholeTheirs | Action::WholeUnion => {
            let whole = match action {
                Action::WholeOurs => WholeFile::Ours,
                Action::WholeTheirs => WholeFile::Theirs,
                _ => WholeFile::Union,
            };
            if let Some((_, r)) = current_resolver(state) {
                r.whole_file(whole);
            }
        }
        Action::WriteFile => match (current_resolver(state), file) {
            (Some((_, r)), Some(f)) => {
                if r.unresolved() > 0 {
                    problem = Some(format!(
                        "{} of {} still unresolved",
                        crate::text::counted(r.unresolved(), "conflict"),
                        f.path
                    ));
                } else {
                    let content = r.result();
                    engine(fx, Command::StageResolved { name, path: f.path, content });
                }
            }
            _ => problem = Some("pick ours (o) or theirs (t) for this file".into()),
        },
        Action::FinishMerge => {
            let left = view.files.len();
            if left > 0 {
                problem = Some(format!("{} still unresolved: write each with w", crate::text::counted(left, "file")));
            } else {
                state.dialog = Some(Dialog::Confirm {
                    title: "Finish the merge?".into(),
                    lines: vec!["Every conflict is resolved and staged: the merge commit is created now.".into()],
                    then: Confirmed::FinishMerge { name },
                });
            }
        }
        Action::AbortMerge => {
            state.dialog = Some(Dialog::Confirm {
                title: "Abort the merge?".into(),
                lines: vec![
                    "The worktree and index go back exactly to their state before the merge.".into(),
                    "Resolutions made here are lost.".into(),
                ],
                then: Confirmed::AbortMerge { name },
            });
        }
        Action::HandToAgent => {
            let hunk = view.hunk;
            match (&view.loaded, file) {
                (Some((path, Ok(r))), Some(_)) => {
                    if let Some(c) = r.conflicts().get(hunk) {
                        let text = format!(
                            "Merging left a conflict in {path} (conflict {} of {}). Resolve it and tell me when done. Here it is:\n{}",
                            hunk + 1,
                            r.len(),
                            String::from_utf8_lossy(&c.raw())
                        );
                        let mut editor = TextArea::new(text.lines().map(str::to_string).collect());
                        editor.move_cursor(ratatui_textarea::CursorMove::Bottom);
                        state.dialog = Some(Dialog::Steer { name, editor: Box::new(editor) });
                    }
                }
                _ => problem = Some("no conflict region here to hand over".into()),
            }
        }
        Action::Close => state.tab = WellTab::Terminal,
        other => on_roster_action(state, other, fx),
    }
    if let Some(p) = problem {
        state.status = Some((p, true));
    }
}
