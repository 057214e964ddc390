//! The review tab: what merging the selected agent would bring — its branch and its worktree (uncommitted and
//! new files too) against their merge base with its base branch — file by file, and each file opened in the
//! operator's editor at the line on screen.

use super::msg::Effect;
use super::state::{ReviewView, State, WellTab};
use crate::config::keymap::Action;
use crate::protocol::git::{FileDiff, LineKind};
use crate::protocol::Command;

/// Show the review of the selected agent, read anew.
pub(super) fn open(state: &mut State, fx: &mut Vec<Effect>) {
    let Some(agent) = state.selected_agent() else { return };
    let (name, base) = (agent.info.name.clone(), agent.info.base.clone());
    state.review = Some(ReviewView { agent: name.clone(), base, ..Default::default() });
    state.tab = WellTab::Review;
    state.well_open = true;
    fx.push(Effect::Engine(Command::Review { name }));
}

/// A key while a search is typed; false when none is.
pub(super) fn on_typing(state: &mut State, key: crate::key::Key) -> bool {
    use super::editor_keys::{prompt_key, Prompt};
    let Some(view) = state.review.as_mut().filter(|v| v.typing.is_some()) else { return false };
    let Prompt::Done(pattern) = prompt_key(&mut view.typing, key) else { return true };
    if pattern.is_empty() {
        return true;
    }
    match crate::text::search_regex(&pattern) {
        Ok(re) => {
            view.search = Some((pattern, re));
            find(state, true);
        }
        Err(e) => state.status = Some((format!("not a search pattern: {e}"), true)),
    }
    true
}

/// The next match of the search after the line at the top (`forward`) or before it, across files, round the
/// end: it goes to the top.
fn find(state: &mut State, forward: bool) {
    let Some(view) = state.review.as_mut() else { return };
    let Some((pattern, re)) = &view.search else {
        state.status = Some(("no search yet: / searches".into(), false));
        return;
    };
    let Some(Ok((_, files))) = &view.diff else { return };
    let hits: Vec<(usize, usize)> = files
        .iter()
        .enumerate()
        .flat_map(|(f, file)| {
            file.lines.iter().enumerate().filter(|(_, (_, text))| re.is_match(text)).map(move |(l, _)| (f, l))
        })
        .collect();
    let here = (view.file, view.scroll as usize);
    let at = if forward {
        hits.iter().position(|h| *h > here).or((!hits.is_empty()).then_some(0))
    } else {
        hits.iter().rposition(|h| *h < here).or(hits.len().checked_sub(1))
    };
    let text = match at {
        Some(i) => {
            (view.file, view.scroll) = (hits[i].0, hits[i].1 as u16);
            format!("/{pattern}: match {} of {} ({})", i + 1, hits.len(), files[hits[i].0].path)
        }
        None => format!("/{pattern}: no match in the diff"),
    };
    state.status = Some((text, false));
}

/// A review tab's key; false: not one of its own (the roster's then).
pub(super) fn on_action(state: &mut State, action: Action, fx: &mut Vec<Effect>) -> bool {
    let page = state.terminal_rows().saturating_sub(2).max(1);
    let Some(view) = state.review.as_mut() else { return false };
    let files = match &view.diff {
        Some(Ok((_, files))) => files.as_slice(),
        _ => &[],
    };
    let lines = files.get(view.file).map_or(0, |f| f.lines.len()) as u16;
    match action {
        Action::ScrollDown => view.scroll = (view.scroll + 1).min(lines.saturating_sub(1)),
        Action::ScrollUp => view.scroll = view.scroll.saturating_sub(1),
        Action::PageDown => view.scroll = (view.scroll + page).min(lines.saturating_sub(1)),
        Action::PageUp => view.scroll = view.scroll.saturating_sub(page),
        Action::NextFile if view.file + 1 < files.len() => {
            view.file += 1;
            view.scroll = 0;
        }
        Action::PrevFile if view.file > 0 => {
            view.file -= 1;
            view.scroll = 0;
        }
        Action::NextFile | Action::PrevFile => {}
        Action::OpenInEditor => {
            let Some(f) = files.get(view.file) else { return true };
            let Some(agent) = state.agents.iter().find(|a| a.info.name == view.agent) else { return true };
            let line = new_line_at(f, view.scroll as usize);
            fx.push(Effect::Edit { path: agent.info.worktree.join(&f.path), line });
        }
        Action::Search => view.typing = Some(String::new()),
        Action::SearchNext => find(state, true),
        Action::SearchPrev => find(state, false),
        Action::Refresh => {
            view.diff = None;
            fx.push(Effect::Engine(Command::Review { name: view.agent.clone() }));
        }
        Action::Close | Action::Review => {
            state.review = None;
            state.tab = WellTab::Terminal;
        }
        _ => return false,
    }
    true
}

/// The engine's answer: shown if it is of the review open.
pub(super) fn on_review(state: &mut State, name: String, review: Result<(String, Vec<FileDiff>), String>) {
    if let Some(view) = state.review.as_mut().filter(|v| v.agent == name) {
        if let Ok((_, files)) = &review {
            view.file = view.file.min(files.len().saturating_sub(1));
        }
        view.diff = Some(review);
    }
}

/// The line of the new file that line `at` of a file's diff shows (the first of its hunk for a hunk's heading
/// or a removed line; 1 before any hunk).
pub fn new_line_at(f: &FileDiff, at: usize) -> usize {
    let mut line = 1;
    for (i, (kind, text)) in f.lines.iter().enumerate() {
        match kind {
            LineKind::Hunk => {
                // "@@ -a,b +c,d @@": c.
                line = text
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix('+'))
                    .and_then(|w| w.split(',').next()?.parse().ok())
                    .unwrap_or(1)
            }
            _ if i == at => return line.max(1),
            LineKind::Context | LineKind::Added => line += 1,
            LineKind::Removed => {}
        }
        if i == at {
            return line.max(1);
        }
    }
    line.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_on_screen_is_the_new_files_line() {
        let l = |k, t: &str| (k, t.to_string());
        let f = FileDiff {
            path: "a".into(),
            status: 'M',
            added: 2,
            removed: 1,
            lines: vec![
                l(LineKind::Hunk, "@@ -3,4 +3,5 @@ fn x()"),
                l(LineKind::Context, "three"),
                l(LineKind::Removed, "old four"),
                l(LineKind::Added, "four"),
                l(LineKind::Added, "more"),
                l(LineKind::Hunk, "@@ -40 +41,2 @@"),
                l(LineKind::Context, "forty-one"),
            ],
        };
        let at: Vec<usize> = (0..8).map(|i| new_line_at(&f, i)).collect();
        assert_eq!(at, [3, 3, 4, 4, 5, 41, 41, 42]);
    }
}
