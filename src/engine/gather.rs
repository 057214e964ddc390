//! When an agent's terminal thread takes what its reader read. Output that keeps coming is taken (and emulated)
//! at most once a frame, so a stream costs the thread a wake-up a frame rather than one a write: the first output
//! after a pause goes at once, and so do a key's echo, a batch past `pty_io::BATCH_NOW` and the output's end.
//!
//! Two threads share the work, and a lost wake-up leaves output unseen for as long as nothing else happens (an
//! agent shown starting with an empty screen for two minutes): while the thread *gathers*, the reader does not
//! wake it (`pty_io::push_wakes`), so the thread must look itself at the gathering's end — every way out of a
//! gathering either keeps that deadline or ends the reader's quiet time too.

use std::time::{Duration, Instant};

use super::pty_io::BATCH_NOW;

/// How long output that follows a taken batch waits for more: a frame's time at the rate a stream is drawn (the
/// terminal thread's `FLOOD_FRAME` is this).
pub const GATHER: Duration = Duration::from_millis(33);

/// What to do with the output read so far.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Look {
    /// Take it and emulate it now.
    Take,
    /// Leave it: the thread looks again at `Gather::deadline`, or when the reader wakes it.
    Leave,
    /// Nothing waits and the gathering is over: the reader must wake the thread as output comes again.
    EndQuiet,
}

#[derive(Debug, Default)]
pub struct Gather {
    last_take: Option<Instant>,
    until: Option<Instant>,
}

impl Gather {
    /// `waiting` bytes read and not taken, `ends`: the output ended, `echo`: a key was typed a moment ago (its
    /// echo goes out at once).
    pub fn look(&mut self, now: Instant, waiting: usize, ends: bool, echo: bool) -> Look {
        let within = self.last_take.map(|t| t + GATHER).filter(|until| *until > now && !echo);
        let look = match within {
            // Its end is looked at, whatever cleared the gathering before.
            Some(until) if waiting < BATCH_NOW && !ends => {
                self.until = Some(until);
                Look::Leave
            }
            _ if waiting == 0 && !ends => match self.until.take() {
                Some(_) => Look::EndQuiet,
                None => Look::Leave,
            },
            _ => Look::Take,
        };
        if self.until.is_some_and(|g| g <= now) {
            self.until = None;
        }
        look
    }

    /// Output was taken at `now`: until the returned moment the reader gathers what follows without waking.
    pub fn took(&mut self, now: Instant) -> Instant {
        self.last_take = Some(now);
        self.until = Some(now + GATHER);
        now + GATHER
    }

    /// A key was typed: its echo is taken as it comes (the caller ends the reader's quiet time).
    pub fn typed(&mut self) {
        self.until = None;
    }

    /// When the thread must look without being woken.
    pub fn deadline(&self) -> Option<Instant> {
        self.until
    }
}

#[cfg(test)]
mod tests {
    use super::super::pty_io::{push_wakes, unquiet_wakes};
    use super::*;
    use proptest::prelude::*;

    /// What happens, `at` milliseconds after the one before.
    #[derive(Debug, Clone)]
    enum Happens {
        /// The reader reads this many bytes.
        Read(usize),
        /// A key is typed (a message to the thread, which wakes it).
        Key,
        /// Some other message wakes the thread (a resize, a hook report, the Enter of a delivery).
        Wake,
    }

    fn happens() -> impl Strategy<Value = (u64, Happens)> {
        let what = prop_oneof![
            4 => prop_oneof![1..200usize, Just(BATCH_NOW)].prop_map(Happens::Read),
            1 => Just(Happens::Key),
            2 => Just(Happens::Wake),
        ];
        (0..60u64, what)
    }

    /// Both sides of the protocol, the reader's (its buffer, its quiet time, a wake-up counted on the eventfd)
    /// and the thread's, on a clock the test moves.
    struct Sim {
        now: Instant,
        bytes: usize,
        quiet_until: Option<Instant>,
        woken: bool,
        gather: Gather,
        last_key: Option<Instant>,
        taken: usize,
    }

    impl Sim {
        fn read(&mut self, n: usize) {
            let before = self.bytes;
            self.bytes += n;
            self.woken |= push_wakes(before, self.bytes, self.quiet_until, self.now);
        }

        fn set_quiet(&mut self, until: Option<Instant>) {
            self.quiet_until = until;
            self.woken |= unquiet_wakes(until, self.bytes, self.now);
        }

        /// One round of the thread's loop, as `TermThread::run` does it.
        fn round(&mut self, key: bool) {
            self.woken = false;
            let echo = self.last_key.is_some_and(|k| self.now.saturating_duration_since(k) < Duration::from_millis(50));
            match self.gather.look(self.now, self.bytes, false, echo) {
                Look::Take => {
                    if self.bytes > 0 {
                        self.taken += std::mem::take(&mut self.bytes);
                        let until = self.gather.took(self.now);
                        self.set_quiet(Some(until));
                    }
                }
                Look::EndQuiet => self.set_quiet(None),
                Look::Leave => {}
            }
            if key {
                self.last_key = Some(self.now);
                self.gather.typed();
                self.set_quiet(None);
            }
        }

        /// Runs the thread for as long as it is woken or its deadline comes before `until`; false when it
        /// sleeps with output read that nothing will make it look at.
        fn run_until(&mut self, until: Instant) -> bool {
            loop {
                if self.woken {
                    self.round(false);
                } else if let Some(d) = self.gather.deadline().filter(|d| *d <= until) {
                    self.now = self.now.max(d);
                    self.round(false);
                } else {
                    self.now = until;
                    return self.bytes == 0 || self.gather.deadline().is_some();
                }
            }
        }
    }

    proptest! {
        /// Whatever the order of reads, keys and other wake-ups, every byte read is taken by the time the thread
        /// sleeps with nothing to wake it: none waits for a wake-up that will not come.
        #[test]
        fn no_output_waits_for_nobody(script in proptest::collection::vec(happens(), 1..80)) {
            let start = Instant::now();
            let mut sim = Sim {
                now: start, bytes: 0, quiet_until: None, woken: false, gather: Gather::default(), last_key: None,
                taken: 0,
            };
            let mut read = 0;
            for (after, what) in script {
                let at = sim.now + Duration::from_millis(after);
                prop_assert!(sim.run_until(at), "output waits for a wake-up that will not come");
                match what {
                    Happens::Read(n) => {
                        read += n;
                        sim.read(n);
                    }
                    Happens::Key => {
                        sim.woken = true;
                        sim.round(true);
                    }
                    Happens::Wake => sim.woken = true,
                }
            }
            prop_assert!(sim.run_until(sim.now + Duration::from_secs(3600)));
            prop_assert_eq!(sim.taken, read, "read but never taken");
        }
    }
}
