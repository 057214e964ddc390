//! A screen sent as damage: the rows that changed since the update the client has (by sequence number), in a
//! compact binary encoding — runs of cells sharing a style, an ASCII cell in one byte. A full screen is the same
//! message with every row and no base. A coloured 200x50 screen is 543 KB as JSON and 13.4 KB here (the test
//! below, with a screen of colours, truecolour and wide characters), and one changed line is a few hundred bytes.

use thiserror::Error;

use crate::protocol::screen::{blank_row, Row};
use crate::protocol::screen::{CellColor, CellFlags, Screen, ScreenCell};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Damage {
    /// This update's number.
    pub seq: u64,
    /// The update it applies on; `None`: a full screen, which applies on anything.
    pub base: Option<u64>,
    pub rows: u16,
    pub cols: u16,
    pub cursor: Option<(u16, u16)>,
    pub scrolled_back: u64,
    pub history: u64,
    pub alt_screen: bool,
    /// With a base: the rows moved up this many lines first (output scrolling by), so only the new rows below
    /// travel, not the whole screen again.
    pub scroll: u16,
    /// Changed rows and their cells (`cols` each).
    pub changed: Vec<(u16, Row)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DamageError {
    #[error("damage on update {base}, but the client has {have:?}: it needs a full screen")]
    OutOfStep { base: u64, have: Option<u64> },
    #[error("malformed damage: {0}")]
    Malformed(&'static str),
}

/// Largest screen accepted (cells), and bytes of one cell's text (a character and its capped marks fit easily).
const MAX_CELLS: usize = 1 << 20;
const MAX_CELL_TEXT: usize = 256;

/// Whether row `a` of one screen and row `b` of another hold the same cells (a row both share is equal at once:
/// `Arc`'s equality looks at the pointer first for cells that are `Eq`).
fn same_row(one: &Screen, a: u16, other: &Screen, b: u16) -> bool {
    one.lines.get(a as usize) == other.lines.get(b as usize)
}

/// The damage that turns `prev` (update `prev_seq`) into `next`; all rows when there is no previous screen or
/// its size differs.
pub fn diff(prev: Option<(&Screen, u64)>, next: &Screen, seq: u64) -> Damage {
    let base = prev.filter(|(p, _)| p.same_shape(next));
    let scroll = base.map_or(0, |(p, _)| scrolled_by(p, next));
    // Row r of the client's copy after the scroll is row r + scroll of what it had (blank past the end).
    let unchanged = |p: &Screen, r: u16| r + scroll < p.rows && same_row(p, r + scroll, next, r);
    let changed = (0..next.rows).filter(|&r| base.is_none_or(|(p, _)| !unchanged(p, r)));
    damage(next, seq, base.map(|(_, s)| s), scroll, changed)
}

/// The damage that turns the screen of update `prev_seq` into `next`, told how: its rows moved up
/// `change.scroll`, then `change.rows` changed (the emulator knows; nothing is compared).
pub fn from_change(prev_seq: u64, next: &Screen, change: &crate::protocol::screen::Change, seq: u64) -> Damage {
    let whole = next.is_whole();
    let changed = change.rows.iter().copied().filter(|&r| whole && r < next.rows);
    damage(next, seq, Some(prev_seq), change.scroll.min(next.rows.saturating_sub(1)), changed)
}

/// `next` as damage: these rows of it, on a base scrolled up `scroll`.
fn damage(next: &Screen, seq: u64, base: Option<u64>, scroll: u16, rows: impl Iterator<Item = u16>) -> Damage {
    Damage {
        seq,
        base,
        rows: next.rows,
        cols: next.cols,
        cursor: next.cursor,
        scrolled_back: next.scrolled_back as u64,
        history: next.history as u64,
        alt_screen: next.alt_screen,
        scroll,
        changed: rows.filter_map(|r| Some((r, next.lines.get(r as usize)?.clone()))).collect(),
    }
}

/// How many lines `next` scrolled up from `prev`, when that leaves fewer rows to send (0 when it did not scroll).
/// Only shifts that put `prev`'s row k at `next`'s top are tried (the first few), counting the rows they save.
pub fn scrolled_by(prev: &Screen, next: &Screen) -> u16 {
    scrolled(next.rows, |a, b| same_row(prev, a, next, b))
}

/// The same, from a hash of each row of the two screens.
pub fn scrolled_by_rows(prev: &[u64], next: &[u64]) -> u16 {
    if prev.len() != next.len() {
        return 0;
    }
    scrolled(next.len().min(u16::MAX as usize) as u16, |a, b| prev[a as usize] == next[b as usize])
}

/// How far `rows` rows moved up, given whether row `a` before is row `b` now: the best of the first few shifts
/// that put an old row on top, if it explains more rows than standing still does.
fn scrolled(rows: u16, same: impl Fn(u16, u16) -> bool) -> u16 {
    if rows < 4 || same(0, 0) {
        return 0;
    }
    let matching = |k: u16| (0..rows - k).filter(|&r| same(r + k, r)).count();
    let still = (0..rows).filter(|&r| same(r, r)).count();
    (1..rows / 2)
        .filter(|&k| same(k, 0))
        .take(4)
        .map(|k| (matching(k), k))
        .max()
        .filter(|&(n, _)| n > still + 1)
        .map_or(0, |(_, k)| k)
}

/// Apply `d` to the client's copy, which is at update `have`.
pub fn apply(screen: &mut Screen, have: Option<u64>, d: &Damage) -> Result<(), DamageError> {
    let cells = d.rows as usize * d.cols as usize;
    if cells > MAX_CELLS {
        return Err(DamageError::Malformed("screen too large"));
    }
    match d.base {
        Some(base) if have != Some(base) => return Err(DamageError::OutOfStep { base, have }),
        Some(_) if screen.rows != d.rows || screen.cols != d.cols => {
            return Err(DamageError::Malformed("damage for another size"))
        }
        Some(_) => {
            if d.scroll >= d.rows && d.scroll > 0 {
                return Err(DamageError::Malformed("scrolled past the screen"));
            }
            // Rows that come round to the bottom are blank until damage fills them.
            let moved = (d.scroll as usize).min(screen.lines.len());
            screen.lines.rotate_left(moved);
            let blank = blank_row(d.cols);
            let kept = screen.lines.len().saturating_sub(d.scroll as usize);
            for line in &mut screen.lines[kept..] {
                *line = blank.clone();
            }
        }
        None => {
            screen.rows = d.rows;
            screen.cols = d.cols;
            screen.lines = vec![blank_row(d.cols); d.rows as usize];
        }
    }
    for (r, row) in &d.changed {
        if *r >= d.rows || row.len() != d.cols as usize {
            return Err(DamageError::Malformed("row outside the screen"));
        }
        let Some(line) = screen.lines.get_mut(*r as usize) else {
            return Err(DamageError::Malformed("row outside the screen"));
        };
        *line = row.clone();
    }
    screen.cursor = d.cursor;
    screen.scrolled_back = d.scrolled_back as usize;
    screen.history = d.history as usize;
    screen.alt_screen = d.alt_screen;
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_color(out: &mut Vec<u8>, c: CellColor) {
    match c {
        CellColor::Default => out.push(0),
        CellColor::Indexed(i) => out.extend_from_slice(&[1, i]),
        CellColor::Rgb(r, g, b) => out.extend_from_slice(&[2, r, g, b]),
    }
}

/// The binary form of `d`.
pub fn encode(d: &Damage) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + d.changed.len() * (d.cols as usize + 16));
    put_varint(&mut out, d.seq);
    put_varint(&mut out, d.base.map_or(0, |b| b + 1));
    put_varint(&mut out, d.rows as u64);
    put_varint(&mut out, d.cols as u64);
    match d.cursor {
        None => out.push(0),
        Some((r, c)) => {
            out.push(1);
            put_varint(&mut out, r as u64);
            put_varint(&mut out, c as u64);
        }
    }
    put_varint(&mut out, d.scrolled_back);
    put_varint(&mut out, d.history);
    out.push(d.alt_screen as u8);
    put_varint(&mut out, d.scroll as u64);
    put_varint(&mut out, d.changed.len() as u64);
    for (r, cells) in &d.changed {
        put_varint(&mut out, *r as u64);
        let mut runs: Vec<&[ScreenCell]> = Vec::new();
        let mut start = 0;
        for i in 1..=cells.len() {
            let s = &cells[start];
            if i == cells.len() || (cells[i].fg, cells[i].bg, cells[i].flags) != (s.fg, s.bg, s.flags) {
                runs.push(&cells[start..i]);
                start = i;
            }
        }
        put_varint(&mut out, runs.len() as u64);
        for run in runs {
            put_color(&mut out, run[0].fg);
            put_color(&mut out, run[0].bg);
            put_varint(&mut out, run[0].flags.0 as u64);
            put_varint(&mut out, run.len() as u64);
            for cell in run {
                match cell.text.as_bytes() {
                    [b] if (1..0x80).contains(b) => out.push(*b),
                    text => {
                        out.push(0);
                        put_varint(&mut out, text.len() as u64);
                        out.extend_from_slice(text);
                    }
                }
            }
        }
    }
    out
}

struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> Result<u8, DamageError> {
        let b = *self.bytes.get(self.at).ok_or(DamageError::Malformed("ends early"))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, DamageError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DamageError::Malformed("number too long"))
    }

    fn small(&mut self, max: u64, what: &'static str) -> Result<u64, DamageError> {
        let v = self.varint()?;
        if v > max {
            return Err(DamageError::Malformed(what));
        }
        Ok(v)
    }

    fn color(&mut self) -> Result<CellColor, DamageError> {
        Ok(match self.byte()? {
            0 => CellColor::Default,
            1 => CellColor::Indexed(self.byte()?),
            2 => CellColor::Rgb(self.byte()?, self.byte()?, self.byte()?),
            _ => return Err(DamageError::Malformed("unknown colour")),
        })
    }

    fn slice(&mut self, len: usize) -> Result<&[u8], DamageError> {
        let s = self.bytes.get(self.at..self.at + len).ok_or(DamageError::Malformed("ends early"))?;
        self.at += len;
        Ok(s)
    }
}

/// Read damage back; anything malformed (bytes from a broken or hostile peer) is an error, never a panic or a
/// huge allocation.
pub fn decode(bytes: &[u8]) -> Result<Damage, DamageError> {
    let mut i = Input { bytes, at: 0 };
    let seq = i.varint()?;
    let base = i.varint()?.checked_sub(1);
    let rows = i.small(u16::MAX as u64, "too many rows")? as u16;
    let cols = i.small(u16::MAX as u64, "too many columns")? as u16;
    if rows as usize * cols as usize > MAX_CELLS {
        return Err(DamageError::Malformed("screen too large"));
    }
    let cursor = match i.byte()? {
        0 => None,
        1 => Some((i.small(u16::MAX as u64, "cursor")? as u16, i.small(u16::MAX as u64, "cursor")? as u16)),
        _ => return Err(DamageError::Malformed("cursor")),
    };
    let scrolled_back = i.varint()?;
    let history = i.varint()?;
    let alt_screen = match i.byte()? {
        0 => false,
        1 => true,
        _ => return Err(DamageError::Malformed("alt screen flag")),
    };
    let scroll = i.small(rows.saturating_sub(1) as u64, "scrolled past the screen")? as u16;
    let count = i.small(rows as u64, "more rows than the screen")?;
    let mut changed = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let r = i.small(rows.saturating_sub(1) as u64, "row outside the screen")? as u16;
        let runs = i.small(cols as u64, "more runs than columns")?;
        let mut cells = Vec::with_capacity(cols as usize);
        for _ in 0..runs {
            let fg = i.color()?;
            let bg = i.color()?;
            let flags = CellFlags(i.small(u16::MAX as u64, "flags")? as u16);
            let n = i.small((cols as usize - cells.len()) as u64, "run past the row's end")?;
            for _ in 0..n {
                let text = match i.byte()? {
                    0 => {
                        let len = i.small(MAX_CELL_TEXT as u64, "cell text too long")? as usize;
                        std::str::from_utf8(i.slice(len)?).map_err(|_| DamageError::Malformed("text not UTF-8"))?.into()
                    }
                    b if b < 0x80 => std::iter::once(char::from(b)).collect(),
                    _ => return Err(DamageError::Malformed("cell text")),
                };
                cells.push(ScreenCell { text, fg, bg, flags });
            }
        }
        if cells.len() != cols as usize {
            return Err(DamageError::Malformed("row shorter than the screen"));
        }
        changed.push((r, Row::from(cells)));
    }
    if i.at != bytes.len() {
        return Err(DamageError::Malformed("bytes after the end"));
    }
    Ok(Damage { seq, base, rows, cols, cursor, scrolled_back, history, alt_screen, scroll, changed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::{AlacrittyModel, TerminalModel};
    use proptest::prelude::*;

    fn screen_of(bytes: &[u8], rows: u16, cols: u16) -> Screen {
        let mut m = AlacrittyModel::new(rows, cols, 100);
        m.feed(bytes);
        m.snapshot()
    }

    fn coloured(lines: usize) -> Vec<u8> {
        (0..lines)
            .flat_map(|i| {
                format!("\x1b[1;3{}m{i:05} \x1b[38;2;{};80;200mcompiling crate 世界 é\x1b[0m done\r\n", i % 8, i % 256)
                    .into_bytes()
            })
            .collect()
    }

    #[test]
    fn a_coloured_screen_is_small_and_one_new_line_smaller() {
        let a = screen_of(&coloured(60), 50, 200);
        let full = encode(&diff(None, &a, 1));
        let json = serde_json::to_vec(&a).unwrap().len();
        assert!(full.len() * 20 < json, "{} bytes against {json} as JSON", full.len());
        let mut more = coloured(60);
        more.extend(b"one more line\r\n");
        let b = screen_of(&more, 50, 200);
        let d = diff(Some((&a, 1)), &b, 2);
        // Every row moved up one: sent as a scroll and the rows that are new.
        assert_eq!(d.scroll, 1);
        assert!(d.changed.len() <= 3, "{:?}", d.changed.iter().map(|c| c.0).collect::<Vec<_>>());
        assert!(encode(&d).len() < 1500, "{}", encode(&d).len());
        let mut copy = Screen::default();
        apply(&mut copy, None, &decode(&full).unwrap()).unwrap();
        apply(&mut copy, Some(1), &decode(&encode(&d)).unwrap()).unwrap();
        assert_eq!(copy, b);
        // A change in one row sends one row.
        let mut c = b.clone();
        if let Some(cell) = c.cell_mut(0, 0) {
            cell.text = "X".into();
        }
        let d = diff(Some((&b, 2)), &c, 3);
        assert_eq!(d.changed.len(), 1);
        assert!(encode(&d).len() < 600, "{}", encode(&d).len());
        // Out of step: the client must ask for a full screen.
        assert_eq!(apply(&mut copy, Some(1), &d), Err(DamageError::OutOfStep { base: 2, have: Some(1) }));
    }

    fn arb_screen() -> impl Strategy<Value = Screen> {
        (1u16..6, 1u16..8).prop_flat_map(|(rows, cols)| {
            let cell = (
                prop_oneof![Just(" ".to_string()), "[a-z]", Just("世".to_string()), Just("e\u{301}".to_string())],
                0u8..3,
                any::<u8>(),
                0u16..512,
            )
                .prop_map(|(t, kind, v, f)| ScreenCell {
                    text: t.into(),
                    fg: match kind {
                        0 => CellColor::Default,
                        1 => CellColor::Indexed(v),
                        _ => CellColor::Rgb(v, v / 2, 3),
                    },
                    bg: CellColor::Default,
                    flags: CellFlags(f),
                });
            (
                proptest::collection::vec(cell, (rows * cols) as usize),
                proptest::option::of((0..rows, 0..cols)),
                any::<bool>(),
                0usize..1000,
            )
                .prop_map(move |(cells, cursor, alt_screen, history)| Screen {
                    cursor,
                    scrolled_back: 0,
                    history,
                    alt_screen,
                    ..Screen::from_cells(rows, cols, cells)
                })
        })
    }

    proptest! {
        #[test]
        fn damage_applied_to_a_copy_gives_the_servers_screen(a in arb_screen(), b in arb_screen()) {
            let mut copy = Screen::default();
            apply(&mut copy, None, &decode(&encode(&diff(None, &a, 1))).unwrap()).unwrap();
            prop_assert_eq!(&copy, &a);
            let d = diff(Some((&a, 1)), &b, 2);
            let back = decode(&encode(&d)).unwrap();
            prop_assert_eq!(&back, &d);
            apply(&mut copy, Some(1), &back).unwrap();
            prop_assert_eq!(copy, b);
        }

        #[test]
        fn a_scrolled_screen_applies_as_a_scroll(a in arb_screen(), k in 1u16..6, fresh in arb_screen()) {
            // `b` is `a` moved up k rows, with rows of `fresh` below.
            let (rows, cols) = (a.rows as usize, a.cols as usize);
            let k = (k as usize).min(rows);
            let fresh: Vec<ScreenCell> = fresh.cells().cloned().collect();
            let mut cells: Vec<ScreenCell> = a.cells().skip(k * cols).cloned().collect();
            cells.extend((0..k * cols).map(|i| fresh.get(i % fresh.len()).cloned().unwrap_or_default()));
            let b = Screen::from_cells(a.rows, a.cols, cells);
            let mut copy = Screen::default();
            apply(&mut copy, None, &diff(None, &a, 1)).unwrap();
            let d = decode(&encode(&diff(Some((&a, 1)), &b, 2))).unwrap();
            apply(&mut copy, Some(1), &d).unwrap();
            prop_assert_eq!(copy, b);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(d) = decode(&bytes) {
                let mut s = Screen::default();
                let _ = apply(&mut s, None, &d);
            }
        }
    }
}
