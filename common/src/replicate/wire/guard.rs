//! The guard proper: splits a decrypted frame into messages with protomux's rules and a bound on
//! every size, keeps the set of channels the peer opened, and re-encodes what it accepted as
//! frames `hypercore-protocol` 0.7.2 decodes exactly.

use std::collections::HashSet;

use compact_encoding::CompactEncoding;
use hypercore_protocol::schema::{
    Cancel, Close, NoData, Open, Range, Request, Synchronize, Unwant, Want,
};
use hypercore_protocol::Message;
use hypercore_schema::{RequestBlock as WireRequestBlock, RequestUpgrade as WireRequestUpgrade};

use super::data::{decode_data, proof_to_data};
use super::reader::{push_uint, Reader};
use super::{bad, WireError, MAX_BITFIELD_WORDS, MAX_CHANNEL_ID, MAX_REMOTE_CHANNELS, PROTOCOL};

/// One decoded message and the channel it travels on (0 for control messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub channel: u64,
    pub message: Message,
}

/// Per-connection state of the guard: which channels the peer has open.
#[derive(Debug, Default)]
pub struct Guard {
    remote_channels: HashSet<u64>,
}

impl Guard {
    /// Parses one decrypted frame into the messages `hypercore-protocol` should see. Messages it
    /// has no use for (extensions, rejects, unknown types, other protocols) are dropped.
    pub fn parse_frame(&mut self, frame: &[u8]) -> Result<Vec<Parsed>, WireError> {
        let mut out = Vec::new();
        if frame.is_empty() {
            return Ok(out);
        }
        let mut r = Reader::new(frame);
        let channel = r.uint()?;
        if channel == 0 {
            let kind = r.uint()?;
            if kind == 0 {
                self.batch(&mut r, &mut out)?;
            } else {
                self.control(kind, &mut r, &mut out)?;
            }
        } else {
            self.channel_message(channel, &mut r, &mut out)?;
        }
        Ok(out)
    }

    fn batch(&mut self, r: &mut Reader<'_>, out: &mut Vec<Parsed>) -> Result<(), WireError> {
        let mut channel = r.uint()?;
        while !r.is_empty() {
            let len = r.len(usize::MAX, 1)?;
            if len == 0 {
                channel = r.uint()?;
                continue;
            }
            let mut m = Reader::new(r.take(len)?);
            if channel == 0 {
                let kind = m.uint()?;
                if kind == 0 {
                    return Err(bad("batch nested in a batch"));
                }
                self.control(kind, &mut m, out)?;
            } else {
                self.channel_message(channel, &mut m, out)?;
            }
        }
        Ok(())
    }

    fn control(
        &mut self,
        kind: u64,
        r: &mut Reader<'_>,
        out: &mut Vec<Parsed>,
    ) -> Result<(), WireError> {
        match kind {
            1 => {
                let channel = r.uint()?;
                let protocol = r.string(64)?;
                let id = r.buffer(64)?;
                if channel == 0 || channel > MAX_CHANNEL_ID {
                    return Err(bad(format!("channel id {channel} is out of range")));
                }
                if protocol != PROTOCOL {
                    // Another protocol on the same stream: not ours to answer.
                    return Ok(());
                }
                if id.len() != 32 {
                    return Err(bad(format!("discovery key of {} bytes", id.len())));
                }
                let _flags = r.uint()?;
                let capability = r.take(32)?.to_vec();
                // Protomux reuses the ids of closed channels; a second open replaces the first,
                // as it does in `hypercore-protocol`.
                self.remote_channels.insert(channel);
                if self.remote_channels.len() > MAX_REMOTE_CHANNELS {
                    return Err(bad("too many open channels"));
                }
                out.push(Parsed {
                    channel: 0,
                    message: Message::Open(Open {
                        channel,
                        protocol,
                        discovery_key: id.to_vec(),
                        capability: Some(capability),
                    }),
                });
            }
            // A reject of one of our opens: the peer does not have that archive.
            2 => {
                r.uint()?;
            }
            3 => {
                let channel = r.uint()?;
                if self.remote_channels.remove(&channel) {
                    out.push(Parsed {
                        channel: 0,
                        message: Message::Close(Close { channel }),
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn channel_message(
        &mut self,
        channel: u64,
        r: &mut Reader<'_>,
        out: &mut Vec<Parsed>,
    ) -> Result<(), WireError> {
        let kind = r.uint()?;
        let message = match kind {
            0 => {
                let flags = r.uint()?;
                Message::Synchronize(Synchronize {
                    fork: r.uint()?,
                    length: r.uint()?,
                    remote_length: r.uint()?,
                    can_upgrade: flags & 1 != 0,
                    uploading: flags & 2 != 0,
                    downloading: flags & 4 != 0,
                })
            }
            1 => {
                let flags = r.uint()?;
                let id = r.uint()?;
                let fork = r.uint()?;
                let block = if flags & 1 != 0 {
                    Some(WireRequestBlock {
                        index: r.uint()?,
                        nodes: r.uint()?,
                    })
                } else {
                    None
                };
                let hash = if flags & 2 != 0 {
                    Some(WireRequestBlock {
                        index: r.uint()?,
                        nodes: r.uint()?,
                    })
                } else {
                    None
                };
                if flags & 4 != 0 {
                    // Seeks are asked only of peers that announce support in their open message,
                    // which we do not.
                    return Err(bad("seek request to a peer that does not offer seeks"));
                }
                let upgrade = if flags & 8 != 0 {
                    Some(WireRequestUpgrade {
                        start: r.uint()?,
                        length: r.uint()?,
                    })
                } else {
                    None
                };
                let priority = if flags & 32 != 0 { r.uint()? } else { 0 };
                Message::Request(Request {
                    id,
                    fork,
                    block,
                    hash,
                    seek: None,
                    upgrade,
                    manifest: flags & 16 != 0,
                    priority,
                })
            }
            2 => Message::Cancel(Cancel { request: r.uint()? }),
            3 => {
                // The one codec of proofs; it refuses bytes after the message, so the rest of
                // the frame (or of this message in a batch) is all it gets.
                let (request, proof) = decode_data(r.rest())?;
                Message::Data(proof_to_data(request, proof))
            }
            4 => Message::NoData(NoData { request: r.uint()? }),
            5 => Message::Want(Want {
                start: r.uint()?,
                length: r.uint()?,
            }),
            6 => Message::Unwant(Unwant {
                start: r.uint()?,
                length: r.uint()?,
            }),
            7 => {
                let start = r.uint()?;
                let n = r.len(MAX_BITFIELD_WORDS, 4)?;
                let mut bitfield = Vec::with_capacity(n);
                for _ in 0..n {
                    let b = r.take(4)?;
                    bitfield.push(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                }
                Message::Bitfield(hypercore_protocol::schema::Bitfield { start, bitfield })
            }
            8 => {
                let flags = r.uint()?;
                let start = r.uint()?;
                let length = if flags & 2 != 0 { 1 } else { r.uint()? };
                Message::Range(Range {
                    drop: flags & 1 != 0,
                    start,
                    length,
                })
            }
            // Extensions, reorg hints and types added later: not used here.
            _ => return Ok(()),
        };
        out.push(Parsed { channel, message });
        Ok(())
    }
}

/// Encodes parsed messages as the frames `hypercore-protocol` 0.7 decodes: each open or close
/// alone, and each run of messages on one channel as one batch (or alone when single).
///
/// A batch never switches channel: 0.7.2's decoder reads the `0` that announces a switch as the
/// new channel id (channel 0, whose messages it drops) and then the real id as the next
/// message's length, so everything after the switch is lost or fails to decode ("Invalid
/// message type", "invalid message length"). Its own encoder and JS protomux both send such
/// batches, as soon as messages for several channels queue up at once.
pub fn encode_frames(messages: &[Parsed]) -> Result<Vec<Vec<u8>>, WireError> {
    let mut frames = Vec::new();
    let mut run: Vec<&Parsed> = Vec::new();
    for p in messages {
        match &p.message {
            Message::Open(_) | Message::Close(_) => {
                flush_run(&mut run, &mut frames)?;
                let prefix: [u8; 2] = if matches!(p.message, Message::Open(_)) {
                    [0, 1]
                } else {
                    [0, 3]
                };
                let mut f = prefix.to_vec();
                f.extend(encode_message(&p.message)?);
                frames.push(f);
            }
            _ => {
                if run.last().is_some_and(|last| last.channel != p.channel) {
                    flush_run(&mut run, &mut frames)?;
                }
                run.push(p);
            }
        }
    }
    flush_run(&mut run, &mut frames)?;
    Ok(frames)
}

fn encode_message(m: &Message) -> Result<Vec<u8>, WireError> {
    let size = m
        .encoded_size()
        .map_err(|e| bad(format!("cannot encode: {e}")))?;
    let mut buf = vec![0u8; size];
    m.encode(&mut buf)
        .map_err(|e| bad(format!("cannot encode: {e}")))?;
    Ok(buf)
}

/// Sends `run`, messages all on one channel, as one frame.
fn flush_run(run: &mut Vec<&Parsed>, frames: &mut Vec<Vec<u8>>) -> Result<(), WireError> {
    match run.len() {
        0 => {}
        1 => {
            let mut f = Vec::new();
            push_uint(&mut f, run[0].channel);
            f.extend(encode_message(&run[0].message)?);
            frames.push(f);
        }
        _ => {
            let mut f = vec![0, 0];
            push_uint(&mut f, run[0].channel);
            for p in run.iter() {
                debug_assert_eq!(p.channel, run[0].channel, "a batch is on one channel");
                let body = encode_message(&p.message)?;
                push_uint(&mut f, body.len() as u64);
                f.extend(body);
            }
            frames.push(f);
        }
    }
    run.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log;
    use hypercore_protocol::schema::Data;
    use hypercore_schema::{DataBlock, DataUpgrade, Node as WireNode};

    fn frame(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn js_batch_with_nodata_reason_and_single_range() {
        // [0,0] batch, channel 1: noData{request 7, reason 1}, range{length 1 flag, start 9},
        // then channel 2: sync.
        let nodata: &[u8] = &[4, 7, 1, 1];
        let range: &[u8] = &[8, 2, 9];
        let sync: &[u8] = &[0, 7, 0, 5, 3];
        let f = frame(&[
            &[0, 0, 1],
            &[nodata.len() as u8],
            nodata,
            &[range.len() as u8],
            range,
            &[0, 2],
            &[sync.len() as u8],
            sync,
        ]);
        let got = Guard::default().parse_frame(&f).unwrap();
        assert_eq!(
            got,
            vec![
                Parsed {
                    channel: 1,
                    message: Message::NoData(NoData { request: 7 })
                },
                Parsed {
                    channel: 1,
                    message: Message::Range(Range {
                        drop: false,
                        start: 9,
                        length: 1
                    })
                },
                Parsed {
                    channel: 2,
                    message: Message::Synchronize(Synchronize {
                        fork: 0,
                        length: 5,
                        remote_length: 3,
                        can_upgrade: true,
                        uploading: true,
                        downloading: true
                    })
                },
            ]
        );
        // Re-encoded as one batch per channel, which hypercore-protocol's decoder splits
        // correctly.
        let frames = encode_frames(&got).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(decode_as_hypercore_protocol(&frames).unwrap(), got);
    }

    /// `hypercore-protocol` 0.7.2's frame decoder (`message.rs`,
    /// `decode_unframed_channel_messages` under `vec_decode`), ported step for step onto its
    /// public `Message::decode`, since the original is crate-private. The version is pinned
    /// (`=0.7.2`), so this is what the guard feeds.
    fn decode_as_hypercore_protocol(frames: &[Vec<u8>]) -> Result<Vec<Parsed>, String> {
        use compact_encoding::decode_usize;
        let e = |e: compact_encoding::EncodingError| e.to_string();
        let mut out = Vec::new();
        for frame in frames {
            let mut buf = frame.as_slice();
            while !buf.is_empty() {
                if buf.len() >= 3 && buf[0] == 0 && buf[1] == 0 {
                    buf = &buf[2..];
                    let mut channel;
                    (channel, buf) = u64::decode(buf).map_err(e)?;
                    while !buf.is_empty() {
                        let len;
                        (len, buf) = decode_usize(buf).map_err(e)?;
                        if len > buf.len() {
                            return Err(format!(
                                "received invalid message length: [{len}] but we have [{}] remaining bytes",
                                buf.len()
                            ));
                        }
                        if buf.len() <= 1 {
                            return Err(format!("received empty message [{buf:?}]"));
                        }
                        // The length is not used to delimit the message.
                        let message;
                        (message, buf) = Message::decode(buf).map_err(e)?;
                        out.push(Parsed { channel, message });
                        // The channel switch: note that the `0` itself is decoded as the id.
                        if !buf.is_empty() && buf[0] == 0 {
                            (channel, buf) = u64::decode(buf).map_err(e)?;
                        }
                    }
                } else if buf.len() >= 3 && buf[0] == 0 && buf[1] == 1 {
                    let open;
                    (open, buf) = Open::decode(&buf[2..]).map_err(e)?;
                    out.push(Parsed {
                        channel: 0,
                        message: Message::Open(open),
                    });
                } else if buf.len() >= 3 && buf[0] == 0 && buf[1] == 3 {
                    let close;
                    (close, buf) = Close::decode(&buf[2..]).map_err(e)?;
                    out.push(Parsed {
                        channel: 0,
                        message: Message::Close(close),
                    });
                } else if buf.len() >= 3 && buf[0] == 0 {
                    return Err("received invalid special message".into());
                } else if buf.len() >= 2 {
                    let (channel, rest) = u64::decode(buf).map_err(e)?;
                    let message;
                    (message, buf) = Message::decode(rest).map_err(e)?;
                    out.push(Parsed { channel, message });
                } else {
                    return Err(format!("received too short message, {buf:?}"));
                }
            }
        }
        Ok(out)
    }

    /// Channel messages as one batch that switches channel where the channel changes: what
    /// `hypercore-protocol`'s encoder and JS protomux send when several channels have queued
    /// messages.
    fn mixed_batch(messages: &[Parsed]) -> Vec<u8> {
        let mut f = vec![0, 0];
        let mut channel = messages[0].channel;
        push_uint(&mut f, channel);
        for p in messages {
            if p.channel != channel {
                f.push(0);
                channel = p.channel;
                push_uint(&mut f, channel);
            }
            let body = encode_message(&p.message).unwrap();
            push_uint(&mut f, body.len() as u64);
            f.extend(body);
        }
        f
    }

    /// Regression: with about 500 archives on one connection, batches like this one (the start
    /// of one captured in the many_archives bench: sync and range on channels 216, 170 and 255,
    /// the last written `fd ff 00`) reached `hypercore-protocol` unchanged; it read the `0` of
    /// the switch as channel 0 and the next channel id as a length, failing with "Invalid
    /// message type to decode" or "received invalid message length" and dropping the connection.
    #[test]
    fn batch_switching_channels_reaches_hypercore_protocol_intact() {
        let sync: &[u8] = &[5, 0, 3, 0, 10, 0];
        let range: &[u8] = &[4, 8, 0, 0, 10];
        let input = frame(&[
            &[0, 0, 0xd8],
            sync,
            range,
            &[0, 0xaa],
            sync,
            range,
            &[0, 0xfd, 0xff, 0x00],
            sync,
            range,
        ]);
        let got = Guard::default().parse_frame(&input).unwrap();
        let on = |channel| {
            [
                Parsed {
                    channel,
                    message: Message::Synchronize(Synchronize {
                        fork: 0,
                        length: 10,
                        remote_length: 0,
                        can_upgrade: true,
                        uploading: true,
                        downloading: false,
                    }),
                },
                Parsed {
                    channel,
                    message: Message::Range(Range {
                        drop: false,
                        start: 0,
                        length: 10,
                    }),
                },
            ]
        };
        let want: Vec<Parsed> = [on(0xd8), on(0xaa), on(0xff)].concat();
        assert_eq!(got, want);
        // The batch as it came is mis-read by hypercore-protocol's decoder (channel 170 taken
        // for a length)...
        let as_is = decode_as_hypercore_protocol(std::slice::from_ref(&input));
        assert!(
            as_is
                .as_ref()
                .is_err_and(|e| e.contains("invalid message length: [170]")),
            "{as_is:?}"
        );
        // ... so it gets one batch per channel, which it decodes exactly.
        let frames = encode_frames(&got).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(decode_as_hypercore_protocol(&frames).unwrap(), want);
    }

    #[test]
    fn open_inside_a_batch_becomes_its_own_frame() {
        let mut open = vec![1u8, 1];
        open.push(PROTOCOL.len() as u8);
        open.extend(PROTOCOL.as_bytes());
        open.push(32);
        open.extend([7u8; 32]);
        open.push(0);
        open.extend([9u8; 32]);
        let sync: &[u8] = &[0, 6, 0, 5, 0];
        let f = frame(&[
            &[0, 0, 0],
            &[open.len() as u8],
            &open,
            &[0, 1],
            &[sync.len() as u8],
            sync,
        ]);
        let mut g = Guard::default();
        let got = g.parse_frame(&f).unwrap();
        assert!(
            matches!(got[0].message, Message::Open(ref o) if o.channel == 1 && o.discovery_key == vec![7u8; 32])
        );
        let frames = encode_frames(&got).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(&frames[0][..2], &[0, 1]);
    }

    #[test]
    fn lying_counts_are_refused_before_allocating() {
        let mut g = Guard::default();
        // data with a block claiming 2^40 nodes
        let f = [1u8, 3, 1, 1, 0, 0, 0, 0xff, 0, 0, 0, 0, 0, 1, 0, 0];
        assert!(g.parse_frame(&f).is_err());
        // bitfield claiming 2^32 words
        let f = [1u8, 7, 0, 0xfe, 0, 0, 0, 0x80];
        assert!(g.parse_frame(&f).is_err());
        // open with a huge channel id
        let mut f = vec![0u8, 1, 0xff];
        f.extend(u64::MAX.to_le_bytes());
        assert!(g.parse_frame(&f).is_err());
    }

    /// The guard parses proofs with the codec the vectors check: what that codec refuses (bytes
    /// after the message, a manifest) fails the frame, alone or inside a batch.
    #[test]
    fn data_is_parsed_by_the_one_codec() {
        let proof = log::Proof {
            fork: 1,
            block: Some(log::DataBlock {
                index: 0,
                value: b"x".to_vec(),
                nodes: vec![],
            }),
            ..log::Proof::default()
        };
        let body = [&[3u8][..], &super::super::encode_data(9, &proof).unwrap()].concat();
        let want = vec![Parsed {
            channel: 1,
            message: Message::Data(proof_to_data(9, proof)),
        }];
        let alone = [&[1u8][..], &body].concat();
        assert_eq!(Guard::default().parse_frame(&alone).unwrap(), want);
        let batch = |body: &[u8]| [&[0u8, 0, 1, body.len() as u8][..], body].concat();
        assert_eq!(Guard::default().parse_frame(&batch(&body)).unwrap(), want);

        let trailing = [&body[..], &[0]].concat();
        let manifest = [&[3u8, body[1] | 16][..], &body[2..]].concat();
        for bad in [trailing, manifest] {
            let alone = [&[1u8][..], &bad].concat();
            assert!(Guard::default().parse_frame(&alone).is_err(), "{bad:?}");
            assert!(
                Guard::default().parse_frame(&batch(&bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_and_reencoding_is_stable(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let mut g = Guard::default();
            if let Ok(parsed) = g.parse_frame(&bytes) {
                let frames = encode_frames(&parsed).unwrap();
                let mut again = Vec::new();
                let mut g2 = Guard::default();
                for f in &frames {
                    again.extend(g2.parse_frame(f).unwrap());
                }
                proptest::prop_assert_eq!(&again, &parsed);
                proptest::prop_assert_eq!(&decode_as_hypercore_protocol(&frames).unwrap(), &parsed);
                // What hypercore-protocol decodes from our encoding is what we parsed.
                for p in parsed.iter().filter(|p| !matches!(p.message, Message::Open(_) | Message::Close(_))) {
                    let body = encode_message(&p.message).unwrap();
                    let (m, rest) = Message::decode(&body).unwrap();
                    proptest::prop_assert!(rest.is_empty());
                    proptest::prop_assert_eq!(&m, &p.message);
                }
            }
        }

        #[test]
        fn any_messages_round_trip_and_mutations_never_panic(
            msgs in proptest::collection::vec((1u64..300, message()), 1..12),
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..4),
        ) {
            let parsed: Vec<Parsed> = msgs.into_iter().map(|(channel, message)| Parsed { channel, message }).collect();
            let input = mixed_batch(&parsed);
            proptest::prop_assert_eq!(&Guard::default().parse_frame(&input).unwrap(), &parsed);
            let frames = encode_frames(&parsed).unwrap();
            proptest::prop_assert_eq!(&decode_as_hypercore_protocol(&frames).unwrap(), &parsed);
            let mut bad = input;
            for (at, x) in flips {
                let i = at % bad.len();
                bad[i] ^= x;
            }
            let _ = Guard::default().parse_frame(&bad);
        }

        #[test]
        fn batches_of_valid_messages_survive_any_split(ranges in proptest::collection::vec((0u64..1 << 40, 1u64..1 << 20, 1u64..4), 1..20)) {
            let parsed: Vec<Parsed> = ranges
                .iter()
                .map(|&(start, length, channel)| Parsed { channel, message: Message::Range(Range { drop: false, start, length }) })
                .collect();
            proptest::prop_assert_eq!(&Guard::default().parse_frame(&mixed_batch(&parsed)).unwrap(), &parsed);
            // One frame per run of one channel's messages.
            let runs = 1 + parsed.windows(2).filter(|w| w[0].channel != w[1].channel).count();
            let frames = encode_frames(&parsed).unwrap();
            proptest::prop_assert_eq!(frames.len(), runs);
            proptest::prop_assert_eq!(decode_as_hypercore_protocol(&frames).unwrap(), parsed);
        }
    }

    fn node() -> impl proptest::strategy::Strategy<Value = WireNode> {
        use proptest::prelude::*;
        (0..2 * log::MAX_LENGTH, any::<u64>(), any::<[u8; 32]>())
            .prop_map(|(i, s, h)| WireNode::new(i, h.to_vec(), s))
    }

    fn message() -> impl proptest::strategy::Strategy<Value = Message> {
        use proptest::prelude::*;
        let nodes = || proptest::collection::vec(node(), 0..4);
        prop_oneof![
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<[bool; 3]>()).prop_map(
                |(fork, length, remote_length, f)| Message::Synchronize(Synchronize {
                    fork,
                    length,
                    remote_length,
                    can_upgrade: f[0],
                    uploading: f[1],
                    downloading: f[2]
                })
            ),
            (
                any::<u64>(),
                any::<u64>(),
                proptest::option::of((any::<u64>(), any::<u64>())),
                proptest::option::of((any::<u64>(), any::<u64>()))
            )
                .prop_map(|(id, fork, block, upgrade)| Message::Request(Request {
                    id,
                    fork,
                    block: block.map(|(index, nodes)| WireRequestBlock { index, nodes }),
                    hash: None,
                    seek: None,
                    upgrade: upgrade.map(|(start, length)| WireRequestUpgrade { start, length }),
                    manifest: false,
                    priority: 0,
                })),
            (
                any::<u64>(),
                any::<u64>(),
                proptest::option::of((
                    any::<u64>(),
                    proptest::collection::vec(any::<u8>(), 0..64),
                    nodes()
                )),
                proptest::option::of((any::<u64>(), any::<u64>(), nodes(), nodes(), any::<bool>()))
            )
                .prop_map(|(request, fork, block, upgrade)| Message::Data(Data {
                    request,
                    fork,
                    block: block.map(|(index, value, nodes)| DataBlock {
                        index,
                        value,
                        nodes
                    }),
                    hash: None,
                    seek: None,
                    upgrade: upgrade.map(|(start, length, nodes, additional_nodes, signed)| {
                        DataUpgrade {
                            start,
                            length,
                            nodes,
                            additional_nodes,
                            signature: if signed { vec![7; 64] } else { vec![] },
                        }
                    }),
                })),
            any::<u64>().prop_map(|request| Message::NoData(NoData { request })),
            any::<u64>().prop_map(|request| Message::Cancel(Cancel { request })),
            (any::<u64>(), 1u64..u64::MAX, any::<bool>()).prop_map(|(start, length, drop)| {
                Message::Range(Range {
                    drop,
                    start,
                    length,
                })
            }),
            (any::<u64>(), proptest::collection::vec(any::<u32>(), 0..8)).prop_map(
                |(start, bitfield)| Message::Bitfield(hypercore_protocol::schema::Bitfield {
                    start,
                    bitfield
                })
            ),
            (any::<u64>(), any::<u64>())
                .prop_map(|(start, length)| Message::Want(Want { start, length })),
        ]
    }
}
