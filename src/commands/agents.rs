//! `muster agents`: the agent manifests muster knows (built in, then the user's and the repository's overrides),
//! one in full, and which state one reads from a recorded screen.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use super::printable::printable_line;
use crate::cli::AgentsCmd;
use crate::config::preset::{self, Preset};
use crate::config::rules::Region;
use crate::engine::detect::{match_rules, parse_version, View};
use crate::term::model::TerminalModel;

pub fn run(root: Option<&Path>, action: AgentsCmd) -> Result<ExitCode> {
    let (presets, warnings) = preset::load(root);
    for w in &warnings {
        eprintln!("{w}");
    }
    match action {
        AgentsCmd::List { json } => list(&presets, json),
        AgentsCmd::Show { id } => show(known(&presets, &id)?),
        AgentsCmd::Test { id, screen, title, progress, version, size } => {
            test(known(&presets, &id)?, &screen, title.as_deref(), progress.as_deref(), version.as_deref(), &size)
        }
    }
}

fn known<'p>(presets: &'p std::collections::BTreeMap<String, Preset>, id: &str) -> Result<&'p Preset> {
    presets.get(id).with_context(|| {
        let ids: Vec<&str> = presets.keys().map(String::as_str).collect();
        format!("no agent manifest `{}` (known: {})", printable_line(id), ids.join(", "))
    })
}

#[derive(serde::Serialize)]
struct Row<'a> {
    id: &'a str,
    name: &'a str,
    tier: &'a str,
    verified_version: Option<&'a str>,
    command: &'a str,
    installed: Option<String>,
    install: Option<&'a str>,
    hooks: Option<&'a str>,
    read_only: bool,
    sources: &'a [String],
}

fn list(presets: &std::collections::BTreeMap<String, Preset>, json: bool) -> Result<ExitCode> {
    let mut rows: Vec<Row> = presets
        .values()
        .map(|p| Row {
            id: &p.id,
            name: &p.title,
            tier: p.tier.word(),
            verified_version: p.verified_version.as_deref(),
            command: &p.command,
            installed: super::which(&p.command).map(|p| p.display().to_string()),
            install: p.install.as_deref(),
            hooks: p.hooks.as_deref(),
            read_only: p.read_only.is_some(),
            sources: &p.sources,
        })
        .collect();
    // Verified first, then partial, community and generic; by id within a tier.
    rows.sort_by_key(|r| (presets[r.id].tier, r.id));
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<10} {:<22} {:<10} {:<12} {:<9} FROM", "ID", "NAME", "TIER", "CHECKED ON", "ON PATH");
    for r in rows {
        println!(
            "{:<10} {:<22} {:<10} {:<12} {:<9} {}",
            printable_line(r.id),
            printable_line(r.name),
            r.tier,
            r.verified_version.map(printable_line).unwrap_or_else(|| "-".into()),
            if r.command.starts_with('{') || r.command.is_empty() {
                "-"
            } else if r.installed.is_some() {
                "yes"
            } else {
                "no"
            },
            r.sources.iter().map(|s| printable_line(s)).collect::<Vec<_>>().join(" + ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn region_word(r: Region) -> String {
    match r {
        Region::All => "all".into(),
        Region::Bottom(n) => format!("bottom:{n}"),
        Region::Top(n) => format!("top:{n}"),
        Region::Title => "title".into(),
        Region::Progress => "progress".into(),
    }
}

fn version_word(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

fn show(p: &Preset) -> Result<ExitCode> {
    let line = |k: &str, v: String| println!("{k:<20} {}", printable_line(&v));
    let list = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(" ") };
    line("id", p.id.clone());
    line("name", p.title.clone());
    line(
        "tier",
        format!("{}{}", p.tier.word(), p.verified_version.as_ref().map(|v| format!(" (with {v})")).unwrap_or_default()),
    );
    line("from", p.sources.join(" + "));
    line("install", p.install.clone().unwrap_or_else(|| "-".into()));
    line("base url", p.base_url.clone().unwrap_or_else(|| "-".into()));
    line("command", format!("{} {}", p.command, list(&p.args)));
    line("resume", list(&p.resume_args));
    line("resume a session", list(&p.resume_session_args));
    line("prompt", list(&p.prompt_args));
    line("note", list(&p.note_args));
    line("hooks", p.hooks.clone().unwrap_or_else(|| "-".into()));
    line("queues input", p.queues_input.to_string());
    line("enter delay", format!("{} ms", p.enter_delay_ms));
    line("boot timeout", format!("{} s", p.boot_timeout.as_secs()));
    line(
        "read-only",
        match &p.read_only {
            None => "-".into(),
            Some(r) => format!(
                "{}{}{}",
                list(&r.args),
                r.min_version.as_deref().map(|v| format!(", from {}", version_word(v))).unwrap_or_default(),
                r.below_version.as_deref().map(|v| format!(", below {}", version_word(v))).unwrap_or_default()
            ),
        },
    );
    line("writes", list(&p.writes));
    line("ignore", list(&p.ignore));
    line("foreground busy", p.foreground_busy.to_string());
    line("idle settle", format!("{} ms", p.idle_settle.as_millis()));
    if let Some(d) = p.busy_on_task {
        line("busy on a task", format!("{} ms (with its hooks)", d.as_millis()));
    }
    line("version on screen", p.version_regex.as_ref().map(|r| r.as_str().to_string()).unwrap_or_else(|| "-".into()));
    println!("rules (first match decides, highest priority first):");
    for r in &p.rules {
        let conds = |cs: &[crate::config::rules::Cond]| {
            cs.iter().map(|c| format!("{} /{}/", region_word(c.region), c.regex.as_str())).collect::<Vec<_>>()
        };
        println!("  {:>3} {:<8} {}", r.priority, r.state.label(), printable_line(&r.name));
        for (word, cs) in [("all", &r.all), ("any", &r.any), ("not", &r.not)] {
            for c in conds(cs) {
                println!("        {word} {}", printable_line(&c));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The screen in `file`: text as `tmux capture-pane -p` prints it, or a terminal's raw output (it holds escape
/// sequences), played into muster's emulator at `size`. Its lines, title and progress report.
fn screen_of(file: &Path, size: &str) -> Result<(Vec<String>, Option<String>, Option<String>)> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    if !bytes.contains(&0x1b) {
        let text = String::from_utf8_lossy(&bytes);
        return Ok((text.lines().map(str::to_string).collect(), None, None));
    }
    let (cols, rows) = size
        .split_once('x')
        .and_then(|(c, r)| Some((c.parse::<u16>().ok()?, r.parse::<u16>().ok()?)))
        .filter(|(c, r)| (2..=1000).contains(c) && (2..=1000).contains(r))
        .with_context(|| format!("--size {}: COLSxROWS, 2 to 1000 each", printable_line(size)))?;
    let mut model = crate::term::model::AlacrittyModel::new(rows, cols, 0);
    model.feed(&bytes);
    Ok((model.text_lines(), model.title(), model.progress()))
}

fn test(
    p: &Preset,
    file: &Path,
    title: Option<&str>,
    progress: Option<&str>,
    version: Option<&str>,
    size: &str,
) -> Result<ExitCode> {
    let (lines, seen_title, seen_progress) = screen_of(file, size)?;
    let title = title.map(str::to_string).or(seen_title);
    let progress = progress.map(str::to_string).or(seen_progress);
    let version = match version {
        Some(v) => Some(parse_version(v).with_context(|| format!("--version {}: not a version", printable_line(v)))?),
        None => {
            let text = lines.join("\n");
            p.version_regex.as_ref().and_then(|re| parse_version(re.captures(&text)?.get(1)?.as_str()))
        }
    };
    if lines.iter().all(|l| l.trim().is_empty()) && title.is_none() && progress.is_none() {
        bail!("{}: an empty screen", file.display());
    }
    let view = View {
        lines: &lines,
        title: title.as_deref(),
        progress: progress.as_deref(),
        alt_screen: false,
        version: version.as_deref(),
    };
    if let Some(v) = &version {
        println!("version {}", version_word(v));
    }
    match match_rules(&p.rules, &view) {
        Some(r) => {
            println!("{} — screen rule `{}` of {}", r.state.label(), printable_line(&r.name), p.id);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!("no rule of {} matches: its hooks and the screen's activity decide (busy while it changes)", p.id);
            Ok(ExitCode::from(1))
        }
    }
}
