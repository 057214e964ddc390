//! Gates' figures (issue #28): how soon a gate starts after a turn's end is seen, how soon its failure reaches an
//! agent at its prompt, and what a gate run costs the server beyond the gate's own process.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{cpu_ns_of, ms, percentile, ServedCrew};
use crate::engine::script_socket::{self, Request};
use crate::protocol::gate::{GateAnswer, GateOp};
use crate::protocol::{AgentState, Command, Event};

pub fn run() -> Result<()> {
    loop_latencies(10)?;
    wave_advance(5)?;
    server_cost(60)
}

/// A wave after a gate (issue #30): the client sees wave 1's agent's gate turn green → the client sees wave 2's
/// agent started, `n` crews.
fn wave_advance(n: usize) -> Result<()> {
    let mut lags = Vec::new();
    for _ in 0..n {
        let dir = super::tempfile_dir()?;
        let log = dir.join("agent.log");
        let toml = format!(
            "[[gate]]\nname = \"test\"\nrun = \"exit 0\"\n\
             [[agent]]\nname = \"w\"\nkind = \"demo\"\ncommand = \"bash\"\nwave = 1\nargs = [\"-c\", {agent:?}]\n\
             env = {{ BENCH_LOG = {log:?} }}\n\
             [[agent]]\nname = \"next\"\ncommand = \"bash\"\nwave = 2\ngates = []\nargs = [\"-c\", \"exec sleep 600\"]\n",
            agent = AGENT,
            log = log.display().to_string(),
        );
        let crew = ServedCrew::start_crew(&toml)?;
        let (client, rx, _socket) = crew.client()?;
        client.send(Command::Steer { name: "w".into(), text: "begin".into(), force: false });
        let (mut green, mut started) = (None, None);
        let end = Instant::now() + Duration::from_secs(30);
        while started.is_none() && Instant::now() < end {
            if let Ok(crate::tui::AppMsg::Engine(Event::Agent(info))) = rx.recv_timeout(Duration::from_millis(100)) {
                match info.name.as_str() {
                    "w" if green.is_none() && matches!(info.gate, crate::protocol::gate::GateMark::Green { .. }) => {
                        green = Some(Instant::now())
                    }
                    "next" if info.pid.is_some() => started = Some(Instant::now()),
                    _ => {}
                }
            }
        }
        let (Some(g), Some(s)) = (green, started) else { anyhow::bail!("wave 2 never started") };
        lags.push(s.saturating_duration_since(g));
    }
    lags.sort();
    println!(
        "wave 1's gate green → wave 2 started (as a client sees both), {n} crews: median {:.1} ms, worst {:.1} ms",
        ms(lags[lags.len() / 2]),
        ms(*lags.last().unwrap_or(&Duration::ZERO))
    );
    Ok(())
}

/// An agent in bash: at its prompt it reads a message (a bracketed paste whole), logs when it got it, works a
/// second with a spinner, changes a file, and comes back to its prompt.
const AGENT: &str = r#"printf '\033[?2004h'; n=0
while :; do
  printf 'demo> '
  IFS= read -r line || exit 0
  case "$line" in *$'\e[200~'*) while :; do case "$line" in *$'\e[201~'*) break;; esac; IFS= read -r line || exit 0; done;; esac
  echo "got $(date +%s%N)" >> "$BENCH_LOG"
  n=$((n+1)); for i in 1 2 3 4 5 6 7 8 9 10; do printf '\r⠋ working %s' $i; sleep 0.1; done; printf '\r\033[K'
  echo "change $n" >> work.txt; echo "done $n"
done"#;

fn ask(crew: &ServedCrew, op: GateOp) -> Result<GateAnswer> {
    let run_dir = crate::ipc::run_dir(&crew.root)?;
    match script_socket::ask(&run_dir, &Request::Gate { op }, Some(Duration::from_secs(10)))?
        .context("the server did not answer")?
    {
        crate::protocol::script::Answer::Gate(a) => Ok(a),
        other => anyhow::bail!("the server answered {other:?}"),
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn logged(path: &std::path::Path, what: &str) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix(what)?.trim().parse().ok())
        .collect()
}

/// A gate that always fails, and an agent that answers each failure with a changed file: the loop runs by
/// itself. Turn end seen by a client → the gate's first instruction; the gate's last instruction → the agent
/// reading the failure.
fn loop_latencies(n: usize) -> Result<()> {
    let dir = super::tempfile_dir()?;
    let log = dir.join("agent.log");
    let gates = dir.join("gates.log");
    let toml = format!(
        "[[agent]]\nname = \"w\"\nkind = \"demo\"\ncommand = \"bash\"\nargs = [\"-c\", {agent:?}]\nenv = {{ BENCH_LOG = {log:?} }}\n\
         [[gate]]\nname = \"test\"\nattempts = 100\nrun = \"echo start $(date +%s%N) >> {g}; echo 'test bench::x ... FAILED'; echo end $(date +%s%N) >> {g}; exit 1\"\n",
        agent = AGENT,
        log = log.display().to_string(),
        g = gates.display(),
    );
    let crew = ServedCrew::start_crew(&toml)?;
    let (client, rx, socket) = crew.client()?;
    client.send(Command::Watch { name: Some("w".into()), rows: 40, cols: 120, also: vec![] });
    client.send(Command::Steer { name: "w".into(), text: "begin".into(), force: false });
    let mut idle_at: Vec<u64> = Vec::new();
    let mut busy = false;
    let end = Instant::now() + Duration::from_secs(30 + 5 * n as u64);
    while logged(&gates, "end").len() < n + 1 && Instant::now() < end {
        if let Ok(crate::tui::AppMsg::Engine(Event::Agent(info))) = rx.recv_timeout(Duration::from_millis(100)) {
            if info.name != "w" {
                continue;
            }
            match info.state {
                AgentState::Busy => busy = true,
                AgentState::Idle if busy => {
                    busy = false;
                    idle_at.push(now_ns());
                }
                _ => {}
            }
        }
    }
    let _ = socket.shutdown(std::net::Shutdown::Both);
    let (starts, ends, got) = (logged(&gates, "start"), logged(&gates, "end"), logged(&log, "got"));
    // Each gate start follows the turn end seen last before it.
    let start_lag: Vec<Duration> = starts
        .iter()
        .filter_map(|s| idle_at.iter().rev().find(|i| *i <= s).map(|i| Duration::from_nanos(s - i)))
        .collect();
    let steer_lag: Vec<Duration> =
        ends.iter().filter_map(|e| got.iter().find(|g| *g > e).map(|g| Duration::from_nanos(g - e))).collect();
    anyhow::ensure!(!start_lag.is_empty() && !steer_lag.is_empty(), "no loop measured: {starts:?} {ends:?} {got:?}");
    println!(
        "gate start after a turn's end is seen by a client (checkpoint of the turn included): p50 {:.0} ms, max {:.0} ms \
         ({} runs)",
        ms(percentile(&start_lag, 50)),
        ms(percentile(&start_lag, 100)),
        start_lag.len()
    );
    println!(
        "a failed gate's end → its failure read by the agent at its prompt: p50 {:.0} ms, max {:.0} ms ({} steers)",
        ms(percentile(&steer_lag, 50)),
        ms(percentile(&steer_lag, 100)),
        steer_lag.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The server's CPU (every thread's schedstat) per gate run asked by hand on an idle agent, beyond the same
/// time idle; the gate's own process (`true`) is not the server's.
fn server_cost(n: usize) -> Result<()> {
    let toml = "[[agent]]\nname = \"w\"\nkind = \"demo\"\ncommand = \"bash\"\nargs = [\"-c\", \"printf 'demo> '; exec sleep 100000\"]\n\
                [[gate]]\nname = \"test\"\nrun = \"true\"\n";
    let crew = ServedCrew::start_crew(toml)?;
    let pid = crew.server.id().to_string();
    let every = Duration::from_millis(150);
    let window = every * n as u32;
    // What a new crew does once (worktree, first diffstat, overlaps) is not a gate's.
    std::thread::sleep(Duration::from_secs(3));
    let (idle0, t0) = (cpu_ns_of(&pid), Instant::now());
    std::thread::sleep(window);
    let idle = (cpu_ns_of(&pid) - idle0) as f64 / t0.elapsed().as_secs_f64();
    // CPU per request beyond idle, at the same pace: a request alone (a list of one run), then a gate run.
    let per = |op: &dyn Fn() -> GateOp| -> Result<f64> {
        let (busy0, t1) = (cpu_ns_of(&pid), Instant::now());
        for _ in 0..n {
            let next = Instant::now() + every;
            ask(&crew, op())?;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        Ok(((cpu_ns_of(&pid) - busy0) as f64 - idle * t1.elapsed().as_secs_f64()) / n as f64)
    };
    let request = per(&|| GateOp::Status { agent: Some("w".into()), limit: Some(1) })?;
    let run = per(&|| GateOp::Run { agent: "w".into(), gate: None })?;
    let GateAnswer::Runs { runs } = ask(&crew, GateOp::Status { agent: Some("w".into()), limit: Some(n) })? else {
        anyhow::bail!("no runs");
    };
    let passed = runs.iter().filter(|r| r.outcome == Some(crate::protocol::gate::GateOutcome::Pass)).count();
    println!(
        "server CPU per gate run asked by hand (run `true`, recorded, shown; the child's own CPU not counted): \
         {:.2} ms, of which the script request {:.2} ms ({passed} of {n} passed; idle server {:.3} % of a core)",
        run / 1e6,
        request / 1e6,
        idle / 1e7
    );
    Ok(())
}
