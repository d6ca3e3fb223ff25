//! The seed corpus: real entries, files, paths and URLs; proofs the writers of [`world`] answer,
//! plus the JS Hypercore proofs of `common/tests/vectors`; and the files of small real logs
//! (writer, forked writer, sparse replica, torn tails, a broken header slot).
//!
//! Written by [`write_all`], which the smoke script reaches through the `proof_verify` target
//! (see [`write_if_asked`]) so CI builds nothing extra; `examples/seed_corpus.rs` does the same
//! by hand. Seeds are named by content hash, so writing again adds nothing new and never removes
//! what the fuzzer found.

use std::path::{Path, PathBuf};

use crate::{copy_disk, keypair, world, StorageInput};
use fritter_common::log::sim::SimDisk;
use fritter_common::log::{Access, Log, Storage};
use fritter_common::replicate::wire::encode_data;
use fritter_common::model::{
    ArchiveUrl, Entry, File, Follows, HostingRequest, Like, OwnershipProof, Profile, Status,
    StatusId, Timestamp,
};

struct Seeds {
    dir: PathBuf,
    count: usize,
}

impl Seeds {
    fn add(&mut self, target: &str, bytes: &[u8]) {
        let dir = self.dir.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        let hash = seed_name(bytes);
        let path = dir.join(format!("seed-{hash}"));
        if !path.exists() {
            std::fs::write(&path, bytes).expect("write seed");
            self.count += 1;
        }
    }
}

/// A short, stable name for a seed (FNV-1a; collisions only cost a seed).
fn seed_name(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn sample_files() -> Vec<File> {
    let friend: ArchiveUrl =
        "hyper://8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c/"
            .parse()
            .expect("url");
    let other = ArchiveUrl::root(keypair().public().into());
    let t: Timestamp = "2024-05-01T12:00:00.000Z".parse().expect("time");
    let id = StatusId::from_parts(1_714_564_800_000_000, 7).expect("id");
    let id2 = StatusId::from_parts(1_714_564_900_000_000, 1).expect("id");
    let text = "Lunch with @bobjones at the #café, then #日本語 and #Straße https://x/#frag";
    let mut status = Status::new(text, t);
    status.tags = fritter_common::model::extract_tags(text);
    status.mentions =
        fritter_common::model::resolve_mentions(text, &[("Bob Jones", friend.clone())]);
    status.lang = Some("en".into());
    let mut reply = Status::new("@bob agreed!\nsecond line\ttab", t);
    reply.reply = Some(fritter_common::model::Reply {
        root: fritter_common::model::ThreadRef {
            url: ArchiveUrl::status(friend.key(), id),
            seq: 12,
            hash: [0xab; 32],
        },
        parent: fritter_common::model::ThreadRef {
            url: ArchiveUrl::status(other.key(), id2),
            seq: 3,
            hash: [0x01; 32],
        },
    });
    vec![
        File::Profile(Profile {
            name: "Ada Lovelace".into(),
            bio: "Counting engines.\nLondon".into(),
            avatar: Some("/avatar.png".parse().expect("path")),
        }),
        File::Profile(Profile {
            name: "Bob".into(),
            bio: String::new(),
            avatar: None,
        }),
        File::Follows(Follows {
            urls: vec![friend.clone(), other.clone()],
        }),
        File::Follows(Follows::default()),
        File::Status { id, status },
        File::Status {
            id: id2,
            status: reply,
        },
        File::Like(Like {
            subject: ArchiveUrl::status(friend.key(), id),
            created_at: t,
        }),
        File::Proof(OwnershipProof {
            service: "https://crawler.example:8443/verify"
                .parse()
                .expect("service"),
            nonce: [0x5a; 16],
            created_at: t,
        }),
        File::Hosting {
            name: "x".into(),
            request: HostingRequest { url: friend },
        },
        File::Hosting {
            name: "my-site_2".into(),
            request: HostingRequest { url: other },
        },
    ]
}

fn model_seeds(seeds: &mut Seeds) {
    for file in sample_files() {
        let entry = file.to_entry().expect("sample file is valid");
        seeds.add("entry_decode", &entry.encode_checked().expect("checked"));
        seeds.add(
            "entry_decode",
            &Entry::Del {
                path: entry.path().clone(),
            }
            .encode(),
        );
        seeds.add("schema_validate", file.to_value().to_string().as_bytes());
        seeds.add("path_and_url", entry.path().as_str().as_bytes());
        let pretty = serde_json::to_string_pretty(&file.to_value()).expect("json");
        seeds.add("schema_validate", pretty.as_bytes());
    }
    for text in [
        "hello #world and @alice.smith, see https://example.com/#not-a-tag and a#b",
        "#123 #_ #a_b #ÉTÉ @bob. @-x @日本 email bob@example.com",
        "@a@b ##double #tag#tag @@x",
        "",
    ] {
        seeds.add("schema_validate", text.as_bytes());
    }
    for entry in [
        &br#"{"op":"put","path":"/a.json","value":{"x":1}}"#[..],
        br#"{"v":1,"op":"del","path":"/statuses/3kq2nzxh4vk22.json"}"#,
        br#"{"op":"put","path":"/profile.json","value":{"name":"  Ada  ","bio":"x","extra":[[[1]]]}}"#,
        br#"{"op":"put","path":"/statuses/3kq2nzxh4vk22.json","value":{"text":"n","createdAt":"2024-05-01T12:00:00Z","n":1e2}}"#,
    ] {
        seeds.add("entry_decode", entry);
    }
    let key = keypair().public().to_hex();
    for s in [
        "/".to_owned(),
        "/profile.json".to_owned(),
        "/statuses/3kq2nzxh4vk22.json".to_owned(),
        "/a/b/c/d.json".to_owned(),
        "/é/日本/x y.json".to_owned(),
        "3kq2nzxh4vk22".to_owned(),
        "2222222222222".to_owned(),
        "bzzzzzzzzzzzz".to_owned(),
        key.clone(),
        key.to_uppercase(),
        format!("  {key}\n"),
        format!("hyper://{key}"),
        format!("hyper://{key}/"),
        format!("hyper://{}/", key.to_uppercase()),
        format!("hyper://{key}/statuses/3kq2nzxh4vk22.json"),
        format!("hyper://{key}/likes/0123456789abcdef0123456789abcdef.json"),
    ] {
        seeds.add("path_and_url", s.as_bytes());
    }
}

fn proof_seeds(seeds: &mut Seeds) {
    let w = world();
    for proof in w
        .mid_proofs
        .iter()
        .chain(&w.main_proofs)
        .chain(&w.forked_proofs)
    {
        seeds.add("proof_verify", &encode_data(0, proof).expect("encode"));
    }
    seeds.add(
        "proof_verify",
        &encode_data(1234567, &w.main_proofs[0]).expect("encode"),
    );
    // Proofs JS Hypercore produced (another key and log): real wire bytes of every shape.
    let vectors =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/hypercore-11.37.1.json");
    if let Ok(text) = std::fs::read_to_string(&vectors) {
        let json: serde_json::Value = serde_json::from_str(&text).expect("vectors json");
        let mut wires = Vec::new();
        collect_wires(&json, &mut wires);
        for wire in wires {
            if let Ok(bytes) = hex::decode(wire) {
                seeds.add("proof_verify", &bytes);
            }
        }
    }
}

fn collect_wires<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    ("wire", Some(s)) => out.push(s),
                    _ => collect_wires(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_wires(v, out)),
        _ => {}
    }
}

fn storage_seeds(seeds: &mut Seeds) {
    let w = world();
    let mut disks: Vec<SimDisk> = vec![
        copy_disk(&w.main_disk),
        copy_disk(&w.main_mid_disk),
        copy_disk(&w.forked_disk),
        copy_disk(&w.mid_replica),
    ];
    // An empty log.
    let empty = SimDisk::new();
    Log::open(&empty, w.key, Access::Writer(keypair())).expect("open empty");
    disks.push(empty);
    // Torn tails: garbage past the signed end of the tree and data files.
    let torn = copy_disk(&w.main_disk);
    for (name, junk) in [("tree", &[0xee; 57][..]), ("data", b"torn tail bytes")] {
        let f = torn.open(name, false).expect("open");
        let len = f.len().expect("len");
        f.write_all_at(junk, len).expect("write");
        f.sync().expect("sync");
    }
    disks.push(torn);
    // Newer commits on top of the mid log, then one header slot or the other broken, as a torn
    // header write would leave it: open must fall back to the other slot.
    for slot in 0..2u64 {
        let broken = copy_disk(&w.main_mid_disk);
        {
            let log = Log::open(&broken, w.key, Access::Writer(keypair())).expect("open");
            for seq in crate::MID_LEN..crate::MID_LEN + 3 {
                log.append(&crate::block(0, seq)).expect("append");
            }
        }
        broken.flip_bit("tree", slot * crate::SLOT_BYTES as u64 + 60, 3);
        disks.push(broken);
    }
    for disk in &disks {
        // The compact form must hold the same log: it opens at the same head as the original.
        let original = Log::open(disk, w.key, Access::View)
            .expect("seed log opens")
            .head();
        for flags in [
            0,
            StorageInput::REPLICA,
            StorageInput::WRITER | StorageInput::FIX_CRC0 | StorageInput::FIX_CRC1,
        ] {
            let input =
                StorageInput::from_disk(disk, flags).expect("seed log fits the input format");
            let bytes = input.encode();
            assert_eq!(StorageInput::decode(&bytes).as_ref(), Some(&input));
            let reopened = Log::open(&input.to_disk(), w.key, Access::View)
                .expect("seed input opens")
                .head();
            assert_eq!(reopened, original, "seed input opens at another head");
            seeds.add("storage_open", &bytes);
        }
    }
}

/// The fuzz targets, each of which gets a corpus directory.
pub const TARGETS: [&str; 5] = [
    "entry_decode",
    "proof_verify",
    "storage_open",
    "schema_validate",
    "path_and_url",
];

/// Writes every target's seeds into `<dir>/<target>/`; returns how many were new.
pub fn write_all(dir: &Path) -> usize {
    let mut seeds = Seeds {
        dir: dir.to_owned(),
        count: 0,
    };
    model_seeds(&mut seeds);
    proof_seeds(&mut seeds);
    storage_seeds(&mut seeds);
    for target in TARGETS {
        std::fs::create_dir_all(seeds.dir.join(target)).expect("create corpus dir");
    }
    seeds.count
}

/// The environment variable that makes a fuzz target write the seed corpus and exit.
pub const SEED_ENV: &str = "FRITTER_FUZZ_WRITE_SEEDS";

/// When [`SEED_ENV`] names a directory, writes the seeds there and exits the process; called
/// from a fuzz target's `init`, so the smoke script needs no second build for the seeds.
pub fn write_if_asked() {
    if let Some(dir) = std::env::var_os(SEED_ENV) {
        let dir = PathBuf::from(dir);
        let n = write_all(&dir);
        println!("seed corpus: {n} new seeds in {}", dir.display());
        std::process::exit(0);
    }
}
