//! An agent's PTY traffic on one thread of its own: it reads the child's output into a buffer the terminal
//! thread takes in batches (so reading the tty, 4 KiB a call, overlaps emulating what came before), and writes
//! the agent's input without ever blocking (a child that stops reading holds up only its own queue, and its
//! output is still read). The master is non-blocking; the thread polls it beside a wake-up eventfd.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::term::{input, InputModes};

/// Writes queued for an agent before it counts as not reading its input. A paste is one write.
const WRITE_QUEUE: usize = 256;
/// Output read ahead of the emulator before the reader waits for it (the child then waits on a full tty).
const READ_AHEAD: usize = 128 * 1024;
/// Read at most this much in a row before looking at the input queue again.
const READ_ROUND: usize = 64 * 1024;
/// A tty hands over at most 4 KiB a read: a read buffer a few times that is never the limit.
const READ_BUF: usize = 16 * 1024;
/// Output past this much wakes the terminal thread even while it lets a stream gather (`waiting`): a flood is
/// emulated as fast as it comes, in batches at least this big.
pub const BATCH_NOW: usize = 32 * 1024;
/// A batch this small after a burst gives back what the burst grew (a crew's bursts would otherwise keep
/// their high-water mark, two buffers an agent).
const KEEP: usize = 16 * 1024;

/// What goes into an agent's terminal, in order.
pub enum WriteOp {
    Bytes(Vec<u8>),
    /// Pasted, then Enter after the delay (some CLIs drop an Enter that follows a paste too closely).
    Steer {
        text: String,
        enter_delay: Duration,
        /// A delivery: the terminal thread hears when its Enter went in (and tells the engine what follows).
        confirm: bool,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WriteError {
    #[error("it is not reading its input ({WRITE_QUEUE} writes waiting): dropped")]
    Stuck,
    #[error("it has exited")]
    Gone,
}

/// The agent's input queue. The I/O thread ends once every `Writer` is gone.
pub struct Writer {
    /// The queue, and a token the thread watches to know every writer is gone (the queue's own disconnection
    /// shows only once it is empty, and a stuck child's is not). An Option so that `drop` lets go of both before
    /// the wake-up: woken, the thread must see it.
    tx: Option<(SyncSender<WriteOp>, Arc<()>)>,
    wake: Arc<OwnedFd>,
}

impl Clone for Writer {
    fn clone(&self) -> Writer {
        Writer { tx: self.tx.clone(), wake: self.wake.clone() }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        wake_up(&self.wake);
    }
}

impl Writer {
    pub fn send(&self, op: WriteOp) -> Result<(), WriteError> {
        let (tx, _) = self.tx.as_ref().ok_or(WriteError::Gone)?;
        tx.try_send(op).map_err(|e| match e {
            TrySendError::Full(_) => WriteError::Stuck,
            TrySendError::Disconnected(_) => WriteError::Gone,
        })?;
        wake_up(&self.wake);
        Ok(())
    }
}

pub fn wake_up(wake: &OwnedFd) {
    let _ = rustix::io::write(wake, &1u64.to_ne_bytes());
}

/// Takes the wake-ups counted so far (the next poll waits for a new one).
pub fn clear(wake: &OwnedFd) {
    let mut count = [0u8; 8];
    let _ = rustix::io::read(wake, &mut count);
}

pub fn eventfd() -> Result<Arc<OwnedFd>> {
    use rustix::event::EventfdFlags;
    Ok(Arc::new(rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?))
}

/// Whether output read into a buffer that held `before` bytes and now holds `after` wakes the terminal thread.
/// A non-empty buffer has a wake-up pending already: the thread takes everything at once. While it gathers a
/// stream (`quiet_until`) it is woken only by a batch's worth: it looks at the end of the quiet time itself.
pub fn push_wakes(before: usize, after: usize, quiet_until: Option<Instant>, now: Instant) -> bool {
    let quiet = quiet_until.is_some_and(|t| now < t);
    (before == 0 && !quiet) || (before < BATCH_NOW && after >= BATCH_NOW)
}

/// Whether setting the quiet time to `until` with `pending` bytes read wakes the terminal thread: output read
/// in a quiet time that ends early woke nobody, and the thread no longer looks at that time's end.
pub fn unquiet_wakes(until: Option<Instant>, pending: usize, now: Instant) -> bool {
    pending > 0 && until.is_none_or(|t| now >= t)
}

/// The child's output, read and not yet emulated.
pub struct Output {
    state: Mutex<Pending>,
    /// The terminal thread's wake-up: output arrived, or the output ended.
    term: Arc<OwnedFd>,
    /// The reader's wake-up: there is room again.
    reader: Arc<OwnedFd>,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// Until then output is gathered without waking the terminal thread (it looks itself at that time).
    quiet_until: Option<Instant>,
    ended: bool,
    /// The reader stopped at `READ_AHEAD` and waits to hear there is room.
    full: bool,
}

impl Output {
    /// Appends read output; false when the reader should wait for room.
    fn push(&self, bytes: &[u8]) -> bool {
        let Ok(mut p) = self.state.lock() else { return false };
        let before = p.bytes.len();
        p.bytes.extend_from_slice(bytes);
        p.full = p.bytes.len() >= READ_AHEAD;
        let room = !p.full;
        let wakes = push_wakes(before, p.bytes.len(), p.quiet_until, Instant::now());
        drop(p);
        if wakes {
            wake_up(&self.term);
        }
        room
    }

    /// Output read before `until` waits for the terminal thread to look then (None: wake it as it comes).
    /// Ending a quiet time wakes the thread for output read during it: that output woke nobody, and the thread
    /// no longer looks at the quiet time's end.
    pub fn quiet_until(&self, until: Option<Instant>) {
        let Ok(mut p) = self.state.lock() else { return };
        p.quiet_until = until;
        let wakes = unquiet_wakes(until, p.bytes.len(), Instant::now());
        drop(p);
        if wakes {
            wake_up(&self.term);
        }
    }

    /// How much was read and not taken yet, and whether the output ended.
    pub fn waiting(&self) -> (usize, bool) {
        self.state.lock().map(|p| (p.bytes.len(), p.ended)).unwrap_or((0, true))
    }

    fn end(&self) {
        if let Ok(mut p) = self.state.lock() {
            p.ended = true;
        }
        wake_up(&self.term);
    }

    fn full(&self) -> bool {
        self.state.lock().map(|p| p.full).unwrap_or(false)
    }

    /// Swaps what was read into `into` (cleared first, so two buffers go back and forth without allocating);
    /// true once the output has ended and everything before the end was taken.
    pub fn take(&self, into: &mut Vec<u8>) -> bool {
        if into.len() <= KEEP && into.capacity() > KEEP {
            into.shrink_to(KEEP);
        }
        into.clear();
        // Room for the next reads, allocated here: a streaming agent's reader then never allocates (glibc would
        // give an allocating thread a malloc arena of its own, up to 8 a core, each keeping what it freed).
        into.reserve(KEEP);
        let Ok(mut p) = self.state.lock() else { return true };
        std::mem::swap(&mut p.bytes, into);
        let (ended, full) = (p.ended, std::mem::take(&mut p.full));
        drop(p);
        if full {
            wake_up(&self.reader);
        }
        ended
    }
}

/// The PTY's ends and what writing into it needs.
pub struct Io {
    pub name: String,
    pub reader: Box<dyn Read + Send>,
    /// The master, to poll (made non-blocking): None for a reader that blocks, which gets a thread of its own.
    pub poll_fd: Option<OwnedFd>,
    pub writer: Box<dyn Write + Send>,
    /// The terminal's input modes when a key is encoded (bracketed paste, cursor keys).
    pub modes: Arc<Mutex<InputModes>>,
    /// Where the moment a delivery's Enter went in is left for the terminal thread.
    pub entered: Arc<Mutex<Option<Instant>>>,
    /// The terminal thread's wake-up.
    pub term_wake: Arc<OwnedFd>,
}

/// Starts the agent's I/O: its input queue, and its output as the terminal thread will take it.
pub fn start(io: Io) -> Result<(Writer, Arc<Output>)> {
    let wake = eventfd()?;
    let pending = Pending { bytes: Vec::with_capacity(KEEP), ..Pending::default() };
    let output = Arc::new(Output { state: Mutex::new(pending), term: io.term_wake, reader: wake.clone() });
    let (tx, rx) = mpsc::sync_channel::<WriteOp>(WRITE_QUEUE);
    let Io { name, mut reader, poll_fd, writer, modes, entered, .. } = io;
    let master = match poll_fd {
        Some(fd) => {
            use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
            // The reader and writer share the master's open file: both stop blocking.
            fcntl_setfl(&fd, fcntl_getfl(&fd)? | OFlags::NONBLOCK)?;
            Some((fd, reader))
        }
        None => {
            let out = output.clone();
            std::thread::Builder::new().name(format!("pty-read-{name}")).spawn(move || {
                let mut buf = vec![0u8; READ_BUF];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            out.push(&buf[..n]);
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
                out.end();
            })?;
            None
        }
    };
    let alive = Arc::new(());
    let thread = IoThread {
        writers: Arc::downgrade(&alive),
        rx: Some(rx),
        wake: wake.clone(),
        master,
        output,
        out: writer,
        steps: VecDeque::new(),
        writing: None,
        resume_at: None,
        modes,
        entered,
    };
    let output = thread.output.clone();
    std::thread::Builder::new().name(format!("pty-io-{name}")).spawn(move || thread.run())?;
    Ok((Writer { tx: Some((tx, alive)), wake }, output))
}

/// A write op as the steps it takes; a steer's pause between paste and Enter is a deadline, not a sleep.
enum Step {
    Write(Vec<u8>),
    /// Encoded when it goes in, in the modes the terminal is in then.
    Paste(String),
    Pause(Duration),
    Enter {
        confirm: bool,
    },
}

/// Bytes being written to a tty that took only part of them.
struct Outgoing {
    bytes: Vec<u8>,
    at: usize,
    /// The Enter of a delivery, and when it started to go in.
    entered: Option<Instant>,
}

struct IoThread {
    /// Gone with the last `Writer`: the agent is no more, and its input goes nowhere.
    writers: std::sync::Weak<()>,
    /// Taken from one op at a time, so that a child that does not read fills it. None once a write failed (the
    /// child's side closed): senders then hear it has gone.
    rx: Option<Receiver<WriteOp>>,
    wake: Arc<OwnedFd>,
    /// The master and its reader, until the output ends (None for a reader on a thread of its own).
    master: Option<(OwnedFd, Box<dyn Read + Send>)>,
    output: Arc<Output>,
    out: Box<dyn Write + Send>,
    steps: VecDeque<Step>,
    writing: Option<Outgoing>,
    resume_at: Option<Instant>,
    modes: Arc<Mutex<InputModes>>,
    entered: Arc<Mutex<Option<Instant>>>,
}

impl IoThread {
    fn run(mut self) {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        // On the stack: see `Output::take`.
        let mut buf = [0u8; READ_BUF];
        loop {
            self.write_some();
            let reading = self.master.is_some() && !self.output.full();
            let blocked = self.writing.is_some();
            let timeout = self.resume_at.filter(|_| !blocked).map(|at| {
                let d = at.saturating_duration_since(Instant::now());
                Timespec { tv_sec: d.as_secs() as i64, tv_nsec: d.subsec_nanos() as _ }
            });
            let (woken, readable) = {
                let mut flags = PollFlags::empty();
                flags.set(PollFlags::IN, reading);
                flags.set(PollFlags::OUT, blocked);
                let (mut both, mut one);
                // A hung-up master reports so whatever is asked: it is polled only when something is wanted of it.
                let fds: &mut [PollFd] = match &self.master {
                    Some((fd, _)) if !flags.is_empty() => {
                        both = [PollFd::new(&*self.wake, PollFlags::IN), PollFd::new(fd, flags)];
                        &mut both
                    }
                    _ => {
                        one = [PollFd::new(&*self.wake, PollFlags::IN)];
                        &mut one
                    }
                };
                // EINTR or a failed poll: look at everything again.
                let polled = poll(fds, timeout.as_ref()).is_ok();
                let ready = |i: usize| fds.get(i).is_some_and(|f| !f.revents().is_empty());
                (!polled || ready(0), polled && ready(1))
            };
            if woken {
                clear(&self.wake);
                if self.writers.strong_count() == 0 {
                    return;
                }
            }
            if readable && reading {
                self.read_some(&mut buf);
            }
            if self.master.is_none() && self.rx.is_none() && self.output_ended() {
                return;
            }
        }
    }

    fn output_ended(&self) -> bool {
        self.output.state.lock().map(|p| p.ended).unwrap_or(true)
    }

    /// The next op sent, as its steps.
    fn take_op(&mut self) {
        match self.rx.as_ref().map(|rx| rx.try_recv()) {
            Some(Ok(WriteOp::Bytes(b))) => self.steps.push_back(Step::Write(b)),
            Some(Ok(WriteOp::Steer { text, enter_delay, confirm })) => {
                self.steps.extend([Step::Paste(text), Step::Pause(enter_delay), Step::Enter { confirm }])
            }
            _ => {}
        }
    }

    fn current_modes(&self) -> InputModes {
        self.modes.lock().map(|m| *m).unwrap_or_default()
    }

    /// Reads until the tty is empty, the buffer full, or a round's worth was read.
    fn read_some(&mut self, buf: &mut [u8]) {
        let Some((_, reader)) = &mut self.master else { return };
        let mut read = 0;
        loop {
            match reader.read(buf) {
                Ok(0) => break self.end_output(),
                Ok(n) => {
                    read += n;
                    if !self.output.push(&buf[..n]) || read >= READ_ROUND {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // EIO is how Linux reports that the child side closed.
                Err(_) => break self.end_output(),
            }
        }
    }

    fn end_output(&mut self) {
        self.master = None;
        self.output.end();
    }

    /// Writes as much of the queue as the tty takes now, in order; a steer's pause holds what follows it.
    fn write_some(&mut self) {
        loop {
            if let Some(w) = &mut self.writing {
                // An empty op (`muster send a ''`) has nothing to write; `write` of nothing returns 0, which would
                // read as the child closing.
                if w.at < w.bytes.len() {
                    match self.out.write(&w.bytes[w.at..]) {
                        Ok(0) => return self.writes_failed(),
                        Ok(n) => w.at += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => return self.writes_failed(),
                    }
                    if w.at < w.bytes.len() {
                        continue;
                    }
                }
                let entered = w.entered;
                self.writing = None;
                let _ = self.out.flush();
                if let Some(at) = entered {
                    // A slot, not a channel: this thread must not keep the terminal thread's inbox open.
                    if let Ok(mut slot) = self.entered.lock() {
                        *slot = Some(at);
                    }
                    wake_up(&self.output.term);
                }
                continue;
            }
            if let Some(at) = self.resume_at {
                if Instant::now() < at {
                    return;
                }
                self.resume_at = None;
            }
            if self.steps.is_empty() {
                self.take_op();
            }
            let bytes = match self.steps.pop_front() {
                None => return,
                Some(Step::Write(bytes)) => Outgoing { bytes, at: 0, entered: None },
                Some(Step::Paste(text)) => {
                    Outgoing { bytes: input::encode_paste(&text, self.current_modes()), at: 0, entered: None }
                }
                Some(Step::Pause(d)) => {
                    self.resume_at = Some(Instant::now() + d);
                    continue;
                }
                Some(Step::Enter { confirm }) => {
                    let enter = crate::key::Key::new(crate::key::KeyCode::Enter, 0);
                    // Taken before the write: the agent may answer the Enter before this thread looks again.
                    let now = Instant::now();
                    Outgoing {
                        bytes: input::encode_key(enter, self.current_modes()),
                        at: 0,
                        entered: confirm.then_some(now),
                    }
                }
            };
            self.writing = Some(bytes);
        }
    }

    /// The child's side closed: what is queued goes nowhere, and senders hear it has gone.
    fn writes_failed(&mut self) {
        self.rx = None;
        self.steps.clear();
        self.writing = None;
        self.resume_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wake-ups counted on an eventfd since the last look.
    fn wakes(fd: &OwnedFd) -> u64 {
        let mut count = [0u8; 8];
        rustix::io::read(fd, &mut count).map_or(0, |_| u64::from_ne_bytes(count))
    }

    /// The terminal thread hears of output when some comes to an empty buffer, and again only when what waits
    /// grows past a batch (a stream gathers without a wake-up a write; a flood is taken at once), or ends.
    #[test]
    fn output_wakes_the_terminal_thread_when_it_starts_and_when_it_makes_a_batch() {
        let term = eventfd().unwrap();
        let out = Output { state: Mutex::new(Pending::default()), term: term.clone(), reader: eventfd().unwrap() };
        assert!(out.push(b"first"));
        assert_eq!(wakes(&term), 1);
        for _ in 0..10 {
            out.push(&[b'x'; 100]);
        }
        assert_eq!(wakes(&term), 0, "a stream gathers");
        assert_eq!(out.waiting(), (1005, false));
        out.push(&vec![b'y'; BATCH_NOW]);
        assert_eq!(wakes(&term), 1, "past a batch");
        out.push(b"more");
        assert_eq!(wakes(&term), 0);
        let mut batch = Vec::new();
        assert!(!out.take(&mut batch));
        assert_eq!(batch.len(), 1005 + BATCH_NOW + 4);
        out.push(b"again");
        assert_eq!(wakes(&term), 1, "an empty buffer's first output");
        // Gathering: the terminal thread looks itself at the end of the quiet time; a batch's worth still wakes it.
        out.take(&mut batch);
        out.quiet_until(Some(Instant::now() + Duration::from_secs(60)));
        out.push(b"quiet");
        assert_eq!(wakes(&term), 0, "gathered");
        out.push(&vec![b'z'; BATCH_NOW]);
        assert_eq!(wakes(&term), 1, "a batch's worth");
        out.take(&mut batch);
        out.quiet_until(None);
        assert_eq!(wakes(&term), 0, "nothing waits");
        out.push(b"again");
        assert_eq!(wakes(&term), 1, "quiet no more");
        // Output read in a quiet time that ends early (a key typed) wakes the thread then: nothing else would.
        out.take(&mut batch);
        out.quiet_until(Some(Instant::now() + Duration::from_secs(60)));
        out.push(b"echo");
        assert_eq!(wakes(&term), 0, "gathered");
        out.quiet_until(None);
        assert_eq!(wakes(&term), 1, "the quiet time's output is looked at");
        out.take(&mut batch);
        out.push(b"again");
        wakes(&term);
        out.end();
        assert_eq!(wakes(&term), 1);
        assert_eq!(out.waiting(), (5, true));
    }

    /// A writer that takes `room` bytes, then would block until the test gives it more.
    struct Narrow {
        got: Arc<Mutex<Vec<u8>>>,
        room: Arc<Mutex<usize>>,
    }

    impl Write for Narrow {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut room = self.room.lock().unwrap();
            if *room == 0 {
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(*room);
            *room -= n;
            self.got.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn thread(out: Box<dyn Write + Send>) -> IoThread {
        let wake = eventfd().unwrap();
        let term_wake = eventfd().unwrap();
        IoThread {
            writers: std::sync::Weak::new(),
            rx: None,
            wake: wake.clone(),
            master: None,
            output: Arc::new(Output { state: Mutex::default(), term: term_wake, reader: wake }),
            out,
            steps: VecDeque::new(),
            writing: None,
            resume_at: None,
            modes: Arc::default(),
            entered: Arc::default(),
        }
    }

    #[test]
    fn a_tty_that_takes_part_of_a_write_gets_the_rest_in_order_later() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let room = Arc::new(Mutex::new(3));
        let mut t = thread(Box::new(Narrow { got: got.clone(), room: room.clone() }));
        t.steps.extend([Step::Write(b"hello".to_vec()), Step::Write(b" world".to_vec())]);
        t.write_some();
        assert_eq!(&*got.lock().unwrap(), b"hel");
        assert!(t.writing.is_some(), "the rest waits for the tty");
        *room.lock().unwrap() = 100;
        t.write_some();
        assert_eq!(&*got.lock().unwrap(), b"hello world");
        assert!(t.writing.is_none() && t.steps.is_empty());
    }

    #[test]
    fn an_empty_write_is_not_the_child_closing() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let room = Arc::new(Mutex::new(usize::MAX));
        let mut t = thread(Box::new(Narrow { got: got.clone(), room }));
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        t.rx = Some(rx);
        t.steps.extend([Step::Write(Vec::new()), Step::Paste(String::new()), Step::Write(b"after".to_vec())]);
        t.write_some();
        assert_eq!(&*got.lock().unwrap(), b"after");
        tx.send(WriteOp::Bytes(b" and more".to_vec())).unwrap();
        t.write_some();
        assert_eq!(&*got.lock().unwrap(), b"after and more", "input still goes in");
        assert!(t.rx.is_some());
    }

    #[test]
    fn a_steers_enter_waits_for_its_pause_and_is_reported_once_written() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let room = Arc::new(Mutex::new(usize::MAX));
        let mut t = thread(Box::new(Narrow { got: got.clone(), room }));
        t.steps.extend([
            Step::Write(b"do it".to_vec()),
            Step::Pause(Duration::from_secs(60)),
            Step::Enter { confirm: true },
        ]);
        t.write_some();
        assert_eq!(&*got.lock().unwrap(), b"do it");
        assert!(t.resume_at.is_some() && t.entered.lock().unwrap().is_none(), "the Enter waits out the pause");
        t.resume_at = Some(Instant::now());
        t.write_some();
        assert_eq!(&*got.lock().unwrap(), b"do it\r");
        assert!(t.entered.lock().unwrap().is_some(), "the terminal thread hears the Enter went in");
    }

    #[test]
    fn the_reader_stops_at_its_read_ahead_until_the_terminal_takes_it() {
        let t = thread(Box::new(std::io::sink()));
        let chunk = vec![b'x'; READ_AHEAD / 2];
        assert!(t.output.push(&chunk));
        assert!(!t.output.push(&chunk), "full: the reader waits");
        assert!(t.output.full());
        let mut taken = Vec::new();
        assert!(!t.output.take(&mut taken));
        assert_eq!(taken.len(), READ_AHEAD);
        assert!(!t.output.full(), "room again");
        let mut count = [0u8; 8];
        assert!(rustix::io::read(&*t.wake, &mut count).is_ok(), "and the reader was woken to read on");
        t.output.end();
        assert!(t.output.take(&mut taken) && taken.is_empty());
    }

    #[test]
    fn the_buffers_a_burst_grew_are_given_back_once_it_is_over() {
        let t = thread(Box::new(std::io::sink()));
        let mut batch = Vec::new();
        t.output.push(&vec![b'x'; READ_AHEAD]);
        t.output.take(&mut batch);
        assert!(batch.capacity() >= READ_AHEAD);
        for _ in 0..3 {
            t.output.push(b"a line\r\n");
            t.output.take(&mut batch);
            assert_eq!(batch, b"a line\r\n");
        }
        let pending = t.output.state.lock().unwrap().bytes.capacity();
        assert!(batch.capacity() <= KEEP && pending <= KEEP, "kept {} and {pending} bytes", batch.capacity());
    }
}
