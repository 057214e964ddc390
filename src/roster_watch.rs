//! `muster watch`: a read-only live roster for a narrow tmux pane (down to 30x5): one line per agent, the ones
//! that need the operator first and highlighted. It is a read-only client of each crew's server (the agents'
//! states are pushed as they change; it never asks for screens and never resizes anything), and reads the state
//! file of a crew whose server is not running; `--all` shows every running crew of this user.

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
    /// Its mail and findings, as the roster marks them (`✉2`, `? ` for an open question, `⊘3`); empty without a
    /// server.
    pub mail: String,
    /// What the roster says of it (word, glyph): `AgentInfo::shown` (pending, done), or its state's.
    pub shown: (&'static str, &'static str),
}

impl Row {
    fn attention(&self) -> bool {
        matches!(self.state, AgentState::Waiting | AgentState::Error) || self.mail.starts_with('?')
    }
}

/// The watcher's short mark of an agent's mail: its open question first, then unread mail from it.
pub fn mail_mark(m: &crate::protocol::mail::MailMarks) -> String {
    match (&m.asking, m.unread) {
        (Some(_), _) => "?".into(),
        (None, 0) => String::new(),
        (None, n) => format!("✉{n}"),
    }
}

/// The watcher's marks of an agent: its mail's, then its open findings (`⊘3`).
pub fn marks(info: &crate::protocol::AgentInfo) -> String {
    let mail = mail_mark(&info.mail);
    match info.findings {
        0 => mail,
        n if mail.is_empty() => format!("⊘{n}"),
        n => format!("{mail} ⊘{n}"),
    }
}

/// The rows of the crews at `roots`: live states while their muster runs, stopped otherwise.
pub fn rows(roots: &[PathBuf]) -> Vec<Row> {
    let mut out = Vec::new();
    for root in roots {
        let Ok((saved, _, _)) = store::load_live(root) else { continue };
        let repo = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        out.extend(saved.agents.into_iter().map(|a| Row {
            repo: repo.clone(),
            name: a.spec.name,
            state: a.state,
            mail: String::new(),
            shown: (a.state.label(), a.state.glyph()),
        }));
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
            0 => format!("muster · {}", crate::text::counted(rows.len(), "agent")),
            n => format!("muster · {} · {n} need you", crate::text::counted(rows.len(), "agent")),
        };
        out.push(Line::styled(cut(head), Style::new().add_modifier(Modifier::DIM)));
    }
    let room = height - out.len();
    let shown = if ordered.len() > room { room.saturating_sub(1) } else { ordered.len() };
    let name_width = ordered.iter().map(|r| r.name.chars().count()).max().unwrap_or(0).min(width / 2);
    for r in &ordered[..shown] {
        // With every crew, the repository comes last: cut first when the pane is narrow.
        let repo = if all { format!(" {}", r.repo) } else { String::new() };
        let mail = if r.mail.is_empty() { String::new() } else { format!(" {}", r.mail) };
        // A name longer than its column keeps its start and end (the workbench's roster does the same).
        let name = crate::ui::roster::name_cell(&r.name, name_width + 1);
        let (word, glyph) = r.shown;
        let text = cut(format!("{glyph} {name}{word:<7}{mail}{repo}"));
        let style =
            if r.attention() { Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD) } else { Style::new() };
        out.push(Line::styled(text, style));
    }
    if shown < ordered.len() {
        out.push(Line::from(cut(format!("+{} more", ordered.len() - shown))));
    }
    out
}

/// What wakes the watcher.
enum Wake {
    /// A crew's agents as its server says now (pushed), or as its state file says once it is gone.
    Crew(PathBuf, Vec<Row>),
    /// A crew's server went away.
    Gone(PathBuf),
    Resize,
    Quit,
}

/// Follow the server of `root` as a read-only client: its agents' states are pushed, nothing is polled. Returns
/// false when no server answers there.
fn follow(root: &Path, tx: std::sync::mpsc::Sender<Wake>) -> bool {
    use crate::protocol::{ClientKind, Event, Hello};
    let Ok(Some(stream)) = crate::server::spawn::connect(root) else { return false };
    let Ok(read) = stream.try_clone() else { return false };
    let hello = Hello::new(ClientKind::Watch, None);
    let repo = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let at = root.to_path_buf();
    let agents = std::sync::Mutex::new(Vec::<Row>::new());
    let attached = crate::client::attach(Box::new(read), Box::new(stream), hello, move |m| {
        let mut rows = agents.lock().unwrap_or_else(|p| p.into_inner());
        let changed = match m {
            crate::client::Incoming::Event(Event::Agent(info)) => {
                let row = Row {
                    repo: repo.clone(),
                    mail: marks(&info),
                    shown: info.shown(),
                    name: info.name,
                    state: info.state,
                };
                match rows.iter_mut().find(|r| r.name == row.name) {
                    Some(r) if *r == row => false,
                    Some(r) => {
                        *r = row;
                        true
                    }
                    None => {
                        rows.push(row);
                        true
                    }
                }
            }
            crate::client::Incoming::Event(Event::Removed { name }) => {
                rows.retain(|r| r.name != name);
                true
            }
            crate::client::Incoming::Event(_) => false,
            crate::client::Incoming::Closed(_) => {
                let _ = tx.send(Wake::Gone(at.clone()));
                false
            }
        };
        if changed {
            let _ = tx.send(Wake::Crew(at.clone(), rows.clone()));
        }
    });
    attached.is_ok()
}

/// Draw until `q`, Esc, Ctrl-C, a signal or the terminal going away; redraw only when the rows or the size change.
/// Each crew's server pushes its changes; a crew without one is read from its state file, and looked for again
/// every second (and, with `--all`, new crews too).
pub fn run(root: Option<&Path>, all: bool) -> Result<()> {
    use crossterm::event::{Event, KeyCode, KeyModifiers};
    use std::collections::{BTreeMap, BTreeSet};
    let _guard = crate::tui::setup_plain_terminal()?;
    let mut terminal = ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;
    let (tx, rx) = std::sync::mpsc::channel::<Wake>();
    let signal_tx = tx.clone();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        if signals.forever().next().is_some() {
            let _ = signal_tx.send(Wake::Quit);
        }
    })?;
    // Keys on their own thread: on a terminal that has gone, crossterm's poll can spin without returning.
    let key_tx = tx.clone();
    std::thread::Builder::new().name("keys".into()).spawn(move || {
        while let Ok(ev) = crossterm::event::read() {
            let wake = match ev {
                Event::Key(k) => {
                    let ctrl_c = k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                    if !(ctrl_c || matches!(k.code, KeyCode::Char('q') | KeyCode::Esc)) {
                        continue;
                    }
                    Wake::Quit
                }
                Event::Resize(..) => Wake::Resize,
                _ => continue,
            };
            let quit = matches!(wake, Wake::Quit);
            if key_tx.send(wake).is_err() || quit {
                return;
            }
        }
        // No more input: the terminal is gone.
        let _ = key_tx.send(Wake::Quit);
    })?;
    let wanted = || if all { running_roots() } else { root.map(|r| vec![r.to_path_buf()]).unwrap_or_default() };
    let mut crews: BTreeMap<PathBuf, Vec<Row>> = BTreeMap::new();
    let mut followed: BTreeSet<PathBuf> = BTreeSet::new();
    let mut shown: Option<(Vec<Row>, ratatui::layout::Size)> = None;
    loop {
        // Crews without a server to follow: their state file, and another look for a server.
        let roots = wanted();
        crews.retain(|r, _| roots.contains(r) || followed.contains(r));
        for r in &roots {
            if !followed.contains(r) {
                if follow(r, tx.clone()) {
                    followed.insert(r.clone());
                } else {
                    crews.insert(r.clone(), rows(std::slice::from_ref(r)));
                }
            }
        }
        let now: Vec<Row> = crews.values().flatten().cloned().collect();
        let size = terminal.size()?;
        if shown.as_ref() != Some(&(now.clone(), size)) {
            terminal.draw(|f| {
                let area = f.area();
                f.render_widget(ratatui::widgets::Paragraph::new(lines(&now, area.width, area.height, all)), area);
            })?;
            shown = Some((now, size));
        }
        // Pushed changes wake the loop at once; a second's look only while something is not followed.
        let unfollowed = all || roots.iter().any(|r| !followed.contains(r));
        let wake = if unfollowed {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(w) => Some(w),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
        } else {
            Some(rx.recv()?)
        };
        for w in wake.into_iter().chain(rx.try_iter()) {
            match w {
                Wake::Quit => return Ok(()),
                Wake::Resize => {}
                Wake::Crew(r, agents) => {
                    crews.insert(r, agents);
                }
                Wake::Gone(r) => {
                    followed.remove(&r);
                    crews.insert(r.clone(), rows(std::slice::from_ref(&r)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, state: AgentState) -> Row {
        Row {
            repo: "repo".into(),
            name: name.into(),
            state,
            mail: String::new(),
            shown: (state.label(), state.glyph()),
        }
    }

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect()).collect()
    }

    #[test]
    fn marks_are_mail_then_findings() {
        let mut info = crate::protocol::AgentInfo::new("api", "demo", AgentState::Idle);
        assert_eq!(marks(&info), "");
        info.findings = 3;
        assert_eq!(marks(&info), "⊘3");
        info.mail.unread = 2;
        assert_eq!(marks(&info), "✉2 ⊘3");
    }

    #[test]
    fn a_pending_agent_reads_pending_as_in_the_roster() {
        let rows =
            vec![row("plan", AgentState::Idle), Row { shown: ("pending", "·"), ..row("api", AgentState::Stopped) }];
        assert_eq!(text(&lines(&rows, 30, 5, false)), vec!["muster · 2 agents", "○ plan idle   ", "· api  pending"]);
        let rows = vec![Row { shown: ("done", "✓"), ..row("c1", AgentState::Idle) }];
        assert_eq!(text(&lines(&rows, 30, 5, false))[1], "✓ c1 done   ");
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
        assert_eq!(text(&out), vec!["muster · 2 agents", "● api  busy   ", "○ docs idle   "]);
        let all = lines(&rows[2..3], 30, 5, true);
        assert_eq!(text(&all)[1], "◆ tests waiting repo");
        // Nothing wider than the pane.
        assert!(lines(&rows, 8, 3, true).iter().all(|l| l.width() <= 8));
        // A long name keeps its start and end, so two alike stay told apart; the state still shows.
        let long = [row("frontend-api-v1", AgentState::Idle), row("frontend-api-v2", AgentState::Busy)];
        assert_eq!(text(&lines(&long, 20, 2, false)), vec!["○ front…i-v1 idle   ", "● front…i-v2 busy   "]);
        assert_eq!(text(&lines(&[], 30, 5, true)), vec!["muster: no crew running"]);
    }
}
