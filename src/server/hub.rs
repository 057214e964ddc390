//! The server's clients and what a new one is shown: every engine event passes here, is remembered where it
//! is state (agents, timelines, conflicts, overlaps, screens), and goes to each client's outbox. Outboxes are
//! never waited for: screens are latest-wins per agent, other frames queue up to a bound, past which the
//! client's queue is dropped and it gets one fresh snapshot instead.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::engine::Out;
use crate::protocol::{json_frame, AgentInfo, ClientKind, Event, ToClient};
use crate::term::Screen;

/// Frames (not screens) a client may have waiting before it is treated as fallen behind.
pub const MAX_QUEUED_BYTES: usize = 8 << 20;

/// One client's waiting output.
pub struct Outbox {
    pub kind: ClientKind,
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    /// The newest screen of each agent it watches that it has not been sent (shared: one copy for every client).
    screens: BTreeMap<String, ScreenUpdate>,
    /// It fell behind: its next screens go whole, not as damage on what it had.
    pub fresh_screens: bool,
    /// The agents it shows: the selected one and those of its well's other panes.
    pub watching: std::collections::BTreeSet<String>,
    /// Agents it looks back into the history of: their live screens are not for it.
    scrolled: std::collections::BTreeSet<String>,
    /// No more frames after these: the connection ends.
    pub closing: bool,
    pub notify: Arc<Notify>,
    /// Why the server lets this client go, told to its reader (which may be waiting on a client that sends
    /// nothing) through `kick`.
    gone: Option<String>,
    kick: Arc<Notify>,
}

/// What a writer takes out of an outbox in one go.
pub struct Batch {
    pub frames: Vec<Vec<u8>>,
    pub screens: Vec<(String, ScreenUpdate)>,
    pub fresh_screens: bool,
    pub closing: bool,
}

/// A screen to send, and how it differs from the agent's live screen before it (kept, to know it by): a client
/// that was sent that one gets the rows that changed without a comparison.
#[derive(Clone)]
pub struct ScreenUpdate {
    pub screen: Arc<Screen>,
    pub after: Option<(Arc<Screen>, Arc<crate::term::Change>)>,
}

impl From<Arc<Screen>> for ScreenUpdate {
    fn from(screen: Arc<Screen>) -> Self {
        ScreenUpdate { screen, after: None }
    }
}

#[derive(Default)]
struct Cache {
    agents: Vec<AgentInfo>,
    timelines: BTreeMap<String, Event>,
    conflicts: BTreeMap<String, Event>,
    overlaps: Option<Event>,
    screens: BTreeMap<String, Arc<Screen>>,
    /// The newest mail, by id.
    mail: BTreeMap<i64, crate::protocol::mail::Mail>,
    /// Messages said while no client was there (the leftovers a restart ended, a state file set aside): the next
    /// client to attach is told.
    unseen: Vec<Event>,
}

impl Cache {
    fn observe(&mut self, e: &Event) {
        match e {
            Event::Agent(info) => match self.agents.iter_mut().find(|a| a.name == info.name) {
                Some(a) => *a = info.clone(),
                None => self.agents.push(info.clone()),
            },
            Event::Removed { name } => {
                self.agents.retain(|a| &a.name != name);
                self.timelines.remove(name);
                self.conflicts.remove(name);
                self.screens.remove(name);
            }
            Event::Timeline { name, .. } => {
                self.timelines.insert(name.clone(), e.clone());
            }
            Event::MergeConflicts { name, .. } => {
                self.conflicts.insert(name.clone(), e.clone());
            }
            Event::MergeEnded { name, .. } => {
                self.conflicts.remove(name);
            }
            Event::Overlaps(_) => self.overlaps = Some(e.clone()),
            Event::Mail(mails) => {
                for m in mails {
                    self.mail.insert(m.id, m.clone());
                }
                while self.mail.len() > crate::engine::MAIL_SNAPSHOT {
                    self.mail.pop_first();
                }
            }
            _ => {}
        }
    }

    fn snapshot(&self) -> Vec<Event> {
        let mut events: Vec<Event> = self.agents.iter().cloned().map(Event::Agent).collect();
        events.extend(self.timelines.values().cloned());
        events.extend(self.conflicts.values().cloned());
        events.extend(self.overlaps.clone());
        if !self.mail.is_empty() {
            events.push(Event::Mail(self.mail.values().cloned().collect()));
        }
        events.extend(self.unseen.iter().cloned());
        events
    }
}

/// Which clients asked for an answer that opens a dialog, in the order they asked: (what, agent) → (client,
/// request id). The engine answers in order, so two asks of the same agent's diff each get their answer.
#[derive(Default)]
struct Inner {
    cache: Cache,
    clients: BTreeMap<u64, Outbox>,
    next_client: u64,
    shut_down: bool,
}

impl Inner {
    /// One viewer's screen of an agent it scrolled back in (or the live one again), if it still shows that agent.
    fn screen_for(&mut self, name: String, viewer: u64, screen: Screen) {
        if let Some(out) = self.clients.get_mut(&viewer).filter(|o| o.watching.contains(&name)) {
            if screen.scrolled_back > 0 {
                out.scrolled.insert(name.clone());
            } else {
                out.scrolled.remove(&name);
            }
            out.screens.insert(name, Arc::new(screen).into());
            out.notify.notify_one();
        }
    }
}

#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
    /// Fires when the engine has shut down.
    pub done: Notify,
    /// Fires when a client joins or leaves.
    pub roster: Notify,
    /// Bytes held for clients' half-sent frames, all together (see `server::MAX_HALF_SENT`).
    pub half_sent: std::sync::atomic::AtomicUsize,
}

impl Outbox {
    fn push(&mut self, frame: Vec<u8>) {
        if self.closing {
            return;
        }
        self.bytes += frame.len();
        self.frames.push_back(frame);
        self.notify.notify_one();
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding it leaves plain data behind; serving on beats taking every client down.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new client, with its welcome and the snapshot first in its outbox.
    pub fn join(&self, kind: ClientKind, welcome: Vec<u8>) -> (u64, Arc<Notify>, Arc<Notify>) {
        let mut inner = self.lock();
        inner.next_client += 1;
        let id = inner.next_client;
        let notify = Arc::new(Notify::new());
        let kick = Arc::new(Notify::new());
        let mut out = Outbox {
            kind,
            frames: VecDeque::new(),
            bytes: 0,
            screens: BTreeMap::new(),
            fresh_screens: true,
            watching: Default::default(),
            scrolled: Default::default(),
            closing: false,
            notify: notify.clone(),
            gone: None,
            kick: kick.clone(),
        };
        out.push(welcome);
        out.push(json_frame(&ToClient::Snapshot { events: inner.cache.snapshot() }));
        inner.cache.unseen.clear();
        inner.clients.insert(id, out);
        self.roster.notify_one();
        (id, notify, kick)
    }

    /// Why the server let this client go (after its `kick`).
    pub fn gone(&self, id: u64) -> Option<String> {
        self.lock().clients.get(&id).and_then(|o| o.gone.clone())
    }

    /// The client is gone. Whether the server has nothing left to do: no workbench and no running agent.
    pub fn leave(&self, id: u64) -> bool {
        let mut inner = self.lock();
        if let Some(out) = inner.clients.remove(&id) {
            out.notify.notify_one();
        }
        self.roster.notify_one();
        // Watchers alone keep nothing alive: they only look.
        inner.clients.values().all(|o| o.kind.reads_only()) && !inner.cache.agents.iter().any(|a| a.state.is_running())
    }

    /// End a client's connection after what it has waiting (and `reason`, when given).
    pub fn close(&self, id: u64, reason: Option<String>) {
        let mut inner = self.lock();
        if let Some(out) = inner.clients.get_mut(&id) {
            if let Some(reason) = reason {
                out.push(json_frame(&ToClient::Bye { reason }));
            }
            out.closing = true;
            out.notify.notify_one();
        }
    }

    pub fn take(&self, id: u64) -> Option<Batch> {
        let mut inner = self.lock();
        let out = inner.clients.get_mut(&id)?;
        out.bytes = 0;
        let batch = Batch {
            frames: out.frames.drain(..).collect(),
            screens: std::mem::take(&mut out.screens).into_iter().collect(),
            fresh_screens: std::mem::take(&mut out.fresh_screens),
            closing: out.closing,
        };
        Some(batch)
    }

    /// The client shows these agents now: one it did not show gets its screen as it is at once.
    pub fn watching(&self, id: u64, agents: std::collections::BTreeSet<String>) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if let Some(out) = inner.clients.get_mut(&id) {
            for a in agents.difference(&out.watching) {
                if let Some(s) = inner.cache.screens.get(a) {
                    out.screens.insert(a.clone(), s.clone().into());
                    out.notify.notify_one();
                }
            }
            out.scrolled.retain(|a| agents.contains(a));
            out.watching = agents;
        }
    }

    pub fn clients(&self) -> usize {
        self.lock().clients.len()
    }

    pub fn shut_down(&self) -> bool {
        self.lock().shut_down
    }

    /// How many frames clients still have waiting, all together.
    pub fn pending(&self) -> usize {
        self.lock().clients.values().map(|o| o.frames.len()).sum()
    }

    /// Every engine event comes through here.
    pub fn publish(&self, out: impl Into<Out>) {
        let mut inner = self.lock();
        let e = match out.into() {
            Out::Event(e) => e,
            Out::ScreenFor { name, viewer, screen } => return inner.screen_for(name, viewer, screen),
            Out::Reply { to, event } => {
                // The answer is the asker's alone, by its request's id; one that left is gone with its answer.
                if let Some(out) = inner.clients.get_mut(&to.client).filter(|o| o.gone.is_none()) {
                    let frame = json_frame(&ToClient::Reply { id: to.id, event });
                    if out.bytes + frame.len() > MAX_QUEUED_BYTES {
                        // It asks and does not read the answers (a copy is up to 1 MiB): unlike events, an answer
                        // has no newer state to stand for it, so the client goes rather than the server's memory.
                        out.frames.clear();
                        out.bytes = 0;
                        out.gone =
                            Some(format!("it did not read its answers ({} MiB waiting)", MAX_QUEUED_BYTES >> 20));
                        out.kick.notify_one();
                        return;
                    }
                    out.push(frame);
                }
                return;
            }
        };
        if let Event::Screen { name, screen, change } = e {
            let screen = Arc::new(screen);
            let before = inner.cache.screens.get(&name).cloned();
            let update = ScreenUpdate { screen: screen.clone(), after: before.zip(change.map(Arc::new)) };
            let live = |o: &&mut Outbox| o.watching.contains(&name) && !o.scrolled.contains(&name);
            for out in inner.clients.values_mut().filter(live) {
                out.screens.insert(name.clone(), update.clone());
                out.notify.notify_one();
            }
            inner.cache.screens.insert(name, screen);
            return;
        }
        inner.cache.observe(&e);
        if inner.clients.is_empty() && matches!(e, Event::Message { .. }) && inner.cache.unseen.len() < 20 {
            inner.cache.unseen.push(e.clone());
        }
        let done = e == Event::ShutdownComplete;
        let frame = json_frame(&ToClient::Event(e));
        let inner = &mut *inner;
        for out in inner.clients.values_mut() {
            if out.bytes + frame.len() > MAX_QUEUED_BYTES {
                // Fallen behind: what it missed is replaced by the state as it is now.
                out.frames.clear();
                out.bytes = 0;
                out.fresh_screens = true;
                out.push(json_frame(&ToClient::Snapshot { events: inner.cache.snapshot() }));
                for a in &out.watching {
                    if let Some(s) = inner.cache.screens.get(a) {
                        out.screens.insert(a.clone(), s.clone().into());
                    }
                }
            } else {
                out.push(frame.clone());
            }
        }
        if done {
            inner.shut_down = true;
            self.done.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Asker;
    use crate::protocol::{frame, AgentState};

    fn info(name: &str, state: AgentState) -> AgentInfo {
        AgentInfo::new(name, "demo", state)
    }

    fn decode(frames: &[Vec<u8>]) -> Vec<ToClient> {
        let mut r = frame::Reader::default();
        frames.iter().for_each(|f| r.push(f));
        let mut out = Vec::new();
        while let Some((_, p)) = r.next_frame().unwrap() {
            out.push(serde_json::from_slice(&p).unwrap());
        }
        out
    }

    #[test]
    fn a_new_client_gets_the_welcome_then_the_crew_as_it_is() {
        let hub = Hub::default();
        hub.publish(Event::Agent(info("a", AgentState::Busy)));
        hub.publish(Event::Agent(info("b", AgentState::Idle)));
        hub.publish(Event::Agent(info("a", AgentState::Waiting)));
        hub.publish(Event::Removed { name: "b".into() });
        let (id, _, _) = hub.join(ClientKind::Tui, b"hi".to_vec());
        let batch = hub.take(id).unwrap();
        assert_eq!(batch.frames[0], b"hi");
        let msgs = decode(&batch.frames[1..]);
        assert_eq!(msgs, vec![ToClient::Snapshot { events: vec![Event::Agent(info("a", AgentState::Waiting))] }]);
        assert!(batch.fresh_screens);
    }

    #[test]
    fn answers_go_to_the_client_that_asked_and_events_to_all() {
        let hub = Hub::default();
        let (one, _, _) = hub.join(ClientKind::Tui, vec![]);
        let (two, _, _) = hub.join(ClientKind::Tui, vec![]);
        hub.take(one);
        hub.take(two);
        let answer = Event::RemoveCheck { name: "a".into(), status: Default::default() };
        hub.publish(Out::Reply { to: Asker { client: two, id: 41 }, event: answer.clone() });
        hub.publish(Event::Bell { name: "a".into() });
        assert_eq!(decode(&hub.take(one).unwrap().frames), vec![ToClient::Event(Event::Bell { name: "a".into() })]);
        assert_eq!(
            decode(&hub.take(two).unwrap().frames),
            vec![ToClient::Reply { id: 41, event: answer }, ToClient::Event(Event::Bell { name: "a".into() })]
        );
    }

    #[test]
    fn two_asks_of_one_agents_diff_each_get_their_answer() {
        let hub = Hub::default();
        let (one, _, _) = hub.join(ClientKind::Tui, vec![]);
        let (two, _, _) = hub.join(ClientKind::Tui, vec![]);
        hub.take(one);
        hub.take(two);
        let answer = |n| Event::CheckpointDiff {
            name: "a".into(),
            n,
            base: crate::protocol::git::DiffBase::Previous,
            files: vec![],
        };
        // Answered in the other order than asked: each still goes to its asker, by id.
        hub.publish(Out::Reply { to: Asker { client: two, id: 9 }, event: answer(2) });
        hub.publish(Out::Reply { to: Asker { client: one, id: 7 }, event: answer(1) });
        hub.publish(Out::Reply { to: Asker { client: 99, id: 3 }, event: answer(3) });
        assert_eq!(decode(&hub.take(one).unwrap().frames), vec![ToClient::Reply { id: 7, event: answer(1) }]);
        assert_eq!(decode(&hub.take(two).unwrap().frames), vec![ToClient::Reply { id: 9, event: answer(2) }]);
    }

    #[test]
    fn screens_are_latest_wins_and_only_for_watchers() {
        let hub = Hub::default();
        let (id, _, _) = hub.join(ClientKind::Tui, vec![]);
        let (other, _, _) = hub.join(ClientKind::Tui, vec![]);
        hub.watching(id, ["a".to_string()].into());
        let screen = |rows| Screen::from_cells(rows, 2, vec![]);
        for rows in 1..=50 {
            hub.publish(Event::Screen { name: "a".into(), screen: screen(rows), change: None });
        }
        let batch = hub.take(id).unwrap();
        assert_eq!(batch.screens.len(), 1);
        assert_eq!(batch.screens[0].1.screen.rows, 50, "only the newest screen is sent");
        assert!(hub.take(other).unwrap().screens.is_empty());
        // Who starts watching later gets the newest screen at once.
        hub.watching(other, ["a".to_string()].into());
        assert_eq!(hub.take(other).unwrap().screens[0].1.screen.rows, 50);
    }

    #[test]
    fn a_client_that_falls_behind_gets_one_snapshot_instead_of_everything() {
        let hub = Hub::default();
        let (slow, _, _) = hub.join(ClientKind::Tui, vec![]);
        let text = "x".repeat(64 << 10);
        for i in 0..(MAX_QUEUED_BYTES / text.len() + 10) {
            hub.publish(Event::Notification { name: format!("n{i}"), text: text.clone() });
        }
        hub.publish(Event::Agent(info("a", AgentState::Idle)));
        let batch = hub.take(slow).unwrap();
        let bytes: usize = batch.frames.iter().map(Vec::len).sum();
        assert!(bytes <= MAX_QUEUED_BYTES, "{bytes}");
        let msgs = decode(&batch.frames);
        assert!(matches!(&msgs[0], ToClient::Snapshot { .. }), "{:?}", &msgs[0]);
        assert_eq!(msgs.last(), Some(&ToClient::Event(Event::Agent(info("a", AgentState::Idle)))));
        assert!(batch.fresh_screens);
    }

    #[test]
    fn the_server_may_end_when_the_last_client_leaves_and_nothing_runs() {
        let hub = Hub::default();
        hub.publish(Event::Agent(info("a", AgentState::Busy)));
        let (one, _, _) = hub.join(ClientKind::Tui, vec![]);
        let (two, _, _) = hub.join(ClientKind::Tui, vec![]);
        assert!(!hub.leave(one));
        assert!(!hub.leave(two), "an agent still runs");
        let (three, _, _) = hub.join(ClientKind::Tui, vec![]);
        hub.publish(Event::Agent(info("a", AgentState::Exited)));
        assert!(hub.leave(three));
    }
}
