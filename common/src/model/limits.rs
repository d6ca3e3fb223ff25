//! The size limits of the data model in one place, so readers, writers, the crawler and the docs
//! agree on every bound a hostile archive runs into.
//!
//! Each limit is checked before the work it bounds (a length before a parse, a count before the
//! items are read), so an oversized input costs no more than reading its length.

/// Largest encoded log entry, in bytes; [`Entry::decode`](super::Entry::decode) refuses anything
/// longer before parsing it.
pub const MAX_ENTRY_BYTES: usize = 1024 * 1024;

/// Deepest nesting of JSON arrays and objects in an entry, counting the entry object itself as 1.
pub const MAX_JSON_DEPTH: usize = 32;

/// Longest `hyper://` or `https://` URL, in bytes.
pub const MAX_URL_BYTES: usize = 512;

/// Longest file path, in bytes.
pub const MAX_PATH_BYTES: usize = 256;

/// Most segments in a file path.
pub const MAX_PATH_SEGMENTS: usize = 16;

/// Longest segment of a file path, in bytes.
pub const MAX_SEGMENT_BYTES: usize = 128;

/// Longest profile name (after trimming) and mention name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Longest profile bio, in characters.
pub const MAX_BIO_CHARS: usize = 512;

/// Most archives in `/follows.json`.
///
/// Note that 10,000 root URLs take about 760 KB of JSON, more than [`MAX_ENTRY_BYTES`] allows,
/// so in practice the entry size caps a follows file at about 850 URLs.
pub const MAX_FOLLOWS: usize = 10_000;

/// Longest status text, in Unicode scalar values.
pub const MAX_STATUS_CHARS: usize = 1000;

/// Longest status text, in UTF-8 bytes.
pub const MAX_STATUS_BYTES: usize = 4000;

/// Most mentions in one status.
pub const MAX_MENTIONS: usize = 50;

/// Most tags in one status.
pub const MAX_TAGS: usize = 20;

/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;

/// Longest language tag, in characters.
pub const MAX_LANG_CHARS: usize = 35;

/// Longest hosting request name, in characters.
pub const MAX_HOSTING_NAME_CHARS: usize = 64;

/// Most `@name` occurrences [`extract_mentions`](super::extract_mentions) reports; no valid
/// status text can hold more, since each takes at least two of its 1000 characters.
pub const MAX_MENTION_SPANS: usize = MAX_STATUS_CHARS / 2;

/// Largest integer a JavaScript reader holds exactly (`Number.MAX_SAFE_INTEGER`); sequence numbers
/// above it would be read differently by the JS app.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
