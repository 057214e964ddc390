//! The failing tests a gate's output names, by the test runner's own report lines (cargo, pytest, go, jest,
//! TAP). Only names go to the agent; whether the gate failed is its exit code's word, never this.

use crate::config::gate::Parse;

/// At most this many names are kept.
const MAX_NAMES: usize = 100;

/// The failing tests in `output` (plain text), in the order first named, each once.
pub fn failing(output: &str, parse: Parse) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in output.lines() {
        let found = match parse {
            Parse::None => None,
            Parse::Cargo => cargo(line),
            Parse::Pytest => pytest(line),
            Parse::Go => go(line),
            Parse::Jest => jest(line),
            Parse::Tap => tap(line),
            Parse::Auto => {
                cargo(line).or_else(|| pytest(line)).or_else(|| go(line)).or_else(|| tap(line)).or_else(|| jest(line))
            }
        };
        if let Some(name) = found.map(str::trim).filter(|n| !n.is_empty()) {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
                if names.len() == MAX_NAMES {
                    break;
                }
            }
        }
    }
    names
}

/// `test path::to::name ... FAILED`
fn cargo(line: &str) -> Option<&str> {
    line.trim_start().strip_prefix("test ")?.strip_suffix(" ... FAILED")
}

/// The short summary: `FAILED tests/test_x.py::test_y - AssertionError…` (or without a reason).
fn pytest(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("FAILED ")?;
    let name = rest.split(" - ").next()?;
    name.contains("::").then_some(name)
}

/// `--- FAIL: TestName (0.00s)`, subtests indented.
fn go(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("--- FAIL: ")?;
    rest.split(" (").next()
}

/// `not ok 3 - description`, but not `# TODO` or `# SKIP` ones.
fn tap(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("not ok")?;
    let upper = rest.to_ascii_uppercase();
    if upper.contains("# TODO") || upper.contains("# SKIP") {
        return None;
    }
    let rest = rest.trim_start().trim_start_matches(|c: char| c.is_ascii_digit()).trim_start();
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    Some(rest.split(" # ").next().unwrap_or(rest))
}

/// `  ● Suite › does a thing` (not jest's own `● Test suite failed to run`, which names no test).
fn jest(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("● ")?;
    (rest.contains(" › ") && !rest.starts_with("Test suite failed")).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARGO: &str = "running 3 tests\ntest tests::adds ... ok\ntest tests::greets ... FAILED\ntest tests::parses ... FAILED\n\nfailures:\n\n---- tests::greets stdout ----\nthread 'tests::greets' panicked at src/lib.rs:12:9:\nassertion `left == right` failed\n\nfailures:\n    tests::greets\n    tests::parses\n\ntest result: FAILED. 1 passed; 2 failed; 0 ignored\n";
    const PYTEST: &str = "============ short test summary info ============\nFAILED tests/test_api.py::test_greet - AssertionError: assert 'hi' == 'hello'\nFAILED tests/test_api.py::TestX::test_y\n======= 2 failed, 3 passed in 0.12s =======\n";
    const GO: &str = "=== RUN   TestAdd\n--- PASS: TestAdd (0.00s)\n=== RUN   TestGreet\n    greet_test.go:9: got hi\n--- FAIL: TestGreet (0.00s)\n    --- FAIL: TestGreet/empty (0.00s)\nFAIL\nFAIL\texample.com/m\t0.003s\n";
    const JEST: &str = " FAIL  src/greet.test.js\n  greet\n    ✓ adds (2 ms)\n    ✕ greets (3 ms)\n\n  ● greet › greets\n\n    expect(received).toBe(expected)\n\nTests:       1 failed, 1 passed, 2 total\n";
    const TAP: &str = "TAP version 13\n1..4\nok 1 - adds\nnot ok 2 - greets\n  ---\n  message: 'hi != hello'\n  ...\nnot ok 3 - later # TODO not yet\nnot ok 4 parses # time=3ms\n";

    #[test]
    fn each_runner_names_its_failures() {
        assert_eq!(failing(CARGO, Parse::Cargo), ["tests::greets", "tests::parses"]);
        assert_eq!(
            failing(PYTEST, Parse::Pytest),
            ["tests/test_api.py::test_greet", "tests/test_api.py::TestX::test_y"]
        );
        assert_eq!(failing(GO, Parse::Go), ["TestGreet", "TestGreet/empty"]);
        assert_eq!(failing(JEST, Parse::Jest), ["greet › greets"]);
        assert_eq!(failing(TAP, Parse::Tap), ["greets", "parses"]);
    }

    #[test]
    fn auto_reads_every_runner_and_none_reads_nothing() {
        for (text, first) in [
            (CARGO, "tests::greets"),
            (PYTEST, "tests/test_api.py::test_greet"),
            (GO, "TestGreet"),
            (JEST, "greet › greets"),
            (TAP, "greets"),
        ] {
            assert_eq!(failing(text, Parse::Auto).first().map(String::as_str), Some(first), "{text}");
            assert!(failing(text, Parse::None).is_empty());
        }
        // Passing output names nothing.
        assert!(failing("test a ... ok\n--- PASS: TestA (0.00s)\nok 1 - a\n", Parse::Auto).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_read_without_panic_and_bounded(text in "(.{0,60}\n){0,300}") {
            let names = failing(&text, Parse::Auto);
            proptest::prop_assert!(names.len() <= MAX_NAMES);
        }
    }
}
