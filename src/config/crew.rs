//! The crew file, `.muster/crew.toml`: which agents run, with which preset and overrides. A bad crew file is an
//! error naming file:line:col and the key, and starts nothing.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::gate::{GateSpec, RawGate, When};
use super::preset::Preset;
use super::ConfigError;

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub base: Option<String>,
    pub worktree: Option<bool>,
    pub kind: Option<String>,
    /// Only these variables of muster's environment reach the agents (`NAME` or a prefix `NAME*`); unset, all do.
    pub inherit_env: Option<Vec<String>>,
    /// Files only the operator or a merge changes (lock files, say): globs, as `owns`.
    pub shared: Option<Vec<String>>,
    /// `watch` (report) or `enforce` (also block writes outside the worktree at the OS).
    pub guard: Option<super::owns::GuardMode>,
    /// Seconds busy with no output and no file change before the agent is said to be stalled.
    pub stall: Option<u64>,
    /// MiB its worktree may take on disk (at 80 % a finding, at 100 % it is paused).
    pub disk_quota: Option<u64>,
    /// How many agents one agent may spawn (`muster spawn`), and how deep a line of spawned agents may go.
    pub max_children: Option<u32>,
    pub max_depth: Option<u32>,
    /// What agents may do to others through muster (`spawn`, `send`, `stop`, `remove`, `read`, `wait`); unset,
    /// all of it, each within its bounds (`crate::config::lead`).
    pub agents_may: Option<Vec<super::lead::Verb>>,
}

impl Defaults {
    /// `self` wins over `other`.
    pub fn over(&self, other: &Defaults) -> Defaults {
        Defaults {
            base: self.base.clone().or_else(|| other.base.clone()),
            worktree: self.worktree.or(other.worktree),
            kind: self.kind.clone().or_else(|| other.kind.clone()),
            inherit_env: self.inherit_env.clone().or_else(|| other.inherit_env.clone()),
            shared: self.shared.clone().or_else(|| other.shared.clone()),
            guard: self.guard.or(other.guard),
            stall: self.stall.or(other.stall),
            disk_quota: self.disk_quota.or(other.disk_quota),
            max_children: self.max_children.or(other.max_children),
            max_depth: self.max_depth.or(other.max_depth),
            agents_may: self.agents_may.clone().or_else(|| other.agents_may.clone()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrew {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default, rename = "agent")]
    agents: Vec<RawAgent>,
    #[serde(default, rename = "gate")]
    gates: Vec<RawGate>,
    max_parallel_gates: Option<Spanned<usize>>,
    #[serde(default, rename = "role")]
    roles: Vec<super::plan::RawRole>,
    #[serde(default, rename = "wave")]
    waves: Vec<super::plan::RawWave>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    name: Spanned<String>,
    kind: Option<Spanned<String>>,
    command: Option<String>,
    args: Option<Vec<String>>,
    resume_args: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    prompt: Option<String>,
    base: Option<String>,
    worktree: Option<bool>,
    enter_delay_ms: Option<u64>,
    inherit_env: Option<Vec<String>>,
    gates: Option<Spanned<Vec<String>>>,
    owns: Option<Spanned<Vec<String>>>,
    guard: Option<super::owns::GuardMode>,
    writes: Option<Vec<String>>,
    stall: Option<Spanned<u64>>,
    disk_quota: Option<Spanned<u64>>,
    role: Option<Spanned<String>>,
    brief: Option<String>,
    read_only: Option<bool>,
    setup: Option<String>,
    wave: Option<Spanned<u32>>,
    after: Option<Spanned<Vec<String>>>,
    advance: Option<super::plan::Advance>,
    reviews: Option<Spanned<Vec<String>>>,
    parent: Option<Spanned<String>>,
}

/// One agent, with its preset and overrides folded together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSpec {
    pub name: String,
    pub kind: String,
    pub command: String,
    pub args: Vec<String>,
    pub resume_args: Vec<String>,
    /// Resume exactly one conversation of the CLI (`{session}`: its id, learned from its hooks).
    #[serde(default)]
    pub resume_session_args: Vec<String>,
    pub prompt_args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub prompt: Option<String>,
    /// The branch the agent's branch starts from; None means the repository's current branch.
    pub base: Option<String>,
    pub worktree: bool,
    pub enter_delay_ms: u64,
    pub hooks: Option<String>,
    /// Only these variables of muster's environment reach the agent (`NAME`, or `PREFIX*`); `None`: all of them.
    #[serde(default)]
    pub inherit_env: Option<Vec<String>>,
    /// The gates run after its turns; `None`: every gate with `when = "turn"`.
    #[serde(default)]
    pub gates: Option<Vec<String>>,
    /// The files it may change (globs, `config::owns`); `None`: any.
    #[serde(default)]
    pub owns: Option<Vec<String>>,
    /// Report escapes, or also block writes outside its worktree at the OS.
    #[serde(default)]
    pub guard: super::owns::GuardMode,
    /// Under `enforce`, more places it may write (its CLI's own come from the preset); `~` is the home folder.
    #[serde(default)]
    pub writes: Vec<String>,
    /// Seconds busy with no output and no file change before it is said to be stalled.
    #[serde(default)]
    pub stall: Option<u64>,
    /// MiB its worktree may take on disk.
    #[serde(default)]
    pub disk_quota: Option<u64>,
    /// The `[[role]]` it took its fields from.
    #[serde(default)]
    pub role: Option<String>,
    /// Its role's instructions: the CLI's system prompt where it has one, else before its first prompt.
    #[serde(default)]
    pub brief: Option<String>,
    /// It may read, not change: its CLI's read-only mode where the manifest has one, and every write a finding
    /// (denied at the OS under `enforce`).
    #[serde(default)]
    pub read_only: bool,
    /// A shell command run in its worktree before it starts (`npm ci`).
    #[serde(default)]
    pub setup: Option<String>,
    #[serde(default)]
    pub wave: Option<u32>,
    /// The agents it waits for (its `after`, and every agent of the waves before its own): it starts once each
    /// is done.
    #[serde(default)]
    pub after: Vec<String>,
    /// When it counts as done for the agents that follow it.
    #[serde(default)]
    pub advance: super::plan::Advance,
    /// Its wave waits for the operator's word too.
    #[serde(default)]
    pub approve: bool,
    /// The agents whose work it reviews (`muster review`): their diffs are handed to it, and they are green only
    /// once it approved their newest work.
    #[serde(default)]
    pub reviews: Vec<String>,
    /// The agent that spawned it (`muster spawn`): it may steer, read, wait on, stop and remove it, and hears
    /// of its results.
    #[serde(default)]
    pub parent: Option<String>,
}

impl AgentSpec {
    /// The gates of `crew` this agent runs at `when`.
    pub fn gates_at<'a>(&self, crew: &'a [GateSpec], when: When) -> Vec<&'a GateSpec> {
        crew.iter()
            .filter(|g| g.when == when)
            .filter(|g| self.gates.as_ref().is_none_or(|names| names.contains(&g.name)))
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Crew {
    pub agents: Vec<AgentSpec>,
    /// Files only the operator or a merge changes.
    pub shared: Vec<String>,
    pub gates: Vec<GateSpec>,
    /// How many gates run at once for the whole crew; `None`: half the cores.
    pub max_parallel_gates: Option<usize>,
    /// What agents may do to each other through muster.
    pub lead: super::lead::Limits,
}

/// The crew's `owns` against the repository's `files`: two agents whose `owns` take a same file is an error at
/// the second one's `owns` (they run at the same time: which one may change it?) — unless one waits for the
/// other in the crew's plan (`crew`: its waves and `after`), so they never run together; a pattern that takes no
/// file is a warning at its agent's `owns` (a typo?).
pub fn check_ownership(
    file: &Path,
    text: &str,
    files: &[String],
    crew: &Crew,
) -> Result<Vec<super::Warning>, ConfigError> {
    let raw: RawCrew = toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
    let mut owners: Vec<(String, super::owns::Globs)> = Vec::new();
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    let mut warnings = Vec::new();
    for a in &raw.agents {
        let Some(owns) = &a.owns else { continue };
        let Ok(globs) = super::owns::Globs::new(owns.get_ref()) else { continue };
        let name = a.name.get_ref().clone();
        at.insert(name.clone(), owns.span().start);
        for p in owns.get_ref().iter().filter(|p| !p.starts_with('!')) {
            let one = super::owns::Globs::new(std::slice::from_ref(p)).ok();
            if one.is_some_and(|g| !files.iter().any(|f| g.matches(f))) {
                let msg = format!("key `owns` of `{name}`: `{p}` takes no file of the repository (a typo?)");
                warnings.push(super::Warning(ConfigError::at(file, text, owns.span().start, msg)));
            }
        }
        owners.push((name, globs));
    }
    let apart = |a: &str, b: &str| follows(crew, a, b) || follows(crew, b, a);
    if let Some((a, b, f)) = super::owns::overlaps(&owners, files).into_iter().find(|(a, b, _)| !apart(a, b)) {
        return Err(ConfigError::at(
            file,
            text,
            at[b],
            format!("key `owns`: `{b}` and `{a}` both own `{f}` (agents that run together own different files)"),
        ));
    }
    Ok(warnings)
}

/// Whether agent `a` waits, directly or through others, for agent `b`.
fn follows(crew: &Crew, a: &str, b: &str) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![a];
    while let Some(n) = todo.pop() {
        let Some(spec) = crew.agents.iter().find(|s| s.name == n) else { continue };
        for d in &spec.after {
            if d == b {
                return true;
            }
            if seen.insert(d.as_str()) {
                todo.push(d);
            }
        }
    }
    false
}

/// Whether a name is safe as a branch (`muster/<name>`), a ref and a directory name.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 40 {
        return Err("agent names are 1 to 40 characters".into());
    }
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let chars_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ["operator", "crew", "gate", "guard"].contains(&name) {
        return Err(format!(
            "agent name `{name}` is one muster's mail uses for itself (operator, crew, gate, guard): choose another"
        ));
    }
    if !first_ok || !chars_ok || name.contains("..") || name.ends_with('.') || name.ends_with(".lock") {
        return Err(format!(
            "agent name `{name}` is not safe as a branch and directory name: use letters, digits, `-`, `_` and \
             `.`, starting with a letter or digit"
        ));
    }
    Ok(())
}

pub fn parse_crew(
    file: &Path,
    text: &str,
    presets: &BTreeMap<String, Preset>,
    user_defaults: &Defaults,
) -> Result<Crew, ConfigError> {
    let raw: RawCrew = toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
    let defaults = raw.defaults.over(user_defaults);
    let gates = super::gate::gates(file, text, raw.gates)?;
    let max_parallel_gates = match raw.max_parallel_gates {
        Some(n) if *n.get_ref() == 0 || *n.get_ref() > 64 => {
            return Err(ConfigError::at(file, text, n.span().start, "key `max_parallel_gates`: between 1 and 64"));
        }
        n => n.map(|n| n.into_inner()),
    };
    let roles = roles_by_name(file, text, raw.roles)?;
    let waves = waves_by_number(file, text, raw.waves)?;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut agents = Vec::new();
    let mut placed = Vec::new();
    let mut reviewing: Vec<(String, Spanned<Vec<String>>)> = Vec::new();
    let mut parents: Vec<(String, Spanned<String>)> = Vec::new();
    for a in raw.agents {
        let a = take_role(file, text, a, &roles)?;
        let name_at = a.name.span().start;
        let name = a.name.get_ref().clone();
        validate_name(&name).map_err(|m| ConfigError::at(file, text, name_at, format!("key `name`: {m}")))?;
        if let Some(first) = seen.insert(name.clone(), name_at) {
            let (line, _) = super::location::line_col(text, first);
            return Err(ConfigError::at(
                file,
                text,
                name_at,
                format!("key `name`: duplicate agent name `{name}` (first used on line {line})"),
            ));
        }
        let (kind, kind_at) = match &a.kind {
            Some(k) => (k.get_ref().clone(), k.span().start),
            None => match (&defaults.kind, &a.command) {
                (Some(k), _) => (k.clone(), name_at),
                (None, Some(_)) => ("custom".to_string(), name_at),
                (None, None) => {
                    return Err(ConfigError::at(
                        file,
                        text,
                        name_at,
                        format!("agent `{name}` needs a `kind` (a preset) or a `command`"),
                    ))
                }
            },
        };
        let preset = presets.get(&kind).ok_or_else(|| {
            let known: Vec<&str> = presets.keys().map(String::as_str).collect();
            ConfigError::at(
                file,
                text,
                kind_at,
                format!("key `kind`: unknown preset `{kind}` (known: {})", known.join(", ")),
            )
        })?;
        if let Some(names) = &a.gates {
            if let Some(unknown) = names.get_ref().iter().find(|n| !gates.iter().any(|g| &g.name == *n)) {
                let known: Vec<&str> = gates.iter().map(|g| g.name.as_str()).collect();
                return Err(ConfigError::at(
                    file,
                    text,
                    names.span().start,
                    format!("key `gates`: no gate `{unknown}` in this file (gates: {})", known.join(", ")),
                ));
            }
        }
        if let Some(owns) = &a.owns {
            if let Err((i, e)) = super::owns::Globs::new(owns.get_ref()) {
                let at = owns.span().start;
                return Err(ConfigError::at(file, text, at, format!("key `owns`: pattern {}: {e}", i + 1)));
            }
        }
        for (key, v) in [("stall", &a.stall), ("disk_quota", &a.disk_quota)] {
            if let Some(v) = v.as_ref().filter(|v| *v.get_ref() == 0) {
                return Err(ConfigError::at(file, text, v.span().start, format!("key `{key}`: at least 1")));
            }
        }
        if let Some(w) = a.wave.as_ref().filter(|w| *w.get_ref() == 0) {
            return Err(ConfigError::at(file, text, w.span().start, "key `wave`: waves are numbered from 1"));
        }
        let wave = a.wave.as_ref().map(|w| *w.get_ref());
        placed.push(super::plan::Placed { name: name.clone(), at: name_at, wave, after: a.after.clone() });
        let wave_cfg = wave.and_then(|w| waves.get(&w));
        if let Some(r) = &a.reviews {
            reviewing.push((name.clone(), r.clone()));
        }
        let command = a.command.clone().unwrap_or_else(|| preset.command.clone());
        if command.trim().is_empty() {
            return Err(ConfigError::at(
                file,
                text,
                name_at,
                format!("agent `{name}`: kind `{kind}` needs a `command`"),
            ));
        }
        agents.push(AgentSpec {
            name,
            kind,
            command,
            args: a.args.unwrap_or_else(|| preset.args.clone()),
            resume_args: a.resume_args.clone().unwrap_or_else(|| preset.resume_args.clone()),
            resume_session_args: if a.resume_args.is_some() { Vec::new() } else { preset.resume_session_args.clone() },
            prompt_args: preset.prompt_args.clone(),
            env: a.env,
            prompt: a.prompt,
            base: a.base.or_else(|| defaults.base.clone()),
            worktree: a.worktree.or(defaults.worktree).unwrap_or(true),
            enter_delay_ms: a.enter_delay_ms.unwrap_or(preset.enter_delay_ms),
            hooks: preset.hooks.clone(),
            inherit_env: a.inherit_env.or_else(|| defaults.inherit_env.clone()),
            gates: a.gates.map(Spanned::into_inner),
            // A read-only agent owns nothing: every write it makes is a finding (and denied under enforce).
            owns: if a.read_only == Some(true) { Some(Vec::new()) } else { a.owns.map(Spanned::into_inner) },
            guard: a.guard.or(defaults.guard).unwrap_or_default(),
            writes: preset.writes.iter().chain(a.writes.iter().flatten()).cloned().collect(),
            stall: a.stall.map(Spanned::into_inner).or(defaults.stall),
            disk_quota: a.disk_quota.map(Spanned::into_inner).or(defaults.disk_quota),
            role: a.role.map(Spanned::into_inner),
            brief: a.brief,
            read_only: a.read_only.unwrap_or(false),
            setup: a.setup,
            wave,
            after: Vec::new(),
            advance: a.advance.or(wave_cfg.and_then(|w| w.advance)).unwrap_or_default(),
            approve: wave_cfg.is_some_and(|w| w.approve),
            reviews: a.reviews.map(Spanned::into_inner).unwrap_or_default(),
            parent: a.parent.as_ref().map(|p| p.get_ref().clone()),
        });
        if let Some(p) = a.parent {
            parents.push((name_of_last(&agents), p));
        }
    }
    for (agent, after) in agents.iter_mut().zip(super::plan::dependencies(file, text, &placed)?) {
        agent.after = after;
    }
    for (reviewer, names) in &reviewing {
        let at = names.span().start;
        for n in names.get_ref() {
            if n == reviewer {
                return Err(ConfigError::at(file, text, at, format!("key `reviews`: `{n}` cannot review itself")));
            }
            if !agents.iter().any(|a| &a.name == n) {
                let known: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
                return Err(ConfigError::at(
                    file,
                    text,
                    at,
                    format!("key `reviews`: no agent `{n}` in this crew (agents: {})", known.join(", ")),
                ));
            }
        }
    }
    let shared = defaults.shared.clone().unwrap_or_default();
    if let Err((i, e)) = super::owns::Globs::new(&shared) {
        return Err(ConfigError::at(file, text, 0, format!("key `shared`: pattern {}: {e}", i + 1)));
    }
    let names: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
    super::lead::check_parents(file, text, &names, &parents)?;
    let lead = super::lead::Limits::new(defaults.max_children, defaults.max_depth, defaults.agents_may.clone());
    Ok(Crew { agents, shared, gates, max_parallel_gates, lead })
}

/// Reviewers that run the same CLI as an agent they review: a warning at their `reviews` (a model tends to pass
/// its own kind of mistakes; another CLI reviews better).
pub fn review_warnings(file: &Path, text: &str, crew: &Crew) -> Vec<super::Warning> {
    let Ok(raw) = toml::from_str::<RawCrew>(text) else { return Vec::new() };
    let mut out = Vec::new();
    for a in &raw.agents {
        let Some(spec) = crew.agents.iter().find(|s| &s.name == a.name.get_ref()) else { continue };
        let at = a.reviews.as_ref().map_or(a.name.span().start, |r| r.span().start);
        for n in &spec.reviews {
            if crew.agents.iter().any(|o| &o.name == n && o.kind == spec.kind && o.kind != "custom") {
                let msg = format!(
                    "key `reviews` of `{}`: it runs the same CLI ({}) as `{n}`, which it reviews (another CLI catches more)",
                    spec.name, spec.kind
                );
                out.push(super::Warning(ConfigError::at(file, text, at, msg)));
            }
        }
    }
    out
}

/// The crew's `[[role]]`s by name; a duplicate is an error at its second `name`.
fn roles_by_name(
    file: &Path,
    text: &str,
    raw: Vec<super::plan::RawRole>,
) -> Result<BTreeMap<String, super::plan::RawRole>, ConfigError> {
    let mut roles = BTreeMap::new();
    for r in raw {
        let name = r.name.get_ref().clone();
        if roles.contains_key(&name) {
            return Err(ConfigError::at(
                file,
                text,
                r.name.span().start,
                format!("key `name`: a second role `{name}`"),
            ));
        }
        roles.insert(name, r);
    }
    Ok(roles)
}

/// The crew's `[[wave]]`s by number; a duplicate is an error at its second `wave`.
fn waves_by_number(
    file: &Path,
    text: &str,
    raw: Vec<super::plan::RawWave>,
) -> Result<BTreeMap<u32, super::plan::RawWave>, ConfigError> {
    let mut waves = BTreeMap::new();
    for w in raw {
        let n = *w.wave.get_ref();
        if n == 0 || waves.contains_key(&n) {
            let why = if n == 0 { "waves are numbered from 1".to_string() } else { format!("a second wave {n}") };
            return Err(ConfigError::at(file, text, w.wave.span().start, format!("key `wave`: {why}")));
        }
        waves.insert(n, w);
    }
    Ok(waves)
}

/// An agent with the fields of its `role` it does not set itself (its own `env` over the role's).
fn take_role(
    file: &Path,
    text: &str,
    mut a: RawAgent,
    roles: &BTreeMap<String, super::plan::RawRole>,
) -> Result<RawAgent, ConfigError> {
    let Some(role) = &a.role else { return Ok(a) };
    let Some(r) = roles.get(role.get_ref()) else {
        let known: Vec<&str> = roles.keys().map(String::as_str).collect();
        return Err(ConfigError::at(
            file,
            text,
            role.span().start,
            format!("key `role`: no role `{}` in this file (roles: {})", role.get_ref(), known.join(", ")),
        ));
    };
    let r = r.clone();
    a.kind = a.kind.or(r.kind);
    a.command = a.command.or(r.command);
    a.args = a.args.or(r.args);
    a.brief = a.brief.or(r.brief);
    a.owns = a.owns.or(r.owns);
    a.gates = a.gates.or(r.gates);
    a.read_only = a.read_only.or(r.read_only);
    a.setup = a.setup.or(r.setup);
    a.advance = a.advance.or(r.advance);
    a.reviews = a.reviews.or(r.reviews);
    let mut env = r.env;
    env.extend(std::mem::take(&mut a.env));
    a.env = env;
    Ok(a)
}

/// The commented crew file `muster init` writes.
pub const TEMPLATE: &str = r#"# muster crew file: the agents that work on this repository.
# Each [[agent]] runs in its own PTY, git worktree (.muster/worktrees/<name>) and branch (muster/<name>).
#
# [defaults]               # applies to every agent below
# base = "main"            # branch the agents' branches start from (default: the current branch)
# worktree = true          # false: the agent runs in the repository itself
# inherit_env = ["PATH", "HOME", "USER", "SHELL", "LANG", "LC_*", "TMPDIR"]
#                          # only these variables of your environment reach the agents (default: all of
#                          # them, secrets included); agent CLIs need their API keys listed here too
#
# Keys of an agent:
#   name          letters, digits, - _ . (used for the branch, ref and directory)
#   kind          claude | codex | gemini | opencode | copilot | qwen | kilo | pi | aider | … | shell | custom
#                 (`muster agents list`)
#   command, args override the preset's command line
#   resume_args   arguments used when the agent is relaunched
#   env           extra environment, e.g. env = { RUST_LOG = "debug" }
#   inherit_env   as in [defaults]
#   prompt        first message for the agent
#   base, worktree   as in [defaults]
#   enter_delay_ms   wait between a pasted message and its Enter
#   gates         the gates run after its turns, e.g. gates = ["test"] (default: every `when = "turn"` gate)
#   owns          the files it may change, e.g. owns = ["src/api/", "tests/api_*.rs", "!src/api/generated/"]
#                 (the watchdog reports writes outside them as they happen, `f` shows them; `muster guard check`
#                 lists what an agent's branch changed outside them; in [defaults], shared = [...] names files
#                 only you or a merge change, e.g. shared = ["Cargo.lock"])
#   guard         "watch" (default: report) or "enforce": also make writes outside its worktree fail (Landlock;
#                 the main checkout, other worktrees, .git/hooks and .git/config); also in [defaults]
#   writes        under enforce, more folders it may write, e.g. writes = ["~/.npm"] (its CLI's own are known)
#   stall         seconds busy with no output and no file change before it is said to be stalled, e.g. 600
#   disk_quota    MiB its worktree may take (at 80 % a finding; at 100 % it is paused), e.g. 4096
#                 (stall and disk_quota also in [defaults])
#   role          a [[role]] below: the agent takes the fields it does not set itself
#   brief         its instructions (its CLI's system prompt where it has one)
#   read_only     true: its CLI's read-only mode, and every write it makes is a finding (refused under enforce)
#   setup         a command run in its worktree before it starts, e.g. setup = "npm ci"
#   wave          1, 2, …: it starts once every agent of the waves before is done
#   after         or the agents it waits for, e.g. after = ["api"]
#   advance       when it counts as done: "green" (idle, its gates passing; default), "idle" or "merged"
#   reviews       the agents whose work it reviews, e.g. reviews = ["api"] (`muster review api --approve`)
#   parent        the agent that spawned it (`muster spawn` writes it): it may steer, read, wait on, stop and
#                 remove it, and is mailed its results
#
# Agents that spawn agents (`muster spawn`), in [defaults]: max_children = 4 (per agent), max_depth = 2 (a
# child's child at most), agents_may = ["spawn", "send", "stop", "remove"] (leave one out to keep it
# yours).
#
# Roles: [[role]] with a name and any of kind, command, args, brief, owns, gates, env, read_only, setup, advance.
# Waves: [[wave]] with wave = N, approve = true (it waits for your word: W, or `muster crew approve N`) and an
# advance for its agents. `muster crew plan` prints the plan.
#
# Gates: checks run in an agent's worktree after each turn that changed files; a failure is sent back to the
# agent (at most `attempts` times), an error of the check itself (not found, timeout) only to you.
# [[gate]]
# name = "test"
# run = "cargo test"       # a shell command, in the agent's worktree with its ports
# when = "turn"            # turn | merge (before `m` merges) | manual
# timeout = 600            # seconds
# attempts = 4
# feedback_lines = 40      # the output's last lines sent back
# parse = "auto"           # auto | cargo | pytest | go | jest | tap | none: names the failing tests
#
# max_parallel_gates = 2   # gates running at once for the crew (default: half the cores); a top-level key:
#                          # write it above the first [table] of the file

[[agent]]
name = "claude"
kind = "claude"
# prompt = "Read the README and propose improvements"

# [[agent]]
# name = "codex"
# kind = "codex"

# [[agent]]
# name = "sh"
# kind = "shell"
"#;

/// The name of the agent just added.
fn name_of_last(agents: &[AgentSpec]) -> String {
    agents.last().map(|a| a.name.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::plan::Advance;
    use crate::config::preset::builtin;

    fn parse(text: &str) -> Result<Crew, ConfigError> {
        parse_crew(Path::new(".muster/crew.toml"), text, &builtin(), &Defaults::default())
    }

    #[test]
    fn parses_agents_with_preset_and_overrides() {
        let crew = parse(
            "[defaults]\nbase = 'dev'\n[[agent]]\nname = 'api'\nkind = 'codex'\nenv = { A = '1' }\n\
             [[agent]]\nname = 'sh'\ncommand = 'bash'\nargs = ['-l']\nworktree = false\n",
        )
        .unwrap();
        assert_eq!(crew.agents.len(), 2);
        let api = &crew.agents[0];
        assert_eq!((api.kind.as_str(), api.command.as_str()), ("codex", "codex"));
        assert_eq!(api.base.as_deref(), Some("dev"));
        assert_eq!(api.env.get("A").map(String::as_str), Some("1"));
        assert_eq!(api.resume_args, vec!["resume", "--last"]);
        let sh = &crew.agents[1];
        assert_eq!((sh.kind.as_str(), sh.args.clone(), sh.worktree), ("custom", vec!["-l".to_string()], false));
    }

    #[test]
    fn unknown_key_names_file_line_col_and_key() {
        let err = parse("[[agent]]\nname = 'a'\nkind = 'shell'\ncolour = 'red'\n").unwrap_err();
        assert_eq!((err.line, err.col), (4, 1));
        assert!(err.message.contains("colour"), "{err}");
        assert!(err.to_string().starts_with(".muster/crew.toml:4:1:"), "{err}");
    }

    #[test]
    fn unknown_preset() {
        let err = parse("[[agent]]\nname = 'a'\nkind = 'clod'\n").unwrap_err();
        assert_eq!((err.line, err.col), (3, 8));
        assert!(err.message.contains("unknown preset `clod`") && err.message.contains("key `kind`"), "{err}");
    }

    #[test]
    fn duplicate_name() {
        let err = parse("[[agent]]\nname='a'\nkind='shell'\n[[agent]]\nname='a'\nkind='shell'\n").unwrap_err();
        assert_eq!(err.line, 5);
        assert!(err.message.contains("duplicate agent name `a` (first used on line 2)"), "{err}");
    }

    #[test]
    fn unsafe_names() {
        for bad in ["../x", "a b", "-x", "x.lock", "a..b", "", "é", "a/b", "gate", "guard", "operator", "crew"] {
            let err = parse(&format!("[[agent]]\nname = {bad:?}\nkind = 'shell'\n")).unwrap_err();
            assert_eq!(err.line, 2, "{bad}: {err}");
            assert!(err.message.contains("key `name`"), "{err}");
        }
        for good in ["a", "api-2", "x_y.z"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn bad_type() {
        let err = parse("[[agent]]\nname = 'a'\nkind = 'shell'\nworktree = 'yes'\n").unwrap_err();
        assert_eq!((err.line, err.col), (4, 12));
        assert!(err.message.contains("bool") || err.message.contains("boolean"), "{err}");
    }

    #[test]
    fn guard_mode_and_writes_fold_with_defaults_and_the_preset() {
        let crew = parse(
            "[defaults]\nguard = 'enforce'\n[[agent]]\nname = 'a'\nkind = 'claude'\nwrites = ['~/.npm']\n\
             [[agent]]\nname = 'b'\nkind = 'shell'\nguard = 'watch'\n",
        )
        .unwrap();
        use super::super::owns::GuardMode;
        assert_eq!(crew.agents[0].guard, GuardMode::Enforce);
        assert!(crew.agents[0].writes.contains(&"~/.claude".to_string()), "the preset's own");
        assert!(crew.agents[0].writes.contains(&"~/.npm".to_string()), "and the agent's");
        assert_eq!(crew.agents[1].guard, GuardMode::Watch);
        let err = parse("[[agent]]\nname = 'a'\nkind = 'shell'\nguard = 'enfroce'\n").unwrap_err();
        assert_eq!((err.line, err.col), (4, 9), "{err}");
        assert!(err.message.contains("enfroce"), "{err}");
    }

    #[test]
    fn overlapping_owns_is_an_error_at_the_second_and_a_pattern_taking_nothing_a_warning() {
        let files: Vec<String> = ["src/api/a.rs", "src/db/b.rs", "README.md"].iter().map(|s| s.to_string()).collect();
        let text = "[[agent]]\nname = 'api'\nkind = 'shell'\nowns = ['src/api/']\n\
                    [[agent]]\nname = 'db'\nkind = 'shell'\nowns = ['src/db/', 'docs/']\n";
        let w = check_ownership(Path::new(".muster/crew.toml"), text, &files, &parse(text).unwrap()).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].0.message.contains("`docs/` takes no file") && w[0].0.line == 8, "{w:?}");
        let text = "[[agent]]\nname = 'api'\nkind = 'shell'\nowns = ['src/']\n\
                    [[agent]]\nname = 'db'\nkind = 'shell'\nowns = ['src/db/']\n";
        let err = check_ownership(Path::new(".muster/crew.toml"), text, &files, &parse(text).unwrap()).unwrap_err();
        assert_eq!((err.line, err.col), (8, 8), "{err}");
        assert!(err.message.contains("`db` and `api` both own `src/db/b.rs`"), "{err}");
        // Taken back with `!`: no overlap.
        let text = "[[agent]]\nname = 'api'\nkind = 'shell'\nowns = ['src/', '!src/db/']\n\
                    [[agent]]\nname = 'db'\nkind = 'shell'\nowns = ['src/db/']\n";
        assert!(check_ownership(Path::new("c"), text, &files, &parse(text).unwrap()).unwrap().is_empty());
    }

    #[test]
    fn custom_needs_a_command() {
        let err = parse("[[agent]]\nname = 'a'\nkind = 'custom'\n").unwrap_err();
        assert!(err.message.contains("needs a `command`"), "{err}");
        let err = parse("[[agent]]\nname = 'a'\n").unwrap_err();
        assert!(err.message.contains("needs a `kind`"), "{err}");
    }

    #[test]
    fn template_is_a_valid_crew() {
        let crew = parse(TEMPLATE).unwrap();
        assert_eq!(crew.agents[0].name, "claude");
    }

    #[test]
    fn gates_parse_with_defaults_and_agents_pick_theirs() {
        let crew = parse(
            "max_parallel_gates = 2\n[[agent]]\nname = 'a'\nkind = 'shell'\n[[agent]]\nname = 'b'\nkind = 'shell'\n\
             gates = ['lint']\n[[gate]]\nname = 'test'\nrun = 'cargo test'\n[[gate]]\nname = 'lint'\nrun = 'cargo clippy'\n\
             when = 'merge'\ntimeout = 30\nattempts = 2\nfeedback_lines = 10\nparse = 'cargo'\n",
        )
        .unwrap();
        assert_eq!(crew.max_parallel_gates, Some(2));
        let test = &crew.gates[0];
        assert_eq!((test.timeout_s, test.attempts, test.feedback_lines), (600, 4, 40));
        assert_eq!((test.when, test.parse), (When::Turn, crate::config::gate::Parse::Auto));
        let lint = &crew.gates[1];
        assert_eq!((lint.when, lint.timeout_s, lint.attempts, lint.feedback_lines), (When::Merge, 30, 2, 10));
        let names = |a: &AgentSpec, w| a.gates_at(&crew.gates, w).iter().map(|g| g.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&crew.agents[0], When::Turn), ["test"]);
        assert_eq!(names(&crew.agents[1], When::Turn), Vec::<String>::new());
        assert_eq!(names(&crew.agents[1], When::Merge), ["lint"]);
    }

    #[test]
    fn bad_gates_name_their_place() {
        for (text, line, col, says) in [
            ("[[gate]]\nname = 'test'\nrun = ''\n", 3, 7, "needs a command"),
            ("[[gate]]\nname = 'a b'\nrun = 'x'\n", 2, 8, "gate name"),
            ("[[gate]]\nname = 't'\nrun = 'x'\n[[gate]]\nname = 't'\nrun = 'y'\n", 5, 8, "duplicate gate"),
            ("[[gate]]\nname = 't'\nrun = 'x'\ntimeout = 0\n", 4, 11, "`timeout`: between 1"),
            ("[[gate]]\nname = 't'\nrun = 'x'\nattempts = 1000\n", 4, 12, "`attempts`: between 1 and 100"),
            ("[[gate]]\nname = 't'\nrun = 'x'\nwhen = 'sometimes'\n", 4, 8, "sometimes"),
            ("[[gate]]\nname = 't'\nrun = 'x'\ncolour = 1\n", 4, 1, "colour"),
            (
                "[[agent]]\nname = 'a'\nkind = 'shell'\ngates = ['tst']\n[[gate]]\nname = 'test'\nrun = 'x'\n",
                4,
                9,
                "no gate `tst`",
            ),
            ("max_parallel_gates = 0\n", 1, 22, "between 1 and 64"),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!((err.line, err.col), (line, col), "{text}: {err}");
            assert!(err.message.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        for text in ["[[agent]", "name = ", "\u{0}", "[[agent]]\nname = 5", "agent = 3"] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn roles_fill_what_an_agent_leaves_and_waves_become_dependencies() {
        let crew = parse(
            "[[role]]\nname = 'reviewer'\nkind = 'codex'\nbrief = 'Review, do not write.'\nread_only = true\n\
             env = { A = '1', B = '1' }\nadvance = 'idle'\n\
             [[wave]]\nwave = 2\napprove = true\nadvance = 'merged'\n\
             [[agent]]\nname = 'plan'\nkind = 'shell'\nwave = 1\n\
             [[agent]]\nname = 'api'\nkind = 'shell'\nwave = 2\n\
             [[agent]]\nname = 'docs'\nkind = 'shell'\nwave = 2\nadvance = 'green'\n\
             [[agent]]\nname = 'rev'\nrole = 'reviewer'\nafter = ['api', 'docs']\nenv = { B = '2' }\n",
        )
        .unwrap();
        let [plan, api, docs, rev] = &crew.agents[..] else { panic!() };
        assert!(plan.after.is_empty() && !plan.approve);
        assert_eq!((api.after.clone(), api.approve, api.advance), (vec!["plan".to_string()], true, Advance::Merged));
        assert_eq!(docs.advance, Advance::Green, "its own advance wins over its wave's");
        assert_eq!((rev.kind.as_str(), rev.role.as_deref(), rev.read_only), ("codex", Some("reviewer"), true));
        assert_eq!(rev.after, ["api", "docs"]);
        assert_eq!(rev.advance, Advance::Idle);
        assert_eq!(rev.brief.as_deref(), Some("Review, do not write."));
        assert_eq!((rev.env["A"].as_str(), rev.env["B"].as_str()), ("1", "2"), "its own env over its role's");
        assert_eq!(rev.owns.as_deref(), Some(&[][..]), "read-only: it owns nothing");
    }

    #[test]
    fn plan_mistakes_name_their_place() {
        let at = |text: &str| {
            let e = parse(text).unwrap_err();
            (e.line, e.message)
        };
        let (line, m) = at("[[agent]]\nname = 'a'\nkind = 'shell'\nrole = 'nope'\n");
        assert_eq!(line, 4);
        assert!(m.contains("no role `nope`"), "{m}");
        let (line, m) = at("[[agent]]\nname = 'a'\nkind = 'shell'\nafter = ['b']\n\
                            [[agent]]\nname = 'b'\nkind = 'shell'\nafter = ['a']\n");
        assert_eq!(line, 4);
        assert!(m.contains("circle: a → b → a"), "{m}");
        let (line, m) = at("[[agent]]\nname = 'a'\nkind = 'shell'\nafter = ['ghost']\n");
        assert_eq!(line, 4);
        assert!(m.contains("no agent `ghost`"), "{m}");
        let (line, m) = at("[[agent]]\nname = 'a'\nkind = 'shell'\nwave = 0\n");
        assert_eq!((line, m.contains("numbered from 1")), (4, true), "{m}");
        let (line, m) = at("[[wave]]\nwave = 1\n[[wave]]\nwave = 1\n");
        assert_eq!((line, m.contains("a second wave 1")), (4, true), "{m}");
        let (line, m) = at("[[role]]\nname = 'r'\n[[role]]\nname = 'r'\n");
        assert_eq!((line, m.contains("a second role `r`")), (4, true), "{m}");
        let (line, m) = at("[[agent]]\nname = 'a'\nkind = 'shell'\nadvance = 'soon'\n");
        assert_eq!(line, 4, "{m}");
    }

    #[test]
    fn agents_that_never_run_together_may_own_the_same_files() {
        let text = "[[agent]]\nname = 'a'\nkind = 'shell'\nowns = ['src/']\nwave = 1\n\
                    [[agent]]\nname = 'b'\nkind = 'shell'\nowns = ['src/']\nwave = 2\n\
                    [[agent]]\nname = 'c'\nkind = 'shell'\nowns = ['src/']\nwave = 2\n";
        let files = vec!["src/lib.rs".to_string()];
        let err = check_ownership(Path::new("c.toml"), text, &files, &parse(text).unwrap()).unwrap_err();
        assert!(err.message.contains("`c` and `b` both own `src/lib.rs`"), "b and c run together: {err}");
        let two = &text[..text.rfind("[[agent]]").unwrap()];
        assert!(check_ownership(Path::new("c.toml"), two, &files, &parse(two).unwrap()).is_ok(), "a then b");
    }

    #[test]
    fn a_parent_is_another_agent_of_the_crew_and_parents_never_loop() {
        let crew = parse(
            "[defaults]\nmax_children = 6\n[[agent]]\nname = 'lead'\nkind = 'shell'\n\
             [[agent]]\nname = 'c1'\nkind = 'shell'\nparent = 'lead'\n",
        )
        .unwrap();
        assert_eq!(crew.agents[1].parent.as_deref(), Some("lead"));
        assert_eq!((crew.lead.max_children, crew.lead.max_depth), (6, 2));
        for (text, line, col, says) in [
            ("[[agent]]\nname = 'a'\nkind = 'shell'\nparent = 'ghost'\n", 4, 10, "no agent `ghost`"),
            ("[[agent]]\nname = 'a'\nkind = 'shell'\nparent = 'a'\n", 4, 10, "its own parent"),
            (
                "[[agent]]\nname = 'a'\nkind = 'shell'\nparent = 'b'\n[[agent]]\nname = 'b'\nkind = 'shell'\nparent = 'a'\n",
                4,
                10,
                "a loop of parents",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(&format!(":{line}:{col}")) && e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn reviews_name_agents_of_the_crew_and_the_same_cli_is_a_warning() {
        let text =
            "[[agent]]\nname = 'api'\nkind = 'claude'\n[[agent]]\nname = 'rev'\nkind = 'claude'\nreviews = ['api']\n";
        let crew = parse(text).unwrap();
        assert_eq!(crew.agents[1].reviews, ["api"]);
        let w = review_warnings(Path::new("c.toml"), text, &crew);
        assert_eq!(w.len(), 1);
        assert!(w[0].to_string().contains("c.toml:7:11") && w[0].to_string().contains("same CLI (claude)"), "{}", w[0]);
        let other = text.replace("name = 'rev'\nkind = 'claude'", "name = 'rev'\nkind = 'codex'");
        assert!(review_warnings(Path::new("c.toml"), &other, &parse(&other).unwrap()).is_empty());
        let e = parse("[[agent]]\nname = 'rev'\nkind = 'shell'\nreviews = ['ghost']\n").unwrap_err();
        assert_eq!((e.line, e.message.contains("no agent `ghost`")), (4, true), "{e}");
        let e = parse("[[agent]]\nname = 'rev'\nkind = 'shell'\nreviews = ['rev']\n").unwrap_err();
        assert!(e.message.contains("cannot review itself"), "{e}");
    }
}
