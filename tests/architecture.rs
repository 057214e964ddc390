//! The layers of ARCHITECTURE.md, held: the client core (`app/`, `ui/`) and the boundary (`protocol/`) import no
//! runtime module. The imports that break the rule today are listed, file by file, until they move (issue #25):
//! a new one fails here, and one that goes must leave the list.

use std::collections::BTreeSet;
use std::path::Path;

/// What the client core and the boundary may never import.
const RUNTIME: [&str; 14] = [
    "engine", "git", "term", "pty", "server", "mailbox", "ipc", "safefs", "commands", "tui", "client", "bench", "demo",
    "logfile",
];

/// Exceptions to the rule: (file, runtime module it imports). None left: the screen, git, exit and mail values
/// live in `protocol/`; one that must be allowed again is listed here, with its reason.
const KNOWN: [(&str, &str); 0] = [];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The runtime modules a file names as `crate::<module>`, outside its unit tests (a test of the boundary may feed
/// a real emulator to get a real screen).
fn runtime_imports(text: &str) -> BTreeSet<String> {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if RUNTIME.contains(&name.as_str()) {
            found.insert(name);
        }
    }
    found
}

#[test]
fn the_client_core_and_the_boundary_import_no_runtime_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = BTreeSet::new();
    let mut broken = Vec::new();
    for layer in ["src/app", "src/ui", "src/protocol"] {
        let mut files = Vec::new();
        rust_files(&root.join(layer), &mut files);
        for f in files {
            let rel = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            for module in runtime_imports(&std::fs::read_to_string(&f).unwrap()) {
                if KNOWN.contains(&(rel.as_str(), module.as_str())) {
                    seen.insert((rel.clone(), module));
                } else {
                    broken.push(format!("{rel} imports crate::{module}"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "imports against ARCHITECTURE.md's layers: {broken:#?}");
    let gone: Vec<_> = KNOWN.iter().filter(|(f, m)| !seen.contains(&(f.to_string(), m.to_string()))).collect();
    assert!(gone.is_empty(), "these exceptions are gone: take them off the list in tests/architecture.rs: {gone:?}");
}

#[test]
fn the_checker_sees_an_import() {
    let found = runtime_imports("use crate::git::merge::Side;\nlet x = crate::protocol::clamp_size(1, 2);\n");
    assert_eq!(found, BTreeSet::from(["git".to_string()]));
    let tested = runtime_imports(
        "use crate::protocol::Screen;\n#[cfg(test)]\nmod tests {\n    use crate::term::AlacrittyModel;\n}\n",
    );
    assert!(tested.is_empty(), "{tested:?}");
}

/// The workbench's shell and its connection (`tui.rs`, `client.rs`) hold no engine: commands go out as
/// `protocol::Commands`, events come in as `protocol::Event`, whether the engine is a server or in this process.
#[test]
fn the_workbench_shell_holds_no_engine() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["src/tui.rs", "src/client.rs"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let found = runtime_imports(&text);
        let held: Vec<_> =
            ["engine", "server", "git", "pty", "mailbox"].iter().filter(|m| found.contains(**m)).collect();
        assert!(held.is_empty(), "{file} imports {held:?}");
    }
}
