//! Stopping an agent: signals to its process group and to its terminal's foreground group (pause and the rest
//! of its processes are `tree`'s).

use rustix::process::{kill_process_group, Pid, Signal};

use super::PtyControl;

/// Process groups to signal: the child's own group and, when different, the terminal's foreground job.
fn groups(control: &dyn PtyControl) -> Vec<Pid> {
    let mut out = Vec::new();
    if let Some(pid) = control.pid().and_then(|p| Pid::from_raw(p as i32)) {
        out.push(pid);
    }
    if let Some(fg) = control.foreground_group().and_then(Pid::from_raw) {
        if !out.contains(&fg) {
            out.push(fg);
        }
    }
    out
}

fn send(control: &dyn PtyControl, signal: Signal) -> std::io::Result<()> {
    let mut result = Ok(());
    for group in groups(control) {
        if let Err(e) = kill_process_group(group, signal) {
            // A group that has already gone is not an error worth reporting.
            if e != rustix::io::Errno::SRCH {
                result = Err(e.into());
            }
        }
    }
    result
}

pub fn terminate(control: &dyn PtyControl) -> std::io::Result<()> {
    // A stopped process would not act on SIGTERM until continued.
    let _ = send(control, Signal::CONT);
    send(control, Signal::TERM)
}

pub fn kill(control: &dyn PtyControl) -> std::io::Result<()> {
    send(control, Signal::KILL)
}
