//! Drawing an agent's screen snapshot into a ratatui buffer: colours, attributes, wide characters.

use ratatui::buffer::{Buffer, Cell, CellDiffOption};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

use crate::config::theme::ColorMode;
use crate::protocol::screen::{CellColor, CellFlags, Screen, ScreenCell};

fn color(c: CellColor, mode: ColorMode) -> Option<Color> {
    let c = match c {
        CellColor::Default => return None,
        CellColor::Indexed(i) => Color::Indexed(i),
        CellColor::Rgb(r, g, b) => Color::Rgb(r, g, b),
    };
    // NO_COLOR governs muster's own colours; an agent's colours are its output and are kept.
    match mode {
        ColorMode::NoColor => Some(c),
        m => m.adapt(c),
    }
}

pub fn cell_style(fg: CellColor, bg: CellColor, flags: CellFlags, mode: ColorMode) -> Style {
    let mut style = Style::default();
    if let Some(c) = color(fg, mode) {
        style = style.fg(c);
    }
    if let Some(c) = color(bg, mode) {
        style = style.bg(c);
    }
    let mods = [
        (CellFlags::BOLD, Modifier::BOLD),
        (CellFlags::DIM, Modifier::DIM),
        (CellFlags::ITALIC, Modifier::ITALIC),
        (CellFlags::UNDERLINE, Modifier::UNDERLINED),
        (CellFlags::INVERSE, Modifier::REVERSED),
        (CellFlags::HIDDEN, Modifier::HIDDEN),
        (CellFlags::STRIKE, Modifier::CROSSED_OUT),
    ];
    for (bit, m) in mods {
        if flags.has(bit) {
            style = style.add_modifier(m);
        }
    }
    style
}

pub use crate::app::layout::top_row;

/// Copy the snapshot into `area`, clipping what does not fit and blanking what the snapshot does not cover.
pub fn draw(screen: &Screen, area: Rect, buf: &mut Buffer, mode: ColorMode) {
    let top = top_row(screen, area);
    for y in 0..area.height {
        for x in 0..area.width {
            let pos = (area.x + x, area.y + y);
            let Some(target) = buf.cell_mut(pos) else {
                continue;
            };
            match screen.cell(y + top, x) {
                Some(cell) => paint_cell(target, cell, x + 1 >= area.width, mode),
                None => {
                    target.reset();
                }
            }
        }
    }
}

/// One cell of an agent's screen as a ratatui cell; `last_column`: a wide character there is clipped.
pub fn paint_cell(target: &mut Cell, cell: &ScreenCell, last_column: bool, mode: ColorMode) {
    if cell.flags.has(CellFlags::SPACER) {
        // Drawn by the wide character on its left; ratatui skips it when diffing.
        target.reset();
        target.set_symbol("");
        return;
    }
    let wide_clipped = cell.flags.has(CellFlags::WIDE) && last_column;
    target.set_symbol(if wide_clipped { " " } else { &cell.text });
    target.set_style(cell_style(cell.fg, cell.bg, cell.flags, mode));
}

/// Leave `area` to whoever paints it apart (`well_painter`): ratatui neither draws nor diffs it.
pub fn leave_alone(area: Rect, buf: &mut Buffer) {
    let area = area.intersection(buf.area);
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            buf[(x, y)].set_diff_option(CellDiffOption::Skip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(rows: u16, text_at: u16, cursor: Option<(u16, u16)>) -> Screen {
        let mut cells = vec![ScreenCell::default(); rows as usize * 4];
        cells[text_at as usize * 4].text = "x".into();
        Screen { cursor, ..Screen::from_cells(rows, 4, cells) }
    }

    #[test]
    fn a_screen_taller_than_its_pane_keeps_the_cursor_or_the_last_text_in_view() {
        let pane = Rect::new(0, 0, 4, 4);
        assert_eq!(top_row(&screen(4, 3, Some((3, 0))), pane), 0, "fits: from the top");
        assert_eq!(top_row(&screen(10, 0, Some((1, 0))), pane), 0, "the cursor near the top");
        assert_eq!(top_row(&screen(10, 0, Some((9, 0))), pane), 6, "the cursor at the bottom");
        assert_eq!(top_row(&screen(10, 7, None), pane), 4, "no cursor: the last text");
    }
}
