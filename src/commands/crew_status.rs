//! `muster status`: the crew as the server (or, without one, the state file and the crew file) says it is.

use super::*;

/// The crew as the running server has it now; else as the state file says, with no pid.
pub(super) fn live_crew(root: &Path) -> Result<(engine::store::SavedCrew, Option<u32>)> {
    let run_dir = crate::ipc::run_dir(root)?;
    if let Some(pid) = crate::ipc::holder(&run_dir) {
        let req = engine::script_socket::Request::Status {};
        match engine::script_socket::ask(&run_dir, &req, Some(Duration::from_secs(5)))? {
            Some(crate::protocol::script::Answer::Status { crew }) => {
                // Read as the state file is: every name passes the crew file's check.
                let (crew, _) = engine::store::parse(root, Path::new("server"), serde_json::to_vec(&crew)?)
                    .context("reading the server's answer")?;
                return Ok((crew, Some(pid)));
            }
            Some(other) => bail!("the running muster answered {other:?}"),
            None => {}
        }
    }
    let (saved, warnings, running) = engine::store::load_live(root)?;
    for w in warnings {
        eprintln!("muster: {}", printable_line(&w));
    }
    Ok((saved, running))
}

pub(super) fn status(root: &Path, json: bool, format: Option<&str>) -> Result<()> {
    let (mut saved, running) = live_crew(root)?;
    if running.is_none() {
        // Without a server the crew file says who the crew is (a broken one is an error, named where): agents
        // never started are listed as stopped.
        let (crew, _, _) = load_crew(root)?;
        for spec in crew.agents {
            if saved.agents.iter().all(|a| a.spec.name != spec.name) {
                saved.agents.push(engine::store::SavedAgent {
                    branch: crate::git::worktree::branch_name(&spec.name),
                    worktree: crate::git::worktree::worktree_path(root, &spec.name),
                    spec,
                    base: String::new(),
                    state: engine::AgentState::Stopped,
                    exit: None,
                    ran: false,
                    port_base: 0,
                    session: None,
                    run: 0,
                    done: false,
                });
            }
        }
    }
    if json {
        let mut v = serde_json::to_value(&saved)?;
        v["running_pid"] = serde_json::json!(running);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if format == Some("tmux") {
        println!("{}", tmux_status(&saved.agents, running.is_some()));
        return Ok(());
    }
    for a in &saved.agents {
        let exit = a.exit.map(|e| format!(" ({e})")).unwrap_or_default();
        let never = if a.ran || a.state.is_running() { "" } else { " (never started)" };
        let state = a.state.label();
        let line = format!("{:<16} {:<9} {:<20} {state}{exit}{never}", a.spec.name, a.spec.kind, a.branch);
        println!("{}", printable_line(&line));
    }
    Ok(())
}

/// One line for a tmux status bar: how many agents are in each state, waiting ones first and highlighted.
pub(super) fn tmux_status(agents: &[engine::store::SavedAgent], running: bool) -> String {
    use engine::AgentState as S;
    if !running {
        return "muster: not running".into();
    }
    let order = [S::Waiting, S::Error, S::Busy, S::Idle, S::Paused, S::Starting, S::Exited, S::Stopped];
    let parts: Vec<String> = order
        .iter()
        .filter_map(|&s| {
            let n = agents.iter().filter(|a| a.state == s).count();
            (n > 0).then(|| match s {
                S::Waiting | S::Error => format!("#[fg=yellow,bold]{}{n}#[default]", s.glyph()),
                _ => format!("{}{n}", s.glyph()),
            })
        })
        .collect();
    if parts.is_empty() {
        "muster: no agents".into()
    } else {
        parts.join(" ")
    }
}
