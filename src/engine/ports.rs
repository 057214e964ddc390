//! A deterministic, collision-checked block of ports per agent, so parallel dev servers do not collide.

use std::net::TcpListener;

pub const BLOCK: u16 = 20;
const FIRST: u16 = 20000;
const BLOCKS: u16 = 2000;

fn hash(name: &str) -> u32 {
    // FNV-1a: stable across runs and platforms, unlike std's hasher.
    name.bytes().fold(0x811c9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x01000193))
}

/// The block's first port for `name`, skipping blocks already `taken` by other agents and blocks whose first
/// port is in use on this machine.
pub fn port_base(name: &str, taken: &[u16]) -> u16 {
    let start = (hash(name) % BLOCKS as u32) as u16;
    for i in 0..BLOCKS {
        let base = FIRST + ((start + i) % BLOCKS) * BLOCK;
        if taken.contains(&base) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", base)).is_ok() {
            return base;
        }
    }
    FIRST + start * BLOCK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_collision_checked() {
        let a = port_base("planner", &[]);
        assert_eq!(a, port_base("planner", &[]));
        assert_eq!((a - FIRST) % BLOCK, 0);
        let b = port_base("planner", &[a]);
        assert_ne!(a, b);
        // A port in use pushes the block along.
        let held = TcpListener::bind(("127.0.0.1", a));
        if held.is_ok() {
            assert_ne!(port_base("planner", &[]), a);
        }
    }
}
