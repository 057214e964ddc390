//! A gate's output as the agent and the operator read it: escapes and control characters gone, a line redrawn
//! with `\r` kept as its last state, the last lines only, each and all bounded.

/// The longest line kept (longer ones are cut, with `…`).
const MAX_LINE: usize = 400;

/// Plain text: no escape sequences (CSI, OSC, others), no control characters but newline and tab.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut line_start = 0;
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    // Parameters and intermediates, then one final byte.
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') | Some('P') | Some('_') | Some('^') => {
                    // A string, ended by BEL or ST (ESC \).
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' if chars.peek() == Some(&'\n') => {}
            // A line redrawn in place: what follows replaces it.
            '\r' => out.truncate(line_start),
            '\n' => {
                out.push('\n');
                line_start = out.len();
            }
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The last `lines` lines of `text`, made plain, each at most `MAX_LINE` bytes.
pub fn tail(text: &str, lines: usize) -> String {
    let plain = plain(text);
    let all: Vec<&str> = plain.trim_end().lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut out = String::new();
    for line in &all[start..] {
        if line.len() > MAX_LINE {
            out.push_str(&line[..line.floor_char_boundary(MAX_LINE)]);
            out.push('…');
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_and_redraws_are_gone() {
        let text = "\x1b[31merror\x1b[0m: boom\r\n\x1b]0;title\x07⠋ 1/3\r⠙ 2/3\r\x1b[2Kdone\nlast\x08";
        assert_eq!(plain(text), "error: boom\ndone\nlast");
    }

    #[test]
    fn the_tail_keeps_the_last_lines_each_bounded() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(tail(&text, 2), "line 98\nline 99\n");
        let long = "é".repeat(1000);
        let t = tail(&long, 1);
        assert!(t.len() <= MAX_LINE + 4 && t.ends_with("…\n"), "{}", t.len());
    }

    proptest! {
        #[test]
        fn plain_text_has_no_escape_and_no_control(text in ".{0,200}", bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            for t in [text, String::from_utf8_lossy(&bytes).into_owned()] {
                let p = plain(&t);
                prop_assert!(!p.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "{p:?}");
                let _ = tail(&t, 3);
            }
        }
    }
}
