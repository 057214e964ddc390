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
