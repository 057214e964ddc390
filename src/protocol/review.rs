//! A reviewer's verdict on another agent's work (`muster review`), and the mark it leaves on the reviewed agent.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a reviewer says of an agent's work: approved, or what blocks it; tech debt and skippable points are
/// recorded and never block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    #[serde(default)]
    pub approve: bool,
    #[serde(default)]
    pub blockers: Vec<String>,
    #[serde(default)]
    pub debt: Vec<String>,
    #[serde(default)]
    pub skip: Vec<String>,
}

/// The longest point of a verdict, and how many points it may hold: it is mail to the reviewed agent.
pub const MAX_POINT: usize = 4096;
pub const MAX_POINTS: usize = 50;

impl Verdict {
    /// Approved: it says so and names no blocker.
    pub fn approved(&self) -> bool {
        self.approve && self.blockers.is_empty()
    }

    /// Why it cannot be taken: approving and blocking at once, saying nothing, or points too long or too many.
    pub fn check(&self) -> Result<(), String> {
        if self.approve && !self.blockers.is_empty() {
            return Err("a verdict approves or names blockers, not both".into());
        }
        if !self.approve && self.blockers.is_empty() {
            return Err("a verdict approves (--approve) or names a blocker (--blocker TEXT)".into());
        }
        let points = [&self.blockers, &self.debt, &self.skip];
        if points.iter().map(|p| p.len()).sum::<usize>() > MAX_POINTS {
            return Err(format!("at most {MAX_POINTS} points in a verdict"));
        }
        if points.iter().flat_map(|p| p.iter()).any(|p| p.len() > MAX_POINT || p.trim().is_empty()) {
            return Err(format!("each point is 1 to {MAX_POINT} bytes"));
        }
        Ok(())
    }

    /// The mail the reviewed agent gets when its review names blockers.
    pub fn steer_text(&self, reviewer: &str) -> String {
        let mut text = format!("Review by {reviewer}: changes needed before your work is accepted.\nBlockers:\n");
        for b in &self.blockers {
            text.push_str(&format!("- {b}\n"));
        }
        if !self.debt.is_empty() {
            text.push_str("Tech debt (recorded, not blocking):\n");
            for d in &self.debt {
                text.push_str(&format!("- {d}\n"));
            }
        }
        text.push_str("Fix the blockers; the reviewer looks again at your next work.");
        text
    }
}

/// A verdict line on a reviewer's screen (`VERDICT: APPROVED` or `VERDICT: CHANGES`, optionally naming the agent
/// it is about), the fallback for a reviewer that cannot run `muster review`. Decoration a CLI puts around its
/// answer (a bullet, bold marks) may surround it; any other word on the line makes it prose, not a verdict.
pub fn verdict_line(line: &str) -> Option<(bool, Option<&str>)> {
    let is_mark = |c: char| !c.is_alphanumeric() && !c.is_whitespace();
    let line = line.trim().trim_start_matches(is_mark).trim_end_matches(is_mark).trim();
    let rest = line.strip_prefix("VERDICT:")?.trim_start();
    let mut words = rest.split_whitespace();
    let approved = match words.next()?.trim_end_matches(is_mark) {
        "APPROVED" => true,
        "CHANGES" => false,
        _ => return None,
    };
    let target = words.next();
    let named =
        target.is_none_or(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)));
    (words.next().is_none() && named).then_some((approved, target))
}

/// A reviewed agent's latest review: by whom, its word, and the checkpoint it was about (a newer one needs a
/// new review).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewMark {
    pub by: String,
    pub approved: bool,
    pub blockers: usize,
    pub debt: usize,
    pub skip: usize,
    pub checkpoint: u32,
}

impl ReviewMark {
    /// The roster's few words.
    pub fn cell(&self) -> String {
        match self.approved {
            true => format!("review ✓ ({})", self.by),
            false => {
                format!("review ✗ {} blocker{} ({})", self.blockers, if self.blockers == 1 { "" } else { "s" }, self.by)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_line_is_read_alone_on_its_line() {
        assert_eq!(verdict_line("VERDICT: APPROVED"), Some((true, None)));
        assert_eq!(verdict_line("● VERDICT: CHANGES"), Some((false, None)));
        assert_eq!(verdict_line("  **VERDICT: APPROVED api**  "), Some((true, Some("api"))));
        assert_eq!(verdict_line("VERDICT: CHANGES docs-2"), Some((false, Some("docs-2"))));
        assert_eq!(verdict_line("VERDICT: APPROVED or VERDICT: CHANGES"), None);
        assert_eq!(verdict_line("end with VERDICT: APPROVED"), None);
        assert_eq!(verdict_line("VERDICT: MAYBE"), None);
        assert_eq!(verdict_line("verdict: approved"), None);
        assert_eq!(verdict_line("VERDICT: APPROVED ../x"), None);
        assert_eq!(verdict_line(""), None);
    }

    #[test]
    fn a_verdict_approves_or_blocks() {
        let ok = Verdict { approve: true, debt: vec!["names".into()], ..Default::default() };
        assert!(ok.check().is_ok() && ok.approved());
        let block = Verdict { blockers: vec!["no test".into()], ..Default::default() };
        assert!(block.check().is_ok() && !block.approved());
        assert!(block.steer_text("rev").contains("Review by rev") && block.steer_text("rev").contains("- no test"));
        assert!(Verdict::default().check().is_err());
        assert!(Verdict { approve: true, blockers: vec!["x".into()], ..Default::default() }.check().is_err());
        assert!(Verdict { approve: true, skip: vec![" ".into()], ..Default::default() }.check().is_err());
        assert!(Verdict { blockers: vec!["x".repeat(MAX_POINT + 1)], ..Default::default() }.check().is_err());
    }
}
