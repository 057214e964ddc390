//! Bounds on what an agent's output can make the emulator hold, applied to the bytes before it sees them. The
//! emulator's parser keeps an OSC string (a title, a hyperlink, a clipboard write) in a buffer that grows until
//! the string ends, and a cell keeps every combining mark written on it: `printf '\e]0;'; yes` or a flood of
//! U+0301 grew them to gigabytes. Real terminals cap both; so does this: an OSC string keeps its first
//! `MAX_OSC` bytes (the rest is dropped up to its end), and a character keeps at most `MAX_COMBINING` marks.
//!
//! The states follow the emulator's parser (vte): `ESC ]` starts an OSC string; BEL, CAN, SUB or ESC ends it.
//! Knowing where strings start and end, the guard also keeps each (capped) string as it ends, for the
//! desktop notifications (OSC 9, 99, 777) the emulator drops: no second parser runs over the output.

use unicode_width::UnicodeWidthChar;

/// Longer than any title, hyperlink or notification a program means to show.
pub const MAX_OSC: usize = 64 * 1024;
/// Marks on one character (xterm keeps 2 by default; scripts that stack several need a few more).
pub const MAX_COMBINING: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    Escape,
    Osc(usize),
}

#[derive(Debug)]
pub struct OutputGuard {
    state: State,
    /// Zero-width characters since the last character with a width.
    marks: usize,
    /// A UTF-8 character split across reads.
    partial: [u8; 4],
    partial_len: usize,
    out: Vec<u8>,
    /// Bytes dropped so far.
    pub dropped: u64,
    /// Zero-width characters given to the emulator in the last `filter`: when more than `MAX_COMBINING`, a
    /// program moving the cursor between marks may have stacked more on one cell, and the screen is trimmed.
    pub marks_passed: usize,
    /// The OSC string being read (what the emulator is given of it).
    osc: Vec<u8>,
    /// Notifications found in strings that ended, until taken.
    notifications: Vec<String>,
    /// The last progress report (OSC 9;4) as `STATE;VALUE`; None when there is none or it was cleared.
    pub progress: Option<String>,
}

impl Default for OutputGuard {
    fn default() -> Self {
        OutputGuard {
            state: State::Ground,
            marks: 0,
            partial: [0; 4],
            partial_len: 0,
            out: Vec::new(),
            dropped: 0,
            marks_passed: 0,
            osc: Vec::new(),
            notifications: Vec::new(),
            progress: None,
        }
    }
}

/// How many leading bytes are ASCII other than ESC, eight at a time (output is mostly such runs).
fn plain_len(input: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut n = 0;
    for chunk in input.chunks_exact(8) {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else { break };
        let word = u64::from_le_bytes(bytes);
        // A byte equal to ESC is a zero byte of `esc`; a high bit anywhere is a byte above 0x7F.
        let esc = word ^ (0x1B * ONES);
        if (esc.wrapping_sub(ONES) & !esc | word) & HIGH != 0 {
            break;
        }
        n += 8;
    }
    n + input[n..].iter().position(|&b| b == 0x1B || b >= 0x80).unwrap_or(input.len() - n)
}

/// The length of the UTF-8 sequence a byte starts (1 for anything that is not a lead byte).
pub(super) fn utf8_len(first: u8) -> usize {
    match first {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

impl OutputGuard {
    /// The bytes to give the emulator. A character split across reads is held until it is whole.
    pub fn filter(&mut self, input: &[u8]) -> &[u8] {
        self.out.clear();
        self.marks_passed = 0;
        self.out.reserve(input.len());
        let mut i = 0;
        while i < input.len() {
            // Most output is runs of ASCII between escapes: those go through whole, byte by byte only the rest.
            let run = match self.state {
                State::Ground if self.partial_len == 0 => self.ascii_run(&input[i..]),
                State::Osc(n) => self.osc_run(&input[i..], n),
                _ => 0,
            };
            if run > 0 {
                i += run;
                continue;
            }
            self.byte(input[i]);
            i += 1;
        }
        &self.out
    }

    /// Pass the leading ASCII bytes, escapes among them that end at their next byte (SGR's `ESC [`, not an
    /// OSC's `ESC ]`): coloured output goes through in one run. Returns how many.
    fn ascii_run(&mut self, input: &[u8]) -> usize {
        let mut printable = false;
        let mut n = 0;
        loop {
            let plain = plain_len(&input[n..]);
            // Almost always its first byte says so.
            printable |= input[n..n + plain].iter().any(|&b| b >= 0x20);
            n += plain;
            // The byte after ESC is the escape's, as in `byte`: it does not end a run of marks.
            match input.get(n..n + 2) {
                Some(&[0x1B, next]) if (0x20..=0x7E).contains(&next) && next != b']' => n += 2,
                _ => break,
            }
        }
        if printable {
            self.marks = 0;
        }
        self.out.extend_from_slice(&input[..n]);
        n
    }

    /// Pass (up to the cap) or drop the leading bytes of an OSC string that do not end it; returns how many.
    fn osc_run(&mut self, input: &[u8], len: usize) -> usize {
        let n = input.iter().position(|b| matches!(b, 0x07 | 0x18 | 0x1A | 0x1B)).unwrap_or(input.len());
        let keep = n.min(MAX_OSC.saturating_sub(len));
        self.out.extend_from_slice(&input[..keep]);
        self.osc.extend_from_slice(&input[..keep]);
        self.dropped += (n - keep) as u64;
        self.state = State::Osc(len + keep);
        n
    }

    fn byte(&mut self, b: u8) {
        match self.state {
            State::Osc(n) => match b {
                0x07 | 0x18 | 0x1A | 0x1B => {
                    self.state = if b == 0x1B { State::Escape } else { State::Ground };
                    self.out.push(b);
                    self.osc_ended(n);
                }
                _ if n < MAX_OSC => {
                    self.state = State::Osc(n + 1);
                    self.out.push(b);
                    self.osc.push(b);
                }
                _ => self.dropped += 1,
            },
            State::Escape => {
                self.state = match b {
                    b']' => {
                        self.osc.clear();
                        State::Osc(0)
                    }
                    // Only a final or intermediate byte moves the parser on, or CAN and SUB cancelling the
                    // escape: it runs other C0 controls met inside an escape and ignores the bytes above 0x7E.
                    0x20..=0x7E | 0x18 | 0x1A => State::Ground,
                    _ => State::Escape,
                };
                self.out.push(b);
            }
            State::Ground => self.ground(b),
        }
    }

    /// An OSC string of `len` bytes passed ended: a notification in it is kept, unless it was cut (a string
    /// that long is no message).
    fn osc_ended(&mut self, len: usize) {
        if len < MAX_OSC {
            self.notifications.extend(super::osc::notification(&self.osc));
            if let Some(p) = super::osc::progress(&self.osc) {
                self.progress = p;
            }
        }
        self.osc.clear();
    }

    /// Desktop notifications (OSC 9, 99, 777) in the strings that ended since the last call.
    pub fn take_notifications(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notifications)
    }

    fn ground(&mut self, b: u8) {
        if self.partial_len > 0 {
            if b & 0xC0 == 0x80 {
                self.partial[self.partial_len] = b;
                self.partial_len += 1;
                if self.partial_len == utf8_len(self.partial[0]) {
                    self.finish_char();
                }
                return;
            }
            // A broken sequence: the emulator shows it as it would have.
            self.out.extend_from_slice(&self.partial[..self.partial_len]);
            self.partial_len = 0;
        }
        match b {
            0x1B => self.state = State::Escape,
            0x20..=0x7E => self.marks = 0,
            0xC0..=0xF7 => {
                self.partial[0] = b;
                self.partial_len = 1;
                return;
            }
            _ => {}
        }
        self.out.push(b);
    }

    fn finish_char(&mut self) {
        let len = self.partial_len;
        self.partial_len = 0;
        let ch = std::str::from_utf8(&self.partial[..len]).ok().and_then(|s| s.chars().next());
        if ch.is_some_and(|c| c.width() == Some(0) && !c.is_control()) {
            self.marks += 1;
            if self.marks > MAX_COMBINING {
                self.dropped += len as u64;
                return;
            }
            self.marks_passed += 1;
        } else {
            // Control sequences and cursor moves do not end a run: only a character that takes a cell does.
            self.marks = 0;
        }
        self.out.extend_from_slice(&self.partial[..len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(chunks: &[&[u8]]) -> (Vec<u8>, u64) {
        let mut g = OutputGuard::default();
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(g.filter(c));
        }
        (out, g.dropped)
    }

    #[test]
    fn an_endless_osc_string_is_cut_and_its_end_still_arrives() {
        let mut input = b"\x1b]0;".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_OSC * 3));
        input.extend_from_slice(b"\x07after");
        let (out, dropped) = run(&[&input]);
        assert_eq!(out.len(), 2 + MAX_OSC + 1 + 5);
        assert!(out.ends_with(b"\x07after"));
        assert_eq!(dropped as usize, MAX_OSC * 2 + 2);
    }

    #[test]
    fn a_string_whose_escape_holds_a_control_or_a_high_byte_is_cut_too() {
        // The parser runs a BEL inside `ESC ]` and ignores 0xC3, so these start strings as plain `ESC ]` does.
        for start in [&b"\x1b\x07]0;"[..], b"\x1b\xc3]0;"] {
            let mut input = start.to_vec();
            input.extend(std::iter::repeat_n(b'a', MAX_OSC * 2));
            let (out, dropped) = run(&[&input]);
            assert_eq!(dropped as usize, MAX_OSC + 2, "after {start:?}");
            assert_eq!(out.len(), start.len() + MAX_OSC - 2);
        }
    }

    #[test]
    fn marks_on_one_character_are_capped_across_reads() {
        let mark = "\u{301}";
        let text = format!("e{}x{}", mark.repeat(100), mark.repeat(3));
        let bytes = text.as_bytes();
        // Split inside a mark's two bytes.
        let (out, _) = run(&[&bytes[..6], &bytes[6..]]);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, format!("e{}x{}", mark.repeat(MAX_COMBINING), mark.repeat(3)));
    }

    #[test]
    fn ordinary_text_passes_unchanged() {
        let text = "héllo 世界 👩‍👩‍👧 e\u{301} \x1b[31mred\x1b[0m \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\r\n";
        let (out, dropped) = run(&[text.as_bytes()]);
        assert_eq!(String::from_utf8(out).unwrap(), text);
        assert_eq!(dropped, 0);
    }

    proptest! {
        #[test]
        fn plain_runs_end_where_a_byte_by_byte_search_says(bytes in proptest::collection::vec(prop_oneof![0x20u8..0x7F, Just(0x1B), 0x80u8..=0xFF, 0u8..0x20], 0..40), plain in 0usize..40) {
            // Mostly plain, so the eight-at-a-time path is taken.
            let mut input = vec![b'a'; plain];
            input.extend(bytes);
            let expected = input.iter().position(|&b| b == 0x1B || b >= 0x80).unwrap_or(input.len());
            prop_assert_eq!(plain_len(&input), expected);
        }

        /// Fed a byte at a time, the guard takes every byte on its own (no runs): the runs change nothing.
        #[test]
        fn runs_pass_what_bytes_one_by_one_would(pieces in proptest::collection::vec(proptest::sample::select(vec![
            "\x1b", "]", "[", "0;", "9;", "m", "31", "\x07", "\x18", "\x1b\\", "text ", "é", "世", "\u{301}", "\r\n", "\x01", "\x7f",
        ]), 0..80)) {
            let input = pieces.concat().into_bytes();
            let one_by_one: Vec<&[u8]> = input.chunks(1).collect();
            prop_assert_eq!(run(&[&input]), run(&one_by_one));
        }

        #[test]
        fn splitting_the_input_anywhere_changes_nothing(bytes in proptest::collection::vec(any::<u8>(), 0..400), cut in 0usize..400) {
            let cut = cut.min(bytes.len());
            let (whole, _) = run(&[&bytes]);
            let (split, _) = run(&[&bytes[..cut], &bytes[cut..]]);
            prop_assert_eq!(whole, split);
        }

        #[test]
        fn text_without_escapes_or_mark_runs_is_untouched(s in "[a-zé世\n ]{0,200}") {
            let (out, _) = run(&[s.as_bytes()]);
            prop_assert_eq!(out, s.as_bytes().to_vec());
        }
    }
}
