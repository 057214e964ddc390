//! Drawing an agent's screen snapshot into a ratatui buffer: colours, attributes, wide characters.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

use crate::config::theme::ColorMode;
use crate::term::{CellColor, CellFlags, Screen};

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

/// Copy the snapshot into `area`, clipping what does not fit and blanking what the snapshot does not cover.
pub fn draw(screen: &Screen, area: Rect, buf: &mut Buffer, mode: ColorMode) {
    for y in 0..area.height {
        for x in 0..area.width {
            let pos = (area.x + x, area.y + y);
            let Some(target) = buf.cell_mut(pos) else {
                continue;
            };
            match screen.cell(y, x) {
                Some(cell) if cell.flags.has(CellFlags::SPACER) => {
                    // Drawn by the wide character on its left; ratatui skips it when diffing.
                    target.reset();
                    target.set_symbol("");
                }
                Some(cell) => {
                    let wide_clipped = cell.flags.has(CellFlags::WIDE) && x + 1 >= area.width;
                    target.set_symbol(if wide_clipped { " " } else { &cell.text });
                    target.set_style(cell_style(cell.fg, cell.bg, cell.flags, mode));
                }
                None => {
                    target.reset();
                }
            }
        }
    }
}
