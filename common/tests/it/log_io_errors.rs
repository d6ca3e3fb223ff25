//! Failed writes and syncs without a crash: every single write, sync or resize of a workload is
//! made to fail in turn. The failed call must come back as an error without changing what the
//! log reports; a failed sync poisons the log (the page cache is in doubt, "fsyncgate") while
//! reads keep working; and the files must reopen holding every acknowledged change.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fritter_common::crypto::KeyPair;
use fritter_common::log::sim::SimDisk;
use fritter_common::log::{
    Access, Log, LogError, Proof, ProofRequest, RequestBlock, RequestUpgrade, Storage, StorageFile,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A `SimDisk` whose `fail_at`-th mutating call fails (and does nothing).
#[derive(Clone)]
struct FailDisk {
    disk: SimDisk,
    ops: Arc<AtomicU64>,
    fail_at: u64,
}

struct FailFile {
    file: Arc<dyn StorageFile>,
    ops: Arc<AtomicU64>,
    fail_at: u64,
    name: String,
}

impl Storage for FailDisk {
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(FailFile {
            file: self.disk.open(name, create)?,
            ops: self.ops.clone(),
            fail_at: self.fail_at,
            name: name.into(),
        }))
    }
    fn describe(&self) -> String {
        "simulated disk failing one call".into()
    }
}

impl FailFile {
    fn mutate(
        &self,
        what: &str,
        op: impl FnOnce(&dyn StorageFile) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.ops.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(io::Error::other(format!(
                "injected failure of {what} on {}",
                self.name
            )));
        }
        op(&*self.file)
    }
}

impl StorageFile for FailFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.mutate("write", |f| f.write_all_at(buf, offset))
    }
    fn sync(&self) -> io::Result<()> {
        self.mutate("sync", |f| f.sync())
    }
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.mutate("resize", |f| f.set_len(len))
    }
}

fn keypair() -> KeyPair {
    KeyPair::from_seed(&[3; 32])
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Model {
    fork: u64,
    entries: Vec<Vec<u8>>,
}

fn read_model(log: &Log) -> Model {
    let info = log.info();
    Model {
        fork: info.fork,
        entries: log.read_range(0, info.length).unwrap(),
    }
}

/// Runs the writer workload with call `fail_at` failing. Returns how many calls it made.
fn writer_workload(fail_at: u64) -> u64 {
    let disk = SimDisk::new();
    let ops = Arc::new(AtomicU64::new(0));
    let storage = FailDisk {
        disk: disk.clone(),
        ops: ops.clone(),
        fail_at,
    };
    let kp = keypair();
    let log = match Log::open(&storage, kp.public(), Access::Writer(kp.clone())) {
        Ok(log) => log,
        Err(e) => panic!("fail_at {fail_at}: open of an empty log failed: {e}"),
    };
    let mut rng = StdRng::seed_from_u64(fail_at);
    let mut model = Model::default();
    let mut poisoned: Option<Model> = None;
    for op in 0..14 {
        let before = log.info();
        let mut next = model.clone();
        let result = match op % 7 {
            3 | 6 if !model.entries.is_empty() => {
                let to = rng.gen_range(0..=model.entries.len());
                next.entries.truncate(to);
                next.fork += 1;
                log.truncate(to as u64)
                    .map(|()| model.entries.len().min(to) as u64)
            }
            1 | 4 => {
                let blocks: Vec<Vec<u8>> = (0..rng.gen_range(2..5))
                    .map(|j| format!("op {op} block {j} {}", "b".repeat(j * 200)).into_bytes())
                    .collect();
                next.entries.extend(blocks.iter().cloned());
                let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
                log.append_batch(&refs)
            }
            _ => {
                let b = format!("op {op} single").into_bytes();
                next.entries.push(b.clone());
                log.append(&b)
            }
        };
        match result {
            Ok(_) => {
                assert!(
                    poisoned.is_none(),
                    "fail_at {fail_at}: op {op} succeeded on a poisoned log"
                );
                model = next;
                assert_eq!(read_model(&log), model, "fail_at {fail_at}: op {op}");
            }
            Err(LogError::Poisoned(_)) => assert!(
                poisoned.is_some(),
                "fail_at {fail_at}: op {op}: poisoned without a failed sync"
            ),
            Err(e) => {
                assert!(
                    matches!(e, LogError::Io { .. }),
                    "fail_at {fail_at}: op {op}: {e:?}"
                );
                assert!(
                    e.to_string().contains("injected failure"),
                    "fail_at {fail_at}: {e}"
                );
                assert_eq!(
                    log.info(),
                    before,
                    "fail_at {fail_at}: op {op}: a failed call changed the head"
                );
                // Whether the log is poisoned shows on the next call; remember what may be on disk.
                poisoned = Some(next);
            }
        }
        // Only a sync failure (or a header write) poisons; a failed write leaves the log usable.
        if let Some(candidate) = poisoned.take() {
            match log.append(b"probe") {
                Err(LogError::Poisoned(_)) => poisoned = Some(candidate),
                Ok(seq) => {
                    assert_eq!(
                        seq,
                        model.entries.len() as u64,
                        "fail_at {fail_at}: probe after op {op}"
                    );
                    model.entries.push(b"probe".to_vec());
                }
                Err(e) => panic!("fail_at {fail_at}: probe after op {op}: {e:?}"),
            }
        }
        // Reads work whatever happened.
        assert_eq!(
            read_model(&log).entries,
            model.entries,
            "fail_at {fail_at}: reads after op {op}"
        );
    }
    drop(log);
    let total = ops.load(Ordering::SeqCst);
    let reopened = Log::open(&disk, kp.public(), Access::Writer(kp.clone()))
        .unwrap_or_else(|e| panic!("fail_at {fail_at}: reopen failed: {e}"));
    let got = read_model(&reopened);
    assert!(
        got == model || Some(&got) == poisoned.as_ref(),
        "fail_at {fail_at}: reopened fork {} length {}, expected fork {} length {}",
        got.fork,
        got.entries.len(),
        model.fork,
        model.entries.len()
    );
    reopened.append(b"after reopen").unwrap();
    total
}

#[test]
fn each_failed_writer_call_is_an_error_that_loses_nothing() {
    let total = writer_workload(0);
    assert!(total > 60, "workload made only {total} calls");
    for fail_at in 1..=total {
        writer_workload(fail_at);
    }
}

/// A replica takes an upgrade and then blocks out of order, with call `fail_at` failing; a
/// refused proof is retried once the log is reopened.
fn replica_workload(writer: &Log, at_ten: &Proof, fail_at: u64) -> u64 {
    let disk = SimDisk::new();
    let ops = Arc::new(AtomicU64::new(0));
    let storage = FailDisk {
        disk: disk.clone(),
        ops: ops.clone(),
        fail_at,
    };
    let kp = keypair();
    let mut replica = Log::open(&storage, kp.public(), Access::Replica).unwrap();
    let mut held = Vec::new();
    let mut steps: Vec<Option<u64>> = vec![None];
    steps.extend([7u64, 2, 0, 1, 3, 12, 9, 4, 5, 6, 8, 19, 10, 11].map(Some));
    steps.insert(6, None);
    let mut i = 0;
    let mut upgraded = 0;
    while i < steps.len() {
        // A step that failed may still have reached the files (a failed sync after the write).
        match steps[i] {
            Some(seq) if replica.has(seq).unwrap() => {
                held.push(seq);
                i += 1;
                continue;
            }
            None if replica.len() == if upgraded == 0 { 10 } else { writer.len() } => {
                upgraded += 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        let proof = match steps[i] {
            None if upgraded == 0 => at_ten.clone(),
            None => writer
                .proof(&ProofRequest {
                    upgrade: Some(RequestUpgrade {
                        start: replica.len(),
                        length: writer.len() - replica.len(),
                    }),
                    ..Default::default()
                })
                .unwrap(),
            Some(seq) => {
                // Counting only nodes anchored to the signed roots: a failed proof can leave a
                // node stored without its sibling, and a request that trusted it would be refused.
                let nodes = replica.missing_nodes(seq).unwrap();
                writer
                    .proof(&ProofRequest {
                        block: Some(RequestBlock { index: seq, nodes }),
                        ..Default::default()
                    })
                    .unwrap()
            }
        };
        let before = replica.info();
        eprintln!(
            "fail_at {fail_at} step {i} {:?} ops {}",
            steps[i],
            ops.load(Ordering::SeqCst)
        );
        match replica.apply_proof(&proof) {
            Ok(_) => {
                if let Some(seq) = steps[i] {
                    held.push(seq);
                } else {
                    upgraded += 1;
                }
                i += 1;
            }
            Err(LogError::Poisoned(_)) | Err(LogError::Io { .. }) => {
                assert_eq!(
                    replica.info(),
                    before,
                    "fail_at {fail_at}: a failed proof changed the head"
                );
                for &seq in &held {
                    assert_eq!(
                        replica.get(seq).unwrap(),
                        writer.get(seq).unwrap(),
                        "fail_at {fail_at}"
                    );
                }
                // Start over from the files, as the sync task would after an error.
                drop(replica);
                replica = Log::open(&disk, kp.public(), Access::Replica)
                    .unwrap_or_else(|e| panic!("fail_at {fail_at}: reopen: {e}"));
            }
            Err(e) => panic!("fail_at {fail_at}: step {i}: {e:?}"),
        }
    }
    let total = ops.load(Ordering::SeqCst);
    drop(replica);
    let reopened = Log::open(&disk, kp.public(), Access::Replica).unwrap();
    assert_eq!(
        reopened.info().tree_hash,
        writer.info().tree_hash,
        "fail_at {fail_at}"
    );
    for &seq in &held {
        assert!(
            reopened.has(seq).unwrap(),
            "fail_at {fail_at}: block {seq} lost"
        );
        assert_eq!(
            reopened
                .get(seq)
                .unwrap_or_else(|e| panic!("fail_at {fail_at}: get({seq}): {e}")),
            writer.get(seq).unwrap(),
            "fail_at {fail_at}"
        );
    }
    assert_eq!(reopened.info().contiguous, 13, "fail_at {fail_at}");
    total
}

#[test]
fn each_failed_replica_call_is_an_error_that_loses_nothing() {
    let kp = keypair();
    let writer = Log::open(&SimDisk::new(), kp.public(), Access::Writer(kp.clone())).unwrap();
    for i in 0..10 {
        writer.append(format!("replicated {i}").as_bytes()).unwrap();
    }
    let at_ten = writer
        .proof(&ProofRequest {
            upgrade: Some(RequestUpgrade {
                start: 0,
                length: 10,
            }),
            ..Default::default()
        })
        .unwrap();
    for i in 10..20 {
        writer
            .append(format!("replicated {i} {}", "r".repeat(i * 40)).as_bytes())
            .unwrap();
    }
    let total = replica_workload(&writer, &at_ten, 0);
    assert!(total > 40, "workload made only {total} calls");
    for fail_at in 1..=total {
        replica_workload(&writer, &at_ten, fail_at);
    }
}
