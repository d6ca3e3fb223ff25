//! Hashing and signing exactly as Hypercore does it: BLAKE2b-256 leaf, parent and tree hashes,
//! the discovery key, the compat-mode signable and ed25519 signatures checked with `verify_strict`.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

/// Domain-separation prefixes (second-preimage protection), as in `hypercore-crypto`.
const LEAF_TYPE: u8 = 0;
const PARENT_TYPE: u8 = 1;
const ROOT_TYPE: u8 = 2;

/// A 32-byte BLAKE2b-256 digest.
pub type Hash = [u8; 32];

/// A 64-byte ed25519 signature.
pub type Signature = [u8; 64];

/// One merkle tree node: leaves (even indexes) hash a block, parents (odd) hash their children.
/// Defined here, with the hashes over it, so hashing needs nothing from the log; the log
/// re-exports it as `log::Node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub index: u64,
    /// Number of block bytes under this node.
    pub size: u64,
    pub hash: Hash,
}

impl Node {
    /// The leaf for block `seq`.
    pub fn leaf(seq: u64, data: &[u8]) -> Node {
        Node {
            index: 2 * seq,
            size: data.len() as u64,
            hash: leaf_hash(data),
        }
    }
}

/// Lowercase hex, as keys and hashes are written (`hex::encode` builds its string a character
/// at a time, several times slower; the crawler writes three per status it indexes).
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    // Cannot fail: the output is exactly twice the input, and hex digits are UTF-8.
    let _ = hex::encode_to_slice(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Writes 32 bytes as 64 hex digits without allocating.
pub(crate) fn write_hex32(f: &mut fmt::Formatter<'_>, bytes: &[u8; 32]) -> fmt::Result {
    let mut buf = [0u8; 64];
    hex::encode_to_slice(bytes, &mut buf).map_err(|_| fmt::Error)?;
    f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
}

fn blake2b() -> blake2b_simd::State {
    blake2b_simd::Params::new().hash_length(32).to_state()
}

fn finish(state: &blake2b_simd::State) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(state.finalize().as_bytes());
    out
}

/// Hash of one block: `BLAKE2b(0x00 || u64le(len) || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut s = blake2b();
    s.update(&[LEAF_TYPE]);
    s.update(&(data.len() as u64).to_le_bytes());
    s.update(data);
    finish(&s)
}

/// Hash of a parent node: `BLAKE2b(0x01 || u64le(size_a + size_b) || hash_left || hash_right)`,
/// where left is the child with the lower flat-tree index.
pub fn parent_hash(a: &Node, b: &Node) -> Hash {
    let (left, right) = if a.index > b.index { (b, a) } else { (a, b) };
    let mut s = blake2b();
    s.update(&[PARENT_TYPE]);
    s.update(&(left.size.wrapping_add(right.size)).to_le_bytes());
    s.update(&left.hash);
    s.update(&right.hash);
    finish(&s)
}

/// Hash of a whole tree from its roots: `BLAKE2b(0x02 || (hash || u64le(index) || u64le(size))*)`.
pub fn tree_hash(roots: &[Node]) -> Hash {
    let mut s = blake2b();
    s.update(&[ROOT_TYPE]);
    for r in roots {
        s.update(&r.hash);
        s.update(&r.index.to_le_bytes());
        s.update(&r.size.to_le_bytes());
    }
    finish(&s)
}

/// The discovery key: BLAKE2b-256 keyed with the public key over the bytes `hypercore`.
/// Peers announce and request this, so the public key itself never travels in the clear.
pub fn discovery_key(public_key: &[u8; 32]) -> Hash {
    let mut out = [0u8; 32];
    let digest = blake2b_simd::Params::new()
        .hash_length(32)
        .key(public_key)
        .hash(b"hypercore");
    out.copy_from_slice(digest.as_bytes());
    out
}

/// `crypto.namespace(name, count)` from `hypercore-crypto`: BLAKE2b(BLAKE2b(name) || id).
pub fn namespace(name: &str, id: u8) -> Hash {
    let ns = blake2b_simd::Params::new()
        .hash_length(32)
        .hash(name.as_bytes());
    let mut s = blake2b();
    s.update(ns.as_bytes());
    s.update(&[id]);
    finish(&s)
}

/// The `TREE` capability, first of the `hypercore` namespace (see `lib/caps.js`).
pub fn tree_namespace() -> Hash {
    namespace("hypercore", 0)
}

/// The bytes a compat-mode (legacy key) Hypercore signs: `TREE || tree_hash || u64le(length) || u64le(fork)`.
pub fn signable(tree_hash: &Hash, length: u64, fork: u64) -> [u8; 80] {
    let mut out = [0u8; 80];
    out[..32].copy_from_slice(&tree_namespace_cached());
    out[32..64].copy_from_slice(tree_hash);
    out[64..72].copy_from_slice(&length.to_le_bytes());
    out[72..80].copy_from_slice(&fork.to_le_bytes());
    out
}

fn tree_namespace_cached() -> Hash {
    static TREE: std::sync::OnceLock<Hash> = std::sync::OnceLock::new();
    *TREE.get_or_init(tree_namespace)
}

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{0} is not a valid ed25519 public key")]
    Invalid(String),
    #[error("{0} is a weak (small-order) ed25519 key; such keys are refused")]
    Weak(String),
    #[error("the secret key does not match public key {0}")]
    Mismatch(String),
}

/// Keys that passed [`PublicKey::from_bytes`] lately. The check decompresses a curve point
/// (about 10 µs), and readers meet the same few thousand keys over and over: every mention and
/// reply in a status names one. Only keys that passed are kept, in a direct-mapped table, so
/// a hostile key can at most evict another, never be taken for valid. The all-zero slot means
/// empty: those bytes encode a point of small order, which never passes.
struct CheckedKeys {
    slots: parking_lot::Mutex<Box<[[u8; 32]]>>,
}

/// Slots of [`CheckedKeys`] (32 bytes each).
const CHECKED_KEY_SLOTS: usize = 8192;

impl CheckedKeys {
    fn slot(bytes: &[u8; 32]) -> usize {
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize % CHECKED_KEY_SLOTS
    }

    fn contains(&self, bytes: &[u8; 32]) -> bool {
        // An empty slot holds zeros: they must not match the all-zero (weak) key.
        *bytes != [0u8; 32] && self.slots.lock()[Self::slot(bytes)] == *bytes
    }

    fn insert(&self, bytes: &[u8; 32]) {
        self.slots.lock()[Self::slot(bytes)] = *bytes;
    }

    fn new() -> CheckedKeys {
        CheckedKeys {
            slots: parking_lot::Mutex::new(vec![[0u8; 32]; CHECKED_KEY_SLOTS].into_boxed_slice()),
        }
    }

    /// [`PublicKey::from_bytes`], through the table.
    fn check(&self, bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        if self.contains(bytes) {
            return Ok(PublicKey { bytes: *bytes });
        }
        let vk =
            VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::Invalid(hex::encode(bytes)))?;
        if vk.is_weak() {
            return Err(KeyError::Weak(hex::encode(bytes)));
        }
        self.insert(bytes);
        Ok(PublicKey { bytes: *bytes })
    }
}

fn checked_keys() -> &'static CheckedKeys {
    static KEYS: std::sync::OnceLock<CheckedKeys> = std::sync::OnceLock::new();
    KEYS.get_or_init(CheckedKeys::new)
}

/// A verified, non-weak ed25519 public key: the identity of an archive.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey {
    bytes: [u8; 32],
}

impl PublicKey {
    /// Accepts a key only if it decodes as a curve point and is not of small order.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        checked_keys().check(bytes)
    }

    /// For bytes already checked by [`PublicKey::from_bytes`] (e.g. held in a model type).
    pub(crate) fn from_validated(bytes: [u8; 32]) -> Self {
        PublicKey { bytes }
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let mut bytes = [0u8; 32];
        if s.len() != 64 || hex::decode_to_slice(s, &mut bytes).is_err() {
            return Err(KeyError::Invalid(s.chars().take(80).collect()));
        }
        Self::from_bytes(&bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.bytes)
    }

    pub fn discovery_key(&self) -> Hash {
        discovery_key(&self.bytes)
    }

    /// Strict ed25519 verification (rejects non-canonical and small-order components).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        let Ok(vk) = VerifyingKey::from_bytes(&self.bytes) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        vk.verify_strict(message, &sig).is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex32(f, &self.bytes)
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", &self.to_hex()[..12])
    }
}

/// The owner's key pair. The secret half never leaves the data directory except through `export`.
#[derive(Clone)]
pub struct KeyPair {
    signing: SigningKey,
    public: PublicKey,
}

impl KeyPair {
    pub fn generate() -> Self {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        Self::from_signing(signing)
    }

    /// Derives the key pair from a 32-byte seed (libsodium's `crypto_sign_seed_keypair`).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_signing(SigningKey::from_bytes(seed))
    }

    fn from_signing(signing: SigningKey) -> Self {
        let public = PublicKey {
            bytes: signing.verifying_key().to_bytes(),
        };
        KeyPair { signing, public }
    }

    /// Accepts libsodium's 64-byte secret key layout (`seed || public key`) and checks that both halves agree.
    pub fn from_secret_key(secret: &[u8; 64]) -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&secret[..32]);
        let kp = Self::from_seed(&seed);
        if kp.public.bytes[..] != secret[32..] {
            return Err(KeyError::Mismatch(hex::encode(&secret[32..])));
        }
        PublicKey::from_bytes(&kp.public.bytes)?;
        Ok(kp)
    }

    /// libsodium's 64-byte secret key layout: `seed || public key`.
    pub fn secret_key(&self) -> [u8; 64] {
        self.signing.to_keypair_bytes()
    }

    pub fn public(&self) -> PublicKey {
        self.public
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({:?})", self.public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_key_is_refused() {
        let mut weak = [0u8; 32];
        weak[0] = 1;
        assert!(matches!(
            PublicKey::from_bytes(&weak),
            Err(KeyError::Weak(_))
        ));
    }

    #[test]
    fn checked_keys_remember_only_valid_keys() {
        let keys = CheckedKeys::new();
        let valid = *KeyPair::generate().public().as_bytes();
        assert!(keys.check(&valid).is_ok());
        assert!(keys.contains(&valid));
        assert!(keys.check(&valid).is_ok(), "a remembered key");
        // Encodings in the same slot: about half of them are points.
        let same_slot = |valid_point: bool| {
            (1u8..=255)
                .map(|b| {
                    let mut k = valid;
                    k[30] ^= b;
                    k
                })
                .find(|k| VerifyingKey::from_bytes(k).is_ok_and(|vk| !vk.is_weak()) == valid_point)
                .expect("both kinds among 255 encodings")
        };
        // An invalid key in the same slot is checked, refused, and does not evict the valid one.
        assert!(keys.check(&same_slot(false)).is_err());
        assert!(keys.contains(&valid));
        // The empty slot's pattern is not a key.
        assert!(keys.check(&[0u8; 32]).is_err());
        assert!(!keys.contains(&[0u8; 32]));
        // Another valid key in the same slot takes it over; the first is then checked afresh.
        let other = same_slot(true);
        assert!(keys.check(&other).is_ok());
        assert!(!keys.contains(&valid));
        assert!(keys.check(&valid).is_ok());
        assert!(PublicKey::from_bytes(&valid).is_ok());
    }

    #[test]
    fn sign_verify_round_trip() {
        let kp = KeyPair::generate();
        let sig = kp.sign(b"hello");
        assert!(kp.public().verify(b"hello", &sig));
        assert!(!kp.public().verify(b"hellO", &sig));
        let back = KeyPair::from_secret_key(&kp.secret_key()).unwrap();
        assert_eq!(back.public(), kp.public());
    }
}
