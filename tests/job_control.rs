//! A job-control shell as the agent: checkpoints and the operator's pause must never show up in its job table
//! (SIGSTOP-based pauses turned `sleep 3 && echo AND-RAN` into `[1]+ Stopped`, exit status 147). Both ways of
//! pausing are run, one after the other in this one test (the second needs `MUSTER_NO_CGROUP` in the process's
//! environment): the cgroup freezer, and signals where no freezer can be had.

mod common;

use common::Rig;
use muster::engine::{AgentState, Command};

const CREW: &str = r#"
[[agent]]
name = "sh"
command = "bash"
args = ["--norc", "--noprofile", "-c", "set -m; echo started; sleep 3 && echo AND-RAN; echo rc=$?; exec sleep 600"]
"#;

fn run_the_job_through_checkpoints_and_a_pause(how: &str) {
    let mut rig = Rig::new(CREW, "sh");
    rig.wait_for("the job started", |r| r.screen_text("sh").contains("started"));
    for _ in 0..3 {
        std::fs::write(rig.root.join(".muster/worktrees/sh/file.txt"), format!("{how}\n")).unwrap();
        rig.engine.send(Command::Checkpoint { name: "sh".into() });
    }
    rig.engine.send(Command::Pause { name: "sh".into() });
    rig.wait_for("paused", |r| r.state("sh") == Some(AgentState::Paused));
    rig.engine.send(Command::Resume { name: "sh".into() });
    rig.wait_for("the job's end", |r| r.screen_text("sh").contains("rc="));
    let screen = rig.screen_text("sh");
    assert!(screen.contains("AND-RAN") && screen.contains("rc=0"), "{how}: {screen}");
    assert!(!screen.contains("Stopped"), "{how}: {screen}");
}

#[test]
fn a_job_control_shell_never_sees_its_job_stopped() {
    run_the_job_through_checkpoints_and_a_pause("the cgroup freezer (where this machine has one)");
    // SAFETY of the test: the only test in this binary, so no other thread reads the environment meanwhile.
    std::env::set_var("MUSTER_NO_CGROUP", "1");
    run_the_job_through_checkpoints_and_a_pause("signals");
}
