//! Mail as clients see it (issue #11): messages between the operator and agents, and what happened to each
//! copy (its receipt). The store and the delivery rules live in the runtime (`mailbox/`); these are what cross the wire.

use serde::{Deserialize, Serialize};

/// Who mail to the operator is addressed to, and who sends from outside any agent.
pub const OPERATOR: &str = "operator";
/// Addressing the whole crew (every agent but the sender).
pub const CREW: &str = "crew";
/// The longest message (or steer) muster takes, in bytes: it is typed into an agent as one paste.
pub const MAX_BODY: usize = 64 << 10;

/// Whether a message's text is short enough, or the error that says the limit.
pub fn check_body(body: &str) -> Result<(), String> {
    if body.len() > MAX_BODY {
        return Err(format!(
            "a message is at most {MAX_BODY} bytes; this one is {} (send a file's path instead)",
            body.len()
        ));
    }
    Ok(())
}

/// Where one copy of a message is: each step names how (delivered) or why (held, expired, dead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptState {
    /// Waiting for a moment the recipient can take it.
    Queued,
    /// Waiting for something outside (the agent is stopped).
    Held,
    /// Typed into the agent, not yet confirmed.
    Delivering,
    Delivered,
    /// The recipient's turn that reads it started.
    Seen,
    /// Acknowledged, or replied to.
    Acked,
    Expired,
    /// Could not be delivered: the operator may retry or drop it.
    Dead,
    /// Dropped by the operator.
    Dropped,
}

impl ReceiptState {
    pub fn label(self) -> &'static str {
        match self {
            ReceiptState::Queued => "queued",
            ReceiptState::Held => "held",
            ReceiptState::Delivering => "delivering",
            ReceiptState::Delivered => "delivered",
            ReceiptState::Seen => "seen",
            ReceiptState::Acked => "acked",
            ReceiptState::Expired => "expired",
            ReceiptState::Dead => "dead",
            ReceiptState::Dropped => "dropped",
        }
    }

    pub fn parse(s: &str) -> Option<ReceiptState> {
        ALL_STATES.into_iter().find(|st| st.label() == s)
    }

    /// Still on its way: the recipient has not had it.
    pub fn pending(self) -> bool {
        matches!(self, ReceiptState::Queued | ReceiptState::Held | ReceiptState::Delivering)
    }

    /// The recipient has it (delivered, seen or acked).
    pub fn reached(self) -> bool {
        matches!(self, ReceiptState::Delivered | ReceiptState::Seen | ReceiptState::Acked)
    }

    /// Reached at least `goal` on the way queued → delivered → seen → acked.
    pub fn at_least(self, goal: ReceiptState) -> bool {
        let rank = |s: ReceiptState| match s {
            ReceiptState::Delivered => 1,
            ReceiptState::Seen => 2,
            ReceiptState::Acked => 3,
            _ => 0,
        };
        rank(self) >= rank(goal) && rank(goal) > 0
    }

    /// No step leads on from here, unless the operator retries.
    pub fn failed(self) -> bool {
        matches!(self, ReceiptState::Dead | ReceiptState::Expired | ReceiptState::Dropped)
    }
}

pub const ALL_STATES: [ReceiptState; 9] = [
    ReceiptState::Queued,
    ReceiptState::Held,
    ReceiptState::Delivering,
    ReceiptState::Delivered,
    ReceiptState::Seen,
    ReceiptState::Acked,
    ReceiptState::Expired,
    ReceiptState::Dead,
    ReceiptState::Dropped,
];

/// One recipient's copy of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Receipt {
    pub recipient: String,
    pub state: ReceiptState,
    /// How it was delivered (`typed`, `hook`, `mailbox`, `command`) or why it is held, expired or dead.
    pub detail: Option<String>,
    /// Deliveries tried and not confirmed.
    pub attempts: u32,
    /// When it reached this state (ms since the Unix epoch).
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Mail {
    pub id: i64,
    /// The id of the thread's first message.
    pub thread: i64,
    pub reply_to: Option<i64>,
    pub from: String,
    /// As the sender wrote it: names, or `crew`.
    pub to: Vec<String>,
    pub body: String,
    pub urgent: bool,
    /// A question to the operator (`muster mail ask`): the agent waits on the answer.
    pub ask: bool,
    pub created_ms: u64,
    pub receipts: Vec<Receipt>,
}

impl Mail {
    pub fn receipt(&self, recipient: &str) -> Option<&Receipt> {
        self.receipts.iter().find(|r| r.recipient == recipient)
    }

    /// An `ask` nobody has answered yet.
    pub fn open_question(&self) -> bool {
        self.ask && self.receipt(OPERATOR).is_some_and(|r| r.state != ReceiptState::Acked && !r.state.failed())
    }

    /// The first line, for lists.
    pub fn summary(&self) -> &str {
        self.body.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
    }
}

/// What the roster shows of an agent's mail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MailMarks {
    /// Mail from this agent the operator has not read.
    pub unread: u32,
    /// Mail for this agent not delivered yet (queued, held, being typed).
    pub pending: u32,
    /// Mail for this agent that could not be delivered.
    pub dead: u32,
    /// The agent's open question to the operator (`muster mail ask`), newest.
    pub asking: Option<String>,
}

impl MailMarks {
    pub fn is_empty(&self) -> bool {
        *self == MailMarks::default()
    }
}

/// What `muster mail …` asks (on the scripting socket, as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MailOp {
    Send {
        to: Vec<String>,
        body: String,
        #[serde(default)]
        reply_to: Option<i64>,
        #[serde(default)]
        urgent: bool,
        /// A question to the operator: the agent shows as waiting on the answer.
        #[serde(default)]
        ask: bool,
        /// Seconds after which it expires if not delivered.
        #[serde(default)]
        expires: Option<f64>,
    },
    Inbox {
        #[serde(default)]
        unread: bool,
        #[serde(default)]
        limit: Option<usize>,
    },
    /// Read one message (it counts as seen by the reader).
    Read {
        id: i64,
    },
    Ack {
        id: i64,
    },
    Status {
        id: i64,
    },
    /// Answered when every recipient's copy reached `until` (or one failed), or after `timeout` seconds.
    Wait {
        id: i64,
        until: ReceiptState,
        #[serde(default)]
        timeout: Option<f64>,
    },
    Retry {
        id: i64,
        recipient: String,
    },
    Drop {
        id: i64,
        recipient: String,
    },
    /// A CLI's stop hook takes the agent's mail as its next turn (answered with the text, or nothing). With
    /// `wait_gates` (seconds), a turn that changed files is checkpointed and its gates run first, and their
    /// failure comes back this way (nothing typed), within that time.
    Take {
        #[serde(default)]
        wait_gates: Option<f64>,
    },
}

/// The answer to a `MailOp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MailAnswer {
    Sent {
        mail: Mail,
    },
    Mails {
        mails: Vec<Mail>,
    },
    /// One message, and its receipts' history as (recipient, state, detail, at_ms).
    Mail {
        mail: Mail,
        history: Vec<(String, ReceiptState, Option<String>, u64)>,
    },
    /// `wait`: whether every copy reached the state (false: one failed, or the time ran out).
    Waited {
        matched: bool,
        timed_out: bool,
        mail: Mail,
    },
    /// `take`: the text handed over, if any.
    Taken {
        text: Option<String>,
    },
    Error {
        error: String,
    },
}
