//! What `update` takes (keys, pastes, the wheel, sizes, the engine's events, the clock) and what it asks of the
//! world outside (commands for the engine, the bell, quitting).

use crate::key::Key;
use crate::protocol::{Command, Event};

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
    /// A mouse button pressed, dragged or let go at a cell of the whole screen.
    Mouse {
        press: super::mouse::Press,
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
    /// A desktop notification through the operator's terminal.
    Notify(String),
    /// Text for the operator's clipboard (OSC 52), also kept in a file.
    Copy(String),
    /// Open a file in the operator's editor at a line, the workbench suspended meanwhile.
    Edit {
        path: std::path::PathBuf,
        line: usize,
    },
    Quit,
}
