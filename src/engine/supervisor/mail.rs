//! The engine's side of the mailbox: requests from `muster mail` and clients, and one arbiter per agent that
//! types mail in only when the agent can take it, confirms it, retries it, or makes it a dead letter.

use crate::protocol::script::Answer;
use std::sync::mpsc::Sender;
use std::time::Instant;

use super::{Slot, Supervisor};
use crate::engine::agent::{now_ms, WriteOp};
use crate::engine::{AgentState, Event};
use crate::mailbox::ops::{self, Changed};
use crate::mailbox::receipt::Step;
use crate::mailbox::{self, Moment, Store, Verdict, CONFIRM_WITHIN, HOOK_STREAK, OPERATOR_GRACE};
use crate::protocol::mail::{MailAnswer, MailOp, ReceiptState, OPERATOR};

/// Clients are given this many of the newest messages when they attach.
pub const MAIL_SNAPSHOT: usize = 2000;

/// One agent's deliveries.
#[derive(Default)]
pub(super) struct MailSlot {
    in_flight: Option<InFlight>,
    /// When the operator last typed into it.
    pub(super) operator_at: Option<Instant>,
    /// Mail handed over by its stop hook, turn after turn.
    hook_streak: u32,
    /// Delivered, waiting for the turn that reads them to start.
    unseen: Vec<i64>,
}

/// Mail typed in and not confirmed yet.
struct InFlight {
    ids: Vec<i64>,
    generation: u64,
    /// The confirmation clock: from the typing, or (typed while busy) from the end of that turn.
    since: Option<Instant>,
    /// Typed while it worked: confirmed when that turn ends (its CLI took it into its queue).
    while_busy: bool,
}

/// A `muster mail wait` waiting for its receipts.
pub(super) struct MailWait {
    id: i64,
    until: ReceiptState,
    until_time: Option<Instant>,
    reply: Sender<Answer>,
}

fn answer(a: &MailAnswer) -> Answer {
    Answer::Mail(a.clone())
}

fn error(text: impl Into<String>) -> Answer {
    Answer::Mail(MailAnswer::Error { error: text.into() })
}

/// How an agent should call muster: by name when that is the muster on its PATH, else by its path.
pub fn muster_command(exe: &std::path::Path) -> String {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            let c = d.join("muster");
            c.exists() && c.canonicalize().ok() == exe.canonicalize().ok()
        })
    });
    if on_path {
        "muster".into()
    } else {
        let s = exe.to_string_lossy();
        if s.contains([' ', '\'', '"']) {
            format!("'{}'", s.replace('\'', "'\\''"))
        } else {
            s.into_owned()
        }
    }
}

impl Supervisor {
    /// Open the crew's mailbox; without it (corrupt, locked) the rest of muster works on, and says why.
    pub(super) fn open_mailbox(&mut self) {
        match Store::open_in(&self.cfg.root) {
            Ok(mut store) => {
                // Typed before a restart and never confirmed: the agents are new runs now, so not delivered.
                if let Ok(stale) = store.in_state(ReceiptState::Delivering) {
                    for (id, to) in stale {
                        let step = Step::Unconfirmed("muster restarted before it was confirmed".into());
                        let _ = store.apply(id, &to, &step, now_ms());
                    }
                }
                if let Ok(recent) = store.recent(MAIL_SNAPSHOT) {
                    if !recent.is_empty() {
                        self.sink.event(Event::Mail(recent));
                    }
                }
                self.mailbox = Some(store);
                self.refresh_marks();
            }
            Err(e) => self.message(format!("mail: {e} (muster runs on without mail)"), true),
        }
    }

    pub(super) fn crew_names(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.spec.name.clone()).collect()
    }

    /// Mail from `from` (an agent, the gate, the guard) to agent `to`, through the mailbox and so the arbiter: at
    /// its prompt, never into a dialog or a turn. Its id, or why it was not sent.
    pub(super) fn send_mail_as(&mut self, from: &str, to: &str, body: String) -> Result<i64, String> {
        let crew = self.crew_names();
        let store = self.mailbox.as_mut().ok_or("the mailbox is not open")?;
        let op =
            MailOp::Send { to: vec![to.to_string()], body, reply_to: None, urgent: false, ask: false, expires: None };
        let (answer, changed) = crate::mailbox::ops::run(store, from, op, &crew, now_ms());
        self.mail_changed(changed);
        match answer {
            crate::protocol::mail::MailAnswer::Sent { mail } => Ok(mail.id),
            crate::protocol::mail::MailAnswer::Error { error } => Err(error),
            other => Err(format!("the mailbox answered {other:?}")),
        }
    }

    /// A request of `muster mail` (`who`: the agent and its secret; None: the operator).
    pub(super) fn mail_request(&mut self, who: Option<(String, String)>, op: MailOp, reply: Sender<Answer>) {
        let sender = match who {
            None => OPERATOR.to_string(),
            Some((agent, token)) => {
                let ok = self.slots.iter().any(|s| s.spec.name == agent && !s.token.is_empty() && s.token == token);
                if !ok {
                    let _ = reply.send(error(format!(
                        "cannot act as {agent}: MUSTER_AGENT_TOKEN is not {agent}'s (only the agent muster started has it)"
                    )));
                    return;
                }
                agent
            }
        };
        if self.mailbox.is_none() {
            let _ = reply.send(error("the mailbox is not available (see muster's messages)"));
            return;
        }
        match op {
            MailOp::Wait { id, until, timeout } => {
                let until_time = timeout.and_then(mailbox::seconds).map(|d| Instant::now() + d);
                self.mail_waits.push(MailWait { id, until, until_time, reply });
                self.settle_mail_waits();
            }
            MailOp::Take { wait_gates } => {
                // The turn's gates run first where it has them and changed files; their failure comes this way.
                let reply = match wait_gates.and_then(mailbox::seconds) {
                    Some(within) => self.park_take(&sender, within, reply),
                    None => Some(reply),
                };
                if let Some(reply) = reply {
                    let text = self.take_mail(&sender);
                    let _ = reply.send(answer(&MailAnswer::Taken { text }));
                }
            }
            op => {
                let crew = self.crew_names();
                let Some(store) = self.mailbox.as_mut() else { return };
                let (a, changed) = ops::run(store, &sender, op, &crew, now_ms());
                let _ = reply.send(answer(&a));
                self.mail_changed(changed);
            }
        }
    }

    /// The operator's mail commands from a client; refusals come back as messages.
    pub(super) fn operator_mail(&mut self, op: MailOp) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.mail_request(None, op, tx);
        if let Ok(Answer::Mail(MailAnswer::Error { error })) = rx.try_recv() {
            self.message(format!("mail: {error}"), true);
        }
    }

    pub(super) fn mail_seen(&mut self, ids: Vec<i64>) {
        let Some(store) = self.mailbox.as_mut() else { return };
        let mut changed = Changed::default();
        for id in ids {
            let delivered = store.get(id).ok().flatten().and_then(|m| m.receipt(OPERATOR).map(|r| r.state));
            if delivered == Some(ReceiptState::Delivered) && store.apply(id, OPERATOR, &Step::Seen, now_ms()).is_ok() {
                changed.mails.push(id);
            }
        }
        self.mail_changed(changed);
    }

    /// Tell clients what changed, and try the deliveries it may allow.
    pub(super) fn mail_changed(&mut self, changed: Changed) {
        if changed.mails.is_empty() {
            return;
        }
        let mut names: Vec<String> = Vec::new();
        if let Some(store) = self.mailbox.as_ref() {
            let mails: Vec<_> = changed.mails.iter().filter_map(|id| store.get(*id).ok().flatten()).collect();
            for m in &mails {
                // Each receipt's step, once: the log says where each copy stands (its body stays in the mailbox).
                for r in &m.receipts {
                    let step = r.state.label();
                    // A copy at its end moves no more: forgotten, so the log remembers only copies under way.
                    let ends = r.state == crate::protocol::mail::ReceiptState::Acked || r.state.failed();
                    self.events.borrow_mut().record_change(
                        format!("mail #{} {}", m.id, r.recipient),
                        step,
                        ends,
                        crate::protocol::lead::EventKind::Mail,
                        Some(&r.recipient),
                        || format!("mail #{} from {} to {}: {step}", m.id, m.from, r.recipient),
                    );
                }
                names.push(m.from.clone());
                names.extend(m.receipts.iter().map(|r| r.recipient.clone()));
            }
            self.sink.event(Event::Mail(mails));
        }
        names.sort();
        names.dedup();
        self.refresh_marks_of(Some(&names));
        self.schedule_expiry();
        for name in changed.recipients {
            self.pump(&name);
        }
        self.settle_mail_waits();
    }

    /// The roster's marks of these agents (all: None), from the store.
    fn refresh_marks_of(&mut self, names: Option<&[String]>) {
        let Some(store) = self.mailbox.as_ref() else { return };
        let mut changed = Vec::new();
        for slot in &mut self.slots {
            if names.is_some_and(|n| !n.contains(&slot.spec.name)) {
                continue;
            }
            let Ok(m) = store.marks_of(&slot.spec.name) else { continue };
            if slot.info.mail != m {
                slot.info.mail = m;
                changed.push(slot.info.clone());
            }
        }
        for info in changed {
            self.sink.event(Event::Agent(info));
        }
    }

    fn refresh_marks(&mut self) {
        self.refresh_marks_of(None);
    }

    fn moment(&self, slot: &Slot, urgent: bool) -> Moment {
        let running = slot.running.as_ref().is_some_and(|r| !r.exited);
        Moment {
            running,
            state: slot.info.state,
            paused: slot.paused(),
            in_flight: slot.mail.in_flight.is_some(),
            operator_typing: slot.mail.operator_at.is_some_and(|t| t.elapsed() < OPERATOR_GRACE),
            composing: self.composing.values().any(|n| n == &slot.spec.name),
            urgent,
            queues_input: self.presets.get(&slot.spec.kind).is_some_and(|p| p.queues_input),
            // What this run has: a preset's hooks count only where they were installed.
            merely_quiet: mailbox::merely_quiet(
                slot.info.why == crate::engine::detect::QUIET,
                slot.hooked,
                self.presets.get(&slot.spec.kind).is_some_and(|p| p.rules.iter().any(|r| r.state == AgentState::Idle)),
            ),
            hook_waits: self.hook_waits_for_gates(&slot.spec.name),
        }
    }

    /// The arbiter: deliver what is queued for `name` if it can take it now.
    pub(super) fn pump(&mut self, name: &str) {
        let Some(store) = self.mailbox.as_ref() else { return };
        let Some(idx) = self.slots.iter().position(|s| s.spec.name == name) else { return };
        // Counted first: the mail itself is read only when it goes in.
        let Ok((queued, urgent)) = store.queued_count(name) else { return };
        if queued == 0 {
            return;
        }
        let slot = &self.slots[idx];
        let moment = self.moment(slot, urgent > 0);
        let now = now_ms();
        match mailbox::verdict(&moment) {
            Verdict::Wait(_) => {}
            Verdict::Hold => {
                let Ok(queued) = store.queued_for(name) else { return };
                let steps: Vec<_> = queued
                    .iter()
                    .map(|m| (m.id, name.to_string(), Step::Hold(format!("{name} is not running"))))
                    .collect();
                self.apply_mail_steps(steps, now);
            }
            Verdict::Deliver => {
                let Ok(queued) = store.queued_for(name) else { return };
                // Into a busy agent only the urgent ones; at its prompt, the oldest ones in one go.
                let busy = moment.state == AgentState::Busy;
                let mails: Vec<_> = queued.into_iter().filter(|m| !busy || m.urgent).take(mailbox::MAX_BATCH).collect();
                let ids: Vec<i64> = mails.iter().map(|m| m.id).collect();
                let text = mailbox::frame(&mails, &muster_command(&self.cfg.muster_exe));
                let steps = ids.iter().map(|id| (*id, name.to_string(), Step::Attempt)).collect();
                if !self.apply_mail_steps(steps, now) {
                    return;
                }
                let slot = &mut self.slots[idx];
                let enter_delay = std::time::Duration::from_millis(slot.spec.enter_delay_ms);
                let Some(r) = slot.running.as_ref() else { return };
                let generation = r.generation;
                let sent = r.writer.send(WriteOp::Steer { text, enter_delay, confirm: true });
                slot.task_given();
                slot.mail.hook_streak = 0;
                slot.mail.in_flight = Some(InFlight {
                    ids: ids.clone(),
                    generation,
                    // The clock starts when its Enter goes in (`mail_entered`).
                    since: None,
                    while_busy: busy,
                });
                if let Err(e) = sent {
                    self.unconfirmed(idx, &format!("could not type it: {e}"));
                }
            }
        }
    }

    /// Steps on several receipts, then clients are told; false when the store refused them.
    fn apply_mail_steps(&mut self, steps: Vec<(i64, String, Step)>, now: u64) -> bool {
        let Some(store) = self.mailbox.as_mut() else { return false };
        if steps.is_empty() {
            return true;
        }
        let ids: Vec<i64> = steps.iter().map(|s| s.0).collect();
        match store.apply_all(&steps, now) {
            Ok(_) => {
                self.mail_changed(Changed { mails: ids, recipients: Vec::new() });
                true
            }
            Err(e) => {
                self.message(format!("mail: {e}"), true);
                false
            }
        }
    }

    fn unconfirmed(&mut self, idx: usize, why: &str) {
        let Some(f) = self.slots[idx].mail.in_flight.take() else { return };
        let name = self.slots[idx].spec.name.clone();
        let steps = f.ids.iter().map(|id| (*id, name.clone(), Step::Unconfirmed(why.to_string()))).collect();
        self.apply_mail_steps(steps, now_ms());
        // Tried again at once if it can take it (a dead letter after the last attempt).
        self.pump(&name);
    }

    /// An agent's state changed: confirm what was typed, mark what it reads as seen, deliver what waits.
    pub(super) fn mail_on_state(&mut self, name: &str, generation: u64, before: AgentState, state: AgentState) {
        if self.mailbox.is_none() {
            return;
        }
        let Some(idx) = self.slots.iter().position(|s| s.spec.name == name) else { return };
        let now = now_ms();
        let turn_started = matches!(state, AgentState::Busy | AgentState::Waiting) && before != state;
        let mut steps = Vec::new();
        let slot = &mut self.slots[idx];
        // Typed while it worked: the CLI held it through that turn (`Some(true)`). Typed at its prompt: its turn
        // started (`Some(false)`).
        let settled = slot.mail.in_flight.as_ref().filter(|f| f.generation == generation).and_then(|f| {
            if f.while_busy {
                matches!(state, AgentState::Idle | AgentState::Waiting).then_some(true)
            } else {
                turn_started.then_some(false)
            }
        });
        match (settled, slot.mail.in_flight.take_if(|_| settled.is_some())) {
            (Some(true), Some(f)) => {
                steps.extend(f.ids.iter().map(|id| (*id, name.to_string(), Step::Confirm("typed, queued".into()))));
                slot.mail.unseen.extend(f.ids);
            }
            (Some(false), Some(f)) => {
                for id in f.ids {
                    steps.push((id, name.to_string(), Step::Confirm("typed".into())));
                    steps.push((id, name.to_string(), Step::Seen));
                }
            }
            _ if turn_started && slot.mail.in_flight.is_none() => {
                let unseen = std::mem::take(&mut slot.mail.unseen);
                steps.extend(unseen.into_iter().map(|id| (id, name.to_string(), Step::Seen)));
            }
            _ => {}
        }
        self.apply_mail_steps(steps, now);
        if state == AgentState::Idle {
            self.pump(name);
        }
    }

    /// A delivery's Enter went in: from now it has `CONFIRM_WITHIN` to show it took it.
    pub(super) fn mail_entered(&mut self, name: &str, generation: u64) {
        if let Some(f) = self.slot_mut(name).and_then(|s| s.mail.in_flight.as_mut()) {
            if f.generation == generation && !f.while_busy {
                f.since = Some(Instant::now());
            }
        }
    }

    /// The screen changed after a delivery's Enter (a quick agent may be back at its prompt before its state
    /// ever shows busy): delivered and read, and the next mail may go.
    pub(super) fn mail_taken(&mut self, name: &str, generation: u64) {
        let Some(slot) = self.slot_mut(name) else { return };
        if !slot.mail.in_flight.as_ref().is_some_and(|f| f.generation == generation && !f.while_busy) {
            return;
        }
        let Some(f) = slot.mail.in_flight.take() else { return };
        let mut steps = Vec::new();
        for id in f.ids {
            steps.push((id, name.to_string(), Step::Confirm("typed".into())));
            steps.push((id, name.to_string(), Step::Seen));
        }
        self.apply_mail_steps(steps, now_ms());
        self.pump(name);
    }

    /// An agent's run ended on its own: what it was sent and never got is a dead letter.
    pub(super) fn mail_on_exit(&mut self, name: &str, stopped: bool) {
        let Some(idx) = self.slots.iter().position(|s| s.spec.name == name) else { return };
        let slot = &mut self.slots[idx];
        slot.mail.unseen.clear();
        let in_flight = slot.mail.in_flight.take().map(|f| f.ids).unwrap_or_default();
        let Some(store) = self.mailbox.as_ref() else { return };
        let queued: Vec<i64> = store.queued_for(name).map(|v| v.iter().map(|m| m.id).collect()).unwrap_or_default();
        let step = if stopped {
            Step::Hold(format!("{name} was stopped"))
        } else {
            Step::Kill(format!("{name} exited before it was delivered"))
        };
        let mut steps: Vec<_> = queued.into_iter().map(|id| (id, name.to_string(), step.clone())).collect();
        steps.extend(
            in_flight
                .into_iter()
                .map(|id| (id, name.to_string(), Step::Kill(format!("{name} exited while it was being typed")))),
        );
        self.apply_mail_steps(steps, now_ms());
    }

    /// An agent runs again: what was held for it is queued.
    pub(super) fn mail_on_start(&mut self, name: &str) {
        let Some(store) = self.mailbox.as_ref() else { return };
        let held: Vec<_> = store
            .in_state(ReceiptState::Held)
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, r)| r == name)
            .map(|(id, r)| (id, r, Step::Release))
            .collect();
        self.apply_mail_steps(held, now_ms());
    }

    /// An agent was removed: its mail can never arrive.
    pub(super) fn mail_on_remove(&mut self, name: &str) {
        let Some(store) = self.mailbox.as_ref() else { return };
        let mut steps = Vec::new();
        for state in [ReceiptState::Queued, ReceiptState::Held, ReceiptState::Delivering] {
            for (id, r) in store.in_state(state).unwrap_or_default().into_iter().filter(|(_, r)| r == name) {
                steps.push((id, r, Step::Kill(format!("{name} was removed"))));
            }
        }
        self.apply_mail_steps(steps, now_ms());
    }

    /// The CLI's stop hook asks for the agent's mail as its next turn.
    pub(super) fn take_mail(&mut self, name: &str) -> Option<String> {
        let idx = self.slots.iter().position(|s| s.spec.name == name)?;
        let mut queued = self.mailbox.as_ref()?.queued_for(name).ok()?;
        queued.truncate(mailbox::MAX_BATCH);
        let slot = &self.slots[idx];
        let mut moment = self.moment(slot, false);
        // The turn is ending: the hook's answer becomes the next one, instead of its prompt.
        moment.state = AgentState::Idle;
        moment.hook_waits = false;
        // Its hook says the turn ends: a quiet screen is no doubt about it.
        moment.merely_quiet = false;
        if queued.is_empty() || slot.mail.hook_streak >= HOOK_STREAK || mailbox::verdict(&moment) != Verdict::Deliver {
            self.slots[idx].mail.hook_streak = 0;
            return None;
        }
        let ids: Vec<i64> = queued.iter().map(|m| m.id).collect();
        let text = mailbox::frame(&queued, &muster_command(&self.cfg.muster_exe));
        let steps = ids.iter().map(|id| (*id, name.to_string(), Step::Confirm("hook".into()))).collect();
        if !self.apply_mail_steps(steps, now_ms()) {
            return None;
        }
        let slot = &mut self.slots[idx];
        slot.mail.hook_streak += 1;
        slot.mail.unseen.extend(ids);
        slot.task_given();
        Some(text)
    }

    /// When the arbiter must look again without anything else happening.
    pub(super) fn next_mail_wake(&self) -> Option<Instant> {
        let mut wake: Vec<Instant> = Vec::new();
        for s in &self.slots {
            if let Some(since) = s.mail.in_flight.as_ref().and_then(|f| f.since) {
                wake.push(since + CONFIRM_WITHIN);
            }
            if let Some(t) = s.mail.operator_at.filter(|t| t.elapsed() < OPERATOR_GRACE) {
                if s.info.mail.pending > 0 {
                    wake.push(t + OPERATOR_GRACE);
                }
            }
        }
        wake.extend(self.mail_waits.iter().filter_map(|w| w.until_time));
        wake.extend(self.next_expiry);
        wake.into_iter().min()
    }

    /// Timers: unconfirmed deliveries, the operator's typing grace, expiries, waits that gave up.
    pub(super) fn mail_tick(&mut self) {
        let now = Instant::now();
        for idx in 0..self.slots.len() {
            let late = self.slots[idx]
                .mail
                .in_flight
                .as_ref()
                .and_then(|f| f.since)
                .is_some_and(|t| now >= t + CONFIRM_WITHIN);
            if late {
                self.unconfirmed(idx, "its turn did not start");
            }
        }
        let names: Vec<String> = self
            .slots
            .iter()
            .filter(|s| s.info.mail.pending > 0 && s.mail.operator_at.is_some_and(|t| t.elapsed() >= OPERATOR_GRACE))
            .map(|s| s.spec.name.clone())
            .collect();
        for s in &mut self.slots {
            if s.mail.operator_at.is_some_and(|t| t.elapsed() >= OPERATOR_GRACE) {
                s.mail.operator_at = None;
            }
        }
        for name in names {
            self.pump(&name);
        }
        self.expire_mail();
        self.settle_mail_waits();
    }

    fn expire_mail(&mut self) {
        let Some(store) = self.mailbox.as_ref() else { return };
        let expired = store.expired(now_ms()).unwrap_or_default();
        let steps = expired.into_iter().map(|(id, r)| (id, r, Step::Expire)).collect();
        self.apply_mail_steps(steps, now_ms());
        // Again even when nothing expired: a wake a millisecond early must not leave a deadline in the past.
        self.schedule_expiry();
    }

    /// When the next undelivered copy expires, as a deadline always in the future.
    fn schedule_expiry(&mut self) {
        let next = self.mailbox.as_ref().and_then(|s| s.next_expiry().ok().flatten());
        self.next_expiry =
            next.map(|ms| Instant::now() + std::time::Duration::from_millis(ms.saturating_sub(now_ms()).max(1) + 1));
    }

    fn settle_mail_waits(&mut self) {
        if self.mail_waits.is_empty() {
            return;
        }
        let Some(store) = self.mailbox.as_ref() else { return };
        let now = Instant::now();
        self.mail_waits.retain(|w| {
            let Ok(Some(mail)) = store.get(w.id) else {
                let _ = w.reply.send(error(format!("no message #{}", w.id)));
                return false;
            };
            let timed_out = w.until_time.is_some_and(|t| now >= t);
            match ops::wait_settled(&mail, w.until) {
                Some(matched) => {
                    let _ = w.reply.send(answer(&MailAnswer::Waited { matched, timed_out: false, mail }));
                    false
                }
                None if timed_out => {
                    let _ = w.reply.send(answer(&MailAnswer::Waited { matched: false, timed_out: true, mail }));
                    false
                }
                None => true,
            }
        });
    }
}
