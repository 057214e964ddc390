//! Desktop notifications in OSC strings (OSC 9, 99 and 777), which the emulator drops.
//!
//! The output guard already follows the emulator's parser through every OSC string (it caps them), so it hands
//! each string that ended here: no second parser runs over the output. Text is never mistaken for a sequence:
//! 0x9d and 0x9c are UTF-8 continuation bytes (丝 is E4 B8 9D), not C1 OSC/ST, to the guard as to the emulator.

/// The message of a notification in an OSC string (the bytes after `ESC ]`, without its terminator), or None
/// for any other OSC.
pub fn notification(osc: &[u8]) -> Option<String> {
    // As the emulator's parser reads a string: C0 controls inside it are ignored, `;` separates parameters.
    let bytes: Vec<u8> = osc.iter().copied().filter(|b| *b >= 0x20).collect();
    let text = String::from_utf8_lossy(&bytes);
    let (kind, rest) = text.split_once(';').unwrap_or((&text, ""));
    // The parameter after the kind, and everything after that (a message may hold `;`).
    let (first, tail) = rest.split_once(';').map_or((rest, None), |(a, b)| (a, Some(b)));
    match kind {
        // OSC 9;4 is ConEmu's progress report, not a notification.
        "9" if first != "4" => Some(rest.to_string()),
        // OSC 99 ; metadata ; payload
        "99" => tail.map(str::to_string),
        // OSC 777 ; notify ; title ; body
        "777" if first == "notify" => {
            let tail = tail.unwrap_or_default();
            let (title, body) = tail.split_once(';').unwrap_or((tail, ""));
            Some(if body.is_empty() { title.to_string() } else { format!("{title}: {body}") })
        }
        _ => None,
    }
}

/// A progress report (ConEmu's OSC 9;4, which Windows Terminal, Ghostty and several agent CLIs send while they
/// work): `Some(None)` clears it (state 0), `Some(Some("STATE;VALUE"))` sets it; None for any other OSC.
pub fn progress(osc: &[u8]) -> Option<Option<String>> {
    let bytes: Vec<u8> = osc.iter().copied().filter(|b| *b >= 0x20).collect();
    let text = String::from_utf8_lossy(&bytes);
    let rest = text.strip_prefix("9;4")?;
    let rest = if rest.is_empty() { "0" } else { rest.strip_prefix(';')? };
    let mut parts = rest.split(';');
    let state: u8 = parts.next().and_then(|s| s.parse().ok()).filter(|s| *s <= 4)?;
    // A value is a percentage; anything else is left out rather than trusted.
    let value: u8 = parts.next().and_then(|v| v.parse().ok()).filter(|v| *v <= 100).unwrap_or(0);
    Some((state != 0).then(|| format!("{state};{value}")))
}

#[cfg(test)]
mod tests {
    use super::super::guard::{OutputGuard, MAX_OSC};

    /// The notifications found in output fed in these reads.
    struct Tap(OutputGuard);

    impl Tap {
        fn feed(&mut self, bytes: &[u8]) {
            self.0.filter(bytes);
        }

        fn take(&mut self) -> Vec<String> {
            self.0.take_notifications()
        }
    }

    #[test]
    fn finds_each_kind_across_split_reads() {
        let mut tap = Tap(OutputGuard::default());
        tap.feed(b"text\x1b]9;build do");
        tap.feed(b"ne\x07\x1b]777;notify;Agent;needs you\x1b\\\x1b]99;i=1;hi\x07\x1b]0;title\x07");
        assert_eq!(tap.take(), vec!["build done", "Agent: needs you", "hi"]);
        assert!(tap.take().is_empty());
    }

    #[test]
    fn messages_keep_their_semicolons() {
        let mut tap = Tap(OutputGuard::default());
        tap.feed(b"\x1b]9;a;b\x07\x1b]777;notify;T;x;y\x07");
        assert_eq!(tap.take(), vec!["a;b", "T: x;y"]);
    }

    #[test]
    fn progress_reports_are_read_and_cleared() {
        use super::progress;
        assert_eq!(progress(b"9;4;1;50"), Some(Some("1;50".into())));
        assert_eq!(progress(b"9;4;3"), Some(Some("3;0".into())));
        assert_eq!(progress(b"9;4;3;"), Some(Some("3;0".into())));
        assert_eq!(progress(b"9;4;0;0"), Some(None));
        assert_eq!(progress(b"9;4"), Some(None));
        assert_eq!(progress(b"9;4;7;1"), None, "no such state");
        assert_eq!(progress(b"9;40;1"), None);
        assert_eq!(progress(b"9;hello"), None);
        assert_eq!(progress(b"2;title"), None);
        let mut guard = OutputGuard::default();
        guard.filter(b"\x1b]9;4;3;0\x07text");
        assert_eq!(guard.progress.as_deref(), Some("3;0"));
        guard.filter(b"\x1b]9;4;0;0\x1b\\");
        assert_eq!(guard.progress, None);
    }

    #[test]
    fn progress_reports_and_titles_are_not_notifications() {
        let mut tap = Tap(OutputGuard::default());
        tap.feed(b"\x1b]9;4;1;50\x07\x1b]2;t\x07");
        assert!(tap.take().is_empty());
    }

    #[test]
    fn utf8_text_with_c1_lookalike_bytes_is_not_a_sequence() {
        // 丝 is E4 B8 9D and 眜 is E7 9C 9C: continuation bytes equal to C1 OSC and ST.
        let mut tap = Tap(OutputGuard::default());
        tap.feed("丝9;not a notification眜 and more 丝777;notify;x\u{7}".as_bytes());
        assert!(tap.take().is_empty());
        tap.feed(b"\x1b]9;real\x07");
        assert_eq!(tap.take(), vec!["real"]);
    }

    #[test]
    fn unterminated_osc_is_dropped_and_parsing_goes_on() {
        let mut tap = Tap(OutputGuard::default());
        tap.feed(b"\x1b]9;");
        for _ in 0..MAX_OSC / 10_000 + 2 {
            tap.feed(&[b'a'; 10_000]);
        }
        tap.feed(b"\x07");
        assert!(tap.take().is_empty(), "a runaway string is not reported");
        tap.feed(b"\x1b]9;after\x07");
        assert_eq!(tap.take(), vec!["after"]);
    }

    /// The emulator's own parser as the oracle: every OSC string it dispatches, read as a notification.
    fn by_the_emulators_parser(bytes: &[u8]) -> Vec<String> {
        use alacritty_terminal::vte::{Parser, Perform};
        struct Strings(Vec<String>);
        impl Perform for Strings {
            fn osc_dispatch(&mut self, params: &[&[u8]], _: bool) {
                self.0.extend(super::notification(&params.join(&b';')));
            }
        }
        let mut found = Strings(Vec::new());
        Parser::new().advance(&mut found, bytes);
        found.0
    }

    proptest::proptest! {
        /// The guard finds the notifications the emulator's parser would, in output read in any pieces.
        #[test]
        fn the_guard_finds_what_the_parser_dispatches(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "\x1b", "]", "9;", "99;", "777;", "notify;", "4;", "title", "\x07", "\x18", "\x1a", "\\",
                "[", "P", "\x01", "é", "丝", "眜", "\u{301}", ";", "\r\n",
            ]), 0..60),
            cuts in proptest::collection::vec(0usize..400, 0..4),
        ) {
            let bytes = pieces.concat().into_bytes();
            let mut tap = Tap(OutputGuard::default());
            let mut at = 0;
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort();
            for cut in cuts.into_iter().chain([bytes.len()]) {
                tap.feed(&bytes[at..cut]);
                at = cut;
            }
            proptest::prop_assert_eq!(tap.take(), by_the_emulators_parser(&bytes));
        }
    }
}
