//! What processes of one user share about a crew: its private run folder (sockets, the instance lock), the lock
//! that lets one muster own a repository's crew, and a socket server for newline-delimited requests that serves
//! clients concurrently with a size cap. The hook socket uses them today; the muster server builds on them.

use std::io::{BufRead, BufReader, Read, Write};
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
pub fn run_dir(root: &Path) -> Result<PathBuf> {
    let h =
        root.to_string_lossy().bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    let dir = user_dir()?.join(format!("{h:016x}"));
    private_dir(&dir)?;
    Ok(dir)
}

/// The lock that makes one muster the owner of a repository's crew. Held for the life of the value (the kernel
/// drops it when the process dies, however it dies).
#[derive(Debug)]
pub struct Instance {
    _file: std::fs::File,
    pub path: PathBuf,
}

impl Instance {
    /// Take the lock of `run_dir`, or say who holds it.
    pub fn acquire(run_dir: &Path, root: &Path) -> Result<Instance> {
        let path = run_dir.join("lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let pid = holder.lines().next().unwrap_or("?").to_string();
                bail!("muster is already running for {} (pid {pid}): use that one, or quit it first", root.display());
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
        file.set_len(0)?;
        file.write_all(format!("{}\n{}\n", std::process::id(), root.display()).as_bytes())?;
        if let Some(parent) = run_dir.parent() {
            forget_gone_repositories(parent);
        }
        Ok(Instance { _file: file, path })
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
    let meta = std::fs::symlink_metadata(run_dir.join("lock")).ok()?;
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

/// Limits of a line server: what one client may send and how many are served at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_line: usize,
    pub max_clients: usize,
    /// A client that sends nothing for this long is dropped.
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_line: 64 << 10, max_clients: 64, idle: Duration::from_secs(5) }
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

/// Serve newline-delimited requests on `path`: each client on its own thread (at most `max_clients`; more are
/// turned away), only from this user (the peer's uid is checked), a line longer than `max_line` ends that client.
/// `handle` gets each line and the stream to answer on. The caller must hold the run folder's `Instance` lock:
/// a socket already at `path` is then a dead muster's and is replaced.
pub fn serve_lines<F>(path: &Path, limits: Limits, handle: F) -> Result<Listening>
where
    F: Fn(&str, &mut UnixStream) -> Flow + Send + Sync + 'static,
{
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let handle = Arc::new(handle);
    let clients = Arc::new(AtomicUsize::new(0));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    std::thread::Builder::new().name(format!("serve {name}")).spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            if !same_user(&stream) {
                continue;
            }
            if clients.fetch_add(1, Ordering::SeqCst) >= limits.max_clients {
                clients.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let (handle, count) = (handle.clone(), clients.clone());
            let spawned = std::thread::Builder::new().name(format!("client {name}")).spawn(move || {
                serve_client(stream, limits, handle.as_ref());
                count.fetch_sub(1, Ordering::SeqCst);
            });
            if spawned.is_err() {
                // The client was dropped with the closure that never ran: its place is free again.
                clients.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!("no thread for a client of {name}");
            }
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

fn serve_client<F: Fn(&str, &mut UnixStream) -> Flow>(stream: UnixStream, limits: Limits, handle: &F) {
    let _ = stream.set_read_timeout(Some(limits.idle));
    let _ = stream.set_write_timeout(Some(limits.idle));
    let Ok(mut out) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.by_ref().take(limits.max_line as u64 + 1).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if !line.ends_with(b"\n") {
            if line.len() > limits.max_line {
                let _ = out.write_all(format!("error: a request is at most {} bytes\n", limits.max_line).as_bytes());
            }
            // Too long, or cut off by the end of the stream: either way nothing whole to act on.
            return;
        }
        let Ok(text) = std::str::from_utf8(&line) else { continue };
        if let Flow::Close = handle(text.trim_end(), &mut out) {
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
        let limits = Limits { max_line: 1024, max_clients: 8, idle: Duration::from_secs(30) };
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
}
