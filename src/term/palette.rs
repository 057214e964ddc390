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

fn distance((r, g, b): (u8, u8, u8), (r2, g2, b2): (u8, u8, u8)) -> i32 {
    let d = |a: u8, b: u8| (a as i32 - b as i32).pow(2);
    d(r, r2) + d(g, g2) + d(b, b2)
}

/// The indexed colour (16..=255, the stable part of the palette) nearest to an RGB value; of equally near ones
/// the lowest index. Computed, not searched: every cell of a true-colour screen drawn on a 256-colour terminal
/// comes through here (a search of the 240 colours was 65 % of a workbench's time).
pub fn nearest_indexed(r: u8, g: u8, b: u8) -> u8 {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    // Squared distance adds up per channel: the nearest cube colour takes the nearest level of each (the lower
    // one on a tie, which is also the lower index).
    let level = |v: u8| (0..6).min_by_key(|&i| (v as i32 - LEVELS[i] as i32).abs()).unwrap_or(0) as u8;
    let cube = 16 + 36 * level(r) + 6 * level(g) + level(b);
    // The nearest grey is next to the mean; its two neighbours decide ties and rounding.
    let mean = (r as i32 + g as i32 + b as i32) / 3;
    let step = ((mean - 8) / 10).clamp(0, 23);
    let grey = ((step - 1).max(0)..=(step + 1).min(23))
        .map(|k| 232 + k as u8)
        .min_by_key(|&i| distance((r, g, b), xterm_rgb(i)))
        .unwrap_or(232);
    // The cube comes first in the palette, so it wins a tie.
    if distance((r, g, b), xterm_rgb(grey)) < distance((r, g, b), xterm_rgb(cube)) {
        grey
    } else {
        cube
    }
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

    fn searched(r: u8, g: u8, b: u8) -> u8 {
        (16..=255u8).min_by_key(|&i| distance((r, g, b), xterm_rgb(i))).unwrap_or(16)
    }

    #[test]
    fn the_computed_nearest_colour_is_the_searched_one() {
        // Every value of each channel against a spread of the other two, greys included.
        for v in 0..=255u8 {
            for o in (0..=255u8).step_by(17) {
                for (r, g, b) in [(v, o, o), (o, v, o), (o, o, v), (v, v, o), (v, v, v), (v, o, 255 - o)] {
                    assert_eq!(nearest_indexed(r, g, b), searched(r, g, b), "{r},{g},{b}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_colour_maps_as_the_search_does(r: u8, g: u8, b: u8) {
            proptest::prop_assert_eq!(nearest_indexed(r, g, b), searched(r, g, b));
        }
    }

    #[test]
    fn nearest_of_off_palette_colour() {
        // Pure-ish orange lands on the 256-colour orange, not on a grey.
        assert_eq!(nearest_indexed(255, 135, 0), 208);
        assert_eq!(nearest_indexed(250, 250, 250), 231);
    }
}
