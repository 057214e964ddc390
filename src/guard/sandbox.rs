//! `guard = "enforce"` (issue #29): an agent runs under a Landlock ruleset that lets it read everything but
//! write only beneath the folders it is given — its worktree, its git metadata, temp folders and its CLI's own.
//! The main checkout, other agents' worktrees, `.git/hooks` and `.git/config` become EACCES for it and every
//! process it starts. `muster sandbox` applies the ruleset to itself and then execs the agent's command, so the
//! agent keeps its process id and nothing runs between fork and exec.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use landlock::{
    path_beneath_rules, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, ABI,
};

/// The newest ABI this build asks for; a kernel with less gets what it has (best effort).
const WANTED: ABI = ABI::V5;

/// The Landlock ABI of the running kernel (None: no Landlock).
pub fn kernel_abi() -> Option<i64> {
    // SAFETY: landlock_create_ruleset with a null attribute, size 0 and the VERSION flag only returns a number.
    let v = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<libc::c_void>(), 0usize, 1u32) };
    (v > 0).then_some(v as i64)
}

/// Where an agent may write under `enforce`: its worktree, the parts of the repository's git folder a commit on
/// its branch writes (objects, refs, logs, its own worktree metadata — not `hooks`, `config` or the main
/// checkout's `HEAD`), and `shared` (temp folders, `/dev`, muster's folders, its CLI's own; `~` expanded) —
/// except any of those that holds the repository: that would open the main checkout again (a repository in
/// `/tmp` gets the agent's own temp folder, not `/tmp`).
pub fn writable(
    repo: &Path,
    worktree: &Path,
    git_common: Option<&Path>,
    git_dir: Option<&Path>,
    shared: &[String],
) -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut out = vec![worktree.to_path_buf()];
    if let Some(common) = git_common {
        out.extend(["objects", "refs", "logs"].iter().map(|p| common.join(p)));
    }
    if let Some(dir) = git_dir {
        out.push(dir.to_path_buf());
    }
    for e in shared {
        // `$XDG_STATE_HOME/opencode`: where the variable points, or nothing when it is not set.
        if let Some(rest) = e.strip_prefix('$') {
            let (var, tail) = rest.split_once('/').unwrap_or((rest, ""));
            if let Some(base) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                let path = PathBuf::from(base).join(tail);
                if !repo.starts_with(&path) {
                    out.push(path);
                }
            }
            continue;
        }
        let path = match (e.strip_prefix("~/"), &home) {
            (Some(rest), Some(h)) => h.join(rest),
            (Some(_), None) => continue,
            (None, _) if e == "~" => match &home {
                Some(h) => h.clone(),
                None => continue,
            },
            (None, _) => PathBuf::from(e),
        };
        if !repo.starts_with(&path) {
            out.push(path);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A rule only takes a folder that exists, and a CLI makes its own folder on first use (`~/.gemini`,
/// `$XDG_STATE_HOME/opencode`), which it could not do under the rule: the missing folders of `writable` are made
/// first (none of them holds the repository). Names with an extension are files (`~/.claude.json`): left alone.
pub fn make_missing_folders(writable: &[PathBuf]) {
    for p in writable {
        if !p.exists() && p.extension().is_none() {
            if let Err(e) = std::fs::create_dir_all(p) {
                tracing::warn!("cannot make {} for an enforced agent: {e}", p.display());
            }
        }
    }
}

/// The places every enforced agent may write besides its own (`writable`'s `shared`).
pub fn common_places() -> Vec<String> {
    let mut out: Vec<String> = ["/tmp", "/var/tmp", "/dev", "~/.cache"].iter().map(|s| s.to_string()).collect();
    if let Some(tmp) = std::env::var_os("TMPDIR") {
        out.push(tmp.to_string_lossy().into_owned());
    }
    out
}

/// Restrict this process (single-threaded: called just before exec): reads anywhere, writes only beneath
/// `writable` (paths that do not exist are skipped). An error when the kernel enforces nothing.
pub fn restrict(writable: &[PathBuf]) -> Result<RulesetStatus> {
    let write = AccessFs::from_write(WANTED);
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(write)
        .context("a Landlock ruleset")?
        .create()
        .context("creating the Landlock ruleset")?
        .add_rules(path_beneath_rules(writable, write))
        .context("adding the writable folders")?
        .restrict_self()
        .context("restricting the agent")?;
    if status.ruleset == RulesetStatus::NotEnforced {
        bail!("this kernel enforces no Landlock ruleset (Landlock not enabled?)");
    }
    Ok(status.ruleset)
}

/// `muster sandbox --write DIR… -- COMMAND ARGS…`: restrict, then become the command.
pub fn exec(writable: &[PathBuf], command: &[String]) -> Result<std::convert::Infallible> {
    use std::os::unix::process::CommandExt;
    let (program, args) = command.split_first().context("no command to run")?;
    restrict(writable)?;
    let e = std::process::Command::new(program).args(args).exec();
    bail!("running {program}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writable_folders_leave_out_the_git_folders_hooks_config_and_whatever_holds_the_repository() {
        let shared: Vec<String> = ["/tmp", "/opt/cli", "/"].iter().map(|s| s.to_string()).collect();
        let w = writable(
            Path::new("/r"),
            Path::new("/r/.muster/worktrees/a"),
            Some(Path::new("/r/.git")),
            Some(Path::new("/r/.git/worktrees/a")),
            &shared,
        );
        for p in
            ["/r/.muster/worktrees/a", "/r/.git/objects", "/r/.git/refs", "/r/.git/worktrees/a", "/opt/cli", "/tmp"]
        {
            assert!(w.contains(&PathBuf::from(p)), "{p} in {w:?}");
        }
        assert!(!w.iter().any(|p| p == Path::new("/r/.git") || p.starts_with("/r/.git/hooks") || p == Path::new("/r")));
        assert!(!w.contains(&PathBuf::from("/")), "/ holds the repository");
        // A repository in /tmp: /tmp is not given.
        let w = writable(Path::new("/tmp/x/r"), Path::new("/tmp/x/r/.muster/worktrees/a"), None, None, &shared);
        assert!(!w.contains(&PathBuf::from("/tmp")), "{w:?}");
    }
}
