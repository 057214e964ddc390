//! Encoding what the operator types into the bytes an agent expects, for the input modes that agent switched
//! on: legacy xterm sequences, application cursor keys, the kitty keyboard protocol, bracketed paste.

use super::model::InputModes;
use crate::key::{Key, KeyCode};

const KITTY_DISAMBIGUATE: u8 = 1;
const KITTY_ALL_AS_ESCAPES: u8 = 8;
const KITTY_ASSOCIATED_TEXT: u8 = 16;

/// xterm's modifier parameter: 1 + shift + 2·alt + 4·ctrl.
fn mod_param(key: Key) -> u8 {
    1 + key.mods.0
}

pub fn encode_key(key: Key, modes: InputModes) -> Vec<u8> {
    if modes.kitty_flags & (KITTY_DISAMBIGUATE | KITTY_ALL_AS_ESCAPES) != 0 {
        if let Some(bytes) = encode_kitty(key, modes) {
            return bytes;
        }
    }
    encode_legacy(key, modes)
}

/// The kitty protocol's code for keys it encodes as `CSI code ; mods u`.
fn kitty_code(key: Key) -> Option<(u32, Option<char>)> {
    Some(match key.code {
        KeyCode::Char(c) => {
            let base = if c.is_ascii_uppercase() { c.to_ascii_lowercase() } else { c };
            (base as u32, Some(c))
        }
        KeyCode::Enter => (13, None),
        KeyCode::Tab => (9, None),
        KeyCode::Backspace => (127, None),
        KeyCode::Esc => (27, None),
        _ => return None,
    })
}

fn encode_kitty(key: Key, modes: InputModes) -> Option<Vec<u8>> {
    let (code, text) = kitty_code(key)?;
    let all_as_escapes = modes.kitty_flags & KITTY_ALL_AS_ESCAPES != 0;
    let mut mods = key.mods.0;
    if let KeyCode::Char(c) = key.code {
        if c.is_ascii_uppercase() {
            mods |= crate::key::Mods::SHIFT;
        }
    }
    let plain = mods & !crate::key::Mods::SHIFT == 0;
    if !all_as_escapes {
        match key.code {
            // Text without ctrl/alt stays text; Enter, Tab and Backspace without modifiers stay legacy.
            KeyCode::Char(_) if plain => return None,
            KeyCode::Enter | KeyCode::Tab | KeyCode::Backspace if key.mods.0 == 0 => return None,
            _ => {}
        }
    }
    let param = 1 + mods;
    let mut out = format!("\x1b[{code}");
    let with_text = all_as_escapes && modes.kitty_flags & KITTY_ASSOCIATED_TEXT != 0 && plain;
    match (param, with_text.then_some(text).flatten()) {
        (_, Some(t)) => out.push_str(&format!(";{param};{}", t as u32)),
        (1, None) => {}
        (p, None) => out.push_str(&format!(";{p}")),
    }
    out.push('u');
    Some(out.into_bytes())
}

fn encode_legacy(key: Key, modes: InputModes) -> Vec<u8> {
    let m = mod_param(key);
    let csi_mod = |final_byte: char, app: bool| -> Vec<u8> {
        if m > 1 {
            format!("\x1b[1;{m}{final_byte}").into_bytes()
        } else if app {
            format!("\x1bO{final_byte}").into_bytes()
        } else {
            format!("\x1b[{final_byte}").into_bytes()
        }
    };
    let tilde = |n: u8| -> Vec<u8> {
        if m > 1 {
            format!("\x1b[{n};{m}~").into_bytes()
        } else {
            format!("\x1b[{n}~").into_bytes()
        }
    };
    let alt_prefix = |mut bytes: Vec<u8>| -> Vec<u8> {
        if key.mods.alt() {
            bytes.insert(0, 0x1b);
        }
        bytes
    };
    match key.code {
        KeyCode::Char(c) => {
            if key.mods.ctrl() {
                let ctrl = match c {
                    'a'..='z' => Some(c as u8 - b'a' + 1),
                    'A'..='Z' => Some(c as u8 - b'A' + 1),
                    ' ' | '@' | '2' => Some(0),
                    '[' | '3' => Some(0x1b),
                    '\\' | '4' => Some(0x1c),
                    ']' | '5' => Some(0x1d),
                    '^' | '6' => Some(0x1e),
                    '_' | '7' | '/' => Some(0x1f),
                    '?' | '8' => Some(0x7f),
                    _ => None,
                };
                if let Some(b) = ctrl {
                    return alt_prefix(vec![b]);
                }
            }
            let mut buf = [0u8; 4];
            alt_prefix(c.encode_utf8(&mut buf).as_bytes().to_vec())
        }
        KeyCode::Enter => alt_prefix(vec![b'\r']),
        KeyCode::Tab if key.mods.shift() => b"\x1b[Z".to_vec(),
        KeyCode::Tab => alt_prefix(vec![b'\t']),
        KeyCode::Backspace if key.mods.ctrl() => alt_prefix(vec![0x08]),
        KeyCode::Backspace => alt_prefix(vec![0x7f]),
        KeyCode::Esc => alt_prefix(vec![0x1b]),
        KeyCode::Up => csi_mod('A', modes.app_cursor),
        KeyCode::Down => csi_mod('B', modes.app_cursor),
        KeyCode::Right => csi_mod('C', modes.app_cursor),
        KeyCode::Left => csi_mod('D', modes.app_cursor),
        KeyCode::Home => csi_mod('H', modes.app_cursor),
        KeyCode::End => csi_mod('F', modes.app_cursor),
        KeyCode::Insert => tilde(2),
        KeyCode::Delete => tilde(3),
        KeyCode::PageUp => tilde(5),
        KeyCode::PageDown => tilde(6),
        KeyCode::F(n @ 1..=4) => {
            let final_byte = (b'P' + n - 1) as char;
            if m > 1 {
                format!("\x1b[1;{m}{final_byte}").into_bytes()
            } else {
                format!("\x1bO{final_byte}").into_bytes()
            }
        }
        KeyCode::F(n) => {
            let code = match n {
                5 => 15,
                6 => 17,
                7 => 18,
                8 => 19,
                9 => 20,
                10 => 21,
                11 => 23,
                _ => 24,
            };
            tilde(code)
        }
    }
}

/// Text pasted or sent as a steer message: bracketed when the child asked for it, so newlines do not submit.
///
/// Mail and steers are written by other agents, so the text must never leave the paste: every ESC and other
/// control character is dropped before framing (not just the end marker, which a one-pass strip lets nested
/// pieces rebuild), keeping tab and line breaks. Without bracketing, a line break is the Enter it would be
/// typed as.
pub fn encode_paste(text: &str, modes: InputModes) -> Vec<u8> {
    let text: String = text.chars().filter(|&c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')).collect();
    if modes.bracketed_paste {
        let mut out = Vec::with_capacity(text.len() + 12);
        out.extend_from_slice(PASTE_START);
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(PASTE_END);
        out
    } else {
        text.replace("\r\n", "\r").replace('\n', "\r").into_bytes()
    }
}

const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";

/// A mouse wheel step at a cell (0-based), for a child that turned on mouse reporting.
pub fn encode_wheel(up: bool, col: u16, row: u16, modes: InputModes) -> Vec<u8> {
    let button = if up { 64 } else { 65 };
    if modes.sgr_mouse {
        format!("\x1b[<{button};{};{}M", col + 1, row + 1).into_bytes()
    } else {
        let clamp = |v: u16| (v.min(222) + 33) as u8;
        vec![0x1b, b'[', b'M', 32 + button as u8, clamp(col), clamp(row)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Mods;

    fn k(s: &str) -> Key {
        Key::parse(s).unwrap()
    }
    fn legacy() -> InputModes {
        InputModes::default()
    }
    fn kitty(flags: u8) -> InputModes {
        InputModes { kitty_flags: flags, ..InputModes::default() }
    }

    #[test]
    fn legacy_keys() {
        assert_eq!(encode_key(k("a"), legacy()), b"a");
        assert_eq!(encode_key(k("C-c"), legacy()), b"\x03");
        assert_eq!(encode_key(k("A-x"), legacy()), b"\x1bx");
        assert_eq!(encode_key(k("enter"), legacy()), b"\r");
        assert_eq!(encode_key(k("backspace"), legacy()), b"\x7f");
        assert_eq!(encode_key(k("S-tab"), legacy()), b"\x1b[Z");
        assert_eq!(encode_key(k("up"), legacy()), b"\x1b[A");
        assert_eq!(encode_key(k("C-up"), legacy()), b"\x1b[1;5A");
        assert_eq!(encode_key(k("pageup"), legacy()), b"\x1b[5~");
        assert_eq!(encode_key(k("S-delete"), legacy()), b"\x1b[3;2~");
        assert_eq!(encode_key(k("f1"), legacy()), b"\x1bOP");
        assert_eq!(encode_key(k("f5"), legacy()), b"\x1b[15~");
        assert_eq!(encode_key(k("é"), legacy()), "é".as_bytes());
    }

    #[test]
    fn application_cursor_mode() {
        let modes = InputModes { app_cursor: true, ..legacy() };
        assert_eq!(encode_key(k("up"), modes), b"\x1bOA");
        assert_eq!(encode_key(k("home"), modes), b"\x1bOH");
        assert_eq!(encode_key(k("S-up"), modes), b"\x1b[1;2A");
    }

    #[test]
    fn kitty_disambiguate() {
        let m = kitty(1);
        assert_eq!(encode_key(k("a"), m), b"a");
        assert_eq!(encode_key(k("A"), m), b"A");
        assert_eq!(encode_key(k("enter"), m), b"\r");
        assert_eq!(encode_key(k("esc"), m), b"\x1b[27u");
        assert_eq!(encode_key(k("C-c"), m), b"\x1b[99;5u");
        assert_eq!(encode_key(k("S-enter"), m), b"\x1b[13;2u");
        assert_eq!(encode_key(k("A-x"), m), b"\x1b[120;3u");
        assert_eq!(encode_key(Key::new(KeyCode::Char('a'), Mods::CTRL | Mods::SHIFT), m), b"\x1b[97;6u");
        assert_eq!(encode_key(k("up"), m), b"\x1b[A");
    }

    #[test]
    fn kitty_all_keys_as_escapes() {
        let m = kitty(1 | 8);
        assert_eq!(encode_key(k("enter"), m), b"\x1b[13u");
        assert_eq!(encode_key(k("a"), m), b"\x1b[97u");
        assert_eq!(encode_key(k("A"), m), b"\x1b[97;2u");
        let m = kitty(1 | 8 | 16);
        assert_eq!(encode_key(k("a"), m), b"\x1b[97;1;97u");
    }

    #[test]
    fn paste_is_bracketed_only_when_asked() {
        let on = InputModes { bracketed_paste: true, ..legacy() };
        assert_eq!(encode_paste("a\nb", on), b"\x1b[200~a\nb\x1b[201~");
        assert_eq!(encode_paste("x\x1b[201~rm", on), b"\x1b[200~x[201~rm\x1b[201~");
        assert_eq!(encode_paste("a\nb", legacy()), b"a\rb");
        // Pieces of the end marker around one that is removed must not make a new one.
        let nested = "before\x1b[20\x1b[201~1~AFTER\x03\x1b!rm -rf x\r";
        assert_eq!(encode_paste(nested, on), b"\x1b[200~before[20[201~1~AFTER!rm -rf x\r\x1b[201~");
        assert_eq!(encode_paste("a\tb\x03\x1b\x7f\u{9b}c", legacy()), b"a\tbc");
    }

    fn count(hay: &[u8], needle: &[u8]) -> usize {
        hay.windows(needle.len()).filter(|w| *w == needle).count()
    }

    proptest::proptest! {
        /// Whatever is sent, the framed text holds one start and one end marker, at its ends, and no ESC or
        /// control but tab and line breaks between them.
        #[test]
        fn pasted_text_never_leaves_the_paste(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let text = String::from_utf8_lossy(&bytes);
            let on = InputModes { bracketed_paste: true, ..legacy() };
            let out = encode_paste(&text, on);
            proptest::prop_assert!(out.starts_with(PASTE_START) && out.ends_with(PASTE_END));
            proptest::prop_assert_eq!(count(&out, PASTE_START), 1);
            proptest::prop_assert_eq!(count(&out, PASTE_END), 1);
            let inner = std::str::from_utf8(&out[PASTE_START.len()..out.len() - PASTE_END.len()]).unwrap();
            proptest::prop_assert!(!inner.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')));
            let raw = encode_paste(&text, legacy());
            proptest::prop_assert!(!raw.iter().any(|&b| b == 0x1b || (b < 0x20 && b != b'\t' && b != b'\r')));
        }
    }

    #[test]
    fn wheel_encodings() {
        let sgr = InputModes { mouse: true, sgr_mouse: true, ..legacy() };
        assert_eq!(encode_wheel(true, 0, 4, sgr), b"\x1b[<64;1;5M");
        assert_eq!(encode_wheel(false, 2, 0, legacy()), vec![0x1b, b'[', b'M', 97, 35, 33]);
    }
}
