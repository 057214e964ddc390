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
    /// Which launch of the agent this is (0: never launched by this muster): `muster wait` is tied to one run.
    #[serde(default)]
    pub run: u64,
    /// It was done as its `advance` says: the agents after it may start, after a restart too.
    #[serde(default)]
    pub done: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedCrew {
    pub version: u32,
    pub agents: Vec<SavedAgent>,
    /// The waves the operator let start.
    #[serde(default)]
    pub approved: Vec<u32>,
}

pub fn path(root: &Path) -> PathBuf {
    root.join(".muster").join("state.json")
}

/// The largest state file muster reads (a crew of hundreds of agents is a few hundred KB).
const MAX_STATE: u64 = 16 << 20;

pub fn save(root: &Path, crew: &SavedCrew) -> Result<()> {
    let dir = crate::safefs::real_dir(root, ".muster")?;
    let text = serde_json::to_string_pretty(crew)?;
    // The crew's commands, environment and sessions: this user's alone.
    crate::safefs::write_file_mode(&dir, "state.json", text.as_bytes(), 0o600)
}

/// The saved state, read only: a missing file is an empty crew; an unreadable or malformed one is an error
/// naming the file. Agents whose names fail the crew file's check are left out (each named in the warnings), and
/// every agent's worktree is where muster puts it, whatever path the file says.
pub fn load(root: &Path) -> Result<(SavedCrew, Vec<String>)> {
    let p = path(root);
    if !crate::safefs::existing_real_dir(root, ".muster")? {
        return Ok((SavedCrew::default(), vec![]));
    }
    let Some(bytes) = crate::safefs::read_own_file(&p, MAX_STATE)? else {
        return Ok((SavedCrew::default(), vec![]));
    };
    parse(root, &p, bytes)
}

/// The crew in a state file's bytes (`p` names the file in errors), checked as `load` says.
pub fn parse(root: &Path, p: &Path, bytes: Vec<u8>) -> Result<(SavedCrew, Vec<String>)> {
    let text = crate::safefs::utf8(p, bytes)?;
    let mut crew: SavedCrew = serde_json::from_str(&text).with_context(|| format!("{} is malformed", p.display()))?;
    let mut warnings = Vec::new();
    crew.agents.retain(|a| match crate::config::crew::validate_name(&a.spec.name) {
        Ok(()) => true,
        Err(e) => {
            warnings.push(format!("{}: agent left out: {e}", p.display()));
            false
        }
    });
    let mut seen = std::collections::HashSet::new();
    crew.agents.retain(|a| seen.insert(a.spec.name.clone()));
    for a in &mut crew.agents {
        a.worktree =
            if a.spec.worktree { crate::git::worktree::worktree_path(root, &a.spec.name) } else { root.to_path_buf() };
    }
    Ok((crew, warnings))
}

/// The saved state as it stands now, and the pid of the muster running the crew: the file is kept current by a
/// running muster (within a second); without one nothing runs, whatever it says, so its agents read stopped.
pub fn load_live(root: &Path) -> Result<(SavedCrew, Vec<String>, Option<u32>)> {
    let (mut crew, warnings) = load(root)?;
    let running = crate::ipc::run_dir(root).ok().and_then(|d| crate::ipc::holder(&d));
    if running.is_none() {
        for a in &mut crew.agents {
            if a.state.is_running() {
                a.state = AgentState::Stopped;
            }
        }
    }
    Ok((crew, warnings, running))
}

/// The saved state for the engine, which owns the file: one it cannot read is renamed aside (never deleted) and
/// reported, and the crew starts from its crew file.
pub fn load_or_set_aside(root: &Path) -> (SavedCrew, Vec<String>) {
    match load(root) {
        Ok(loaded) => loaded,
        Err(e) => {
            let p = path(root);
            let aside = p.with_extension("json.bad");
            let kept = match std::fs::rename(&p, &aside) {
                Ok(()) => format!("kept as {}", aside.display()),
                Err(r) => format!("and it could not be set aside: {r}"),
            };
            (SavedCrew::default(), vec![format!("{e:#}; {kept}")])
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
                inherit_env: None,
                gates: None,
                owns: None,
                guard: Default::default(),
                writes: Vec::new(),
                stall: None,
                disk_quota: None,
                role: None,
                brief: None,
                read_only: false,
                setup: None,
                wave: None,
                after: vec![],
                advance: Default::default(),
                approve: false,
                reviews: vec![],
                parent: None,
            },
            branch: format!("muster/{name}"),
            base: "main".into(),
            worktree: PathBuf::from("/x"),
            state: AgentState::Exited,
            exit: Some(ExitInfo { code: Some(3), signal: None }),
            ran: true,
            port_base: 20000,
            session: None,
            run: 0,
            done: false,
        }
    }

    #[test]
    fn round_trips_and_survives_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let crew = SavedCrew { version: 1, agents: vec![agent("a"), agent("b")], approved: vec![] };
        save(dir.path(), &crew).unwrap();
        let mut expected = crew.clone();
        for a in &mut expected.agents {
            a.worktree = dir.path().join(".muster/worktrees").join(&a.spec.name);
        }
        assert_eq!(load(dir.path()).unwrap(), (expected, vec![]));
        std::fs::write(path(dir.path()), "{ not json").unwrap();
        // Reading never moves the file; the engine, which writes it, sets it aside.
        assert!(load(dir.path()).unwrap_err().to_string().contains("malformed"));
        assert!(path(dir.path()).exists());
        let (c, err) = load_or_set_aside(dir.path());
        assert!(c.agents.is_empty());
        assert!(err[0].contains("state.json.bad"), "{err:?}");
        assert!(dir.path().join(".muster/state.json.bad").exists());
    }

    #[test]
    fn hostile_names_and_paths_in_the_state_file_go_nowhere() {
        let dir = tempfile::tempdir().unwrap();
        let mut evil = agent("../../../victimdir2");
        evil.worktree = PathBuf::from("/etc");
        let mut moved = agent("ok");
        moved.worktree = PathBuf::from("/elsewhere");
        save(dir.path(), &SavedCrew { version: 1, agents: vec![evil, moved], approved: vec![] }).unwrap();
        let (crew, warnings) = load(dir.path()).unwrap();
        assert_eq!(crew.agents.len(), 1);
        assert_eq!(crew.agents[0].worktree, dir.path().join(".muster/worktrees/ok"));
        assert!(warnings[0].contains("victimdir2"), "{warnings:?}");
    }

    #[test]
    fn a_state_file_that_is_not_utf8_is_an_error_not_an_empty_crew() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".muster")).unwrap();
        std::fs::write(path(dir.path()), b"{\"version\": 1, \xff").unwrap();
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("not UTF-8"), "{err}");
    }

    proptest! {
        #[test]
        fn loading_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join(".muster")).unwrap();
            std::fs::write(path(dir.path()), &bytes).unwrap();
            let _ = load(dir.path());
            let _ = load_or_set_aside(dir.path());
        }
    }
}
