//! The log header: two fixed slots at the start of the `tree` file, written alternately, each
//! with a CRC. A commit is durable once its slot is; a torn slot leaves the other one intact.

use crate::crypto::Signature;

/// Bytes reserved for each slot (one filesystem block, so a torn slot never spans both).
pub const SLOT_BYTES: u64 = 4096;
/// Tree nodes start after the two slots.
pub const NODES_OFFSET: u64 = 2 * SLOT_BYTES;
/// Bytes per stored tree node: 32-byte hash then u64le size.
pub const NODE_BYTES: u64 = 40;

const MAGIC: &[u8; 8] = b"FRTLOG\x00\x01";
/// Bytes of an encoded header, CRC included (the rest of the slot is zero).
pub const ENCODED_LEN: usize = 8 + 8 + 32 + 8 * 5 + 1 + 64 + 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Increases by one per commit; the slot is `generation % 2`.
    pub generation: u64,
    pub key: [u8; 32],
    pub fork: u64,
    /// Signed length of the tree.
    pub length: u64,
    /// Every block below this is stored.
    pub contiguous: u64,
    pub byte_length: u64,
    /// Length before this commit. Blocks `prev_length..length` were synced together with this
    /// header, so open checks them against it before trusting it (see `Log::open`).
    pub prev_length: u64,
    pub signature: Option<Signature>,
}

/// What one slot holds.
#[derive(Debug)]
pub enum Slot {
    /// Never written (all zero).
    Empty,
    /// Bytes are there but do not form a valid header (torn or corrupt).
    Invalid(String),
    Valid(Header),
}

impl Header {
    pub fn slot_offset(&self) -> u64 {
        (self.generation % 2) * SLOT_BYTES
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENCODED_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.fork.to_le_bytes());
        out.extend_from_slice(&self.length.to_le_bytes());
        out.extend_from_slice(&self.contiguous.to_le_bytes());
        out.extend_from_slice(&self.byte_length.to_le_bytes());
        out.extend_from_slice(&self.prev_length.to_le_bytes());
        match &self.signature {
            Some(sig) => {
                out.push(1);
                out.extend_from_slice(sig);
            }
            None => {
                out.push(0);
                out.extend_from_slice(&[0u8; 64]);
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Slot {
        if bytes.len() < ENCODED_LEN || bytes[..ENCODED_LEN].iter().all(|b| *b == 0) {
            return if bytes.iter().all(|b| *b == 0) {
                Slot::Empty
            } else {
                Slot::Invalid("short header".into())
            };
        }
        let body = &bytes[..ENCODED_LEN - 4];
        let crc = u32::from_le_bytes([
            bytes[ENCODED_LEN - 4],
            bytes[ENCODED_LEN - 3],
            bytes[ENCODED_LEN - 2],
            bytes[ENCODED_LEN - 1],
        ]);
        if &body[..8] != MAGIC {
            return Slot::Invalid("bad magic".into());
        }
        if crc32c::crc32c(body) != crc {
            return Slot::Invalid("header checksum mismatch".into());
        }
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&body[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let mut key = [0u8; 32];
        key.copy_from_slice(&body[16..48]);
        let signature = match body[88] {
            0 => None,
            1 => {
                let mut s = [0u8; 64];
                s.copy_from_slice(&body[89..153]);
                Some(s)
            }
            other => return Slot::Invalid(format!("bad signature flag {other}")),
        };
        let h = Header {
            generation: u64_at(8),
            key,
            fork: u64_at(48),
            length: u64_at(56),
            contiguous: u64_at(64),
            byte_length: u64_at(72),
            prev_length: u64_at(80),
            signature,
        };
        // Generation and fork grow by one per commit or truncate; values near u64::MAX only
        // come from damaged or hostile files, and refusing them keeps `+ 1` safe.
        if h.generation >= 1 << 62 || h.fork >= 1 << 62 {
            return Slot::Invalid("generation or fork out of range".into());
        }
        if h.contiguous > h.length
            || h.prev_length > h.length
            || h.length > crate::log::tree::MAX_LENGTH
        {
            return Slot::Invalid("inconsistent lengths".into());
        }
        Slot::Valid(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_detects_flips() {
        let h = Header {
            generation: 7,
            key: [3; 32],
            fork: 1,
            length: 10,
            contiguous: 10,
            byte_length: 300,
            prev_length: 7,
            signature: Some([9; 64]),
        };
        let bytes = h.encode();
        assert!(matches!(Header::decode(&bytes), Slot::Valid(ref x) if *x == h));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(
                !matches!(Header::decode(&b), Slot::Valid(_)),
                "flip at {i} not detected"
            );
        }
        assert!(matches!(Header::decode(&[0u8; 4096]), Slot::Empty));
    }
}
