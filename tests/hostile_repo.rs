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
