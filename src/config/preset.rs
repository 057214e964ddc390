//! Agent manifests (`assets/agents/<id>.toml`): how each agent CLI starts, resumes, takes a prompt and a note,
//! hooks in, and shows its state on screen. Built in, then overridden field by field by the user's
//! (`~/.config/muster/agents/`) and the repository's (`.muster/agents/`) files of the same name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::rules::{parse_version, Cond, Region, Rule, ScreenKind};
use super::{ConfigError, Warning};
use crate::protocol::AgentState;

/// The manifests that ship with muster, by id.
const BUILTIN: &[(&str, &str)] = &[
    ("aider", include_str!("../../assets/agents/aider.toml")),
    ("amp", include_str!("../../assets/agents/amp.toml")),
    ("auggie", include_str!("../../assets/agents/auggie.toml")),
    ("claude", include_str!("../../assets/agents/claude.toml")),
    ("codex", include_str!("../../assets/agents/codex.toml")),
    ("copilot", include_str!("../../assets/agents/copilot.toml")),
    ("custom", include_str!("../../assets/agents/custom.toml")),
    ("demo", include_str!("../../assets/agents/demo.toml")),
    ("droid", include_str!("../../assets/agents/droid.toml")),
    ("gemini", include_str!("../../assets/agents/gemini.toml")),
    ("kilo", include_str!("../../assets/agents/kilo.toml")),
    ("opencode", include_str!("../../assets/agents/opencode.toml")),
    ("pi", include_str!("../../assets/agents/pi.toml")),
    ("qoder", include_str!("../../assets/agents/qoder.toml")),
    ("qwen", include_str!("../../assets/agents/qwen.toml")),
    ("shell", include_str!("../../assets/agents/shell.toml")),
];

/// The most manifest files read from one folder (each is at most `MAX_CONFIG`).
const MAX_FILES: usize = 200;
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
struct RawReadOnly {
    args: Vec<String>,
    min_version: Option<Spanned<String>>,
    below_version: Option<Spanned<String>>,
}

/// A manifest as its file says it: every field optional, so an override sets only what it changes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPreset {
    name: Option<String>,
    tier: Option<Spanned<String>>,
    verified_version: Option<String>,
    install: Option<String>,
    base_url: Option<String>,
    command: Option<String>,
    args: Option<Vec<String>>,
    resume_args: Option<Vec<String>>,
    resume_session_args: Option<Vec<String>>,
    prompt_args: Option<Vec<String>>,
    enter_delay_ms: Option<u64>,
    boot_timeout_s: Option<Spanned<u64>>,
    hooks: Option<String>,
    queues_input: Option<bool>,
    note_args: Option<Vec<String>>,
    read_only: Option<RawReadOnly>,
    /// Where the CLI's version shows on its screen (first group), so version-specific rules apply.
    version_regex: Option<Spanned<String>>,
    rules: Option<Vec<RawRule>>,
    /// The built-in rules are dropped before this file's are added.
    #[serde(default)]
    replace_rules: bool,
    /// A job in the terminal's foreground (not the agent's own process) means it works.
    foreground_busy: Option<bool>,
    /// It works on its own as it starts, with no prompt (a command, the demo agent): its start is its task.
    works_unprompted: Option<bool>,
    busy_on_task_ms: Option<u64>,
    idle_settle_ms: Option<u64>,
    ignore: Option<Vec<String>>,
    writes: Option<Vec<String>>,
    inert: Option<Vec<Spanned<String>>>,
}

/// How far a manifest was checked against the real CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// Every state it claims seen in a real turn against the mock model.
    Verified,
    /// First-run, trust and sign-in screens recorded; busy and idle from its title or its documentation.
    Partial,
    /// Written from its documentation, not run here.
    Community,
    /// Not one CLI (a shell, any command).
    Generic,
}

impl Tier {
    fn parse(s: &str) -> Option<Tier> {
        Some(match s {
            "verified" => Tier::Verified,
            "partial" => Tier::Partial,
            "community" => Tier::Community,
            "generic" => Tier::Generic,
            _ => return None,
        })
    }

    pub fn word(self) -> &'static str {
        match self {
            Tier::Verified => "verified",
            Tier::Partial => "partial",
            Tier::Community => "community",
            Tier::Generic => "generic",
        }
    }
}

/// A CLI's own read-only (plan) mode, and the versions it was checked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnly {
    pub args: Vec<String>,
    pub min_version: Option<Vec<u64>>,
    pub below_version: Option<Vec<u64>>,
}

impl ReadOnly {
    /// Whether these arguments were checked for this version of the CLI.
    pub fn holds_for(&self, version: &[u64]) -> bool {
        self.min_version.as_deref().is_none_or(|m| version >= m)
            && self.below_version.as_deref().is_none_or(|b| version < b)
    }
}

#[derive(Debug, Clone)]
pub struct Preset {
    /// Its id: the file's name and the crew file's `kind`.
    pub id: String,
    /// What the CLI is called ("Claude Code").
    pub title: String,
    pub tier: Tier,
    /// The CLI version the tier was earned with.
    pub verified_version: Option<String>,
    /// Where it installs from (`npm:@openai/codex`).
    pub install: Option<String>,
    /// How it is pointed at another model endpoint.
    pub base_url: Option<String>,
    pub command: String,
    pub args: Vec<String>,
    pub resume_args: Vec<String>,
    pub resume_session_args: Vec<String>,
    /// How an initial prompt is passed on the command line; empty means it is typed in once the agent is ready.
    pub prompt_args: Vec<String>,
    pub enter_delay_ms: u64,
    /// How long it may take to draw its first screen before it is called idle.
    pub boot_timeout: std::time::Duration,
    /// Which hook integration the agent CLI supports (`claude`).
    pub hooks: Option<String>,
    /// Input typed while it works is queued and read after the turn (urgent mail may go in then).
    pub queues_input: bool,
    /// How the mailbox note reaches its system prompt (`{note}`); empty: the note goes into the first prompt.
    pub note_args: Vec<String>,
    pub read_only: Option<ReadOnly>,
    pub version_regex: Option<regex::Regex>,
    pub rules: Vec<Rule>,
    /// A job in the terminal's foreground other than the agent's own process means it works: for shells and
    /// REPLs, whose quiet commands draw nothing while they run.
    pub foreground_busy: bool,
    /// It works on its own as it starts (a command, the demo agent): a plan counts it done at its first rest,
    /// where a CLI must first be given a task.
    pub works_unprompted: bool,
    /// Its first sign of work comes late after a task goes in (opencode's ~0.5–1 s): a task typed at its prompt,
    /// or Enter on its dialog, shows busy at once for up to this long, ended by its next hook report or a dialog
    /// (only in a run with its hooks installed, which tell when the turn really starts and ends).
    pub busy_on_task: Option<std::time::Duration>,
    /// How long an idle hook report waits for the screen to hold still (`detect::IDLE_SETTLE` unless its manifest
    /// says): a CLI whose idle report is only ever its turn's end need not wait out a side request's.
    pub idle_settle: std::time::Duration,
    /// Files the CLI writes for itself (its chat history), never an agent's work: git ignores them (patterns
    /// of `.git/info/exclude`).
    pub ignore: Vec<String>,
    /// Where the CLI writes for itself outside the worktree (`~/.claude`): what `guard = "enforce"` leaves
    /// writable besides the worktree.
    pub writes: Vec<String>,
    /// Lines muster itself makes the CLI show (Gemini's banner while a muster hook runs): their coming and going
    /// is not the agent's activity.
    pub inert: Vec<Regex>,
    /// Where it was read from: `built in`, then each override file that changed it.
    pub sources: Vec<String>,
}

/// An idle hook report takes effect once the screen has been still this long since it came (or since the screen
/// last changed after it): the CLI's own last redraw after its turn ends is done by then, while a CLI still
/// streaming (Codex's notify comes for a side request too, a title made beside the turn) never is. A manifest's
/// `idle_settle_ms` changes it for its CLI.
pub const IDLE_SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// How long a CLI may take to draw its first screen when its manifest does not say.
pub const BOOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

fn regex(file: &Path, text: &str, preset: &str, r: &Spanned<String>) -> Result<Regex, ConfigError> {
    Regex::new(r.get_ref())
        .map_err(|e| ConfigError::at(file, text, r.span().start, format!("agent `{preset}`: bad regex: {e}")))
}

fn version(
    file: &Path,
    text: &str,
    preset: &str,
    v: Option<&Spanned<String>>,
) -> Result<Option<Vec<u64>>, ConfigError> {
    match v {
        None => Ok(None),
        Some(v) => parse_version(v.get_ref()).map(Some).ok_or_else(|| {
            ConfigError::at(file, text, v.span().start, format!("agent `{preset}`: bad version `{}`", v.get_ref()))
        }),
    }
}

fn rule(file: &Path, text: &str, preset: &str, i: usize, r: RawRule) -> Result<Rule, ConfigError> {
    let bad = |span: std::ops::Range<usize>, what: String| {
        ConfigError::at(file, text, span.start, format!("agent `{preset}`: {what}"))
    };
    let region = |s: Option<&Spanned<String>>, default: Region| match s {
        None => Ok(default),
        Some(s) => Region::parse(s.get_ref()).ok_or_else(|| {
            bad(s.span(), format!("bad region `{}` (all, title, progress, bottom:N, top:N)", s.get_ref()))
        }),
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
            format!("agent `{preset}`: rule {} has no condition (regex, all or any)", i + 1),
        ));
    }
    let screen = match r.screen.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("any", _)) => ScreenKind::Any,
        Some(("alt", _)) => ScreenKind::Alt,
        Some(("main", _)) => ScreenKind::Main,
        Some((other, span)) => return Err(bad(span, format!("bad screen `{other}` (any, alt, main)"))),
    };
    Ok(Rule {
        name: r.name.unwrap_or_else(|| format!("{preset}#{}", i + 1)),
        state: r.state,
        priority: r.priority,
        all,
        any,
        not,
        screen,
        min_version: version(file, text, preset, r.min_version.as_ref())?,
        below_version: version(file, text, preset, r.below_version.as_ref())?,
    })
}

/// The most rules one manifest may hold (each is tried on every screen change).
const MAX_RULES: usize = 64;

/// One manifest file: a new agent kind (`base` None: `command` is required), or an override of `base` where it
/// sets a field.
pub fn parse_manifest(file: &Path, text: &str, id: &str, base: Option<&Preset>) -> Result<Preset, ConfigError> {
    let raw: RawPreset = toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
    let at = |offset: usize, what: String| ConfigError::at(file, text, offset, format!("agent `{id}`: {what}"));
    let mut p = match base {
        Some(b) => b.clone(),
        None => {
            let Some(command) = raw.command.clone() else {
                return Err(at(0, "no `command` (what runs)".into()));
            };
            Preset {
                id: id.to_string(),
                title: id.to_string(),
                tier: Tier::Community,
                verified_version: None,
                install: None,
                base_url: None,
                command,
                args: vec![],
                resume_args: vec![],
                resume_session_args: vec![],
                prompt_args: vec![],
                enter_delay_ms: 0,
                boot_timeout: BOOT_TIMEOUT,
                hooks: None,
                queues_input: false,
                note_args: vec![],
                read_only: None,
                version_regex: None,
                rules: vec![],
                foreground_busy: false,
                works_unprompted: false,
                busy_on_task: None,
                idle_settle: IDLE_SETTLE,
                ignore: vec![],
                writes: vec![],
                inert: vec![],
                sources: vec![],
            }
        }
    };
    p.sources.push(file.display().to_string());
    macro_rules! set {
        ($($field:ident),*) => { $(if let Some(v) = raw.$field { p.$field = v; })* };
    }
    set!(command, args, resume_args, resume_session_args, prompt_args, enter_delay_ms, queues_input, note_args);
    set!(foreground_busy, works_unprompted, ignore, writes);
    if let Some(ms) = raw.idle_settle_ms {
        p.idle_settle = std::time::Duration::from_millis(ms);
    }
    if let Some(ms) = raw.busy_on_task_ms {
        p.busy_on_task = (ms > 0).then(|| std::time::Duration::from_millis(ms));
    }
    if let Some(v) = raw.name {
        p.title = v;
    }
    if let Some(t) = &raw.tier {
        p.tier = Tier::parse(t.get_ref()).ok_or_else(|| {
            at(t.span().start, format!("bad tier `{}` (verified, partial, community, generic)", t.get_ref()))
        })?;
    }
    for (field, v) in [(&mut p.verified_version, raw.verified_version), (&mut p.install, raw.install)] {
        if v.is_some() {
            *field = v;
        }
    }
    if raw.base_url.is_some() {
        p.base_url = raw.base_url;
    }
    if raw.hooks.is_some() {
        p.hooks = raw.hooks;
    }
    if let Some(b) = &raw.boot_timeout_s {
        if *b.get_ref() == 0 || *b.get_ref() > 3600 {
            return Err(at(b.span().start, "boot_timeout_s is 1 to 3600 seconds".into()));
        }
        p.boot_timeout = std::time::Duration::from_secs(*b.get_ref());
    }
    if let Some(r) = &raw.read_only {
        p.read_only = Some(ReadOnly {
            args: r.args.clone(),
            min_version: version(file, text, id, r.min_version.as_ref())?,
            below_version: version(file, text, id, r.below_version.as_ref())?,
        });
    }
    if let Some(r) = &raw.version_regex {
        p.version_regex = Some(regex(file, text, id, r)?);
    }
    if let Some(inert) = &raw.inert {
        p.inert = inert.iter().map(|r| regex(file, text, id, r)).collect::<Result<_, _>>()?;
    }
    if raw.replace_rules {
        p.rules.clear();
    }
    for (i, r) in raw.rules.unwrap_or_default().into_iter().enumerate() {
        let r = rule(file, text, id, i, r)?;
        match p.rules.iter_mut().find(|old| old.name == r.name) {
            Some(old) => *old = r,
            None => p.rules.push(r),
        }
    }
    if p.rules.len() > MAX_RULES {
        return Err(at(0, format!("{} rules: at most {MAX_RULES}", p.rules.len())));
    }
    // Stable: rules of equal priority keep the file's order.
    p.rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
    Ok(p)
}

/// The manifests that ship with muster.
pub fn builtin() -> BTreeMap<String, Preset> {
    BUILTIN
        .iter()
        .map(|(id, text)| {
            let file = PathBuf::from(format!("assets/agents/{id}.toml"));
            // The embedded files are tested; failing here is a build defect, not bad input.
            let mut p = parse_manifest(&file, text, id, None).expect("built-in manifests parse");
            p.sources = vec!["built in".into()];
            (id.to_string(), p)
        })
        .collect()
}

/// The folders whose manifests override the built-in ones, in order: the user's, then the repository's.
pub fn override_dirs(root: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = super::paths::user_config_dir().map(|d| d.join("agents")).into_iter().collect();
    // A `.muster` committed as a symlink would send muster's reading elsewhere.
    if let Some(root) = root.filter(|r| crate::safefs::existing_real_dir(r, ".muster").unwrap_or(false)) {
        dirs.push(root.join(".muster").join("agents"));
    }
    dirs
}

/// A manifest file's id: its name without `.toml`, when that is a name a crew file can give as `kind`.
fn id_of(path: &Path) -> Option<String> {
    let id = path.file_name()?.to_str()?.strip_suffix(".toml")?;
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !id.starts_with('-');
    ok.then(|| id.to_string())
}

/// The built-in manifests with every override of `dirs` applied (see `override_dirs`); a file that cannot be read
/// or is wrong is left out with a warning naming its place.
pub fn load_from(dirs: &[PathBuf]) -> (BTreeMap<String, Preset>, Vec<Warning>) {
    let mut presets = builtin();
    let mut warnings = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut files: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
        files.sort();
        if files.len() > MAX_FILES {
            warnings.push(Warning(ConfigError {
                file: dir.clone(),
                line: 1,
                col: 1,
                message: format!("{} manifests: only the first {MAX_FILES} are read", files.len()),
            }));
            files.truncate(MAX_FILES);
        }
        for file in files {
            let Some(id) = id_of(&file) else {
                warnings.push(Warning(ConfigError {
                    file,
                    line: 1,
                    col: 1,
                    message: "ignored: a manifest's name is letters, digits, `-` and `_` (its kind)".into(),
                }));
                continue;
            };
            let parsed = super::read_text(&file).and_then(|text| match text {
                Some(text) => parse_manifest(&file, &text, &id, presets.get(&id)).map(Some),
                None => Ok(None),
            });
            match parsed {
                Ok(Some(p)) => {
                    presets.insert(id, p);
                }
                Ok(None) => {}
                Err(e) => warnings.push(Warning(ConfigError { message: format!("ignored: {}", e.message), ..e })),
            }
        }
    }
    (presets, warnings)
}

/// The manifests for a repository (`root`) or for no repository in particular.
pub fn load(root: Option<&Path>) -> (BTreeMap<String, Preset>, Vec<Warning>) {
    let (mut presets, mut warnings) = load_from(&override_dirs(root));
    // The repository's files are named from its root, as the crew file is.
    if let Some(root) = root {
        let shown = |p: &Path| p.strip_prefix(root).map(Path::to_path_buf).unwrap_or_else(|_| p.to_path_buf());
        for w in &mut warnings {
            w.0.file = shown(&w.0.file);
        }
        for p in presets.values_mut() {
            for s in &mut p.sources {
                *s = shown(Path::new(s)).display().to_string();
            }
        }
    }
    (presets, warnings)
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

    fn parse(text: &str) -> Result<Preset, ConfigError> {
        parse_manifest(Path::new("x.toml"), text, "x", None)
    }

    #[test]
    fn bad_manifest_names_its_place() {
        let err = parse("command = 3\n").unwrap_err();
        assert_eq!((err.line, err.col), (1, 11));
        let err = parse("command='a'\n[[rules]]\nstate='waiting'\nregex='('\n").unwrap_err();
        assert!(err.message.contains("bad regex"), "{err}");
        assert_eq!((err.line, err.col), (4, 7));
        let err = parse("command='a'\n[[rules]]\nstate='idle'\nall=[{regex='a', region='middle'}]\n").unwrap_err();
        assert!(err.message.contains("bad region `middle`"), "{err}");
        assert_eq!(err.line, 4);
        let err = parse("command='a'\n[[rules]]\nstate='idle'\n").unwrap_err();
        assert!(err.message.contains("no condition"), "{err}");
        let err = parse("args = []\n").unwrap_err();
        assert!(err.message.contains("no `command`"), "{err}");
        let err = parse("command='a'\ntier = 'gold'\n").unwrap_err();
        assert_eq!((err.line, err.col, err.message.contains("bad tier `gold`")), (2, 8, true), "{err}");
        let err = parse("command='a'\nboot_timeout_s = 0\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err = parse("command='a'\nread_only = { args = ['--plan'], min_version = 'new' }\n").unwrap_err();
        assert!(err.message.contains("bad version `new`"), "{err}");
        let err = parse("command='a'\nkind = 'b'\n").unwrap_err();
        assert!(err.message.contains("unknown field `kind`"), "{err}");
    }

    #[test]
    fn an_override_changes_what_it_sets_and_keeps_the_rest() {
        let base = &builtin()["claude"];
        let text = "enter_delay_ms = 999\n[[rules]]\nname = 'prompt'\nstate = 'idle'\nregex = '^> $'\n\
                    [[rules]]\nname = 'mine'\nstate = 'waiting'\nregex = 'Sure\\?'\npriority = 100\n";
        let p = parse_manifest(Path::new("o.toml"), text, "claude", Some(base)).unwrap();
        assert_eq!(p.enter_delay_ms, 999);
        assert_eq!(p.command, "claude", "kept");
        assert_eq!(p.rules.len(), base.rules.len() + 1, "prompt replaced, mine added");
        assert_eq!(p.rules[0].name, "mine", "sorted by priority");
        let prompt = p.rules.iter().find(|r| r.name == "prompt").unwrap();
        assert_eq!(prompt.all[0].regex.as_str(), "^> $");
        assert_eq!(p.sources, ["built in", "o.toml"]);
        let p = parse_manifest(Path::new("o.toml"), "replace_rules = true\n", "claude", Some(base)).unwrap();
        assert!(p.rules.is_empty());
    }

    #[test]
    fn override_folders_add_replace_and_skip_bad_files_with_a_warning() {
        let user = tempfile::tempdir().unwrap();
        let repo = tempfile::tempdir().unwrap();
        std::fs::write(user.path().join("claude.toml"), "enter_delay_ms = 7\n").unwrap();
        std::fs::write(repo.path().join("claude.toml"), "args = ['--repo']\n").unwrap();
        std::fs::write(repo.path().join("mine.toml"), "command = 'my-agent'\ntier = 'community'\n").unwrap();
        std::fs::write(repo.path().join("codex.toml"), "enter_delay_ms = 'soon'\n").unwrap();
        std::fs::write(repo.path().join("bad name.toml"), "command = 'x'\n").unwrap();
        std::fs::write(repo.path().join("notes.txt"), "not a manifest").unwrap();
        let (p, warnings) = load_from(&[user.path().to_path_buf(), repo.path().to_path_buf()]);
        assert_eq!((p["claude"].enter_delay_ms, p["claude"].args.as_slice()), (7, ["--repo".to_string()].as_slice()));
        assert_eq!(p["claude"].sources.len(), 3);
        assert_eq!(p["mine"].command, "my-agent");
        assert_eq!(p["codex"].enter_delay_ms, builtin()["codex"].enter_delay_ms, "a bad override is ignored");
        let said: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said.iter().any(|w| w.contains("codex.toml:1:18") && w.contains("ignored")), "{said:?}");
        assert!(said.iter().any(|w| w.contains("bad name.toml")), "{said:?}");
    }

    #[test]
    fn read_only_arguments_hold_for_the_versions_checked() {
        let p = parse("command='a'\nread_only = { args = ['--plan'], min_version = '1.2', below_version = '2' }\n")
            .unwrap();
        let ro = p.read_only.unwrap();
        assert!(ro.holds_for(&[1, 2, 0]) && ro.holds_for(&[1, 9]));
        assert!(!ro.holds_for(&[1, 1, 9]) && !ro.holds_for(&[2, 0]));
    }
}
