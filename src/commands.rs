//! What each subcommand does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::app::State;
use crate::cli::{CheckpointCmd, Cli, Cmd, ConflictsCmd, ServerCmd, Take};
use crate::config::keymap::Keymap;
use crate::config::theme::{ColorMode, Theme};
use crate::config::{paths, preset, user, Warning};
use crate::engine::{self, EngineConfig};
use crate::git::worktree::find_repo_root;

mod mail;
mod printable;
pub(crate) use printable::{printable, printable_line};

pub fn run(cli: Cli) -> Result<ExitCode> {
    let dir = match &cli.dir {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("reading the current directory")?,
    };
    if one_shot(cli.command.as_ref()) {
        quiet_broken_pipe();
    }
    match cli.command {
        None => {
            let root = find_repo_root(&dir)?;
            open(&root, cli.theme.as_deref(), false)?;
        }
        Some(Cmd::Demo { agents }) => {
            let root = crate::demo::create_repo(&std::env::temp_dir(), agents.max(1))?;
            open(&root, cli.theme.as_deref(), true)?;
            println!("demo repository kept at {}", root.display());
        }
        Some(Cmd::Server { action }) => return server_cmd(&find_repo_root(&dir)?, action),
        Some(Cmd::Ls) => ls()?,
        Some(Cmd::Schema) => print!("{}", engine::hooks::SCHEMA),
        Some(Cmd::Proxy) => proxy(&find_repo_root(&dir)?)?,
        Some(Cmd::Attach { via }) => attach_via(&via, cli.theme.as_deref())?,
        Some(Cmd::Init { force }) => init(&find_repo_root(&dir)?, force)?,
        Some(Cmd::Doctor) => return doctor(&dir),
        Some(Cmd::Status { json, format }) => status(&find_repo_root(&dir)?, json, format.as_deref())?,
        Some(Cmd::Mail { action }) => return mail::run(&dir, action),
        Some(Cmd::Checkpoint { action }) => return checkpoint_cmd(&find_repo_root(&dir)?, action),
        Some(Cmd::Merge { agent, into_agent, message, finish, abort }) => {
            return merge_cmd(&find_repo_root(&dir)?, agent, into_agent, message, finish, abort)
        }
        Some(Cmd::Conflicts { agent, action }) => return conflicts_cmd(&find_repo_root(&dir)?, agent, action),
        Some(Cmd::Hook { event, payload }) => {
            let agent = std::env::var("MUSTER_AGENT").context("MUSTER_AGENT is not set: hooks run inside agents")?;
            let run_dir = std::env::var("MUSTER_RUN_DIR").context("MUSTER_RUN_DIR is not set")?;
            let token = std::env::var("MUSTER_AGENT_TOKEN").unwrap_or_default();
            // A hook must never break the agent that runs it: report failures, exit 0.
            let payload = payload.unwrap_or_else(engine::hooks::read_payload);
            if event == "Stop" {
                // Claude Code's Stop hook may hand the agent its mail as the next turn (JSON on stdout).
                if let Some(reason) = engine::hooks::take_mail(Path::new(&run_dir), &agent, &token) {
                    println!("{}", serde_json::json!({ "decision": "block", "reason": reason }));
                }
            }
            if let Err(e) = engine::hooks::report(Path::new(&run_dir), &agent, &token, &event, &payload) {
                let _ = std::io::Write::write_fmt(
                    &mut std::io::stderr(),
                    format_args!("muster hook: {event} of {agent} not reported: {e:#}\n"),
                );
            }
        }
        Some(Cmd::Watch { all }) => {
            let root = if all { find_repo_root(&dir).ok() } else { Some(find_repo_root(&dir)?) };
            crate::roster_watch::run(root.as_deref(), all)?
        }
        Some(Cmd::Send { agent, text, force, wait }) => {
            return send(&find_repo_root(&dir)?, &agent, text, force, wait.is_some())
        }
        Some(Cmd::Wait { agents, until, timeout }) => return wait(&find_repo_root(&dir)?, &agents, &until, timeout),
        Some(Cmd::Removed { prune, agent }) => removed(&find_repo_root(&dir)?, prune, agent.as_deref())?,
        Some(Cmd::Explain { agent }) => {
            let root = find_repo_root(&dir)?;
            print!("{}", printable(&engine::hooks::explain(&engine::hooks::run_dir(&root)?, &agent)?));
        }
        Some(Cmd::Bench {
            agents,
            seconds,
            checkpoints_only,
            conflicts_only,
            server_only,
            mail_only,
            terminal_only,
            floods_only,
        }) => {
            use crate::bench::Only;
            let only = match (checkpoints_only, conflicts_only, server_only, mail_only, terminal_only, floods_only) {
                (true, ..) => Only::Checkpoints,
                (_, true, ..) => Only::Conflicts,
                (_, _, true, ..) => Only::Server,
                (_, _, _, true, ..) => Only::Mail,
                (_, _, _, _, true, _) => Only::Terminal,
                (.., true) => Only::Floods,
                _ => Only::All,
            };
            crate::bench::run(agents, seconds, only)?
        }
        Some(Cmd::DemoAgent { resume, stream, think }) => crate::demo::agent::run(resume, stream, think)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Commands that print and end: a reader that goes away (`muster status | head -1`) ends them quietly.
fn one_shot(cmd: Option<&Cmd>) -> bool {
    matches!(
        cmd,
        Some(Cmd::Removed { .. })
            | Some(Cmd::Status { .. } | Cmd::Doctor | Cmd::Init { .. } | Cmd::Checkpoint { .. } | Cmd::Merge { .. })
            | Some(
                Cmd::Conflicts { .. }
                    | Cmd::Explain { .. }
                    | Cmd::Schema
                    | Cmd::Mail { .. }
                    | Cmd::Ls
                    | Cmd::Server { action: ServerCmd::Status | ServerCmd::Stop { .. } }
            )
    )
}

/// Rust ignores SIGPIPE, so `println!` panics on a closed pipe; a one-shot command should just end, as
/// `cat` does. The workbench keeps ignoring it: a hook client that hangs up must never kill the crew.
fn quiet_broken_pipe() {
    // SAFETY: setting a signal's disposition to the default before any other thread runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = paths::state_dir();
    std::fs::create_dir_all(&dir).ok()?;
    let appender = crate::logfile::CappedLog::open(&dir.join("muster.log"), crate::logfile::MAX_LOG).ok()?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("MUSTER_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_writer(writer).with_ansi(false).with_env_filter(filter).try_init().ok()?;
    Some(guard)
}

pub use crate::config::load_crew;

fn theme_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.join(".muster").join("themes")];
    if let Some(d) = paths::user_config_dir() {
        dirs.push(d.join("themes"));
    }
    dirs
}

/// What the engine of `root` runs with: its crew, the user's settings, the colours agents are told.
pub fn engine_config(root: &Path, palette: crate::term::Palette) -> Result<EngineConfig> {
    let (crew, user_cfg, warnings) = load_crew(root)?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    Ok(EngineConfig {
        root: root.to_path_buf(),
        crew,
        scrollback: user_cfg.scrollback,
        muster_exe: std::env::current_exe().context("locating the muster binary")?,
        stop_grace: Duration::from_secs(3),
        palette,
        checkpoint_every: Duration::from_secs(user_cfg.checkpoint_minutes.max(1) * 60),
    })
}

/// What the workbench shows with: keys, colours, settings, and what was wrong in the files they came from.
struct Look {
    keymap: Keymap,
    theme: Theme,
    user: user::UserConfig,
    warnings: Vec<Warning>,
}

fn look(root: Option<&Path>, theme: Option<&str>) -> Result<Look> {
    let (user_cfg, mut warnings) = match root {
        // The crew file is checked here too: a broken one is an error on this terminal, not in a server's log.
        Some(root) => {
            let (_, u, w) = load_crew(root)?;
            (u, w)
        }
        None => user::load(),
    };
    let (keymap, kw) = Keymap::load(root);
    warnings.extend(kw);
    // A theme the config file names that does not exist is said at the config file's line, not `--theme`.
    let from_config = theme.is_none() && user_cfg.theme.is_some();
    let theme_name = theme.map(str::to_string).or(user_cfg.theme.clone()).unwrap_or_else(|| "default".into());
    let dirs = root.map(theme_dirs).unwrap_or_default();
    let (theme, tw) = Theme::load(&theme_name, &dirs, ColorMode::from_env());
    warnings.extend(tw.into_iter().map(|w| match w.0.file == Path::new("--theme") && from_config {
        true => user::warning_at_key("theme", w.0.message.clone()).unwrap_or(w),
        false => w,
    }));
    for w in &warnings {
        tracing::warn!("{w}");
    }
    Ok(Look { keymap, theme, user: user_cfg, warnings })
}

/// The workbench on the repository's crew, in its server (started detached when none runs). In the demo,
/// quitting stops the crew: its repository is a throwaway one that nobody comes back to.
fn open(root: &Path, theme: Option<&str>, demo: bool) -> Result<()> {
    let _log = init_logging();
    let look = look(Some(root), theme)?;
    let palette = outer_palette(&look.theme);
    let args = vec!["--palette".to_string(), serde_json::to_string(&palette)?];
    let stream = crate::server::spawn::connect_or_start(root, &args)?;
    let read = stream.try_clone().context("connecting to the muster server")?;
    let repo = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    workbench(Box::new(read), Box::new(stream), repo, look, demo)
}

/// Run the workbench as a client of the server at the other end of `read`/`write`.
fn workbench(
    read: Box<dyn std::io::Read + Send>,
    write: Box<dyn std::io::Write + Send>,
    repo: String,
    look: Look,
    quit_stops_crew: bool,
) -> Result<()> {
    use crate::protocol::{ClientKind, Hello};
    let (tx, rx) = crate::tui::channel();
    // A terminal larger than muster serves shows the top-left of it (the server refuses larger sizes).
    let size = crossterm::terminal::size().ok().map(|(c, r)| crate::protocol::clamp_size(r, c));
    let hello = Hello {
        kind: ClientKind::Tui,
        version: crate::protocol::VERSION,
        muster: env!("CARGO_PKG_VERSION").into(),
        size,
        colours: None,
    };
    let events = tx.clone();
    let (handle, welcome) = crate::client::attach(read, write, hello, move |m| {
        let _ = events.send(match m {
            crate::client::Incoming::Event(e) => crate::tui::AppMsg::Engine(e),
            crate::client::Incoming::Closed(reason) => crate::tui::AppMsg::Closed(reason),
        });
    })?;
    let mut state = State::new(repo, look.keymap, look.theme, (80, 24));
    state.bell_on_waiting = look.user.bell;
    state.detaches = !quit_stops_crew;
    state.warnings = look.warnings.iter().map(|w| w.0.to_string()).collect();
    if let Some(w) = look.warnings.first() {
        let more = match look.warnings.len() {
            1 => " (! lists it)".to_string(),
            n => format!(" (and {} more: ! lists them)", n - 1),
        };
        state.status = Some((format!("{w}{more}"), true));
    }
    let state = crate::tui::run(state, handle, tx, rx)?;
    if let Some(reason) = state.closed.as_deref().filter(|_| !state.quitting) {
        println!("muster: {reason}");
    } else if state.detaches && !state.quitting {
        let running = state.running();
        println!(
            "detached: {} {} running in the muster server (pid {}). `muster` attaches again; \
             `muster server stop` stops them.",
            crate::text::counted(running, "agent"),
            if running == 1 { "keeps" } else { "keep" },
            welcome.pid
        );
    }
    Ok(())
}

/// The colours agents are told the terminal has: the real terminal's answers, else the theme's.
fn outer_palette(theme: &Theme) -> crate::term::Palette {
    use ratatui::style::Color;
    let mut fallback = crate::term::Palette::default();
    let style = theme.style("terminal");
    if let Some(Color::Rgb(r, g, b)) = style.fg {
        fallback.foreground = (r, g, b);
    }
    if let Some(Color::Rgb(r, g, b)) = style.bg {
        fallback.background = (r, g, b);
    }
    if crossterm::terminal::enable_raw_mode().is_err() {
        return fallback;
    }
    let palette = crate::term::outer::query_palette(fallback);
    let _ = crossterm::terminal::disable_raw_mode();
    palette
}

fn init(root: &Path, force: bool) -> Result<()> {
    let path = root.join(".muster").join("crew.toml");
    if path.exists() && !force {
        bail!("{} exists (use --force to overwrite)", path.display());
    }
    let dir = crate::safefs::real_dir(root, ".muster")?;
    crate::safefs::write_file(&dir, "crew.toml", crate::config::crew::TEMPLATE.as_bytes())?;
    crate::git::worktree::ensure_excluded(root)?;
    println!("wrote {}", path.display());
    Ok(())
}

fn doctor(dir: &Path) -> Result<ExitCode> {
    let mut ok = true;
    let mut line = |good: bool, what: &str, detail: String| {
        println!("{} {what:<10} {detail}", if good { "✔" } else { "✗" });
        ok &= good;
    };
    let root = find_repo_root(dir);
    match &root {
        Ok(root) => line(true, "git", format!("repository at {}", root.display())),
        Err(e) => line(false, "git", format!("{e:#}")),
    }
    if let Ok(root) = &root {
        let limit =
            |name: &str| std::fs::read_to_string(format!("/proc/sys/fs/inotify/{name}")).map(|s| s.trim().to_string());
        let limits = match (limit("max_user_watches"), limit("max_user_instances")) {
            (Ok(w), Ok(i)) => format!(" (limits: {w} folders, {i} watchers per user)"),
            _ => String::new(),
        };
        // Without it checkpoints still work, scanning every file: a warning, not a failure.
        match crate::git::watch::WorktreeWatch::new(root) {
            Ok(_) => println!("✔ {:<10} file watcher works{limits}", "watcher"),
            Err(e) => println!("- {:<10} no file watcher ({e:#}): checkpoints scan every file", "watcher"),
        }
    }
    if let Ok(root) = &root {
        match crate::ipc::run_dir(root) {
            Ok(run) => {
                let holder = match crate::ipc::holder(&run) {
                    Some(pid) => format!("; muster pid {pid} runs the crew"),
                    None => String::new(),
                };
                line(true, "run folder", format!("{} (private){holder}", run.display()))
            }
            Err(e) => line(false, "run folder", format!("{e:#}")),
        }
    }
    println!("✔ {:<10} {}", "pause", crate::pty::tree::probe().describe());
    let term = std::env::var("TERM").unwrap_or_default();
    line(!term.is_empty() && term != "dumb", "terminal", format!("TERM={term}, colour: {:?}", ColorMode::from_env()));
    if std::env::var_os("TMUX").is_some() {
        println!("  inside tmux: agents get a clean environment without TMUX");
    }
    for (name, p) in preset::builtin() {
        if p.command.starts_with('{') || p.command.is_empty() {
            continue;
        }
        match which(&p.command) {
            Some(path) => println!("✔ {name:<10} {}", path.display()),
            None => println!("- {name:<10} not on PATH"),
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

/// The crew as the running server has it now; else as the state file says, with no pid.
fn live_crew(root: &Path) -> Result<(engine::store::SavedCrew, Option<u32>)> {
    let run_dir = crate::ipc::run_dir(root)?;
    if let Some(pid) = crate::ipc::holder(&run_dir) {
        let req = engine::hooks::Request::Status {};
        if let Some(answer) = engine::hooks::ask(&run_dir, &req, Some(Duration::from_secs(5)))? {
            let (crew, _) = engine::store::parse(root, Path::new("server"), answer.into_bytes())
                .context("reading the server's answer")?;
            return Ok((crew, Some(pid)));
        }
    }
    let (saved, warnings, running) = engine::store::load_live(root)?;
    for w in warnings {
        eprintln!("muster: {}", printable_line(&w));
    }
    Ok((saved, running))
}

fn status(root: &Path, json: bool, format: Option<&str>) -> Result<()> {
    let (mut saved, running) = live_crew(root)?;
    if running.is_none() {
        // Without a server the crew file says who the crew is (a broken one is an error, named where): agents
        // never started are listed as stopped.
        let (crew, _, _) = load_crew(root)?;
        for spec in crew.agents {
            if saved.agents.iter().all(|a| a.spec.name != spec.name) {
                saved.agents.push(engine::store::SavedAgent {
                    branch: crate::git::worktree::branch_name(&spec.name),
                    worktree: crate::git::worktree::worktree_path(root, &spec.name),
                    spec,
                    base: String::new(),
                    state: engine::AgentState::Stopped,
                    exit: None,
                    ran: false,
                    port_base: 0,
                    session: None,
                    run: 0,
                });
            }
        }
    }
    if json {
        let mut v = serde_json::to_value(&saved)?;
        v["running_pid"] = serde_json::json!(running);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if format == Some("tmux") {
        println!("{}", tmux_status(&saved.agents, running.is_some()));
        return Ok(());
    }
    for a in &saved.agents {
        let exit = a.exit.map(|e| format!(" ({e})")).unwrap_or_default();
        let never = if a.ran || a.state.is_running() { "" } else { " (never started)" };
        let state = a.state.label();
        let line = format!("{:<16} {:<9} {:<20} {state}{exit}{never}", a.spec.name, a.spec.kind, a.branch);
        println!("{}", printable_line(&line));
    }
    Ok(())
}

/// One line for a tmux status bar: how many agents are in each state, waiting ones first and highlighted.
fn tmux_status(agents: &[engine::store::SavedAgent], running: bool) -> String {
    use engine::AgentState as S;
    if !running {
        return "muster: not running".into();
    }
    let order = [S::Waiting, S::Error, S::Busy, S::Idle, S::Paused, S::Starting, S::Exited, S::Stopped];
    let parts: Vec<String> = order
        .iter()
        .filter_map(|&s| {
            let n = agents.iter().filter(|a| a.state == s).count();
            (n > 0).then(|| match s {
                S::Waiting | S::Error => format!("#[fg=yellow,bold]{}{n}#[default]", s.glyph()),
                _ => format!("{}{n}", s.glyph()),
            })
        })
        .collect();
    if parts.is_empty() {
        "muster: no agents".into()
    } else {
        parts.join(" ")
    }
}

fn send(root: &Path, agent: &str, text: Option<String>, force: bool, wait: bool) -> Result<ExitCode> {
    let text = match text {
        Some(t) => t,
        None => {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::Read::take(std::io::stdin(), 1 << 20), &mut t)
                .context("reading the message")?;
            t.trim_end_matches('\n').to_string()
        }
    };
    if let Err(e) = crate::protocol::mail::check_body(&text) {
        eprintln!("muster: {e}");
        return Ok(ExitCode::from(1));
    }
    let run_dir = crate::ipc::run_dir(root)?;
    if crate::ipc::holder(&run_dir).is_none() {
        eprintln!("muster: not running for {}", root.display());
        return Ok(ExitCode::from(3));
    }
    let mut code = ExitCode::from(3);
    engine::hooks::send(&run_dir, agent, &text, force, wait, |answer| {
        if let Some(error) = answer.strip_prefix("error: ") {
            // Said once, on stderr, with the exit code `--help` gives: 3 when there is nobody to send to.
            let gone = error.starts_with("no agent named") || error.contains("is not running");
            let error = error.replace("(confirm to send anyway)", "(--force sends it anyway)");
            eprintln!("muster: {}", printable_line(&error));
            code = ExitCode::from(if gone { 3 } else { 1 });
            return;
        }
        code = match answer {
            "sent" | "idle" => ExitCode::SUCCESS,
            "waiting" => ExitCode::from(2),
            _ => ExitCode::from(3),
        };
        if answer != "sent" || !wait {
            println!("{}", printable_line(answer));
        }
    })?;
    Ok(code)
}

/// `muster wait`: the server answers at the transition. Without one nothing can change: the state file says
/// whether the agents are known, and that their runs are over.
fn wait(root: &Path, agents: &[String], until: &str, timeout: Option<f64>) -> Result<ExitCode> {
    use engine::supervisor::WaitFor;
    let run_dir = crate::ipc::run_dir(root)?;
    let until_state = match until {
        "idle" => WaitFor::Idle,
        "waiting" => WaitFor::Waiting,
        "exited" => WaitFor::Exited,
        _ => WaitFor::Any,
    };
    if crate::ipc::holder(&run_dir).is_some() {
        let req = engine::hooks::Request::Wait { agents: agents.to_vec(), until: until_state, timeout };
        let within = timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
        match engine::hooks::ask(&run_dir, &req, within) {
            Ok(Some(answer)) => {
                return Ok(match answer.split_once(' ') {
                    None if answer == "matched" => ExitCode::SUCCESS,
                    Some(("ended", name)) => {
                        eprintln!("muster: {name} is not running (its run ended)");
                        ExitCode::from(3)
                    }
                    Some((_, name)) => {
                        eprintln!("muster: no agent `{name}` in this crew");
                        ExitCode::from(3)
                    }
                    None => bail!("muster answered `{answer}`"),
                });
            }
            Ok(None) if timeout.is_some() && crate::ipc::holder(&run_dir).is_some() => return Ok(ExitCode::from(124)),
            // It ended meanwhile: the state file has the last word.
            _ => {}
        }
    }
    wait_on_file(root, agents, until, timeout)
}

/// `muster wait` without a server: polls the state file (an older muster that runs its crew in its window
/// keeps it current within a second).
fn wait_on_file(root: &Path, agents: &[String], until: &str, timeout: Option<f64>) -> Result<ExitCode> {
    use engine::AgentState as S;
    let matches = |s: S| match until {
        "idle" => s == S::Idle,
        "waiting" => s == S::Waiting,
        "exited" => !s.is_running(),
        _ => matches!(s, S::Idle | S::Waiting) || !s.is_running(),
    };
    let deadline = timeout.map(|t| std::time::Instant::now() + Duration::from_secs_f64(t.max(0.0)));
    let mut runs: std::collections::HashMap<String, u64> = Default::default();
    loop {
        let (saved, _, running) = engine::store::load_live(root)?;
        let running = running.is_some();
        let mut all = true;
        for name in agents {
            let Some(a) = saved.agents.iter().find(|a| &a.spec.name == name) else {
                eprintln!("muster: no agent `{name}` in this crew");
                return Ok(ExitCode::from(3));
            };
            let run = *runs.entry(name.clone()).or_insert(a.run);
            // Without a muster, or in a later run, the run this wait began on has ended.
            let ended = !running || a.run != run;
            if ended && until != "exited" && until != "any" {
                eprintln!("muster: {name} is not running{}", if running { " (its run ended)" } else { "" });
                return Ok(ExitCode::from(3));
            }
            all &= ended || matches(a.state);
        }
        if all {
            return Ok(ExitCode::SUCCESS);
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Ok(ExitCode::from(124));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn removed(root: &Path, prune: bool, agent: Option<&str>) -> Result<()> {
    use crate::git::worktree;
    if let Some(a) = agent {
        crate::config::crew::validate_name(a).map_err(anyhow::Error::msg)?;
    }
    if prune {
        println!("forgot {} of removed agents", crate::text::counted(worktree::prune_removed(root, agent)?, "ref"));
        return Ok(());
    }
    let kept: Vec<_> =
        worktree::list_removed(root)?.into_iter().filter(|r| agent.is_none_or(|a| a == r.name)).collect();
    for r in &kept {
        let tip = r.tip.as_deref().map(|t| &t[..t.len().min(12)]).unwrap_or("-");
        println!(
            "{:<16} removed {:<12} tip {tip:<12} {}  {}",
            r.name,
            human_ago(r.removed_at),
            crate::text::counted(r.checkpoints, "checkpoint"),
            r.prefix
        );
    }
    if let Some(r) = kept.iter().find(|r| r.tip.is_some()) {
        println!("bring a branch back with: git branch {}-restored {}/branch", r.name, r.prefix);
    }
    Ok(())
}

/// The worktree of an agent: from the saved crew state, else the default place.
fn agent_worktree(root: &Path, agent: &str) -> Result<PathBuf> {
    let (saved, _) = engine::store::load(root)?;
    if saved.agents.iter().any(|a| a.spec.name == agent && !a.spec.worktree) {
        return Ok(root.to_path_buf());
    }
    match crate::git::worktree::existing_worktree(root, agent)? {
        Some(path) => Ok(path),
        None => bail!(
            "no agent `{agent}` in this crew (no worktree at {})",
            crate::git::worktree::worktree_path(root, agent).display()
        ),
    }
}

/// Run a change to an agent in the running engine, when one runs: `Some(exit code)` once it answered (printed),
/// `None` when no muster runs (the caller does the work itself).
fn through_server(root: &Path, command: engine::Command, trigger: Option<&str>) -> Result<Option<ExitCode>> {
    let run_dir = crate::ipc::run_dir(root)?;
    if crate::ipc::holder(&run_dir).is_none() {
        return Ok(None);
    }
    let req = engine::hooks::Request::Run { command, trigger: trigger.map(str::to_string) };
    let Some(answer) = engine::hooks::ask(&run_dir, &req, None)? else {
        bail!("the running muster did not answer (see {})", run_dir.join(crate::server::LOG).display())
    };
    Ok(Some(match answer.strip_prefix("error: ") {
        Some(e) => {
            eprintln!("muster: {e}");
            ExitCode::from(1)
        }
        None => {
            println!("{answer}");
            ExitCode::SUCCESS
        }
    }))
}

fn checkpoint_cmd(root: &Path, action: CheckpointCmd) -> Result<ExitCode> {
    use crate::git::checkpoint as cp;
    // What changes a worktree goes through the running engine, so it never races it there.
    let via = match &action {
        CheckpointCmd::Create { agent, trigger } => {
            Some((engine::Command::Checkpoint { name: agent.clone() }, Some(trigger.as_str())))
        }
        CheckpointCmd::Restore { agent, n, files, yes: true } => Some((
            engine::Command::Rollback { name: agent.clone(), n: *n, files: (!files.is_empty()).then(|| files.clone()) },
            None,
        )),
        CheckpointCmd::Undo { agent } => Some((engine::Command::UndoRollback { name: agent.clone() }, None)),
        _ => None,
    };
    if let Some((command, trigger)) = via {
        if let Some(code) = through_server(root, command, trigger)? {
            return Ok(code);
        }
    }
    let print_list = |agent: &str, wt: &Path| -> Result<()> {
        for c in cp::list(wt, agent)? {
            println!(
                "{agent:<12} #{:<4} {:<12} {:<34} {} +{} -{}",
                c.n,
                human_ago(c.time.max(0) as u64),
                c.trigger,
                crate::text::counted(c.files, "file"),
                c.added,
                c.removed
            );
        }
        Ok(())
    };
    match action {
        CheckpointCmd::List { agent: Some(agent) } => print_list(&agent, &agent_worktree(root, &agent)?)?,
        CheckpointCmd::List { agent: None } => {
            for a in engine::store::load(root)?.0.agents {
                print_list(&a.spec.name, &a.worktree)?;
            }
        }
        CheckpointCmd::Create { agent, trigger } => {
            let wt = agent_worktree(root, &agent)?;
            let (c, new) = cp::create(&wt, &agent, &trigger)?;
            println!("{} checkpoint {} of {agent}", if new { "created" } else { "unchanged since" }, c.n);
            cp::tidy(&wt);
        }
        CheckpointCmd::Diff { agent, n, worktree } => {
            let base = if worktree { cp::DiffBase::Worktree } else { cp::DiffBase::Previous };
            for f in cp::diff(&agent_worktree(root, &agent)?, &agent, n, base)? {
                println!("{} {} +{} -{}", f.status, f.path, f.added, f.removed);
                for (kind, text) in f.lines {
                    let prefix = match kind {
                        cp::LineKind::Added => "+",
                        cp::LineKind::Removed => "-",
                        cp::LineKind::Context => " ",
                        cp::LineKind::Hunk => "",
                    };
                    println!("{prefix}{text}");
                }
            }
        }
        CheckpointCmd::Restore { agent, n, files, yes } => {
            let wt = agent_worktree(root, &agent)?;
            let only = (!files.is_empty()).then_some(files);
            if !yes {
                let (changes, moves_head) = cp::rollback_preview(&wt, &agent, n, only.as_deref())?;
                println!(
                    "restoring checkpoint {n} of {agent} would change {}:",
                    crate::text::counted(changes.len(), "file")
                );
                for c in changes {
                    println!("  {c}");
                }
                if moves_head {
                    println!("and move {agent}'s branch back to the commit it was on then");
                }
                println!("run again with --yes to do it (a rescue checkpoint is taken first)");
                return Ok(ExitCode::from(2));
            }
            let r = cp::rollback(&wt, &agent, n, only.as_deref())?;
            println!("restored checkpoint {n} of {agent}: {} changed; `muster checkpoint undo {agent}` returns to checkpoint {}", crate::text::counted(r.changed.len(), "file"), r.rescue);
            cp::tidy(&wt);
        }
        CheckpointCmd::Undo { agent } => {
            let wt = agent_worktree(root, &agent)?;
            let r = cp::undo_rollback(&wt, &agent)?;
            println!(
                "back to checkpoint {} of {agent} ({} changed)",
                r.target,
                crate::text::counted(r.changed.len(), "file")
            );
            cp::tidy(&wt);
        }
        CheckpointCmd::Prune { agent, keep } => {
            println!("removed {} of {agent}", crate::text::counted(cp::prune(root, &agent, keep)?, "checkpoint"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The base branch an agent started from, from the saved crew state.
fn agent_base(root: &Path, agent: &str) -> Result<String> {
    let (saved, _) = engine::store::load(root)?;
    match saved.agents.iter().find(|a| a.spec.name == agent) {
        Some(a) if !a.base.is_empty() => Ok(a.base.clone()),
        _ => crate::git::worktree::current_branch(root),
    }
}

/// How long ago a moment (seconds since the epoch) was, as people say it: "just now", "12 s ago", "3 min ago",
/// "2 h ago", "5 days ago".
fn human_ago(at_s: u64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let s = now.saturating_sub(at_s);
    match s {
        0..5 => "just now".into(),
        5..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        86400..172800 => "1 day ago".into(),
        _ => format!("{} days ago", s / 86400),
    }
}

/// What to run next after a merge stopped on conflicts, exactly as it works from the main worktree (a merge
/// into the agent is in the agent's worktree, which `--agent` and `--into-agent` name).
fn conflicts_hint(agent: &str, into_agent: bool) -> String {
    let (conflicts, merge) = if into_agent {
        (format!("muster conflicts --agent {agent}"), format!("muster merge {agent} --into-agent"))
    } else {
        ("muster conflicts".to_string(), format!("muster merge {agent}"))
    };
    format!(
        "resolve them ({conflicts} list; {conflicts} resolve FILE --take ours|theirs|both; or edit the file), then \
         {merge} --finish, or {merge} --abort"
    )
}

fn merge_cmd(
    root: &Path,
    agent: Option<String>,
    into_agent: bool,
    message: Option<String>,
    finish: bool,
    abort: bool,
) -> Result<ExitCode> {
    use crate::git::merge;
    let where_ = match (&agent, into_agent) {
        (Some(a), true) => agent_worktree(root, a)?,
        _ => root.to_path_buf(),
    };
    // Through the running engine, which knows which agent's merge it is (for --finish and --abort, the named
    // one, else the agent whose branch the main worktree is merging).
    let named = agent.clone().or_else(|| merging_agent(root));
    if let Some(name) = named {
        let hint = conflicts_hint(&name, into_agent);
        let command = if abort {
            engine::Command::AbortMerge { name }
        } else if finish {
            engine::Command::FinishMerge { name, message: message.clone() }
        } else {
            engine::Command::Merge { name, into_agent, message: message.clone() }
        };
        if let Some(code) = through_server(root, command, None)? {
            if !abort && !finish && merge::in_progress(&where_) {
                for f in merge::conflicts(&where_)? {
                    println!("  {:<16} {}", f.kind.label(), f.path);
                }
                println!("{hint}");
                return Ok(ExitCode::from(2));
            }
            return Ok(code);
        }
    }
    if abort {
        merge::abort(&where_)?;
        println!("merge aborted: {} is as it was before", where_.display());
        return Ok(ExitCode::SUCCESS);
    }
    if finish {
        let commit = merge::finish(&where_, message.as_deref())?;
        println!("merged: {commit}");
        return Ok(ExitCode::SUCCESS);
    }
    let agent = agent.context("name the agent to merge")?;
    let wt = agent_worktree(root, &agent)?;
    let base = agent_base(root, &agent)?;
    let branch = crate::git::worktree::branch_name(&agent);
    crate::git::checkpoint::create(&wt, &agent, "before merge")?;
    let (theirs, msg) = if into_agent {
        (base.clone(), message.unwrap_or_else(|| format!("Merge {base} into {branch}")))
    } else {
        (branch.clone(), message.unwrap_or_else(|| format!("Merge {branch} into {base}")))
    };
    match merge::merge(&where_, &theirs, &msg)? {
        merge::MergeOutcome::UpToDate => println!("already up to date"),
        merge::MergeOutcome::Merged { commit } => println!("merged {theirs}: {commit}"),
        merge::MergeOutcome::Conflicts { files } => {
            println!("{} in {}:", crate::text::counted(files.len(), "conflicted file"), where_.display());
            for f in files {
                println!("  {:<16} {}", f.kind.label(), f.path);
            }
            println!("{}", conflicts_hint(&agent, into_agent));
            return Ok(ExitCode::from(2));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn conflicts_cmd(root: &Path, agent: Option<String>, action: ConflictsCmd) -> Result<ExitCode> {
    use crate::conflict::{parse, Choice, Resolver, WholeFile};
    use crate::git::merge;
    let wt = match &agent {
        Some(a) => agent_worktree(root, a)?,
        None => root.to_path_buf(),
    };
    match action {
        ConflictsCmd::List => {
            for f in merge::conflicts(&wt)? {
                let count = if f.kind.has_markers() {
                    let bytes = std::fs::read(wt.join(&f.path)).unwrap_or_default();
                    match parse(&bytes, crate::git::merge::marker_size(&wt, &f.path)) {
                        Ok(p) => crate::text::counted(p.conflict_count(), "conflict"),
                        Err(e) => format!("malformed: {e}"),
                    }
                } else {
                    "pick a side".to_string()
                };
                println!("{:<16} {:<40} {count}", f.kind.label(), f.path);
            }
        }
        ConflictsCmd::Resolve { file, take, conflict } => {
            let path = wt.join(&file);
            let conflicted = merge::conflicts(&wt)?.into_iter().find(|c| c.path == file);
            if let Some(c) = conflicted.as_ref().filter(|c| !c.kind.has_markers()) {
                let side = match take {
                    Take::Ours => merge::Side::Ours,
                    Take::Theirs => merge::Side::Theirs,
                    _ => bail!("{file} is a {} conflict without markers: take ours or theirs", c.kind.label()),
                };
                if let Some(name) = agent.clone().or_else(|| merging_agent(root)) {
                    let command = engine::Command::TakeSide { name, path: file.clone(), side };
                    if let Some(code) = through_server(root, command, None)? {
                        return Ok(code);
                    }
                }
                merge::take_side(&wt, &file, side)?;
                println!("{file}: took {}", if side == merge::Side::Ours { "ours" } else { "theirs" });
                return Ok(ExitCode::SUCCESS);
            }
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let parsed = match parse(&bytes, crate::git::merge::marker_size(&wt, &file)) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("muster: {file}:{}: {}; the file was not changed", e.line, e.message);
                    return Ok(ExitCode::from(3));
                }
            };
            let mut r = Resolver::new(parsed);
            if r.is_empty() {
                bail!("{file} has no conflict markers");
            }
            let choice = match take {
                Take::Ours => Choice::Ours,
                Take::Theirs => Choice::Theirs,
                Take::Base => Choice::Base,
                Take::Both | Take::Union => Choice::Both,
            };
            match conflict {
                Some(n) if n == 0 || n > r.len() => {
                    bail!("{file} has {}; --conflict counts from 1", crate::text::counted(r.len(), "conflict"))
                }
                Some(n) => r.choose(n - 1, choice).map_err(|e| anyhow::anyhow!(e))?,
                None if take == Take::Union => r.whole_file(WholeFile::Union),
                None => {
                    for i in 0..r.len() {
                        r.choose(i, choice.clone()).map_err(|e| anyhow::anyhow!(e))?;
                    }
                }
            }
            let left = r.unresolved();
            if left == 0 && conflicted.is_some() {
                if let Some(name) = agent.clone().or_else(|| merging_agent(root)) {
                    let command = engine::Command::StageResolved { name, path: file.clone(), content: r.result() };
                    if let Some(code) = through_server(root, command, None)? {
                        return Ok(code);
                    }
                }
                merge::stage_resolved(&wt, &file, &r.result())?;
                println!("{file}: resolved and staged");
            } else {
                crate::safefs::write_in(&wt, Path::new(&file), &r.result())?;
                println!("{file}: {} left", crate::text::counted(left, "conflict"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn server_cmd(root: &Path, action: ServerCmd) -> Result<ExitCode> {
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
fn confirm(question: &str) -> Result<bool> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn age(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        _ => format!("{}h{:02}m", secs / 3600, secs / 60 % 60),
    }
}

/// "2 busy, 1 waiting" for a crew.
fn state_counts(agents: &[engine::store::SavedAgent]) -> String {
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
fn ls() -> Result<()> {
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
fn proxy(root: &Path) -> Result<()> {
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
fn attach_via(via: &str, theme: Option<&str>) -> Result<()> {
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

/// The agent whose branch the main worktree is merging, if it is one of this crew's.
fn merging_agent(root: &Path) -> Option<String> {
    let head = std::fs::read_to_string(root.join(".git/MERGE_HEAD")).ok()?;
    let repo = git2::Repository::open(root).ok()?;
    let oid = git2::Oid::from_str(head.lines().next()?.trim()).ok()?;
    let (saved, _) = engine::store::load(root).ok()?;
    saved.agents.into_iter().map(|a| a.spec.name).find(|name| {
        repo.find_branch(&crate::git::worktree::branch_name(name), git2::BranchType::Local)
            .ok()
            .and_then(|b| b.get().target())
            .is_some_and(|t| t == oid)
    })
}
