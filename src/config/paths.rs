//! Where muster keeps things on disk.

use std::path::PathBuf;

use etcetera::BaseStrategy;

/// `$XDG_CONFIG_HOME/muster`, when a home directory is known.
pub fn user_config_dir() -> Option<PathBuf> {
    etcetera::choose_base_strategy().ok().map(|s| s.config_dir().join("muster"))
}

/// `$XDG_STATE_HOME/muster`, for logs.
pub fn state_dir() -> PathBuf {
    etcetera::choose_base_strategy()
        .ok()
        .and_then(|s| s.state_dir())
        .map(|d| d.join("muster"))
        .unwrap_or_else(|| std::env::temp_dir().join("muster-state"))
}
