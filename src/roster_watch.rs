//! `muster watch`: a read-only live roster for a narrow tmux pane (down to 30x5): one line per agent, the ones
//! that need the operator first and highlighted. It reads the state file the server keeps current (within a
//! second of every change) and never changes anything; `--all` shows every running crew of this user. Reading a
//! small file four times a second costs ~0.15 % of a core; a protocol client would get pushed updates instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;

use crate::engine::{store, AgentState};

/// One agent as the watcher shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The repository's folder name (shown with `--all`).
    pub repo: String,
    pub name: String,
    pub state: AgentState,
}

impl Row {
    fn attention(&self) -> bool {
        matches!(self.state, AgentState::Waiting | AgentState::Error)
    }
}

/// The rows of the crews at `roots`: live states while their muster runs, stopped otherwise.
pub fn rows(roots: &[PathBuf]) -> Vec<Row> {
    let mut out = Vec::new();
    for root in roots {
        let Ok((saved, _, _)) = store::load_live(root) else { continue };
        let repo = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        out.extend(saved.agents.into_iter().map(|a| Row { repo: repo.clone(), name: a.spec.name, state: a.state }));
    }
    out
}

/// The repositories whose muster runs now, from this user's run folders (each lock names its repository).
pub fn running_roots() -> Vec<PathBuf> {
    let Ok(dir) = crate::ipc::user_dir() else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut roots: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| crate::ipc::holder(&e.path()).is_some())
        .filter_map(|e| std::fs::read_to_string(e.path().join("lock")).ok()?.lines().nth(1).map(PathBuf::from))
        .collect();
    roots.sort();
    roots
}

/// The lines for a `width` x `height` pane: a header when there is room, then the agents, those needing the
/// operator first; what does not fit is counted on the last line.
pub fn lines(rows: &[Row], width: u16, height: u16, all: bool) -> Vec<Line<'static>> {
    let width = width as usize;
    let height = height as usize;
    if height == 0 {
        return Vec::new();
    }
    let cut = |s: String| -> String { s.chars().take(width).collect() };
    let mut ordered: Vec<&Row> = rows.iter().filter(|r| r.attention()).collect();
    ordered.extend(rows.iter().filter(|r| !r.attention()));
    let waiting = rows.iter().filter(|r| r.attention()).count();
    let mut out = Vec::new();
    if rows.is_empty() {
        out.push(Line::from(cut(if all { "muster: no crew running".into() } else { "muster: no agents".into() })));
        return out;
    }
    let header = rows.len() < height;
    if header {
        let head = match waiting {
            0 => format!("muster · {} agent(s)", rows.len()),
            n => format!("muster · {} agent(s) · {n} need you", rows.len()),
        };
        out.push(Line::styled(cut(head), Style::new().add_modifier(Modifier::DIM)));
    }
    let room = height - out.len();
    let shown = if ordered.len() > room { room.saturating_sub(1) } else { ordered.len() };
    let name_width = ordered.iter().map(|r| r.name.chars().count()).max().unwrap_or(0).min(width / 2);
    for r in &ordered[..shown] {
        // With every crew, the repository comes last: cut first when the pane is narrow.
        let repo = if all { format!(" {}", r.repo) } else { String::new() };
        let text = cut(format!("{} {:<name_width$} {:<7}{repo}", r.state.glyph(), r.name, r.state.label()));
        let style =
            if r.attention() { Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD) } else { Style::new() };
        out.push(Line::styled(text, style));
    }
    if shown < ordered.len() {
        out.push(Line::from(cut(format!("+{} more", ordered.len() - shown))));
    }
    out
}

/// Draw until `q`, Esc, Ctrl-C, a signal or the terminal going away; redraw only when the rows or the size change.
pub fn run(root: Option<&Path>, all: bool) -> Result<()> {
    use crossterm::event::{Event, KeyCode, KeyModifiers};
    use std::sync::atomic::{AtomicBool, Ordering};
    let roots = || if all { running_roots() } else { root.map(|r| vec![r.to_path_buf()]).unwrap_or_default() };
    let _guard = crate::tui::setup_plain_terminal()?;
    let mut terminal = ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGHUP, signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    // Keys on their own thread: on a terminal that has gone, crossterm's poll can spin without returning, and
    // this loop must still see the signal (or the failed size query) and end.
    let quit = std::sync::Arc::new(AtomicBool::new(false));
    let q = quit.clone();
    std::thread::Builder::new().name("keys".into()).spawn(move || {
        while let Ok(ev) = crossterm::event::read() {
            if let Event::Key(k) = ev {
                let ctrl_c = k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                if ctrl_c || matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) {
                    q.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
        // No more input: the terminal is gone.
        q.store(true, Ordering::Relaxed);
    })?;
    let mut shown: Option<(Vec<Row>, ratatui::layout::Size)> = None;
    while !stop.load(Ordering::Relaxed) && !quit.load(Ordering::Relaxed) {
        let now = rows(&roots());
        let size = terminal.size()?;
        if shown.as_ref() != Some(&(now.clone(), size)) {
            terminal.draw(|f| {
                let area = f.area();
                f.render_widget(ratatui::widgets::Paragraph::new(lines(&now, area.width, area.height, all)), area);
            })?;
            shown = Some((now, size));
        }
        // A quarter second between looks: a running muster writes its state within a second of a change. Keys
        // are seen at the next look.
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, state: AgentState) -> Row {
        Row { repo: "repo".into(), name: name.into(), state }
    }

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect()).collect()
    }

    #[test]
    fn a_small_pane_shows_who_needs_the_operator_first() {
        let rows: Vec<Row> = [
            ("api", AgentState::Busy),
            ("docs", AgentState::Idle),
            ("tests", AgentState::Waiting),
            ("lint", AgentState::Idle),
            ("web", AgentState::Busy),
            ("db", AgentState::Error),
        ]
        .iter()
        .map(|(n, s)| row(n, *s))
        .collect();
        let out = lines(&rows, 30, 5, false);
        assert_eq!(
            text(&out),
            vec!["◆ tests waiting", "✗ db    error  ", "● api   busy   ", "○ docs  idle   ", "+2 more"]
        );
        assert!(out[0].style.add_modifier.contains(Modifier::REVERSED));
        // With room, a header counts them.
        let out = lines(&rows[..2], 30, 5, false);
        assert_eq!(text(&out), vec!["muster · 2 agent(s)", "● api  busy   ", "○ docs idle   "]);
        let all = lines(&rows[2..3], 30, 5, true);
        assert_eq!(text(&all)[1], "◆ tests waiting repo");
        // Nothing wider than the pane.
        assert!(lines(&rows, 8, 3, true).iter().all(|l| l.width() <= 8));
        assert_eq!(text(&lines(&[], 30, 5, true)), vec!["muster: no crew running"]);
    }
}
