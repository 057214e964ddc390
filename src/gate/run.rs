//! One gate run: `sh -c RUN` in the agent's worktree, niced, in a process group of its own (a timeout or a
//! cancel ends the whole group), its output kept in a capped log file and its tail in memory.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::outcome::Ended;

/// The most of a run's output its log keeps (the rest is counted, and the tail still kept).
pub const MAX_LOG: u64 = 4 << 20;
/// The end of the output kept in memory, for the tail sent to the agent.
const TAIL_BYTES: usize = 64 << 10;
/// How long a group asked to end (SIGTERM) has before it is killed.
const GRACE: Duration = Duration::from_secs(2);
/// The niceness of a gate: the agents and the operator's terminal come first.
const NICE: i32 = 10;

/// What a run needs.
pub struct Job {
    pub run: String,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub log: PathBuf,
}

/// A handle that ends a run (and everything it started) from another thread.
#[derive(Clone, Default)]
pub struct Cancel(Arc<Mutex<Option<Sender<Wake>>>>);

impl Cancel {
    pub fn cancel(&self) {
        if let Some(tx) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(Wake::Cancel);
        }
    }
}

pub enum Wake {
    Exited(std::process::ExitStatus),
    Cancel,
}

/// How it ended, its output's last bytes (as text) and how long it took.
pub struct Finished {
    pub ended: Ended,
    pub tail: String,
    pub took: Duration,
}

/// Run `job` to its end (on the calling thread).
pub fn run(job: &Job, cancel: &Cancel) -> Finished {
    let started = Instant::now();
    let finished = |ended: Ended, tail: String| Finished { ended, tail, took: started.elapsed() };
    let log = match crate::safefs::create_private(&job.log) {
        Ok(f) => f,
        Err(e) => return finished(Ended::NotStarted(format!("its log {}: {e:#}", job.log.display())), String::new()),
    };
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return finished(Ended::NotStarted(format!("a pipe: {e}")), String::new()),
    };
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(&job.run).current_dir(&job.dir).env_clear().envs(job.env.iter().cloned());
    cmd.stdin(Stdio::null()).process_group(0);
    match writer.try_clone() {
        Ok(w) => cmd.stdout(w).stderr(writer),
        Err(e) => return finished(Ended::NotStarted(format!("a pipe: {e}")), String::new()),
    };
    let (tx, rx) = mpsc::channel();
    *cancel.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx.clone());
    let child = cmd.spawn();
    // Our copies of the pipe's write end go, or the reader would never see its end.
    drop(cmd);
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return finished(Ended::NotStarted(format!("{e}")), String::new()),
    };
    let pgid = child.id() as i32;
    // Niced as a group, once started: a hook between fork and exec would make every spawn a full fork of the
    // server (no posix_spawn), and what the shell forked meanwhile is in the group already.
    // SAFETY: a plain system call on the process group this run created.
    unsafe {
        libc::setpriority(libc::PRIO_PGRP, pgid as libc::id_t, NICE);
    }
    let tail = Arc::new(Mutex::new(Vec::<u8>::new()));
    let (read_done_tx, read_done) = mpsc::channel();
    let reading = {
        let tail = tail.clone();
        std::thread::Builder::new().name("gate output".into()).spawn(move || {
            keep_output(reader, log, &tail);
            let _ = read_done_tx.send(());
        })
    };
    let waiter = std::thread::Builder::new().name("gate wait".into()).spawn(move || {
        if let Ok(status) = child.wait() {
            let _ = tx.send(Wake::Exited(status));
        }
    });
    if reading.is_err() || waiter.is_err() {
        kill_group(pgid, libc::SIGKILL);
        return finished(Ended::NotStarted("no thread for it".into()), String::new());
    }
    let deadline = started + job.timeout;
    let wait = |until: Instant| rx.recv_timeout(until.saturating_duration_since(Instant::now()));
    let ended = match wait(deadline) {
        Ok(Wake::Exited(status)) => ended_as(status),
        cause => {
            kill_group(pgid, libc::SIGTERM);
            let ended = match cause {
                Ok(Wake::Cancel) => Ended::Cancelled,
                _ => Ended::TimedOut { after_s: job.timeout.as_secs() },
            };
            // Its exit is waited for (a grace, then a kill), so nothing of it outlives the run.
            let mut exited = false;
            let grace = Instant::now() + GRACE;
            while !exited {
                match wait(grace) {
                    Ok(Wake::Exited(_)) => exited = true,
                    Ok(Wake::Cancel) => {}
                    Err(_) => break,
                }
            }
            if !exited {
                kill_group(pgid, libc::SIGKILL);
                let _ = rx.recv_timeout(GRACE);
            }
            ended
        }
    };
    // What it left in the background ends with it: a gate is done when its command is.
    kill_group(pgid, libc::SIGKILL);
    let _ = read_done.recv_timeout(GRACE);
    *cancel.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let bytes = tail.lock().unwrap_or_else(|e| e.into_inner()).clone();
    finished(ended, String::from_utf8_lossy(&bytes).into_owned())
}

fn ended_as(status: std::process::ExitStatus) -> Ended {
    match (status.code(), status.signal()) {
        (Some(code), _) => Ended::Exited(code),
        (None, Some(sig)) => Ended::Signalled(sig),
        (None, None) => Ended::Exited(-1),
    }
}

fn kill_group(pgid: i32, signal: i32) {
    if pgid > 1 {
        // SAFETY: a signal to a process group this run created.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// Copy the output to the log (up to `MAX_LOG`) and keep its last `TAIL_BYTES`.
fn keep_output(mut from: impl Read, mut log: std::fs::File, tail: &Mutex<Vec<u8>>) {
    let mut buf = vec![0u8; 16 << 10];
    let mut written = 0u64;
    let mut cut = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = &buf[..n];
        let room = MAX_LOG.saturating_sub(written) as usize;
        if room > 0 {
            let part = &chunk[..room.min(n)];
            if log.write_all(part).is_err() {
                // A full disk: the log stops; the tail is still kept.
                written = MAX_LOG;
            } else {
                written += part.len() as u64;
            }
        }
        cut += (n - room.min(n)) as u64;
        let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
        t.extend_from_slice(chunk);
        if t.len() > TAIL_BYTES * 2 {
            let drop = t.len() - TAIL_BYTES;
            t.drain(..drop);
        }
    }
    if cut > 0 {
        let _ = write!(log, "\n[muster: {cut} more bytes of output not kept; the run's tail was]\n");
        let t = tail.lock().unwrap_or_else(|e| e.into_inner());
        let start = t.len().saturating_sub(TAIL_BYTES);
        let _ = log.write_all(&t[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dir: &std::path::Path, run: &str, timeout: Duration) -> Job {
        Job {
            run: run.into(),
            dir: dir.to_path_buf(),
            env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())],
            timeout,
            log: dir.join("run.log"),
        }
    }

    #[test]
    fn exit_codes_output_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let f = run(&job(dir.path(), "echo out; echo err >&2; exit 3", Duration::from_secs(30)), &Cancel::default());
        assert_eq!(f.ended, Ended::Exited(3));
        assert!(f.tail.contains("out") && f.tail.contains("err"), "{}", f.tail);
        let log = std::fs::read_to_string(dir.path().join("run.log")).unwrap();
        assert!(log.contains("out\n") && log.contains("err\n"));
        let f = run(&job(dir.path(), "no-such-command-here", Duration::from_secs(30)), &Cancel::default());
        assert_eq!(f.ended, Ended::Exited(127));
    }

    /// A timeout ends the command and what it started in the background (the pipe's end shows them gone).
    #[test]
    fn a_timeout_ends_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("bg.pid");
        let run_text = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let f = run(&job(dir.path(), &run_text, Duration::from_millis(300)), &Cancel::default());
        assert_eq!(f.ended, Ended::TimedOut { after_s: 0 });
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // SAFETY: signal 0 only asks whether the process exists.
        let deadline = Instant::now() + Duration::from_secs(10);
        while unsafe { libc::kill(pid, 0) } == 0 {
            assert!(Instant::now() < deadline, "the background sleep outlived its gate");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_cancel_ends_it_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = Cancel::default();
        let c = cancel.clone();
        let j = job(dir.path(), "sleep 300", Duration::from_secs(300));
        let t = std::thread::spawn(move || run(&j, &c));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !t.is_finished() {
            assert!(Instant::now() < deadline, "the cancel was not taken");
            cancel.cancel();
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(t.join().unwrap().ended, Ended::Cancelled);
    }

    #[test]
    fn a_flood_keeps_a_capped_log_and_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let f = run(
            &job(dir.path(), "head -c 6000000 /dev/zero | tr '\\0' x; echo; echo THE-END", Duration::from_secs(60)),
            &Cancel::default(),
        );
        assert_eq!(f.ended, Ended::Exited(0));
        assert!(f.tail.ends_with("THE-END\n") && f.tail.len() <= TAIL_BYTES * 2);
        let len = std::fs::metadata(dir.path().join("run.log")).unwrap().len();
        assert!(len <= MAX_LOG + TAIL_BYTES as u64 * 2 + 200, "{len}");
        assert!(std::fs::read_to_string(dir.path().join("run.log")).unwrap().ends_with("THE-END\n"));
    }
}
