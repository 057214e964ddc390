//! Roles and waves with real agents in real PTYs (issue #30): a pending agent starts once what it follows is done
//! — green: idle with its gates passing —, a wave that waits for the operator's word starts on it, and a restarted
//! server resumes in the same wave, starting nothing twice.

mod common;

use common::Rig;
use muster::engine::{AgentState, Command};
use muster::protocol::gate::GateMark;

fn info(rig: &Rig, name: &str) -> Option<muster::protocol::AgentInfo> {
    rig.agents.get(name).cloned()
}

fn pending(rig: &Rig, name: &str) -> bool {
    info(rig, name).is_some_and(|a| a.pending)
}

#[test]
fn waves_start_as_what_they_follow_is_done_and_a_restart_resumes_in_the_same_wave() {
    let crew = "[[gate]]\nname = \"test\"\nrun = \"grep -q good work.txt\"\nattempts = 1\n\
        [[wave]]\nwave = 3\napprove = true\n\
        [[agent]]\nname = \"a\"\ncommand = \"bash\"\nwave = 1\n\
        args = [\"-c\", \"echo a-ready; while read l; do echo $l > work.txt; echo wrote $l; done\"]\n\
        [[agent]]\nname = \"b\"\ncommand = \"bash\"\nwave = 2\ngates = []\nargs = [\"-c\", \"echo b-ready; exec sleep 600\"]\n\
        [[agent]]\nname = \"c\"\ncommand = \"bash\"\nwave = 3\ngates = []\nargs = [\"-c\", \"echo c-ready; exec sleep 600\"]\n";
    let mut rig = Rig::new(crew, "a");
    rig.wait_for("a at rest", |r| r.state("a") == Some(AgentState::Idle));
    // Idle is not green while its gate has not passed: b waits, saying for what.
    rig.wait_for("b pending for a", |r| {
        info(r, "b").is_some_and(|b| b.pending && b.why.contains("after a (idle, done when green)"))
    });
    let b = info(&rig, "b").unwrap();
    assert_eq!((b.state, b.pid), (AgentState::Stopped, None));
    rig.wait_for("c pending for waves 1 and 2", |r| {
        info(r, "c").is_some_and(|c| c.why.contains("after a (idle") && c.why.contains("b (pending"))
    });
    rig.engine.send(Command::Steer { name: "a".into(), text: "good".into(), force: true });
    rig.wait_for("a's gate green", |r| matches!(r.agents.get("a").map(|a| &a.gate), Some(GateMark::Green { .. })));
    rig.wait_for("b started", |r| !pending(r, "b") && r.agents.get("b").is_some_and(|b| b.pid.is_some()));
    rig.wait_for("b at rest", |r| r.state("b") == Some(AgentState::Idle));
    // Wave 3 waits for the operator's word once b is done (idle: it has no gate).
    rig.wait_for("c waiting for the word", |r| {
        info(r, "c").is_some_and(|c| c.pending && c.why.contains("wave 3 waits for your word"))
    });
    let b_pid = info(&rig, "b").unwrap().pid;

    // A restart: what ran waits for R as ever, nothing starts twice, and c still waits for the word.
    rig.restart("c");
    rig.wait_for("c pending again", |r| {
        info(r, "c").is_some_and(|c| c.pending && c.why.contains("wave 3 waits for your word"))
    });
    for name in ["a", "b"] {
        let i = info(&rig, name).unwrap();
        assert!(!i.pending && i.pid.is_none() && i.pid != b_pid, "{name} was not started again: {i:?}");
    }
    rig.engine.send(Command::ApproveWave { wave: 3 });
    rig.wait_for("c started", |r| r.screen_text("c").contains("c-ready"));
    rig.wait_for("c no longer pending", |r| !pending(r, "c"));
    let (ok, out) = rig.muster(&["crew", "plan"]);
    assert!(ok, "{out}");
    assert!(out.contains("step 3 (wave 3) · waits for your word"), "{out}");
    assert!(out.contains("after the waves before · done when green"), "{out}");
}

/// A read-only role's agent owns nothing: a file it writes in its worktree is the watchdog's finding (under
/// `enforce` the write itself is refused: `tests/guard.rs` proves that path for writes outside a worktree).
#[test]
fn a_read_only_reviewers_write_is_a_finding() {
    let crew = "[[role]]\nname = \"reviewer\"\ncommand = \"bash\"\nread_only = true\n\
        brief = \"Review only.\"\n\
        [[agent]]\nname = \"rev\"\nrole = \"reviewer\"\n\
        args = [\"-c\", \"echo ready; read l; echo oops > notes.txt; echo wrote; exec sleep 600\"]\n";
    let mut rig = Rig::new(crew, "rev");
    rig.wait_for("rev at rest", |r| r.state("rev") == Some(AgentState::Idle));
    assert_eq!(info(&rig, "rev").unwrap().findings, 0);
    rig.engine.send(Command::Steer { name: "rev".into(), text: "go".into(), force: true });
    rig.wait_for("the write found", |r| info(r, "rev").is_some_and(|a| a.findings >= 1));
}

/// Under `guard = "enforce"` a read-only agent cannot write its own worktree at all (Landlock).
#[test]
fn a_read_only_agent_under_enforce_cannot_write_its_worktree() {
    if muster::guard::sandbox::kernel_abi().is_none() {
        eprintln!("no Landlock in this kernel: enforce falls back to watching (the test above covers that)");
        return;
    }
    let crew = "[[agent]]\nname = \"rev\"\ncommand = \"bash\"\nread_only = true\nguard = \"enforce\"\n\
        args = [\"-c\", \"echo ready; read l; echo oops > notes.txt || echo refused; exec sleep 600\"]\n";
    let mut rig = Rig::new(crew, "rev");
    rig.wait_for("rev at rest", |r| r.screen_text("rev").contains("ready"));
    rig.engine.send(Command::Steer { name: "rev".into(), text: "go".into(), force: true });
    rig.wait_for("the write refused", |r| r.screen_text("rev").contains("refused"));
    assert!(!rig.root.join(".muster/worktrees/rev/notes.txt").exists());
}

/// A reviewer is handed the work it reviews, and its verdict drives the implementer: blockers reach it as mail
/// (it works again), an approval of its newest work lets the wave after the reviewer start.
#[test]
fn a_reviewers_blockers_steer_the_implementer_and_its_approval_advances_the_plan() {
    // The reviewer runs `muster review api <what it is told>` for each line typed into it: as itself.
    let crew = format!(
        "[[agent]]\nname = \"api\"\ncommand = \"bash\"\nwave = 1\nadvance = \"idle\"\n\
         args = [\"-c\", \"echo api-ready; while read l; do echo \\\"$l\\\" >> work.txt; echo took it; done\"]\n\
         [[agent]]\nname = \"rev\"\ncommand = \"bash\"\nwave = 2\nreviews = [\"api\"]\nadvance = \"idle\"\n\
         args = [\"-c\", \"echo rev-ready; while read l; do {} review api $l; done\"]\n\
         [[agent]]\nname = \"after\"\ncommand = \"bash\"\nwave = 3\nargs = [\"-c\", \"echo after-ready; exec sleep 600\"]\n",
        env!("CARGO_BIN_EXE_muster")
    );
    let crew = crew.as_str();
    let mut rig = Rig::new(crew, "api");
    rig.wait_for("api at rest", |r| r.state("api") == Some(AgentState::Idle));
    rig.engine.send(Command::Steer { name: "api".into(), text: "first".into(), force: true });
    rig.wait_for("rev started", |r| info(r, "rev").is_some_and(|i| !i.pending && i.pid.is_some()));
    // Its diff of api's work, in its worktree.
    let diff = rig.root.join(".muster/worktrees/rev/.muster/review/api.diff");
    // Written off the engine's thread after api's checkpoint: read until it is there.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&diff).is_ok_and(|d| d.contains("+first")) {
        assert!(std::time::Instant::now() < end, "no diff of api's work: {:?}", std::fs::read_to_string(&diff));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    rig.wait_for("after waits for the approval", |r| {
        info(r, "after").is_some_and(|a| a.pending && a.why.contains("to approve: api"))
    });
    // A blocker: api gets it as mail (typed in at its prompt: its loop writes it down), and is marked.
    let (ok, out) = rig.muster(&["review", "api", "--blocker", "add a test", "--debt", "names"]);
    assert!(ok, "{out}");
    assert!(out.contains("api: review by operator: 1 blocker, 1 point recorded"), "{out}");
    let work = rig.root.join(".muster/worktrees/api/work.txt");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&work).is_ok_and(|w| w.contains("add a test")) {
        assert!(std::time::Instant::now() < end, "the blocker never reached api: {:?}", std::fs::read_to_string(&work));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    rig.wait_for("the mark", |r| info(r, "api").and_then(|a| a.review).is_some_and(|m| !m.approved && m.blockers == 1));
    assert!(info(&rig, "after").unwrap().pending, "a blocker does not advance the plan");
    // An approval of its newest work: the wave after the reviewer starts.
    rig.wait_for("api's checkpoint of that turn", |r| r.messages.iter().any(|m| m == "api: checkpoint 2 (turn)"));
    rig.engine.send(Command::Steer { name: "rev".into(), text: "--approve".into(), force: true });
    rig.wait_for("after started", |r| info(r, "after").is_some_and(|a| !a.pending && a.pid.is_some()));
    let mark = info(&rig, "api").and_then(|a| a.review).unwrap();
    assert!(mark.approved && mark.by == "rev", "{mark:?}");
    let (ok, out) = rig.muster(&["review", "api", "--approve", "--blocker", "x"]);
    assert!(!ok, "approving and blocking at once is refused: {out}");
    let long = "x".repeat(5000);
    let (ok, out) = rig.muster(&["review", &long, "--approve"]);
    assert!(!ok && out.contains("no agent `xxx") && out.len() < 400, "a long name is not said back whole: {out}");
}

/// A reviewer that cannot run `muster review` answers with a last line `VERDICT: CHANGES|APPROVED` on its screen:
/// the lines above it go to the implementer as its blocker, its next look is at only the new work
/// (`api.new.diff`), and an approval advances the plan.
#[test]
fn a_verdict_line_on_the_reviewers_screen_is_its_answer_and_it_looks_again_at_only_the_new_work() {
    let crew = "[[agent]]\nname = \"api\"\ncommand = \"bash\"\nwave = 1\nadvance = \"idle\"\n\
         args = [\"-c\", \"echo api-ready; while read l; do echo \\\"$l\\\" >> work.txt; echo took it; done\"]\n\
         [[agent]]\nname = \"rev\"\ncommand = \"bash\"\nwave = 2\nreviews = [\"api\"]\nadvance = \"idle\"\n\
         args = [\"-c\", \"stty -echo; echo rev-ready; while read l; do echo looking; sleep 1; echo the-reason-$l; \
         echo VERDICT: $l; done\"]\n\
         [[agent]]\nname = \"after\"\ncommand = \"bash\"\nwave = 3\nargs = [\"-c\", \"echo after-ready; exec sleep 600\"]\n";
    let mut rig = Rig::new(crew, "api");
    rig.wait_for("api at rest", |r| r.state("api") == Some(AgentState::Idle));
    rig.engine.send(Command::Steer { name: "api".into(), text: "first".into(), force: true });
    rig.wait_for("rev at rest", |r| info(r, "rev").is_some_and(|i| !i.pending && i.state == AgentState::Idle));
    rig.engine.send(Command::Steer { name: "rev".into(), text: "CHANGES".into(), force: true });
    rig.wait_for("the screen's verdict", |r| {
        info(r, "api").and_then(|a| a.review).is_some_and(|m| !m.approved && m.by == "rev" && m.blockers == 1)
    });
    // Its reasons (the lines above the verdict) reach api as mail, typed in at its prompt.
    let work = rig.root.join(".muster/worktrees/api/work.txt");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&work).is_ok_and(|w| w.contains("the-reason-CHANGES")) {
        assert!(std::time::Instant::now() < end, "the blocker never reached api: {:?}", std::fs::read_to_string(&work));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // api's turn on it made new work: the reviewer gets what changed since the checkpoint it reviewed.
    let new = rig.root.join(".muster/worktrees/rev/.muster/review/api.new.diff");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&new).is_ok_and(|d| d.contains("+the-reason-CHANGES")) {
        assert!(std::time::Instant::now() < end, "no new diff: {:?}", std::fs::read_to_string(&new));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let new = std::fs::read_to_string(&new).unwrap();
    assert!(!new.contains("+first"), "the new diff holds only what changed since the review:\n{new}");
    let whole = std::fs::read_to_string(rig.root.join(".muster/worktrees/rev/.muster/review/api.diff")).unwrap();
    assert!(whole.contains("+first") && whole.contains("api.new.diff"), "{whole}");
    assert!(info(&rig, "after").unwrap().pending, "changes asked for do not advance the plan");
    // A reviewer works in turns: it is asked, by mail from api, to look again.
    rig.wait_for("the reviewer asked to look again", |r| {
        r.mail.values().any(|m| m.from == "api" && m.to == ["rev"] && m.body.contains("has new work since your review"))
    });
    rig.wait_for("api at rest again", |r| r.state("api") == Some(AgentState::Idle));
    rig.engine.send(Command::Steer { name: "rev".into(), text: "APPROVED".into(), force: true });
    rig.wait_for("after started", |r| info(r, "after").is_some_and(|a| !a.pending && a.pid.is_some()));
    let mark = info(&rig, "api").and_then(|a| a.review).unwrap();
    assert!(mark.approved && mark.by == "rev", "{mark:?}");
}

/// `setup` runs in the agent's worktree before its command; a failing one shows why and ends the run there.
#[test]
fn setup_runs_before_the_agent_and_a_failing_one_stops_it() {
    let crew = "[[role]]\nname = \"node\"\ncommand = \"bash\"\nsetup = \"echo prepared > setup.txt\"\n\
        [[agent]]\nname = \"ok\"\nrole = \"node\"\nargs = [\"-c\", \"echo found $(cat setup.txt); exec sleep 600\"]\n\
        [[agent]]\nname = \"bad\"\ncommand = \"bash\"\nsetup = \"echo broken; exit 3\"\n\
        args = [\"-c\", \"echo never; exec sleep 600\"]\n";
    let mut rig = Rig::new(crew, "ok");
    rig.wait_for("ok's command after its setup", |r| r.screen_text("ok").contains("found prepared"));
    rig.wait_for("bad's setup failed", |r| {
        info(r, "bad").is_some_and(|b| b.state == AgentState::Exited && b.exit.is_some_and(|e| e.code == Some(3)))
    });
}
