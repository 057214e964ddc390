//! Starting an agent: its environment (the parent's, cleaned, plus muster's and the crew's), its command line,
//! its worktree and ports, and its PTY.

use super::*;
use crate::engine::ports;

/// Environment variables of the parent that would mislead an agent CLI about its terminal.
pub(super) const STRIPPED_ENV: [&str; 12] = [
    "TMUX",
    "TMUX_PANE",
    "ZELLIJ",
    "ZELLIJ_SESSION_NAME",
    "ZELLIJ_PANE_ID",
    "STY",
    "TERM_PROGRAM",
    "TERM_PROGRAM_VERSION",
    "KITTY_WINDOW_ID",
    "WEZTERM_PANE",
    "COLUMNS",
    "LINES",
];

/// The complete environment of an agent: the parent's, cleaned, plus muster's variables and the crew's.
pub fn child_env(
    parent: impl Iterator<Item = (String, String)>,
    spec: &AgentSpec,
    run_dir: &std::path::Path,
    port_base: u16,
) -> Vec<(String, String)> {
    let inherited = |k: &str| {
        spec.inherit_env.as_ref().is_none_or(|list| {
            list.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => k.starts_with(prefix),
                None => k == p,
            })
        })
    };
    let mut env: BTreeMap<String, String> = parent
        .filter(|(k, _)| !STRIPPED_ENV.contains(&k.as_str()) && !k.starts_with("MUSTER_") && inherited(k))
        .collect();
    env.insert("TERM".into(), "xterm-256color".into());
    env.insert("COLORTERM".into(), "truecolor".into());
    env.insert("MUSTER_AGENT".into(), spec.name.clone());
    env.insert("MUSTER_RUN_DIR".into(), run_dir.to_string_lossy().into_owned());
    env.insert("MUSTER_PORT_BASE".into(), port_base.to_string());
    env.insert("MUSTER_PORT_COUNT".into(), ports::BLOCK.to_string());
    for (k, v) in &spec.env {
        env.insert(k.clone(), v.clone());
    }
    env.into_iter().collect()
}

/// The command line of an agent, with `{muster}`, `{shell}`, `{prompt}` and `{session}` filled in. A resume
/// with the CLI's own session id (from its hooks) continues exactly that conversation.
pub fn command_line(
    spec: &AgentSpec,
    muster_exe: &std::path::Path,
    resume: bool,
    session: Option<&str>,
) -> (String, Vec<String>) {
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
    let fill = |s: &str| s.replace("{muster}", &muster_exe.to_string_lossy()).replace("{shell}", &shell);
    let program = fill(&spec.command);
    let mut args: Vec<String> = spec.args.iter().map(|a| fill(a)).collect();
    if let (true, Some(id), false) = (resume, session, spec.resume_session_args.is_empty()) {
        args.extend(spec.resume_session_args.iter().map(|a| fill(a).replace("{session}", id)));
    } else if resume {
        args.extend(spec.resume_args.iter().map(|a| fill(a)));
    } else if let (Some(prompt), false) = (&spec.prompt, spec.prompt_args.is_empty()) {
        args.extend(spec.prompt_args.iter().map(|a| fill(a).replace("{prompt}", prompt)));
    }
    (program, args)
}

/// `.muster/ports.env` in the agent's worktree, for tools that read their ports from a file. A symlink the
/// repository carries there (or as `.muster`) is refused, never written through.
pub(super) fn write_ports_env(worktree: &std::path::Path, port_base: u16) -> Result<()> {
    let dir = crate::safefs::real_dir(worktree, ".muster")?;
    let target = dir.join("ports.env");
    if crate::safefs::is_symlink(&target) {
        anyhow::bail!("{} is a symbolic link in the repository: not written", target.display());
    }
    let text = format!("MUSTER_PORT_BASE={port_base}\nMUSTER_PORT_COUNT={}\n", ports::BLOCK);
    crate::safefs::write_file(&dir, "ports.env", text.as_bytes())
}

impl Supervisor {
    pub(super) fn start(&mut self, name: &str, resume: bool) {
        if self.shutting_down {
            return;
        }
        let Some(idx) = self.slots.iter().position(|s| s.spec.name == name) else {
            return;
        };
        if self.slots[idx].running.as_ref().is_some_and(|r| !r.exited) {
            return;
        }
        // Started (by its plan, the operator's R or W): no longer waiting for anything.
        if self.slots[idx].info.pending {
            self.slots[idx].info.pending = false;
            self.slots[idx].info.why.clear();
        }
        // What the crew file says now, once the agent is not running.
        if let Some(spec) = self.slots[idx].pending_spec.take() {
            self.slots[idx].info.kind = spec.kind.clone();
            self.slots[idx].spec = spec;
        }
        self.slots[idx].info.crew_file = match self.slots[idx].info.crew_file {
            CrewFileMark::Left => CrewFileMark::Left,
            _ => CrewFileMark::Same,
        };
        // An agent that never ran has no conversation to resume.
        let resume = resume && self.slots[idx].ran_before;
        match self.launch(idx, resume) {
            // A reviewer finds the work it reviews in its worktree.
            Ok(()) => self.hand_diffs(name, None),
            Err(e) => {
                let slot = &mut self.slots[idx];
                slot.info.state = AgentState::Error;
                slot.info.error = Some(format!("{e:#}"));
                self.emit(name);
                self.message(format!("{name}: {e:#}"), true);
            }
        }
        self.save();
    }

    pub(super) fn launch(&mut self, idx: usize, resume: bool) -> Result<()> {
        let root = self.cfg.root.clone();
        let spec = self.slots[idx].spec.clone();
        if let Some(p) = self.presets.get(&spec.kind).filter(|p| !p.ignore.is_empty()) {
            worktree::exclude(&root, &p.ignore)?;
        }
        let (cwd, branch, base) = if spec.worktree {
            let wt = worktree::ensure_worktree(&root, &spec.name, spec.base.as_deref())?;
            (wt.path, wt.branch, wt.base)
        } else {
            (root.clone(), String::new(), spec.base.clone().unwrap_or(worktree::current_branch(&root)?))
        };
        let taken: Vec<u16> =
            self.slots.iter().enumerate().filter(|(i, _)| *i != idx).map(|(_, s)| s.info.port_base).collect();
        let port_base = match self.slots[idx].info.port_base {
            0 => ports::port_base(&spec.name, &taken),
            p => p,
        };
        if spec.worktree {
            if let Err(e) = write_ports_env(&cwd, port_base) {
                // The ports are in the agent's environment too: this file is a convenience, never worth a write
                // outside the worktree.
                self.message(format!("{}: no .muster/ports.env: {e:#}", spec.name), true);
            }
        }
        let session = self.slots[idx].session.clone();
        let (program, mut args) =
            command_line(&self.with_note(&spec), &self.cfg.muster_exe, resume, session.as_deref());
        // The mailbox note (after its role's brief), in the CLI's system prompt where it has an option for one.
        if let Some(p) = self.presets.get(&spec.kind).filter(|p| !p.note_args.is_empty()) {
            let note = self.note_of(&spec);
            args.extend(p.note_args.iter().map(|a| a.replace("{note}", &note)));
        }
        // A read-only agent: its CLI's own read-only mode where its manifest has one.
        if spec.read_only {
            if let Some(ro) = self.presets.get(&spec.kind).and_then(|p| p.read_only.as_ref()) {
                args.extend(ro.args.iter().cloned());
            }
        }
        let tree = Arc::new(AgentTree::new());
        let token = hooks::new_token();
        let mut env = child_env(std::env::vars(), &spec, &self.run_dir, port_base);
        env.push(tree.mark());
        env.push(("MUSTER_AGENT_TOKEN".into(), token.clone()));
        // Hooks for this session only, so neither the worktree (nor Claude's trust dialog) nor the user's
        // configuration changes.
        // Whether this run has muster's hooks (a preset that declares them may go without).
        let hooked = match spec.hooks.as_deref() {
            Some("claude") => {
                args.splice(0..0, ["--settings".to_string(), hooks::claude_settings(&self.cfg.muster_exe)]);
                true
            }
            Some("codex") => {
                args.splice(0..0, hooks::codex_notify(&self.cfg.muster_exe));
                true
            }
            Some("gemini") => {
                let system = hooks::gemini_system_settings_path(&env);
                let dir =
                    crate::config::paths::state_dir().join("gemini").join(self.run_dir.file_name().unwrap_or_default());
                match hooks::gemini_system_settings(&dir, &spec.name, &self.cfg.muster_exe, Some(&system)) {
                    Ok(path) => {
                        env.retain(|(k, _)| k != "GEMINI_CLI_SYSTEM_SETTINGS_PATH");
                        env.push(("GEMINI_CLI_SYSTEM_SETTINGS_PATH".into(), path.to_string_lossy().into_owned()));
                        true
                    }
                    Err(e) => {
                        tracing::info!("{}: no Gemini hooks: {e:#}", spec.name);
                        false
                    }
                }
            }
            // Kilo Code is a fork of opencode: the same plugin, in the folder its own variable names.
            Some(cli @ ("opencode" | "kilo")) if !env.iter().any(|(k, _)| *k == hooks::config_dir_var(cli)) => {
                match hooks::opencode_config_dir(&self.run_dir, &self.cfg.muster_exe, cli) {
                    Ok(dir) => {
                        env.push((hooks::config_dir_var(cli).into(), dir.to_string_lossy().into_owned()));
                        true
                    }
                    Err(e) => {
                        tracing::warn!("{}: no opencode plugin: {e:#}", spec.name);
                        false
                    }
                }
            }
            _ => false,
        };
        // Its setup runs in its worktree first (its output on its screen); the agent starts only if it succeeds.
        let (program, args) = match spec.setup.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(setup) => {
                let mut wrapped = vec![
                    "-c".to_string(),
                    format!("{setup}\nstatus=$?; [ $status -eq 0 ] || {{ echo \"muster: setup failed ($status)\"; exit $status; }}\nexec \"$@\""),
                    "muster-setup".to_string(),
                    program,
                ];
                wrapped.extend(args);
                ("sh".to_string(), wrapped)
            }
            None => (program, args),
        };
        let (program, args) = match spec.guard {
            crate::config::owns::GuardMode::Enforce => self.sandboxed(&spec, &cwd, program, args, &mut env),
            crate::config::owns::GuardMode::Watch => (program, args),
        };
        self.generation += 1;
        let spawn_spec = SpawnSpec { program, args, cwd: cwd.clone(), env, rows: self.size.0, cols: self.size.1 };
        let running = agent::spawn(
            self.backend.as_ref(),
            SpawnArgs {
                name: spec.name.clone(),
                generation: self.generation,
                spec: spawn_spec,
                scrollback: self.cfg.scrollback,
                rules: self.presets.get(&spec.kind).map(|p| p.rules.clone()).unwrap_or_default(),
                version_regex: self.presets.get(&spec.kind).and_then(|p| p.version_regex.clone()),
                watched: self.watchers.values().any(|w| w.name.as_deref() == Some(spec.name.as_str())),
                palette: self.cfg.palette,
                foreground_busy: self.presets.get(&spec.kind).is_some_and(|p| p.foreground_busy),
                inert: self.presets.get(&spec.kind).map(|p| p.inert.clone()).unwrap_or_default(),
                boot_within: self
                    .presets
                    .get(&spec.kind)
                    .map_or(crate::config::preset::BOOT_TIMEOUT, |p| p.boot_timeout),
                reads_verdicts: !spec.reviews.is_empty(),
                // Its hooks say when the turn really starts and ends: without them nothing would end the hold.
                busy_on_task: self.presets.get(&spec.kind).and_then(|p| p.busy_on_task).filter(|_| hooked),
                idle_settle: self.presets.get(&spec.kind).map_or(crate::config::preset::IDLE_SETTLE, |p| p.idle_settle),
            },
            self.tx.clone(),
            self.sink.clone(),
        )?;
        if let Some(pid) = running.control.pid() {
            tree.adopt(pid);
        }
        let watched = self.watchers.values().any(|w| w.name.as_deref() == Some(spec.name.as_str()));
        // Its start is a task when it takes its prompt as arguments, or works on its own as it starts.
        let tasked = (!resume && self.with_note(&spec).prompt.is_some() && !spec.prompt_args.is_empty())
            || self.presets.get(&spec.kind).is_some_and(|p| p.works_unprompted);
        let slot = &mut self.slots[idx];
        slot.size = self.size;
        slot.sized_by = self.size_from;
        slot.watched = watched;
        slot.info.paused_by = tree.method().short().to_string();
        slot.hooked = hooked;
        slot.tree = Some(tree);
        slot.token = token;
        slot.detected = AgentState::Starting;
        if tasked {
            slot.task_given();
        }
        slot.running = Some(running);
        slot.ran_before = true;
        slot.stopping = false;
        slot.info.state = AgentState::Starting;
        slot.info.exit = None;
        slot.info.error = None;
        slot.info.branch = branch;
        slot.info.base = base;
        if slot.files.as_ref().is_none_or(|w| w.root() != cwd) {
            slot.files = WorktreeWatch::new(&cwd)
                .inspect_err(|e| tracing::warn!("{}: no file watcher, checkpoints scan every file: {e:#}", spec.name))
                .ok();
        }
        slot.info.worktree = cwd;
        slot.info.port_base = port_base;
        slot.info.pid = slot.running.as_ref().and_then(|r| r.control.pid());
        self.guard_agent(&spec.name);
        self.emit(&spec.name);
        self.request_diffstat(&spec.name, true);
        self.mail_on_start(&spec.name);
        Ok(())
    }

    /// `guard = "enforce"`: the command run through `muster sandbox`, which lets it write only beneath its
    /// worktree, its branch's git metadata, temp folders, muster's own folders and its CLI's. Without Landlock in
    /// the kernel the agent runs as it is, watched only, and the operator is told.
    fn sandboxed(
        &self,
        spec: &AgentSpec,
        cwd: &std::path::Path,
        program: String,
        args: Vec<String>,
        env: &mut Vec<(String, String)>,
    ) -> (String, Vec<String>) {
        if crate::guard::sandbox::kernel_abi().is_none() {
            self.message(
                format!(
                    "{}: guard = \"enforce\" needs Landlock, which this kernel lacks: it is watched only",
                    spec.name
                ),
                true,
            );
            return (program, args);
        }
        let repo = git2::Repository::open(cwd).ok();
        let (common, dir) = match &repo {
            Some(r) => (Some(r.commondir().to_path_buf()), Some(r.path().to_path_buf())),
            None => (None, None),
        };
        // Its own temp folder, beside the crew's sockets: the one place for temp files whatever holds the repository.
        let tmp = self.run_dir.join("tmp").join(&spec.name);
        if let Err(e) = std::fs::create_dir_all(&tmp) {
            tracing::warn!("{}: no temp folder {}: {e}", spec.name, tmp.display());
        }
        env.retain(|(k, _)| k != "TMPDIR");
        env.push(("TMPDIR".into(), tmp.to_string_lossy().into_owned()));
        let mut shared = crate::guard::sandbox::common_places();
        shared.extend(spec.writes.iter().cloned());
        shared.push(crate::config::paths::state_dir().to_string_lossy().into_owned());
        let root = &self.cfg.root;
        let mut writable = crate::guard::sandbox::writable(root, cwd, common.as_deref(), dir.as_deref(), &shared);
        if spec.read_only {
            // It may read its worktree, not change it (nor commit into it).
            writable.retain(|w| w != cwd && dir.as_deref() != Some(w.as_path()));
        }
        writable.push(tmp);
        crate::guard::sandbox::make_missing_folders(&writable);
        let mut wrapped = vec!["sandbox".to_string()];
        for w in writable {
            wrapped.push(format!("--write={}", w.display()));
        }
        wrapped.push("--".into());
        wrapped.push(program);
        wrapped.extend(args);
        (self.cfg.muster_exe.to_string_lossy().into_owned(), wrapped)
    }

    /// The spec with the mailbox note before its first prompt, for CLIs without a system-prompt option.
    pub(super) fn with_note(&self, spec: &AgentSpec) -> AgentSpec {
        let mut spec = spec.clone();
        // A shell or a command of one's own takes its prompt as it is: typed notes would be run as commands.
        if self.presets.get(&spec.kind).is_some_and(|p| p.tier == crate::config::preset::Tier::Generic) {
            return spec;
        }
        let system_prompt = self.presets.get(&spec.kind).is_some_and(|p| !p.note_args.is_empty());
        if let (Some(p), false) = (&spec.prompt, system_prompt) {
            spec.prompt = Some(format!("{}\n\n{p}", self.note_of(&spec)));
        } else if let (None, false, Some(brief)) = (&spec.prompt, system_prompt, &spec.brief) {
            // Its role's brief is its first message when the CLI has no system prompt to take it.
            spec.prompt = Some(brief.clone());
        }
        spec
    }

    /// What an agent is told about itself: its role's brief, then how the crew's mail works.
    fn note_of(&self, spec: &AgentSpec) -> String {
        let muster = muster_command(&self.cfg.muster_exe);
        let mut note = crate::mailbox::agent_note(&spec.name, &muster);
        if !spec.reviews.is_empty() {
            note.push_str(&format!(
                " You review the work of {}: each one's diff is in `.muster/review/<name>.diff` in your folder, \
                 renewed after each of its turns. Give your verdict with `{muster} review <name> --approve`, or \
                 `--blocker TEXT` for each thing that must change (`--debt TEXT` and `--skip TEXT` are recorded \
                 and block nothing).",
                spec.reviews.join(", ")
            ));
        }
        match spec.brief.as_deref().filter(|b| !b.trim().is_empty()) {
            Some(brief) => format!("{brief}\n\n{note}"),
            None => note,
        }
    }

    pub(super) fn new_slot(&self, spec: AgentSpec, previous: Option<&SavedAgent>) -> Slot {
        let root = &self.cfg.root;
        let info = AgentInfo {
            name: spec.name.clone(),
            kind: spec.kind.clone(),
            branch: previous.map(|p| p.branch.clone()).unwrap_or_else(|| {
                if spec.worktree {
                    worktree::branch_name(&spec.name)
                } else {
                    String::new()
                }
            }),
            base: previous.map(|p| p.base.clone()).or_else(|| spec.base.clone()).unwrap_or_default(),
            worktree: previous.map(|p| p.worktree.clone()).unwrap_or_else(|| {
                if spec.worktree {
                    worktree::worktree_path(root, &spec.name)
                } else {
                    root.clone()
                }
            }),
            // Starting only once it starts: a crew served without a workbench has not started it.
            state: AgentState::Stopped,
            exit: previous.and_then(|p| p.exit),
            last_output_ms: None,
            title: None,
            port_base: previous.map(|p| p.port_base).unwrap_or(0),
            pid: None,
            diffstat: Default::default(),
            error: None,
            checkpoints: 0,
            rolled_back: false,
            why: String::new(),
            mail: Default::default(),
            crew_file: Default::default(),
            paused_by: String::new(),
            gate: Default::default(),
            gates_stopped: false,
            findings: 0,
            wave: spec.wave,
            pending: false,
            review: None,
            parent: spec.parent.clone(),
            // Its latest result is kept on disk: a restarted server knows it is done.
            result: crate::engine::results::latest(root, &spec.name).map(|r| r.mark(true)),
        };
        Slot {
            pending_spec: None,
            prompt_pending: spec.prompt.is_some() && spec.prompt_args.is_empty(),
            spec,
            info,
            running: None,
            ran_before: previous.is_some_and(|p| p.ran),
            stopping: false,
            restart_after_exit: false,
            last_diff_request: None,
            last_periodic: None,
            files: None,
            diffed_at_change: None,
            tree: None,
            hooked: false,
            detected: AgentState::Starting,
            session: previous.and_then(|p| p.session.clone()),
            token: String::new(),
            size: self.size,
            sized_by: None,
            watched: false,
            mail: Default::default(),
            turns: 0,
            gate_hold: None,
            detected_why: String::new(),
            turn_end_taken: false,
            turn_jobs: Default::default(),
            task_turn: None,
            newest_checkpoint: 0,
            stall: Default::default(),
            done: previous.is_some_and(|p| p.done),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crew(text: &str) -> crate::config::crew::Crew {
        crate::config::crew::parse_crew(std::path::Path::new("c.toml"), text, &preset::builtin(), &Default::default())
            .unwrap()
    }

    fn spec() -> AgentSpec {
        crew("[[agent]]\nname='a'\nkind='claude'\nprompt='fix it'\nenv={X='1'}\n").agents[0].clone()
    }

    #[test]
    fn only_listed_variables_are_inherited_when_the_crew_says_so() {
        let parent = vec![
            ("PATH".to_string(), "/bin".to_string()),
            ("LC_ALL".to_string(), "C".to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), "s3cr3t".to_string()),
            ("GITHUB_TOKEN".to_string(), "ghp".to_string()),
        ];
        let listed =
            crew("[defaults]\ninherit_env = ['PATH', 'LC_*']\n[[agent]]\nname='a'\nkind='shell'\nenv={X='1'}\n").agents
                [0]
            .clone();
        let env = child_env(parent.clone().into_iter(), &listed, std::path::Path::new("/run/m"), 20040);
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert!(names.contains(&"PATH") && names.contains(&"LC_ALL") && names.contains(&"X"), "{names:?}");
        assert!(!names.contains(&"AWS_SECRET_ACCESS_KEY") && !names.contains(&"GITHUB_TOKEN"), "{names:?}");
        assert!(names.contains(&"MUSTER_AGENT") && names.contains(&"TERM"));
        // Unset, everything is inherited (as shells and tmux do).
        let env = child_env(parent.into_iter(), &spec(), std::path::Path::new("/run/m"), 20040);
        assert!(env.iter().any(|(k, _)| k == "GITHUB_TOKEN"));
    }

    #[test]
    fn child_environment_is_clean() {
        let parent = vec![
            ("PATH".to_string(), "/bin".to_string()),
            ("TMUX".to_string(), "/tmp/t,1,0".to_string()),
            ("ZELLIJ".to_string(), "0".to_string()),
            ("TERM".to_string(), "screen".to_string()),
            ("MUSTER_AGENT".to_string(), "outer".to_string()),
        ];
        let env = child_env(parent.into_iter(), &spec(), std::path::Path::new("/run/m"), 20040);
        let get = |k: &str| env.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/bin"));
        assert_eq!(get("TMUX"), None);
        assert_eq!(get("ZELLIJ"), None);
        assert_eq!(get("TERM"), Some("xterm-256color"));
        assert_eq!(get("COLORTERM"), Some("truecolor"));
        assert_eq!(get("MUSTER_AGENT"), Some("a"));
        assert_eq!(get("MUSTER_RUN_DIR"), Some("/run/m"));
        assert_eq!(get("MUSTER_PORT_BASE"), Some("20040"));
        assert_eq!(get("X"), Some("1"));
    }

    #[test]
    fn command_line_fills_prompt_and_resume() {
        let s = spec();
        let exe = std::path::Path::new("/bin/muster");
        assert_eq!(command_line(&s, exe, false, None), ("claude".to_string(), vec!["fix it".to_string()]));
        assert_eq!(command_line(&s, exe, true, None), ("claude".to_string(), vec!["--continue".to_string()]));
        // With the CLI's own session id, a resume continues exactly that conversation.
        assert_eq!(
            command_line(&s, exe, true, Some("5e1f")),
            ("claude".to_string(), vec!["--resume".to_string(), "5e1f".to_string()])
        );
        let mut demo = s.clone();
        demo.command = "{muster}".into();
        demo.args = vec!["demo-agent".into()];
        demo.prompt_args = vec![];
        assert_eq!(command_line(&demo, exe, false, None), ("/bin/muster".to_string(), vec!["demo-agent".to_string()]));
    }
}
