//! One key press as muster sees it: parsed from keymap notation (`C-s`, `A-x`, `S-tab`), converted from
//! crossterm events, and printed back for help and hints.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, schemars::JsonSchema)]
pub enum KeyCode {
    Char(char),
    Enter,
    Tab,
    Backspace,
    Esc,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    Insert,
    Delete,
    F(u8),
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, PartialOrd, Ord, schemars::JsonSchema,
)]
pub struct Mods(pub u8);

impl Mods {
    pub const NONE: Mods = Mods(0);
    pub const SHIFT: u8 = 1;
    pub const ALT: u8 = 2;
    pub const CTRL: u8 = 4;

    pub fn shift(self) -> bool {
        self.0 & Self::SHIFT != 0
    }
    pub fn alt(self) -> bool {
        self.0 & Self::ALT != 0
    }
    pub fn ctrl(self) -> bool {
        self.0 & Self::CTRL != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, schemars::JsonSchema)]
pub struct Key {
    pub code: KeyCode,
    pub mods: Mods,
}

impl Key {
    pub fn new(code: KeyCode, mods: u8) -> Key {
        Key { code, mods: Mods(mods) }.normalized()
    }

    pub fn char(c: char) -> Key {
        Key::new(KeyCode::Char(c), 0)
    }

    /// One spelling per key: a shifted character is the character itself (`J`, not `S-j`), and
    /// control-digits that terminals send for `C-\ C-] C-^ C-_` become those keys.
    fn normalized(mut self) -> Key {
        if let KeyCode::Char(c) = self.code {
            if self.mods.shift() && c.is_ascii_lowercase() {
                self.code = KeyCode::Char(c.to_ascii_uppercase());
            }
            if let KeyCode::Char(c) = self.code {
                if !c.is_ascii_lowercase() && c != ' ' {
                    self.mods.0 &= !Mods::SHIFT;
                }
            }
            if self.mods.ctrl() {
                let mapped = match c {
                    '4' => Some('\\'),
                    '5' => Some(']'),
                    '6' => Some('^'),
                    '7' => Some('_'),
                    _ => None,
                };
                if let Some(m) = mapped {
                    self.code = KeyCode::Char(m);
                }
            }
        }
        self
    }

    pub fn parse(notation: &str) -> Result<Key, String> {
        let mut mods = 0u8;
        let mut rest = notation;
        loop {
            let bytes = rest.as_bytes();
            if bytes.len() > 2 && bytes[1] == b'-' {
                let bit = match bytes[0] {
                    b'C' => Mods::CTRL,
                    b'A' | b'M' => Mods::ALT,
                    b'S' => Mods::SHIFT,
                    _ => break,
                };
                mods |= bit;
                rest = &rest[2..];
            } else {
                break;
            }
        }
        let code = match rest.to_ascii_lowercase().as_str() {
            "enter" | "ret" | "return" => KeyCode::Enter,
            "tab" => KeyCode::Tab,
            "backspace" | "bs" => KeyCode::Backspace,
            "esc" | "escape" => KeyCode::Esc,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" | "pgup" => KeyCode::PageUp,
            "pagedown" | "pgdn" => KeyCode::PageDown,
            "insert" | "ins" => KeyCode::Insert,
            "delete" | "del" => KeyCode::Delete,
            "space" => KeyCode::Char(' '),
            "minus" => KeyCode::Char('-'),
            lower => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyCode::Char(c),
                    _ => match lower.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
                        Some(n @ 1..=12) => KeyCode::F(n),
                        _ => return Err(format!("unknown key `{notation}`")),
                    },
                }
            }
        };
        Ok(Key::new(code, mods))
    }

    pub fn from_crossterm(event: &crossterm::event::KeyEvent) -> Option<Key> {
        use crossterm::event::{KeyCode as C, KeyModifiers as M};
        let mut mods = 0;
        if event.modifiers.contains(M::SHIFT) {
            mods |= Mods::SHIFT;
        }
        if event.modifiers.contains(M::ALT) {
            mods |= Mods::ALT;
        }
        if event.modifiers.contains(M::CONTROL) {
            mods |= Mods::CTRL;
        }
        let code = match event.code {
            C::Char(c) => KeyCode::Char(c),
            C::Enter => KeyCode::Enter,
            C::Tab => KeyCode::Tab,
            C::BackTab => {
                mods |= Mods::SHIFT;
                KeyCode::Tab
            }
            C::Backspace => KeyCode::Backspace,
            C::Esc => KeyCode::Esc,
            C::Up => KeyCode::Up,
            C::Down => KeyCode::Down,
            C::Left => KeyCode::Left,
            C::Right => KeyCode::Right,
            C::Home => KeyCode::Home,
            C::End => KeyCode::End,
            C::PageUp => KeyCode::PageUp,
            C::PageDown => KeyCode::PageDown,
            C::Insert => KeyCode::Insert,
            C::Delete => KeyCode::Delete,
            C::F(n) => KeyCode::F(n),
            _ => return None,
        };
        Some(Key::new(code, mods))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.ctrl() {
            f.write_str("C-")?;
        }
        if self.mods.alt() {
            f.write_str("A-")?;
        }
        if self.mods.shift() {
            f.write_str("S-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pageup"),
            KeyCode::PageDown => f.write_str("pagedown"),
            KeyCode::Insert => f.write_str("insert"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::F(n) => write!(f, "f{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_notation() {
        assert_eq!(Key::parse("C-s").unwrap(), Key::new(KeyCode::Char('s'), Mods::CTRL));
        assert_eq!(Key::parse("A-x").unwrap(), Key::new(KeyCode::Char('x'), Mods::ALT));
        assert_eq!(Key::parse("S-tab").unwrap(), Key::new(KeyCode::Tab, Mods::SHIFT));
        assert_eq!(Key::parse("C-]").unwrap(), Key::new(KeyCode::Char(']'), Mods::CTRL));
        assert_eq!(Key::parse("-").unwrap(), Key::char('-'));
        assert_eq!(Key::parse("space").unwrap(), Key::char(' '));
        assert_eq!(Key::parse("f12").unwrap(), Key::new(KeyCode::F(12), 0));
        assert_eq!(Key::parse("S-j").unwrap(), Key::char('J'));
        assert!(Key::parse("C-").is_err());
        assert!(Key::parse("hyper").is_err());
        assert!(Key::parse("f13").is_err());
    }

    #[test]
    fn crossterm_control_digits_are_the_punctuation_keys() {
        use crossterm::event::{KeyCode as C, KeyEvent, KeyModifiers as M};
        let ev = KeyEvent::new(C::Char('5'), M::CONTROL);
        assert_eq!(Key::from_crossterm(&ev), Some(Key::parse("C-]").unwrap()));
        let ev = KeyEvent::new(C::BackTab, M::SHIFT);
        assert_eq!(Key::from_crossterm(&ev), Some(Key::parse("S-tab").unwrap()));
        let ev = KeyEvent::new(C::Char('J'), M::SHIFT);
        assert_eq!(Key::from_crossterm(&ev), Some(Key::char('J')));
    }

    proptest! {
        #[test]
        fn display_parses_back(c in proptest::char::range('!', '~'), m in 0u8..8) {
            let key = Key::new(KeyCode::Char(c), m);
            prop_assert_eq!(Key::parse(&key.to_string()).unwrap(), key);
        }

        #[test]
        fn parse_never_panics(s in ".{0,12}") {
            let _ = Key::parse(&s);
        }
    }
}
