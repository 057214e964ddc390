//! The engine with real PTYs and real child processes: the demo agent and bash.

mod common;

use common::Rig;
use muster::engine::{AgentState, Command};
use muster::key::Key;
use muster::pty::tree::process_frozen;
use muster::term::CellColor;

/// Run `muster <args>` in `root`: its exit code, stdout and stderr.
fn muster(root: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_muster")).args(args).current_dir(root).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn key(s: &str) -> Key {
    Key::parse(s).unwrap()
}

#[test]
fn demo_agent_asks_and_takes_an_answer_then_edits_its_worktree() {
    let mut rig =
        Rig::new("[[agent]]\nname = \"d\"\nkind = \"demo\"\nargs = [\"demo-agent\", \"--think\", \"0.2\"]\n", "d");
    rig.wait_for("the question", |r| r.state("d") == Some(AgentState::Waiting) && r.screen_text("d").contains("[y/n]"));
    let worktree = rig.agents["d"].worktree.clone();
    assert!(worktree.ends_with(".muster/worktrees/d"), "{}", worktree.display());
    assert_eq!(rig.agents["d"].branch, "muster/d");
    rig.engine.send(Command::Key { name: "d".into(), key: key("y") });
    rig.engine.send(Command::Key { name: "d".into(), key: key("enter") });
    rig.wait_for("idle prompt", |r| r.state("d") == Some(AgentState::Idle) && r.screen_text("d").contains("applied"));
    let file = std::fs::read_to_string(worktree.join("demo/d.txt")).unwrap();
    assert!(file.contains("refactored: yes"), "{file}");
    rig.wait_for("diffstat", |r| r.agents["d"].diffstat.added >= 4);
    // Steer: a message without attaching, pasted then entered.
    rig.engine.send(Command::Steer { name: "d".into(), text: "write docs".into(), force: false });
    rig.wait_for("the answer", |r| r.screen_text("d").contains("You said: write docs"));
    rig.wait_for("the note", |_| {
        std::fs::read_to_string(worktree.join("demo/d.txt")).unwrap().contains("note: write docs")
    });
    // Ports are exported and written to the worktree.
    let ports = std::fs::read_to_string(worktree.join(".muster/ports.env")).unwrap();
    assert!(ports.contains(&format!("MUSTER_PORT_BASE={}", rig.agents["d"].port_base)), "{ports}");
}

const BASH: &str =
    "[[agent]]\nname = \"sh\"\ncommand = \"bash\"\nargs = [\"--norc\", \"--noprofile\"]\nenv = { PS1 = \"$ \" }\n";

#[test]
fn bash_colours_queries_resize_and_exit_code() {
    let mut rig = Rig::new(BASH, "sh");
    rig.wait_for("prompt", |r| r.screen_text("sh").contains('$'));
    let run = |rig: &Rig, line: &str| {
        rig.engine.send(Command::Paste { name: "sh".into(), text: line.into() });
        rig.engine.send(Command::Key { name: "sh".into(), key: key("enter") });
    };
    run(&rig, "printf '\\033[31mRED\\033[0m \\033[38;2;10;20;30mTRUE\\033[0m\\n'");
    rig.wait_for("colours", |r| {
        r.screens.get("sh").is_some_and(|s| {
            (0..s.rows).any(|row| {
                s.row_text(row).starts_with("RED TRUE")
                    && s.cell(row, 0).unwrap().fg == CellColor::Indexed(1)
                    && s.cell(row, 4).unwrap().fg == CellColor::Rgb(10, 20, 30)
            })
        })
    });
    // The emulator answers a cursor position query the child sends.
    run(&rig, "printf '\\033[6n'; IFS= read -rs -d R pos; echo \"got ${pos#*[}\"");
    // (The tty may echo the reply before `read -s` turns echo off, so look anywhere on the line.)
    rig.wait_for("query reply", |r| {
        r.screen_text("sh").lines().any(|l| {
            l.split("got ")
                .nth(1)
                .is_some_and(|v| v.split(';').all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
        })
    });
    // PTY and emulator resize together.
    rig.engine.send(Command::Watch { name: Some("sh".into()), rows: 30, cols: 100, also: vec![] });
    run(&rig, "echo size=$(stty size)");
    rig.wait_for("new size", |r| r.screen_text("sh").contains("size=30 100") && r.screens["sh"].cols == 100);
    run(&rig, "exit 7");
    rig.wait_for("exit", |r| r.state("sh") == Some(AgentState::Exited));
    assert_eq!(rig.agents["sh"].exit.unwrap().code, Some(7));
}

fn last_tick(text: &str) -> Option<u64> {
    text.lines().filter_map(|l| l.trim().strip_prefix("tick")?.parse().ok()).max()
}

#[test]
fn pause_stops_output_and_resume_continues_exactly_after() {
    let crew = "[[agent]]\nname = \"t\"\ncommand = \"bash\"\nargs = [\"-c\", \"i=0; while :; do echo tick$i; i=$((i+1)); sleep 0.05; done\"]\n";
    let mut rig = Rig::new(crew, "t");
    rig.wait_for("ticks", |r| last_tick(&r.screen_text("t")).is_some_and(|n| n >= 3));
    let pid = rig.agents["t"].pid.expect("pid");
    rig.engine.send(Command::Pause { name: "t".into() });
    rig.wait_for("paused", |r| r.state("t") == Some(AgentState::Paused));
    rig.wait_for("process frozen", |_| process_frozen(pid as i32));
    // Drain output already in flight, then take the last tick shown.
    rig.wait_for("screen settled", |r| r.events.try_recv().is_err() && r.screens.contains_key("t"));
    let before = last_tick(&rig.screen_text("t")).unwrap();
    assert!(process_frozen(pid as i32));
    rig.engine.send(Command::Resume { name: "t".into() });
    rig.wait_for("running again", |_| !process_frozen(pid as i32));
    rig.wait_for("next tick", |r| last_tick(&r.screen_text("t")).is_some_and(|n| n > before + 1));
    let text = rig.screen_text("t");
    assert!(text.contains(&format!("tick{}", before + 1)), "no gap after resume: {text}");
}

#[test]
fn stop_then_restart_with_resume_arguments() {
    let mut rig =
        Rig::new("[[agent]]\nname = \"d\"\nkind = \"demo\"\nargs = [\"demo-agent\", \"--think\", \"0.1\"]\n", "d");
    rig.wait_for("question", |r| r.state("d") == Some(AgentState::Waiting));
    rig.engine.send(Command::Stop { name: "d".into() });
    rig.wait_for("stopped", |r| r.state("d") == Some(AgentState::Stopped));
    rig.engine.send(Command::Restart { name: "d".into() });
    rig.wait_for("resumed", |r| r.screen_text("d").contains("resuming the previous session"));
    rig.wait_for("idle", |r| r.state("d") == Some(AgentState::Idle));
    // The saved state records the crew for the next start.
    let saved = std::fs::read_to_string(rig.root.join(".muster/state.json")).unwrap();
    assert!(saved.contains("\"ran\": true"), "{saved}");
}

#[test]
fn hook_subcommand_reports_to_the_engine() {
    let mut rig = Rig::new(BASH, "sh");
    rig.wait_for("prompt", |r| r.screen_text("sh").contains('$'));
    // The agent's hook runs `muster hook` with the agent's environment.
    rig.engine.send(Command::Paste {
        name: "sh".into(),
        text: format!("'{}' hook Notification && echo hooked", env!("CARGO_BIN_EXE_muster")),
    });
    rig.engine.send(Command::Key { name: "sh".into(), key: key("enter") });
    rig.wait_for("waiting from the hook", |r| r.state("sh") == Some(AgentState::Waiting));
}

#[test]
fn a_busy_agent_is_checkpointed_periodically_only_when_files_change() {
    // Busy for good: output every 50 ms, a file changed every 300 ms.
    let crew = "[[agent]]\nname = \"w\"\ncommand = \"bash\"\nargs = [\"-c\", \"i=0; while :; do echo tick$i; i=$((i+1)); if [ $((i % 6)) = 0 ]; then echo $i > work.txt; fi; sleep 0.05; done\"]\n";
    let mut rig = Rig::with_checkpoints_every(crew, "w", std::time::Duration::from_millis(400));
    rig.wait_for("busy", |r| r.state("w") == Some(AgentState::Busy));
    rig.wait_for("two periodic checkpoints", |r| r.agents.get("w").is_some_and(|a| a.checkpoints >= 2));
    let worktree = rig.agents["w"].worktree.clone();
    let list = muster::git::checkpoint::list(&worktree, "w").unwrap();
    assert!(list.iter().all(|c| c.trigger == "periodic"), "{list:?}");
    // Each holds a different state of the file: none was taken without a change.
    let ids: std::collections::BTreeSet<&str> = list.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), list.len());
    assert!(list.iter().all(|c| c.files >= 1), "{list:?}");
}

/// The saved state follows the crew while it runs (a muster killed with -9 loses nothing), within about a
/// second of a change, not only at start and exit.
#[test]
fn state_changes_reach_the_state_file_while_the_crew_runs() {
    let mut rig =
        Rig::new("[[agent]]\nname = \"s\"\ncommand = \"bash\"\nargs = [\"-c\", \"echo hi; exec sleep 600\"]\n", "s");
    rig.wait_for("s idle", |r| r.state("s") == Some(AgentState::Idle));
    let saved = |root: &std::path::Path| {
        muster::engine::store::load(root).unwrap().0.agents.iter().find(|a| a.spec.name == "s").map(|a| a.state)
    };
    let end = std::time::Instant::now() + common::DEADLINE;
    while saved(&rig.root) != Some(AgentState::Idle) {
        assert!(std::time::Instant::now() < end, "state.json says {:?}", saved(&rig.root));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `muster status` tells a running crew from a file left behind: live states (and the tmux line) while the
/// engine holds the crew, everything stopped once it is gone.
#[test]
fn status_knows_whether_the_crew_runs() {
    let mut rig =
        Rig::new("[[agent]]\nname = \"s\"\ncommand = \"bash\"\nargs = [\"-c\", \"echo hi; exec sleep 600\"]\n", "s");
    rig.wait_for("s idle", |r| r.state("s") == Some(AgentState::Idle));
    let status = |root: &std::path::Path, args: &[&str]| muster(root, &[&["status"], args].concat()).1;
    let end = std::time::Instant::now() + common::DEADLINE;
    while status(&rig.root, &["--format", "tmux"]) != "○1" {
        assert!(std::time::Instant::now() < end, "tmux line: {}", status(&rig.root, &["--format", "tmux"]));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let json: serde_json::Value = serde_json::from_str(&status(&rig.root, &["--json"])).unwrap();
    assert_eq!(json["running_pid"], serde_json::json!(std::process::id()));
    let root = rig.root.clone();
    rig.engine.send(Command::Shutdown);
    rig.wait_for("shut down", |r| r.shut_down);
    assert_eq!(status(&root, &["--format", "tmux"]), "muster: not running");
    let text = status(&root, &[]);
    assert!(text.starts_with("s ") && text.contains("stopped"), "{text}");
}

/// `muster wait`: at once when already there, on the transition otherwise, 124 on timeout, 3 for an unknown
/// agent or one that no muster runs.
#[test]
fn wait_returns_on_the_state_with_its_exit_codes() {
    let crew = "[[agent]]\nname = \"s\"\ncommand = \"bash\"\nargs = [\"-c\", \"echo hi; exec sleep 600\"]\n\
                [[agent]]\nname = \"e\"\ncommand = \"bash\"\nargs = [\"-c\", \"echo hi; sleep 2; exit 0\"]\n";
    let mut rig = Rig::new(crew, "s");
    rig.wait_for("s idle", |r| r.state("s") == Some(AgentState::Idle));
    let wait = |root: &std::path::Path, args: &[&str]| {
        let (code, _, err) = muster(root, &[&["wait"], args].concat());
        (code, err)
    };
    let root = rig.root.clone();
    assert_eq!(wait(&root, &["s", "--until", "idle", "--timeout", "20"]).0, Some(0));
    assert_eq!(wait(&root, &["s", "--until", "waiting", "--timeout", "0.3"]).0, Some(124));
    assert_eq!(wait(&root, &["nobody", "--until", "idle"]).0, Some(3));
    // e exits by itself after two seconds: the wait ends on that.
    assert_eq!(wait(&root, &["e", "--until", "exited", "--timeout", "30"]).0, Some(0));
    rig.wait_for("e exited", |r| r.state("e") == Some(AgentState::Exited));
    rig.engine.send(Command::Shutdown);
    rig.wait_for("shut down", |r| r.shut_down);
    let (code, err) = wait(&root, &["s", "--until", "idle", "--timeout", "5"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("not running"), "{err}");
    assert_eq!(wait(&root, &["s", "e", "--until", "exited"]).0, Some(0));
}

/// `muster send`: typed into the agent like the steer key; `--wait idle` returns once the agent worked on it and
/// is back at its prompt, `waiting` (exit 2) if it then asks something; into a dialog only with `--force`.
#[test]
fn send_steers_from_a_script_and_waits_for_the_turn() {
    let script = format!(
        "while read -p '> ' line; do if [ \\\"$line\\\" = ask ]; then '{}' hook PermissionRequest; echo 'allow? [y/n]'; continue; fi; \
         echo \\\"working on $line\\\"; for i in $(seq 15); do printf .; sleep 0.1; done; echo done; done",
        env!("CARGO_BIN_EXE_muster")
    );
    let crew = format!("[[agent]]\nname = \"s\"\ncommand = \"bash\"\nargs = [\"-c\", \"{script}\"]\n");
    let mut rig = Rig::new(&crew, "s");
    rig.wait_for("s idle at its prompt", |r| {
        r.state("s") == Some(AgentState::Idle) && r.screen_text("s").contains(">")
    });
    let send = |root: &std::path::Path, args: &[&str]| {
        let (code, out, err) = muster(root, &[&["send"], args].concat());
        (code, format!("{out}{err}"))
    };
    let root = rig.root.clone();
    let started = std::time::Instant::now();
    let (code, out) = send(&root, &["s", "task one", "--wait", "idle"]);
    assert_eq!((code, out.trim()), (Some(0), "idle"));
    // A lower bound, not a timing: the turn sleeps 1.5 s, so an answer before that came before its end.
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500), "idle after {:?}", started.elapsed());
    // The rig reads its events only now: what it sees first is the turn that had ended when `send` returned.
    rig.wait_for("the finished turn on screen", |r| {
        r.screen_text("s").contains("working on task one") && r.screen_text("s").contains("done")
    });
    let (code, out) = send(&root, &["s", "ask", "--wait", "idle"]);
    assert_eq!((code, out.trim()), (Some(2), "waiting"));
    rig.wait_for("s waiting", |r| r.state("s") == Some(AgentState::Waiting));
    let (code, out) = send(&root, &["s", "y"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("showing a dialog") && out.contains("--force sends it anyway"), "{out}");
    assert_eq!(out.matches("showing a dialog").count(), 1, "said once: {out}");
    let (code, out) = send(&root, &["nobody", "hi"]);
    assert_eq!(code, Some(3), "no such agent is 3, as --help says: {out}");
    assert_eq!(out.matches("no agent named nobody").count(), 1, "said once: {out}");
    assert_eq!(send(&root, &["s", "y", "--force"]).0, Some(0));
}

/// A state file a killed muster left says its agents still run; the next muster rewrites it at once, so a
/// watcher or `muster status` never shows the dead run's states as live.
#[test]
fn a_new_muster_rewrites_the_states_a_dead_one_left() {
    let crew = "[[agent]]\nname = \"s\"\ncommand = \"bash\"\nargs = [\"-c\", \"exec sleep 600\"]\n";
    let rig = Rig::with_setup(crew, "s", |root| {
        let agent = r#"{"spec":{"name":"s","kind":"custom","command":"bash","args":[],"resume_args":[],"prompt_args":[],"env":{},"prompt":null,"base":null,"worktree":true,"enter_delay_ms":0,"hooks":null},"branch":"muster/s","base":"main","worktree":"/x","state":"busy","exit":null,"ran":true,"port_base":20000}"#;
        std::fs::write(root.join(".muster/state.json"), format!(r#"{{"version":1,"agents":[{agent}]}}"#)).unwrap();
    });
    let (saved, _, running) = muster::engine::store::load_live(&rig.root).unwrap();
    assert_eq!(running, Some(std::process::id()));
    assert_eq!(saved.agents[0].state, AgentState::Stopped);
}

/// An empty message (`muster send a ''`, or nothing on stdin) writes nothing, and the agent's input still works
/// after it: a write of nothing once read as the child having closed, and every later key went nowhere.
#[test]
fn an_empty_send_leaves_the_agents_input_working() {
    let crew = "[[agent]]\nname = \"e\"\ncommand = \"bash\"\nargs = [\"--norc\", \"-i\"]\n";
    let mut rig = Rig::new(crew, "e");
    rig.wait_for("a prompt", |r| r.state("e") == Some(AgentState::Idle));
    let root = rig.root.clone();
    let (code, out, err) = muster(&root, &["send", "e", "cat"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = muster(&root, &["send", "e", ""]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = muster(&root, &["send", "e", "through cat"]);
    assert_eq!(code, Some(0), "{out}{err}");
    rig.wait_for("cat echoes the line sent after the empty one", |r| {
        r.screen_text("e").matches("through cat").count() >= 2
    });
    rig.engine.send(Command::Key { name: "e".into(), key: key("C-d") });
    let (code, out, err) = muster(&root, &["send", "e", "echo input-still-works"]);
    assert_eq!(code, Some(0), "{out}{err}");
    rig.wait_for("bash runs what was sent", |r| r.screen_text("e").contains("\ninput-still-works"));
}
