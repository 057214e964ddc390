//! Fuzzing the parsers of files muster reads (crew, user config, keymap, theme, state) with arbitrary bytes and
//! with mutations of valid files: none may panic, and each either parses or names where it failed.
//!
//! In `cargo test` each runs a fixed number of cases from a fixed seed. For a long run (outside CI):
//! `MUSTER_FUZZ_SECONDS=600 cargo test --release --test fuzz_parsers -- --nocapture` runs each for that long from
//! a random seed and prints how many inputs it tried; a failure prints the seed and the input.

use std::path::Path;
use std::time::{Duration, Instant};

use muster::config::crew::parse_crew;
use muster::config::keymap::Keymap;
use muster::config::theme::{ColorMode, Theme};
use muster::config::{preset, user};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Valid files whose mutations reach deep into each parser.
const SEED_CREW: &str = "[defaults]\nbase = \"main\"\ninherit_env = [\"PATH\", \"LC_*\"]\n[[agent]]\nname = \"api\"\n\
                         kind = \"claude\"\nprompt = \"go\"\nenv = { A = \"1\" }\n[[agent]]\nname = \"t\"\n\
                         command = \"bash\"\nargs = [\"-c\", \"x\"]\nworktree = false\nenter_delay_ms = 5\n\
                         [[role]]\nname = \"rev\"\nkind = \"codex\"\nbrief = \"b\"\nread_only = true\nreviews = [\"api\"]\n\
                         [[wave]]\nwave = 2\napprove = true\nadvance = \"merged\"\n[[agent]]\nname = \"r\"\n\
                         role = \"rev\"\nwave = 2\nafter = [\"t\"]\nsetup = \"true\"\n";
const SEED_USER: &str = "theme = \"light\"\nbell = false\nscrollback = 500\ncheckpoint_minutes = 3\n[defaults]\n\
                         kind = \"codex\"\n";
const SEED_KEYMAP: &str = include_str!("../keymaps/default.toml");
const SEED_THEME: &str = include_str!("../themes/default.toml");
const SEED_STATE: &str = r#"{"version":1,"agents":[{"spec":{"name":"a","kind":"shell","command":"sh","args":[],"resume_args":[],"prompt_args":[],"env":{},"prompt":null,"base":null,"worktree":true,"enter_delay_ms":0,"hooks":null},"branch":"muster/a","base":"main","worktree":"/x","state":"stopped","exit":{"code":1,"signal":null},"ran":true,"port_base":20000,"session":"s"}]}"#;

/// Arbitrary bytes, or a valid file with bytes inserted, removed and replaced.
fn input(seed: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let edits =
        proptest::collection::vec((any::<usize>(), 0usize..3, proptest::collection::vec(any::<u8>(), 0..8)), 1..12);
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        edits.prop_map(move |edits| {
            let mut b = seed.to_vec();
            for (at, kind, bytes) in edits {
                let at = if b.is_empty() { 0 } else { at % b.len() };
                match kind {
                    0 => drop(b.splice(at..at, bytes)),
                    1 => drop(b.drain(at..(at + bytes.len()).min(b.len()))),
                    _ => {
                        for (i, x) in bytes.into_iter().enumerate() {
                            if let Some(slot) = b.get_mut(at + i) {
                                *slot = x;
                            }
                        }
                    }
                }
            }
            b
        }),
    ]
}

/// Feed `target` inputs: a fixed count from a fixed seed, or for `MUSTER_FUZZ_SECONDS` from a random seed.
fn fuzz(name: &str, seed_file: &'static [u8], mut target: impl FnMut(&[u8])) {
    let budget = std::env::var("MUSTER_FUZZ_SECONDS").ok().and_then(|s| s.parse::<u64>().ok());
    let seed: [u8; 32] = match budget {
        Some(_) => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let mix = now.as_nanos() ^ (std::process::id() as u128) << 64 ^ name.len() as u128;
            std::array::from_fn(|i| (mix >> ((i % 16) * 8)) as u8 ^ i as u8)
        }
        None => [7; 32],
    };
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let strategy = input(seed_file);
    let end = budget.map(|s| Instant::now() + Duration::from_secs(s));
    let mut cases = 0u64;
    loop {
        match end {
            Some(end) if Instant::now() >= end => break,
            None if cases >= 2000 => break,
            _ => {}
        }
        let bytes = strategy.new_tree(&mut runner).expect("an input").current();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&bytes)));
        if result.is_err() {
            panic!("{name}: panicked on input {:?} (seed {seed:?})", String::from_utf8_lossy(&bytes));
        }
        cases += 1;
    }
    eprintln!("{name}: {cases} inputs, no panic");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn crew_files() {
    let presets = preset::builtin();
    fuzz("crew", SEED_CREW.as_bytes(), |b| {
        let _ = parse_crew(Path::new("crew.toml"), &text(b), &presets, &Default::default());
    });
}

/// A manifest, as a new kind and as an override of a built-in one.
#[test]
fn agent_manifests() {
    let presets = preset::builtin();
    let claude = &presets["claude"];
    fuzz("manifests", include_bytes!("../assets/agents/claude.toml"), |b| {
        let _ = preset::parse_manifest(Path::new("x.toml"), &text(b), "x", None);
        let _ = preset::parse_manifest(Path::new("claude.toml"), &text(b), "claude", Some(claude));
    });
}

#[test]
fn user_config() {
    fuzz("config", SEED_USER.as_bytes(), |b| {
        let _ = user::parse_user_config(Path::new("config.toml"), &text(b));
    });
}

#[test]
fn keymaps() {
    fuzz("keymap", SEED_KEYMAP.as_bytes(), |b| {
        let mut km = Keymap::builtin();
        let _ = km.merge_file(Path::new("keymap.toml"), &text(b));
    });
}

#[test]
fn themes() {
    let dir = tempfile::tempdir().unwrap();
    fuzz("theme", SEED_THEME.as_bytes(), |b| {
        // Through the file, as themes are read: bytes that are not UTF-8 are a warning, not a panic.
        std::fs::write(dir.path().join("t.toml"), b).unwrap();
        let _ = Theme::load("t", &[dir.path().to_path_buf()], ColorMode::TrueColor);
    });
}

#[test]
fn protocol_frames_and_screen_damage() {
    use muster::protocol::{damage, frame};
    // A valid damage message to mutate: a small coloured screen.
    let mut model = muster::term::AlacrittyModel::new(6, 20, 10);
    muster::term::TerminalModel::feed(&mut model, "\x1b[31mred\x1b[0m 世界 e\u{301}\r\nnext".as_bytes());
    let screen = muster::term::TerminalModel::snapshot(&model);
    let seed: &'static [u8] = Box::leak(damage::encode(&damage::diff(None, &screen, 1)).into_boxed_slice());
    fuzz("damage", seed, |b| {
        if let Ok(d) = damage::decode(b) {
            let _ = damage::apply(&mut muster::term::Screen::default(), None, &d);
        }
        let mut r = frame::Reader::default();
        r.push(b);
        while let Ok(Some(_)) = r.next_frame() {}
        // What the server and a client decode from each other's frames.
        let _ = serde_json::from_slice::<muster::protocol::ToServer>(b);
        let _ = serde_json::from_slice::<muster::protocol::ToClient>(b);
        if let Ok((_, d)) = muster::protocol::parse_screen_frame(b) {
            let _ = damage::apply(&mut muster::term::Screen::default(), None, &d);
        }
    });
}

#[test]
fn state_files() {
    let dir = tempfile::tempdir().unwrap();
    fuzz("state", SEED_STATE.as_bytes(), |b| {
        let _ = muster::engine::store::parse(dir.path(), Path::new("state.json"), b.to_vec());
    });
}

/// The hook socket's requests (what agents' hooks and scripts send, one JSON line each), decoded as the server
/// decodes them, and the same bytes through a real line server in random pieces: nothing panics, every
/// connection ends, and a well-formed line after garbage is still served.
#[test]
fn hook_socket_lines() {
    use muster::engine::script_socket::Request;
    use muster::protocol::mail::MailOp;
    use std::io::{Read, Write};
    let requests = [
        Request::Hook {
            agent: "a".into(),
            token: "t".into(),
            event: "Stop".into(),
            detail: None,
            session: Some("s".into()),
        },
        Request::Mail {
            agent: Some("a".into()),
            token: Some("t".into()),
            op: MailOp::Send {
                to: vec!["b".into()],
                body: "hi".into(),
                reply_to: None,
                urgent: false,
                ask: false,
                expires: Some(1.5),
            },
        },
        Request::Wait {
            agents: vec!["a".into()],
            until: muster::engine::supervisor::WaitFor::Idle,
            timeout: Some(0.5),
            any: false,
        },
        Request::Send { agent: "a".into(), text: "go".into(), force: false, wait: true, from: None },
        Request::Status {},
    ];
    let seed: String = requests.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
    let seed: &'static [u8] = Box::leak(seed.into_bytes().into_boxed_slice());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.sock");
    let limits = muster::ipc::Limits { max_line: 4096, whole: Duration::from_secs(5), ..Default::default() };
    let _server = muster::ipc::serve_lines(&path, limits, |line, out| {
        let answer = match serde_json::from_str::<Request>(line) {
            Ok(_) => "ok\n",
            Err(_) => "error\n",
        };
        let _ = out.write_all(answer.as_bytes());
        muster::ipc::Flow::Continue
    })
    .unwrap();
    let mut cases = 0u64;
    fuzz("hook lines", seed, |b| {
        for line in b.split(|&c| c == b'\n') {
            if let Ok(text) = std::str::from_utf8(line) {
                let _ = serde_json::from_str::<Request>(text.trim_end());
            }
        }
        cases += 1;
        // One input in eight through the socket as well (a connection each is slower than parsing).
        if !cases.is_multiple_of(8) {
            return;
        }
        let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let cut = (cases as usize * 7919) % (b.len() + 1);
        let _ = s.write_all(&b[..cut]);
        let _ = s.write_all(&b[cut..]);
        let _ = s.write_all(b"\n{\"status\":{}}\n");
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        let whole_line_limit = b.split(|&c| c == b'\n').all(|l| l.len() <= 4096);
        assert!(!whole_line_limit || answer.ends_with("ok\n"), "{answer:?}");
    });
}
