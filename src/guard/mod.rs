//! The watchdog's judgement (issue #29): given what a path of an agent's worktree is now, which findings it makes.
//! `judge` is pure; `facts` reads the path (never following it) and the agent's branch.

pub mod git_folder;
pub mod sandbox;

use std::path::{Component, Path, PathBuf};

use crate::config::owns::Globs;
use crate::protocol::guard::FindingKind;

/// A finding as the watchdog makes it: what, the path, its detail.
pub type Found = (FindingKind, String, String);

/// What an agent may change, as the crew file says.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Its `owns` (None: any file), compiled, and as written (for the finding's words).
    pub owns: Option<Globs>,
    pub owns_text: Vec<String>,
    /// The crew's `shared`.
    pub shared: Globs,
    /// Its CLI's own files (the preset's `ignore`): never the agent's work.
    pub ignore: Globs,
    /// Bytes its worktree may take on disk.
    pub quota: Option<u64>,
}

impl Rules {
    /// Rules from patterns the crew file already checked (a pattern that does not compile takes nothing).
    pub fn new(owns: Option<&[String]>, shared: &[String], ignore: &[String]) -> Rules {
        let compile = |p: &[String]| Globs::new(p).unwrap_or_else(|_| Globs::new(&[]).expect("no patterns"));
        Rules {
            owns: owns.map(compile),
            owns_text: owns.map(<[String]>::to_vec).unwrap_or_default(),
            shared: compile(shared),
            ignore: compile(ignore),
            quota: None,
        }
    }

    /// With a disk quota of `mib` MiB.
    pub fn with_quota(mut self, mib: Option<u64>) -> Rules {
        self.quota = mib.map(|m| m.saturating_mul(1 << 20));
        self
    }
}

/// Bytes the files under `root` take (links not followed, `.git` left out: a worktree's is a file naming the
/// repository's); stops counting past `cap` (enough to say the quota is full).
pub fn disk_use(root: &Path, cap: u64) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else { continue };
            if meta.is_dir() {
                if !(dir == root && e.file_name() == ".git") {
                    stack.push(e.path());
                }
            } else {
                // Blocks on disk, not the length: a sparse file takes what it takes.
                total = total.saturating_add(meta.blocks().saturating_mul(512));
                if total > cap {
                    return total;
                }
            }
        }
    }
    total
}

/// The quota level of `used` bytes of `quota`: 0 under 80 %, 1 from 80 %, 2 when full.
pub fn quota_level(used: u64, quota: u64) -> u8 {
    if used >= quota {
        2
    } else if used.saturating_mul(5) >= quota.saturating_mul(4) {
        1
    } else {
        0
    }
}

/// What a path is now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// git ignores it (and tracks nothing there): build output, caches — not the agent's work.
    pub ignored: bool,
    /// A symbolic link's target, as written in the link.
    pub link: Option<PathBuf>,
    /// A regular file with an execute bit.
    pub executable: bool,
    /// It was executable in the agent's branch already.
    pub was_executable: bool,
    /// It is as the agent's branch has it (put back, or written with the same bytes): nothing to find.
    pub as_committed: bool,
}

/// The findings a change of `rel` (relative to the worktree, `/`-separated) makes, each with its detail.
pub fn judge(rules: &Rules, rel: &str, facts: &Facts) -> Vec<(FindingKind, String)> {
    let mut out = Vec::new();
    if facts.ignored
        || facts.as_committed
        || rules.ignore.matches(rel)
        || rel == ".muster"
        || rel.starts_with(".muster/")
    {
        return out;
    }
    if let Some(owns) = &rules.owns {
        if !owns.matches(rel) {
            out.push((FindingKind::OutsideOwns, format!("owns {}", rules.owns_text.join(", "))));
        }
    }
    if rules.shared.matches(rel) {
        out.push((FindingKind::Shared, String::new()));
    }
    if let Some(target) = &facts.link {
        if escapes(rel, target) {
            out.push((FindingKind::SymlinkEscape, target.display().to_string()));
        }
    }
    if facts.executable && !facts.was_executable {
        out.push((FindingKind::NewExecutable, String::new()));
    }
    out
}

/// Whether a change of `rel` can make no finding, known from the path's own metadata alone: a regular file, not
/// executable, that the agent owns and that is not shared. Most changes are that; they cost no git lookup.
pub fn clearly_fine(rules: &Rules, root: &Path, rel: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let owned = rules.owns.as_ref().is_none_or(|o| o.matches(rel)) && !rules.shared.matches(rel);
    owned && std::fs::symlink_metadata(root.join(rel)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 == 0)
}

/// Whether a link at `rel` (inside the worktree) pointing at `target` leads out of the worktree, read from the
/// words alone: absolute targets always do (a worktree's own absolute path is still a way to name another).
pub fn escapes(rel: &str, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    // Depth below the worktree's root of the link's folder, then walk the target.
    let mut depth = rel.split('/').count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return true,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// What `rel` in `root` is now (None: a folder; a removed file is a change too). `repo` is the worktree's
/// repository, to ask whether git ignores the path and whether the branch had it executable.
pub fn facts(root: &Path, rel: &str, repo: Option<&git2::Repository>) -> Option<Facts> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(root.join(rel)).ok();
    if meta.as_ref().is_some_and(|m| m.is_dir()) {
        return None;
    }
    let ignored = repo.is_some_and(|r| {
        r.is_path_ignored(rel).unwrap_or(false)
            && r.index().ok().is_none_or(|i| i.get_path(Path::new(rel), 0).is_none())
    });
    let link =
        meta.as_ref().filter(|m| m.file_type().is_symlink()).and_then(|_| std::fs::read_link(root.join(rel)).ok());
    let executable = meta.as_ref().is_some_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    let committed = repo.and_then(|r| {
        let tree = r.head().ok()?.peel_to_tree().ok()?;
        let e = tree.get_path(Path::new(rel)).ok()?;
        Some((e.filemode(), e.id()))
    });
    let was_executable = executable && committed.is_some_and(|(mode, _)| mode == 0o100755);
    let as_committed = match (&meta, committed) {
        (None, None) => repo.is_some(),
        (Some(m), Some((mode, id))) if m.file_type().is_symlink() => {
            mode == 0o120000 && link.as_ref().is_some_and(|l| blob_id(l.as_os_str().as_encoded_bytes()) == Some(id))
        }
        (Some(m), Some((mode, id))) if m.is_file() && m.len() <= MAX_COMPARED => {
            let want = if executable { 0o100755 } else { 0o100644 };
            mode == want && git2::Oid::hash_file(git2::ObjectType::Blob, root.join(rel)).ok() == Some(id)
        }
        _ => false,
    };
    Some(Facts { ignored, link, executable, was_executable, as_committed })
}

/// Files larger than this are taken as changed without reading them.
const MAX_COMPARED: u64 = 32 << 20;

fn blob_id(bytes: &[u8]) -> Option<git2::Oid> {
    git2::Oid::hash_object(git2::ObjectType::Blob, bytes).ok()
}

/// The files under folder `rel` (a folder that appeared), at most `max`, relative to `root`.
pub fn files_under(root: &Path, rel: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![rel.to_string()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&dir)) else { continue };
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
            let child = format!("{dir}/{name}");
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if name != ".git" {
                    stack.push(child);
                }
            } else {
                out.push(child);
                if out.len() >= max {
                    return out;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules(owns: Option<&[&str]>, shared: &[&str]) -> Rules {
        let v = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Rules::new(owns.map(v).as_deref(), &v(shared), &v(&[".claude/"]))
    }

    fn kinds(r: &Rules, rel: &str, f: &Facts) -> Vec<FindingKind> {
        judge(r, rel, f).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn a_change_outside_owns_or_in_shared_is_a_finding() {
        let r = rules(Some(&["src/api/", "!src/api/gen/"]), &["Cargo.lock"]);
        let f = Facts::default();
        assert!(kinds(&r, "src/api/x.rs", &f).is_empty());
        assert_eq!(kinds(&r, "src/db.rs", &f), vec![FindingKind::OutsideOwns]);
        assert_eq!(kinds(&r, "src/api/gen/y.rs", &f), vec![FindingKind::OutsideOwns], "taken back by !");
        assert_eq!(kinds(&r, "Cargo.lock", &f), vec![FindingKind::OutsideOwns, FindingKind::Shared]);
        assert_eq!(judge(&r, "src/db.rs", &f)[0].1, "owns src/api/, !src/api/gen/");
        // No owns: any file, but shared stays shared.
        let any = rules(None, &["Cargo.lock"]);
        assert!(kinds(&any, "src/db.rs", &f).is_empty());
        assert_eq!(kinds(&any, "Cargo.lock", &f), vec![FindingKind::Shared]);
        // Ignored files, the CLI's own and muster's own are nobody's work.
        assert!(kinds(&r, "target/debug/x", &Facts { ignored: true, ..f.clone() }).is_empty());
        assert!(kinds(&r, ".claude/settings.json", &f).is_empty());
        assert!(kinds(&r, ".muster/agent.json", &f).is_empty());
    }

    #[test]
    fn links_out_of_the_worktree_and_new_executables_are_findings() {
        let r = rules(None, &[]);
        let link = |t: &str| Facts { link: Some(PathBuf::from(t)), ..Facts::default() };
        assert_eq!(kinds(&r, "etc", &link("/etc")), vec![FindingKind::SymlinkEscape]);
        assert_eq!(kinds(&r, "a/b", &link("../../x")), vec![FindingKind::SymlinkEscape]);
        assert_eq!(kinds(&r, "a/b", &link("../x/../../y")), vec![FindingKind::SymlinkEscape]);
        assert!(kinds(&r, "a/b", &link("../x")).is_empty());
        assert!(kinds(&r, "a/b", &link("./c/../d")).is_empty());
        let exe = Facts { executable: true, ..Facts::default() };
        assert_eq!(kinds(&r, "run.sh", &exe), vec![FindingKind::NewExecutable]);
        assert!(kinds(&r, "run.sh", &Facts { was_executable: true, ..exe }).is_empty());
    }

    proptest! {
        /// A target is judged by walking its words: it escapes exactly when some prefix climbs above the root.
        #[test]
        fn escape_is_climbing_above_the_root(depth in 0usize..4, steps in proptest::collection::vec(0u8..3, 0..8)) {
            let rel = (0..=depth).map(|i| format!("d{i}")).collect::<Vec<_>>().join("/");
            let words: Vec<&str> = steps.iter().map(|s| match s { 0 => "..", 1 => "x", _ => "." }).collect();
            let target = if words.is_empty() { ".".to_string() } else { words.join("/") };
            let mut d = depth as i64;
            let mut out = false;
            for w in &words {
                match *w { ".." => d -= 1, "x" => d += 1, _ => {} }
                if d < 0 { out = true; break; }
            }
            prop_assert_eq!(escapes(&rel, Path::new(&target)), out);
        }
    }

    #[test]
    fn an_owned_plain_file_is_clearly_fine_and_anything_else_is_looked_at() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        for f in ["src/a.rs", "src/run.sh", "b.rs", "src/Cargo.lock"] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        std::fs::set_permissions(root.join("src/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("src/etc")).unwrap();
        let r = rules(Some(&["src/"]), &["**/Cargo.lock"]);
        assert!(clearly_fine(&r, root, "src/a.rs"));
        for rel in ["src/run.sh", "b.rs", "src/Cargo.lock", "src/etc", "src/gone", "src"] {
            assert!(!clearly_fine(&r, root, rel), "{rel}");
        }
    }

    #[test]
    fn disk_use_counts_blocks_and_quota_levels_are_80_and_100_percent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), vec![7u8; 300_000]).unwrap();
        std::fs::write(dir.path().join(".git"), "gitdir: elsewhere").unwrap();
        let used = disk_use(dir.path(), u64::MAX);
        assert!((300_000..400_000).contains(&used), "{used}");
        assert!(disk_use(dir.path(), 1000) > 1000, "stops past the cap");
        assert_eq!((quota_level(79, 100), quota_level(80, 100), quota_level(100, 100)), (0, 1, 2));
    }

    #[test]
    fn facts_read_links_modes_and_what_git_ignores() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = git2::Repository::init(root).unwrap();
        std::fs::write(root.join(".gitignore"), "target/\n").unwrap();
        std::fs::create_dir_all(root.join("target")).unwrap();
        std::fs::write(root.join("target/out"), "x").unwrap();
        std::fs::write(root.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        let f = |rel: &str| facts(root, rel, Some(&repo));
        assert!(f("target/out").unwrap().ignored);
        // Committed, then changed and put back: as committed again, so nothing to find.
        std::fs::write(root.join("kept"), "one\n").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("kept")).unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &[]).unwrap();
        assert!(f("kept").unwrap().as_committed);
        std::fs::write(root.join("kept"), "two\n").unwrap();
        assert!(!f("kept").unwrap().as_committed);
        std::fs::write(root.join("kept"), "one\n").unwrap();
        assert!(f("kept").unwrap().as_committed);
        std::fs::remove_file(root.join("kept")).unwrap();
        assert!(!f("kept").unwrap().as_committed, "removed");
        assert_eq!(f("etc").unwrap().link, Some(PathBuf::from("/etc")), "the link itself, not followed");
        let exe = f("run.sh").unwrap();
        assert!(exe.executable && !exe.was_executable && !exe.ignored);
        assert_eq!(f("gone"), Some(Facts { as_committed: true, ..Facts::default() }), "never there: as committed");
        assert_eq!(f("target"), None, "a folder");
        let mut files = files_under(root, "target", 10);
        files.sort();
        assert_eq!(files, vec!["target/out"]);
    }
}
