//! The mailbox's figures (issue #11): opening a large mailbox, a send seen by another client, delivery after
//! an agent comes back to its prompt, and sends per second through the server.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::{ms, percentile, ServedCrew};
use crate::app::{update, Msg, State};
use crate::config::keymap::Keymap;
use crate::config::theme::{ColorMode, Theme};
use crate::engine::script_socket::{self, Request};
use crate::engine::{self, AgentInfo, AgentState};
use crate::mailbox::receipt::Step;
use crate::mailbox::{NewMail, Store};
use crate::protocol::mail::{MailAnswer, MailOp, OPERATOR};

pub fn run() -> Result<()> {
    open_large(10_000)?;
    let crew = ServedCrew::start_crew(CREW)?;
    send_to_visible(&crew, 20)?;
    sends_per_second(&crew, 4, Duration::from_secs(5))?;
    drop(crew);
    delivery_after_idle(10)
}

/// An agent stuck at a question (mail for it waits), and one that works one second per message and logs when
/// it is back at its prompt and when a mail's first line reaches it.
const CREW: &str = "[[agent]]\nname = \"asks\"\nkind = \"demo\"\ncommand = \"bash\"\n\
                    args = [\"-c\", \"printf 'Continue? [y/n] '; exec sleep 100000\"]\n";

/// The newest messages a server reads at start (and sends a client), and the crew's mailbox view drawn.
fn open_large(n: usize) -> Result<()> {
    let dir = super::tempfile_dir()?;
    let path = dir.join("mail.db");
    let names: Vec<String> = (0..16).map(|i| format!("a{i}")).collect();
    {
        let mut store = Store::open(&path)?;
        for i in 0..n {
            let (from, to) = (&names[i % 16], &names[(i * 7 + 3) % 16]);
            let ask = i % 50 == 0;
            let recipients = if ask { vec![OPERATOR.to_string()] } else { vec![to.clone()] };
            let new = NewMail {
                from: from.clone(),
                to: recipients.clone(),
                recipients,
                body: format!("message {i}: please look at src/m{:03}.rs and tell me what you find", i % 300),
                ask,
                ..Default::default()
            };
            let m = store.send(&new, 1_700_000_000_000 + i as u64)?;
            if !ask && i % 3 != 0 {
                store.apply_all(
                    &[(m.id, to.clone(), Step::Confirm("typed".into())), (m.id, to.clone(), Step::Seen)],
                    1_700_000_000_000 + i as u64,
                )?;
            }
        }
    }
    let mut opens = Vec::new();
    let mut loaded = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let store = Store::open(&path)?;
        loaded = store.recent(engine::MAIL_SNAPSHOT)?;
        opens.push(t.elapsed());
    }
    let mut views = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut state =
            State::new("bench".into(), Keymap::builtin(), Theme::builtin("default", ColorMode::TrueColor), (120, 40));
        state.agents = names
            .iter()
            .map(|n| crate::app::AgentView {
                info: AgentInfo::new(n, "demo", AgentState::Idle),
                screen: None,
                checkpoints: Vec::new(),
                attention: false,
                unseen: false,
                in_turn: false,
            })
            .collect();
        update(&mut state, Msg::Engine(engine::Event::Mail(loaded.clone())));
        update(&mut state, Msg::Key(crate::key::Key::parse("I").map_err(anyhow::Error::msg)?));
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).context("test backend")?;
        terminal.draw(|f| crate::ui::render(&state, f))?;
        views.push(t.elapsed());
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "a mailbox of {n} messages: the server opens it and reads the newest {} in p50 {:.1} ms (max {:.1}); \
         the crew's mailbox view takes them and draws at 120x40 in p50 {:.1} ms (max {:.1}); 5 rounds each",
        loaded.len(),
        ms(percentile(&opens, 50)),
        ms(percentile(&opens, 100)),
        ms(percentile(&views, 50)),
        ms(percentile(&views, 100)),
    );
    Ok(())
}

fn operator(crew: &ServedCrew, op: MailOp) -> Result<MailAnswer> {
    let run_dir = crate::ipc::run_dir(&crew.root)?;
    let req = Request::Mail { agent: None, token: None, op };
    match script_socket::ask(&run_dir, &req, Some(Duration::from_secs(10)))?.context("the server did not answer")? {
        crate::protocol::script::Answer::Mail(a) => Ok(a),
        other => anyhow::bail!("the server answered {other:?}"),
    }
}

/// `muster mail send` run as a command, until a client of the server has the message.
fn send_to_visible(crew: &ServedCrew, n: usize) -> Result<()> {
    let (_client, rx, socket) = crew.client()?;
    let _end = super::defer_shutdown(socket);
    // The snapshot and the crew's first states first.
    while rx.recv_timeout(Duration::from_millis(300)).is_ok() {}
    let mut samples = Vec::new();
    for i in 0..n {
        let body = format!("visible {i}");
        let t = Instant::now();
        let out = std::process::Command::new(std::env::current_exe()?)
            .arg("-C")
            .arg(&crew.root)
            .args(["mail", "send", "--to", "asks", &body])
            .output()?;
        anyhow::ensure!(out.status.success(), "mail send: {}", String::from_utf8_lossy(&out.stderr));
        loop {
            match rx.recv_timeout(Duration::from_secs(10)).context("the client never saw the mail")? {
                crate::tui::AppMsg::Engine(engine::Event::Mail(m)) if m.iter().any(|m| m.body == body) => break,
                _ => {}
            }
        }
        samples.push(t.elapsed());
    }
    println!(
        "`muster mail send` (the command, from its start) → the message on another client: p50 {:.1} ms, max {:.1} ms \
         ({n} sends)",
        ms(percentile(&samples, 50)),
        ms(percentile(&samples, 100))
    );
    Ok(())
}

/// Several scripts sending at once through the server's socket, each request on its own connection, for
/// `span`; a client attached meanwhile (every message is broadcast to it).
fn sends_per_second(crew: &ServedCrew, threads: usize, span: Duration) -> Result<()> {
    let (_client, rx, socket) = crew.client()?;
    let _end = super::defer_shutdown(socket);
    let drain = std::thread::spawn(move || while rx.recv_timeout(Duration::from_secs(2)).is_ok() {});
    let run_dir = crate::ipc::run_dir(&crew.root)?;
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|w| {
            let run_dir = run_dir.clone();
            std::thread::spawn(move || -> usize {
                let mut sent = 0;
                while start.elapsed() < span {
                    let op = MailOp::Send {
                        to: vec!["asks".into()],
                        body: format!("load {w}-{sent}"),
                        reply_to: None,
                        urgent: false,
                        ask: false,
                        expires: None,
                    };
                    let req = Request::Mail { agent: None, token: None, op };
                    match script_socket::ask(&run_dir, &req, Some(Duration::from_secs(10))) {
                        Ok(Some(crate::protocol::script::Answer::Mail(MailAnswer::Sent { .. }))) => sent += 1,
                        _ => break,
                    }
                }
                sent
            })
        })
        .collect();
    let total: usize = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    let elapsed = start.elapsed();
    let _ = drain.join();
    println!(
        "sends through the server ({threads} scripts at once, a connection each, one client attached): {:.0} per \
         second sustained over {:.1} s ({total} stored)",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    Ok(())
}

/// An agent that works a second per message: mail sent while it works is typed in when it is back at its
/// prompt. Measured by the agent itself: when it printed its prompt, and when the mail's first line reached it.
fn delivery_after_idle(n: usize) -> Result<()> {
    let script = "while :; do echo work $(date +%s%N) >> log; printf 'working'; sleep 1; printf '\\\\n'; \
                  echo idle $(date +%s%N) >> log; printf 'demo> '; IFS= read -r line; echo got $(date +%s%N) >> log; \
                  while IFS= read -r -t 0.3 more; do :; done; done";
    let toml = format!("[[agent]]\nname = \"w\"\nkind = \"demo\"\ncommand = \"bash\"\nargs = [\"-c\", \"{script}\"]\n");
    let crew = ServedCrew::start_crew(&toml)?;
    let log = crate::git::worktree::worktree_path(&crew.root, "w").join("log");
    let entries = || -> Vec<(String, u64)> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (what, at) = l.split_once(' ')?;
                Some((what.to_string(), at.trim().parse().ok()?))
            })
            .collect()
    };
    let mut samples = Vec::new();
    let end = Instant::now() + Duration::from_secs(20 + 3 * n as u64);
    while samples.len() < n && Instant::now() < end {
        // Sent while it works (its prompt comes after the second of `working`); one that sits at its prompt
        // (the crew started before this loop) is given a first mail, not measured.
        let measured = match entries().last() {
            Some((w, _)) if w == "work" => true,
            Some((w, _)) if w == "idle" => false,
            _ => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let before = entries().iter().filter(|(w, _)| w == "got").count();
        let body = format!("task {before}");
        let sent = operator(
            &crew,
            MailOp::Send { to: vec!["w".into()], body, reply_to: None, urgent: false, ask: false, expires: None },
        )?;
        anyhow::ensure!(matches!(sent, MailAnswer::Sent { .. }), "not sent: {sent:?}");
        while entries().iter().filter(|(w, _)| w == "got").count() == before && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        let e = entries();
        let got = e.iter().rposition(|(w, _)| w == "got");
        let idle = got.and_then(|g| e[..g].iter().rposition(|(w, _)| w == "idle"));
        if let (true, Some(g), Some(i)) = (measured, got, idle) {
            samples.push(Duration::from_nanos(e[g].1.saturating_sub(e[i].1)));
        }
    }
    anyhow::ensure!(!samples.is_empty(), "no delivery measured: {:?}", std::fs::read_to_string(&log));
    println!(
        "mail sent while an agent works → typed in once it is back at its prompt (its own clock): p50 {:.0} ms, \
         max {:.0} ms ({} deliveries)",
        ms(percentile(&samples, 50)),
        ms(percentile(&samples, 100)),
        samples.len()
    );
    Ok(())
}
