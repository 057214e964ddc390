//! What reading an agent's state from its screen costs (issue #26): every manifest's rules against every screen
//! recorded from the real CLIs (`tests/fixtures/screens/`, read from the current folder: run it in a checkout),
//! as the detector runs them on each screen change.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::engine::detect::{match_rules, View};

pub fn run() -> Result<()> {
    let dir = Path::new("tests/fixtures/screens");
    let mut screens = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}: run this in muster's checkout", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "txt") {
            let text = std::fs::read_to_string(&path)?;
            screens.push(text.lines().map(str::to_string).collect::<Vec<String>>());
        }
    }
    if screens.is_empty() {
        bail!("no screens in {}", dir.display());
    }
    let (presets, _) = crate::config::preset::load(None);
    println!("screen rules: every manifest's rules on each of {} recorded screens (120x36 to 120x40)", screens.len());
    let mut worst = (0.0f64, String::new());
    for p in presets.values().filter(|p| !p.rules.is_empty()) {
        // Enough rounds for a stable mean; each round reads every screen.
        let rounds = 200;
        let t = Instant::now();
        let mut matched = 0usize;
        for _ in 0..rounds {
            for lines in &screens {
                let view = View { lines, title: None, progress: None, alt_screen: false, version: None };
                matched += usize::from(std::hint::black_box(match_rules(&p.rules, &view)).is_some());
            }
        }
        let per = t.elapsed().as_secs_f64() * 1e6 / (rounds * screens.len()) as f64;
        if per > worst.0 {
            worst = (per, p.id.clone());
        }
        println!(
            "  {:<10} {:>2} rules: {per:6.1} µs per screen ({} of {} screens matched a rule)",
            p.id,
            p.rules.len(),
            matched / rounds,
            screens.len()
        );
    }
    println!("  slowest: {} at {:.1} µs per screen change (the detector runs at most every 100 ms)", worst.1, worst.0);
    Ok(())
}
