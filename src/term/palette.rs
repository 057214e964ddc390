//! The xterm 256-colour palette: answers colour queries and maps true colour to the nearest indexed colour on
//! terminals without true colour.

/// The RGB value xterm uses for an indexed colour.
pub fn xterm_rgb(index: u8) -> (u8, u8, u8) {
    const BASE: [(u8, u8, u8); 16] = [
        (0, 0, 0),
        (205, 0, 0),
        (0, 205, 0),
        (205, 205, 0),
        (0, 0, 238),
        (205, 0, 205),
        (0, 205, 205),
        (229, 229, 229),
        (127, 127, 127),
        (255, 0, 0),
        (0, 255, 0),
        (255, 255, 0),
        (92, 92, 255),
        (255, 0, 255),
        (0, 255, 255),
        (255, 255, 255),
    ];
    match index {
        0..=15 => BASE[index as usize],
        16..=231 => {
            let i = index - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            (level(i / 36), level((i / 6) % 6), level(i % 6))
        }
        _ => {
            let v = 8 + (index - 232) * 10;
            (v, v, v)
        }
    }
}

/// The indexed colour (16..=255, the stable part of the palette) nearest to an RGB value.
pub fn nearest_indexed(r: u8, g: u8, b: u8) -> u8 {
    let dist = |(r2, g2, b2): (u8, u8, u8)| {
        let d = |a: u8, b: u8| (a as i32 - b as i32).pow(2);
        d(r, r2) + d(g, g2) + d(b, b2)
    };
    (16..=255u8).min_by_key(|&i| dist(xterm_rgb(i))).unwrap_or(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cube_and_greys_round_trip() {
        for i in 16..=255u8 {
            let (r, g, b) = xterm_rgb(i);
            assert_eq!(xterm_rgb(nearest_indexed(r, g, b)), (r, g, b), "index {i}");
        }
    }

    #[test]
    fn nearest_of_off_palette_colour() {
        // Pure-ish orange lands on the 256-colour orange, not on a grey.
        assert_eq!(nearest_indexed(255, 135, 0), 208);
        assert_eq!(nearest_indexed(250, 250, 250), 231);
    }
}
