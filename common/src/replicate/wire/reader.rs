//! Reading and writing compact-encoding (`compact-encoding` does the varints) with a bound on
//! everything a peer's length prefix could make us allocate.

use compact_encoding::CompactEncoding;

use super::{bad, WireError};
use crate::log::{self, proof::MAX_PROOF_NODES, Node};

/// The smallest encoded tree node: two one-byte uints and a 32-byte hash.
const MIN_NODE_BYTES: usize = 34;

/// Compact-encoding reader with bounds on everything it allocates.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(super) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(bad(format!(
                "message ends {} bytes early",
                n - self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Everything not read yet.
    pub(super) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    pub(super) fn uint(&mut self) -> Result<u64, WireError> {
        let (n, rest) = u64::decode(&self.buf[self.pos..])
            .map_err(|_| bad(format!("message ends inside a number at byte {}", self.pos)))?;
        self.pos = self.buf.len() - rest.len();
        Ok(n)
    }

    /// A length prefix of at most `max` items of at least `unit` bytes each, refused before
    /// anything is allocated when the rest of the message cannot hold that many.
    pub(super) fn len(&mut self, max: usize, unit: usize) -> Result<usize, WireError> {
        let n = self.uint()?;
        if n > max as u64 || (n as usize).saturating_mul(unit) > self.remaining() {
            return Err(bad(format!("length {n} exceeds the limit or the message")));
        }
        Ok(n as usize)
    }

    pub(super) fn buffer(&mut self, max: usize) -> Result<&'a [u8], WireError> {
        let n = self.len(max, 1)?;
        self.take(n)
    }

    pub(super) fn string(&mut self, max: usize) -> Result<String, WireError> {
        let b = self.buffer(max)?;
        String::from_utf8(b.to_vec()).map_err(|_| bad("string is not UTF-8"))
    }

    /// A list of tree nodes, as proofs carry them.
    pub(super) fn nodes(&mut self) -> Result<Vec<Node>, WireError> {
        let n = self.len(MAX_PROOF_NODES, MIN_NODE_BYTES)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let index = self.uint()?;
            // No tree we accept has nodes past 2 * MAX_LENGTH, and the wire's node type computes
            // parents with `flat-tree`, which overflows (a panic in debug builds) near 2^64
            // (found by the wire_decode fuzz target, see common/fuzz/regressions/wire_decode).
            if index >= 2 * log::MAX_LENGTH {
                return Err(bad(format!("tree node index {index} is out of range")));
            }
            let size = self.uint()?;
            let mut hash = [0u8; 32];
            hash.copy_from_slice(self.take(32)?);
            out.push(Node { index, size, hash });
        }
        Ok(out)
    }
}

/// Appends `n` as a compact-encoding uint.
pub(super) fn push_uint(out: &mut Vec<u8>, n: u64) {
    let at = out.len();
    out.resize(at + compact_encoding::encoded_size_var_u64(n), 0);
    // Cannot fail: the room was made for exactly this encoding just above.
    let _ = compact_encoding::encode_var_u64(n, &mut out[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uints_round_trip_at_every_width() {
        for n in [
            0,
            0xfc,
            0xfd,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            1 << 32,
            u64::MAX,
        ] {
            let mut out = vec![9];
            push_uint(&mut out, n);
            let mut r = Reader::new(&out[1..]);
            assert_eq!(r.uint().unwrap(), n);
            assert!(r.is_empty());
            // Cut short anywhere: an error, never a panic.
            for cut in 1..out.len() - 1 {
                assert!(
                    Reader::new(&out[1..1 + cut]).uint().is_err(),
                    "{n} cut at {cut}"
                );
            }
        }
    }
}
