//! What processes of one user share about a crew: its private run folder (sockets, the instance lock), the lock
//! that lets one muster own a repository's crew, and a socket server for newline-delimited requests that serves
//! clients concurrently with a size cap. The hook socket uses them today; the muster server builds on them.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// This user's folder for muster's sockets: `$XDG_RUNTIME_DIR/muster`, or `muster-<uid>` in the system temp dir.
/// Made 0700; one that is a symlink, or owned by another user, is refused; one open to others is closed.
pub fn user_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(d) if d.is_absolute() && d.is_dir() => d.join("muster"),
        _ => std::env::temp_dir().join(format!("muster-{}", rustix::process::geteuid().as_raw())),
    };
    private_dir(&base)?;
    Ok(base)
}

/// Make `dir` (its parent must exist) as a folder only this user can enter, or check that it is one.
pub fn private_dir(dir: &Path) -> Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if meta.file_type().is_symlink() || !meta.is_dir() {
        bail!("{} is not a folder (a symlink?): muster will not keep its sockets there", dir.display());
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        bail!(
            "{} belongs to user {}, not to you ({me}): someone else made it; muster will not use it",
            dir.display(),
            meta.uid()
        );
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("closing {} to other users", dir.display()))?;
    }
    Ok(())
}

/// Entries of `parent` named `<prefix><pid>-…` whose process has ended: what a muster that died left there.
pub fn left_by_dead_runs(parent: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.strip_prefix(prefix).and_then(|r| r.split('-').next()?.parse::<u32>().ok());
            pid.is_some_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists())
        })
        .map(|e| e.path())
        .collect()
}

/// A repository's run folder: short (socket paths are limited to ~100 bytes), private, one per repository path.
/// When a muster runs for the repository, its run folder, wherever its environment put it (an ssh session, sudo
/// or cron may have no `XDG_RUNTIME_DIR`, or another one): every command finds the one crew.
pub fn run_dir(root: &Path) -> Result<PathBuf> {
    if let Some(dir) = running_dir(root) {
        return Ok(dir);
    }
    let h =
        root.to_string_lossy().bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    let dir = user_dir()?.join(format!("{h:016x}"));
    private_dir(&dir)?;
    Ok(dir)
}

/// The repository's own lock, in its git folder (shared by every worktree): one crew per repository, whatever
/// the environment of whoever starts it.
fn repo_lock(root: &Path) -> Option<PathBuf> {
    let repo = git2::Repository::open(root).ok()?;
    Some(repo.commondir().join(REPO_LOCK))
}

const REPO_LOCK: &str = "muster.lock";

/// The run folder of the muster that holds the repository's lock, when one does: the folder its lock file
/// names, if that folder is private to this user and its own lock is held by the same process.
fn running_dir(root: &Path) -> Option<PathBuf> {
    let lock = repo_lock(root)?;
    let pid = lock_holder(&lock)?;
    let text = crate::safefs::read_own_file(&lock, 4096).ok()??;
    let dir = PathBuf::from(String::from_utf8(text).ok()?.lines().nth(2)?);
    (dir.is_absolute() && private_dir_ok(&dir) && holder(&dir) == Some(pid)).then_some(dir)
}

/// Whether `dir` is a folder of this user's that others cannot enter (checked, never changed).
fn private_dir_ok(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == rustix::process::geteuid().as_raw() && m.mode() & 0o077 == 0)
}

/// The lock that makes one muster the owner of a repository's crew: the repository's own (in its git folder)
/// and its run folder's. Held for the life of the value (the kernel drops them when the process dies, however
/// it dies).
#[derive(Debug)]
pub struct Instance {
    _file: std::fs::File,
    _repo: Option<std::fs::File>,
    pub path: PathBuf,
}

/// A lock file opened for taking, never through a link.
fn open_lock(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Take `file`'s lock; held by another, the error `held` makes of what the holder wrote in it.
fn take_lock(file: &mut std::fs::File, path: &Path, held: impl FnOnce(&str) -> String) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.take(4096).read_to_string(&mut holder);
            bail!("{}", held(&holder))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

impl Instance {
    /// Take the repository's lock and `run_dir`'s, or say who holds them.
    pub fn acquire(run_dir: &Path, root: &Path) -> Result<Instance> {
        let already = |pid: &str, dir: &str| {
            let dir = if dir.is_empty() { String::new() } else { format!(", run folder {dir}") };
            format!("muster is already running for {} (pid {pid}{dir}): use that one, or quit it first", root.display())
        };
        let repo = match repo_lock(root) {
            Some(path) => match open_lock(&path) {
                Ok(mut file) => {
                    take_lock(&mut file, &path, |text| {
                        let lines: Vec<&str> = text.lines().collect();
                        already(lines.first().unwrap_or(&"?"), lines.get(2).unwrap_or(&""))
                    })?;
                    Some(file)
                }
                // A repository this user may not write to (another's, read-only): the run folder's lock alone.
                Err(e) => {
                    tracing::warn!("no repository lock at {}: {e}", path.display());
                    None
                }
            },
            None => None,
        };
        let path = run_dir.join("lock");
        let mut file = open_lock(&path).with_context(|| format!("opening {}", path.display()))?;
        take_lock(&mut file, &path, |text| already(text.lines().next().unwrap_or("?"), ""))?;
        let about = format!("{}\n{}\n{}\n", std::process::id(), root.display(), run_dir.display());
        for mut f in std::iter::once(&file).chain(repo.as_ref()) {
            f.set_len(0)?;
            f.write_all(about.as_bytes())?;
        }
        if let Some(parent) = run_dir.parent() {
            forget_gone_repositories(parent);
        }
        Ok(Instance { _file: file, _repo: repo, path })
    }
}

/// Remove the run folders of repositories that no longer exist (a deleted clone, a test's temp repository),
/// unless a muster still holds one.
fn forget_gone_repositories(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let lock = e.path().join("lock");
        let Ok(text) = std::fs::read_to_string(&lock) else { continue };
        let Some(root) = text.lines().nth(1) else { continue };
        if Path::new(root).exists() {
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).open(&lock) else { continue };
        if file.try_lock().is_ok() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The pid of the muster that holds `run_dir`'s lock, if one does (a lock file left by a dead one is no holder).
/// Read from the kernel's lock table, without taking the lock: a status line asked every second must never make
/// a starting muster think another one runs.
pub fn holder(run_dir: &Path) -> Option<u32> {
    lock_holder(&run_dir.join("lock"))
}

/// The pid that holds the lock on the file at `path`, from the kernel's lock table.
fn lock_holder(path: &Path) -> Option<u32> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    let id = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let locks = lock_table()?;
    locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&id.as_str())).then(|| f.get(4)?.parse().ok()).flatten()
    })
}

/// `/proc/locks` in one read: read in pieces, a table that changes meanwhile (SQLite's locks come and go all
/// the time) can skip lines, this muster's among them.
fn lock_table() -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open("/proc/locks").ok()?;
    let mut buf = vec![0u8; 1 << 20];
    let n = f.read(&mut buf).ok()?;
    if n == buf.len() {
        // A table larger than the buffer: read the rest, accepting the race.
        let mut rest = Vec::new();
        f.read_to_end(&mut rest).ok()?;
        buf.extend(rest);
    } else {
        buf.truncate(n);
    }
    String::from_utf8(buf).ok()
}

/// Limits of a line server: what one client may send, how long it may take, and how many are served at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_line: usize,
    /// Requests being handled at once (a client whose request is still arriving holds no such place); one that
    /// finds none free within `busy_after` is told the server is busy.
    pub max_clients: usize,
    /// Connections open at once, however slow; more are told the server is busy.
    pub max_open: usize,
    /// Clients waiting for an answer that comes when something happens (`muster wait`): they hold no place
    /// among the `max_clients`, but are bounded too.
    pub max_parked: usize,
    /// A client that sends nothing for this long is dropped.
    pub idle: Duration,
    /// A request must have arrived whole this long after its first byte (a client that sends a byte now and
    /// then never holds a place for good).
    pub whole: Duration,
    /// The line a refused client is told: whether it is for being busy (else its request broke a limit), and why.
    pub refusal: fn(bool, &str) -> String,
}

/// A refusal as a line of text.
fn plain_refusal(_busy: bool, why: &str) -> String {
    format!("error: {why}\n")
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // Room for the longest message (`protocol::mail::MAX_BODY`) with every byte escaped in JSON.
            max_line: 1 << 20,
            max_clients: 64,
            max_open: 1024,
            max_parked: 1024,
            idle: Duration::from_secs(5),
            whole: Duration::from_secs(10),
            refusal: plain_refusal,
        }
    }
}

/// What the handler wants after a line.
pub enum Flow {
    Continue,
    Close,
}

/// A listening socket (0600, in a private folder) removed when this is dropped.
pub struct Listening {
    pub path: PathBuf,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A line server's connections: how many are open, the places of requests being handled, and how many wait
/// for an event's answer.
struct Places {
    open: AtomicUsize,
    handling: Arc<Gate>,
    parked: AtomicUsize,
}

/// How long a whole request waits for a place among those being handled before its client is told muster is
/// busy (handlers are short: a place frees in microseconds, unless the engine itself is stuck).
const BUSY_AFTER: Duration = Duration::from_secs(5);

/// A client of a line server, as its handler sees it: where to answer, whether it is still there, and a way to
/// wait for an answer without holding one of the server's places.
pub struct Conn {
    stream: UnixStream,
    places: Arc<Places>,
    limits: Limits,
    /// Its place among the requests being handled, while it is handled and not parked.
    handling: Option<Ticket>,
    parked: bool,
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// How often a handler waiting for an answer looks whether its client is still there.
const LOOK_EVERY: Duration = Duration::from_millis(250);

impl Conn {
    /// Whether the client closed its end (a client that only shut down its writing half is still there: it
    /// waits for the answer).
    pub fn gone(&self) -> bool {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let mut fds = [PollFd::new(&self.stream, PollFlags::empty())];
        let now = Timespec { tv_sec: 0, tv_nsec: 0 };
        poll(&mut fds, Some(&now)).is_ok_and(|n| n > 0) && fds[0].revents().intersects(PollFlags::HUP | PollFlags::ERR)
    }

    /// The answer the engine sends on `rx`, for as long as it takes (or `within`), without holding one of the
    /// places of clients being served; `None` when the client left meanwhile (the handler ends, and its place
    /// with it), the answer did not come in time, or too many clients wait already (the client is told).
    pub fn answer<T>(&mut self, rx: &std::sync::mpsc::Receiver<T>, within: Option<Duration>) -> Option<T> {
        use std::sync::mpsc::RecvTimeoutError;
        if !self.park() {
            let why = format!("muster is busy: {} requests wait for answers already", self.limits.max_parked);
            let _ = self.write_all((self.limits.refusal)(true, &why).as_bytes());
            return None;
        }
        let end = within.map(|d| std::time::Instant::now() + d);
        loop {
            let step =
                end.map_or(LOOK_EVERY, |e| e.saturating_duration_since(std::time::Instant::now()).min(LOOK_EVERY));
            match rx.recv_timeout(step) {
                Ok(answer) => return Some(answer),
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => {
                    if self.gone() || end.is_some_and(|e| std::time::Instant::now() >= e) {
                        return None;
                    }
                }
            }
        }
    }

    /// From the clients being served to those waiting; false when too many wait already.
    fn park(&mut self) -> bool {
        if self.parked {
            return true;
        }
        if self.places.parked.fetch_add(1, Ordering::SeqCst) >= self.limits.max_parked {
            self.places.parked.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        self.handling = None;
        self.parked = true;
        true
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.places.open.fetch_sub(1, Ordering::SeqCst);
        if self.parked {
            self.places.parked.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Bounds how many of a socket's requests wait in the engine's queue: a client that sends faster than the
/// engine takes them waits (its socket is not read meanwhile), so nothing piles up in memory.
pub struct Gate {
    queued: std::sync::Mutex<usize>,
    room: std::sync::Condvar,
    max: usize,
}

/// One request in the engine's queue; its place is given back when the engine has handled it (dropped this).
pub struct Ticket(Arc<Gate>);

impl Gate {
    pub fn new(max: usize) -> Arc<Gate> {
        Arc::new(Gate { queued: std::sync::Mutex::new(0), room: std::sync::Condvar::new(), max })
    }

    /// A place in the queue, waiting up to `within` for one.
    pub fn enter(self: &Arc<Self>, within: Duration) -> Option<Ticket> {
        let queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        let (mut queued, _) =
            self.room.wait_timeout_while(queued, within, |q| *q >= self.max).unwrap_or_else(|p| p.into_inner());
        if *queued >= self.max {
            return None;
        }
        *queued += 1;
        Some(Ticket(self.clone()))
    }

    pub fn queued(&self) -> usize {
        *self.queued.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut queued = self.0.queued.lock().unwrap_or_else(|p| p.into_inner());
        *queued = queued.saturating_sub(1);
        self.0.room.notify_one();
    }
}

/// How long a server waits after a failed accept (no descriptor left) before it tries again: the socket stays
/// readable, and accepting again at once would spin.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A client thread's stack: handlers parse a line of JSON and wait; hundreds may wait at once.
const CLIENT_STACK: usize = 256 << 10;

/// Serve newline-delimited requests on `path`: each client on its own thread (at most `max_open` at once, and
/// `max_clients` requests handled at once: more are told the server is busy), only from this user (the peer's
/// uid is checked), a line longer than `max_line` or slower than `whole` ends that client. `handle` gets each line and the client to answer.
/// The caller must hold the run folder's `Instance` lock: a socket already at `path` is then a dead muster's and
/// is replaced.
pub fn serve_lines<F>(path: &Path, limits: Limits, handle: F) -> Result<Listening>
where
    F: Fn(&str, &mut Conn) -> Flow + Send + Sync + 'static,
{
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let handle = Arc::new(handle);
    let places = Arc::new(Places {
        open: AtomicUsize::new(0),
        handling: Gate::new(limits.max_clients),
        parked: AtomicUsize::new(0),
    });
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    std::thread::Builder::new().name(format!("serve {name}")).spawn(move || loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Out of descriptors: the socket stays readable, and accepting again at once would spin.
                crate::warn_limited!("accept lines", "accepting a client of {name}: {e}");
                std::thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        if !same_user(&stream) {
            continue;
        }
        if places.open.fetch_add(1, Ordering::SeqCst) >= limits.max_open {
            places.open.fetch_sub(1, Ordering::SeqCst);
            // Said, so that a hook that could not report knows it (and says so).
            let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
            let why = format!("muster is busy: {} connections are open", limits.max_open);
            let _ = stream.write_all((limits.refusal)(true, &why).as_bytes());
            continue;
        }
        let conn = Conn { stream, places: places.clone(), limits, handling: None, parked: false };
        let handle = handle.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("client {name}"))
            .stack_size(CLIENT_STACK)
            .spawn(move || serve_client(conn, limits, handle.as_ref()));
        if let Err(e) = spawned {
            // The client was dropped with the closure that never ran, and its place with it.
            tracing::warn!("no thread for a client of {name}: {e}");
        }
    })?;
    Ok(Listening { path: path.to_path_buf() })
}

/// Only this user's processes are served (the folder is private too; this holds if it ever is not).
pub fn same_user(stream: &impl std::os::fd::AsFd) -> bool {
    peer_allowed(
        rustix::net::sockopt::socket_peercred(stream).ok().map(|c| c.uid.as_raw()),
        rustix::process::geteuid().as_raw(),
    )
}

/// A peer is served when the kernel says it runs as this process's user.
pub fn peer_allowed(peer_uid: Option<u32>, own_uid: u32) -> bool {
    peer_uid == Some(own_uid)
}

/// Why a client's line could not be read.
#[derive(Debug, PartialEq)]
enum LineEnd {
    /// The stream ended (or failed) before a whole line.
    Closed,
    TooLong,
    TooSlow,
}

/// The next line of a client (without its newline), read within the limits; `pending` keeps what came after it.
fn read_line(stream: &mut UnixStream, pending: &mut Vec<u8>, limits: Limits) -> Result<Vec<u8>, LineEnd> {
    let mut started: Option<std::time::Instant> = (!pending.is_empty()).then(std::time::Instant::now);
    let mut buf = [0u8; 4096];
    loop {
        if let Some(i) = pending.iter().position(|&b| b == b'\n') {
            if i > limits.max_line {
                return Err(LineEnd::TooLong);
            }
            let line = pending.drain(..=i).take(i).collect();
            return Ok(line);
        }
        if pending.len() > limits.max_line {
            return Err(LineEnd::TooLong);
        }
        let left = match started {
            Some(t) => limits.whole.checked_sub(t.elapsed()).filter(|d| !d.is_zero()).ok_or(LineEnd::TooSlow)?,
            None => limits.idle,
        };
        let _ = stream.set_read_timeout(Some(left.min(limits.idle)));
        match stream.read(&mut buf) {
            Ok(0) => return Err(LineEnd::Closed),
            Ok(n) => {
                started.get_or_insert_with(std::time::Instant::now);
                pending.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(if started.is_some() { LineEnd::TooSlow } else { LineEnd::Closed })
            }
            Err(_) => return Err(LineEnd::Closed),
        }
    }
}

fn serve_client<F: Fn(&str, &mut Conn) -> Flow>(mut conn: Conn, limits: Limits, handle: &F) {
    let _ = conn.stream.set_write_timeout(Some(limits.idle));
    let Ok(mut stream) = conn.stream.try_clone() else { return };
    let mut pending = Vec::new();
    loop {
        let line = match read_line(&mut stream, &mut pending, limits) {
            Ok(line) => line,
            Err(end) => {
                let why = match end {
                    LineEnd::Closed => return,
                    LineEnd::TooLong => format!("a request is at most {} bytes", limits.max_line),
                    LineEnd::TooSlow => format!("a request must arrive whole within {} s", limits.whole.as_secs()),
                };
                let _ = conn.write_all((limits.refusal)(false, &why).as_bytes());
                return;
            }
        };
        let Ok(text) = std::str::from_utf8(&line) else {
            let _ = conn.write_all((limits.refusal)(false, "a request is a line of UTF-8 JSON").as_bytes());
            continue;
        };
        // Only a whole request takes a place among those being handled: a slow client holds none.
        let Some(ticket) = conn.places.handling.enter(BUSY_AFTER) else {
            let why = format!("muster is busy: {} requests are being handled", limits.max_clients);
            let _ = conn.write_all((limits.refusal)(true, &why).as_bytes());
            return;
        };
        conn.handling = Some(ticket);
        let flow = handle(text.trim_end(), &mut conn);
        conn.handling = None;
        if let Flow::Close = flow {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn private_folders_are_closed_and_foreign_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("run");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        private_dir(&d).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(private_dir(&link).unwrap_err().to_string().contains("symlink"));
        if rustix::process::geteuid().is_root() {
            // Another user's folder, made first where muster would put its sockets.
            let theirs = dir.path().join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            assert!(private_dir(&theirs).unwrap_err().to_string().contains("belongs to user 65534"));
        }
    }

    #[test]
    fn one_instance_per_run_folder() {
        let dir = tempfile::tempdir().unwrap();
        let first = Instance::acquire(dir.path(), Path::new("/repo")).unwrap();
        let err = Instance::acquire(dir.path(), Path::new("/repo")).unwrap_err().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        assert_eq!(holder(dir.path()), Some(std::process::id()));
        drop(first);
        assert_eq!(holder(dir.path()), None);
        Instance::acquire(dir.path(), Path::new("/repo")).unwrap();
    }

    #[test]
    fn run_folders_of_deleted_repositories_are_forgotten() {
        let base = tempfile::tempdir().unwrap();
        let repos = tempfile::tempdir().unwrap();
        let (kept, gone, held) = (repos.path().join("kept"), repos.path().join("gone"), repos.path().join("held"));
        let mut instances = Vec::new();
        for (name, root) in [("k", &kept), ("g", &gone), ("h", &held)] {
            std::fs::create_dir(root).unwrap();
            std::fs::create_dir(base.path().join(name)).unwrap();
            instances.push(Instance::acquire(&base.path().join(name), root).unwrap());
        }
        let _held = instances.pop();
        instances.clear();
        std::fs::remove_dir(&gone).unwrap();
        std::fs::remove_dir(&held).unwrap();
        std::fs::create_dir(base.path().join("new")).unwrap();
        let _new = Instance::acquire(&base.path().join("new"), repos.path()).unwrap();
        let left: Vec<String> = std::fs::read_dir(base.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let mut left = left;
        left.sort();
        assert_eq!(left, vec!["h", "k", "new"], "the deleted repository's folder goes; a held one stays");
    }

    #[test]
    fn an_idle_or_flooding_client_never_holds_up_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let (tx, rx) = mpsc::channel::<String>();
        let tx = std::sync::Mutex::new(tx);
        let limits = Limits { max_line: 1024, max_clients: 8, idle: Duration::from_secs(30), ..Limits::default() };
        let listening = serve_lines(&path, limits, move |line, out| {
            let _ = out.write_all(b"ok\n");
            let _ = tx.lock().unwrap().send(line.to_string());
            Flow::Continue
        })
        .unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // One connection says nothing; another sends a line without end.
        let _idle = UnixStream::connect(&path).unwrap();
        let mut flood = UnixStream::connect(&path).unwrap();
        let _ = flood.write_all(&vec![b'a'; 4096]);
        let mut answer = String::new();
        let _ = flood.read_to_string(&mut answer);
        assert!(answer.contains("at most 1024 bytes"), "{answer:?}");
        // A well-behaved client is served at once.
        let mut good = UnixStream::connect(&path).unwrap();
        good.write_all(b"hello\n").unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "hello");
        drop(listening);
        assert!(!path.exists(), "the socket goes with the server");
    }

    /// A line server whose handler waits for an answer that never comes (the senders are kept alive).
    fn waiting_server(limits: Limits) -> (tempfile::TempDir, PathBuf, Listening) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sock");
        let kept = std::sync::Mutex::new(Vec::new());
        let listening = serve_lines(&path, limits, move |line, out| {
            if line == "wait" {
                let (tx, rx) = mpsc::channel::<String>();
                kept.lock().unwrap().push(tx);
                out.answer(&rx, None);
            } else {
                let _ = out.write_all(b"ok\n");
            }
            Flow::Close
        })
        .unwrap();
        (dir, path, listening)
    }

    fn ask(path: &Path, line: &str) -> String {
        ask_within(path, line, 30_000)
    }

    fn ask_within(path: &Path, line: &str, ms: u64) -> String {
        let mut s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(ms))).unwrap();
        s.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    }

    /// Until `f` holds, within the tests' deadline.
    fn eventually(what: &str, mut f: impl FnMut() -> bool) {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(std::time::Instant::now() < end, "never: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn clients_waiting_for_an_event_hold_no_place_and_give_theirs_back_when_they_leave() {
        let limits = Limits { max_clients: 8, max_parked: 8, ..Limits::default() };
        let (_dir, path, _l) = waiting_server(limits);
        let waiting: Vec<UnixStream> = (0..8)
            .map(|_| {
                let mut s = UnixStream::connect(&path).unwrap();
                s.write_all(b"wait\n").unwrap();
                s
            })
            .collect();
        // Eight wait, as many as there are places: a request is still served.
        eventually("a request served beside eight waits", || ask(&path, "hello") == "ok\n");
        // A ninth wait is over the bound, and is told (one asked before all eight waited is dropped: it left).
        eventually("the ninth wait refused", || ask_within(&path, "wait", 300).contains("8 requests wait for answers"));
        // The eight leave (as `timeout 1 muster wait` does): their places are free again, and a new wait is
        // held (no answer within its 300 ms) rather than refused.
        drop(waiting);
        eventually("a wait held again", || ask_within(&path, "wait", 300).is_empty());
    }

    #[test]
    fn a_client_over_the_places_is_told_and_a_slow_one_is_dropped() {
        // Slow clients hold no place among the requests being handled: with one such place, two of them
        // still leave it to a whole request.
        let limits = Limits { max_clients: 1, max_open: 3, whole: Duration::from_millis(600), ..Limits::default() };
        let (_dir, path, _l) = waiting_server(limits);
        // Two clients that send a byte every 100 ms (a slowloris): each read is in time, no request is.
        let drip = |mut s: UnixStream| {
            std::thread::spawn(move || {
                for _ in 0..50 {
                    if s.write_all(b"x").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        let slow: Vec<UnixStream> = (0..2).map(|_| UnixStream::connect(&path).unwrap()).collect();
        let drips: Vec<_> = slow.iter().map(|s| drip(s.try_clone().unwrap())).collect();
        let mut served = UnixStream::connect(&path).unwrap();
        served.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        served.write_all(b"hello\n").unwrap();
        let mut answer = String::new();
        let _ = served.read_to_string(&mut answer);
        assert_eq!(answer, "ok\n", "a whole request beside two slow clients");
        // Past the connections allowed open at once, a client is told.
        let _third = UnixStream::connect(&path).unwrap();
        let mut busy = UnixStream::connect(&path).unwrap();
        busy.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut answer = String::new();
        let _ = busy.read_to_string(&mut answer);
        assert!(answer.contains("muster is busy: 3 connections are open"), "{answer:?}");
        for mut s in slow {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            assert!(answer.contains("must arrive whole within"), "{answer:?}");
        }
        drips.into_iter().for_each(|d| d.join().unwrap());
        eventually("served again", || ask(&path, "hello") == "ok\n");
    }

    #[test]
    fn the_queue_to_the_engine_is_bounded_and_room_comes_back_as_it_takes() {
        let gate = Gate::new(2);
        let a = gate.enter(Duration::ZERO).unwrap();
        let _b = gate.enter(Duration::ZERO).unwrap();
        assert!(gate.enter(Duration::from_millis(10)).is_none(), "full");
        let waiter = std::thread::spawn({
            let gate = gate.clone();
            move || gate.enter(Duration::from_secs(30))
        });
        drop(a);
        let c = waiter.join().unwrap();
        assert!(c.is_some(), "the engine took one: room for the next");
        assert_eq!(gate.queued(), 2);
        drop(c);
        assert_eq!(gate.queued(), 1);
    }
}
