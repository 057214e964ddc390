//! Every type that crosses the boundary between the muster server and its clients (issue #10): the handshake,
//! frames on the byte stream, and screens as damage. The client side imports only this module.
//!
//! On the stream: frames (`frame`); JSON frames carry `ToServer` and `ToClient`, binary ones a screen's damage
//! (`damage`) for one agent (`screen_frame`). The engine's commands and events (`messages`) travel inside them.

pub mod damage;
pub mod frame;
pub mod gate;
pub mod git;
pub mod guard;
pub mod lead;
pub mod mail;
pub mod messages;
pub mod review;
pub mod screen;
pub mod script;

pub use messages::{AgentInfo, AgentState, Command, CrewFileMark, Event, NewAgent, Pane};

use serde::{Deserialize, Serialize};

/// Where a client's commands go: its connection to the server (each becomes a request with its own id), or the
/// engine in this process.
#[derive(Clone)]
pub struct Commands(std::sync::Arc<dyn Fn(Command) + Send + Sync>);

impl Commands {
    pub fn new(f: impl Fn(Command) + Send + Sync + 'static) -> Commands {
        Commands(std::sync::Arc::new(f))
    }

    pub fn send(&self, command: Command) {
        (self.0)(command)
    }
}

/// Milliseconds since the epoch: the clock of every timestamp that crosses the boundary (mail, checkpoints, ages).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Bumped whenever a message changes shape; client and server must agree exactly.
pub const VERSION: u32 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// The full workbench.
    Tui,
    /// `muster watch`: a read-only roster.
    Watch,
    /// One-shot commands (`status`, `wait`, `send`).
    Script,
    /// `muster proxy`, bridging another machine's client.
    Proxy,
}

impl ClientKind {
    /// Read-only clients never resize an agent's terminal.
    pub fn reads_only(self) -> bool {
        matches!(self, ClientKind::Watch | ClientKind::Script)
    }
}

/// The client's first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub kind: ClientKind,
    pub version: u32,
    /// The muster that sent it (`CARGO_PKG_VERSION`), for messages.
    pub muster: String,
    /// Terminal size as (rows, cols), when there is one.
    pub size: Option<(u16, u16)>,
    /// The terminal's colours (foreground, background) as `#rrggbb`, when it answered.
    pub colours: Option<(String, String)>,
}

impl Hello {
    /// This muster's hello, as a client of `kind` with a terminal of `size` (rows, cols).
    pub fn new(kind: ClientKind, size: Option<(u16, u16)>) -> Hello {
        Hello { kind, version: VERSION, muster: env!("CARGO_PKG_VERSION").into(), size, colours: None }
    }
}

/// The server's answer to a `Hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub version: u32,
    pub muster: String,
    pub pid: u32,
    /// The name of the repository whose crew this is (its folder's), for a workbench that reached it through a
    /// command (`attach --via`) to show.
    #[serde(default)]
    pub repo: String,
}

/// What a client says to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToServer {
    /// The first message, and only once.
    Hello(Hello),
    /// A command for the engine; what it answers for this client alone comes back as a `Reply` with this id.
    Request { id: u64, command: Command },
}

/// What the server says to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToClient {
    Welcome(Welcome),
    /// Everything known now, right after the welcome (and again after the client fell behind): the agents,
    /// their timelines, merges stopped on conflicts, overlaps. Screens follow as damage.
    Snapshot {
        events: Vec<Event>,
    },
    /// Broadcast to every client.
    Event(Event),
    /// The answer to this client's request `id` (a dialog opens only where it was asked).
    Reply {
        id: u64,
        event: Event,
    },
    /// The server ends the connection, and why.
    Bye {
        reason: String,
    },
}

/// One JSON frame.
pub fn json_frame<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serialising these types cannot fail: no maps with non-string keys, no failing Serialize impls.
    let payload = serde_json::to_vec(msg).unwrap_or_default();
    frame::encode(frame::Kind::Json, &payload)
}

/// A screen update of one agent: its name's length (one byte), the name, the damage.
pub fn screen_frame(agent: &str, d: &damage::Damage) -> Vec<u8> {
    let name = &agent.as_bytes()[..agent.len().min(255)];
    let mut payload = Vec::with_capacity(1 + name.len() + 64);
    payload.push(name.len() as u8);
    payload.extend_from_slice(name);
    payload.extend(damage::encode(d));
    frame::encode(frame::Kind::Damage, &payload)
}

/// The agent and damage of a screen frame's payload.
pub fn parse_screen_frame(payload: &[u8]) -> Result<(String, damage::Damage), damage::DamageError> {
    let bad = damage::DamageError::Malformed("screen frame without an agent name");
    let (&len, rest) = payload.split_first().ok_or(bad.clone())?;
    let name = rest.get(..len as usize).ok_or(bad.clone())?;
    let name = std::str::from_utf8(name).map_err(|_| bad)?.to_string();
    Ok((name, damage::decode(&rest[len as usize..])?))
}

/// The largest terminal a client may ask for, rows and columns: a screen is kept per agent and per viewer
/// (65535x65535 would be gigabytes), and no real terminal is larger.
pub const MAX_ROWS: u16 = 500;
pub const MAX_COLS: u16 = 1000;

/// A size a client asks for, or the error that names the limit.
pub fn check_size(rows: u16, cols: u16) -> Result<(), String> {
    if rows > MAX_ROWS || cols > MAX_COLS {
        return Err(format!("a terminal of {cols}x{rows} is larger than the {MAX_COLS}x{MAX_ROWS} muster serves"));
    }
    Ok(())
}

/// A terminal's size as clients send it: what is larger than muster serves is cut to the limit (the screen
/// shows the top-left of it).
pub fn clamp_size(rows: u16, cols: u16) -> (u16, u16) {
    (rows.min(MAX_ROWS), cols.min(MAX_COLS))
}

/// What a client may not ask for, whatever the engine would do with it.
/// The most panes a well splits into.
pub const MAX_PANES: usize = 4;

/// The most text one copy takes (it goes to the operator's terminal as OSC 52, a third larger).
pub const MAX_COPY: usize = 1 << 20;

/// The longest search pattern served: a regex's cost grows with it.
pub const MAX_PATTERN: usize = 1024;

pub fn check_request(cmd: &Command) -> Result<(), String> {
    match cmd {
        Command::Watch { also, .. } if also.len() > MAX_PANES - 1 => {
            Err(format!("a well of {} panes is more than the {MAX_PANES} muster serves", also.len() + 1))
        }
        Command::Watch { rows, cols, also, .. } => {
            check_size(*rows, *cols)?;
            also.iter().try_for_each(|p| check_size(p.rows, p.cols))
        }
        Command::Search { pattern, .. } if pattern.len() > MAX_PATTERN => {
            Err(format!("a search pattern of {} bytes is longer than the {MAX_PATTERN} muster serves", pattern.len()))
        }
        _ => Ok(()),
    }
}

/// Whether a client may go on. A mismatch names both versions and what to do; `status` and `server stop` still
/// work across it (they need only this check to fail clearly, not to pass).
pub fn check_version(client: &Hello, server: &Welcome) -> Result<(), String> {
    if client.version == server.version {
        return Ok(());
    }
    Err(format!(
        "this muster ({}, protocol {}) cannot talk to the running server ({}, protocol {}, pid {}): stop it with \
         `muster server stop` (its agents are checkpointed and can be resumed) and run muster again",
        client.muster, client.version, server.muster, server.version, server.pid
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_mismatch_names_both_sides_and_the_way_out() {
        let hello = Hello {
            kind: ClientKind::Tui,
            version: VERSION,
            muster: "0.2.0".into(),
            size: Some((40, 120)),
            colours: None,
        };
        let same = Welcome { version: VERSION, muster: "0.2.0".into(), pid: 7, repo: "r".into() };
        assert!(check_version(&hello, &same).is_ok());
        let old = Welcome { version: VERSION + 1, muster: "0.3.0".into(), pid: 7, repo: "r".into() };
        let e = check_version(&hello, &old).unwrap_err();
        assert!(e.contains(&format!("0.2.0, protocol {VERSION}")), "{e}");
        assert!(e.contains(&format!("0.3.0, protocol {}", VERSION + 1)) && e.contains("muster server stop"), "{e}");
        let json = serde_json::to_string(&hello).unwrap();
        assert_eq!(serde_json::from_str::<Hello>(&json).unwrap(), hello);
        assert!(ClientKind::Watch.reads_only() && !ClientKind::Tui.reads_only());
    }

    #[test]
    fn sizes_past_the_limit_are_refused_by_name_and_clamped_by_clients() {
        assert!(check_size(MAX_ROWS, MAX_COLS).is_ok());
        let e = check_size(65535, 65535).unwrap_err();
        assert!(e.contains("65535x65535") && e.contains("1000x500"), "{e}");
        assert!(check_request(&Command::Watch { name: None, rows: 24, cols: 1001, also: vec![] }).is_err());
        assert_eq!(clamp_size(600, 80), (500, 80));
    }
}
