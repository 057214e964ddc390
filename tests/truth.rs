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
    rig.engine.send(Command::Merge { name: "alpha".into(), into_agent: false, message: None, skip_gates: false });
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

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@e"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A merge refused (the main worktree has changes) or with nothing to do changes nothing: the agent's work is
/// not committed on its branch for it. One that goes ahead commits it, into the base and into the agent alike.
#[test]
fn a_refused_merge_changes_nothing_and_one_that_runs_commits_the_agents_work() {
    let crew = shell("w", "echo work > w.txt");
    let mut rig = Rig::new(&crew, "w");
    rig.wait_for("w's file", |r| r.agents.get("w").is_some_and(|a| a.diffstat.files == 1));
    let wt = rig.agents["w"].worktree.clone();
    let root = rig.root.clone();
    let head = git(&wt, &["rev-parse", "HEAD"]);
    // The main worktree has a change to a tracked file: refused, and w's branch is as it was.
    let tracked = git(&root, &["ls-files"]).lines().find(|f| !f.starts_with(".muster")).unwrap().to_string();
    let before = std::fs::read_to_string(root.join(&tracked)).unwrap();
    std::fs::write(root.join(&tracked), format!("{before}changed\n")).unwrap();
    rig.engine.send(Command::Merge { name: "w".into(), into_agent: false, message: None, skip_gates: false });
    rig.wait_for("refused", |r| r.messages.iter().any(|m| m.contains("w: merge refused") && m.contains(&tracked)));
    assert_eq!(git(&wt, &["rev-parse", "HEAD"]), head, "the refused merge committed w's work");
    assert_eq!(git(&wt, &["status", "--porcelain"]), "?? w.txt");
    std::fs::write(root.join(&tracked), before).unwrap();
    // Base into the agent (M), with uncommitted work: committed on its branch, then merged.
    git(&root, &["commit", "-q", "--allow-empty", "-m", "the base moves"]);
    rig.engine.send(Command::Merge { name: "w".into(), into_agent: true, message: None, skip_gates: false });
    rig.wait_for("merged into w", |r| r.messages.iter().any(|m| m.starts_with("w: merged main")));
    assert_eq!(git(&wt, &["status", "--porcelain"]), "", "w's work was committed on its branch");
    assert!(git(&wt, &["log", "--format=%s"]).contains("muster: work of w"));
    // Into the base, then again: nothing to do, and nothing asked.
    rig.engine.send(Command::Merge { name: "w".into(), into_agent: false, message: None, skip_gates: false });
    rig.wait_for("merged into main", |r| r.messages.iter().any(|m| m.starts_with("w: merged muster/w")));
    let main = git(&root, &["rev-parse", "HEAD"]);
    rig.engine.send(Command::Merge { name: "w".into(), into_agent: false, message: None, skip_gates: false });
    rig.wait_for("already up to date", |r| r.messages.iter().any(|m| m == "w: already up to date"));
    assert_eq!(git(&root, &["rev-parse", "HEAD"]), main);
}

/// A merge of the base into an agent stops on a conflict: the hint names the commands that work, and they do,
/// run as printed (they read the main worktree before, and failed or printed nothing).
#[test]
fn the_conflicts_hint_works_when_followed_literally() {
    let crew = shell(
        "w",
        "printf 'AGENT\\\\n' > c.txt && git add c.txt && git -c user.name=t -c user.email=t@e commit -qm agent",
    );
    let mut rig = Rig::new(&crew, "w");
    rig.wait_for("w committed", |r| r.screen_text("w").contains("ready"));
    let root = rig.root.clone();
    std::fs::write(root.join("c.txt"), "MAIN\n").unwrap();
    git(&root, &["add", "c.txt"]);
    git(&root, &["commit", "-qm", "main"]);
    let (ok, out) = rig.muster(&["merge", "w", "--into-agent"]);
    assert!(!ok, "{out}");
    let hint = out.lines().find(|l| l.starts_with("resolve them")).unwrap_or_else(|| panic!("no hint: {out}"));
    for command in [
        "muster conflicts --agent w list",
        "muster conflicts --agent w resolve FILE",
        "muster merge w --into-agent --finish",
    ] {
        assert!(hint.contains(command), "{hint}");
    }
    let (ok, out) = rig.muster(&["conflicts", "--agent", "w", "list"]);
    assert!(ok && out.contains("c.txt"), "{out}");
    let (ok, out) = rig.muster(&["conflicts", "--agent", "w", "resolve", "c.txt", "--take", "ours"]);
    assert!(ok, "{out}");
    let (ok, out) = rig.muster(&["merge", "w", "--into-agent", "--finish"]);
    assert!(ok, "{out}");
    let wt = rig.agents["w"].worktree.clone();
    assert_eq!(std::fs::read_to_string(wt.join("c.txt")).unwrap(), "AGENT\n");
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
}

/// An agent whose command is missing: `muster explain` gives the reason (it said "no decision yet").
#[test]
fn an_agent_whose_command_is_missing_is_explained() {
    let crew = "[[agent]]\nname = \"ok\"\ncommand = \"no-such-cli-anywhere\"\n\
                [[agent]]\nname = \"fine\"\ncommand = \"bash\"\nargs = [\"-c\", \"echo up; exec sleep 600\"]\n";
    let mut rig = Rig::new(crew, "ok");
    rig.wait_for("ok in error", |r| r.state("ok") == Some(AgentState::Error));
    let error = rig.agents["ok"].error.clone().unwrap_or_default();
    assert!(error.contains("no-such-cli-anywhere"), "{error}");
    let (ok, out) = rig.muster(&["explain", "ok"]);
    assert!(ok, "{out}");
    assert!(out.starts_with("ok: error — ") && out.contains(&error), "{out}");
}

/// The operator merges an agent's branch by hand (`git merge`, outside muster): the base moved, and the agent's
/// diffstat says what is left to merge — nothing — without a restart or a change of its files.
#[test]
fn a_merge_made_outside_muster_is_seen() {
    let crew = shell("w", "echo work > w.txt && git add w.txt && git -c user.name=t -c user.email=t@e commit -qm w");
    let mut rig = Rig::new(&crew, "w");
    rig.wait_for("w's commit counted, w idle", |r| {
        r.screen_text("w").contains("ready")
            && r.agents["w"].diffstat.files == 1
            && r.state("w") == Some(AgentState::Idle)
    });
    let root = rig.root.clone();
    git(&root, &["merge", "-q", "--no-ff", "-m", "by hand", "muster/w"]);
    rig.wait_for("w has nothing left to merge", |r| r.agents["w"].diffstat.files == 0);
}

/// A REPL has no job control: the command it runs (`os.system`) is in its own process group, and it waits for
/// it. That wait is work, however quiet the command.
#[test]
fn a_repl_waiting_for_its_command_is_busy() {
    let crew = "[[agent]]\nname = \"py\"\ncommand = \"python3\"\nargs = [\"-q\"]\n";
    let mut rig = Rig::new(crew, "py");
    rig.wait_for("its prompt", |r| r.state("py") == Some(AgentState::Idle) && r.screen_text("py").contains(">>>"));
    let root = rig.root.clone();
    let worktree = rig.agents["py"].worktree.clone();
    let send = std::thread::spawn(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_muster"))
            .args(["send", "py", "import os; os.system('sleep 3 && echo done > h.txt')", "--wait", "idle"])
            .current_dir(&root)
            .env_remove("MUSTER_AGENT")
            .output()
            .unwrap()
    });
    rig.wait_for("busy while its command runs", |r| {
        r.agents.get("py").is_some_and(|a| a.state == AgentState::Busy && a.why.contains("runs in the foreground"))
    });
    let out = send.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "idle", "{}", String::from_utf8_lossy(&out.stderr));
    assert!(worktree.join("h.txt").exists(), "`send --wait idle` returned before the command had ended");
}

/// A kind of the repository's own (`.muster/agents/mine.toml`) is started with its manifest's rules, and a rule
/// may read the terminal's progress report (OSC 9;4): busy while it stands, however still the screen is, and idle
/// at the manifest's prompt once it is cleared.
#[test]
fn a_repositorys_own_manifest_and_its_progress_rule_decide_the_state() {
    let manifest = "name = 'Mine'\ncommand = 'bash'\n\
        args = ['-c', \"printf '\\\\033]9;4;3;0\\\\007mine> '; read l; printf '\\\\033]9;4;0;0\\\\007\\\\nmine> '; exec sleep 600\"]\n\
        [[rules]]\nname = 'thinking'\nstate = 'busy'\nregion = 'progress'\nregex = '^3;'\npriority = 10\n\
        [[rules]]\nname = 'mine-prompt'\nstate = 'idle'\nregion = 'bottom:1'\nregex = 'mine>\\s*$'\npriority = 5\n";
    let crew = "[[agent]]\nname = \"m\"\nkind = \"mine\"\n";
    let mut rig = Rig::with_setup(crew, "m", |root| {
        std::fs::create_dir_all(root.join(".muster/agents")).unwrap();
        std::fs::write(root.join(".muster/agents/mine.toml"), manifest).unwrap();
    });
    rig.wait_for("the progress rule", |r| {
        r.agents.get("m").is_some_and(|a| a.state == AgentState::Busy && a.why.contains("`thinking`"))
    });
    // Still busy once the screen has been still longer than activity counts (1.5 s): the rule says so.
    rig.watch_for(std::time::Duration::from_secs(2), |r| match r.agents.get("m") {
        Some(a) if a.state == AgentState::Busy => Ok(()),
        other => Err(format!("not busy: {other:?}")),
    });
    rig.engine.send(Command::Steer { name: "m".into(), text: "go".into(), force: true });
    rig.wait_for("its prompt rule", |r| {
        r.agents.get("m").is_some_and(|a| a.state == AgentState::Idle && a.why.contains("`mine-prompt`"))
    });
}

/// A screen read in the middle of a redraw is not a state: a spinner's line cleared, and the next line written a
/// moment later, leave an answered question the last line for that moment. The question rule's verdict waits
/// for the output to hold still, so the agent reads busy then idle, never waiting again.
#[test]
fn a_question_uncovered_for_a_moment_mid_redraw_is_not_waiting() {
    let script = "printf 'Apply? [y/n] y\\r\\n'\n\
        for i in 1 2 3 4 5 6 7 8; do\n\
          for f in 1 2; do printf '\\r\\033[K* applying %s' $f; sleep 0.12; done\n\
          printf '\\r\\033[K'; sleep 0.003; printf 'applied %s\\r\\nApply? [y/n] y\\r\\n' $i\n\
        done\n\
        printf 'demo> '\nexec sleep 600\n";
    let script = Script::new("redraw", script);
    let mut rig = Rig::new(&demo_rules_running(&script), "a");
    let (mut waiting, mut was) = (Vec::new(), None);
    rig.wait_for("its prompt", |r| {
        let now = r.agents.get("a").map(|a| (a.state, a.why.clone()));
        if let Some((AgentState::Waiting, why)) = &now {
            if was != Some(AgentState::Waiting) {
                waiting.push(why.clone());
            }
        }
        was = now.map(|(s, _)| s);
        r.state("a") == Some(AgentState::Idle) && r.screen_text("a").contains("demo>")
    });
    // The first question, before any output follows it, may read waiting: it is one, for that moment.
    assert!(waiting.len() <= 1, "read waiting mid-redraw: {waiting:?}");
}

/// A CLI whose first sign of work comes late (`busy_on_task_ms`, opencode's 0.5–1 s) reads busy the moment a
/// task goes in; its hook takes over when it speaks, and a task it never starts gives back the prompt's idle when
/// the hold ends.
#[test]
fn a_task_shows_busy_at_once_until_the_cli_speaks_or_the_hold_ends() {
    let script = "printf 'late> '\n\
        while read l; do\n\
          if [ \"$l\" = quiet ]; then printf 'late> '; continue; fi\n\
          sleep 0.6; \"$M\" hook session.busy '{}'; sleep 0.3\n\
          printf 'done\\r\\nlate> '; \"$M\" hook session.idle '{}'\n\
        done\n";
    let script = Script::new("late", script);
    let manifest = format!(
        "name = 'Late'\ncommand = 'bash'\nargs = [{}]\nhooks = 'opencode'\nbusy_on_task_ms = 1500\n\
         [[rules]]\nname = 'late-prompt'\nstate = 'idle'\nregion = 'bottom:1'\nregex = 'late>\\s*$'\npriority = 5\n",
        script.arg()
    );
    let crew =
        format!("[[agent]]\nname = \"l\"\nkind = \"late\"\nenv = {{ M = {:?} }}\n", env!("CARGO_BIN_EXE_muster"));
    let mut rig = Rig::with_setup(&crew, "l", |root| {
        std::fs::create_dir_all(root.join(".muster/agents")).unwrap();
        std::fs::write(root.join(".muster/agents/late.toml"), manifest).unwrap();
    });
    let why = |r: &Rig| r.agents.get("l").map(|a| (a.state, a.why.clone()));
    rig.wait_for("its prompt", |r| why(r).is_some_and(|(s, w)| s == AgentState::Idle && w.contains("late-prompt")));
    rig.engine.send(Command::Steer { name: "l".into(), text: "work".into(), force: false });
    rig.wait_for("busy from the task", |r| {
        why(r).is_some_and(|(s, w)| s == AgentState::Busy && w.starts_with("a task went in"))
    });
    rig.wait_for("its hook", |r| why(r).is_some_and(|(s, w)| s == AgentState::Busy && w.contains("session.busy")));
    rig.wait_for("idle at the turn's end", |r| why(r).is_some_and(|(s, _)| s == AgentState::Idle));
    // A task it never starts: busy for the hold, then what its screen says.
    rig.engine.send(Command::Steer { name: "l".into(), text: "quiet".into(), force: false });
    rig.wait_for("busy from the task", |r| {
        why(r).is_some_and(|(s, w)| s == AgentState::Busy && w.starts_with("a task went in"))
    });
    rig.wait_for("idle when the hold ends", |r| why(r).is_some_and(|(s, _)| s == AgentState::Idle));
}

/// A dialog that redraws itself (clears its line, writes it again a moment later) stays waiting: the moment its
/// rule does not match is no answer, and the activity then is not work.
#[test]
fn a_dialog_redrawing_itself_stays_waiting() {
    let script = "printf 'Apply? [y/n] '\n\
        sleep 0.5\n\
        for i in 1 2 3 4 5 6 7 8; do printf '\\r\\033[K'; sleep 0.003; printf 'Apply? [y/n] '; sleep 0.15; done\n\
        read a\nprintf 'done\\r\\ndemo> '\nexec sleep 600\n";
    let script = Script::new("dialog", script);
    let mut rig = Rig::new(&demo_rules_running(&script), "a");
    rig.wait_for("its dialog", |r| r.state("a") == Some(AgentState::Waiting));
    // Through the eight redraws (1.2 s) and a while after.
    rig.watch_for(std::time::Duration::from_millis(1800), |r| match r.agents.get("a") {
        Some(a) if a.state == AgentState::Waiting => Ok(()),
        other => Err(format!("left its dialog mid-redraw: {:?}", other.map(|a| (a.state, &a.why)))),
    });
    rig.engine.send(Command::Steer { name: "a".into(), text: "y".into(), force: true });
    rig.wait_for("idle at its prompt", |r| r.state("a") == Some(AgentState::Idle));
}

/// A bash script in the temp folder, removed when dropped.
struct Script(std::path::PathBuf);

impl Script {
    fn new(name: &str, text: &str) -> Script {
        let path = std::env::temp_dir().join(format!("{name}-{}.sh", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Script(path)
    }

    /// Its path as a TOML string.
    fn arg(&self) -> String {
        format!("{:?}", self.0.display().to_string())
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Agent `a`, of the demo agent's kind (its question and prompt rules), running `script` in bash.
fn demo_rules_running(script: &Script) -> String {
    format!("[[agent]]\nname = \"a\"\nkind = \"demo\"\ncommand = \"bash\"\nargs = [{}]\n", script.arg())
}
