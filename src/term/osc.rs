//! A tap on the raw output for OSC desktop notifications (OSC 9, 99 and 777), which the emulator drops.
//!
//! The bytes go through a real escape-sequence parser (`vte`, the one the emulator uses), so text is never
//! mistaken for a control sequence: 0x9d and 0x9c are UTF-8 continuation bytes (丝 is E4 B8 9D), not C1 OSC/ST.
//! vte keeps an unterminated OSC string in a growing buffer; the tap starts a fresh parser whenever a string
//! has gone on for longer than any notification could be, so hostile output cannot grow it.

use alacritty_terminal::vte::{Parser, Perform};

/// Longer than any notification worth showing: past this, a string that has not ended is dropped.
const MAX_OSC: usize = 64 * 1024;
/// Bytes fed to the parser at a time, so a runaway string is noticed within this many bytes.
const CHUNK: usize = 4096;

#[derive(Default)]
pub struct OscTap {
    parser: Parser,
    sink: Found,
    /// Bytes fed since the parser last did anything but grow a string.
    pending: usize,
}

#[derive(Default)]
struct Found {
    messages: Vec<String>,
    /// Something other than an unfinished string was parsed in the current chunk.
    progressed: bool,
}

impl Perform for Found {
    fn print(&mut self, _c: char) {
        self.progressed = true;
    }

    fn execute(&mut self, _byte: u8) {
        self.progressed = true;
    }

    fn csi_dispatch(&mut self, _: &alacritty_terminal::vte::Params, _: &[u8], _: bool, _: char) {
        self.progressed = true;
    }

    fn esc_dispatch(&mut self, _: &[u8], _: bool, _: u8) {
        self.progressed = true;
    }

    fn osc_dispatch(&mut self, params: &[&[u8]], _bell_terminated: bool) {
        self.progressed = true;
        if let Some(message) = notification(params) {
            self.messages.push(message);
        }
    }
}

impl OscTap {
    pub fn feed(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(CHUNK) {
            self.sink.progressed = false;
            self.parser.advance(&mut self.sink, chunk);
            self.pending = if self.sink.progressed { 0 } else { self.pending + chunk.len() };
            if self.pending > MAX_OSC {
                self.parser = Parser::new();
                self.pending = 0;
            }
        }
    }

    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.sink.messages)
    }
}

/// The message of a notification OSC, or None for any other OSC.
fn notification(params: &[&[u8]]) -> Option<String> {
    let text = |i: usize| params.get(i).map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
    // The parser splits on every `;`, but a message may hold some: put the tail back together.
    let rest = |from: usize| {
        params.get(from..).unwrap_or(&[]).iter().map(|p| String::from_utf8_lossy(p)).collect::<Vec<_>>().join(";")
    };
    match params.first().copied()? {
        // OSC 9;4 is ConEmu's progress report, not a notification.
        b"9" if params.get(1).copied() != Some(b"4") => Some(rest(1)),
        // OSC 99 ; metadata ; payload
        b"99" if params.len() >= 3 => Some(rest(2)),
        // OSC 777 ; notify ; title ; body
        b"777" if params.get(1).copied() == Some(b"notify") => {
            let (title, body) = (text(2), rest(3));
            Some(if body.is_empty() { title } else { format!("{title}: {body}") })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_kind_across_split_reads() {
        let mut tap = OscTap::default();
        tap.feed(b"text\x1b]9;build do");
        tap.feed(b"ne\x07\x1b]777;notify;Agent;needs you\x1b\\\x1b]99;i=1;hi\x07\x1b]0;title\x07");
        assert_eq!(tap.take(), vec!["build done", "Agent: needs you", "hi"]);
        assert!(tap.take().is_empty());
    }

    #[test]
    fn messages_keep_their_semicolons() {
        let mut tap = OscTap::default();
        tap.feed(b"\x1b]9;a;b\x07\x1b]777;notify;T;x;y\x07");
        assert_eq!(tap.take(), vec!["a;b", "T: x;y"]);
    }

    #[test]
    fn progress_reports_and_titles_are_not_notifications() {
        let mut tap = OscTap::default();
        tap.feed(b"\x1b]9;4;1;50\x07\x1b]2;t\x07");
        assert!(tap.take().is_empty());
    }

    #[test]
    fn utf8_text_with_c1_lookalike_bytes_is_not_a_sequence() {
        // 丝 is E4 B8 9D and 眜 is E7 9C 9C: continuation bytes equal to C1 OSC and ST.
        let mut tap = OscTap::default();
        tap.feed("丝9;not a notification眜 and more 丝777;notify;x\u{7}".as_bytes());
        assert!(tap.take().is_empty());
        tap.feed(b"\x1b]9;real\x07");
        assert_eq!(tap.take(), vec!["real"]);
    }

    #[test]
    fn unterminated_osc_is_dropped_and_parsing_goes_on() {
        let mut tap = OscTap::default();
        tap.feed(b"\x1b]9;");
        for _ in 0..100 {
            tap.feed(&[b'a'; 10_000]);
        }
        tap.feed(b"\x07");
        assert!(tap.take().is_empty(), "a runaway string is not reported");
        tap.feed(b"\x1b]9;after\x07");
        assert_eq!(tap.take(), vec!["after"]);
    }
}
