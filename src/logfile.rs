//! muster's log, `muster.log` in the state folder, shared by every muster of the user (servers, hooks, the
//! command line): a size cap with one older file kept, and a limit on lines that a client can cause (a
//! connection that streams bad hook reports must not write hundreds of megabytes of warnings).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The log is moved aside (to `muster.log.1`, replacing the one before) once it is larger than this.
pub const MAX_LOG: u64 = 8 << 20;
/// How often a writer looks whether its file grew past the cap or was moved aside by another muster.
const CHECK_EVERY_BYTES: u64 = 64 << 10;
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// A log file that is rotated when it grows past `max`; several processes may write and rotate it at once
/// (appends are atomic per write; a writer whose file was moved aside opens the new one).
pub struct CappedLog {
    path: PathBuf,
    max: u64,
    file: File,
    since_check: u64,
    checked: Instant,
}

fn open(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

impl CappedLog {
    pub fn open(path: &Path, max: u64) -> std::io::Result<CappedLog> {
        let mut log =
            CappedLog { path: path.to_path_buf(), max, file: open(path)?, since_check: 0, checked: Instant::now() };
        log.check();
        Ok(log)
    }

    fn check(&mut self) {
        self.since_check = 0;
        self.checked = Instant::now();
        let Ok(mine) = self.file.metadata() else { return };
        let at_path = std::fs::symlink_metadata(&self.path).ok();
        let moved = at_path.as_ref().is_none_or(|m| m.ino() != mine.ino() || m.dev() != mine.dev());
        if !moved && mine.len() > self.max {
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            let _ = std::fs::rename(&self.path, old);
        }
        if moved || mine.len() > self.max {
            if let Ok(f) = open(&self.path) {
                self.file = f;
            }
        }
    }
}

impl Write for CappedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.since_check >= CHECK_EVERY_BYTES || self.checked.elapsed() >= CHECK_EVERY {
            self.check();
        }
        let n = self.file.write(buf)?;
        self.since_check += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Lines of one kind allowed per window; the rest are counted and the count said with the next one let through.
const BURST: u32 = 10;
const WINDOW: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Limit {
    since: Option<Instant>,
    said: u32,
    dropped: u64,
}

impl Limit {
    /// Whether a line may go now; when it may, how many were held back before it.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.since.is_none_or(|s| now.duration_since(s) >= WINDOW) {
            self.since = Some(now);
            self.said = 0;
        }
        if self.said >= BURST {
            self.dropped += 1;
            return None;
        }
        self.said += 1;
        Some(std::mem::take(&mut self.dropped))
    }
}

static LIMITS: Mutex<BTreeMap<&'static str, Limit>> = Mutex::new(BTreeMap::new());

/// `line()` for the log, unless lines of this `kind` (one per call site a client can set off) came faster than
/// ten in ten seconds; the first one let through after a burst says how many were left out.
pub fn limited(kind: &'static str, line: impl FnOnce() -> String) -> Option<String> {
    let mut limits = LIMITS.lock().unwrap_or_else(|p| p.into_inner());
    let dropped = limits.entry(kind).or_default().allow(Instant::now())?;
    let text = line();
    Some(if dropped > 0 { format!("{text} ({dropped} more like it left out)") } else { text })
}

/// A warning a client can set off, limited as `limited` says.
#[macro_export]
macro_rules! warn_limited {
    ($kind:expr, $($arg:tt)*) => {
        if let Some(line) = $crate::logfile::limited($kind, || format!($($arg)*)) {
            tracing::warn!("{line}");
        }
    };
}

/// An info line a client can set off, limited as `limited` says.
#[macro_export]
macro_rules! info_limited {
    ($kind:expr, $($arg:tt)*) => {
        if let Some(line) = $crate::logfile::limited($kind, || format!($($arg)*)) {
            tracing::info!("{line}");
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_moved_aside_past_its_cap_and_a_second_writer_follows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("muster.log");
        let mut one = CappedLog::open(&path, 100_000).unwrap();
        let mut two = CappedLog::open(&path, 100_000).unwrap();
        let line = vec![b'x'; 999];
        for _ in 0..1000 {
            one.write_all(&line).unwrap();
            one.write_all(b"\n").unwrap();
            two.write_all(b"two\n").unwrap();
        }
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let old = dir.path().join("muster.log.1");
        // A million bytes written; at most the cap and one check's worth in each file.
        let bound = 100_000 + CHECK_EVERY_BYTES + 1000;
        assert!(size(&path) <= bound && size(&old) <= bound, "{} {}", size(&path), size(&old));
        assert!(size(&old) > 0);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_burst_of_one_kind_is_cut_and_counted() {
        let mut l = Limit::default();
        let t0 = Instant::now();
        let let_through: Vec<_> = (0..1000).filter_map(|_| l.allow(t0)).collect();
        assert_eq!(let_through, vec![0; BURST as usize]);
        assert_eq!(l.allow(t0 + WINDOW), Some(1000 - BURST as u64), "the next window says how many were left out");
    }
}
