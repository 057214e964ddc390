//! The crew's mailbox (issue #11): the store (`store`), the life of a receipt (`receipt`), when an agent can
//! take mail (`verdict`), and the text an agent is given.

pub mod findings;
pub mod gates;
pub mod ops;
pub mod receipt;
pub mod store;

use std::time::Duration;

use crate::protocol::mail::{Mail, CREW, OPERATOR};
use crate::protocol::AgentState;

pub use store::{MailError, NewMail, Store};

/// Who a gate's mail is from (`engine` sends it when a gate fails): a name no agent may take.
pub const GATE: &str = "gate";
/// Who the watchdog's mail is from (the operator steers an agent on a finding): a name no agent may take.
pub const GUARD: &str = "guard";

/// After the operator typed into an agent, mail waits this long.
pub const OPERATOR_GRACE: Duration = Duration::from_secs(3);
/// A typed delivery is confirmed when, within this after its Enter, the agent's turn starts or its screen
/// answers (else it is tried again).
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(10);
/// At most this many mails go into an agent in one delivery (the rest in the next): one paste stays readable.
pub const MAX_BATCH: usize = 20;
/// Mail handed over by a CLI's stop hook at most this many turns in a row (then it waits for the prompt).
pub const HOOK_STREAK: u32 = 3;

/// `--to a,b` | `crew` | `operator`: who gets a copy. `crew` is every agent but the sender; unknown names are
/// an error that lists the crew.
pub fn recipients(to: &[String], sender: &str, crew: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for name in to.iter().flat_map(|t| t.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
        let add: Vec<String> = if name == CREW {
            crew.iter().filter(|n| n.as_str() != sender).cloned().collect()
        } else if name == OPERATOR || crew.iter().any(|n| n == name) {
            vec![name.to_string()]
        } else {
            return Err(format!("no agent named {name} (the crew: {}; or crew, operator)", crew.join(", ")));
        };
        for a in add {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    if out.is_empty() {
        return Err("no recipient".into());
    }
    Ok(out)
}

/// What the moment is for one agent's mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub running: bool,
    pub state: AgentState,
    pub paused: bool,
    /// A delivery is being typed or waits for its confirmation.
    pub in_flight: bool,
    /// The operator typed into it within `OPERATOR_GRACE`.
    pub operator_typing: bool,
    /// Some operator is writing a steer to it.
    pub composing: bool,
    /// Urgent mail waits for it.
    pub urgent: bool,
    /// The CLI queues input typed while it works, and reads it after the turn (see the presets).
    pub queues_input: bool,
    /// Idle only because its screen went quiet, though its preset knows what its prompt looks like (or has
    /// hooks): it may be working without output, so it is not at its prompt.
    pub merely_quiet: bool,
    /// Its CLI's stop hook waits for the gates of the turn it ends: what comes goes in through the hook.
    pub hook_waits: bool,
}

/// Whether an agent idle by a quiet screen alone may still be working: where this run has hooks (they would
/// say when its turn ends) or its preset knows its prompt (the rule would match). A preset's hooks that this run
/// does not have (Gemini's, with the state folder under /tmp) say nothing: then quiet is all there is to go by.
pub fn merely_quiet(quiet: bool, hooked_now: bool, knows_prompt: bool) -> bool {
    quiet && (hooked_now || knows_prompt)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Deliver,
    /// Not now (why); tried again when something changes.
    Wait(&'static str),
    /// Not running: held until it runs again.
    Hold,
}

/// Whether mail may be typed into an agent now: at its prompt, never into a dialog, never under the operator's
/// fingers; urgent mail also while it works, where its CLI queues what is typed.
pub fn verdict(m: &Moment) -> Verdict {
    if !m.running {
        return Verdict::Hold;
    }
    if m.in_flight {
        return Verdict::Wait("a delivery is on its way");
    }
    if m.hook_waits {
        return Verdict::Wait("its stop hook waits for its gates (their failure goes in through it)");
    }
    if m.paused {
        return Verdict::Wait("paused");
    }
    if m.composing {
        return Verdict::Wait("the operator is writing to it");
    }
    if m.operator_typing {
        return Verdict::Wait("the operator is typing to it");
    }
    match m.state {
        AgentState::Idle if m.merely_quiet => Verdict::Wait("quiet, but not at its prompt"),
        AgentState::Idle => Verdict::Deliver,
        AgentState::Waiting => Verdict::Wait("it shows a question or a dialog"),
        AgentState::Busy if m.urgent && m.queues_input => Verdict::Deliver,
        AgentState::Busy => Verdict::Wait("busy"),
        _ => Verdict::Wait("starting"),
    }
}

/// How mail is typed into an agent: who wrote, the id, and how to answer, then the text.
pub fn frame(mails: &[Mail], muster: &str) -> String {
    let mut out = String::new();
    for (i, m) in mails.iter().enumerate() {
        if i > 0 {
            out.push_str("\n\n");
        }
        let kind = if m.urgent { "urgent mail" } else { "mail" };
        if m.from == GATE {
            // Not a person to answer: the gate judges the work again when the turn ends with changed files.
            out.push_str(&format!(
                "[muster {kind} #{} from gate] (a check of your work failed; it runs again when you end your turn \
                 with changed files)\n{}",
                m.id,
                m.body.trim_end()
            ));
            continue;
        }
        out.push_str(&format!(
            "[muster {kind} #{} from {}] (reply: {muster} mail send --to {} --reply-to {} \"…\"; or: {muster} mail ack {})\n{}",
            m.id,
            m.from,
            m.from,
            m.id,
            m.id,
            m.body.trim_end()
        ));
    }
    out
}

/// The note each agent gets about the mailbox (in its first prompt, or its CLI's system prompt).
pub fn agent_note(name: &str, muster: &str) -> String {
    format!(
        "You are the agent `{name}` in a muster crew. To message the operator or another agent run \
         `{muster} mail send --to NAME|crew|operator \"TEXT\"`; to ask the operator a question, \
         `{muster} mail ask \"QUESTION\"`; to list your mail, `{muster} mail inbox --unread`. Mail to you \
         arrives typed as `[muster mail #ID from NAME]`: answer with `--reply-to ID`, or `{muster} mail ack ID`."
    )
}

/// Seconds as a Duration for `--timeout`/`--expires`, refusing what is not a finite, non-negative number.
pub fn seconds(s: f64) -> Option<Duration> {
    (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(1e9)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moment(state: AgentState) -> Moment {
        Moment {
            running: true,
            state,
            paused: false,
            in_flight: false,
            operator_typing: false,
            composing: false,
            urgent: false,
            queues_input: false,
            merely_quiet: false,
            hook_waits: false,
        }
    }

    #[test]
    fn quiet_is_a_prompt_only_where_nothing_better_can_tell() {
        // Gemini without the hooks its preset declares and without a prompt it knows: quiet is the prompt.
        let m = Moment { merely_quiet: merely_quiet(true, false, false), ..moment(AgentState::Idle) };
        assert_eq!(verdict(&m), Verdict::Deliver);
        for (hooked, knows) in [(true, false), (false, true)] {
            let m = Moment { merely_quiet: merely_quiet(true, hooked, knows), ..moment(AgentState::Idle) };
            assert!(matches!(verdict(&m), Verdict::Wait(_)), "hooked {hooked}, knows its prompt {knows}");
        }
        assert!(!merely_quiet(false, true, true), "idle by a rule or a hook is no guess");
    }

    #[test]
    fn mail_goes_in_only_at_the_prompt() {
        assert_eq!(verdict(&moment(AgentState::Idle)), Verdict::Deliver);
        assert_eq!(verdict(&moment(AgentState::Busy)), Verdict::Wait("busy"));
        assert!(matches!(verdict(&moment(AgentState::Waiting)), Verdict::Wait(_)));
        assert_eq!(verdict(&Moment { running: false, ..moment(AgentState::Idle) }), Verdict::Hold);
        for m in [
            Moment { operator_typing: true, ..moment(AgentState::Idle) },
            Moment { composing: true, ..moment(AgentState::Idle) },
            Moment { paused: true, ..moment(AgentState::Idle) },
            Moment { in_flight: true, ..moment(AgentState::Idle) },
            // Its stop hook is about to take it (with its gates' failure).
            Moment { hook_waits: true, ..moment(AgentState::Idle) },
            // Quiet is not a prompt where the CLI's prompt is known: it may be working without output.
            Moment { merely_quiet: true, ..moment(AgentState::Idle) },
        ] {
            assert!(matches!(verdict(&m), Verdict::Wait(_)), "{m:?}");
        }
    }

    #[test]
    fn urgent_mail_goes_into_a_busy_agent_only_where_its_cli_queues_input() {
        let urgent = Moment { urgent: true, ..moment(AgentState::Busy) };
        assert_eq!(verdict(&urgent), Verdict::Wait("busy"));
        assert_eq!(verdict(&Moment { queues_input: true, ..urgent }), Verdict::Deliver);
        // Never into a dialog, urgent or not.
        let dialog = Moment { queues_input: true, ..Moment { urgent: true, ..moment(AgentState::Waiting) } };
        assert!(matches!(verdict(&dialog), Verdict::Wait(_)));
    }

    #[test]
    fn recipients_expand_the_crew_and_refuse_strangers() {
        let crew: Vec<String> = ["planner", "api", "docs"].map(String::from).to_vec();
        assert_eq!(recipients(&["crew".into()], "api", &crew).unwrap(), ["planner", "docs"]);
        assert_eq!(recipients(&["api,docs".into(), "api".into()], "operator", &crew).unwrap(), ["api", "docs"]);
        assert_eq!(recipients(&["operator".into()], "api", &crew).unwrap(), ["operator"]);
        let err = recipients(&["nobody".into()], "api", &crew).unwrap_err();
        assert!(err.contains("no agent named nobody") && err.contains("planner, api, docs"), "{err}");
        assert!(recipients(&[" , ".into()], "api", &crew).is_err());
    }

    #[test]
    fn framed_mail_says_who_wrote_and_how_to_answer() {
        let m = Mail {
            id: 7,
            thread: 7,
            reply_to: None,
            from: "planner".into(),
            to: vec!["api".into()],
            body: "add a test\n".into(),
            urgent: false,
            ask: false,
            created_ms: 0,
            receipts: vec![],
        };
        let text = frame(&[m.clone(), Mail { id: 8, urgent: true, ..m }], "muster");
        assert!(text.starts_with("[muster mail #7 from planner] (reply: muster mail send --to planner --reply-to 7"));
        assert!(text.contains("add a test\n\n[muster urgent mail #8 from planner]"), "{text}");
    }
}
