//! `muster bench`: figures for BENCHMARKS.md, measured on this machine in one run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::app::{update, AgentView, Msg, State};
use crate::config::keymap::Keymap;
use crate::config::theme::{ColorMode, Theme};
use crate::engine::{self, AgentInfo, AgentState, Command, EngineConfig};
use crate::pty::NativePty;
use crate::term::{AlacrittyModel, TerminalModel};

mod floods;
mod gates;
mod guard;
mod lead;
mod mail;
mod rules;

/// CPU time of every thread of this process, in nanoseconds (precise, unlike clock ticks).
fn process_cpu_ns() -> u64 {
    cpu_ns_of("self")
}

/// CPU time of every thread of process `pid` ("self" for this one), in nanoseconds.
fn cpu_ns_of(pid: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()))
        .sum()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn coloured_stream(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 256);
    let mut n = 0u64;
    while out.len() < bytes {
        for w in 0..8u64 {
            out.extend_from_slice(
                format!(
                    "\x1b[38;5;{}m\x1b[48;2;{};{};40mword{w:02}\x1b[0m ",
                    (n * 8 + w) % 216 + 16,
                    (n * 7) % 256,
                    (w * 30) % 256
                )
                .as_bytes(),
            );
        }
        out.extend_from_slice(format!("{n}\r\n").as_bytes());
        n += 1;
    }
    out
}

fn plain_stream(bytes: usize) -> Vec<u8> {
    let line = b"the quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuvwxyz\r\n";
    line.iter().copied().cycle().take(bytes).collect()
}

fn throughput(data: &[u8]) -> f64 {
    let mut model = AlacrittyModel::new(50, 200, 10_000);
    let start = Instant::now();
    for chunk in data.chunks(64 * 1024) {
        model.feed(chunk);
    }
    let _ = model.take_replies();
    // What is left of the flood in history is deflated once it has stopped: counted as part of the flood.
    model.compact_history(Instant::now() + crate::term::history::SEAL_AFTER);
    data.len() as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// The same output through alacritty alone, keeping its own 10,000-line history (how muster was before the
/// compact history): the cost of copying rows into it, in the same run.
fn alacritty_alone_throughput(data: &[u8]) -> f64 {
    use alacritty_terminal::event::VoidListener;
    use alacritty_terminal::term::{Config, Term};
    use alacritty_terminal::vte::ansi::{Processor, StdSyncHandler};
    struct Size;
    impl alacritty_terminal::grid::Dimensions for Size {
        fn total_lines(&self) -> usize {
            50
        }
        fn screen_lines(&self) -> usize {
            50
        }
        fn columns(&self) -> usize {
            200
        }
    }
    let config = Config { scrolling_history: 10_000, ..Config::default() };
    let mut term = Term::new(config, &Size, VoidListener);
    let mut parser: Processor<StdSyncHandler> = Processor::new();
    let start = Instant::now();
    for chunk in data.chunks(64 * 1024) {
        parser.advance(&mut term, chunk);
    }
    data.len() as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// A frame of an agent streaming into the well as the workbench draws it (two new coloured lines a frame: the
/// terminal scrolls, the new rows are painted): the figure a streaming agent costs per frame.
fn streaming_frame_time(agents: usize) -> Duration {
    let mut state = bench_state(agents, None);
    let well = crate::ui::layout::areas(200, 50, agents, true, false).terminal.expect("a well at 200x50");
    let mut model = AlacrittyModel::new(well.height, well.width, 1000);
    let lines: Vec<Vec<u8>> = coloured_stream(400_000).split(|b| *b == b'\n').map(|l| [l, b"\n"].concat()).collect();
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).expect("test backend");
    let mut painter = crate::ui::well_painter::WellPainter::default();
    let name = state.agents[0].info.name.clone();
    let mut spent = Duration::ZERO;
    let mut frames = 0u32;
    for pair in lines.chunks(2) {
        pair.iter().for_each(|l| model.feed(l));
        let frame = model.live_frame();
        let start = Instant::now();
        crate::tui::frame_after_screen(&mut terminal, &mut state, &mut painter, name.clone(), frame).expect("draw");
        spent += start.elapsed();
        frames += 1;
    }
    spent / frames.max(1)
}

/// Lines and bytes of a full 10,000-line history of the coloured stream.
fn history_weight() -> (usize, usize) {
    let mut model = AlacrittyModel::new(50, 200, 10_000);
    for chunk in coloured_stream(6_000_000).chunks(64 * 1024) {
        model.feed(chunk);
    }
    model.compact_history(Instant::now() + crate::term::history::SEAL_AFTER);
    (model.history_size(), model.history_bytes())
}

/// `/` over `agents` full 10,000-line coloured histories, one after another, as the server runs it (every row
/// read back as text, the regex over every line): the time for a rare pattern and for one on every line, and
/// the matches of the rare one.
fn search_time(agents: usize) -> (Duration, Duration, usize) {
    use crate::term::search;
    let stream = coloured_stream(6_000_000);
    let models: Vec<AlacrittyModel> = (0..agents)
        .map(|_| {
            let mut model = AlacrittyModel::new(50, 200, 10_000);
            stream.chunks(64 * 1024).for_each(|c| model.feed(c));
            model.compact_history(Instant::now() + crate::term::history::SEAL_AFTER);
            model
        })
        .collect();
    let run = |pattern: &str| {
        let re = search::compile(pattern).expect("a regex");
        let start = Instant::now();
        let mut found = 0;
        for model in &models {
            let rows = model.text_rows(0, model.buffer_rows());
            let hits = search::find_all(&rows, 0, &re);
            found += hits.len();
            std::hint::black_box(search::pick(&hits, Default::default(), false));
        }
        (start.elapsed(), found)
    };
    let (rare, found) = run(r"\b12345\b");
    let (common, _) = run("word03");
    (rare, common, found)
}

fn guard_throughput(data: &[u8]) -> f64 {
    let mut guard = crate::term::guard::OutputGuard::default();
    let start = Instant::now();
    let mut kept = 0;
    for chunk in data.chunks(64 * 1024) {
        kept += guard.filter(chunk).len();
    }
    std::hint::black_box(kept);
    data.len() as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// A workbench at 200x50 with `agents` busy demo agents, each showing `screen`.
fn bench_state(agents: usize, screen: Option<std::sync::Arc<crate::term::Screen>>) -> State {
    let mut state =
        State::new("bench".into(), Keymap::builtin(), Theme::builtin("default", ColorMode::TrueColor), (200, 50));
    for i in 0..agents {
        let info = AgentInfo {
            worktree: "/tmp".into(),
            last_output_ms: Some(0),
            title: Some("bench".into()),
            port_base: 20000,
            ..AgentInfo::new(&crate::demo::agent_name(i), "demo", AgentState::Busy)
        };
        state.agents.push(AgentView {
            info,
            screen: screen.clone(),
            checkpoints: Vec::new(),
            attention: false,
            unseen: false,
            in_turn: false,
        });
    }
    update(&mut state, Msg::Resize(200, 50));
    state
}

fn frame_time(agents: usize) -> Duration {
    let mut model = AlacrittyModel::new(50, 200, 1000);
    model.feed(&coloured_stream(200_000));
    let state = bench_state(agents, Some(std::sync::Arc::new(model.snapshot())));
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).expect("test backend");
    let n = 300;
    let start = Instant::now();
    for _ in 0..n {
        terminal.draw(|f| crate::ui::render(&state, f)).expect("draw");
    }
    start.elapsed() / n
}

/// What a benchmark's engine runs with: 10,000 lines of scrollback, no periodic checkpoints to speak of.
fn bench_config(root: &std::path::Path, crew: crate::config::crew::Crew) -> Result<EngineConfig> {
    Ok(EngineConfig {
        root: root.to_path_buf(),
        crew,
        scrollback: 10_000,
        muster_exe: std::env::current_exe()?,
        stop_grace: Duration::from_secs(2),
        palette: Default::default(),
        checkpoint_every: Duration::from_secs(300),
    })
}

/// Run `agents` copies of the demo agent with the given arguments and measure this process's CPU.
fn crew_cpu(agents: usize, args: &[&str], seconds: u64) -> Result<(f64, u64, usize)> {
    let parent = std::env::temp_dir();
    let root = crate::demo::create_repo(&parent, 1)?;
    let mut toml = String::new();
    for i in 0..agents {
        let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        toml.push_str(&format!("[[agent]]\nname = \"a{i}\"\nkind = \"demo\"\nargs = [{}]\n", args.join(", ")));
    }
    std::fs::write(root.join(".muster/crew.toml"), &toml)?;
    let (crew, _, _) = crate::config::load_crew(&root)?;
    let rss_before = rss_kib();
    let (tx, rx) = crate::tui::channel();
    let cfg = bench_config(&root, crew)?;
    let sink = engine::one_viewer(move |e| {
        let _ = tx.send(crate::tui::AppMsg::Engine(e));
    });
    let handle = engine::supervisor::start(cfg, Arc::new(NativePty), sink)?;
    let mut state =
        State::new("bench".into(), Keymap::builtin(), Theme::builtin("default", ColorMode::TrueColor), (200, 50));
    update(&mut state, Msg::Resize(200, 50));
    if let Some((name, rows, cols, also)) = state.watching.clone() {
        handle.send(Command::Watch { name, rows, cols, also });
    }
    handle.send(Command::StartCrew);
    let measurer = handle.clone();
    let result = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        let cpu0 = process_cpu_ns();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(seconds));
        let cpu = (process_cpu_ns() - cpu0) as f64 / t0.elapsed().as_nanos() as f64 * 100.0;
        let rss = rss_kib();
        measurer.send(Command::Shutdown);
        (cpu, rss)
    });
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).context("test backend")?;
    let mut frames = 0usize;
    crate::tui::event_loop(&mut terminal, &mut state, &handle.commands(), &rx, || frames += 1)?;
    let (cpu, rss) = result.join().map_err(|_| anyhow::anyhow!("measuring thread panicked"))?;
    let _ = std::fs::remove_dir_all(&root);
    Ok((cpu, rss.saturating_sub(rss_before) / agents.max(1) as u64, frames))
}

fn write_tree(root: &std::path::Path, files: usize) -> Result<()> {
    for i in 0..files {
        let dir = root.join(format!("src/m{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir)?;
        }
        std::fs::write(dir.join(format!("f{i}.rs")), format!("// file {i}\npub fn f{i}() -> usize {{\n    {i}\n}}\n"))?;
    }
    Ok(())
}

fn sh(dir: &std::path::Path, script: &str) -> Result<Duration> {
    let start = Instant::now();
    let out = std::process::Command::new("sh").arg("-c").arg(script).current_dir(dir).output()?;
    anyhow::ensure!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(start.elapsed())
}

fn touch_files(root: &std::path::Path, files: usize, changed: usize, round: usize) -> Result<()> {
    let step = (files / changed.max(1)).max(1);
    for i in (0..files).step_by(step).take(changed) {
        let p = root.join(format!("src/m{:03}/f{i}.rs", i / 100));
        let mut text = std::fs::read_to_string(&p)?;
        text.push_str(&format!("// change {round}\n"));
        std::fs::write(&p, text)?;
    }
    Ok(())
}

/// Checkpoint and rollback latency against `git add -A && git commit` on a copy, in one run. A checkpoint is
/// timed as the engine takes it: the watcher's changes (barrier included), then the snapshot; and once more
/// without a watcher (every file looked at), as the command line takes it.
pub fn checkpoints(cases: &[(usize, usize)]) -> Result<()> {
    use crate::git::checkpoint;
    use crate::git::watch::WorktreeWatch;
    println!(
        "checkpoint latency (files in repo, files changed): muster checkpoint (watched) | (scanning every file) | \
         muster rollback | git add -A && git commit on a copy"
    );
    let mut made = Vec::new();
    for &(files, changed) in cases {
        let (dir, repo) = committed_repo(files)?;
        sh(&dir, "cp -a repo copy")?;
        let copy = dir.join("copy");
        // As in a real repository, files are older than the index that describes them: refresh the copy's
        // stat cache (new inodes) and let the one-second "racily clean" window pass, untimed, for both sides.
        sh(&copy, "git update-index -q --refresh")?;
        std::thread::sleep(Duration::from_millis(1100));
        sh(&copy, "git update-index -q --really-refresh")?;
        let watch = WorktreeWatch::new(&repo)?;
        let (first, _) = checkpoint::create_with(&repo, "bench", "first", &watch.take())?;
        checkpoint::create(&repo, "scan", "first")?;
        std::thread::sleep(Duration::from_millis(1100));
        // Three rounds each, medians: single figures on this filesystem swing with inode allocation.
        let median = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (mut watched, mut scanned, mut gits) = (Vec::new(), Vec::new(), Vec::new());
        for round in 1..=3 {
            touch_files(&repo, files, changed, round)?;
            touch_files(&copy, files, changed, round)?;
            let t = Instant::now();
            // As the engine takes it: the agent runs on, and what changed while it read is read again.
            let (cp, new) = WorktreeWatch::checkpoint_settled(Some(&watch), &Vec::new, |c, again| {
                checkpoint::create_settled(&repo, "bench", "bench", c, again)
                    .map(|(cp, new, s)| ((cp, new), s.unsettled))
            })?;
            watched.push(t.elapsed());
            anyhow::ensure!(new && cp.files == changed, "checkpoint saw {} changed files", cp.files);
            let t = Instant::now();
            let (cp, new) = checkpoint::create(&repo, "scan", "bench")?;
            scanned.push(t.elapsed());
            anyhow::ensure!(new && cp.files == changed, "full checkpoint saw {} changed files", cp.files);
            gits.push(sh(&copy, "git add -A && git -c user.name=b -c user.email=b@b commit -qm x")?);
        }
        let mut rollbacks = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let report = checkpoint::rollback_with(&repo, "bench", first.n, None, &watch.take())?;
            rollbacks.push(t.elapsed());
            checkpoint::undo_rollback(&repo, "bench")?;
            anyhow::ensure!(report.changed.len() == changed, "rollback changed {} files", report.changed.len());
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "  {files:>6} files, {changed:>4} changed: {:>7.1} ms | {:>7.1} ms | {:>7.1} ms | {:>7.1} ms",
            ms(median(watched)),
            ms(median(scanned)),
            ms(median(rollbacks)),
            ms(median(gits))
        );
        made.push(dir);
    }
    // Removed only at the end: ext4 allocates new inodes slowly right after mass deletions (it skips recently
    // deleted ones), which would make each case pay for the previous one's cleanup.
    for dir in made {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Checkpoints of a repository of `files` files while an agent rewrites one of them every 100 ms (a shell's
/// `{ …; } > f`, several writes each time) and 100 others change between checkpoints: how often a checkpoint
/// reads again, how often it gives up on a file, and its latency then.
pub fn checkpoint_under_writer(files: usize, count: usize) -> Result<()> {
    use crate::git::checkpoint;
    use crate::git::watch::WorktreeWatch;
    use crate::pty::tree::AgentTree;
    let (dir, repo) = committed_repo(files)?;
    let tree = AgentTree::new();
    let (k, v) = tree.mark();
    let script =
        "i=0; while :; do i=$((i+1)); { echo \"round $i\"; seq 1 30000; echo END; } > big.txt; sleep 0.1; done";
    let child = std::process::Command::new("bash").arg("-c").arg(script).current_dir(&repo).env(k, v).spawn()?;
    tree.adopt(child.id());
    let watch = WorktreeWatch::new(&repo)?;
    checkpoint::create_with(&repo, "bench", "first", &watch.take())?;
    let writing = || tree.files_open_for_writing(&repo);
    let (mut times, mut reread, mut unsettled) = (Vec::new(), 0, 0);
    for round in 1..=count {
        touch_files(&repo, files, 100, round)?;
        // Spread the checkpoints over the writer's cycle.
        std::thread::sleep(Duration::from_millis(37));
        let t = Instant::now();
        let (rereads, left) = WorktreeWatch::checkpoint_settled(Some(&watch), &writing, |c, again| {
            checkpoint::create_settled(&repo, "bench", "bench", c, again)
                .map(|(_, _, s)| ((s.rereads, s.unsettled.len()), s.unsettled))
        })?;
        times.push(t.elapsed());
        reread += usize::from(rereads > 0);
        unsettled += usize::from(left > 0);
    }
    tree.kill_all();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "checkpoints while a file is rewritten every 100 ms ({files} files, 100 changed, {count} checkpoints): \
         {reread} read again, {unsettled} gave up on a file; latency median {:.1} ms, 90th {:.1} ms, max {:.1} ms",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 9 / 10]),
        ms(times[times.len() - 1])
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// How a long history weighs: `count` watched checkpoints of `changed` files in a repository of `files`, each
/// adding one pack; the checkpoint latency and `git status` at a few points along the way.
pub fn checkpoint_history(files: usize, changed: usize, count: usize) -> Result<()> {
    use crate::git::checkpoint;
    use crate::git::watch::WorktreeWatch;
    println!("long history ({files} files, {changed} changed each time): checkpoint | git status | packs");
    let (dir, repo) = committed_repo(files)?;
    let watch = WorktreeWatch::new(&repo)?;
    checkpoint::create_with(&repo, "bench", "first", &watch.take())?;
    let (mut times, mut tidying) = (Vec::new(), Vec::new());
    for round in 1..=count {
        touch_files(&repo, files, changed, round)?;
        let t = Instant::now();
        checkpoint::create_with(&repo, "bench", "bench", &watch.take())?;
        times.push(t.elapsed());
        // As the engine does once the agent runs again.
        let t = Instant::now();
        checkpoint::tidy(&repo);
        tidying.push(t.elapsed());
        if round == 1 || round % (count / 3).max(1) == 0 {
            let status = sh(&repo, "git status --porcelain >/dev/null")?;
            let packs = std::fs::read_dir(repo.join(".git/objects/pack"))?
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
                .count();
            // The median of the last few, so one slow write does not stand for the point.
            let mut last: Vec<Duration> = times.iter().rev().take(5).copied().collect();
            last.sort();
            println!(
                "  after {round:>4} checkpoints: {:>6.1} ms | {:>6.1} ms | {packs}",
                last[last.len() / 2].as_secs_f64() * 1e3,
                status.as_secs_f64() * 1e3
            );
        }
    }
    let total: Duration = tidying.iter().sum();
    println!(
        "  merging packs after each (agent running): {:.1} ms on average, {:.1} ms at most",
        total.as_secs_f64() * 1e3 / count.max(1) as f64,
        tidying.iter().max().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A scratch folder holding `repo/`: `files` small files in folders of 100, committed, git's gc off.
fn committed_repo(files: usize) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let dir = tempfile_dir()?;
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo)?;
    write_tree(&repo, files)?;
    sh(
        &repo,
        "git init -q && git config gc.auto 0 && git add -A && git -c user.name=b -c user.email=b@b commit -qm init",
    )?;
    Ok((dir, repo))
}

/// A bench stopped by a signal (Ctrl-C, `timeout`) ends what it started, as one that finishes does: its servers
/// (which stop their crews), the agents of its in-process crews (in sessions of their own, the terminal's Ctrl-C
/// does not reach them), and its temporary repositories.
fn end_on_signal() -> Result<()> {
    use crate::pty::tree;
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let Some(signal) = signals.forever().next() else { return };
        eprintln!("muster bench: stopped by signal {signal}; ending the agents it started");
        let servers = tree::children();
        for pid in servers.iter().copied().filter_map(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let end = Instant::now() + Duration::from_secs(5);
        while servers.iter().any(|p| !tree::ended(*p)) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        tree::end_orphans(&tree::started_here());
        let me = std::process::id();
        let ours = [format!("muster-bench-{me}-"), format!("muster-demo-{me}-")];
        for entry in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
            if entry.file_name().to_str().is_some_and(|n| ours.iter().any(|o| n.starts_with(o.as_str()))) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        std::process::exit(128 + signal);
    })?;
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("muster-bench-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Parsing and resolving a 10 MB file with 1,000 conflicts; an overlap pass over 16 agents × 100 changed files.
pub fn conflicts() -> Result<()> {
    use crate::conflict::{parse, Resolver, WholeFile};
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mut text = String::with_capacity(10_500_000);
    let mut i = 0;
    while text.len() < 10_000_000 {
        if i % 100 == 50 {
            text.push_str(&format!(
                "<<<<<<< main\nours {i}\nours more\n||||||| base\nbase {i}\n=======\ntheirs {i}\n>>>>>>> muster/a\n"
            ));
        } else {
            text.push_str(&format!(
                "    let value_{i} = compute(\"some ordinary line of code\", {i}); // padding to be realistic\n"
            ));
        }
        i += 1;
    }
    let bytes = text.into_bytes();
    let mut parse_t = Vec::new();
    let mut resolve_t = Vec::new();
    let mut count = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let parsed = parse(&bytes, 7).map_err(|e| anyhow::anyhow!("{e}"))?;
        parse_t.push(t.elapsed());
        count = parsed.conflict_count();
        let t = Instant::now();
        let mut r = Resolver::new(parsed);
        r.whole_file(WholeFile::Theirs);
        let out = r.result();
        resolve_t.push(t.elapsed());
        anyhow::ensure!(out.len() < bytes.len(), "resolution removed the markers");
    }
    println!(
        "conflict file of {:.1} MB with {count} conflicts: parse {:.1} ms, resolve (theirs everywhere) + render {:.1} ms",
        bytes.len() as f64 / 1e6,
        median(parse_t).as_secs_f64() * 1e3,
        median(resolve_t).as_secs_f64() * 1e3
    );

    // 16 agents on branches, each changing 100 of 2,000 files; neighbours share 50 files, half of them on the
    // same line.
    let dir = tempfile_dir()?;
    let repo = git2::Repository::init(&dir)?;
    let sig = git2::Signature::now("bench", "b@b")?;
    let mut tb = repo.treebuilder(None)?;
    for f in 0..2000 {
        let blob = repo.blob(format!("line one of {f}\nline two\nline three\n").as_bytes())?;
        tb.insert(format!("f{f:04}.txt"), blob, 0o100644)?;
    }
    let base_tree = repo.find_tree(tb.write()?)?;
    let base = repo.commit(Some("refs/heads/main"), &sig, &sig, "base", &base_tree, &[])?;
    let base_commit = repo.find_commit(base)?;
    let mut agents = Vec::new();
    for a in 0..16usize {
        let mut tb = repo.treebuilder(Some(&base_tree))?;
        for k in 0..100usize {
            let f = (a * 50 + k) % 2000;
            let content = if k % 2 == 0 {
                format!("line one of {f} by agent {a}\nline two\nline three\n")
            } else {
                format!("line one of {f}\nline two\nline three by agent {a}\n")
            };
            tb.insert(format!("f{f:04}.txt"), repo.blob(content.as_bytes())?, 0o100644)?;
        }
        let tree = repo.find_tree(tb.write()?)?;
        repo.commit(Some(&format!("refs/heads/muster/a{a}")), &sig, &sig, "work", &tree, &[&base_commit])?;
        agents.push((format!("a{a}"), "main".to_string()));
    }
    let mut times = Vec::new();
    let mut report = Default::default();
    for _ in 0..3 {
        let t = Instant::now();
        report = crate::git::overlap::check(&dir, &agents)?;
        times.push(t.elapsed());
    }
    let conflicting = report.overlaps.iter().filter(|o| !o.conflicts.is_empty()).count();
    println!(
        "overlap pass, 16 agents × 100 changed files: {:.1} ms ({} overlapping pairs, {conflicting} would conflict)",
        median(times).as_secs_f64() * 1e3,
        report.overlaps.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Which figures `muster bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    All,
    Checkpoints,
    Conflicts,
    Server,
    Mail,
    Terminal,
    Floods,
    Gates,
    Guard,
    Rules,
    Lead,
}

pub fn run(agents: usize, seconds: u64, only: Only) -> Result<()> {
    end_on_signal()?;
    let (checkpoints_only, server_only) = (only == Only::Checkpoints, only == Only::Server);
    if only == Only::Conflicts {
        return conflicts();
    }
    if only == Only::Mail {
        return mail::run();
    }
    if only == Only::Floods {
        return floods::run(seconds);
    }
    if only == Only::Gates {
        return gates::run();
    }
    if only == Only::Guard {
        return guard::run();
    }
    if only == Only::Lead {
        return lead::run();
    }
    if only == Only::Rules {
        return rules::run();
    }
    if server_only {
        return server(agents, seconds);
    }
    println!(
        "muster bench — {agents} agents, {seconds} s per CPU figure, {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    if checkpoints_only {
        checkpoints(&[(10_000, 10), (10_000, 100)])?;
        checkpoint_under_writer(10_000, 100)?;
        return checkpoint_history(10_000, 100, 300);
    }
    if only != Only::Terminal {
        checkpoints(&[(1_000, 100), (10_000, 10), (10_000, 100), (10_000, 1_000), (50_000, 100)])?;
        checkpoint_under_writer(10_000, 100)?;
        checkpoint_history(10_000, 100, 300)?;
        conflicts()?;
    }
    let plain = plain_stream(50_000_000);
    let coloured = coloured_stream(50_000_000);
    println!(
        "emulator throughput (alacritty_terminal, 200x50): plain {:.0} MB/s, coloured {:.0} MB/s",
        throughput(&plain),
        throughput(&coloured)
    );
    println!(
        "  alacritty alone with its own 10,000-line history: plain {:.0} MB/s, coloured {:.0} MB/s",
        alacritty_alone_throughput(&plain),
        alacritty_alone_throughput(&coloured)
    );
    println!(
        "  of which the output guard (OSC and combining-mark caps) alone: plain {:.0} MB/s, coloured {:.0} MB/s",
        guard_throughput(&plain),
        guard_throughput(&coloured)
    );
    let (lines, bytes) = history_weight();
    println!(
        "history of a coloured agent at 200 columns: {lines} lines kept in {} KiB ({:.0} bytes a line; a grid row of \
         alacritty's is {} bytes)",
        bytes / 1024,
        bytes as f64 / lines.max(1) as f64,
        200 * std::mem::size_of::<alacritty_terminal::term::cell::Cell>()
    );
    let searched = 64;
    let (rare, common, found) = search_time(searched);
    println!(
        "search of the whole history (/), {searched} agents × 10,000 lines at 200 columns: a rare pattern {:.0} ms \
         ({:.1} ms an agent, {found} matches), a pattern on every line {:.0} ms",
        rare.as_secs_f64() * 1e3,
        rare.as_secs_f64() * 1e3 / searched as f64,
        common.as_secs_f64() * 1e3
    );
    let ft = frame_time(agents);
    let streaming = streaming_frame_time(agents);
    println!("frame time at 200x50 ({agents} agents, full coloured well): {:.3} ms", ft.as_secs_f64() * 1e3);
    println!(
        "  a frame of an agent streaming in the well (two new lines: scrolled by the terminal, new rows painted): {:.3} ms",
        streaming.as_secs_f64() * 1e3
    );
    let (idle, _, idle_frames) = crew_cpu(agents, &["demo-agent", "--resume"], seconds)?;
    println!("CPU, {agents} agents idle: {idle:.2}% of one core ({idle_frames} frames drawn in {} s)", seconds + 3);
    let (busy, per_agent, frames) = crew_cpu(agents, &["demo-agent", "--stream", "50"], seconds)?;
    println!("CPU, {agents} agents × 50 coloured lines/s: {busy:.2}% of one core ({frames} frames drawn)");
    println!("resident memory per streaming agent (10,000 lines scrollback): {per_agent} KiB");
    if only == Only::Terminal {
        return Ok(());
    }
    server(agents, seconds)?;
    mail::run()?;
    floods::run(seconds)
}

/// The server's figures, beside the in-process ones measured in the same rounds (this machine is noisy: each
/// round measures the workbench with its engine in-process, then the server with one and three clients).
pub fn server(agents: usize, seconds: u64) -> Result<()> {
    let idle = ServedCrew::start(agents, &["demo-agent", "--resume"])?;
    let attach = idle.attach_times(20)?;
    println!(
        "attach to the first full frame, {agents} agents: p50 {:.1} ms, max {:.1} ms (20 attaches)",
        ms(percentile(&attach, 50)),
        ms(percentile(&attach, 100))
    );
    let status = idle.status_times(20)?;
    println!(
        "`muster status` with the server up: p50 {:.1} ms, max {:.1} ms (20 runs)",
        ms(percentile(&status, 50)),
        ms(percentile(&status, 100))
    );
    let (server_cpu, clients_cpu) = idle.cpu(3, seconds)?;
    println!(
        "CPU, {agents} agents idle, 3 clients attached: server {server_cpu:.2}% + clients {clients_cpu:.2}% of one core"
    );
    drop(idle);
    let echo = ServedCrew::start_crew("[[agent]]\nname = \"echo\"\ncommand = \"cat\"\n")?;
    let (served, local) = (echo.echo_latency(200)?, in_process_echo_latency(200)?);
    println!(
        "typed text → its echo on the client's screen (one word every 40 ms): through the server p50 {:.2} ms, p99 \
         {:.2} ms; in-process p50 {:.2} ms, p99 {:.2} ms (200 samples)",
        ms(percentile(&served, 50)),
        ms(percentile(&served, 99)),
        ms(percentile(&local, 50)),
        ms(percentile(&local, 99))
    );
    drop(echo);
    // The same while the rest of the crew streams: a key must not wait behind other agents' output.
    let mut toml = String::from("[[agent]]\nname = \"echo\"\ncommand = \"cat\"\n");
    for i in 0..agents {
        toml.push_str(&format!(
            "[[agent]]\nname = \"a{i}\"\nkind = \"demo\"\nargs = [\"demo-agent\", \"--stream\", \"50\"]\n"
        ));
    }
    let loaded = ServedCrew::start_crew(&toml)?;
    let under_load = loaded.echo_latency(400)?;
    println!(
        "typed text → its echo while {agents} other agents stream: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (400 samples)",
        ms(percentile(&under_load, 50)),
        ms(percentile(&under_load, 99)),
        ms(percentile(&under_load, 100))
    );
    drop(loaded);
    println!("CPU, {agents} agents × 50 coloured lines/s (% of one core; server + clients):");
    let (mut one, mut three) = (Vec::new(), Vec::new());
    for round in 1..=3 {
        let (in_process, _, _) = crew_cpu(agents, &["demo-agent", "--stream", "50"], seconds)?;
        let busy = ServedCrew::start(agents, &["demo-agent", "--stream", "50"])?;
        let (s1, c1) = busy.cpu(1, seconds)?;
        let (s3, c3) = busy.cpu(3, seconds)?;
        drop(busy);
        one.push((s1 + c1) / in_process.max(0.01));
        three.push((s3 + c3) / (s1 + c1).max(0.01));
        println!(
            "  round {round}: in-process {in_process:.2}; 1 client {:.2} ({s1:.2} + {c1:.2}) = {:.2}× in-process; \
             3 clients {:.2} ({s3:.2} + {c3:.2}) = {:.2}× one",
            s1 + c1,
            one[round - 1],
            s3 + c3,
            three[round - 1]
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "  median: server + 1 client {:.2}× the in-process workbench; 3 clients {:.2}× one",
        median(&mut one),
        median(&mut three)
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    s.get((s.len().saturating_sub(1)) * p / 100).copied().unwrap_or_default()
}

/// A crew in a real server process (`muster server run`), in a throwaway repository.
struct ServedCrew {
    root: std::path::PathBuf,
    server: std::process::Child,
    socket: std::path::PathBuf,
}

impl ServedCrew {
    fn start(agents: usize, args: &[&str]) -> Result<ServedCrew> {
        let mut toml = String::new();
        for i in 0..agents {
            let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
            toml.push_str(&format!("[[agent]]\nname = \"a{i}\"\nkind = \"demo\"\nargs = [{}]\n", args.join(", ")));
        }
        ServedCrew::start_crew(&toml)
    }

    fn start_crew(toml: &str) -> Result<ServedCrew> {
        let root = crate::demo::create_repo(&std::env::temp_dir(), 1)?;
        std::fs::write(root.join(".muster/crew.toml"), toml)?;
        let server = std::process::Command::new(std::env::current_exe()?)
            .arg("-C")
            .arg(&root)
            .args(["server", "run"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting a server")?;
        let socket = crate::server::socket_path(&root)?;
        let end = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            anyhow::ensure!(Instant::now() < end, "the server did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        let crew = ServedCrew { root, server, socket };
        // Start the crew and let it settle at the pane's size.
        let (client, rx, socket) = crew.client()?;
        client.send(Command::Watch { name: Some("a0".into()), rows: 46, cols: 200, also: vec![] });
        client.send(Command::StartCrew);
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            let _ = rx.recv_timeout(Duration::from_millis(100));
        }
        let _ = socket.shutdown(std::net::Shutdown::Both);
        Ok(crew)
    }

    /// A client, its events, and its socket (shut down to end it).
    #[allow(clippy::type_complexity)]
    fn client(
        &self,
    ) -> Result<(
        crate::protocol::Commands,
        std::sync::mpsc::Receiver<crate::tui::AppMsg>,
        std::os::unix::net::UnixStream,
    )> {
        let stream = std::os::unix::net::UnixStream::connect(&self.socket)?;
        let end = stream.try_clone()?;
        let (tx, rx) = crate::tui::channel();
        let hello = crate::protocol::Hello::new(crate::protocol::ClientKind::Tui, Some((50, 200)));
        let (handle, _) = crate::client::attach(Box::new(stream.try_clone()?), Box::new(stream), hello, move |m| {
            let _ = tx.send(match m {
                crate::client::Incoming::Event(e) => crate::tui::AppMsg::Engine(e),
                crate::client::Incoming::Closed(r) => crate::tui::AppMsg::Closed(r),
            });
        })?;
        Ok((handle, rx, end))
    }

    /// From connecting to the first screen of the watched agent.
    fn attach_times(&self, n: usize) -> Result<Vec<Duration>> {
        let mut out = Vec::new();
        for _ in 0..n {
            let t0 = Instant::now();
            let (client, rx, socket) = self.client()?;
            client.send(Command::Watch { name: Some("a0".into()), rows: 46, cols: 200, also: vec![] });
            let _end = defer_shutdown(socket);
            loop {
                match rx.recv_timeout(Duration::from_secs(10)).context("no screen")? {
                    crate::tui::AppMsg::Engine(engine::Event::Screen { .. }) => break,
                    _ => continue,
                }
            }
            out.push(t0.elapsed());
        }
        Ok(out)
    }

    fn status_times(&self, n: usize) -> Result<Vec<Duration>> {
        let mut out = Vec::new();
        for _ in 0..n {
            let t0 = Instant::now();
            let s = std::process::Command::new(std::env::current_exe()?)
                .arg("-C")
                .arg(&self.root)
                .args(["status", "--format", "tmux"])
                .output()?;
            anyhow::ensure!(s.status.success(), "muster status failed");
            out.push(t0.elapsed());
        }
        Ok(out)
    }

    /// CPU of the server and of `clients` headless workbenches (this process) over `seconds`, in % of one core.
    fn cpu(&self, clients: usize, seconds: u64) -> Result<(f64, f64)> {
        let mut loops = Vec::new();
        let mut sockets = Vec::new();
        for _ in 0..clients {
            let (handle, rx, socket) = self.client()?;
            sockets.push(socket);
            loops.push(std::thread::spawn(move || {
                let mut state = State::new(
                    "bench".into(),
                    Keymap::builtin(),
                    Theme::builtin("default", ColorMode::TrueColor),
                    (200, 50),
                );
                state.detaches = true;
                update(&mut state, Msg::Resize(200, 50));
                if let Some((name, rows, cols, also)) = state.watching.clone() {
                    handle.send(Command::Watch { name, rows, cols, also });
                }
                let mut terminal = Terminal::new(TestBackend::new(200, 50)).expect("a test backend");
                let _ = crate::tui::event_loop(&mut terminal, &mut state, &handle, &rx, || {});
            }));
        }
        std::thread::sleep(Duration::from_secs(2));
        let pid = self.server.id().to_string();
        let (s0, c0, t0) = (cpu_ns_of(&pid), process_cpu_ns(), Instant::now());
        std::thread::sleep(Duration::from_secs(seconds));
        let (s1, c1, dt) = (cpu_ns_of(&pid), process_cpu_ns(), t0.elapsed().as_nanos() as f64);
        // The clients end with their connections; the crew runs on for the next measurement.
        for s in &sockets {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        for l in loops {
            let _ = l.join();
        }
        Ok(((s1 - s0) as f64 / dt * 100.0, (c1 - c0) as f64 / dt * 100.0))
    }

    /// Text typed into `cat` through the server, until its echo is on this client's copy of the screen.
    fn echo_latency(&self, n: usize) -> Result<Vec<Duration>> {
        let (client, rx, socket) = self.client()?;
        let _end = defer_shutdown(socket);
        client.send(Command::Watch { name: Some("echo".into()), rows: 24, cols: 80, also: vec![] });
        let events = std::iter::from_fn(move || match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(crate::tui::AppMsg::Engine(e)) => Some(e),
            _ => None,
        });
        echo_samples(n, &client, events)
    }
}

/// Ends a client's connection when dropped.
struct Hangup(std::os::unix::net::UnixStream);

impl Drop for Hangup {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

fn defer_shutdown(s: std::os::unix::net::UnixStream) -> Hangup {
    Hangup(s)
}

impl Drop for ServedCrew {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.server.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let _ = self.server.wait();
        if std::env::var_os("MUSTER_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        } else {
            eprintln!("kept {}", self.root.display());
        }
    }
}

/// Type a new word `n` times; how long each took to show on the screen events `events` brings.
fn echo_samples(
    n: usize,
    engine: &crate::protocol::Commands,
    mut events: impl Iterator<Item = engine::Event>,
) -> Result<Vec<Duration>> {
    let mut out = Vec::new();
    for i in 0..n {
        // At a fast typist's pace: back to back, every other echo would wait out the frame interval that
        // coalesces floods, which is not what a person sees.
        std::thread::sleep(Duration::from_millis(40));
        let word = format!("w{i:04}x");
        let t0 = Instant::now();
        engine.send(Command::Paste { name: "echo".into(), text: format!("{word}\r") });
        loop {
            match events.next().context("no echo")? {
                engine::Event::Screen { screen, .. } if screen.text().iter().any(|l| l.contains(&word)) => break,
                _ => continue,
            }
        }
        out.push(t0.elapsed());
    }
    Ok(out)
}

/// The same measurement with the engine in this process.
fn in_process_echo_latency(n: usize) -> Result<Vec<Duration>> {
    let root = crate::demo::create_repo(&std::env::temp_dir(), 1)?;
    std::fs::write(root.join(".muster/crew.toml"), "[[agent]]\nname = \"echo\"\ncommand = \"cat\"\n")?;
    let (crew, _, _) = crate::config::load_crew(&root)?;
    let cfg = bench_config(&root, crew)?;
    let (sink, rx) = engine::channel_sink();
    let handle = engine::supervisor::start(cfg, Arc::new(NativePty), sink)?;
    handle.send(Command::Watch { name: Some("echo".into()), rows: 24, cols: 80, also: vec![] });
    handle.send(Command::StartCrew);
    std::thread::sleep(Duration::from_secs(1));
    while rx.try_recv().is_ok() {}
    let events = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(10)).ok());
    let samples = echo_samples(n, &handle.commands(), events);
    handle.send(Command::Shutdown);
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if let Ok(engine::Event::ShutdownComplete) = rx.recv_timeout(Duration::from_millis(100)) {
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    samples
}
