//! Ownership (issue #29): the files an agent may change (`owns`) and the files only the operator or a merge
//! changes (`shared`), as globs over paths relative to the repository: `*` stays within a folder, `**` crosses
//! folders, a pattern ending in `/` is everything under that folder, and `!pattern` takes files back out.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

/// What the watchdog does about an agent: report (`watch`), or also make writes outside its worktree fail at
/// the OS (`enforce`: Landlock, where the kernel has it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardMode {
    #[default]
    Watch,
    Enforce,
}

/// A compiled list of patterns.
#[derive(Debug, Clone)]
pub struct Globs {
    take: GlobSet,
    leave: GlobSet,
}

fn glob(pattern: &str) -> Result<Glob, String> {
    let p = pattern.strip_prefix('/').unwrap_or(pattern);
    let p = if p.ends_with('/') { format!("{p}**") } else { p.to_string() };
    GlobBuilder::new(&p).literal_separator(true).build().map_err(|e| format!("`{pattern}`: {}", e.kind()))
}

impl Globs {
    /// Compile `patterns`; a bad one is an error naming its index and why.
    pub fn new(patterns: &[String]) -> Result<Globs, (usize, String)> {
        let (mut take, mut leave) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        for (i, p) in patterns.iter().enumerate() {
            match p.strip_prefix('!') {
                Some(rest) => leave.add(glob(rest).map_err(|e| (i, e))?),
                None => take.add(glob(p).map_err(|e| (i, e))?),
            };
        }
        let built = |b: GlobSetBuilder| b.build().map_err(|e| (0, e.to_string()));
        Ok(Globs { take: built(take)?, leave: built(leave)? })
    }

    /// Whether `path` (relative, `/`-separated) is one of these files.
    pub fn matches(&self, path: &str) -> bool {
        self.take.is_match(path) && !self.leave.is_match(path)
    }
}

/// Pairs of agents whose `owns` take a same file of `files`, with the first such file: (a, b, file), in the
/// agents' order. Each file is matched once per agent (not per pair): a crew of n agents on m files costs n·m.
pub fn overlaps<'a>(agents: &'a [(String, Globs)], files: &'a [String]) -> Vec<(&'a str, &'a str, &'a str)> {
    let mut first: std::collections::BTreeMap<(usize, usize), &'a str> = std::collections::BTreeMap::new();
    let mut owners = Vec::new();
    for f in files {
        owners.clear();
        owners.extend(agents.iter().enumerate().filter(|(_, (_, g))| g.matches(f)).map(|(i, _)| i));
        for (k, &i) in owners.iter().enumerate() {
            for &j in &owners[k + 1..] {
                first.entry((i, j)).or_insert(f.as_str());
            }
        }
    }
    first.into_iter().map(|((i, j), f)| (agents[i].0.as_str(), agents[j].0.as_str(), f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn g(p: &[&str]) -> Globs {
        Globs::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn folders_stars_and_negation() {
        let api = g(&["src/api/", "tests/api_*.rs", "!src/api/generated/**"]);
        assert!(api.matches("src/api/mod.rs") && api.matches("src/api/v1/routes.rs"));
        assert!(api.matches("tests/api_health.rs"));
        assert!(!api.matches("tests/sub/api_health.rs"), "* stays within a folder");
        assert!(!api.matches("src/api/generated/schema.rs"), "taken back out");
        assert!(!api.matches("src/lib.rs") && !api.matches("src/apix/a.rs"));
        assert!(g(&["/Cargo.lock"]).matches("Cargo.lock"));
        assert!(g(&["**/*.md"]).matches("docs/a/b.md") && g(&["**/*.md"]).matches("README.md"));
        assert!(Globs::new(&["src/[".into()]).is_err());
    }

    #[test]
    fn overlaps_name_the_pair_and_a_file() {
        let files: Vec<String> = ["src/api/a.rs", "src/ui/b.rs", "README.md"].iter().map(|s| s.to_string()).collect();
        let agents = vec![
            ("api".to_string(), g(&["src/api/"])),
            ("ui".to_string(), g(&["src/ui/"])),
            ("all".to_string(), g(&["src/**", "!src/ui/**"])),
        ];
        assert_eq!(overlaps(&agents, &files), vec![("api", "all", "src/api/a.rs")]);
    }

    proptest! {
        /// Two agents overlap exactly when some file is taken by both; the check is symmetric.
        #[test]
        fn overlap_is_a_shared_file(a in proptest::collection::vec("[ab]/[xy]\\.rs|[ab]/|\\*\\*/y\\.rs|![ab]/x\\.rs", 1..4),
                                    b in proptest::collection::vec("[ab]/[xy]\\.rs|[ab]/|\\*\\*/y\\.rs|![ab]/x\\.rs", 1..4)) {
            let files: Vec<String> = ["a/x.rs", "a/y.rs", "b/x.rs", "b/y.rs"].iter().map(|s| s.to_string()).collect();
            let (ga, gb) = (Globs::new(&a).unwrap(), Globs::new(&b).unwrap());
            let shared = files.iter().any(|f| ga.matches(f) && gb.matches(f));
            let ab = vec![("a".to_string(), ga.clone()), ("b".to_string(), gb.clone())];
            let ba = vec![("b".to_string(), gb), ("a".to_string(), ga)];
            prop_assert_eq!(!overlaps(&ab, &files).is_empty(), shared);
            prop_assert_eq!(!overlaps(&ba, &files).is_empty(), shared);
        }
        /// Over a crew of random ownership, the overlaps are exactly the pairs (in order) some file is taken by
        /// both, each with the first such file.
        #[test]
        fn overlaps_are_every_pair_with_its_first_shared_file(
            crew in proptest::collection::vec(proptest::collection::vec("[ab]/[xy]\\.rs|[ab]/|\\*\\*/y\\.rs|![ab]/x\\.rs|c\\.md", 1..3), 0..6),
        ) {
            let files: Vec<String> = ["a/x.rs", "a/y.rs", "b/x.rs", "b/y.rs", "c.md"].iter().map(|s| s.to_string()).collect();
            let agents: Vec<(String, Globs)> =
                crew.iter().enumerate().map(|(i, p)| (format!("g{i}"), Globs::new(p).unwrap())).collect();
            let mut naive = Vec::new();
            for i in 0..agents.len() {
                for j in i + 1..agents.len() {
                    if let Some(f) = files.iter().find(|f| agents[i].1.matches(f) && agents[j].1.matches(f)) {
                        naive.push((agents[i].0.as_str(), agents[j].0.as_str(), f.as_str()));
                    }
                }
            }
            prop_assert_eq!(overlaps(&agents, &files), naive);
        }
    }
}
