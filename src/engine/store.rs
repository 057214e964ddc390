//! The crew's state on disk, `.muster/state.json`, written atomically so a crash never leaves half a file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::AgentState;
use crate::config::crew::AgentSpec;
use crate::pty::ExitInfo;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedAgent {
    pub spec: AgentSpec,
    pub branch: String,
    pub base: String,
    pub worktree: PathBuf,
    pub state: AgentState,
    pub exit: Option<ExitInfo>,
    /// The agent has run before, so a relaunch uses its resume arguments.
    pub ran: bool,
    pub port_base: u16,
    /// The CLI's own session id (from its hooks): a relaunch resumes exactly that conversation.
    #[serde(default)]
    pub session: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedCrew {
    pub version: u32,
    pub agents: Vec<SavedAgent>,
}

pub fn path(root: &Path) -> PathBuf {
    root.join(".muster").join("state.json")
}

pub fn save(root: &Path, crew: &SavedCrew) -> Result<()> {
    let target = path(root);
    let dir = target.parent().context("state path has a parent")?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".state.json.{}.tmp", std::process::id()));
    let text = serde_json::to_string_pretty(crew)?;
    {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &target).with_context(|| format!("replacing {}", target.display()))
}

/// The saved state; a missing file is an empty crew, a malformed one is kept aside and reported.
pub fn load(root: &Path) -> (SavedCrew, Option<String>) {
    let p = path(root);
    let Ok(text) = std::fs::read_to_string(&p) else {
        return (SavedCrew::default(), None);
    };
    match serde_json::from_str(&text) {
        Ok(c) => (c, None),
        Err(e) => {
            let aside = p.with_extension("json.bad");
            let _ = std::fs::rename(&p, &aside);
            (SavedCrew::default(), Some(format!("{}: {e}; kept as {}", p.display(), aside.display())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn agent(name: &str) -> SavedAgent {
        SavedAgent {
            spec: AgentSpec {
                resume_session_args: vec![],
                name: name.into(),
                kind: "shell".into(),
                command: "bash".into(),
                args: vec![],
                resume_args: vec![],
                prompt_args: vec![],
                env: Default::default(),
                prompt: None,
                base: None,
                worktree: true,
                enter_delay_ms: 0,
                hooks: None,
            },
            branch: format!("muster/{name}"),
            base: "main".into(),
            worktree: PathBuf::from("/x"),
            state: AgentState::Exited,
            exit: Some(ExitInfo { code: Some(3), signal: None }),
            ran: true,
            port_base: 20000,
            session: None,
        }
    }

    #[test]
    fn round_trips_and_survives_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let crew = SavedCrew { version: 1, agents: vec![agent("a"), agent("b")] };
        save(dir.path(), &crew).unwrap();
        assert_eq!(load(dir.path()), (crew, None));
        std::fs::write(path(dir.path()), "{ not json").unwrap();
        let (c, err) = load(dir.path());
        assert!(c.agents.is_empty());
        assert!(err.unwrap().contains("state.json.bad"));
        assert!(dir.path().join(".muster/state.json.bad").exists());
    }

    proptest! {
        #[test]
        fn loading_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join(".muster")).unwrap();
            std::fs::write(path(dir.path()), &bytes).unwrap();
            let _ = load(dir.path());
        }
    }
}
