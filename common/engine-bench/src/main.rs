//! Measures the log storage choice of `fritter_common::log` (append-only files per log with
//! group commit) against two embedded transactional stores, redb and fjall, on the same
//! workload. See `docs/storage-engine.md` for the question, the results and the decision.
//!
//! Every engine does the same CPU work per commit: the real merkle tree (`TreeHead::append_block`,
//! BLAKE2b leaf and parent hashes) and one ed25519 signature per log per commit. redb and fjall
//! store byte-equivalent records: the block, its tree nodes (40 bytes each: the leaf and the
//! parents it completes, one per entry on average) and a per-log head record (generation, key,
//! fork, length, byte length, signature, roots) rewritten on every commit. Concurrent appenders
//! are merged into one durable write transaction / one journal sync by a leader-follower group
//! commit, the same scheme `Log::append_batch` uses.
//!
//! Run: `cargo run --release --manifest-path common/engine-bench/Cargo.toml`
//! Env: `ENGINE_BENCH_QUICK=1` (smoke run), `ENGINE_BENCH_DIR=path` (where the stores go; must be
//! a real disk), `ENGINE_BENCH_ENGINES=ours,redb,fjall`, `ENGINE_BENCH_WORKLOADS=1,2,3,3b,4,5`.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use fritter_common::crypto::{KeyPair, PublicKey};
use fritter_common::log::{Access, DiskStorage, Log, Node, TreeHead};
use rand::{Rng, RngCore, SeedableRng};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const BLOCK: usize = 300;

// ---------------------------------------------------------------------------------------------
// Parameters

#[derive(Clone)]
struct Params {
    quick: bool,
    w1_threads: usize,
    w1_per_thread: usize,
    w2_commits: usize,
    w2_batch: usize,
    w3_logs: usize,
    w3_entries: usize,
    w3b_threads: usize,
    w4_samples: usize,
    engines: Vec<String>,
    workloads: Vec<String>,
}

impl Params {
    fn from_env() -> Params {
        let quick = std::env::var("ENGINE_BENCH_QUICK").map(|v| !v.is_empty() && v != "0").unwrap_or(false);
        let list = |var: &str, default: &str| -> Vec<String> {
            std::env::var(var)
                .unwrap_or_else(|_| default.to_owned())
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Params {
            quick,
            w1_threads: 64,
            w1_per_thread: if quick { 10 } else { 200 },
            w2_commits: if quick { 20 } else { 1000 },
            w2_batch: 1000,
            w3_logs: if quick { 300 } else { 10_000 },
            w3_entries: 100,
            w3b_threads: 8,
            w4_samples: if quick { 20 } else { 200 },
            engines: list("ENGINE_BENCH_ENGINES", "ours,redb,fjall"),
            workloads: list("ENGINE_BENCH_WORKLOADS", "1,2,3,3b,4,5"),
        }
    }
    fn wants(&self, w: &str) -> bool {
        self.workloads.iter().any(|x| x == w)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Deterministic key pair for log `id`, so a child process can recreate it.
fn keypair(id: u64) -> KeyPair {
    let mut seed = [0x42u8; 32];
    seed[..8].copy_from_slice(&id.to_le_bytes());
    KeyPair::from_seed(&seed)
}

/// A pool of random bytes; blocks are windows into it (distinct, incompressible, free to make).
struct Payload {
    pool: Vec<u8>,
}

impl Payload {
    fn new() -> Payload {
        let mut pool = vec![0u8; 4 << 20];
        rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut pool);
        Payload { pool }
    }
    fn block(&self, n: u64) -> &[u8] {
        let off = ((n.wrapping_mul(2_654_435_761)) % (self.pool.len() - BLOCK) as u64) as usize;
        &self.pool[off..off + BLOCK]
    }
    fn blocks(&self, start: u64, count: usize) -> Vec<&[u8]> {
        (0..count as u64).map(|i| self.block(start + i)).collect()
    }
}

#[derive(Default, Clone, Copy)]
struct Usage {
    files: u64,
    dirs: u64,
    apparent: u64,
    allocated: u64,
}

/// Sum of file sizes and of allocated blocks (what `du` reports, directories included).
fn usage(path: &Path) -> Usage {
    use std::os::unix::fs::MetadataExt;
    let mut u = Usage::default();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        u.allocated += m.blocks() * 512;
        if m.is_dir() {
            u.dirs += 1;
            if let Ok(rd) = std::fs::read_dir(&p) {
                for e in rd.flatten() {
                    stack.push(e.path());
                }
            }
        } else {
            u.files += 1;
            u.apparent += m.len();
        }
    }
    u
}

/// Drops the page cache for every file under `path` (only our files: nothing global).
fn evict(path: &Path) {
    use std::os::unix::io::AsRawFd;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        if m.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                for e in rd.flatten() {
                    stack.push(e.path());
                }
            }
        } else if let Ok(f) = std::fs::File::open(&p) {
            unsafe {
                libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
            }
        }
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn rate(n: f64) -> String {
    if n >= 10_000.0 {
        format!("{:.0}k", n / 1000.0)
    } else {
        format!("{n:.0}")
    }
}

/// What one sync costs on this disk: after a 4 KiB append, after a 4 KiB overwrite, and on a
/// directory (what `DiskStorage::open(create = true)` does on every open).
fn fsync_costs(dir: &Path) -> Res<String> {
    use std::os::unix::fs::FileExt;
    let d = dir.join("fsync-probe");
    std::fs::create_dir_all(&d)?;
    let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(d.join("f"))?;
    let buf = [7u8; 4096];
    let n = 200;
    let t0 = Instant::now();
    for i in 0..n {
        f.write_all_at(&buf, i * 4096)?;
        f.sync_data()?;
    }
    let append = t0.elapsed() / n as u32;
    let t0 = Instant::now();
    for _ in 0..n {
        f.write_all_at(&buf, 0)?;
        f.sync_data()?;
    }
    let overwrite = t0.elapsed() / n as u32;
    let t0 = Instant::now();
    for _ in 0..n {
        std::fs::File::open(&d)?.sync_all()?;
    }
    let dirsync = t0.elapsed() / n as u32;
    std::fs::remove_dir_all(&d)?;
    Ok(format!(
        "fdatasync after a 4 KiB append {}, after a 4 KiB overwrite {}, fsync of a clean directory {}",
        ms(append),
        ms(overwrite),
        ms(dirsync)
    ))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// The key-value model of a log, shared by redb and fjall

/// One atomic, durable write: blocks `(log, seq) -> bytes`, nodes `(log, flat index) -> 40
/// bytes`, heads `log -> record`.
#[derive(Default)]
struct WriteSet {
    blocks: Vec<(u64, u64, Vec<u8>)>,
    nodes: Vec<(u64, u64, [u8; 40])>,
    heads: Vec<(u64, Vec<u8>)>,
}

trait Kv: Send + Sync {
    fn name(&self) -> &'static str;
    /// Atomic and durable when it returns.
    fn commit(&self, ws: &WriteSet) -> Res<()>;
    fn head(&self, log: u64) -> Res<Option<Vec<u8>>>;
    fn block(&self, log: u64, seq: u64) -> Res<Option<Vec<u8>>>;
    fn node(&self, log: u64, index: u64) -> Res<Option<Vec<u8>>>;
    /// Brings the store to rest before measuring its size (fjall: flush memtables).
    fn settle(&self) -> Res<()> {
        Ok(())
    }
}

fn key2(a: u64, b: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..].copy_from_slice(&b.to_be_bytes());
    k
}

fn encode_node(n: &Node) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..32].copy_from_slice(&n.hash);
    out[32..].copy_from_slice(&n.size.to_le_bytes());
    out
}

/// The per-log head record: generation, key, fork, length, byte length, signature, roots.
fn encode_head(generation: u64, key: &PublicKey, h: &TreeHead) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + 48 * h.roots.len());
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&h.fork.to_le_bytes());
    out.extend_from_slice(&h.length.to_le_bytes());
    out.extend_from_slice(&h.byte_length.to_le_bytes());
    out.extend_from_slice(&h.signature.unwrap_or([0; 64]));
    out.push(h.roots.len() as u8);
    for r in &h.roots {
        out.extend_from_slice(&r.index.to_le_bytes());
        out.extend_from_slice(&r.size.to_le_bytes());
        out.extend_from_slice(&r.hash);
    }
    out
}

/// Decodes a head record and verifies its signature, as `Log::open` does with its header.
fn decode_head(b: &[u8]) -> Res<(u64, PublicKey, TreeHead)> {
    let u = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let generation = u(0);
    let key = PublicKey::from_bytes(b[8..40].try_into().unwrap())?;
    let (fork, length, byte_length) = (u(40), u(48), u(56));
    let sig: [u8; 64] = b[64..128].try_into().unwrap();
    let n = b[128] as usize;
    let mut roots = Vec::with_capacity(n);
    for i in 0..n {
        let o = 129 + 48 * i;
        roots.push(Node { index: u(o), size: u(o + 8), hash: b[o + 16..o + 48].try_into().unwrap() });
    }
    let head = TreeHead { fork, length, byte_length, roots, signature: (length > 0).then_some(sig) };
    if length > 0 && !key.verify(&head.signable(), &sig) {
        return Err("head signature does not verify".into());
    }
    Ok((generation, key, head))
}

struct LogMeta {
    kp: KeyPair,
    head: TreeHead,
    generation: u64,
}

struct Req {
    log: u64,
    blocks: Vec<Vec<u8>>,
}

struct KvState {
    logs: HashMap<u64, LogMeta>,
    pending: Vec<Req>,
    open_batch: u64,
    done_batch: u64,
    committing: bool,
    results: VecDeque<(u64, Arc<Vec<u64>>)>,
    commits: u64,
}

/// Logs on a transactional store, with a store-wide group commit: every append queued while a
/// commit runs (for any log) goes into the next write transaction.
struct KvStore {
    kv: Box<dyn Kv>,
    st: Mutex<KvState>,
    cond: Condvar,
}

impl KvStore {
    fn new(kv: Box<dyn Kv>) -> KvStore {
        KvStore {
            kv,
            st: Mutex::new(KvState {
                logs: HashMap::new(),
                pending: Vec::new(),
                open_batch: 1,
                done_batch: 1,
                committing: false,
                results: VecDeque::new(),
                commits: 0,
            }),
            cond: Condvar::new(),
        }
    }

    /// Opens log `id` for writing: reads and verifies its head record if there is one.
    fn open_log(&self, id: u64, kp: KeyPair) -> Res<()> {
        let (head, generation) = match self.kv.head(id)? {
            Some(b) => {
                let (g, key, h) = decode_head(&b)?;
                if key != kp.public() {
                    return Err("head record belongs to another key".into());
                }
                (h, g)
            }
            None => (TreeHead::default(), 0),
        };
        self.st.lock().unwrap().logs.insert(id, LogMeta { kp, head, generation });
        Ok(())
    }

    fn commits(&self) -> u64 {
        self.st.lock().unwrap().commits
    }

    fn len(&self, id: u64) -> u64 {
        self.st.lock().unwrap().logs[&id].head.length
    }

    /// Appends blocks to log `id`; returns the first sequence number once they are durable.
    fn append(&self, id: u64, blocks: &[&[u8]]) -> Res<u64> {
        let mut st = self.st.lock().unwrap();
        let batch = st.open_batch;
        let pos = st.pending.len();
        st.pending.push(Req { log: id, blocks: blocks.iter().map(|b| b.to_vec()).collect() });
        loop {
            if st.done_batch > batch {
                let r = st.results.iter().find(|(b, _)| *b == batch).map(|(_, r)| r.clone());
                return r.map(|r| r[pos]).ok_or_else(|| "commit failed".into());
            }
            if !st.committing && st.open_batch == batch {
                st.committing = true;
                st.open_batch += 1;
                let reqs = std::mem::take(&mut st.pending);
                let mut metas: HashMap<u64, (TreeHead, u64, KeyPair)> = HashMap::new();
                for r in &reqs {
                    let m = &st.logs[&r.log];
                    metas.entry(r.log).or_insert_with(|| (m.head.clone(), m.generation, m.kp.clone()));
                }
                drop(st);
                let outcome = self.commit(reqs, &mut metas);
                st = self.st.lock().unwrap();
                if let Ok(starts) = outcome {
                    for (id, (head, generation, _)) in metas {
                        let m = st.logs.get_mut(&id).unwrap();
                        m.head = head;
                        m.generation = generation;
                    }
                    st.results.push_back((batch, Arc::new(starts)));
                    while st.results.len() > 1024 {
                        st.results.pop_front();
                    }
                } else if let Err(e) = outcome {
                    eprintln!("{} commit failed: {e}", self.kv.name());
                }
                st.commits += 1;
                st.done_batch = batch + 1;
                st.committing = false;
                self.cond.notify_all();
                continue;
            }
            st = self.cond.wait(st).unwrap();
        }
    }

    /// Builds the nodes, signs every touched log once, writes everything in one transaction.
    fn commit(&self, reqs: Vec<Req>, metas: &mut HashMap<u64, (TreeHead, u64, KeyPair)>) -> Res<Vec<u64>> {
        let mut ws = WriteSet::default();
        let mut starts = Vec::with_capacity(reqs.len());
        let mut added = Vec::new();
        let mut touched = Vec::new();
        for r in reqs {
            let (head, _, _) = metas.get_mut(&r.log).unwrap();
            if !touched.contains(&r.log) {
                touched.push(r.log);
            }
            starts.push(head.length);
            for b in r.blocks {
                added.clear();
                let seq = head.length;
                head.append_block(&b, &mut added)?;
                for n in &added {
                    ws.nodes.push((r.log, n.index, encode_node(n)));
                }
                ws.blocks.push((r.log, seq, b));
            }
        }
        for id in touched {
            let (head, generation, kp) = metas.get_mut(&id).unwrap();
            head.signature = Some(kp.sign(&head.signable()));
            *generation += 1;
            ws.heads.push((id, encode_head(*generation, &kp.public(), head)));
        }
        self.kv.commit(&ws)?;
        Ok(starts)
    }

    /// Reads block `seq` of log `id` and checks it against its stored leaf node.
    fn check_block(&self, id: u64, seq: u64) -> Res<()> {
        let b = self.kv.block(id, seq)?.ok_or("block missing")?;
        let n = self.kv.node(id, 2 * seq)?.ok_or("leaf missing")?;
        if fritter_common::crypto::leaf_hash(&b) != n[..32] {
            return Err("block does not match its leaf".into());
        }
        Ok(())
    }
}

// ---- redb ----

mod redb_kv {
    use super::*;
    use redb::{Database, Durability, TableDefinition};

    const BLOCKS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("blocks");
    const NODES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("nodes");
    const HEADS: TableDefinition<u64, &[u8]> = TableDefinition::new("heads");

    pub struct RedbKv {
        pub db: Database,
    }

    pub fn file(dir: &Path) -> PathBuf {
        dir.join("logs.redb")
    }

    impl RedbKv {
        pub fn open(dir: &Path) -> Res<RedbKv> {
            std::fs::create_dir_all(dir)?;
            let db = Database::builder()
                .set_repair_callback(|s| {
                    if s.progress() == 0.0 {
                        println!("  [redb] the database was not shut down cleanly: full repair runs");
                    }
                })
                .create(file(dir))?;
            let tx = db.begin_write()?;
            tx.open_table(BLOCKS)?;
            tx.open_table(NODES)?;
            tx.open_table(HEADS)?;
            tx.commit()?;
            Ok(RedbKv { db })
        }
    }

    impl Kv for RedbKv {
        fn name(&self) -> &'static str {
            "redb"
        }
        fn commit(&self, ws: &WriteSet) -> Res<()> {
            let mut tx = self.db.begin_write()?;
            tx.set_durability(Durability::Immediate);
            {
                let mut t = tx.open_table(BLOCKS)?;
                for (l, s, b) in &ws.blocks {
                    t.insert((*l, *s), b.as_slice())?;
                }
                let mut t = tx.open_table(NODES)?;
                for (l, i, n) in &ws.nodes {
                    t.insert((*l, *i), n.as_slice())?;
                }
                let mut t = tx.open_table(HEADS)?;
                for (l, h) in &ws.heads {
                    t.insert(*l, h.as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        }
        fn head(&self, log: u64) -> Res<Option<Vec<u8>>> {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(HEADS)?;
            Ok(t.get(log)?.map(|v| v.value().to_vec()))
        }
        fn block(&self, log: u64, seq: u64) -> Res<Option<Vec<u8>>> {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(BLOCKS)?;
            Ok(t.get((log, seq))?.map(|v| v.value().to_vec()))
        }
        fn node(&self, log: u64, index: u64) -> Res<Option<Vec<u8>>> {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(NODES)?;
            Ok(t.get((log, index))?.map(|v| v.value().to_vec()))
        }
    }
}

// ---- fjall ----

mod fjall_kv {
    use super::*;
    use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};

    pub struct FjallKv {
        pub ks: Keyspace,
        blocks: PartitionHandle,
        nodes: PartitionHandle,
        heads: PartitionHandle,
    }

    impl FjallKv {
        pub fn open(dir: &Path) -> Res<FjallKv> {
            let ks = Config::new(dir).open()?;
            let blocks = ks.open_partition("blocks", PartitionCreateOptions::default())?;
            let nodes = ks.open_partition("nodes", PartitionCreateOptions::default())?;
            let heads = ks.open_partition("heads", PartitionCreateOptions::default())?;
            Ok(FjallKv { ks, blocks, nodes, heads })
        }
    }

    impl Kv for FjallKv {
        fn name(&self) -> &'static str {
            "fjall"
        }
        fn commit(&self, ws: &WriteSet) -> Res<()> {
            let mut b = self.ks.batch().durability(Some(PersistMode::SyncData));
            for (l, s, v) in &ws.blocks {
                b.insert(&self.blocks, key2(*l, *s), v.as_slice());
            }
            for (l, i, n) in &ws.nodes {
                b.insert(&self.nodes, key2(*l, *i), n.as_slice());
            }
            for (l, h) in &ws.heads {
                b.insert(&self.heads, l.to_be_bytes(), h.as_slice());
            }
            b.commit()?;
            Ok(())
        }
        fn head(&self, log: u64) -> Res<Option<Vec<u8>>> {
            Ok(self.heads.get(log.to_be_bytes())?.map(|v| v.to_vec()))
        }
        fn block(&self, log: u64, seq: u64) -> Res<Option<Vec<u8>>> {
            Ok(self.blocks.get(key2(log, seq))?.map(|v| v.to_vec()))
        }
        fn node(&self, log: u64, index: u64) -> Res<Option<Vec<u8>>> {
            Ok(self.nodes.get(key2(log, index))?.map(|v| v.to_vec()))
        }
        fn settle(&self) -> Res<()> {
            for p in [&self.blocks, &self.nodes, &self.heads] {
                p.rotate_memtable_and_wait()?;
            }
            Ok(())
        }
    }
}

fn open_kv(engine: &str, dir: &Path) -> Res<Box<dyn Kv>> {
    Ok(match engine {
        "redb" => Box::new(redb_kv::RedbKv::open(dir)?),
        "fjall" => Box::new(fjall_kv::FjallKv::open(dir)?),
        e => return Err(format!("unknown engine {e}").into()),
    })
}

// ---- ours ----

fn our_dir(root: &Path, id: u64) -> PathBuf {
    root.join("archives").join(keypair(id).public().to_hex())
}

fn open_ours(root: &Path, id: u64) -> Res<Log> {
    let kp = keypair(id);
    Ok(Log::open(&DiskStorage::new(our_dir(root, id)), kp.public(), Access::Writer(kp))?)
}

/// Commits so far, read from the two header slots (generation sits after the 8-byte magic).
fn our_commits(root: &Path, id: u64) -> u64 {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(our_dir(root, id).join("tree")).unwrap();
    (0..2)
        .map(|i| {
            let mut b = [0u8; 8];
            f.read_exact_at(&mut b, i * 4096 + 8).map(|_| u64::from_le_bytes(b)).unwrap_or(0)
        })
        .max()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Results

#[derive(Default)]
struct Table {
    rows: Vec<(String, HashMap<String, String>)>,
}

impl Table {
    fn set(&mut self, row: &str, engine: &str, value: String) {
        println!("  [{engine}] {row}: {value}");
        if let Some((_, m)) = self.rows.iter_mut().find(|(r, _)| r == row) {
            m.insert(engine.to_owned(), value);
        } else {
            let mut m = HashMap::new();
            m.insert(engine.to_owned(), value);
            self.rows.push((row.to_owned(), m));
        }
    }
    fn print(&self, engines: &[String]) {
        println!("\n| workload | {} |", engines.join(" | "));
        println!("|---|{}", "---|".repeat(engines.len()));
        for (row, m) in &self.rows {
            let cells: Vec<String> = engines.iter().map(|e| m.get(e).cloned().unwrap_or_else(|| "–".into())).collect();
            println!("| {row} | {} |", cells.join(" | "));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Workloads

/// 1: durable single appends from many threads on one log.
fn w1(p: &Params, engine: &str, dir: &Path, pay: &Arc<Payload>, t: &mut Table) -> Res<()> {
    let threads = p.w1_threads;
    let per = p.w1_per_thread;
    let barrier = Arc::new(Barrier::new(threads + 1));
    let total = (threads * per) as f64;
    enum Target {
        Ours(Arc<Log>),
        Kv(Arc<KvStore>),
    }
    let target = if engine == "ours" {
        Target::Ours(Arc::new(open_ours(dir, 1)?))
    } else {
        let s = Arc::new(KvStore::new(open_kv(engine, dir)?));
        s.open_log(1, keypair(1))?;
        Target::Kv(s)
    };
    let mut handles = Vec::new();
    for th in 0..threads {
        let barrier = barrier.clone();
        let pay = pay.clone();
        let target = match &target {
            Target::Ours(l) => Target::Ours(l.clone()),
            Target::Kv(s) => Target::Kv(s.clone()),
        };
        handles.push(std::thread::spawn(move || -> Vec<Duration> {
            let mut lat = Vec::with_capacity(per);
            barrier.wait();
            for i in 0..per {
                let b = pay.block((th * per + i) as u64);
                let t0 = Instant::now();
                match &target {
                    Target::Ours(l) => {
                        l.append(b).expect("append");
                    }
                    Target::Kv(s) => {
                        s.append(1, &[b]).expect("append");
                    }
                }
                lat.push(t0.elapsed());
            }
            lat
        }));
    }
    barrier.wait();
    let t0 = Instant::now();
    let mut lat: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let el = t0.elapsed();
    lat.sort();
    let (len, commits) = match &target {
        Target::Ours(l) => (l.len(), our_commits(dir, 1)),
        Target::Kv(s) => (s.len(1), s.commits()),
    };
    assert_eq!(len as usize, threads * per);
    if let Target::Kv(s) = &target {
        s.check_block(1, len - 1)?;
    } else if let Target::Ours(l) = &target {
        l.get(len - 1)?;
    }
    t.set(
        "1. 64 threads × durable single append, one log: appends/s",
        engine,
        format!("{} /s", rate(total / el.as_secs_f64())),
    );
    t.set(
        "1. … latency p50 / p99",
        engine,
        format!("{} / {}", ms(pct(&lat, 0.5)), ms(pct(&lat, 0.99))),
    );
    t.set("1. … commits (mean appends per commit)", engine, format!("{commits} ({:.1})", total / commits as f64));
    Ok(())
}

/// 2 and 5: batched durable appends on one log, then its size at rest.
fn w2(p: &Params, engine: &str, dir: &Path, pay: &Payload, t: &mut Table) -> Res<()> {
    let n = p.w2_commits;
    let batch = p.w2_batch;
    let entries = (n * batch) as u64;
    let mut lat = Vec::with_capacity(n);
    let el;
    if engine == "ours" {
        let log = open_ours(dir, 2)?;
        let t0 = Instant::now();
        for c in 0..n {
            let blocks = pay.blocks((c * batch) as u64, batch);
            let t1 = Instant::now();
            log.append_batch(&blocks)?;
            lat.push(t1.elapsed());
        }
        el = t0.elapsed();
        assert_eq!(log.len(), entries);
        log.get(entries / 2)?;
    } else {
        let s = KvStore::new(open_kv(engine, dir)?);
        s.open_log(2, keypair(2))?;
        let t0 = Instant::now();
        for c in 0..n {
            let blocks = pay.blocks((c * batch) as u64, batch);
            let t1 = Instant::now();
            s.append(2, &blocks)?;
            lat.push(t1.elapsed());
        }
        el = t0.elapsed();
        assert_eq!(s.len(2), entries);
        s.check_block(2, entries / 2)?;
        let t1 = Instant::now();
        s.kv.settle()?;
        if engine == "fjall" {
            println!("  [fjall] memtable flush after the run: {}", ms(t1.elapsed()));
        }
    }
    lat.sort();
    t.set(
        "2. batched appends (1000 × 300 B per durable commit), one log: entries/s",
        engine,
        format!("{} /s", rate(entries as f64 / el.as_secs_f64())),
    );
    t.set("2. … commit latency p50 / p99", engine, format!("{} / {}", ms(pct(&lat, 0.5)), ms(pct(&lat, 0.99))));
    if p.wants("5") {
        let u = usage(dir);
        let payload = entries * BLOCK as u64;
        t.set(
            &format!("5. size at rest, {} entries × 300 B in one log (du / ratio to payload)", entries),
            engine,
            format!("{} / {:.2}×", mib(u.allocated), u.allocated as f64 / payload as f64),
        );
        t.set("5. … sum of file sizes (files)", engine, format!("{} ({})", mib(u.apparent), u.files));
    }
    Ok(())
}

/// 3: many logs, each written in one batch; `threads` writers. Returns the ids written.
fn w3(p: &Params, engine: &str, dir: &Path, pay: &Payload, threads: usize, t: &mut Table) -> Res<()> {
    let logs = p.w3_logs as u64;
    let per = p.w3_entries;
    let base = 1_000_000u64; // log ids of this workload
    let payload = logs * (per * BLOCK) as u64;
    let kps: Vec<KeyPair> = (0..logs).map(|i| keypair(base + i)).collect();
    let el;
    if engine == "ours" {
        let t0 = Instant::now();
        std::thread::scope(|sc| {
            for th in 0..threads as u64 {
                let kps = &kps;
                sc.spawn(move || {
                    let mut i = th;
                    while i < logs {
                        let kp = kps[i as usize].clone();
                        let log = Log::open(&DiskStorage::new(our_dir(dir, base + i)), kp.public(), Access::Writer(kp)).unwrap();
                        log.append_batch(&pay.blocks(i * per as u64, per)).unwrap();
                        i += threads as u64;
                    }
                });
            }
        });
        el = t0.elapsed();
        open_ours(dir, base + logs - 1)?.get(per as u64 - 1)?;
    } else {
        let s = KvStore::new(open_kv(engine, dir)?);
        let t0 = Instant::now();
        std::thread::scope(|sc| {
            for th in 0..threads as u64 {
                let (kps, s) = (&kps, &s);
                sc.spawn(move || {
                    let mut i = th;
                    while i < logs {
                        s.open_log(base + i, kps[i as usize].clone()).unwrap();
                        s.append(base + i, &pay.blocks(i * per as u64, per)).unwrap();
                        i += threads as u64;
                    }
                });
            }
        });
        el = t0.elapsed();
        s.check_block(base + logs - 1, per as u64 - 1)?;
        println!("  [{engine}] commits: {}", s.commits());
        s.kv.settle()?;
    }
    let label = if threads == 1 { "3." } else { "3b." };
    t.set(
        &format!("{label} {logs} logs × {per} entries, one durable commit per log, {threads} writer thread(s): total time (logs/s)"),
        engine,
        format!("{:.1} s ({})", el.as_secs_f64(), rate(logs as f64 / el.as_secs_f64())),
    );
    if threads == 1 {
        let u = usage(dir);
        t.set(
            "3. … disk usage: du / ratio to payload",
            engine,
            format!("{} / {:.2}×", mib(u.allocated), u.allocated as f64 / payload as f64),
        );
        t.set(
            "3. … sum of file sizes / files + dirs",
            engine,
            format!("{} / {} + {}", mib(u.apparent), u.files, u.dirs),
        );
    }
    Ok(())
}

/// 4: reopen costs on the stores of workloads 3 (`many`) and 2 (`big`), cold (page cache of the
/// store's files dropped) and warm; then the open after an unclean exit.
fn w4(p: &Params, engine: &str, many: &Path, big: &Path, t: &mut Table) -> Res<()> {
    let logs = p.w3_logs as u64;
    let base = 1_000_000u64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let samples: Vec<u64> = (0..p.w4_samples).map(|_| base + rng.gen_range(0..logs)).collect();
    if engine == "ours" {
        // No store to open; the closest thing is listing the archives.
        let t0 = Instant::now();
        let n = std::fs::read_dir(many.join("archives"))?.count();
        let list = t0.elapsed();
        assert_eq!(n as u64, logs);
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        let mut view = Vec::new();
        for &id in &samples {
            evict(&our_dir(many, id));
            let t0 = Instant::now();
            let log = open_ours(many, id)?;
            let _ = log.info();
            cold.push(t0.elapsed());
            drop(log);
            let t0 = Instant::now();
            let log = open_ours(many, id)?;
            let _ = log.info();
            warm.push(t0.elapsed());
            drop(log);
            let kp = keypair(id);
            let t0 = Instant::now();
            let log = Log::open(&DiskStorage::new(our_dir(many, id)), kp.public(), Access::View)?;
            let _ = log.info();
            view.push(t0.elapsed());
        }
        cold.sort();
        warm.sort();
        view.sort();
        t.set(&format!("4. open store ({logs} logs)"), engine, format!("none (listing {logs} archive dirs: {})", ms(list)));
        t.set(
            &format!("4. open one log among {logs} + read its verified head: cold / warm (median)"),
            engine,
            format!("{} / {}", ms(pct(&cold, 0.5)), ms(pct(&warm, 0.5))),
        );
        println!("  [ours] read-only (Access::View, no directory fsyncs) warm open median: {}", ms(pct(&view, 0.5)));
        // The 1,000,000-entry log.
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        for _ in 0..5 {
            evict(big);
            let t0 = Instant::now();
            let log = open_ours(big, 2)?;
            let _ = log.info();
            cold.push(t0.elapsed());
            drop(log);
            let t0 = Instant::now();
            let log = open_ours(big, 2)?;
            let _ = log.info();
            warm.push(t0.elapsed());
        }
        cold.sort();
        warm.sort();
        t.set(
            &format!("4. open the {}-entry log + read its head: cold / warm", p.w2_commits * p.w2_batch),
            engine,
            format!("{} / {}", ms(pct(&cold, 0.5)), ms(pct(&warm, 0.5))),
        );
    } else {
        // Store open, then the first head read (cold), then more head reads.
        let mut opens = Vec::new();
        let mut firsts = Vec::new();
        let mut warm = Vec::new();
        for round in 0..3 {
            evict(many);
            let t0 = Instant::now();
            let kv = open_kv(engine, many)?;
            opens.push(t0.elapsed());
            let t0 = Instant::now();
            let (_, _, h) = decode_head(&kv.head(samples[round])?.ok_or("no head")?)?;
            firsts.push(t0.elapsed());
            assert_eq!(h.length, p.w3_entries as u64);
            if round == 0 {
                for &id in &samples[1..] {
                    let t0 = Instant::now();
                    decode_head(&kv.head(id)?.ok_or("no head")?)?;
                    warm.push(t0.elapsed());
                }
            }
        }
        opens.sort();
        firsts.sort();
        warm.sort();
        t.set(&format!("4. open store ({logs} logs)"), engine, format!("{} (cold)", ms(pct(&opens, 0.5))));
        t.set(
            &format!("4. open one log among {logs} + read its verified head: cold / warm (median)"),
            engine,
            format!("{} / {}", ms(pct(&firsts, 0.5)), ms(pct(&warm, 0.5))),
        );
        let mut cold = Vec::new();
        for _ in 0..3 {
            evict(big);
            let t0 = Instant::now();
            let kv = open_kv(engine, big)?;
            decode_head(&kv.head(2)?.ok_or("no head")?)?;
            cold.push(t0.elapsed());
        }
        cold.sort();
        let t0 = Instant::now();
        let kv = open_kv(engine, big)?;
        decode_head(&kv.head(2)?.ok_or("no head")?)?;
        let warm = t0.elapsed();
        drop(kv);
        t.set(
            &format!("4. open the {}-entry log + read its head: cold / warm", p.w2_commits * p.w2_batch),
            engine,
            format!("{} / {}", ms(pct(&cold, 0.5)), ms(warm)),
        );
    }
    // Unclean exit: a child process opens the big store, appends one durable batch, aborts.
    let exe = std::env::current_exe()?;
    let status = std::process::Command::new(exe).args(["crash-child", engine, big.to_str().unwrap()]).status()?;
    assert!(!status.success(), "the child should have aborted");
    evict(big);
    let t0 = Instant::now();
    let len = if engine == "ours" {
        open_ours(big, 2)?.len()
    } else {
        let kv = open_kv(engine, big)?;
        let (_, _, h) = decode_head(&kv.head(2)?.ok_or("no head")?)?;
        h.length
    };
    let el = t0.elapsed();
    assert_eq!(len, (p.w2_commits * p.w2_batch + 1000) as u64, "the acknowledged batch must survive");
    t.set(
        &format!("4. open the {}-entry log after a crash (process abort) + read its head", p.w2_commits * p.w2_batch),
        engine,
        ms(el),
    );
    Ok(())
}

/// Run in a child process: append one durable batch to the big log, then abort.
fn crash_child(engine: &str, dir: &Path) -> Res<()> {
    let pay = Payload::new();
    let blocks = pay.blocks(7_000_000, 1000);
    // Abort while the store is still open: no destructor, no clean shutdown.
    if engine == "ours" {
        let log = open_ours(dir, 2)?;
        log.append_batch(&blocks)?;
        std::process::abort();
    } else {
        let s = KvStore::new(open_kv(engine, dir)?);
        s.open_log(2, keypair(2))?;
        s.append(2, &blocks)?;
        std::process::abort();
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("crash-child") {
        return crash_child(&args[2], Path::new(&args[3]));
    }
    let p = Params::from_env();
    let root = match std::env::var("ENGINE_BENCH_DIR") {
        Ok(d) => {
            std::fs::create_dir_all(&d)?;
            tempfile::tempdir_in(d)?
        }
        Err(_) => tempfile::tempdir_in(Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))?,
    };
    println!("engine-bench: quick={} dir={}", p.quick, root.path().display());
    let df = std::process::Command::new("df").arg("-T").arg(root.path()).output()?;
    print!("{}", String::from_utf8_lossy(&df.stdout));
    println!(
        "cpus={} load={} redb=2.x fjall=2.x",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        loadavg()
    );
    println!("{}", fsync_costs(root.path())?);
    let pay = Arc::new(Payload::new());
    let mut t = Table::default();
    let dir = |e: &str, w: &str| root.path().join(format!("{e}-{w}"));
    let engines = p.engines.clone();
    let started = Instant::now();

    if p.wants("1") {
        println!("\n== 1: {} threads × {} durable single appends, one log", p.w1_threads, p.w1_per_thread);
        for e in &engines {
            w1(&p, e, &dir(e, "w1"), &pay, &mut t)?;
            std::fs::remove_dir_all(dir(e, "w1"))?;
        }
    }
    if p.wants("2") || p.wants("5") || p.wants("4") {
        println!("\n== 2/5: {} durable commits × {} entries of 300 B, one log", p.w2_commits, p.w2_batch);
        for e in &engines {
            w2(&p, e, &dir(e, "big"), &pay, &mut t)?;
        }
    }
    if p.wants("3") || p.wants("4") {
        println!("\n== 3: {} logs × {} entries, one commit per log, 1 thread", p.w3_logs, p.w3_entries);
        for e in &engines {
            w3(&p, e, &dir(e, "many"), &pay, 1, &mut t)?;
        }
    }
    if p.wants("3b") {
        println!("\n== 3b: {} logs × {} entries, one commit per log, {} threads", p.w3_logs, p.w3_entries, p.w3b_threads);
        for e in &engines {
            w3(&p, e, &dir(e, "many-mt"), &pay, p.w3b_threads, &mut t)?;
            std::fs::remove_dir_all(dir(e, "many-mt"))?;
        }
    }
    if p.wants("4") {
        println!("\n== 4: reopen");
        for e in &engines {
            w4(&p, e, &dir(e, "many"), &dir(e, "big"), &mut t)?;
        }
    }
    println!("\nload at end: {}; total {:.0} s", loadavg(), started.elapsed().as_secs_f64());
    t.print(&engines);
    if std::env::var_os("ENGINE_BENCH_KEEP").is_some() {
        println!("kept {}", root.keep().display());
    }
    Ok(())
}
