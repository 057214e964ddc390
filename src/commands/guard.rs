//! `muster guard check`: ownership for CI — what each agent's branch and worktree changed outside its `owns` or in
//! the crew's `shared` files, and agents whose `owns` take a same file of the repository.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::printable_line;
use crate::config::owns::{overlaps, Globs};
use crate::git::ownership::{changed_files, tracked_files};

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
