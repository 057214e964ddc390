//! Resolving the conflicts of one file: a choice per conflict, whole-file choices, undo and redo of every change.

use serde::{Deserialize, Serialize};

use super::parse::{ConflictRegion, Parsed, Segment};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Choice {
    Ours,
    Theirs,
    Base,
    /// Ours, then theirs.
    Both,
    /// Theirs, then ours.
    BothReversed,
    /// Text typed by the operator.
    Edit(Vec<u8>),
}

impl Choice {
    /// How the choice reads in a header: `ours`, `theirs then ours`, `edited (3 lines)`.
    pub fn label(&self) -> String {
        match self {
            Choice::Ours => "ours".into(),
            Choice::Theirs => "theirs".into(),
            Choice::Base => "base".into(),
            Choice::Both => "ours then theirs".into(),
            Choice::BothReversed => "theirs then ours".into(),
            Choice::Edit(bytes) => {
                let lines = bytes.split(|&b| b == b'\n').count() - usize::from(bytes.ends_with(b"\n"));
                format!("edited ({lines} line{})", if lines == 1 { "" } else { "s" })
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WholeFile {
    Ours,
    Theirs,
    /// Both sides of every conflict, ours first (`git merge-file --union`).
    Union,
}

#[derive(Debug, Clone)]
pub struct Resolver {
    parsed: Parsed,
    choices: Vec<Option<Choice>>,
    undo: Vec<Vec<Option<Choice>>>,
    redo: Vec<Vec<Option<Choice>>>,
}

impl Resolver {
    pub fn new(parsed: Parsed) -> Resolver {
        let n = parsed.conflict_count();
        Resolver { parsed, choices: vec![None; n], undo: Vec::new(), redo: Vec::new() }
    }

    /// The file as it was parsed.
    pub fn original(&self) -> &Parsed {
        &self.parsed
    }

    pub fn conflicts(&self) -> Vec<&ConflictRegion> {
        self.parsed.conflicts().collect()
    }

    pub fn marker_size(&self) -> usize {
        self.parsed.marker_size
    }

    pub fn len(&self) -> usize {
        self.choices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.choices.is_empty()
    }

    pub fn choice(&self, i: usize) -> Option<&Choice> {
        self.choices.get(i).and_then(Option::as_ref)
    }

    pub fn unresolved(&self) -> usize {
        self.choices.iter().filter(|c| c.is_none()).count()
    }

    fn record(&mut self) {
        self.undo.push(self.choices.clone());
        self.redo.clear();
    }

    /// Resolve conflict `i`. Taking the base of a conflict that has none is refused.
    pub fn choose(&mut self, i: usize, choice: Choice) -> Result<(), String> {
        let region =
            self.conflicts().get(i).map(|c| c.base.is_some()).ok_or_else(|| format!("no conflict {}", i + 1))?;
        if choice == Choice::Base && !region {
            return Err(format!("conflict {} has no base section (merge style without diff3)", i + 1));
        }
        self.record();
        self.choices[i] = Some(choice);
        Ok(())
    }

    /// Put conflict `i` back to unresolved.
    pub fn clear(&mut self, i: usize) {
        if self.choices.get(i).is_some_and(Option::is_some) {
            self.record();
            self.choices[i] = None;
        }
    }

    pub fn whole_file(&mut self, w: WholeFile) {
        self.record();
        let c = match w {
            WholeFile::Ours => Choice::Ours,
            WholeFile::Theirs => Choice::Theirs,
            WholeFile::Union => Choice::Both,
        };
        self.choices = vec![Some(c); self.choices.len()];
    }

    pub fn undo(&mut self) -> bool {
        Self::step(&mut self.undo, &mut self.redo, &mut self.choices)
    }

    pub fn redo(&mut self) -> bool {
        Self::step(&mut self.redo, &mut self.undo, &mut self.choices)
    }

    /// Move one snapshot of the choices from `from` into effect, keeping the current one on `to`.
    fn step(
        from: &mut Vec<Vec<Option<Choice>>>,
        to: &mut Vec<Vec<Option<Choice>>>,
        current: &mut Vec<Option<Choice>>,
    ) -> bool {
        match from.pop() {
            Some(snapshot) => {
                to.push(std::mem::replace(current, snapshot));
                true
            }
            None => false,
        }
    }

    /// The text a choice puts in place of a conflict.
    pub fn resolution(region: &ConflictRegion, choice: &Choice) -> Vec<u8> {
        match choice {
            Choice::Ours => region.ours.clone(),
            Choice::Theirs => region.theirs.clone(),
            Choice::Base => region.base.as_ref().map(|(_, b)| b.clone()).unwrap_or_default(),
            Choice::Both => [region.ours.as_slice(), region.theirs.as_slice()].concat(),
            Choice::BothReversed => [region.theirs.as_slice(), region.ours.as_slice()].concat(),
            Choice::Edit(text) => text.clone(),
        }
    }

    /// The file with every resolved conflict replaced; unresolved ones keep their markers.
    pub fn result(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        for s in &self.parsed.segments {
            match s {
                Segment::Text(t) => out.extend_from_slice(t),
                Segment::Conflict(c) => {
                    match &self.choices[i] {
                        Some(choice) => out.extend_from_slice(&Self::resolution(c, choice)),
                        None => out.extend_from_slice(&c.raw()),
                    }
                    i += 1;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conflict::parse;

    const TEXT: &str =
        "top\n<<<<<<< a\nO1\n||||||| base\nB1\n=======\nT1\n>>>>>>> b\nmid\n<<<<<<< a\nO2\n=======\nT2\n>>>>>>> b\n";

    fn r() -> Resolver {
        Resolver::new(parse(TEXT.as_bytes(), 7).unwrap())
    }

    #[test]
    fn choices_and_result() {
        let mut r = r();
        assert_eq!(r.unresolved(), 2);
        assert_eq!(r.result(), TEXT.as_bytes());
        r.choose(0, Choice::Base).unwrap();
        r.choose(1, Choice::BothReversed).unwrap();
        assert_eq!(String::from_utf8(r.result()).unwrap(), "top\nB1\nmid\nT2\nO2\n");
        assert_eq!(r.unresolved(), 0);
        r.choose(0, Choice::Edit(b"hand\n".to_vec())).unwrap();
        assert!(String::from_utf8(r.result()).unwrap().starts_with("top\nhand\nmid"));
    }

    #[test]
    fn base_is_refused_without_a_base_section() {
        let mut r = r();
        assert!(r.choose(1, Choice::Base).unwrap_err().contains("no base section"));
        assert!(r.choose(5, Choice::Ours).is_err());
    }

    #[test]
    fn whole_file_and_undo_redo() {
        let mut r = r();
        r.whole_file(WholeFile::Union);
        assert_eq!(String::from_utf8(r.result()).unwrap(), "top\nO1\nT1\nmid\nO2\nT2\n");
        r.choose(0, Choice::Theirs).unwrap();
        assert!(r.undo());
        assert_eq!(r.choice(0), Some(&Choice::Both));
        assert!(r.undo());
        assert_eq!(r.unresolved(), 2);
        assert!(!r.undo());
        assert!(r.redo());
        assert!(r.redo());
        assert_eq!(r.choice(0), Some(&Choice::Theirs));
        assert!(!r.redo());
        r.clear(0);
        assert_eq!(r.unresolved(), 1);
        // A new change after undo drops the redo history.
        r.undo();
        r.choose(1, Choice::Ours).unwrap();
        assert!(!r.redo());
    }

    #[test]
    fn choices_read_as_words() {
        assert_eq!(Choice::BothReversed.label(), "theirs then ours");
        assert_eq!(Choice::Edit(b"  a\n  b\n".to_vec()).label(), "edited (2 lines)");
        assert_eq!(Choice::Edit(b"x".to_vec()).label(), "edited (1 line)");
    }
}
