//! A desktop notification through the operator's own terminal: OSC 9 (iTerm2, WezTerm, Ghostty, Windows
//! Terminal, kitty, Konsole…), or OSC 777 where that is the terminal's way (foot, urxvt, VTE); inside tmux wrapped
//! in its passthrough, which tmux hands on when `allow-passthrough` is on. A terminal that knows neither ignores
//! the sequence, as it ignores every OSC it does not know.

/// The bytes that ask the terminal named by `term`/`term_program` (inside tmux when `tmux`) to notify `text`.
pub fn notification(text: &str, term: &str, term_program: &str, tmux: bool) -> Vec<u8> {
    // Only printable text: a name or message can never end the sequence early or start another.
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect::<String>().replace(';', ",");
    let urxvt_style = ["foot", "rxvt"].iter().any(|t| term.starts_with(t))
        || ["vte", "gnome-terminal"].iter().any(|t| term_program.to_ascii_lowercase().contains(t));
    let osc = if urxvt_style { format!("\x1b]777;notify;muster;{text}\x1b\\") } else { format!("\x1b]9;{text}\x1b\\") };
    if tmux {
        // tmux's passthrough: every ESC inside doubled.
        return format!("\x1bPtmux;{}\x1b\\", osc.replace('\x1b', "\x1b\x1b")).into_bytes();
    }
    osc.into_bytes()
}

/// The bytes that put `text` on the clipboard of the terminal that reads them (OSC 52, which xterm, kitty,
/// WezTerm, iTerm2, foot, Windows Terminal and tmux with `set-clipboard on` take). Base64 carries any text:
/// nothing in it can end the sequence.
pub fn clipboard(text: &str) -> Vec<u8> {
    use base64::Engine;
    format!("\x1b]52;c;{}\x07", base64::engine::general_purpose::STANDARD.encode(text)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_terminals_own_sequence_and_only_printable_text() {
        assert_eq!(
            notification("api finished its turn", "xterm-256color", "WezTerm", false),
            b"\x1b]9;api finished its turn\x1b\\"
        );
        assert_eq!(notification("a", "foot", "", false), b"\x1b]777;notify;muster;a\x1b\\");
        assert_eq!(notification("a", "xterm-256color", "", true), b"\x1bPtmux;\x1b\x1b]9;a\x1b\x1b\\\x1b\\");
        let hostile = notification("x\x07\x1b]52;c;cm0gLXJm\x07; y", "xterm", "", false);
        assert_eq!(hostile, b"\x1b]9;x]52,c,cm0gLXJm, y\x1b\\");
    }

    #[test]
    fn copied_text_is_base64_in_one_osc_52() {
        assert_eq!(clipboard("hi\x07\x1b]0;x\n"), b"\x1b]52;c;aGkHG10wO3gK\x07");
    }
}
