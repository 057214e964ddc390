//! Agent state detection in layers: the agent's own hooks, then the preset's screen rules, then screen
//! activity (a change of the visible text, not bytes) with a debounce. Every decision says why it was made.

use std::time::{Duration, Instant};

use super::AgentState;
pub use crate::config::rules::{parse_version, Cond, Region, Rule, ScreenKind};

/// A screen change within this long counts as busy when no rule or hook says otherwise.
pub const ACTIVITY_DEBOUNCE: Duration = Duration::from_millis(1500);
/// A busy hook report holds while the screen keeps changing, and this long after it stops: a tool that runs
/// quietly is still a busy turn, but a CLI that died mid-turn, or a missed Stop, must not read busy forever.
pub const HOOK_BUSY_QUIET: Duration = Duration::from_secs(10);
pub use crate::config::preset::IDLE_SETTLE;
/// A waiting hook report holds this long unless a screen rule sees the dialog: anything that reaches the hook
/// socket with the agent's secret could otherwise hold an agent waiting (and its mail queued) for good. Presets
/// with no waiting rule cannot check, and keep the report until the screen moves.
pub const HOOK_WAITING_QUIET: Duration = Duration::from_secs(10);

/// What a rule looks at: the screen's rows, its title, which screen it is, the CLI's version if known.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub lines: &'a [String],
    pub title: Option<&'a str>,
    /// The last progress report (OSC 9;4), `STATE;VALUE`.
    pub progress: Option<&'a str>,
    pub alt_screen: bool,
    pub version: Option<&'a [u64]>,
}

/// The text a rule looks at.
fn region_text(region: Region, v: &View) -> String {
    let lines = v.lines;
    match region {
        Region::All => lines.join("\n"),
        Region::Title => v.title.unwrap_or("").to_string(),
        Region::Progress => v.progress.unwrap_or("").to_string(),
        Region::Top(n) => lines.iter().take(n).cloned().collect::<Vec<_>>().join("\n"),
        Region::Bottom(n) => {
            let non_empty: Vec<&String> = lines.iter().filter(|l| !l.trim().is_empty()).collect();
            let start = non_empty.len().saturating_sub(n);
            non_empty[start..].iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
        }
    }
}

impl Rule {
    fn applies_to(&self, v: &View) -> bool {
        let screen = match self.screen {
            ScreenKind::Any => true,
            ScreenKind::Alt => v.alt_screen,
            ScreenKind::Main => !v.alt_screen,
        };
        // An unknown version takes every rule: better a rule for a neighbouring version than none.
        let version = v.version.is_none_or(|ver| {
            self.min_version.as_deref().is_none_or(|m| ver >= m)
                && self.below_version.as_deref().is_none_or(|b| ver < b)
        });
        screen && version
    }

    pub fn matches(&self, v: &View) -> bool {
        let hit = |c: &Cond| c.regex.is_match(&region_text(c.region, v));
        self.applies_to(v)
            && self.all.iter().all(hit)
            && (self.any.is_empty() || self.any.iter().any(hit))
            && !self.not.iter().any(hit)
    }
}

/// The first matching rule (rules are sorted by priority, highest first).
pub fn match_rules<'r>(rules: &'r [Rule], view: &View) -> Option<&'r Rule> {
    rules.iter().find(|r| r.matches(view))
}

/// What the hooks last said, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookReport {
    pub state: AgentState,
    pub event: String,
    pub at: Instant,
}

/// Map a hook event of an agent CLI to a state. `detail` is the kind of notification where the CLI says
/// (Claude Code's `notification_type`). None: the event says nothing about the state (`SessionStart`: the CLI
/// may be showing a trust dialog or sitting at its prompt).
pub fn hook_state(event: &str, detail: Option<&str>) -> Option<AgentState> {
    match event {
        // Claude Code and Codex (same names), Gemini CLI (Before*/After*), opencode's plugin events.
        "UserPromptSubmit" | "PreToolUse" | "PostToolUse" | "PostToolUseFailure" | "PreCompact" | "BeforeAgent"
        | "BeforeTool" | "AfterTool" | "BeforeModel" | "session.busy" => Some(AgentState::Busy),
        "Stop" | "AfterAgent" | "session.idle" | "agent-turn-complete" => Some(AgentState::Idle),
        "PermissionRequest" | "permission.asked" | "permission.updated" => Some(AgentState::Waiting),
        "Notification" => match detail {
            Some("idle_prompt") => Some(AgentState::Idle),
            Some("auth_success") => None,
            _ => Some(AgentState::Waiting),
        },
        _ => None,
    }
}

/// A state and the reason it was chosen (shown in the well and by `muster explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub state: AgentState,
    /// Which rule or hook decided, or that activity did. No ages: it is shown for as long as the state lasts
    /// (the roster shows the time since the last change), and a new reason is worth reporting even when the
    /// state is the same (activity said idle first, then the prompt rule matched).
    pub why: String,
    /// Read from the screen (a rule, or its activity): what a screen caught in the middle of a redraw can get
    /// wrong, so the terminal thread lets a new one settle (`TermThread::unsure`).
    pub screen: bool,
}

/// Why an agent is idle when only its quiet screen says so (no prompt rule, no hook).
pub const QUIET: &str = "the screen stopped changing";
/// Why an agent is busy when only its screen's activity says so (no rule, no hook).
pub const CHANGING: &str = "the screen is changing";

/// How long an agent that has drawn nothing is starting when its manifest does not say; after it, it is idle,
/// and the reason says why.
pub const STARTING_AT_MOST: Duration = crate::config::preset::BOOT_TIMEOUT;

/// What the terminal thread knows when it decides.
#[derive(Debug, Clone, Copy)]
pub struct Signals<'a> {
    /// The screen rule that matches, if any.
    pub rule: Option<&'a Rule>,
    pub hook: Option<&'a HookReport>,
    /// When the visible text last changed (not when bytes last arrived).
    pub last_change: Option<Instant>,
    /// The preset has waiting rules, so a dialog a hook reports can be checked on screen.
    pub sees_dialogs: bool,
    /// A command other than the agent itself runs in the terminal's foreground (a shell's job), for presets
    /// that read it: its name.
    pub foreground: Option<&'a str>,
    /// The screen has shown text.
    pub drawn: bool,
    pub started: Instant,
    /// How long it may draw nothing and still be starting.
    pub boot_within: Duration,
    /// A task went in then (its manifest's `busy_on_task_ms`), and no hook has spoken since, within the hold.
    pub task: Option<Instant>,
    /// How long an idle hook report waits for a still screen (`IDLE_SETTLE`, or its manifest's).
    pub idle_settle: Duration,
}

/// Combine the layers. A dialog wins over everything, on screen or reported by a live hook: it is what the
/// operator must see. Then a command running in the terminal's foreground (a shell's job: the kernel says so,
/// however quiet it is), a live hook report, screen rules, and activity. An agent that has drawn nothing yet is
/// starting.
pub fn detect(s: &Signals, now: Instant) -> Decision {
    let decide = |state, why: String| Decision { state, why, screen: false };
    let read = |state, why: String| Decision { state, why, screen: true };
    if let Some(r) = s.rule.filter(|r| r.state == AgentState::Waiting) {
        return read(AgentState::Waiting, format!("screen rule `{}`", r.name));
    }
    if let Some(t) = s.task {
        // A task typed at its prompt, or Enter on its dialog: the CLI's own first sign comes late, and a report
        // from before the task (the dialog it answered) is of the moment before.
        let ms = now.saturating_duration_since(t).as_millis();
        return decide(AgentState::Busy, format!("a task went in {ms} ms ago (no sign from the CLI yet)"));
    }
    let hook = s.hook.filter(|h| hook_live(h, s, now));
    if let Some(h) = hook.filter(|h| h.state == AgentState::Waiting) {
        return decide(h.state, format!("hook {}", h.event));
    }
    if let Some(command) = s.foreground {
        return decide(AgentState::Busy, format!("`{command}` runs in the foreground"));
    }
    if let Some(h) = hook {
        // An idle report is of a moment past (a side request's end, a Stop that hands queued mail over as the
        // next turn); a screen that shows the CLI working now says more.
        if let Some(r) = s.rule.filter(|r| h.state == AgentState::Idle && r.state == AgentState::Busy) {
            return read(AgentState::Busy, format!("screen rule `{}` (after hook {})", r.name, h.event));
        }
        let still_since = s.last_change.map_or(h.at, |c| c.max(h.at));
        if h.state == AgentState::Idle && now.saturating_duration_since(still_since) < s.idle_settle {
            return decide(AgentState::Busy, format!("the screen is changing (after hook {})", h.event));
        }
        return decide(h.state, format!("hook {}", h.event));
    }
    if let Some(r) = s.rule {
        return read(r.state, format!("screen rule `{}`", r.name));
    }
    if !s.drawn {
        if now.saturating_duration_since(s.started) < s.boot_within {
            return decide(AgentState::Starting, "nothing on screen yet".into());
        }
        return decide(
            AgentState::Idle,
            format!("nothing on screen after {} s (waiting for input?)", s.boot_within.as_secs()),
        );
    }
    match s.last_change {
        Some(t) if now.saturating_duration_since(t) < ACTIVITY_DEBOUNCE => read(AgentState::Busy, CHANGING.into()),
        Some(_) => read(AgentState::Idle, QUIET.into()),
        None => decide(AgentState::Starting, "nothing on screen yet".into()),
    }
}

/// Whether a hook report still holds.
fn hook_live(h: &HookReport, s: &Signals, now: Instant) -> bool {
    match h.state {
        // Busy holds while the screen moves, and a while after it stops.
        AgentState::Busy => {
            let quiet_since = s.last_change.map_or(h.at, |c| c.max(h.at));
            now.saturating_duration_since(quiet_since) < HOOK_BUSY_QUIET
        }
        // A screen change well after an idle or waiting report means the agent moved on; a waiting one a rule
        // could see and does not is over once its hold ends.
        state => {
            let lapsed = state == AgentState::Waiting
                && s.sees_dialogs
                && now.saturating_duration_since(h.at) >= HOOK_WAITING_QUIET;
            !lapsed && s.last_change.is_none_or(|c| c <= h.at + ACTIVITY_DEBOUNCE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    /// The layers on a screen that shows text, no foreground job.
    fn detect(
        rule: Option<&Rule>,
        hook: Option<&HookReport>,
        last_change: Option<Instant>,
        now: Instant,
        sees_dialogs: bool,
    ) -> Decision {
        super::detect(&Signals { sees_dialogs, ..signals(rule, hook, last_change, now) }, now)
    }

    /// What the terminal thread knows of a screen that shows text, long started, no foreground job, no task.
    fn signals<'a>(
        rule: Option<&'a Rule>,
        hook: Option<&'a HookReport>,
        last_change: Option<Instant>,
        now: Instant,
    ) -> Signals<'a> {
        Signals {
            rule,
            hook,
            last_change,
            sees_dialogs: false,
            foreground: None,
            drawn: true,
            started: now - Duration::from_secs(1000),
            boot_within: STARTING_AT_MOST,
            task: None,
            idle_settle: IDLE_SETTLE,
        }
    }
    use crate::config::preset::builtin;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn view(l: &[String]) -> View<'_> {
        View { lines: l, title: None, progress: None, alt_screen: false, version: None }
    }

    fn state_of(kind: &str, l: &[String]) -> Option<AgentState> {
        let p = builtin();
        match_rules(&p[kind].rules, &view(l)).map(|r| r.state)
    }

    #[test]
    fn a_typed_answer_before_enter_still_shows_the_question() {
        for line in ["Apply? [y/n] ", "Apply? [y/n] y", "Apply? [y/n] no"] {
            assert_eq!(state_of("demo", &lines(&["working", line])), Some(AgentState::Waiting), "{line}");
        }
        assert_eq!(state_of("demo", &lines(&["Apply? [y/n] y", "demo> "])), Some(AgentState::Idle));
    }

    #[test]
    fn a_foreground_job_is_work_however_quiet_and_a_blank_screen_is_starting() {
        let t0 = Instant::now();
        let quiet = Some(t0 - t(60_000));
        let mut s = Signals {
            rule: None,
            hook: None,
            last_change: quiet,
            sees_dialogs: false,
            foreground: Some("sleep"),
            drawn: true,
            started: t0 - t(120_000),
            boot_within: STARTING_AT_MOST,
            task: None,
            idle_settle: IDLE_SETTLE,
        };
        let d = super::detect(&s, t0);
        assert_eq!((d.state, d.why.as_str()), (AgentState::Busy, "`sleep` runs in the foreground"));
        let asks = HookReport { state: AgentState::Waiting, event: "Notification".into(), at: t0 };
        s.hook = Some(&asks);
        assert_eq!(super::detect(&s, t0).state, AgentState::Waiting, "a dialog still wins");
        s.hook = None;
        s.foreground = None;
        assert_eq!(super::detect(&s, t0).state, AgentState::Idle);
        // Nothing drawn yet: starting, however quiet, until the limit says why it is not.
        s.drawn = false;
        s.started = t0 - t(1000);
        assert_eq!(super::detect(&s, t0).state, AgentState::Starting);
        let d = super::detect(&s, t0 + STARTING_AT_MOST);
        assert_eq!(d.state, AgentState::Idle);
        assert!(d.why.contains("nothing on screen after 120 s"), "{}", d.why);
    }

    #[test]
    fn regions() {
        assert_eq!(Region::parse("bottom:3"), Some(Region::Bottom(3)));
        assert_eq!(Region::parse("title"), Some(Region::Title));
        assert_eq!(Region::parse("bottom:0"), None);
        assert_eq!(Region::parse("middle"), None);
        let l = lines(&["a", "b", "", "c", "", ""]);
        assert_eq!(region_text(Region::Bottom(2), &view(&l)), "b\nc");
        assert_eq!(region_text(Region::Top(1), &view(&l)), "a");
        assert_eq!(Region::parse("progress"), Some(Region::Progress));
        assert_eq!(region_text(Region::Progress, &view(&l)), "");
        assert_eq!(region_text(Region::Progress, &View { progress: Some("3;0"), ..view(&l) }), "3;0");
    }

    fn rule(all: &[&str], any: &[&str], not: &[&str]) -> Rule {
        let c = |v: &[&str]| v.iter().map(|r| Cond { regex: Regex::new(r).unwrap(), region: Region::All }).collect();
        Rule {
            name: "t".into(),
            state: AgentState::Waiting,
            priority: 0,
            all: c(all),
            any: c(any),
            not: c(not),
            screen: ScreenKind::Any,
            min_version: None,
            below_version: None,
        }
    }

    /// A task that went in reads busy over the prompt's idle rule and over a dialog report from before it (the
    /// dialog it answered); a dialog on screen still wins.
    #[test]
    fn a_task_held_is_busy_unless_a_dialog_shows() {
        let now = Instant::now();
        let mut idle = rule(&["> $"], &[], &[]);
        idle.state = AgentState::Idle;
        let dialog = rule(&["Allow\\?"], &[], &[]);
        let before = HookReport { state: AgentState::Waiting, event: "permission.asked".into(), at: now - ms(900) };
        let signals =
            |rule, task| Signals { sees_dialogs: true, task, ..signals(rule, Some(&before), Some(now - ms(800)), now) };
        let d = super::detect(&signals(Some(&idle), Some(now - ms(300))), now);
        assert_eq!(d.state, AgentState::Busy, "{}", d.why);
        assert!(d.why.starts_with("a task went in 300 ms ago"), "{}", d.why);
        assert_eq!(super::detect(&signals(Some(&dialog), Some(now - ms(300))), now).state, AgentState::Waiting);
        // Without it, the report from before stands.
        assert_eq!(super::detect(&signals(Some(&idle), None), now).state, AgentState::Waiting);
    }

    /// An idle report counts once the screen held still for the CLI's settle: 200 ms unless its manifest says.
    #[test]
    fn an_idle_report_waits_for_its_clis_settle() {
        let now = Instant::now();
        let done = HookReport { state: AgentState::Idle, event: "session.idle".into(), at: now - ms(60) };
        let signals = |idle_settle| Signals { idle_settle, ..signals(None, Some(&done), Some(now - ms(70)), now) };
        assert_eq!(super::detect(&signals(IDLE_SETTLE), now).state, AgentState::Busy);
        assert_eq!(super::detect(&signals(ms(50)), now).state, AgentState::Idle);
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn all_any_not_combine() {
        let l = lines(&["Do you trust this folder?", "❯ 1. Yes"]);
        assert!(rule(&["trust"], &[], &[]).matches(&view(&l)));
        assert!(rule(&["trust", "Yes"], &["nope", "❯"], &[]).matches(&view(&l)));
        assert!(!rule(&["trust"], &["nope"], &[]).matches(&view(&l)));
        assert!(!rule(&["trust"], &[], &["Yes"]).matches(&view(&l)));
    }

    #[test]
    fn screens_and_versions_select_rules() {
        let l = lines(&["x"]);
        let mut r = rule(&["x"], &[], &[]);
        r.screen = ScreenKind::Alt;
        assert!(!r.matches(&view(&l)));
        assert!(r.matches(&View { alt_screen: true, ..view(&l) }));
        r.screen = ScreenKind::Any;
        r.min_version = parse_version("2.1");
        r.below_version = parse_version("3");
        let at = |v: &str| {
            let ver = parse_version(v).unwrap();
            r.matches(&View { version: Some(&ver), ..view(&l) })
        };
        assert!(at("2.1.332") && at("2.9") && !at("2.0.9") && !at("3.0.0"));
        assert!(r.matches(&view(&l)), "an unknown version takes every rule");
        assert_eq!(parse_version("v0.61.0"), Some(vec![0, 61, 0]));
        assert_eq!(parse_version("abc"), None);
    }

    #[test]
    fn demo_rules_find_question_and_prompt() {
        let q = lines(&["work done", "Apply the refactor to src/lib.rs? [y/n] ", "", ""]);
        assert_eq!(state_of("demo", &q), Some(AgentState::Waiting));
        assert_eq!(state_of("demo", &lines(&["You said: hi", "demo> ", ""])), Some(AgentState::Idle));
        assert_eq!(state_of("demo", &lines(&["⠋ thinking"])), None);
    }

    #[test]
    fn claude_permission_prompt_and_busy_line() {
        let perm = lines(&["Bash command", " rm -rf target", "Do you want to proceed?", "❯ 1. Yes", "  2. No"]);
        assert_eq!(state_of("claude", &perm), Some(AgentState::Waiting));
        let busy = lines(&["✻ Thinking… (esc to interrupt)"]);
        assert_eq!(state_of("claude", &busy), Some(AgentState::Busy));
    }

    fn t(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn layers_combine_and_say_why() {
        let t0 = Instant::now();
        let later = t0 + t(10_000);
        assert_eq!(detect(None, None, None, t0, false).state, AgentState::Starting);
        let d = detect(None, None, Some(t0), t0 + t(100), false);
        assert_eq!((d.state, d.why.as_str()), (AgentState::Busy, "the screen is changing"));
        assert_eq!(detect(None, None, Some(t0), later, false).state, AgentState::Idle);
        let mut idle_rule = rule(&["x"], &[], &[]);
        idle_rule.state = AgentState::Idle;
        idle_rule.name = "prompt".into();
        let d = detect(Some(&idle_rule), None, Some(t0), t0, false);
        assert_eq!((d.state, d.why.as_str()), (AgentState::Idle, "screen rule `prompt`"));
        let waiting = rule(&["x"], &[], &[]);
        let busy = HookReport { state: AgentState::Busy, event: "PreToolUse".into(), at: t0 };
        assert_eq!(detect(Some(&waiting), Some(&busy), Some(t0), t0, false).state, AgentState::Waiting);
        let d = detect(Some(&idle_rule), Some(&busy), Some(t0), t0 + t(2000), false);
        assert_eq!((d.state, d.why.as_str()), (AgentState::Busy, "hook PreToolUse"));
    }

    #[test]
    fn busy_hooks_expire_when_the_screen_stays_still() {
        let t0 = Instant::now();
        let busy = HookReport { state: AgentState::Busy, event: "UserPromptSubmit".into(), at: t0 };
        // Still busy while the screen moves, long after the hook.
        let moving = t0 + t(30_000);
        assert_eq!(detect(None, Some(&busy), Some(moving), moving + t(500), false).state, AgentState::Busy);
        // Quiet for longer than the hold: the report has expired and activity decides.
        let d = detect(None, Some(&busy), Some(t0), t0 + HOOK_BUSY_QUIET + t(1), false);
        assert_eq!(d.state, AgentState::Idle, "{}", d.why);
        let d = detect(None, Some(&busy), None, t0 + HOOK_BUSY_QUIET + t(1), false);
        assert_eq!(d.state, AgentState::Starting, "{}", d.why);
    }

    #[test]
    fn waiting_hooks_lapse_unless_a_rule_sees_the_dialog() {
        let t0 = Instant::now();
        let asks = HookReport { state: AgentState::Waiting, event: "Notification".into(), at: t0 };
        let still = Some(t0 - t(100));
        let within = t0 + HOOK_WAITING_QUIET - t(1);
        assert_eq!(detect(None, Some(&asks), still, within, true).state, AgentState::Waiting);
        let after = t0 + HOOK_WAITING_QUIET + t(1);
        let d = detect(None, Some(&asks), still, after, true);
        assert_eq!(d.state, AgentState::Idle, "no dialog on screen: the report lapsed ({})", d.why);
        let dialog = rule(&["x"], &[], &[]);
        assert_eq!(detect(Some(&dialog), Some(&asks), still, after, true).state, AgentState::Waiting);
        // A preset that cannot see dialogs keeps what its hook said.
        assert_eq!(detect(None, Some(&asks), still, after, false).state, AgentState::Waiting);
    }

    #[test]
    fn idle_hooks_give_way_to_later_screen_changes() {
        let t0 = Instant::now();
        let stop = HookReport { state: AgentState::Idle, event: "Stop".into(), at: t0 };
        assert_eq!(detect(None, Some(&stop), Some(t0 + t(200)), t0 + t(10_000), false).state, AgentState::Idle);
        let out = t0 + t(5000);
        assert_eq!(detect(None, Some(&stop), Some(out), out, false).state, AgentState::Busy);
    }

    /// Codex's notify for a side request (a title) while the turn runs, Claude's Stop that hands queued mail over
    /// as the next turn: the report says idle, the screen says the CLI works, and the screen is right.
    #[test]
    fn an_idle_hook_gives_way_at_once_to_a_screen_that_shows_work() {
        let t0 = Instant::now();
        for (kind, event, line) in [
            ("codex", "agent-turn-complete", "• Working (3s • esc to interrupt)"),
            ("claude", "Stop", "✻ Thinking… (esc to interrupt)"),
        ] {
            let p = builtin();
            let l = lines(&[line]);
            let busy = match_rules(&p[kind].rules, &view(&l)).unwrap();
            let done = HookReport { state: AgentState::Idle, event: event.into(), at: t0 };
            // The same moment the report came, the screen still changing: no 1.5 s of idle.
            let d = detect(Some(busy), Some(&done), Some(t0), t0 + t(100), false);
            assert_eq!(d.state, AgentState::Busy, "{kind}: {}", d.why);
            assert!(d.why.contains(&format!("after hook {event}")), "{}", d.why);
            // The prompt back and the screen still: the hook's idle stands.
            let d = detect(None, Some(&done), Some(t0), t0 + IDLE_SETTLE + t(100), false);
            assert_eq!((d.state, d.why), (AgentState::Idle, format!("hook {event}")));
        }
    }

    /// Codex's notify for the title it makes beside a turn comes 0.2 s into the turn, while the answer streams
    /// with no busy line on screen (seen on real turns): a report of idle holds only once the screen is still.
    #[test]
    fn an_idle_hook_holds_only_once_the_screen_is_still() {
        let t0 = Instant::now();
        let done = HookReport { state: AgentState::Idle, event: "agent-turn-complete".into(), at: t0 };
        // Text still streaming after the report: busy, for as long as it streams.
        for at in [100, 600, 1400, 1900, 5000] {
            let d = detect(None, Some(&done), Some(t0 + t(at)), t0 + t(at + 100), false);
            assert_eq!(d.state, AgentState::Busy, "{at}: {}", d.why);
        }
        // Still for the settle: idle, by the hook; a CLI's own last redraw just after its turn is no turn.
        let d = detect(None, Some(&done), Some(t0 + t(100)), t0 + t(100) + IDLE_SETTLE, false);
        assert_eq!((d.state, d.why.as_str()), (AgentState::Idle, "hook agent-turn-complete"));
        // The report itself waits that long: a side request's report comes between two words of the stream.
        let d = detect(None, Some(&done), Some(t0 - t(50)), t0 + t(10), false);
        assert_eq!(d.state, AgentState::Busy, "{}", d.why);
        let d = detect(None, Some(&done), Some(t0 - t(50)), t0 + IDLE_SETTLE, false);
        assert_eq!(d.state, AgentState::Idle, "what changed before the report is the turn's own");
    }

    #[test]
    fn claudes_auto_mode_question_waits_for_the_operator() {
        let q = lines(&[
            "Make auto mode your default permission mode?",
            "",
            "❯ 1. Yes, make auto mode my default",
            "  2. No, ask me next time",
        ]);
        assert_eq!(state_of("claude", &q), Some(AgentState::Waiting));
        let q = lines(&["Make auto mode your default permission mode?", "", "  Yes   No"]);
        assert_eq!(state_of("claude", &q), Some(AgentState::Waiting), "whatever its choices look like");
    }

    #[test]
    fn hook_events() {
        assert_eq!(hook_state("Stop", None), Some(AgentState::Idle));
        assert_eq!(hook_state("SessionStart", None), None, "a session start says nothing of the screen");
        assert_eq!(hook_state("Notification", Some("permission_prompt")), Some(AgentState::Waiting));
        assert_eq!(hook_state("Notification", Some("idle_prompt")), Some(AgentState::Idle));
        assert_eq!(hook_state("PreToolUse", None), Some(AgentState::Busy));
        assert_eq!(hook_state("AfterAgent", None), Some(AgentState::Idle));
        assert_eq!(hook_state("Bogus", None), None);
    }
}
