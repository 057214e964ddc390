//! `update`: messages in, state changes and effects out. Pure: the engine, the terminal and the clock are
//! outside, so every key sequence can be tested without them.

use super::conflicts::{on_conflict_action, sync_conflicts};
use super::edit::on_edit_key;
use super::events::on_event;
pub use super::msg::{Effect, Msg};
use super::roster::{confirmed, on_roster_action, open_help};
use super::state::{Dialog, State};
use super::steer::on_steer_key;
use super::timeline::{on_timeline_action, sync_timeline};
use crate::config::keymap::{Action, Mode};
use crate::key::Key;
use crate::protocol::Command;

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

pub(super) fn update_inner(state: &mut State, msg: Msg) -> Vec<Effect> {
    let mut fx = Vec::new();
    match msg {
        Msg::Key(key) => {
            if !matches!(state.dialog, Some(Dialog::Steer { .. })) {
                state.status = None;
            }
            on_key(state, key, &mut fx);
        }
        Msg::Paste(text) => on_paste(state, text, &mut fx),
        Msg::Wheel { up, col, row } => super::mouse::on_wheel(state, up, col, row, &mut fx),
        Msg::Mouse { press, col, row } => super::mouse::on_press(state, press, col, row, &mut fx),
        Msg::Resize(w, h) => state.size = (w, h),
        Msg::Engine(event) => on_event(state, event, &mut fx),
        Msg::Tick(now) => state.now_ms = now,
    }
    super::split::sync(state);
    sync_watch(state, &mut fx);
    sync_timeline(state, &mut fx);
    sync_conflicts(state, &mut fx);
    super::mail::sync(state, &mut fx);
    fx
}

/// Tell the engine which agent is on screen and how big its pane is, when that changes.
pub(super) fn sync_watch(state: &mut State, fx: &mut Vec<Effect>) {
    let a = state.areas();
    let panes = state.panes();
    // Split: the selected agent's pane is the focused one, and the others go along with their sizes.
    let focused = panes.iter().find(|p| p.focused).map(|p| p.terminal);
    let want = match (focused.or(a.terminal), state.selected_name()) {
        (Some(t), Some(name)) if t.height > 0 => {
            let (rows, cols) = crate::protocol::clamp_size(t.height, t.width);
            let also = panes
                .iter()
                .filter(|p| !p.focused && p.terminal.height > 0)
                .map(|p| {
                    let (rows, cols) = crate::protocol::clamp_size(p.terminal.height, p.terminal.width);
                    crate::protocol::Pane { name: p.name.clone(), rows, cols }
                })
                .collect();
            (Some(name), rows, cols, also)
        }
        // Keep the last pane size so hidden agents are not squeezed.
        _ => {
            (None, state.watching.as_ref().map_or(24, |w| w.1), state.watching.as_ref().map_or(80, |w| w.2), Vec::new())
        }
    };
    if state.watching.as_ref() != Some(&want) {
        let (name, rows, cols, also) = want.clone();
        fx.push(Effect::Engine(Command::Watch { name, rows, cols, also }));
        state.watching = Some(want);
    }
}

pub(super) fn on_key(state: &mut State, key: Key, fx: &mut Vec<Effect>) {
    let mode = state.mode();
    let action = state.keymap.action(mode, key);
    // Help is a key of every mode (F1 where `?` is text or the agent's): the keys of the mode it is pressed in.
    if action == Some(Action::Help) && mode != Mode::Help {
        open_help(state);
        return;
    }
    match mode {
        Mode::Help => match action {
            Some(Action::Close) if state.help.is_some() => state.help = None,
            Some(Action::Close) => state.dialog = None,
            Some(Action::ScrollDown) => {
                // Stops at the end: the last line shown at the top at most.
                let last = state.help.map_or(u16::MAX, |m| super::roster::help_len(state, m) as u16);
                state.help_scroll = state.help_scroll.saturating_add(1).min(last);
            }
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
        Mode::Attached => match (action, state.selected_name()) {
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
        Mode::Copy => super::copy::on_copy_key(state, key, action, fx),
        Mode::Gates => {
            if let Some(action) = action {
                if !super::gates::on_action(state, action, fx) {
                    on_roster_action(state, action, fx);
                }
            }
        }
        Mode::Findings => {
            if let Some(action) = action {
                if !super::findings::on_action(state, action, fx) {
                    on_roster_action(state, action, fx);
                }
            }
        }
        Mode::Review if super::review::on_typing(state, key) => {}
        Mode::Review => {
            if let Some(action) = action {
                if !super::review::on_action(state, action, fx) {
                    on_roster_action(state, action, fx);
                }
            }
        }
    }
}

pub(super) fn on_paste(state: &mut State, text: String, fx: &mut Vec<Effect>) {
    match (&mut state.dialog, state.attached) {
        (Some(Dialog::Steer { editor, .. }), _) => {
            editor.insert_str(text.replace("\r\n", "\n"));
        }
        (Some(Dialog::Compose(c)), _) => super::mail::on_compose_paste(c, &text),
        (None, true) => {
            if let Some(name) = state.selected_name() {
                fx.push(Effect::Engine(Command::Paste { name, text }));
            }
        }
        // Into a search being typed (copy mode's, the review's): one line of it.
        (None, false) => {
            let line = text.lines().next().unwrap_or_default();
            let copy = state.copy.as_mut().and_then(|c| c.typing.as_mut());
            if let Some(typing) = copy.or(state.review.as_mut().and_then(|r| r.typing.as_mut())) {
                typing.push_str(line);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::state::{Confirmed, WellTab};
    use crate::config::keymap::Keymap;
    use crate::config::theme::{ColorMode, Theme};
    use crate::protocol::git::Side;
    use crate::protocol::AgentInfo;
    use crate::protocol::{AgentState, Event};

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
    fn an_alarm_is_said_as_an_error_and_rings_a_notification_does_not_ring() {
        let mut s = state_with(&[("a", AgentState::Busy)]);
        let fx = update(&mut s, Msg::Engine(Event::Notification { name: "a".into(), text: "done".into() }));
        assert!(!fx.iter().any(|f| matches!(f, Effect::Bell)));
        let fx =
            update(&mut s, Msg::Engine(Event::Alarm { name: "a".into(), text: "link escapes: etc (/etc)".into() }));
        assert!(fx.iter().any(|f| matches!(f, Effect::Bell)));
        assert_eq!(s.status, Some(("a: link escapes: etc (/etc)".into(), true)));
        s.bell_on_waiting = false;
        let fx = update(&mut s, Msg::Engine(Event::Alarm { name: "a".into(), text: "again".into() }));
        assert!(!fx.iter().any(|f| matches!(f, Effect::Bell)), "the operator turned bells off");
    }

    #[test]
    fn selection_moves_and_watch_follows() {
        let mut s = state_with(&[("a", AgentState::Busy), ("b", AgentState::Idle)]);
        assert_eq!(s.watching.as_ref().unwrap().0.as_deref(), Some("a"));
        let fx = update(&mut s, key("j"));
        assert_eq!(s.selected, 1);
        assert!(
            matches!(&engine_cmds(&fx)[..], [Command::Watch { name: Some(n), rows: 35, cols: 120, also }] if n == "b" && also.is_empty())
        );
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
    fn start_all_asks_naming_the_agents_not_running_then_starts_each() {
        let mut s = state_with(&[("a", AgentState::Stopped), ("b", AgentState::Idle), ("c", AgentState::Exited)]);
        let fx = update(&mut s, key("A"));
        assert!(engine_cmds(&fx).is_empty(), "nothing starts before the operator says so");
        let Some(Dialog::Confirm { title, lines, .. }) = &s.dialog else { panic!("{:?}", s.dialog) };
        assert_eq!(title, "Start 2 agents?");
        assert_eq!(lines[0], "a, c");
        let fx = update(&mut s, key("y"));
        assert_eq!(
            engine_cmds(&fx),
            vec![Command::Start { name: "a".into(), resume: true }, Command::Start { name: "c".into(), resume: true }]
        );
        // With every agent running there is nothing to ask.
        let mut s = state_with(&[("b", AgentState::Busy)]);
        update(&mut s, key("A"));
        assert!(s.dialog.is_none() && s.status.as_ref().is_some_and(|(t, _)| t.contains("every agent is running")));
    }

    #[test]
    fn a_turn_that_ends_out_of_view_is_marked_and_notified_until_looked_at() {
        let mut s = state_with(&[("a", AgentState::Idle), ("b", AgentState::Busy)]);
        let fx = update(&mut s, Msg::Engine(Event::Agent(info("b", AgentState::Idle))));
        assert!(s.agents[1].unseen);
        assert!(fx.contains(&Effect::Notify("b finished its turn".into())), "{fx:?}");
        update(&mut s, key("j"));
        assert!(!s.agents[1].unseen, "looked at");
        // The agent in view: nothing to mark, nothing to notify.
        update(&mut s, Msg::Engine(Event::Agent(info("b", AgentState::Busy))));
        let fx = update(&mut s, Msg::Engine(Event::Agent(info("b", AgentState::Idle))));
        assert!(!s.agents[1].unseen && !fx.iter().any(|f| matches!(f, Effect::Notify(_))), "{fx:?}");
        // Notifications off: still marked, not notified.
        s.notify = false;
        update(&mut s, Msg::Engine(Event::Agent(info("a", AgentState::Busy))));
        let fx = update(&mut s, Msg::Engine(Event::Agent(info("a", AgentState::Idle))));
        assert!(s.agents[0].unseen && !fx.iter().any(|f| matches!(f, Effect::Notify(_))));
    }

    #[test]
    fn an_agent_drawing_itself_at_start_finished_no_turn() {
        let mut s = state_with(&[("a", AgentState::Idle), ("b", AgentState::Stopped)]);
        for st in [AgentState::Starting, AgentState::Busy, AgentState::Idle] {
            let fx = update(&mut s, Msg::Engine(Event::Agent(info("b", st))));
            assert!(!fx.iter().any(|f| matches!(f, Effect::Notify(_))), "{st:?}: {fx:?}");
        }
        assert!(!s.agents[1].unseen);
        // Its first real turn does count.
        update(&mut s, Msg::Engine(Event::Agent(info("b", AgentState::Busy))));
        update(&mut s, Msg::Engine(Event::Agent(info("b", AgentState::Idle))));
        assert!(s.agents[1].unseen);
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

    /// A screen of `rows` rows of text, `back` rows scrolled back into `history`.
    fn screen(lines: &[&str], rows: u16, history: usize, back: usize) -> Event {
        let cols = 20u16;
        let mut cells = Vec::new();
        for r in 0..rows as usize {
            let text = lines.get(r).copied().unwrap_or("");
            let mut row: Vec<crate::protocol::screen::ScreenCell> = text
                .chars()
                .map(|c| crate::protocol::screen::ScreenCell { text: c.to_string().into(), ..Default::default() })
                .collect();
            row.resize(cols as usize, Default::default());
            cells.extend(row);
        }
        let screen = crate::protocol::screen::Screen {
            history,
            scrolled_back: back,
            cursor: Some((1, 3)),
            ..crate::protocol::screen::Screen::from_cells(rows, cols, cells)
        };
        Event::Screen { name: "a".into(), screen, change: None }
    }

    #[test]
    fn copy_mode_moves_a_cursor_the_view_follows_and_copies_a_selection() {
        use crate::protocol::screen::BufferPos;
        let pos = |row, col| BufferPos { row, col };
        let mut s = state_with(&[("a", AgentState::Busy)]);
        update(&mut s, Msg::Resize(80, 24));
        update(&mut s, Msg::Engine(screen(&["one", "two words", "three"], 4, 100, 0)));
        update(&mut s, key("v"));
        assert_eq!(s.mode(), Mode::Copy);
        // At the agent's cursor: row 1 of a screen whose top is buffer row 100.
        assert_eq!(s.copy.as_ref().unwrap().cursor, pos(101, 3));
        update(&mut s, key("v"));
        update(&mut s, key("$"));
        assert_eq!(s.copy.as_ref().unwrap().cursor, pos(101, 8), "the end of the text, not of the row");
        let fx = update(&mut s, key("y"));
        assert_eq!(
            engine_cmds(&fx),
            vec![
                Command::CopyText { name: "a".into(), from: pos(101, 3), to: pos(101, 8) },
                Command::ScrollBottom { name: "a".into() }
            ]
        );
        assert_eq!(s.mode(), Mode::Roster, "y copies and leaves");
        let fx = update(&mut s, Msg::Engine(Event::Copied { name: "a".into(), text: "words".into(), cut: false }));
        assert_eq!(fx, vec![Effect::Copy("words".into())]);
        assert!(s.status.as_ref().unwrap().0.contains("copied 5 characters"));
        // Up past the top scrolls the view back, once for each row, whatever the screen still says.
        update(&mut s, key("v"));
        update(&mut s, key("k"));
        let fx = update(&mut s, key("k"));
        assert_eq!(engine_cmds(&fx), vec![Command::Scroll { name: "a".into(), lines: 1 }]);
        let fx = update(&mut s, key("k"));
        assert_eq!(engine_cmds(&fx), vec![Command::Scroll { name: "a".into(), lines: 1 }]);
        update(&mut s, Msg::Engine(screen(&[], 4, 100, 2)));
        let fx = update(&mut s, key("g"));
        assert_eq!(s.copy.as_ref().unwrap().cursor.row, 0);
        assert_eq!(engine_cmds(&fx), vec![Command::Scroll { name: "a".into(), lines: 98 }]);
        // No selection: y copies the cursor's line.
        let fx = update(&mut s, key("y"));
        assert_eq!(engine_cmds(&fx)[0], Command::CopyText { name: "a".into(), from: pos(0, 0), to: pos(0, u16::MAX) });
    }

    #[test]
    fn search_is_typed_sent_from_the_cursor_and_its_answer_moves_the_cursor() {
        use crate::protocol::screen::{BufferPos, Found};
        let mut s = state_with(&[("a", AgentState::Busy)]);
        update(&mut s, Msg::Resize(80, 24));
        update(&mut s, Msg::Engine(screen(&["one"], 4, 10, 0)));
        update(&mut s, key("/"));
        assert_eq!(s.mode(), Mode::Copy);
        for k in ["e", "r", "x", "backspace", "r", "("] {
            assert!(engine_cmds(&update(&mut s, key(k))).is_empty(), "typed, not acted on: {k}");
        }
        update(&mut s, key("enter"));
        assert!(s.status.as_ref().is_some_and(|(m, e)| *e && m.contains("not a search pattern")), "{:?}", s.status);
        update(&mut s, key("/"));
        for k in ["e", "r", "r"] {
            update(&mut s, key(k));
        }
        let fx = update(&mut s, key("enter"));
        let from = Some(BufferPos { row: 11, col: 3 });
        assert_eq!(
            engine_cmds(&fx),
            vec![Command::Search { name: "a".into(), pattern: "err".into(), from, older: true }]
        );
        let start = BufferPos { row: 4, col: 2 };
        let found = Found { start, end: BufferPos { row: 4, col: 4 }, index: 2, count: 5 };
        update(
            &mut s,
            Msg::Engine(Event::SearchFound { name: "a".into(), pattern: "err".into(), found: Ok(Some(found)) }),
        );
        assert_eq!(s.copy.as_ref().unwrap().cursor, start);
        assert_eq!(s.status.as_ref().unwrap().0, "/err: match 2 of 5");
        let fx = update(&mut s, key("N"));
        assert_eq!(
            engine_cmds(&fx),
            vec![Command::Search { name: "a".into(), pattern: "err".into(), from: Some(start), older: false }]
        );
        update(&mut s, Msg::Engine(Event::SearchFound { name: "a".into(), pattern: "err".into(), found: Ok(None) }));
        assert!(s.status.as_ref().unwrap().0.contains("no more matches"));
        // A pattern the server would refuse (and end the connection for) is refused here.
        update(&mut s, key("/"));
        update(&mut s, Msg::Paste("x".repeat(crate::protocol::MAX_PATTERN + 1)));
        let fx = update(&mut s, key("enter"));
        assert!(engine_cmds(&fx).is_empty() && s.status.as_ref().unwrap().1, "{:?}", s.status);
        // Another agent selected: copy mode is of the one it was entered on.
        update(&mut s, key("esc"));
        assert_eq!(s.mode(), Mode::Roster);
    }

    #[test]
    fn the_review_tab_reads_goes_file_by_file_and_opens_the_editor_at_the_line() {
        use crate::protocol::git::{FileDiff, LineKind};
        let mut s = state_with(&[("a", AgentState::Idle)]);
        let fx = update(&mut s, key("d"));
        assert_eq!(engine_cmds(&fx), vec![Command::Review { name: "a".into() }]);
        assert_eq!(s.mode(), Mode::Review);
        let file = |p: &str, lines: Vec<(LineKind, String)>| FileDiff {
            path: p.into(),
            status: 'M',
            added: 1,
            removed: 0,
            lines,
        };
        let files = vec![
            file("one", vec![(LineKind::Hunk, "@@ -1 +1,2 @@".into()), (LineKind::Context, "x".into())]),
            file("two", vec![(LineKind::Hunk, "@@ -9,2 +10,3 @@".into()), (LineKind::Added, "y".into())]),
        ];
        let review = Ok(("abc".to_string(), files));
        update(&mut s, Msg::Engine(Event::Review { name: "a".into(), base: "main".into(), review }));
        update(&mut s, key("]"));
        update(&mut s, key("]"));
        update(&mut s, key("j"));
        assert_eq!((s.review.as_ref().unwrap().file, s.review.as_ref().unwrap().scroll), (1, 1));
        let fx = update(&mut s, key("e"));
        assert_eq!(fx, vec![Effect::Edit { path: "/tmp/x/two".into(), line: 10 }]);
        update(&mut s, key("["));
        assert_eq!((s.review.as_ref().unwrap().file, s.review.as_ref().unwrap().scroll), (0, 0));
        // A search across the files' lines: typed, then to each match in turn, round the end.
        for k in ["/", "y", "enter"] {
            update(&mut s, key(k));
        }
        assert_eq!((s.review.as_ref().unwrap().file, s.review.as_ref().unwrap().scroll), (1, 1));
        assert_eq!(s.status.as_ref().unwrap().0, "/y: match 1 of 1 (two)");
        for k in ["/", "x", "enter"] {
            update(&mut s, key(k));
        }
        assert_eq!((s.review.as_ref().unwrap().file, s.review.as_ref().unwrap().scroll), (0, 1));
        update(&mut s, key("n"));
        assert_eq!((s.review.as_ref().unwrap().file, s.review.as_ref().unwrap().scroll), (0, 1), "the one match");
        let fx = update(&mut s, key("r"));
        assert_eq!(engine_cmds(&fx), vec![Command::Review { name: "a".into() }]);
        update(&mut s, key("esc"));
        assert_eq!(s.mode(), Mode::Roster);
    }

    #[test]
    fn a_split_well_watches_each_pane_at_its_size_and_the_focus_follows_the_selection() {
        let mut s = state_with(&[("a", AgentState::Idle), ("b", AgentState::Busy), ("c", AgentState::Idle)]);
        let fx = update(&mut s, key("|"));
        // Side by side in the 120-column well: a's pane is the focused one, b's goes along.
        let pane = |name: &str, rows, cols| crate::protocol::Pane { name: name.into(), rows, cols };
        assert_eq!(
            engine_cmds(&fx),
            vec![Command::Watch { name: Some("a".into()), rows: 33, cols: 59, also: vec![pane("b", 33, 60)] }]
        );
        update(&mut s, key("-"));
        assert_eq!(s.split.as_ref().unwrap().agents, ["a", "b", "c"]);
        assert!(s.split.as_ref().unwrap().stacked);
        // The next pane: its agent is selected.
        update(&mut s, key("o"));
        assert_eq!((s.selected_name().as_deref(), s.split.as_ref().unwrap().focus), (Some("b"), 1));
        // Keys go to the focused pane's agent alone.
        update(&mut s, key("enter"));
        let fx = update(&mut s, key("x"));
        assert_eq!(engine_cmds(&fx), vec![Command::Key { name: "b".into(), key: Key::char('x') }]);
        update(&mut s, key("C-]"));
        // Selecting an agent that a pane shows moves the focus there; the crew losing an agent closes its pane.
        update(&mut s, key("j"));
        assert_eq!(s.split.as_ref().unwrap().focus, 2);
        update(&mut s, Msg::Engine(Event::Removed { name: "a".into() }));
        assert_eq!(s.split.as_ref().unwrap().agents, ["b", "c"]);
        let fx = update(&mut s, key("z"));
        assert!(s.split.is_none());
        assert!(matches!(&engine_cmds(&fx)[..], [Command::Watch { also, rows: 35, cols: 120, .. }] if also.is_empty()));
        // One agent alone has nothing to split with.
        let mut one = state_with(&[("a", AgentState::Idle)]);
        update(&mut one, key("|"));
        assert!(one.split.is_none());
    }

    #[test]
    fn the_mouse_selects_panes_and_text_and_the_wheel_scrolls_what_is_under_it() {
        use crate::app::mouse::Press;
        use crate::protocol::screen::BufferPos;
        let press = |press, col, row| Msg::Mouse { press, col, row };
        let mut s = state_with(&[("a", AgentState::Idle), ("b", AgentState::Busy)]);
        for name in ["a", "b"] {
            let Event::Screen { screen, .. } = screen(&["hello world"], 4, 50, 0) else { unreachable!() };
            update(&mut s, Msg::Engine(Event::Screen { name: name.into(), screen, change: None }));
        }
        update(&mut s, key("|"));
        let panes = s.panes();
        let (a, b) = (panes[0].terminal, panes[1].terminal);
        // The wheel over b's pane scrolls b, though a is selected.
        let fx = update(&mut s, Msg::Wheel { up: true, col: b.x + 1, row: b.y });
        assert_eq!(engine_cmds(&fx), vec![Command::Scroll { name: "b".into(), lines: 3 }]);
        // A drag in b's pane selects b and its text; letting go copies it.
        update(&mut s, press(Press::Down, b.x + 6, b.y));
        assert_eq!(s.selected_name().as_deref(), Some("b"));
        update(&mut s, press(Press::Drag, b.x + 300, b.y));
        let fx = update(&mut s, press(Press::Up, b.x + 300, b.y));
        let (from, to) = (BufferPos { row: 50, col: 6 }, BufferPos { row: 50, col: 19 });
        assert_eq!(engine_cmds(&fx), vec![Command::CopyText { name: "b".into(), from, to }]);
        assert!(s.copy.is_none());
        // A click is no selection; it selects the pane's agent.
        let fx = update(&mut s, press(Press::Down, a.x, a.y + 1));
        assert_eq!(s.selected_name().as_deref(), Some("a"));
        assert!(engine_cmds(&fx).iter().all(|c| !matches!(c, Command::CopyText { .. })));
        assert!(engine_cmds(&update(&mut s, press(Press::Up, a.x, a.y + 1))).is_empty());
        // The roster: a click selects the agent on that line.
        let roster = s.areas().roster;
        update(&mut s, press(Press::Down, 3, roster.y + 1));
        assert_eq!(s.selected_name().as_deref(), Some("b"));
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
            green: false,
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
        // G: back to the newest checkpoint every gate passed on (asked first, as every rollback).
        let fx = update(&mut s, key("G"));
        assert!(engine_cmds(&fx).is_empty() && s.status.as_ref().is_some_and(|(t, e)| *e && t.contains("every gate")));
        let mut cps: Vec<_> = [4, 3, 2, 1].into_iter().map(cp).collect();
        cps[2].green = true;
        cps[3].green = true;
        update(&mut s, Msg::Engine(Event::Timeline { name: "a".into(), checkpoints: cps }));
        let fx = update(&mut s, key("G"));
        assert!(matches!(engine_cmds(&fx).as_slice(), [Command::RollbackPreview { n: 2, files: None, .. }]), "{fx:?}");
        assert_eq!(s.timeline.selected, 2);
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
        // What it would bring outside its files is listed.
        s.dialog = None;
        update(&mut s, answer(Preflight { outside_owns: vec!["src/db.rs".into()], ..Default::default() }));
        match &s.dialog {
            Some(Dialog::Confirm { lines, .. }) => {
                assert!(lines.iter().any(|l| l == "Outside its files (owns, shared): src/db.rs."), "{lines:?}")
            }
            other => panic!("{other:?}"),
        }
        // A merge gate failed on its worktree: the question is an override, and its answer skips the gates.
        use crate::protocol::gate::GateOutcome;
        s.dialog = None;
        let gates = vec![("lint".to_string(), GateOutcome::Fail, "exit 1".to_string())];
        update(&mut s, answer(Preflight { gates, ..Default::default() }));
        match &s.dialog {
            Some(Dialog::Confirm { title, lines, .. }) => {
                assert!(title.contains("Gate lint fail (exit 1)") && title.contains("anyway"), "{title}");
                assert!(
                    lines.iter().any(|l| l.contains("Merge gates, run now on its worktree: lint: fail")),
                    "{lines:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        update(&mut s, key("enter"));
        let fx = update(&mut s, key("C-s"));
        assert!(matches!(&engine_cmds(&fx)[..], [Command::Merge { skip_gates: true, .. }]), "{:?}", engine_cmds(&fx));
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

    #[test]
    fn the_rosters_line_count_is_its_rows_count() {
        let mut s = state_with(&[("a", AgentState::Idle), ("b", AgentState::Idle), ("c", AgentState::Idle)]);
        assert_eq!((s.roster_len(), s.roster_rows().len()), (3, 3));
        for (a, w) in s.agents.iter_mut().zip([Some(1), Some(2), Some(2)]) {
            a.info.wave = w;
        }
        assert_eq!((s.roster_len(), s.roster_rows()), (5, vec![None, Some(0), None, Some(1), Some(2)]));
        s.agents[2].info.wave = None;
        assert_eq!(s.roster_len(), s.roster_rows().len());
    }
}
