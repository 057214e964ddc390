//! Conflict markers: a byte-preserving parser for merge, diff3 and zdiff3 styles, and a resolver with undo and
//! redo. Pure: no I/O, and no input makes it panic.

mod parse;
mod resolve;

pub use parse::{parse, ConflictRegion, ParseError, Parsed, Segment};
pub use resolve::{Choice, Resolver, WholeFile};

/// Git's default `conflict-marker-size`.
pub const DEFAULT_MARKER_SIZE: usize = 7;
