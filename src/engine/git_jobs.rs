//! The git job worker: one thread runs every git job on agents' worktrees (checkpoints, rollbacks, diffs, merges,
//! merge checks, conflict resolution) one at a time, so no two touch one worktree at once, pausing a running agent
//! around anything that writes its files.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;

use crate::git::checkpoint::{self, DiffBase};
use crate::git::merge::{self, MergeOutcome, Side};
use crate::git::watch::{Changes, WorktreeWatch};
use crate::pty::tree::AgentTree;

use super::inbox::{EngineMsg, JobDone, Report};
use super::{Asker, Event, EventSink};
use crate::protocol::script::{Answer, ErrorKind};

pub enum JobKind {
    Create {
        trigger: String,
    },
    /// An agent's result (`muster result set`): a checkpoint of its work first, which the result names, then the
    /// result kept (its deliverables hashed here, off the engine's thread).
    Result {
        root: PathBuf,
        result: crate::protocol::lead::AgentResult,
    },
    Rollback {
        n: u32,
        files: Option<Vec<String>>,
    },
    Undo,
    List,
    /// The answers below go to the client that asked (`to`) alone.
    Diff {
        n: u32,
        base: DiffBase,
        to: Asker,
    },
    /// What a merge of the agent into `base` would bring: `Event::Review`.
    Review {
        base: String,
        to: Asker,
    },
    Preview {
        n: u32,
        files: Option<Vec<String>>,
        to: Asker,
    },
    /// Merge: `root` is the main worktree, `base` the agent's base branch.
    Merge {
        root: PathBuf,
        base: String,
        into_agent: bool,
        message: Option<String>,
    },
    Conflict {
        root: PathBuf,
        op: ConflictOp,
    },
    /// What a merge would do (nothing is changed): `Event::MergeCheck`.
    MergeCheck {
        root: PathBuf,
        base: String,
        into_agent: bool,
        to: Asker,
        /// The merge gates' outcomes, run just before.
        gates: Vec<(String, crate::protocol::gate::GateOutcome, String)>,
        /// The agent's `owns` and the crew's `shared`: what the merge would bring outside them is listed.
        owns: Option<Vec<String>>,
        shared: Vec<String>,
    },
}

pub enum ConflictOp {
    Read { path: String, to: Asker },
    Stage { path: String, content: Vec<u8> },
    Take { path: String, side: Side },
    Finish { message: Option<String> },
    Abort,
}

pub struct Job {
    pub name: String,
    pub worktree: PathBuf,
    /// The running agent to freeze while its files are written (rollbacks, merges into it).
    pub pause: Option<Arc<AgentTree>>,
    /// The running agent's processes, whose files open for writing a checkpoint reads again.
    pub agent: Option<Arc<AgentTree>>,
    /// What changed in the worktree since the last checkpoint; without it a checkpoint scans every file.
    pub files: Option<Arc<WorktreeWatch>>,
    pub kind: JobKind,
    /// Told the outcome (for a command from a script): the message, `error: …` on failure, or `done`.
    pub reply: Option<Sender<Answer>>,
    /// Stop the agent once this job is done (the checkpoint before the crew stops).
    pub stop_after: bool,
}

/// What the engine and the worker share about the queue of jobs: how many wait (bounded, so a client that asks
/// for checkpoints as fast as it can cannot grow it without end) and whether the crew is stopping (then only the
/// checkpoints taken before agents stop are still run, so a stop never waits behind a backlog).
#[derive(Default)]
pub struct Queue {
    pub queued: AtomicUsize,
    pub stopping: AtomicBool,
}

/// Jobs that may wait at once; more are refused (the checkpoints before a stop always go in).
pub const MAX_QUEUED: usize = 64;

pub fn spawn_worker(engine: Sender<EngineMsg>, sink: EventSink, queue: Arc<Queue>) -> Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let _ = std::thread::Builder::new().name("checkpoints".into()).spawn(move || {
        // Worktrees whose checkpoint packs may want merging: done when no job waits, so it never delays one.
        let mut untidy: std::collections::BTreeSet<PathBuf> = std::collections::BTreeSet::new();
        loop {
            // Blocks for good when there is nothing to tidy: an idle worker never wakes.
            let next = if untidy.is_empty() {
                rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(TIDY_AFTER)
            };
            let mut job = match next {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    for worktree in std::mem::take(&mut untidy) {
                        checkpoint::tidy(&worktree);
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            if matches!(
                job.kind,
                JobKind::Create { .. } | JobKind::Rollback { .. } | JobKind::Undo | JobKind::Merge { .. }
            ) {
                untidy.insert(job.worktree.clone());
            }
            let (mut reply, stop_after) = (job.reply.take(), job.stop_after);
            // A result is answered by the engine once it has taken it (the agent is done before its `result
            // set` returns).
            let result_reply = if matches!(job.kind, JobKind::Result { .. }) { reply.take() } else { None };
            if queue.stopping.load(Ordering::SeqCst) && !stop_after {
                queue.queued.fetch_sub(1, Ordering::SeqCst);
                if let Some(reply) = reply {
                    let _ = reply.send(Answer::error(ErrorKind::Stopping, "not done: the crew is stopping"));
                }
                continue;
            }
            let done = run(job, &sink);
            queue.queued.fetch_sub(1, Ordering::SeqCst);
            if let Some(reply) = reply {
                let answer = match done.as_ref().and_then(|d| d.message.clone()) {
                    // What git or the disk said: the machinery failed, not the agent.
                    Some((text, true)) => Answer::error(ErrorKind::Failed, text),
                    Some((text, false)) => Answer::Done { message: Some(text) },
                    None => Answer::Done { message: None },
                };
                let _ = reply.send(answer);
            }
            if let Some(mut done) = done {
                done.stop_after = stop_after;
                done.reply = result_reply;
                if engine.send(EngineMsg::Report(Report::Checkpoints(done))).is_err() {
                    return;
                }
            }
        }
    });
    tx
}

/// How long the worker must sit idle before it merges checkpoint packs.
const TIDY_AFTER: std::time::Duration = std::time::Duration::from_millis(300);

/// Merge (the caller checkpoints the agent first); an agent merged into its base has its uncommitted work
/// committed on its own branch first, so what is merged is what it did.
fn run_merge(
    name: &str,
    worktree: &std::path::Path,
    root: &std::path::Path,
    base: &str,
    into_agent: bool,
    message: Option<String>,
    sink: &EventSink,
) -> anyhow::Result<Option<String>> {
    let branch = crate::git::worktree::branch_name(name);
    // Everything that would stop it is checked before anything changes (the agent's work is not committed for a
    // merge that is then refused, or has nothing to do).
    let check = merge::preflight(root, worktree, &branch, base, into_agent)?;
    if let Some(why) = check.refused {
        anyhow::bail!(why);
    }
    if check.up_to_date {
        return Ok(Some(format!("{name}: already up to date")));
    }
    // Either way the agent's uncommitted work is committed on its branch first: what is merged is what it did,
    // and a merge into a worktree with changes would be refused.
    commit_uncommitted(worktree, name)?;
    let (place, theirs, default) = if into_agent {
        (worktree.to_path_buf(), base.to_string(), format!("Merge {base} into {branch}"))
    } else {
        (root.to_path_buf(), branch.clone(), format!("Merge {branch} into {base}"))
    };
    let message = message.unwrap_or(default);
    Ok(Some(match merge::merge(&place, &theirs, &message)? {
        MergeOutcome::UpToDate => format!("{name}: already up to date"),
        MergeOutcome::Merged { commit } => {
            sink.event(Event::MergeEnded {
                name: name.to_string(),
                text: format!("merged {theirs}: {}", &commit[..commit.len().min(10)]),
            });
            format!("{name}: merged {theirs} ({})", &commit[..commit.len().min(10)])
        }
        MergeOutcome::Conflicts { files } => {
            let n = files.len();
            sink.event(Event::MergeConflicts { name: name.to_string(), into_agent, files });
            format!("{name}: merging {theirs} stopped on {}", crate::text::counted(n, "conflicted file"))
        }
    }))
}

fn commit_uncommitted(worktree: &std::path::Path, name: &str) -> anyhow::Result<()> {
    let repo = git2::Repository::open(worktree)?;
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true);
    if repo.statuses(Some(&mut opts))?.is_empty() {
        return Ok(());
    }
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    index.update_all(["*"], None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = repo.signature().or_else(|_| git2::Signature::now("muster", "muster@localhost"))?;
    let parent = repo.head()?.peel_to_commit()?;
    repo.commit(Some("HEAD"), &sig, &sig, &format!("muster: work of {name}"), &tree, &[&parent])?;
    Ok(())
}

fn conflict_op(
    name: &str,
    place: &std::path::Path,
    into_agent: bool,
    op: ConflictOp,
    sink: &EventSink,
) -> anyhow::Result<Option<String>> {
    let refresh = |sink: &EventSink| -> anyhow::Result<()> {
        let files = merge::conflicts(place)?;
        sink.event(Event::MergeConflicts { name: name.to_string(), into_agent, files });
        Ok(())
    };
    match op {
        ConflictOp::Read { path, to } => {
            // A plain path inside the worktree, read as a regular file of bounded size (an agent's FIFO there
            // would hang this worker).
            let plain = std::path::Path::new(&path).components().all(|c| matches!(c, std::path::Component::Normal(_)));
            let bytes = plain
                .then(|| crate::safefs::read_own_file(&place.join(&path), merge::MAX_CONFLICT_FILE).ok().flatten())
                .flatten()
                .unwrap_or_default();
            let parsed = crate::conflict::parse(&bytes, merge::marker_size(place, &path));
            sink.reply(to, Event::ConflictFile { name: name.to_string(), path, parsed });
            Ok(None)
        }
        ConflictOp::Stage { path, content } => {
            merge::stage_resolved(place, &path, &content)?;
            refresh(sink)?;
            Ok(Some(format!("{path}: written and staged")))
        }
        ConflictOp::Take { path, side } => {
            merge::take_side(place, &path, side)?;
            refresh(sink)?;
            Ok(Some(format!("{path}: kept {}", if side == Side::Ours { "ours" } else { "theirs" })))
        }
        ConflictOp::Finish { message } => {
            let commit = merge::finish(place, message.as_deref())?;
            sink.event(Event::MergeEnded {
                name: name.to_string(),
                text: format!("merge committed: {}", &commit[..10.min(commit.len())]),
            });
            Ok(Some(format!("{name}: merge committed ({})", &commit[..10.min(commit.len())])))
        }
        ConflictOp::Abort => {
            merge::abort(place)?;
            sink.event(Event::MergeEnded { name: name.to_string(), text: "merge aborted".into() });
            Ok(Some(format!("{name}: merge aborted; {} is as it was", place.display())))
        }
    }
}

/// Run `f` with the agent frozen, so a restore does not race the agent's own writes. The operator's own pause
/// outlives it.
pub fn with_paused<R>(tree: Option<&AgentTree>, f: impl FnOnce() -> R) -> R {
    let _hold = tree.map(AgentTree::hold);
    f()
}

fn run(job: Job, sink: &EventSink) -> Option<JobDone> {
    let Job { name, worktree, pause, agent, files, kind, .. } = job;
    with_paused(pause.as_deref(), move || run_job(name, worktree, files.as_deref(), agent.as_deref(), kind, sink))
}

fn run_job(
    name: String,
    worktree: PathBuf,
    files: Option<&WorktreeWatch>,
    agent: Option<&AgentTree>,
    kind: JobKind,
    sink: &EventSink,
) -> Option<JobDone> {
    let mut rolled_back = None;
    // A turn's checkpoint: whether the job was one, the checkpoint it ended on, and whether that is new.
    let mut turn = None;
    let turn_job = matches!(&kind, JobKind::Create { trigger } if trigger == "turn");
    let mut turn_changed = false;
    let mut kept = None;
    // Resolving conflicts leaves the timeline as it was: no need to list it again.
    let touches_timeline = !matches!(kind, JobKind::Conflict { .. });
    let branches_moved = matches!(kind, JobKind::Merge { .. } | JobKind::Conflict { .. });
    let message = match kind {
        // An automatic checkpoint of a worktree nothing has touched yet would record nothing.
        JobKind::Create { trigger }
            if matches!(trigger.as_str(), "periodic" | "turn" | "stop") && checkpoint::untouched(&worktree, &name) =>
        {
            None
        }
        JobKind::Result { root, result } => {
            let made = settled_checkpoint(&worktree, &name, "result", files, agent);
            let (cp, message) = match made {
                Ok((cp, true)) => (Some(cp.n), Some((checkpoint_made(&name, "result", &cp), false))),
                Ok((cp, false)) => (Some(cp.n), None),
                Err(e) => (None, Some((format!("{name}: checkpoint failed: {e:#}"), true))),
            };
            kept = Some(Box::new(match cp {
                Some(n) => {
                    crate::engine::results::store(&root, &name, &worktree, n, result).map_err(|e| format!("{e:#}"))
                }
                None => Err("no checkpoint of its work could be taken for it to name".to_string()),
            }));
            message
        }
        JobKind::Create { trigger } => {
            let made = settled_checkpoint(&worktree, &name, &trigger, files, agent);
            if let (Ok((cp, new)), "turn") = (&made, trigger.as_str()) {
                turn = Some(cp.clone());
                turn_changed = *new;
            }
            match made {
                Ok((cp, true)) => Some((checkpoint_made(&name, &trigger, &cp), false)),
                Ok((cp, false)) if !matches!(trigger.as_str(), "periodic" | "turn" | "stop") => {
                    Some((format!("{name}: nothing changed since checkpoint {}", cp.n), false))
                }
                Ok(_) => None,
                Err(e) => Some((format!("{name}: checkpoint failed: {e:#}"), true)),
            }
        }
        JobKind::Rollback { n, files: only } => {
            let partial = only.is_some();
            let rollback = |c: &Changes| checkpoint::rollback_with(&worktree, &name, n, only.as_deref(), c);
            match WorktreeWatch::checkpoint(files, rollback) {
                Ok(r) => {
                    rolled_back = Some(true);
                    let what = if partial {
                        format!("{} restored from", crate::text::counted(r.changed.len(), "file"))
                    } else {
                        "rolled back to".into()
                    };
                    Some((
                        format!(
                            "{name}: {what} checkpoint {n} ({} changed); undo returns to {}",
                            r.changed.len(),
                            r.rescue
                        ),
                        false,
                    ))
                }
                Err(e) => Some((format!("{name}: {e:#}"), true)),
            }
        }
        JobKind::Undo => match checkpoint::undo_rollback(&worktree, &name) {
            Ok(r) => {
                rolled_back = Some(false);
                Some((format!("{name}: rollback undone (back to checkpoint {})", r.target), false))
            }
            Err(e) => Some((format!("{name}: {e:#}"), true)),
        },
        JobKind::List => None,
        JobKind::Merge { root, base, into_agent, message } => {
            let checkpointed =
                WorktreeWatch::checkpoint(files, |c| checkpoint::create_with(&worktree, &name, "before merge", c));
            match checkpointed.and_then(|_| run_merge(&name, &worktree, &root, &base, into_agent, message, sink)) {
                Ok(text) => text.map(|t| (t, false)),
                Err(e) => Some((format!("{name}: merge refused: {e:#}"), true)),
            }
        }
        JobKind::Conflict { root, op } => {
            let into_agent = merge::in_progress(&worktree);
            let place = merge::merge_worktree(&root, &worktree, into_agent);
            match conflict_op(&name, &place, into_agent, op, sink) {
                Ok(text) => text.map(|t| (t, false)),
                Err(e) => Some((format!("{name}: {e:#}"), true)),
            }
        }
        JobKind::MergeCheck { root, base, into_agent, to, gates, owns, shared } => {
            let branch = crate::git::worktree::branch_name(&name);
            let mut check = merge::preflight(&root, &worktree, &branch, &base, into_agent)
                .unwrap_or_else(|e| merge::Preflight { refused: Some(format!("{e:#}")), ..Default::default() });
            check.gates = gates;
            if !into_agent && (owns.is_some() || !shared.is_empty()) {
                let changed = crate::git::ownership::changed_files(&root, Some(&worktree), &branch, &base);
                let rules = crate::guard::Rules::new(owns.as_deref(), &shared, &[]);
                let outside =
                    |f: &String| rules.owns.as_ref().is_some_and(|o| !o.matches(f)) || rules.shared.matches(f);
                check.outside_owns = changed.unwrap_or_default().into_iter().filter(outside).collect();
            }
            sink.reply(to, Event::MergeCheck { name, into_agent, check });
            return None;
        }
        JobKind::Diff { n, base, to } => {
            let files = checkpoint::diff(&worktree, &name, n, base).unwrap_or_default();
            sink.reply(to, Event::CheckpointDiff { name, n, base, files });
            return None;
        }
        JobKind::Review { base, to } => {
            let review = checkpoint::review(&worktree, &name, &base).map_err(|e| format!("{e:#}"));
            sink.reply(to, Event::Review { name, base, review });
            return None;
        }
        JobKind::Preview { n, files, to } => {
            return match checkpoint::rollback_preview(&worktree, &name, n, files.as_deref()) {
                Ok((changes, moves_head)) => {
                    sink.reply(to, Event::RollbackPreview { name, n, files, changes, moves_head });
                    None
                }
                Err(e) => Some(JobDone {
                    checkpoints: None,
                    name: name.clone(),
                    rolled_back: None,
                    message: Some((format!("{name}: {e:#}"), true)),
                    stop_after: false,
                    branches_moved: false,
                    turn: None,
                    turn_job: false,
                    turn_changed: false,
                    kept: None,
                    reply: None,
                }),
            };
        }
    };
    let checkpoints = touches_timeline.then(|| checkpoint::list(&worktree, &name).unwrap_or_default());
    Some(JobDone {
        name,
        checkpoints,
        rolled_back,
        message,
        stop_after: false,
        branches_moved,
        turn,
        turn_job,
        turn_changed,
        kept,
        reply: None,
    })
}

/// A checkpoint of what the worktree holds once its files stop changing (and whether it is new).
fn settled_checkpoint(
    worktree: &std::path::Path,
    name: &str,
    trigger: &str,
    files: Option<&WorktreeWatch>,
    agent: Option<&AgentTree>,
) -> anyhow::Result<(checkpoint::Checkpoint, bool)> {
    let create = |c: &Changes, again: &mut dyn FnMut() -> Option<Changes>| {
        checkpoint::create_settled(worktree, name, trigger, c, again)
            .map(|(cp, new, settle)| ((cp, new), settle.unsettled))
    };
    let writing = || agent.map(|a| a.files_open_for_writing(worktree)).unwrap_or_default();
    WorktreeWatch::checkpoint_settled(files, &writing, create)
}

/// The line a new checkpoint shows: what it could not settle, and what it left out (nested repositories).
fn checkpoint_made(name: &str, trigger: &str, cp: &checkpoint::Checkpoint) -> String {
    let mut text = format!("{name}: checkpoint {} ({trigger})", cp.n);
    if !cp.unsettled.is_empty() {
        text.push_str(&format!("; still changing: {}", cp.unsettled.join(", ")));
    }
    if !cp.skipped.is_empty() {
        text.push_str(&format!("; left out (git repositories of their own): {}", cp.skipped.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_is_frozen_while_the_job_runs_and_thawed_after() {
        let tree = AgentTree::new();
        assert!(with_paused(Some(&tree), || tree.is_frozen()));
        assert!(!tree.is_frozen());
        // The operator's pause outlives the job's hold.
        tree.set_paused(true).unwrap();
        with_paused(Some(&tree), || ());
        assert!(tree.is_frozen());
    }
}
