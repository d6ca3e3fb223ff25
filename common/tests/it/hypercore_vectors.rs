//! Byte-for-byte compatibility with Holepunch's JS `hypercore@11.37.1` (compat key mode), using
//! vectors that `tests/js/vectors.js` wrote: hashes, roots, signatures, the discovery key, and
//! every proof both ways (we produce the same bytes, and we verify what JS produced). Proofs go
//! through the wire's own `data` codec, so the bytes checked here are the bytes the wire parses.

use fritter_common::crypto::{self, KeyPair, PublicKey};
use fritter_common::log::sim::SimDisk;
use fritter_common::log::tree::verify_proof;
use fritter_common::log::{
    Access, Log, Node, ProofRequest, RequestBlock, RequestSeek, RequestUpgrade,
};
use fritter_common::replicate::wire::{decode_data, encode_data};
use serde_json::Value;

const VECTORS: &str = include_str!("../vectors/hypercore-11.37.1.json");

fn unhex<const N: usize>(v: &Value) -> [u8; N] {
    let mut out = [0u8; N];
    hex::decode_to_slice(v.as_str().unwrap(), &mut out).unwrap();
    out
}

fn block(i: u64) -> Vec<u8> {
    format!("entry {i} {}", "x".repeat((i % 61) as usize)).into_bytes()
}

fn node(v: &Value) -> Node {
    Node {
        index: v["index"].as_u64().unwrap(),
        size: v["size"].as_u64().unwrap(),
        hash: unhex(&v["hash"]),
    }
}

fn request(v: &Value) -> ProofRequest {
    let idx = |v: &Value| RequestBlock {
        index: v["index"].as_u64().unwrap(),
        nodes: v["nodes"].as_u64().unwrap(),
    };
    ProofRequest {
        block: (!v["block"].is_null()).then(|| idx(&v["block"])),
        hash: (!v["hash"].is_null()).then(|| idx(&v["hash"])),
        seek: (!v["seek"].is_null()).then(|| RequestSeek {
            bytes: v["seek"]["bytes"].as_u64().unwrap(),
            padding: v["seek"]["padding"].as_u64().unwrap(),
        }),
        upgrade: (!v["upgrade"].is_null()).then(|| RequestUpgrade {
            start: v["upgrade"]["start"].as_u64().unwrap(),
            length: v["upgrade"]["length"].as_u64().unwrap(),
        }),
    }
}

fn append_up_to(log: &Log, target: u64, make: impl Fn(u64) -> Vec<u8>) {
    while log.len() < target {
        let start = log.len();
        let end = (start + 1000).min(target);
        let blocks: Vec<Vec<u8>> = (start..end).map(&make).collect();
        let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
        log.append_batch(&refs).unwrap();
    }
}

fn check_head(log: &Log, v: &Value, what: &str) {
    let info = log.info();
    let head = log.head();
    assert_eq!(info.length, v["length"].as_u64().unwrap(), "{what}: length");
    assert_eq!(info.fork, v["fork"].as_u64().unwrap(), "{what}: fork");
    assert_eq!(
        info.byte_length,
        v["byteLength"].as_u64().unwrap(),
        "{what}: byteLength"
    );
    let roots: Vec<Node> = v["roots"].as_array().unwrap().iter().map(node).collect();
    assert_eq!(head.roots, roots, "{what}: roots");
    assert_eq!(
        hex::encode(info.tree_hash),
        v["treeHash"].as_str().unwrap(),
        "{what}: tree hash"
    );
    assert_eq!(
        hex::encode(head.signable()),
        v["signable"].as_str().unwrap(),
        "{what}: signable"
    );
    assert_eq!(
        hex::encode(info.signature.unwrap()),
        v["signature"].as_str().unwrap(),
        "{what}: signature"
    );
}

/// A replica of `key` at exactly `length`, grown from a fresh log through our own upgrade proof.
fn replica_at(kp: &KeyPair, length: u64, make: &dyn Fn(u64) -> Vec<u8>) -> Log {
    let replica = Log::open(&SimDisk::new(), kp.public(), Access::Replica).unwrap();
    if length > 0 {
        let writer = Log::open(&SimDisk::new(), kp.public(), Access::Writer(kp.clone())).unwrap();
        append_up_to(&writer, length, make);
        let p = writer
            .proof(&ProofRequest {
                upgrade: Some(RequestUpgrade { start: 0, length }),
                ..Default::default()
            })
            .unwrap();
        replica.apply_proof(&p).unwrap();
        assert_eq!(replica.len(), length);
    }
    replica
}

fn check_proofs(
    kp: &KeyPair,
    writer: &Log,
    proofs: &Value,
    make: &dyn Fn(u64) -> Vec<u8>,
) -> usize {
    let key = kp.public();
    let mut checked = 0;
    for p in proofs.as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let req = request(&p["request"]);
        let ours = writer.proof(&req);
        if let Some(err) = p.get("error") {
            assert!(ours.is_err(), "{name}: JS refused ({err}) but we answered");
            continue;
        }
        let ours = ours.unwrap_or_else(|e| panic!("{name}: {e}"));
        let wire = p["wire"].as_str().unwrap();
        assert_eq!(
            hex::encode(encode_data(0, &ours).unwrap()),
            wire,
            "{name}: wire bytes differ"
        );

        let (_, theirs) = decode_data(&hex::decode(wire).unwrap()).unwrap();
        assert_eq!(theirs, ours, "{name}: decoded proof differs");

        match req.upgrade {
            // `j` counts missing nodes for a reader at the full length, so its block path ends at
            // a node a reader at the upgrade's start does not hold; only its bytes are compared.
            // `j2` is the request such a reader really sends, and is verified below.
            Some(_) if name.starts_with("j:") => {}
            Some(u) => {
                let replica = replica_at(kp, u.start, make);
                let v = replica
                    .apply_proof(&theirs)
                    .unwrap_or_else(|e| panic!("{name}: replica refused JS proof: {e}"));
                assert!(
                    v.unverified_root.is_none() || theirs.seek.is_some() || u.start > 0,
                    "{name}"
                );
                assert_eq!(
                    replica.info().tree_hash,
                    writer.info().tree_hash,
                    "{name}: replica head"
                );
                if let Some(b) = &theirs.block {
                    assert_eq!(
                        replica.get(b.index).unwrap(),
                        b.value,
                        "{name}: replica block"
                    );
                }
            }
            None => {
                let head = writer.head();
                let v =
                    verify_proof(&theirs, &head, &key).unwrap_or_else(|e| panic!("{name}: {e}"));
                if let Some(root) = v.unverified_root {
                    assert_eq!(
                        writer.node(root.index).unwrap(),
                        Some(root),
                        "{name}: proof root"
                    );
                }
            }
        }
        checked += 1;
    }
    checked
}

#[test]
fn matches_js_hypercore_byte_for_byte() {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    let seed: [u8; 32] = unhex(&v["seed"]);
    let kp = KeyPair::from_seed(&seed);
    assert_eq!(kp.public().to_hex(), v["publicKey"].as_str().unwrap());
    assert_eq!(
        hex::encode(kp.secret_key()),
        v["secretKey"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(kp.public().discovery_key()),
        v["discoveryKey"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(crypto::tree_namespace()),
        v["namespaceTree"].as_str().unwrap()
    );
    for (i, leaf) in v["leaves"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            hex::encode(crypto::leaf_hash(&block(i as u64))),
            leaf.as_str().unwrap()
        );
    }
    PublicKey::from_hex(v["publicKey"].as_str().unwrap()).unwrap();

    let writer = Log::open(&SimDisk::new(), kp.public(), Access::Writer(kp.clone())).unwrap();
    let mut proofs = 0;
    for l in v["lengths"].as_array().unwrap() {
        let length = l["length"].as_u64().unwrap();
        append_up_to(&writer, length, block);
        check_head(&writer, l, &format!("length {length}"));
        proofs += check_proofs(&kp, &writer, &l["proofs"], &block);
    }
    assert!(proofs >= 70, "only {proofs} proofs checked");
}

#[test]
fn fork_matches_js_hypercore() {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    let kp = KeyPair::from_seed(&unhex(&v["seed"]));
    let f = &v["fork"];
    let writer = Log::open(&SimDisk::new(), kp.public(), Access::Writer(kp.clone())).unwrap();
    append_up_to(&writer, f["baseLength"].as_u64().unwrap(), block);
    writer.truncate(f["truncatedTo"].as_u64().unwrap()).unwrap();
    check_head(&writer, &f["afterTruncate"], "after truncate");
    let forked = |i: u64| {
        if i < 900 {
            block(i)
        } else {
            format!("forked {i}").into_bytes()
        }
    };
    append_up_to(&writer, f["length"].as_u64().unwrap(), forked);
    check_head(&writer, f, "forked");
    for i in [0, 899, 900, 1004] {
        assert_eq!(writer.get(i).unwrap(), forked(i));
    }
    // A fresh replica can follow the new fork from scratch.
    let checked = check_proofs(&kp, &writer, &f["proofs"], &forked);
    assert!(checked >= 4);
}

/// Regenerates the vectors with the real JS Hypercore and checks they are what is committed,
/// so the committed file cannot drift from what `hypercore@11.37.1` does. Needs Node and
/// `npm ci` in `tests/js` (CI installs both); skipped with a note elsewhere.
#[test]
fn committed_vectors_match_a_fresh_js_run() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let js = root.join("tests/js");
    let have_node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok();
    if !have_node || !js.join("node_modules/hypercore").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install node and run `npm ci` in tests/js"
        );
        eprintln!(
            "skipping: node or tests/js/node_modules missing (run `npm ci --prefix tests/js`)"
        );
        return;
    }
    let out = tempfile::NamedTempFile::new().unwrap();
    let status = std::process::Command::new("node")
        .arg(js.join("vectors.js"))
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success(), "vectors.js failed");
    let fresh = std::fs::read_to_string(out.path()).unwrap();
    assert!(
        fresh == VECTORS,
        "tests/js/vectors.js output differs from the committed vectors"
    );
}
