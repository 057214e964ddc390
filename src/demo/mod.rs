//! The demo crew: a throwaway repository and agents that behave like coding agents without any network.

pub mod agent;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::{Repository, RepositoryInitOptions, Signature};

const NAMES: [&str; 8] = ["planner", "api", "docs", "tests", "ui", "infra", "review", "perf"];

/// A name for demo agent `i`, unique for any count.
pub fn agent_name(i: usize) -> String {
    match NAMES.get(i) {
        Some(n) => n.to_string(),
        None => format!("agent{i}"),
    }
}

pub fn crew_toml(agents: usize) -> String {
    let mut s =
        String::from("# The demo crew: stand-in agents that think, edit files in their worktrees and ask questions.\n");
    for i in 0..agents {
        s.push_str(&format!("\n[[agent]]\nname = \"{}\"\nkind = \"demo\"\n", agent_name(i)));
    }
    s
}

/// The demo crew's test suite, run as its gate after every turn: each plan in `demo/` must be complete.
pub const CHECK_SH: &str = r#"#!/bin/sh
# The demo crew's test suite (its gate in .muster/crew.toml): every plan in demo/ must be complete.
status=0
for f in demo/*.txt; do
  [ -f "$f" ] || continue
  name=$(basename "$f" .txt)
  if grep -q FIXME "$f"; then
    echo "test ${name}::plan_is_complete ... FAILED"
    grep -n FIXME "$f" | sed 's/^/    /'
    status=1
  else
    echo "test ${name}::plan_is_complete ... ok"
  fi
done
exit $status
"#;

/// The gate of `muster demo`'s crew.
pub const GATE_TOML: &str =
    "\n# Run after every turn that changed files; a failure goes back to the agent (see `muster gate`).\n\
                             [[gate]]\nname = \"test\"\nrun = \"sh check.sh\"\nattempts = 3\n";

/// `muster demo --waves`: the crew as a plan — a planner, then api and docs side by side, then a read-only
/// reviewer — each wave starting once the one before is green (idle, its gate passing).
pub const WAVES_TOML: &str = r#"# The demo crew as a plan (`muster crew plan` prints it): each wave starts once the one before is done.
[[role]]
name = "reviewer"
kind = "demo"
brief = "You review the others' work: read it, change nothing."
read_only = true
advance = "idle"

[[agent]]
name = "planner"
kind = "demo"
wave = 1

[[agent]]
name = "api"
kind = "demo"
wave = 2

[[agent]]
name = "docs"
kind = "demo"
wave = 2

[[agent]]
name = "review"
role = "reviewer"
wave = 3
gates = []
"#;

/// `muster demo --waves`'s repository: the demo project, its gate, and the crew as waves.
pub fn create_demo_waves(parent: &Path) -> Result<PathBuf> {
    let dir = create_repo_with(parent, 0, true)?;
    std::fs::write(dir.join(".muster/crew.toml"), format!("{WAVES_TOML}{GATE_TOML}"))?;
    Ok(dir)
}

/// Create a repository with a first commit and a demo crew file in a fresh folder under `parent`.
pub fn create_repo(parent: &Path, agents: usize) -> Result<PathBuf> {
    create_repo_with(parent, agents, false)
}

/// `muster demo`'s repository: the demo crew with its gate (a test suite one agent's first plan fails).
pub fn create_demo(parent: &Path, agents: usize) -> Result<PathBuf> {
    create_repo_with(parent, agents, true)
}

fn create_repo_with(parent: &Path, agents: usize, gate: bool) -> Result<PathBuf> {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = parent.join(format!("muster-demo-{}-{}", std::process::id(), stamp % 1_000_000_000));
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("README.md"), "# demo project\n\nA throwaway repository for `muster demo`.\n")?;
    std::fs::write(
        dir.join("src/lib.rs"),
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\npub fn greet(name: &str) -> String {\n    format!(\"hello {name}\")\n}\n",
    )?;
    if gate {
        std::fs::write(dir.join("check.sh"), CHECK_SH)?;
    }
    let mut opts = RepositoryInitOptions::new();
    opts.initial_head("main");
    let repo = Repository::init_opts(&dir, &opts).context("git init")?;
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = Signature::now("muster demo", "demo@muster.invalid")?;
    repo.commit(Some("HEAD"), &sig, &sig, "demo project", &tree, &[])?;
    std::fs::create_dir_all(dir.join(".muster"))?;
    let mut crew = crew_toml(agents);
    if gate {
        crew.push_str(GATE_TOML);
    }
    std::fs::write(dir.join(".muster/crew.toml"), crew)?;
    Ok(dir.canonicalize().unwrap_or(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The crew file a demo repository was given, parsed.
    fn crew_of(dir: &Path) -> crate::config::crew::Crew {
        let text = std::fs::read_to_string(dir.join(".muster/crew.toml")).unwrap();
        let presets = crate::config::preset::builtin();
        crate::config::crew::parse_crew(Path::new("crew.toml"), &text, &presets, &Default::default()).unwrap()
    }

    #[test]
    fn demo_repo_is_a_valid_crew() {
        let parent = tempfile::tempdir().unwrap();
        let dir = create_demo(parent.path(), 10).unwrap();
        let crew = crew_of(&dir);
        assert_eq!(crew.agents.len(), 10);
        assert_eq!(crew.gates.len(), 1);
        // Its check passes on the repository as committed, and fails on a plan with a FIXME.
        let check = |dir: &Path| std::process::Command::new("sh").arg("check.sh").current_dir(dir).output().unwrap();
        assert!(check(&dir).status.success());
        std::fs::create_dir_all(dir.join("demo")).unwrap();
        std::fs::write(dir.join("demo/api.txt"), "plan\n- FIXME: greet() has no test yet\n").unwrap();
        let out = check(&dir);
        assert_eq!(out.status.code(), Some(1));
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(crate::gate::failures::failing(&text, crate::config::gate::Parse::Auto), ["api::plan_is_complete"]);
        assert_eq!(crate::git::worktree::current_branch(&dir).unwrap(), "main");
    }

    #[test]
    fn the_waves_demo_is_a_plan() {
        let parent = tempfile::tempdir().unwrap();
        let crew = crew_of(&create_demo_waves(parent.path()).unwrap());
        let after: Vec<(&str, Vec<String>)> = crew.agents.iter().map(|a| (a.name.as_str(), a.after.clone())).collect();
        assert_eq!(after[0], ("planner", vec![]));
        assert_eq!(after[1], ("api", vec!["planner".to_string()]));
        assert_eq!(after[3].1, ["planner", "api", "docs"]);
        assert!(crew.agents[3].read_only && crew.agents[3].brief.is_some());
    }
}
