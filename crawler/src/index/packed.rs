//! The stored form of a hit: its JSON with every run of 64 lowercase hex digits (keys and
//! hashes) packed into the 32 bytes it spells.
//!
//! Half the stored bytes of a hit were hex: its entry hash, and a reply's root and parent (each a
//! key and a hash). LZ4 finds repeats but cannot shrink random digits, so packing them halves
//! what they take; the index stays under its size budget with smaller docstore blocks, which is
//! what makes reading a hit cheap. A packed run is [`MARK`] then the 32 bytes. The mark is a
//! control character, which JSON text never holds unescaped, so [`unpack`] gives back exactly
//! the JSON [`pack`] was given.

/// Starts a packed run.
const MARK: u8 = 0x01;

/// Hex digits a packed run stands for.
const RUN: usize = 64;

fn is_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// Packs JSON text (as `serde_json` writes it: no raw control characters).
pub fn pack(json: &str) -> Vec<u8> {
    let bytes = json.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if !is_hex(bytes[i]) {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let end = bytes[i..]
            .iter()
            .position(|b| !is_hex(*b))
            .map_or(bytes.len(), |n| i + n);
        while end - i >= RUN {
            let mut raw = [0u8; RUN / 2];
            // Cannot fail: 64 hex digits make 32 bytes.
            let _ = hex::decode_to_slice(&bytes[i..i + RUN], &mut raw);
            out.push(MARK);
            out.extend_from_slice(&raw);
            i += RUN;
        }
        out.extend_from_slice(&bytes[i..end]);
        i = end;
    }
    out
}

/// The JSON text a [`pack`] made; `None` for bytes it did not make (a damaged store).
pub fn unpack(packed: &[u8]) -> Option<String> {
    // Each run grows by 31 bytes; a few spare bytes are cheaper than a count or a regrowth.
    let mut out = Vec::with_capacity(packed.len() + packed.len() / 2);
    let mut rest = packed;
    while let Some(at) = memchr::memchr(MARK, rest) {
        out.extend_from_slice(&rest[..at]);
        let raw = rest.get(at + 1..at + 1 + RUN / 2)?;
        let mut digits = [0u8; RUN];
        hex::encode_to_slice(raw, &mut digits).ok()?;
        out.extend_from_slice(&digits);
        rest = &rest[at + 1 + RUN / 2..];
    }
    out.extend_from_slice(rest);
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(json: &str) -> usize {
        let packed = pack(json);
        assert_eq!(unpack(&packed).as_deref(), Some(json), "{json}");
        packed.len()
    }

    #[test]
    fn packs_keys_and_hashes() {
        let key = "9f".repeat(32);
        let hash = "01".repeat(32);
        let json = format!(
            r#"{{"uri":"hyper://{key}/statuses/x.json","archive":"{key}","hash":"{hash}","seq":7}}"#
        );
        let packed = round_trip(&json);
        assert_eq!(packed, json.len() - 3 * (RUN - 1 - RUN / 2));
    }

    #[test]
    fn leaves_other_text_alone() {
        // Short, upper-case and broken runs stay as they are; a long run packs its first 64.
        assert_eq!(round_trip("{}"), 2);
        assert_eq!(round_trip(r#"{"t":"cafe 1234"}"#), 17);
        let upper = format!(r#"{{"t":"{}"}}"#, "AB".repeat(32));
        assert_eq!(round_trip(&upper), upper.len());
        let broken = format!(r#"{{"t":"{}x{}"}}"#, "a".repeat(40), "b".repeat(40));
        assert_eq!(round_trip(&broken), broken.len());
        let long = format!(r#"{{"t":"{}"}}"#, "0".repeat(150));
        assert_eq!(round_trip(&long), long.len() - 2 * (RUN - 1 - RUN / 2));
        round_trip(r#"{"t":"\u0001 escaped control, é, 日本"}"#);
    }

    #[test]
    fn damaged_bytes_are_refused() {
        let mut packed = pack(&format!(r#"{{"h":"{}"}}"#, "ab".repeat(32)));
        packed.truncate(packed.len() - 10);
        assert_eq!(unpack(&packed), None, "a mark without its 32 bytes");
        assert_eq!(unpack(&[b'{', 0xff, b'}']), None, "not UTF-8");
    }
}
