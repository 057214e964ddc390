//! A key as the text editors of the workbench (steer, compose, conflict edit) take it.

use ratatui_textarea::{Input, Key as TaKey};

use crate::key::{Key, KeyCode};

/// The keys every text editor of the workbench takes beyond those its mode binds (the textarea's own), for the
/// help.
pub const EDITOR_KEYS: [(&str, &str); 10] = [
    ("arrows", "Move the cursor (also C-b C-f C-p C-n)"),
    ("A-b A-f", "Back or forward a word (also C-← C-→)"),
    ("home end", "To the start or end of the line (also C-a C-e)"),
    ("bksp delete", "Delete the character before or after (also C-h C-d)"),
    ("C-w A-d", "Delete the word before or after"),
    ("C-k", "Delete to the end of the line"),
    ("C-u C-r", "Undo, redo"),
    ("C-x C-c C-y", "Cut, copy, paste the selection"),
    ("pgup pgdn", "Scroll a page"),
    ("paste", "Pasted text goes in whole, newlines and all"),
];

/// What a key did to a one-line prompt (a search being typed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Enter: the text as typed, the prompt closed.
    Done(String),
    /// Esc: the prompt closed.
    Cancelled,
    /// Typed, erased, or nothing.
    Editing,
}

/// A key into a one-line prompt that is open (`Some`): printable characters go in, Backspace erases, Enter and Esc
/// close it.
pub fn prompt_key(prompt: &mut Option<String>, key: Key) -> Prompt {
    let Some(text) = prompt.as_mut() else { return Prompt::Cancelled };
    match key.code {
        KeyCode::Enter => Prompt::Done(prompt.take().unwrap_or_default()),
        KeyCode::Esc => {
            *prompt = None;
            Prompt::Cancelled
        }
        KeyCode::Backspace => {
            text.pop();
            Prompt::Editing
        }
        KeyCode::Char(c) if !key.mods.ctrl() && !key.mods.alt() => {
            text.push(c);
            Prompt::Editing
        }
        _ => Prompt::Editing,
    }
}

/// Whether `mode` edits text (its help lists `EDITOR_KEYS`).
pub fn edits_text(mode: crate::config::keymap::Mode) -> bool {
    use crate::config::keymap::Mode;
    matches!(mode, Mode::Edit | Mode::Steer | Mode::Compose)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys the help lists do what it says in the editors' textarea.
    #[test]
    fn the_listed_editor_keys_do_what_the_help_says() {
        let mut t = ratatui_textarea::TextArea::default();
        let keys = |t: &mut ratatui_textarea::TextArea, ks: &[&str]| {
            for k in ks {
                t.input(to_textarea_input(Key::parse(k).unwrap()));
            }
        };
        for c in "one two three".chars() {
            t.input(to_textarea_input(Key::char(c)));
        }
        keys(&mut t, &["C-w"]);
        assert_eq!(t.lines(), ["one two "]);
        keys(&mut t, &["C-u"]);
        assert_eq!(t.lines(), ["one two three"], "undo");
        keys(&mut t, &["A-b", "A-b", "C-k"]);
        assert_eq!(t.lines(), ["one "]);
        keys(&mut t, &["C-r", "C-a", "A-d"]);
        assert_eq!(t.lines(), [" "], "redo did nothing after an edit; A-d took the word after");
        keys(&mut t, &["home", "end", "backspace"]);
        assert_eq!(t.lines(), [""]);
    }
}
