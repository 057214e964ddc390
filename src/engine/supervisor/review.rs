//! Reviews: a reviewer agent (`reviews = [...]`) is handed each reviewed agent's diff as a file in its worktree
//! (`.muster/review/<agent>.diff`), when it starts and after each turn of the agent it reviews, and answers with
//! `muster review`. Its verdict marks the reviewed agent (green needs an approval of its newest work); blockers go
//! to it as mail from the reviewer, through the arbiter; tech debt and skippable points are recorded.

use std::path::Path;

use super::*;
use crate::protocol::review::{ReviewMark, Verdict};

/// The largest diff handed to a reviewer (a bigger one is cut, saying so).
const MAX_DIFF: usize = 1 << 20;

impl Supervisor {
    /// A verdict on `target` from `who` (an agent with its secret; None: the operator).
    pub(super) fn review_verdict(
        &mut self,
        who: Option<(String, String)>,
        target: &str,
        verdict: Verdict,
    ) -> Result<String, String> {
        verdict.check()?;
        let by = match who {
            None => crate::protocol::mail::OPERATOR.to_string(),
            Some((agent, token)) => {
                let me = self
                    .slots
                    .iter()
                    .find(|s| s.spec.name == agent && !s.token.is_empty() && s.token == token)
                    .ok_or_else(|| format!("cannot act as {agent}: MUSTER_AGENT_TOKEN is not {agent}'s"))?;
                if !me.spec.reviews.iter().any(|r| r == target) {
                    let shown: String = target.chars().take(64).collect();
                    return Err(format!("{agent} does not review {shown} (its `reviews` in the crew file)"));
                }
                agent
            }
        };
        // A name from the socket is said back cut: a client's 100 KB name is not worth echoing.
        let shown = || target.chars().take(64).collect::<String>();
        let slot = self.slot_mut(target).ok_or_else(|| format!("no agent `{}` in this crew", shown()))?;
        let mark = ReviewMark {
            by: by.clone(),
            approved: verdict.approved(),
            blockers: verdict.blockers.len(),
            debt: verdict.debt.len(),
            skip: verdict.skip.len(),
            checkpoint: slot.newest_checkpoint,
        };
        slot.info.review = Some(mark.clone());
        self.emit(target);
        if !verdict.blockers.is_empty() {
            let crew = self.crew_names();
            let store = self.mailbox.as_mut().ok_or("the mailbox is not open: the blockers cannot be sent")?;
            let op = crate::protocol::mail::MailOp::Send {
                to: vec![target.to_string()],
                body: verdict.steer_text(&by),
                reply_to: None,
                urgent: false,
                ask: false,
                expires: None,
            };
            let (answer, changed) = crate::mailbox::ops::run(store, &by, op, &crew, crate::protocol::now_ms());
            self.mail_changed(changed);
            if let crate::protocol::mail::MailAnswer::Error { error } = answer {
                return Err(format!("{target}: the blockers were not sent: {error}"));
            }
        }
        let said = format!(
            "{target}: review by {by}: {}{}{}",
            if mark.approved { "approved".to_string() } else { crate::text::counted(mark.blockers, "blocker") },
            if mark.debt > 0 {
                format!(", {} recorded", crate::text::counted(mark.debt, "point"))
            } else {
                String::new()
            },
            if mark.skip > 0 { format!(", {} skippable", mark.skip) } else { String::new() },
        );
        self.message(said.clone(), false);
        Ok(said)
    }

    /// Whether `name`'s work needs a review still: some agent reviews it, and its latest approval (if any) is
    /// not of its newest checkpoint (the reviewer looks again at new work).
    pub(super) fn review_open(&self, name: &str) -> bool {
        if !self.slots.iter().any(|s| s.spec.reviews.iter().any(|r| r == name)) {
            return false;
        }
        let Some(slot) = self.slots.iter().find(|s| s.spec.name == name) else { return false };
        !slot.info.review.as_ref().is_some_and(|m| m.approved && m.checkpoint == slot.newest_checkpoint)
    }

    /// Hand `reviewer` the diffs of the agents it reviews (all of them, or only `only`), off the engine's thread.
    pub(super) fn hand_diffs(&self, reviewer: &str, only: Option<&str>) {
        let Some(r) = self.slots.iter().find(|s| s.spec.name == reviewer) else { return };
        if !r.spec.worktree || (r.running.is_none() && !r.ran_before) {
            return;
        }
        let into = r.info.worktree.join(".muster").join("review");
        let work: Vec<(String, std::path::PathBuf, String)> = r
            .spec
            .reviews
            .iter()
            .filter(|t| only.is_none_or(|o| o == t.as_str()))
            .filter_map(|t| self.slots.iter().find(|s| &s.spec.name == t))
            .filter(|s| s.spec.worktree)
            .map(|s| (s.spec.name.clone(), s.info.worktree.clone(), s.info.base.clone()))
            .collect();
        if work.is_empty() {
            return;
        }
        std::thread::spawn(move || {
            for (name, worktree, base) in work {
                if let Err(e) = write_diff(&into, &name, &worktree, &base) {
                    tracing::warn!("handing {name}'s diff to its reviewer: {e:#}");
                }
            }
        });
    }

    /// After `name`'s checkpoint: each agent that reviews it gets its new diff.
    pub(super) fn diffs_after_checkpoint(&self, name: &str) {
        let reviewers: Vec<String> = self
            .slots
            .iter()
            .filter(|s| s.spec.reviews.iter().any(|r| r == name))
            .map(|s| s.spec.name.clone())
            .collect();
        for r in reviewers {
            self.hand_diffs(&r, Some(name));
        }
    }
}

/// `name`'s work against its base, as a file in `into` (written whole by rename: a reviewer never reads half).
fn write_diff(into: &Path, name: &str, worktree: &Path, base: &str) -> anyhow::Result<()> {
    use crate::protocol::git::LineKind;
    let (merge_base, files) = crate::git::checkpoint::review(worktree, name, base)?;
    let mut text = format!(
        "# The work of `{name}` against {base} (merge base {}): its branch and worktree, as a merge would bring it.\n\
         # Answer with `muster review {name} --approve` or `--blocker TEXT` (and `--debt TEXT`, `--skip TEXT`).\n",
        &merge_base[..merge_base.len().min(8)]
    );
    for f in &files {
        text.push_str(&format!("--- {}\n", f.path));
        for (kind, line) in &f.lines {
            let mark = match kind {
                LineKind::Added => "+",
                LineKind::Removed => "-",
                LineKind::Context => " ",
                LineKind::Hunk => "",
            };
            text.push_str(mark);
            text.push_str(line);
            text.push('\n');
        }
        if text.len() > MAX_DIFF {
            text.truncate(text.floor_char_boundary(MAX_DIFF));
            text.push_str("\n# … cut: the diff is over 1 MiB; read the branch itself for the rest\n");
            break;
        }
    }
    std::fs::create_dir_all(into)?;
    crate::safefs::write_file(into, &format!("{name}.diff"), text.as_bytes())
}
