//! Every process an agent started, wherever it went: its own cgroup where muster may make one (found in
//! `/proc/self/cgroup`; cgroup v2, else the v1 freezer hierarchy), and always a unique mark in the environment
//! (`MUSTER_AGENT_ID`), which catches processes that left the agent's session or process group (codex's
//! `app-server` daemons, gemini's node children) even without a cgroup.
//!
//! Pause uses the cgroup freezer where there is one: the processes are frozen without a signal, so shells keep
//! their job tables and CLIs do not repaint. Without one, every process of the agent is sent SIGSTOP/SIGCONT.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

/// The environment variable that marks an agent's processes.
pub const MARK: &str = "MUSTER_AGENT_ID";
/// How long a freeze may take to settle before it is reported as done anyway.
const FREEZE_SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// A cgroup v2 folder with `cgroup.freeze` (and `cgroup.kill`).
    CgroupV2(PathBuf),
    /// A folder of the v1 freezer hierarchy.
    CgroupV1(PathBuf),
    /// No cgroup: SIGSTOP/SIGCONT to every marked process.
    Signals,
}

impl Method {
    /// In a few words, for the help.
    pub fn short(&self) -> &'static str {
        match self {
            Method::CgroupV2(_) => "cgroup v2 freezer",
            Method::CgroupV1(_) => "cgroup v1 freezer",
            Method::Signals => "SIGSTOP and SIGCONT",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Method::CgroupV2(p) => format!("cgroup v2 freezer ({})", p.display()),
            Method::CgroupV1(p) => format!("cgroup v1 freezer ({})", p.display()),
            Method::Signals => "SIGSTOP/SIGCONT to every process of the agent (no cgroup muster may create)".into(),
        }
    }
}

/// Where cgroup hierarchies are mounted: (mount point, filesystem type, super options).
fn mounts() -> Vec<(PathBuf, String, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?.to_string();
            let opts = r.nth(1).unwrap_or("").to_string();
            Some((PathBuf::from(point), fstype, opts))
        })
        .collect()
}

/// This process's cgroup in the v2 hierarchy and in v1's freezer hierarchy.
fn own_cgroups() -> (Option<String>, Option<String>) {
    cgroups_in(&std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default())
}

fn own_cgroups_of(pid: i32) -> (Option<String>, Option<String>) {
    cgroups_in(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default())
}

fn cgroups_in(text: &str) -> (Option<String>, Option<String>) {
    let mut v2 = None;
    let mut v1 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if ctrl.is_empty() {
            v2 = Some(path.to_string());
        } else if ctrl.split(',').any(|c| c == "freezer") {
            v1 = Some(path.to_string());
        }
    }
    (v2, v1)
}

fn join(mount: &Path, cgroup: &str) -> PathBuf {
    mount.join(cgroup.trim_start_matches('/'))
}

/// Remove the folders of muster runs that have ended (`muster-<pid>-…` whose pid is gone). Another muster's
/// live folders are left alone: one just made is empty until its agent moves in, and removing it then would
/// take its pause away.
fn sweep(parent: &Path) {
    for dir in crate::ipc::left_by_dead_runs(parent, "muster-") {
        // Fails (and is kept) while processes are still in it.
        let _ = std::fs::remove_dir(dir);
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A folder for one agent's processes, in the first hierarchy that lets muster make one.
fn make_cgroup(id: &str) -> Method {
    if std::env::var_os("MUSTER_NO_CGROUP").is_some() {
        return Method::Signals;
    }
    let (v2, v1) = own_cgroups();
    let all = mounts();
    // A folder of ours below this process's own cgroup, if the kernel lets us make one with its freezer file.
    let make = |mount: &Path, path: &str, control: &str| {
        let parent = join(mount, path);
        sweep(&parent);
        let dir = parent.join(format!("muster-{id}"));
        std::fs::create_dir(&dir).ok()?;
        if dir.join(control).exists() {
            return Some(dir);
        }
        let _ = std::fs::remove_dir(&dir);
        None
    };
    if let (Some(path), Some((mount, ..))) = (&v2, all.iter().find(|(_, t, _)| t == "cgroup2")) {
        if let Some(dir) = make(mount, path, "cgroup.freeze") {
            return Method::CgroupV2(dir);
        }
    }
    let freezer = all.iter().find(|(_, t, o)| t == "cgroup" && o.split(',').any(|x| x == "freezer"));
    if let (Some(path), Some((mount, ..))) = (&v1, freezer) {
        if let Some(dir) = make(mount, path, "freezer.state") {
            return Method::CgroupV1(dir);
        }
    }
    Method::Signals
}

/// The processes whose environment carries `needle` (`MUSTER_AGENT_ID=<id>\0`).
fn marked(needle: &[u8]) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let me = std::process::id() as i32;
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == &needle[..needle.len() - 1]))
        })
        .collect()
}

/// Processes an earlier muster of this crew started and left behind when it died (killed with -9, say), by
/// agent name: they carry its run folder, and a tree id that is not this process's. Only meaningful while this
/// muster holds the crew's lock (no other muster of the crew is alive).
pub fn orphans(run_dir: &Path) -> std::collections::BTreeMap<String, Vec<i32>> {
    let mut out: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
    let Ok(entries) = std::fs::read_dir("/proc") else { return out };
    let me = std::process::id();
    let want_run = format!("MUSTER_RUN_DIR={}", run_dir.display());
    for pid in entries.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()) {
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        let vars: Vec<&[u8]> = env.split(|b| *b == 0).collect();
        if !vars.contains(&want_run.as_bytes()) {
            continue;
        }
        let var =
            |k: &str| vars.iter().find_map(|kv| std::str::from_utf8(kv.strip_prefix(format!("{k}=").as_bytes())?).ok());
        let owner = var(MARK).and_then(|o| o.split('-').next()?.parse::<u32>().ok());
        if let (Some(agent), Some(owner)) = (var("MUSTER_AGENT"), owner) {
            if owner != me {
                out.entry(agent.to_string()).or_default().push(pid);
            }
        }
    }
    out
}

/// Processes this muster started as agents (their mark names it as the owner), wherever they are now.
pub fn started_here() -> Vec<i32> {
    let me = std::process::id().to_string();
    let owned = format!("{MARK}={me}-");
    all_pids()
        .filter(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            env.split(|b| *b == 0).any(|kv| kv.starts_with(owned.as_bytes()))
        })
        .collect()
}

/// This process's children.
pub fn children() -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids().filter(|&pid| stat_fields(pid).is_some_and(|(_, parent)| parent == me)).collect()
}

/// Whether a process has ended (gone, or a zombie waiting to be reaped).
pub fn ended(pid: i32) -> bool {
    process_state(pid).is_none_or(|s| s == 'Z')
}

fn all_pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc").into_iter().flatten().flatten().filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// End processes a dead muster left: thawed first if its freezer still holds them (a frozen process does not
/// act on a signal), then SIGTERM, a moment, SIGKILL.
pub fn end_orphans(pids: &[i32]) {
    let ours = |path: &String| path.rsplit('/').next().is_some_and(|leaf| leaf.starts_with("muster-"));
    for &pid in pids {
        let (v2, v1) = own_cgroups_of(pid);
        let (v2, v1) = (v2.filter(ours), v1.filter(ours));
        let all = mounts();
        if let (Some(path), Some(mount)) = (v2, all.iter().find(|m| m.1 == "cgroup2").map(|m| &m.0)) {
            let _ = std::fs::write(join(mount, &path).join("cgroup.freeze"), "0");
        }
        let freezer = all.iter().find(|m| m.1 == "cgroup" && m.2.split(',').any(|o| o == "freezer"));
        if let (Some(path), Some(mount)) = (v1, freezer.map(|m| &m.0)) {
            let _ = std::fs::write(join(mount, &path).join("freezer.state"), "THAWED");
        }
    }
    let signal = |s: Signal| {
        for p in pids.iter().copied().filter_map(Pid::from_raw) {
            let _ = kill_process(p, s);
            let _ = kill_process(p, Signal::CONT);
        }
    };
    signal(Signal::TERM);
    let alive = || pids.iter().any(|p| !ended(*p));
    let end = Instant::now() + Duration::from_secs(2);
    while alive() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(Signal::KILL);
}

fn read_pids(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// The command name of a process (its `comm`).
pub fn command_name(pid: i32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim().to_string()).filter(|c| !c.is_empty())
}

/// Whether a process is blocked waiting for a child to end (`wait4`, `waitid`): it runs a command and waits
/// for it, however quiet the command is. The kernel's own word (`/proc/PID/syscall`), read without stopping it.
pub fn waiting_for_child(pid: i32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/syscall")) else { return false };
    let nr = text.split_whitespace().next().and_then(|n| n.parse::<i64>().ok());
    nr.is_some_and(|n| n == libc::SYS_wait4 || n == libc::SYS_waitid)
}

/// How long a process has run (from its start time in `/proc/PID/stat` and the system's uptime).
pub fn process_age(pid: i32) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces), from the third: state, ppid, … starttime is the 22nd.
    let start_ticks: f64 = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()?;
    // SAFETY: sysconf only reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(std::time::Duration::from_secs_f64((uptime - start_ticks / ticks).max(0.0)))
}

/// One child of a process, when the kernel lists them.
pub fn first_child(pid: i32) -> Option<i32> {
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        return text.split_whitespace().next()?.parse().ok();
    }
    // A kernel without that file: the processes whose parent it is.
    all_pids().find(|&p| {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok()) == Some(pid)
    })
}

/// One agent's processes.
pub struct AgentTree {
    id: String,
    method: Method,
    /// Operator pause and job holds: frozen while either is on.
    freeze: Mutex<FreezeState>,
}

#[derive(Default)]
struct FreezeState {
    operator: bool,
    holds: usize,
    frozen: bool,
}

/// Holds the agent frozen until dropped (a rollback writing its files, say).
pub struct Hold<'a>(&'a AgentTree);

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.holds = s.holds.saturating_sub(1);
        let _ = self.0.apply(&mut s);
    }
}

impl AgentTree {
    /// A new, empty tree for an agent about to start.
    pub fn new() -> AgentTree {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let id = format!("{}-{n}-{nanos:08x}", std::process::id());
        let method = make_cgroup(&id);
        AgentTree { id, method, freeze: Mutex::new(FreezeState::default()) }
    }

    /// The variable to put in the agent's environment.
    pub fn mark(&self) -> (String, String) {
        (MARK.to_string(), self.id.clone())
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FreezeState> {
        self.freeze.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Put the agent's first process (and so everything it starts) in the tree's cgroup.
    pub fn adopt(&self, pid: u32) {
        let procs = match &self.method {
            Method::CgroupV2(d) | Method::CgroupV1(d) => d.join("cgroup.procs"),
            Method::Signals => return,
        };
        if let Err(e) = std::fs::write(&procs, pid.to_string()) {
            tracing::warn!("moving {pid} into {}: {e}", procs.display());
        }
    }

    /// Every live process of the agent.
    pub fn pids(&self) -> Vec<i32> {
        let needle = format!("{MARK}={}\0", self.id);
        let mut pids = marked(needle.as_bytes());
        if let Method::CgroupV2(d) | Method::CgroupV1(d) = &self.method {
            pids.extend(read_pids(&d.join("cgroup.procs")));
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Marked processes that are not in the cgroup yet (started before the first one was moved in) join it.
    fn gather(&self) {
        if let Method::CgroupV2(d) | Method::CgroupV1(d) = &self.method {
            let inside = read_pids(&d.join("cgroup.procs"));
            for pid in self.pids().into_iter().filter(|p| !inside.contains(p)) {
                let _ = std::fs::write(d.join("cgroup.procs"), pid.to_string());
            }
        }
    }

    /// Files under `dir` that a process of the agent holds open for writing, relative and `/`-separated: a
    /// file still being written may be read half-done (a shell's `{ …; } > f` writes in several steps, with
    /// quiet moments between them that no file watcher can see).
    pub fn files_open_for_writing(&self, dir: &Path) -> Vec<String> {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut out = Vec::new();
        for pid in self.pids() {
            let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
            for fd in fds.flatten() {
                let Ok(target) = std::fs::read_link(fd.path()) else { continue };
                let Ok(rel) = target.strip_prefix(&dir) else { continue };
                if rel.as_os_str().is_empty() || rel.starts_with(".git") {
                    continue;
                }
                let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy()))
                    .unwrap_or_default();
                let flags = info
                    .lines()
                    .find_map(|l| l.strip_prefix("flags:"))
                    .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                    .unwrap_or(0);
                if flags & 3 != 0 {
                    if let Some(rel) = rel.to_str() {
                        out.push(rel.to_string());
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    pub fn signal_all(&self, signal: Signal) {
        for pid in self.pids() {
            if let Some(p) = Pid::from_raw(pid) {
                let _ = kill_process(p, signal);
            }
        }
    }

    /// End every process of the agent now.
    pub fn kill_all(&self) {
        if let Method::CgroupV2(d) = &self.method {
            if std::fs::write(d.join("cgroup.kill"), "1").is_ok() {
                // Marked processes outside the cgroup (none, normally) still get their signal below.
            }
        }
        self.signal_all(Signal::KILL);
        // A frozen process acts on SIGKILL only once thawed.
        let mut s = self.lock();
        if s.frozen {
            let _ = self.write_freeze(false);
            s.frozen = false;
        }
    }

    /// The operator's pause: sticky until the operator resumes, whatever holds come and go.
    pub fn set_paused(&self, paused: bool) -> std::io::Result<()> {
        let mut s = self.lock();
        s.operator = paused;
        self.apply(&mut s)
    }

    pub fn is_paused(&self) -> bool {
        self.lock().operator
    }

    pub fn is_frozen(&self) -> bool {
        self.lock().frozen
    }

    /// Freeze the agent until the hold is dropped.
    pub fn hold(&self) -> Hold<'_> {
        let mut s = self.lock();
        s.holds += 1;
        let _ = self.apply(&mut s);
        Hold(self)
    }

    fn apply(&self, s: &mut FreezeState) -> std::io::Result<()> {
        let want = s.operator || s.holds > 0;
        if want == s.frozen {
            return Ok(());
        }
        if want {
            self.gather();
        }
        self.write_freeze(want)?;
        s.frozen = want;
        Ok(())
    }

    fn write_freeze(&self, on: bool) -> std::io::Result<()> {
        let result = self.write_freeze_by(&self.method, on);
        if result.is_err() && self.method != Method::Signals {
            // The cgroup went away (removed by hand, say): signals still hold the agent.
            tracing::warn!("freezing by {} failed: {result:?}; using signals", self.method.describe());
            return self.write_freeze_by(&Method::Signals, on);
        }
        result
    }

    fn write_freeze_by(&self, method: &Method, on: bool) -> std::io::Result<()> {
        match method {
            Method::CgroupV2(d) => {
                std::fs::write(d.join("cgroup.freeze"), if on { "1" } else { "0" })?;
                let want = if on { "frozen 1" } else { "frozen 0" };
                settle(|| std::fs::read_to_string(d.join("cgroup.events")).is_ok_and(|e| e.lines().any(|l| l == want)));
                Ok(())
            }
            Method::CgroupV1(d) => {
                std::fs::write(d.join("freezer.state"), if on { "FROZEN" } else { "THAWED" })?;
                let want = if on { "FROZEN" } else { "THAWED" };
                settle(|| std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == want));
                Ok(())
            }
            Method::Signals => {
                // A job-control shell must never see its job stop: stop parents before their children (a stopped
                // shell cannot notice), continue children before their parents (a child continued before its
                // shell runs again reports "continued", not "stopped", to its wait).
                // A stop takes effect when the process next runs, so each generation is seen stopped before the
                // next one is stopped; a continue takes effect as it is sent.
                let mut levels = by_depth(self.pids());
                if !on {
                    levels.reverse();
                }
                for level in levels {
                    for pid in level.iter().copied().filter_map(Pid::from_raw) {
                        let _ = kill_process(pid, if on { Signal::STOP } else { Signal::CONT });
                    }
                    if on {
                        settle(|| {
                            level.iter().all(|&p| process_state(p).is_none_or(|s| matches!(s, 'T' | 't' | 'Z' | 'X')))
                        });
                    }
                }
                Ok(())
            }
        }
    }
}

impl Default for AgentTree {
    fn default() -> Self {
        AgentTree::new()
    }
}

/// A process's parent and state letter, from `/proc/<pid>/stat` (after the command name, which may hold spaces
/// and parens).
fn stat_fields(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?))
}

fn process_state(pid: i32) -> Option<char> {
    stat_fields(pid).map(|(s, _)| s)
}

/// `pids` in generations: those whose parent is not among them first, then their children, and so on.
fn by_depth(pids: Vec<i32>) -> Vec<Vec<i32>> {
    let parents: std::collections::HashMap<i32, i32> =
        pids.iter().filter_map(|&p| stat_fields(p).map(|(_, pp)| (p, pp))).collect();
    let depth = |mut p: i32| {
        let mut d = 0;
        while let Some(&pp) = parents.get(&p).filter(|pp| parents.contains_key(pp)) {
            d += 1;
            p = pp;
            if d > pids.len() {
                break;
            }
        }
        d
    };
    let mut levels: Vec<Vec<i32>> = Vec::new();
    for p in pids.iter().copied() {
        let d = depth(p);
        if levels.len() <= d {
            levels.resize(d + 1, Vec::new());
        }
        levels[d].push(p);
    }
    levels
}

/// Wait (with a deadline) for the kernel to finish freezing or thawing.
fn settle(done: impl Fn() -> bool) {
    let end = Instant::now() + FREEZE_SETTLE;
    while !done() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Drop for AgentTree {
    fn drop(&mut self) {
        if let Method::CgroupV2(d) | Method::CgroupV1(d) = &self.method {
            let _ = self.write_freeze(false);
            // Fails while processes remain; the next muster start sweeps it.
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Whether a process is held still: stopped by a signal, or in a frozen cgroup (which `ps` shows as sleeping).
pub fn process_frozen(pid: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    if status.lines().any(|l| l.starts_with("State:") && l.contains("T (")) {
        return true;
    }
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let all = mounts();
    cgroups.lines().any(|line| {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else { return false };
        if ctrl.is_empty() {
            all.iter().filter(|(_, t, _)| t == "cgroup2").any(|(m, ..)| {
                std::fs::read_to_string(join(m, path).join("cgroup.events"))
                    .is_ok_and(|e| e.lines().any(|l| l == "frozen 1"))
            })
        } else if ctrl.split(',').any(|c| c == "freezer") {
            all.iter().filter(|(_, t, o)| t == "cgroup" && o.split(',').any(|x| x == "freezer")).any(|(m, ..)| {
                std::fs::read_to_string(join(m, path).join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            })
        } else {
            false
        }
    })
}

/// Which pause method this machine gives muster (for `muster doctor`).
pub fn probe() -> Method {
    AgentTree::new().method.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn state(pid: i32) -> String {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        s.lines().find_map(|l| l.strip_prefix("State:")).unwrap_or("").trim().to_string()
    }

    fn wait_for(what: &str, f: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < end, "timed out: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A shell that starts a child in a session of its own (as codex's daemons do): both are found, frozen,
    /// thawed and killed.
    fn escaping_tree(tree: &AgentTree) -> (std::process::Child, i32) {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let (k, v) = tree.mark();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("setsid sleep 300 & echo $! > {}; exec sleep 300", pidfile.display()))
            .env(k, v)
            .process_group(0)
            .spawn()
            .unwrap();
        tree.adopt(child.id());
        wait_for("the daemon's pid", || {
            std::fs::read_to_string(&pidfile).is_ok_and(|s| s.trim().parse::<i32>().is_ok())
        });
        let daemon: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        let _ = child.try_wait();
        (child, daemon)
    }

    #[test]
    fn sweeping_removes_only_folders_of_ended_runs() {
        let parent = tempfile::tempdir().unwrap();
        // A pid above the kernel's maximum has never run.
        let dead = parent.path().join("muster-4194305-0-1");
        let mine = parent.path().join(format!("muster-{}-0-1", std::process::id()));
        let other = parent.path().join("unrelated");
        for d in [&dead, &mine, &other] {
            std::fs::create_dir(d).unwrap();
        }
        sweep(parent.path());
        assert!(!dead.exists() && mine.exists() && other.exists());
    }

    #[test]
    fn finds_freezes_and_kills_processes_that_left_the_session() {
        let tree = AgentTree::new();
        let (mut child, daemon) = escaping_tree(&tree);
        let main = child.id() as i32;
        wait_for("both marked", || {
            let p = tree.pids();
            p.contains(&main) && p.contains(&daemon)
        });
        tree.set_paused(true).unwrap();
        let stopped = process_frozen;
        wait_for("frozen", || stopped(main) && stopped(daemon));
        {
            // A job's hold and release leave the operator's pause in place.
            let _hold = tree.hold();
        }
        assert!(tree.is_paused());
        wait_for("still frozen", || stopped(main) && stopped(daemon));
        tree.set_paused(false).unwrap();
        wait_for("thawed", || !process_frozen(main) && !process_frozen(daemon));
        tree.kill_all();
        let _ = child.wait();
        wait_for("daemon gone", || state(daemon).is_empty() || state(daemon).starts_with('Z'));
    }
}
