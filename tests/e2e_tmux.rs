//! End to end: the real `muster demo` binary in tmux (private socket), driven with send-keys and read with
//! capture-pane, polling with deadlines.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(40);

struct Tmux {
    socket: String,
    dir: tempfile::TempDir,
}

/// The shell line that runs muster with everything it writes (demo repo, logs, config, run folder) in `dir`.
fn script(dir: &Path, exe: &str, args: &str) -> String {
    format!(
        "cd '{d}' && env HOME='{d}/home' TMPDIR='{d}' XDG_CONFIG_HOME='{d}/config' XDG_STATE_HOME='{d}/state' \
         XDG_RUNTIME_DIR='{d}/run' TERM=xterm-256color EDITOR='{d}/editor.sh' VISUAL= '{exe}' {args}; echo \"EXITED $?\"; stty -a; sleep 600",
        d = dir.display(),
    )
}

impl Tmux {
    fn start(width: u16, height: u16, args: &str) -> Tmux {
        Tmux::start_in(width, height, args, |_| {})
    }

    /// Start muster after `setup` has prepared the temp dir it runs in.
    fn start_in(width: u16, height: u16, args: &str, setup: impl FnOnce(&Path)) -> Tmux {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        let socket = format!("muster-e2e-{}-{}", std::process::id(), dir.path().file_name().unwrap().to_string_lossy());
        let exe = env!("CARGO_BIN_EXE_muster");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        let script = script(dir.path(), exe, args);
        let t = Tmux { socket, dir };
        t.tmux(&["new-session", "-d", "-x", &width.to_string(), "-y", &height.to_string(), "sh", "-c", &script]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "=0:"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    fn text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "=0:", "-l", text]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "=0:"])
    }

    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let s = self.screen();
            if done(&s) {
                return s;
            }
            if Instant::now() > end {
                // What the workbench said meanwhile (`!` lists its latest messages, with their times): a message
                // that came and went is the clue to a failure nobody saw.
                self.keys(&["!"]);
                let shown = Instant::now() + Duration::from_secs(2);
                let mut messages = self.screen();
                while messages == s && Instant::now() < shown {
                    std::thread::sleep(Duration::from_millis(20));
                    messages = self.screen();
                }
                panic!("timed out waiting for {what}; screen:\n{s}\nits messages (`!`):\n{messages}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn demo_repo(&self) -> PathBuf {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("muster-demo-")))
            .expect("demo repository created")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
        // Servers run detached, outside tmux: whatever a test left running in its folder ends with it.
        let end = Instant::now() + DEADLINE;
        loop {
            let left = processes_in(self.dir.path());
            if left.is_empty() || Instant::now() > end {
                break;
            }
            for p in left {
                let pid = p.split_whitespace().next().unwrap_or_default().to_string();
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Tmux {
    /// A muster command beside the workbench, in the same environment; its output and exit code.
    /// Ask `muster server status` until it says `what`: the server hears of a client's going when its socket
    /// closes, a moment after the client's process ends.
    fn wait_server_status(&self, what: &str) {
        let end = Instant::now() + DEADLINE;
        loop {
            let (status, _) = self.muster(&["server", "status"]);
            if status.contains("running: pid") && status.contains(what) {
                return;
            }
            assert!(Instant::now() < end, "the server never said {what:?}: {status}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn muster(&self, args: &[&str]) -> (String, i32) {
        let d = self.dir.path();
        let out = Command::new(env!("CARGO_BIN_EXE_muster"))
            .args(args)
            .current_dir(d.join("repo"))
            .env("HOME", d.join("home"))
            .env("TMPDIR", d)
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("XDG_STATE_HOME", d.join("state"))
            .env("XDG_RUNTIME_DIR", d.join("run"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (text, out.status.code().unwrap_or(-1))
    }

    /// The pid of the repository's server, once it runs.
    fn server_pid(&self) -> i32 {
        let end = Instant::now() + DEADLINE;
        loop {
            let (text, code) = self.muster(&["server", "status"]);
            if code == 0 {
                let pid = text.split("pid ").nth(1).and_then(|r| r.split(',').next()).unwrap_or("");
                return pid.trim().parse().unwrap_or_else(|_| panic!("no pid in {text}"));
            }
            assert!(Instant::now() < end, "no server: {text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A repository at `dir/repo` with one empty commit and `crew` as its crew file.
fn crew_repo(dir: &Path, crew: &str) {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join(".muster")).unwrap();
    let git = |args: &[&str]| Command::new("git").args(args).current_dir(&repo).output().unwrap();
    git(&["init", "-q", "-b", "main"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "init"]);
    std::fs::write(repo.join(".muster/crew.toml"), crew).unwrap();
}

/// A bash line that starts a process outside the agent's session, deaf to SIGHUP and SIGTERM, writing its pid to
/// `dir/daemon.pid`, then runs `then`.
fn daemon_then(dir: &Path, then: &str) -> String {
    format!("setsid bash -c 'trap \\\"\\\" TERM HUP; echo $$ > {}/daemon.pid; exec sleep 600' & {then}", dir.display())
}

/// The daemon's pid, once it has written it.
fn daemon_pid(dir: &Path) -> i32 {
    let pidfile = dir.join("daemon.pid");
    let end = Instant::now() + DEADLINE;
    while !pidfile.exists() {
        assert!(Instant::now() < end, "the daemon never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap()
}

/// Whether a process runs (a zombie does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| !s.lines().any(|l| l.starts_with("State:") && l.contains("Z (")))
}

/// The muster process of the session's pane (the pane runs sh, whose child is muster).
fn muster_pid(t: &Tmux) -> String {
    let pid = t.tmux(&["display", "-p", "#{pane_pid}"]).trim().to_string();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    children.split_whitespace().next().expect("muster runs in the pane").to_string()
}

/// Processes whose working directory is inside `dir`.
fn processes_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) {
            if cwd.starts_with(dir) {
                let cmd = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
                out.push(format!("{} {}", entry.file_name().to_string_lossy(), cmd.replace('\0', " ")));
            }
        }
    }
    out
}

/// The roster line of an agent: marker, glyph, space, then the name.
fn roster_line(screen: &str, name: &str) -> String {
    screen
        .lines()
        .find(|l| l.chars().skip(3).collect::<String>().starts_with(&format!("{name} ")))
        .unwrap_or("")
        .to_string()
}

#[test]
fn demo_workbench_from_the_keyboard() {
    let t = Tmux::start(120, 40, "demo");
    // The roster appears with three agents, and the well shows the selected agent's terminal.
    let s = t.wait_for("roster and question", |s| {
        ["planner", "api", "docs"].iter().all(|n| roster_line(s, n).contains("waiting")) && s.contains("[y/n]")
    });
    assert!(s.contains("─ planner ─ [terminal]"), "{s}");
    let repo = t.demo_repo();

    // Collapse the well to the roster, then expand it again onto the agent's terminal.
    t.keys(&["Space"]);
    t.wait_for("collapsed", |s| !s.contains("[terminal]") && !s.contains("[y/n]"));
    t.keys(&["Space"]);
    t.wait_for("expanded", |s| s.contains("─ planner ─ [terminal]") && s.contains("Apply the refactor"));

    // Attach, answer the question, detach.
    t.keys(&["Enter"]);
    t.wait_for("attached", |s| s.contains("ATTACHED"));
    t.keys(&["y", "Enter"]);
    t.wait_for("answer applied", |s| s.contains("✔ applied") && roster_line(s, "planner").contains("idle"));
    t.keys(&["C-]"]);
    t.wait_for("detached", |s| !s.contains("ATTACHED"));
    let file = std::fs::read_to_string(repo.join(".muster/worktrees/planner/demo/planner.txt")).unwrap();
    assert!(file.contains("refactored: yes"), "{file}");

    // Steer without attaching.
    t.keys(&["s"]);
    t.wait_for("steer box", |s| s.contains("steer planner"));
    t.text("add a health check");
    t.keys(&["Enter"]);
    t.wait_for("steered", |s| s.contains("You said: add a health check"));

    // Pause and resume the second agent.
    t.keys(&["j", "p"]);
    t.wait_for("paused", |s| roster_line(s, "api").contains("paused"));
    t.keys(&["p"]);
    t.wait_for("resumed", |s| !roster_line(s, "api").contains("paused"));

    // Help lists the roster's keys, and scrolls to its end.
    t.keys(&["?"]);
    // The pause line says how this machine pauses.
    t.wait_for("help", |s| {
        s.contains("Pause or resume the agent's processes (")
            && (s.contains("freezer)") || s.contains("SIGSTOP and SIGCONT)"))
            && s.contains("Attach: type into")
    });
    for _ in 0..60 {
        t.keys(&["j"]);
    }
    t.wait_for("help scrolled to the end", |s| s.contains("Stop the crew (checkpointed first)"));
    t.keys(&["Escape"]);
    t.wait_for("help closed", |s| !s.contains("Pause or resume the agent's processes"));

    // Quit asks, stops the agents and gives the terminal back.
    t.keys(&["q"]);
    t.wait_for("quit confirmation", |s| s.contains("Quit muster?"));
    t.keys(&["y"]);
    let s = t.wait_for("exit", |s| s.contains("EXITED 0"));
    assert!(s.contains("demo repository kept at"), "{s}");
    assert!(!s.contains("[terminal]"), "alternate screen left: {s}");
    let end = Instant::now() + DEADLINE;
    while !processes_in(&repo).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(processes_in(&repo), Vec::<String>::new(), "agent processes left behind");
}

#[test]
fn narrow_pane_degrades_to_roster_and_resizes_back() {
    let t = Tmux::start(60, 15, "demo --agents 4");
    let s = t.wait_for("roster", |s| s.contains("tests") && s.contains("waiting"));
    assert!(!s.contains("[terminal]"), "no well at 60x15: {s}");
    t.tmux(&["resize-window", "-t", "0", "-x", "100", "-y", "30"]);
    t.wait_for("well after resize", |s| s.contains("[terminal]") && s.contains("[y/n]"));
    t.keys(&["q"]);
    t.wait_for("quit confirmation", |s| s.contains("Quit muster?"));
    t.keys(&["y"]);
    t.wait_for("exit", |s| s.contains("EXITED 0"));
}

#[test]
fn bad_crew_file_names_the_place_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let git = |args: &[&str]| Command::new("git").args(args).current_dir(repo).output().unwrap();
    git(&["init", "-q"]);
    std::fs::create_dir_all(repo.join(".muster")).unwrap();
    std::fs::write(repo.join(".muster/crew.toml"), "[[agent]]\nname = \"a\"\nkind = \"clod\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_muster")).current_dir(repo).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(".muster/crew.toml:3:8: key `kind`: unknown preset `clod`"), "{err}");
    // Outside a repository: a clear error.
    let out = Command::new(env!("CARGO_BIN_EXE_muster"))
        .current_dir(dir.path().parent().unwrap())
        .arg("-C")
        .arg("/")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("not inside a git repository"));
}

#[test]
fn timeline_rollback_and_undo_from_the_keyboard() {
    let t = Tmux::start(120, 40, "demo --agents 1");
    // Waiting for input ends a turn: a checkpoint is taken then, holding the plan only.
    t.wait_for("question and first checkpoint", |s| s.contains("[y/n]") && roster_line(s, "planner").contains("◷1"));
    let repo = t.demo_repo();
    let file = repo.join(".muster/worktrees/planner/demo/planner.txt");
    let read = || std::fs::read_to_string(&file).unwrap_or_default();
    let plan_only = read();
    assert!(plan_only.starts_with("plan by planner"), "{plan_only}");
    // Two more turns: answer the question, then a steer.
    t.keys(&["Enter", "y", "Enter"]);
    t.wait_for("applied", |s| s.contains("✔ applied") && roster_line(s, "planner").contains("◷2"));
    t.keys(&["C-]", "s"]);
    t.wait_for("steer box", |s| s.contains("steer planner"));
    t.text("second turn");
    t.keys(&["Enter"]);
    t.wait_for("second turn done", |s| {
        s.contains("noted in demo/planner.txt") && roster_line(s, "planner").contains("◷3")
    });
    let latest = read();
    assert!(latest.contains("note: second turn"), "{latest}");
    // The timeline lists the checkpoints; the oldest holds the plan only.
    t.keys(&["Tab"]);
    t.wait_for("timeline", |s| s.contains("[timeline (") && s.contains("#1 ") && s.contains("#2 "));
    for _ in 0..6 {
        t.keys(&["j"]);
    }
    t.wait_for("oldest selected", |s| s.contains("▸#1 "));
    t.keys(&["r"]);
    t.wait_for("confirmation", |s| s.contains("Roll planner back to checkpoint 1?") && s.contains("demo/planner.txt"));
    t.keys(&["y"]);
    let end = Instant::now() + DEADLINE;
    while read() != plan_only && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(read(), plan_only, "rollback restored the earlier contents on disk");
    t.wait_for("rollback mark", |s| roster_line(s, "planner").contains("↺"));
    // Undo brings the later contents back.
    t.keys(&["u"]);
    t.wait_for("undo confirmation", |s| s.contains("Undo the last rollback of planner?"));
    t.keys(&["y"]);
    let end = Instant::now() + DEADLINE;
    while read() != latest && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(read(), latest);
    t.keys(&["q", "y"]);
    t.wait_for("exit", |s| s.contains("EXITED 0"));
}

#[test]
fn overlapping_agents_merge_and_resolve_conflicts_from_the_keyboard() {
    let t = Tmux::start(120, 40, "demo --agents 2");
    // Both demo agents rewrite the same line of src/lib.rs; answer the first so its row shows the warning.
    t.wait_for("questions", |s| roster_line(s, "planner").contains("◷1") && roster_line(s, "api").contains("◷1"));
    let repo = t.demo_repo();
    t.keys(&["Enter", "y", "Enter"]);
    t.wait_for("planner idle", |s| roster_line(s, "planner").contains("idle"));
    t.keys(&["C-]"]);
    t.wait_for("overlap warning", |s| roster_line(s, "planner").contains("✗ conflicts with: api"));
    // Merge the first agent: clean.
    t.keys(&["m"]);
    t.wait_for("merge confirmation", |s| {
        s.contains("Merge planner into main?") && s.contains("would conflict with: api")
    });
    t.keys(&["y"]);
    // The default message, editable before the merge runs.
    t.wait_for("message editor", |s| {
        s.contains("merge commit message") && s.contains("Merge muster/planner into main")
    });
    t.text(" (demo)");
    t.keys(&["C-s"]);
    t.wait_for("merged", |s| s.contains("planner: merged muster/planner"));
    // Merge the second: the conflict view opens on src/lib.rs.
    t.keys(&["j", "m"]);
    t.wait_for("second confirmation", |s| s.contains("Merge api into main?"));
    t.keys(&["y"]);
    t.wait_for("second message editor", |s| s.contains("merge commit message"));
    t.keys(&["C-s"]);
    t.wait_for("conflict view", |s| {
        s.contains("[conflicts (1)]")
            && s.contains("src/lib.rs")
            && s.contains("ours: main")
            && s.contains("theirs: muster/api")
    });
    t.keys(&["t"]);
    t.wait_for("resolved", |s| s.contains("(resolved: theirs)"));
    t.keys(&["w"]);
    t.wait_for("staged", |s| s.contains("every conflict is resolved") || s.contains("written and staged"));
    t.keys(&["F"]);
    t.wait_for("finish confirmation", |s| s.contains("Finish the merge?"));
    t.keys(&["y"]);
    t.wait_for("committed", |s| s.contains("merge committed"));
    let lib = std::fs::read_to_string(repo.join("src/lib.rs")).unwrap();
    assert!(lib.contains("from api") && !lib.contains("from planner") && !lib.contains("<<<<<<<"), "{lib}");
    let log = Command::new("git").args(["log", "--format=%s"]).current_dir(&repo).output().unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(
        log.starts_with("Merge muster/api into main\n") && log.contains("Merge muster/planner into main (demo)"),
        "{log}"
    );
    t.keys(&["q", "y"]);
    t.wait_for("exit", |s| s.contains("EXITED 0"));
}

/// Every agent draws its first screen at the size it is shown at; `muster explain` says why each is in its
/// state; closing the terminal (SIGHUP) leaves the crew running in the server, and a new workbench shows the same
/// screens; `muster server stop` then stops everything, including a process that left its agent's session and
/// ignores SIGHUP and SIGTERM.
#[test]
fn agents_start_at_the_wells_size_outlive_a_closed_terminal_and_stop_with_the_server() {
    let t = Tmux::start_in(120, 40, "-C repo", |dir| {
        let daemon = daemon_then(dir, "stty size; exec sleep 600");
        let crew = format!(
            "[[agent]]\nname = \"a\"\ncommand = \"bash\"\nargs = [\"-c\", \"stty size; exec sleep 600\"]\n\
             [[agent]]\nname = \"b\"\ncommand = \"bash\"\nargs = [\"-c\", \"stty size; exec sleep 600\"]\n\
             [[agent]]\nname = \"c\"\ncommand = \"bash\"\nargs = [\"-c\", \"{daemon}\"]\n"
        );
        crew_repo(dir, &crew);
    });
    // 40 rows: header, 3 roster rows, the well's bar, status line: the well is 34 x 120.
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        if i > 0 {
            t.keys(&["j"]);
        }
        t.wait_for(&format!("{name}'s first screen"), |s| s.contains(&format!("─ {name} ─")) && s.contains("34 120"));
    }
    let repo = t.dir.path().join("repo");
    let daemon = daemon_pid(t.dir.path());
    t.wait_for("c idle", |s| roster_line(s, "c").contains("idle"));
    // The hook socket is in the session's runtime folder.
    let explained = Command::new(env!("CARGO_BIN_EXE_muster"))
        .args(["explain", "c"])
        .env("XDG_RUNTIME_DIR", t.dir.path().join("run"))
        .current_dir(&repo)
        .env("TMPDIR", t.dir.path())
        .output()
        .unwrap();
    let explained =
        format!("{}{}", String::from_utf8_lossy(&explained.stdout), String::from_utf8_lossy(&explained.stderr));
    assert!(explained.starts_with("c: idle — the screen stopped changing"), "{explained}");
    assert!(explained.contains(&daemon.to_string()), "the daemon is one of c's processes: {explained}");
    let server = t.server_pid();
    // Closing the terminal: tmux goes, the workbench gets SIGHUP; the server and its agents do not.
    t.tmux(&["kill-server"]);
    let (status, _) = t.muster(&["status"]);
    assert!(alive(server) && alive(daemon), "the crew outlives its terminal");
    assert!(roster_line(&status, "a").contains("idle") || status.contains("a "), "{status}");
    // A new terminal, a new workbench: the same screens at once (from the server, nothing restarted).
    t.tmux(&[
        "new-session",
        "-d",
        "-x",
        "120",
        "-y",
        "40",
        "sh",
        "-c",
        &script(t.dir.path(), env!("CARGO_BIN_EXE_muster"), "-C repo"),
    ]);
    t.wait_for("a's screen again", |s| s.contains("─ a ─") && s.contains("34 120"));
    assert!(alive(daemon));
    let (stopped, code) = t.muster(&["server", "stop"]);
    assert_eq!(code, 1, "without a terminal to ask on, stopping running agents needs --yes: {stopped}");
    assert!(stopped.contains("--yes"), "{stopped}");
    let (stopped, code) = t.muster(&["server", "stop", "--yes"]);
    assert_eq!(code, 0, "{stopped}");
    assert!(stopped.contains("stopped"), "{stopped}");
    let s = t.wait_for("the workbench ends with the crew", |s| s.contains("EXITED 0"));
    assert!(s.contains("muster: the crew was stopped and its server ended"), "{s}");
    let end = Instant::now() + DEADLINE;
    while alive(daemon) || !processes_in(&repo).is_empty() {
        assert!(Instant::now() < end, "left running: daemon {}, {:?}", alive(daemon), processes_in(&repo));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM to the workbench puts the terminal back (main screen, no mouse capture, cooked mode) and leaves the
/// crew to its server; a second server on the same repository, even from inside an agent's worktree, is refused
/// while the first runs; once the server is stopped nothing of it is left in the run folder but its lock and log.
#[test]
fn sigterm_restores_the_terminal_and_one_server_serves_a_repository() {
    let t = Tmux::start_in(100, 30, "-C repo", |dir| {
        crew_repo(
            dir,
            "[[agent]]\nname = \"a\"\ncommand = \"bash\"\nargs = [\"-c\", \"echo ready; exec sleep 600\"]\n",
        );
    });
    t.wait_for("a running", |s| s.contains("ready"));
    let repo = t.dir.path().join("repo");
    assert_eq!(t.tmux(&["display", "-p", "#{alternate_on}"]).trim(), "1");
    let second = Command::new(env!("CARGO_BIN_EXE_muster"))
        .args(["server", "run"])
        .current_dir(repo.join(".muster/worktrees/a"))
        .env("TMPDIR", t.dir.path())
        .env("XDG_RUNTIME_DIR", t.dir.path().join("run"))
        .env("XDG_STATE_HOME", t.dir.path().join("state"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success() && err.contains("already running"), "{err}");
    assert!(Command::new("kill").args(["-TERM", &muster_pid(&t)]).status().unwrap().success());
    // `stty -a` runs after the exit line: its settings are what muster left. Its local modes (`icanon` or
    // `-icanon`) are its last line: waiting for its first read the rest before it was written.
    let s = t.wait_for("muster ended", |s| s.contains("EXITED") && s.contains("icanon"));
    assert!(s.contains(" icanon") && s.contains(" echo "), "cooked mode again: {s}");
    assert!(s.contains("detached: 1 agent keeps running"), "{s}");
    assert_eq!(t.tmux(&["display", "-p", "#{alternate_on} #{mouse_any_flag}"]).trim(), "0 0");
    let (status, _) = t.muster(&["status"]);
    assert!(status.contains("a ") && !status.contains("stopped"), "{status}");
    let (stopped, code) = t.muster(&["server", "stop", "--yes"]);
    assert_eq!(code, 0, "{stopped}");
    let end = Instant::now() + DEADLINE;
    while !processes_in(&repo).is_empty() {
        assert!(Instant::now() < end, "left running: {:?}", processes_in(&repo));
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nothing of that run is left in the run folder but its lock: no socket, no watcher folders.
    let mut left = Vec::new();
    let mut dirs = vec![t.dir.path().join("run/muster")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else if e.file_name() != "lock" && e.file_name() != "server.log" {
                left.push(e.path());
            }
            if e.file_name().to_string_lossy().starts_with("watch-") {
                left.push(e.path());
            }
        }
    }
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A server killed with -9 cannot stop its crew: an agent process that ignores SIGHUP and SIGTERM outlives it.
/// Its workbench says the server ended. The next muster of the repository ends what the dead server left (after
/// a checkpoint) instead of running the agent a second time beside it, and says so.
#[test]
fn a_restart_after_kill_9_of_the_server_ends_what_it_left() {
    let t = Tmux::start_in(100, 30, "-C repo", |dir| {
        let daemon = daemon_then(dir, "echo ready; exec sleep 600");
        crew_repo(dir, &format!("[[agent]]\nname = \"c\"\ncommand = \"bash\"\nargs = [\"-c\", \"{daemon}\"]\n"));
    });
    t.wait_for("c running", |s| s.contains("ready"));
    let daemon = daemon_pid(t.dir.path());
    assert!(Command::new("kill").args(["-KILL", &t.server_pid().to_string()]).status().unwrap().success());
    let s = t.wait_for("the workbench saw it", |s| s.contains("EXITED"));
    assert!(s.contains("muster: the muster server ended"), "{s}");
    assert!(alive(daemon), "the daemon outlived the killed muster");
    t.tmux(&["respawn-pane", "-k", "-t", "0", &script(t.dir.path(), env!("CARGO_BIN_EXE_muster"), "-C repo")]);
    t.wait_for("the leftover ended, after a checkpoint", |s| {
        s.contains("an earlier muster left running") && s.contains("holds its files")
    });
    let end = Instant::now() + DEADLINE;
    while alive(daemon) {
        assert!(Instant::now() < end, "the dead muster's daemon {daemon} still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `muster watch` in a narrow pane beside the workbench: one line per agent with its live state (the order and
/// highlight of agents that need the operator are unit-tested); stopped once the workbench is gone; `q` leaves.
#[test]
fn a_watcher_in_a_narrow_pane_follows_the_crew() {
    let t = Tmux::start_in(100, 30, "-C repo", |dir| {
        crew_repo(
            dir,
            "[[agent]]\nname = \"busy\"\ncommand = \"bash\"\nargs = [\"-c\", \"while :; do date +%N; sleep 0.2; done\"]\n\
             [[agent]]\nname = \"quiet\"\ncommand = \"bash\"\nargs = [\"-c\", \"echo hi; exec sleep 600\"]\n",
        );
    });
    t.wait_for("the crew running", |s| {
        roster_line(s, "quiet").contains("idle") && roster_line(s, "busy").contains("busy")
    });
    let exe = env!("CARGO_BIN_EXE_muster");
    t.tmux(&["new-session", "-d", "-s", "w", "-x", "40", "-y", "10", &script(t.dir.path(), exe, "-C repo watch")]);
    let pane = |t: &Tmux| t.tmux(&["capture-pane", "-p", "-t", "w"]);
    let end = Instant::now() + DEADLINE;
    let mut s = pane(&t);
    while !(s.contains("● busy") && s.contains("○ quiet")) {
        assert!(Instant::now() < end, "watcher shows: {s}");
        std::thread::sleep(Duration::from_millis(50));
        s = pane(&t);
    }
    assert!(s.starts_with("muster · 2 agents"), "{s}");
    // The crew is stopped: the watcher says so.
    let (stopped, code) = t.muster(&["server", "stop", "--yes"]);
    assert_eq!(code, 0, "{stopped}");
    let end = Instant::now() + DEADLINE;
    while !(s.contains("□ busy") && s.contains("□ quiet")) {
        assert!(Instant::now() < end, "watcher shows: {s}");
        std::thread::sleep(Duration::from_millis(50));
        s = pane(&t);
    }
    // A watcher whose terminal closes ends (crossterm's poll spun forever on the dead terminal before).
    t.tmux(&["new-session", "-d", "-s", "w2", "-x", "30", "-y", "5", &script(t.dir.path(), exe, "-C repo watch")]);
    let pid = t.tmux(&["display", "-p", "-t", "w2", "#{pane_pid}"]).trim().to_string();
    let end = Instant::now() + DEADLINE;
    let watcher = loop {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(c) = children.split_whitespace().next() {
            break c.parse::<i32>().unwrap();
        }
        assert!(Instant::now() < end, "the second watcher never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    t.tmux(&["kill-session", "-t", "w2"]);
    let end = Instant::now() + DEADLINE;
    while alive(watcher) {
        assert!(Instant::now() < end, "a watcher outlived its terminal");
        std::thread::sleep(Duration::from_millis(20));
    }
    t.tmux(&["send-keys", "-t", "w", "q"]);
    // With the pane's history: `stty -a` after the exit line fills a 10-row pane.
    let history = |t: &Tmux| t.tmux(&["capture-pane", "-p", "-S", "-100", "-t", "w"]);
    let end = Instant::now() + DEADLINE;
    while !history(&t).contains("EXITED 0") {
        assert!(Instant::now() < end, "watcher did not quit: {}", history(&t));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The workbench is a client: killed with -9 in the middle of a stream, it takes nothing with it. The agents run
/// on, and a new workbench shows the same screen with the output that came meanwhile.
#[test]
fn a_killed_workbench_leaves_the_crew_running_and_a_new_one_shows_the_same_screen() {
    let t = Tmux::start_in(100, 30, "-C repo", |dir| {
        crew_repo(
            dir,
            "[[agent]]\nname = \"count\"\ncommand = \"bash\"\nargs = [\"-c\", \"echo marker-1; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done\"]\n",
        );
    });
    t.wait_for("counting", |s| s.contains("marker-1") && s.contains("tick 3"));
    let server = t.server_pid();
    assert!(Command::new("kill").args(["-KILL", &muster_pid(&t)]).status().unwrap().success());
    // A killed workbench leaves the terminal raw: the shell's words land wherever its cursor was, maybe wrapped.
    t.wait_for("the workbench gone", |s| s.replace('\n', "").contains("EXITED"));
    let end = Instant::now() + DEADLINE;
    loop {
        let (status, _) = t.muster(&["status"]);
        if status.contains("busy") && alive(server) {
            break;
        }
        assert!(Instant::now() < end, "the agent runs on: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ticks = |s: &str| s.lines().filter_map(|l| l.trim().strip_prefix("tick ")?.parse::<u64>().ok()).max();
    let before = ticks(&t.screen()).unwrap_or(0);
    t.tmux(&["respawn-pane", "-k", "-t", "0", &script(t.dir.path(), env!("CARGO_BIN_EXE_muster"), "-C repo")]);
    let s = t.wait_for("the same agent, further on", |s| {
        s.contains("─ count ─") && ticks(s).is_some_and(|n| n > before + 5)
    });
    assert_eq!(t.server_pid(), server, "the same server: {s}");
}

/// Two workbenches on one crew see the same updates and keep their own selection and scroll position; typing
/// into an agent sizes it to the typist's pane, and the other viewer is told its well shows a terminal sized
/// elsewhere. Quitting one leaves the other live.
#[test]
fn two_workbenches_share_the_crew_with_their_own_selection() {
    let t = Tmux::start_in(100, 30, "-C repo", |dir| {
        crew_repo(
            dir,
            "[[agent]]\nname = \"a\"\ncommand = \"bash\"\nargs = [\"-c\", \"seq -f 'line %g' 80; echo i am a; exec sleep 600\"]\n\
             [[agent]]\nname = \"b\"\ncommand = \"bash\"\nargs = [\"-c\", \"echo i am b; read x; echo got $x; stty size; exec sleep 600\"]\n",
        );
    });
    t.wait_for("a shown", |s| s.contains("i am a"));
    let exe = env!("CARGO_BIN_EXE_muster");
    t.tmux(&["new-session", "-d", "-s", "two", "-x", "80", "-y", "24", &script(t.dir.path(), exe, "-C repo")]);
    let two = |t: &Tmux| t.tmux(&["capture-pane", "-p", "-t", "two"]);
    let wait_two = |what: &str, done: &dyn Fn(&str) -> bool| {
        let end = Instant::now() + DEADLINE;
        loop {
            let s = two(&t);
            if done(&s) {
                return s;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}; second workbench:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_two("the crew in the second workbench", &|s| s.contains("i am a") && roster_line(s, "b").contains("idle"));
    // The first looks back into a's history; the second still follows a's output.
    t.keys(&["PageUp"]);
    t.wait_for("the first scrolled back", |s| s.contains("lines back") && !s.contains("i am a"));
    let second = two(&t);
    assert!(second.contains("i am a") && !second.contains("lines back"), "{second}");
    t.keys(&["End"]);
    t.wait_for("the first follows again", |s| s.contains("i am a") && !s.contains("lines back"));
    // K and J: a line back, and forward again to the live screen.
    t.keys(&["K"]);
    t.wait_for("a line back", |s| s.contains("↑ 1 of"));
    t.keys(&["J"]);
    t.wait_for("live again", |s| !s.contains("lines back"));
    // The second one selects b, attaches and types; the first still shows a.
    t.tmux(&["send-keys", "-t", "two", "j"]);
    wait_two("b selected", &|s| s.contains("i am b"));
    t.tmux(&["send-keys", "-t", "two", "Enter"]);
    wait_two("attached", &|s| s.contains("ATTACHED"));
    t.tmux(&["send-keys", "-t", "two", "-l", "ping"]);
    t.tmux(&["send-keys", "-t", "two", "Enter"]);
    // 24 rows: header, 2 roster rows, the well's bar, status line: b's terminal is 19 x 80.
    wait_two("b answered at the second pane's size", &|s| s.contains("got ping") && s.contains("19 80"));
    let first = t.screen();
    assert!(first.contains("i am a") && !first.contains("got ping"), "the first keeps its selection: {first}");
    // The first looks at b too: the same output, in a terminal sized by the other viewer.
    t.keys(&["j"]);
    t.wait_for("b in the first workbench", |s| s.contains("got ping") && s.contains("sized by another viewer (80x19)"));
    // The second detaches; the first stays live.
    t.tmux(&["send-keys", "-t", "two", "C-]"]);
    wait_two("detached from b", &|s| !s.contains("ATTACHED"));
    t.tmux(&["send-keys", "-t", "two", "q"]);
    wait_two("the second workbench ended", &|s| s.contains("EXITED 0"));
    t.keys(&["k"]);
    t.wait_for("the first still live", |s| s.contains("i am a"));
    t.wait_server_status("clients: 1");
}

/// `muster attach --via CMD` shows a crew at the other end of any byte stream: here `muster proxy` run as a
/// local command (over ssh it is the same bridge).
#[test]
fn a_crew_is_shown_through_muster_proxy() {
    let exe = env!("CARGO_BIN_EXE_muster");
    let t = Tmux::start_in(100, 30, &format!("attach --via \"'{exe}' -C repo proxy\""), |dir| {
        crew_repo(
            dir,
            "[[agent]]\nname = \"far\"\ncommand = \"bash\"\nargs = [\"-c\", \"echo from afar; read x; echo got $x; exec sleep 600\"]\n",
        );
    });
    let s = t.wait_for("the remote crew", |s| s.contains("from afar") && roster_line(s, "far").contains("idle"));
    // The header names the repository the server serves, not the command that reached it.
    assert!(s.lines().next().is_some_and(|l| l.contains("repo: repo") && !l.contains("proxy")), "{s}");
    t.keys(&["s"]);
    t.text("hello there");
    t.keys(&["Enter"]);
    t.wait_for("the steer arrived", |s| s.contains("got hello there"));
    t.keys(&["q"]);
    t.wait_for("detached", |s| s.contains("EXITED 0"));
    t.wait_server_status("clients: 0");
}

/// The mailbox from the keyboard, on the demo crew: answer an agent's question from the roster, write to an
/// agent from the crew's mailbox, and see its reply arrive with receipts once it could take the mail.
#[test]
fn the_mailbox_from_the_keyboard() {
    let t = Tmux::start(120, 40, "demo");
    t.wait_for("docs asks the operator", |s| s.contains("? Should the README"));
    t.keys(&["G"]);
    t.keys(&["a"]);
    t.wait_for("the answer dialog", |s| s.contains("answer: Should the README"));
    t.text("Yes, one line.");
    t.keys(&["C-s"]);
    t.wait_for("answered: the question leaves the roster", |s| !s.contains("? Should the README"));
    t.keys(&["I"]);
    t.wait_for("the crew's mailbox", |s| s.contains("mailbox · whole crew"));
    t.keys(&["w"]);
    t.wait_for("a new mail", |s| s.contains("new mail"));
    t.text("api");
    t.keys(&["Tab"]);
    t.text("hello api");
    t.keys(&["C-s"]);
    t.wait_for("it waits for api", |s| s.contains("operator → api"));
    // api is at its y/n question: the mail waits until the operator answers it.
    t.keys(&["Escape"]);
    t.wait_for("back to the terminal", |s| s.contains("[terminal]"));
    t.keys(&["g", "j", "s"]);
    t.wait_for("the steer box", |s| s.contains("steer api"));
    t.text("y");
    t.keys(&["Enter"]);
    t.wait_for("the dialog warning", |s| s.contains("api is showing a dialog"));
    t.keys(&["y"]);
    t.keys(&["I"]);
    let s = t.wait_for("api's reply", |s| s.contains("api → operator") && s.contains("done: hello api"));
    let lines: Vec<&str> = s.lines().collect();
    let bar = lines.iter().position(|l| l.contains("mailbox · whole crew")).unwrap();
    let row = lines[bar + 1..].iter().position(|l| l.contains("done: hello api")).unwrap();
    t.keys(&["g"]);
    for _ in 0..row {
        t.keys(&["j"]);
    }
    t.keys(&["Enter"]);
    t.wait_for("the thread, with api's receipt", |s| s.contains("hello api") && s.contains("api: acked (reply #"));
}

/// Output scrolling by in the well is scrolled by the terminal (a scroll region) and only the new lines are
/// drawn: whatever frames it took, the screen in the end shows every line once, in order, as the agent wrote
/// them, and the roster and status line around the well are intact.
#[test]
fn output_scrolled_by_the_terminal_leaves_the_screen_exact() {
    let t = Tmux::start_in(100, 30, "-C repo", |dir| {
        crew_repo(
            dir,
            "[[agent]]\nname = \"count\"\ncommand = \"bash\"\nargs = [\"-c\", \"for i in $(seq 1 400); do printf '\\\\033[3%dmtick %d\\\\033[0m\\\\n' $((i % 7)) $i; [ $((i % 3)) = 0 ] && sleep 0.01; done; echo done-counting; sleep 600\"]\n",
        );
    });
    let s = t.wait_for("the count to end", |s| s.contains("done-counting"));
    let lines: Vec<&str> = s.lines().collect();
    let bar = lines.iter().position(|l| l.contains("─ count ─")).expect("the well's bar");
    assert!(lines[bar - 1].contains("count"), "the roster line above the well: {s}");
    assert!(lines.last().is_some_and(|l| l.contains("help")), "the status line: {s}");
    // Every row from the top of the well to the end of the output is a line of it, in order: a row left over
    // from an earlier frame (or a blank one) would be where the terminal's scroll and muster's idea of it parted.
    let done = lines.iter().position(|l| l.trim() == "done-counting").expect("the end of the output");
    let ticks: Vec<Option<u64>> =
        lines[bar + 1..done].iter().map(|l| l.trim().strip_prefix("tick ").and_then(|n| n.parse().ok())).collect();
    assert!(ticks.len() >= 20, "the well is full of lines: {s}");
    assert!(ticks.iter().all(Option::is_some), "every row a line of output: {s}");
    assert_eq!(ticks.last(), Some(&Some(400)), "{s}");
    for pair in ticks.windows(2) {
        assert_eq!(pair[1], pair[0].map(|n| n + 1), "lines in order, none twice or missing: {s}");
    }
}

/// A terminal wider than the 1000 columns muster serves (a large monitor, a small font): the workbench runs,
/// its agents sized at the limit, rather than the server refusing it.
#[test]
fn a_terminal_wider_than_the_limit_still_runs_the_workbench() {
    let t = Tmux::start(1100, 30, "demo --agents 2");
    // The agents run (not only listed), so quitting asks.
    t.wait_for("roster and well", |s| s.contains("[terminal]") && !roster_line(s, "api").contains("stopped"));
    t.keys(&["q"]);
    t.wait_for("quit confirmation", |s| s.contains("Quit muster?"));
    t.keys(&["y"]);
    t.wait_for("exit", |s| s.contains("EXITED 0"));
}

/// Four mistakes in the config files: the status line says how many, and `!` lists every one with its place
/// (only the first showed, cut, for a few seconds; the rest were in the log).
#[test]
fn every_config_warning_is_listed_from_the_keyboard() {
    let t = Tmux::start_in(120, 40, "demo --agents 2", |d| {
        let config = d.join("config/muster");
        std::fs::create_dir_all(config.join("keymaps")).unwrap();
        let text = "bell = false\nscrolback = 5\ncheckpoint_minutes = \"ten\"\ntheme = \"nope\"\n";
        std::fs::write(config.join("config.toml"), text).unwrap();
        std::fs::write(config.join("keymaps/default.toml"), "[roster]\n\"z\" = \"no_such_action\"\n").unwrap();
    });
    t.wait_for("the roster, and the status line counting the warnings", |s| {
        s.contains("api") && s.contains("[terminal]") && s.lines().last().is_some_and(|l| l.contains("warning"))
    });
    t.keys(&["!"]);
    // Waited for whole: a capture can catch the terminal half-way through drawing a frame.
    let expected =
        ["config.toml:2", "config.toml:3", "config.toml:4:9: unknown theme `nope`", "default.toml:2", "no_such_action"];
    t.wait_for("the list, every warning in it", |s| {
        s.contains("4 warnings in the config files") && expected.iter().all(|w| s.contains(w))
    });
    // Apart: ESC then q at once reads as Alt-q.
    t.keys(&["Escape"]);
    t.wait_for("the list closed, the agents running", |s| {
        !s.contains("in the config files") && !roster_line(s, "api").contains("stopped")
    });
    t.keys(&["q"]);
    t.wait_for("quit confirmation", |s| s.contains("Quit muster?"));
    t.keys(&["y"]);
    t.wait_for("exit", |s| s.contains("EXITED 0"));
}

/// The roster's other keys, as the README lists them, through the real binary: `x` stops, `R` restarts with the
/// resume arguments, `M` and `m` check a merge before they ask, `c` takes a checkpoint, `!` lists
/// the messages, `D` removes an agent after asking, `Q` stops the crew. (Scrolling back is the server test's and
/// the output test's: the demo's screens have no history yet.)
#[test]
fn the_rest_of_the_roster_keys_from_the_keyboard() {
    let t = Tmux::start(120, 40, "demo");
    t.wait_for("the crew at its questions", |s| {
        ["planner", "api", "docs"].iter().all(|n| roster_line(s, n).contains("waiting"))
    });
    // Stop, then restart, the selected agent (planner).
    t.keys(&["x"]);
    t.wait_for("planner stopped", |s| {
        let line = roster_line(s, "planner");
        line.contains("stopped") || line.contains("exited")
    });
    t.keys(&["R"]);
    t.wait_for("planner again", |s| {
        let line = roster_line(s, "planner");
        !line.contains("stopped") && !line.contains("exited")
    });
    t.wait_for("planner's screen", |s| s.contains("resuming the previous session"));
    // A checkpoint now, said on the status line and kept in the messages list.
    t.keys(&["c"]);
    t.wait_for("checkpoint said", |s| s.contains("planner: checkpoint") || s.contains("planner: nothing changed"));
    t.keys(&["!"]);
    t.wait_for("messages", |s| s.contains("messages · j/k scroll") && s.contains("planner: "));
    t.keys(&["Escape"]);
    t.wait_for("messages closed", |s| !s.contains("messages · j/k scroll"));
    // Merge the base into api: checked first, and there is nothing to merge (main has not moved). Merge api into
    // main: checked, then asked (its new file named); declined.
    t.keys(&["j", "M"]);
    t.wait_for("nothing to merge", |s| s.contains("api: already up to date, nothing to merge"));
    t.keys(&["m"]);
    t.wait_for("merge asked, naming the new file", |s| {
        s.contains("Merge api into main?") && s.contains("will be committed: demo/api.txt")
    });
    t.keys(&["n"]);
    t.wait_for("declined", |s| !s.contains("Merge api into main?"));
    // Remove docs, after asking.
    t.keys(&["j", "D"]);
    t.wait_for("remove asked", |s| s.contains("Remove docs?"));
    t.keys(&["y"]);
    t.wait_for("docs removed", |s| roster_line(s, "docs").is_empty() && s.contains("planner"));
    // Q stops the crew (asks while agents run).
    t.keys(&["Q"]);
    t.wait_for("stop asked", |s| s.contains("Stop the crew?") || s.contains("Quit muster?"));
    t.keys(&["y"]);
    t.wait_for("exit", |s| s.contains("EXITED 0"));
}

/// The crew file saved while the workbench runs: the new agents appear, marked, and `A` starts them after asking;
/// a file that does not parse is said with its place and changes nothing.
#[test]
fn agents_added_to_the_crew_file_appear_and_start_from_the_keyboard() {
    let one = "[[agent]]\nname = \"a\"\ncommand = \"bash\"\n";
    let t = Tmux::start_in(120, 40, "-C repo", |dir| crew_repo(dir, one));
    t.wait_for("a running", |s| roster_line(s, "a").contains("idle") || roster_line(s, "a").contains("busy"));
    let file = t.dir.path().join("repo/.muster/crew.toml");
    std::fs::write(
        &file,
        format!("{one}[[agent]]\nname = \"b\"\ncommand = \"bash\"\n[[agent]]\nname = \"c\"\ncommand = \"bash\"\n"),
    )
    .unwrap();
    t.wait_for("b and c, new and stopped", |s| {
        ["b", "c"].iter().all(|n| {
            let line = roster_line(s, n);
            line.contains("stopped") && line.contains("+ new: R starts it")
        }) && s.contains("crew.toml: b added")
    });
    t.keys(&["A"]);
    t.wait_for("asked, naming them", |s| s.contains("Start 2 agents?") && s.contains("b, c"));
    t.keys(&["y"]);
    t.wait_for("b and c running", |s| {
        ["b", "c"].iter().all(|n| {
            let line = roster_line(s, n);
            !line.contains("stopped") && !line.contains("+ new")
        })
    });
    std::fs::write(&file, "[[agent]]\nname = \"a\"\ncomand = \"bash\"\n").unwrap();
    t.wait_for("the error, with its place", |s| s.contains("crew.toml:3:1") && s.contains("not applied"));
    let s = t.screen();
    assert!(["a", "b", "c"].iter().all(|n| !roster_line(&s, n).contains("left crew file")), "nothing changed:\n{s}");
}

/// `n` adds an agent from the keyboard: a form in the crew file's own words; the agent joins the crew file (its
/// comments kept) and runs.
#[test]
fn a_new_agent_from_the_keyboard() {
    let one = "# our crew\n[[agent]]\nname = \"a\"   # the first\ncommand = \"bash\"\n";
    let t = Tmux::start_in(120, 40, "-C repo", |dir| crew_repo(dir, one));
    t.wait_for("a running", |s| roster_line(s, "a").contains("idle") || roster_line(s, "a").contains("busy"));
    t.keys(&["n"]);
    t.wait_for("the form", |s| s.contains("a new agent, as in crew.toml") && s.contains("# kinds:"));
    t.text("helper");
    // The kind line, cleared to its end and written anew.
    t.keys(&["Down", "Home", "C-k"]);
    t.text("kind = \"shell\"");
    t.keys(&["C-s"]);
    t.wait_for("helper running", |s| {
        let line = roster_line(s, "helper");
        line.contains("shell") && (line.contains("idle") || line.contains("busy"))
    });
    let file = std::fs::read_to_string(t.dir.path().join("repo/.muster/crew.toml")).unwrap();
    assert!(file.starts_with(one) && file.ends_with("[[agent]]\nname = \"helper\"\nkind = \"shell\"\n"), "{file}");
    // N: a copy of the selected agent, named for it.
    t.keys(&["j", "N"]);
    t.wait_for("the copy's form", |s| s.contains("a copy of the agent") && s.contains("name = \"helper-2\""));
    t.keys(&["C-s"]);
    t.wait_for("helper-2 running", |s| {
        let line = roster_line(s, "helper-2");
        line.contains("shell") && (line.contains("idle") || line.contains("busy"))
    });
}

/// `/` searches the agent's whole history (the view goes back to each match), copy mode selects a line, and `y`
/// puts exactly that text on the clipboard through OSC 52 (tmux with `set-clipboard on` takes it as a buffer) and
/// into copied.txt.
#[test]
fn search_the_history_and_copy_from_the_keyboard() {
    let crew = "[[agent]]\nname = \"talk\"\ncommand = \"bash\"\nargs = [\"-c\", \"for i in $(seq 1 3000); do \
                if [ $i = 42 ] || [ $i = 2900 ]; then echo \\\"Needle-$i here\\\"; else echo \\\"line $i\\\"; fi; \
                done; exec cat\"]\n";
    let t = Tmux::start_in(100, 30, "-C repo", |dir| crew_repo(dir, crew));
    t.tmux(&["set", "-g", "set-clipboard", "on"]);
    t.wait_for("the output's end", |s| s.contains("line 3000"));
    t.keys(&["/"]);
    t.wait_for("the search prompt", |s| s.contains("search older: /"));
    t.text("needle-\\d+");
    t.keys(&["Enter"]);
    t.wait_for("the newer match", |s| s.contains("match 1 of 2") && s.contains("Needle-2900 here"));
    t.keys(&["n"]);
    let s = t.wait_for("the older one, far back", |s| s.contains("match 2 of 2") && s.contains("Needle-42 here"));
    assert!(s.contains("lines back") && s.contains("COPY MODE"), "{s}");
    t.keys(&["n"]);
    t.wait_for("no more", |s| s.contains("no more matches"));
    t.keys(&["0", "v", "$", "y"]);
    t.wait_for("copied", |s| s.contains("copied 14 characters, 1 line"));
    let end = Instant::now() + DEADLINE;
    while t.tmux(&["show-buffer"]) != "Needle-42 here" {
        assert!(Instant::now() < end, "the clipboard has {:?}", t.tmux(&["show-buffer"]));
        std::thread::sleep(Duration::from_millis(50));
    }
    let file = t.dir.path().join("state/muster/copied.txt");
    assert_eq!(std::fs::read_to_string(file).unwrap(), "Needle-42 here");
    // Leaving copy mode follows the output again.
    let s = t.wait_for("back at the bottom", |s| !s.contains("COPY MODE") && s.contains("line 3000"));
    assert!(!s.contains("lines back"), "{s}");
}

/// `d` reviews what a merge would bring (the demo agent's new file and its edit), `]` goes to the next file, and
/// `e` hands the terminal to $EDITOR at the line shown, then takes it back.
#[test]
fn review_a_branch_and_open_a_file_in_the_editor() {
    let t = Tmux::start_in(120, 40, "demo", |dir| {
        let editor = dir.join("editor.sh");
        std::fs::write(&editor, format!("#!/bin/sh\necho \"$@\" > '{}'\n", dir.join("edited").display())).unwrap();
        std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    });
    t.wait_for("the demo's work", |s| roster_line(s, "api").contains("waiting"));
    t.keys(&["j", "d"]);
    t.wait_for("the review", |s| {
        s.contains("api → main") && s.contains("? demo/api.txt +4 −0") && s.contains("M src/lib.rs +1 −1")
    });
    t.keys(&["]"]);
    t.wait_for("the second file's hunk", |s| {
        s.contains("▸ M src/lib.rs") && s.contains("+    format!(\"hello {name}, from api\")")
    });
    // A search of the diff's lines: back to the first file, on to the second.
    t.keys(&["["]);
    t.keys(&["/"]);
    t.wait_for("the prompt", |s| s.contains("search the diff: /"));
    t.text("hello \\{name\\}, from");
    t.keys(&["Enter"]);
    // The diff stands at the matching line; the status line says which match it is (and `!` keeps it, whatever
    // message came after it).
    let at_match = |s: &str| {
        let mut lines = s.lines().skip_while(|l| !l.contains("▸ M src/lib.rs")).skip(2);
        lines.next().is_some_and(|l| l.starts_with("+    format!(\"hello {name}, from api\")"))
    };
    t.wait_for("the match", at_match);
    t.keys(&["!"]);
    t.wait_for("the match's message", |s| s.contains("/hello \\{name\\}, from: match 1 of 1 (src/lib.rs)"));
    t.keys(&["Escape"]);
    t.wait_for("the review again", |s| at_match(s) && !s.contains("match 1 of 1"));
    // The matching line is at the top: the editor opens there.
    t.keys(&["e"]);
    t.wait_for("back from the editor", |s| s.contains("back from"));
    let edited = std::fs::read_to_string(t.dir.path().join("edited")).unwrap();
    assert!(edited.starts_with("+6 ") && edited.trim_end().ends_with(".muster/worktrees/api/src/lib.rs"), "{edited}");
    let s = t.screen();
    assert!(s.contains("api → main"), "the workbench is drawn again whole:\n{s}");
}

/// `|` splits the well: both agents' terminals live side by side, each sized by its own pane; keys typed while
/// attached reach the focused pane's agent alone, and `o` moves the focus.
#[test]
fn a_split_well_shows_two_agents_each_at_its_size() {
    let agent = |n: &str| {
        format!(
            "[[agent]]\nname = \"{n}\"\ncommand = \"bash\"\nargs = [\"-c\", \"stty -echo; echo ready-{n}; \
             while read l; do echo \\\"size $(stty size) $l\\\"; done\"]\n"
        )
    };
    let t = Tmux::start_in(120, 40, "-C repo", |dir| crew_repo(dir, &(agent("a") + &agent("b"))));
    t.wait_for("a ready", |s| s.contains("ready-a"));
    t.keys(&["|"]);
    t.wait_for("both panes", |s| s.contains("ready-a") && s.contains("ready-b") && s.contains("▶ a"));
    let halves = |s: &str, needle: &str| -> (bool, bool) {
        let mut sides = (false, false);
        for l in s.lines() {
            if let Some((left, right)) = l.split_once('│') {
                sides.0 |= left.contains(needle);
                sides.1 |= right.contains(needle);
            }
        }
        sides
    };
    t.keys(&["Enter"]);
    t.text("one");
    t.keys(&["Enter"]);
    let s = t.wait_for("a's answer", |s| halves(s, "one").0);
    assert!(s.contains("size ") && s.contains(" 59 one"), "a is as wide as its pane:\n{s}");
    assert!(!halves(&s, "one").1, "b got none of it:\n{s}");
    t.keys(&["C-]"]);
    t.keys(&["o"]);
    t.wait_for("b focused", |s| s.contains("▶ b"));
    t.keys(&["Enter"]);
    t.text("two");
    t.keys(&["Enter"]);
    let s = t.wait_for("b's answer", |s| halves(s, "two").1);
    assert!(s.contains(" 60 two"), "b is as wide as its own pane:\n{s}");
    assert!(!halves(&s, "two").0, "a got none of it:\n{s}");
}

/// The mouse: a click selects an agent or a tab, a drag in the well selects the agent's text (not the roster's)
/// and letting go copies it (OSC 52: tmux's buffer with `set-clipboard on`).
#[test]
fn the_mouse_selects_agents_tabs_and_text() {
    let t = Tmux::start(120, 40, "demo");
    t.tmux(&["set", "-g", "set-clipboard", "on"]);
    t.wait_for("the demo's work", |s| {
        roster_line(s, "api").contains("waiting") && s.contains("✔ wrote demo/planner.txt")
    });
    // SGR mouse reports, as a terminal sends them (1-based column;row).
    let mouse = |seq: &str| t.text(seq);
    mouse("\x1b[<0;5;3M\x1b[<0;5;3m");
    t.wait_for("api selected by a click", |s| s.contains("▸◆ api"));
    let s = t.screen();
    let bar = s.lines().position(|l| l.starts_with("─ api ─")).unwrap() + 1;
    let col = s.lines().nth(bar - 1).unwrap().find("timeline").unwrap() + 1;
    mouse(&format!("\x1b[<0;{col};{bar}M\x1b[<0;{col};{bar}m"));
    t.wait_for("the timeline tab", |s| s.contains("[timeline (1)]"));
    mouse(&format!("\x1b[<0;12;{bar}M\x1b[<0;12;{bar}m"));
    t.wait_for("the terminal tab", |s| s.contains("[terminal]"));
    // From "wrote" to the end of its line, dragged to the well's right edge.
    let s = t.wait_for("api's output", |s| s.contains("✔ wrote demo/api.txt (+4)"));
    let y = s.lines().position(|l| l.starts_with("✔ wrote demo/api.txt")).unwrap() + 1;
    mouse(&format!("\x1b[<0;3;{y}M\x1b[<32;40;{y}M\x1b[<32;120;{y}M\x1b[<0;120;{y}m"));
    t.wait_for("copied", |s| s.contains("copied 23 characters, 1 line"));
    let end = Instant::now() + DEADLINE;
    while t.tmux(&["show-buffer"]) != "wrote demo/api.txt (+4)" {
        assert!(Instant::now() < end, "the clipboard has {:?}", t.tmux(&["show-buffer"]));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `r` renames a stopped agent: its crew file entry (comment kept), worktree, branch and checkpoints follow, and
/// it starts again in its new worktree; a running one is refused, saying why.
#[test]
fn a_stopped_agent_is_renamed_from_the_keyboard() {
    let crew = "[[agent]]\nname = \"old\"   # the first one\ncommand = \"bash\"\n";
    let t = Tmux::start_in(120, 40, "-C repo", |dir| crew_repo(dir, crew));
    t.wait_for("old running", |s| roster_line(s, "old").contains("idle") || roster_line(s, "old").contains("busy"));
    t.keys(&["Enter"]);
    t.text("echo work > made.txt");
    t.keys(&["Enter", "C-]"]);
    let repo = t.dir.path().join("repo");
    let end = Instant::now() + DEADLINE;
    while !repo.join(".muster/worktrees/old/made.txt").exists() {
        assert!(Instant::now() < end, "the agent's file");
        std::thread::sleep(Duration::from_millis(50));
    }
    t.keys(&["c"]);
    t.wait_for("a checkpoint", |s| s.contains("timeline (1)"));
    t.keys(&["r"]);
    t.wait_for("refused while it runs", |s| s.contains("old is running: stop it (x) first"));
    t.keys(&["x"]);
    t.wait_for("stopped", |s| {
        let l = roster_line(s, "old");
        l.contains("exited") || l.contains("stopped")
    });
    t.keys(&["r"]);
    t.wait_for("the form", |s| s.contains("a new name") && s.contains("name = \"old\""));
    // The cursor waits before the closing quote.
    for _ in 0..3 {
        t.keys(&["BSpace"]);
    }
    t.text("new");
    t.keys(&["C-s"]);
    t.wait_for("renamed", |s| s.contains("renamed old to new") && roster_line(s, "new").contains("new"));
    assert!(repo.join(".muster/worktrees/new/made.txt").exists() && !repo.join(".muster/worktrees/old").exists());
    let file = std::fs::read_to_string(repo.join(".muster/crew.toml")).unwrap();
    assert_eq!(file, crew.replace("\"old\"", "\"new\""), "the entry renamed, its comment kept");
    let s = t.screen();
    assert!(s.contains("timeline (1)") && !s.contains("crew.toml: new added"), "the same agent, not a new one:\n{s}");
    t.keys(&["R"]);
    t.wait_for("new running", |s| roster_line(s, "new").contains("idle") || roster_line(s, "new").contains("busy"));
    t.keys(&["Enter"]);
    t.text("pwd");
    t.keys(&["Enter"]);
    t.wait_for("its new worktree", |s| s.contains(".muster/worktrees/new"));
}

/// `muster demo`'s gate from the keyboard: api's first plan fails it (the roster says `✗1/3`, the failure waits
/// while api asks its question); answered, api gets the failure, fixes its plan and the gate passes (`✓`); the
/// gates tab (t) lists the runs and shows a run's output, and its whole log on Enter.
#[test]
fn the_demo_gate_fails_steers_and_passes_from_the_keyboard() {
    let t = Tmux::start(120, 40, "demo");
    t.wait_for("api's gate failed", |s| roster_line(s, "api").contains("✗1/3"));
    t.keys(&["j"]);
    t.wait_for("api selected", |s| s.contains("─ api ─"));
    // The failure is mail waiting for api (→), not typed into its question.
    let s = t.wait_for("the question", |s| s.contains("Apply the refactor to demo/api.txt? [y/n]"));
    assert!(!s.contains("from gate"), "{s}");
    t.keys(&["Enter"]);
    t.wait_for("attached", |s| s.contains("ATTACHED"));
    t.keys(&["y", "Enter"]);
    t.wait_for("applied", |s| s.contains("✔ applied"));
    t.keys(&["C-]"]);
    let s = t.wait_for("green", |s| roster_line(s, "api").contains("✓") && s.contains("✔ fixed demo/api.txt"));
    assert!(s.contains("[muster mail #") && s.contains("from gate]"), "{s}");
    t.keys(&["t"]);
    let s = t.wait_for("the gates tab", |s| {
        s.contains("[gates ✓]") && s.contains("✓ pass") && s.contains("✗ fail") && s.contains("api::plan_is_complete")
    });
    assert!(s.contains("the end of its output") && s.contains("test api::plan_is_complete ... ok"), "{s}");
    // The older, failed run: its output names the failure; Enter shows its whole log.
    t.keys(&["j"]);
    t.wait_for("the failed run's output", |s| s.contains("test api::plan_is_complete ... FAILED"));
    t.keys(&["Enter"]);
    t.wait_for("its whole log", |s| s.contains("its whole log") && s.contains("FIXME: greet() has no test yet"));
    t.keys(&["Escape"]);
    t.wait_for("the terminal again", |s| s.contains("─ api ─ [terminal]"));
}

/// Ownership from the keyboard: an agent writes outside its `owns`; the roster counts the finding, `f` lists it,
/// `R` (confirmed) puts exactly that file back and leaves the agent's own change; the count goes down.
#[test]
fn a_write_outside_owns_is_seen_and_restored_from_the_keyboard() {
    let crew =
        "[[agent]]\nname = \"api\"\ncommand = \"bash\"\nargs = [\"--norc\", \"--noprofile\"]\nowns = [\"src/\"]\n";
    let t = Tmux::start_in(120, 40, "-C repo", |dir| crew_repo(dir, crew));
    t.wait_for("api starts", |s| roster_line(s, "api").contains("idle") && roster_line(s, "api").contains("◷1"));
    let wt = t.dir.path().join("repo/.muster/worktrees/api");
    t.keys(&["Enter"]);
    t.text("mkdir -p src && echo mine > src/own.txt && echo theirs > notes.txt");
    t.keys(&["Enter", "C-]"]);
    t.wait_for("the finding on the roster", |s| roster_line(s, "api").contains("⊘ 1 finding (f)"));
    t.keys(&["f"]);
    t.wait_for("the findings tab", |s| {
        s.contains("api · findings") && s.contains("outside owns") && s.contains("notes.txt")
    });
    t.keys(&["R"]);
    t.wait_for("the question", |s| s.contains("Restore notes.txt?"));
    t.keys(&["y"]);
    // Counted down once the restore is done.
    t.wait_for("the count gone", |s| !roster_line(s, "api").contains("finding"));
    assert!(!wt.join("notes.txt").exists(), "the file it made outside its own is gone");
    assert_eq!(std::fs::read_to_string(wt.join("src/own.txt")).unwrap(), "mine\n", "its own change stays");
    let (status, code) = t.muster(&["guard", "status", "--all"]);
    assert!(
        code == 0 && status.contains("notes.txt") && status.contains("[restored: restored from checkpoint 1]"),
        "{status}"
    );
}

/// A crew as waves from the keyboard: wave 2 waits for the operator's word under its heading; `W` on its agent
/// asks, listing what is not done, and `y` starts it.
#[test]
fn a_wave_waiting_for_the_word_starts_on_w_from_the_keyboard() {
    let crew = "[[wave]]\nwave = 2\napprove = true\n\
        [[agent]]\nname = \"first\"\ncommand = \"bash\"\nwave = 1\nargs = [\"-c\", \"echo i am first; exec sleep 600\"]\n\
        [[agent]]\nname = \"second\"\ncommand = \"bash\"\nwave = 2\nargs = [\"-c\", \"echo i am second; exec sleep 600\"]\n";
    let t = Tmux::start_in(120, 40, "-C repo", |dir| crew_repo(dir, crew));
    t.wait_for("wave 2 waiting for the word", |s| {
        s.contains("── wave 2 · wave 2 waits for your word")
            && roster_line(s, "second").contains("pending · wave 2")
            && roster_line(s, "first").contains("idle")
    });
    t.keys(&["j", "W"]);
    t.wait_for("the question", |s| s.contains("Start wave 2?") && s.contains("To start now: second."));
    t.keys(&["y"]);
    t.wait_for("second started", |s| s.contains("i am second") && !roster_line(s, "second").contains("pending"));
    let s = t.screen();
    assert!(s.contains("── wave 2 · 1 of 1 running"), "{s}");
}

/// A lead agent spawns a helper (the demo agent runs `muster spawn` when told `spawn NAME TASK`): the helper
/// appears under its parent in the roster, works its kickoff, and is done with its result beside it.
#[test]
fn a_spawn_from_inside_an_agent_shows_the_child_under_its_parent() {
    let crew = "[[agent]]\nname = \"lead\"\nkind = \"demo\"\n";
    let t = Tmux::start_in(120, 40, "-C repo", |dir| crew_repo(dir, crew));
    t.wait_for("the lead's question", |s| s.contains("[y/n]") && roster_line(s, "lead").contains("waiting"));
    t.keys(&["Enter"]);
    t.keys(&["y", "Enter"]);
    t.keys(&["C-]"]);
    t.wait_for("the lead at its prompt", |s| roster_line(s, "lead").contains("idle"));
    t.keys(&["s"]);
    t.text("spawn helper write the tests");
    t.keys(&["Enter"]);
    let s = t.wait_for("the helper under its parent, done", |s| {
        roster_line(s, "└helper").contains("done") && roster_line(s, "└helper").contains("✓ done: write the tests")
    });
    let lines: Vec<&str> = s.lines().collect();
    let at = |name: &str| lines.iter().position(|l| l.chars().skip(3).collect::<String>().starts_with(name)).unwrap();
    assert!(at("└helper") > at("lead "), "{s}");
    assert!(s.contains("\"name\":\"helper\""), "the lead printed what spawn answered:\n{s}");
    // The keys of the tree: `l` goes to the child (its result in the well's bar), `h` back to the parent, `h`
    // again folds the child out of sight, `l` shows it again.
    t.keys(&["l"]);
    t.wait_for("the child selected, its result in the well", |s| {
        s.lines().any(|l| l.starts_with("─ helper ─") && l.contains("✓ done: write the tests"))
    });
    t.keys(&["h", "h"]);
    t.wait_for("the child folded under its parent", |s| {
        roster_line(s, "lead +1").contains("idle") && !s.contains("└helper")
    });
    t.keys(&["l"]);
    t.wait_for("the child in sight again", |s| roster_line(s, "└helper").contains("done"));
}
