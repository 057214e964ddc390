//! Turning byte spans in a config file into `file:line:col`, for errors and warnings a person can act on.

use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::text::line_col;

/// A config file that cannot be used: nothing from it is started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{col}: {message}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl ConfigError {
    pub fn at(file: &Path, text: &str, offset: usize, message: impl Into<String>) -> ConfigError {
        let (line, col) = line_col(text, offset);
        ConfigError { file: file.to_path_buf(), line, col, message: message.into() }
    }

    /// From a toml error, which carries its own span and message.
    pub fn from_toml(file: &Path, text: &str, err: &toml::de::Error) -> ConfigError {
        let offset = err.span().map(|s| s.start).unwrap_or(0);
        ConfigError::at(file, text, offset, err.message().trim().to_string())
    }
}

/// A config entry that was skipped; the rest of the file still applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning(pub ConfigError);

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "warning: {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_to_line_and_column() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 9), (2, 3));
        assert_eq!(line_col(text, 999), (3, 1));
    }
}
