//! `.git` tampering (issue #29): what in the repository's git folder can make git run a command, or move the
//! operator's checkout — its hooks, config keys that run commands, the main checkout's `HEAD` — as it is now,
//! and what changed since it was last read.

use std::collections::BTreeMap;
use std::path::Path;

/// Config keys whose value git runs (or that point git at commands to run).
fn runs_commands(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    matches!(key.as_str(), "core.hookspath" | "core.fsmonitor" | "core.sshcommand" | "core.pager" | "core.editor")
        || (key.starts_with("filter.")
            && (key.ends_with(".clean") || key.ends_with(".smudge") || key.ends_with(".process")))
        || (key.starts_with("diff.") && (key.ends_with(".textconv") || key.ends_with(".command")))
        || (key.starts_with("merge.") && key.ends_with(".driver"))
        || key.starts_with("alias.")
        || key == "uploadpack.packobjectshook"
}

/// The git folder's command-running parts at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitFolder {
    /// Hooks (not `.sample`s) and their sizes.
    pub hooks: BTreeMap<String, u64>,
    /// Config keys that run commands, with their values.
    pub config: BTreeMap<String, String>,
    /// What the main checkout's HEAD names (a branch ref, or a commit when detached).
    pub head: String,
}

/// Read the git folder `common` (the repository's, shared by its worktrees).
pub fn read(common: &Path) -> GitFolder {
    let mut hooks = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(common.join("hooks")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".sample") || name.ends_with(".lock") {
                continue;
            }
            hooks.insert(name, e.metadata().map(|m| m.len()).unwrap_or(0));
        }
    }
    let mut config = BTreeMap::new();
    // Only the repository's own file: the user's and the system's are not the crew's to watch.
    if let Ok(cfg) = git2::Config::open(&common.join("config")) {
        if let Ok(mut entries) = cfg.entries(None) {
            while let Some(Ok(e)) = entries.next() {
                if let (Ok(name), Ok(value)) = (e.name(), e.value()) {
                    if runs_commands(name) {
                        config.insert(name.to_string(), value.to_string());
                    }
                }
            }
        }
    }
    let head = std::fs::read_to_string(common.join("HEAD")).unwrap_or_default().trim().to_string();
    GitFolder { hooks, config, head }
}

/// What changed from `before` to `now`: (the path in the git folder, what it is now), for findings.
pub fn changes(before: &GitFolder, now: &GitFolder) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, size) in &now.hooks {
        if before.hooks.get(name) != Some(size) {
            out.push((format!("hooks/{name}"), "a git hook: git runs it".to_string()));
        }
    }
    for (key, value) in &now.config {
        if before.config.get(key) != Some(value) {
            out.push(("config".to_string(), format!("{key} = {value}")));
        }
    }
    if !before.head.is_empty() && now.head != before.head {
        let name = |h: &str| h.strip_prefix("ref: refs/heads/").unwrap_or(h).to_string();
        out.push((
            "HEAD".to_string(),
            format!("the main checkout switched from {} to {}", name(&before.head), name(&now.head)),
        ));
    }
    out
}

/// How many entries each agent branch's reflog (`muster/<name>`) has, by name.
pub fn reflog_lengths(repo: &git2::Repository, names: &[String]) -> BTreeMap<String, usize> {
    names.iter().filter_map(|n| Some((n.clone(), repo.reflog(&format!("refs/heads/muster/{n}")).ok()?.len()))).collect()
}

/// The moves of agent branches since `seen` (reflog lengths) that took commits away (a `reset --hard`, a forced
/// update): (branch, what happened). Every move is in the reflog, however quickly they followed each other.
pub fn rewound(repo: &git2::Repository, seen: &BTreeMap<String, usize>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, before) in seen {
        let refname = format!("refs/heads/muster/{name}");
        let Ok(log) = repo.reflog(&refname) else { continue };
        // Newest first: the entries past what was seen are the first `len - before`, oldest of them last.
        let new = log.len().saturating_sub(*before);
        for i in (0..new).rev() {
            let Some(e) = log.get(i) else { continue };
            let (old, now) = (e.id_old(), e.id_new());
            if old.is_zero() || now.is_zero() || old == now {
                continue;
            }
            if !repo.graph_descendant_of(now, old).unwrap_or(false) {
                let short = |o: git2::Oid| o.to_string()[..8].to_string();
                let lost = repo.graph_ahead_behind(old, now).map(|(ahead, _)| ahead).unwrap_or(0);
                let why = e.message().ok().flatten().unwrap_or("").trim().to_string();
                out.push((
                    refname.clone(),
                    format!("{why}: {} → {}, {lost} commit(s) no longer on the branch", short(old), short(now)),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_command_keys_and_a_switched_head_are_changes() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let common = repo.commondir().to_path_buf();
        let before = read(&common);
        assert!(before.hooks.is_empty(), "samples are not hooks: {before:?}");
        std::fs::write(common.join("hooks/pre-commit"), "#!/bin/sh\ncurl evil\n").unwrap();
        let mut cfg = repo.config().unwrap();
        cfg.set_str("core.fsmonitor", "touch /tmp/x").unwrap();
        cfg.set_str("user.name", "harmless").unwrap();
        std::fs::write(common.join("HEAD"), "ref: refs/heads/other\n").unwrap();
        let now = read(&common);
        let c = changes(&before, &now);
        assert!(c.contains(&("hooks/pre-commit".into(), "a git hook: git runs it".into())), "{c:?}");
        assert!(c.contains(&("config".into(), "core.fsmonitor = touch /tmp/x".into())), "{c:?}");
        assert!(c.iter().any(|(p, d)| p == "HEAD" && d.ends_with("to other")), "{c:?}");
        assert!(!c.iter().any(|(_, d)| d.contains("user.name")), "{c:?}");
        assert!(changes(&now, &now).is_empty(), "nothing new: nothing found");
    }

    #[test]
    fn a_branch_move_that_drops_commits_is_found_in_its_reflog_and_a_forward_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let tree = repo.find_tree(repo.index().unwrap().write_tree().unwrap()).unwrap();
        let one = repo.commit(None, &sig, &sig, "one", &tree, &[]).unwrap();
        let c1 = repo.find_commit(one).unwrap();
        let two = repo.commit(None, &sig, &sig, "two", &tree, &[&c1]).unwrap();
        repo.reference("refs/heads/muster/a", one, true, "branch: created").unwrap();
        let names = vec!["a".to_string()];
        let seen = reflog_lengths(&repo, &names);
        repo.reference("refs/heads/muster/a", two, true, "commit: two").unwrap();
        assert!(rewound(&repo, &seen).is_empty(), "forward");
        let seen = reflog_lengths(&repo, &names);
        // Forward and back between two looks: only the step back counts.
        repo.reference("refs/heads/muster/a", one, true, "reset: moving to HEAD~1").unwrap();
        let found = rewound(&repo, &seen);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "refs/heads/muster/a");
        assert!(
            found[0].1.starts_with("reset: moving to HEAD~1: ")
                && found[0].1.ends_with("1 commit(s) no longer on the branch"),
            "{found:?}"
        );
    }
}
