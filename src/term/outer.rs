//! Questions to the operator's own terminal at start: its foreground, background and base colours (OSC 10, 11
//! and 4), so agents that ask muster get the real answer, not a guess (codex paints its text from the
//! foreground; gemini derives its highlight from the background). A device-attributes query goes last: every
//! terminal answers it, so its answer means every other answer is in, and no timeout has to be waited out.

use std::io::Write;
use std::time::{Duration, Instant};

use super::Palette;

/// How long the terminal has to answer.
const ANSWER_WITHIN: Duration = Duration::from_millis(300);

fn hex_channel(s: &str) -> Option<u8> {
    // 1 to 4 hex digits scaled to 8 bits, as XParseColor does.
    let v = u32::from_str_radix(s, 16).ok()?;
    let max = (1u32 << (4 * s.len() as u32)) - 1;
    (!s.is_empty() && s.len() <= 4).then(|| ((v * 255 + max / 2) / max) as u8)
}

/// `rgb:RRRR/GGGG/BBBB` (or `#rrggbb`) as RGB.
fn parse_rgb(spec: &str) -> Option<(u8, u8, u8)> {
    if let Some(hex) = spec.strip_prefix('#').filter(|h| h.len() == 6) {
        let c = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        return Some((c(0)?, c(2)?, c(4)?));
    }
    let mut parts = spec.strip_prefix("rgb:")?.split('/');
    let (r, g, b) = (parts.next()?, parts.next()?, parts.next()?);
    Some((hex_channel(r)?, hex_channel(g)?, hex_channel(b)?))
}

/// What the terminal's answers say, over `base`; and whether the closing device-attributes answer came.
pub fn parse_answers(bytes: &[u8], base: Palette) -> (Palette, bool) {
    let mut palette = base;
    let text = String::from_utf8_lossy(bytes);
    for osc in text.split("\x1b]").skip(1) {
        let body = osc.split(['\x07', '\x1b']).next().unwrap_or("");
        let mut fields = body.split(';');
        match (fields.next(), fields.next(), fields.next()) {
            (Some("10"), Some(spec), _) => palette.foreground = parse_rgb(spec).unwrap_or(palette.foreground),
            (Some("11"), Some(spec), _) => palette.background = parse_rgb(spec).unwrap_or(palette.background),
            (Some("12"), Some(spec), _) => palette.cursor = parse_rgb(spec).or(palette.cursor),
            (Some("4"), Some(i), Some(spec)) => {
                if let (Ok(i @ 0..=15), Some(rgb)) = (i.parse::<usize>(), parse_rgb(spec)) {
                    palette.base[i] = Some(rgb);
                }
            }
            _ => {}
        }
    }
    let done = text.contains("\x1b[?")
        && text
            .split("\x1b[?")
            .skip(1)
            .any(|r| r.split_once('c').is_some_and(|(p, _)| p.bytes().all(|b| b.is_ascii_digit() || b == b';')));
    (palette, done)
}

/// Ask the terminal on stdin/stdout (already in raw mode) for its colours; `fallback` where it does not say.
pub fn query_palette(fallback: Palette) -> Palette {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return fallback;
    }
    let mut query = String::from("\x1b]10;?\x1b\\\x1b]11;?\x1b\\\x1b]12;?\x1b\\");
    for i in 0..16 {
        query.push_str(&format!("\x1b]4;{i};?\x1b\\"));
    }
    query.push_str("\x1b[c");
    let mut out = std::io::stdout();
    if out.write_all(query.as_bytes()).and_then(|_| out.flush()).is_err() {
        return fallback;
    }
    let stdin = std::io::stdin();
    let fd = rustix::fd::AsFd::as_fd(&stdin);
    let deadline = Instant::now() + ANSWER_WITHIN;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let timeout = rustix::event::Timespec { tv_sec: 0, tv_nsec: left.as_nanos().min(999_999_999) as i64 };
        let mut fds = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(_) => break,
            Ok(_) => match rustix::io::read(fd, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            },
        }
        if parse_answers(&got, fallback).1 {
            break;
        }
    }
    parse_answers(&got, fallback).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_set_colours_and_the_attributes_answer_ends_them() {
        let answers =
            b"\x1b]10;rgb:1a1a/1a1a/1a1a\x1b\\\x1b]11;rgb:ffff/fefe/f0f0\x07\x1b]4;1;rgb:cd/00/00\x1b\\\x1b[?62;22c";
        let (p, done) = parse_answers(answers, Palette::default());
        assert!(done);
        assert_eq!(p.foreground, (0x1a, 0x1a, 0x1a));
        assert_eq!(p.background, (0xff, 0xfe, 0xf0));
        assert_eq!(p.base[1], Some((0xcd, 0, 0)));
        assert_eq!(p.base[2], None);
    }

    #[test]
    fn a_terminal_that_does_not_answer_leaves_the_fallback() {
        let fallback = Palette { foreground: (1, 2, 3), ..Palette::default() };
        let (p, done) = parse_answers(b"\x1b[?1;2c", fallback);
        assert!(done);
        assert_eq!(p, fallback);
        let (p, done) = parse_answers(b"\x1b]11;rgb:zz/00/00\x07", fallback);
        assert!(!done);
        assert_eq!(p, fallback, "a malformed answer is ignored");
    }

    #[test]
    fn channels_of_any_width_scale_to_eight_bits() {
        assert_eq!(parse_rgb("rgb:f/0/8"), Some((255, 0, 136)));
        assert_eq!(parse_rgb("rgb:ffff/8000/0000"), Some((255, 128, 0)));
        assert_eq!(parse_rgb("#102030"), Some((16, 32, 48)));
        assert_eq!(parse_rgb("rgb:fffff/0/0"), None);
        assert_eq!(parse_rgb("nonsense"), None);
    }
}
