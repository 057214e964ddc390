//! Merges in temporary repositories: clean, content conflict, delete/modify, binary, abort, dirty refusal, and
//! the overlap warning between agents.

use std::path::Path;
use std::process::Command;

use muster::conflict::{parse, Choice, Resolver};
use muster::git::merge::{self, ConflictKind, MergeOutcome, Side};
use muster::git::{checkpoint, overlap, worktree};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository on main with an agent worktree `a` on muster/a.
fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["config", "user.email", "t@example.com"]);
    git(root, &["config", "user.name", "t"]);
    std::fs::write(root.join("f.txt"), "one\ntwo\nthree\n").unwrap();
    std::fs::write(root.join("g.txt"), "keep\n").unwrap();
    std::fs::write(root.join("bin.dat"), [0u8, 1, 2, 3]).unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "init"]);
    let wt = worktree::ensure_worktree(root, "a", None).unwrap().path;
    git(&wt, &["config", "user.email", "t@example.com"]);
    (dir, wt)
}

fn commit_all(dir: &Path, msg: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", msg]);
}

/// The agent and main each commit a different second line of f.txt.
fn same_line_edits(root: &Path, wt: &Path) {
    std::fs::write(wt.join("f.txt"), "one\nAGENT\nthree\n").unwrap();
    commit_all(wt, "agent");
    std::fs::write(root.join("f.txt"), "one\nMAIN\nthree\n").unwrap();
    commit_all(root, "main");
}

#[test]
fn clean_merge_makes_a_merge_commit() {
    let (dir, wt) = setup();
    let root = dir.path();
    std::fs::write(wt.join("new.txt"), "agent\n").unwrap();
    commit_all(&wt, "agent work");
    std::fs::write(root.join("g.txt"), "main moved\n").unwrap();
    commit_all(root, "main work");
    let out = merge::merge(root, "muster/a", "Merge muster/a into main").unwrap();
    assert!(matches!(out, MergeOutcome::Merged { .. }), "{out:?}");
    assert_eq!(git(root, &["log", "-1", "--format=%p"]).split_whitespace().count(), 2, "two parents");
    assert_eq!(std::fs::read_to_string(root.join("new.txt")).unwrap(), "agent\n");
    assert_eq!(git(root, &["status", "--porcelain"]), "");
    assert_eq!(merge::merge(root, "muster/a", "again").unwrap(), MergeOutcome::UpToDate);
}

#[test]
fn content_conflict_resolved_hunk_by_hunk_then_finished() {
    let (dir, wt) = setup();
    let root = dir.path();
    same_line_edits(root, &wt);
    let out = merge::merge(root, "muster/a", "Merge muster/a").unwrap();
    assert_eq!(
        out,
        MergeOutcome::Conflicts {
            files: vec![merge::ConflictFile { path: "f.txt".into(), kind: ConflictKind::Content, unresolved: Some(1) }]
        }
    );
    let err = merge::finish(root, None).unwrap_err();
    assert!(err.to_string().contains("still unresolved: f.txt"), "{err}");
    let text = std::fs::read(root.join("f.txt")).unwrap();
    let mut r = Resolver::new(parse(&text, 7).unwrap());
    assert_eq!(r.len(), 1);
    r.choose(0, Choice::Both).unwrap();
    merge::stage_resolved(root, "f.txt", &r.result()).unwrap();
    merge::finish(root, None).unwrap();
    assert_eq!(std::fs::read_to_string(root.join("f.txt")).unwrap(), "one\nMAIN\nAGENT\nthree\n");
    assert_eq!(git(root, &["log", "-1", "--format=%s"]).trim(), "Merge muster/a");
    assert_eq!(git(root, &["status", "--porcelain"]), "");
}

#[test]
fn delete_modify_and_binary_conflicts_have_no_markers_and_take_a_side() {
    let (dir, wt) = setup();
    let root = dir.path();
    std::fs::remove_file(wt.join("g.txt")).unwrap();
    std::fs::write(wt.join("bin.dat"), [9u8, 0, 9]).unwrap();
    commit_all(&wt, "agent deletes g, changes bin");
    std::fs::write(root.join("g.txt"), "main edit\n").unwrap();
    std::fs::write(root.join("bin.dat"), [7u8, 0, 7]).unwrap();
    commit_all(root, "main edits g and bin");
    let MergeOutcome::Conflicts { files } = merge::merge(root, "muster/a", "m").unwrap() else { panic!("no conflict") };
    let kinds: Vec<(String, ConflictKind)> = files.into_iter().map(|f| (f.path, f.kind)).collect();
    assert_eq!(kinds, vec![("bin.dat".into(), ConflictKind::Binary), ("g.txt".into(), ConflictKind::DeletedByThem)]);
    merge::take_side(root, "bin.dat", Side::Theirs).unwrap();
    merge::take_side(root, "g.txt", Side::Theirs).unwrap();
    assert!(!root.join("g.txt").exists());
    assert_eq!(std::fs::read(root.join("bin.dat")).unwrap(), vec![9u8, 0, 9]);
    merge::finish(root, Some("took theirs")).unwrap();
    assert_eq!(git(root, &["status", "--porcelain"]), "");
}

#[test]
fn abort_restores_the_exact_previous_state() {
    let (dir, wt) = setup();
    let root = dir.path();
    std::fs::write(wt.join("f.txt"), "one\nAGENT\nthree\n").unwrap();
    std::fs::write(wt.join("added.txt"), "new\n").unwrap();
    commit_all(&wt, "agent");
    std::fs::write(root.join("f.txt"), "one\nMAIN\nthree\n").unwrap();
    commit_all(root, "main");
    std::fs::write(root.join("untracked.txt"), "mine\n").unwrap();
    let index_before = std::fs::read(root.join(".git/index")).unwrap();
    let head_before = git(root, &["rev-parse", "HEAD"]);
    assert!(matches!(merge::merge(root, "muster/a", "m").unwrap(), MergeOutcome::Conflicts { .. }));
    merge::abort(root).unwrap();
    assert_eq!(std::fs::read(root.join(".git/index")).unwrap(), index_before);
    assert_eq!(git(root, &["rev-parse", "HEAD"]), head_before);
    assert_eq!(std::fs::read_to_string(root.join("f.txt")).unwrap(), "one\nMAIN\nthree\n");
    assert!(!root.join("added.txt").exists());
    assert_eq!(std::fs::read_to_string(root.join("untracked.txt")).unwrap(), "mine\n");
    assert!(!root.join(".git/MERGE_HEAD").exists());
}

#[test]
fn dirty_main_worktree_is_refused_with_what_is_dirty() {
    let (dir, wt) = setup();
    let root = dir.path();
    std::fs::write(wt.join("new.txt"), "x\n").unwrap();
    commit_all(&wt, "agent");
    std::fs::write(root.join("f.txt"), "dirty\n").unwrap();
    let err = merge::merge(root, "muster/a", "m").unwrap_err();
    assert!(err.to_string().contains("uncommitted changes (f.txt)"), "{err}");
    assert_eq!(std::fs::read_to_string(root.join("f.txt")).unwrap(), "dirty\n");
}

#[test]
fn base_into_agent_merges_in_the_agents_worktree() {
    let (dir, wt) = setup();
    let root = dir.path();
    std::fs::write(root.join("g.txt"), "from main\n").unwrap();
    commit_all(root, "main");
    let out = merge::merge(&wt, "main", "Merge main into muster/a").unwrap();
    assert!(matches!(out, MergeOutcome::Merged { .. }));
    assert_eq!(std::fs::read_to_string(wt.join("g.txt")).unwrap(), "from main\n");
    assert_eq!(git(root, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "main");
}

#[test]
fn overlaps_same_file_and_trial_merge_conflicts() {
    let (dir, wt_a) = setup();
    let root = dir.path();
    let wt_b = worktree::ensure_worktree(root, "b", None).unwrap().path;
    let wt_c = worktree::ensure_worktree(root, "c", None).unwrap().path;
    // a and b change the same line of f.txt; c changes g.txt only; uncommitted work counts through checkpoints.
    std::fs::write(wt_a.join("f.txt"), "one\nA\nthree\n").unwrap();
    std::fs::write(wt_b.join("f.txt"), "one\nB\nthree\n").unwrap();
    std::fs::write(wt_c.join("g.txt"), "c\n").unwrap();
    for (wt, n) in [(&wt_a, "a"), (&wt_b, "b"), (&wt_c, "c")] {
        checkpoint::create(wt, n, "turn").unwrap();
    }
    let agents: Vec<(String, String)> = ["a", "b", "c"].iter().map(|n| (n.to_string(), "main".to_string())).collect();
    let report = overlap::check(root, &agents).unwrap();
    assert_eq!(report.overlaps.len(), 1);
    let o = &report.overlaps[0];
    assert_eq!(
        (o.a.as_str(), o.b.as_str(), o.files.clone(), o.conflicts.clone()),
        ("a", "b", vec!["f.txt".into()], vec!["f.txt".into()])
    );
    assert_eq!(report.merge_order[0], "c");
    // Different lines of the same file overlap without conflicting.
    std::fs::write(wt_b.join("f.txt"), "one\ntwo\nthree\nB\n").unwrap();
    checkpoint::create(&wt_b, "b", "turn").unwrap();
    let report = overlap::check(root, &agents).unwrap();
    assert_eq!(report.overlaps[0].conflicts, Vec::<String>::new());
    assert_eq!(report.overlaps[0].files, vec!["f.txt".to_string()]);
}

fn muster(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_muster")).args(args).current_dir(dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn command_line_merge_conflicts_resolve_finish() {
    let (dir, wt) = setup();
    let root = dir.path();
    same_line_edits(root, &wt);
    let (code, out) = muster(root, &["merge", "a"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("both modified    f.txt"), "{out}");
    let (_, out) = muster(root, &["conflicts", "list"]);
    assert!(out.contains("f.txt") && out.contains("1 conflict"), "{out}");
    let (code, out) = muster(root, &["conflicts", "resolve", "f.txt", "--take", "theirs", "--conflict", "1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("resolved and staged"), "{out}");
    let (code, out) = muster(root, &["merge", "--finish"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(std::fs::read_to_string(root.join("f.txt")).unwrap(), "one\nAGENT\nthree\n");
    assert_eq!(git(root, &["log", "-1", "--format=%s"]).trim(), "Merge muster/a into main");
    // The agent was checkpointed before the merge.
    assert!(checkpoint::list(&wt, "a").unwrap().iter().any(|c| c.trigger == "before merge"));
}

#[test]
fn command_line_refuses_malformed_files_and_leaves_them_alone() {
    let (dir, _) = setup();
    let root = dir.path();
    let bad = "x\n<<<<<<< ours\nmine\n=======\ntheirs\n";
    std::fs::write(root.join("bad.txt"), bad).unwrap();
    let (code, out) = muster(root, &["conflicts", "resolve", "bad.txt", "--take", "ours"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("bad.txt:2: unterminated conflict"), "{out}");
    assert_eq!(std::fs::read_to_string(root.join("bad.txt")).unwrap(), bad);
    let (code, out) = muster(root, &["merge", "--finish"]);
    assert_eq!(code, 1);
    assert!(out.contains("no merge in progress"), "{out}");
}
