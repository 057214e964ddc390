//! Configuration: the crew file, agent presets, keymaps and themes. Embedded defaults, then the user's files
//! (XDG config dir), then the project's `.muster/`.

pub mod crew;
pub mod keymap;
pub mod location;
pub mod paths;
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
    let (user_cfg, warnings) = user::load();
    // A `.muster` committed as a symlink would send the crew, its state and worktrees elsewhere.
    if !crate::safefs::existing_real_dir(root, ".muster")? {
        return Ok((crew::Crew::default(), user_cfg, warnings));
    }
    let path = root.join(".muster").join("crew.toml");
    let shown = path.strip_prefix(root).unwrap_or(&path);
    // A crew file that cannot be read is an error, never a silent "no agents".
    let crew = match read_text(&path).map_err(|e| ConfigError { file: shown.to_path_buf(), ..e })? {
        Some(text) => crew::parse_crew(shown, &text, &preset::builtin(), &user_cfg.defaults)?,
        None => crew::Crew::default(),
    };
    Ok((crew, user_cfg, warnings))
}
