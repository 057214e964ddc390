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

mod agents;
mod checkpoints;
mod crew_status;
mod gates;
mod guard;
mod lead;
mod mail;
mod merging;
mod plan;
mod printable;
mod servers;
mod steer;
mod up;
use checkpoints::*;
use crew_status::*;
use merging::*;
pub(crate) use printable::{printable, printable_line};
use servers::*;
use steer::*;
use up::{down, through_the_crew, up};

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
        Some(Cmd::Demo { agents, waves }) => {
            let root = match waves {
                true => crate::demo::create_demo_waves(&std::env::temp_dir())?,
                false => crate::demo::create_demo(&std::env::temp_dir(), agents.max(1))?,
            };
            open(&root, cli.theme.as_deref(), true)?;
            println!("demo repository kept at {}", root.display());
        }
        Some(Cmd::Server { action }) => return server_cmd(&find_repo_root(&dir)?, action),
        Some(Cmd::Ls) => ls()?,
        Some(Cmd::Up { detach }) => return up(&find_repo_root(&dir)?, detach),
        Some(Cmd::Down) => return down(&find_repo_root(&dir)?),
        Some(Cmd::Add { name, like: Some(like), start, .. }) => {
            let copy = engine::Command::DuplicateAgent { name: like, new_name: name, start };
            return through_the_crew(&find_repo_root(&dir)?, copy);
        }
        Some(Cmd::Add { name, kind, command, prompt, base, start, args, like: None }) => {
            let agent = crate::protocol::NewAgent { name, kind, command, args, prompt, base, ..Default::default() };
            let add = engine::Command::AddAgent { agent, start };
            return through_the_crew(&find_repo_root(&dir)?, add);
        }
        Some(Cmd::Rm { name, force }) => {
            return through_the_crew(&find_repo_root(&dir)?, engine::Command::Remove { name, force })
        }
        Some(Cmd::Stop { name }) => return through_the_crew(&find_repo_root(&dir)?, engine::Command::Stop { name }),
        Some(Cmd::Start { name }) => {
            return through_the_crew(&find_repo_root(&dir)?, engine::Command::Start { name, resume: true })
        }
        Some(Cmd::Schema) => println!("{}", serde_json::to_string_pretty(&crate::protocol::script::schema())?),
        Some(Cmd::Proxy) => proxy(&find_repo_root(&dir)?)?,
        Some(Cmd::Attach { via }) => attach_via(&via, cli.theme.as_deref())?,
        Some(Cmd::Init { force }) => init(&find_repo_root(&dir)?, force)?,
        Some(Cmd::Doctor) => return doctor(&dir),
        Some(Cmd::Crew { action: crate::cli::CrewCmd::Plan { json } }) => {
            return plan::run(&find_repo_root(&dir)?, json)
        }
        Some(Cmd::Crew { action: crate::cli::CrewCmd::Approve { wave } }) => {
            return through_the_crew(&find_repo_root(&dir)?, engine::Command::ApproveWave { wave })
        }
        Some(Cmd::Review { agent, approve, blocker, debt, skip }) => {
            let verdict = crate::protocol::review::Verdict { approve, blockers: blocker, debt, skip };
            return review_cmd(&dir, agent, verdict);
        }
        Some(Cmd::Agents { action }) => return agents::run(find_repo_root(&dir).ok().as_deref(), action),
        Some(Cmd::Status { json, format }) => status(&find_repo_root(&dir)?, json, format.as_deref())?,
        Some(Cmd::Mail { action }) => return mail::run(&dir, action),
        Some(Cmd::Gate { action }) => return gates::run(&find_repo_root(&dir)?, action),
        Some(Cmd::Guard { action }) => return guard::run(&find_repo_root(&dir)?, action),
        Some(Cmd::Checkpoint { action }) => return checkpoint_cmd(&find_repo_root(&dir)?, action),
        Some(Cmd::Merge { agent, into_agent, message, finish, abort, skip_gates }) => {
            return merge_cmd(&find_repo_root(&dir)?, agent, into_agent, message, finish, abort, skip_gates)
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
                if let Some(reason) = engine::script_socket::take_mail(Path::new(&run_dir), &agent, &token) {
                    println!("{}", serde_json::json!({ "decision": "block", "reason": reason }));
                }
            }
            if let Err(e) = engine::script_socket::report(Path::new(&run_dir), &agent, &token, &event, &payload) {
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
        Some(Cmd::Wait { agents, until, timeout, any }) => {
            return wait(&find_repo_root(&dir)?, &agents, &until, timeout, any)
        }
        Some(Cmd::Spawn(args)) => return lead::spawn(&dir, args),
        Some(Cmd::Read { agent, lines, turn, screen, ansi }) => {
            return lead::read(&dir, agent, lines, turn, screen, ansi)
        }
        Some(Cmd::Result { action }) => return lead::result(&dir, action),
        Some(Cmd::Events { follow, since, agents, kinds }) => return lead::events(&dir, follow, since, agents, kinds),
        Some(Cmd::Removed { prune, agent }) => removed(&find_repo_root(&dir)?, prune, agent.as_deref())?,
        Some(Cmd::Explain { agent }) => {
            let root = find_repo_root(&dir)?;
            print!("{}", printable(&engine::script_socket::explain(&engine::hooks::run_dir(&root)?, &agent)?));
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
            gates_only,
            guard_only,
            rules_only,
            lead_only,
        }) => {
            use crate::bench::Only;
            let only = match (checkpoints_only, conflicts_only, server_only, mail_only, terminal_only, floods_only) {
                _ if gates_only => Only::Gates,
                _ if guard_only => Only::Guard,
                _ if rules_only => Only::Rules,
                _ if lead_only => Only::Lead,
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
        Some(Cmd::DemoAgent { resume, stream, spinner, think, prompt }) => {
            crate::demo::agent::run(resume, stream, spinner, think, prompt)?
        }
        Some(Cmd::Sandbox { write, command }) => match crate::guard::sandbox::exec(&write, &command)? {},
    }
    Ok(ExitCode::SUCCESS)
}

/// Commands that print and end: a reader that goes away (`muster status | head -1`) ends them quietly.
fn one_shot(cmd: Option<&Cmd>) -> bool {
    matches!(
        cmd,
        Some(Cmd::Removed { .. })
            | Some(Cmd::Status { .. } | Cmd::Doctor | Cmd::Init { .. } | Cmd::Checkpoint { .. } | Cmd::Merge { .. })
            | Some(Cmd::Agents { .. } | Cmd::Crew { .. } | Cmd::Review { .. })
            | Some(Cmd::Spawn(_) | Cmd::Read { .. } | Cmd::Result { .. } | Cmd::Events { .. })
            | Some(
                Cmd::Conflicts { .. }
                    | Cmd::Explain { .. }
                    | Cmd::Schema
                    | Cmd::Mail { .. }
                    | Cmd::Gate { .. }
                    | Cmd::Guard { .. }
                    | Cmd::Ls
                    | Cmd::Up { .. }
                    | Cmd::Down
                    | Cmd::Add { .. }
                    | Cmd::Rm { .. }
                    | Cmd::Stop { .. }
                    | Cmd::Start { .. }
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
    let (crew, user_cfg, warnings) = crate::config::load_crew_owned(root, crate::git::ownership::tracked_files)?;
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
            let (_, u, w) = crate::config::load_crew_owned(root, crate::git::ownership::tracked_files)?;
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
    let hello = Hello::new(ClientKind::Tui, size);
    let events = tx.clone();
    let (handle, welcome) = crate::client::attach(read, write, hello, move |m| {
        let _ = events.send(match m {
            crate::client::Incoming::Event(e) => crate::tui::AppMsg::Engine(e),
            crate::client::Incoming::Closed(reason) => crate::tui::AppMsg::Closed(reason),
        });
    })?;
    // The server names its repository: a crew reached through a command shows that, not the command.
    let repo = if welcome.repo.is_empty() { repo } else { welcome.repo.clone() };
    let mut state = State::new(repo, look.keymap, look.theme, (80, 24));
    state.bell_on_waiting = look.user.bell;
    state.notify = look.user.notify;
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
    match crate::guard::sandbox::kernel_abi() {
        Some(abi) => {
            println!("✔ {:<10} Landlock ABI {abi}: guard = \"enforce\" blocks writes outside a worktree", "enforce")
        }
        None => println!("- {:<10} no Landlock in this kernel: guard = \"enforce\" falls back to watching", "enforce"),
    }
    let term = std::env::var("TERM").unwrap_or_default();
    line(!term.is_empty() && term != "dumb", "terminal", format!("TERM={term}, colour: {:?}", ColorMode::from_env()));
    if std::env::var_os("TMUX").is_some() {
        println!("  inside tmux: agents get a clean environment without TMUX");
    }
    let (presets, warnings) = preset::load(find_repo_root(dir).ok().as_deref());
    for w in warnings {
        println!("✗ {:<10} {w}", "manifest");
    }
    let mut clis: Vec<&preset::Preset> =
        presets.values().filter(|p| !p.command.starts_with('{') && !p.command.is_empty()).collect();
    clis.sort_by_key(|p| (p.tier, p.id.clone()));
    for p in clis {
        let tier = match &p.verified_version {
            Some(v) => format!("{}, {} {v}", p.title, p.tier.word()),
            None => format!("{}, {}", p.title, p.tier.word()),
        };
        match which(&p.command) {
            Some(path) => println!("✔ {:<10} {} ({tier})", p.id, path.display()),
            None => println!("- {:<10} not on PATH ({tier})", p.id),
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `muster review`: as the agent whose environment it runs in (its name and secret), else as the operator.
fn review_cmd(dir: &Path, target: String, verdict: crate::protocol::review::Verdict) -> Result<ExitCode> {
    if let Err(e) = verdict.check() {
        bail!("{e}");
    }
    let (run_dir, agent, token) = match engine::script_socket::inside_agent() {
        Some((run, who)) => (run, Some(who.agent), Some(who.token)),
        None => (crate::ipc::run_dir(&find_repo_root(dir)?)?, None, None),
    };
    let req = crate::protocol::script::Request::Review { agent, token, target, verdict };
    match engine::script_socket::ask(&run_dir, &req, Some(std::time::Duration::from_secs(30)))? {
        Some(crate::protocol::script::Answer::Done { message }) => {
            println!("{}", message.unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        Some(crate::protocol::script::Answer::Error(e)) => {
            eprintln!("muster: {}", e.message);
            Ok(ExitCode::from(1))
        }
        Some(other) => bail!("the running muster answered {other:?}"),
        None => bail!("no muster server runs for this repository: a review goes to a running crew"),
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
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
    let req = engine::script_socket::Request::Run {
        command,
        trigger: trigger.map(str::to_string),
        from: engine::script_socket::caller(),
    };
    let Some(answer) = engine::script_socket::ask(&run_dir, &req, None)? else {
        bail!("the running muster did not answer (see {})", run_dir.join(crate::server::LOG).display())
    };
    use crate::protocol::script::Answer;
    Ok(Some(match answer {
        Answer::Error(e) => {
            eprintln!("muster: {}", printable_line(&e.message));
            ExitCode::from(1)
        }
        Answer::Done { message } => {
            println!("{}", printable_line(message.as_deref().unwrap_or("done")));
            ExitCode::SUCCESS
        }
        other => bail!("the running muster answered {other:?}"),
    }))
}
