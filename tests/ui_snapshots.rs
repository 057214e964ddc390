//! Snapshots of the whole screen at 120x40, 80x24 and 50x12: roster, detail well, overlays.

use muster::app::{update, AgentView, Msg, State};
use muster::config::keymap::Keymap;
use muster::config::theme::{ColorMode, Theme};
use muster::engine::{AgentInfo, AgentState, Event};
use muster::git::checkpoint::{Checkpoint, DiffBase, FileDiff, LineKind};
use muster::git::diffstat::DiffStat;
use muster::key::Key;
use muster::pty::ExitInfo;
use muster::term::{AlacrittyModel, TerminalModel};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const NOW: u64 = 1_700_000_000_000;

fn agent(name: &str, kind: &str, state: AgentState, added: usize, removed: usize, ago_s: u64) -> AgentView {
    AgentView {
        info: AgentInfo {
            name: name.into(),
            kind: kind.into(),
            branch: format!("muster/{name}"),
            base: "main".into(),
            worktree: format!("/repo/.muster/worktrees/{name}").into(),
            state,
            exit: (state == AgentState::Exited).then_some(ExitInfo { code: Some(3), signal: None }),
            last_output_ms: Some(NOW - ago_s * 1000),
            title: None,
            port_base: 20000,
            pid: None,
            diffstat: DiffStat { files: 1, added, removed, untracked: usize::from(name == "docs") * 2 },
            error: None,
            checkpoints: added % 7,
            rolled_back: name == "docs",
            why: if state == AgentState::Waiting { "screen rule `question`".into() } else { String::new() },
            mail: Default::default(),
            crew_file: Default::default(),
            paused_by: if name == "api" { "cgroup v2 freezer".into() } else { String::new() },
            gate: Default::default(),
            gates_stopped: false,
            findings: 0,
            wave: None,
            pending: false,
            review: None,
            parent: None,
            result: None,
        },
        screen: None,
        checkpoints: Vec::new(),
        attention: state == AgentState::Waiting,
        unseen: false,
        in_turn: false,
    }
}

fn state(width: u16, height: u16) -> State {
    let mut s = State::new(
        "acme-api".into(),
        Keymap::builtin(),
        Theme::builtin("default", ColorMode::TrueColor),
        (width, height),
    );
    s.agents = vec![
        agent("planner", "claude", AgentState::Busy, 120, 4, 2),
        agent("api", "codex", AgentState::Waiting, 311, 90, 14),
        agent("docs", "aider", AgentState::Idle, 12, 0, 180),
        agent("tests", "shell", AgentState::Paused, 0, 0, 40),
        agent("old", "demo", AgentState::Exited, 5, 1, 7200),
    ];
    update(&mut s, Msg::Tick(NOW));
    update(&mut s, Msg::Resize(width, height));
    let overlaps = muster::git::overlap::OverlapReport {
        overlaps: vec![
            muster::git::overlap::Overlap {
                a: "api".into(),
                b: "planner".into(),
                files: vec!["src/api.rs".into(), "src/lib.rs".into()],
                conflicts: vec!["src/api.rs".into()],
            },
            muster::git::overlap::Overlap {
                a: "docs".into(),
                b: "old".into(),
                files: vec!["README.md".into()],
                conflicts: vec![],
            },
        ],
        merge_order: vec!["docs".into(), "old".into(), "api".into(), "planner".into()],
    };
    update(&mut s, Msg::Engine(Event::Overlaps(overlaps)));
    mail(&mut s);
    // The selected agent's terminal, as the emulator would produce it.
    let area = muster::ui::layout::areas(width, height, s.agents.len(), true, false);
    let (rows, cols) = area.terminal.map_or((10, 40), |t| (t.height, t.width));
    let mut model = AlacrittyModel::new(rows, cols, 100);
    model.feed("\x1b[1;36m◆ codex\x1b[0m working on \x1b[4msrc/api.rs\x1b[0m\r\n\x1b[32m+ fn health()\x1b[0m\r\n\x1b[31m- fn ping()\x1b[0m\r\n界 wide chars ok\r\n\r\nAllow command? [y/N] ".as_bytes());
    s.agents[1].screen = Some(std::sync::Arc::new(model.snapshot()));
    s.selected = 1;
    s
}

/// A crew's mail: a request and its reply, a question to the operator, a dead letter; and the roster's marks.
fn mail(s: &mut State) {
    use muster::protocol::mail::{Mail, Receipt, ReceiptState as R};
    let receipt = |who: &str, state: R, detail: Option<&str>| Receipt {
        recipient: who.into(),
        state,
        detail: detail.map(String::from),
        attempts: 0,
        at_ms: NOW - 5_000,
    };
    let m = |id: i64, thread: i64, from: &str, to: &str, body: &str, receipts: Vec<Receipt>| Mail {
        id,
        thread,
        reply_to: (thread != id).then_some(thread),
        from: from.into(),
        to: vec![to.into()],
        body: body.into(),
        urgent: false,
        ask: false,
        created_ms: NOW - (60 - id as u64 * 10) * 1000,
        receipts,
    };
    let mails = vec![
        m(
            1,
            1,
            "planner",
            "api",
            "Please add a test for greet().\nThe plan is in demo/planner.txt.",
            vec![receipt("api", R::Acked, Some("reply #2"))],
        ),
        m(2, 1, "api", "planner", "done: added tests/greet.rs", vec![receipt("planner", R::Queued, None)]),
        Mail {
            ask: true,
            ..m(
                3,
                3,
                "docs",
                "operator",
                "Should the README mention the new greeting?",
                vec![receipt("operator", R::Delivered, Some("mailbox"))],
            )
        },
        m(
            4,
            4,
            "operator",
            "old",
            "Please rebase on main.",
            vec![receipt("old", R::Dead, Some("old exited before it was delivered"))],
        ),
    ];
    update(s, Msg::Engine(Event::Mail(mails)));
    for a in &mut s.agents {
        let marks = &mut a.info.mail;
        match a.info.name.as_str() {
            "planner" => marks.pending = 1,
            "docs" => {
                marks.unread = 1;
                marks.asking = Some("Should the README mention the new greeting?".into());
            }
            "old" => marks.dead = 1,
            _ => {}
        }
    }
}

fn draw(s: &State) -> String {
    let mut terminal = Terminal::new(TestBackend::new(s.size.0, s.size.1)).unwrap();
    terminal.draw(|f| muster::ui::render(s, f)).unwrap();
    format!("{}", terminal.backend())
}

#[test]
fn workbench_120x40() {
    insta::assert_snapshot!(draw(&state(120, 40)));
}

/// A crew as waves: each wave under its heading, pending agents `·` with what they wait for, at three sizes.
fn waves(width: u16, height: u16) -> State {
    let mut s = state(width, height);
    s.agents.truncate(4);
    for (a, wave) in s.agents.iter_mut().zip([1, 2, 2, 3]) {
        a.info.wave = Some(wave);
    }
    for a in s.agents.iter_mut().skip(1) {
        a.info.state = AgentState::Stopped;
        a.info.pending = true;
        a.info.last_output_ms = None;
        a.info.why = "pending: after planner (busy ✗2/4 test, done when green)".into();
    }
    s
}

#[test]
fn waves_120x40_80x24_50x12() {
    insta::assert_snapshot!("waves_120x40", draw(&waves(120, 40)));
    insta::assert_snapshot!("waves_80x24", draw(&waves(80, 24)));
    insta::assert_snapshot!("waves_50x12", draw(&waves(50, 12)));
}

/// A lead's crew as a tree: children under their parent whatever the crew file's order, one done with its
/// result in the roster and the well (a hostile summary's escapes drawn as nothing), and the keys that fold, open
/// and walk it.
fn lead_tree(width: u16, height: u16) -> State {
    let mut s = state(width, height);
    s.agents = vec![
        agent("lead", "claude", AgentState::Busy, 40, 2, 1),
        agent("solo", "codex", AgentState::Idle, 3, 0, 60),
        agent("helper-a", "demo", AgentState::Idle, 12, 1, 5),
        agent("helper-b", "demo", AgentState::Busy, 7, 0, 0),
        agent("sub", "demo", AgentState::Idle, 1, 0, 9),
    ];
    for (i, parent) in [(2, "lead"), (3, "lead"), (4, "helper-b")] {
        s.agents[i].info.parent = Some(parent.into());
    }
    s.agents[2].info.result = Some(muster::protocol::lead::ResultMark {
        attempt: 1,
        status: muster::protocol::lead::ResultStatus::Done,
        summary: "wrote the parser \x1b[2J\x07tests".into(),
        current: true,
    });
    s.selected = 0;
    s
}

fn press(s: &mut State, keys: &str) {
    for k in keys.split(' ') {
        update(s, Msg::Key(Key::parse(k).unwrap()));
    }
}

#[test]
fn a_lead_and_its_helpers_as_a_tree_120x40_80x24_50x12() {
    for (w, h) in [(120, 40), (80, 24), (50, 12)] {
        let mut s = lead_tree(w, h);
        press(&mut s, "j j");
        assert_eq!(s.selected_name().as_deref(), Some("helper-b"), "the tree's order, not the crew file's");
        let screen = draw(&s);
        assert!(!screen.contains('\u{1b}') && !screen.contains('\u{7}'), "{screen}");
        insta::assert_snapshot!(format!("lead_tree_{w}x{h}"), screen);
    }
    let mut s = lead_tree(120, 40);
    press(&mut s, "j");
    assert!(draw(&s).contains("✓ done: wrote the parser"), "a done child's result in its well");
    // `h` on a child goes to its parent; on the parent it folds; `j` then skips what the fold hides.
    press(&mut s, "h");
    assert_eq!(s.selected_name().as_deref(), Some("lead"));
    press(&mut s, "h j");
    assert_eq!(s.selected_name().as_deref(), Some("solo"));
    let folded = draw(&s);
    assert!(folded.contains("lead +3") && !folded.contains("helper-a"), "{folded}");
    // `l` on the folded parent opens it; again goes to its first child; `G` is the tree's last.
    press(&mut s, "k l l");
    assert_eq!(s.selected_name().as_deref(), Some("helper-a"));
    press(&mut s, "G");
    assert_eq!(s.selected_name().as_deref(), Some("solo"));
    // Selecting an agent out of sight opens the folds above it.
    press(&mut s, "g j j h");
    assert_eq!(s.selected_name().as_deref(), Some("helper-b"));
    assert!(s.folded.contains("helper-b"));
    press(&mut s, "l");
    assert_eq!(s.selected_name().as_deref(), Some("helper-b"));
    press(&mut s, "l");
    assert_eq!(s.selected_name().as_deref(), Some("sub"));
    press(&mut s, "l");
    assert!(s.status.as_ref().is_some_and(|(m, _)| m.contains("no children")), "{:?}", s.status);
}

#[test]
fn workbench_80x24() {
    insta::assert_snapshot!(draw(&state(80, 24)));
}

#[test]
fn roster_only_50x12() {
    insta::assert_snapshot!(draw(&state(50, 12)));
}

#[test]
fn one_line_at_40x3() {
    insta::assert_snapshot!(draw(&state(40, 3)));
}

#[test]
fn attached_80x24() {
    let mut s = state(80, 24);
    update(&mut s, Msg::Key(Key::parse("enter").unwrap()));
    assert!(s.attached);
    insta::assert_snapshot!(draw(&s));
}

#[test]
fn help_overlay_120x40() {
    let mut s = state(120, 40);
    update(&mut s, Msg::Key(Key::parse("?").unwrap()));
    insta::assert_snapshot!(draw(&s));
}

#[test]
fn steer_and_quit_dialogs_80x24() {
    let mut s = state(80, 24);
    update(&mut s, Msg::Key(Key::parse("s").unwrap()));
    for c in "use the new error type".chars() {
        update(&mut s, Msg::Key(Key::char(c)));
    }
    let steer = draw(&s);
    update(&mut s, Msg::Key(Key::parse("esc").unwrap()));
    update(&mut s, Msg::Key(Key::parse("q").unwrap()));
    insta::assert_snapshot!(format!("{steer}\n{}", draw(&s)));
}

#[test]
fn every_size_renders_without_panic() {
    for w in 0..=130u16 {
        for h in [0u16, 1, 2, 3, 5, 12, 15, 16, 24, 40] {
            let mut s = state(w.max(1), h.max(1));
            s.size = (w, h);
            let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
            terminal.draw(|f| muster::ui::render(&s, f)).unwrap();
        }
    }
}

fn timeline_state(width: u16, height: u16) -> State {
    let mut s = state(width, height);
    update(&mut s, Msg::Key(Key::parse("tab").unwrap()));
    let cp = |n: u32, trigger: &str, ago: i64, files, added, removed| Checkpoint {
        n,
        id: format!("{n:040}"),
        time: (NOW / 1000) as i64 - ago,
        trigger: trigger.into(),
        head: String::new(),
        branch: "refs/heads/muster/api".into(),
        files,
        added,
        removed,
        unsettled: vec![],
        skipped: vec![],
        green: n == 3,
    };
    let checkpoints = vec![
        cp(4, "rescue before rollback to 2", 30, 0, 0, 0),
        cp(3, "turn", 95, 2, 14, 3),
        cp(2, "periodic", 400, 1, 2, 0),
        cp(1, "turn", 900, 3, 40, 0),
    ];
    update(&mut s, Msg::Engine(Event::Timeline { name: "api".into(), checkpoints }));
    update(&mut s, Msg::Key(Key::parse("j").unwrap()));
    let line = |k, t: &str| (k, t.to_string());
    let files = vec![
        FileDiff {
            path: "src/api.rs".into(),
            status: 'M',
            added: 2,
            removed: 1,
            lines: vec![
                line(LineKind::Hunk, "@@ -1,3 +1,4 @@ mod api"),
                line(LineKind::Context, "fn main() {"),
                line(LineKind::Removed, "    ping();"),
                line(LineKind::Added, "    health();"),
                line(LineKind::Added, "    ready();"),
                line(LineKind::Context, "}"),
            ],
        },
        FileDiff { path: "tests/health.rs".into(), status: 'A', added: 12, removed: 2, lines: vec![] },
    ];
    update(&mut s, Msg::Engine(Event::CheckpointDiff { name: "api".into(), n: 3, base: DiffBase::Previous, files }));
    update(&mut s, Msg::Key(Key::parse("space").unwrap()));
    s
}

#[test]
fn timeline_120x40() {
    insta::assert_snapshot!(draw(&timeline_state(120, 40)));
}

#[test]
fn timeline_80x24() {
    insta::assert_snapshot!(draw(&timeline_state(80, 24)));
}

#[test]
fn rollback_confirmation_lists_files() {
    let mut s = timeline_state(80, 24);
    update(
        &mut s,
        Msg::Engine(Event::RollbackPreview {
            name: "api".into(),
            n: 3,
            files: None,
            changes: vec!["src/api.rs".into(), "tests/health.rs".into()],
            moves_head: true,
        }),
    );
    insta::assert_snapshot!(draw(&s));
}

fn conflict_state(width: u16, height: u16) -> State {
    use muster::git::merge::{ConflictFile, ConflictKind};
    let mut s = state(width, height);
    let files = vec![
        ConflictFile { path: "src/api.rs".into(), kind: ConflictKind::Content, unresolved: Some(2) },
        ConflictFile { path: "assets/logo.png".into(), kind: ConflictKind::Binary, unresolved: None },
        ConflictFile { path: "old.rs".into(), kind: ConflictKind::DeletedByThem, unresolved: None },
    ];
    update(&mut s, Msg::Engine(Event::MergeConflicts { name: "api".into(), into_agent: false, files }));
    let text = "fn main() {\n<<<<<<< main\n    ping();\n||||||| base\n    old();\n=======\n    health();\n>>>>>>> muster/api\n}\n\
                fn two() {\n<<<<<<< main\n    a();\n=======\n    b();\n>>>>>>> muster/api\n}\n";
    update(
        &mut s,
        Msg::Engine(Event::ConflictFile {
            name: "api".into(),
            path: "src/api.rs".into(),
            parsed: muster::conflict::parse(text.as_bytes(), 7),
        }),
    );
    s
}

#[test]
fn conflict_view_120x40() {
    let mut s = conflict_state(120, 40);
    update(&mut s, Msg::Key(Key::parse("a").unwrap()));
    insta::assert_snapshot!(draw(&s));
}

#[test]
fn conflict_view_80x24() {
    insta::assert_snapshot!(draw(&conflict_state(80, 24)));
}

#[test]
fn crew_mailbox_with_an_open_thread_120x40() {
    let mut s = state(120, 40);
    update(&mut s, Msg::Key(Key::parse("I").unwrap()));
    for k in ["j", "j", "enter"] {
        update(&mut s, Msg::Key(Key::parse(k).unwrap()));
    }
    insta::assert_snapshot!(draw(&s));
}

#[test]
fn agent_mail_tab_80x24() {
    let mut s = state(80, 24);
    s.selected = 2;
    update(&mut s, Msg::Key(Key::parse("i").unwrap()));
    let list = draw(&s);
    update(&mut s, Msg::Key(Key::parse("enter").unwrap()));
    insta::assert_snapshot!(format!("{list}\n{}", draw(&s)));
}

#[test]
fn mailbox_in_a_small_pane_60x16() {
    let mut s = state(60, 16);
    update(&mut s, Msg::Key(Key::parse("I").unwrap()));
    insta::assert_snapshot!(draw(&s));
}

#[test]
fn answering_a_question_80x24() {
    let mut s = state(80, 24);
    s.selected = 2;
    update(&mut s, Msg::Key(Key::parse("a").unwrap()));
    for c in "Yes, under Usage.".chars() {
        update(&mut s, Msg::Key(Key::char(c)));
    }
    insta::assert_snapshot!(draw(&s));
}

/// An agent that could not start: the well shows the whole reason, wrapped (the roster's line cuts it).
#[test]
fn an_agent_in_error_shows_its_whole_reason_80x24() {
    let mut s = state(80, 24);
    let mut bad = agent("broken", "custom", AgentState::Error, 0, 0, 5);
    bad.info.error = Some(
        "starting `no-such-cli`: Unable to spawn no-such-cli because it doesn't exist on the filesystem and no \
         viable candidates were found in PATH"
            .into(),
    );
    s.agents.push(bad);
    for _ in 0..5 {
        update(&mut s, Msg::Key(Key::parse("j").unwrap()));
    }
    let text = draw(&s);
    let flat: String = text.replace('"', " ").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("broken could not start"), "{text}");
    assert!(flat.contains("found in PATH"), "the end of the reason: {text}");
    insta::assert_snapshot!(text);
}

/// The config files' warnings and the latest messages, listed (`!`).
#[test]
fn messages_list_80x24() {
    let mut s = state(80, 24);
    s.warnings = vec![
        "/home/u/.config/muster/config.toml:2:1: unknown key `scrolback` (known: theme, bell, scrollback, \
         checkpoint_minutes, defaults); ignored"
            .into(),
        "/home/u/.config/muster/keymaps/default.toml:2:7: [roster] key `z`: unknown action `no_such_action`".into(),
    ];
    s.messages.push_back((NOW - 90_000, "api: checkpoint 3 (key)".into(), false));
    s.messages.push_back((NOW - 5_000, "docs: merge refused: /repo has uncommitted changes (x.txt)".into(), true));
    update(&mut s, Msg::Key(Key::parse("!").unwrap()));
    insta::assert_snapshot!(draw(&s));
}

/// The crew file changed while the crew ran: the roster says, per agent, what waits for the operator's key; a
/// turn that ended out of view is marked (•).
#[test]
fn crew_file_changes_in_the_roster_120x40() {
    use muster::protocol::CrewFileMark;
    let mut s = state(120, 40);
    let mut new = agent("frontend-reviewer-v2", "claude", AgentState::Stopped, 0, 0, 0);
    new.info.last_output_ms = None;
    new.info.crew_file = CrewFileMark::Added;
    s.agents.push(new);
    s.agents[0].info.crew_file = CrewFileMark::Changed;
    s.agents[4].info.crew_file = CrewFileMark::Left;
    // docs finished a turn while api was on screen.
    s.agents[2].unseen = true;
    let text = draw(&s);
    assert!(text.lines().any(|l| l.starts_with("\"•○ docs")), "{text}");
    // A name longer than its column keeps its start and end.
    assert!(text.contains(" frontend…r-v2 "), "{text}");
    assert!(text.contains("+ new: R starts it"), "{text}");
    assert!(text.contains("↻ changed: R applies"), "{text}");
    assert!(text.contains("− left crew file: D"), "{text}");
    insta::assert_snapshot!(text);
}

/// `n`: the new agent's form, in the crew file's words, the presets named.
#[test]
fn new_agent_form_80x24() {
    let mut s = state(80, 24);
    update(&mut s, Msg::Key(Key::parse("n").unwrap()));
    let text = draw(&s);
    assert!(text.contains("a new agent, as in crew.toml") && text.contains("name = \"\""), "{text}");
    insta::assert_snapshot!(text);
}

/// At 40 columns the header keeps the counts (in the roster's glyphs) and the names stay apart.
#[test]
fn roster_only_40x12() {
    let s = state(40, 12);
    let text = draw(&s);
    assert!(text.lines().next().is_some_and(|l| l.contains("◆1 ●1 ○1 ‖1 ■1")), "{text}");
    insta::assert_snapshot!(text);
}

/// The single summary line of a 25x3 pane: the counts survive, as glyphs.
#[test]
fn one_line_at_25x3() {
    let s = state(25, 3);
    let text = draw(&s);
    assert!(text.contains("◆1 ●1 ○1 ‖1 ■1"), "{text}");
    insta::assert_snapshot!(text);
}

/// More agents than the roster has lines: the agents out of sight are counted at the edge they are beyond.
#[test]
fn a_scrolled_roster_says_what_is_out_of_sight_60x8() {
    let mut s = state(60, 8);
    for i in 0..6 {
        s.agents.push(agent(&format!("extra{i}"), "shell", AgentState::Idle, 0, 0, 9));
    }
    s.selected = 7;
    let text = draw(&s);
    assert!(text.contains("↑") && text.contains("more") && text.contains("↓"), "{text}");
    insta::assert_snapshot!(text);
}

/// `?` (F1 where `?` is text) shows the keys of the mode it is pressed in, over what is open, at 80 columns;
/// scrolled, it stops at its end; closed, what was open is still there.
#[test]
fn help_for_every_mode_at_120x40_and_80x24() {
    let key = |s: &mut State, k: &str| {
        update(s, Msg::Key(Key::parse(k).unwrap()));
    };
    type Setup = fn(&mut State);
    let modes: [(&str, &str, Setup); 11] = [
        ("roster", "?", |_| {}),
        ("timeline", "?", |s| update(s, Msg::Key(Key::parse("tab").unwrap())).truncate(0)),
        ("conflicts", "?", |_| {}),
        ("mail", "?", |s| update(s, Msg::Key(Key::parse("i").unwrap())).truncate(0)),
        ("steer", "f1", |s| update(s, Msg::Key(Key::parse("s").unwrap())).truncate(0)),
        ("compose", "f1", |s| update(s, Msg::Key(Key::parse("w").unwrap())).truncate(0)),
        ("edit", "f1", |s| update(s, Msg::Key(Key::parse("n").unwrap())).truncate(0)),
        ("confirm", "f1", |s| update(s, Msg::Key(Key::parse("q").unwrap())).truncate(0)),
        ("copy", "?", |s| update(s, Msg::Key(Key::parse("v").unwrap())).truncate(0)),
        ("review", "?", |s| update(s, Msg::Key(Key::parse("d").unwrap())).truncate(0)),
        ("gates", "?", |s| update(s, Msg::Key(Key::parse("t").unwrap())).truncate(0)),
    ];
    for ((mode, help, setup), (w, h)) in modes.iter().flat_map(|m| [(m, (80, 24)), (m, (120, 40))]) {
        let (mode, help, setup) = (*mode, *help, *setup);
        let mut s = if mode == "conflicts" { conflict_state(w, h) } else { state(w, h) };
        setup(&mut s);
        let under = s.mode();
        key(&mut s, help);
        let text = draw(&s);
        assert!(text.contains(&format!("keys · {mode} ·")), "{mode}: {text}");
        assert!(
            text.lines().all(|l| l.split(" Hidden by").next().unwrap_or(l).chars().count() <= w as usize + 2),
            "fits {w} columns"
        );
        insta::assert_snapshot!(format!("help_{mode}_{w}x{h}"), text);
        for _ in 0..200 {
            key(&mut s, "j");
        }
        let end = draw(&s);
        assert!(["Close", "Cancel", "Quit", "Detach"].iter().any(|w| end.contains(w)), "{mode}, at its end: {end}");
        key(&mut s, "esc");
        assert_eq!(s.mode(), under, "{mode}: closing the help leaves what was open");
    }
}

/// Copy mode with a search typed, then its answer: the tab line says so, the status line has the prompt, then the
/// match's place among all of them.
#[test]
fn copy_mode_and_search_at_three_sizes() {
    for (w, h) in [(120, 40), (80, 24), (50, 12)] {
        let mut s = state(w, h);
        if h < 20 {
            // No room for the well: said, and nothing else starts.
            update(&mut s, Msg::Key(Key::parse("/").unwrap()));
            insta::assert_snapshot!(format!("copy_refused_{w}x{h}"), draw(&s));
            continue;
        }
        for k in ["/", "f", "n", "space", "\\w+"] {
            match Key::parse(k) {
                Ok(key) if k.len() > 1 || k == "/" => update(&mut s, Msg::Key(key)),
                _ => k.chars().flat_map(|c| update(&mut s, Msg::Key(Key::char(c)))).collect(),
            };
        }
        insta::assert_snapshot!(format!("copy_search_typed_{w}x{h}"), draw(&s));
        update(&mut s, Msg::Key(Key::parse("enter").unwrap()));
        let screen = s.agents[1].screen.clone().unwrap();
        let at = |col| muster::protocol::screen::BufferPos { row: screen.buffer_row(1), col };
        let found = muster::protocol::screen::Found { start: at(2), end: at(12), index: 1, count: 3 };
        let event = Event::SearchFound { name: "api".into(), pattern: "fn \\w+".into(), found: Ok(Some(found)) };
        update(&mut s, Msg::Engine(event));
        insta::assert_snapshot!(format!("copy_search_found_{w}x{h}"), draw(&s));
    }
}

/// The review tab: the merge base, the files (new ones not committed marked `?`, a binary one), the current
/// file's hunks.
#[test]
fn review_tab_at_three_sizes() {
    use muster::git::checkpoint::LineKind::*;
    let files = vec![
        FileDiff {
            path: "README.md".into(),
            status: '?',
            added: 2,
            removed: 0,
            lines: vec![(Hunk, "@@ -0,0 +1,2 @@".into()), (Added, "# api".into()), (Added, "health checks".into())],
        },
        FileDiff {
            path: "logo.png".into(),
            status: 'A',
            added: 0,
            removed: 0,
            lines: vec![(Hunk, "binary file differs".into())],
        },
        FileDiff {
            path: "src/api.rs".into(),
            status: 'M',
            added: 1,
            removed: 1,
            lines: vec![
                (Hunk, "@@ -1,3 +1,3 @@".into()),
                (Context, "fn main() {".into()),
                (Removed, "    ping();".into()),
                (Added, "    health();".into()),
                (Context, "}".into()),
            ],
        },
    ];
    for (w, h) in [(120, 40), (80, 24), (60, 16)] {
        let mut s = state(w, h);
        update(&mut s, Msg::Key(Key::parse("d").unwrap()));
        let review = Ok(("0123456789abcdef".to_string(), files.clone()));
        update(&mut s, Msg::Engine(Event::Review { name: "api".into(), base: "main".into(), review }));
        for _ in 0..2 {
            update(&mut s, Msg::Key(Key::parse("]").unwrap()));
        }
        insta::assert_snapshot!(format!("review_{w}x{h}"), draw(&s));
    }
}

/// A split well: side by side at 120x40, stacked at 80x24, and three panes in the smallest well (61x16).
#[test]
fn split_wells_at_three_sizes() {
    for (w, h, keys) in [(120, 40, &["|"][..]), (80, 24, &["-"][..]), (61, 16, &["|", "|"][..])] {
        let mut s = state(w, h);
        // Each pane's agent has a screen of its own size.
        for k in keys {
            update(&mut s, Msg::Key(Key::parse(k).unwrap()));
        }
        for p in s.panes() {
            let mut model = AlacrittyModel::new(p.terminal.height, p.terminal.width, 100);
            model.feed(
                format!("\x1b[1m{}\x1b[0m at {}x{}\r\n$ ", p.name, p.terminal.width, p.terminal.height).as_bytes(),
            );
            let i = s.agents.iter().position(|a| a.info.name == p.name).unwrap();
            s.agents[i].screen = Some(std::sync::Arc::new(model.snapshot()));
        }
        insta::assert_snapshot!(format!("split_{w}x{h}"), draw(&s));
    }
}

/// Gates: the roster's column (green, failing on attempt 2 of 4, an error, running) and the gates tab with its
/// runs and the selected run's output, at three sizes.
#[test]
fn gates_column_and_tab_at_three_sizes() {
    use muster::protocol::gate::{GateMark, GateOutcome, GateRun};
    let run = |id: i64, outcome: Option<GateOutcome>, why: &str, attempt: u32, failed: &[&str], tail: &str| GateRun {
        id,
        agent: "api".into(),
        gate: "test".into(),
        checkpoint: format!("c{id}"),
        checkpoint_n: id as u32,
        outcome,
        exit: Some(if outcome == Some(GateOutcome::Pass) { 0 } else { 101 }),
        why: why.into(),
        attempt,
        attempts: 4,
        failed: failed.iter().map(|f| f.to_string()).collect(),
        tail: tail.into(),
        started_ms: NOW - 30_000 + id as u64 * 1000,
        took_ms: 3_250,
    };
    let runs = vec![
        run(7, Some(GateOutcome::Fail), "exit 101", 2, &["tests::greets", "tests::parses"], "running 3 tests\ntest tests::adds ... ok\ntest tests::greets ... FAILED\ntest tests::parses ... FAILED\n\nfailures:\n    tests::greets\n    tests::parses\n\ntest result: FAILED. 1 passed; 2 failed\n"),
        run(6, Some(GateOutcome::Error), "command not found (exit 127)", 0, &[], "sh: 1: carg: not found\n"),
        run(5, Some(GateOutcome::Fail), "exit 101", 1, &["tests::greets"], "test tests::greets ... FAILED\n"),
        run(4, Some(GateOutcome::Pass), "exit 0", 0, &[], "test result: ok. 3 passed\n"),
    ];
    for (w, h) in [(120, 40), (80, 24), (60, 16)] {
        let mut s = state(w, h);
        s.agents[0].info.gate = GateMark::Running;
        s.agents[1].info.gate = GateMark::Red { gate: "test".into(), attempt: 2, of: 4 };
        s.agents[2].info.gate = GateMark::Green { checkpoint_n: 3 };
        s.agents[3].info.gate = GateMark::Error { gate: "lint".into() };
        update(&mut s, Msg::Key(Key::parse("t").unwrap()));
        update(&mut s, Msg::Engine(Event::GateRuns { agent: Some("api".into()), runs: runs.clone() }));
        insta::assert_snapshot!(format!("gates_{w}x{h}"), draw(&s));
    }
}

/// Ownership: the roster's mark of open findings and the findings tab with the selected one's detail, at three
/// sizes.
#[test]
fn findings_mark_and_tab_at_three_sizes() {
    use muster::protocol::guard::{Finding, FindingKind, FindingStatus};
    let finding = |id: i64, kind: FindingKind, path: &str, detail: &str, count: u32| Finding {
        id,
        agent: "api".into(),
        kind: Some(kind),
        path: path.into(),
        detail: detail.into(),
        first_ms: NOW - 90_000,
        last_ms: NOW - 20_000 + id as u64 * 1000,
        count,
        checkpoint_n: 3,
        status: FindingStatus::Open,
        note: String::new(),
    };
    let findings = vec![
        finding(9, FindingKind::SymlinkEscape, "config/secrets", "/etc", 1),
        finding(8, FindingKind::Shared, "Cargo.lock", "", 2),
        finding(7, FindingKind::OutsideOwns, "src/db/schema.rs", "owns src/api/, tests/api/", 4),
        finding(6, FindingKind::NewExecutable, "scripts/run.sh", "", 1),
    ];
    for (w, h) in [(120, 40), (80, 24), (60, 16)] {
        let mut s = state(w, h);
        s.agents[1].info.findings = 4;
        s.agents[0].info.findings = 1;
        update(&mut s, Msg::Key(Key::parse("f").unwrap()));
        update(&mut s, Msg::Engine(Event::Findings { agent: Some("api".into()), findings: findings.clone() }));
        update(&mut s, Msg::Key(Key::parse("j").unwrap()));
        update(&mut s, Msg::Key(Key::parse("j").unwrap()));
        insta::assert_snapshot!(format!("findings_{w}x{h}"), draw(&s));
    }
}
