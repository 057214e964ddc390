//! The clients looking at agents: what each shows and at what size, which decides each agent's terminal size,
//! and where their keys go.

use super::*;

pub(super) struct Watcher {
    pub(super) name: Option<String>,
    pub(super) rows: u16,
    pub(super) cols: u16,
    /// The well's other panes: their agents, each sized by its own pane.
    pub(super) also: Vec<crate::protocol::Pane>,
}

impl Watcher {
    fn shows(&self, name: &str) -> bool {
        self.name.as_deref() == Some(name) || self.also.iter().any(|p| p.name == name)
    }
}

impl Supervisor {
    pub(super) fn watch(
        &mut self,
        client: u64,
        name: Option<String>,
        rows: u16,
        cols: u16,
        also: Vec<crate::protocol::Pane>,
    ) {
        // The server refuses larger sizes by name; held here too for clients in this process.
        let (rows, cols) = crate::protocol::clamp_size(rows.max(1), cols.max(2));
        let also: Vec<crate::protocol::Pane> = also
            .into_iter()
            .take(crate::protocol::MAX_PANES - 1)
            .map(|p| {
                let (rows, cols) = crate::protocol::clamp_size(p.rows.max(1), p.cols.max(2));
                crate::protocol::Pane { rows, cols, ..p }
            })
            .collect();
        let new = Watcher { name, rows, cols, also };
        // Looking away from an agent leaves its history: back there, the view follows the output again.
        let left: Vec<String> = self.watchers.get(&client).map_or(Vec::new(), |w| {
            w.name.iter().chain(w.also.iter().map(|p| &p.name)).filter(|n| !new.shows(n)).cloned().collect()
        });
        for name in left {
            if let Some(r) = self.slots.iter().find(|s| s.spec.name == name).and_then(|s| s.running.as_ref()) {
                let _ = r.term.send(TermMsg::ScrollBottom { viewer: client, typed: false });
            }
        }
        self.watchers.insert(client, new);
        self.size = (rows, cols);
        self.size_from = Some(client);
        self.rewatch(Some(client));
    }

    /// After a client changed what it watches (or left): every agent's screen is sent while some client shows
    /// it, and `sizer` takes the size of every agent no other live client sized, so switching between agents
    /// never reflows; an agent sized by another viewer keeps that size until this one types into it.
    pub(super) fn rewatch(&mut self, sizer: Option<u64>) {
        let sizer_watch = sizer.and_then(|c| self.watchers.get(&c));
        let pane = sizer_watch.map(|w| (w.rows, w.cols));
        // An agent in one of the sizer's split panes takes that pane's size.
        let split: Vec<(String, (u16, u16))> =
            sizer_watch.map_or(Vec::new(), |w| w.also.iter().map(|p| (p.name.clone(), (p.rows, p.cols))).collect());
        for slot in &mut self.slots {
            let Some(r) = slot.running.as_ref() else {
                continue;
            };
            let mut resized = false;
            let own = split.iter().find(|(n, _)| *n == slot.spec.name).map(|(_, size)| *size);
            if let (Some(client), Some(size)) = (sizer, own.or(pane)) {
                let free = slot.sized_by.is_none_or(|c| c == client || !self.watchers.contains_key(&c));
                if free {
                    slot.sized_by = Some(client);
                    if slot.size != size {
                        slot.size = size;
                        resized = true;
                        if !r.exited {
                            let _ = r.control.resize(size.0, size.1);
                        }
                        let _ = r.term.send(TermMsg::Resize(size.0, size.1));
                    }
                }
            }
            let watched = self.watchers.values().any(|w| w.shows(&slot.spec.name));
            if watched != slot.watched || (watched && resized) {
                let _ = r.term.send(TermMsg::Watch(watched));
            }
            slot.watched = watched;
        }
    }

    /// The client that types into an agent sizes it, to its pane.
    pub(super) fn size_to(&mut self, client: u64, name: &str) {
        let Some(w) = self.watchers.get(&client) else { return };
        let size = w.also.iter().find(|p| p.name == name).map_or((w.rows, w.cols), |p| (p.rows, p.cols));
        let Some(slot) = self.slots.iter_mut().find(|s| s.spec.name == name) else { return };
        slot.sized_by = Some(client);
        if slot.size == size {
            return;
        }
        slot.size = size;
        if let Some(r) = slot.running.as_ref() {
            if !r.exited {
                let _ = r.control.resize(size.0, size.1);
            }
            let _ = r.term.send(TermMsg::Resize(size.0, size.1));
            if slot.watched {
                let _ = r.term.send(TermMsg::Watch(true));
            }
        }
    }

    /// Keys and pastes from the operator: to the bottom of the agent's screen, and into its input queue.
    pub(super) fn input(&mut self, name: &str, viewer: u64, bytes: impl FnOnce(&Running) -> Vec<u8>) {
        let mut failed = None;
        self.with_running(name, |r| {
            let _ = r.term.send(TermMsg::ScrollBottom { viewer, typed: true });
            failed = r.write(bytes(r)).err();
        });
        if let Some(e) = failed {
            self.message(format!("{name}: {e}"), true);
        }
    }

    pub(super) fn with_running(&mut self, name: &str, f: impl FnOnce(&Running)) {
        if let Some(r) = self.slot_mut(name).and_then(|s| s.running.as_ref()).filter(|r| !r.exited) {
            f(r);
        }
    }
}
