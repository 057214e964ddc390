//! Configuration: the crew file, agent presets, keymaps and themes. Embedded defaults, then the user's files
//! (XDG config dir), then the project's `.muster/`.

pub mod crew;
pub mod crew_edit;
pub mod gate;
pub mod keymap;
pub mod lead;
pub mod location;
pub mod owns;
pub mod paths;
pub mod plan;
pub mod preset;
pub mod rules;
pub mod theme;
pub mod user;

pub use location::{ConfigError, Warning};

/// The largest configuration file muster reads.
pub const MAX_CONFIG: u64 = 1 << 20;

/// The text of a configuration file; `None` when it does not exist. A folder, a pipe, a device, a file too large
/// or one that is not UTF-8 (a binary) is an error naming the file (and where the text stops being UTF-8).
pub fn read_text(path: &std::path::Path) -> Result<Option<String>, ConfigError> {
    let whole = |message: String| ConfigError { file: path.to_path_buf(), line: 1, col: 1, message };
    let bytes = match crate::safefs::read_config_file(path, MAX_CONFIG) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(e) => {
            let text = format!("{e:#}");
            let shown = path.display().to_string();
            return Err(whole(text.strip_prefix(&format!("{shown} ")).unwrap_or(&text).to_string()));
        }
    };
    crate::safefs::utf8_text(bytes).map(Some).map_err(|(line, col)| ConfigError {
        file: path.to_path_buf(),
        line,
        col,
        message: "not UTF-8 text (a binary file?)".into(),
    })
}

/// The crew of a repository: its crew file over the user's defaults. An error starts nothing.
pub fn load_crew(root: &std::path::Path) -> anyhow::Result<(crew::Crew, user::UserConfig, Vec<Warning>)> {
    let (user_cfg, mut warnings) = user::load();
    // A `.muster` committed as a symlink would send the crew, its state and worktrees elsewhere.
    if !crate::safefs::existing_real_dir(root, ".muster")? {
        return Ok((crew::Crew::default(), user_cfg, warnings));
    }
    let (presets, said) = preset::load(Some(root));
    warnings.extend(said);
    let path = root.join(".muster").join("crew.toml");
    let shown = path.strip_prefix(root).unwrap_or(&path);
    // A crew file that cannot be read is an error, never a silent "no agents".
    let crew = match read_text(&path).map_err(|e| ConfigError { file: shown.to_path_buf(), ..e })? {
        Some(text) => {
            let crew = crew::parse_crew(shown, &text, &presets, &user_cfg.defaults)?;
            warnings.extend(crew::review_warnings(shown, &text, &crew));
            crew
        }
        None => crew::Crew::default(),
    };
    Ok((crew, user_cfg, warnings))
}

/// `load_crew`, and the crew's `owns` checked against the repository's files (`files` lists them; asked only
/// when some agent has `owns`): overlapping ownership is an error, a pattern that takes nothing a warning.
pub fn load_crew_owned(
    root: &std::path::Path,
    files: impl FnOnce(&std::path::Path) -> anyhow::Result<Vec<String>>,
) -> anyhow::Result<(crew::Crew, user::UserConfig, Vec<Warning>)> {
    let (crew, user_cfg, mut warnings) = load_crew(root)?;
    if crew.agents.iter().any(|a| a.owns.is_some()) {
        let path = root.join(".muster").join("crew.toml");
        let shown = path.strip_prefix(root).unwrap_or(&path);
        let text = read_text(&path).map_err(|e| ConfigError { file: shown.to_path_buf(), ..e })?.unwrap_or_default();
        warnings.extend(crew::check_ownership(shown, &text, &files(root)?, &crew)?);
    }
    Ok((crew, user_cfg, warnings))
}

/// Change the repository's crew file with `edit` (its text in, the new text out, or why not), checked as a crew
/// before it is written (atomically: a server reading it meanwhile sees the old file or the new one). `Ok(false)`
/// when `edit` left nothing to change.
pub fn edit_crew_file(
    root: &std::path::Path,
    edit: impl FnOnce(&str) -> Result<Option<String>, String>,
) -> anyhow::Result<bool> {
    let dir = crate::safefs::real_dir(root, ".muster")?;
    let path = dir.join("crew.toml");
    let shown = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
    let text = read_text(&path).map_err(|e| ConfigError { file: shown.clone(), ..e })?.unwrap_or_default();
    let (user_cfg, _) = user::load();
    let (presets, _) = preset::load(Some(root));
    // A file broken already is said as it is, with its place; a change that would break it, by what is wrong.
    crew::parse_crew(&shown, &text, &presets, &user_cfg.defaults)?;
    let Some(new) = edit(&text).map_err(|e| anyhow::anyhow!("{}: {e}", shown.display()))? else { return Ok(false) };
    crew::parse_crew(&shown, &new, &presets, &user_cfg.defaults).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    crate::safefs::write_file(&dir, "crew.toml", new.as_bytes())?;
    Ok(true)
}
