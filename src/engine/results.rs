//! Agents' structured results (`muster result set`), kept as `.muster/results/<agent>/<attempt>.json`: each
//! attempt a new file, never rewritten, its deliverables named by SHA-256 (checked to exist in the worktree).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::Digest;

use crate::protocol::lead::{AgentResult, StoredResult};

/// The most an agent's deliverables may weigh together: they are hashed on the engine's thread.
const MAX_HASHED: u64 = 16 << 20;
/// The most attempts kept per agent (an older one is never rewritten; past this, none is added).
const MAX_ATTEMPTS: u32 = 1000;

fn dir(root: &Path, agent: &str) -> PathBuf {
    root.join(".muster").join("results").join(agent)
}

/// Every result of `agent`, oldest first (a file that does not parse is skipped).
pub fn all(root: &Path, agent: &str) -> Vec<StoredResult> {
    // A name from a client is a folder name here: only an agent's name is one.
    if crate::config::crew::validate_name(agent).is_err() {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(dir(root, agent)) else { return Vec::new() };
    let mut out: Vec<StoredResult> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".json") && !n.starts_with('.')))
        .filter_map(|e| crate::safefs::read_own_file(&e.path(), 1 << 20).ok().flatten())
        .filter_map(|bytes| serde_json::from_slice::<StoredResult>(&bytes).ok())
        .filter(|r| r.agent == agent)
        .collect();
    out.sort_by_key(|r| r.attempt);
    out
}

pub fn latest(root: &Path, agent: &str) -> Option<StoredResult> {
    all(root, agent).pop()
}

/// Keep `result` as `agent`'s next attempt: its deliverables must be files in `worktree` (hashed here; a
/// hash given must match).
pub fn store(
    root: &Path,
    agent: &str,
    worktree: &Path,
    checkpoint: u32,
    mut result: AgentResult,
) -> Result<StoredResult> {
    result.check().map_err(anyhow::Error::msg)?;
    let base = worktree.canonicalize().with_context(|| format!("{agent}'s worktree"))?;
    let mut hashed = 0u64;
    for d in &mut result.deliverables {
        let path = base.join(&d.path);
        let meta =
            std::fs::symlink_metadata(&path).map_err(|_| anyhow::anyhow!("deliverable `{}` does not exist", d.path))?;
        if !meta.is_file() {
            bail!("deliverable `{}` is not a file", d.path);
        }
        hashed += meta.len();
        if hashed > MAX_HASHED {
            bail!("deliverables are over {} MiB together: name fewer or smaller files", MAX_HASHED >> 20);
        }
        let real = path.canonicalize()?;
        if !real.starts_with(&base) {
            bail!("deliverable `{}` leaves the worktree", d.path);
        }
        let sum = sha256(&real)?;
        if let Some(given) = &d.sha256 {
            if !given.eq_ignore_ascii_case(&sum) {
                bail!("deliverable `{}`: its SHA-256 is {sum}, not {given}", d.path);
            }
        }
        d.sha256 = Some(sum);
    }
    let folder = crate::safefs::real_dir(root, Path::new(".muster/results").join(agent))?;
    let attempt = all(root, agent).last().map_or(1, |r| r.attempt.saturating_add(1));
    if attempt > MAX_ATTEMPTS {
        bail!("{agent} has {MAX_ATTEMPTS} results already");
    }
    let stored =
        StoredResult { agent: agent.to_string(), attempt, at_ms: crate::protocol::now_ms(), checkpoint, result };
    let name = format!("{attempt}.json");
    if folder.join(&name).exists() {
        bail!("{agent}'s result {attempt} exists already: results are never rewritten");
    }
    crate::safefs::write_file(&folder, &name, serde_json::to_string_pretty(&stored)?.as_bytes())?;
    Ok(stored)
}

fn sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::lead::Deliverable;

    #[test]
    fn results_are_kept_per_attempt_with_their_deliverables_hashed() {
        let root = tempfile::tempdir().unwrap();
        let wt = root.path().join("wt");
        std::fs::create_dir_all(&wt).unwrap();
        std::fs::write(wt.join("out.txt"), "abc").unwrap();
        let r = |path: &str, sha: Option<&str>| AgentResult {
            summary: "did it".into(),
            deliverables: vec![Deliverable { path: path.into(), sha256: sha.map(str::to_string) }],
            ..Default::default()
        };
        let one = store(root.path(), "a", &wt, 2, r("out.txt", None)).unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!((one.attempt, one.result.deliverables[0].sha256.as_deref()), (1, Some(abc)));
        assert!(store(root.path(), "a", &wt, 2, r("missing.txt", None))
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        assert!(store(root.path(), "a", &wt, 2, r("out.txt", Some("00"))).unwrap_err().to_string().contains("not 00"));
        std::os::unix::fs::symlink("/etc/hostname", wt.join("link")).unwrap();
        assert!(store(root.path(), "a", &wt, 2, r("link", None)).is_err());
        let two = store(root.path(), "a", &wt, 3, r("out.txt", Some(abc))).unwrap();
        assert_eq!(two.attempt, 2);
        let kept = all(root.path(), "a");
        assert_eq!(kept.iter().map(|r| r.attempt).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(latest(root.path(), "a").unwrap().checkpoint, 3);
        assert!(all(root.path(), "b").is_empty());
    }
}
