//! Archive keys: the ed25519 public key that names an archive, refused at the edge when it could
//! never sign honestly (weak, small-order keys accept one signature for many messages).

use std::fmt;
use std::str::FromStr;

use super::error::{shown, ModelError};

/// The 32-byte ed25519 public key of an archive, written as 64 lowercase hex characters.
///
/// Every `ArchiveKey` is a valid curve point and not one of the small-order ("weak") keys, which
/// JS Hypercore (libsodium) also refuses.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArchiveKey([u8; 32]);

impl ArchiveKey {
    /// Checks raw key bytes, for example those of a freshly generated signing key.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<ArchiveKey, ModelError> {
        let refuse = |reason: &str| ModelError::InvalidKey {
            value: shown(&hex::encode(bytes)),
            reason: reason.to_owned(),
        };
        // One check for every key that enters: the log's `PublicKey` decides.
        crate::crypto::PublicKey::from_bytes(&bytes).map_err(|e| match e {
            crate::crypto::KeyError::Weak(_) => {
                refuse("it is a weak (small-order) ed25519 key, which cannot sign securely")
            }
            _ => refuse("it is not a point on the ed25519 curve"),
        })?;
        Ok(ArchiveKey(bytes))
    }

    /// The raw key bytes, to build an `ed25519_dalek::VerifyingKey`.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<crate::crypto::PublicKey> for ArchiveKey {
    fn from(k: crate::crypto::PublicKey) -> ArchiveKey {
        ArchiveKey(*k.as_bytes())
    }
}

impl From<ArchiveKey> for crate::crypto::PublicKey {
    fn from(k: ArchiveKey) -> crate::crypto::PublicKey {
        crate::crypto::PublicKey::from_validated(k.0)
    }
}

impl FromStr for ArchiveKey {
    type Err = ModelError;

    /// Parses 64 hex characters, upper or lower case.
    fn from_str(s: &str) -> Result<ArchiveKey, ModelError> {
        let refuse = |reason: String| ModelError::InvalidKey {
            value: shown(s),
            reason,
        };
        if s.len() != 64 {
            return Err(refuse(format!(
                "expected 64 hex characters, found {} bytes",
                s.len()
            )));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes)
            .map_err(|_| refuse("expected 64 hex characters (0-9, a-f)".to_owned()))?;
        ArchiveKey::from_bytes(bytes)
    }
}

impl fmt::Display for ArchiveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::crypto::write_hex32(f, &self.0)
    }
}

impl fmt::Debug for ArchiveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArchiveKey({self})")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;

    /// A valid key derived from a one-byte seed, for tests across the model.
    pub(crate) fn key(seed: u8) -> ArchiveKey {
        ArchiveKey::from_bytes(
            SigningKey::from_bytes(&[seed; 32])
                .verifying_key()
                .to_bytes(),
        )
        .unwrap()
    }

    pub(crate) const WEAK: &str =
        "0100000000000000000000000000000000000000000000000000000000000000";

    fn check(input: &str, expected: Result<&str, &str>) {
        match (input.parse::<ArchiveKey>(), expected) {
            (Ok(key), Ok(want)) => assert_eq!(key.to_string(), want),
            (Err(err), Err(fragment)) => {
                let message = err.to_string();
                assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
            }
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parses_either_case_and_displays_lowercase() {
        let hex = key(1).to_string();
        check(&hex, Ok(&hex));
        check(&hex.to_uppercase(), Ok(&hex));
        assert_eq!(hex.len(), 64);
        assert!(hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }

    #[test]
    fn refuses_weak_keys() {
        check(
            WEAK,
            Err("is not a valid archive key: it is a weak (small-order) ed25519 key"),
        );
        // The identity point written another way, and the all-zero encoding (small order too).
        check(&"00".repeat(32), Err("not a valid archive key"));
        // A point of order 8 (from the ed25519 small-order list).
        check(
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
            Err("not a valid archive key"),
        );
    }

    #[test]
    fn refuses_wrong_lengths_and_characters() {
        check("", Err("expected 64 hex characters, found 0 bytes"));
        check(&"a".repeat(63), Err("found 63 bytes"));
        check(&"a".repeat(65), Err("found 65 bytes"));
        check(
            &"g".repeat(64),
            Err("expected 64 hex characters (0-9, a-f)"),
        );
        check(
            &format!("{}é", "a".repeat(62)),
            Err("expected 64 hex characters"),
        );
        check(&"a".repeat(1_000_000), Err("found 1000000 bytes"));
    }
}
