//! `muster crew plan`: the crew file's waves and dependencies, as the server will follow them, checked first.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::printable::printable_line;
use crate::config::crew::AgentSpec;

#[derive(serde::Serialize)]
struct Step<'a> {
    name: &'a str,
    kind: &'a str,
    role: Option<&'a str>,
    wave: Option<u32>,
    after: &'a [String],
    advance: &'static str,
    approve: bool,
    read_only: bool,
    /// How many agents it waits for before it, counting theirs (0: starts with the crew).
    depth: usize,
}

pub fn run(root: &Path, json: bool) -> Result<ExitCode> {
    let (crew, _, warnings) = match crate::config::load_crew_owned(root, crate::git::ownership::tracked_files) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    for w in &warnings {
        eprintln!("{w}");
    }
    let depths = depths(&crew.agents);
    let steps: Vec<Step> = crew
        .agents
        .iter()
        .zip(&depths)
        .map(|(a, d)| Step {
            name: &a.name,
            kind: &a.kind,
            role: a.role.as_deref(),
            wave: a.wave,
            after: &a.after,
            advance: a.advance.word(),
            approve: a.approve,
            read_only: a.read_only,
            depth: *d,
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&steps)?);
        return Ok(ExitCode::SUCCESS);
    }
    let last = depths.iter().copied().max().unwrap_or(0);
    for level in 0..=last {
        let here: Vec<&Step> = steps.iter().filter(|s| s.depth == level).collect();
        let waves: std::collections::BTreeSet<u32> = here.iter().filter_map(|s| s.wave).collect();
        let waves: Vec<String> = waves.iter().map(|w| format!("wave {w}")).collect();
        let approve =
            if here.iter().any(|s| s.approve) { " · waits for your word (W, muster crew approve)" } else { "" };
        let title = if level == 0 { "starts with the crew".to_string() } else { format!("step {}", level + 1) };
        println!(
            "{title}{}{approve}",
            if waves.is_empty() { String::new() } else { format!(" ({})", waves.join(", ")) }
        );
        for s in here {
            let mut line = format!("  {:<16} {:<9}", printable_line(s.name), printable_line(s.kind));
            if let Some(r) = s.role {
                line.push_str(&format!(" role {}", printable_line(r)));
            }
            // What its wave brings (every agent of the waves before) is said once; its own `after`, by name.
            let by_wave = |n: &String| {
                s.wave.is_some_and(|w| steps.iter().any(|o| o.name == n && o.wave.is_some_and(|ow| ow < w)))
            };
            let own: Vec<&str> = s.after.iter().filter(|n| !by_wave(n)).map(String::as_str).collect();
            match (s.after.iter().any(by_wave), own.is_empty()) {
                (true, true) => line.push_str(" after the waves before"),
                (true, false) => line.push_str(&format!(" after the waves before and {}", own.join(", "))),
                (false, false) => line.push_str(&format!(" after {}", own.join(", "))),
                (false, true) => {}
            }
            line.push_str(&format!(" · done when {}", s.advance));
            if s.read_only {
                line.push_str(" · read-only");
            }
            println!("{line}");
        }
    }
    println!("checked: no circle, every role and agent known, no two agents that run together own a same file");
    Ok(ExitCode::SUCCESS)
}

/// Each agent's step: 0 for one that waits for nobody, else one more than the deepest it waits for (the parser
/// refused circles).
fn depths(agents: &[AgentSpec]) -> Vec<usize> {
    let index: std::collections::BTreeMap<&str, usize> =
        agents.iter().enumerate().map(|(i, a)| (a.name.as_str(), i)).collect();
    let mut depth: Vec<Option<usize>> = vec![None; agents.len()];
    fn of(
        i: usize,
        agents: &[AgentSpec],
        index: &std::collections::BTreeMap<&str, usize>,
        depth: &mut [Option<usize>],
    ) -> usize {
        if let Some(d) = depth[i] {
            return d;
        }
        // Marked first: a circle (refused by the parser) would stop here rather than recurse forever.
        depth[i] = Some(0);
        let d = agents[i]
            .after
            .iter()
            .filter_map(|n| index.get(n.as_str()))
            .map(|j| of(*j, agents, index, depth) + 1)
            .max()
            .unwrap_or(0);
        depth[i] = Some(d);
        d
    }
    (0..agents.len()).map(|i| of(i, agents, &index, &mut depth)).collect()
}
