//! A tap on the raw output for OSC desktop notifications (OSC 9, 99 and 777), which the emulator drops.
//! It keeps only a small, bounded buffer across reads, so hostile output cannot grow it.

const MAX_OSC: usize = 4096;

#[derive(Default)]
pub struct OscTap {
    state: State,
    buf: Vec<u8>,
    found: Vec<String>,
}

#[derive(Default, PartialEq, Eq, Clone, Copy)]
enum State {
    #[default]
    Ground,
    Esc,
    Osc,
    OscEsc,
}

impl OscTap {
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state = match (self.state, b) {
                (State::Ground, 0x1b) => State::Esc,
                (State::Ground, 0x9d) => self.start(),
                (State::Ground, _) => State::Ground,
                (State::Esc, b']') => self.start(),
                (State::Esc, 0x1b) => State::Esc,
                (State::Esc, _) => State::Ground,
                (State::Osc, 0x07) | (State::Osc, 0x9c) => self.finish(),
                (State::Osc, 0x1b) => State::OscEsc,
                (State::Osc, _) => {
                    if self.buf.len() < MAX_OSC {
                        self.buf.push(b);
                    }
                    State::Osc
                }
                (State::OscEsc, b'\\') => self.finish(),
                (State::OscEsc, b']') => self.start(),
                (State::OscEsc, _) => State::Ground,
            };
        }
    }

    fn start(&mut self) -> State {
        self.buf.clear();
        State::Osc
    }

    fn finish(&mut self) -> State {
        let text = String::from_utf8_lossy(&self.buf).into_owned();
        if let Some(message) = notification(&text) {
            self.found.push(message);
        }
        self.buf.clear();
        State::Ground
    }

    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.found)
    }
}

/// The message of a notification OSC, or None for any other OSC.
fn notification(osc: &str) -> Option<String> {
    let (code, rest) = osc.split_once(';').unwrap_or((osc, ""));
    match code {
        // OSC 9;4 is ConEmu's progress report, not a notification.
        "9" if !rest.starts_with("4;") => Some(rest.to_string()),
        // OSC 99 ; metadata ; payload
        "99" => rest.split_once(';').map(|(_, payload)| payload.to_string()),
        // OSC 777 ; notify ; title ; body
        "777" => {
            let mut parts = rest.splitn(3, ';');
            (parts.next() == Some("notify")).then(|| {
                let title = parts.next().unwrap_or("");
                let body = parts.next().unwrap_or("");
                if body.is_empty() {
                    title.to_string()
                } else {
                    format!("{title}: {body}")
                }
            })
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
    fn progress_reports_and_titles_are_not_notifications() {
        let mut tap = OscTap::default();
        tap.feed(b"\x1b]9;4;1;50\x07\x1b]2;t\x07");
        assert!(tap.take().is_empty());
    }

    #[test]
    fn unterminated_osc_is_bounded() {
        let mut tap = OscTap::default();
        tap.feed(b"\x1b]9;");
        tap.feed(&vec![b'a'; 100_000]);
        assert!(tap.buf.len() <= MAX_OSC);
    }
}
