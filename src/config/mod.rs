//! Configuration: the crew file, agent presets, keymaps and themes. Embedded defaults, then the user's files
//! (XDG config dir), then the project's `.muster/`.

pub mod crew;
pub mod keymap;
pub mod location;
pub mod paths;
pub mod preset;
pub mod theme;
pub mod user;

pub use location::{ConfigError, Warning};
