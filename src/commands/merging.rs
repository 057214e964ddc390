//! `muster merge …` and `muster conflicts …`: merges and their conflicts from the command line.

use super::*;

/// The base branch an agent started from, from the saved crew state.
pub(super) fn agent_base(root: &Path, agent: &str) -> Result<String> {
    let (saved, _) = engine::store::load(root)?;
    match saved.agents.iter().find(|a| a.spec.name == agent) {
        Some(a) if !a.base.is_empty() => Ok(a.base.clone()),
        _ => crate::git::worktree::current_branch(root),
    }
}

/// What to run next after a merge stopped on conflicts, exactly as it works from the main worktree (a merge
/// into the agent is in the agent's worktree, which `--agent` and `--into-agent` name).
pub(super) fn conflicts_hint(agent: &str, into_agent: bool) -> String {
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

pub(super) fn merge_cmd(
    root: &Path,
    agent: Option<String>,
    into_agent: bool,
    message: Option<String>,
    finish: bool,
    abort: bool,
    skip_gates: bool,
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
            engine::Command::Merge { name, into_agent, message: message.clone(), skip_gates }
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

pub(super) fn conflicts_cmd(root: &Path, agent: Option<String>, action: ConflictsCmd) -> Result<ExitCode> {
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

/// The agent whose branch the main worktree is merging, if it is one of this crew's.
pub(super) fn merging_agent(root: &Path) -> Option<String> {
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
