//! The watchdog's figures (issue #29): how soon a write outside an agent's files reaches a client's roster, what
//! the watchdog costs the server while agents change files, and the load-time overlap check on a large
//! repository.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{ms, percentile, ServedCrew};
use crate::protocol::{Command, Event};

pub fn run() -> Result<()> {
    finding_latency(40)?;
    watchdog_cost(16, 30)?;
    overlap_check(10_000, 16)
}

/// An agent that does nothing itself: the bench writes into its worktree as it would.
const IDLE: &str = "printf 'demo> '; exec sleep 100000";

/// Write → the client's roster counting the finding, for `n` writes outside the agent's `owns`.
fn finding_latency(n: usize) -> Result<()> {
    let toml = format!(
        "[[agent]]\nname = \"w\"\nkind = \"demo\"\ncommand = \"bash\"\nargs = [\"-c\", {IDLE:?}]\nowns = [\"src/\"]\n"
    );
    let crew = ServedCrew::start_crew(&toml)?;
    let (client, rx, socket) = crew.client()?;
    client.send(Command::Watch { name: Some("w".into()), rows: 40, cols: 120, also: vec![] });
    let worktree = crew.root.join(".muster/worktrees/w");
    let mut count = 0u32;
    let mut took = Vec::new();
    // The start checkpoint first: the worktree's watches are set.
    std::thread::sleep(Duration::from_secs(2));
    while let Ok(m) = rx.try_recv() {
        if let crate::tui::AppMsg::Engine(Event::Agent(info)) = m {
            count = count.max(info.findings);
        }
    }
    for i in 0..n {
        let t0 = Instant::now();
        std::fs::write(worktree.join(format!("stray-{i}.txt")), "x\n")?;
        let end = t0 + Duration::from_secs(10);
        loop {
            anyhow::ensure!(Instant::now() < end, "no finding within 10 s of write {i}");
            if let Ok(crate::tui::AppMsg::Engine(Event::Agent(info))) = rx.recv_timeout(Duration::from_millis(50)) {
                if info.name == "w" && info.findings > count {
                    count = info.findings;
                    took.push(t0.elapsed());
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = socket.shutdown(std::net::Shutdown::Both);
    println!(
        "write outside owns → the finding on a client's roster ({n} writes): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        ms(percentile(&took, 50)),
        ms(percentile(&took, 95)),
        ms(percentile(&took, 100))
    );
    Ok(())
}

/// CPU of the server's threads named `name`, in nanoseconds.
fn thread_cpu_ns(pid: &str, name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// `agents` agents each rewriting a file of its own every 100 ms (inside its `owns`, so nothing is found): the
/// watchdog's thread's CPU, and the server's, over `seconds`.
fn watchdog_cost(agents: usize, seconds: u64) -> Result<()> {
    let mut toml = String::new();
    for i in 0..agents {
        let work = format!("printf 'demo> '; while :; do echo $RANDOM > src/w{i}.txt; sleep 0.1; done");
        toml.push_str(&format!(
            "[[agent]]\nname = \"a{i}\"\nkind = \"demo\"\ncommand = \"bash\"\nargs = [\"-c\", {work:?}]\nowns = [\"src/w{i}.txt\"]\n"
        ));
    }
    let crew = ServedCrew::start_crew(&toml)?;
    let pid = crew.server.id().to_string();
    // The start checkpoints and first diffstats are not the watchdog's.
    std::thread::sleep(Duration::from_secs(5));
    let (guard0, all0, t0) = (thread_cpu_ns(&pid, "guard"), super::cpu_ns_of(&pid), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    let secs = t0.elapsed().as_secs_f64();
    let guard = (thread_cpu_ns(&pid, "guard") - guard0) as f64 / secs / 1e7;
    let all = (super::cpu_ns_of(&pid) - all0) as f64 / secs / 1e7;
    println!(
        "watchdog, {agents} agents each writing a file every 100 ms for {seconds} s: its thread {guard:.2} % of a core \
         (the whole server {all:.1} %)"
    );
    Ok(())
}

/// The crew file's overlap check at load: `agents` agents' `owns` over a repository of `files` tracked files
/// (listing the files from git's index, then matching).
fn overlap_check(files: usize, agents: usize) -> Result<()> {
    let dir = super::tempfile_dir()?;
    let repo = git2::Repository::init(&dir)?;
    let mut index = repo.index()?;
    let blob = repo.blob(b"x\n")?;
    for i in 0..files {
        let path = format!("m{}/d{}/f{i}.rs", i % agents, i % 37);
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            file_size: 2,
            id: blob,
            flags: path.len().min(0xfff) as u16,
            flags_extended: 0,
            path: path.into_bytes(),
        };
        index.add(&entry)?;
    }
    index.write()?;
    let mut text = String::new();
    for a in 0..agents {
        text.push_str(&format!(
            "[[agent]]\nname = \"a{a}\"\nkind = \"shell\"\nowns = [\"m{a}/\", \"!m{a}/d3/\", \"docs/a{a}/**\"]\n"
        ));
    }
    let crew = crate::config::crew::parse_crew(
        std::path::Path::new("crew.toml"),
        &text,
        &crate::config::preset::builtin(),
        &Default::default(),
    )?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let listed = crate::git::ownership::tracked_files(&dir)?;
        let warnings = crate::config::crew::check_ownership(std::path::Path::new("crew.toml"), &text, &listed, &crew)?;
        times.push(t.elapsed());
        anyhow::ensure!(
            listed.len() == files && warnings.len() == agents,
            "{} files, {} warnings",
            listed.len(),
            warnings.len()
        );
    }
    println!(
        "overlap check at load, {agents} agents' owns over {files} tracked files (git's index read, then matched): \
         {:.1} ms",
        ms(percentile(&times, 50))
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
