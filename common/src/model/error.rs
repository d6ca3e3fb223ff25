//! The one error type of the data model, so callers can match on what was refused and show the
//! message to a person as it is.

use thiserror::Error;

/// Why a value was refused.
///
/// Messages are lowercase, name the offending value and, where it helps, say what to do. Values
/// quoted in a message come from untrusted input, so they are shortened and their control and bidi
/// characters escaped (see [`ModelError`]'s `value` fields): a message is safe to log or print.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Not 64 hex characters, or not an acceptable ed25519 public key.
    #[error("{value} is not a valid archive key: {reason}")]
    InvalidKey { value: String, reason: String },
    /// Not a strict `hyper://<key>/<path>` URL.
    #[error("{value} is not a valid archive url: {reason}")]
    InvalidUrl { value: String, reason: String },
    /// Not an absolute, safe file path.
    #[error("{value} is not a valid file path: {reason}")]
    InvalidPath { value: String, reason: String },
    /// Not a 13-character sortable status id.
    #[error("{value} is not a valid status id: {reason}")]
    InvalidStatusId { value: String, reason: String },
    /// Not an RFC 3339 timestamp.
    #[error("{value} is not a valid timestamp: {reason}")]
    InvalidTimestamp { value: String, reason: String },
    /// Not an `https://host[:port]/path` URL.
    #[error("{value} is not a valid service url: {reason}")]
    InvalidServiceUrl { value: String, reason: String },
    /// An entry longer than [`MAX_ENTRY_BYTES`](super::limits::MAX_ENTRY_BYTES), refused unread.
    #[error("entry is {len} bytes; the limit is {limit}")]
    EntryTooLarge { len: usize, limit: usize },
    /// An entry nesting arrays or objects deeper than [`MAX_JSON_DEPTH`](super::limits::MAX_JSON_DEPTH).
    #[error("entry json nests deeper than {limit} levels")]
    EntryTooDeep { limit: usize },
    /// An entry that is not UTF-8 JSON.
    #[error("entry is not valid json: {reason}")]
    EntryNotJson { reason: String },
    /// JSON that is not a `put` or `del` entry.
    #[error("entry is malformed: {reason}")]
    InvalidEntry { reason: String },
    /// A path outside the archive layout.
    #[error(
        "{path} is not a fritter file; expected /profile.json, /follows.json, /statuses/<id>.json, \
         /likes/<slug>.json, /proofs/<host>.json or /hosting/<name>.json"
    )]
    UnknownFile { path: String },
    /// A file whose content belongs at another path (a like of another subject, a proof for
    /// another service).
    #[error("{path} does not match its content; it belongs at {expected}")]
    WrongPath { path: String, expected: String },
    /// A required field is absent or null.
    #[error("{what} is missing")]
    Missing { what: String },
    /// A field of the wrong JSON type.
    #[error("{what} must be {expected}, not {found}")]
    WrongType {
        what: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A field that must not be empty is.
    #[error("{what} is empty")]
    Empty { what: String },
    /// A string over its length limit.
    #[error("{what} is {len} {unit}; the limit is {limit}")]
    TooLong {
        what: String,
        len: usize,
        unit: &'static str,
        limit: usize,
    },
    /// A list over its count limit.
    #[error("{what} lists {count} items; the limit is {limit}")]
    TooMany {
        what: String,
        count: usize,
        limit: usize,
    },
    /// A list that holds the same thing twice.
    #[error("{what} lists {value} more than once; remove the duplicate")]
    Duplicate { what: String, value: String },
    /// A field whose value breaks a rule of its own.
    #[error("{what} {value} is invalid: {reason}")]
    Invalid {
        what: String,
        value: String,
        reason: String,
    },
    /// A field whose value was refused by its type's own parser.
    #[error("{what}: {reason}")]
    Field {
        what: String,
        reason: Box<ModelError>,
    },
}

/// Longest quoted value in a message, in characters.
const SHOWN_CHARS: usize = 80;

/// Quotes untrusted text for an error message: at most 80 characters, with control, line
/// separator and bidi characters escaped so the message cannot rewrite a terminal or a log line.
pub(crate) fn shown(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(SHOWN_CHARS * 4) + 2);
    out.push('"');
    for (count, c) in value.chars().enumerate() {
        if count == SHOWN_CHARS {
            out.push('…');
            break;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if super::text::is_unsafe_char(c) => {
                out.push_str(&format!("\\u{{{:04x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Names a character in a message the way Unicode charts do, `U+202E`.
pub(crate) fn code_point(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        assert_eq!(shown(input), expected);
    }

    #[test]
    fn shown_quotes_and_escapes() {
        check("plain", "\"plain\"");
        check("a\"b\\c", "\"a\\\"b\\\\c\"");
        check("evil\u{1b}[2J\n", "\"evil\\u{001b}[2J\\u{000a}\"");
        check("abc\u{202e}def", "\"abc\\u{202e}def\"");
    }

    #[test]
    fn shown_truncates_long_values() {
        let long = "x".repeat(1_000_000);
        let out = shown(&long);
        assert_eq!(out.chars().count(), SHOWN_CHARS + 3);
        assert!(out.ends_with("…\""));
    }

    #[test]
    fn messages_read_as_sentences() {
        let err = ModelError::TooLong {
            what: "status text".into(),
            len: 5123,
            unit: "characters",
            limit: 1000,
        };
        assert_eq!(
            err.to_string(),
            "status text is 5123 characters; the limit is 1000"
        );
    }
}
