//! `muster guard check`: ownership for CI — what each agent's branch and worktree changed outside its `owns` or in
//! the crew's `shared` files, and agents whose `owns` take a same file of the repository.

use std::path::Path;
use std::process::ExitCode;

use std::time::Duration;

use anyhow::{bail, Result};

use super::printable_line;
use crate::cli::GuardCmd;
use crate::config::owns::{overlaps, Globs};
use crate::engine::script_socket::{self, Request};
use crate::git::ownership::{changed_files, tracked_files};
use crate::protocol::guard::{GuardAnswer, GuardOp};
use crate::protocol::script::Answer;

#[derive(serde::Serialize)]
struct AgentFindings {
    agent: String,
    /// Changed files its `owns` does not take.
    outside: Vec<String>,
    /// Changed files that are the crew's `shared` ones.
    shared: Vec<String>,
    /// Why its work could not be read (no branch yet, say).
    error: Option<String>,
}

#[derive(serde::Serialize)]
struct Findings {
    agents: Vec<AgentFindings>,
    /// Agents whose `owns` take a same tracked file: (a, b, the first such file).
    overlaps: Vec<(String, String, String)>,
    /// Patterns that take no tracked file (a typo?): (agent, pattern).
    unmatched: Vec<(String, String)>,
}

pub(super) fn check(root: &Path, json: bool) -> Result<ExitCode> {
    let (crew, _, _) = crate::config::load_crew(root)?;
    let (saved, _) = crate::engine::store::load(root)?;
    let shared = Globs::new(&crew.shared).map_err(|(_, e)| anyhow::anyhow!("shared: {e}"))?;
    let files = tracked_files(root)?;
    let current = crate::git::worktree::current_branch(root).unwrap_or_else(|_| "HEAD".into());
    let mut found = Findings { agents: Vec::new(), overlaps: Vec::new(), unmatched: Vec::new() };
    let mut owners: Vec<(String, Globs)> = Vec::new();
    for spec in &crew.agents {
        let owns = match &spec.owns {
            Some(o) => Some(Globs::new(o).map_err(|(_, e)| anyhow::anyhow!("{}: owns: {e}", spec.name))?),
            None => None,
        };
        if let (Some(g), Some(patterns)) = (&owns, &spec.owns) {
            owners.push((spec.name.clone(), g.clone()));
            for p in patterns.iter().filter(|p| !p.starts_with('!')) {
                let one = Globs::new(std::slice::from_ref(p)).ok();
                if one.is_some_and(|one| !files.iter().any(|f| one.matches(f))) {
                    found.unmatched.push((spec.name.clone(), p.clone()));
                }
            }
        }
        let was = saved.agents.iter().find(|a| a.spec.name == spec.name);
        let branch = was.map(|a| a.branch.clone()).filter(|b| !b.is_empty());
        let branch = branch.unwrap_or_else(|| crate::git::worktree::branch_name(&spec.name));
        let base = was.map(|a| a.base.clone()).filter(|b| !b.is_empty()).or_else(|| spec.base.clone());
        let worktree =
            was.map(|a| a.worktree.clone()).unwrap_or_else(|| crate::git::worktree::worktree_path(root, &spec.name));
        let mut f = AgentFindings { agent: spec.name.clone(), outside: vec![], shared: vec![], error: None };
        match changed_files(root, Some(&worktree), &branch, base.as_deref().unwrap_or(&current)) {
            Ok(changed) => {
                for c in changed {
                    if shared.matches(&c) {
                        f.shared.push(c);
                    } else if owns.as_ref().is_some_and(|g| !g.matches(&c)) {
                        f.outside.push(c);
                    }
                }
            }
            Err(e) => f.error = Some(format!("{e:#}")),
        }
        found.agents.push(f);
    }
    found.overlaps =
        overlaps(&owners, &files).into_iter().map(|(a, b, f)| (a.to_string(), b.to_string(), f.to_string())).collect();
    let bad = !found.overlaps.is_empty() || found.agents.iter().any(|a| !a.outside.is_empty() || !a.shared.is_empty());
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        for a in &found.agents {
            for c in &a.outside {
                println!("{}: changed {} outside its owns", a.agent, printable_line(c));
            }
            for c in &a.shared {
                println!("{}: changed {} (shared: only you or a merge change it)", a.agent, printable_line(c));
            }
            if let Some(e) = &a.error {
                println!("{}: not checked: {}", a.agent, printable_line(e));
            }
        }
        for (a, b, f) in &found.overlaps {
            println!("{a} and {b} both own {}", printable_line(f));
        }
        for (a, p) in &found.unmatched {
            eprintln!("muster: {a}: owns pattern `{}` takes no file of the repository", printable_line(p));
        }
        if !bad {
            println!("every agent checked kept to its files");
        }
    }
    Ok(if bad { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn ask(root: &Path, op: GuardOp) -> Result<Option<Result<GuardAnswer, String>>> {
    let run_dir = crate::ipc::run_dir(root)?;
    match script_socket::ask(&run_dir, &Request::Guard { op }, Some(Duration::from_secs(30)))? {
        Some(Answer::Guard(a)) => Ok(Some(Ok(a))),
        Some(Answer::Error(e)) => Ok(Some(Err(e.message))),
        Some(other) => bail!("the running muster answered {other:?}"),
        None if crate::ipc::holder(&run_dir).is_some() => bail!("the muster server did not answer"),
        None => Ok(None),
    }
}

/// `muster guard status|restore|allow|dismiss|tell`.
pub(super) fn run(root: &Path, action: GuardCmd) -> Result<ExitCode> {
    let failed = |e: &str| {
        eprintln!("muster: {}", printable_line(e));
        Ok(ExitCode::from(3))
    };
    let op = match action {
        GuardCmd::Check { json } => return check(root, json),
        GuardCmd::Status { agent, all, json } => {
            let findings = match ask(root, GuardOp::Status { agent: agent.clone(), all })? {
                Some(Ok(GuardAnswer::Findings { findings })) => findings,
                Some(Ok(other)) => bail!("muster answered {other:?}"),
                Some(Err(e)) => return failed(&e),
                None => crate::mailbox::Store::open_in(root)?.findings(agent.as_deref(), all, 500)?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&findings)?);
            } else if findings.is_empty() {
                println!("no findings");
            } else {
                for f in &findings {
                    let status = if all {
                        format!(
                            " [{}{}]",
                            f.status.label(),
                            if f.note.is_empty() { String::new() } else { format!(": {}", f.note) }
                        )
                    } else {
                        String::new()
                    };
                    println!("{}", printable_line(&format!("#{} {}: {}{status}", f.id, f.agent, f.line())));
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        GuardCmd::Restore { id } => GuardOp::Restore { id },
        GuardCmd::Allow { id } => GuardOp::Allow { id },
        GuardCmd::Dismiss { id } => GuardOp::Dismiss { id },
        GuardCmd::Tell { id } => GuardOp::Steer { id },
    };
    match ask(root, op)? {
        Some(Ok(GuardAnswer::Done { message })) => {
            println!("{}", printable_line(&message));
            Ok(ExitCode::SUCCESS)
        }
        Some(Ok(other)) => bail!("muster answered {other:?}"),
        Some(Err(e)) => failed(&e),
        None => failed("the crew is not running: findings are acted on in its server (`muster up`)"),
    }
}
