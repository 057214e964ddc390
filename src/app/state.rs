//! Everything the screen shows, in one place.

use ratatui_textarea::TextArea;

use crate::config::keymap::{Keymap, Mode};
use crate::config::theme::Theme;
use crate::engine::{AgentInfo, AgentState};
use crate::term::Screen;

#[derive(Debug, Clone)]
pub struct AgentView {
    pub info: AgentInfo,
    pub screen: Option<Screen>,
    /// Started waiting for input (or rang its bell) and has not been looked at since.
    pub attention: bool,
}

/// What a confirmation leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    Quit,
    Remove { name: String, force: bool },
}

#[derive(Debug, Clone)]
pub enum Dialog {
    Help,
    Confirm {
        title: String,
        lines: Vec<String>,
        then: Confirmed,
    },
    Steer {
        name: String,
        editor: Box<TextArea<'static>>,
    },
}

pub struct State {
    pub repo: String,
    pub agents: Vec<AgentView>,
    pub selected: usize,
    pub well_open: bool,
    pub attached: bool,
    pub dialog: Option<Dialog>,
    /// A message for the status line, and whether it is an error.
    pub status: Option<(String, bool)>,
    pub now_ms: u64,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
    pub keymap: Keymap,
    pub theme: Theme,
    pub bell_on_waiting: bool,
    pub quitting: bool,
    /// The last `Watch` sent to the engine, so it is sent only on change.
    pub watching: Option<(Option<String>, u16, u16)>,
}

impl State {
    pub fn new(repo: String, keymap: Keymap, theme: Theme, size: (u16, u16)) -> State {
        State {
            repo,
            agents: Vec::new(),
            selected: 0,
            well_open: true,
            attached: false,
            dialog: None,
            status: None,
            now_ms: 0,
            size,
            keymap,
            theme,
            bell_on_waiting: true,
            quitting: false,
            watching: None,
        }
    }

    pub fn selected_agent(&self) -> Option<&AgentView> {
        self.agents.get(self.selected)
    }

    pub fn mode(&self) -> Mode {
        match &self.dialog {
            Some(Dialog::Help) => Mode::Help,
            Some(Dialog::Confirm { .. }) => Mode::Confirm,
            Some(Dialog::Steer { .. }) => Mode::Steer,
            None if self.attached => Mode::Attached,
            None => Mode::Roster,
        }
    }

    /// Where each part of the screen goes at the current size.
    pub fn areas(&self) -> crate::ui::layout::Areas {
        crate::ui::layout::areas(
            self.size.0,
            self.size.1,
            self.agents.len(),
            self.well_open,
            self.attached,
        )
    }

    pub fn count(&self, state: AgentState) -> usize {
        self.agents.iter().filter(|a| a.info.state == state).count()
    }

    pub fn running(&self) -> usize {
        self.agents
            .iter()
            .filter(|a| a.info.state.is_running())
            .count()
    }
}
