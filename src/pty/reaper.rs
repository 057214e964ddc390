//! One thread hears every agent's process end: each child's pidfd is polled together with a wake-up eventfd,
//! instead of one thread blocked in `wait()` per agent. A child without a pid (the fake backend) or a kernel
//! without pidfds falls back to a waiting thread of its own.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use super::{ChildWaiter, ExitInfo};

/// What to do with the exit status, on the reaper's thread: keep it short (send it somewhere).
pub type OnExit = Box<dyn FnOnce(ExitInfo) + Send>;

struct Watched {
    pidfd: OwnedFd,
    waiter: Box<dyn ChildWaiter>,
    on_exit: OnExit,
}

struct Reaper {
    tx: Mutex<Sender<Watched>>,
    wake: OwnedFd,
}

/// What a waiter says when it cannot tell how the child ended.
const UNKNOWN: ExitInfo = ExitInfo { code: None, signal: None };

fn reaper() -> Option<&'static Reaper> {
    static REAPER: OnceLock<Option<Reaper>> = OnceLock::new();
    REAPER
        .get_or_init(|| {
            let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).ok()?;
            let theirs = wake.try_clone().ok()?;
            let (tx, rx) = channel();
            std::thread::Builder::new().name("reaper".into()).spawn(move || run(&rx, &theirs)).ok()?;
            Some(Reaper { tx: Mutex::new(tx), wake })
        })
        .as_ref()
}

/// Call `on_exit` once the child has ended (and been reaped).
pub fn watch(waiter: Box<dyn ChildWaiter>, on_exit: OnExit) {
    let pidfd =
        waiter.pid().and_then(|p| Pid::from_raw(p as i32)).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok());
    if let (Some(pidfd), Some(reaper)) = (pidfd, reaper()) {
        let sent = reaper.tx.lock().map(|tx| tx.send(Watched { pidfd, waiter, on_exit }));
        match sent {
            Ok(Ok(())) => {
                let _ = rustix::io::write(&reaper.wake, &1u64.to_ne_bytes());
                return;
            }
            // The reaper is gone (it never ends, but if it did): wait on a thread as before.
            Ok(Err(e)) => {
                let Watched { waiter: w, on_exit: f, .. } = e.0;
                return wait_on_thread(w, f);
            }
            Err(_) => return,
        }
    }
    wait_on_thread(waiter, on_exit);
}

fn wait_on_thread(mut waiter: Box<dyn ChildWaiter>, on_exit: OnExit) {
    let _ = std::thread::Builder::new().name("wait".into()).spawn(move || on_exit(waiter.wait().unwrap_or(UNKNOWN)));
}

fn run(rx: &Receiver<Watched>, wake: &OwnedFd) {
    let mut watched: Vec<Watched> = Vec::new();
    loop {
        while let Ok(w) = rx.try_recv() {
            watched.push(w);
        }
        let ready: Vec<bool> = {
            let mut fds = Vec::with_capacity(watched.len() + 1);
            fds.push(PollFd::new(wake, PollFlags::IN));
            fds.extend(watched.iter().map(|w| PollFd::new(&w.pidfd, PollFlags::IN)));
            if poll(&mut fds, None).is_err() {
                // EINTR: look again.
                continue;
            }
            fds.iter().skip(1).map(|f| !f.revents().is_empty()).collect()
        };
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(wake.as_fd(), &mut buf);
        // From the end: swap_remove moves a later one, already looked at, into the place it empties.
        for i in (0..watched.len()).rev() {
            if !ready[i] {
                continue;
            }
            // The pidfd is readable once the process is a zombie: reaping it now does not block.
            let exit = match watched[i].waiter.try_wait() {
                Ok(None) => continue,
                Ok(Some(exit)) => exit,
                Err(_) => UNKNOWN,
            };
            (watched.swap_remove(i).on_exit)(exit);
        }
    }
}
