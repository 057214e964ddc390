//! Figures of agents that drive muster (issue #31): a spawn until the child is at its prompt with its kickoff
//! delivered; `wait --any` from the transition to the waiter's return; `events --follow` at a given rate; a
//! hundred children finishing while their parent is busy, and every completion reaching it at its prompt.

use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{ms, percentile, ServedCrew};
use crate::engine::inbox::{EngineMsg, ScriptMsg};
use crate::protocol::lead::{CrewEvent, EventKind};
use crate::protocol::{AgentState, Command, Event};

pub fn run() -> Result<()> {
    worktree_creation(10_000)?;
    events_follow(&[10_000, 30_000], 5)?;
    spawn_and_wait(20, 10)?;
    hundred_children(100)
}

fn muster_bin() -> Result<String> {
    Ok(std::env::current_exe()?.display().to_string())
}

/// What `muster spawn` does first for a child, apart: its worktree and branch, on a repository of `files` files.
fn worktree_creation(files: usize) -> Result<()> {
    let dir = super::tempfile_dir()?;
    super::sh(&dir, "git init -q -b main . && git config user.email b@e && git config user.name b")?;
    super::write_tree(&dir, files)?;
    super::sh(&dir, "git add -A && git commit -qm files")?;
    let mut times = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        crate::git::worktree::ensure_worktree(&dir, &format!("w{i}"), Some("main"))?;
        times.push(t.elapsed());
    }
    println!(
        "a child's worktree and branch on a {files}-file repository: median {:.0} ms, worst {:.0} ms (5 children)",
        ms(percentile(&times, 50)),
        ms(percentile(&times, 100))
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A lead in bash: each line steered into it is a command it runs as itself.
const LEAD: &str = "[defaults]\nmax_children = 200\n[[agent]]\nname = \"lead\"\nkind = \"shell\"\n";

/// Steer a command into the lead and wait (up to `within`) for `file` of its worktree to hold `lines` lines.
fn lead_runs(
    crew: &ServedCrew,
    client: &crate::protocol::Commands,
    script: &str,
    file: &str,
    lines: usize,
    within: Duration,
) -> Result<String> {
    client.send(Command::Steer { name: "lead".into(), text: script.to_string(), force: true });
    let path = crew.root.join(".muster/worktrees/lead").join(file);
    let end = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().count() >= lines {
            return Ok(text);
        }
        anyhow::ensure!(Instant::now() < end, "the lead did not finish ({file}: {text:?})");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lead_crew() -> Result<(ServedCrew, crate::protocol::Commands, std::sync::mpsc::Receiver<crate::tui::AppMsg>)> {
    let crew = ServedCrew::start_crew(LEAD)?;
    let (client, rx, _socket) = crew.client()?;
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(crate::tui::AppMsg::Engine(Event::Agent(i))) if i.name == "lead" && i.state == AgentState::Idle => break,
            _ => anyhow::ensure!(Instant::now() < end, "the lead never came to its prompt"),
        }
    }
    Ok((crew, client, rx))
}

fn events_of(root: &Path) -> Vec<CrewEvent> {
    crate::engine::events::read_after(&root.join(".muster"), 0)
}

/// `n` spawns one after the other (each returns once its child is at its prompt with its kickoff delivered), then
/// `rounds` of three new children and `muster wait --any` on them: from the first one's transition to done (the
/// event log's time) to the waiter's return (the lead's clock, after the command ended).
fn spawn_and_wait(n: usize, rounds: usize) -> Result<()> {
    let m = muster_bin()?;
    let (crew, client, _rx) = lead_crew()?;
    let script = format!(
        "for i in $(seq 1 {n}); do s=$(date +%s%N); {m} spawn c$i --kind demo --prompt 'note the plan' >/dev/null \
         2>>spawn.err; echo $(( $(date +%s%N) - s )) >> spawn.ns; done"
    );
    let text = lead_runs(&crew, &client, &script, "spawn.ns", n, Duration::from_secs(30 * n as u64))?;
    let spawns: Vec<Duration> = text.lines().filter_map(|l| l.trim().parse().ok()).map(Duration::from_nanos).collect();
    println!(
        "muster spawn (demo agent) → child at its prompt with its kickoff delivered, {n} in a row: p50 {:.0} ms, p90 \
         {:.0} ms, worst {:.0} ms",
        ms(percentile(&spawns, 50)),
        ms(percentile(&spawns, 90)),
        ms(percentile(&spawns, 100))
    );
    let mut lags = Vec::new();
    for r in 0..rounds {
        let kids: Vec<String> = (0..3).map(|k| format!("r{r}k{k}")).collect();
        let script = format!(
            "for k in {all}; do {m} spawn $k --kind demo --prompt 'note the plan' >/dev/null; done; \
             w=$({m} wait {all} --until done --any); echo \"$w $(date +%s%N)\" >> woke.txt",
            all = kids.join(" ")
        );
        let text = lead_runs(&crew, &client, &script, "woke.txt", r + 1, Duration::from_secs(60))?;
        let line = text.lines().nth(r).context("no wake")?;
        let (who, at_ns) = line.rsplit_once(' ').context("a wake line")?;
        let woke_ms = at_ns.trim().parse::<u64>()? / 1_000_000;
        let done_ms = events_of(&crew.root)
            .into_iter()
            .filter(|e| e.kind == EventKind::State && kids.iter().any(|k| e.agent.as_deref() == Some(k.as_str())))
            .find(|e| e.text.contains(": done"))
            .map(|e| e.at_ms)
            .context("no done event")?;
        anyhow::ensure!(kids.iter().any(|k| who.trim() == k), "wait --any answered {who:?}");
        lags.push(Duration::from_millis(woke_ms.saturating_sub(done_ms)));
    }
    println!(
        "muster wait --any of three children: the first one's done (event log) → the waiter's command returned, {rounds} \
         rounds: median {:.0} ms, worst {:.0} ms",
        ms(percentile(&lags, 50)),
        ms(percentile(&lags, 100))
    );
    Ok(())
}

/// A hundred children spawned by a lead that stays busy until all are done: every completion mail delivered,
/// none while the lead works (each receipt after the lead's turn ended).
fn hundred_children(n: usize) -> Result<()> {
    let m = muster_bin()?;
    let (crew, client, _rx) = lead_crew()?;
    let started = Instant::now();
    let names: Vec<String> = (1..=n).map(|i| format!("h{i}")).collect();
    let script = format!(
        "for i in $(seq 1 {n}); do {m} spawn h$i --kind demo --prompt 'note the plan' >/dev/null 2>>spawn.err; done; \
         {m} wait {all} --until done --timeout 600 >/dev/null; date +%s%3N > turn_end.txt",
        all = names.join(" ")
    );
    let end_text = lead_runs(&crew, &client, &script, "turn_end.txt", 1, Duration::from_secs(900))?;
    let turn_end: u64 = end_text.trim().parse()?;
    let all_done = started.elapsed();
    // Every completion mail delivered, as the mailbox says.
    let store = crate::mailbox::store::Store::open_in(&crew.root)?;
    let end = Instant::now() + Duration::from_secs(900);
    let (delivered, dead, early, retried) = loop {
        use crate::protocol::mail::ReceiptState as S;
        let mails = store.inbox("lead", false, 10 * n)?;
        let receipts: Vec<_> =
            mails.iter().filter(|m| names.contains(&m.from)).filter_map(|m| m.receipt("lead")).collect();
        let delivered: Vec<u64> =
            receipts.iter().filter(|r| matches!(r.state, S::Delivered | S::Seen | S::Acked)).map(|r| r.at_ms).collect();
        let dead = receipts.iter().filter(|r| matches!(r.state, S::Dead | S::Expired)).count();
        if delivered.len() + dead >= n || Instant::now() >= end {
            let early = delivered.iter().filter(|&&at| at < turn_end).count();
            let retried = receipts.iter().filter(|r| r.attempts > 0).count();
            break (delivered.len(), dead, early, retried);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    println!(
        "{n} children of a busy lead: all done in {:.0} s; completion mails delivered {delivered} of {n} ({dead} dead \
         letters, {retried} typed more than once), {early} while the lead worked; settled {:.0} s after the lead's \
         turn ended",
        all_done.as_secs_f64(),
        (crate::protocol::now_ms().saturating_sub(turn_end)) as f64 / 1e3
    );
    drop(client);
    Ok(())
}

/// `muster events --follow` (the real command, on the real script socket) while events are logged at `rate` a
/// second for `seconds`: how many it printed, whether any was missing or repeated, and how far behind it was.
fn events_follow(rates: &[u64], seconds: u64) -> Result<()> {
    for &rate in rates {
        let root = crate::demo::create_repo(&std::env::temp_dir(), 1)?;
        let run_dir = crate::ipc::run_dir(&root)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let listening = crate::engine::script_socket::listen(&run_dir, &root.join(".muster"), tx)?;
        let mut reader = std::process::Command::new(std::env::current_exe()?)
            .args(["events", "--follow"])
            .current_dir(&root)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let out = reader.stdout.take().context("its output")?;
        let last = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let printed = last.clone();
        let lines = std::thread::spawn(move || {
            let mut got = Vec::new();
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let now = crate::protocol::now_ms();
                if let Ok(e) = serde_json::from_str::<CrewEvent>(&line) {
                    got.push((e.seq, now.saturating_sub(e.at_ms)));
                    printed.store(e.seq, std::sync::atomic::Ordering::Relaxed);
                }
            }
            got
        });
        // The engine's part, on this thread: serve the follower (again when it comes back), log `rate` a second.
        let mut log = crate::engine::events::EventLog::open(&root);
        let serve = |log: &mut crate::engine::events::EventLog| {
            while let Ok(EngineMsg::Script(ScriptMsg::Events { since, follow, agents, kinds, tx, alive })) =
                rx.try_recv()
            {
                log.serve(since, follow, crate::engine::events::Follower { agents, kinds, tx, alive });
            }
        };
        let total = rate * seconds;
        let start = Instant::now();
        let mut logged = 0u64;
        while logged < total {
            serve(&mut log);
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            while logged < due.min(total) {
                logged += 1;
                log.record(EventKind::State, Some("a"), &format!("a: busy — event {logged}"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let took = start.elapsed();
        let end = Instant::now() + Duration::from_secs(10);
        while last.load(std::sync::atomic::Ordering::Relaxed) < total && Instant::now() < end {
            serve(&mut log);
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = reader.kill();
        let _ = reader.wait();
        drop(listening);
        let got = lines.join().unwrap_or_default();
        let seqs: Vec<u64> = got.iter().map(|g| g.0).collect();
        let in_order = seqs.windows(2).all(|w| w[1] == w[0] + 1);
        let lags: Vec<Duration> = got.iter().map(|g| Duration::from_millis(g.1)).collect();
        println!(
            "muster events --follow at {rate} events/s for {seconds} s ({:.0}/s logged): printed {} of {total}, {}, \
             behind by median {:.0} ms, worst {:.0} ms",
            logged as f64 / took.as_secs_f64(),
            seqs.len(),
            if in_order && seqs.first() == Some(&1) { "none missing or repeated" } else { "GAPS OR REPEATS" },
            ms(percentile(&lags, 50)),
            ms(percentile(&lags, 100))
        );
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}
