//! Agent presets (claude, codex, …) as data: command, resume arguments, Enter delay and state rules.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::rules::{parse_version, Cond, Region, Rule, ScreenKind};
use super::ConfigError;
use crate::protocol::AgentState;

const BUILTIN: &str = include_str!("../../assets/presets.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCond {
    regex: Spanned<String>,
    region: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    name: Option<String>,
    state: AgentState,
    /// Shorthand for one `all` condition.
    regex: Option<Spanned<String>>,
    /// The region of the shorthand, and of conditions that name none.
    region: Option<Spanned<String>>,
    #[serde(default)]
    all: Vec<RawCond>,
    #[serde(default)]
    any: Vec<RawCond>,
    #[serde(default)]
    not: Vec<RawCond>,
    #[serde(default)]
    screen: Option<Spanned<String>>,
    #[serde(default)]
    min_version: Option<Spanned<String>>,
    #[serde(default)]
    below_version: Option<Spanned<String>>,
    #[serde(default)]
    priority: i32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPreset {
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    resume_args: Vec<String>,
    #[serde(default)]
    resume_session_args: Vec<String>,
    #[serde(default)]
    prompt_args: Vec<String>,
    #[serde(default)]
    enter_delay_ms: u64,
    #[serde(default)]
    hooks: Option<String>,
    #[serde(default)]
    queues_input: bool,
    #[serde(default)]
    note_args: Vec<String>,
    /// Where the CLI's version shows on its screen (first group), so version-specific rules apply.
    #[serde(default)]
    version_regex: Option<Spanned<String>>,
    #[serde(default)]
    rules: Vec<RawRule>,
    /// A job in the terminal's foreground (not the agent's own process) means it works.
    #[serde(default)]
    foreground_busy: bool,
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    writes: Vec<String>,
    #[serde(default)]
    inert: Vec<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub struct Preset {
    pub name: String,
    pub command: String,
    pub args: Vec<String>,
    pub resume_args: Vec<String>,
    pub resume_session_args: Vec<String>,
    /// How an initial prompt is passed on the command line; empty means it is typed in once the agent is ready.
    pub prompt_args: Vec<String>,
    pub enter_delay_ms: u64,
    /// Which hook integration the agent CLI supports (`claude`).
    pub hooks: Option<String>,
    /// Input typed while it works is queued and read after the turn (urgent mail may go in then).
    pub queues_input: bool,
    /// How the mailbox note reaches its system prompt (`{note}`); empty: the note goes into the first prompt.
    pub note_args: Vec<String>,
    pub version_regex: Option<regex::Regex>,
    pub rules: Vec<Rule>,
    /// A job in the terminal's foreground other than the agent's own process means it works: for shells and
    /// REPLs, whose quiet commands draw nothing while they run.
    pub foreground_busy: bool,
    /// Files the CLI writes for itself (its chat history), never an agent's work: git ignores them (patterns
    /// of `.git/info/exclude`).
    pub ignore: Vec<String>,
    /// Where the CLI writes for itself outside the worktree (`~/.claude`): what `guard = "enforce"` leaves
    /// writable besides the worktree.
    pub writes: Vec<String>,
    /// Lines muster itself makes the CLI show (Gemini's banner while a muster hook runs): their coming and going
    /// is not the agent's activity.
    pub inert: Vec<Regex>,
}

fn regex(file: &Path, text: &str, preset: &str, r: &Spanned<String>) -> Result<Regex, ConfigError> {
    Regex::new(r.get_ref())
        .map_err(|e| ConfigError::at(file, text, r.span().start, format!("preset `{preset}`: bad regex: {e}")))
}

fn rule(file: &Path, text: &str, preset: &str, i: usize, r: RawRule) -> Result<Rule, ConfigError> {
    let bad = |span: std::ops::Range<usize>, what: String| {
        ConfigError::at(file, text, span.start, format!("preset `{preset}`: {what}"))
    };
    let region = |s: Option<&Spanned<String>>, default: Region| match s {
        None => Ok(default),
        Some(s) => Region::parse(s.get_ref())
            .ok_or_else(|| bad(s.span(), format!("bad region `{}` (all, title, bottom:N, top:N)", s.get_ref()))),
    };
    let default_region = region(r.region.as_ref(), Region::All)?;
    let conds = |raw: Vec<RawCond>| -> Result<Vec<Cond>, ConfigError> {
        raw.into_iter()
            .map(|c| {
                Ok(Cond {
                    regex: regex(file, text, preset, &c.regex)?,
                    region: region(c.region.as_ref(), default_region)?,
                })
            })
            .collect()
    };
    let mut all = conds(r.all)?;
    if let Some(re) = &r.regex {
        all.insert(0, Cond { regex: regex(file, text, preset, re)?, region: default_region });
    }
    let (any, not) = (conds(r.any)?, conds(r.not)?);
    if all.is_empty() && any.is_empty() {
        return Err(ConfigError::at(
            file,
            text,
            0,
            format!("preset `{preset}`: rule {} has no condition (regex, all or any)", i + 1),
        ));
    }
    let screen = match r.screen.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("any", _)) => ScreenKind::Any,
        Some(("alt", _)) => ScreenKind::Alt,
        Some(("main", _)) => ScreenKind::Main,
        Some((other, span)) => return Err(bad(span, format!("bad screen `{other}` (any, alt, main)"))),
    };
    let version = |v: Option<Spanned<String>>| match v {
        None => Ok(None),
        Some(v) => {
            parse_version(v.get_ref()).map(Some).ok_or_else(|| bad(v.span(), format!("bad version `{}`", v.get_ref())))
        }
    };
    Ok(Rule {
        name: r.name.unwrap_or_else(|| format!("{preset}#{}", i + 1)),
        state: r.state,
        priority: r.priority,
        all,
        any,
        not,
        screen,
        min_version: version(r.min_version)?,
        below_version: version(r.below_version)?,
    })
}

pub fn parse_presets(file: &Path, text: &str) -> Result<BTreeMap<String, Preset>, ConfigError> {
    let raw: BTreeMap<String, RawPreset> = toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
    let mut out = BTreeMap::new();
    for (name, p) in raw {
        let mut rules = p
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| rule(file, text, &name, i, r))
            .collect::<Result<Vec<_>, _>>()?;
        // Stable: rules of equal priority keep the file's order.
        rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
        let version_regex = p.version_regex.as_ref().map(|r| regex(file, text, &name, r)).transpose()?;
        let inert = p.inert.iter().map(|r| regex(file, text, &name, r)).collect::<Result<Vec<_>, _>>()?;
        out.insert(
            name.clone(),
            Preset {
                name,
                command: p.command,
                args: p.args,
                resume_args: p.resume_args,
                resume_session_args: p.resume_session_args,
                prompt_args: p.prompt_args,
                enter_delay_ms: p.enter_delay_ms,
                hooks: p.hooks,
                queues_input: p.queues_input,
                note_args: p.note_args,
                version_regex,
                rules,
                foreground_busy: p.foreground_busy,
                ignore: p.ignore,
                writes: p.writes,
                inert,
            },
        );
    }
    Ok(out)
}

/// The presets that ship with muster.
pub fn builtin() -> BTreeMap<String, Preset> {
    // The embedded file is tested; failing here is a build defect, not bad input.
    parse_presets(Path::new("assets/presets.toml"), BUILTIN).expect("built-in presets parse")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_presets_cover_every_kind() {
        let p = builtin();
        for kind in ["claude", "codex", "aider", "gemini", "opencode", "shell", "custom", "demo"] {
            assert!(p.contains_key(kind), "missing preset {kind}");
        }
        assert_eq!(p["claude"].resume_args, vec!["--continue"]);
        assert_eq!(p["claude"].hooks.as_deref(), Some("claude"));
        assert!(p["claude"].rules[0].priority >= p["claude"].rules[1].priority);
    }

    #[test]
    fn bad_preset_file_names_location() {
        let err = parse_presets(Path::new("p.toml"), "[x]\ncommand = 3\n").unwrap_err();
        assert_eq!((err.line, err.col), (2, 11));
        let err = parse_presets(Path::new("p.toml"), "[x]\ncommand='a'\n[[x.rules]]\nstate='waiting'\nregex='('\n")
            .unwrap_err();
        assert!(err.message.contains("bad regex"), "{err}");
        assert_eq!((err.line, err.col), (5, 7));
        let err = parse_presets(
            Path::new("p.toml"),
            "[x]\ncommand='a'\n[[x.rules]]\nstate='idle'\nall=[{regex='a', region='middle'}]\n",
        )
        .unwrap_err();
        assert!(err.message.contains("bad region `middle`"), "{err}");
        assert_eq!(err.line, 5);
        let err = parse_presets(Path::new("p.toml"), "[x]\ncommand='a'\n[[x.rules]]\nstate='idle'\n").unwrap_err();
        assert!(err.message.contains("no condition"), "{err}");
    }
}
