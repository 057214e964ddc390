//! Terminal emulation: the model each agent's output is fed into, the screen snapshots the UI draws, the
//! key/paste encoder for what the operator types, and the OSC notifications the emulator ignores.

pub mod ansi;
pub mod capture;
pub mod changes;
pub mod guard;
pub mod history;
pub mod input;
pub mod model;
pub mod notify;
pub mod osc;
pub mod outer;
pub mod palette;
pub mod search;

pub use crate::protocol::screen::{self, CellColor, CellFlags, Screen, ScreenCell};
pub use changes::Change;
pub use model::{AlacrittyModel, InputModes, Palette, TerminalModel};
