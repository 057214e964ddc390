//! The server under what a hostile or careless client can send (issue #23): its resident memory and how long
//! `muster status` takes, idle and during each flood, and how long SIGTERM takes to end it mid-flood.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{ms, percentile, ServedCrew};
use crate::protocol::{self, ClientKind, Command, Hello, ToServer};

pub fn run(seconds: u64) -> Result<()> {
    let crew = ServedCrew::start(4, &["demo-agent", "--resume"])?;
    let pid = crew.server.id();
    let run_dir = crate::ipc::run_dir(&crew.root)?;
    println!("4 idle demo agents; server memory (VmRSS, peak while it lasts) and `muster status` (10 runs):");
    report("idle", &crew, pid, || Ok(()))?;
    report("20 clients asking for 65535x65535 screens (each refused)", &crew, pid, || {
        for _ in 0..20 {
            let mut s = hello_client(&crew.socket)?;
            s.write_all(&request(Command::Watch { name: Some("a0".into()), rows: 65535, cols: 65535, also: vec![] }))?;
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
        Ok(())
    })?;
    let flooding = checkpoint_flood(&crew, "a0", seconds);
    report("one client sending Checkpoint requests as fast as it can", &crew, pid, || Ok(()))?;
    flooding.finish()?;
    let log = crate::config::paths::state_dir().join("muster.log");
    let log_before = std::fs::metadata(&log).map_or(0, |m| m.len());
    let flooding = flood(seconds, {
        let hook = run_dir.join(crate::engine::script_socket::SOCKET);
        move |stop| {
            let mut s = UnixStream::connect(&hook)?;
            let mut acks = s.try_clone()?;
            std::thread::spawn(move || std::io::copy(&mut acks, &mut std::io::sink()));
            let line = b"{\"hook\":{\"agent\":\"a0\",\"token\":\"forged\",\"event\":\"Stop\",\"detail\":null,\"session\":null}}\n";
            let batch: Vec<u8> = line.iter().copied().cycle().take(line.len() * 1000).collect();
            while !stop.load(Ordering::SeqCst) && s.write_all(&batch).is_ok() {}
            Ok(())
        }
    });
    report("one hook.sock connection streaming forged hook reports", &crew, pid, || Ok(()))?;
    flooding.finish()?;
    let grew = std::fs::metadata(&log).map_or(0, |m| m.len()).saturating_sub(log_before);
    println!("  the shared log grew {grew} bytes during it");
    let hook = run_dir.join(crate::engine::script_socket::SOCKET);
    let mut abandoned = Vec::new();
    report("64 `muster wait` clients that left, then 64 that wait", &crew, pid, || {
        for keep in [false, true] {
            for _ in 0..64 {
                let mut s = UnixStream::connect(&hook)?;
                s.write_all(b"{\"wait\":{\"agents\":[\"a0\"],\"until\":\"exited\",\"timeout\":null}}\n")?;
                if keep {
                    abandoned.push(s);
                }
            }
        }
        Ok(())
    })?;
    let slow: Vec<UnixStream> = (0..64).map(|_| UnixStream::connect(&hook)).collect::<std::io::Result<_>>()?;
    let dripping = flood(seconds, move |stop| {
        let mut slow = slow;
        while !stop.load(Ordering::SeqCst) {
            for s in &mut slow {
                let _ = s.write_all(b"{");
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        Ok(())
    });
    report("64 hook.sock clients sending a byte a second (and the 64 waits)", &crew, pid, || Ok(()))?;
    dripping.finish()?;
    drop(abandoned);
    // SIGTERM in the middle of a request flood.
    let flooding = checkpoint_flood(&crew, "a1", seconds * 10);
    std::thread::sleep(Duration::from_secs(2));
    let t0 = Instant::now();
    let server = rustix::process::Pid::from_raw(pid as i32).context("the server's pid")?;
    rustix::process::kill_process(server, rustix::process::Signal::TERM)?;
    while std::path::Path::new(&format!("/proc/{pid}/stat")).exists() && !zombie(pid) {
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(60), "the server did not end after SIGTERM");
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "SIGTERM during a Checkpoint flood → the server's end (4 agents checkpointed, then stopped): {:.0} ms",
        ms(t0.elapsed())
    );
    flooding.finish()?;
    Ok(())
}

/// A client sending `Checkpoint` requests for `agent` as fast as the server takes them.
fn checkpoint_flood(crew: &ServedCrew, agent: &str, seconds: u64) -> Flood {
    let socket = crew.socket.clone();
    let one = request(Command::Checkpoint { name: agent.into() });
    flood(seconds, move |stop| {
        let mut s = hello_client(&socket)?;
        let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
        while !stop.load(Ordering::SeqCst) && s.write_all(&batch).is_ok() {}
        Ok(())
    })
}

fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
}

fn request(command: Command) -> Vec<u8> {
    protocol::json_frame(&ToServer::Request { id: 1, command })
}

fn hello_client(socket: &std::path::Path) -> Result<UnixStream> {
    let mut s = UnixStream::connect(socket)?;
    let hello = Hello::new(ClientKind::Tui, Some((24, 80)));
    s.write_all(&protocol::json_frame(&ToServer::Hello(hello)))?;
    s.set_write_timeout(Some(Duration::from_secs(60)))?;
    Ok(s)
}

/// A load on a thread of its own until `finish` (or `seconds`).
struct Flood {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<()>>,
}

fn flood(seconds: u64, f: impl FnOnce(Arc<AtomicBool>) -> Result<()> + Send + 'static) -> Flood {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = std::thread::spawn({
        let stop = stop.clone();
        move || f(stop)
    });
    let timer = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(seconds));
        timer.store(true, Ordering::SeqCst);
    });
    Flood { stop, thread }
}

impl Flood {
    fn finish(self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().map_err(|_| anyhow::anyhow!("a flood thread panicked"))?
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    };
    field("VmRSS:").unwrap_or(0)
}

/// Do `load`, then sample memory while `muster status` is run ten times.
fn report(what: &str, crew: &ServedCrew, pid: u32, load: impl FnOnce() -> Result<()>) -> Result<()> {
    load()?;
    let mut peak = rss_kib(pid);
    let mut times = Vec::new();
    for _ in 0..10 {
        times.extend(crew.status_times(1)?);
        peak = peak.max(rss_kib(pid));
    }
    println!(
        "  {what}: {} MiB resident (peak {} MiB); status p50 {:.1} ms, max {:.1} ms",
        rss_kib(pid) / 1024,
        peak / 1024,
        ms(percentile(&times, 50)),
        ms(percentile(&times, 100))
    );
    Ok(())
}
