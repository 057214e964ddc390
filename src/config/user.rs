//! The user's own settings, `$XDG_CONFIG_HOME/muster/config.toml`: theme, bell, agent defaults.

use std::path::Path;

use serde::Deserialize;

use super::crew::Defaults;
use super::{ConfigError, Warning};

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

/// Where the values that get range checks sit in the file (a second, lenient read of the same text).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Spans {
    scrollback: Option<toml::Spanned<i64>>,
    checkpoint_minutes: Option<toml::Spanned<i64>>,
    defaults: SpanDefaults,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SpanDefaults {
    kind: Option<toml::Spanned<String>>,
}

/// Lines of scrollback an agent may keep: beyond this one agent's history would take gigabytes.
pub const MAX_SCROLLBACK: i64 = 1_000_000;
/// A day: longer is no periodic checkpoint at all (and far larger overflowed the engine's clock).
pub const MAX_CHECKPOINT_MINUTES: i64 = 24 * 60;

/// The user's config: a file that does not parse is an error; a value out of range is a warning naming its place,
/// and its default is used.
pub fn parse_user_config(file: &Path, text: &str) -> Result<(UserConfig, Vec<Warning>), ConfigError> {
    let mut cfg: UserConfig = toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
    let spans: Spans = toml::from_str(text).unwrap_or_default();
    let defaults = UserConfig::default();
    let mut warnings = Vec::new();
    let mut range = |v: &Option<toml::Spanned<i64>>, key: &str, lo: i64, hi: i64, default: u64| -> bool {
        match v {
            Some(v) if !(lo..=hi).contains(v.get_ref()) => {
                warnings.push(Warning(ConfigError::at(
                    file,
                    text,
                    v.span().start,
                    format!("key `{key}`: {} is out of range ({lo} to {hi}); using {default}", v.get_ref()),
                )));
                false
            }
            _ => true,
        }
    };
    if !range(&spans.scrollback, "scrollback", 0, MAX_SCROLLBACK, defaults.scrollback as u64) {
        cfg.scrollback = defaults.scrollback;
    }
    if !range(&spans.checkpoint_minutes, "checkpoint_minutes", 1, MAX_CHECKPOINT_MINUTES, defaults.checkpoint_minutes) {
        cfg.checkpoint_minutes = defaults.checkpoint_minutes;
    }
    // An unknown kind here would otherwise be reported in the crew file of whichever repository is opened.
    if let Some(kind) = &spans.defaults.kind {
        let presets = super::preset::builtin();
        if !presets.contains_key(kind.get_ref()) {
            let known: Vec<&str> = presets.keys().map(String::as_str).collect();
            warnings.push(Warning(ConfigError::at(
                file,
                text,
                kind.span().start,
                format!(
                    "key `defaults.kind`: unknown kind `{}` (known: {}); ignored",
                    kind.get_ref(),
                    known.join(", ")
                ),
            )));
            cfg.defaults.kind = None;
        }
    }
    warnings.sort_by_key(|w| (w.0.line, w.0.col));
    Ok((cfg, warnings))
}

/// The user's config, or the defaults with a warning when it is unreadable.
pub fn load() -> (UserConfig, Vec<super::Warning>) {
    let Some(path) = super::paths::user_config_dir().map(|d| d.join("config.toml")) else {
        return (UserConfig::default(), vec![]);
    };
    match super::read_text(&path) {
        Ok(Some(text)) => match parse_user_config(&path, &text) {
            Ok((cfg, warnings)) => (cfg, warnings),
            Err(e) => (UserConfig::default(), vec![super::Warning(e)]),
        },
        Ok(None) => (UserConfig::default(), vec![]),
        Err(e) => (UserConfig::default(), vec![super::Warning(e)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports() {
        let (c, w) = parse_user_config(Path::new("c.toml"), "bell = false\n[defaults]\nbase = 'main'\n").unwrap();
        assert!(w.is_empty());
        assert!(!c.bell);
        assert_eq!(c.scrollback, 10_000);
        assert_eq!(c.defaults.base.as_deref(), Some("main"));
        let e = parse_user_config(Path::new("c.toml"), "bel = false\n").unwrap_err();
        assert_eq!((e.line, e.col), (1, 1));
    }

    #[test]
    fn out_of_range_values_warn_with_their_place_and_keep_the_default() {
        let text =
            "bell = false\ncheckpoint_minutes = 153722867280912930\nscrollback = 5000000\n[defaults]\nkind = 'nope'\n";
        let (c, w) = parse_user_config(Path::new("config.toml"), text).unwrap();
        assert_eq!((c.checkpoint_minutes, c.scrollback, c.defaults.kind), (5, 10_000, None));
        assert!(!c.bell);
        let w: Vec<String> = w.iter().map(|w| w.to_string()).collect();
        assert!(w[0].contains("config.toml:2:22: key `checkpoint_minutes`"), "{w:?}");
        assert!(w[1].contains("config.toml:3:14: key `scrollback`: 5000000 is out of range"), "{w:?}");
        assert!(w[2].contains("config.toml:5:8: key `defaults.kind`: unknown kind `nope`"), "{w:?}");
    }
}
