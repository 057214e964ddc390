//! Gates (issue #28): a crew's checks, run in an agent's worktree after its turns. What a run ended as
//! (`outcome`), which tests its output names (`failures`), its output made plain (`output`), the process that
//! runs it (`run`) and the loop that steers the agent until it passes (`guard`).

pub mod failures;
pub mod guard;
pub mod outcome;
pub mod output;
pub mod run;
