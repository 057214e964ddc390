//! Frames on a client's byte stream: a 4-byte little-endian length, a 1-byte kind, the payload. A frame longer
//! than the cap or of an unknown kind is an error for that stream (the server drops the client, never itself).

use thiserror::Error;

/// The largest frame either side accepts: a full 500x200 screen is well under 1 MiB in the damage encoding.
pub const MAX_FRAME: usize = 4 << 20;
/// What a reader keeps of its buffer between frames.
const KEEP: usize = 64 << 10;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// JSON: the handshake, requests, replies and events other than screens.
    Json = 1,
    /// A screen's damage in the binary encoding of `protocol::damage`.
    Damage = 2,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Json),
            2 => Some(Kind::Damage),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("a frame of {len} bytes is more than the {max} allowed")]
    TooLarge { len: usize, max: usize },
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("an empty frame (no kind byte)")]
    Empty,
}

/// One frame's bytes, ready to write.
pub fn encode(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 5);
    out.extend_from_slice(&((payload.len() + 1) as u32).to_le_bytes());
    out.push(kind as u8);
    out.extend_from_slice(payload);
    out
}

/// Collects a stream's bytes and hands out whole frames; after an error the stream is unusable.
#[derive(Debug, Default)]
pub struct Reader {
    buf: Vec<u8>,
    /// Where the unread bytes start (consumed frames are dropped in bulk, not one memmove each).
    start: usize,
}

impl Reader {
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The memory it holds: what a half-sent frame costs the side that reads it.
    pub fn held(&self) -> usize {
        self.buf.capacity()
    }

    /// The next whole frame, `None` when more bytes are needed. The length is checked before the payload
    /// arrives, so an oversized frame is refused without buffering it.
    pub fn next_frame(&mut self) -> Result<Option<(Kind, Vec<u8>)>, FrameError> {
        let rest = &self.buf[self.start..];
        let Some(header) = rest.get(..4) else { return Ok(None) };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge { len, max: MAX_FRAME });
        }
        if len == 0 {
            return Err(FrameError::Empty);
        }
        let Some(body) = rest.get(4..4 + len) else { return Ok(None) };
        let kind = Kind::from_byte(body[0]).ok_or(FrameError::UnknownKind(body[0]))?;
        let payload = body[1..].to_vec();
        self.start += 4 + len;
        if self.start == self.buf.len() {
            // Everything read: a large frame's room is given back rather than held for the next small one.
            self.buf.clear();
            self.start = 0;
            self.buf.shrink_to(KEEP);
        }
        Ok(Some((kind, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_come_back_whole_across_any_split() {
        let mut bytes = encode(Kind::Json, b"{\"hello\":1}");
        bytes.extend(encode(Kind::Damage, &[1, 2, 3]));
        let mut r = Reader::default();
        let mut got = Vec::new();
        for b in &bytes {
            r.push(std::slice::from_ref(b));
            while let Some(f) = r.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, vec![(Kind::Json, b"{\"hello\":1}".to_vec()), (Kind::Damage, vec![1, 2, 3])]);
    }

    #[test]
    fn oversized_unknown_and_empty_frames_are_errors() {
        let mut r = Reader::default();
        r.push(&((MAX_FRAME + 1) as u32).to_le_bytes());
        assert!(matches!(r.next_frame(), Err(FrameError::TooLarge { .. })));
        let mut r = Reader::default();
        r.push(&[1, 0, 0, 0, 9]);
        assert_eq!(r.next_frame(), Err(FrameError::UnknownKind(9)));
        let mut r = Reader::default();
        r.push(&[0, 0, 0, 0]);
        assert_eq!(r.next_frame(), Err(FrameError::Empty));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut r = Reader::default();
            for c in chunks {
                r.push(&c);
                while let Ok(Some(_)) = r.next_frame() {}
            }
        }

        #[test]
        fn encoded_frames_round_trip(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8), cut in 0usize..4000) {
            let bytes: Vec<u8> = payloads.iter().flat_map(|p| encode(Kind::Damage, p)).collect();
            let cut = cut.min(bytes.len());
            let mut r = Reader::default();
            let mut got = Vec::new();
            for part in [&bytes[..cut], &bytes[cut..]] {
                r.push(part);
                while let Some((_, p)) = r.next_frame().unwrap() {
                    got.push(p);
                }
            }
            prop_assert_eq!(got, payloads);
        }
    }
}
