//! Cells as text with their colours and styles as SGR escape sequences (`muster read --ansi`).

use crate::protocol::screen::{CellColor, CellFlags, ScreenCell};

/// One row of cells as a line: SGR only where the style changes, reset at its end, trailing blanks dropped.
pub fn line(cells: &[ScreenCell]) -> String {
    let end = cells.iter().rposition(|c| *c != ScreenCell::default()).map_or(0, |i| i + 1);
    let mut out = String::new();
    let mut style: Option<(CellColor, CellColor, CellFlags)> = None;
    for c in &cells[..end] {
        if c.flags.has(CellFlags::SPACER) {
            continue;
        }
        let now = (c.fg, c.bg, CellFlags(c.flags.0 & !(CellFlags::WIDE | CellFlags::SPACER)));
        if style != Some(now) {
            out.push_str(&sgr(now.0, now.1, now.2));
            style = Some(now);
        }
        out.push_str(&c.text);
    }
    if style.is_some() {
        out.push_str("\x1b[0m");
    }
    out
}

fn sgr(fg: CellColor, bg: CellColor, flags: CellFlags) -> String {
    let mut parts = vec!["0".to_string()];
    for (bit, code) in [
        (CellFlags::BOLD, "1"),
        (CellFlags::DIM, "2"),
        (CellFlags::ITALIC, "3"),
        (CellFlags::UNDERLINE, "4"),
        (CellFlags::INVERSE, "7"),
        (CellFlags::HIDDEN, "8"),
        (CellFlags::STRIKE, "9"),
    ] {
        if flags.has(bit) {
            parts.push(code.into());
        }
    }
    for (color, base) in [(fg, 30u8), (bg, 40u8)] {
        match color {
            CellColor::Default => {}
            CellColor::Indexed(i) if i < 8 => parts.push((base + i).to_string()),
            CellColor::Indexed(i) if i < 16 => parts.push((base + 60 + i - 8).to_string()),
            CellColor::Indexed(i) => parts.push(format!("{};5;{i}", base + 8)),
            CellColor::Rgb(r, g, b) => parts.push(format!("{};2;{r};{g};{b}", base + 8)),
        }
    }
    format!("\x1b[{}m", parts.join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_become_sgr_only_where_they_change() {
        let cell =
            |t: &str, fg, flags| ScreenCell { text: t.into(), fg, bg: CellColor::Default, flags: CellFlags(flags) };
        let row = vec![
            cell("a", CellColor::Indexed(1), CellFlags::BOLD),
            cell("b", CellColor::Indexed(1), CellFlags::BOLD),
            cell("c", CellColor::Rgb(1, 2, 3), 0),
            ScreenCell::default(),
        ];
        assert_eq!(line(&row), "\x1b[0;1;31mab\x1b[0;38;2;1;2;3mc\x1b[0m");
        assert_eq!(line(&[ScreenCell::default()]), "");
    }
}
