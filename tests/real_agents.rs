//! What real agent CLIs taught us, proven on real processes in real PTYs: redraws are not work, checkpoints
//! never stop an agent, pauses stick, a stuck agent blocks nobody, steers arrive whole and in order, and every
//! process an agent started ends with it.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Rig;
use muster::engine::{AgentState, Command};
use muster::key::Key;
use muster::pty::tree::process_frozen;

/// A script in its own temp dir, run by bash.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
    path
}

fn crew_of(agents: &[(&str, &str, &[&str])]) -> String {
    agents
        .iter()
        .map(|(name, command, args)| {
            let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
            format!(
                "[[agent]]\nname = {name:?}\ncommand = {command:?}\nargs = [{}]\nenter_delay_ms = 300\n",
                args.join(", ")
            )
        })
        .collect()
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + common::DEADLINE;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn gone(pid: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.is_empty() || status.lines().any(|l| l.starts_with("State:") && l.contains("Z ("))
}

/// An agent that repaints the same screen every 200 ms (and on SIGCONT, counting them) reads idle, and a
/// checkpoint of its work never signals it.
#[test]
fn a_repainting_agent_is_idle_and_checkpoints_never_stop_it() {
    let dir = tempfile::tempdir().unwrap();
    let conts = dir.path().join("conts");
    let s = script(
        dir.path(),
        "repaint.sh",
        &format!(
            "n=0\ndraw() {{ printf '\\033[2J\\033[H> ready for you\\n'; }}\n\
             trap 'n=$((n+1)); echo $n > {}; draw' CONT\ndraw\necho work > made.txt\n\
             while :; do sleep 0.2; draw; done",
            conts.display()
        ),
    );
    let mut rig = Rig::new(&crew_of(&[("r", "bash", &[s.to_str().unwrap()])]), "r");
    rig.wait_for("idle", |r| r.state("r") == Some(AgentState::Idle));
    rig.engine.send(Command::Checkpoint { name: "r".into() });
    rig.wait_for("a checkpoint", |r| r.timelines.get("r").is_some_and(|t| !t.is_empty()));
    // At rest for 20 s: repaints keep coming, the state never leaves idle, nothing stops the agent.
    rig.watch_for(Duration::from_secs(20), |r| match r.state("r") {
        Some(AgentState::Idle) => Ok(()),
        other => Err(format!("a repaint of the same screen made it {other:?}")),
    });
    assert!(!conts.exists(), "the agent was sent SIGCONT {} time(s)", std::fs::read_to_string(&conts).unwrap());
    assert_eq!(rig.agents["r"].why, "the screen stopped changing");
}

/// A bash agent's foreground job runs through a checkpoint: no "Stopped", and what follows `&&` runs.
#[test]
fn a_shell_job_runs_through_a_checkpoint() {
    let mut rig = Rig::new(&crew_of(&[("sh", "bash", &["--norc", "--noprofile", "-i"])]), "sh");
    rig.wait_for("prompt", |r| r.screen_text("sh").contains("bash-"));
    rig.engine.send(Command::Paste { name: "sh".into(), text: "touch started; sleep 3 && echo done-$((40+2))".into() });
    rig.engine.send(Command::Key { name: "sh".into(), key: Key::parse("enter").unwrap() });
    let started = rig.root.join(".muster/worktrees/sh/started");
    wait_until("the job", || started.exists());
    rig.engine.send(Command::Checkpoint { name: "sh".into() });
    rig.wait_for("a checkpoint", |r| r.timelines.get("sh").is_some_and(|t| !t.is_empty()));
    rig.wait_for("done", |r| r.screen_text("sh").contains("done-42"));
    let text = rig.screen_text("sh");
    assert!(!text.contains("Stopped"), "{text}");
}

/// A file rewritten every 100 ms while checkpoints are taken: each checkpoint holds one whole version of it,
/// or says the file was still changing.
#[test]
fn checkpoints_of_a_file_being_rewritten_hold_whole_versions() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "rewrite.sh",
        "i=0; while :; do i=$((i+1)); { echo \"round $i\"; seq 1 30000; echo END; } > big.txt; sleep 0.1; done",
    );
    let mut rig = Rig::new(&crew_of(&[("w", "bash", &[s.to_str().unwrap()])]), "w");
    let big = rig.root.join(".muster/worktrees/w/big.txt");
    wait_until("the file", || big.exists());
    let mut unsettled = 0;
    for round in 1..=8usize {
        // Asked again when the file has not been rewritten since the last one (nothing to record).
        while rig.timelines.get("w").is_none_or(|t| t.len() < round) {
            let asked = rig.messages.len();
            let mtime = || std::fs::metadata(&big).and_then(|m| m.modified()).ok();
            let seen = mtime();
            wait_until("a rewrite", || mtime() != seen);
            rig.engine.send(Command::Checkpoint { name: "w".into() });
            rig.wait_for("the checkpoint", |r| {
                r.timelines.get("w").is_some_and(|t| t.len() >= round)
                    || r.messages[asked..].iter().any(|m| m.contains("nothing changed"))
            });
        }
        let cp = rig.timelines["w"][0].clone();
        let repo = git2::Repository::open(&rig.root).unwrap();
        let commit = repo.find_commit(git2::Oid::from_str(&cp.id).unwrap()).unwrap();
        let entry = commit.tree().unwrap().get_path(Path::new("big.txt")).unwrap();
        let blob = repo.find_blob(entry.id()).unwrap();
        let text = String::from_utf8_lossy(blob.content());
        let whole = text.starts_with("round ") && text.ends_with("\n30000\nEND\n") && text.lines().count() == 30002;
        if cp.unsettled.iter().any(|p| p == "big.txt") {
            unsettled += 1;
        } else {
            assert!(whole, "checkpoint {} holds a partial big.txt ({} lines)", cp.n, text.lines().count());
        }
    }
    assert!(unsettled < 8, "every checkpoint gave up on the file");
}

/// An agent that never reads its input fills its own queue; another agent's keys still echo at once, and the
/// operator is told.
#[test]
fn a_stuck_agent_does_not_hold_up_another() {
    let crew = crew_of(&[("stuck", "sleep", &["600"]), ("echo", "cat", &[])]);
    let mut rig = Rig::new(&crew, "echo");
    rig.wait_for("both running", |r| {
        ["stuck", "echo"].iter().all(|n| r.agents.get(*n).is_some_and(|a| a.pid.is_some()))
    });
    // Far more than the terminal's input buffer: the stuck agent's writer blocks on it.
    rig.engine.send(Command::Paste { name: "stuck".into(), text: "x".repeat(2 << 20) });
    for _ in 0..300 {
        rig.engine.send(Command::Paste { name: "stuck".into(), text: "more".into() });
    }
    rig.engine.send(Command::Paste { name: "echo".into(), text: "ping-from-the-operator\n".into() });
    rig.wait_for("the other agent's echo", |r| r.screen_text("echo").contains("ping-from-the-operator"));
    rig.wait_for("a clear error", |r| r.messages.iter().any(|m| m.contains("stuck") && m.contains("not reading")));
}

/// Two steers sent at once arrive one after the other, each with its own Enter.
#[test]
fn steers_arrive_whole_and_in_order() {
    // Without the terminal's own echo, the screen shows exactly the lines cat was given.
    let mut rig = Rig::new(&crew_of(&[("c", "bash", &["-c", "stty -echo; cat"])]), "c");
    rig.wait_for("running", |r| r.agents.get("c").is_some_and(|a| a.pid.is_some()));
    rig.engine.send(Command::Steer { name: "c".into(), text: "first message".into(), force: false });
    rig.engine.send(Command::Steer { name: "c".into(), text: "second message".into(), force: false });
    rig.wait_for("both echoed", |r| {
        let text = r.screen_text("c");
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines == ["first message", "second message"]
    });
}

/// The operator's pause holds through a checkpoint and a rollback (which freezes and thaws the agent itself).
#[test]
fn the_operators_pause_outlives_a_checkpoint_and_a_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "tick.sh", "echo one > notes.txt; while :; do sleep 0.1; done");
    let mut rig = Rig::new(&crew_of(&[("p", "bash", &[s.to_str().unwrap()])]), "p");
    let notes = rig.root.join(".muster/worktrees/p/notes.txt");
    wait_until("the file", || notes.exists());
    rig.engine.send(Command::Checkpoint { name: "p".into() });
    rig.wait_for("a checkpoint", |r| r.timelines.get("p").is_some_and(|t| !t.is_empty()));
    std::fs::write(&notes, "two\n").unwrap();
    let pid = rig.agents["p"].pid.unwrap() as i32;
    rig.engine.send(Command::Pause { name: "p".into() });
    rig.wait_for("paused", |r| r.state("p") == Some(AgentState::Paused));
    // A checkpoint while paused (it reads the changed file) leaves the agent frozen.
    rig.engine.send(Command::Checkpoint { name: "p".into() });
    rig.wait_for("a second checkpoint", |r| r.timelines.get("p").is_some_and(|t| t.len() >= 2));
    assert!(process_frozen(pid), "a checkpoint thawed the operator's pause");
    rig.engine.send(Command::Rollback { name: "p".into(), n: 1, files: None });
    rig.wait_for("rolled back", |r| r.messages.iter().any(|m| m.contains("rolled back to checkpoint 1")));
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "one\n");
    assert!(process_frozen(pid), "the rollback's thaw undid the operator's pause");
    assert_eq!(rig.state("p"), Some(AgentState::Paused));
    rig.engine.send(Command::Resume { name: "p".into() });
    wait_until("thawed", || !process_frozen(pid));
}

/// A child that left the agent's session and ignores SIGTERM and SIGHUP (as codex's daemons do) is ended when
/// the crew stops, and when the agent itself exits.
#[test]
fn processes_that_left_the_session_end_with_the_crew() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = |n: &str| {
        let pidfile = dir.path().join(format!("{n}.pid"));
        let body = format!(
            "setsid bash -c 'trap \"\" TERM HUP INT; echo $$ > {}; exec sleep 600' &\n{}",
            pidfile.display(),
            if n == "quits" { "sleep 1; exit 0" } else { "sleep 600" }
        );
        (script(dir.path(), &format!("{n}.sh"), &body), pidfile)
    };
    let (stays, stays_pid) = daemon("stays");
    let (quits, quits_pid) = daemon("quits");
    let crew = crew_of(&[("stays", "bash", &[stays.to_str().unwrap()]), ("quits", "bash", &[quits.to_str().unwrap()])]);
    let mut rig = Rig::new(&crew, "stays");
    let read_pid = |f: &Path| std::fs::read_to_string(f).ok().and_then(|s| s.trim().parse::<i32>().ok());
    wait_until("the daemons", || read_pid(&stays_pid).is_some() && read_pid(&quits_pid).is_some());
    let (a, b) = (read_pid(&stays_pid).unwrap(), read_pid(&quits_pid).unwrap());
    // The agent that exits by itself takes its daemon with it.
    rig.wait_for("exit", |r| r.state("quits") == Some(AgentState::Exited));
    wait_until("the exited agent's daemon ended", || gone(b));
    assert!(!gone(a));
    rig.engine.send(Command::Shutdown);
    rig.wait_for("shutdown", |r| r.shut_down);
    wait_until("the running agent's daemon ended", || gone(a));
}

/// An agent that prints nothing after a resume goes back to what its screen says, not to busy.
#[test]
fn a_quiet_agent_is_idle_again_after_a_resume() {
    let mut rig = Rig::new(&crew_of(&[("q", "bash", &["-c", "echo ready; exec sleep 600"])]), "q");
    rig.wait_for("idle", |r| r.state("q") == Some(AgentState::Idle));
    rig.engine.send(Command::Pause { name: "q".into() });
    rig.wait_for("paused", |r| r.state("q") == Some(AgentState::Paused));
    rig.engine.send(Command::Resume { name: "q".into() });
    rig.wait_for("resumed", |r| r.state("q") != Some(AgentState::Paused));
    rig.watch_for(Duration::from_secs(2), |r| match r.state("q") {
        Some(AgentState::Idle) => Ok(()),
        other => Err(format!("after a resume it reads {other:?}")),
    });
}

/// The threads of this process whose names end with an agent's name.
fn threads_of(agent: &str) -> Vec<String> {
    let suffix = format!("-{agent}");
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .filter(|c| c.ends_with(&suffix))
        .collect()
}

/// An agent costs two threads (its terminal and its PTY's I/O), and a restart's old ones end.
#[test]
fn an_agent_runs_on_two_threads_that_end_with_it() {
    let mut rig = Rig::new(&crew_of(&[("thr-a", "cat", &[]), ("thr-b", "cat", &[])]), "thr-a");
    rig.wait_for("both running", |r| {
        ["thr-a", "thr-b"].iter().all(|n| r.agents.get(*n).is_some_and(|a| a.pid.is_some()))
    });
    for name in ["thr-a", "thr-b"] {
        // A thread names itself once it runs, which may be after its agent has a pid.
        wait_until("its threads named", || threads_of(name).len() >= 2);
        let mut threads = threads_of(name);
        threads.sort();
        assert_eq!(threads, [format!("pty-io-{name}"), format!("term-{name}")]);
    }
    let pid = rig.agents["thr-a"].pid;
    // The agents carry this process's mark: what a stopped `muster bench` ends by.
    let marked = muster::pty::tree::started_here();
    assert!(["thr-a", "thr-b"].iter().all(|n| marked.contains(&(rig.agents[*n].pid.unwrap() as i32))), "{marked:?}");
    rig.engine.send(Command::Restart { name: "thr-a".into() });
    rig.wait_for("restarted", |r| r.agents.get("thr-a").is_some_and(|a| a.pid.is_some() && a.pid != pid));
    rig.engine.send(Command::Paste { name: "thr-a".into(), text: "still-typed-into\n".into() });
    rig.wait_for("the new one's echo", |r| r.screen_text("thr-a").contains("still-typed-into"));
    wait_until("the old threads' end", || threads_of("thr-a").len() == 2);
}

/// Output far beyond what is read ahead of the emulator (the reader waits for it, then reads on) arrives whole.
#[test]
fn a_flood_arrives_whole_through_the_read_ahead() {
    let mut rig = Rig::new(&crew_of(&[("flood", "bash", &["-c", "seq 1 300000; echo flood-done; exec cat"])]), "flood");
    rig.wait_for("the flood's end", |r| r.screen_text("flood").contains("flood-done"));
    let text = rig.screen_text("flood");
    assert!(text.contains("299999\n300000\nflood-done"), "the last lines, in order: {text}");
}

/// A child that does not read its input is still read: its output goes on while its input waits.
#[test]
fn an_agent_that_does_not_read_its_input_still_shows_its_output() {
    let mut rig = Rig::new(
        &crew_of(&[(
            "talker",
            "bash",
            &["-c", "stty -icanon -echo; for i in $(seq 1 100000); do echo tick-$i; sleep 0.02; done"],
        )]),
        "talker",
    );
    rig.wait_for("ticking", |r| r.screen_text("talker").contains("tick-3\n"));
    // Far more than the terminal's input buffer: the write waits on it for good.
    rig.engine.send(Command::Paste { name: "talker".into(), text: "x".repeat(1 << 20) });
    for _ in 0..300 {
        rig.engine.send(Command::Paste { name: "talker".into(), text: "more".into() });
    }
    rig.wait_for("its input stuck", |r| r.messages.iter().any(|m| m.contains("talker") && m.contains("not reading")));
    let last_tick = |r: &Rig| {
        let text = r.screen_text("talker");
        text.lines().filter_map(|l| l.strip_prefix("tick-")?.trim().parse::<u32>().ok()).max().unwrap_or(0)
    };
    let then = last_tick(&rig);
    rig.wait_for("more output", |r| last_tick(r) >= then + 20);
}

/// Gemini CLI shows "Executing Hook: muster" while muster's own hook runs, after every turn: that coming and
/// going is muster's doing, not the agent working, so a Gemini agent at rest stays idle through it.
#[test]
fn a_banner_of_musters_own_hook_is_not_activity() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "banner.sh",
        "printf '> Type your message\\n'\nwhile :; do sleep 0.7; printf '\\033[2;1HExecuting Hook: muster'; \
         sleep 0.7; printf '\\033[2;1H\\033[2K'; done",
    );
    let crew =
        format!("[[agent]]\nname = \"g\"\nkind = \"gemini\"\ncommand = \"bash\"\nargs = [{:?}]\n", s.to_str().unwrap());
    let mut rig = Rig::new(&crew, "g");
    rig.wait_for("the banner shown", |r| r.screen_text("g").contains("Executing Hook: muster"));
    rig.wait_for("idle", |r| r.state("g") == Some(AgentState::Idle));
    rig.watch_for(Duration::from_secs(4), |r| match r.state("g") {
        Some(AgentState::Idle) => Ok(()),
        other => Err(format!("the hook's banner read as {other:?}")),
    });
}
