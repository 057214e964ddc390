//! The Elm-style core: one `State`, `update` turning messages into state changes and effects, no I/O.

pub mod layout;
pub mod mail;
pub mod state;
pub mod update;

pub use state::{AgentView, Compose, ConflictView, Dialog, EditPurpose, MailView, State, TimelineView, WellTab};
pub use update::{update, Effect, Msg};
