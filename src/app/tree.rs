//! The roster as a tree: each agent a lead spawned under its parent, a folded parent's children out of sight,
//! and a heading where a plan's wave begins. Pure: names, parents and waves in, the rows out.

use std::collections::{BTreeSet, HashMap};

/// What the tree needs of one agent.
pub struct Node<'a> {
    pub name: &'a str,
    pub parent: Option<&'a str>,
    pub wave: Option<u32>,
}

/// The roster's rows in order: `Some(i)` is agent `i`, `None` a wave's heading over the agent after it.
///
/// Agents whose parent is not in the crew (or none) are roots, in the crew's order; each is followed by its
/// children, depth first, in the crew's order too. A folded agent's descendants are left out. Headings come only
/// between roots (a child sits under its parent whatever its own wave), and only when some agent has a wave.
/// Every agent appears at most once, and every agent not under a folded one appears — a parent loop a crew file
/// cannot hold (it is refused at load) still shows its agents, after the rest.
pub fn rows(nodes: &[Node], folded: &BTreeSet<String>) -> Vec<Option<usize>> {
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.name, i)).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut roots = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        match n.parent.and_then(|p| index.get(p)).filter(|&&p| p != i) {
            Some(&p) => children[p].push(i),
            None => roots.push(i),
        }
    }
    let waves = nodes.iter().any(|n| n.wave.is_some());
    let mut out = Vec::with_capacity(nodes.len() + 4);
    let mut seen = vec![false; nodes.len()];
    let mut last_wave = None;
    // Roots first; then whatever a loop of parents kept from being reached, from the top of its line.
    let starts: Vec<usize> = roots.into_iter().chain(0..nodes.len()).collect();
    for start in starts {
        if seen[start] {
            continue;
        }
        let top = ancestors(nodes, nodes[start].name).last().and_then(|n| index.get(n).copied());
        let root = top.filter(|&t| !seen[t]).unwrap_or(start);
        if waves && (out.is_empty() || nodes[root].wave != last_wave) {
            out.push(None);
        }
        last_wave = nodes[root].wave;
        // Depth first without recursion: a deep chain cannot overflow the stack.
        let mut stack = vec![(root, true)];
        while let Some((i, shown)) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            if shown {
                out.push(Some(i));
            }
            let open = shown && !folded.contains(nodes[i].name);
            stack.extend(children[i].iter().rev().map(|&c| (c, open)));
        }
    }
    out
}

/// How many agents are under `name`, at any depth.
pub fn descendants(nodes: &[Node], name: &str) -> usize {
    nodes.iter().filter(|n| ancestors(nodes, n.name).contains(&name)).count()
}

/// The agents of the crew above `name`, its parent first (a parent not in the crew ends the line).
pub fn ancestors<'a>(nodes: &[Node<'a>], name: &str) -> Vec<&'a str> {
    crate::config::lead::ancestors(name, |n| {
        let parent = nodes.iter().find(|m| m.name == n)?.parent?;
        nodes.iter().find(|m| m.name == parent).map(|m| m.name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nodes<'a>(spec: &'a [(&'a str, Option<&'a str>, Option<u32>)]) -> Vec<Node<'a>> {
        spec.iter().map(|&(name, parent, wave)| Node { name, parent, wave }).collect()
    }

    fn names(nodes: &[Node], rows: &[Option<usize>]) -> Vec<String> {
        rows.iter().map(|r| r.map_or("--".to_string(), |i| nodes[i].name.to_string())).collect()
    }

    #[test]
    fn children_follow_their_parent_depth_first_in_crew_order() {
        let spec = [
            ("lead", None, None),
            ("solo", None, None),
            ("b", Some("lead"), None),
            ("a", Some("lead"), None),
            ("b1", Some("b"), None),
            ("orphan", Some("gone"), None),
        ];
        let n = nodes(&spec);
        let rows = rows(&n, &BTreeSet::new());
        assert_eq!(names(&n, &rows), ["lead", "b", "b1", "a", "solo", "orphan"]);
        let folded = BTreeSet::from(["b".to_string()]);
        assert_eq!(names(&n, &super::rows(&n, &folded)), ["lead", "b", "a", "solo", "orphan"]);
        let folded = BTreeSet::from(["lead".to_string()]);
        assert_eq!(names(&n, &super::rows(&n, &folded)), ["lead", "solo", "orphan"]);
        assert_eq!((descendants(&n, "lead"), descendants(&n, "b"), descendants(&n, "solo")), (3, 1, 0));
        assert_eq!(ancestors(&n, "b1"), ["b", "lead"]);
    }

    #[test]
    fn headings_only_between_roots_of_different_waves() {
        let spec = [("p", None, Some(1)), ("q", None, Some(2)), ("kid", Some("p"), None), ("r", None, Some(2))];
        let n = nodes(&spec);
        assert_eq!(names(&n, &rows(&n, &BTreeSet::new())), ["--", "p", "kid", "--", "q", "r"]);
    }

    #[test]
    fn a_loop_of_parents_still_shows_its_agents_once() {
        let spec = [("a", Some("b"), None), ("b", Some("a"), None), ("c", None, None), ("s", Some("s"), None)];
        let n = nodes(&spec);
        assert_eq!(names(&n, &rows(&n, &BTreeSet::new())), ["c", "s", "b", "a"]);
        assert_eq!(ancestors(&n, "a"), ["b"]);
    }

    proptest! {
        /// Whatever the parents and folds: each agent at most once; exactly those under no folded ancestor; a
        /// child after its parent.
        #[test]
        fn every_agent_once_and_children_after_parents(
            parents in proptest::collection::vec(proptest::option::of(0usize..12), 0..12),
            folds in proptest::collection::vec(0usize..12, 0..4),
            waves in proptest::collection::vec(proptest::option::of(1u32..3), 12),
        ) {
            let names: Vec<String> = (0..parents.len()).map(|i| format!("a{i}")).collect();
            let n: Vec<Node> = parents.iter().enumerate().map(|(i, p)| Node {
                name: &names[i],
                parent: p.map(|p| if p < names.len() { names[p].as_str() } else { "nobody" }),
                wave: waves[i],
            }).collect();
            let folded: BTreeSet<String> = folds.iter().map(|i| format!("a{i}")).collect();
            let out: Vec<usize> = rows(&n, &folded).into_iter().flatten().collect();
            let mut sorted = out.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), out.len());
            for (i, node) in n.iter().enumerate() {
                let up = ancestors(&n, node.name);
                // Below a loop of parents (a crew file cannot hold one), "under a fold" has no one meaning:
                // such agents are only checked to appear at most once.
                let looped = |x: &str| ancestors(&n, x).iter().any(|a| ancestors(&n, a).contains(&x));
                let in_a_loop = looped(node.name) || up.iter().any(|a| looped(a));
                let hidden = up.iter().any(|a| folded.contains(*a));
                if !in_a_loop {
                    prop_assert_eq!(out.contains(&i), !hidden, "{} {:?}", node.name, up);
                }
                if let (Some(me), Some(p)) = (out.iter().position(|&x| x == i), up.first()) {
                    let pi = n.iter().position(|m| m.name == *p).unwrap();
                    if !in_a_loop {
                        prop_assert!(out.iter().position(|&x| x == pi).unwrap() < me);
                    }
                }
            }
        }
    }
}
