//! Gates with real agents in real PTYs (the demo agent: it fixes what a gate's mail names, or, lazy, changes
//! nothing) and real check commands: fail, steer, pass; the attempts spent; the loop guard; errors of the check
//! itself; a cancel; a restart.

mod common;

use common::Rig;
use muster::engine::{AgentState, Command};
use muster::protocol::gate::GateMark;
use muster::protocol::mail::ReceiptState as R;

/// A demo agent `name`: fresh (its first turn writes a plan and asks a question) or resumed (straight to its
/// prompt, no turn until told), lazy (on a gate's mail it changes nothing) or not.
fn agent(name: &str, resumed: bool, lazy: bool) -> String {
    let resume = if resumed { "\"--resume\", " } else { "" };
    let env = if lazy {
        "env = { MUSTER_DEMO_QUIET = \"1\", MUSTER_DEMO_LAZY = \"1\" }"
    } else {
        "env = { MUSTER_DEMO_QUIET = \"1\" }"
    };
    format!(
        "[[agent]]\nname = \"{name}\"\nkind = \"demo\"\nargs = [\"demo-agent\", {resume}\"--think\", \"0.8\"]\n{env}\n"
    )
}

fn gate(run: &str, extra: &str) -> String {
    format!("[[gate]]\nname = \"test\"\nrun = '''{run}'''\n{extra}\n")
}

/// A resumed, diligent `api` at its prompt with the gate `gate(run, extra)`.
fn resumed_with_gate(run: &str, extra: &str) -> Rig {
    let mut rig = Rig::new(&format!("{}{}", agent("api", true, false), gate(run, extra)), "api");
    rig.wait_for("api at its prompt", |r| r.state("api") == Some(AgentState::Idle));
    rig
}

/// The mail `gate` sent `to`, oldest first.
fn gate_mail(rig: &Rig, to: &str) -> Vec<muster::protocol::mail::Mail> {
    rig.mail.values().filter(|m| m.from == "gate" && m.to.iter().any(|t| t == to)).cloned().collect()
}

fn mark(rig: &Rig, name: &str) -> GateMark {
    rig.agents.get(name).map(|a| a.gate.clone()).unwrap_or_default()
}

/// The demo crew's gate fails on api's first plan while api asks its question: the failure waits (never into the
/// dialog); once api is at its prompt it gets it (one mail: the failure of its next turn replaced the first), fixes
/// the plan, and the gate passes on the checkpoint that ends that turn.
#[test]
fn a_failing_gate_steers_the_agent_until_it_passes() {
    let crew = format!("{}{}", agent("api", false, false), gate("sh check.sh", ""));
    let mut rig = Rig::with_setup(&crew, "api", |root| {
        std::fs::write(root.join("check.sh"), muster::demo::CHECK_SH).unwrap();
        let git = |args: &[&str]| std::process::Command::new("git").args(args).current_dir(root).output().unwrap();
        git(&["add", "check.sh"]);
        git(&["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "the crew's test"]);
    });
    rig.wait_for("api's question", |r| r.state("api") == Some(AgentState::Waiting));
    rig.wait_for("the gate's failure", |r| matches!(mark(r, "api"), GateMark::Red { attempt: 1, of: 4, .. }));
    let first = gate_mail(&rig, "api");
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        first[0].body.contains("api::plan_is_complete") && first[0].body.contains("attempt 1 of 4"),
        "{}",
        first[0].body
    );
    // The question stays on screen: the failure waits for it.
    rig.watch_for(std::time::Duration::from_millis(1500), |r| match r.receipt(first[0].id, "api") {
        Some(R::Queued | R::Held) => Ok(()),
        other => Err(format!("the gate's mail went into the question: {other:?}")),
    });
    rig.engine.send(Command::Steer { name: "api".into(), text: "y".into(), force: true });
    rig.wait_for("green", |r| matches!(mark(r, "api"), GateMark::Green { .. }));
    let GateMark::Green { checkpoint_n } = mark(&rig, "api") else { unreachable!() };
    // The timeline marks that checkpoint, and no checkpoint the gate failed on.
    rig.wait_for("the green checkpoint in the timeline", |r| {
        r.timelines.get("api").is_some_and(|t| t.iter().any(|c| c.green && c.n == checkpoint_n))
    });
    assert_eq!(rig.timelines["api"].iter().filter(|c| c.green).count(), 1, "{:#?}", rig.timelines["api"]);
    let mails = gate_mail(&rig, "api");
    let delivered: Vec<_> = mails.iter().filter(|m| m.receipt("api").is_some_and(|r| r.state.reached())).collect();
    assert_eq!(delivered.len(), 1, "one failure reached api: {mails:#?}");
    let plan = std::fs::read_to_string(rig.root.join(".muster/worktrees/api/demo/api.txt")).unwrap();
    assert!(!plan.contains("FIXME") && plan.contains("greet() is tested"), "{plan}");
    // The runs, as a script reads them: the failures, then the pass, each on a checkpoint.
    let (ok, text) = rig.muster(&["gate", "status", "api"]);
    assert!(ok, "{text}");
    let first_line = text.lines().next().unwrap_or("");
    assert!(first_line.contains("test pass") && first_line.contains("checkpoint"), "{text}");
    assert!(text.contains("test fail (exit 1)") && text.contains("failing: api::plan_is_complete"), "{text}");
    let (ok, text) = rig.muster(&["wait", "api", "--until", "green", "--timeout", "5"]);
    assert!(ok, "{text}");
}

/// A gate that never passes: each failure goes back (four, as many as the attempts), the agent changes its files
/// each time, and the fifth failure holds it waiting with the reason; a granted attempt sends the failure again.
#[test]
fn spent_attempts_hold_the_agent_waiting_with_the_reason() {
    let mut rig = resumed_with_gate("echo 'test api::never ... FAILED'; exit 1", "");
    let (ok, text) = rig.muster(&["gate", "run", "api"]);
    assert!(ok, "{text}");
    rig.wait_for("held", |r| {
        r.state("api") == Some(AgentState::Waiting) && r.agents["api"].why == "gate test failed 4/4"
    });
    let mails = gate_mail(&rig, "api");
    assert_eq!(mails.len(), 4, "exactly four steers: {mails:#?}");
    for (i, m) in mails.iter().enumerate() {
        assert!(m.body.contains(&format!("attempt {} of 4", i + 1)), "{}", m.body);
    }
    rig.wait_for("the mark", |r| mark(r, "api") == GateMark::Red { gate: "test".into(), attempt: 4, of: 4 });
    let (ok, text) = rig.muster(&["gate", "grant", "api"]);
    assert!(ok && text.contains("attempt 5 of 5"), "{text}");
    rig.wait_for("the fifth steer", |r| gate_mail(r, "api").len() == 5);
    rig.wait_for("held again", |r| r.agents["api"].why == "gate test failed 5/5");
}

/// Stopping an agent's gate loop while its failure waits (the agent asks its question) drops that failure; the
/// gate still runs and shows, and nothing more is sent.
#[test]
fn stopping_the_loop_drops_the_failure_on_its_way() {
    let crew = format!("{}{}", agent("api", false, false), gate("sh check.sh", ""));
    let mut rig = Rig::with_setup(&crew, "api", |root| {
        std::fs::write(root.join("check.sh"), muster::demo::CHECK_SH).unwrap();
        let git = |args: &[&str]| std::process::Command::new("git").args(args).current_dir(root).output().unwrap();
        git(&["add", "check.sh"]);
        git(&["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "the crew's test"]);
    });
    rig.wait_for("the gate's failure", |r| matches!(mark(r, "api"), GateMark::Red { .. }));
    let id = gate_mail(&rig, "api")[0].id;
    let (ok, text) = rig.muster(&["gate", "stop", "api"]);
    assert!(ok, "{text}");
    rig.wait_for("the failure dropped", |r| r.receipt(id, "api") == Some(R::Dropped));
    rig.wait_for("the roster says so", |r| r.agents["api"].gates_stopped);
    let detail = rig.mail[&id].receipt("api").and_then(|r| r.detail.clone());
    assert_eq!(detail.as_deref(), Some("the operator stopped its gates' loop"));
}

/// A lazy agent: after the failure is sent, two turns that change nothing hold it, and the gate is not run again
/// on the tree it already judged.
#[test]
fn two_turns_without_a_change_after_a_steer_hold_the_agent() {
    let crew = format!("{}{}", agent("api", true, true), gate("echo 'test api::x ... FAILED'; exit 1", ""));
    let mut rig = Rig::new(&crew, "api");
    rig.wait_for("api at its prompt", |r| r.state("api") == Some(AgentState::Idle));
    let (ok, text) = rig.muster(&["gate", "run", "api"]);
    assert!(ok, "{text}");
    rig.wait_for("the steer delivered", |r| {
        gate_mail(r, "api").first().and_then(|m| m.receipt("api")).is_some_and(|x| x.state.reached())
    });
    // Its turn on the failure is over (its state alone may still be the idle from before the mail went in).
    rig.wait_for("api back at its prompt", |r| {
        r.state("api") == Some(AgentState::Idle) && r.screen_text("api").contains("looked at it, changed nothing")
    });
    // Another turn that changes nothing (a lazy agent notes nothing of what it is told).
    rig.engine.send(Command::Steer { name: "api".into(), text: "look again".into(), force: false });
    rig.wait_for("held for no progress", |r| {
        r.state("api") == Some(AgentState::Waiting) && r.agents["api"].why.contains("no file changed")
    });
    let (ok, text) = rig.muster(&["gate", "status", "api"]);
    assert!(ok && text.lines().count() == 1, "one run, on the one tree: {text}");
}

/// A check that cannot run (its command is missing) is the operator's to hear, never the agent's: no attempt,
/// no mail, the mark says `!`.
#[test]
fn a_missing_command_is_an_error_for_the_operator_not_a_steer() {
    let mut rig = resumed_with_gate("no-such-checker --all", "");
    let (ok, text) = rig.muster(&["gate", "run", "api", "--wait"]);
    assert!(!ok && text.contains("error (command not found (exit 127))"), "{text}");
    rig.wait_for("the error mark", |r| mark(r, "api") == GateMark::Error { gate: "test".into() });
    rig.wait_for("the operator told", |r| r.messages.iter().any(|m| m.contains("could not judge its work")));
    assert!(gate_mail(&rig, "api").is_empty());
    assert_eq!(rig.state("api"), Some(AgentState::Idle));
}

/// A cancel ends the gate and everything it started; the run is an error (not the agent's).
#[test]
fn a_cancel_ends_the_whole_gate() {
    let mut rig = resumed_with_gate("sleep 300 & echo $! > ../bg.pid; wait", "");
    let (ok, text) = rig.muster(&["gate", "run", "api"]);
    assert!(ok, "{text}");
    let pidfile = rig.root.join(".muster/worktrees/bg.pid");
    rig.wait_for("the gate running", |r| mark(r, "api") == GateMark::Running && pidfile.exists());
    let (ok, text) = rig.muster(&["gate", "cancel", "api"]);
    assert!(ok && text.contains("1 gate run cancelled"), "{text}");
    rig.wait_for("the error mark", |r| mark(r, "api") == GateMark::Error { gate: "test".into() });
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let end = std::time::Instant::now() + common::DEADLINE;
    // SAFETY: signal 0 only asks whether the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 {
        assert!(std::time::Instant::now() < end, "the gate's background process outlived its cancel");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (_, text) = rig.muster(&["gate", "status", "api"]);
    assert!(text.contains("error (cancelled)"), "{text}");
    assert!(gate_mail(&rig, "api").is_empty());
}

/// The attempts survive a restart of muster: the next failure is attempt 2, not 1 again.
#[test]
fn a_restart_keeps_the_attempts() {
    let crew = format!("{}{}", agent("api", true, true), gate("echo 'test api::x ... FAILED'; exit 1", ""));
    let mut rig = Rig::new(&crew, "api");
    rig.wait_for("api at its prompt", |r| r.state("api") == Some(AgentState::Idle));
    rig.muster(&["gate", "run", "api"]);
    rig.wait_for("the first steer delivered", |r| {
        gate_mail(r, "api").first().and_then(|m| m.receipt("api")).is_some_and(|x| x.state.reached())
    });
    rig.restart("api");
    rig.engine.send(Command::Start { name: "api".into(), resume: false });
    rig.wait_for("api at its prompt again", |r| r.state("api") == Some(AgentState::Idle));
    rig.wait_for("the mark kept", |r| matches!(mark(r, "api"), GateMark::Red { attempt: 1, .. }));
    rig.muster(&["gate", "run", "api"]);
    rig.wait_for("the second steer", |r| gate_mail(r, "api").iter().any(|m| m.body.contains("attempt 2 of 4")));
}

/// A `when = "merge"` gate runs before a merge: red, the merge is refused (from a script) or the workbench's check
/// says so (its confirmation is the override); `--skip-gates` merges anyway; green, it merges.
#[test]
fn merge_gates_refuse_a_red_merge() {
    let mut rig = resumed_with_gate("test -f ok.txt || { echo 'ok.txt is missing'; exit 1; }", "when = \"merge\"");
    let worktree = rig.root.join(".muster/worktrees/api");
    std::fs::write(worktree.join("work.txt"), "work\n").unwrap();
    let (ok, text) = rig.muster(&["merge", "api"]);
    assert!(!ok && text.contains("not merged: gate test fail (exit 1)"), "{text}");
    assert!(!rig.root.join("work.txt").exists());
    // The workbench's check runs it and says so; the roster's mark is the turn gates' alone.
    rig.engine.send(Command::CheckMerge { name: "api".into(), into_agent: false });
    rig.wait_for("the merge check", |r| !r.merge_checks.is_empty());
    let gates = &rig.merge_checks[0].gates;
    assert!(
        matches!(&gates[..], [(g, muster::protocol::gate::GateOutcome::Fail, why)] if g == "test" && why == "exit 1"),
        "{gates:?}"
    );
    assert!(gate_mail(&rig, "api").is_empty(), "a merge gate steers nobody");
    std::fs::write(worktree.join("ok.txt"), "ok\n").unwrap();
    let (ok, text) = rig.muster(&["merge", "api"]);
    assert!(ok, "{text}");
    assert!(rig.root.join("work.txt").exists() && rig.root.join("ok.txt").exists());
    // Red again on new work, and merged anyway when told to.
    std::fs::remove_file(worktree.join("ok.txt")).unwrap();
    std::fs::write(worktree.join("more.txt"), "more\n").unwrap();
    let (ok, text) = rig.muster(&["merge", "api"]);
    assert!(!ok && text.contains("--skip-gates"), "{text}");
    let (ok, text) = rig.muster(&["merge", "api", "--skip-gates"]);
    assert!(ok, "{text}");
    assert!(rig.root.join("more.txt").exists());
}

/// A CLI whose stop hook asks for its mail as its turn ends (as Claude Code's does): the hook's answer waits for
/// the gates of the turn it ends, and their failure goes in as the hook's answer, nothing typed; the fix's turn
/// ends the same way, green, and the hook lets it stop.
#[test]
fn a_stop_hook_takes_the_gates_failure_nothing_typed() {
    let script = r#"n=0
while :; do
  printf 'demo> '
  IFS= read -r line || exit 0
  n=$((n+1)); for i in 1 2 3 4 5 6; do printf '\r⠋ working %s' $i; sleep 0.1; done; printf '\r\033[K'
  echo "broken $n" > turn.txt
  while :; do
    out=$('{muster}' hook Stop < /dev/null)
    case "$out" in
      *'"decision":"block"'*) echo "the stop hook says: go on"
        for i in 1 2 3 4 5 6; do printf '\r⠋ fixing %s' $i; sleep 0.1; done; printf '\r\033[K'
        echo fixed > turn.txt;;
      *) break;;
    esac
  done
  echo "done $n"
done"#;
    let crew = format!(
        "[[agent]]\nname = \"api\"\nkind = \"demo\"\ncommand = \"bash\"\nargs = [\"-c\", {script:?}]\n{}",
        gate("grep -q fixed turn.txt || { echo 'test turn::fixed ... FAILED'; exit 1; }", "")
    );
    let mut rig = Rig::new(&crew, "api");
    rig.wait_for("api at its prompt", |r| r.state("api") == Some(AgentState::Idle));
    rig.engine.send(Command::Steer { name: "api".into(), text: "go".into(), force: false });
    rig.wait_for("green", |r| matches!(mark(r, "api"), GateMark::Green { .. }));
    rig.wait_for("the turn's end", |r| r.screen_text("api").contains("done 1"));
    let screen = rig.screen_text("api");
    assert!(screen.contains("the stop hook says: go on"), "{screen}");
    assert!(!screen.contains("[muster mail"), "the failure was typed: {screen}");
    let mails = gate_mail(&rig, "api");
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let receipt = mails[0].receipt("api").unwrap();
    assert!(receipt.state.reached() && receipt.detail.as_deref() == Some("hook"), "{receipt:?}");
    let (_, text) = rig.muster(&["gate", "status", "api"]);
    assert_eq!(text.lines().map(|l| l.contains("test pass")).collect::<Vec<_>>(), [true, false], "{text}");
}

/// A gate that prints more than a frame to a client holds (4 MiB): its log, asked from the workbench, is its end
/// with a word of what is left out, so the answer always fits (the whole log once went out and could not).
#[test]
fn a_huge_log_reaches_a_client_as_its_end() {
    let mut rig =
        resumed_with_gate("head -c 6000000 /dev/zero | tr '\\0' x; echo; echo THE-END; exit 1", "attempts = 1");
    let (ok, text) = rig.muster(&["gate", "run", "api", "--wait"]);
    assert!(!ok && text.contains("test fail (exit 1)"), "{}", &text[..text.len().min(300)]);
    let id: i64 = text.trim_start_matches('#').split_whitespace().next().unwrap().parse().unwrap();
    rig.engine.send(Command::Gate { op: muster::protocol::gate::GateOp::Log { id } });
    rig.wait_for("the log", |r| !r.gate_logs.is_empty());
    let log = &rig.gate_logs[0];
    assert!(log.len() <= muster::protocol::MAX_COPY + 200 && log.ends_with("THE-END\n"), "{}", log.len());
    assert!(log.starts_with("[muster: the first "), "{}", &log[..100]);
    let frame =
        muster::protocol::json_frame(&muster::protocol::Event::GateLog { run: Default::default(), log: log.clone() });
    assert!(frame.len() < muster::protocol::frame::MAX_FRAME);
}
