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
    /// A desktop notification through the terminal (OSC 9, or OSC 777 where that is the terminal's) when an
    /// agent starts waiting or finishes a turn while you look elsewhere.
    pub notify: bool,
    /// Lines of scrollback kept per agent.
    pub scrollback: usize,
    /// Minutes between checkpoints of an agent that stays busy (taken only when its files changed).
    pub checkpoint_minutes: u64,
    pub defaults: Defaults,
}

impl Default for UserConfig {
    fn default() -> Self {
        UserConfig {
            theme: None,
            bell: true,
            notify: true,
            scrollback: 10_000,
            checkpoint_minutes: 5,
            defaults: Defaults::default(),
        }
    }
}

/// Where the values that get range checks sit in the file (a second, lenient read of the same text).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Spans {
    scrollback: Option<toml::Spanned<toml::Value>>,
    checkpoint_minutes: Option<toml::Spanned<toml::Value>>,
    defaults: Option<toml::Spanned<toml::Value>>,
}

/// Lines of scrollback an agent may keep: beyond this one agent's history would take gigabytes.
pub const MAX_SCROLLBACK: i64 = 1_000_000;
/// A day: longer is no periodic checkpoint at all (and far larger overflowed the engine's clock).
pub const MAX_CHECKPOINT_MINUTES: i64 = 24 * 60;

/// The keys of the file, each read on its own: one of the wrong type, or unknown, is a warning at its place and
/// the others still count (one type error hid every other key's warning).
fn read_keys(file: &Path, text: &str, warnings: &mut Vec<Warning>) -> Result<UserConfig, ConfigError> {
    let table: toml::Table = text.parse().map_err(|e| ConfigError::from_toml(file, text, &e))?;
    let places = toml::de::DeTable::parse(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
    let at = |key: &str| {
        places.get_ref().iter().find(|(k, _)| k.get_ref().as_ref() == key).map_or(0, |(k, _)| k.span().start)
    };
    let mut cfg = UserConfig::default();
    for (key, value) in table {
        let read = match key.as_str() {
            "theme" => value.try_into().map(|v| cfg.theme = Some(v)),
            "bell" => value.try_into().map(|v| cfg.bell = v),
            "notify" => value.try_into().map(|v| cfg.notify = v),
            "scrollback" => value.try_into().map(|v| cfg.scrollback = v),
            "checkpoint_minutes" => value.try_into().map(|v| cfg.checkpoint_minutes = v),
            "defaults" => value.try_into().map(|v| cfg.defaults = v),
            _ => {
                let known = "theme, bell, notify, scrollback, checkpoint_minutes, defaults";
                let e = format!("unknown key `{key}` (known: {known}); ignored");
                warnings.push(Warning(ConfigError::at(file, text, at(&key), e)));
                continue;
            }
        };
        if let Err(e) = read {
            let e = format!("key `{key}`: {}; the default is used", e.message().trim());
            warnings.push(Warning(ConfigError::at(file, text, at(&key), e)));
        }
    }
    Ok(cfg)
}

/// The user's config: a file that is not TOML is an error; a key that is wrong, unknown or out of range is a
/// warning naming its place, and its default is used.
pub fn parse_user_config(file: &Path, text: &str) -> Result<(UserConfig, Vec<Warning>), ConfigError> {
    let mut warnings = Vec::new();
    let mut cfg = read_keys(file, text, &mut warnings)?;
    let spans: Spans = toml::from_str(text).unwrap_or_default();
    let defaults = UserConfig::default();
    let mut range = |v: &Option<toml::Spanned<toml::Value>>, key: &str, lo: i64, hi: i64, default: u64| -> bool {
        match v.as_ref().map(|v| (v.span().start, v.get_ref().as_integer())) {
            Some((at, Some(n))) if !(lo..=hi).contains(&n) => {
                warnings.push(Warning(ConfigError::at(
                    file,
                    text,
                    at,
                    format!("key `{key}`: {n} is out of range ({lo} to {hi}); using {default}"),
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
    if let Some(kind) = cfg.defaults.kind.clone() {
        let presets = super::preset::load(None).0;
        if !presets.contains_key(&kind) {
            let known: Vec<&str> = presets.keys().map(String::as_str).collect();
            // Its place: the `kind =` of the `[defaults]` table.
            let table = spans.defaults.as_ref().map_or(0, |d| d.span().start);
            let at = text[table..].find("kind").map_or(table, |i| table + i);
            let value = text[at..].find('=').map_or(at, |i| at + i + 1);
            let value = value + text[value..].len() - text[value..].trim_start().len();
            warnings.push(Warning(ConfigError::at(
                file,
                text,
                value,
                format!("key `defaults.kind`: unknown kind `{kind}` (known: {}); ignored", known.join(", ")),
            )));
            cfg.defaults.kind = None;
        }
    }
    warnings.sort_by_key(|w| (w.0.line, w.0.col));
    Ok((cfg, warnings))
}

/// Where `key` is set in the user's config file, for a warning about its value found elsewhere (the theme it
/// names does not exist): the message at that place.
pub fn warning_at_key(key: &str, message: String) -> Option<Warning> {
    let path = super::paths::user_config_dir()?.join("config.toml");
    let text = super::read_text(&path).ok()??;
    let table = toml::de::DeTable::parse(&text).ok()?;
    let at = table.get_ref().iter().find(|(k, _)| k.get_ref().as_ref() == key).map(|(_, v)| v.span().start)?;
    Some(Warning(ConfigError::at(&path, &text, at, message)))
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
        let e = parse_user_config(Path::new("c.toml"), "bell = \n").unwrap_err();
        assert_eq!(e.line, 1, "not TOML: an error");
    }

    #[test]
    fn each_wrong_key_is_said_and_the_others_still_count() {
        let text = "bell = false\nscrolback = 5\ncheckpoint_minutes = \"ten\"\ntheme = \"light\"\n";
        let (c, w) = parse_user_config(Path::new("config.toml"), text).unwrap();
        assert!(!c.bell && c.theme.as_deref() == Some("light") && c.checkpoint_minutes == 5);
        let w: Vec<String> = w.iter().map(|w| w.to_string()).collect();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("config.toml:2:1: unknown key `scrolback`"), "{w:?}");
        assert!(w[1].contains("config.toml:3:1: key `checkpoint_minutes`"), "{w:?}");
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
