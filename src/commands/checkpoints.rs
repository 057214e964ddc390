//! `muster checkpoint …` and `muster removed`: the checkpoint timeline from the command line, and what removed agents left.

use super::*;

pub(super) fn removed(root: &Path, prune: bool, agent: Option<&str>) -> Result<()> {
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

pub(super) fn checkpoint_cmd(root: &Path, action: CheckpointCmd) -> Result<ExitCode> {
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

/// How long ago a moment (seconds since the epoch) was, as people say it: "just now", "12 s ago", "3 min ago",
/// "2 h ago", "5 days ago".
pub(super) fn human_ago(at_s: u64) -> String {
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
