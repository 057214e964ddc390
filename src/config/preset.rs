//! Agent presets (claude, codex, …) as data: command, resume arguments, Enter delay and state rules.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;

use super::ConfigError;
use crate::engine::detect::{Region, Rule};
use crate::engine::AgentState;

const BUILTIN: &str = include_str!("../../assets/presets.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    state: AgentState,
    regex: String,
    #[serde(default = "default_region")]
    region: String,
    #[serde(default)]
    priority: i32,
}

fn default_region() -> String {
    "all".into()
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
    prompt_args: Vec<String>,
    #[serde(default)]
    enter_delay_ms: u64,
    #[serde(default)]
    hooks: Option<String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Clone)]
pub struct Preset {
    pub name: String,
    pub command: String,
    pub args: Vec<String>,
    pub resume_args: Vec<String>,
    /// How an initial prompt is passed on the command line; empty means it is typed in once the agent is ready.
    pub prompt_args: Vec<String>,
    pub enter_delay_ms: u64,
    /// Which hook integration the agent CLI supports (`claude`).
    pub hooks: Option<String>,
    pub rules: Vec<Rule>,
}

pub fn parse_presets(file: &Path, text: &str) -> Result<BTreeMap<String, Preset>, ConfigError> {
    let raw: BTreeMap<String, RawPreset> = toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
    let mut out = BTreeMap::new();
    for (name, p) in raw {
        let mut rules = Vec::new();
        for r in p.rules {
            let regex = Regex::new(&r.regex).map_err(|e| ConfigError {
                file: file.to_path_buf(),
                line: 0,
                col: 0,
                message: format!("preset `{name}`: bad regex `{}`: {e}", r.regex),
            })?;
            let region = Region::parse(&r.region).ok_or_else(|| ConfigError {
                file: file.to_path_buf(),
                line: 0,
                col: 0,
                message: format!("preset `{name}`: bad region `{}`", r.region),
            })?;
            rules.push(Rule { state: r.state, regex, region, priority: r.priority });
        }
        rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
        out.insert(
            name.clone(),
            Preset {
                name,
                command: p.command,
                args: p.args,
                resume_args: p.resume_args,
                prompt_args: p.prompt_args,
                enter_delay_ms: p.enter_delay_ms,
                hooks: p.hooks,
                rules,
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
    }
}
