//! Themes in a helix-like format: `[palette]`, `[scopes]`, `inherits`; narrow scopes fall back to broader
//! ones. A bad entry is a warning with its location. `NO_COLOR` drops colours; a terminal without true colour
//! gets the nearest 256-colour values.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ratatui::style::{Color, Modifier, Style};
use toml::de::{DeTable, DeValue};

use super::location::ConfigError;
use super::Warning;
use crate::term::palette::nearest_indexed;

const BUILTIN: [(&str, &str); 3] = [
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("high-contrast", include_str!("../../themes/high-contrast.toml")),
];

/// What the terminal can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    TrueColor,
    Ansi256,
    NoColor,
}

impl ColorMode {
    /// From the environment: `NO_COLOR` (any value) wins, then `COLORTERM`.
    pub fn detect(no_color: Option<&str>, colorterm: Option<&str>) -> ColorMode {
        if no_color.is_some_and(|v| !v.is_empty()) {
            ColorMode::NoColor
        } else if colorterm.is_some_and(|v| v.contains("truecolor") || v.contains("24bit")) {
            ColorMode::TrueColor
        } else {
            ColorMode::Ansi256
        }
    }

    pub fn from_env() -> ColorMode {
        ColorMode::detect(std::env::var("NO_COLOR").ok().as_deref(), std::env::var("COLORTERM").ok().as_deref())
    }

    pub fn adapt(self, color: Color) -> Option<Color> {
        match (self, color) {
            (ColorMode::NoColor, _) => None,
            (ColorMode::Ansi256, Color::Rgb(r, g, b)) => Some(Color::Indexed(nearest_indexed(r, g, b))),
            (_, c) => Some(c),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ScopeStyle {
    fg: Option<Color>,
    bg: Option<Color>,
    modifiers: Modifier,
}

#[derive(Debug, Clone)]
pub struct Theme {
    pub name: String,
    scopes: HashMap<String, ScopeStyle>,
    pub mode: ColorMode,
}

fn parse_color(s: &str, palette: &HashMap<String, String>) -> Option<Color> {
    let s = palette.get(s).map(String::as_str).unwrap_or(s);
    if let Some(hex) = s.strip_prefix('#') {
        if hex.len() == 6 {
            let v = u32::from_str_radix(hex, 16).ok()?;
            return Some(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
        }
        return None;
    }
    if let Ok(i) = s.parse::<u8>() {
        return Some(Color::Indexed(i));
    }
    Some(match s {
        "default" | "reset" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "dark-gray" | "dark-grey" | "light-black" => Color::DarkGray,
        "light-red" => Color::LightRed,
        "light-green" => Color::LightGreen,
        "light-yellow" => Color::LightYellow,
        "light-blue" => Color::LightBlue,
        "light-magenta" => Color::LightMagenta,
        "light-cyan" => Color::LightCyan,
        "white" => Color::White,
        _ => return None,
    })
}

fn parse_modifier(s: &str) -> Option<Modifier> {
    Some(match s {
        "bold" => Modifier::BOLD,
        "dim" => Modifier::DIM,
        "italic" => Modifier::ITALIC,
        "underlined" => Modifier::UNDERLINED,
        "reversed" => Modifier::REVERSED,
        "crossed_out" => Modifier::CROSSED_OUT,
        "slow_blink" => Modifier::SLOW_BLINK,
        _ => return None,
    })
}

/// A theme file's own content before `inherits` is applied.
struct ThemeFile {
    inherits: Option<String>,
    palette: HashMap<String, String>,
    /// Scope, raw value and its offset, kept raw so an inheriting file's palette applies to its parent's scopes.
    scopes: Vec<(String, RawScope, usize)>,
}

#[derive(Clone, Default)]
struct RawScope {
    fg: Option<(String, usize)>,
    bg: Option<(String, usize)>,
    modifiers: Vec<(String, usize)>,
}

fn read_theme_file(file: &Path, text: &str, warnings: &mut Vec<Warning>) -> ThemeFile {
    let mut out = ThemeFile { inherits: None, palette: HashMap::new(), scopes: Vec::new() };
    let mut warn = |offset: usize, msg: String| warnings.push(Warning(ConfigError::at(file, text, offset, msg)));
    let table = match DeTable::parse(text) {
        Ok(t) => t.into_inner(),
        Err(e) => {
            warnings.push(Warning(ConfigError::from_toml(file, text, &e)));
            return out;
        }
    };
    let str_of = |v: &DeValue| match v {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) => Some(i.to_string()),
        _ => None,
    };
    for (key, value) in table.iter() {
        let at = key.span().start;
        match (key.get_ref().as_ref(), value.get_ref()) {
            ("inherits", DeValue::String(s)) => out.inherits = Some(s.to_string()),
            ("palette", DeValue::Table(t)) => {
                for (name, v) in t.iter() {
                    match str_of(v.get_ref()) {
                        Some(c) => {
                            out.palette.insert(name.get_ref().to_string(), c);
                        }
                        None => warn(v.span().start, format!("palette `{}`: expected a colour", name.get_ref())),
                    }
                }
            }
            ("scopes", DeValue::Table(t)) => {
                for (scope, v) in t.iter() {
                    let mut raw = RawScope::default();
                    match v.get_ref() {
                        DeValue::String(s) => raw.fg = Some((s.to_string(), v.span().start)),
                        DeValue::Table(st) => {
                            for (field, fv) in st.iter() {
                                let fat = fv.span().start;
                                match (field.get_ref().as_ref(), fv.get_ref()) {
                                    ("fg", x) => raw.fg = str_of(x).map(|s| (s, fat)),
                                    ("bg", x) => raw.bg = str_of(x).map(|s| (s, fat)),
                                    ("modifiers", DeValue::Array(items)) => {
                                        for item in items.iter() {
                                            if let Some(s) = str_of(item.get_ref()) {
                                                raw.modifiers.push((s, item.span().start));
                                            }
                                        }
                                    }
                                    (other, _) => warn(
                                        field.span().start,
                                        format!("scope `{}`: unknown key `{other}`", scope.get_ref()),
                                    ),
                                }
                            }
                        }
                        _ => {
                            warn(v.span().start, format!("scope `{}`: expected a colour or a table", scope.get_ref()));
                            continue;
                        }
                    }
                    out.scopes.push((scope.get_ref().to_string(), raw, scope.span().start));
                }
            }
            (other, _) => warn(at, format!("unknown key `{other}` (expected inherits, palette or scopes)")),
        }
    }
    out
}

/// Where a theme named `name` comes from: the project's and user's theme folders, then the built-in ones.
fn find_theme(name: &str, dirs: &[PathBuf], warnings: &mut Vec<Warning>) -> Option<(PathBuf, String)> {
    for dir in dirs {
        let path = dir.join(format!("{name}.toml"));
        match super::read_text(&path) {
            Ok(Some(text)) => return Some((path, text)),
            Ok(None) => {}
            Err(e) => warnings.push(Warning(e)),
        }
    }
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(n, t)| (PathBuf::from(format!("themes/{n}.toml")), t.to_string()))
}

impl Theme {
    /// Load a theme by name from the given folders (first wins) or the built-in set.
    pub fn load(name: &str, dirs: &[PathBuf], mode: ColorMode) -> (Theme, Vec<Warning>) {
        let mut warnings = Vec::new();
        // Collect the chain child → parent, guarding against cycles.
        let mut chain: Vec<(PathBuf, String, ThemeFile)> = Vec::new();
        let mut next = Some(name.to_string());
        while let Some(n) = next.take() {
            if chain.len() > 8 || chain.iter().any(|(p, _, _)| p.file_stem().is_some_and(|s| s == n.as_str())) {
                break;
            }
            let Some((path, text)) = find_theme(&n, dirs, &mut warnings) else {
                let (file, offset) = match chain.last() {
                    Some((p, t, _)) => (p.clone(), t.find("inherits").unwrap_or(0)),
                    None => (PathBuf::from("--theme"), 0),
                };
                let text = chain.last().map(|(_, t, _)| t.clone()).unwrap_or_default();
                warnings.push(Warning(ConfigError::at(
                    &file,
                    &text,
                    offset,
                    format!(
                        "unknown theme `{n}` (built in: {}; or a file in a themes folder)",
                        Theme::names().join(", ")
                    ),
                )));
                break;
            };
            let parsed = read_theme_file(&path, &text, &mut warnings);
            next = parsed.inherits.clone();
            chain.push((path, text, parsed));
        }
        if chain.is_empty() {
            let (path, text) = find_theme("default", &[], &mut warnings).unwrap_or_default();
            let parsed = read_theme_file(&path, &text, &mut warnings);
            chain.push((path, text, parsed));
        }
        // The child's palette overrides its parents'; scopes likewise.
        let mut palette: HashMap<String, String> = HashMap::new();
        for (_, _, f) in chain.iter().rev() {
            palette.extend(f.palette.clone());
        }
        let mut scopes = HashMap::new();
        for (path, text, f) in chain.iter().rev() {
            for (scope, raw, _) in &f.scopes {
                let mut style = ScopeStyle::default();
                let mut color = |c: &Option<(String, usize)>| {
                    c.as_ref().and_then(|(s, at)| {
                        let parsed = parse_color(s, &palette);
                        if parsed.is_none() {
                            warnings.push(Warning(ConfigError::at(
                                path,
                                text,
                                *at,
                                format!("scope `{scope}`: unknown colour `{s}`"),
                            )));
                        }
                        parsed
                    })
                };
                style.fg = color(&raw.fg);
                style.bg = color(&raw.bg);
                for (m, at) in &raw.modifiers {
                    match parse_modifier(m) {
                        Some(x) => style.modifiers |= x,
                        None => warnings.push(Warning(ConfigError::at(
                            path,
                            text,
                            *at,
                            format!("scope `{scope}`: unknown modifier `{m}`"),
                        ))),
                    }
                }
                scopes.insert(scope.clone(), style);
            }
        }
        (Theme { name: name.to_string(), scopes, mode }, warnings)
    }

    pub fn builtin(name: &str, mode: ColorMode) -> Theme {
        Theme::load(name, &[], mode).0
    }

    /// The style of a scope, falling back from `a.b.c` to `a.b` to `a`.
    pub fn style(&self, scope: &str) -> Style {
        let mut s = scope;
        loop {
            if let Some(found) = self.scopes.get(s) {
                let mut style = Style::default().add_modifier(found.modifiers);
                if let Some(fg) = found.fg.and_then(|c| self.mode.adapt(c)) {
                    style = style.fg(fg);
                }
                if let Some(bg) = found.bg.and_then(|c| self.mode.adapt(c)) {
                    style = style.bg(bg);
                }
                return style;
            }
            match s.rfind('.') {
                Some(i) => s = &s[..i],
                None => return Style::default(),
            }
        }
    }

    pub fn names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_themes_load_clean() {
        for name in Theme::names() {
            let (_, warnings) = Theme::load(name, &[], ColorMode::TrueColor);
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
        }
    }

    #[test]
    fn scopes_fall_back_to_broader_ones() {
        let t = Theme::builtin("default", ColorMode::TrueColor);
        assert_eq!(t.style("state.busy").fg, Some(Color::Rgb(0x98, 0xc3, 0x79)));
        assert!(t.style("state.busy").add_modifier.contains(Modifier::BOLD));
        assert_eq!(t.style("state.unknown").fg, t.style("state").fg);
        assert_eq!(t.style("nothing.at.all"), Style::default());
    }

    #[test]
    fn inheriting_theme_swaps_palette_for_parent_scopes() {
        let t = Theme::builtin("light", ColorMode::TrueColor);
        assert_eq!(t.style("state.busy").fg, Some(Color::Rgb(0x3d, 0x8a, 0x31)));
        let hc = Theme::builtin("high-contrast", ColorMode::TrueColor);
        assert_eq!(hc.style("roster.selected").bg, Some(Color::White));
    }

    #[test]
    fn no_color_and_256_fallback() {
        let t = Theme::builtin("default", ColorMode::NoColor);
        assert_eq!(t.style("state.busy").fg, None);
        assert!(t.style("state.busy").add_modifier.contains(Modifier::BOLD));
        let t = Theme::builtin("default", ColorMode::Ansi256);
        assert!(matches!(t.style("state.busy").fg, Some(Color::Indexed(_))));
        assert_eq!(ColorMode::detect(Some("1"), Some("truecolor")), ColorMode::NoColor);
        assert_eq!(ColorMode::detect(Some(""), Some("truecolor")), ColorMode::TrueColor);
        assert_eq!(ColorMode::detect(None, None), ColorMode::Ansi256);
    }

    #[test]
    fn bad_entries_warn_with_location_and_the_rest_loads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.toml"),
            "inherits = \"default\"\n[scopes]\n\"state.busy\" = { fg = \"chartreuse\" }\n\"state.idle\" = { modifiers = [\"blinky\"] }\ncolour = 1\n\"state.paused\" = \"#ff0000\"\n",
        )
        .unwrap();
        let (t, warnings) = Theme::load("mine", &[dir.path().to_path_buf()], ColorMode::TrueColor);
        let msgs: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(
            msgs.iter().any(|m| m.contains("mine.toml:3:23") && m.contains("unknown colour `chartreuse`")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("mine.toml:4:31") && m.contains("unknown modifier `blinky`")),
            "{msgs:?}"
        );
        assert!(msgs.iter().any(|m| m.contains("colour")), "{msgs:?}");
        assert_eq!(t.style("state.paused").fg, Some(Color::Rgb(255, 0, 0)));
        let (_, w) = Theme::load("nosuch", &[], ColorMode::TrueColor);
        assert!(w[0].to_string().contains("unknown theme `nosuch`"));
    }
}
