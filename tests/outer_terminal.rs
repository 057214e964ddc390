//! muster in a PTY whose other end is this test, playing the operator's terminal: a terminal that speaks the
//! kitty keyboard protocol is asked for it, and a modified key (Shift-Enter) reaches an attached agent that
//! asked for it too; the colours the terminal reports are the ones agents are told; quitting hands the keyboard
//! back.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use muster::pty::{NativePty, PtyBackend, SpawnSpec};

const DEADLINE: Duration = Duration::from_secs(30);

struct Outer {
    writer: Box<dyn Write + Send>,
    rx: mpsc::Receiver<Vec<u8>>,
    raw: Vec<u8>,
    screen: vt100::Parser,
}

impl Outer {
    fn pump(&mut self) {
        while let Ok(b) = self.rx.recv_timeout(Duration::from_millis(20)) {
            self.raw.extend_from_slice(&b);
            self.screen.process(&b);
            // Answer what a kitty-capable terminal with a light background answers.
            let text = String::from_utf8_lossy(&b).into_owned();
            if text.contains("\x1b]11;?") {
                self.send(b"\x1b]10;rgb:1111/2222/3333\x1b\\\x1b]11;rgb:fafa/fafa/fafa\x1b\\");
            }
            if text.contains("\x1b[?u") {
                self.send(b"\x1b[?0u");
            }
            if text.contains("\x1b[6n") {
                self.send(b"\x1b[1;1R");
            }
            if text.contains("\x1b[c") {
                self.send(b"\x1b[?62;22c");
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
        self.writer.flush().unwrap();
    }

    fn wait(&mut self, what: &str, done: impl Fn(&Outer) -> bool) {
        let end = Instant::now() + DEADLINE;
        loop {
            self.pump();
            if done(self) {
                return;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}; screen:\n{}", self.screen.screen().contents());
        }
    }

    fn text(&self) -> String {
        self.screen.screen().contents()
    }

    /// The screen's text as one line, for output that wraps.
    fn joined(&self) -> String {
        self.text().replace('\n', "")
    }
}

#[test]
fn modified_keys_and_colours_come_from_the_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join(".muster")).unwrap();
    let git = |args: &[&str]| std::process::Command::new("git").args(args).current_dir(&repo).output().unwrap();
    git(&["init", "-q", "-b", "main"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "init"]);
    // The agent asks for the kitty protocol, asks for the background colour, then prints every byte it reads.
    let agent = r#"stty raw -echo; printf '\033[>1u\033]11;?\007'; while IFS= read -r -n1 -d '' c; do printf '<%d>' "'$c"; done"#;
    std::fs::write(
        repo.join(".muster/crew.toml"),
        format!("[[agent]]\nname = \"k\"\ncommand = \"bash\"\nargs = [\"-c\", {agent:?}]\n"),
    )
    .unwrap();
    let env = vec![
        ("PATH".to_string(), std::env::var("PATH").unwrap_or_default()),
        ("HOME".to_string(), dir.path().to_string_lossy().into_owned()),
        ("TMPDIR".to_string(), dir.path().to_string_lossy().into_owned()),
        ("TERM".to_string(), "xterm-256color".to_string()),
    ];
    let spec = SpawnSpec {
        program: env!("CARGO_BIN_EXE_muster").into(),
        args: vec!["-C".into(), repo.to_string_lossy().into_owned()],
        cwd: dir.path().to_path_buf(),
        env,
        rows: 40,
        cols: 120,
    };
    let process = NativePty.spawn(&spec).unwrap();
    let (tx, rx) = mpsc::channel();
    let mut reader = process.reader;
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut t = Outer { writer: process.writer, rx, raw: Vec::new(), screen: vt100::Parser::new(nz(40), nz(120), 0) };
    let mut waiter = process.waiter;

    // The terminal said it speaks the protocol: muster turns it on for itself.
    t.wait("the kitty protocol pushed", |t| t.raw.windows(5).any(|w| w == b"\x1b[>1u"));
    t.wait("the agent's well", |t| t.text().contains("─ k ─"));
    // The agent asked for the background and got the real terminal's (bytes 27 ] 1 1 ; r g b : f a f a …).
    let fafa = "<102><97><102><97>";
    t.wait("the agent's colour answer", |t| t.joined().contains(fafa));

    // Attach, then Shift-Enter as a kitty terminal sends it: the agent, in kitty mode, gets CSI 13;2u.
    t.send(b"\r");
    t.wait("attached", |t| t.text().contains("ATTACHED"));
    t.send(b"\x1b[13;2u");
    t.wait("shift-enter at the agent", |t| t.joined().contains("<27><91><49><51><59><50><117>"));
    // C-] as the kitty protocol encodes it still detaches.
    t.send(b"\x1b[93;5u");
    t.wait("detached", |t| !t.text().contains("ATTACHED"));

    // Stopping the crew (not just detaching): the agent and the server end too.
    t.send(b"Q");
    t.wait("stop confirmation", |t| t.text().contains("Stop the crew?"));
    t.send(b"y");
    let end = Instant::now() + DEADLINE;
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(waiter.wait());
    });
    loop {
        t.pump();
        if done_rx.try_recv().is_ok() {
            break;
        }
        assert!(Instant::now() < end, "muster did not exit");
    }
    t.pump();
    // The keyboard is handed back as it was.
    assert!(t.raw.windows(5).any(|w| w == b"\x1b[<1u"), "the kitty protocol was not popped");
}

fn nz(n: u16) -> std::num::NonZero<u16> {
    std::num::NonZero::new(n).expect("a size")
}
