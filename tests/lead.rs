//! Agents that drive muster (issue #31), on real PTYs: a lead (a shell, so each line steered into it is a command
//! it runs as itself) spawns children, waits for the first of them, reads them, takes their results and hears of
//! each by mail only once it is back at its prompt; a child cannot act on its sibling or spawn past the depth;
//! a forged identity is refused; the event log numbers everything without a gap.

mod common;

use std::time::{Duration, Instant};

use common::Rig;
use muster::engine::{AgentState, Command};

const M: &str = env!("CARGO_BIN_EXE_muster");

fn read(rig: &Rig, file: &str) -> String {
    std::fs::read_to_string(rig.root.join(".muster/worktrees/lead").join(file)).unwrap_or_default()
}

/// Poll a file of the lead's worktree (written by the commands it runs) until `ok` holds.
fn until_file(rig: &Rig, file: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let text = read(rig, file);
        if ok(&text) {
            return text;
        }
        if Instant::now() >= end {
            let (_, c1) = rig.muster(&["read", "c1", "--lines", "20"]);
            panic!("{what}: {file} holds {text:?}; messages: {:?}; c1 reads:\n{c1}", rig.messages);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_lead_spawns_children_waits_for_them_reads_them_and_hears_of_each_result_at_its_prompt() {
    let crew = "[defaults]\nmax_depth = 1\nmax_children = 3\n\
        [[agent]]\nname = \"lead\"\nkind = \"shell\"\n";
    let mut rig = Rig::new(crew, "lead");
    rig.wait_for("lead at its prompt", |r| r.state("lead") == Some(AgentState::Idle));
    // Each child is a shell whose kickoff is a command: it works until the lead's next turn says go (so every
    // completion comes while the lead is busy), then sets its result as itself.
    let go = rig.root.join("go");
    let spawn = format!(
        "for c in c1 c2 c3; do {M} spawn $c --kind shell --prompt \"while [ ! -e {go} ]; do sleep 0.05; done; \
         {M} result set --summary '$c did it'\" >> spawned.txt 2>> spawn.err; done; \
         {M} spawn c4 --kind shell > over.txt 2>&1; echo $? > over.code",
        go = go.display()
    );
    rig.engine.send(Command::Steer { name: "lead".into(), text: spawn, force: true });
    let spawned = until_file(&rig, "over.code", "three spawns, then one too many", |t| !t.is_empty());
    let spawned_json = read(&rig, "spawned.txt");
    let names: Vec<String> = spawned_json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["c1", "c2", "c3"], "{spawned_json} {}", read(&rig, "spawn.err"));
    assert_eq!(spawned.trim(), "1", "a fourth child is past max_children: {}", read(&rig, "over.txt"));
    assert!(read(&rig, "over.txt").contains("max_children"), "{}", read(&rig, "over.txt"));
    rig.wait_for("the children, under their parent", |r| {
        ["c1", "c2", "c3"].iter().all(|c| r.agents.get(*c).is_some_and(|a| a.parent.as_deref() == Some("lead")))
    });
    // The lead waits (busy) for the first, then for all of them to be done, then ends its turn: the completion
    // mails come to it after that, never typed in mid-turn.
    let wait = format!(
        "touch {go}; {M} wait c1 c2 c3 --until done --any > first.txt; {M} wait c1 c2 c3 --until done; sleep 1; \
         date +%s%3N > turn_end.txt",
        go = go.display()
    );
    rig.engine.send(Command::Steer { name: "lead".into(), text: wait, force: true });
    let first = until_file(&rig, "first.txt", "the first done child", |t| !t.is_empty());
    assert!(["c1", "c2", "c3"].contains(&first.trim()), "{first}");
    let turn_end: u64 =
        until_file(&rig, "turn_end.txt", "the lead's turn end", |t| !t.is_empty()).trim().parse().unwrap();
    rig.wait_for("three completion mails delivered to the lead", |r| {
        let to_lead: Vec<_> = r.mail.values().filter(|m| m.to == ["lead"]).collect();
        to_lead.len() == 3
            && to_lead.iter().all(|m| {
                m.receipt("lead").is_some_and(|x| {
                    use muster::protocol::mail::ReceiptState as S;
                    matches!(x.state, S::Delivered | S::Seen | S::Acked)
                })
            })
    });
    for m in rig.mail.values().filter(|m| m.to == ["lead"]) {
        assert!(m.body.contains("set its result 1 (done)"), "{}", m.body);
        let delivered = m.receipt("lead").unwrap().at_ms;
        assert!(
            delivered >= turn_end,
            "mail #{} went in at {delivered}, before the lead's turn ended at {turn_end}",
            m.id
        );
    }
    for c in ["c1", "c2", "c3"] {
        assert!(rig.agents[c].is_done(), "{c}: {:?}", rig.agents[c]);
        let (ok, out) = rig.muster(&["result", "get", c]);
        assert!(ok && out.contains(&format!("{c} result 1 (done)")) && out.contains(&format!("{c} did it")), "{out}");
        // Every result names a checkpoint: the one taken of its work as it set it.
        let (ok, json) = rig.muster(&["result", "get", c, "--json"]);
        let kept: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        assert!(ok && kept["checkpoint"].as_u64().unwrap() >= 1, "{json}");
    }
    // Reading a child: its last lines hold its kickoff's command.
    let (ok, out) = rig.muster(&["read", "c2", "--lines", "30"]);
    assert!(ok && out.contains("result set --summary"), "{out}");
    // A child may not stop its sibling, nor spawn past max_depth; its parent may stop it.
    rig.engine.send(Command::Steer {
        name: "c1".into(),
        text: format!(
            "{M} stop c2 2> stop.err; echo $? > stop.code; {M} spawn g1 --kind shell 2> deep.err; echo $? > deep.code"
        ),
        force: true,
    });
    // A new task (this steer) and its result is of the work before: c1 is no longer done, the result kept.
    rig.wait_for("c1 at work on its new task, not done", |r| {
        r.agents["c1"].result.as_ref().is_some_and(|m| !m.current)
    });
    assert!(!rig.agents["c1"].is_done());
    let c1 = |f: &str| std::fs::read_to_string(rig.root.join(".muster/worktrees/c1").join(f)).unwrap_or_default();
    let end = Instant::now() + Duration::from_secs(30);
    while c1("deep.code").is_empty() {
        assert!(Instant::now() < end, "c1's commands did not run: {:?}", rig.messages);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c1("stop.code").trim(), "1", "{}", c1("stop.err"));
    assert!(c1("stop.err").contains("c2 is not one of them"), "{}", c1("stop.err"));
    assert_eq!(c1("deep.code").trim(), "1", "{}", c1("deep.err"));
    assert!(c1("deep.err").contains("max_depth"), "{}", c1("deep.err"));
    // A forged identity: the lead's name without its secret.
    let run_dir = muster::ipc::run_dir(&rig.root).unwrap();
    let out = std::process::Command::new(M)
        .args(["stop", "c1"])
        .current_dir(&rig.root)
        .env("MUSTER_AGENT", "lead")
        .env("MUSTER_AGENT_TOKEN", "not-the-secret")
        .env("MUSTER_RUN_DIR", &run_dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("cannot act as lead"), "{said}");
    rig.engine.send(Command::Steer {
        name: "lead".into(),
        text: format!("{M} stop c3; echo $? > stopped.code"),
        force: true,
    });
    assert_eq!(until_file(&rig, "stopped.code", "the lead stops its child", |t| !t.is_empty()).trim(), "0");
    rig.wait_for("c3 stopped", |r| r.agents.get("c3").is_some_and(|a| !a.state.is_running()));
    // The event log: spawns, results and states, numbered from 1 without a gap.
    let (ok, out) = rig.muster(&["events"]);
    assert!(ok, "{out}");
    let events: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let kind = |k: &str| events.iter().filter(|e| e["kind"] == k).count();
    assert_eq!((kind("spawn"), kind("result")), (3, 3), "{out}");
    assert!(kind("state") >= 6, "{out}");
    let (ok, tail) = rig.muster(&[
        "events",
        "--since",
        &(seqs.len() as u64 - 2).to_string(),
        "--kinds",
        "state,result,spawn,gate,mail,finding",
    ]);
    assert!(ok && tail.lines().count() == 2, "{tail}");
    // Hostile asks: the largest sequence number (once a panic that ended the engine), a path for a name.
    let (ok, none) = rig.muster(&["events", "--since", &u64::MAX.to_string()]);
    assert!(ok && none.is_empty(), "{none}");
    let (ok, out) = rig.muster(&["result", "get", "../../etc"]);
    assert!(!ok && out.contains("no agent"), "{out}");
    let (ok, screen) = rig.muster(&["read", "lead", "--screen"]);
    assert!(ok && screen.contains("stopped.code"), "the engine still answers: {screen}");
}
