//! Agents that drive muster (`muster spawn`, `send`, `stop`, `rm`…): who may do what to whom. An agent acts on
//! its own descendants (the agents it spawned, and theirs), reads and waits on any agent, and spawns within its
//! limits; the rest is the operator's. `[defaults] agents_may` narrows it.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::ConfigError;

/// How many children one agent may have, and how deep a line of spawned agents may go, unless `[defaults]`
/// says otherwise.
pub const MAX_CHILDREN: u32 = 4;
pub const MAX_DEPTH: u32 = 2;

/// What an agent may ask of muster about another agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    /// Start a child (`muster spawn`).
    Spawn,
    /// Type into a descendant (`muster send`).
    Send,
    /// Stop, pause, resume or restart a descendant.
    Stop,
    /// Remove a descendant (its worktree and branch).
    Remove,
}

impl Verb {
    pub fn word(self) -> &'static str {
        match self {
            Verb::Spawn => "spawn",
            Verb::Send => "send",
            Verb::Stop => "stop",
            Verb::Remove => "remove",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_children: u32,
    pub max_depth: u32,
    pub may: Vec<Verb>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(None, None, None)
    }
}

impl Limits {
    /// What `[defaults]` says (`max_children`, `max_depth`, `agents_may`), the rest as muster's defaults.
    pub fn new(max_children: Option<u32>, max_depth: Option<u32>, may: Option<Vec<Verb>>) -> Limits {
        Limits {
            max_children: max_children.unwrap_or(MAX_CHILDREN),
            max_depth: max_depth.unwrap_or(MAX_DEPTH),
            may: may.unwrap_or_else(|| vec![Verb::Spawn, Verb::Send, Verb::Stop, Verb::Remove]),
        }
    }
}

/// The line of agents above `name` (its parent first), as `parent_of` says; stops at a loop or an unknown name.
pub fn ancestors<'a>(name: &str, parent_of: impl Fn(&str) -> Option<&'a str>) -> Vec<&'a str> {
    let mut line: Vec<&'a str> = Vec::new();
    let mut at = parent_of(name);
    while let Some(p) = at {
        if p == name || line.contains(&p) {
            break;
        }
        line.push(p);
        at = parent_of(p);
    }
    line
}

/// Whether agent `who` may spawn a child: `depth` is its own (the operator's agents are at 0), `children` how
/// many it has.
pub fn may_spawn(limits: &Limits, who: &str, depth: u32, children: u32) -> Result<(), String> {
    if !limits.may.contains(&Verb::Spawn) {
        return Err("agents may not spawn (the crew file's [defaults] agents_may): ask the operator".into());
    }
    if depth + 1 > limits.max_depth {
        return Err(format!(
            "{who} may not spawn: its child would be {} deep, past max_depth = {} ([defaults] of the crew file)",
            depth + 1,
            limits.max_depth
        ));
    }
    if children >= limits.max_children {
        return Err(format!(
            "{who} has {children} children already: max_children is {} ([defaults] of the crew file; remove one first)",
            limits.max_children
        ));
    }
    Ok(())
}

/// Whether agent `who` may do `verb` to `target` (None: the operator, who may do anything): only its own
/// descendants, never itself. Reading and waiting need no leave: any agent may look at any other.
pub fn may(
    limits: &Limits,
    who: Option<&str>,
    verb: Verb,
    target: &str,
    parent_of: impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let Some(who) = who else { return Ok(()) };
    if !limits.may.contains(&verb) {
        return Err(format!(
            "agents may not {} (the crew file's [defaults] agents_may): ask the operator",
            verb.word()
        ));
    }
    let mut at = parent_of(target);
    let mut steps = 0;
    while let Some(p) = at {
        if p == who {
            return Ok(());
        }
        steps += 1;
        if steps > 64 {
            break;
        }
        at = parent_of(&p);
    }
    Err(format!("{who} may {} only the agents it spawned (and theirs): {target} is not one of them", verb.word()))
}

/// Each `parent` (an agent's name and its `parent` key) names another agent of the crew (`names`), and no line
/// of parents loops.
pub fn check_parents(
    file: &Path,
    text: &str,
    names: &[&str],
    parents: &[(String, Spanned<String>)],
) -> Result<(), ConfigError> {
    let of: BTreeMap<&str, &str> = parents.iter().map(|(n, p)| (n.as_str(), p.get_ref().as_str())).collect();
    for (name, p) in parents {
        let at = p.span().start;
        let parent = p.get_ref();
        if parent == name {
            return Err(ConfigError::at(file, text, at, format!("key `parent`: `{name}` cannot be its own parent")));
        }
        if !names.contains(&parent.as_str()) {
            return Err(ConfigError::at(file, text, at, format!("key `parent`: no agent `{parent}` in this crew")));
        }
        let line = ancestors(name, |n| of.get(n).copied());
        if line.last().is_some_and(|top| of.get(top).is_some_and(|up| line.contains(up) || *up == name.as_str())) {
            return Err(ConfigError::at(
                file,
                text,
                at,
                format!("key `parent`: a loop of parents ({name} → {})", line.join(" → ")),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent_of<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |n| pairs.iter().find(|(c, _)| *c == n).map(|(_, p)| p.to_string())
    }

    #[test]
    fn an_agent_acts_on_its_descendants_and_looks_at_anyone() {
        let tree = [("c1", "lead"), ("c2", "lead"), ("g1", "c1")];
        let l = Limits::default();
        assert!(may(&l, Some("lead"), Verb::Stop, "g1", parent_of(&tree)).is_ok());
        assert!(may(&l, Some("c1"), Verb::Stop, "c2", parent_of(&tree)).unwrap_err().contains("not one of them"));
        assert!(may(&l, Some("c1"), Verb::Remove, "c1", parent_of(&tree)).is_err(), "not itself");
        assert!(may(&l, None, Verb::Remove, "lead", parent_of(&tree)).is_ok(), "the operator");
        let narrow = Limits { may: vec![Verb::Send], ..Limits::default() };
        assert!(may(&narrow, Some("lead"), Verb::Stop, "c1", parent_of(&tree)).unwrap_err().contains("agents_may"));
        assert!(may_spawn(&l, "lead", 0, 3).is_ok() && may_spawn(&l, "c1", 1, 0).is_ok());
        assert!(may_spawn(&l, "g1", 2, 0).unwrap_err().contains("3 deep, past max_depth = 2"));
        assert!(may_spawn(&l, "lead", 0, 4).unwrap_err().contains("max_children is 4"));
        assert!(may_spawn(&narrow, "lead", 0, 0).unwrap_err().contains("agents_may"));
        let looped = [("a", "b"), ("b", "a")];
        assert!(may(&l, Some("x"), Verb::Stop, "a", parent_of(&looped)).is_err(), "a loop ends");
    }

    #[test]
    fn ancestors_stop_at_a_loop() {
        let of = |n: &str| match n {
            "a" => Some("b"),
            "b" => Some("c"),
            "c" => Some("a"),
            _ => None,
        };
        assert_eq!(ancestors("a", of), ["b", "c"]);
        assert_eq!(ancestors("z", of), Vec::<&str>::new());
    }
}
