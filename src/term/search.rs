//! An agent's whole buffer (its history, then its screen) as text, to search and to copy from: each row's
//! characters with the column each stands in, and rows a long line wrapped into joined back into that line, so
//! a match or a copy does not stop at the edge of the terminal.

use regex::Regex;

pub use crate::protocol::screen::TextRow;
use crate::protocol::screen::{BufferPos, Found};

/// Most matches one search counts: enough to say "many", bounded whatever an agent printed.
pub const MAX_MATCHES: usize = 100_000;

pub use crate::text::search_regex as compile;

/// Every non-empty match in `rows` (buffer rows from `first_row` on), oldest first, as (first cell, last cell).
/// A match may run across rows a line wrapped into.
pub fn find_all(rows: &[TextRow], first_row: u64, re: &Regex) -> Vec<(BufferPos, BufferPos)> {
    let mut hits = Vec::new();
    let mut line = String::new();
    let mut at: Vec<BufferPos> = Vec::new();
    let mut i = 0;
    while i < rows.len() && hits.len() < MAX_MATCHES {
        line.clear();
        at.clear();
        loop {
            let row = &rows[i];
            line.push_str(&row.text);
            at.extend(row.cols.iter().map(|&col| BufferPos { row: first_row + i as u64, col }));
            i += 1;
            if !row.wrapped || i == rows.len() {
                break;
            }
        }
        for m in re.find_iter(&line) {
            if m.is_empty() {
                continue;
            }
            hits.push((at[m.start()], at[m.end() - 1]));
            if hits.len() == MAX_MATCHES {
                break;
            }
        }
    }
    hits
}

/// The match to go to among `hits` (oldest first): the nearest one that starts before `from` (`older`) or
/// after it.
pub fn pick(hits: &[(BufferPos, BufferPos)], from: BufferPos, older: bool) -> Option<Found> {
    let i = if older {
        hits.partition_point(|(s, _)| *s < from).checked_sub(1)?
    } else {
        let i = hits.partition_point(|(s, _)| *s <= from);
        (i < hits.len()).then_some(i)?
    };
    let (start, end) = hits[i];
    let count = hits.len() as u32;
    Some(Found { start, end, index: count - i as u32, count })
}

/// The text from `from` to `to` (both cells included, either way round) of `rows` (buffer rows from
/// `first_row` on): a line break where a line ended, none where it wrapped.
pub fn text_between(rows: &[TextRow], first_row: u64, from: BufferPos, to: BufferPos) -> String {
    let (from, to) = if from <= to { (from, to) } else { (to, from) };
    let mut out = String::new();
    // Only the rows there are: a position far past them (a client's) costs nothing.
    if rows.is_empty() {
        return out;
    }
    let (lo_row, hi_row) = (from.row.max(first_row), to.row.min(first_row + rows.len() as u64 - 1));
    for r in lo_row..=hi_row {
        let Some(row) = r.checked_sub(first_row).and_then(|i| rows.get(i as usize)) else { continue };
        let (lo, hi) = (if r == from.row { from.col } else { 0 }, if r == to.row { to.col } else { u16::MAX });
        out.extend(row.text.char_indices().filter(|(at, _)| (lo..=hi).contains(&row.cols[*at])).map(|(_, ch)| ch));
        if r != hi_row && !row.wrapped {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::screen::{CellFlags, ScreenCell};

    fn row(text: &str, wrapped: bool) -> TextRow {
        let cells: Vec<ScreenCell> =
            text.chars().map(|c| ScreenCell { text: c.to_string().into(), ..Default::default() }).collect();
        TextRow::new(&cells, wrapped)
    }

    fn pos(row: u64, col: u16) -> BufferPos {
        BufferPos { row, col }
    }

    #[test]
    fn a_wide_character_is_one_character_in_its_first_column() {
        let mut cells: Vec<ScreenCell> =
            "a界 b  ".chars().map(|c| ScreenCell { text: c.to_string().into(), ..Default::default() }).collect();
        cells[1].flags = CellFlags(CellFlags::WIDE);
        cells[2].flags = CellFlags(CellFlags::SPACER);
        let r = TextRow::new(&cells, false);
        assert_eq!(r.text, "a界b");
        assert_eq!(r.cols, vec![0, 1, 1, 1, 3]);
        let hits = find_all(&[r], 7, &compile("b").unwrap());
        assert_eq!(hits, vec![(pos(7, 3), pos(7, 3))]);
    }

    #[test]
    fn matches_run_across_wrapped_rows_and_count_from_the_newest() {
        let rows = vec![row("error: the", false), row("long err", true), row("or here", false), row("ERROR", false)];
        let re = compile("err(or)?").unwrap();
        let hits = find_all(&rows, 10, &re);
        assert_eq!(
            hits,
            vec![(pos(10, 0), pos(10, 4)), (pos(11, 5), pos(12, 1)), (pos(13, 0), pos(13, 4))],
            "smart case: a lower-case pattern matches ERROR too"
        );
        assert!(find_all(&rows, 10, &compile("ERR").unwrap()).len() == 1, "an upper-case letter makes case count");
        // From the bottom, older: the newest first, then back.
        let bottom = pos(14, u16::MAX);
        let first = pick(&hits, bottom, true).unwrap();
        assert_eq!((first.start, first.index, first.count), (pos(13, 0), 1, 3));
        let second = pick(&hits, first.start, true).unwrap();
        assert_eq!((second.start, second.end, second.index), (pos(11, 5), pos(12, 1), 2));
        assert_eq!(pick(&hits, pos(10, 0), true), None, "nothing older than the oldest");
        assert_eq!(pick(&hits, second.start, false).unwrap().start, pos(13, 0));
        assert_eq!(pick(&hits, pos(13, 0), false), None);
    }

    #[test]
    fn empty_matches_are_no_matches_and_bad_patterns_say_why() {
        let rows = vec![row("abc", false)];
        assert!(find_all(&rows, 0, &compile("x*").unwrap()).is_empty());
        let e = compile("a(b").unwrap_err();
        assert!(e.contains("unclosed"), "{e}");
        assert!(compile(&"a{1000}{1000}".repeat(4)).is_err(), "a pattern too big to compile is refused");
    }

    #[test]
    fn a_line_wrapped_into_history_is_found_and_copied_whole() {
        use crate::term::{AlacrittyModel, TerminalModel};
        let mut m = AlacrittyModel::new(3, 10, 100);
        m.feed(b"first\r\nabcdefghij-needle-klm\r\nx\r\ny\r\nz");
        assert_eq!(m.history_size(), 4);
        let rows = m.text_rows(0, m.buffer_rows());
        assert_eq!(rows.iter().map(|r| r.wrapped).collect::<Vec<_>>(), [false, true, true, false, false, false, false]);
        let hits = find_all(&rows, 0, &compile("j-need").unwrap());
        assert_eq!(hits, vec![(pos(1, 9), pos(2, 4))]);
        assert_eq!(text_between(&rows, 0, pos(1, 0), pos(3, 200)), "abcdefghij-needle-klm");
        assert_eq!(text_between(&rows, 0, pos(3, 0), pos(6, 0)), "m\nx\ny\nz", "history, then the screen");
        // Rows past the end, however far, are none.
        assert!(m.text_rows(usize::MAX - 1, usize::MAX).is_empty());
        assert_eq!(m.text_rows(5, usize::MAX).len(), 2);
        // Part of the buffer, numbered as the whole.
        assert_eq!(m.text_rows(5, 10).iter().map(|r| r.text.as_str()).collect::<Vec<_>>(), ["y", "z"]);
    }

    #[test]
    fn copied_text_joins_wrapped_rows_and_drops_padding() {
        let rows =
            vec![row("first line   ", false), row("a long li", true), row("ne, then  ", false), row("last", false)];
        assert_eq!(text_between(&rows, 5, pos(5, 6), pos(8, 1)), "line\na long line, then\nla");
        // Either way round; one row; past the end of a row is its end.
        assert_eq!(text_between(&rows, 5, pos(6, 8), pos(6, 2)), "long li");
        assert_eq!(text_between(&rows, 5, pos(5, 0), pos(5, 200)), "first line");
        // Rows outside what was read are nothing, not a panic, however far.
        assert_eq!(text_between(&rows, 5, pos(1, 0), pos(5, 4)), "first");
        assert_eq!(text_between(&rows, 5, pos(8, 0), pos(u64::MAX, u16::MAX)), "last");
    }
}
