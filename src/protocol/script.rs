//! The script API (issue #25): what any program may ask a running crew on `hook.sock` in the repository's run
//! folder, and what it is answered. Newline-delimited JSON: one `Request` per connection, answered by one
//! `Answer` per line (a `send` that waits gets two). `muster` itself speaks only these types; `muster schema`
//! prints the JSON Schema derived from them, so what the schema says and what the server does cannot drift.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::gate::{GateAnswer, GateOp};
use super::guard::{GuardAnswer, GuardOp};
use super::mail::{MailAnswer, MailOp};
use super::Command;

/// Bumped whenever a request or an answer changes shape (`{"version":{}}` tells a script which it speaks).
pub const VERSION: u32 = 5;

/// One request: an object with one key, the request's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// An agent's hook reporting an event of its CLI (`muster hook <event>`). `token` is the agent's secret from
    /// its environment (`MUSTER_AGENT_TOKEN`), so an agent cannot report as another by setting `MUSTER_AGENT`.
    /// Answered `reported`.
    Hook {
        agent: String,
        token: String,
        event: String,
        #[serde(default)]
        detail: Option<String>,
        #[serde(default)]
        session: Option<String>,
    },
    /// Why the agent is in its state. Answered `explained`.
    Explain { agent: String },
    /// Type a message into an agent (as `muster send`), not into a dialog unless `force`. Answered `sent`; with
    /// `wait`, then `turn` when the turn it started ends.
    Send {
        agent: String,
        text: String,
        #[serde(default)]
        force: bool,
        #[serde(default)]
        wait: bool,
        /// Sent by an agent (its name and secret): only into its descendants.
        #[serde(default)]
        from: Option<Caller>,
    },
    /// A change to an agent, carried out by the engine so it never races it on a worktree (checkpoint, rollback,
    /// merge, conflict resolution, start, stop…). `trigger` names a checkpoint's cause (`cli` unless given).
    /// Answered `done`.
    Run {
        command: Command,
        #[serde(default)]
        trigger: Option<String>,
        /// Asked by an agent (its name and secret): stop, pause, resume, restart, start or remove its
        /// descendants only.
        #[serde(default)]
        from: Option<Caller>,
    },
    /// The crew as it is now. Answered `status`.
    Status {},
    /// Until every named agent is in the state asked, tied to the runs they have when asked. Answered `waited`,
    /// or an error naming an agent the crew does not have.
    Wait {
        agents: Vec<String>,
        until: WaitFor,
        /// Seconds; past them the request is forgotten and its connection closed without an answer.
        #[serde(default)]
        timeout: Option<f64>,
        /// Settled by the first agent in the state asked (answered `first`), not all of them.
        #[serde(default)]
        any: bool,
    },
    /// The mailbox, as the agent whose name and secret it carries, or as the operator (neither given). Answered
    /// `mail`.
    Mail {
        #[serde(default)]
        agent: Option<String>,
        #[serde(default)]
        token: Option<String>,
        op: MailOp,
    },
    /// Gates: run them, list their runs, read a run's log, grant an attempt, stop a loop, cancel. Answered
    /// `gate`.
    Gate { op: GateOp },
    /// The watchdog: its findings, and restore, allow, dismiss or tell the agent about one. Answered `guard`.
    Guard { op: GuardOp },
    /// A reviewer's verdict on `target`'s work (`muster review`): from an agent (its secret in `token`) that
    /// `reviews` it, or the operator (no agent). Answered `done`.
    Review {
        #[serde(default)]
        agent: Option<String>,
        #[serde(default)]
        token: Option<String>,
        target: String,
        verdict: super::review::Verdict,
    },
    /// A new agent of the crew (`muster spawn`), as the asking agent's child (`from`), or the operator's.
    /// Answered `spawned` once it is at its prompt with its kickoff delivered (or as `wait` asks).
    Spawn {
        #[serde(default)]
        from: Option<Caller>,
        spawn: super::lead::Spawn,
    },
    /// An agent's output: its last lines, its last turn's, or its screen. Answered `text`.
    Read {
        agent: String,
        what: super::lead::ReadWhat,
        /// With its colours and styles as escape sequences.
        #[serde(default)]
        ansi: bool,
    },
    /// Set one's own structured result (an agent, `from`), or get an agent's. Answered `results`.
    Result {
        #[serde(default)]
        from: Option<Caller>,
        op: super::lead::ResultOp,
    },
    /// The crew's event log after `since` (a sequence number), as `event` lines; with `follow`, then each new
    /// one as it happens, until the client closes.
    Events {
        #[serde(default)]
        since: u64,
        #[serde(default)]
        follow: bool,
        /// Only these agents' (empty: all).
        #[serde(default)]
        agents: Vec<String>,
        /// Only these kinds (empty: all).
        #[serde(default)]
        kinds: Vec<super::lead::EventKind>,
    },
    /// Which version of this API the server speaks. Answered `version`.
    Version {},
}

/// An agent asking, with its secret from its environment (`MUSTER_AGENT`, `MUSTER_AGENT_TOKEN`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    pub agent: String,
    pub token: String,
}

pub use super::lead::WaitFor;

/// One answer line: an object with one key, what kind of answer it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// `hook`: the report went in.
    Reported {},
    /// `explain`: the agent's state and why, as the workbench shows it.
    Explained { text: String },
    /// `send`: the text went into the agent.
    Sent {},
    /// `send` with `wait`: how the turn it started ended.
    Turn { end: TurnEnd },
    /// `run`: carried out; what it said (a checkpoint's name, a merge's outcome), if anything.
    Done {
        #[serde(default)]
        message: Option<String>,
    },
    /// `status`: the crew, in the shape of `.muster/state.json` (`version`, `agents` with each one's `spec`,
    /// `branch`, `state`, `run`…).
    Status { crew: serde_json::Value },
    /// `wait`: settled.
    Waited { outcome: WaitOutcome },
    /// `mail`: the mailbox's answer.
    Mail(MailAnswer),
    /// `gate`: the gates' answer.
    Gate(GateAnswer),
    /// `guard`: the watchdog's answer.
    Guard(GuardAnswer),
    /// `version`: this API's version and the server's muster.
    Version { script: u32, muster: String },
    /// `spawn`: the new agent, its branch and worktree.
    Spawned { name: String, branch: String, worktree: String },
    /// `read`: the agent's output.
    Text { text: String },
    /// `result`: the results asked for, oldest first (after `set`: the one kept).
    Results { results: Vec<super::lead::StoredResult> },
    /// `events`: one event of the log.
    Event(super::lead::CrewEvent),
    /// The request was not carried out. Never an agent's fault unless `kind` says so.
    Error(ScriptError),
}

/// How a turn started by `send` with `wait` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TurnEnd {
    /// It went to work and came back to its prompt.
    Idle,
    /// It asks something (a permission or a question).
    Waiting,
    /// Its run ended.
    Exited,
}

/// How a `wait` settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WaitOutcome {
    /// Every agent is in the state asked.
    Matched,
    /// This agent's run ended first (and the state asked was not `exited` or `any`).
    Ended { agent: String },
    /// This agent was removed from the crew.
    Gone { agent: String },
    /// With `any`: this agent was the first in the state asked.
    First { agent: String },
}

/// Why a request was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ScriptError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Not a request this API knows, or not well formed (the message says what and where).
    Malformed,
    /// No agent (or message) of that name or number.
    Unknown,
    /// The agent is not running (its run ended, or it never started).
    NotRunning,
    /// Understood and refused as asked: a dialog on screen, a body too long, a wrong secret, a merge that would
    /// not apply.
    Refused,
    /// Tried and failed (git, the disk, the mailbox): muster's side, not the agent's.
    Failed,
    /// Too many requests wait already; try again.
    Busy,
    /// The crew is stopping.
    Stopping,
}

impl Answer {
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Answer {
        Answer::Error(ScriptError { kind, message: message.into() })
    }

    /// One line on the socket.
    pub fn line(&self) -> String {
        // These types always serialise; the fallback is only there so a line is never empty.
        let mut text = serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"error":{"kind":"failed","message":"an answer muster could not write"}}"#.into());
        text.push('\n');
        text
    }
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The JSON Schema of the API, derived from the types above: `request` and `answer`, under this API's version.
pub fn schema() -> serde_json::Value {
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "muster's script API",
        "description": "Newline-delimited JSON on hook.sock in the repository's run folder (`muster server status` \
            prints where): one request per connection, one object on one line; every answer is one object on one \
            line (a `send` with `wait` gets `sent`, then `turn`). The socket is 0600 in a 0700 folder and serves only \
            this user's processes.",
        "version": VERSION,
        "request": schemars::schema_for!(Request),
        "answer": schemars::schema_for!(Answer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mail::{MailAnswer, MailOp};

    /// One of every request; the match below stops compiling when a request is added and not listed here.
    fn every_request() -> Vec<Request> {
        let all = vec![
            Request::Hook { agent: "a".into(), token: "t".into(), event: "Stop".into(), detail: None, session: None },
            Request::Explain { agent: "a".into() },
            Request::Send { agent: "a".into(), text: "x\ny".into(), force: false, wait: true, from: None },
            Request::Run {
                command: Command::Checkpoint { name: "a".into() },
                trigger: Some("gate".into()),
                from: Some(Caller { agent: "lead".into(), token: "t".into() }),
            },
            Request::Status {},
            Request::Wait { agents: vec!["a".into(), "b".into()], until: WaitFor::Any, timeout: Some(2.5), any: true },
            Request::Mail { agent: None, token: None, op: MailOp::Take { wait_gates: Some(50.0) } },
            Request::Gate { op: GateOp::Run { agent: "a".into(), gate: Some("test".into()) } },
            Request::Gate { op: GateOp::Status { agent: None, limit: Some(3) } },
            Request::Wait { agents: vec!["a".into()], until: WaitFor::GateFailed, timeout: None, any: false },
            Request::Spawn {
                from: None,
                spawn: crate::protocol::lead::Spawn {
                    name: "c1".into(),
                    kind: Some("demo".into()),
                    prompt: Some("go".into()),
                    owns: Some(vec!["src/".into()]),
                    wait: Some(WaitFor::Done),
                    timeout: Some(30.0),
                    ..Default::default()
                },
            },
            Request::Read { agent: "c1".into(), what: crate::protocol::lead::ReadWhat::Lines { n: 5 }, ansi: true },
            Request::Read { agent: "c1".into(), what: crate::protocol::lead::ReadWhat::Turn {}, ansi: false },
            Request::Result {
                from: Some(Caller { agent: "c1".into(), token: "t".into() }),
                op: crate::protocol::lead::ResultOp::Set {
                    result: crate::protocol::lead::AgentResult { summary: "done".into(), ..Default::default() },
                },
            },
            Request::Result { from: None, op: crate::protocol::lead::ResultOp::Get { agent: "c1".into() } },
            Request::Events {
                since: 4,
                follow: true,
                agents: vec!["c1".into()],
                kinds: vec![crate::protocol::lead::EventKind::Result],
            },
            Request::Guard { op: GuardOp::Status { agent: Some("a".into()), all: true } },
            Request::Guard { op: GuardOp::Restore { id: 3 } },
            Request::Review {
                agent: Some("rev".into()),
                token: Some("t".into()),
                target: "api".into(),
                verdict: super::super::review::Verdict { blockers: vec!["no test".into()], ..Default::default() },
            },
            Request::Version {},
        ];
        for r in &all {
            match r {
                Request::Hook { .. }
                | Request::Explain { .. }
                | Request::Send { .. }
                | Request::Run { .. }
                | Request::Status {}
                | Request::Wait { .. }
                | Request::Mail { .. }
                | Request::Gate { .. }
                | Request::Guard { .. }
                | Request::Review { .. }
                | Request::Spawn { .. }
                | Request::Read { .. }
                | Request::Result { .. }
                | Request::Events { .. }
                | Request::Version {} => {}
            }
        }
        all
    }

    fn every_answer() -> Vec<Answer> {
        let all = vec![
            Answer::Reported {},
            Answer::Explained { text: "a: idle".into() },
            Answer::Sent {},
            Answer::Turn { end: TurnEnd::Waiting },
            Answer::Done { message: Some("a: checkpoint 3".into()) },
            Answer::Done { message: None },
            Answer::Status { crew: serde_json::json!({"version": 1, "agents": []}) },
            Answer::Waited { outcome: WaitOutcome::Matched },
            Answer::Waited { outcome: WaitOutcome::Ended { agent: "a".into() } },
            Answer::Waited { outcome: WaitOutcome::Gone { agent: "a".into() } },
            Answer::Mail(MailAnswer::Taken { text: Some("hi".into()) }),
            Answer::Mail(MailAnswer::Error { error: "no message #9".into() }),
            Answer::Gate(GateAnswer::Queued { runs: vec![4, 5] }),
            Answer::Gate(GateAnswer::Done { message: "api: one more attempt".into() }),
            Answer::Guard(GuardAnswer::Findings { findings: vec![crate::protocol::guard::Finding::default()] }),
            Answer::Guard(GuardAnswer::Done { message: "api: src/db.rs restored".into() }),
            Answer::Version { script: VERSION, muster: "0.1.0".into() },
            Answer::Spawned {
                name: "c1".into(),
                branch: "muster/c1".into(),
                worktree: "/r/.muster/worktrees/c1".into(),
            },
            Answer::Text { text: "line\n".into() },
            Answer::Results { results: vec![crate::protocol::lead::StoredResult::default()] },
            Answer::Event(crate::protocol::lead::CrewEvent {
                seq: 1,
                at_ms: 2,
                kind: crate::protocol::lead::EventKind::Spawn,
                agent: Some("c1".into()),
                text: "c1 spawned by lead".into(),
            }),
            Answer::Waited { outcome: WaitOutcome::First { agent: "c1".into() } },
            Answer::error(ErrorKind::NotRunning, "a is not running"),
        ];
        for a in &all {
            match a {
                Answer::Reported {}
                | Answer::Explained { .. }
                | Answer::Sent {}
                | Answer::Turn { .. }
                | Answer::Done { .. }
                | Answer::Status { .. }
                | Answer::Waited { .. }
                | Answer::Mail(_)
                | Answer::Gate(_)
                | Answer::Guard(_)
                | Answer::Version { .. }
                | Answer::Spawned { .. }
                | Answer::Text { .. }
                | Answer::Results { .. }
                | Answer::Event(_)
                | Answer::Error(_) => {}
            }
        }
        all
    }

    /// A validator of one half of the printed schema.
    pub(crate) fn validator(half: &str) -> (boon::Schemas, boon::SchemaIndex) {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        let url = format!("urn:muster:{half}");
        compiler.add_resource(&url, schema()[half].clone()).unwrap();
        let index = compiler.compile(&url, &mut schemas).unwrap();
        (schemas, index)
    }

    #[test]
    fn every_request_and_answer_round_trips_and_the_derived_schema_holds_it() {
        let (requests, r) = validator("request");
        for req in every_request() {
            let line = serde_json::to_string(&req).unwrap();
            assert!(!line.contains('\n'), "one line: {line}");
            assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), req);
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            requests.validate(&value, r).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
        let (answers, a) = validator("answer");
        for answer in every_answer() {
            let line = answer.line();
            assert!(line.ends_with('\n') && line.matches('\n').count() == 1, "one line: {line}");
            assert_eq!(serde_json::from_str::<Answer>(&line).unwrap(), answer);
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            answers.validate(&value, a).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    #[test]
    fn the_schema_refuses_what_the_server_refuses() {
        let (requests, r) = validator("request");
        for bad in [
            r#"{"bogus":{}}"#,
            r#"{"send":{"agent":"a"}}"#,
            r#"{"wait":{"agents":["a"],"until":"sometime"}}"#,
            r#"{"status":{},"explain":{"agent":"a"}}"#,
            r#"{"explain":{"agent":"a","extra":1}}"#,
        ] {
            let value: serde_json::Value = serde_json::from_str(bad).unwrap();
            assert!(requests.validate(&value, r).is_err(), "the schema takes {bad}");
            assert!(serde_json::from_str::<Request>(bad).is_err(), "the server takes {bad}");
        }
    }
}
