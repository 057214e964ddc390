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
            self.send_mail_as(&by, target, verdict.steer_text(&by))
                .map_err(|error| format!("{target}: the blockers were not sent: {error}"))?;
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

    /// A verdict line `reviewer`'s turn left on its screen: for the agent it names, or else each one it reviews
    /// whose newest work waits for a review. Changes asked for carry the lines above the verdict as the blocker.
    pub(super) fn screen_verdict(
        &mut self,
        reviewer: &str,
        generation: u64,
        approved: bool,
        target: Option<&str>,
        reasons: &str,
    ) {
        let Some(r) = self.slots.iter().find(|s| s.spec.name == reviewer) else { return };
        if r.running.as_ref().is_none_or(|run| run.generation != generation) {
            return;
        }
        let who = (r.spec.name.clone(), r.token.clone());
        let targets: Vec<String> = match target {
            Some(t) => vec![t.to_string()],
            None => r.spec.reviews.iter().filter(|t| self.review_open(t)).cloned().collect(),
        };
        let mut reason: String = reasons.chars().take(crate::protocol::review::MAX_POINT - 200).collect();
        if reason.trim().is_empty() {
            reason = "(no reasons above the verdict line)".into();
        }
        let blocker = format!("{reviewer} asked for changes (VERDICT: CHANGES on its screen). Its words:\n{reason}");
        for t in targets {
            let verdict = crate::protocol::review::Verdict {
                approve: approved,
                blockers: if approved { vec![] } else { vec![blocker.clone()] },
                ..Default::default()
            };
            if let Err(e) = self.review_verdict(Some(who.clone()), &t, verdict) {
                self.message(format!("{reviewer}'s verdict line: {e}"), true);
            }
        }
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
        // The checkpoint this reviewer's last word on each was about, when newer work followed it.
        let reviewed = |s: &Slot| {
            s.info
                .review
                .as_ref()
                .filter(|m| m.by == reviewer && m.checkpoint > 0 && m.checkpoint != s.newest_checkpoint)
                .map(|m| m.checkpoint)
        };
        let work: Vec<(String, std::path::PathBuf, String, Option<u32>)> = r
            .spec
            .reviews
            .iter()
            .filter(|t| only.is_none_or(|o| o == t.as_str()))
            .filter_map(|t| self.slots.iter().find(|s| &s.spec.name == t))
            .filter(|s| s.spec.worktree)
            .map(|s| (s.spec.name.clone(), s.info.worktree.clone(), s.info.base.clone(), reviewed(s)))
            .collect();
        if work.is_empty() {
            return;
        }
        std::thread::spawn(move || {
            for (name, worktree, base, reviewed) in work {
                if let Err(e) = write_diff(&into, &name, &worktree, &base, reviewed) {
                    tracing::warn!("handing {name}'s diff to its reviewer: {e:#}");
                }
            }
        });
    }

    /// A turn of `name` made new work (checkpoint `n`) after a reviewer's verdict on older work: the reviewer is
    /// asked to look again, by mail from `name` through the arbiter (a reviewer works in turns: without one it
    /// would never read the new diff, and the plan would wait on it for ever).
    pub(super) fn ask_for_a_new_look(&mut self, name: &str, n: u32) {
        let Some(mark) = self.slots.iter().find(|s| s.spec.name == name).and_then(|s| s.info.review.clone()) else {
            return;
        };
        let reviewer = self.slots.iter().find(|s| {
            s.spec.name == mark.by
                && s.spec.reviews.iter().any(|r| r == name)
                && s.running.as_ref().is_some_and(|r| !r.exited)
        });
        if reviewer.is_none() || mark.checkpoint >= n {
            return;
        }
        let body = format!(
            "[muster] {name} has new work since your review of its checkpoint {}: read .muster/review/{name}.new.diff \
             (what changed since) and answer again with `muster review {name} --approve` or `--blocker TEXT`.",
            mark.checkpoint
        );
        if let Err(e) = self.send_mail_as(name, &mark.by, body) {
            self.message(format!("{}: not asked to look again at {name}'s work: {e}", mark.by), true);
        }
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

/// `name`'s work against its base, as a file in `into` (written whole by rename: a reviewer never reads half);
/// and when `reviewed` names the checkpoint its last review was of, what changed since then alone, as
/// `<name>.new.diff` (the reviewer looks at that again, not at all of it).
fn write_diff(into: &Path, name: &str, worktree: &Path, base: &str, reviewed: Option<u32>) -> anyhow::Result<()> {
    let (merge_base, files) = crate::git::checkpoint::review(worktree, name, base)?;
    let since = match reviewed {
        Some(n) => {
            Some((n, crate::git::checkpoint::diff(worktree, name, n, crate::protocol::git::DiffBase::Worktree)?))
        }
        None => None,
    };
    let mut text = format!(
        "# The work of `{name}` against {base} (merge base {}): its branch and worktree, as a merge would bring it.\n\
         # Answer with `muster review {name} --approve` or `--blocker TEXT` (and `--debt TEXT`, `--skip TEXT`).\n",
        &merge_base[..merge_base.len().min(8)]
    );
    if let Some((n, _)) = &since {
        text.push_str(&format!(
            "# You reviewed its checkpoint {n} before: {name}.new.diff holds only what changed since.\n"
        ));
    }
    patch_text(&mut text, &files);
    std::fs::create_dir_all(into)?;
    crate::safefs::write_file(into, &format!("{name}.diff"), text.as_bytes())?;
    let new = into.join(format!("{name}.new.diff"));
    match since {
        Some((n, files)) => {
            let mut text = format!(
                "# What `{name}` changed since its checkpoint {n}, which you reviewed: review this part again.\n\
                 # The whole work is in {name}.diff. Answer with `muster review {name} --approve` or `--blocker TEXT`.\n"
            );
            patch_text(&mut text, &files);
            crate::safefs::write_file(into, &format!("{name}.new.diff"), text.as_bytes())
        }
        None if new.exists() => crate::safefs::remove_inside(into, &new),
        None => Ok(()),
    }
}

/// Files' diffs as patch text after `text`'s header, cut past 1 MiB (saying so).
fn patch_text(text: &mut String, files: &[crate::protocol::git::FileDiff]) {
    use crate::protocol::git::LineKind;
    for f in files {
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
}
