//! `muster server …`, `muster ls`, `muster proxy` and `muster attach --via`: the servers of this user.

use super::*;

pub(super) fn server_cmd(root: &Path, action: ServerCmd) -> Result<ExitCode> {
    let run_dir = crate::ipc::run_dir(root)?;
    match action {
        ServerCmd::Run { palette } => {
            let _log = init_logging();
            let palette = match palette {
                Some(p) => serde_json::from_str(&p).context("reading --palette")?,
                None => crate::term::Palette::default(),
            };
            crate::server::run(engine_config(root, palette)?)?;
        }
        ServerCmd::Status => {
            let Some(pid) = crate::ipc::holder(&run_dir) else {
                println!("not running for {}", root.display());
                return Ok(ExitCode::from(3));
            };
            match crate::server::info(&run_dir) {
                Some(i) => {
                    let up = crate::engine::agent::now_ms().saturating_sub(i.started_ms) / 1000;
                    println!("running: pid {pid}, muster {} (protocol {}), up {}", i.muster, i.protocol, age(up));
                    println!("clients: {}", i.clients);
                }
                None => println!("running: pid {pid} (a workbench that runs its crew itself, no server)"),
            }
            println!("socket:  {}", run_dir.join(crate::server::SOCKET).display());
            println!("log:     {}", run_dir.join(crate::server::LOG).display());
            let (saved, _, _) = engine::store::load_live(root)?;
            println!("agents:  {}", state_counts(&saved.agents));
        }
        ServerCmd::Stop { yes } => {
            let Some(pid) = crate::ipc::holder(&run_dir) else {
                println!("not running for {}", root.display());
                return Ok(ExitCode::SUCCESS);
            };
            let (saved, _, _) = engine::store::load_live(root)?;
            let running = saved.agents.iter().filter(|a| a.state.is_running()).count();
            if running > 0
                && !yes
                && !confirm(&format!("stop {} (checkpointed first)?", crate::text::counted(running, "running agent")))?
            {
                eprintln!(
                    "muster: not stopped ({} running; --yes stops them without asking)",
                    crate::text::counted(running, "agent")
                );
                return Ok(ExitCode::from(1));
            }
            // The server stops its crew on SIGTERM as on the stop key; a signal works across protocol versions.
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).context("a bad pid in the lock")?,
                rustix::process::Signal::TERM,
            )
            .with_context(|| format!("signalling muster pid {pid}"))?;
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            // Gone means the process ended (its socket removed), not only that it let go of the lock.
            let alive = |pid: u32| {
                std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .is_ok_and(|s| !s.lines().any(|l| l.starts_with("State:") && l.contains("Z (")))
            };
            while crate::ipc::holder(&run_dir) == Some(pid) || alive(pid) {
                if std::time::Instant::now() > deadline {
                    bail!(
                        "muster pid {pid} did not stop within 30 s (see {})",
                        run_dir.join(crate::server::LOG).display()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            println!("stopped (pid {pid}, {})", crate::text::counted(running, "agent"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Ask on the terminal; no terminal means no.
pub(super) fn confirm(question: &str) -> Result<bool> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub(super) fn age(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        _ => format!("{}h{:02}m", secs / 3600, secs / 60 % 60),
    }
}

/// "2 busy, 1 waiting" for a crew.
pub(super) fn state_counts(agents: &[engine::store::SavedAgent]) -> String {
    let mut counts: Vec<(engine::AgentState, usize)> = Vec::new();
    for a in agents {
        match counts.iter_mut().find(|(s, _)| *s == a.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((a.state, 1)),
        }
    }
    if counts.is_empty() {
        return "none".into();
    }
    counts.iter().map(|(s, n)| format!("{n} {}", s.label())).collect::<Vec<_>>().join(", ")
}

/// `muster ls`: this user's servers.
pub(super) fn ls() -> Result<()> {
    let roots = crate::roster_watch::running_roots();
    if roots.is_empty() {
        println!("no muster runs for this user");
    }
    for root in roots {
        let run_dir = crate::ipc::run_dir(&root)?;
        let pid = crate::ipc::holder(&run_dir).map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        let info = crate::server::info(&run_dir);
        let clients =
            info.as_ref().map(|i| crate::text::counted(i.clients, "client")).unwrap_or_else(|| "no server".into());
        let agents = engine::store::load_live(&root).map(|(s, _, _)| state_counts(&s.agents)).unwrap_or_default();
        println!("{pid:>8}  {}  {clients}  {agents}", root.display());
    }
    Ok(())
}

/// `muster proxy`: this repository's server on standard input and output.
pub(super) fn proxy(root: &Path) -> Result<()> {
    let stream = crate::server::spawn::connect_or_start(root, &[])?;
    let mut from_server = stream.try_clone()?;
    let mut to_server = stream;
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_server);
        let _ = to_server.shutdown(std::net::Shutdown::Write);
    });
    // Standard output is line-buffered and frames are binary: each read goes out whole, at once.
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match std::io::Read::read(&mut from_server, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if std::io::Write::write_all(&mut out, &buf[..n])
                    .and_then(|()| std::io::Write::flush(&mut out))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(up);
    Ok(())
}

/// `muster attach --via CMD`: the workbench on the server CMD's standard input and output reach.
pub(super) fn attach_via(via: &str, theme: Option<&str>) -> Result<()> {
    let _log = init_logging();
    let look = look(None, theme)?;
    let mut child = std::process::Command::new("sh")
        .args(["-c", via])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running `{via}`"))?;
    let (Some(input), Some(output), Some(mut errors)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        bail!("no pipes to `{via}`");
    };
    // What the transport says on stderr (ssh's prompts and errors) would scribble over the screen: kept for after.
    let said = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::Read::take(&mut errors, 64 << 10), &mut text);
        text
    });
    let result = workbench(Box::new(output), Box::new(input), via.to_string(), look, false);
    let _ = child.kill();
    let _ = child.wait();
    let said = said.join().unwrap_or_default();
    if result.is_err() && !said.trim().is_empty() {
        eprintln!("{}", said.trim_end());
    }
    result
}
