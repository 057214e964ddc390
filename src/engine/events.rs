//! The crew's event log (`muster events`): every state, gate verdict, finding, mail, result and spawn as a
//! numbered JSON line in `.muster/events.jsonl` (rotated to `events.1.jsonl` past 8 MiB), written before anyone
//! hears of it, so a follower that comes back with `--since` misses nothing and sees nothing twice, across
//! restarts of the server too. Values of secret-looking variables of muster's environment never reach it.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, TrySendError};

use crate::protocol::lead::{CrewEvent, EventKind};
use crate::protocol::script::Answer;

const FILE: &str = "events.jsonl";
const OLD: &str = "events.1.jsonl";
const ROTATE_AT: u64 = 8 << 20;
/// Events kept in memory: a follower that asks for no older one is served without reading the disk.
const RECENT: usize = 10_000;
/// Events a follower may fall behind by before it is let go (it comes back with `--since`), and how many may
/// follow at once: a reader that never reads holds at most this much of the server's memory (~1 MiB).
pub const FOLLOWER_ROOM: usize = 4096;
const MAX_FOLLOWERS: usize = 64;

/// A client following the log, with what it asked to see.
pub struct Follower {
    pub agents: Vec<String>,
    pub kinds: Vec<EventKind>,
    pub tx: SyncSender<Answer>,
    /// Gone once its client's connection is served no more: a follower that heard nothing since is let go too.
    pub alive: std::sync::Weak<()>,
}

impl Follower {
    fn wants(&self, e: &CrewEvent) -> bool {
        wanted(&self.agents, &self.kinds, e)
    }
}

/// Whether `e` is of one of `agents` and `kinds` (empty: any).
pub fn wanted(agents: &[String], kinds: &[EventKind], e: &CrewEvent) -> bool {
    (kinds.is_empty() || kinds.contains(&e.kind))
        && (agents.is_empty() || e.agent.as_ref().is_some_and(|a| agents.contains(a)))
}

pub struct EventLog {
    dir: PathBuf,
    file: Option<std::fs::File>,
    size: u64,
    seq: u64,
    recent: VecDeque<CrewEvent>,
    followers: Vec<Follower>,
    secrets: Vec<String>,
    /// What was logged last of each thing that changes (an agent's state, a mail copy's receipt).
    last: std::collections::HashMap<String, String>,
}

impl EventLog {
    /// The log of the repository at `root`, numbered on from its last line.
    pub fn open(root: &Path) -> EventLog {
        let dir = root.join(".muster");
        let seq = [FILE, OLD].iter().find_map(|f| last_seq(&dir.join(f))).unwrap_or(0);
        let size = std::fs::metadata(dir.join(FILE)).map_or(0, |m| m.len());
        EventLog {
            dir,
            file: None,
            size,
            seq,
            recent: VecDeque::new(),
            followers: Vec::new(),
            secrets: secrets_of(std::env::vars()),
            last: Default::default(),
        }
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Record an event: on disk, then to each follower that wants it (one that fell too far behind is let go).
    pub fn record(&mut self, kind: EventKind, agent: Option<&str>, text: &str) {
        // A log file from outside may say anything: a number at the end stays there rather than panic.
        self.seq = self.seq.saturating_add(1);
        let event = CrewEvent {
            seq: self.seq,
            at_ms: crate::protocol::now_ms(),
            kind,
            agent: agent.map(str::to_string),
            text: redact(text, &self.secrets),
        };
        self.write(&event);
        self.followers.retain(|f| {
            !f.wants(&event)
                || !matches!(
                    f.tx.try_send(Answer::Event(event.clone())),
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_))
                )
        });
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(event);
    }

    /// Record an event only when `key` (a thing that changes) now reads `value`, not what it read at its last
    /// event; `ends`: it changes no more, so it is forgotten.
    pub fn record_change(
        &mut self,
        key: String,
        value: &str,
        ends: bool,
        kind: EventKind,
        agent: Option<&str>,
        text: impl FnOnce() -> String,
    ) {
        if self.last.get(&key).is_none_or(|v| v != value) {
            self.record(kind, agent, &text());
            self.last.insert(key.clone(), value.to_string());
        }
        if ends {
            self.last.remove(&key);
        }
    }

    fn write(&mut self, event: &CrewEvent) {
        let Ok(mut line) = serde_json::to_string(event) else { return };
        line.push('\n');
        if self.size + line.len() as u64 > ROTATE_AT {
            self.file = None;
            let _ = std::fs::rename(self.dir.join(FILE), self.dir.join(OLD));
            self.size = 0;
        }
        if self.file.is_none() {
            let _ = crate::safefs::real_dir(self.dir.parent().unwrap_or(&self.dir), ".muster");
            self.file = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(FILE)).ok();
        }
        match self.file.as_mut().map(|f| f.write_all(line.as_bytes())) {
            Some(Ok(())) => self.size += line.len() as u64,
            _ => crate::warn_limited!("event log", "the event log {} cannot be written", self.dir.join(FILE).display()),
        }
    }

    /// Send `f` every event after `since` it wants, then (with `follow`) keep it to hear each new one.
    pub fn serve(&mut self, since: u64, follow: bool, f: Follower) {
        let from_memory = self.recent.front().is_some_and(|e| e.seq <= since.saturating_add(1)) || self.seq == since;
        let old: Vec<CrewEvent> = if from_memory {
            self.recent.iter().filter(|e| e.seq > since).cloned().collect()
        } else {
            read_after(&self.dir, since)
        };
        let wanted: Vec<&CrewEvent> = old.iter().filter(|e| f.wants(e)).collect();
        for (i, e) in wanted.iter().enumerate() {
            // More than the channel holds (only when the log moved on by more than the memory keeps while the
            // client read the disk): it is told where to pick up, never left to think it has it all.
            if i + 1 == FOLLOWER_ROOM {
                let why = format!("more events than one answer holds: ask again after {}", wanted[i - 1].seq);
                let _ = f.tx.try_send(Answer::error(crate::protocol::script::ErrorKind::Busy, why));
                return;
            }
            if f.tx.try_send(Answer::Event((*e).clone())).is_err() {
                return;
            }
        }
        self.followers.retain(|f| f.alive.strong_count() > 0);
        if follow && self.followers.len() >= MAX_FOLLOWERS {
            let why = format!("{MAX_FOLLOWERS} clients follow the event log already");
            let _ = f.tx.try_send(Answer::error(crate::protocol::script::ErrorKind::Busy, why));
        } else if follow {
            self.followers.push(f);
        }
    }
}

/// The events of the files after `since`, oldest first.
pub fn read_after(dir: &Path, since: u64) -> Vec<CrewEvent> {
    let mut out = Vec::new();
    for f in [OLD, FILE] {
        let Ok(text) = std::fs::read_to_string(dir.join(f)) else { continue };
        out.extend(text.lines().filter_map(|l| serde_json::from_str::<CrewEvent>(l).ok()).filter(|e| e.seq > since));
    }
    out.sort_by_key(|e| e.seq);
    out.dedup_by_key(|e| e.seq);
    out
}

fn last_seq(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find_map(|l| serde_json::from_str::<CrewEvent>(l).ok()).map(|e| e.seq)
}

/// The values of variables whose names say they are secret (keys, tokens, passwords), 8 bytes or longer.
fn secrets_of(vars: impl Iterator<Item = (String, String)>) -> Vec<String> {
    let secret = regex::Regex::new(r"(?i)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)").expect("a valid pattern");
    let mut out: Vec<String> = vars.filter(|(k, v)| secret.is_match(k) && v.len() >= 8).map(|(_, v)| v).collect();
    // The longest first: one secret inside another is hidden whole.
    out.sort_by_key(|v| std::cmp::Reverse(v.len()));
    out
}

fn redact(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_string();
    for s in secrets {
        if text.contains(s.as_str()) {
            text = text.replace(s.as_str(), "[redacted]");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn follower(tx: SyncSender<Answer>, alive: &std::sync::Arc<()>) -> Follower {
        Follower { agents: vec![], kinds: vec![], tx, alive: std::sync::Arc::downgrade(alive) }
    }

    fn seqs(rx: &std::sync::mpsc::Receiver<Answer>) -> Vec<u64> {
        rx.try_iter()
            .filter_map(|a| match a {
                Answer::Event(e) => Some(e.seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn secrets_of_the_environment_are_redacted() {
        let s = secrets_of(
            [("OPENAI_API_KEY".to_string(), "sk-abcdefgh123".to_string()), ("HOME".into(), "/home/someone".into())]
                .into_iter(),
        );
        assert_eq!(redact("key sk-abcdefgh123 in /home/someone", &s), "key [redacted] in /home/someone");
    }

    #[test]
    fn the_log_numbers_on_after_a_restart_and_rotates() {
        let root = tempfile::tempdir().unwrap();
        let mut log = EventLog::open(root.path());
        for i in 0..3 {
            log.record(EventKind::State, Some("a"), &format!("event {i}"));
        }
        drop(log);
        let mut log = EventLog::open(root.path());
        assert_eq!(log.seq(), 3);
        log.record(EventKind::Result, Some("b"), "x");
        assert_eq!(read_after(&root.path().join(".muster"), 2).iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
        // A restarted log serves old events from the disk.
        let (tx, rx) = std::sync::mpsc::sync_channel(100);
        let alive = std::sync::Arc::new(());
        let a = std::sync::Arc::downgrade(&alive);
        log.serve(0, false, Follower { agents: vec!["a".into()], kinds: vec![], tx, alive: a });
        assert_eq!(seqs(&rx), [1, 2, 3]);
        log.size = ROTATE_AT;
        log.record(EventKind::State, Some("a"), "after rotation");
        assert!(root.path().join(".muster").join(OLD).exists());
        assert_eq!(read_after(&root.path().join(".muster"), 0).len(), 5);
    }

    /// What a client read: the events' numbers, and whether the server let it go (told it to ask again, or
    /// closed its channel) so it must come back with `--since`.
    fn drain(rx: &std::sync::mpsc::Receiver<Answer>) -> (Vec<u64>, bool) {
        let mut seqs = Vec::new();
        loop {
            match rx.try_recv() {
                Ok(Answer::Event(e)) => seqs.push(e.seq),
                Ok(_) | Err(std::sync::mpsc::TryRecvError::Disconnected) => return (seqs, true),
                Err(std::sync::mpsc::TryRecvError::Empty) => return (seqs, false),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]
        /// 10,000 events; a follower that reconnects 100 times with the last sequence number it saw (at random
        /// points, sometimes after the server restarted), and sometimes stops reading for longer than the server
        /// keeps events for it (it is let go, and comes back): it sees every event once, in order.
        #[test]
        fn a_follower_that_reconnects_with_since_sees_every_event_once(
            cuts in proptest::collection::vec(0u64..10_000, 100),
            restarts in proptest::collection::vec(any::<bool>(), 100),
            stalls in proptest::collection::vec(proptest::option::weighted(0.1, 1u64..6000), 100),
        ) {
            let root = tempfile::tempdir().unwrap();
            let mut log = EventLog::open(root.path());
            let mut cuts = cuts;
            cuts.sort();
            let mut seen: Vec<u64> = Vec::new();
            let alive = std::sync::Arc::new(());
            let (tx, mut rx) = std::sync::mpsc::sync_channel(FOLLOWER_ROOM);
            log.serve(0, true, follower(tx, &alive));
            let (mut next_cut, mut stalled_until) = (0, 0u64);
            for i in 0..10_000u64 {
                log.record(EventKind::State, Some("a"), "x");
                let mut again = false;
                if i >= stalled_until {
                    let (got, let_go) = drain(&rx);
                    seen.extend(got);
                    again = let_go;
                }
                while next_cut < cuts.len() && cuts[next_cut] == i {
                    // The client goes away, and comes back after the last one it saw.
                    seen.extend(drain(&rx).0);
                    if restarts[next_cut] {
                        log = EventLog::open(root.path());
                    }
                    if let Some(n) = stalls[next_cut] {
                        stalled_until = i + n;
                    }
                    again = true;
                    next_cut += 1;
                }
                if again {
                    let (tx, new_rx) = std::sync::mpsc::sync_channel(FOLLOWER_ROOM);
                    rx = new_rx;
                    log.serve(seen.last().copied().unwrap_or(0), true, follower(tx, &alive));
                }
            }
            loop {
                let (got, let_go) = drain(&rx);
                seen.extend(got);
                if !let_go {
                    break;
                }
                let (tx, new_rx) = std::sync::mpsc::sync_channel(FOLLOWER_ROOM);
                rx = new_rx;
                log.serve(seen.last().copied().unwrap_or(0), true, follower(tx, &alive));
            }
            prop_assert_eq!(seen, (1..=10_000).collect::<Vec<u64>>());
        }
    }
}
