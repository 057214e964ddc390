//! The user's own settings, `$XDG_CONFIG_HOME/muster/config.toml`: theme, bell, agent defaults.

use std::path::Path;

use serde::Deserialize;

use super::crew::Defaults;
use super::ConfigError;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct UserConfig {
    pub theme: Option<String>,
    /// Ring the terminal bell when an agent starts waiting for input.
    pub bell: bool,
    /// Lines of scrollback kept per agent.
    pub scrollback: usize,
    /// Minutes between checkpoints of an agent that stays busy (taken only when its files changed).
    pub checkpoint_minutes: u64,
    pub defaults: Defaults,
}

impl Default for UserConfig {
    fn default() -> Self {
        UserConfig { theme: None, bell: true, scrollback: 10_000, checkpoint_minutes: 5, defaults: Defaults::default() }
    }
}

pub fn parse_user_config(file: &Path, text: &str) -> Result<UserConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))
}

/// The user's config, or the defaults with a warning when it is unreadable.
pub fn load() -> (UserConfig, Vec<super::Warning>) {
    let Some(path) = super::paths::user_config_dir().map(|d| d.join("config.toml")) else {
        return (UserConfig::default(), vec![]);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => match parse_user_config(&path, &text) {
            Ok(cfg) => (cfg, vec![]),
            Err(e) => (UserConfig::default(), vec![super::Warning(e)]),
        },
        Err(_) => (UserConfig::default(), vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports() {
        let c = parse_user_config(Path::new("c.toml"), "bell = false\n[defaults]\nbase = 'main'\n").unwrap();
        assert!(!c.bell);
        assert_eq!(c.scrollback, 10_000);
        assert_eq!(c.defaults.base.as_deref(), Some("main"));
        let e = parse_user_config(Path::new("c.toml"), "bel = false\n").unwrap_err();
        assert_eq!((e.line, e.col), (1, 1));
    }
}
