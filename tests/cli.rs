//! One-shot commands as scripts use them.

use std::process::Command;

/// `muster status | head -1` ends quietly when the reader goes away, as `cat` does.
#[test]
fn status_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    Command::new("git").args(["init", "-q"]).current_dir(repo).output().unwrap();
    // Many agents, so the output is larger than a pipe holds and a write meets the closed pipe.
    let agents: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                r#"{{"spec":{{"name":"agent{i}","kind":"shell","command":"sh","args":[],"resume_args":[],"prompt_args":[],"env":{{}},"prompt":null,"base":null,"worktree":true,"enter_delay_ms":0,"hooks":null}},"branch":"muster/agent{i}","base":"main","worktree":"/x","state":"stopped","exit":null,"ran":true,"port_base":20000}}"#
            )
        })
        .collect();
    std::fs::create_dir_all(repo.join(".muster")).unwrap();
    std::fs::write(repo.join(".muster/state.json"), format!(r#"{{"version":1,"agents":[{}]}}"#, agents.join(",")))
        .unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("'{}' status | head -1", env!("CARGO_BIN_EXE_muster")))
        .current_dir(repo)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("agent0 "), "{stdout}");
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
}
