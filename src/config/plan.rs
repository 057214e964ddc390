//! Roles and waves in the crew file: `[[role]]` bundles of agent fields an agent takes with `role = "…"`, and the
//! order agents start in — `wave = N` (after every agent of the waves before) or `after = [...]`, each waiting until
//! what it follows is *done* (`advance`: green, idle or merged), a wave with `approve = true` also for the operator.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::ConfigError;

/// When an agent counts as done, for the agents that follow it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Advance {
    /// Idle, with every gate passing on its newest checkpoint (idle when it has no gate).
    #[default]
    Green,
    /// Back at its prompt.
    Idle,
    /// Its work merged into its base (the next wave branches from a base that holds it).
    Merged,
}

impl Advance {
    pub fn word(self) -> &'static str {
        match self {
            Advance::Green => "green",
            Advance::Idle => "idle",
            Advance::Merged => "merged",
        }
    }
}

/// A `[[role]]`: fields an agent with `role = "name"` takes unless it sets them itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub name: Spanned<String>,
    pub kind: Option<Spanned<String>>,
    pub command: Option<String>,
    pub args: Option<Vec<String>>,
    /// The role's instructions: the CLI's system prompt where it has one, else before the first prompt.
    pub brief: Option<String>,
    pub owns: Option<Spanned<Vec<String>>>,
    pub gates: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub read_only: Option<bool>,
    pub setup: Option<String>,
    pub advance: Option<Advance>,
    pub reviews: Option<Spanned<Vec<String>>>,
}

/// A `[[wave]]`: what holds for every agent of wave `wave`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWave {
    pub wave: Spanned<u32>,
    /// The wave starts only once the operator says so (its agents' dependencies done or not).
    #[serde(default)]
    pub approve: bool,
    /// When its agents count as done (an agent's own `advance` wins).
    pub advance: Option<Advance>,
}

/// An agent's place in the plan, as the crew file says it (before waves become dependencies).
#[derive(Debug, Clone)]
pub struct Placed {
    pub name: String,
    pub at: usize,
    pub wave: Option<u32>,
    pub after: Option<Spanned<Vec<String>>>,
}

/// Every agent's dependencies: its `after`, and every agent of the waves before its own. An unknown name, an agent
/// after itself or a cycle is an error at the `after` (or `wave`) that closes it.
pub fn dependencies(file: &Path, text: &str, agents: &[Placed]) -> Result<Vec<Vec<String>>, ConfigError> {
    let names: BTreeSet<&str> = agents.iter().map(|a| a.name.as_str()).collect();
    let mut deps = Vec::new();
    for a in agents {
        let mut d: Vec<String> = Vec::new();
        if let Some(w) = a.wave {
            d.extend(agents.iter().filter(|o| o.wave.is_some_and(|ow| ow < w)).map(|o| o.name.clone()));
        }
        if let Some(after) = &a.after {
            for n in after.get_ref() {
                let at = after.span().start;
                if n == &a.name {
                    return Err(ConfigError::at(file, text, at, format!("key `after`: `{n}` cannot wait for itself")));
                }
                if !names.contains(n.as_str()) {
                    let known: Vec<&str> = names.iter().copied().collect();
                    return Err(ConfigError::at(
                        file,
                        text,
                        at,
                        format!("key `after`: no agent `{n}` in this crew (agents: {})", known.join(", ")),
                    ));
                }
                if !d.contains(n) {
                    d.push(n.clone());
                }
            }
        }
        deps.push(d);
    }
    if let Some(cycle) = find_cycle(agents, &deps) {
        let a = &agents[cycle[0]];
        let at = a.after.as_ref().map_or(a.at, |s| s.span().start);
        let path: Vec<&str> =
            cycle.iter().chain(std::iter::once(&cycle[0])).map(|i| agents[*i].name.as_str()).collect();
        return Err(ConfigError::at(
            file,
            text,
            at,
            format!("key `after`: the agents wait for each other in a circle: {}", path.join(" → ")),
        ));
    }
    Ok(deps)
}

/// A cycle of the dependency graph (agent indices, each waiting for the next), if there is one.
fn find_cycle(agents: &[Placed], deps: &[Vec<String>]) -> Option<Vec<usize>> {
    let index: BTreeMap<&str, usize> = agents.iter().enumerate().map(|(i, a)| (a.name.as_str(), i)).collect();
    // 0 unseen, 1 on the path, 2 done.
    let mut mark = vec![0u8; agents.len()];
    let mut path = Vec::new();
    fn visit(
        i: usize,
        deps: &[Vec<String>],
        index: &BTreeMap<&str, usize>,
        mark: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        mark[i] = 1;
        path.push(i);
        for d in &deps[i] {
            let j = index[d.as_str()];
            if mark[j] == 1 {
                let from = path.iter().position(|p| *p == j).unwrap_or(0);
                return Some(path[from..].to_vec());
            }
            if mark[j] == 0 {
                if let Some(c) = visit(j, deps, index, mark, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        mark[i] = 2;
        None
    }
    (0..agents.len()).find_map(|i| if mark[i] == 0 { visit(i, deps, &index, &mut mark, &mut path) } else { None })
}

/// What the scheduler knows of one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub after: Vec<String>,
    /// Its wave waits for the operator's word.
    pub approve: bool,
    pub wave: Option<u32>,
}

/// Where an agent is in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Not started: waiting for what it follows.
    Pending,
    Started,
    /// Started, and done as its `advance` says (done stays done).
    Done,
}

/// The pending agents to start now: every one whose dependencies are all done, and, where its wave asks for the
/// operator's word, that word given. In the crew file's order, so the same state starts the same agents.
pub fn ready(nodes: &[Node], progress: &BTreeMap<String, Progress>, approved: &BTreeSet<u32>) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| progress.get(&n.name) == Some(&Progress::Pending))
        .filter(|n| n.after.iter().all(|d| progress.get(d) == Some(&Progress::Done)))
        .filter(|n| !n.approve || n.wave.is_some_and(|w| approved.contains(&w)))
        .map(|n| n.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn placed(list: &[(&str, Option<u32>, &[&str])]) -> Vec<Placed> {
        list.iter()
            .map(|(n, w, after)| Placed {
                name: n.to_string(),
                at: 0,
                wave: *w,
                after: (!after.is_empty())
                    .then(|| Spanned::new(0..1, after.iter().map(|s| s.to_string()).collect::<Vec<_>>())),
            })
            .collect()
    }

    #[test]
    fn waves_become_dependencies_and_cycles_are_refused() {
        let p =
            placed(&[("plan", Some(1), &[]), ("api", Some(2), &[]), ("docs", Some(2), &[]), ("rev", None, &["api"])]);
        let d = dependencies(Path::new("c.toml"), "x", &p).unwrap();
        assert_eq!(d, vec![vec![], vec!["plan".to_string()], vec!["plan".to_string()], vec!["api".to_string()]]);
        let p = placed(&[("a", None, &["b"]), ("b", None, &["c"]), ("c", None, &["a"])]);
        let e = dependencies(Path::new("c.toml"), "x", &p).unwrap_err();
        assert!(e.message.contains("circle: a → b → c → a"), "{e}");
        let p = placed(&[("a", None, &["a"])]);
        assert!(dependencies(Path::new("c.toml"), "x", &p).unwrap_err().message.contains("itself"));
        let p = placed(&[("a", None, &["zed"])]);
        assert!(dependencies(Path::new("c.toml"), "x", &p).unwrap_err().message.contains("no agent `zed`"));
        // A wave after a later wave's agent: a circle too.
        let p = placed(&[("a", Some(1), &["b"]), ("b", Some(2), &[])]);
        assert!(dependencies(Path::new("c.toml"), "x", &p).unwrap_err().message.contains("circle"));
    }

    #[test]
    fn an_approved_wave_starts_and_an_unapproved_one_waits() {
        let nodes = vec![
            Node { name: "a".into(), after: vec![], approve: false, wave: Some(1) },
            Node { name: "b".into(), after: vec!["a".into()], approve: true, wave: Some(2) },
        ];
        let mut progress = BTreeMap::from([("a".to_string(), Progress::Done), ("b".to_string(), Progress::Pending)]);
        assert!(ready(&nodes, &progress, &BTreeSet::new()).is_empty());
        assert_eq!(ready(&nodes, &progress, &BTreeSet::from([2])), ["b"]);
        progress.insert("a".into(), Progress::Started);
        assert!(ready(&nodes, &progress, &BTreeSet::from([2])).is_empty());
    }

    /// A random acyclic crew (each agent may follow earlier ones) run to the end in a random order of events:
    /// nothing starts before its dependencies are done, everything starts once they are, and the same events give
    /// the same order.
    fn run(n: usize, edges: &[(usize, usize)], finish_order: &[usize]) -> Vec<String> {
        let nodes: Vec<Node> = (0..n)
            .map(|i| Node {
                name: format!("a{i}"),
                after: edges.iter().filter(|(to, _)| *to == i).map(|(_, from)| format!("a{from}")).collect(),
                approve: false,
                wave: None,
            })
            .collect();
        let mut progress: BTreeMap<String, Progress> =
            nodes.iter().map(|n| (n.name.clone(), Progress::Pending)).collect();
        let mut started = Vec::new();
        let mut order = finish_order.iter().cycle();
        for _ in 0..(n * n * 4 + 4) {
            for s in ready(&nodes, &progress, &BTreeSet::new()) {
                let node = nodes.iter().find(|x| x.name == s).unwrap();
                assert!(node.after.iter().all(|d| progress[d] == Progress::Done), "{s} started early");
                progress.insert(s.clone(), Progress::Started);
                started.push(s);
            }
            // One started agent (chosen by the event order) becomes done.
            let running: Vec<String> =
                progress.iter().filter(|(_, p)| **p == Progress::Started).map(|(k, _)| k.clone()).collect();
            if running.is_empty() {
                break;
            }
            let pick = order.next().copied().unwrap_or(0) % running.len();
            progress.insert(running[pick].clone(), Progress::Done);
        }
        assert!(progress.values().all(|p| *p == Progress::Done), "everything started and finished: {progress:?}");
        started
    }

    proptest! {
        #[test]
        fn the_scheduler_keeps_dependencies(
            n in 1usize..12,
            raw_edges in proptest::collection::vec((0usize..12, 0usize..12), 0..30),
            finish in proptest::collection::vec(0usize..100, 1..20),
        ) {
            // Only edges to an earlier agent: acyclic, as the parser guarantees.
            let edges: Vec<(usize, usize)> =
                raw_edges.into_iter().filter(|(a, b)| a < &n && b < a).collect();
            let first = run(n, &edges, &finish);
            prop_assert_eq!(first.len(), n);
            prop_assert_eq!(first, run(n, &edges, &finish));
        }
    }
}
