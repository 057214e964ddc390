//! One-shot commands as scripts use them.

use std::process::Command;

/// `muster status | head -1` ends quietly when the reader goes away, as `cat` does.
#[test]
fn status_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    Command::new("git").args(["init", "-q"]).current_dir(repo).output().unwrap();
    // Many agents, so the output is larger than a pipe holds and a write meets the closed pipe.
    let agents: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                r#"{{"spec":{{"name":"agent{i}","kind":"shell","command":"sh","args":[],"resume_args":[],"prompt_args":[],"env":{{}},"prompt":null,"base":null,"worktree":true,"enter_delay_ms":0,"hooks":null}},"branch":"muster/agent{i}","base":"main","worktree":"/x","state":"stopped","exit":null,"ran":true,"port_base":20000}}"#
            )
        })
        .collect();
    std::fs::create_dir_all(repo.join(".muster")).unwrap();
    std::fs::write(repo.join(".muster/state.json"), format!(r#"{{"version":1,"agents":[{}]}}"#, agents.join(",")))
        .unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("'{}' status | head -1", env!("CARGO_BIN_EXE_muster")))
        .current_dir(repo)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("agent0 "), "{stdout}");
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
}

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| Command::new("git").args(args).current_dir(dir.path()).output().unwrap();
    git(&["init", "-q", "-b", "main"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "init"]);
    std::fs::create_dir_all(dir.path().join(".muster")).unwrap();
    dir
}

/// Run muster in `dir` with no terminal, its config and state folders inside `dir`.
fn muster(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    std::fs::create_dir_all(dir.join(".run")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_muster"))
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join(".config-home"))
        .env("XDG_STATE_HOME", dir.join(".state-home"))
        .env("XDG_RUNTIME_DIR", dir.join(".run"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A crew file that is not text, not a file, or not readable is an error naming it, never a silent "no agents".
#[test]
fn an_unusable_crew_file_is_an_error_that_names_it() {
    let dir = repo();
    let crew = dir.path().join(".muster/crew.toml");
    std::fs::write(&crew, b"[[agent]]\nname = \"a\xff\"\n").unwrap();
    let (ok, out) = muster(dir.path(), &[]);
    assert!(!ok && out.contains(".muster/crew.toml:2:10: not UTF-8"), "{out}");
    std::fs::write(&crew, [0u8, 159, 146, 150, 0, 1, 2]).unwrap();
    let (ok, out) = muster(dir.path(), &[]);
    assert!(!ok && out.contains(".muster/crew.toml:1:2: not UTF-8"), "{out}");
    std::fs::remove_file(&crew).unwrap();
    std::fs::create_dir(&crew).unwrap();
    let (ok, out) = muster(dir.path(), &[]);
    assert!(!ok && out.contains(".muster/crew.toml:1:1: is a folder"), "{out}");
    std::fs::remove_dir(&crew).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &crew).unwrap();
    let (ok, out) = muster(dir.path(), &[]);
    assert!(!ok && out.contains("not a regular file"), "{out}");
    // A file that cannot be read, even by root: /proc/self/mem fails at offset 0.
    std::fs::remove_file(&crew).unwrap();
    std::os::unix::fs::symlink("/proc/self/mem", &crew).unwrap();
    let (ok, out) = muster(dir.path(), &[]);
    assert!(!ok && out.contains(".muster/crew.toml:1:1: reading") && out.contains("error"), "{out}");
}

/// `muster status` on a state file it cannot read says so and fails, and leaves the file where it is; a FIFO or
/// a link to /dev/zero is refused at once.
#[test]
fn status_on_a_bad_state_file_fails_and_keeps_the_file() {
    let dir = repo();
    let state = dir.path().join(".muster/state.json");
    std::fs::write(&state, "{ not json").unwrap();
    let (ok, out) = muster(dir.path(), &["status"]);
    assert!(!ok && out.contains("state.json is malformed"), "{out}");
    assert!(state.exists() && !dir.path().join(".muster/state.json.bad").exists());
    std::fs::write(&state, b"{\"version\": 1, \"agents\": [\xfe]}").unwrap();
    let (ok, out) = muster(dir.path(), &["status"]);
    assert!(!ok && out.contains("not UTF-8"), "{out}");
    std::fs::remove_file(&state).unwrap();
    assert!(Command::new("mkfifo").arg(&state).status().unwrap().success());
    let (ok, out) = muster(dir.path(), &["status"]);
    assert!(!ok && out.contains("not a regular file"), "{out}");
    std::fs::remove_file(&state).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &state).unwrap();
    let (ok, out) = muster(dir.path(), &["status"]);
    assert!(!ok && out.contains("symbolic link"), "{out}");
}

/// A `.muster` committed as a symlink is refused with a message, and nothing is written where it points.
#[test]
fn a_symlinked_muster_folder_is_refused() {
    let dir = repo();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::remove_dir(dir.path().join(".muster")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(".muster")).unwrap();
    for args in [&[][..], &["status"], &["init"]] {
        let (ok, out) = muster(dir.path(), args);
        assert!(!ok && out.contains("symbolic link"), "{args:?}: {out}");
    }
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

/// `muster removed` lists what removed agents left and how to bring a branch back; `--prune` forgets it.
#[test]
fn removed_agents_are_listed_and_pruned_from_the_command_line() {
    let dir = repo();
    let root = muster::git::worktree::find_repo_root(dir.path()).unwrap();
    let wt = muster::git::worktree::ensure_worktree(&root, "w", None).unwrap();
    std::fs::write(wt.path.join("f"), "work\n").unwrap();
    muster::git::checkpoint::create(&wt.path, "w", "test").unwrap();
    muster::git::worktree::remove_worktree(&root, "w", "main", true).unwrap();
    let (ok, out) = muster(dir.path(), &["removed"]);
    assert!(ok && out.contains("w ") && out.contains("1 checkpoint ") && out.contains("removed just now"), "{out}");
    assert!(out.contains("git branch w-restored refs/muster/removed/w/"), "{out}");
    let (ok, out) = muster(dir.path(), &["removed", "--prune", "w"]);
    assert!(ok && out.contains("forgot 2 refs"), "{out}");
    let (_, out) = muster(dir.path(), &["removed"]);
    assert!(!out.contains("w "), "{out}");
}

/// Without a server: `server status` says so (exit 3), `server stop` has nothing to do, `ls` lists nothing, and
/// `schema` prints the script API's JSON Schema: its requests and its answers.
#[test]
fn server_commands_without_a_server_and_the_schema() {
    let dir = repo();
    let out = Command::new(env!("CARGO_BIN_EXE_muster"))
        .args(["server", "status"])
        .current_dir(dir.path())
        .env("XDG_RUNTIME_DIR", dir.path().join(".run"))
        .env("XDG_STATE_HOME", dir.path().join(".state-home"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("not running for "));
    let (ok, text) = muster(dir.path(), &["server", "stop", "--yes"]);
    assert!(ok && text.starts_with("not running"), "{text}");
    let (ok, text) = muster(dir.path(), &["ls"]);
    assert!(ok && text.contains("no muster runs"), "{text}");
    let (ok, text) = muster(dir.path(), &["schema"]);
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(ok && schema["request"]["oneOf"].as_array().is_some_and(|a| a.len() == 15), "{text}");
    assert!(schema["answer"]["oneOf"].as_array().is_some_and(|a| a.len() == 16), "{text}");
    assert_eq!(schema["version"], 5, "{text}");
}

/// Without a server the operator's mailbox still works from its database; an agent's mail needs the server
/// (its identity is checked there); a corrupt database is a clear error and the rest of muster works on.
#[test]
fn mail_without_a_server_and_with_a_corrupt_database() {
    let dir = repo();
    std::fs::write(dir.path().join(".muster/crew.toml"), "[[agent]]\nname = \"api\"\ncommand = \"bash\"\n").unwrap();
    let (ok, text) = muster(dir.path(), &["mail", "send", "--to", "api", "--expires", "600", "hello"]);
    assert!(ok && text.trim() == "#1", "{text}");
    let (ok, text) = muster(dir.path(), &["mail", "status", "1"]);
    assert!(ok && text.contains("api: queued") && text.contains("history:"), "{text}");
    let (ok, text) = muster(dir.path(), &["mail", "send", "--to", "nobody", "x"]);
    assert!(!ok && text.contains("no agent named nobody"), "{text}");
    let (ok, text) = muster(dir.path(), &["mail", "wait", "1", "--until", "delivered", "--timeout", "0.1"]);
    assert!(!ok && text.is_empty(), "{text}");
    let (ok, text) = muster(dir.path(), &["mail", "drop", "1"]);
    assert!(ok && text.contains("#1 to api: dropped"), "{text}");
    let (ok, text) = muster(dir.path(), &["mail", "wait", "1", "--until", "delivered"]);
    assert!(!ok && text.contains("#1 to api: dropped"), "a copy that cannot arrive ends the wait: {text}");
    let (ok, text) = muster(dir.path(), &["mail", "inbox", "--json"]);
    assert!(ok && text.trim() == "[]", "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_muster"))
        .args(["mail", "send", "--to", "operator", "hi"])
        .current_dir(dir.path())
        .env("XDG_RUNTIME_DIR", dir.path().join(".run"))
        .env("MUSTER_AGENT", "api")
        .env("MUSTER_RUN_DIR", dir.path().join(".run/nothing-here"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("an agent's mail goes through the server"), "{err}");
    std::fs::write(dir.path().join(".muster/mail.db"), vec![b'x'; 4096]).unwrap();
    for f in ["mail.db-wal", "mail.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(".muster").join(f));
    }
    let (ok, text) = muster(dir.path(), &["mail", "inbox"]);
    assert!(!ok && text.contains("not a readable mail database") && text.contains("move it aside"), "{text}");
    let (ok, text) = muster(dir.path(), &["status", "--json"]);
    assert!(ok && text.contains("\"agents\""), "the rest works on: {text}");
}

/// Every process under `root` (its children, theirs, …), by its parent links in /proc.
fn descendants(root: u32) -> Vec<(i32, String)> {
    let procs: Vec<(i32, i32, String)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let parent = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            Some((pid, parent, String::from_utf8_lossy(&cmd).replace('\0', " ")))
        })
        .collect();
    let mut found: Vec<(i32, String)> = Vec::new();
    let mut frontier = vec![root as i32];
    while let Some(p) = frontier.pop() {
        for (pid, _, cmd) in procs.iter().filter(|(_, parent, _)| *parent == p) {
            found.push((*pid, cmd.clone()));
            frontier.push(*pid);
        }
    }
    found
}

/// `muster bench` stopped by a signal (Ctrl-C, `timeout`) leaves none of its agents running (they live in
/// sessions of their own, out of the terminal's reach), nor its servers, nor its repositories.
#[test]
fn a_bench_stopped_by_a_signal_ends_what_it_started() {
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let mut bench = Command::new(env!("CARGO_BIN_EXE_muster"))
        .args(["bench", "--server-only", "--agents", "2", "--seconds", "1"])
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    let started = loop {
        let all = descendants(bench.id());
        if all.iter().filter(|(_, cmd)| cmd.contains("demo-agent")).count() >= 2 {
            break all;
        }
        assert!(Instant::now() < end, "the bench's agents never started: {all:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let pid = rustix::process::Pid::from_raw(bench.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = bench.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < end, "the bench did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(128 + 15), "it ended what it started and exited: {status:?}");
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let left: Vec<_> = started.iter().filter(|(p, _)| !muster::pty::tree::ended(*p)).collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < end, "still running: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its repositories; `muster-<uid>` is every server's run folder (sockets), not the bench's.
    let kept: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    let ours =
        |n: &std::ffi::OsString| ["muster-bench-", "muster-demo-"].iter().any(|o| n.to_string_lossy().starts_with(o));
    assert!(!kept.iter().any(ours), "left behind: {kept:?}");
}

/// Before the crew's first run, `muster status` lists the crew file's agents (it printed nothing), and a broken
/// crew file is an error naming where (it was accepted silently).
#[test]
fn status_before_the_first_run_lists_the_crew_and_refuses_a_broken_file() {
    let dir = repo();
    let crew: String = (0..10).map(|i| format!("[[agent]]\nname = \"a{i}\"\ncommand = \"bash\"\n")).collect();
    std::fs::write(dir.path().join(".muster/crew.toml"), crew).unwrap();
    let (ok, out) = muster(dir.path(), &["status"]);
    assert!(ok, "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("stopped (never started)")).count(), 10, "{out}");
    std::fs::write(dir.path().join(".muster/crew.toml"), "[[agent]]\nname = \"a\"\ncommand = 3\n").unwrap();
    let (ok, out) = muster(dir.path(), &["status"]);
    assert!(!ok && out.contains("crew.toml:3:"), "{out}");
}

/// Stops the crew a test started, whatever happened to the test.
struct Down<'a>(&'a std::path::Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = muster(self.0, &["down"]);
    }
}

/// A crew without a workbench, as a script or CI runs one: `up --detach` starts the server and the agents and
/// returns once they run; `send`, `wait` and `status` reach them; `down` stops them and the server; a second
/// `up` after that resumes the same crew.
#[test]
fn up_send_wait_down_without_a_workbench() {
    let dir = repo();
    std::fs::write(
        dir.path().join(".muster/crew.toml"),
        "[[agent]]\nname = \"a\"\ncommand = \"bash\"\n[[agent]]\nname = \"b\"\ncommand = \"bash\"\n",
    )
    .unwrap();
    let _down = Down(dir.path());
    let (ok, text) = muster(dir.path(), &["up", "--detach"]);
    assert!(ok, "{text}");
    assert!(text.lines().any(|l| l.starts_with("a ")) && text.lines().any(|l| l.starts_with("b ")), "{text}");
    let (ok, text) = muster(dir.path(), &["send", "a", "echo hello from up"]);
    assert!(ok && text.trim() == "sent", "{text}");
    let (ok, text) = muster(dir.path(), &["wait", "a", "b", "--until", "idle", "--timeout", "30"]);
    assert!(ok, "{text}");
    let (ok, text) = muster(dir.path(), &["server", "status"]);
    assert!(ok && text.contains("running: pid"), "{text}");
    let (ok, text) = muster(dir.path(), &["down"]);
    assert!(ok && text.starts_with("stopped") && text.contains("2 agents"), "{text}");
    let (ok, text) = muster(dir.path(), &["server", "status"]);
    assert!(!ok && text.starts_with("not running"), "{text}");
    // Both ran before: a second `up` starts them again (a workbench would leave them for R).
    let (ok, text) = muster(dir.path(), &["up", "--detach"]);
    assert!(ok, "{text}");
    let (ok, text) = muster(dir.path(), &["status"]);
    assert!(ok && text.lines().filter(|l| l.contains(" idle") || l.contains(" busy")).count() == 2, "{text}");
}

/// With no agent in the crew file there is nothing to bring up: said, exit 1, no server left behind.
#[test]
fn up_with_no_agents_says_so() {
    let dir = repo();
    let (ok, text) = muster(dir.path(), &["up", "--detach"]);
    assert!(!ok && text.contains("no agents"), "{text}");
    let (ok, _) = muster(dir.path(), &["server", "status"]);
    assert!(!ok);
}

/// `add` and `rm` for scripts, through the crew's server (started for them when none runs): the crew file keeps
/// its comments; a taken name or an unknown kind is refused and changes nothing; an agent added with --start
/// runs at once; `rm` takes its entry out again.
#[test]
fn add_and_rm_keep_the_crew_file_as_a_person_wrote_it() {
    let dir = repo();
    let file = dir.path().join(".muster/crew.toml");
    std::fs::write(&file, "# our crew\n[[agent]]\nname = \"a\"   # the first\ncommand = \"bash\"\n").unwrap();
    let _down = Down(dir.path());
    let (ok, text) = muster(dir.path(), &["add", "b", "--command", "bash"]);
    assert!(ok && text.contains("added b"), "{text}");
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.starts_with("# our crew\n[[agent]]\nname = \"a\"   # the first\ncommand = \"bash\"\n"),
        "{written}"
    );
    assert!(written.ends_with("[[agent]]\nname = \"b\"\ncommand = \"bash\"\n"), "{written}");
    let (ok, text) = muster(dir.path(), &["add", "b", "--command", "bash"]);
    assert!(!ok && text.contains("`b` is in the crew already"), "{text}");
    // A copy: the entry as it is, under its new name; then gone again.
    let (ok, text) = muster(dir.path(), &["add", "b2", "--like", "b"]);
    assert!(ok && text.contains("added b2, a copy of b"), "{text}");
    let copied = std::fs::read_to_string(&file).unwrap();
    assert_eq!(copied, format!("{written}\n[[agent]]\nname = \"b2\"\ncommand = \"bash\"\n"));
    let (ok, text) = muster(dir.path(), &["add", "b3", "--like", "nobody"]);
    assert!(!ok && text.contains("no agent `nobody` in the crew file"), "{text}");
    let (ok, text) = muster(dir.path(), &["rm", "b2"]);
    assert!(ok && text.contains("removed b2"), "{text}");
    let (ok, text) = muster(dir.path(), &["add", "c", "--kind", "nosuch"]);
    assert!(!ok && text.contains("unknown preset `nosuch`"), "{text}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written, "a refused change writes nothing");
    let (ok, text) = muster(dir.path(), &["add", "d", "--command", "bash", "--start"]);
    assert!(ok && text.contains("added d and started it"), "{text}");
    let (ok, text) = muster(dir.path(), &["wait", "d", "--until", "idle", "--timeout", "30"]);
    assert!(ok, "{text}");
    let (ok, text) = muster(dir.path(), &["status"]);
    assert!(
        ok && text.lines().any(|l| l.starts_with("a ") && l.contains("never started")),
        "nothing else starts:\n{text}"
    );
    let (ok, text) = muster(dir.path(), &["rm", "d"]);
    assert!(ok && text.contains("removed d"), "{text}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written, "its entry went with it");
    let (ok, text) = muster(dir.path(), &["status"]);
    assert!(ok && !text.lines().any(|l| l.starts_with("d ")), "{text}");
}

/// `muster guard check` (ownership, for CI): what an agent's branch and worktree changed outside its `owns` or in
/// the crew's `shared` files, and agents that own a same file; exit 1 then, 0 when every agent kept to its files.
#[test]
fn guard_check_lists_what_an_agent_changed_outside_its_files() {
    let dir = repo();
    let root = dir.path();
    let git = |cwd: &std::path::Path, args: &[&str]| {
        let o = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@e"])
            .args(args)
            .current_dir(cwd)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    for f in ["src/api/a.rs", "src/ui/b.rs", "Cargo.lock"] {
        std::fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
        std::fs::write(root.join(f), "x\n").unwrap();
    }
    git(root, &["add", "src", "Cargo.lock"]);
    git(root, &["commit", "-qm", "files"]);
    let crew = "[defaults]\nshared = ['Cargo.lock']\n[[agent]]\nname = 'api'\nkind = 'shell'\nowns = ['src/api/']\n\
                [[agent]]\nname = 'ui'\nkind = 'shell'\nowns = ['src/ui/', 'docs/']\n";
    std::fs::write(root.join(".muster/crew.toml"), crew).unwrap();
    let wt = root.join(".muster/worktrees/api");
    git(root, &["worktree", "add", "-q", "-b", "muster/api", wt.to_str().unwrap()]);
    std::fs::write(wt.join("src/api/a.rs"), "mine\n").unwrap();
    git(&wt, &["commit", "-qam", "api work"]);
    std::fs::write(wt.join("src/ui/b.rs"), "not mine\n").unwrap();
    std::fs::write(wt.join("Cargo.lock"), "locked\n").unwrap();
    let (ok, text) = muster(root, &["guard", "check"]);
    assert!(!ok, "{text}");
    assert!(text.contains("api: changed src/ui/b.rs outside its owns"), "{text}");
    assert!(text.contains("api: changed Cargo.lock (shared"), "{text}");
    assert!(!text.contains("src/api/a.rs outside"), "{text}");
    assert!(text.contains("ui: not checked") && text.contains("owns pattern `docs/` takes no file"), "{text}");
    // Overlapping owns are named; JSON for scripts.
    std::fs::write(root.join(".muster/crew.toml"), crew.replace("'src/ui/', 'docs/'", "'src/'")).unwrap();
    let (ok, text) = muster(root, &["guard", "check", "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(&text[..text.rfind('}').unwrap() + 1]).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(!ok && v["overlaps"][0] == serde_json::json!(["api", "ui", "src/api/a.rs"]), "{text}");
    // And such a crew does not start: the place of the second agent's `owns` is named.
    let (ok, text) = muster(root, &["up", "--detach"]);
    assert!(
        !ok && text.contains(".muster/crew.toml:10:8: key `owns`: `ui` and `api` both own `src/api/a.rs`"),
        "{text}"
    );
    // Kept to its files: 0.
    std::fs::write(wt.join("src/ui/b.rs"), "x\n").unwrap();
    std::fs::write(wt.join("Cargo.lock"), "x\n").unwrap();
    std::fs::write(root.join(".muster/crew.toml"), crew.replace(", 'docs/'", "")).unwrap();
    let (ok, text) = muster(root, &["guard", "check"]);
    assert!(!text.contains("outside"), "{text}");
    // The ui agent has no branch yet: said, and not counted as a finding.
    assert!(ok && text.contains("every agent checked kept to its files"), "{text}");
    // A bad pattern is an error at its place.
    std::fs::write(root.join(".muster/crew.toml"), "[[agent]]\nname = 'a'\nkind = 'shell'\nowns = ['src/[']\n")
        .unwrap();
    let (ok, text) = muster(root, &["guard", "check"]);
    assert!(!ok && text.contains("crew.toml:4:8") && text.contains("key `owns`: pattern 1"), "{text}");
}

/// `muster agents`: the manifests with the repository's and the user's overrides, one shown whole, and the state
/// a screen reads as — from text or from a terminal's raw output (its title and progress report too).
#[test]
fn agent_manifests_are_listed_shown_tested_and_overridden() {
    let dir = repo();
    let agents = dir.path().join(".muster/agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(
        agents.join("mine.toml"),
        "name = 'My agent'\ncommand = 'my-agent'\n[[rules]]\nname = 'thinking'\nstate = 'busy'\nregion = 'progress'\n\
         regex = '^3;'\n[[rules]]\nname = 'ask'\nstate = 'waiting'\nregion = 'title'\nregex = 'needs you'\n",
    )
    .unwrap();
    std::fs::write(agents.join("claude.toml"), "enter_delay_ms = 999\n").unwrap();
    std::fs::write(agents.join("codex.toml"), "[[rules]]\nname = 'x'\nstate = 'idle'\nregex = '('\n").unwrap();
    let (ok, out) = muster(dir.path(), &["agents", "list"]);
    assert!(ok, "{out}");
    assert!(out.contains("warning: .muster/agents/codex.toml:4:9: ignored: agent `codex`: bad regex"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("mine ") && l.contains("My agent") && l.contains("community")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("claude ") && l.contains("built in + ")), "{out}");
    let (ok, out) = muster(dir.path(), &["agents", "show", "claude"]);
    assert!(ok && out.contains("enter delay          999 ms") && out.contains("permission"), "{out}");
    let (ok, out) = muster(dir.path(), &["agents", "show", "nobody"]);
    assert!(!ok && out.contains("no agent manifest `nobody` (known: aider, amp"), "{out}");

    let screens = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens");
    let permission = screens.join("claude-turn-permission.txt");
    let (ok, out) = muster(dir.path(), &["agents", "test", "claude", "--screen", permission.to_str().unwrap()]);
    assert!(ok && out.contains("waiting — screen rule `permission` of claude"), "{out}");
    let (ok, out) = muster(dir.path(), &["agents", "test", "codex", "--screen", permission.to_str().unwrap()]);
    assert!(!ok && out.contains("no rule of codex matches"), "the ignored override left codex as built:\n{out}");
    // A raw recording: its title and its progress report are regions too.
    let raw = dir.path().join("raw.bin");
    std::fs::write(&raw, b"\x1b]0;my agent\x07\x1b]9;4;3;0\x07\x1b[2J\x1b[Hworking\r\n").unwrap();
    let (ok, out) = muster(dir.path(), &["agents", "test", "mine", "--screen", raw.to_str().unwrap()]);
    assert!(ok && out.contains("busy — screen rule `thinking` of mine"), "{out}");
    std::fs::write(&raw, b"\x1b]9;4;0;0\x07\x1b]2;mine needs you\x07text").unwrap();
    let (ok, out) = muster(dir.path(), &["agents", "test", "mine", "--screen", raw.to_str().unwrap()]);
    assert!(ok && out.contains("waiting — screen rule `ask` of mine"), "{out}");
    // The user's folder counts too, under the repository's.
    let user = dir.path().join(".config-home/muster/agents");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(user.join("claude.toml"), "boot_timeout_s = 30\nenter_delay_ms = 5\n").unwrap();
    let (ok, out) = muster(dir.path(), &["agents", "show", "claude"]);
    assert!(ok && out.contains("boot timeout         30 s") && out.contains("enter delay          999 ms"), "{out}");
}
