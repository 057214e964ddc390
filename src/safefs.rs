//! Files muster writes, reads and deletes in folders a repository's content can reach. A repository cloned from a
//! stranger may commit symlinks where muster keeps things (`.muster`, `.muster/worktrees/x`, a worktree's
//! `.muster/ports.env`): muster never follows a symlink it did not create when it writes or deletes, replaces
//! files by renaming a new one over them (a reader or an open writer never sees half a file), and reads its own
//! files only when they are regular files of a sane size (a FIFO would hang, `/dev/zero` never ends).

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};

/// `root/rel` as a real directory, each component created when missing; a symlink or a non-directory on the
/// way is refused (with a message that says what to do), never followed.
pub fn real_dir(root: &Path, rel: impl AsRef<Path>) -> Result<PathBuf> {
    walk(root, rel.as_ref(), true)
}

/// Whether `root/rel` exists as a real directory (no symlink on the way); an error when something else is there.
pub fn existing_real_dir(root: &Path, rel: impl AsRef<Path>) -> Result<bool> {
    match walk(root, rel.as_ref(), false) {
        Ok(_) => Ok(true),
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

fn walk(root: &Path, rel: &Path, create: bool) -> Result<PathBuf> {
    let mut p = root.to_path_buf();
    for c in rel.components() {
        let Component::Normal(part) = c else {
            bail!("{}: not a plain path inside {}", rel.display(), root.display());
        };
        p.push(part);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => bail!(
                "{} is a symbolic link (committed to the repository?): muster does not follow it; remove it so \
                 muster can make a real folder there",
                p.display()
            ),
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("{} is not a folder: muster needs a folder there", p.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => match std::fs::create_dir(&p) {
                Ok(()) => {}
                // Made meanwhile by someone else: look again at what it is.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return walk(root, rel, create),
                Err(e) => return Err(e).with_context(|| format!("creating {}", p.display())),
            },
            Err(e) => return Err(e.into()),
        }
    }
    Ok(p)
}

/// A new (or emptied) file of this user's, 0600, never opened through a symlink: a log the repository cannot send
/// elsewhere.
pub fn create_private(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Replace `dir/name` with `bytes`: a new file (never opened through a symlink) synced and renamed over the
/// old one, so the old file (or a symlink in its place) is replaced, not written through, and a failure (a full
/// disk) leaves the old file and no temporary behind.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    write_file_mode(dir, name, bytes, 0o644)
}

pub fn write_file_mode(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
    let target = dir.join(name);
    let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| write_failure(dir, &format!("writing {}", target.display())));
    }
    std::fs::rename(&tmp, &target).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("replacing {}", target.display())
    })
}

/// Replace the file at `rel` (a plain relative path: no `..`, no root) inside `root`, whose folders on the way
/// must be real folders (made when missing), as `write_file` does.
pub fn write_in(root: &Path, rel: &Path, bytes: &[u8]) -> Result<()> {
    let name = rel.file_name().and_then(|n| n.to_str()).context("a file name")?;
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        bail!("{}: not a plain path inside {}", rel.display(), root.display());
    }
    let dir = match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => real_dir(root, p)?,
        None => root.to_path_buf(),
    };
    write_file(&dir, name, bytes)
}

/// What a write that failed in `dir` most likely met: a full disk (libgit2 says only "Write error", and some
/// paths "no error"), said with the space left; otherwise `what` alone.
pub fn write_failure(dir: &Path, what: &str) -> String {
    match rustix::fs::statvfs(dir) {
        Ok(s) if s.f_bavail.saturating_mul(s.f_frsize) < (1 << 20) => format!(
            "{what}: the disk holding {} is full ({} KiB free)",
            dir.display(),
            s.f_bavail.saturating_mul(s.f_frsize) / 1024
        ),
        _ => what.to_string(),
    }
}

/// Whether `path` is a symlink (muster writes no file through one it did not make).
pub fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Delete `path`, which must be strictly inside `base` with no symlink on the way; a symlink at `path` itself
/// loses only the link. Anything else is refused, so a name read from a file can never delete outside muster's
/// folders.
pub fn remove_inside(base: &Path, path: &Path) -> Result<()> {
    let Ok(rel) = path.strip_prefix(base) else {
        bail!("refusing to delete {}: it is not inside {}", path.display(), base.display());
    };
    if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        bail!("refusing to delete {}: it is not inside {}", path.display(), base.display());
    }
    if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !existing_real_dir(base, parent)? {
            return Ok(());
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
    .with_context(|| format!("removing {}", path.display()))
}

/// Make sure a file muster keeps in a folder a repository reaches is its own: missing, or a regular file (not a
/// symlink, a FIFO or a device) of this user, closed to others (`mode`); a missing one is created empty with
/// `mode` when `create`. What a clone committed there is refused, never opened.
pub fn own_private_file(path: &Path, mode: u32, create: bool) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            bail!("{} is a symbolic link (committed to the repository?): muster does not follow it", path.display())
        }
        Ok(m) if !m.is_file() => bail!("{} is not a regular file (a pipe or a device?)", path.display()),
        Ok(m) if m.uid() != rustix::process::geteuid().as_raw() => {
            bail!("{} belongs to user {}, not to you: muster will not use it", path.display(), m.uid())
        }
        Ok(m) if m.mode() & 0o777 & !mode != 0 => std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("closing {} to other users", path.display())),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
            {
                Ok(_) => Ok(()),
                // Made meanwhile: look at what it is.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => own_private_file(path, mode, false),
                Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The bytes of a file muster keeps, when it is a regular file of at most `max` bytes; `None` when missing.
/// Opening never blocks (a FIFO) and never follows a final symlink.
pub fn read_own_file(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            bail!("{} is a symbolic link: muster reads its own files only", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    read_regular(f, path, max).map(Some)
}

/// The bytes of a file the user writes (it may be a symlink to their dotfiles), when it is a regular file of at
/// most `max` bytes; `None` when missing.
pub fn read_config_file(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    let f = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    read_regular(f, path, max).map(Some)
}

fn read_regular(f: std::fs::File, path: &Path, max: u64) -> Result<Vec<u8>> {
    let meta = f.metadata().with_context(|| format!("reading {}", path.display()))?;
    if meta.is_dir() {
        bail!("{} is a folder, not a file", path.display());
    }
    if !meta.is_file() {
        bail!("{} is not a regular file (a pipe or a device?)", path.display());
    }
    if meta.len() > max {
        bail!("{} is {} bytes, more than the {max} muster reads", path.display(), meta.len());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(max + 1).read_to_end(&mut bytes).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > max {
        bail!("{} grew past the {max} bytes muster reads", path.display());
    }
    Ok(bytes)
}

/// The bytes as text, or the line and column where they stop being UTF-8.
pub fn utf8_text(bytes: Vec<u8>) -> std::result::Result<String, (usize, usize)> {
    String::from_utf8(bytes).map_err(|e| {
        let text = String::from_utf8_lossy(&e.as_bytes()[..e.utf8_error().valid_up_to()]);
        crate::text::line_col(&text, text.len())
    })
}

/// Text of a file that must be UTF-8, with an error that says where it is not.
pub fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String> {
    utf8_text(bytes)
        .map_err(|(line, col)| anyhow::anyhow!("{}:{line}:{col}: not UTF-8 text (a binary file?)", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn real_dirs_are_made_and_symlinks_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let made = real_dir(root.path(), ".muster/worktrees").unwrap();
        assert!(made.is_dir());
        symlink(outside.path(), root.path().join(".muster/worktrees/x")).unwrap();
        let err = real_dir(root.path(), ".muster/worktrees/x").unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(existing_real_dir(root.path(), ".muster/worktrees/x").is_err());
        assert!(!existing_real_dir(root.path(), ".muster/worktrees/y").unwrap());
        std::fs::write(root.path().join("file"), "").unwrap();
        assert!(real_dir(root.path(), "file/sub").unwrap_err().to_string().contains("not a folder"));
        assert!(real_dir(root.path(), "../escape").is_err());
    }

    #[test]
    fn writes_replace_a_symlink_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        symlink(&victim, dir.path().join("ports.env")).unwrap();
        write_file(dir.path(), "ports.env", b"A=1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(dir.path().join("ports.env")).unwrap(), "A=1\n");
        assert!(!is_symlink(&dir.path().join("ports.env")));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 2, "no temporary left: {names:?}");
    }

    #[test]
    fn deletes_stay_inside_their_base() {
        let base = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), "x").unwrap();
        let escape = base.path().join("../../..").join(outside.path().strip_prefix("/").unwrap());
        assert!(remove_inside(base.path(), &escape).is_err());
        assert!(remove_inside(base.path(), base.path()).is_err());
        // A symlinked folder on the way is never entered; a symlink itself loses only the link.
        symlink(outside.path(), base.path().join("link")).unwrap();
        assert!(remove_inside(base.path(), &base.path().join("link/keep")).is_err());
        remove_inside(base.path(), &base.path().join("link")).unwrap();
        assert!(outside.path().join("keep").exists());
        assert!(!base.path().join("link").exists());
        std::fs::create_dir_all(base.path().join("a/b")).unwrap();
        remove_inside(base.path(), &base.path().join("a")).unwrap();
        assert!(!base.path().join("a").exists());
    }

    /// A full disk: the error says so (libgit2 and the old path said "Write error" or "no error") and leaves no
    /// temporary file. Needs a small tmpfs, which root can mount (the machines this runs on run tests as root).
    #[test]
    fn a_full_disk_is_named_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            eprintln!("no tmpfs could be mounted here (not root?): the full-disk case is not exercised");
            return;
        }
        let result = std::panic::catch_unwind(|| {
            std::fs::write(dir.path().join("state.json"), "old").unwrap();
            let _ = std::fs::write(dir.path().join("filler"), vec![0u8; 512 << 10]);
            let err = format!("{:#}", write_file(dir.path(), "state.json", &vec![b'x'; 64 << 10]).unwrap_err());
            assert!(err.contains("is full") && err.contains("No space left"), "{err}");
            let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
            assert_eq!(names.len(), 2, "no temporary left: {names:?}");
            assert_eq!(std::fs::read_to_string(dir.path().join("state.json")).unwrap(), "old");
        });
        let _ = std::process::Command::new("umount").arg(dir.path()).status();
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    }

    #[test]
    fn own_files_must_be_small_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        assert!(read_own_file(&p, 10).unwrap().is_none());
        std::fs::write(&p, "12345").unwrap();
        assert_eq!(read_own_file(&p, 10).unwrap().unwrap(), b"12345");
        assert!(read_own_file(&p, 3).unwrap_err().to_string().contains("more than"));
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(read_own_file(&fifo, 10).unwrap_err().to_string().contains("not a regular file"));
        let link = dir.path().join("zero");
        symlink("/dev/zero", &link).unwrap();
        assert!(read_own_file(&link, 10).unwrap_err().to_string().contains("symbolic link"));
        assert!(read_config_file(&link, 10).unwrap_err().to_string().contains("not a regular file"));
        assert!(read_config_file(dir.path(), 10).unwrap_err().to_string().contains("folder"));
        let err = utf8(&p, b"ok\nfine \xff".to_vec()).unwrap_err().to_string();
        assert!(err.ends_with("state.json:2:6: not UTF-8 text (a binary file?)"), "{err}");
    }
}
