//! `update`: messages in, state changes and effects out. Pure: the engine, the terminal and the clock are
//! outside, so every key sequence can be tested without them.

use ratatui_textarea::{Input, Key as TaKey, TextArea};

use super::state::{AgentView, Confirmed, ConflictView, Dialog, EditPurpose, State, TimelineView, WellTab};
use crate::config::keymap::{Action, Mode};
use crate::conflict::{Choice, Resolver, WholeFile};
use crate::key::{Key, KeyCode};
use crate::protocol::git::DiffBase;
use crate::protocol::git::Side;
use crate::protocol::{AgentState, Command, Event};

// Each message is moved once from the channel into `update`; boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(Key),
    Paste(String),
    /// Mouse wheel at a cell of the whole screen.
    Wheel {
        up: bool,
        col: u16,
        row: u16,
    },
    Resize(u16, u16),
    Engine(Event),
    Tick(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Engine(Command),
    /// Ring the operator's terminal bell.
    Bell,
    Quit,
}

/// How long a message stays on the status line (the key hints come back after it; `!` lists it still).
pub const STATUS_FOR_MS: u64 = 10_000;
/// How many messages the list keeps.
const MESSAGES_KEPT: usize = 200;

pub fn update(state: &mut State, msg: Msg) -> Vec<Effect> {
    let before = state.status.clone();
    let fx = update_inner(state, msg);
    // A message set before the first tick (the config's warnings at start) counts from then.
    let unrecorded = state.status.is_some() && state.status_at == 0 && state.now_ms > 0;
    if state.status != before || unrecorded {
        if let Some((text, error)) = &state.status {
            state.status_at = state.now_ms;
            state.messages.push_back((state.now_ms, text.clone(), *error));
            if state.messages.len() > MESSAGES_KEPT {
                state.messages.pop_front();
            }
        }
    }
    if state.status.is_some() && state.now_ms >= state.status_at + STATUS_FOR_MS {
        state.status = None;
    }
    fx
}

fn update_inner(state: &mut State, msg: Msg) -> Vec<Effect> {
    let mut fx = Vec::new();
    match msg {
        Msg::Key(key) => {
            if !matches!(state.dialog, Some(Dialog::Steer { .. })) {
                state.status = None;
            }
            on_key(state, key, &mut fx);
        }
        Msg::Paste(text) => on_paste(state, text, &mut fx),
        Msg::Wheel { up, col, row } => on_wheel(state, up, col, row, &mut fx),
        Msg::Resize(w, h) => state.size = (w, h),
        Msg::Engine(event) => on_event(state, event, &mut fx),
        Msg::Tick(now) => state.now_ms = now,
    }
    sync_watch(state, &mut fx);
    sync_timeline(state, &mut fx);
    sync_conflicts(state, &mut fx);
    super::mail::sync(state, &mut fx);
    fx
}

fn selected_name(state: &State) -> Option<String> {
    state.selected_agent().map(|a| a.info.name.clone())
}

/// Tell the engine which agent is on screen and how big its pane is, when that changes.
fn sync_watch(state: &mut State, fx: &mut Vec<Effect>) {
    let a = state.areas();
    let want = match (a.terminal, selected_name(state)) {
        (Some(t), Some(name)) if t.height > 0 => {
            let (rows, cols) = crate::protocol::clamp_size(t.height, t.width);
            (Some(name), rows, cols)
        }
        // Keep the last pane size so hidden agents are not squeezed.
        _ => (None, state.watching.as_ref().map_or(24, |w| w.1), state.watching.as_ref().map_or(80, |w| w.2)),
    };
    if state.watching.as_ref() != Some(&want) {
        fx.push(Effect::Engine(Command::Watch { name: want.0.clone(), rows: want.1, cols: want.2 }));
        state.watching = Some(want);
    }
}

fn terminal_rows(state: &State) -> u16 {
    state.areas().terminal.map_or(10, |t| t.height)
}

fn on_key(state: &mut State, key: Key, fx: &mut Vec<Effect>) {
    let mode = state.mode();
    let action = state.keymap.action(mode, key);
    match mode {
        Mode::Help => match action {
            Some(Action::Close) => state.dialog = None,
            Some(Action::ScrollDown) => state.help_scroll = state.help_scroll.saturating_add(1),
            Some(Action::ScrollUp) => state.help_scroll = state.help_scroll.saturating_sub(1),
            _ => {}
        },
        Mode::Confirm => match action {
            Some(Action::Confirm) => {
                if let Some(Dialog::Confirm { then, .. }) = state.dialog.take() {
                    confirmed(state, then, fx);
                }
            }
            Some(Action::Cancel) => state.dialog = None,
            _ => {}
        },
        Mode::Steer => on_steer_key(state, key, action, fx),
        Mode::Attached => match (action, selected_name(state)) {
            (Some(Action::Detach), _) => state.attached = false,
            (_, Some(name)) => fx.push(Effect::Engine(Command::Key { name, key })),
            (_, None) => state.attached = false,
        },
        Mode::Roster => {
            if let Some(action) = action {
                on_roster_action(state, action, fx);
            }
        }
        Mode::Timeline => {
            if let Some(action) = action {
                on_timeline_action(state, action, fx);
            }
        }
        Mode::Conflicts => {
            if let Some(action) = action {
                on_conflict_action(state, action, fx);
            }
        }
        Mode::Edit => on_edit_key(state, key, action, fx),
        Mode::Mail => {
            if let Some(action) = action {
                if !super::mail::on_action(state, action, fx) {
                    on_roster_action(state, action, fx);
                }
            }
        }
        Mode::Compose => super::mail::on_compose_key(state, key, action, fx),
    }
}

/// Ask the engine for the conflicted file on screen when it changes.
fn sync_conflicts(state: &mut State, fx: &mut Vec<Effect>) {
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

fn on_edit_key(state: &mut State, key: Key, action: Option<Action>, fx: &mut Vec<Effect>) {
    let Some(Dialog::Edit { purpose, editor }) = &mut state.dialog else { return };
    match action {
        Some(Action::Send) => {
            let lines = editor.lines().join("\n");
            let purpose = purpose.clone();
            state.dialog = None;
            match purpose {
                EditPurpose::ConflictResult => {
                    let mut text = lines;
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    if let Some((hunk, resolver)) = current_resolver(state) {
                        if let Err(e) = resolver.choose(hunk, Choice::Edit(text.into_bytes())) {
                            state.status = Some((e, true));
                        }
                    }
                }
                EditPurpose::MergeMessage { name, into_agent } => {
                    let message = (!lines.trim().is_empty()).then_some(lines);
                    fx.push(Effect::Engine(Command::Merge { name, into_agent, message }));
                }
            }
        }
        Some(Action::Cancel) => state.dialog = None,
        _ => {
            editor.input(to_textarea_input(key));
        }
    }
}

/// The current conflict's index and the resolver of the file on screen, when it has one.
fn current_resolver(state: &mut State) -> Option<(usize, &mut Resolver)> {
    let view = state.conflicts.as_mut()?;
    let hunk = view.hunk;
    match view.loaded.as_mut() {
        Some((_, Ok(r))) => Some((hunk, r)),
        _ => None,
    }
}

fn on_conflict_action(state: &mut State, action: Action, fx: &mut Vec<Effect>) {
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

/// Keep the timeline view on the selected agent and ask the engine for the diff it shows.
fn sync_timeline(state: &mut State, fx: &mut Vec<Effect>) {
    let name = selected_name(state);
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
fn selected_checkpoint(state: &State) -> Option<u32> {
    state.selected_agent()?.checkpoints.get(state.timeline.selected).map(|c| c.n)
}

/// The files of the diff on screen.
fn diff_files(state: &State) -> Vec<String> {
    state.timeline.diff.as_ref().map(|d| d.3.iter().map(|f| f.path.clone()).collect()).unwrap_or_default()
}

fn on_timeline_action(state: &mut State, action: Action, fx: &mut Vec<Effect>) {
    let Some(name) = selected_name(state) else {
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

fn on_roster_action(state: &mut State, action: Action, fx: &mut Vec<Effect>) {
    let n = state.agents.len();
    let name = selected_name(state);
    let engine = |fx: &mut Vec<Effect>, c: Command| fx.push(Effect::Engine(c));
    match action {
        Action::SelectNext if n > 0 => select(state, (state.selected + 1).min(n - 1)),
        Action::SelectPrev => select(state, state.selected.saturating_sub(1)),
        Action::SelectFirst => select(state, 0),
        Action::SelectLast if n > 0 => select(state, n - 1),
        Action::ToggleWell => state.well_open = !state.well_open,
        Action::OpenTimeline => {
            state.tab = WellTab::Timeline;
            state.well_open = true;
        }
        Action::OpenMail => super::mail::open(state, false),
        Action::Mailbox => super::mail::open(state, true),
        Action::Compose => {
            state.tab = WellTab::Mail;
            state.well_open = true;
            super::mail::on_action(state, Action::Compose, fx);
        }
        Action::Reply => super::mail::reply_from_roster(state),
        Action::Help => {
            state.help_scroll = 0;
            state.dialog = Some(Dialog::Help);
        }
        Action::Messages => {
            state.help_scroll = 0;
            state.dialog = Some(Dialog::Messages);
        }
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
        Action::PageUp => engine(fx, Command::Scroll { name, lines: terminal_rows(state) as i32 - 1 }),
        Action::PageDown => engine(fx, Command::Scroll { name, lines: -(terminal_rows(state) as i32 - 1) }),
        Action::ScrollBottom => engine(fx, Command::ScrollBottom { name }),
        _ => {}
    }
}

/// The answer to a merge check: why it cannot run, that there is nothing to merge, or the question (with what
/// it would commit and what it overlaps).
fn merge_checked(state: &mut State, name: String, into_agent: bool, check: crate::protocol::git::Preflight) {
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
    if let Some((others, conflicts)) = state.overlap_of(&name) {
        let how = if conflicts { "would conflict with" } else { "overlaps" };
        lines.push(format!("Its work {how}: {}.", others.join(", ")));
    }
    if !state.overlaps.merge_order.is_empty() {
        lines.push(format!("Suggested merge order: {}.", state.overlaps.merge_order.join(", ")));
    }
    let title = if into_agent { format!("Merge {base} into {name}?") } else { format!("Merge {name} into {base}?") };
    state.dialog = Some(Dialog::Confirm { title, lines, then: Confirmed::Merge { name, into_agent } });
}

fn select(state: &mut State, index: usize) {
    state.selected = index;
    if let Some(a) = state.agents.get_mut(index) {
        a.attention = false;
    }
}

fn confirmed(state: &mut State, then: Confirmed, fx: &mut Vec<Effect>) {
    match then {
        Confirmed::Quit => {
            state.quitting = true;
            state.status = Some(("stopping agents…".into(), false));
            fx.push(Effect::Engine(Command::Shutdown));
        }
        Confirmed::Remove { name, force } => fx.push(Effect::Engine(Command::Remove { name, force })),
        Confirmed::Rollback { name, n, files } => fx.push(Effect::Engine(Command::Rollback { name, n, files })),
        Confirmed::UndoRollback { name } => fx.push(Effect::Engine(Command::UndoRollback { name })),
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

pub(super) fn to_textarea_input(key: Key) -> Input {
    let k = match key.code {
        KeyCode::Char(c) => TaKey::Char(c),
        KeyCode::Enter => TaKey::Enter,
        KeyCode::Tab => TaKey::Tab,
        KeyCode::Backspace => TaKey::Backspace,
        KeyCode::Esc => TaKey::Esc,
        KeyCode::Up => TaKey::Up,
        KeyCode::Down => TaKey::Down,
        KeyCode::Left => TaKey::Left,
        KeyCode::Right => TaKey::Right,
        KeyCode::Home => TaKey::Home,
        KeyCode::End => TaKey::End,
        KeyCode::PageUp => TaKey::PageUp,
        KeyCode::PageDown => TaKey::PageDown,
        KeyCode::Delete => TaKey::Delete,
        KeyCode::F(n) => TaKey::F(n),
        KeyCode::Insert => TaKey::Null,
    };
    Input { key: k, ctrl: key.mods.ctrl(), alt: key.mods.alt(), shift: key.mods.shift() }
}

fn on_steer_key(state: &mut State, key: Key, action: Option<Action>, fx: &mut Vec<Effect>) {
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

fn on_paste(state: &mut State, text: String, fx: &mut Vec<Effect>) {
    match (&mut state.dialog, state.attached) {
        (Some(Dialog::Steer { editor, .. }), _) => {
            editor.insert_str(text.replace("\r\n", "\n"));
        }
        (Some(Dialog::Compose(c)), _) => super::mail::on_compose_paste(c, &text),
        (None, true) => {
            if let Some(name) = selected_name(state) {
                fx.push(Effect::Engine(Command::Paste { name, text }));
            }
        }
        _ => {}
    }
}

fn on_wheel(state: &mut State, up: bool, col: u16, row: u16, fx: &mut Vec<Effect>) {
    if state.dialog.is_some() {
        return;
    }
    let a = state.areas();
    let inside = |r: ratatui::layout::Rect| col >= r.x && col < r.right() && row >= r.y && row < r.bottom();
    if let (Some(t), Some(name)) = (a.terminal, selected_name(state)) {
        if inside(t) {
            let cmd = if state.attached {
                Command::Wheel { name, up, col: col - t.x, row: row - t.y }
            } else {
                Command::Scroll { name, lines: if up { 3 } else { -3 } }
            };
            fx.push(Effect::Engine(cmd));
            return;
        }
    }
    if inside(a.roster) && !state.attached {
        let action = if up { Action::SelectPrev } else { Action::SelectNext };
        on_roster_action(state, action, fx);
    }
}

fn on_event(state: &mut State, event: Event, fx: &mut Vec<Effect>) {
    match event {
        Event::Agent(info) => {
            let selected = state.selected;
            match state.agents.iter_mut().position(|a| a.info.name == info.name) {
                Some(i) => {
                    let view = &mut state.agents[i];
                    let newly_waiting = info.state == AgentState::Waiting && view.info.state != AgentState::Waiting;
                    if newly_waiting {
                        if i != selected || !state.attached {
                            view.attention = true;
                        }
                        if state.bell_on_waiting {
                            fx.push(Effect::Bell);
                        }
                    }
                    if !info.state.is_running() && state.attached && i == selected {
                        state.attached = false;
                    }
                    view.info = info;
                }
                None => state.agents.push(AgentView { info, screen: None, checkpoints: Vec::new(), attention: false }),
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
            if let Some(a) = state.agents.iter_mut().find(|a| a.info.name == name) {
                a.screen = Some(std::sync::Arc::new(screen));
            }
        }
        Event::Bell { name } => {
            let selected = state.selected;
            if let Some((i, a)) = state.agents.iter_mut().enumerate().find(|(_, a)| a.info.name == name) {
                if i != selected {
                    a.attention = true;
                }
            }
        }
        Event::Notification { name, text } => state.status = Some((format!("{name}: {text}"), false)),
        Event::RemoveCheck { name, status } => {
            let mut lines = vec![format!("Remove agent {name}, its worktree and its branch muster/{name}?")];
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keymap::Keymap;
    use crate::config::theme::{ColorMode, Theme};
    use crate::protocol::AgentInfo;

    pub fn info(name: &str, state: AgentState) -> AgentInfo {
        AgentInfo { worktree: "/tmp/x".into(), port_base: 20000, ..AgentInfo::new(name, "demo", state) }
    }

    fn state_with(agents: &[(&str, AgentState)]) -> State {
        let mut s =
            State::new("repo".into(), Keymap::builtin(), Theme::builtin("default", ColorMode::NoColor), (120, 40));
        for (n, st) in agents {
            update(&mut s, Msg::Engine(Event::Agent(info(n, *st))));
        }
        s
    }

    fn key(s: &str) -> Msg {
        Msg::Key(Key::parse(s).unwrap())
    }

    fn engine_cmds(fx: &[Effect]) -> Vec<Command> {
        fx.iter().filter_map(|e| if let Effect::Engine(c) = e { Some(c.clone()) } else { None }).collect()
    }

    #[test]
    fn selection_moves_and_watch_follows() {
        let mut s = state_with(&[("a", AgentState::Busy), ("b", AgentState::Idle)]);
        assert_eq!(s.watching.as_ref().unwrap().0.as_deref(), Some("a"));
        let fx = update(&mut s, key("j"));
        assert_eq!(s.selected, 1);
        assert!(matches!(&engine_cmds(&fx)[..], [Command::Watch { name: Some(n), rows: 35, cols: 120 }] if n == "b"));
        update(&mut s, key("j"));
        assert_eq!(s.selected, 1);
        update(&mut s, key("k"));
        assert_eq!(s.selected, 0);
        // Collapsing the well stops watching.
        let fx = update(&mut s, key("space"));
        assert!(matches!(&engine_cmds(&fx)[..], [Command::Watch { name: None, .. }]));
    }

    #[test]
    fn attach_sends_every_key_but_detach() {
        let mut s = state_with(&[("a", AgentState::Busy)]);
        update(&mut s, key("enter"));
        assert!(s.attached);
        let fx = update(&mut s, key("q"));
        assert_eq!(engine_cmds(&fx), vec![Command::Key { name: "a".into(), key: Key::char('q') }]);
        let fx = update(&mut s, key("C-c"));
        assert_eq!(engine_cmds(&fx), vec![Command::Key { name: "a".into(), key: Key::parse("C-c").unwrap() }]);
        let fx = update(&mut s, Msg::Paste("x\ny".into()));
        assert_eq!(engine_cmds(&fx), vec![Command::Paste { name: "a".into(), text: "x\ny".into() }]);
        update(&mut s, key("C-]"));
        assert!(!s.attached);
    }

    #[test]
    fn cannot_attach_to_an_exited_agent() {
        let mut s = state_with(&[("a", AgentState::Exited)]);
        update(&mut s, key("enter"));
        assert!(!s.attached);
        assert!(s.status.as_ref().unwrap().0.contains("not running"));
    }

    #[test]
    fn steer_composes_multiline_and_sends() {
        let mut s = state_with(&[("a", AgentState::Idle)]);
        let fx = update(&mut s, key("s"));
        assert_eq!(s.mode(), Mode::Steer);
        // Mail for the agent waits while its operator writes to it.
        assert_eq!(engine_cmds(&fx), vec![Command::Composing { name: Some("a".into()) }]);
        for c in "hi".chars() {
            update(&mut s, Msg::Key(Key::char(c)));
        }
        update(&mut s, key("C-j"));
        update(&mut s, Msg::Key(Key::char('x')));
        let fx = update(&mut s, key("enter"));
        assert_eq!(
            engine_cmds(&fx),
            vec![
                Command::Steer { name: "a".into(), text: "hi\nx".into(), force: false },
                Command::Composing { name: None }
            ]
        );
        assert_eq!(s.mode(), Mode::Roster);
        update(&mut s, key("s"));
        update(&mut s, key("esc"));
        assert_eq!(s.mode(), Mode::Roster);
    }

    #[test]
    fn pause_toggles() {
        let mut s = state_with(&[("a", AgentState::Busy)]);
        let fx = update(&mut s, key("p"));
        assert_eq!(engine_cmds(&fx), vec![Command::Pause { name: "a".into() }]);
        update(&mut s, Msg::Engine(Event::Agent(info("a", AgentState::Paused))));
        let fx = update(&mut s, key("p"));
        assert_eq!(engine_cmds(&fx), vec![Command::Resume { name: "a".into() }]);
    }

    #[test]
    fn quit_asks_while_agents_run() {
        let mut s = state_with(&[("a", AgentState::Busy)]);
        let fx = update(&mut s, key("q"));
        assert!(engine_cmds(&fx).is_empty());
        assert_eq!(s.mode(), Mode::Confirm);
        update(&mut s, key("n"));
        assert_eq!(s.mode(), Mode::Roster);
        update(&mut s, key("q"));
        let fx = update(&mut s, key("y"));
        assert_eq!(engine_cmds(&fx), vec![Command::Shutdown]);
        let fx = update(&mut s, Msg::Engine(Event::ShutdownComplete));
        assert_eq!(fx, vec![Effect::Quit]);
        // With nothing running, quitting needs no confirmation.
        let mut s = state_with(&[("a", AgentState::Exited)]);
        let fx = update(&mut s, key("q"));
        assert_eq!(engine_cmds(&fx), vec![Command::Shutdown]);
    }

    #[test]
    fn remove_confirms_and_forces_only_when_work_would_be_lost() {
        let mut s = state_with(&[("a", AgentState::Idle)]);
        let fx = update(&mut s, key("D"));
        assert_eq!(engine_cmds(&fx), vec![Command::CheckRemove { name: "a".into() }]);
        let status = crate::protocol::git::WorktreeStatus { changed_files: 2, unmerged_commits: 0 };
        update(&mut s, Msg::Engine(Event::RemoveCheck { name: "a".into(), status }));
        match &s.dialog {
            Some(Dialog::Confirm { lines, .. }) => assert!(lines[1].contains("2 changed files")),
            _ => panic!("no confirmation"),
        }
        let fx = update(&mut s, key("y"));
        assert_eq!(engine_cmds(&fx), vec![Command::Remove { name: "a".into(), force: true }]);
    }

    #[test]
    fn waiting_rings_the_bell_and_marks_attention() {
        let mut s = state_with(&[("a", AgentState::Busy), ("b", AgentState::Busy)]);
        let fx = update(&mut s, Msg::Engine(Event::Agent(info("b", AgentState::Waiting))));
        assert!(fx.contains(&Effect::Bell));
        assert!(s.agents[1].attention);
        // Staying in waiting does not ring again.
        let fx = update(&mut s, Msg::Engine(Event::Agent(info("b", AgentState::Waiting))));
        assert!(!fx.contains(&Effect::Bell));
        update(&mut s, key("j"));
        assert!(!s.agents[1].attention);
        s.bell_on_waiting = false;
        update(&mut s, Msg::Engine(Event::Agent(info("a", AgentState::Idle))));
        let fx = update(&mut s, Msg::Engine(Event::Agent(info("a", AgentState::Waiting))));
        assert!(!fx.contains(&Effect::Bell));
    }

    #[test]
    fn help_opens_and_closes() {
        let mut s = state_with(&[]);
        update(&mut s, key("?"));
        assert_eq!(s.mode(), Mode::Help);
        update(&mut s, key("j"));
        assert_eq!(s.mode(), Mode::Help);
        update(&mut s, key("esc"));
        assert_eq!(s.mode(), Mode::Roster);
    }

    #[test]
    fn wheel_scrolls_history_or_forwards_when_attached() {
        let mut s = state_with(&[("a", AgentState::Busy)]);
        let fx = update(&mut s, Msg::Wheel { up: true, col: 5, row: 20 });
        assert_eq!(engine_cmds(&fx), vec![Command::Scroll { name: "a".into(), lines: 3 }]);
        update(&mut s, key("enter"));
        let fx = update(&mut s, Msg::Wheel { up: false, col: 5, row: 20 });
        assert_eq!(engine_cmds(&fx), vec![Command::Wheel { name: "a".into(), up: false, col: 5, row: 17 }]);
    }

    #[test]
    fn small_terminal_drops_the_well_and_stops_watching() {
        let mut s = state_with(&[("a", AgentState::Busy)]);
        let fx = update(&mut s, Msg::Resize(60, 15));
        assert!(matches!(&engine_cmds(&fx)[..], [Command::Watch { name: None, .. }]));
        update(&mut s, key("enter"));
        assert!(s.attached);
    }

    #[test]
    fn removed_agent_fixes_selection() {
        let mut s = state_with(&[("a", AgentState::Busy), ("b", AgentState::Busy)]);
        let overlap =
            crate::protocol::git::Overlap { a: "a".into(), b: "b".into(), files: vec!["f".into()], conflicts: vec![] };
        let report =
            crate::protocol::git::OverlapReport { overlaps: vec![overlap], merge_order: vec!["a".into(), "b".into()] };
        update(&mut s, Msg::Engine(Event::Overlaps(report)));
        assert!(s.overlap_of("a").is_some());
        update(&mut s, key("j"));
        update(&mut s, Msg::Engine(Event::Removed { name: "b".into() }));
        assert_eq!(s.selected, 0);
        assert_eq!(s.agents.len(), 1);
        assert!(s.overlap_of("a").is_none(), "the warning about b went with b");
        assert_eq!(s.overlaps.merge_order, vec!["a".to_string()]);
    }

    #[test]
    fn the_timeline_keeps_its_checkpoint_when_a_new_one_comes_and_asks_its_diff_again() {
        use crate::protocol::git::Checkpoint;
        let cp = |n: u32| Checkpoint {
            n,
            id: format!("{n}"),
            time: 0,
            trigger: "turn".into(),
            head: String::new(),
            branch: String::new(),
            files: 1,
            added: 1,
            removed: 0,
            unsettled: vec![],
            skipped: vec![],
        };
        let mut s = state_with(&[("a", AgentState::Idle)]);
        let timeline = |cps: Vec<u32>| {
            Msg::Engine(Event::Timeline { name: "a".into(), checkpoints: cps.into_iter().map(cp).collect() })
        };
        update(&mut s, timeline(vec![3, 2, 1]));
        s.tab = WellTab::Timeline;
        s.timeline.agent = Some("a".into());
        s.timeline.selected = 1;
        let fx = update(&mut s, Msg::Tick(1));
        assert!(matches!(engine_cmds(&fx).as_slice(), [Command::CheckpointDiff { n: 2, .. }]));
        let fx = update(&mut s, timeline(vec![4, 3, 2, 1]));
        assert_eq!(s.timeline.selected, 2, "still checkpoint 2");
        assert!(
            matches!(engine_cmds(&fx).as_slice(), [Command::CheckpointDiff { n: 2, .. }]),
            "asked again: what it shows may have changed ({fx:?})"
        );
    }

    #[test]
    fn a_message_leaves_the_status_line_after_a_while_and_stays_listed() {
        let mut s = state_with(&[("a", AgentState::Idle)]);
        update(&mut s, Msg::Tick(1_000));
        update(&mut s, Msg::Engine(Event::Message { text: "a: checkpoint 1 (key)".into(), error: false }));
        update(&mut s, Msg::Tick(1_000 + STATUS_FOR_MS - 1));
        assert!(s.status.is_some());
        update(&mut s, Msg::Tick(1_000 + STATUS_FOR_MS));
        assert!(s.status.is_none(), "the key hints come back");
        assert_eq!(s.messages.back().map(|m| m.1.as_str()), Some("a: checkpoint 1 (key)"));
        update(&mut s, key("!"));
        assert!(matches!(s.dialog, Some(Dialog::Messages)));
        update(&mut s, key("esc"));
        assert!(s.dialog.is_none());
    }

    #[test]
    fn a_merge_is_checked_before_anything_is_asked() {
        use crate::protocol::git::Preflight;
        let mut s = state_with(&[("a", AgentState::Idle)]);
        let fx = update(&mut s, key("m"));
        assert_eq!(engine_cmds(&fx), vec![Command::CheckMerge { name: "a".into(), into_agent: false }]);
        assert!(s.dialog.is_none(), "nothing asked before the answer");
        let answer = |check| Msg::Engine(Event::MergeCheck { name: "a".into(), into_agent: false, check });
        let refused = Preflight { refused: Some("/repo has uncommitted changes (x.txt)".into()), ..Default::default() };
        update(&mut s, answer(refused));
        assert!(s.dialog.is_none());
        assert!(
            matches!(&s.status, Some((t, true)) if t.contains("merge refused") && t.contains("x.txt")),
            "{:?}",
            s.status
        );
        update(&mut s, answer(Preflight { up_to_date: true, ..Default::default() }));
        assert!(s.dialog.is_none());
        assert!(matches!(&s.status, Some((t, false)) if t.contains("already up to date")), "{:?}", s.status);
        update(&mut s, answer(Preflight { untracked: vec!["notes.md".into(), "a.swp".into()], ..Default::default() }));
        match &s.dialog {
            Some(Dialog::Confirm { lines, then: Confirmed::Merge { .. }, .. }) => {
                assert!(lines.iter().any(|l| l.contains("New 2 files") && l.contains("notes.md, a.swp")), "{lines:?}")
            }
            other => panic!("{other:?}"),
        }
    }

    use crate::conflict::parse;

    fn conflicted() -> State {
        use crate::protocol::git::{ConflictFile, ConflictKind};
        let mut s = state_with(&[("a", AgentState::Idle), ("b", AgentState::Idle)]);
        let files = vec![
            ConflictFile { path: "f.txt".into(), kind: ConflictKind::Content, unresolved: None },
            ConflictFile { path: "g.bin".into(), kind: ConflictKind::Binary, unresolved: None },
        ];
        let fx = update(&mut s, Msg::Engine(Event::MergeConflicts { name: "b".into(), into_agent: false, files }));
        // The merging agent is selected (so the well watches it) and its first file is read.
        assert!(engine_cmds(&fx).contains(&Command::ReadConflict { name: "b".into(), path: "f.txt".into() }));
        assert_eq!((s.selected, s.mode()), (1, Mode::Conflicts));
        let bytes =
            b"x\n<<<<<<< main\nO\n=======\nT\n>>>>>>> muster/b\ny\n<<<<<<< main\nO2\n=======\nT2\n>>>>>>> muster/b\n"
                .to_vec();
        update(
            &mut s,
            Msg::Engine(Event::ConflictFile { name: "b".into(), path: "f.txt".into(), parsed: parse(&bytes, 7) }),
        );
        s
    }

    fn result(s: &State) -> String {
        match &s.conflicts.as_ref().unwrap().loaded {
            Some((_, Ok(r))) => String::from_utf8(r.result()).unwrap(),
            other => panic!("not loaded: {other:?}"),
        }
    }

    #[test]
    fn conflict_keys_resolve_edit_undo_and_write() {
        let mut s = conflicted();
        // Writing with conflicts left is refused.
        let fx = update(&mut s, key("w"));
        assert!(engine_cmds(&fx).is_empty());
        assert!(s.status.as_ref().unwrap().0.contains("2 conflicts of f.txt still unresolved"));
        update(&mut s, key("o"));
        assert_eq!(s.conflicts.as_ref().unwrap().hunk, 1, "moves on to the next unresolved conflict");
        update(&mut s, key("e"));
        assert_eq!(s.mode(), Mode::Edit);
        for c in "hand".chars() {
            update(&mut s, Msg::Key(Key::char(c)));
        }
        update(&mut s, key("C-s"));
        assert_eq!(result(&s), "x\nO\ny\nO2hand\n");
        update(&mut s, key("u"));
        assert!(result(&s).contains("<<<<<<< main\nO2"));
        update(&mut s, key("C-r"));
        assert_eq!(result(&s), "x\nO\ny\nO2hand\n");
        update(&mut s, key("U"));
        assert_eq!(result(&s), "x\nO\nT\ny\nO2\nT2\n");
        let fx = update(&mut s, key("w"));
        assert_eq!(
            engine_cmds(&fx),
            vec![Command::StageResolved {
                name: "b".into(),
                path: "f.txt".into(),
                content: b"x\nO\nT\ny\nO2\nT2\n".to_vec()
            }]
        );
    }

    #[test]
    fn binary_files_take_a_side_and_finish_waits_for_every_file() {
        let mut s = conflicted();
        update(&mut s, key("j"));
        let fx = update(&mut s, key("t"));
        assert_eq!(
            engine_cmds(&fx),
            vec![Command::TakeSide { name: "b".into(), path: "g.bin".into(), side: Side::Theirs }]
        );
        update(&mut s, key("F"));
        assert!(s.dialog.is_none());
        assert!(s.status.as_ref().unwrap().0.contains("2 files still unresolved"));
        update(&mut s, Msg::Engine(Event::MergeConflicts { name: "b".into(), into_agent: false, files: vec![] }));
        update(&mut s, key("F"));
        let fx = update(&mut s, key("y"));
        assert_eq!(engine_cmds(&fx), vec![Command::FinishMerge { name: "b".into(), message: None }]);
        update(&mut s, Msg::Engine(Event::MergeEnded { name: "b".into(), text: "merge committed".into() }));
        assert!(s.conflicts.is_none());
        assert_eq!(s.mode(), Mode::Roster);
    }

    #[test]
    fn abort_asks_and_hand_off_prefills_a_steer_message() {
        let mut s = conflicted();
        update(&mut s, key("X"));
        let fx = update(&mut s, key("y"));
        assert_eq!(engine_cmds(&fx), vec![Command::AbortMerge { name: "b".into() }]);
        update(&mut s, key("h"));
        // The conflict goes to the merging agent, or to another one chosen with tab.
        update(&mut s, key("tab"));
        match &s.dialog {
            Some(Dialog::Steer { name, editor }) => {
                assert_eq!(name, "a");
                let text = editor.lines().join("\n");
                assert!(
                    text.contains("conflict in f.txt (conflict 1 of 2)") && text.contains("<<<<<<< main"),
                    "{text}"
                );
            }
            other => panic!("no steer dialog: {other:?}"),
        }
    }

    #[test]
    fn malformed_conflict_file_is_shown_not_resolved() {
        let mut s = conflicted();
        let bytes = b"<<<<<<< main\nO\n".to_vec();
        update(
            &mut s,
            Msg::Engine(Event::ConflictFile { name: "b".into(), path: "f.txt".into(), parsed: parse(&bytes, 7) }),
        );
        match &s.conflicts.as_ref().unwrap().loaded {
            Some((_, Err(e))) => assert!(e.contains("f.txt:1: unterminated"), "{e}"),
            other => panic!("{other:?}"),
        }
        let fx = update(&mut s, key("w"));
        assert!(engine_cmds(&fx).is_empty());
    }
}
