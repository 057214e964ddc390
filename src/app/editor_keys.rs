//! A key as the text editors of the workbench (steer, compose, conflict edit) take it.

use ratatui_textarea::{Input, Key as TaKey};

use crate::key::{Key, KeyCode};

pub fn to_textarea_input(key: Key) -> Input {
    let k = match key.code {
        KeyCode::Char(c) => TaKey::Char(c),
        KeyCode::Enter => TaKey::Enter,
        KeyCode::Tab => TaKey::Tab,
        KeyCode::Backspace => TaKey::Backspace,
        KeyCode::Esc => TaKey::Esc,
        KeyCode::Up => TaKey::Up,
        KeyCode::Down => TaKey::Down,
        KeyCode::Left => TaKey::Left,
        KeyCode::Right => TaKey::Right,
        KeyCode::Home => TaKey::Home,
        KeyCode::End => TaKey::End,
        KeyCode::PageUp => TaKey::PageUp,
        KeyCode::PageDown => TaKey::PageDown,
        KeyCode::Delete => TaKey::Delete,
        KeyCode::F(n) => TaKey::F(n),
        KeyCode::Insert => TaKey::Null,
    };
    Input { key: k, ctrl: key.mods.ctrl(), alt: key.mods.alt(), shift: key.mods.shift() }
}
