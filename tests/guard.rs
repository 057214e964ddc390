//! Ownership and the watchdog with real agents in real PTYs (bash, steered): what an agent writes outside its
//! `owns`, into `shared`, links out of its worktree and new executables are found as they are written; a restore
//! puts back exactly that file; an allowed path is found no more; findings outlive a restart.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Rig;
use muster::engine::Command;
use muster::protocol::guard::{Finding, FindingKind, FindingStatus};

const CREW: &str = "[defaults]\nshared = [\"Cargo.lock\"]\n\n\
    [[agent]]\nname = \"api\"\ncommand = \"bash\"\nargs = [\"--norc\", \"--noprofile\"]\nowns = [\"src/\"]\n";

fn findings(rig: &Rig, all: bool) -> Vec<Finding> {
    let mut args = vec!["guard", "status", "api", "--json"];
    if all {
        args.push("--all");
    }
    let (ok, out) = rig.muster(&args);
    assert!(ok, "{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn count(rig: &Rig) -> u32 {
    rig.agents.get("api").map_or(0, |a| a.findings)
}

fn worktree(rig: &Rig) -> std::path::PathBuf {
    rig.agents["api"].worktree.clone()
}

fn wait_file(path: &Path, what: &str, ok: impl Fn(&str) -> bool) {
    let end = Instant::now() + common::DEADLINE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if ok(&text) {
            return;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}: {text:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn started() -> Rig {
    let mut rig = Rig::new(CREW, "api");
    // An agent kept to its files gets a checkpoint of its start: what a restore goes back to.
    rig.wait_for("api's start checkpoint", |r| r.agents.get("api").is_some_and(|a| a.checkpoints >= 1));
    rig
}

fn steer(rig: &Rig, text: &str) {
    rig.engine.send(Command::Steer { name: "api".into(), text: text.into(), force: true });
}

#[test]
fn writes_outside_owns_are_found_and_restored_file_by_file() {
    let mut rig = started();
    let wt = worktree(&rig);
    let readme = std::fs::read_to_string(wt.join("README.md")).unwrap();
    steer(&rig, "echo mine >> src/lib.rs; echo theirs >> README.md; echo 2 > Cargo.lock; ln -s /etc etc");
    rig.wait_for("four findings", |r| count(r) >= 5);
    let found = findings(&rig, false);
    let kinds = |path: &str| -> Vec<FindingKind> {
        let mut k: Vec<FindingKind> = found.iter().filter(|f| f.path == path).filter_map(|f| f.kind).collect();
        k.sort();
        k
    };
    assert_eq!(kinds("README.md"), vec![FindingKind::OutsideOwns]);
    assert_eq!(kinds("Cargo.lock"), vec![FindingKind::OutsideOwns, FindingKind::Shared]);
    assert_eq!(kinds("etc"), vec![FindingKind::OutsideOwns, FindingKind::SymlinkEscape]);
    assert!(kinds("src/lib.rs").is_empty(), "its own file: {found:?}");
    let link = found.iter().find(|f| f.kind == Some(FindingKind::SymlinkEscape)).unwrap();
    assert_eq!(link.detail, "/etc");
    assert!(found.iter().all(|f| f.checkpoint_n >= 1), "each names the checkpoint a restore goes back to");

    // Restore README.md: exactly that file goes back; the agent's own change stays; nothing new is found.
    let id = found.iter().find(|f| f.path == "README.md").unwrap().id;
    let (ok, out) = rig.muster(&["guard", "restore", &id.to_string()]);
    assert!(ok, "{out}");
    wait_file(&wt.join("README.md"), "README.md restored", |t| t == readme);
    assert!(std::fs::read_to_string(wt.join("src/lib.rs")).unwrap().ends_with("mine\n"), "its own work stays");
    assert_eq!(std::fs::read_to_string(wt.join("Cargo.lock")).unwrap(), "2\n", "other findings' files stay");
    rig.wait_for("the count down by one", |r| count(r) == 4);
    rig.watch_for(Duration::from_millis(1500), |r| match count(r) {
        4 => Ok(()),
        n => Err(format!("the restore's own write was taken for the agent's: {n} findings")),
    });
    // The restore is a rollback of one file: a rescue checkpoint came first.
    let timeline = rig.timelines.get("api").cloned().unwrap_or_default();
    assert!(timeline.iter().any(|c| c.trigger.starts_with("rescue before restoring")), "{timeline:?}");

    // Allow the link: every finding on it closes, and writing it again finds nothing.
    let id = found.iter().find(|f| f.path == "etc").unwrap().id;
    let (ok, out) = rig.muster(&["guard", "allow", &id.to_string()]);
    assert!(ok, "{out}");
    rig.wait_for("both findings on etc allowed", |r| count(r) == 2);
    steer(&rig, "rm etc; ln -s /usr etc; echo again >> README.md");
    rig.wait_for("README.md found again", |r| count(r) == 3);
    rig.watch_for(Duration::from_millis(1500), |r| match count(r) {
        3 => Ok(()),
        n => Err(format!("an allowed path was found again: {n} findings")),
    });

    // Kept across a restart, with what was done.
    rig.restart("api");
    rig.wait_for("api again", |r| r.agents.contains_key("api"));
    let all = findings(&rig, true);
    let status = |path: &str, s: FindingStatus| all.iter().any(|f| f.path == path && f.status == s);
    assert!(status("README.md", FindingStatus::Restored) && status("etc", FindingStatus::Allowed), "{all:?}");
    assert!(status("README.md", FindingStatus::Open), "the second write is still open: {all:?}");
    assert_eq!(findings(&rig, false).len(), 3);
}

#[test]
fn new_executables_and_files_in_new_folders_are_found() {
    let mut rig = started();
    steer(
        &rig,
        "mkdir -p other/deep && echo x > other/deep/f.txt; printf 'echo hi\\n' > src/run.sh; chmod +x src/run.sh",
    );
    rig.wait_for("two findings", |r| count(r) >= 2);
    let found = findings(&rig, false);
    let has = |path: &str, k: FindingKind| found.iter().any(|f| f.path == path && f.kind == Some(k));
    assert!(has("other/deep/f.txt", FindingKind::OutsideOwns), "{found:?}");
    assert!(has("src/run.sh", FindingKind::NewExecutable), "{found:?}");
    assert!(!has("src/run.sh", FindingKind::OutsideOwns), "{found:?}");
    // Dismissed: closed, kept.
    let id = found.iter().find(|f| f.path == "src/run.sh").unwrap().id;
    let (ok, out) = rig.muster(&["guard", "dismiss", &id.to_string()]);
    assert!(ok, "{out}");
    rig.wait_for("one left", |r| count(r) == 1);
    let (ok, out) = rig.muster(&["guard", "dismiss", "999999"]);
    assert!(!ok && out.contains("no open finding #999999"), "{out}");
}

/// `guard = "enforce"`: writes into the main checkout and the git folder's hooks and config fail with EACCES for
/// the agent and what it starts; its worktree, its commits and its own temp folder work; it keeps running. Where
/// the kernel has no Landlock the agent runs watched only and the operator is told.
#[test]
fn enforce_makes_writes_outside_the_worktree_fail_and_leaves_the_agent_working() {
    let crew =
        "[[agent]]\nname = \"api\"\ncommand = \"bash\"\nargs = [\"--norc\", \"--noprofile\"]\nowns = [\"src/\"]\n\
                guard = \"enforce\"\n";
    let mut rig = Rig::new(crew, "api");
    rig.wait_for("api's start checkpoint", |r| r.agents.get("api").is_some_and(|a| a.checkpoints >= 1));
    let root = rig.root.clone();
    if muster::guard::sandbox::kernel_abi().is_none() {
        rig.wait_for("the operator told", |r| r.messages.iter().any(|m| m.contains("needs Landlock")));
        return;
    }
    let (main, hook) = (root.join("escape"), root.join(".git/hooks/pre-commit"));
    steer(
        &rig,
        &format!(
            "touch {} ; echo x > {} ; git -C {} config core.hooksPath /x ; echo ok >> src/lib.rs && \
             git -c user.email=a@b -c user.name=a commit -qam work && echo COMM\"\"ITTED ; mktemp && echo DO\"\"NE",
            main.display(),
            hook.display(),
            root.display()
        ),
    );
    rig.wait_for("the commands ran", |r| r.screen_text("api").contains("DONE"));
    // Rows joined: the terminal wraps long lines.
    let screen = rig.screen_text("api").replace('\n', "");
    assert!(screen.matches("Permission denied").count() >= 3, "{screen}");
    assert!(screen.contains("COMMITTED"), "a commit on its branch works: {screen}");
    assert!(!main.exists() && !hook.exists(), "nothing written outside");
    let config = std::fs::read_to_string(root.join(".git/config")).unwrap();
    assert!(!config.contains("hooksPath"), "{config}");
    rig.wait_for("it keeps running, at its prompt", |r| r.state("api") == Some(muster::engine::AgentState::Idle));
}

/// A write into the main checkout by a process of the agent (its shell gone there) is laid at the agent; a git
/// hook, a config key that runs commands and the main checkout's HEAD switching are the repository's findings,
/// listed with every agent's.
#[test]
fn the_main_checkout_and_the_git_folder_are_watched() {
    let mut rig = started();
    let root = rig.root.clone();
    // An edit there no process of an agent explains (the operator's own) is the repository's, unattributed.
    std::fs::write(root.join("mine.txt"), "operator\n").unwrap();
    let end = Instant::now() + common::DEADLINE;
    while !findings(&rig, false).iter().any(|f| f.path == "mine.txt") {
        assert!(Instant::now() < end, "the unattributed change was never kept");
        rig.watch_for(Duration::from_millis(100), |_| Ok(()));
    }
    let mine = findings(&rig, false).into_iter().find(|f| f.path == "mine.txt").unwrap();
    assert!(mine.agent.is_empty() && mine.detail.starts_with("no agent's process"), "{mine:?}");
    assert_eq!(count(&rig), 0, "not laid at api");
    // Its shell stays there: what names the agent is a process of it working in the main checkout.
    steer(&rig, &format!("cd {} && echo x > stray.txt", root.display()));
    rig.wait_for("the main checkout finding", |r| count(r) >= 1);
    let found = findings(&rig, false);
    let main = found.iter().find(|f| f.kind == Some(FindingKind::MainCheckout)).expect("a main checkout finding");
    assert_eq!((main.agent.as_str(), main.path.as_str()), ("api", "stray.txt"), "{found:?}");
    assert!(main.detail.contains("works in the main checkout"), "{found:?}");
    std::fs::write(root.join(".git/hooks/pre-commit"), "#!/bin/sh\nexit 0\n").unwrap();
    let git = |args: &[&str]| std::process::Command::new("git").args(args).current_dir(&root).output().unwrap();
    git(&["config", "core.fsmonitor", "true"]);
    let repo_findings = |rig: &Rig| findings(rig, false).into_iter().filter(|f| f.agent.is_empty()).collect::<Vec<_>>();
    let end = Instant::now() + common::DEADLINE;
    while repo_findings(&rig).len() < 3 {
        assert!(Instant::now() < end, "the git folder's findings never came: {:?}", findings(&rig, false));
        rig.watch_for(Duration::from_millis(100), |_| Ok(()));
    }
    let repo = repo_findings(&rig);
    assert!(repo.iter().any(|f| f.path == "hooks/pre-commit" && f.kind == Some(FindingKind::GitTamper)), "{repo:?}");
    assert!(repo.iter().any(|f| f.path == "config" && f.detail == "core.fsmonitor = true"), "{repo:?}");
    assert_eq!(count(&rig), 1, "the repository's findings are not laid at api");
}

/// `m`'s question lists what the merge would bring outside the agent's files.
#[test]
fn a_merge_check_lists_the_files_outside_owns() {
    let mut rig = started();
    steer(&rig, "echo mine >> src/lib.rs; echo theirs >> README.md; echo 2 > Cargo.lock");
    rig.wait_for("the findings", |r| count(r) >= 3);
    rig.engine.send(Command::CheckMerge { name: "api".into(), into_agent: false });
    rig.wait_for("the merge check", |r| !r.merge_checks.is_empty());
    let mut outside = rig.merge_checks[0].outside_owns.clone();
    outside.sort();
    assert_eq!(outside, vec!["Cargo.lock".to_string(), "README.md".to_string()]);
}

/// `disk_quota`: a worktree past 80 % is a finding; at 100 % the agent is paused, with the reason. `stall`: busy
/// with no output and no file change for that long is a finding.
#[test]
fn a_full_quota_pauses_the_agent_and_a_silent_busy_agent_is_stalled() {
    let crew =
        "[[agent]]\nname = \"api\"\ncommand = \"bash\"\nargs = [\"--norc\", \"--noprofile\"]\nowns = [\"src/\"]\n\
                disk_quota = 2\nstall = 2\n";
    let mut rig = Rig::new(crew, "api");
    rig.wait_for("api's start checkpoint", |r| r.agents.get("api").is_some_and(|a| a.checkpoints >= 1));
    // 1.7 MiB: over 80 % of 2 MiB.
    steer(&rig, "head -c 1700000 /dev/zero > src/blob.bin");
    rig.wait_for("the 80 % finding", |r| count(r) >= 1);
    let found = findings(&rig, false);
    assert!(
        found.iter().any(|f| f.kind == Some(FindingKind::QuotaNear) && f.detail.contains("of its 2 MiB")),
        "{found:?}"
    );
    steer(&rig, "head -c 1000000 /dev/zero > src/blob2.bin");
    rig.wait_for("paused at its quota, saying why", |r| {
        r.state("api") == Some(muster::engine::AgentState::Paused)
            && r.messages.iter().any(|m| m.contains("paused: its worktree is at its disk quota"))
    });
    assert!(findings(&rig, false).iter().any(|f| f.kind == Some(FindingKind::QuotaFull)));
    // Resumed and freed, then busy in silence (a command that prints nothing and writes nothing).
    rig.engine.send(Command::Resume { name: "api".into() });
    steer(&rig, "rm src/blob.bin src/blob2.bin; sleep 6");
    rig.wait_for("stalled", |r| r.agents.get("api").is_some_and(|a| a.findings >= 3));
    let stalled = findings(&rig, false).into_iter().find(|f| f.kind == Some(FindingKind::Stalled)).expect("stalled");
    assert!(
        stalled.detail.starts_with("busy ") && stalled.detail.ends_with("with no output and no file change"),
        "{stalled:?}"
    );
}

/// A tool writing a whole tree outside the agent's files: what is kept and listed is bounded, and said.
#[test]
fn a_burst_of_findings_is_bounded() {
    let mut rig = started();
    steer(&rig, "mkdir -p many && for i in $(seq 1 1200); do : > many/f$i; done");
    rig.wait_for("the kept findings", |r| count(r) == 1000);
    rig.watch_for(Duration::from_millis(1500), |r| match count(r) {
        1000 => Ok(()),
        n => Err(format!("{n} open findings kept")),
    });
    assert_eq!(findings(&rig, false).len(), 500, "a list is bounded too");
}

/// An agent's branch taken back (a `reset --hard` that drops a commit) is announced: the repository's finding
/// names the branch and what left it.
#[test]
fn a_branch_losing_commits_is_announced() {
    let mut rig = started();
    steer(&rig, "echo one >> src/lib.rs && git -c user.email=a@b -c user.name=a commit -qam one");
    rig.wait_for("the turn's checkpoint", |r| r.agents.get("api").is_some_and(|a| a.checkpoints >= 2));
    // Back to a tree checkpointed already.
    steer(
        &rig,
        "echo two >> src/lib.rs && git -c user.email=a@b -c user.name=a commit -qam two && sleep 1 && \
         git reset -q --hard HEAD~1",
    );
    let end = Instant::now() + common::DEADLINE;
    let lost = loop {
        let f = findings(&rig, false);
        if let Some(l) = f.into_iter().find(|f| f.path == "refs/heads/muster/api") {
            break l;
        }
        assert!(Instant::now() < end, "the branch's loss was never announced");
        rig.watch_for(Duration::from_millis(100), |_| Ok(()));
    };
    assert!(lost.agent.is_empty() && lost.kind == Some(FindingKind::GitTamper), "{lost:?}");
    assert!(
        lost.detail.starts_with("reset: moving to HEAD~1: ")
            && lost.detail.ends_with("1 commit(s) no longer on the branch"),
        "{lost:?}"
    );
}

/// A merge into the base writes the main checkout: muster's doing (the job mutes it, and the files end as the
/// base's new commit has them), never an unattributed change.
#[test]
fn a_merge_into_the_base_is_not_a_finding() {
    let mut rig = started();
    steer(&rig, "echo merged-line >> src/lib.rs");
    rig.wait_for("its change checkpointed", |r| r.agents.get("api").is_some_and(|a| a.checkpoints >= 2));
    rig.engine.send(Command::Merge { name: "api".into(), into_agent: false, message: None, skip_gates: true });
    rig.wait_for("merged", |r| r.messages.iter().any(|m| m.contains("merged")));
    assert!(std::fs::read_to_string(rig.root.join("src/lib.rs")).unwrap().contains("merged-line"));
    rig.watch_for(Duration::from_millis(2000), |_| Ok(()));
    let found = findings(&rig, false);
    assert!(!found.iter().any(|f| f.kind == Some(FindingKind::MainCheckout)), "{found:?}");
}
