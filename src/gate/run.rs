//! One gate run: `sh -c RUN` in the agent's worktree, niced, in a process group of its own (a timeout or a
//! cancel ends the whole group), its output kept in a capped log file and its tail in memory.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
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

/// A handle that ends a run (and everything it started) from another thread: a byte on a pipe the run polls.
#[derive(Clone, Default)]
pub struct Cancel(Arc<Mutex<Option<std::io::PipeWriter>>>);

impl Cancel {
    pub fn cancel(&self) {
        if let Some(w) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = w.write_all(b"x");
        }
    }
}

/// How it ended, its output's last bytes (as text) and how long it took.
pub struct Finished {
    pub ended: Ended,
    pub tail: String,
    pub took: Duration,
}

/// Where a run is: its command working, asked to end (SIGTERM, a grace), killed, or exited (what it left
/// writing has a grace to finish).
enum Phase {
    Running,
    Ending(Instant),
    Killed(Instant),
    Exited(Instant),
}

/// Run `job` to its end on the calling thread, which reads its output and waits for it (one thread a run, a
/// `poll` on the output, the process's pidfd and the cancel pipe).
pub fn run(job: &Job, cancel: &Cancel) -> Finished {
    let started = Instant::now();
    let finished = |ended: Ended, tail: String| Finished { ended, tail, took: started.elapsed() };
    let log = match crate::safefs::create_private(&job.log) {
        Ok(f) => f,
        Err(e) => return finished(Ended::NotStarted(format!("its log {}: {e:#}", job.log.display())), String::new()),
    };
    let pipes = std::io::pipe().and_then(|(r, w)| Ok((r, w.try_clone()?, w))).and_then(|o| Ok((o, std::io::pipe()?)));
    let ((output, out_w, err_w), (cancel_r, cancel_w)) = match pipes {
        Ok(p) => p,
        Err(e) => return finished(Ended::NotStarted(format!("a pipe: {e}")), String::new()),
    };
    *cancel.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(cancel_w);
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(&job.run).current_dir(&job.dir).env_clear().envs(job.env.iter().cloned());
    cmd.stdin(Stdio::null()).stdout(out_w).stderr(err_w).process_group(0);
    let child = cmd.spawn();
    // Our copies of the output's write end go, or its end would never be seen.
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
    let pidfd = rustix::process::Pid::from_raw(pgid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    let Some(pidfd) = pidfd else {
        kill_group(pgid, libc::SIGKILL);
        let _ = child.wait();
        return finished(Ended::NotStarted("no pidfd for it (Linux 5.3 or newer is needed)".into()), String::new());
    };
    let mut kept = Kept::new(log);
    let mut output = Some(output);
    let mut ended: Option<Ended> = None;
    let mut phase = Phase::Running;
    let deadline = started + job.timeout;
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let until = match phase {
            Phase::Running => deadline,
            Phase::Ending(t) | Phase::Killed(t) | Phase::Exited(t) => t,
        };
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            match phase {
                Phase::Running => {
                    ended = Some(Ended::TimedOut { after_s: job.timeout.as_secs() });
                    kill_group(pgid, libc::SIGTERM);
                    phase = Phase::Ending(Instant::now() + GRACE);
                }
                Phase::Ending(_) => {
                    kill_group(pgid, libc::SIGKILL);
                    phase = Phase::Killed(Instant::now() + GRACE);
                }
                // Unkillable, or what it left keeps the output open: the run ends without them.
                Phase::Killed(_) | Phase::Exited(_) => break,
            }
            continue;
        }
        let exited = matches!(phase, Phase::Exited(_));
        let timeout =
            rustix::event::Timespec { tv_sec: left.as_secs() as i64, tv_nsec: i64::from(left.subsec_nanos()) };
        let (mut o_ready, mut p_ready, mut c_ready) = (false, false, false);
        {
            use rustix::event::{PollFd, PollFlags};
            let mut fds = Vec::with_capacity(3);
            if let Some(o) = &output {
                fds.push((0, PollFd::new(o, PollFlags::IN)));
            }
            if !exited {
                fds.push((1, PollFd::new(&pidfd, PollFlags::IN)));
            }
            fds.push((2, PollFd::new(&cancel_r, PollFlags::IN)));
            let mut polled: Vec<PollFd> = fds.iter().map(|(_, f)| f.clone()).collect();
            match rustix::event::poll(&mut polled, Some(&timeout)) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
            for ((which, _), fd) in fds.iter().zip(&polled) {
                if fd.revents().is_empty() {
                    continue;
                }
                match which {
                    0 => o_ready = true,
                    1 => p_ready = true,
                    _ => c_ready = true,
                }
            }
        }
        if o_ready {
            if let Some(o) = output.as_mut() {
                match o.read(&mut buf) {
                    Ok(0) => output = None,
                    Ok(n) => kept.push(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => output = None,
                }
            }
        }
        if c_ready {
            let mut drain = [0u8; 64];
            let _ = (&cancel_r).read(&mut drain);
            if matches!(phase, Phase::Running) {
                ended = Some(Ended::Cancelled);
                kill_group(pgid, libc::SIGTERM);
                phase = Phase::Ending(Instant::now() + GRACE);
            }
        }
        if p_ready && !exited {
            let status = child.wait().ok();
            if ended.is_none() {
                ended = Some(status.map_or(Ended::Exited(-1), ended_as));
            }
            // What it left in the background ends with it: a gate is done when its command is.
            kill_group(pgid, libc::SIGKILL);
            phase = Phase::Exited(Instant::now() + GRACE);
        }
        if output.is_none() && matches!(phase, Phase::Exited(_)) {
            break;
        }
    }
    if !matches!(phase, Phase::Exited(_)) {
        // Given up on (killed and still there): reaped later by nobody but init; never waited on here.
        kill_group(pgid, libc::SIGKILL);
    }
    *cancel.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let tail = kept.finish();
    finished(ended.unwrap_or(Ended::Signalled(libc::SIGKILL)), String::from_utf8_lossy(&tail).into_owned())
}

/// The end of a run's log, at most `max` bytes, saying how much came before: what a client is sent (a frame
/// holds 4 MiB; a log, 4 MiB and its tail). Never read through a link, never more than `max`.
pub fn log_end(path: &std::path::Path, max: u64) -> std::io::Result<String> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let skip = meta.len().saturating_sub(max);
    f.seek(SeekFrom::Start(skip))?;
    let mut bytes = Vec::new();
    f.take(max).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(if skip > 0 {
        format!("[muster: the first {skip} bytes are left out here; the whole log is {}]\n{text}", path.display())
    } else {
        text.into_owned()
    })
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

/// A run's output: the log (up to `MAX_LOG`, then a note and the tail) and its last `TAIL_BYTES` in memory.
struct Kept {
    log: std::fs::File,
    written: u64,
    cut: u64,
    tail: Vec<u8>,
}

impl Kept {
    fn new(log: std::fs::File) -> Kept {
        Kept { log, written: 0, cut: 0, tail: Vec::new() }
    }

    fn push(&mut self, chunk: &[u8]) {
        let room = MAX_LOG.saturating_sub(self.written) as usize;
        let part = &chunk[..room.min(chunk.len())];
        if !part.is_empty() {
            if self.log.write_all(part).is_err() {
                // A full disk: the log stops; the tail is still kept.
                self.written = MAX_LOG;
            } else {
                self.written += part.len() as u64;
            }
        }
        self.cut += (chunk.len() - part.len()) as u64;
        self.tail.extend_from_slice(chunk);
        if self.tail.len() > TAIL_BYTES * 2 {
            let drop = self.tail.len() - TAIL_BYTES;
            self.tail.drain(..drop);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.cut > 0 {
            let _ = write!(self.log, "\n[muster: {} more bytes of output not kept; the run's tail was]\n", self.cut);
            let start = self.tail.len().saturating_sub(TAIL_BYTES);
            let _ = self.log.write_all(&self.tail[start..]);
        }
        self.tail
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

    /// What escapes the group (setsid) and keeps the output open does not hold the run: it ends a grace after its
    /// command, and no thread of the server stays blocked on it.
    #[test]
    fn an_escaped_daemon_holding_the_output_does_not_hold_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let f = run(&job(dir.path(), "setsid sleep 8 & echo started", Duration::from_secs(60)), &Cancel::default());
        assert_eq!(f.ended, Ended::Exited(0));
        assert!(f.tail.contains("started"), "{}", f.tail);
        assert!(t.elapsed() < Duration::from_secs(6), "held for {:?}", t.elapsed());
    }

    #[test]
    fn a_log_is_read_from_its_end_within_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.log");
        std::fs::write(&path, format!("{}THE END\n", "x".repeat(3000))).unwrap();
        let end = log_end(&path, 1000).unwrap();
        assert!(
            end.len() < 1200 && end.ends_with("THE END\n") && end.contains("first 2008 bytes are left out"),
            "{end}"
        );
        assert_eq!(log_end(&path, 10_000).unwrap().len(), 3008);
        std::os::unix::fs::symlink(&path, dir.path().join("2.log")).unwrap();
        assert!(log_end(&dir.path().join("2.log"), 1000).is_err(), "a link is not followed");
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
