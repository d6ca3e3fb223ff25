//! Log entries: the JSON a signed log entry carries to write or delete one file, and the bounded
//! decoder that is the first thing to touch an entry from a peer.

use serde_json::{Map, Value};

use super::error::{shown, ModelError};
use super::file::{kind, locate, validate_object, File};
use super::limits::{MAX_ENTRY_BYTES, MAX_JSON_DEPTH};
use super::path::FilePath;

/// One file operation, as a log entry holds it:
///
/// ```json
/// {"v":1,"op":"put","path":"/statuses/3kq2nzxh4vk22.json","value":{"text":"hi","createdAt":"…"}}
/// {"v":1,"op":"del","path":"/statuses/3kq2nzxh4vk22.json"}
/// ```
///
/// The encoding is plain JSON that a JavaScript reader decodes with `JSON.parse`. `v` is the
/// format version: written as 1, read as 1 when absent, refused when anything else. Other fields
/// are refused, as the envelope is ours and versioned (unlike file values; see
/// [`validate_file`](super::validate_file)).
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// Writes `value` as the file at `path`, replacing any earlier one.
    Put {
        path: FilePath,
        value: Map<String, Value>,
    },
    /// Deletes the file at `path`.
    Del { path: FilePath },
}

impl Entry {
    /// The format version this code writes and reads.
    pub const VERSION: u64 = 1;

    /// The path the entry writes or deletes.
    pub fn path(&self) -> &FilePath {
        match self {
            Entry::Put { path, .. } | Entry::Del { path } => path,
        }
    }

    /// The entry as JSON bytes. It is not checked: an entry built by hand may be too large or too
    /// deep for readers, or target the root; use [`Entry::encode_checked`] before publishing.
    pub fn encode(&self) -> Vec<u8> {
        // Fields go in in alphabetical order, so the bytes are the same whether serde_json keeps
        // maps sorted (its default) or in insertion order (its `preserve_order` feature).
        let mut envelope = Map::new();
        let op = match self {
            Entry::Put { .. } => "put",
            Entry::Del { .. } => "del",
        };
        envelope.insert("op".to_owned(), op.into());
        envelope.insert("path".to_owned(), self.path().as_str().into());
        envelope.insert("v".to_owned(), Entry::VERSION.into());
        if let Entry::Put { value, .. } = self {
            envelope.insert("value".to_owned(), Value::Object(value.clone()));
        }
        Value::Object(envelope).to_string().into_bytes()
    }

    /// The entry as JSON bytes, after the checks [`Entry::decode`] makes, so that what a writer
    /// publishes every reader accepts.
    pub fn encode_checked(&self) -> Result<Vec<u8>, ModelError> {
        let bytes = self.encode();
        Entry::decode(&bytes)?;
        Ok(bytes)
    }

    /// Reads an entry from untrusted bytes.
    ///
    /// The bounds come before the parse: more than [`MAX_ENTRY_BYTES`] is refused unread, and
    /// nesting deeper than [`MAX_JSON_DEPTH`] is refused by a flat scan, so no input can make the
    /// parser recurse deeply or allocate much more than the input's size. The path must be a valid,
    /// non-root [`FilePath`], and a `put` value a JSON object. Whether the path and value fit the
    /// archive layout is [`Entry::validate`]'s job.
    pub fn decode(bytes: &[u8]) -> Result<Entry, ModelError> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(ModelError::EntryTooLarge {
                len: bytes.len(),
                limit: MAX_ENTRY_BYTES,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|err| ModelError::EntryNotJson {
            reason: format!("it is not UTF-8 at byte {}", err.valid_up_to()),
        })?;
        check_depth(text.as_bytes(), MAX_JSON_DEPTH)?;
        let json: Value = serde_json::from_str(text).map_err(|err| ModelError::EntryNotJson {
            reason: err.to_string(),
        })?;
        let malformed = |reason: String| ModelError::InvalidEntry { reason };
        let Value::Object(mut envelope) = json else {
            return Err(malformed(format!(
                "expected a json object, found {}",
                kind(&json)
            )));
        };

        match envelope.remove("v") {
            None => {}
            Some(Value::Number(n)) if n.as_u64() == Some(Entry::VERSION) => {}
            Some(other) => {
                return Err(malformed(format!(
                    "version {} is not supported; this reader understands version {}",
                    shown(&other.to_string()),
                    Entry::VERSION
                )))
            }
        }
        let op = match envelope.remove("op") {
            Some(Value::String(op)) => op,
            Some(other) => {
                return Err(malformed(format!(
                    "op must be a string, not {}",
                    kind(&other)
                )))
            }
            None => return Err(malformed("op is missing".to_owned())),
        };
        let path: FilePath = match envelope.remove("path") {
            Some(Value::String(path)) => path
                .parse()
                .map_err(|err: ModelError| malformed(err.to_string()))?,
            Some(other) => {
                return Err(malformed(format!(
                    "path must be a string, not {}",
                    kind(&other)
                )))
            }
            None => return Err(malformed("path is missing".to_owned())),
        };
        if path.is_root() {
            return Err(malformed(
                "path must name a file, not the archive root".to_owned(),
            ));
        }
        let value = envelope.remove("value");
        if let Some(field) = envelope.keys().next() {
            return Err(malformed(format!("unknown field {}", shown(field))));
        }
        match (op.as_str(), value) {
            ("put", Some(Value::Object(value))) => Ok(Entry::Put { path, value }),
            ("put", Some(other)) => Err(malformed(format!(
                "a put value must be an object, not {}",
                kind(&other)
            ))),
            ("put", None) => Err(malformed("a put needs a value".to_owned())),
            ("del", None) => Ok(Entry::Del { path }),
            ("del", Some(_)) => Err(malformed("a del has no value".to_owned())),
            (other, _) => Err(malformed(format!(
                "op {} is unknown; expected \"put\" or \"del\"",
                shown(other)
            ))),
        }
    }

    /// Checks the entry against the archive layout: a `put` must hold a valid file for its path
    /// ([`validate_file`](super::validate_file)), returned here; a `del` must name a path where a
    /// file could be, and returns `None`.
    pub fn validate(&self) -> Result<Option<File>, ModelError> {
        match self {
            Entry::Put { path, value } => validate_object(path, value).map(Some),
            Entry::Del { path } => locate(path).map(|_| None),
        }
    }
}

/// Refuses JSON text that nests arrays and objects deeper than `limit`, in one pass without
/// recursion. It only counts brackets outside strings; whether the text is JSON at all is left
/// to the parser that runs next.
fn check_depth(json: &[u8], limit: usize) -> Result<(), ModelError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(ModelError::EntryTooDeep { limit });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn put(path: &str, value: Value) -> Entry {
        let Value::Object(value) = value else {
            panic!("not an object")
        };
        Entry::Put {
            path: path.parse().unwrap(),
            value,
        }
    }

    fn del(path: &str) -> Entry {
        Entry::Del {
            path: path.parse().unwrap(),
        }
    }

    /// Decodes `input`; `expected` is the entry or `Err(fragment of the message)`.
    fn check(input: &[u8], expected: Result<Entry, &str>) {
        match (Entry::decode(input), expected) {
            (Ok(entry), Ok(want)) => assert_eq!(entry, want),
            (Err(err), Err(fragment)) => {
                let message = err.to_string();
                assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
            }
            (got, want) => panic!(
                "{:?}: got {got:?}, want {want:?}",
                String::from_utf8_lossy(input)
            ),
        }
    }

    #[test]
    fn encodes_the_documented_shape() {
        let entry = put("/statuses/x.json", json!({"text": "hi"}));
        assert_eq!(
            String::from_utf8(entry.encode()).unwrap(),
            r#"{"op":"put","path":"/statuses/x.json","v":1,"value":{"text":"hi"}}"#
        );
        assert_eq!(
            String::from_utf8(del("/statuses/x.json").encode()).unwrap(),
            r#"{"op":"del","path":"/statuses/x.json","v":1}"#
        );
    }

    #[test]
    fn decodes_entries() {
        check(
            br#"{"op":"put","path":"/a.json","value":{"x":1}}"#,
            Ok(put("/a.json", json!({"x": 1}))),
        );
        check(
            br#"{"v":1,"op":"del","path":"/a.json"}"#,
            Ok(del("/a.json")),
        );
        check(
            br#" {"path":"/a.json","op":"del","v":1.0e0} "#,
            Err("version \"1.0\" is not supported"),
        );
        check(
            br#"{"op":"put","path":"/a.json","value":{},"x":1,"x":2}"#,
            Err("unknown field \"x\""),
        );
        // Duplicate keys keep the last, as JSON.parse does.
        check(
            br#"{"op":"put","op":"del","path":"/a.json"}"#,
            Ok(del("/a.json")),
        );
    }

    #[test]
    fn refuses_malformed_entries() {
        check(b"", Err("entry is not valid json: EOF"));
        check(b"[]", Err("expected a json object, found an array"));
        check(b"null", Err("expected a json object, found null"));
        check(
            br#"{"op":"put","path":"/a.json"}"#,
            Err("a put needs a value"),
        );
        check(
            br#"{"op":"put","path":"/a.json","value":[1]}"#,
            Err("a put value must be an object, not an array"),
        );
        check(
            br#"{"op":"put","path":"/a.json","value":null}"#,
            Err("a put value must be an object, not null"),
        );
        check(
            br#"{"op":"del","path":"/a.json","value":{}}"#,
            Err("a del has no value"),
        );
        check(
            br#"{"op":"move","path":"/a.json"}"#,
            Err("op \"move\" is unknown; expected \"put\" or \"del\""),
        );
        check(
            br#"{"op":1,"path":"/a.json"}"#,
            Err("op must be a string, not a number"),
        );
        check(br#"{"path":"/a.json"}"#, Err("op is missing"));
        check(br#"{"op":"del"}"#, Err("path is missing"));
        check(br#"{"op":"del","path":"/"}"#, Err("not the archive root"));
        check(br#"{"op":"del","path":"/a/../b"}"#, Err("`..` segments"));
        check(br#"{"op":"del","path":"a.json"}"#, Err("must start with /"));
        check(br#"{"op":"del","path":"/a\u202eb"}"#, Err("U+202E"));
        check(br#"{"op":"del","path":"/a\u0000b"}"#, Err("U+0000"));
        check(
            br#"{"v":2,"op":"del","path":"/a.json"}"#,
            Err("version \"2\" is not supported"),
        );
        check(
            br#"{"v":"1","op":"del","path":"/a.json"}"#,
            Err("version \"\\\"1\\\"\" is not supported"),
        );
    }

    #[test]
    fn refuses_hostile_bytes() {
        check(&[0xff, 0xfe, b'{', b'}'], Err("not UTF-8 at byte 0"));
        check(
            b"{\"op\":\"del\",\"path\":\"/a\xc3\x28\"}",
            Err("not UTF-8 at byte 22"),
        );
        check(
            &vec![b' '; MAX_ENTRY_BYTES + 1],
            Err("entry is 1048577 bytes; the limit is 1048576"),
        );
        check(&vec![b'['; 10 << 20], Err("entry is 10485760 bytes"));
        check(
            "[".repeat(10_000).as_bytes(),
            Err("entry json nests deeper than 32 levels"),
        );
        check(
            "{\"a\":".repeat(10_000).as_bytes(),
            Err("nests deeper than 32"),
        );
        let deep_value = format!(
            r#"{{"op":"put","path":"/a.json","value":{{"x":{}{}}}}}"#,
            "[".repeat(31),
            "]".repeat(31)
        );
        check(deep_value.as_bytes(), Err("nests deeper than 32"));
        let fine = format!(
            r#"{{"op":"put","path":"/a.json","value":{{"x":{}{}}}}}"#,
            "[".repeat(29),
            "]".repeat(29)
        );
        assert!(Entry::decode(fine.as_bytes()).is_ok());
        // Brackets inside strings do not count.
        let quoted = format!(
            r#"{{"op":"put","path":"/a.json","value":{{"x":"{}\"{}"}}}}"#,
            "[".repeat(100),
            "{".repeat(100)
        );
        assert!(Entry::decode(quoted.as_bytes()).is_ok());
        check(
            br#"{"op":"put","path":"/a.json","value":{"n":1e400}}"#,
            Err("number out of range"),
        );
        let digits = format!(
            r#"{{"op":"put","path":"/a.json","value":{{"n":{}}}}}"#,
            "9".repeat(60_000)
        );
        check(digits.as_bytes(), Err("not valid json"));
        let huge = format!(
            r#"{{"op":"put","path":"/a.json","value":{{"n":{}}}}}"#,
            "9".repeat(300)
        );
        assert!(
            Entry::decode(huge.as_bytes()).is_ok(),
            "a large float is still JSON"
        );
        check(
            br#"{"op":"del","path":"/a.json"} trailing"#,
            Err("trailing characters"),
        );
    }

    #[test]
    fn encode_checked_refuses_what_readers_would() {
        let big = put("/a.json", json!({"x": "a".repeat(MAX_ENTRY_BYTES)}));
        assert!(matches!(
            big.encode_checked(),
            Err(ModelError::EntryTooLarge { .. })
        ));
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        assert_eq!(
            put("/a.json", json!({ "x": deep })).encode_checked(),
            Err(ModelError::EntryTooDeep { limit: 32 })
        );
        assert!(Entry::Del {
            path: FilePath::root()
        }
        .encode_checked()
        .is_err());
        let fine = put("/a.json", json!({"x": 1}));
        assert_eq!(
            Entry::decode(&fine.encode_checked().unwrap()).unwrap(),
            fine
        );
    }

    #[test]
    fn validate_checks_the_layout() {
        assert!(del("/profile.json").validate().unwrap().is_none());
        assert!(del("/secret.exe").validate().is_err());
        assert!(put("/profile.json", json!({"name": "Alice"}))
            .validate()
            .unwrap()
            .is_some());
        assert!(put("/profile.json", json!({"bio": "no name"}))
            .validate()
            .is_err());
        assert!(put("/index.html", json!({})).validate().is_err());
    }

    fn arb_json(depth: u32) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            // Values that print exactly, so the round trip does not hinge on float formatting.
            (-1000i32..1000).prop_map(|n| Value::from(f64::from(n) / 8.0)),
            "\\PC{0,12}".prop_map(Value::from),
            "[\"\\\\\\[\\]{}\u{0}-\u{1f}\u{2028}\u{202e}]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(depth, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("\\PC{0,8}", inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    fn arb_entry() -> impl Strategy<Value = Entry> {
        let path = prop::collection::vec("[a-z0-9._é日 -]{1,12}", 1..5)
            .prop_filter_map("dot segment", |segments| {
                format!("/{}", segments.join("/")).parse().ok()
            });
        let value = prop::collection::btree_map("\\PC{0,8}", arb_json(8), 0..6);
        prop_oneof![
            (path.clone(), value).prop_map(|(path, value)| Entry::Put {
                path,
                value: value.into_iter().collect()
            }),
            path.prop_map(|path| Entry::Del { path }),
        ]
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(entry in arb_entry()) {
            let bytes = entry.encode_checked().unwrap();
            prop_assert_eq!(Entry::decode(&bytes).unwrap(), entry);
        }

        #[test]
        fn decode_never_panics_on_arbitrary_bytes(
            bytes in prop::collection::vec(any::<u8>(), 0..2048),
        ) {
            let _ = Entry::decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_json_like_text(text in "[\\[\\]{}\":,a-z0-9./\\\\ -]{0,400}") {
            let _ = Entry::decode(text.as_bytes());
        }

        #[test]
        fn decode_never_panics_on_mutated_entries(
            entry in arb_entry(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = entry.encode();
            for (index, byte) in flips {
                let at = index.index(bytes.len());
                bytes[at] = byte;
            }
            if let Ok(entry) = Entry::decode(&bytes) {
                let _ = entry.validate();
            }
        }
    }

    #[test]
    fn floats_survive_a_round_trip_bit_for_bit() {
        // Found by the entry_decode fuzz target: without serde_json's `float_roundtrip` the
        // parser read 1.555e28 back one unit in the last place off, disagreeing with JSON.parse.
        let bytes = br#"{"op":"put","path":"/profile.json","value":{"name":"a","n":1.555e28}}"#;
        let entry = Entry::decode(bytes).unwrap();
        assert_eq!(Entry::decode(&entry.encode()).unwrap(), entry);
        let Entry::Put { value, .. } = entry else {
            panic!("expected a put")
        };
        assert_eq!(value["n"].as_f64(), Some(1.555e28));
    }
}
