//! Where each part of the screen goes, shared by `render` and `update` (pane size for the engine, mouse hits).

use ratatui::layout::Rect;

/// Below these, the detail well is dropped and only the roster is shown.
pub const MIN_WELL_WIDTH: u16 = 61;
pub const MIN_WELL_HEIGHT: u16 = 16;
/// Below this height even the roster does not fit: one summary line.
pub const MIN_ROSTER_HEIGHT: u16 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Areas {
    pub header: Rect,
    pub roster: Rect,
    /// The well's tab line.
    pub well_bar: Option<Rect>,
    /// Where the agent's terminal is drawn.
    pub terminal: Option<Rect>,
    pub status: Rect,
    /// Everything in one line (tiny terminals).
    pub summary: Option<Rect>,
}

pub fn areas(width: u16, height: u16, agents: usize, well_open: bool, attached: bool) -> Areas {
    if height < MIN_ROSTER_HEIGHT || width < 20 {
        return Areas { summary: Some(Rect::new(0, 0, width, height.min(1))), ..Areas::default() };
    }
    let header = Rect::new(0, 0, width, 1);
    let status = Rect::new(0, height - 1, width, 1);
    let body = height - 2;
    let show_well = well_open && width >= MIN_WELL_WIDTH && height >= MIN_WELL_HEIGHT;
    if attached && !show_well {
        // Typing blind is no use: a small terminal gives the whole body to the attached agent.
        let bar = Rect::new(0, 1, width, 1);
        let terminal = Rect::new(0, 2, width, body.saturating_sub(1));
        return Areas {
            header,
            roster: Rect::new(0, 1, width, 0),
            well_bar: Some(bar),
            terminal: Some(terminal),
            status,
            summary: None,
        };
    }
    if !show_well {
        return Areas { header, roster: Rect::new(0, 1, width, body), status, ..Areas::default() };
    }
    // The roster takes one line per agent, but never more than a third of the body: the well is the point.
    let roster_h = (agents.max(1) as u16).min(body / 3).max(1);
    let roster = Rect::new(0, 1, width, roster_h);
    let bar = Rect::new(0, 1 + roster_h, width, 1);
    let term_h = body.saturating_sub(roster_h + 1);
    let terminal = Rect::new(0, bar.y + 1, width, term_h);
    Areas { header, roster, well_bar: Some(bar), terminal: Some(terminal), status, summary: None }
}

/// The first row of `screen` that `area` shows: a screen taller than the pane (sized by another viewer) is shown
/// from its top, moved down just enough to keep the cursor (else the last line with text) in view.
pub fn top_row(screen: &crate::protocol::screen::Screen, area: Rect) -> u16 {
    let spare = screen.rows.saturating_sub(area.height);
    if spare == 0 {
        return 0;
    }
    let last_text = (0..screen.rows).rev().find(|&r| !screen.row_text(r).trim().is_empty()).unwrap_or(0);
    let anchor = screen.cursor.map_or(last_text, |(row, _)| row);
    (anchor + 1).saturating_sub(area.height).min(spare)
}

/// A split well's panes in `area`: (title row, terminal) each, side by side (a column between them) or stacked.
/// Every pane gets at least one row of terminal and two columns, fewer panes when the well is too small.
pub fn panes(area: Rect, n: usize, stacked: bool) -> Vec<(Rect, Rect)> {
    let n = n.max(1) as u16;
    let fit = if stacked { area.height / 2 } else { (area.width + 1) / 3 };
    let n = n.min(fit.max(1));
    (0..n)
        .map(|i| {
            let pane = if stacked {
                let h = area.height / n;
                let y = area.y + i * h;
                Rect::new(area.x, y, area.width, if i + 1 == n { area.bottom() - y } else { h })
            } else {
                let w = (area.width + 1) / n;
                let x = area.x + i * w;
                Rect::new(x, area.y, if i + 1 == n { area.right() - x } else { w - 1 }, area.height)
            };
            let title = Rect::new(pane.x, pane.y, pane.width, 1.min(pane.height));
            let terminal = Rect::new(pane.x, pane.y + title.height, pane.width, pane.height - title.height);
            (title, terminal)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panes_share_the_well_without_overlap() {
        let well = Rect::new(0, 6, 120, 33);
        let side = panes(well, 3, false);
        assert_eq!(side.iter().map(|(_, t)| t.width).collect::<Vec<_>>(), [39, 39, 40]);
        assert!(side.iter().all(|(title, t)| title.y == 6 && t.y == 7 && t.height == 32));
        assert_eq!(side[2].1.right(), 120);
        let stacked = panes(well, 2, true);
        assert_eq!(stacked.iter().map(|(_, t)| (t.y, t.height)).collect::<Vec<_>>(), [(7, 15), (23, 16)]);
        for w in 0..60 {
            for h in 0..20 {
                for n in 1..=4 {
                    for st in [false, true] {
                        let area = Rect::new(3, 2, w, h);
                        for (title, t) in panes(area, n, st) {
                            assert!(area.contains(title.as_position()) || title.area() == 0 || area.area() == 0);
                            assert!(t.right() <= area.right() && t.bottom() <= area.bottom());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sizes() {
        let a = areas(120, 40, 4, true, false);
        assert_eq!(a.roster.height, 4);
        assert_eq!(a.terminal.unwrap(), Rect::new(0, 6, 120, 33));
        let a = areas(60, 15, 4, true, false);
        assert!(a.terminal.is_none());
        assert_eq!(a.roster.height, 13);
        let a = areas(80, 24, 40, true, false);
        assert_eq!(a.roster.height, 7);
        assert!(areas(30, 3, 2, true, false).summary.is_some());
        let a = areas(120, 40, 4, false, false);
        assert!(a.terminal.is_none());
    }

    #[test]
    fn never_panics_on_any_size() {
        for w in 0..130 {
            for h in 0..45 {
                let a = areas(w, h, 5, true, w % 2 == 0);
                if let Some(t) = a.terminal {
                    assert!(t.bottom() <= h && t.right() <= w);
                }
            }
        }
    }
}
