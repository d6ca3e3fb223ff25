//! `Entry::decode` on untrusted bytes, then `validate`. Checks: no panic; a decoded entry
//! re-encodes to bytes that decode to the same entry and validate the same way; a file that
//! validates can be written back (`to_entry`, `encode_checked`) at the same path and reads back
//! as the same file.
#![no_main]

use fritter_common::model::limits::MAX_ENTRY_BYTES;
use fritter_common::model::Entry;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Exact equality. Floats must survive encode/decode bit for bit (serde_json's
/// `float_roundtrip` feature, which this target once showed was missing), so a Rust reader and a
/// JS `JSON.parse` reader agree on every value.
fn same(a: &Value, b: &Value) -> bool {
    a == b
}

fn same_entry(a: &Entry, b: &Entry) -> bool {
    match (a, b) {
        (Entry::Put { path: p, value: v }, Entry::Put { path: q, value: w }) => {
            p == q && same(&Value::Object(v.clone()), &Value::Object(w.clone()))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = Entry::decode(data) else {
        return;
    };
    let validated = entry.validate();

    let bytes = entry.encode();
    // Re-encoding may lengthen numbers (`1e2` becomes `100.0`), so only bytes within the limit
    // must decode again; fuzz inputs are far below it anyway.
    if bytes.len() <= MAX_ENTRY_BYTES {
        let again = Entry::decode(&bytes).unwrap_or_else(|e| {
            panic!(
                "re-encoded entry does not decode: {e}\n{}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert!(
            same_entry(&again, &entry),
            "encode/decode round trip changed the entry:\n{entry:?}\n{again:?}"
        );
        if again == entry {
            assert_eq!(
                again.validate(),
                validated,
                "the round trip changed the validation result"
            );
        }
    }

    if let Ok(Some(file)) = &validated {
        fritter_fuzz::check_file_round_trip(entry.path(), file, "entry_decode");
    }
});
