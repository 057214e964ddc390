//! The preset rules against screens recorded from the real agent CLIs: CI checks the rules without the CLIs.

use std::path::Path;

use muster::config::preset;
use muster::engine::detect::{match_rules, View};
use muster::engine::AgentState;
use serde::Deserialize;

#[derive(Deserialize)]
struct Expected {
    screen: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    file: String,
    kind: String,
    state: AgentState,
    rule: String,
}

#[test]
fn every_recorded_screen_reads_as_expected() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens");
    let expected: Expected = toml::from_str(&std::fs::read_to_string(dir.join("expected.toml")).unwrap()).unwrap();
    let presets = preset::builtin();
    let mut failures = Vec::new();
    for case in &expected.screen {
        let text = std::fs::read_to_string(dir.join(&case.file)).unwrap();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let rules = &presets[&case.kind].rules;
        // The version is read from the screen where the CLI shows it, as the engine does.
        let version = presets[&case.kind]
            .version_regex
            .as_ref()
            .and_then(|re| re.captures(&text))
            .and_then(|c| muster::engine::detect::parse_version(c.get(1)?.as_str()));
        let view = View { lines: &lines, title: None, progress: None, alt_screen: false, version: version.as_deref() };
        let got = match_rules(rules, &view).map(|r| (r.state, r.name.clone()));
        // `rule = ""`: no rule may match (hooks and activity decide there).
        let want = (!case.rule.is_empty()).then_some((case.state, case.rule.as_str()));
        if got.as_ref().map(|(s, n)| (*s, n.as_str())) != want {
            failures.push(format!("{}: expected {:?} by `{}`, got {got:?}", case.file, case.state, case.rule));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_is_listed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens");
    let listed = std::fs::read_to_string(dir.join("expected.toml")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".txt") {
            assert!(listed.contains(&format!("\"{name}\"")), "{name} has no expected state");
        }
    }
}

/// No CLI's rules misread another CLI's screens: a rule written for one that matches another's screen must say
/// the state that screen is in (many CLIs say "esc to interrupt" while they work; that agreeing is no harm), so a
/// rule cannot turn into a trap when a crew mixes CLIs or a CLI borrows another's wording.
#[test]
fn no_preset_reads_another_clis_screens() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens");
    let expected: Expected = toml::from_str(&std::fs::read_to_string(dir.join("expected.toml")).unwrap()).unwrap();
    let presets = preset::builtin();
    // Every CLI's manifest (not the shell, any command, or the demo).
    let clis: Vec<&str> =
        presets.values().filter(|p| p.tier != preset::Tier::Generic && p.id != "demo").map(|p| p.id.as_str()).collect();
    assert!(clis.len() >= 13, "{clis:?}");
    let mut crossed = Vec::new();
    for case in &expected.screen {
        let text = std::fs::read_to_string(dir.join(&case.file)).unwrap();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let view = View { lines: &lines, title: None, progress: None, alt_screen: false, version: None };
        for other in clis.iter().filter(|k| **k != case.kind) {
            // Forks (Qwen of Gemini, Kilo of opencode) share screens: agreeing with a fork's screen is right.
            if let Some(r) = match_rules(&presets[*other].rules, &view).filter(|r| r.state != case.state) {
                crossed.push(format!("{} ({}) read by {other}'s `{}` as {:?}", case.file, case.kind, r.name, r.state));
            }
        }
    }
    assert!(crossed.is_empty(), "{}", crossed.join("\n"));
}
