//! The compact history: lines that scrolled out of an agent's screen, kept as text and style runs instead of a
//! full grid row per line.
//!
//! An emulator row costs 24 bytes a column whatever it holds (4.8 KB for a 200-column line, and alacritty
//! allocates its history a thousand rows at a time), so 10,000 lines of history cost ~48 MB an agent. Here a
//! line is a run-length encoding of its cells (a few bytes a run, one char a cell), appended to a block; a full
//! block is deflated. Lines are kept whole (logical lines: the rows a long line wrapped into, joined), so the
//! history reflows on a resize like the screen does.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use compact_str::CompactString;

use super::guard::utf8_len;
use super::screen::{CellColor, CellFlags, ScreenCell};

/// A stored cell that is the blank alacritty leaves in the last column when a wide character wraps to the
/// next row: kept while the width it was written at stays, laid out afresh after a resize. Never drawn as such.
pub const LEADING_SPACER: u16 = 1 << 15;

/// One cell as the encoder takes it, borrowed from where it lives (the emulator's grid, or a screen cell), so a
/// row that scrolls off is encoded without being converted first.
pub struct Part<'a> {
    pub ch: char,
    pub fg: CellColor,
    pub bg: CellColor,
    pub flags: u16,
    pub marks: Marks<'a>,
}

/// Combining marks after a cell's character.
pub enum Marks<'a> {
    None,
    Chars(&'a [char]),
    Str(&'a str),
}

impl Marks<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Marks::None => true,
            Marks::Chars(c) => c.is_empty(),
            Marks::Str(s) => s.is_empty(),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Marks::None => put_varint(out, 0),
            Marks::Chars(chars) => {
                put_varint(out, chars.iter().map(|c| c.len_utf8()).sum::<usize>() as u64);
                let mut buf = [0u8; 4];
                for c in *chars {
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
            Marks::Str(s) => {
                put_varint(out, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

/// A row encoded before it is known to scroll off (once it has, the emulator has already cleared it).
#[derive(Default)]
pub struct Encoded {
    bytes: Vec<u8>,
    cells: usize,
    wide: bool,
    /// The line goes on in the next row.
    pub wrapped: bool,
    /// A run's characters while it is encoded (its allocation kept between rows).
    chars: Vec<u8>,
}

impl Encoded {
    /// Encode `len` cells (`part(i)` each) into this scratch, reusing its allocation.
    pub fn set<'a>(&mut self, len: usize, wrapped: bool, part: impl Fn(usize) -> Part<'a>) {
        self.set_runs(len, wrapped, part, |_| None);
    }

    /// As `set`, told by `same(i)` when cell `i` has the style of cell `i - 1` (its character, and whether
    /// marks follow it): such a cell is not converted, only its character kept.
    pub fn set_runs<'a>(
        &mut self,
        len: usize,
        wrapped: bool,
        part: impl Fn(usize) -> Part<'a>,
        same: impl Fn(usize) -> Option<(char, bool)>,
    ) {
        self.bytes.clear();
        self.wide = encode_with(len, part, same, &mut self.bytes, &mut self.chars);
        self.cells = len;
        self.wrapped = wrapped;
    }
}

/// Encoded bytes of a block before it is sealed (deflated).
const BLOCK_BYTES: usize = 32 * 1024;

/// How long a full block stays unsealed. Deflating is most of what keeping history costs, and in a flood (a
/// `cat` of a large file) lines pass through the history in a fraction of a second: only blocks that outlive
/// this are deflated, so a flood deflates nothing but what is left of it at the end.
pub const SEAL_AFTER: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy)]
struct Meta {
    /// Where the line's encoding starts in its block's (uncompressed) bytes.
    offset: u32,
    cells: u32,
    /// Rows it takes at the history's current width.
    rows: u32,
    /// The width its rows were written at: its leading spacers are only right at that width.
    width: u16,
    /// It holds a wide character (its row count needs a layout, not a division).
    wide: bool,
}

enum Data {
    Open(Vec<u8>),
    Sealed(Box<[u8]>),
}

struct Block {
    data: Data,
    lines: Vec<Meta>,
    rows: u64,
    /// When a newer block took over from it (it takes no more lines).
    full: Option<Instant>,
}

impl Block {
    fn new() -> Block {
        Block { data: Data::Open(Vec::new()), lines: Vec::new(), rows: 0, full: None }
    }

    fn bytes_len(&self) -> usize {
        match &self.data {
            Data::Open(v) => v.len(),
            Data::Sealed(b) => b.len(),
        }
    }
}

/// Lines above the screen, oldest first.
pub struct History {
    blocks: VecDeque<Block>,
    /// Rows kept (at least; whole blocks are dropped).
    limit: usize,
    width: u16,
    rows: u64,
    /// The newest line continues on the next row that scrolls out (its last row wrapped).
    open: bool,
    /// The last sealed block read back, by its position from the oldest dropped-ever block.
    cache: RefCell<Option<(u64, Vec<u8>)>>,
    /// Blocks dropped so far: gives sealed blocks a stable number for the cache.
    dropped: u64,
    /// Rows that ever scrolled in: a place in the output that trimming does not move (`muster read --turn`).
    pushed: u64,
    /// What tells when a block became full (a test stops it).
    clock: fn() -> Instant,
}

impl History {
    pub fn new(limit: usize, width: u16) -> History {
        History {
            blocks: VecDeque::new(),
            limit,
            width: width.max(2),
            rows: 0,
            open: false,
            cache: RefCell::new(None),
            dropped: 0,
            pushed: 0,
            clock: Instant::now,
        }
    }

    /// Rows that ever scrolled into history.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Rows of history at the current width.
    pub fn rows(&self) -> usize {
        self.rows as usize
    }

    pub fn lines(&self) -> usize {
        self.blocks.iter().map(|b| b.lines.len()).sum()
    }

    /// Bytes the history holds (encoded and deflated), for the benchmark.
    pub fn bytes(&self) -> usize {
        self.blocks.iter().map(|b| b.bytes_len() + b.lines.capacity() * std::mem::size_of::<Meta>()).sum()
    }

    pub fn clear(&mut self) {
        self.dropped += self.blocks.len() as u64;
        self.blocks.clear();
        self.rows = 0;
        self.open = false;
        *self.cache.borrow_mut() = None;
    }

    /// A row that scrolled off the top of the screen. `wrapped`: the line goes on in the next row.
    pub fn push_row(&mut self, cells: &[ScreenCell], wrapped: bool) {
        let keep = if wrapped {
            cells.len()
        } else {
            cells.iter().rposition(|c| *c != ScreenCell::default()).map_or(0, |i| i + 1)
        };
        let mut e = Encoded::default();
        e.set(keep, wrapped, |i| part_of(&cells[i]));
        self.push_encoded(&e);
    }

    /// A row that scrolled off the top of the screen, encoded (`Encoded::set`) before it did: all of a row that
    /// wraps, and a row that ends its line without its trailing blanks (padding: rows are laid out to the width
    /// again when read).
    pub fn push_encoded(&mut self, e: &Encoded) {
        if self.limit == 0 {
            return;
        }
        self.pushed += 1;
        if self.open {
            let mut more = decode(&e.bytes);
            // A row a line wrapped into is a row even when blank: one cell keeps it one.
            if more.is_empty() {
                more.push(ScreenCell::default());
            }
            self.extend_last(&more);
        } else {
            self.append(e);
        }
        self.open = e.wrapped;
        self.trim();
    }

    fn append(&mut self, e: &Encoded) {
        if self.blocks.back().is_none_or(|b| matches!(b.data, Data::Sealed(_)) || b.bytes_len() >= BLOCK_BYTES) {
            let now = (self.clock)();
            if let Some(last) = self.blocks.back_mut() {
                last.full.get_or_insert(now);
            }
            self.seal_due(now);
            self.blocks.push_back(Block::new());
        }
        let width = self.width;
        let Some(block) = self.blocks.back_mut() else { return };
        let Data::Open(data) = &mut block.data else { return };
        let offset = data.len() as u32;
        data.extend_from_slice(&e.bytes);
        // Without wide characters the rows are a division; with them, a layout.
        let rows = if e.wide { layout_rows(&decode(&e.bytes), width, true, true) } else { rows_for(e.cells, width) };
        block.lines.push(Meta { offset, cells: e.cells as u32, rows, width, wide: e.wide });
        block.rows += rows as u64;
        self.rows += rows as u64;
    }

    /// The newest line goes on: it is decoded, extended and encoded again (a line wraps onto few rows).
    fn extend_last(&mut self, more: &[ScreenCell]) {
        let fresh = |more: &[ScreenCell]| {
            let mut e = Encoded::default();
            e.set(more.len(), false, |i| part_of(&more[i]));
            e
        };
        let Some(block) = self.blocks.back_mut() else { return self.append(&fresh(more)) };
        let (Data::Open(data), Some(meta)) = (&mut block.data, block.lines.last().copied()) else {
            return self.append(&fresh(more));
        };
        let mut cells = decode(&data[meta.offset as usize..]);
        cells.extend_from_slice(more);
        data.truncate(meta.offset as usize);
        encode_with(cells.len(), |i| part_of(&cells[i]), |_| None, data, &mut Vec::new());
        let wide = meta.wide || more.iter().any(|c| c.flags.has(CellFlags::WIDE));
        let rows = layout_rows(&cells, self.width, true, wide);
        block.rows = block.rows - meta.rows as u64 + rows as u64;
        self.rows = self.rows - meta.rows as u64 + rows as u64;
        if let Some(last) = block.lines.last_mut() {
            *last = Meta { offset: meta.offset, cells: cells.len() as u32, rows, width: self.width, wide };
        }
    }

    /// Deflate the full blocks that have been full for `SEAL_AFTER` by `now`.
    pub fn seal_due(&mut self, now: Instant) {
        for block in &mut self.blocks {
            if block.full.is_some_and(|at| at + SEAL_AFTER <= now) {
                seal(block);
            }
        }
    }

    /// When the next full block is due to be deflated (blocks fill oldest first; a sealed one is no longer full).
    pub fn seal_deadline(&self) -> Option<Instant> {
        self.blocks.iter().find_map(|b| b.full).map(|at| at + SEAL_AFTER)
    }

    fn trim(&mut self) {
        while self.blocks.len() > 1 {
            let first = self.blocks[0].rows;
            if self.rows - first < self.limit as u64 {
                break;
            }
            self.blocks.pop_front();
            self.dropped += 1;
            self.rows -= first;
        }
    }

    /// The newest line, when it goes on onto the screen, taken out as its rows (all wrapped): a resize hands
    /// it back to the emulator so the line reflows whole.
    pub fn take_open_line(&mut self) -> Option<Vec<Vec<ScreenCell>>> {
        if !self.open {
            return None;
        }
        let block = self.blocks.back_mut()?;
        let Data::Open(data) = &mut block.data else { return None };
        let meta = block.lines.pop()?;
        let cells = decode(&data[meta.offset as usize..]);
        data.truncate(meta.offset as usize);
        block.rows -= meta.rows as u64;
        self.rows -= meta.rows as u64;
        if block.lines.is_empty() {
            self.blocks.pop_back();
        }
        self.open = false;
        // Leading spacers stay marked: the emulator drops them when it lays the line out at another width.
        Some(layout(&cells, self.width, meta.width == self.width, true))
    }

    /// Lay the history out at a new width (what the screen's reflow does to its own rows).
    pub fn set_width(&mut self, width: u16) {
        let width = width.max(2);
        if width == self.width {
            return;
        }
        self.width = width;
        self.rows = 0;
        for i in 0..self.blocks.len() {
            let needs_cells = self.blocks[i].lines.iter().any(|m| m.wide || m.width != width);
            let bytes = if needs_cells { Some(self.block_bytes(i)) } else { None };
            let block = &mut self.blocks[i];
            block.rows = 0;
            for meta in &mut block.lines {
                meta.rows = match &bytes {
                    Some(b) if meta.wide => {
                        let cells = decode(&b[meta.offset as usize..]);
                        layout_rows(&cells, width, meta.width == width, true)
                    }
                    // Without wide characters a leading spacer never happened, so a division is the layout.
                    _ => rows_for(meta.cells as usize, width),
                };
                block.rows += meta.rows as u64;
            }
            self.rows += block.rows;
        }
        self.trim();
    }

    fn block_bytes(&self, i: usize) -> Vec<u8> {
        match &self.blocks[i].data {
            Data::Open(v) => v.clone(),
            Data::Sealed(z) => {
                let key = self.dropped + i as u64;
                if let Some((k, bytes)) = self.cache.borrow().as_ref() {
                    if *k == key {
                        return bytes.clone();
                    }
                }
                let mut out = Vec::new();
                // A block that does not inflate (it never happens: we wrote it) reads as no lines.
                let _ = flate2::read::DeflateDecoder::new(&z[..]).read_to_end(&mut out);
                *self.cache.borrow_mut() = Some((key, out.clone()));
                out
            }
        }
    }

    /// Rows `from..from + count` (0 = the oldest row kept), each `width` cells; rows past the end are blank.
    pub fn rows_at(&self, from: usize, count: usize) -> Vec<Vec<ScreenCell>> {
        self.wrapped_rows_at(from, count).into_iter().map(|(row, _)| row).collect()
    }

    /// As `rows_at`, each with whether its line goes on in the next row (the newest line of an open history
    /// goes on on the screen).
    pub fn wrapped_rows_at(&self, from: usize, count: usize) -> Vec<(Vec<ScreenCell>, bool)> {
        let mut out = Vec::with_capacity(count);
        self.visit_rows(from, count, |cells, wrapped| {
            let mut row = cells.to_vec();
            row.resize(self.width as usize, ScreenCell::default());
            out.push((row, wrapped));
        });
        out
    }

    /// Rows `from..from + count` as text (for search and copy): read without laying out blanks.
    pub fn text_rows(&self, from: usize, count: usize) -> Vec<crate::protocol::screen::TextRow> {
        let mut out = Vec::with_capacity(count);
        self.visit_rows(from, count, |cells, wrapped| out.push(crate::protocol::screen::TextRow::new(cells, wrapped)));
        out
    }

    /// Each of rows `from..from + count` (as many as there are): its cells (a last row without its padding)
    /// and whether its line goes on in the next row.
    fn visit_rows(&self, from: usize, count: usize, mut emit: impl FnMut(&[ScreenCell], bool)) {
        let end = from.saturating_add(count).min(self.rows as usize);
        if from >= end {
            return;
        }
        // Find the block and line holding row `from`, walking from the newest end (views are near it).
        let mut row = self.rows as usize;
        let mut at = None;
        'find: for (bi, block) in self.blocks.iter().enumerate().rev() {
            if row - block.rows as usize > from {
                row -= block.rows as usize;
                continue;
            }
            for (li, meta) in block.lines.iter().enumerate().rev() {
                row -= meta.rows as usize;
                if row <= from {
                    at = Some((bi, li, from - row));
                    break 'find;
                }
            }
        }
        let Some((mut bi, mut li, mut skip)) = at else { return };
        let mut left = end - from;
        let width = self.width as usize;
        while left > 0 && bi < self.blocks.len() {
            let bytes = self.block_bytes(bi);
            let block = &self.blocks[bi];
            while li < block.lines.len() && left > 0 {
                let meta = block.lines[li];
                let cells = decode(&bytes[meta.offset as usize..]);
                let open = bi + 1 == self.blocks.len() && li + 1 == block.lines.len() && self.open;
                // A line without wide characters (or what is left of one) is its cells cut at the width; one with
                // them needs a layout.
                let odd = CellFlags::WIDE | CellFlags::SPACER | LEADING_SPACER;
                let laid_out;
                let rows: Vec<&[ScreenCell]> = if meta.wide || cells.iter().any(|c| c.flags.0 & odd != 0) {
                    laid_out = layout(&cells, self.width, meta.width == self.width, false);
                    laid_out.iter().map(|r| &r[..]).collect()
                } else if cells.is_empty() {
                    vec![&[]]
                } else {
                    cells.chunks(width).collect()
                };
                let last = rows.len() - 1;
                for (i, r) in rows.into_iter().enumerate().skip(skip) {
                    if left == 0 {
                        break;
                    }
                    emit(r, i < last || open);
                    left -= 1;
                }
                skip = 0;
                li += 1;
            }
            bi += 1;
            li = 0;
        }
    }
}

fn seal(block: &mut Block) {
    let Data::Open(data) = &block.data else { return };
    block.full = None;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    if z.write_all(data).is_err() {
        return;
    }
    if let Ok(bytes) = z.finish() {
        block.data = Data::Sealed(bytes.into_boxed_slice());
    }
}

fn rows_for(cells: usize, width: u16) -> u32 {
    cells.div_ceil(width as usize).max(1) as u32
}

fn layout_rows(cells: &[ScreenCell], width: u16, same_width: bool, wide: bool) -> u32 {
    if !wide {
        return rows_for(cells.len(), width);
    }
    layout(cells, width, same_width, false).len() as u32
}

/// A line's cells as rows of `width`: a wide character that does not fit in the last column goes to the next
/// row with a blank before it, as the emulator does; blanks pad the last row. `marked`: leading spacers keep
/// their mark (for the emulator), else they are plain blanks (for a reader).
fn layout(cells: &[ScreenCell], width: u16, same_width: bool, marked: bool) -> Vec<Vec<ScreenCell>> {
    let width = width as usize;
    let mut rows = Vec::new();
    let mut row: Vec<ScreenCell> = Vec::with_capacity(width);
    for cell in cells {
        if cell.flags.has(LEADING_SPACER) {
            if same_width {
                let mut c = cell.clone();
                if !marked {
                    c.flags.0 &= !LEADING_SPACER;
                }
                row.push(c);
            }
        } else {
            if cell.flags.has(CellFlags::WIDE) && row.len() + 1 == width {
                row.push(ScreenCell::default());
                rows.push(std::mem::replace(&mut row, Vec::with_capacity(width)));
            }
            // A spacer that was cut from its wide character by a narrower width would start a row alone.
            let orphan = cell.flags.has(CellFlags::SPACER) && row.is_empty() && !rows.is_empty() && !same_width;
            if !orphan {
                row.push(cell.clone());
            }
        }
        if row.len() >= width {
            rows.push(std::mem::replace(&mut row, Vec::with_capacity(width)));
        }
    }
    if !row.is_empty() || rows.is_empty() {
        row.resize(width, ScreenCell::default());
        rows.push(row);
    }
    rows
}

// The encoding of a line: cell count, then runs of (length, style) and the cells' characters, then the
// combining marks (cell index, text). Varints throughout: most numbers are small.

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn get_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = bytes.get(*at) {
        *at += 1;
        if shift < 64 {
            v |= u64::from(b & 0x7f) << shift;
        }
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    v
}

fn put_color(out: &mut Vec<u8>, c: CellColor) {
    match c {
        CellColor::Default => out.push(0),
        CellColor::Indexed(i) => out.extend_from_slice(&[1, i]),
        CellColor::Rgb(r, g, b) => out.extend_from_slice(&[2, r, g, b]),
    }
}

fn get_color(bytes: &[u8], at: &mut usize) -> CellColor {
    let byte = |at: &mut usize| {
        let b = bytes.get(*at).copied().unwrap_or(0);
        *at += 1;
        b
    };
    match byte(at) {
        1 => CellColor::Indexed(byte(at)),
        2 => CellColor::Rgb(byte(at), byte(at), byte(at)),
        _ => CellColor::Default,
    }
}

/// A screen cell as the encoder takes it.
fn part_of(c: &ScreenCell) -> Part<'_> {
    let mut chars = c.text.chars();
    let ch = chars.next().unwrap_or(' ');
    Part { ch, fg: c.fg, bg: c.bg, flags: c.flags.0, marks: Marks::Str(chars.as_str()) }
}

#[cfg(test)]
fn encode(cells: &[ScreenCell], out: &mut Vec<u8>) {
    encode_with(cells.len(), |i| part_of(&cells[i]), |_| None, out, &mut Vec::new());
}

/// Encode `len` cells; whether one is a wide character. One look at each cell: a run's characters wait in a
/// small buffer until its style changes, since its length goes first.
fn encode_with<'a>(
    len: usize,
    part: impl Fn(usize) -> Part<'a>,
    same: impl Fn(usize) -> Option<(char, bool)>,
    out: &mut Vec<u8>,
    chars: &mut Vec<u8>,
) -> bool {
    put_varint(out, len as u64);
    let mut wide = false;
    let mut marked = Vec::new();
    let mut run: Option<((CellColor, CellColor, u16), usize)> = None;
    chars.clear();
    let flush = |out: &mut Vec<u8>, run: &Option<((CellColor, CellColor, u16), usize)>, chars: &mut Vec<u8>| {
        if let Some(((fg, bg, flags), n)) = run {
            put_varint(out, *n as u64);
            put_color(out, *fg);
            put_color(out, *bg);
            put_varint(out, *flags as u64);
            out.append(chars);
        }
    };
    let mut buf = [0u8; 4];
    let mut push = |chars: &mut Vec<u8>, ch: char| {
        if ch.is_ascii() {
            chars.push(ch as u8);
        } else {
            chars.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
    };
    for i in 0..len {
        if let (Some((_, n)), Some((ch, marks))) = (&mut run, (i > 0).then(|| same(i)).flatten()) {
            *n += 1;
            push(chars, ch);
            if marks {
                marked.push(i);
            }
            continue;
        }
        let p = part(i);
        let style = (p.fg, p.bg, p.flags);
        match &mut run {
            Some((s, n)) if *s == style => *n += 1,
            _ => {
                flush(out, &run, chars);
                run = Some((style, 1));
                wide |= p.flags & CellFlags::WIDE != 0;
            }
        }
        push(chars, p.ch);
        if !p.marks.is_empty() {
            marked.push(i);
        }
    }
    flush(out, &run, chars);
    put_varint(out, marked.len() as u64);
    for j in marked {
        put_varint(out, j as u64);
        part(j).marks.write(out);
    }
    wide
}

fn decode(bytes: &[u8]) -> Vec<ScreenCell> {
    let mut at = 0;
    let count = (get_varint(bytes, &mut at) as usize).min(bytes.len());
    let mut cells = Vec::with_capacity(count);
    while cells.len() < count && at < bytes.len() {
        let run = get_varint(bytes, &mut at) as usize;
        let fg = get_color(bytes, &mut at);
        let bg = get_color(bytes, &mut at);
        let flags = CellFlags(get_varint(bytes, &mut at) as u16);
        for _ in 0..run.min(count - cells.len()) {
            let rest = bytes.get(at..).unwrap_or_default();
            let len = rest.first().map_or(1, |b| utf8_len(*b)).min(rest.len().max(1));
            let ch = std::str::from_utf8(rest.get(..len).unwrap_or_default()).ok().and_then(|s| s.chars().next());
            at += len;
            let mut text = CompactString::default();
            text.push(ch.unwrap_or(' '));
            cells.push(ScreenCell { text, fg, bg, flags });
        }
    }
    let marked = get_varint(bytes, &mut at) as usize;
    for _ in 0..marked.min(cells.len()) {
        let i = get_varint(bytes, &mut at) as usize;
        let len = get_varint(bytes, &mut at) as usize;
        let text = bytes.get(at..at + len).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default();
        at += len;
        if let Some(c) = cells.get_mut(i) {
            c.text.push_str(text);
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cell(text: &str, fg: CellColor, flags: u16) -> ScreenCell {
        ScreenCell { text: text.into(), fg, bg: CellColor::Default, flags: CellFlags(flags) }
    }

    fn text(rows: &[Vec<ScreenCell>]) -> Vec<String> {
        rows.iter()
            .map(|r| {
                let s: String = r.iter().filter(|c| !c.flags.has(CellFlags::SPACER)).map(|c| c.text.as_str()).collect();
                s.trim_end().to_string()
            })
            .collect()
    }

    fn line(s: &str) -> Vec<ScreenCell> {
        s.chars().map(|c| cell(&c.to_string(), CellColor::Default, 0)).collect()
    }

    #[test]
    fn rows_come_back_as_they_went_in_and_reflow() {
        let mut h = History::new(1000, 10);
        let mut first = line("abcdefghij");
        first[0].fg = CellColor::Rgb(1, 2, 3);
        first[1].text = "b\u{301}".into();
        h.push_row(&first, true);
        h.push_row(&line("klm"), false);
        h.push_row(&line("xyz"), false);
        assert_eq!(h.rows(), 3);
        let rows = h.rows_at(0, 3);
        assert_eq!(text(&rows), ["ab\u{301}cdefghij", "klm", "xyz"]);
        assert_eq!(rows[0][0].fg, CellColor::Rgb(1, 2, 3));
        assert_eq!(rows[1].len(), 10);
        h.set_width(20);
        assert_eq!(h.rows(), 2);
        assert_eq!(text(&h.rows_at(0, 2)), ["ab\u{301}cdefghijklm", "xyz"]);
        h.set_width(4);
        assert_eq!(text(&h.rows_at(0, 10)), ["ab\u{301}cd", "efgh", "ijkl", "m", "xyz"]);
        assert_eq!(text(&h.rows_at(3, 1)), ["m"]);
    }

    #[test]
    fn a_wide_character_moves_to_the_next_row_when_it_does_not_fit() {
        let mut h = History::new(1000, 4);
        let mut cells = line("abc");
        cells.push(cell("界", CellColor::Default, CellFlags::WIDE));
        cells.push(cell(" ", CellColor::Default, CellFlags::SPACER));
        h.push_row(&cells, false);
        assert_eq!(h.rows(), 2);
        let rows = h.rows_at(0, 2);
        assert_eq!(text(&rows), ["abc", "界"]);
        assert!(rows[1][0].flags.has(CellFlags::WIDE) && rows[1][1].flags.has(CellFlags::SPACER));
    }

    #[test]
    fn old_blocks_are_deflated_and_dropped_past_the_limit() {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let start = *START.get_or_init(Instant::now);
        let mut h = History::new(5_000, 80);
        h.clock = || *START.get_or_init(Instant::now);
        for i in 0..20_000 {
            let mut cells = line(&format!("line {i} {}", "x".repeat(60)));
            for (j, c) in cells.iter_mut().enumerate() {
                c.fg = CellColor::Indexed((j / 7) as u8);
            }
            h.push_row(&cells, false);
        }
        assert!(h.rows() >= 5_000 && h.rows() < 6_000, "{}", h.rows());
        // Full blocks wait before they are deflated (a flood passes through undeflated), then read the same.
        let (open, before) = (h.bytes(), text(&h.rows_at(0, h.rows())));
        assert!(h.seal_deadline().is_some());
        h.seal_due(start + SEAL_AFTER / 2);
        assert_eq!(h.bytes(), open, "nothing is due yet");
        h.seal_due(start + SEAL_AFTER);
        assert!(h.seal_deadline().is_none());
        assert!(h.bytes() * 3 < open, "deflated: {} bytes from {open}", h.bytes());
        assert_eq!(text(&h.rows_at(0, h.rows())), before);
        let last = h.rows_at(h.rows() - 1, 1);
        assert!(text(&last)[0].starts_with("line 19999 "));
        let first = text(&h.rows_at(0, 1))[0].clone();
        let n: usize = first.split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(text(&h.rows_at(2500, 1))[0].split(' ').nth(1).unwrap(), (n + 2500).to_string());
        // 5,000+ lines of 70 coloured cells: a grid row each would be 1.9 KB (80 × 24 bytes).
        assert!(h.bytes() < h.rows() * 100, "{} bytes for {} rows", h.bytes(), h.rows());
    }

    fn any_cell() -> impl Strategy<Value = ScreenCell> {
        let color = prop_oneof![
            Just(CellColor::Default),
            any::<u8>().prop_map(CellColor::Indexed),
            any::<(u8, u8, u8)>().prop_map(|(r, g, b)| CellColor::Rgb(r, g, b)),
        ];
        (prop::sample::select(vec!["a", "é", "e\u{301}", " ", "~", "\u{1F600}"]), color.clone(), color, 0u16..512)
            .prop_map(|(t, fg, bg, flags)| ScreenCell { text: t.into(), fg, bg, flags: CellFlags(flags) })
    }

    proptest! {
        #[test]
        fn encoding_round_trips(cells in prop::collection::vec(any_cell(), 0..300)) {
            let mut out = Vec::new();
            encode(&cells, &mut out);
            prop_assert_eq!(decode(&out), cells);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
