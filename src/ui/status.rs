//! The status line: key hints from the active keymap, or the latest message.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::State;
use crate::config::keymap::{Action, Mode};

const ROSTER_HINTS: [(Action, &str); 8] = [
    (Action::Attach, "attach"),
    (Action::Steer, "steer"),
    (Action::Pause, "pause"),
    (Action::Stop, "stop"),
    (Action::Restart, "restart"),
    (Action::OpenTimeline, "timeline"),
    (Action::Help, "help"),
    (Action::Quit, "quit"),
];

fn key_label(k: crate::key::Key) -> String {
    match k.to_string().as_str() {
        "enter" => "⏎".into(),
        other => other.to_string(),
    }
}

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let theme = &state.theme;
    let bar = theme.style("ui.status");
    if let Some(typing) = state.search_prompt() {
        let prompt = match state.mode() {
            Mode::Review => format!(" search the diff: /{typing}"),
            _ => format!(" search older: /{typing}"),
        };
        frame.render_widget(Paragraph::new(prompt.as_str()).style(bar.patch(theme.style("ui.status.message"))), area);
        let x =
            area.x + (unicode_width::UnicodeWidthStr::width(prompt.as_str()) as u16).min(area.width.saturating_sub(1));
        frame.set_cursor_position(ratatui::layout::Position::new(x, area.y));
        return;
    }
    if let Some((text, error)) = &state.status {
        let style = bar.patch(if *error { theme.style("ui.error") } else { theme.style("ui.status.message") });
        frame.render_widget(Paragraph::new(format!(" {text}")).style(style), area);
        return;
    }
    let mode = state.mode();
    let hints: Vec<(Action, &str)> = match mode {
        Mode::Roster if state.detaches => {
            let mut h = ROSTER_HINTS.to_vec();
            h.pop();
            h.extend([(Action::Quit, "detach"), (Action::StopCrew, "stop crew")]);
            h
        }
        Mode::Roster => ROSTER_HINTS.to_vec(),
        Mode::Timeline => vec![
            (Action::Rollback, "rollback"),
            (Action::RollbackFiles, "files"),
            (Action::MarkFile, "mark"),
            (Action::UndoRollback, "undo"),
            (Action::ToggleDiffBase, "base"),
            (Action::Checkpoint, "checkpoint"),
            (Action::NextFile, "file"),
            (Action::Close, "terminal"),
        ],
        Mode::Conflicts => vec![
            (Action::TakeOurs, "ours"),
            (Action::TakeTheirs, "theirs"),
            (Action::TakeBoth, "both"),
            (Action::EditConflict, "edit"),
            (Action::NextConflict, "next"),
            (Action::Undo, "undo"),
            (Action::WriteFile, "write"),
            (Action::FinishMerge, "finish"),
            (Action::AbortMerge, "abort"),
        ],
        Mode::Edit => vec![(Action::Send, "save"), (Action::Cancel, "cancel")],
        Mode::Attached => vec![(Action::Detach, "detach (every other key goes to the agent)")],
        Mode::Steer => vec![(Action::Send, "send"), (Action::Newline, "new line"), (Action::Cancel, "cancel")],
        Mode::Confirm => vec![(Action::Confirm, "yes"), (Action::Cancel, "no")],
        Mode::Help => vec![(Action::Close, "close")],
        Mode::Mail => vec![
            (Action::OpenThread, "open"),
            (Action::Compose, "write"),
            (Action::Reply, "reply/answer"),
            (Action::Forward, "forward"),
            (Action::RetryMail, "retry"),
            (Action::DropMail, "drop"),
            (Action::EditMail, "edit"),
            (Action::Mailbox, if state.mail_view.crew { "this agent" } else { "whole crew" }),
            (Action::Close, "terminal"),
        ],
        Mode::Findings => vec![
            (Action::FindingDiff, "diff"),
            (Action::RestoreFinding, "restore"),
            (Action::AllowFinding, "allow"),
            (Action::DismissFinding, "dismiss"),
            (Action::TellAgent, "tell agent"),
            (Action::Close, "terminal"),
        ],
        Mode::Gates => vec![
            (Action::OpenLog, "log"),
            (Action::RunGates, "run now"),
            (Action::GrantAttempt, "grant attempt"),
            (Action::StopLoop, "stop/resume loop"),
            (Action::CancelGates, "cancel"),
            (Action::Close, "terminal"),
        ],
        Mode::Review => vec![
            (Action::Search, "search"),
            (Action::NextFile, "next file"),
            (Action::PrevFile, "previous"),
            (Action::OpenInEditor, "edit"),
            (Action::Refresh, "refresh"),
            (Action::Merge, "merge"),
            (Action::Close, "terminal"),
        ],
        Mode::Copy => vec![
            (Action::Select, "select"),
            (Action::CopySelection, "copy"),
            (Action::Search, "search"),
            (Action::SearchNext, "older"),
            (Action::SearchPrev, "newer"),
            (Action::Help, "help"),
            (Action::Close, "leave"),
        ],
        Mode::Compose => vec![
            (Action::Send, "send"),
            (Action::NextField, "To/message"),
            (Action::ToggleUrgent, "urgent"),
            (Action::Cancel, "cancel"),
        ],
    };
    let mut spans = vec![Span::styled(" ", bar)];
    // Config warnings stay said, first, while the workbench runs: `!` lists them.
    if mode == Mode::Roster && !state.warnings.is_empty() {
        if let Some(k) = state.keymap.key_for(mode, Action::Messages) {
            let n = crate::text::counted(state.warnings.len(), "warning");
            spans.push(Span::styled(format!("{} {n}", key_label(k)), bar.patch(theme.style("ui.warning"))));
            spans.push(Span::styled("  ", bar));
        }
    }
    for (action, label) in hints {
        if let Some(k) = state.keymap.key_for(mode, action) {
            spans.push(Span::styled(key_label(k), theme.style("ui.status.key")));
            spans.push(Span::styled(format!(" {label}  "), bar));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
}
