//! Repositories cloned from strangers and state files written by someone else: muster writes nothing outside
//! the repository, deletes nothing outside its folders, and believes no agent that reports as another.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Rig;
use muster::engine::{AgentState, Command as Cmd};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

const CREW: &str = r#"
[[agent]]
name = "a"
command = "bash"
args = ["-c", "echo up; exec sleep 600"]
[[agent]]
name = "x"
command = "bash"
args = ["-c", "echo up; exec sleep 600"]
"#;

/// Committed symlinks where muster writes: `.muster/ports.env` and `.claude/settings.local.json` to files
/// outside, `.muster/worktrees/x` to another repository.
#[test]
fn committed_symlinks_are_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    let other = outside.path().join("other");
    std::fs::create_dir(&other).unwrap();
    git(&other, &["init", "-q", "-b", "main"]);
    git(&other, &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "o"]);
    for f in ["ports", "settings"] {
        std::fs::write(outside.path().join(f), "precious\n").unwrap();
    }
    let mut rig = Rig::with_setup(CREW, "a", |root| {
        std::fs::create_dir_all(root.join(".muster/worktrees")).unwrap();
        std::fs::create_dir_all(root.join(".claude")).unwrap();
        let link = |target: &Path, at: &str| std::os::unix::fs::symlink(target, root.join(at)).unwrap();
        link(&outside.path().join("ports"), ".muster/ports.env");
        link(&outside.path().join("settings"), ".claude/settings.local.json");
        link(&other, ".muster/worktrees/x");
        git(root, &["add", "-f", ".muster/ports.env", ".claude/settings.local.json", ".muster/worktrees/x"]);
        git(root, &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "hostile links"]);
    });
    rig.wait_for("a up and x refused", |r| {
        r.screen_text("a").contains("up") && r.state("x") == Some(AgentState::Error)
    });
    let x = &rig.agents["x"];
    assert!(x.error.as_deref().unwrap_or("").contains("symbolic link"), "{x:?}");
    assert!(rig.messages.iter().any(|m| m.contains("ports.env") && m.contains("symbolic link")), "{:?}", rig.messages);
    // A checkpoint of a is taken in its own worktree.
    rig.engine.send(Cmd::Checkpoint { name: "a".into() });
    rig.engine.send(Cmd::Checkpoint { name: "x".into() });
    rig.wait_for("a's checkpoint", |r| r.timelines.get("a").is_some_and(|t| !t.is_empty()));
    for f in ["ports", "settings"] {
        assert_eq!(std::fs::read_to_string(outside.path().join(f)).unwrap(), "precious\n", "{f}");
    }
    let refs = Command::new("git").args(["for-each-ref", "refs/muster"]).current_dir(&other).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&refs.stdout), "", "nothing of muster's in the other repository");
    assert!(!other.join(".muster").exists());
}

/// A saved agent whose name climbs out of the repository is left out with a message, and removing that name
/// deletes nothing.
#[test]
fn a_hostile_name_in_the_state_file_deletes_nothing() {
    let mut victim = None;
    let mut rig = Rig::with_setup(CREW, "a", |root| {
        let v = root.parent().unwrap().join("victimdir2");
        std::fs::create_dir_all(&v).unwrap();
        std::fs::write(v.join("keep"), "x").unwrap();
        victim = Some(v);
        let agent = |name: &str| {
            format!(
                r#"{{"spec":{{"name":"{name}","kind":"shell","command":"sh","args":[],"resume_args":[],"prompt_args":[],"env":{{}},"prompt":null,"base":null,"worktree":true,"enter_delay_ms":0,"hooks":null}},"branch":"muster/x","base":"main","worktree":"{}","state":"stopped","exit":null,"ran":true,"port_base":20000}}"#,
                root.parent().unwrap().join("victimdir2").display()
            )
        };
        let state = format!(r#"{{"version":1,"agents":[{},{}]}}"#, agent("../../../victimdir2"), agent("saved"));
        std::fs::write(root.join(".muster/state.json"), state).unwrap();
    });
    let victim = victim.unwrap();
    rig.wait_for("the saved agent and the message", |r| {
        r.agents.contains_key("saved") && r.messages.iter().any(|m| m.contains("victimdir2") && m.contains("left out"))
    });
    assert!(!rig.agents.contains_key("../../../victimdir2"));
    // The saved path is not believed either: its worktree is where muster puts worktrees.
    assert_eq!(rig.agents["saved"].worktree, rig.root.join(".muster/worktrees/saved"));
    rig.engine.send(Cmd::Remove { name: "../../../victimdir2".into(), force: true });
    rig.engine.send(Cmd::Remove { name: "saved".into(), force: true });
    rig.wait_for("saved removed", |r| r.messages.iter().any(|m| m == "removed saved"));
    assert!(victim.join("keep").exists());
}

/// An agent that sets `MUSTER_AGENT` to another's name cannot report as it: hook reports need the agent's own
/// secret, which only its processes have.
#[test]
fn an_agent_cannot_report_as_another() {
    let mut rig = Rig::new(CREW, "a");
    rig.wait_for("a idle", |r| r.state("a") == Some(AgentState::Idle) && r.agents["a"].pid.is_some());
    let pid = rig.agents["a"].pid.unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let var = |k: &str| {
        environ
            .split(|b| *b == 0)
            .find_map(|kv| kv.strip_prefix(format!("{k}=").as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned()))
            .unwrap_or_else(|| panic!("{k} in a's environment"))
    };
    let hook = |token: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_muster"))
            .args(["hook", "PermissionRequest", "{}"])
            .env("MUSTER_AGENT", "a")
            .env("MUSTER_RUN_DIR", var("MUSTER_RUN_DIR"))
            .env("MUSTER_AGENT_TOKEN", token)
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    hook("guessed");
    rig.watch_for(Duration::from_secs(1), |r| match r.state("a") {
        Some(AgentState::Waiting) => Err("a report with a wrong secret was believed".into()),
        _ => Ok(()),
    });
    hook(&var("MUSTER_AGENT_TOKEN"));
    rig.wait_for("a waiting, from its own hook", |r| r.state("a") == Some(AgentState::Waiting));
}

/// A plain repository with a commit, made by git in a temp folder.
fn repo() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir(&root).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "init"]);
    (dir, root)
}

/// `muster mail …` as the operator in `root`, no server running: (success, stdout + stderr).
fn mail_cli(root: &Path, home: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_muster"))
        .arg("mail")
        .args(args)
        .current_dir(root)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("MUSTER_AGENT")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A committed `.muster/mail.db` (or a companion) that links to a database of the user's, or a `.muster` that
/// links elsewhere: the mailbox refuses it, and the file linked to is not touched.
#[test]
fn a_committed_mailbox_symlink_is_refused_and_its_target_untouched() {
    let outside = tempfile::tempdir().unwrap();
    let theirs = outside.path().join("precious.db");
    {
        let c = rusqlite::Connection::open(&theirs).unwrap();
        c.execute_batch("CREATE TABLE mine (x); INSERT INTO mine VALUES (1);").unwrap();
    }
    let before = std::fs::read(&theirs).unwrap();
    for at in [".muster/mail.db", ".muster/mail.db-wal", ".muster"] {
        let (_dir, root) = repo();
        if at != ".muster" {
            std::fs::create_dir(root.join(".muster")).unwrap();
        }
        let target = if at == ".muster" { outside.path().to_path_buf() } else { theirs.clone() };
        std::os::unix::fs::symlink(&target, root.join(at)).unwrap();
        let err = match muster::mailbox::Store::open_in(&root) {
            Ok(_) => panic!("{at}: a linked mailbox was opened"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("symbolic link"), "{at}: {err}");
        let (ok, text) = mail_cli(&root, outside.path(), &["inbox"]);
        assert!(!ok && text.contains("symbolic link"), "{at}: {text}");
        assert_eq!(std::fs::read(&theirs).unwrap(), before, "{at}: the database linked to was changed");
        assert!(!outside.path().join("mail.db").exists(), "{at}: a mailbox was made where .muster links");
        assert!(!outside.path().join("precious.db-wal").exists());
    }
}

/// Mail can hold secrets: the mailbox, its companions and the state file are this user's alone, and a mailbox
/// an older muster left open to others is closed.
#[test]
fn the_mailbox_and_state_are_closed_to_other_users() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, root) = repo();
    {
        let mut store = muster::mailbox::Store::open_in(&root).unwrap();
        let draft = muster::mailbox::store::NewMail {
            from: "operator".into(),
            to: vec!["a".into()],
            recipients: vec!["a".into()],
            body: "the key is hunter2".into(),
            ..Default::default()
        };
        store.send(&draft, 1).unwrap();
        for f in ["mail.db", "mail.db-wal", "mail.db-shm"] {
            let mode = std::fs::metadata(root.join(".muster").join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
    }
    std::fs::set_permissions(root.join(".muster/mail.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(muster::mailbox::Store::open_in(&root).unwrap());
    let mode = std::fs::metadata(root.join(".muster/mail.db")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "an open mailbox was closed");
    muster::engine::store::save(&root, &Default::default()).unwrap();
    let mode = std::fs::metadata(root.join(".muster/state.json")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

/// A ref lock and a pack temporary left by a muster killed in the middle of a checkpoint: the next one removes
/// them at start, and the agent's checkpoints work again (they failed for good before).
#[test]
fn a_ref_lock_left_by_a_killed_muster_is_removed_at_start() {
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let mut rig = Rig::with_setup(CREW, "a", |root| {
        let git = root.join(".git");
        std::fs::create_dir_all(git.join("refs/muster/checkpoints/a")).unwrap();
        std::fs::create_dir_all(git.join("objects/pack")).unwrap();
        for f in ["refs/muster/checkpoints/a/1.lock", "refs/muster/checkpoints/a/2.lock", "objects/pack/pack_git2_x"] {
            let file = std::fs::File::create(git.join(f)).unwrap();
            file.set_modified(an_hour_ago).unwrap();
        }
    });
    rig.wait_for("a up", |r| r.screen_text("a").contains("up"));
    let worktree = rig.agents["a"].worktree.clone();
    for n in 1..=2 {
        std::fs::write(worktree.join("work.txt"), format!("step {n}\n")).unwrap();
        rig.engine.send(Cmd::Checkpoint { name: "a".into() });
        rig.wait_for("a's checkpoint", |r| r.timelines.get("a").is_some_and(|t| t.len() >= n));
    }
    let git = rig.root.join(".git");
    assert!(!git.join("refs/muster/checkpoints/a/1.lock").exists());
    assert!(!git.join("objects/pack/pack_git2_x").exists());
    assert!(!rig.messages.iter().any(|m| m.contains("lock")), "{:?}", rig.messages);
}
