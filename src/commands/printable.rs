//! Text an agent wrote (mail bodies and subjects, names, questions, titles), made safe to print on the
//! operator's terminal: a terminal control in it would set the title, write the clipboard (OSC 52), clear the
//! screen, hide text or move the cursor over what was printed before. The TUI's renderer drops them too.

/// `text` without terminal controls: every C0 and C1 control, DEL and ESC (and so every escape sequence's
/// introducer) goes, and the bidirectional overrides that reorder what is shown; tab and newline stay.
pub fn printable(text: &str) -> String {
    text.chars().filter(|&c| matches!(c, '\n' | '\t') || !hidden(c)).collect()
}

/// As `printable`, on one line: newlines become spaces (a list's line, a name).
pub fn printable_line(text: &str) -> String {
    text.chars().filter(|&c| c == '\n' || c == '\t' || !hidden(c)).map(|c| if c == '\n' { ' ' } else { c }).collect()
}

fn hidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_controls_never_reach_the_terminal() {
        let body = "hi\x1b]0;owned\x07\x1b]52;c;ZXZpbA==\x07\x1b[2J\x1b[8mhidden\x1b[0m\rover\u{9b}31m\u{202e}txt\nline two\tend\x7f";
        let shown = printable(body);
        assert_eq!(shown, "hi]0;owned]52;c;ZXZpbA==[2J[8mhidden[0mover31mtxt\nline two\tend");
        assert!(!shown.contains('\x1b') && !shown.contains('\r'));
        assert_eq!(printable_line("a\nb\x1b[Kc"), "a b[Kc");
    }
}
