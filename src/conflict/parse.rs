//! Parsing a file with conflict markers into text and conflict regions, keeping every byte so that rendering an
//! unresolved file gives back exactly what was read.

use serde::{Deserialize, Serialize};

/// One conflict: each marker line is kept whole (with its label and line ending).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictRegion {
    /// 1-based line of the `<<<<<<<` marker.
    pub line: usize,
    pub ours_marker: Vec<u8>,
    pub ours: Vec<u8>,
    /// diff3/zdiff3: the `|||||||` marker line and the base text.
    pub base: Option<(Vec<u8>, Vec<u8>)>,
    pub separator: Vec<u8>,
    pub theirs: Vec<u8>,
    pub theirs_marker: Vec<u8>,
}

impl ConflictRegion {
    fn label(marker: &[u8], size: usize) -> String {
        let rest = &marker[size.min(marker.len())..];
        String::from_utf8_lossy(rest).trim().to_string()
    }

    pub fn ours_label(&self, size: usize) -> String {
        Self::label(&self.ours_marker, size)
    }

    pub fn theirs_label(&self, size: usize) -> String {
        Self::label(&self.theirs_marker, size)
    }

    /// The region exactly as it was in the file.
    pub fn raw(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.ours_marker);
        out.extend_from_slice(&self.ours);
        if let Some((m, b)) = &self.base {
            out.extend_from_slice(m);
            out.extend_from_slice(b);
        }
        out.extend_from_slice(&self.separator);
        out.extend_from_slice(&self.theirs);
        out.extend_from_slice(&self.theirs_marker);
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Segment {
    Text(Vec<u8>),
    Conflict(ConflictRegion),
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Parsed {
    pub segments: Vec<Segment>,
    pub marker_size: usize,
}

impl Parsed {
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for s in &self.segments {
            match s {
                Segment::Text(t) => out.extend_from_slice(t),
                Segment::Conflict(c) => out.extend_from_slice(&c.raw()),
            }
        }
        out
    }

    pub fn conflicts(&self) -> impl Iterator<Item = &ConflictRegion> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Conflict(c) => Some(c),
            Segment::Text(_) => None,
        })
    }

    pub fn conflict_count(&self) -> usize {
        self.conflicts().count()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Marker {
    Ours,
    Base,
    Separator,
    Theirs,
}

/// The line without its ending (`\n` or `\r\n`).
fn body(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Which marker a line is, if any: exactly `size` marker characters, then (except for the separator, which is
/// nothing else) a space and a label, or the end of the line. A longer run is content, as in nested conflicts.
fn marker(line: &[u8], size: usize) -> Option<Marker> {
    let b = body(line);
    let (kind, ch) = match b.first()? {
        b'<' => (Marker::Ours, b'<'),
        b'|' => (Marker::Base, b'|'),
        b'=' => (Marker::Separator, b'='),
        b'>' => (Marker::Theirs, b'>'),
        _ => return None,
    };
    if b.len() < size || !b[..size].iter().all(|&c| c == ch) {
        return None;
    }
    let rest = &b[size..];
    match kind {
        Marker::Separator => rest.is_empty().then_some(kind),
        _ => (rest.is_empty() || rest[0] == b' ').then_some(kind),
    }
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split_inclusive(|&b| b == b'\n')
}

pub fn parse(bytes: &[u8], marker_size: usize) -> Result<Parsed, ParseError> {
    let size = marker_size.max(1);
    let mut segments = Vec::new();
    let mut text = Vec::new();
    let mut region: Option<(ConflictRegion, Marker)> = None;
    let err = |line: usize, message: String| ParseError { line, message };
    for (i, line) in lines(bytes).enumerate() {
        let n = i + 1;
        let m = marker(line, size);
        match (&mut region, m) {
            (None, Some(Marker::Ours)) => {
                if !text.is_empty() {
                    segments.push(Segment::Text(std::mem::take(&mut text)));
                }
                region = Some((
                    ConflictRegion {
                        line: n,
                        ours_marker: line.to_vec(),
                        ours: vec![],
                        base: None,
                        separator: vec![],
                        theirs: vec![],
                        theirs_marker: vec![],
                    },
                    Marker::Ours,
                ));
            }
            // Stray markers outside a region are content.
            (None, _) => text.extend_from_slice(line),
            (Some((r, section)), m) => match (*section, m) {
                (Marker::Ours, None) => r.ours.extend_from_slice(line),
                (Marker::Base, None) => {
                    if let Some((_, b)) = &mut r.base {
                        b.extend_from_slice(line);
                    }
                }
                (Marker::Separator, None) => r.theirs.extend_from_slice(line),
                (Marker::Ours, Some(Marker::Base)) => {
                    r.base = Some((line.to_vec(), vec![]));
                    *section = Marker::Base;
                }
                (Marker::Ours | Marker::Base, Some(Marker::Separator)) => {
                    r.separator = line.to_vec();
                    *section = Marker::Separator;
                }
                (Marker::Separator, Some(Marker::Theirs)) => {
                    r.theirs_marker = line.to_vec();
                    if let Some((done, _)) = region.take() {
                        segments.push(Segment::Conflict(done));
                    }
                }
                (_, Some(other)) => {
                    let what = match other {
                        Marker::Ours => "a `<` marker",
                        Marker::Base => "a `|` marker",
                        Marker::Separator => "a `=` separator",
                        Marker::Theirs => "a `>` marker before the `=` separator",
                    };
                    return Err(err(n, format!("malformed conflict started on line {}: {what}", r.line)));
                }
                // A region closes as soon as its `>` marker is read: it is never open in that section.
                (Marker::Theirs, None) => {}
            },
        }
    }
    if let Some((r, _)) = region {
        return Err(err(r.line, "unterminated conflict: no closing `>` marker".into()));
    }
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    Ok(Parsed { segments, marker_size: size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Parsed {
        parse(s.as_bytes(), 7).unwrap()
    }

    #[test]
    fn merge_style() {
        let text = "a\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> feature\nz\n";
        let parsed = p(text);
        assert_eq!(parsed.conflict_count(), 1);
        let c = parsed.conflicts().next().unwrap();
        assert_eq!((c.line, c.ours.as_slice(), c.theirs.as_slice()), (2, &b"ours\n"[..], &b"theirs\n"[..]));
        assert_eq!((c.ours_label(7), c.theirs_label(7)), ("HEAD".into(), "feature".into()));
        assert!(c.base.is_none());
        assert_eq!(parsed.render(), text.as_bytes());
    }

    #[test]
    fn diff3_style_with_and_without_labels() {
        let text = "<<<<<<<\nO\n|||||||\nB\n=======\nT\n>>>>>>>\n";
        let c = p(text).conflicts().next().unwrap().clone();
        assert_eq!(c.base.as_ref().unwrap().1, b"B\n");
        assert_eq!(c.ours_label(7), "");
        let labelled = "<<<<<<< ours\nO\n||||||| base\n=======\nT\n>>>>>>> theirs\n";
        let c = p(labelled).conflicts().next().unwrap().clone();
        assert_eq!(c.base.unwrap().1, b"");
    }

    #[test]
    fn marker_size_and_longer_runs_are_content() {
        let nested = "<<<<<<< a\nx\n<<<<<<<<< inner\ny\n=========\nz\n>>>>>>>>> inner\n=======\nw\n>>>>>>> b\n";
        let parsed = p(nested);
        assert_eq!(parsed.conflict_count(), 1);
        assert!(String::from_utf8_lossy(&parsed.conflicts().next().unwrap().ours).contains("<<<<<<<<< inner"));
        let parsed = parse(nested.as_bytes(), 9).unwrap();
        assert_eq!(parsed.conflict_count(), 1);
        assert_eq!(parsed.conflicts().next().unwrap().line, 3);
    }

    #[test]
    fn separator_is_exactly_the_marker() {
        let text = "<<<<<<< a\nx\n======= not a separator\n=======\ny\n>>>>>>> b\n";
        let c = p(text).conflicts().next().unwrap().clone();
        assert_eq!(c.ours, b"x\n======= not a separator\n");
    }

    #[test]
    fn stray_markers_outside_are_content() {
        let text = "=======\n>>>>>>> x\n|||||||\nplain\n";
        let parsed = p(text);
        assert_eq!(parsed.conflict_count(), 0);
        assert_eq!(parsed.render(), text.as_bytes());
    }

    #[test]
    fn crlf_and_missing_final_newline_round_trip() {
        let text = "a\r\n<<<<<<< x\r\nours\r\n=======\r\ntheirs\n>>>>>>> y\r\nend";
        let parsed = p(text);
        assert_eq!(parsed.conflict_count(), 1);
        assert_eq!(parsed.render(), text.as_bytes());
        let no_final = "<<<<<<< x\nours\n=======\ntheirs\n>>>>>>> y";
        assert_eq!(p(no_final).render(), no_final.as_bytes());
    }

    #[test]
    fn unterminated_and_malformed_are_reported_with_lines() {
        let e = parse(b"a\n<<<<<<< x\nours\n=======\ntheirs\n", 7).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("unterminated"), "{e}");
        let e = parse(b"<<<<<<< x\nours\n>>>>>>> y\n", 7).unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse(b"<<<<<<< x\n<<<<<<< again\n", 7).unwrap_err();
        assert!(e.to_string().starts_with("line 2: malformed conflict started on line 1"), "{e}");
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips_what_it_accepts(bytes in proptest::collection::vec(any::<u8>(), 0..400), size in 1usize..12) {
            if let Ok(parsed) = parse(&bytes, size) {
                prop_assert_eq!(parsed.render(), bytes);
            }
        }

        #[test]
        fn marker_heavy_input_never_panics(lines in proptest::collection::vec(prop_oneof![
            Just("<<<<<<< a\n".to_string()), Just("=======\n".to_string()), Just("|||||||\n".to_string()),
            Just(">>>>>>> b\n".to_string()), Just("x\r\n".to_string()), Just("<<<<<<<<\n".to_string()), "[a-z=<>|]{0,9}\n?"
        ], 0..40)) {
            let text = lines.concat();
            if let Ok(parsed) = parse(text.as_bytes(), 7) {
                prop_assert_eq!(parsed.render(), text.as_bytes());
            }
        }
    }
}
