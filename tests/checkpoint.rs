//! Checkpoints and rollback on real repositories: property tests over random file operations, and faults.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use muster::git::checkpoint::{self, DiffBase};
use muster::git::watch::{Changes, WorktreeWatch};
use proptest::prelude::*;

const PATHS: [&str; 11] =
    ["a", "b.txt", "d/c", "d/e/f", "d/e/g.rs", "exe.sh", "link", "x.log", "d/y.log", "n/m/k", "n/j"];
/// Folders for the folder operations of the watcher's property test.
const DIRS: [&str; 5] = ["d", "d/e", "n", "n/m", "q"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    File(Vec<u8>, bool),
    Link(String),
}

#[derive(Debug, Clone)]
enum Op {
    Write(usize, Vec<u8>),
    Delete(usize),
    Rename(usize, usize),
    Chmod(usize, bool),
    Symlink(usize, String),
    RemoveDir(usize),
    MoveDir(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PATHS.len();
    prop_oneof![
        4 => (p.clone(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(i, b)| Op::Write(i, b)),
        2 => p.clone().prop_map(Op::Delete),
        1 => (p.clone(), p.clone()).prop_map(|(a, b)| Op::Rename(a, b)),
        1 => (p.clone(), any::<bool>()).prop_map(|(i, x)| Op::Chmod(i, x)),
        1 => (p, "[a-z./]{1,8}").prop_map(|(i, t)| Op::Symlink(i, t)),
    ]
}

/// File operations plus removing and moving whole folders.
fn op_with_folders() -> impl Strategy<Value = Op> {
    let d = 0..DIRS.len();
    prop_oneof![
        6 => op(),
        1 => d.clone().prop_map(Op::RemoveDir),
        1 => (d.clone(), d).prop_map(|(a, b)| Op::MoveDir(a, b)),
    ]
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["config", "user.email", "t@example.com"]);
    git(dir.path(), &["config", "user.name", "t"]);
    std::fs::write(dir.path().join(".gitignore"), "*.log\n").unwrap();
    std::fs::write(dir.path().join("a"), "first\n").unwrap();
    std::fs::create_dir_all(dir.path().join("d/e")).unwrap();
    std::fs::write(dir.path().join("d/c"), "c\n").unwrap();
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "init"]);
    dir
}

fn is_dir(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// Make the parent folders of `p` usable as folders, as an agent writing a file would.
fn parent_ok(root: &Path, p: &Path) -> bool {
    let mut d = p.parent();
    while let Some(dir) = d.filter(|d| *d != root) {
        if exists(dir) && !is_dir(dir) {
            return false;
        }
        d = dir.parent();
    }
    std::fs::create_dir_all(p.parent().unwrap()).is_ok()
}

fn apply(root: &Path, op: &Op) {
    let path = |i: usize| root.join(PATHS[i]);
    match op {
        Op::Write(i, bytes) => {
            let p = path(*i);
            if !is_dir(&p) && parent_ok(root, &p) {
                if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                    std::fs::remove_file(&p).unwrap();
                }
                std::fs::write(&p, bytes).unwrap();
            }
        }
        Op::Delete(i) => {
            let p = path(*i);
            if exists(&p) && !is_dir(&p) {
                std::fs::remove_file(&p).unwrap();
            }
        }
        Op::Rename(a, b) => {
            let (pa, pb) = (path(*a), path(*b));
            if exists(&pa) && !is_dir(&pa) && !is_dir(&pb) && pa != pb && parent_ok(root, &pb) {
                std::fs::rename(&pa, &pb).unwrap();
            }
        }
        Op::Chmod(i, exec) => {
            let p = path(*i);
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(if *exec { 0o755 } else { 0o644 }))
                    .unwrap();
            }
        }
        Op::Symlink(i, target) => {
            let p = path(*i);
            if !is_dir(&p) && parent_ok(root, &p) {
                let _ = std::fs::remove_file(&p);
                std::os::unix::fs::symlink(target, &p).unwrap();
            }
        }
        Op::RemoveDir(i) => {
            let p = root.join(DIRS[*i]);
            if is_dir(&p) {
                std::fs::remove_dir_all(&p).unwrap();
            }
        }
        Op::MoveDir(a, b) => {
            let (pa, pb) = (root.join(DIRS[*a]), root.join(DIRS[*b]));
            if is_dir(&pa) && !exists(&pb) && !pb.starts_with(&pa) && parent_ok(root, &pb) {
                std::fs::rename(&pa, &pb).unwrap();
            }
        }
    }
}

/// Every file and symlink under `root` except `.git`, split into (not ignored, ignored).
fn capture(root: &Path) -> (BTreeMap<String, Entry>, BTreeMap<String, Entry>) {
    let mut normal = BTreeMap::new();
    let mut ignored = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == ".git" {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            let entry = if m.file_type().is_symlink() {
                Entry::Link(std::fs::read_link(&p).unwrap().to_string_lossy().into_owned())
            } else if m.is_dir() {
                stack.push(p);
                continue;
            } else {
                Entry::File(std::fs::read(&p).unwrap(), m.permissions().mode() & 0o100 != 0)
            };
            if rel.ends_with(".log") {
                ignored.insert(rel, entry)
            } else {
                normal.insert(rel, entry)
            };
        }
    }
    (normal, ignored)
}

fn git_state(root: &Path) -> (Vec<u8>, Vec<u8>, String) {
    let out = Command::new("git").args(["rev-parse", "main"]).current_dir(root).output().unwrap();
    (
        std::fs::read(root.join(".git/index")).unwrap(),
        std::fs::read(root.join(".git/HEAD")).unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn rollback_restores_the_snapshot_exactly(
        before in proptest::collection::vec(op(), 0..12),
        after in proptest::collection::vec(op(), 1..12),
    ) {
        let dir = repo();
        let root = dir.path();
        for o in &before { apply(root, o); }
        let (snapshot, _) = capture(root);
        let git_before = git_state(root);
        let (cp, _) = checkpoint::create(root, "t", "test").unwrap();
        // The user's index, HEAD and branch are byte-for-byte unchanged by a checkpoint.
        prop_assert_eq!(git_state(root), git_before.clone());
        for o in &after { apply(root, o); }
        let (pre_rollback, ignored) = capture(root);
        checkpoint::rollback(root, "t", cp.n, None).unwrap();
        let (restored, ignored_after) = capture(root);
        prop_assert_eq!(&restored, &snapshot);
        prop_assert_eq!(&ignored_after, &ignored);
        prop_assert_eq!(git_state(root).2, git_before.2);
        checkpoint::undo_rollback(root, "t").unwrap();
        let (undone, ignored_undone) = capture(root);
        prop_assert_eq!(&undone, &pre_rollback);
        prop_assert_eq!(&ignored_undone, &ignored);
    }
}

fn tree_of(root: &Path, commit: &str) -> String {
    let out =
        Command::new("git").args(["rev-parse", &format!("{commit}^{{tree}}")]).current_dir(root).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// A checkpoint that reads only the paths the watcher reported equals one that scans every file.
    #[test]
    fn watched_checkpoints_equal_full_scans(rounds in proptest::collection::vec(
        proptest::collection::vec(op_with_folders(), 0..8), 1..5)
    ) {
        let dir = repo();
        let root = dir.path();
        let watch = WorktreeWatch::new(root).unwrap();
        let first = watch.take();
        prop_assert_eq!(&first, &Changes::All);
        checkpoint::create_with(root, "w", "t", &first).unwrap();
        for ops in &rounds {
            for o in ops { apply(root, o); }
            let changes = watch.take();
            let (watched, _) = checkpoint::create_with(root, "w", "t", &changes).unwrap();
            let (scanned, _) = checkpoint::create(root, "f", "t").unwrap();
            prop_assert_eq!(tree_of(root, &watched.id), tree_of(root, &scanned.id), "after {:?}: {:?}", ops, changes);
        }
        // Checkpoint objects are written as packs from memory: every one the refs reach must be on disk.
        fsck(root);
    }
}

fn fsck(root: &Path) {
    let out = Command::new("git").args(["fsck", "--no-progress", "--no-dangling"]).current_dir(root).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && !text.contains("missing"), "git fsck: {text}");
}

/// Writing the objects fails (here the pack folder is a file; a full disk fails the same write): no checkpoint
/// is recorded, muster's index is not saved, and once writing works the next one has every change.
#[test]
fn a_failed_object_write_records_nothing_and_the_next_checkpoint_has_everything() {
    let dir = repo();
    let root = dir.path();
    let watch = WorktreeWatch::new(root).unwrap();
    let (first, _) = checkpoint::create_with(root, "t", "turn", &watch.take()).unwrap();
    std::fs::write(root.join("a"), "changed\n").unwrap();
    let index = root.join(".git/muster-index-t");
    let index_before = std::fs::read(&index).unwrap();
    let packs = root.join(".git/objects/pack");
    std::fs::rename(&packs, root.join(".git/objects/pack-away")).unwrap();
    std::fs::write(&packs, "not a folder").unwrap();
    let e = WorktreeWatch::checkpoint(Some(&watch), |c| checkpoint::create_with(root, "t", "turn", c)).unwrap_err();
    assert!(format!("{e:#}").contains("objects cannot be written"), "{e:#}");
    // What the failed checkpoint took is not lost: the next one scans everything.
    assert_eq!(watch.take(), Changes::All);
    // That take consumed it; the checkpoint below must still see the change.
    watch.rescan();
    std::fs::remove_file(&packs).unwrap();
    std::fs::rename(root.join(".git/objects/pack-away"), &packs).unwrap();
    assert_eq!(checkpoint::list(root, "t").unwrap().len(), 1, "no ref for a checkpoint whose objects failed");
    assert_eq!(std::fs::read(&index).unwrap(), index_before, "muster's index is saved only after its objects");
    let (next, new) = checkpoint::create_with(root, "t", "turn", &watch.take()).unwrap();
    assert!(new && next.n == first.n + 1 && next.files == 1, "{next:?}");
    fsck(root);
}

#[test]
fn a_folder_whose_name_is_not_utf8_makes_every_checkpoint_scan() {
    use std::os::unix::ffi::OsStrExt;
    let dir = repo();
    let root = dir.path();
    let odd = root.join(std::ffi::OsStr::from_bytes(b"odd\xff"));
    std::fs::create_dir_all(&odd).unwrap();
    let watch = WorktreeWatch::new(root).unwrap();
    assert_eq!(watch.take(), Changes::All);
    std::fs::write(odd.join("f"), "x").unwrap();
    assert_eq!(watch.take(), Changes::All, "its files' events could not be named");
    assert!(watch.is_dirty());
}

#[test]
fn checkpoints_survive_git_gc_and_muster_forgets_the_packs_it_repacked() {
    let dir = repo();
    let root = dir.path();
    let mut made = Vec::new();
    for i in 0..4 {
        std::fs::write(root.join("a"), format!("version {i}\n")).unwrap();
        made.push(checkpoint::create(root, "t", "turn").unwrap().0);
        checkpoint::tidy(root);
    }
    git(root, &["gc", "-q", "--prune=now"]);
    checkpoint::tidy(root);
    let listed = std::fs::read_to_string(root.join(".git/muster-packs")).unwrap_or_default();
    assert_eq!(listed.lines().count(), 0, "git's pack replaced muster's: {listed}");
    fsck(root);
    checkpoint::rollback(root, "t", made[1].n, None).unwrap();
    assert_eq!(std::fs::read_to_string(root.join("a")).unwrap(), "version 1\n");
}

#[test]
fn checkpoints_of_a_repository_without_commits_are_complete_objects() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(root.join("x/y")).unwrap();
    std::fs::write(root.join("x/y/z"), "deep\n").unwrap();
    std::fs::write(root.join("top"), "top\n").unwrap();
    let (one, _) = checkpoint::create(root, "t", "turn").unwrap();
    assert_eq!(one.files, 2);
    std::fs::remove_dir_all(root.join("x")).unwrap();
    std::fs::write(root.join("top"), "changed\n").unwrap();
    let (two, new) = checkpoint::create(root, "t", "turn").unwrap();
    assert!(new && two.files == 2, "{two:?}");
    fsck(root);
    checkpoint::rollback(root, "t", one.n, None).unwrap();
    assert_eq!(std::fs::read_to_string(root.join("x/y/z")).unwrap(), "deep\n");
    let loose = std::fs::read_dir(root.join(".git/objects")).unwrap().flatten().filter(|e| e.file_name().len() == 2);
    assert_eq!(loose.count(), 0, "checkpoints write packs, not loose objects");
}

#[test]
fn the_watcher_names_only_what_changed_and_rescans_after_a_folder_moves() {
    let dir = repo();
    let root = dir.path();
    std::fs::create_dir_all(root.join("build")).unwrap();
    std::fs::write(root.join(".gitignore"), "*.log\nbuild/\n").unwrap();
    // Every file this test writes. A file's "closed after writing" event can come late — after a later barrier
    // — when a process forked meanwhile (other tests here run git) held the descriptor until its exec: such a
    // late event names a file written before, which the next checkpoint merely reads again.
    let written = [
        ".gitignore",
        "a",
        "d/c",
        "new/deep/file",
        "new/deep/second",
        "renamed/deep/file",
        "renamed/deep/second",
        "renamed/deep/third",
    ];
    let check = |got: Changes, expected: &[&str]| {
        let Changes::Paths(paths) = &got else { panic!("expected {expected:?}, got {got:?}") };
        for e in expected {
            assert!(paths.iter().any(|p| p == e), "{e} missing from {paths:?}");
        }
        for p in paths {
            assert!(expected.contains(&p.as_str()) || written.contains(&p.as_str()), "{p} in {paths:?}");
        }
    };
    let watch = WorktreeWatch::new(root).unwrap();
    assert!(watch.is_dirty(), "nothing is known before the first scan");
    assert_eq!(watch.take(), Changes::All);
    // A quiet worktree: the next checkpoint looks at nothing.
    check(watch.take(), &[]);
    std::fs::write(root.join("d/c"), "changed\n").unwrap();
    std::fs::write(root.join("build/out"), "ignored folder, not watched\n").unwrap();
    std::fs::create_dir_all(root.join("new/deep")).unwrap();
    std::fs::write(root.join("new/deep/file"), "x").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !watch.is_dirty() {
        assert!(std::time::Instant::now() < deadline, "the watcher never saw the writes");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    check(watch.take(), &["d/c", "new"]);
    // Files in a folder that appeared are seen once the folder has its watch (set up by the take above).
    std::fs::write(root.join("new/deep/second"), "y").unwrap();
    check(watch.take(), &["new/deep/second"]);
    // A watched folder moving would leave its watches with the old name: everything is scanned and watched anew.
    std::fs::rename(root.join("new"), root.join("renamed")).unwrap();
    assert_eq!(watch.take(), Changes::All);
    std::fs::write(root.join("renamed/deep/third"), "z").unwrap();
    check(watch.take(), &["renamed/deep/third"]);
}

#[test]
fn unchanged_tree_makes_no_new_checkpoint_and_triggers_are_recorded() {
    let dir = repo();
    let root = dir.path();
    let (one, new) = checkpoint::create(root, "t", "turn").unwrap();
    assert!(new);
    let (same, new) = checkpoint::create(root, "t", "key").unwrap();
    assert!(!new);
    assert_eq!(same.n, one.n);
    std::fs::write(root.join("a"), "changed\nmore\n").unwrap();
    let (two, new) = checkpoint::create(root, "t", "periodic").unwrap();
    assert!(new);
    assert_eq!((two.n, two.trigger.as_str(), two.files, two.added, two.removed), (2, "periodic", 1, 2, 1));
    let list = checkpoint::list(root, "t").unwrap();
    assert_eq!(list.iter().map(|c| c.n).collect::<Vec<_>>(), vec![2, 1]);
    assert_eq!(list[1].trigger, "turn");
    // Other agents' checkpoints are separate.
    assert!(checkpoint::list(root, "other").unwrap().is_empty());
}

#[test]
fn rollback_resets_the_branch_to_the_recorded_head_and_partial_rollback_touches_only_the_chosen_files() {
    let dir = repo();
    let root = dir.path();
    std::fs::write(root.join("b.txt"), "b1\n").unwrap();
    let (cp, _) = checkpoint::create(root, "t", "turn").unwrap();
    let head_at_cp = git_state(root).2;
    std::fs::write(root.join("a"), "a2\n").unwrap();
    git(root, &["commit", "-qam", "agent work"]);
    std::fs::write(root.join("b.txt"), "b2\n").unwrap();
    // Partial: only b.txt goes back; the branch stays.
    let preview = checkpoint::rollback_preview(root, "t", cp.n, Some(&["b.txt".to_string()])).unwrap();
    assert_eq!(preview, (vec!["b.txt".to_string()], false));
    assert!(checkpoint::rollback_preview(root, "t", cp.n, None).unwrap().1, "a whole rollback moves the branch");
    let report = checkpoint::rollback(root, "t", cp.n, Some(&["b.txt".to_string()])).unwrap();
    assert_eq!(report.changed, vec!["b.txt"]);
    assert_eq!(std::fs::read_to_string(root.join("b.txt")).unwrap(), "b1\n");
    assert_eq!(std::fs::read_to_string(root.join("a")).unwrap(), "a2\n");
    assert_ne!(git_state(root).2, head_at_cp);
    // Whole: files and branch go back.
    checkpoint::rollback(root, "t", cp.n, None).unwrap();
    assert_eq!(std::fs::read_to_string(root.join("a")).unwrap(), "first\n");
    assert_eq!(git_state(root).2, head_at_cp);
    let status = Command::new("git").args(["status", "--porcelain"]).current_dir(root).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "?? b.txt\n");
    // Undo brings the commit and files back.
    checkpoint::undo_rollback(root, "t").unwrap();
    assert_eq!(std::fs::read_to_string(root.join("a")).unwrap(), "a2\n");
    assert_eq!(std::fs::read_to_string(root.join("b.txt")).unwrap(), "b1\n");
    assert_ne!(git_state(root).2, head_at_cp);
}

#[test]
fn diffs_against_previous_and_worktree() {
    let dir = repo();
    let root = dir.path();
    checkpoint::create(root, "t", "turn").unwrap();
    std::fs::write(root.join("a"), "first\nsecond\n").unwrap();
    let (cp, _) = checkpoint::create(root, "t", "turn").unwrap();
    let d = checkpoint::diff(root, "t", cp.n, DiffBase::Previous).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].path.as_str(), d[0].added, d[0].removed), ("a", 1, 0));
    assert!(d[0].lines.iter().any(|(_, l)| l == "second"));
    std::fs::write(root.join("new.rs"), "x\n").unwrap();
    let d = checkpoint::diff(root, "t", cp.n, DiffBase::Worktree).unwrap();
    assert_eq!(d.iter().map(|f| (f.path.as_str(), f.status)).collect::<Vec<_>>(), vec![("new.rs", 'A')]);
}

#[test]
fn faults_are_clear_and_leave_the_worktree_alone() {
    let dir = repo();
    let root = dir.path();
    let (cp, _) = checkpoint::create(root, "t", "turn").unwrap();
    std::fs::write(root.join("a"), "later\n").unwrap();
    // Missing checkpoint.
    let e = checkpoint::rollback(root, "t", 99, None).unwrap_err();
    assert!(format!("{e:#}").contains("checkpoint 99 of t not found"), "{e:#}");
    // A locked index.
    std::fs::write(root.join(".git/index.lock"), "").unwrap();
    let e = checkpoint::rollback(root, "t", cp.n, None).unwrap_err();
    assert!(format!("{e:#}").contains("index.lock exists"), "{e:#}");
    assert_eq!(std::fs::read_to_string(root.join("a")).unwrap(), "later\n");
    std::fs::remove_file(root.join(".git/index.lock")).unwrap();
    // A corrupt ref (points to a blob).
    let blob = Command::new("git").args(["hash-object", "-w", "a"]).current_dir(root).output().unwrap();
    let blob = String::from_utf8_lossy(&blob.stdout).trim().to_string();
    git(root, &["update-ref", "refs/muster/checkpoints/t/5", &blob]);
    let e = checkpoint::rollback(root, "t", 5, None).unwrap_err();
    assert!(format!("{e:#}").contains("corrupt"), "{e:#}");
    assert_eq!(std::fs::read_to_string(root.join("a")).unwrap(), "later\n");
    // A worktree deleted under muster.
    let gone = root.join("nowhere");
    let e = checkpoint::create(&gone, "t", "turn").unwrap_err();
    assert!(format!("{e:#}").contains("does not exist"), "{e:#}");
    // A rollback that fails half-way puts everything back, and never touches ignored files: the checkpoint
    // has a file `d` where there is now a folder `d/` holding an ignored file.
    std::fs::write(root.join("d2"), "was a file\n").unwrap();
    let (cp2, _) = checkpoint::create(root, "t", "turn").unwrap();
    std::fs::remove_file(root.join("d2")).unwrap();
    std::fs::create_dir_all(root.join("d2")).unwrap();
    std::fs::write(root.join("d2/tracked.txt"), "new\n").unwrap();
    std::fs::write(root.join("d2/keep.log"), "ignored\n").unwrap();
    std::fs::write(root.join("a"), "third\n").unwrap();
    let e = checkpoint::rollback(root, "t", cp2.n, None).unwrap_err();
    assert!(format!("{e:#}").contains("put back"), "{e:#}");
    assert_eq!(std::fs::read_to_string(root.join("a")).unwrap(), "third\n");
    assert_eq!(std::fs::read_to_string(root.join("d2/tracked.txt")).unwrap(), "new\n");
    assert_eq!(std::fs::read_to_string(root.join("d2/keep.log")).unwrap(), "ignored\n");
}

#[test]
fn prune_keeps_the_newest() {
    let dir = repo();
    let root = dir.path();
    for i in 0..5 {
        std::fs::write(root.join("a"), format!("{i}\n")).unwrap();
        checkpoint::create(root, "t", "turn").unwrap();
    }
    assert_eq!(checkpoint::prune(root, "t", 2).unwrap(), 3);
    assert_eq!(checkpoint::list(root, "t").unwrap().iter().map(|c| c.n).collect::<Vec<_>>(), vec![5, 4]);
    // Numbering continues after the newest.
    std::fs::write(root.join("a"), "x\n").unwrap();
    assert_eq!(checkpoint::create(root, "t", "turn").unwrap().0.n, 6);
}

#[test]
fn command_line_list_create_restore_undo_prune() {
    let dir = repo();
    let root = dir.path();
    let wt = muster::git::worktree::ensure_worktree(root, "a", None).unwrap();
    let muster = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_muster")).args(args).current_dir(root).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    std::fs::write(wt.path.join("a"), "v1\n").unwrap();
    assert_eq!(muster(&["checkpoint", "create", "a"]).1.trim(), "created checkpoint 1 of a");
    assert_eq!(muster(&["checkpoint", "create", "a"]).1.trim(), "unchanged since checkpoint 1 of a");
    std::fs::write(wt.path.join("a"), "v2\n").unwrap();
    let (code, out) = muster(&["checkpoint", "restore", "a", "1"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("would change 1 file:") && out.contains("  a\n"), "{out}");
    assert_eq!(std::fs::read_to_string(wt.path.join("a")).unwrap(), "v2\n");
    let (code, out) = muster(&["checkpoint", "restore", "a", "1", "--yes"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(std::fs::read_to_string(wt.path.join("a")).unwrap(), "v1\n");
    let (_, out) = muster(&["checkpoint", "list", "a"]);
    assert!(out.contains("#2") && out.contains("rescue before rollback to 1"), "{out}");
    assert!(out.contains("just now") && out.contains(" 1 file +"), "times as people say them: {out}");
    let (_, out) = muster(&["checkpoint", "diff", "a", "2"]);
    assert!(out.contains("M a +1 -1") && out.contains("+v2"), "{out}");
    muster(&["checkpoint", "undo", "a"]);
    assert_eq!(std::fs::read_to_string(wt.path.join("a")).unwrap(), "v2\n");
    assert!(muster(&["checkpoint", "prune", "a", "--keep", "1"]).1.contains("removed 2 checkpoints"));
    let (code, out) = muster(&["checkpoint", "restore", "nobody", "1", "--yes"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("no agent `nobody`"), "{out}");
}

/// Checkpoints taken while a running writer rewrites a file in several steps (a shell's `{ …; } > f`), without
/// stopping it: each holds one whole version, or names the file as still changing.
#[test]
fn optimistic_checkpoints_of_a_file_being_rewritten_are_whole() {
    use muster::pty::tree::AgentTree;
    let dir = repo();
    let root = dir.path();
    let tree = AgentTree::new();
    let (k, v) = tree.mark();
    let script =
        "i=0; while :; do i=$((i+1)); { echo \"round $i\"; seq 1 30000; echo END; } > big.txt; sleep 0.05; done";
    let child = Command::new("bash").arg("-c").arg(script).current_dir(root).env(k, v).spawn().unwrap();
    tree.adopt(child.id());
    // The writer ends with the test, a failed one too (it would go on writing into a removed folder).
    struct Writer<'a>(&'a AgentTree, std::process::Child);
    impl Drop for Writer<'_> {
        fn drop(&mut self) {
            self.0.kill_all();
            let _ = self.1.wait();
        }
    }
    let writer = Writer(&tree, child);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !root.join("big.txt").exists() {
        assert!(std::time::Instant::now() < end, "the writer never wrote");
        std::thread::yield_now();
    }
    let watch = WorktreeWatch::new(root).unwrap();
    let writing = || tree.files_open_for_writing(root);
    let (mut whole, mut unsettled) = (0, 0);
    let mut last_round = String::new();
    while whole + unsettled < 25 {
        assert!(std::time::Instant::now() < end, "too few checkpoints: {whole} whole, {unsettled} unsettled");
        let created = WorktreeWatch::checkpoint_settled(Some(&watch), &writing, |c, again| {
            checkpoint::create_settled(root, "w", "test", c, again).map(|(cp, new, s)| ((cp, new), s.unsettled))
        });
        let (cp, new) = created.unwrap();
        if !new {
            continue;
        }
        let repo = git2::Repository::open(root).unwrap();
        let commit = repo.find_commit(git2::Oid::from_str(&cp.id).unwrap()).unwrap();
        let entry = commit.tree().unwrap().get_path(Path::new("big.txt")).unwrap();
        let text = String::from_utf8_lossy(repo.find_blob(entry.id()).unwrap().content()).into_owned();
        if cp.unsettled.iter().any(|p| p == "big.txt") {
            unsettled += 1;
        } else {
            let round = text.lines().next().unwrap_or("").to_string();
            assert!(
                text.ends_with("\n30000\nEND\n") && text.lines().count() == 30002,
                "checkpoint {} holds a partial big.txt ({} lines)",
                cp.n,
                text.lines().count()
            );
            assert_ne!(round, last_round, "a new checkpoint holds a new version");
            last_round = round;
            whole += 1;
        }
    }
    drop(writer);
    assert!(whole > 0, "every checkpoint gave up on the file");
}

#[test]
fn a_nested_repository_is_left_out_with_a_warning_and_never_blocks() {
    let dir = repo();
    let sub = dir.path().join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    git(&sub, &["init", "-q", "-b", "main"]);
    std::fs::write(sub.join("inner.txt"), "inner\n").unwrap();
    std::fs::write(dir.path().join("a"), "changed\n").unwrap();
    let (cp, made) = checkpoint::create(dir.path(), "w", "test").unwrap();
    assert!(made);
    assert_eq!(cp.skipped, vec!["sub/".to_string()]);
    assert_eq!(checkpoint::list(dir.path(), "w").unwrap()[0].skipped, vec!["sub/".to_string()]);
    // Rolling back and forth leaves the nested repository alone.
    std::fs::write(dir.path().join("a"), "later\n").unwrap();
    checkpoint::rollback(dir.path(), "w", cp.n, None).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("a")).unwrap(), "changed\n");
    assert_eq!(std::fs::read_to_string(sub.join("inner.txt")).unwrap(), "inner\n");
    assert!(sub.join(".git").is_dir());
}

#[test]
fn a_rollback_replaces_files_so_an_open_writer_never_corrupts_them() {
    use std::io::{Seek, Write};
    let dir = repo();
    std::fs::write(dir.path().join("a"), "short\n").unwrap();
    let (cp, _) = checkpoint::create(dir.path(), "w", "test").unwrap();
    std::fs::write(dir.path().join("a"), "a much longer version the agent keeps writing to\n".repeat(10)).unwrap();
    // The agent holds the file open for writing, at its end.
    let mut writer = std::fs::OpenOptions::new().write(true).open(dir.path().join("a")).unwrap();
    writer.seek(std::io::SeekFrom::End(0)).unwrap();
    checkpoint::rollback(dir.path(), "w", cp.n, None).unwrap();
    writer.write_all(b"one more line\n").unwrap();
    drop(writer);
    // Rewritten in place, the restored file would now hold NUL bytes up to the writer's offset.
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"short\n");
}

#[test]
fn a_restore_whose_commit_is_gone_changes_nothing() {
    let dir = repo();
    // A commit on a side branch, checkpointed, then the branch dropped and garbage collected.
    git(dir.path(), &["checkout", "-qb", "side"]);
    std::fs::write(dir.path().join("a"), "side\n").unwrap();
    git(dir.path(), &["commit", "-qam", "side work"]);
    let (cp, _) = checkpoint::create(dir.path(), "w", "test").unwrap();
    git(dir.path(), &["checkout", "-q", "main"]);
    git(dir.path(), &["branch", "-qD", "side"]);
    std::fs::write(dir.path().join("a"), "now\n").unwrap();
    // The checkpoint's ref keeps its tree, not the commit it was taken on (a loose object of `git commit`):
    // that commit is lost, as `git gc` would lose it.
    let head = cp.head.clone();
    std::fs::remove_file(dir.path().join(".git/objects").join(&head[..2]).join(&head[2..])).unwrap();
    let before = capture(dir.path());
    let err = format!("{:#}", checkpoint::rollback(dir.path(), "w", cp.n, None).unwrap_err());
    assert!(err.contains("is gone"), "{err}");
    assert_eq!(capture(dir.path()), before);
}

/// The review is what `git diff $(git merge-base HEAD main)` says of the branch and the whole worktree (new files
/// added to a scratch index, as a merge of everything would take them): files, statuses and counts; work merged
/// into main meanwhile is not the agent's; binary files are listed; new files not committed are marked `?`.
#[test]
fn the_review_is_gits_diff_against_the_merge_base() {
    let dir = repo();
    let root = dir.path();
    let wt = muster::git::worktree::ensure_worktree(root, "r", None).unwrap().path;
    std::fs::write(wt.join("a"), "first\nsecond\n").unwrap();
    std::fs::write(wt.join("committed-new"), "x\n").unwrap();
    git(&wt, &["add", "."]);
    git(&wt, &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "agent work"]);
    // main moves on: not the agent's work.
    std::fs::write(root.join("d/c"), "c\nmain's\n").unwrap();
    git(root, &["commit", "-qam", "main moves"]);
    std::fs::write(wt.join("d/c"), "changed by the agent\n").unwrap();
    std::fs::write(wt.join("untracked.txt"), "one\ntwo\n").unwrap();
    std::fs::write(wt.join("blob.bin"), [0u8, 1, 2, 0, 255]).unwrap();
    std::fs::write(wt.join("noise.log"), "ignored\n").unwrap();

    let (merge_base, files) = checkpoint::review(&wt, "r", "main").unwrap();
    let out = |args: &[&str], env: &[(&str, &str)]| {
        let o = Command::new("git").args(args).envs(env.iter().copied()).current_dir(&wt).output().unwrap();
        assert!(o.status.success(), "{args:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(merge_base, out(&["merge-base", "HEAD", "main"], &[]).trim());
    let index = dir.path().join("scratch-index");
    let env = [("GIT_INDEX_FILE", index.to_str().unwrap())];
    out(&["read-tree", "HEAD"], &env);
    out(&["add", "-A"], &env);
    let numstat = out(&["diff", "--cached", "--numstat", &merge_base], &env);
    let expected: Vec<(String, String, String)> = numstat
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split('\t').collect();
            (w[2].to_string(), w[0].replace('-', "0"), w[1].replace('-', "0"))
        })
        .collect();
    let got: Vec<(String, String, String)> =
        files.iter().map(|f| (f.path.clone(), f.added.to_string(), f.removed.to_string())).collect();
    assert_eq!(got, expected);
    let status = |p: &str| files.iter().find(|f| f.path == p).map(|f| f.status);
    assert_eq!(
        [status("a"), status("committed-new"), status("d/c"), status("untracked.txt"), status("blob.bin")],
        [Some('M'), Some('A'), Some('M'), Some('?'), Some('?')]
    );
    let bin = files.iter().find(|f| f.path == "blob.bin").unwrap();
    assert!(bin.lines.iter().any(|(_, t)| t.contains("binary")), "{bin:?}");
}
