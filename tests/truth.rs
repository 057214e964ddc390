//! Every signal on screen is true (issue #24): overlaps and diffstats measured against what a merge would
//! really do, refreshed when the base moves.

mod common;

use common::Rig;
use muster::engine::{AgentState, Command};

fn shell(name: &str, script: &str) -> String {
    format!(
        "[[agent]]\nname = \"{name}\"\ncommand = \"bash\"\nargs = [\"-c\", \"{script}; echo ready; exec sleep 600\"]\n"
    )
}

/// alpha, beta and gamma; alpha and beta change files of their own, gamma nothing; alpha is merged. Nobody
/// overlaps anybody, before or after, and alpha's diffstat is empty once its work is in the base.
#[test]
fn after_a_merge_no_overlap_is_invented_and_the_merged_agents_diffstat_is_empty() {
    let crew =
        [shell("alpha", "echo three > alpha.txt"), shell("beta", "echo y > beta.txt"), shell("gamma", "true")].concat();
    let mut rig = Rig::new(&crew, "alpha");
    rig.wait_for("all three at work", |r| {
        ["alpha", "beta", "gamma"].iter().all(|n| r.state(n) == Some(AgentState::Idle))
            && r.agents["alpha"].diffstat.files == 1
            && r.agents["beta"].diffstat.files == 1
    });
    for n in ["alpha", "beta"] {
        rig.engine.send(Command::Checkpoint { name: n.into() });
    }
    rig.wait_for("their checkpoints", |r| {
        ["alpha", "beta"].iter().all(|n| r.timelines.get(*n).is_some_and(|t| !t.is_empty()))
    });
    rig.engine.send(Command::Merge { name: "alpha".into(), into_agent: false, message: None });
    rig.wait_for("alpha merged", |r| r.messages.iter().any(|m| m.contains("alpha: merged")));
    // The report that follows the merge message was asked for by the merge.
    rig.overlaps = None;
    rig.wait_for("an overlap report after the merge", |r| r.overlaps.is_some());
    rig.wait_for("alpha's diffstat empty, its work in the base", |r| r.agents["alpha"].diffstat.files == 0);
    let report = rig.overlaps.clone().unwrap();
    assert!(report.overlaps.is_empty(), "{report:?}");
    assert_eq!(rig.agents["beta"].diffstat.files, 1, "beta's own file only");
}

/// A shell running a quiet command shows nothing for as long as it runs: the terminal's foreground process
/// group says it works (it read idle after 1.5 s, and `send --wait idle` returned before the command ended).
#[test]
fn a_quiet_command_in_a_shell_is_work_until_it_ends() {
    let crew = "[[agent]]\nname = \"worker\"\ncommand = \"bash\"\nargs = [\"--norc\", \"--noprofile\", \"-i\"]\n";
    let mut rig = Rig::new(crew, "worker");
    rig.wait_for("its prompt", |r| r.state("worker") == Some(AgentState::Idle));
    let root = rig.root.clone();
    let worktree = rig.agents["worker"].worktree.clone();
    let send = std::thread::spawn(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_muster"))
            .args(["send", "worker", "sleep 3 && echo done > h.txt", "--wait", "idle"])
            .current_dir(&root)
            .env_remove("MUSTER_AGENT")
            .output()
            .unwrap()
    });
    rig.wait_for("busy while sleep runs", |r| {
        r.agents.get("worker").is_some_and(|a| a.state == AgentState::Busy && a.why.contains("`sleep` runs"))
    });
    let out = send.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "idle", "{}", String::from_utf8_lossy(&out.stderr));
    assert!(worktree.join("h.txt").exists(), "`send --wait idle` returned before the command had ended");
    rig.wait_for("idle again", |r| r.state("worker") == Some(AgentState::Idle));
}

/// An agent that has drawn nothing yet (opencode offline draws nothing for a minute) is starting, not idle:
/// `wait --until idle` does not return for it.
#[test]
fn an_agent_that_draws_nothing_is_starting() {
    // It writes to its terminal (clears it, moves the cursor), but no text.
    let crew = "[[agent]]\nname = \"mute\"\ncommand = \"bash\"\nargs = [\"-c\", \"printf '\\\\033[2J\\\\033[H'; exec sleep 600\"]\n\
                [[agent]]\nname = \"talks\"\ncommand = \"bash\"\nargs = [\"-c\", \"echo hello; exec sleep 600\"]\n";
    let mut rig = Rig::new(crew, "mute");
    rig.wait_for("talks idle", |r| r.state("talks") == Some(AgentState::Idle));
    let (ok, out) = rig.muster(&["wait", "mute", "--until", "idle", "--timeout", "3"]);
    assert!(!ok, "mute read idle: {out}");
    rig.wait_for("mute's state", |r| r.agents.contains_key("mute"));
    let mute = &rig.agents["mute"];
    assert_eq!((mute.state, mute.why.as_str()), (AgentState::Starting, "nothing on screen yet"));
}
