//! What each subcommand does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::app::State;
use crate::cli::{CheckpointCmd, Cli, Cmd, ConflictsCmd, Take};
use crate::config::crew::{parse_crew, Crew};
use crate::config::keymap::Keymap;
use crate::config::theme::{ColorMode, Theme};
use crate::config::{paths, preset, user, ConfigError, Warning};
use crate::engine::{self, EngineConfig};
use crate::git::worktree::find_repo_root;
use crate::pty::NativePty;

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
            open(&root, cli.theme.as_deref())?;
        }
        Some(Cmd::Demo { agents }) => {
            let root = crate::demo::create_repo(&std::env::temp_dir(), agents.max(1))?;
            open(&root, cli.theme.as_deref())?;
            println!("demo repository kept at {}", root.display());
        }
        Some(Cmd::Init { force }) => init(&find_repo_root(&dir)?, force)?,
        Some(Cmd::Doctor) => return doctor(&dir),
        Some(Cmd::Status { json, format }) => status(&find_repo_root(&dir)?, json, format.as_deref())?,
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
            if let Err(e) = engine::hooks::report(Path::new(&run_dir), &agent, &token, &event, &payload) {
                let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("muster hook: {e:#}\n"));
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
            print!("{}", engine::hooks::explain(&engine::hooks::run_dir(&root)?, &agent)?);
        }
        Some(Cmd::Bench { agents, seconds, checkpoints_only, conflicts_only }) => {
            crate::bench::run(agents, seconds, checkpoints_only, conflicts_only)?
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
            | Some(Cmd::Conflicts { .. } | Cmd::Explain { .. })
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
    let appender = tracing_appender::rolling::never(&dir, "muster.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("MUSTER_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_writer(writer).with_ansi(false).with_env_filter(filter).try_init().ok()?;
    Some(guard)
}

/// The crew of a repository: its crew file over the user's defaults. An error starts nothing.
pub fn load_crew(root: &Path) -> Result<(Crew, user::UserConfig, Vec<Warning>)> {
    let (user_cfg, warnings) = user::load();
    // A `.muster` committed as a symlink would send the crew, its state and worktrees elsewhere.
    if !crate::safefs::existing_real_dir(root, ".muster")? {
        return Ok((Crew::default(), user_cfg, warnings));
    }
    let path = root.join(".muster").join("crew.toml");
    let shown = path.strip_prefix(root).unwrap_or(&path);
    // A crew file that cannot be read is an error, never a silent "no agents".
    let crew = match crate::config::read_text(&path).map_err(|e| ConfigError { file: shown.to_path_buf(), ..e })? {
        Some(text) => parse_crew(shown, &text, &preset::builtin(), &user_cfg.defaults)?,
        None => Crew::default(),
    };
    Ok((crew, user_cfg, warnings))
}

fn theme_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.join(".muster").join("themes")];
    if let Some(d) = paths::user_config_dir() {
        dirs.push(d.join("themes"));
    }
    dirs
}

fn open(root: &Path, theme: Option<&str>) -> Result<()> {
    let _log = init_logging();
    let (crew, user_cfg, mut warnings) = load_crew(root)?;
    let (keymap, kw) = Keymap::load(Some(root));
    warnings.extend(kw);
    let theme_name = theme.map(str::to_string).or(user_cfg.theme.clone()).unwrap_or_else(|| "default".into());
    let (theme, tw) = Theme::load(&theme_name, &theme_dirs(root), ColorMode::from_env());
    warnings.extend(tw);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let (tx, rx) = crate::tui::channel();
    let palette = outer_palette(&theme);
    let cfg = EngineConfig {
        root: root.to_path_buf(),
        crew,
        scrollback: user_cfg.scrollback,
        muster_exe: std::env::current_exe().context("locating the muster binary")?,
        stop_grace: Duration::from_secs(3),
        palette,
        checkpoint_every: Duration::from_secs(user_cfg.checkpoint_minutes.max(1) * 60),
    };
    let handle = engine::supervisor::start(cfg, Arc::new(NativePty), crate::tui::sink(tx.clone()))?;
    let repo = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut state = State::new(repo, keymap, theme, (80, 24));
    state.bell_on_waiting = user_cfg.bell;
    if let Some(w) = warnings.first() {
        let more =
            if warnings.len() > 1 { format!(" (+{} more in the log)", warnings.len() - 1) } else { String::new() };
        state.status = Some((format!("{w}{more}"), true));
    }
    crate::tui::run(state, handle, tx, rx)
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

fn status(root: &Path, json: bool, format: Option<&str>) -> Result<()> {
    let (saved, warnings, running) = engine::store::load_live(root)?;
    for w in warnings {
        eprintln!("muster: {w}");
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
        println!("{:<16} {:<9} {:<20} {}{exit}", a.spec.name, a.spec.kind, a.branch, a.state.label());
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
    let run_dir = crate::ipc::run_dir(root)?;
    if crate::ipc::holder(&run_dir).is_none() {
        eprintln!("muster: not running for {}", root.display());
        return Ok(ExitCode::from(3));
    }
    let mut code = ExitCode::from(3);
    engine::hooks::send(&run_dir, agent, &text, force, wait, |answer| {
        code = match answer {
            "sent" | "idle" => ExitCode::SUCCESS,
            "waiting" => ExitCode::from(2),
            "exited" => ExitCode::from(3),
            _ => {
                eprintln!("muster: {}", answer.strip_prefix("error: ").unwrap_or(answer));
                ExitCode::from(1)
            }
        };
        if answer != "sent" || !wait {
            println!("{answer}");
        }
    })?;
    Ok(code)
}

/// `muster wait`: polls the state file, which a running muster keeps current within a second. (Through the
/// server, when it lands, the answer will come at the transition.)
fn wait(root: &Path, agents: &[String], until: &str, timeout: Option<f64>) -> Result<ExitCode> {
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
        println!("forgot {} ref(s) of removed agents", worktree::prune_removed(root, agent)?);
        return Ok(());
    }
    let kept: Vec<_> =
        worktree::list_removed(root)?.into_iter().filter(|r| agent.is_none_or(|a| a == r.name)).collect();
    for r in &kept {
        let tip = r.tip.as_deref().map(|t| &t[..t.len().min(12)]).unwrap_or("-");
        println!(
            "{:<16} removed {:<12} tip {tip:<12} {} checkpoint(s)  {}",
            r.name, r.removed_at, r.checkpoints, r.prefix
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

fn checkpoint_cmd(root: &Path, action: CheckpointCmd) -> Result<ExitCode> {
    use crate::git::checkpoint as cp;
    let print_list = |agent: &str, wt: &Path| -> Result<()> {
        for c in cp::list(wt, agent)? {
            println!(
                "{agent:<12} #{:<4} {:<10} {:<34} {} files +{} -{}",
                c.n, c.time, c.trigger, c.files, c.added, c.removed
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
                println!("restoring checkpoint {n} of {agent} would change {} file(s):", changes.len());
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
            println!("restored checkpoint {n} of {agent}: {} file(s) changed; `muster checkpoint undo {agent}` returns to checkpoint {}", r.changed.len(), r.rescue);
            cp::tidy(&wt);
        }
        CheckpointCmd::Undo { agent } => {
            let wt = agent_worktree(root, &agent)?;
            let r = cp::undo_rollback(&wt, &agent)?;
            println!("back to checkpoint {} of {agent} ({} file(s) changed)", r.target, r.changed.len());
            cp::tidy(&wt);
        }
        CheckpointCmd::Prune { agent, keep } => {
            println!("removed {} checkpoint(s) of {agent}", cp::prune(root, &agent, keep)?);
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
            println!("{} conflicted file(s) in {}:", files.len(), where_.display());
            for f in files {
                println!("  {:<16} {}", f.kind.label(), f.path);
            }
            println!("resolve them (muster conflicts resolve FILE --take …), then muster merge --finish, or --abort");
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
                        Ok(p) => format!("{} conflict(s)", p.conflict_count()),
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
                    bail!("{file} has {} conflict(s); --conflict counts from 1", r.len())
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
                merge::stage_resolved(&wt, &file, &r.result())?;
                println!("{file}: resolved and staged");
            } else {
                crate::safefs::write_in(&wt, Path::new(&file), &r.result())?;
                println!("{file}: {left} conflict(s) left");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
