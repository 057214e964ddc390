//! The mailbox with real agents in real PTYs: the demo agent (busy turns, a y/n question, a prompt) and shell
//! scripts that run `muster mail` and `muster hook` as any CLI agent would.

mod common;

use common::Rig;
use muster::engine::{AgentState, Command};
use muster::protocol::mail::ReceiptState as R;

fn demo(name: &str, think: f64) -> String {
    format!("[[agent]]\nname = \"{name}\"\nkind = \"demo\"\nargs = [\"demo-agent\", \"--think\", \"{think}\"]\n")
}

fn mail(to: &str, body: &str, urgent: bool) -> Command {
    Command::MailSend { to: vec![to.into()], body: body.into(), reply_to: None, urgent }
}

/// A reply from `from` to message `id`.
fn reply_from(rig: &Rig, from: &str, id: i64) -> Option<muster::protocol::mail::Mail> {
    rig.mail.values().find(|m| m.from == from && m.reply_to == Some(id)).cloned()
}

#[test]
fn mail_waits_for_the_turn_to_end_and_never_goes_into_the_question() {
    let mut rig = Rig::new(&demo("api", 0.8), "api");
    rig.wait_for("api at work", |r| r.state("api") == Some(AgentState::Busy));
    rig.engine.send(mail("api", "please add a test for greet()", false));
    rig.wait_for("the mail queued", |r| r.receipt(1, "api") == Some(R::Queued));
    rig.wait_for("its question", |r| {
        // Busy, then asking: the mail waits all along, and is never typed into the question.
        assert_eq!(r.receipt(1, "api"), Some(R::Queued), "{:?}", r.mail);
        assert!(!r.screen_text("api").contains("[muster mail"), "{}", r.screen_text("api"));
        r.state("api") == Some(AgentState::Waiting)
    });
    assert_eq!(rig.agents["api"].mail.pending, 1);
    rig.engine.send(Command::Steer { name: "api".into(), text: "y".into(), force: true });
    rig.wait_for("the mail delivered at its prompt, read and answered", |r| {
        r.screen_text("api").contains("✉ 1 message(s)") && r.receipt(1, "api") == Some(R::Acked)
    });
    let screen = rig.screen_text("api");
    assert!(screen.contains("✔ applied"), "the question was answered by the operator's y: {screen}");
    assert!(!screen.contains("please answer y or n"), "{screen}");
    let history = muster::mailbox::Store::open_in(&rig.root).unwrap().history(1).unwrap();
    let steps: Vec<R> = history.iter().filter(|h| h.recipient == "api").map(|h| h.state).collect();
    assert_eq!(steps, [R::Queued, R::Delivering, R::Delivered, R::Seen, R::Acked], "{history:?}");
    // Its reply is in the same thread, and reached the operator's mailbox.
    rig.wait_for("the reply", |r| reply_from(r, "api", 1).is_some());
    let reply = reply_from(&rig, "api", 1).unwrap();
    assert_eq!(reply.thread, 1);
    assert!(reply.body.starts_with("done: please add a test"), "{reply:?}");
    assert_eq!(reply.receipt("operator").unwrap().state, R::Delivered);
    rig.wait_for("the roster's unread mark", |r| r.agents["api"].mail.unread == 1 && r.agents["api"].mail.pending == 0);
}

#[test]
fn urgent_mail_goes_into_a_busy_agent_whose_cli_queues_input_but_not_into_its_question() {
    let mut rig = Rig::new(&demo("api", 2.0), "api");
    rig.wait_for("api at work", |r| r.state("api") == Some(AgentState::Busy));
    rig.engine.send(mail("api", "stop and run the tests", true));
    rig.wait_for("typed while it works", |r| {
        r.receipt(1, "api") == Some(R::Delivering) && r.state("api") == Some(AgentState::Busy)
    });
    rig.wait_for("its turn ends: the CLI holds the mail", |r| r.receipt(1, "api") == Some(R::Delivered));
    rig.wait_for("the question, unanswered", |r| r.state("api") == Some(AgentState::Waiting));
    let screen = rig.screen_text("api");
    assert!(!screen.contains("please answer y or n") && !screen.contains("✔ applied"), "{screen}");
    rig.engine.send(Command::Steer { name: "api".into(), text: "y".into(), force: true });
    rig.wait_for("read after the question", |r| {
        r.screen_text("api").contains("✉ 1 message(s)") && r.receipt(1, "api") == Some(R::Acked)
    });
    assert!(rig.screen_text("api").contains("✔ applied"));
}

#[test]
fn an_ask_marks_the_agent_waiting_on_the_operator_and_the_answer_reaches_it() {
    // The demo agent named docs asks the operator a question with `muster mail ask`.
    let mut rig = Rig::new(&demo("docs", 0.3), "docs");
    rig.wait_for("the question in the roster", |r| {
        r.agents
            .get("docs")
            .is_some_and(|a| a.mail.asking.as_deref() == Some("Should the README mention the new greeting?"))
    });
    let ask = rig.mail.values().find(|m| m.ask).cloned().unwrap();
    assert!(ask.open_question() && ask.from == "docs" && ask.to == ["operator"], "{ask:?}");
    rig.engine.send(Command::MailSend {
        to: vec!["docs".into()],
        body: "Yes, one line under Usage.".into(),
        reply_to: Some(ask.id),
        urgent: false,
    });
    rig.wait_for("answered", |r| {
        r.receipt(ask.id, "operator") == Some(R::Acked) && r.agents["docs"].mail.asking.is_none()
    });
    rig.wait_for("its y/n question", |r| r.state("docs") == Some(AgentState::Waiting));
    rig.engine.send(Command::Steer { name: "docs".into(), text: "y".into(), force: true });
    let answer = ask.id + 1;
    rig.wait_for("the answer typed in, and thanked for", |r| reply_from(r, "docs", answer).is_some());
    assert_eq!(reply_from(&rig, "docs", answer).unwrap().thread, ask.id);
    assert!(rig.screen_text("docs").contains("Yes, one line under Usage."), "{}", rig.screen_text("docs"));
}

#[test]
fn mail_to_an_agent_that_exits_is_a_dead_letter_the_operator_can_retry() {
    let script = "printf 'Continue? [y/n] '; while [ ! -e stop ]; do sleep 0.05; done; exit 3";
    let crew = format!("[[agent]]\nname = \"x\"\nkind = \"demo\"\ncommand = \"bash\"\nargs = [\"-c\", \"{script}\"]\n");
    let mut rig = Rig::new(&crew, "x");
    rig.wait_for("its question", |r| r.state("x") == Some(AgentState::Waiting));
    rig.engine.send(mail("x", "are you there?", false));
    rig.wait_for("queued", |r| r.receipt(1, "x") == Some(R::Queued));
    let worktree = rig.agents["x"].worktree.clone();
    std::fs::write(worktree.join("stop"), "").unwrap();
    rig.wait_for("a dead letter", |r| r.receipt(1, "x") == Some(R::Dead));
    let detail = rig.mail[&1].receipt("x").unwrap().detail.clone().unwrap_or_default();
    assert!(detail.contains("x exited before it was delivered"), "{detail}");
    rig.wait_for("the roster's dead mark", |r| r.agents["x"].mail.dead == 1);
    rig.engine.send(Command::MailRetry { id: 1, recipient: "x".into() });
    rig.wait_for("held for it while it is not running", |r| r.receipt(1, "x") == Some(R::Held));
    std::fs::remove_file(worktree.join("stop")).unwrap();
    rig.engine.send(Command::Start { name: "x".into(), resume: false });
    rig.wait_for("queued again for the new run, still not typed into its question", |r| {
        r.receipt(1, "x") == Some(R::Queued) && r.state("x") == Some(AgentState::Waiting)
    });
}

#[test]
fn an_agent_cannot_send_as_another() {
    let script = "{muster} mail send --to operator 'from a'; MUSTER_AGENT=b {muster} mail send --to operator 'as b'; \
                  echo rc=$?; MUSTER_AGENT_TOKEN=forged {muster} mail send --to operator forged; echo rc2=$?; exec sleep 600";
    let crew = format!(
        "[[agent]]\nname = \"a\"\ncommand = \"bash\"\nargs = [\"-c\", \"{script}\"]\n\
         [[agent]]\nname = \"b\"\ncommand = \"bash\"\nargs = [\"-c\", \"exec sleep 600\"]\n"
    );
    let mut rig = Rig::new(&crew, "a");
    rig.wait_for("its three sends", |r| r.screen_text("a").contains("rc2="));
    let screen = rig.screen_text("a");
    assert!(screen.contains("rc=1") && screen.contains("rc2=1"), "{screen}");
    assert!(screen.contains("cannot act as b"), "{screen}");
    rig.wait_for("its own mail", |r| r.mail.values().any(|m| m.from == "a" && m.body == "from a"));
    assert_eq!(rig.mail.len(), 1, "nothing else was sent: {:?}", rig.mail);
}

/// Claude Code's Stop hook (here a script that runs `muster hook Stop` as Claude would) takes the agent's mail
/// as its next turn: JSON on stdout that tells the CLI to go on with the mail as its instruction.
#[test]
fn a_stop_hook_hands_the_mail_over_as_the_next_turn() {
    let script = "printf 'Go? [y/n] '; while [ ! -e go ]; do sleep 0.05; done; echo; {muster} hook Stop </dev/null; \
                  echo hook-done; exec sleep 600";
    let crew = format!("[[agent]]\nname = \"c\"\nkind = \"demo\"\ncommand = \"bash\"\nargs = [\"-c\", \"{script}\"]\n");
    let mut rig = Rig::new(&crew, "c");
    rig.wait_for("its question", |r| r.state("c") == Some(AgentState::Waiting));
    rig.engine.send(mail("c", "check the tests", false));
    rig.wait_for("queued", |r| r.receipt(1, "c") == Some(R::Queued));
    std::fs::write(rig.agents["c"].worktree.join("go"), "").unwrap();
    rig.wait_for("handed over by the hook", |r| r.screen_text("c").contains("hook-done"));
    let screen = rig.screen_text("c");
    assert!(screen.contains(r#"{"decision":"block","reason":"[muster mail #1 from operator]"#), "{screen}");
    // Delivered, and seen once the screen moves after the hook (the mail's turn starting, in a real CLI).
    rig.wait_for("delivered by hook", |r| matches!(r.receipt(1, "c"), Some(R::Delivered | R::Seen)));
    assert_eq!(rig.mail[&1].receipt("c").unwrap().detail.as_deref(), Some("hook"));
}

/// `muster mail` as the operator, from the command line, while the crew runs: send, status, wait, inbox.
#[test]
fn the_operator_mails_from_the_command_line() {
    let mut rig = Rig::new(&demo("api", 0.3), "api");
    rig.wait_for("its question", |r| r.state("api") == Some(AgentState::Waiting));
    let (ok, out) = rig.muster(&["mail", "send", "--to", "api", "hello from a script"]);
    assert!(ok && out.trim() == "#1", "{out}");
    let (ok, out) = rig.muster(&["mail", "wait", "1", "--until", "seen", "--timeout", "0.2"]);
    assert!(!ok && out.is_empty(), "timed out while api asks its question: {out}");
    let (ok, out) = rig.muster(&["mail", "status", "1"]);
    assert!(ok && out.contains("api: queued"), "{out}");
    rig.engine.send(Command::Steer { name: "api".into(), text: "n".into(), force: true });
    let (ok, out) = rig.muster(&["mail", "wait", "1", "--until", "acked", "--timeout", "30"]);
    assert!(ok, "{out}");
    let (ok, out) = rig.muster(&["mail", "inbox"]);
    assert!(ok && out.contains("api → operator") && out.contains("done: hello from a script"), "{out}");
    let (ok, out) = rig.muster(&["mail", "send", "--to", "nobody", "x"]);
    assert!(!ok && out.contains("no agent named nobody (the crew: api"), "{out}");
}

/// A corrupt mailbox is said once, and the crew runs without mail.
#[test]
fn a_corrupt_mailbox_leaves_the_crew_running() {
    let crew = "[[agent]]\nname = \"a\"\ncommand = \"bash\"\nargs = [\"-c\", \"echo alive; exec sleep 600\"]\n";
    let mut rig = Rig::with_setup(crew, "a", |root| {
        std::fs::write(root.join(".muster/mail.db"), vec![b'x'; 4096]).unwrap();
    });
    rig.wait_for("the agent, and the reason there is no mail", |r| {
        r.screen_text("a").contains("alive") && r.messages.iter().any(|m| m.contains("not a readable mail database"))
    });
    let (ok, out) = rig.muster(&["mail", "send", "--to", "a", "x"]);
    assert!(!ok && out.contains("the mailbox is not available"), "{out}");
}

/// Mail that could not be delivered in time expires (the agent kept asking its question), and says so.
#[test]
fn undelivered_mail_expires() {
    let mut rig = Rig::new(&demo("api", 0.2), "api");
    rig.wait_for("its question", |r| r.state("api") == Some(AgentState::Waiting));
    let (ok, out) = rig.muster(&["mail", "send", "--to", "api", "--expires", "0.3", "soon stale"]);
    assert!(ok, "{out}");
    rig.wait_for("expired", |r| r.receipt(1, "api") == Some(R::Expired));
    assert_eq!(rig.mail[&1].receipt("api").unwrap().detail.as_deref(), Some("not delivered in time"));
    let (ok, out) = rig.muster(&["mail", "wait", "1", "--until", "delivered"]);
    assert!(!ok && out.contains("expired"), "{out}");
}

/// An agent's mail can carry terminal controls (a title, the clipboard through OSC 52, a cleared screen, hidden
/// text): `muster mail inbox` and `read` print it without them, on the operator's own terminal.
#[test]
fn terminal_controls_in_mail_never_reach_the_operators_terminal() {
    let crew = r#"[[agent]]
name = "a"
command = "bash"
args = ['-c', 'printf "hi\033]0;owned\007\033]52;c;ZXZpbA==\007\033[2J\033[8mhidden\033[0m\r\n2nd" | {muster} mail send --to operator; echo sent; exec sleep 600']
"#;
    let mut rig = Rig::new(crew, "a");
    rig.wait_for("its mail", |r| r.mail.values().any(|m| m.from == "a"));
    let id = rig.mail.values().find(|m| m.from == "a").unwrap().id;
    assert!(rig.mail[&id].body.contains('\x1b'), "the mail is stored as written: {:?}", rig.mail[&id].body);
    for args in [vec!["mail", "inbox"], vec!["mail", "read", &id.to_string()]] {
        let (ok, out) = rig.muster(&args);
        assert!(ok, "{out}");
        assert!(!out.contains('\x1b') && !out.contains('\x07') && !out.contains('\r'), "{args:?}: {out:?}");
        assert!(out.contains("hi]0;owned") && out.contains("hidden"), "{args:?}: {out:?}");
    }
}

/// The longest message is said by its limit, not as a broken pipe; one just under it goes through whole.
#[test]
fn a_message_over_the_limit_is_refused_by_name() {
    let crew = "[[agent]]\nname = \"a\"\ncommand = \"bash\"\nargs = [\"-c\", \"exec sleep 600\"]\n";
    let rig = Rig::new(crew, "a");
    let max = muster::protocol::mail::MAX_BODY;
    let big = max + 1;
    let (ok, out) = rig.muster(&["mail", "send", "--to", "a", &"x".repeat(big)]);
    assert!(!ok && out.contains(&format!("a message is at most {max} bytes; this one is {big}")), "{out}");
    let (ok, out) = rig.muster(&["send", "a", &"y".repeat(big)]);
    assert!(!ok && out.contains(&format!("at most {max} bytes")), "{out}");
    // A megabyte on stdin (it broke the pipe before).
    for args in [&["mail", "send", "--to", "a"][..], &["send", "a"][..]] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_muster"))
            .args(args)
            .current_dir(&rig.root)
            .env_remove("MUSTER_AGENT")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &vec![b'z'; 1 << 20]));
        let out = child.wait_with_output().unwrap();
        let _ = writer.join();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(&format!("a message is at most {max} bytes")), "{args:?}: {err}");
    }
    // Every byte escaped in JSON, a message of the longest size still fits a request.
    let (ok, out) = rig.muster(&["mail", "send", "--to", "a", &"\"".repeat(max)]);
    assert!(ok && out.trim() == "#1", "{out}");
}
