//! Keymaps: modes of bindings from `keymaps/default.toml`, with user and project files merged over it. A bad
//! entry is a warning naming file:line:col and the key; the rest still loads.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};

use super::location::ConfigError;
use super::Warning;
use crate::key::Key;

pub const DEFAULT: &str = include_str!("../../keymaps/default.toml");

macro_rules! actions {
    ($($variant:ident = $name:literal : $desc:literal),* $(,)?) => {
        /// Everything a key can be bound to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Action { $($variant),* }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];
            pub fn name(self) -> &'static str {
                match self { $(Action::$variant => $name),* }
            }
            pub fn description(self) -> &'static str {
                match self { $(Action::$variant => $desc),* }
            }
            pub fn from_name(name: &str) -> Option<Action> {
                match name { $($name => Some(Action::$variant),)* _ => None }
            }
        }
    };
}

actions! {
    SelectNext = "select_next": "Select the next agent",
    SelectPrev = "select_prev": "Select the previous agent",
    SelectFirst = "select_first": "Select the first agent",
    SelectLast = "select_last": "Select the last agent",
    TreeOut = "tree_out": "Fold the agent's children out of sight, or go to its parent",
    TreeIn = "tree_in": "Show the agent's children, or go to its first child",
    Attach = "attach": "Attach: type into the agent's terminal",
    ToggleWell = "toggle_well": "Expand or collapse the detail well",
    Steer = "steer": "Send the agent a message without attaching",
    Pause = "pause": "Pause or resume all the agent's processes (doctor: how)",
    Stop = "stop": "Stop the agent (SIGTERM, then SIGKILL)",
    Restart = "restart": "Restart the agent with its resume arguments, or start it",
    StartAll = "start_all": "Start every stopped agent but a plan's pending (asks first)",
    ApproveWave = "approve_wave": "Start the selected pending agent's wave now (asks first)",
    NewAgent = "new_agent": "Add an agent (written into crew.toml) and start it",
    DuplicateAgent = "duplicate_agent": "Add a copy of the agent: same kind and prompt, new worktree",
    Rename = "rename": "Rename a stopped agent (its worktree, branch, checkpoints)",
    Remove = "remove": "Remove the agent and its worktree",
    ScrollUp = "scroll_up": "Scroll the terminal back one line",
    ScrollDown = "scroll_down": "Scroll the terminal forward one line",
    PageUp = "page_up": "Scroll the terminal back a page",
    PageDown = "page_down": "Scroll the terminal forward a page",
    ScrollBottom = "scroll_bottom": "Follow the agent's output again",
    CopyMode = "copy_mode": "Copy mode: select, copy and search the whole history",
    Search = "search": "Search the whole history (a regex; lower case: any case)",
    SearchNext = "search_next": "The next match, toward older lines",
    SearchPrev = "search_prev": "The previous match, toward newer lines",
    CursorLeft = "left": "Move the cursor left",
    CursorRight = "right": "Move the cursor right",
    CursorUp = "up": "Move the cursor up (the view follows it into history)",
    CursorDown = "down": "Move the cursor down",
    LineStart = "line_start": "To the start of the line",
    LineEnd = "line_end": "To the end of the line",
    Top = "top": "To the oldest line of the history",
    Bottom = "bottom": "To the newest line",
    Select = "select": "Start or drop a selection at the cursor",
    CopySelection = "copy": "Copy the selection (or the line) by OSC 52 and to a file",
    SplitSide = "split": "Split the well: one more agent's terminal beside (up to 4)",
    SplitStacked = "split_stacked": "Split the well: one more agent's terminal below (up to 4)",
    NextPane = "next_pane": "Focus the next pane of a split well (its agent is selected)",
    Unsplit = "unsplit": "One pane again: the selected agent's",
    OpenTimeline = "timeline": "Show the agent's checkpoint timeline",
    Review = "review": "Review what a merge would bring (branch and worktree)",
    Gates = "gates": "Show the agent's gates: their runs, output and loop",
    RunGates = "run_gates": "Run the agent's gates now, on its worktree as it is",
    GrantAttempt = "grant_attempt": "Grant one more attempt: the failure is sent to the agent now",
    StopLoop = "stop_loop": "Stop (or resume) sending the agent its gates' failures",
    CancelGates = "cancel_gates": "Cancel the agent's running gates (every process they started)",
    OpenLog = "open_log": "Show the run's whole log (or its tail again)",
    Findings = "findings": "Show the watchdog's findings on the agent's files",
    RestoreFinding = "restore_finding": "Restore the file as it was at the finding's checkpoint (rescue first)",
    AllowFinding = "allow_finding": "Allow the finding's path for this run of the agent",
    DismissFinding = "dismiss_finding": "Dismiss the finding (seen, left as it is)",
    TellAgent = "tell_agent": "Tell the agent what it did and what it owns (as mail from guard)",
    FindingDiff = "finding_diff": "The file's diff since the finding's checkpoint, in the timeline",
    OpenInEditor = "open_in_editor": "Open the file in $EDITOR at the line shown at the top",
    Refresh = "refresh": "Read it again",
    Checkpoint = "checkpoint": "Take a checkpoint of the agent's worktree now",
    Rollback = "rollback": "Roll the worktree back to the selected checkpoint",
    RollbackGreen = "rollback_green": "Roll the worktree back to the newest checkpoint every gate passed on",
    RollbackFiles = "rollback_files": "Restore only the marked files (or this one) from it",
    UndoRollback = "undo_rollback": "Undo the last rollback",
    ToggleDiffBase = "toggle_diff_base": "Diff against the previous checkpoint or the worktree now",
    NextFile = "next_file": "Next file of the diff",
    PrevFile = "prev_file": "Previous file of the diff",
    MarkFile = "mark_file": "Mark or unmark the current file for a partial rollback",
    Merge = "merge": "Merge the agent's branch into its base",
    MergeIntoAgent = "merge_into_agent": "Merge the base branch into the agent's branch",
    NextConflict = "next_conflict": "Next conflict in the file",
    PrevConflict = "prev_conflict": "Previous conflict in the file",
    TakeOurs = "take_ours": "Take ours for this conflict (or our side of the file)",
    TakeTheirs = "take_theirs": "Take theirs for this conflict (or their side of the file)",
    TakeBase = "take_base": "Take the base for this conflict",
    TakeBoth = "take_both": "Take both: ours, then theirs",
    TakeBothReversed = "take_both_reversed": "Take both: theirs, then ours",
    EditConflict = "edit_conflict": "Edit this conflict's result by hand",
    Undo = "undo": "Undo",
    Redo = "redo": "Redo",
    WholeOurs = "whole_ours": "Whole file: ours everywhere",
    WholeTheirs = "whole_theirs": "Whole file: theirs everywhere",
    WholeUnion = "whole_union": "Whole file: both sides everywhere (union)",
    WriteFile = "write_file": "Write the resolved file and stage it",
    FinishMerge = "finish_merge": "Finish the merge: create the merge commit",
    AbortMerge = "abort_merge": "Abort the merge: back to before it",
    HandToAgent = "hand_to_agent": "Send this conflict to the agent as a steer message",
    OpenMail = "mail": "Show the agent's mail (its threads, receipts, dead letters)",
    Mailbox = "mailbox": "Show the crew's whole mailbox (or back to the agent's mail)",
    Compose = "compose": "Write mail to the selected agent (or anyone: edit To)",
    Reply = "reply": "Reply to the selected thread; answers an agent's question",
    Forward = "forward": "Forward the selected thread's last message",
    OpenThread = "open_thread": "Open or close the selected thread (opening marks it read)",
    RetryMail = "retry_mail": "Send the thread's dead letters again",
    DropMail = "drop_mail": "Drop the thread's dead letters",
    EditMail = "edit_mail": "Edit the thread's newest dead letter and send it instead",
    NextField = "next_field": "Move between To and the message",
    ToggleUrgent = "toggle_urgent": "Urgent: typed even into a busy agent that queues input",
    Help = "help": "Show the keys",
    Messages = "messages": "The config files' warnings and the latest messages",
    Quit = "quit": "Quit the workbench (the crew keeps running in its server)",
    StopCrew = "stop_crew": "Stop the crew (checkpointed first) and its server, quit",
    Detach = "detach": "Detach from the agent",
    Send = "send": "Send the message",
    Newline = "newline": "Insert a new line",
    NextTarget = "next_target": "Send to the next agent instead",
    Cancel = "cancel": "Cancel",
    Confirm = "confirm": "Confirm",
    Close = "close": "Close",
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    Roster,
    Timeline,
    Conflicts,
    Edit,
    Attached,
    Steer,
    Confirm,
    Help,
    Mail,
    Compose,
    Copy,
    Review,
    Gates,
    Findings,
}

impl Mode {
    pub const ALL: [Mode; 14] = [
        Mode::Roster,
        Mode::Timeline,
        Mode::Conflicts,
        Mode::Edit,
        Mode::Attached,
        Mode::Steer,
        Mode::Confirm,
        Mode::Help,
        Mode::Mail,
        Mode::Compose,
        Mode::Copy,
        Mode::Review,
        Mode::Gates,
        Mode::Findings,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Roster => "roster",
            Mode::Timeline => "timeline",
            Mode::Conflicts => "conflicts",
            Mode::Edit => "edit",
            Mode::Attached => "attached",
            Mode::Steer => "steer",
            Mode::Confirm => "confirm",
            Mode::Help => "help",
            Mode::Mail => "mail",
            Mode::Compose => "compose",
            Mode::Copy => "copy",
            Mode::Review => "review",
            Mode::Gates => "gates",
            Mode::Findings => "findings",
        }
    }

    fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Actions that must always have a key: without them a person cannot get out.
const ESSENTIAL: [(Mode, Action); 3] =
    [(Mode::Attached, Action::Detach), (Mode::Roster, Action::Quit), (Mode::Copy, Action::Close)];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub key: Key,
    pub action: Action,
    pub desc: String,
}

#[derive(Debug, Clone, Default)]
pub struct Keymap {
    modes: HashMap<Mode, Vec<Binding>>,
}

impl Keymap {
    pub fn action(&self, mode: Mode, key: Key) -> Option<Action> {
        let own = self.modes.get(&mode).and_then(|list| list.iter().find(|b| b.key == key)).map(|b| b.action);
        match (own, mode) {
            // The timeline is a view of the roster's agent: what it does not bind works as in the roster.
            (None, Mode::Timeline | Mode::Conflicts | Mode::Mail | Mode::Review | Mode::Gates | Mode::Findings) => {
                self.action(Mode::Roster, key)
            }
            _ => own,
        }
    }

    /// Bindings of a mode, in the order of `Action::ALL`, for help and hints.
    pub fn bindings(&self, mode: Mode) -> Vec<&Binding> {
        let mut out: Vec<&Binding> = self.modes.get(&mode).map(|v| v.iter().collect()).unwrap_or_default();
        out.sort_by_cached_key(|b| (Action::ALL.iter().position(|a| *a == b.action), b.key.to_string().len()));
        out
    }

    /// The first key bound to an action in a mode, for hints: its shortest, the first bound of those (as
    /// `bindings` orders them). Asked by every frame's hints: no sort.
    pub fn key_for(&self, mode: Mode, action: Action) -> Option<Key> {
        let mut best: Option<(usize, Key)> = None;
        for b in self.modes.get(&mode)?.iter().filter(|b| b.action == action) {
            let len = b.key.to_string().len();
            if best.is_none_or(|(l, _)| len < l) {
                best = Some((len, b.key));
            }
        }
        best.map(|(_, k)| k)
    }

    fn bind(&mut self, mode: Mode, key: Key, binding: Option<(Action, String)>) {
        let list = self.modes.entry(mode).or_default();
        list.retain(|b| b.key != key);
        if let Some((action, desc)) = binding {
            list.push(Binding { key, action, desc });
        }
    }

    /// Merge a keymap file over this one, returning warnings for the entries that were skipped.
    pub fn merge_file(&mut self, file: &Path, text: &str) -> Vec<Warning> {
        let mut warnings = Vec::new();
        // Entries that rebound or unbound the key of an essential action, where they are.
        let mut touched: Vec<(Mode, usize)> = Vec::new();
        let warn = |warnings: &mut Vec<Warning>, offset: usize, msg: String| {
            warnings.push(Warning(ConfigError::at(file, text, offset, msg)));
        };
        let table = match DeTable::parse(text) {
            Ok(t) => t.into_inner(),
            Err(e) => {
                warnings.push(Warning(ConfigError::from_toml(file, text, &e)));
                return warnings;
            }
        };
        for (mode_key, mode_value) in table.iter() {
            let at = mode_key.span().start;
            let Some(mode) = Mode::from_name(mode_key.get_ref()) else {
                let known: Vec<&str> = Mode::ALL.iter().map(|m| m.name()).collect();
                warn(&mut warnings, at, format!("unknown mode `{}` (known: {})", mode_key.get_ref(), known.join(", ")));
                continue;
            };
            let DeValue::Table(bindings) = mode_value.get_ref() else {
                warn(&mut warnings, at, format!("mode `{}` must be a table of key = action", mode.name()));
                continue;
            };
            for (key_str, value) in bindings.iter() {
                let key_at = key_str.span().start;
                let key = match Key::parse(key_str.get_ref()) {
                    Ok(k) => k,
                    Err(e) => {
                        warn(&mut warnings, key_at, format!("[{}] {e}", mode.name()));
                        continue;
                    }
                };
                let (action_name, desc, value_at) = match value.get_ref() {
                    DeValue::String(s) => (s.to_string(), None, value.span().start),
                    DeValue::Table(t) => {
                        let get = |name: &str| {
                            t.iter().find(|(k, _)| k.get_ref() == name).and_then(|(_, v)| match v.get_ref() {
                                DeValue::String(s) => Some(s.to_string()),
                                _ => None,
                            })
                        };
                        match get("action") {
                            Some(a) => (a, get("desc"), value.span().start),
                            None => {
                                warn(&mut warnings, key_at, format!("[{}] key `{key}`: needs `action`", mode.name()));
                                continue;
                            }
                        }
                    }
                    _ => {
                        warn(
                            &mut warnings,
                            value.span().start,
                            format!("[{}] key `{key}`: expected an action name or a table", mode.name()),
                        );
                        continue;
                    }
                };
                if self.action(mode, key).is_some_and(|a| ESSENTIAL.contains(&(mode, a))) {
                    touched.push((mode, key_at));
                }
                if action_name == "none" {
                    self.bind(mode, key, None);
                    continue;
                }
                match Action::from_name(&action_name) {
                    Some(action) => {
                        let desc = desc.unwrap_or_else(|| action.description().to_string());
                        self.bind(mode, key, Some((action, desc)));
                    }
                    None => warn(
                        &mut warnings,
                        value_at,
                        format!("[{}] key `{key}`: unknown action `{action_name}`", mode.name()),
                    ),
                }
            }
        }
        // Without a key to detach (or to quit) a person is locked in: the built-in key keeps that action.
        for (mode, action) in ESSENTIAL {
            if self.key_for(mode, action).is_some() {
                continue;
            }
            let Some(key) = Keymap::builtin_key(mode, action) else { continue };
            let at = touched.iter().rev().find(|(m, _)| *m == mode).map(|(_, at)| *at).unwrap_or(0);
            warn(&mut warnings, at, format!("[{}] no key left for `{}`: `{key}` keeps it", mode.name(), action.name()));
            self.bind(mode, key, Some((action, action.description().to_string())));
        }
        // Tables come back sorted by name; report in file order.
        warnings.sort_by_key(|w| (w.0.line, w.0.col));
        warnings
    }

    /// The default key of an action (the defaults bind every essential action, so this never recurses).
    fn builtin_key(mode: Mode, action: Action) -> Option<Key> {
        Keymap::builtin().key_for(mode, action)
    }

    /// The embedded defaults alone.
    pub fn builtin() -> Keymap {
        let mut km = Keymap::default();
        let warnings = km.merge_file(Path::new("keymaps/default.toml"), DEFAULT);
        debug_assert!(warnings.is_empty(), "{warnings:?}");
        km
    }

    /// Defaults, then the user's keymap, then the project's.
    pub fn load(project_dir: Option<&Path>) -> (Keymap, Vec<Warning>) {
        let mut km = Keymap::builtin();
        let mut warnings = Vec::new();
        let mut files = Vec::new();
        if let Some(dir) = super::paths::user_config_dir() {
            files.push(dir.join("keymaps").join("default.toml"));
        }
        if let Some(dir) = project_dir {
            files.push(dir.join(".muster").join("keymap.toml"));
        }
        for file in files {
            match super::read_text(&file) {
                Ok(Some(text)) => warnings.extend(km.merge_file(&file, &text)),
                Ok(None) => {}
                Err(e) => warnings.push(Warning(e)),
            }
        }
        (km, warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Key {
        Key::parse(s).unwrap()
    }

    #[test]
    fn defaults_load_without_warnings_and_every_binding_has_a_description() {
        let mut km = Keymap::default();
        assert!(km.merge_file(Path::new("d.toml"), DEFAULT).is_empty());
        assert_eq!(km.action(Mode::Roster, k("j")), Some(Action::SelectNext));
        assert_eq!(km.action(Mode::Attached, k("C-]")), Some(Action::Detach));
        assert_eq!(km.action(Mode::Attached, k("j")), None);
        for mode in Mode::ALL {
            for b in km.bindings(mode) {
                assert!(!b.desc.is_empty());
            }
        }
    }

    #[test]
    fn override_merges_and_warns_with_location() {
        let mut km = Keymap::builtin();
        let text = "[roster]\n\"j\" = \"select_prev\"\n\"C-\" = \"quit\"\n\"z\" = \"fly\"\n\"q\" = \"none\"\n\
                    \"w\" = { action = \"steer\", desc = \"Whisper\" }\n[nope]\n";
        let warnings = km.merge_file(Path::new("user.toml"), text);
        assert_eq!(km.action(Mode::Roster, k("j")), Some(Action::SelectPrev));
        assert_eq!(km.action(Mode::Roster, k("q")), None);
        assert_eq!(km.action(Mode::Roster, k("k")), Some(Action::SelectPrev));
        let w = km.bindings(Mode::Roster).into_iter().find(|b| b.key == k("w")).cloned().unwrap();
        assert_eq!(w.desc, "Whisper");
        let msgs: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].starts_with("warning: user.toml:3:1: [roster] unknown key `C-`"), "{msgs:?}");
        assert!(msgs[1].contains("user.toml:4:7") && msgs[1].contains("key `z`: unknown action `fly`"), "{msgs:?}");
        assert!(msgs[2].contains("user.toml:7:2") && msgs[2].contains("unknown mode `nope`"), "{msgs:?}");
    }

    #[test]
    fn the_detach_and_quit_keys_cannot_all_be_taken_away() {
        let mut km = Keymap::builtin();
        let text = "[attached]\n\"C-]\" = \"none\"\n[roster]\n\"q\" = \"help\"\n\"C-c\" = \"none\"\n";
        let w: Vec<String> = km.merge_file(Path::new("k.toml"), text).iter().map(|w| w.to_string()).collect();
        assert_eq!(km.action(Mode::Attached, k("C-]")), Some(Action::Detach));
        assert_eq!(km.action(Mode::Roster, k("q")), Some(Action::Quit));
        assert!(w[0].contains("k.toml:2:1: [attached] no key left for `detach`"), "{w:?}");
        assert!(w[1].contains("k.toml:4:1: [roster] no key left for `quit`"), "{w:?}");
        // Moved to another key, it is the operator's choice.
        let mut km = Keymap::builtin();
        let w = km.merge_file(Path::new("k.toml"), "[attached]\n\"C-]\" = \"none\"\n\"C-g\" = \"detach\"\n");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(km.action(Mode::Attached, k("C-]")), None);
    }

    #[test]
    fn broken_toml_is_one_warning_and_keeps_defaults() {
        let mut km = Keymap::builtin();
        let warnings = km.merge_file(Path::new("u.toml"), "[roster\n");
        assert_eq!(warnings.len(), 1);
        assert_eq!(km.action(Mode::Roster, k("j")), Some(Action::SelectNext));
    }
}
