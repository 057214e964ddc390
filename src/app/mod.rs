//! The Elm-style core: one `State`, `update` turning messages into state changes and effects, no I/O.

mod conflicts;
mod copy;
mod edit;
pub mod editor_keys;
mod events;
mod findings;
mod gates;
pub mod layout;
pub mod mail;
pub mod mouse;
pub mod msg;
mod new_agent;
mod review;
mod roster;
mod split;
pub mod state;
mod steer;
mod timeline;
mod tree;
pub mod update;

pub use roster::{help_len, help_modes};
pub use state::{
    AgentView, Compose, ConflictView, Dialog, EditPurpose, MailView, PaneArea, SplitView, State, TimelineView, WellTab,
};
pub use update::{update, Effect, Msg};
