//! Everything the screen shows, in one place.

use ratatui_textarea::TextArea;

use crate::config::keymap::{Keymap, Mode};
use crate::config::theme::Theme;
use std::collections::BTreeSet;

use crate::conflict::Resolver;
use crate::protocol::git::ConflictFile;
use crate::protocol::git::OverlapReport;
use crate::protocol::git::{Checkpoint, DiffBase, FileDiff};
use crate::protocol::screen::{BufferPos, Found, Screen};
use crate::protocol::{AgentInfo, AgentState};

#[derive(Debug, Clone)]
pub struct AgentView {
    pub info: AgentInfo,
    /// Shared with the well's painter, which keeps the one it painted last.
    pub screen: Option<std::sync::Arc<Screen>>,
    /// Checkpoints, newest first.
    pub checkpoints: Vec<Checkpoint>,
    /// Started waiting for input (or rang its bell) and has not been looked at since.
    pub attention: bool,
    /// Finished a turn while the operator looked elsewhere, and has not been looked at since.
    pub unseen: bool,
    /// Works on a turn: busy since it was at its prompt (or when this workbench joined), not since it started.
    pub in_turn: bool,
}

/// What a confirmation leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    Quit,
    /// Start these agents (none of them runs).
    ApproveWave {
        wave: u32,
    },
    StartAll {
        names: Vec<String>,
    },
    Remove {
        name: String,
        force: bool,
    },
    Rollback {
        name: String,
        n: u32,
        files: Option<Vec<String>>,
    },
    UndoRollback {
        name: String,
    },
    /// Put a finding's file back as it was at its checkpoint.
    RestoreFinding {
        id: i64,
    },
    Merge {
        name: String,
        into_agent: bool,
    },
    FinishMerge {
        name: String,
    },
    AbortMerge {
        name: String,
    },
    /// Drop these dead letters (message, recipient).
    DropMail {
        copies: Vec<(i64, String)>,
    },
    /// A steer into an agent that shows a dialog: the text would answer it.
    SteerIntoDialog {
        name: String,
        text: String,
    },
}

/// What an edit dialog's text is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditPurpose {
    ConflictResult,
    MergeMessage {
        name: String,
        into_agent: bool,
    },
    /// A new agent, in the crew file's own words (`name`, `kind` or `command`, `prompt`, `base`).
    NewAgent,
    /// A copy of agent `from`: only its name is asked.
    Duplicate {
        from: String,
    },
    /// A new name for agent `from`.
    Rename {
        from: String,
    },
}

/// A merge stopped on conflicts, being resolved.
#[derive(Debug, Clone)]
pub struct ConflictView {
    /// The agent whose merge it is.
    pub agent: String,
    pub into_agent: bool,
    pub files: Vec<ConflictFile>,
    pub file: usize,
    /// The current file, parsed: its path and resolver, or why it cannot be resolved here.
    pub loaded: Option<(String, Result<Resolver, String>)>,
    /// The file last asked of the engine.
    pub requested: Option<String>,
    pub hunk: usize,
}

/// Which view of the selected agent the well shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WellTab {
    Terminal,
    Timeline,
    Conflicts,
    Mail,
    Review,
    Gates,
    Findings,
}

/// The findings tab: the watchdog's open findings on the selected agent, newest first.
#[derive(Debug, Clone, Default)]
pub struct FindingsView {
    pub agent: String,
    /// Its findings, once read.
    pub findings: Option<Vec<crate::protocol::guard::Finding>>,
    pub selected: usize,
}

/// The gates tab: the selected agent's gate runs, newest first, and the selected run's output.
#[derive(Debug, Clone, Default)]
pub struct GatesView {
    pub agent: String,
    /// Its runs, once read.
    pub runs: Option<Vec<crate::protocol::gate::GateRun>>,
    pub selected: usize,
    /// The whole log of a run, once asked for (Enter); else its tail shows.
    pub log: Option<(i64, String)>,
    pub scroll: u16,
}

/// The review tab: what merging the agent would bring (its branch and worktree against their merge base).
#[derive(Debug, Clone, Default)]
pub struct ReviewView {
    pub agent: String,
    pub base: String,
    /// The merge base and the files, once read; or why they could not be.
    pub diff: Option<Result<(String, Vec<FileDiff>), String>>,
    pub file: usize,
    pub scroll: u16,
    /// The search being typed, shown in the status line.
    pub typing: Option<String>,
    /// The last search, as a regex.
    pub search: Option<(String, regex::Regex)>,
}

/// The well's copy mode, as tmux's: a cursor over the selected agent's whole buffer (its history, then its
/// screen), a selection, and a search.
#[derive(Debug, Clone)]
pub struct CopyView {
    pub agent: String,
    pub cursor: BufferPos,
    /// Where the selection started; it runs to the cursor.
    pub anchor: Option<BufferPos>,
    /// The buffer row the view was last asked to show at its top, until the agent's next screen says.
    pub top: Option<u64>,
    /// The search pattern being typed, shown in the status line.
    pub typing: Option<String>,
    /// The last search, and its regex for marking its matches on screen.
    pub pattern: Option<(String, regex::Regex)>,
    pub found: Option<Found>,
    /// Started by the mouse: letting go copies the selection and ends it.
    pub mouse: bool,
    /// Where the terminal it selects in is drawn (the mouse's cells are read against it).
    pub area: ratatui::layout::Rect,
}

/// The well split into panes: two to four agents' terminals side by side or stacked. The selected agent is the
/// one in the focused pane: selecting another agent puts it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitView {
    pub agents: Vec<String>,
    pub stacked: bool,
    pub focus: usize,
}

/// One pane of a split well: its agent, its title row and where its terminal is drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneArea {
    pub name: String,
    pub title: ratatui::layout::Rect,
    pub terminal: ratatui::layout::Rect,
    pub focused: bool,
}

impl CopyView {
    /// Copy mode on `agent`'s buffer, its cursor at `cursor`, nothing selected or searched.
    pub fn new(agent: String, cursor: BufferPos) -> CopyView {
        CopyView {
            agent,
            cursor,
            anchor: None,
            top: None,
            typing: None,
            pattern: None,
            found: None,
            mouse: false,
            area: Default::default(),
        }
    }
}

/// Where the operator is in the mail tab (the agent's threads) or the crew's mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailView {
    /// The whole crew's mailbox, not only the selected agent's threads.
    pub crew: bool,
    /// Index into the threads shown, newest first.
    pub selected: usize,
    /// The selected thread is open.
    pub open: bool,
}

/// Mail being written.
#[derive(Debug, Clone)]
pub struct Compose {
    /// Names (comma-separated), `crew`.
    pub to: TextArea<'static>,
    pub body: TextArea<'static>,
    pub body_focus: bool,
    pub reply_to: Option<i64>,
    pub urgent: bool,
    /// What the operator answers, for the title (an agent's question).
    pub answering: Option<String>,
    /// Dead letters this mail is an edit of: dropped when it is sent.
    pub replaces: Vec<(i64, String)>,
}

/// Where the operator is in an agent's timeline.
#[derive(Debug, Clone)]
pub struct TimelineView {
    /// The agent this view belongs to; another agent starts a fresh view.
    pub agent: Option<String>,
    /// Index into the agent's checkpoints (newest first).
    pub selected: usize,
    pub base: DiffBase,
    /// The diff on screen: agent, checkpoint, base, files.
    pub diff: Option<(String, u32, DiffBase, Vec<FileDiff>)>,
    /// The last diff asked of the engine.
    pub requested: Option<(String, u32, DiffBase)>,
    pub file: usize,
    pub marked: BTreeSet<String>,
    pub scroll: u16,
    /// The file to show once the diff arrives (from the findings tab).
    pub focus: Option<String>,
}

impl Default for TimelineView {
    fn default() -> Self {
        TimelineView {
            agent: None,
            selected: 0,
            base: DiffBase::Previous,
            diff: None,
            requested: None,
            file: 0,
            marked: BTreeSet::new(),
            scroll: 0,
            focus: None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Dialog {
    /// The config files' warnings and the latest messages, newest first.
    Messages,
    Confirm {
        title: String,
        lines: Vec<String>,
        then: Confirmed,
    },
    Steer {
        name: String,
        editor: Box<TextArea<'static>>,
    },
    Compose(Box<Compose>),
    /// Editing text: the result of the current conflict, or a merge's commit message.
    Edit {
        purpose: EditPurpose,
        editor: Box<TextArea<'static>>,
    },
}

pub struct State {
    pub repo: String,
    pub agents: Vec<AgentView>,
    pub selected: usize,
    pub well_open: bool,
    pub tab: WellTab,
    pub timeline: TimelineView,
    pub conflicts: Option<ConflictView>,
    pub review: Option<ReviewView>,
    pub gates: Option<GatesView>,
    pub findings: Option<FindingsView>,
    pub split: Option<SplitView>,
    /// Copy mode, while the well shows its agent's terminal.
    pub copy: Option<CopyView>,
    pub overlaps: OverlapReport,
    pub attached: bool,
    pub dialog: Option<Dialog>,
    /// The keys of this mode are shown, over whatever else is open (a steer keeps its text under it).
    pub help: Option<Mode>,
    /// Lines the help overlay is scrolled down.
    pub help_scroll: u16,
    /// A message for the status line, and whether it is an error.
    pub status: Option<(String, bool)>,
    pub now_ms: u64,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
    pub keymap: Keymap,
    pub theme: Theme,
    pub bell_on_waiting: bool,
    /// Desktop notifications through the terminal (the user's `notify`).
    pub notify: bool,
    pub quitting: bool,
    /// The crew runs in a server: quitting leaves it running (detaches); stopping it is `stop_crew`.
    pub detaches: bool,
    /// Why the connection to the server ended, when it did.
    pub closed: Option<String>,
    /// The last `Watch` sent to the engine, so it is sent only on change.
    pub watching: Option<(Option<String>, u16, u16, Vec<crate::protocol::Pane>)>,
    /// The crew's mail this client knows (the newest, and what changed since it attached), by id.
    pub mail: std::collections::BTreeMap<i64, crate::protocol::mail::Mail>,
    pub mail_view: MailView,
    /// The agent the engine was last told this operator is writing a steer to.
    pub composing: Option<String>,
    /// Messages this client told the engine the operator read.
    pub mail_seen_sent: BTreeSet<i64>,
    /// What was wrong in the config files (file:line:col), for the messages list.
    pub warnings: Vec<String>,
    /// The latest messages of the status line (when, text, error), newest last; a message leaves the status
    /// line after a while and stays here.
    pub messages: std::collections::VecDeque<(u64, String, bool)>,
    /// When the status line's message was set.
    pub status_at: u64,
    /// Agents whose children the roster folds out of sight (by name: a rename or a removal drops the fold).
    pub folded: BTreeSet<String>,
}

impl State {
    pub fn selected_name(&self) -> Option<String> {
        self.selected_agent().map(|a| a.info.name.clone())
    }

    /// Rows of the agent's terminal pane as laid out now.
    pub fn terminal_rows(&self) -> u16 {
        self.areas().terminal.map_or(10, |t| t.height)
    }

    pub fn new(repo: String, keymap: Keymap, theme: Theme, size: (u16, u16)) -> State {
        State {
            repo,
            agents: Vec::new(),
            selected: 0,
            well_open: true,
            tab: WellTab::Terminal,
            timeline: TimelineView::default(),
            conflicts: None,
            copy: None,
            review: None,
            gates: None,
            findings: None,
            split: None,
            overlaps: OverlapReport::default(),
            attached: false,
            dialog: None,
            help: None,
            help_scroll: 0,
            status: None,
            now_ms: 0,
            size,
            keymap,
            theme,
            bell_on_waiting: true,
            notify: true,
            quitting: false,
            detaches: false,
            closed: None,
            watching: None,
            mail: Default::default(),
            mail_view: MailView::default(),
            composing: None,
            mail_seen_sent: BTreeSet::new(),
            warnings: Vec::new(),
            messages: Default::default(),
            status_at: 0,
            folded: BTreeSet::new(),
        }
    }

    /// The panes of a split well as laid out now; none when the well shows one terminal (or no terminal).
    pub fn panes(&self) -> Vec<PaneArea> {
        let Some(split) = self.split.as_ref().filter(|s| s.agents.len() > 1) else { return Vec::new() };
        let Some(area) = self.areas().terminal else { return Vec::new() };
        if !(self.attached || (self.well_open && self.tab == WellTab::Terminal)) {
            return Vec::new();
        }
        super::layout::panes(area, split.agents.len(), split.stacked)
            .into_iter()
            .zip(&split.agents)
            .enumerate()
            .map(|(i, ((title, terminal), name))| PaneArea {
                name: name.clone(),
                title,
                terminal,
                focused: i == split.focus,
            })
            .collect()
    }

    /// The roster's lines: an agent's index, or `None` for a wave's heading (before the first agent of each
    /// wave, when the crew has waves).
    pub fn roster_rows(&self) -> Vec<Option<usize>> {
        super::tree::rows(&self.tree_nodes(), &self.folded)
    }

    /// How many lines the roster has (asked by the layout, many times a frame: counted without a tree when no
    /// agent has a parent).
    pub fn roster_len(&self) -> usize {
        if self.agents.iter().any(|a| a.info.parent.is_some()) {
            return self.roster_rows().len();
        }
        if !self.agents.iter().any(|a| a.info.wave.is_some()) {
            return self.agents.len();
        }
        let headings = 1 + self.agents.windows(2).filter(|w| w[0].info.wave != w[1].info.wave).count();
        self.agents.len() + headings.min(self.agents.len())
    }

    /// The crew as the roster's tree sees it: names, parents, waves.
    pub fn tree_nodes(&self) -> Vec<super::tree::Node<'_>> {
        let mut nodes = Vec::with_capacity(self.agents.len());
        for a in &self.agents {
            nodes.push(super::tree::Node { name: &a.info.name, parent: a.info.parent.as_deref(), wave: a.info.wave });
        }
        nodes
    }

    /// For each agent (by index): how deep it is in the tree (0: the operator's), and how many agents its fold
    /// hides (0 when it is open or has none). Built once a frame: the crew's nodes are made once, not per row.
    pub fn tree_places(&self) -> Vec<(usize, usize)> {
        if !self.agents.iter().any(|a| a.info.parent.is_some()) {
            // No tree: every agent is the operator's, and no fold hides anything.
            return vec![(0, 0); self.agents.len()];
        }
        let nodes = self.tree_nodes();
        nodes
            .iter()
            .map(|n| {
                let hidden = if self.folded.contains(n.name) { super::tree::descendants(&nodes, n.name) } else { 0 };
                (super::tree::ancestors(&nodes, n.name).len(), hidden)
            })
            .collect()
    }

    /// The first line the roster shows (it scrolls to keep the selection in view).
    pub fn roster_first(&self) -> usize {
        let visible = self.areas().roster.height as usize;
        let at = self.roster_rows().iter().position(|r| *r == Some(self.selected)).unwrap_or(0);
        at.saturating_sub(visible.saturating_sub(1))
    }

    /// The well's tabs for the selected agent, as their labels read, in order.
    pub fn well_tabs(&self) -> Vec<(String, WellTab)> {
        let Some(agent) = self.selected_agent() else { return Vec::new() };
        let info = &agent.info;
        let mail = if self.mail_view.crew && self.tab == WellTab::Mail {
            "mailbox · whole crew".to_string()
        } else {
            let m = &info.mail;
            let mut label = "mail".to_string();
            if m.unread > 0 {
                label.push_str(&format!(" ✉{}", m.unread));
            }
            if m.dead > 0 {
                label.push_str(&format!(" ✗{}", m.dead));
            }
            label
        };
        let mut tabs = vec![
            ("terminal".to_string(), WellTab::Terminal),
            (format!("timeline ({})", agent.checkpoints.len().max(info.checkpoints)), WellTab::Timeline),
            (mail, WellTab::Mail),
        ];
        if self.review.as_ref().is_some_and(|v| v.agent == info.name) {
            tabs.push(("review".into(), WellTab::Review));
        }
        if self.gates.as_ref().is_some_and(|v| v.agent == info.name) {
            let cell = info.gate.cell();
            tabs.push((if cell.is_empty() { "gates".into() } else { format!("gates {cell}") }, WellTab::Gates));
        }
        if self.findings.as_ref().is_some_and(|v| v.agent == info.name) {
            let label = if info.findings > 0 { format!("findings ⊘{}", info.findings) } else { "findings".into() };
            tabs.push((label, WellTab::Findings));
        }
        if let Some(v) = self.conflicts.as_ref().filter(|v| v.agent == info.name) {
            tabs.push((format!("conflicts ({})", v.files.len()), WellTab::Conflicts));
        }
        tabs
    }

    /// Which tab of the well's bar is at column `col`: the bar reads `─ name ─ ` then each tab's label in two
    /// columns more than its text, one column apart.
    pub fn tab_at(&self, col: u16) -> Option<WellTab> {
        let name = self.selected_agent()?.info.name.as_str();
        let mut x = 5 + unicode_width::UnicodeWidthStr::width(name) as u16;
        for (label, tab) in self.well_tabs() {
            let w = unicode_width::UnicodeWidthStr::width(label.as_str()) as u16 + 2;
            if (x..x + w).contains(&col) {
                return Some(tab);
            }
            x += w + 1;
        }
        None
    }

    /// A search being typed (copy mode's or the review's), for the status line.
    pub fn search_prompt(&self) -> Option<&str> {
        let copy = self.copy_view().and_then(|c| c.typing.as_deref());
        let review = self.review.as_ref().filter(|_| self.mode() == Mode::Review).and_then(|r| r.typing.as_deref());
        copy.or(review)
    }

    /// Copy mode, when it is of the agent the well shows.
    pub fn copy_view(&self) -> Option<&CopyView> {
        let c = self.copy.as_ref()?;
        let shown = self.tab == WellTab::Terminal && self.well_open;
        (shown && self.selected_agent().is_some_and(|a| a.info.name == c.agent)).then_some(c)
    }

    pub fn selected_agent(&self) -> Option<&AgentView> {
        self.agents.get(self.selected)
    }

    pub fn mode(&self) -> Mode {
        match &self.dialog {
            _ if self.help.is_some() => Mode::Help,
            Some(Dialog::Messages) => Mode::Help,
            Some(Dialog::Confirm { .. }) => Mode::Confirm,
            Some(Dialog::Steer { .. }) => Mode::Steer,
            Some(Dialog::Edit { .. }) => Mode::Edit,
            Some(Dialog::Compose(_)) => Mode::Compose,
            None if self.attached => Mode::Attached,
            None if self.copy_view().is_some() => Mode::Copy,
            None if self.tab == WellTab::Timeline => Mode::Timeline,
            None if self.tab == WellTab::Conflicts && self.conflicts.is_some() => Mode::Conflicts,
            None if self.tab == WellTab::Mail && self.well_open => Mode::Mail,
            None if self.tab == WellTab::Review && self.well_open => Mode::Review,
            None if self.tab == WellTab::Gates && self.well_open && self.gates.is_some() => Mode::Gates,
            None if self.tab == WellTab::Findings && self.well_open && self.findings.is_some() => Mode::Findings,
            None => Mode::Roster,
        }
    }

    /// Where each part of the screen goes at the current size.
    pub fn areas(&self) -> super::layout::Areas {
        super::layout::areas(self.size.0, self.size.1, self.roster_len(), self.well_open, self.attached)
    }

    /// The overlap note of an agent: the other agents, and whether a trial merge with any of them conflicts.
    pub fn overlap_of(&self, name: &str) -> Option<(Vec<String>, bool)> {
        let with: Vec<&crate::protocol::git::Overlap> =
            self.overlaps.overlaps.iter().filter(|o| o.a == name || o.b == name).collect();
        if with.is_empty() {
            return None;
        }
        let others = with.iter().map(|o| if o.a == name { o.b.clone() } else { o.a.clone() }).collect();
        Some((others, with.iter().any(|o| !o.conflicts.is_empty())))
    }

    pub fn count(&self, state: AgentState) -> usize {
        self.agents.iter().filter(|a| a.info.state == state).count()
    }

    pub fn running(&self) -> usize {
        self.agents.iter().filter(|a| a.info.state.is_running()).count()
    }
}
