//! Which rows of the live screen changed since the last frame, so a frame converts and sends only those: the
//! emulator's own damage (alacritty tracks the lines it writes, for its renderer), plus the one thing it does
//! not say cheaply — output scrolling by. alacritty calls every scroll a full damage; the capture of rows into
//! history (`capture`) sees each line feed that scrolls the whole screen, and tells this, which moves its rows
//! up instead.

use alacritty_terminal::grid::Dimensions;
use alacritty_terminal::term::{Term, TermDamage};

pub use crate::protocol::screen::Change;

#[derive(Debug, Default)]
pub struct RowChanges {
    scroll: usize,
    /// Changed rows, in the screen's coordinates now.
    dirty: Vec<bool>,
    /// Everything changed (or it is not known what did).
    all: bool,
}

impl RowChanges {
    pub fn everything(&mut self) {
        self.all = true;
    }

    fn row(&mut self, line: usize) {
        match self.dirty.get_mut(line) {
            Some(d) => *d = true,
            None => self.all = true,
        }
    }

    /// The emulator's damage so far joins these (and is reset). It always includes the cursor's row, where a
    /// combining mark joins the cell before the cursor without moving it.
    pub fn absorb<T>(&mut self, term: &mut Term<T>) {
        let lines = term.screen_lines();
        if self.dirty.len() != lines {
            self.dirty = vec![false; lines];
            self.all = true;
        }
        // Nothing more to learn until the next frame takes it (an agent nobody watches stays here: its output
        // costs no damage bookkeeping).
        if self.all {
            return;
        }
        match term.damage() {
            TermDamage::Full => self.all = true,
            TermDamage::Partial(damaged) => {
                for d in damaged {
                    self.row(d.line);
                }
            }
        }
        term.reset_damage();
    }

    /// The whole screen scrolled up `n` rows (the emulator's damage absorbed just before): rows move up, the
    /// `n` new ones at the bottom and the one above them changed. The emulator's full damage for the scroll is
    /// dropped.
    pub fn scrolled<T>(&mut self, term: &mut Term<T>, n: usize) {
        let lines = self.dirty.len();
        if self.all || n == 0 {
            return;
        }
        term.reset_damage();
        self.scroll += n;
        if self.scroll >= lines {
            self.all = true;
            return;
        }
        self.dirty.rotate_left(n);
        // The row above the new ones: a wrapped line's mark or a wide character's leading spacer went there
        // just before the scroll.
        for d in &mut self.dirty[lines.saturating_sub(n + 1)..] {
            *d = true;
        }
    }

    /// What changed since the last call (`None`: everything), and start again.
    pub fn take<T>(&mut self, term: &mut Term<T>) -> Option<Change> {
        self.absorb(term);
        term.reset_damage();
        let change = (!self.all).then(|| Change {
            scroll: self.scroll as u16,
            rows: (0..self.dirty.len()).filter(|&r| self.dirty[r]).map(|r| r as u16).collect(),
        });
        self.scroll = 0;
        self.all = false;
        self.dirty.iter_mut().for_each(|d| *d = false);
        change
    }
}
