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

/// Create a repository with a first commit and a demo crew file in a fresh folder under `parent`.
pub fn create_repo(parent: &Path, agents: usize) -> Result<PathBuf> {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = parent.join(format!("muster-demo-{}-{}", std::process::id(), stamp % 1_000_000_000));
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("README.md"), "# demo project\n\nA throwaway repository for `muster demo`.\n")?;
    std::fs::write(
        dir.join("src/lib.rs"),
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\npub fn greet(name: &str) -> String {\n    format!(\"hello {name}\")\n}\n",
    )?;
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
    std::fs::write(dir.join(".muster/crew.toml"), crew_toml(agents))?;
    Ok(dir.canonicalize().unwrap_or(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_repo_is_a_valid_crew() {
        let parent = tempfile::tempdir().unwrap();
        let dir = create_repo(parent.path(), 10).unwrap();
        let text = std::fs::read_to_string(dir.join(".muster/crew.toml")).unwrap();
        let crew = crate::config::crew::parse_crew(
            Path::new("crew.toml"),
            &text,
            &crate::config::preset::builtin(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(crew.agents.len(), 10);
        assert_eq!(crate::git::worktree::current_branch(&dir).unwrap(), "main");
    }
}
