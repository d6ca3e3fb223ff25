//! The replication wire decoders on untrusted bytes: `frame::FrameIo`'s length-prefixed framing
//! is covered by the guard's parser, which every decrypted frame goes through
//! (`wire::Guard::parse_frame`), then the re-encoding `hypercore-protocol` decodes. Checks: no
//! panic; what parses re-encodes into frames that parse to the same messages; every re-encoded
//! channel message decodes with `hypercore-protocol` to the same message; proofs convert to the
//! log's types without panicking.
#![no_main]

use compact_encoding::CompactEncoding;
use fritter_common::replicate::wire::{data_to_proof, encode_frames, Guard};
use hypercore_protocol::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input into several frames on one connection, so the guard's
    // per-connection state (open channels) is exercised too.
    let (split, rest) = match data.split_first() {
        Some((s, r)) => (*s as usize + 1, r),
        None => return,
    };
    let mut guard = Guard::default();
    for frame in rest.chunks(split.max(1) * 8) {
        let Ok(parsed) = guard.parse_frame(frame) else {
            continue;
        };
        let frames = encode_frames(&parsed).expect("what parsed re-encodes");
        let mut again = Vec::new();
        let mut g2 = Guard::default();
        for f in &frames {
            again.extend(g2.parse_frame(f).expect("re-encoded frames parse"));
        }
        assert_eq!(again, parsed, "re-encoding changed the messages");
        for p in &parsed {
            match &p.message {
                Message::Open(_) | Message::Close(_) => {}
                m => {
                    let size = m.encoded_size().expect("size");
                    let mut buf = vec![0u8; size];
                    m.encode(&mut buf).expect("encode");
                    let (back, left) = Message::decode(&buf).expect("hypercore-protocol decodes");
                    assert!(left.is_empty());
                    assert_eq!(&back, m);
                }
            }
            if let Message::Data(d) = &p.message {
                let _ = data_to_proof(d.clone());
            }
        }
    }
});
