//! The key-value model of a log that redb and fjall are measured with: one atomic write set per
//! group commit (blocks, tree nodes, head records), the store that builds them with the real
//! merkle tree and signatures, and the two engines behind one trait.

use super::*;

/// One atomic, durable write: blocks `(log, seq) -> bytes`, nodes `(log, flat index) -> 40
/// bytes`, heads `log -> record`.
#[derive(Default)]
pub(crate) struct WriteSet {
    blocks: Vec<(u64, u64, Vec<u8>)>,
    nodes: Vec<(u64, u64, [u8; 40])>,
    heads: Vec<(u64, Vec<u8>)>,
}

pub(crate) trait Kv: Send + Sync {
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

pub(crate) fn key2(a: u64, b: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..].copy_from_slice(&b.to_be_bytes());
    k
}

pub(crate) fn encode_node(n: &Node) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..32].copy_from_slice(&n.hash);
    out[32..].copy_from_slice(&n.size.to_le_bytes());
    out
}

/// The per-log head record: generation, key, fork, length, byte length, signature, roots.
pub(crate) fn encode_head(generation: u64, key: &PublicKey, h: &TreeHead) -> Vec<u8> {
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
pub(crate) fn decode_head(b: &[u8]) -> Res<(u64, PublicKey, TreeHead)> {
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

pub(crate) struct LogMeta {
    kp: KeyPair,
    head: TreeHead,
    generation: u64,
}

pub(crate) struct Req {
    log: u64,
    blocks: Vec<Vec<u8>>,
}

pub(crate) struct KvState {
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
pub(crate) struct KvStore {
    pub(crate) kv: Box<dyn Kv>,
    st: Mutex<KvState>,
    cond: Condvar,
}

impl KvStore {
    pub(crate) fn new(kv: Box<dyn Kv>) -> KvStore {
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
    pub(crate) fn open_log(&self, id: u64, kp: KeyPair) -> Res<()> {
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

    pub(crate) fn commits(&self) -> u64 {
        self.st.lock().unwrap().commits
    }

    pub(crate) fn len(&self, id: u64) -> u64 {
        self.st.lock().unwrap().logs[&id].head.length
    }

    /// Appends blocks to log `id`; returns the first sequence number once they are durable.
    pub(crate) fn append(&self, id: u64, blocks: &[&[u8]]) -> Res<u64> {
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
    pub(crate) fn commit(&self, reqs: Vec<Req>, metas: &mut HashMap<u64, (TreeHead, u64, KeyPair)>) -> Res<Vec<u64>> {
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
    pub(crate) fn check_block(&self, id: u64, seq: u64) -> Res<()> {
        let b = self.kv.block(id, seq)?.ok_or("block missing")?;
        let n = self.kv.node(id, 2 * seq)?.ok_or("leaf missing")?;
        if fritter_common::crypto::leaf_hash(&b) != n[..32] {
            return Err("block does not match its leaf".into());
        }
        Ok(())
    }
}

// ---- redb ----

pub(crate) mod redb_kv {
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

pub(crate) mod fjall_kv {
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

pub(crate) fn open_kv(engine: &str, dir: &Path) -> Res<Box<dyn Kv>> {
    Ok(match engine {
        "redb" => Box::new(redb_kv::RedbKv::open(dir)?),
        "fjall" => Box::new(fjall_kv::FjallKv::open(dir)?),
        e => return Err(format!("unknown engine {e}").into()),
    })
}
