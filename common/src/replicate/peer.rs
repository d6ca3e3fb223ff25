//! The replicator for one archive with one peer: what JS Hypercore's `Peer` in
//! `lib/replicator.js` does, for full (not sparse) replication.
//!
//! - Both sides announce `synchronize` (fork, length, the length they know of the other) and a
//!   `range` of the blocks they hold contiguously from 0, again whenever their log changes.
//! - A replica behind the peer asks for an upgrade (the new signed head, with the first new
//!   block in the same proof), then for every block it lacks, keeping up to `window` requests in
//!   flight. Each request names how many tree nodes are missing. For a run of consecutive blocks
//!   from one peer that count is computed without touching the disk: block `i` needs only the
//!   nodes below the lowest ancestor it shares with block `i - 1`, whose proof (applied first)
//!   stores that ancestor's children. If block `i - 1` did not arrive, the proof for `i` does not
//!   connect; the replicator sees the anchor is absent and asks again with the exact count.
//! - Answers are checked against the requests as they arrive and stored in batches with one
//!   round of syncs ([`Log::apply_proofs`]) on a blocking thread, while the loop keeps reading
//!   and asking; a slot frees when its answer arrives, so the pipe stays full.
//! - Requests from the peer are answered from the log in batches ([`Log::proofs`]) on a
//!   blocking thread, and not while the socket is congested; a peer that piles up requests
//!   without reading the answers is dropped.
//!
//! - One replicator per archive at a time asks for an upgrade (a claim in [`ArchiveEntry`]). One
//!   that found the claim taken waits for it to be given back: the proof is stored (and the
//!   log's change wakes everyone) before its owner hears back from the blocking job and lets go.
//!
//! A peer whose proof fails verification, that answers with something it was not asked for, or
//! that floods, ends the connection ([`Stop::Peer`]).

mod remote;
mod serve;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::OptionFuture;
use hypercore_protocol::schema::{Data, NoData, Range, Request, Synchronize};
use hypercore_protocol::{Channel, ChannelReceiver, Message};
use hypercore_schema::{RequestBlock as WireRequestBlock, RequestUpgrade as WireRequestUpgrade};
use tokio::sync::watch;

use crate::log::{flat, ForkEvidence, Log, LogError, LogStatus, Proof, VerifiedProof};
use crate::replicate::frame::{ConnState, WRITE_HIGH};
use crate::replicate::node::ArchiveEntry;
use crate::replicate::wire::data_to_proof;
use remote::Remote;

/// Messages taken from the channel per round.
const MAX_DRAIN: usize = 8192;

/// A peer with more messages than this waiting on one channel is flooding.
const MAX_QUEUED: usize = 65_536;

/// Block bytes asked for and not yet stored, per peer: with large blocks the window shrinks so
/// an honest peer's answers stay within this.
const WINDOW_BYTES: u64 = 32 * 1024 * 1024;

/// Requests kept in flight however large the blocks.
const MIN_WINDOW: usize = 16;

/// A peer with more unanswered requests than this is not reading our answers.
const MAX_PENDING_REQUESTS: usize = 16 * 1024;

/// Blocks remembered as missing at the peer until its next announcement.
const MAX_UNAVAILABLE: usize = 65_536;

/// Why a replicator stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The channel or the connection closed.
    Closed,
    /// The peer broke the protocol or sent data that failed verification: drop the connection.
    Peer(String),
    /// Storage failed here: stop this archive, keep the connection.
    Local(String),
}

/// What a request of ours asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// Blocks and upgrades on the current fork.
    Data,
    /// The peer's head as a proof from length 0 to our length, after an upgrade from it did not
    /// fit our head: either the peer lied or the writer signed two heads (JS `_checkIfConflict`).
    ConflictCheck,
    /// The peer's head on a newer fork, as a proof from length 0 (JS `_requestForkProof`).
    ForkProof,
}

/// A request of ours waiting for its answer.
#[derive(Debug, Clone, Copy)]
struct Inflight {
    ask: Ask,
    block: Option<u64>,
    upgrade: bool,
    /// Node count from the run rule rather than from the stored tree.
    optimistic: bool,
    nodes: u64,
    sent: Instant,
}

/// What storing one answer came to.
enum Outcome {
    Applied(Result<VerifiedProof, LogError>),
    Forked(Result<u64, LogError>),
    Checked(Result<Option<ForkEvidence>, LogError>),
}

type ApplyJob = tokio::task::JoinHandle<(Vec<Inflight>, Result<Vec<Outcome>, LogError>)>;
/// Answers, and the requests left for the next job once the byte budget was spent.
type ServeJob = tokio::task::JoinHandle<(Vec<Message>, Vec<Request>)>;

pub(crate) struct Replicator {
    log: Arc<Log>,
    archive: Arc<ArchiveEntry>,
    conn: Arc<ConnState>,
    channel: Channel,
    status_rx: watch::Receiver<LogStatus>,
    /// Changes when a replicator of this archive gives the upgrade claim back.
    upgrade_freed: watch::Receiver<u64>,
    /// We wanted to ask this peer for an upgrade and found the claim taken.
    upgrade_wanted: bool,
    window: usize,
    request_timeout: Duration,
    writable: bool,
    remote: Remote,
    /// What we last announced: (fork, length), contiguous.
    announced: Option<(u64, u64)>,
    announced_contiguous: u64,
    next_id: u64,
    inflight: HashMap<u64, Inflight>,
    /// Answers received and checked, waiting to be stored.
    to_apply: Vec<(Inflight, Proof)>,
    /// The peer's requests waiting to be answered.
    requests: VecDeque<Request>,
    /// Blocks this replicator claimed in the archive (released when stored, refused or dropped).
    claimed: HashSet<u64>,
    upgrade_claimed: bool,
    /// The peer refused an upgrade: wait for its next announcement.
    upgrade_refused: bool,
    /// Where the next scan for blocks to request starts.
    cursor: u64,
    /// The last block requested, for the run rule.
    prev_requested: Option<u64>,
    /// Blocks to ask again with the exact node count.
    exact: HashSet<u64>,
    /// Blocks the peer said it does not have.
    unavailable: HashSet<u64>,
    warned_fork: bool,
    /// An upgrade from this peer did not fit our head: the reason, until the conflict check
    /// that follows is answered.
    conflict: Option<String>,
    /// A conflict check or fork proof request is out; nothing else is asked meanwhile.
    special_inflight: bool,
    /// The lowest block skipped because another peer's replicator had claimed it. Claims of a
    /// connection that died are released when its replicator is dropped, which nothing here
    /// hears of; the scan goes back to this block on the next tick.
    skipped: Option<u64>,
}

impl Drop for Replicator {
    fn drop(&mut self) {
        self.archive.forget_remote(self.id());
        for seq in self.claimed.drain() {
            self.archive.release(seq);
        }
        if self.upgrade_claimed {
            self.archive.release_upgrade();
        }
    }
}

fn peer_fault(e: &LogError) -> bool {
    matches!(
        e,
        LogError::InvalidProof(_)
            | LogError::InvalidSignature { .. }
            | LogError::Malformed(_)
            | LogError::ForkMismatch { .. }
            | LogError::TooLarge { .. }
            | LogError::InvalidRequest(_)
            | LogError::Key(_)
    )
}

/// Flat-tree index of the ancestor of block `seq` that is `levels` above its leaf.
fn ancestor(seq: u64, levels: u32) -> u64 {
    flat::index(levels, seq >> levels)
}

impl Replicator {
    pub(super) fn new(
        archive: Arc<ArchiveEntry>,
        conn: Arc<ConnState>,
        channel: Channel,
        window: usize,
        request_timeout: Duration,
    ) -> Self {
        let log = archive.log.clone();
        let status_rx = log.subscribe();
        let upgrade_freed = archive.upgrade_freed();
        Replicator {
            writable: log.writable(),
            log,
            archive,
            conn,
            channel,
            status_rx,
            upgrade_freed,
            upgrade_wanted: false,
            window: window.max(1),
            request_timeout,
            remote: Remote {
                uploading: true,
                ..Remote::default()
            },
            announced: None,
            announced_contiguous: 0,
            next_id: 1,
            inflight: HashMap::new(),
            to_apply: Vec::new(),
            requests: VecDeque::new(),
            claimed: HashSet::new(),
            upgrade_claimed: false,
            upgrade_refused: false,
            cursor: 0,
            prev_requested: None,
            exact: HashSet::new(),
            unavailable: HashSet::new(),
            warned_fork: false,
            conflict: None,
            special_inflight: false,
            skipped: None,
        }
    }

    /// Names this replicator among the archive's peers (one per connection and archive).
    fn id(&self) -> usize {
        Arc::as_ptr(&self.conn) as usize
    }

    fn status(&self) -> LogStatus {
        *self.status_rx.borrow()
    }

    pub(super) async fn run(mut self) -> Result<(), Stop> {
        let rx: ChannelReceiver<Message> = self.channel.take_receiver().ok_or(Stop::Closed)?;
        let removed = self.archive.removed.clone();
        let conn = self.conn.clone();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Storing answers and answering requests run on blocking threads while this loop keeps
        // reading, so the channel never backs up and the pipe stays full.
        let mut apply_job: Option<ApplyJob> = None;
        let mut serve_job: Option<ServeJob> = None;
        self.announce().await?;
        let result = loop {
            if apply_job.is_none() && !self.to_apply.is_empty() {
                apply_job = Some(self.start_apply());
            }
            if serve_job.is_none() && !self.requests.is_empty() && conn.unsent() < WRITE_HIGH {
                serve_job = Some(self.start_serve());
            }
            let step = tokio::select! {
                biased;
                _ = removed.cancelled() => break Ok(()),
                _ = conn.closed() => break Err(Stop::Closed),
                Some(done) = OptionFuture::from(apply_job.as_mut()), if apply_job.is_some() => {
                    apply_job = None;
                    match done {
                        Ok((reqs, results)) => match self.on_applied(reqs, results) {
                            Ok(()) => self.fill().await,
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(Stop::Local(format!("storing proofs failed: {e}"))),
                    }
                }
                Some(done) = OptionFuture::from(serve_job.as_mut()), if serve_job.is_some() => {
                    serve_job = None;
                    match done {
                        Ok((answers, rest)) => {
                            for r in rest.into_iter().rev() {
                                self.requests.push_front(r);
                            }
                            self.send_answers(answers).await
                        }
                        Err(e) => Err(Stop::Local(format!("answering requests failed: {e}"))),
                    }
                }
                changed = self.status_rx.changed() => match changed {
                    Err(_) => break Err(Stop::Closed),
                    Ok(()) => match self.announce().await {
                        Ok(()) => self.fill().await,
                        Err(e) => Err(e),
                    },
                },
                // The claim we found taken was given back: the upgrade may be ours to ask for
                // now (a longer head than the one another peer just gave us, say).
                changed = self.upgrade_freed.changed(), if self.upgrade_wanted => match changed {
                    Err(_) => break Err(Stop::Closed),
                    Ok(()) => {
                        self.upgrade_wanted = false;
                        self.fill().await
                    }
                },
                // The socket drained: answers can go out again.
                _ = conn.writable(), if serve_job.is_none() && !self.requests.is_empty() => Ok(()),
                msg = rx.recv() => match msg {
                    Err(_) => break Err(Stop::Closed),
                    Ok(first) => {
                        let mut batch = vec![first];
                        while batch.len() < MAX_DRAIN {
                            match rx.try_recv() {
                                Ok(m) => batch.push(m),
                                Err(_) => break,
                            }
                        }
                        if rx.len() > MAX_QUEUED {
                            break Err(Stop::Peer(format!("flooded the channel with {} queued messages", rx.len())));
                        }
                        self.on_messages(batch).await
                    }
                },
                _ = tick.tick() => match self.check_timeouts() {
                    Ok(()) => match self.skipped.take() {
                        Some(seq) => {
                            self.cursor = self.cursor.min(seq);
                            self.fill().await
                        }
                        None => Ok(()),
                    },
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = step {
                break Err(e);
            }
        };
        if !matches!(result, Err(Stop::Closed) | Err(Stop::Peer(_))) {
            let _ = self.channel.close().await;
        }
        result
    }

    fn check_timeouts(&self) -> Result<(), Stop> {
        let oldest = self.inflight.values().map(|r| r.sent).min();
        match oldest {
            Some(t) if t.elapsed() > self.request_timeout => Err(Stop::Peer(format!(
                "left a request unanswered for {} s",
                self.request_timeout.as_secs()
            ))),
            _ => Ok(()),
        }
    }

    async fn send(&self, messages: Vec<Message>) -> Result<(), Stop> {
        if messages.is_empty() {
            return Ok(());
        }
        self.channel
            .send_batch(&messages)
            .await
            .map_err(|_| Stop::Closed)
    }

    fn sync_message(&self, status: &LogStatus) -> Synchronize {
        let same_fork = self.remote.fork == status.fork;
        Synchronize {
            fork: status.fork,
            length: status.length,
            remote_length: if same_fork { self.remote.length } else { 0 },
            // As in JS `_canUpgrade`: an upgrade from the peer's length can be proven.
            can_upgrade: same_fork
                && (self.remote.length == 0 || self.remote.length < status.length),
            uploading: true,
            downloading: !self.writable,
        }
    }

    /// Tells the peer our length (when it changed) and contiguous range (when it grew).
    async fn announce(&mut self) -> Result<(), Stop> {
        let status = self.status();
        let mut msgs = Vec::new();
        if self.announced != Some((status.fork, status.length)) {
            msgs.push(Message::Synchronize(self.sync_message(&status)));
            self.announced = Some((status.fork, status.length));
        }
        if status.contiguous > 0 && status.contiguous != self.announced_contiguous {
            msgs.push(Message::Range(Range {
                drop: false,
                start: 0,
                length: status.contiguous,
            }));
            self.announced_contiguous = status.contiguous;
        }
        self.send(msgs).await
    }

    async fn on_messages(&mut self, batch: Vec<Message>) -> Result<(), Stop> {
        for m in batch {
            match m {
                Message::Synchronize(s) => self.on_sync(s).await?,
                Message::Range(r) => {
                    let end = r.start.saturating_add(r.length);
                    if r.drop {
                        self.remote.drop_range(r.start, end);
                    } else {
                        self.remote.add_range(r.start, end);
                    }
                    self.unavailable.clear();
                    self.cursor = 0;
                }
                Message::Bitfield(b) => {
                    for (w, word) in b.bitfield.iter().enumerate() {
                        for bit in 0..32u64 {
                            if word & (1 << bit) != 0 {
                                let seq = b.start.saturating_add(w as u64 * 32 + bit);
                                self.remote.add_range(seq, seq.saturating_add(1));
                            }
                        }
                    }
                    self.cursor = 0;
                }
                Message::Request(r) => {
                    if self.requests.len() >= MAX_PENDING_REQUESTS {
                        return Err(Stop::Peer(format!("sent more than {MAX_PENDING_REQUESTS} requests without reading the answers")));
                    }
                    self.requests.push_back(r);
                }
                Message::Cancel(c) => self.requests.retain(|r| r.id != c.request),
                Message::Data(d) => self.on_data(d)?,
                Message::NoData(n) => self.on_no_data(n)?,
                Message::Close(_) => return Err(Stop::Closed),
                _ => {}
            }
        }
        self.fill().await
    }

    async fn on_sync(&mut self, s: Synchronize) -> Result<(), Stop> {
        let changed =
            !self.remote.synced || s.length != self.remote.length || s.fork != self.remote.fork;
        self.remote.synced = true;
        if s.fork != self.remote.fork {
            self.remote.contiguous = 0;
            self.remote.ranges.clear();
        }
        self.remote.fork = s.fork;
        self.remote.length = s.length;
        #[cfg(test)]
        {
            self.remote.acknowledged = s.remote_length;
        }
        self.archive.note_remote(self.id(), s.fork, s.length);
        self.remote.can_upgrade = s.can_upgrade;
        self.remote.uploading = s.uploading;
        self.upgrade_refused = false;
        self.unavailable.clear();
        if changed {
            // Acknowledge the peer's length: JS asks for an upgrade only once we have.
            let status = self.status();
            self.announced = Some((status.fork, status.length));
            self.send(vec![Message::Synchronize(self.sync_message(&status))])
                .await?;
        }
        Ok(())
    }

    fn on_no_data(&mut self, n: NoData) -> Result<(), Stop> {
        let Some(req) = self.inflight.remove(&n.request) else {
            return Ok(());
        };
        if req.ask != Ask::Data {
            self.special_inflight = false;
            if req.ask == Ask::ConflictCheck {
                return Err(Stop::Peer(format!(
                    "{} (and refused to show its head)",
                    self.conflict.take().unwrap_or_default()
                )));
            }
        }
        if let Some(seq) = req.block {
            self.release(seq);
            if self.unavailable.len() < MAX_UNAVAILABLE {
                self.unavailable.insert(seq);
            }
        }
        if req.upgrade {
            self.release_upgrade();
            self.upgrade_refused = true;
        }
        Ok(())
    }

    fn release(&mut self, seq: u64) {
        if self.claimed.remove(&seq) {
            self.archive.release(seq);
        }
        self.cursor = self.cursor.min(seq);
    }

    /// Takes the archive's upgrade claim for this peer, unless we hold it already (then false:
    /// our request is out). If another peer's replicator holds it, waits for it to be given back.
    fn claim_upgrade(&mut self) -> bool {
        if self.upgrade_claimed {
            return false;
        }
        if self.archive.claim_upgrade() {
            self.upgrade_claimed = true;
            self.upgrade_wanted = false;
            return true;
        }
        self.upgrade_wanted = true;
        #[cfg(test)]
        if let Some(hook) = self.archive.hooks.lock().upgrade_busy.clone() {
            hook(self.status().length, self.remote.acknowledged);
        }
        false
    }

    fn release_upgrade(&mut self) {
        if std::mem::take(&mut self.upgrade_claimed) {
            self.archive.release_upgrade();
        }
    }

    /// Checks an answer against our request and queues it to be stored.
    fn on_data(&mut self, d: Data) -> Result<(), Stop> {
        // An answer to a request we no longer track (or never made) is dropped, as in JS.
        let Some(req) = self.inflight.remove(&d.request) else {
            return Ok(());
        };
        if req.ask != Ask::Data {
            self.special_inflight = false;
            if d.block.is_some() || d.hash.is_some() || d.seek.is_some() {
                return Err(Stop::Peer("answered a head request with blocks".into()));
            }
            if d.upgrade.is_none() {
                self.release_upgrade();
                if req.ask == Ask::ConflictCheck {
                    return Err(Stop::Peer(self.conflict.take().unwrap_or_default()));
                }
                self.upgrade_refused = true;
                return Ok(());
            }
            let proof = data_to_proof(d).map_err(|e| Stop::Peer(e.to_string()))?;
            self.to_apply.push((req, proof));
            return Ok(());
        }
        let got_block = d.block.as_ref().map(|b| b.index);
        if got_block.is_some() && got_block != req.block {
            return Err(Stop::Peer(format!(
                "sent block {got_block:?} for a request for {:?}",
                req.block
            )));
        }
        if d.upgrade.is_some() && !req.upgrade {
            return Err(Stop::Peer("sent an upgrade nobody asked for".into()));
        }
        if d.hash.is_some() || d.seek.is_some() {
            return Err(Stop::Peer(
                "sent a hash or seek proof nobody asked for".into(),
            ));
        }
        // Parts asked for and not sent count as refused.
        if let Some(seq) = req.block.filter(|_| got_block.is_none()) {
            self.release(seq);
            if self.unavailable.len() < MAX_UNAVAILABLE {
                self.unavailable.insert(seq);
            }
        }
        if req.upgrade && d.upgrade.is_none() {
            self.release_upgrade();
            self.upgrade_refused = true;
        }
        if got_block.is_none() && d.upgrade.is_none() {
            return Ok(());
        }
        let got = Inflight {
            block: got_block,
            upgrade: d.upgrade.is_some(),
            ..req
        };
        let proof = data_to_proof(d).map_err(|e| Stop::Peer(e.to_string()))?;
        self.to_apply.push((got, proof));
        Ok(())
    }

    /// Stores the queued answers with one round of syncs, on a blocking thread.
    fn start_apply(&mut self) -> ApplyJob {
        let mut batch = std::mem::take(&mut self.to_apply);
        // Upgrades first, then blocks in order: each block's proof may lean on the one before.
        batch.sort_by_key(|(_, p)| {
            (
                p.upgrade.is_none(),
                p.block.as_ref().map(|b| b.index).unwrap_or(0),
            )
        });
        let log = self.log.clone();
        #[cfg(test)]
        let hook = self.archive.hooks.lock().upgrade_stored.clone();
        tokio::task::spawn_blocking(move || {
            let (data, special): (Vec<_>, Vec<_>) =
                batch.into_iter().partition(|(r, _)| r.ask == Ask::Data);
            let (mut reqs, proofs): (Vec<Inflight>, Vec<Proof>) = data.into_iter().unzip();
            let mut out: Vec<Outcome> = match log.apply_proofs(&proofs) {
                Ok(results) => results.into_iter().map(Outcome::Applied).collect(),
                Err(e) => return (reqs, Err(e)),
            };
            #[cfg(test)]
            if let Some(hook) = hook.filter(|_| reqs.iter().any(|r| r.upgrade)) {
                hook();
            }
            for (req, proof) in special {
                out.push(match req.ask {
                    Ask::ForkProof => Outcome::Forked(log.apply_fork(&proof)),
                    _ => Outcome::Checked(log.check_conflict(&proof)),
                });
                reqs.push(req);
            }
            (reqs, Ok(out))
        })
    }

    /// Releases what a stored batch settled and judges the proofs that failed.
    fn on_applied(
        &mut self,
        reqs: Vec<Inflight>,
        results: Result<Vec<Outcome>, LogError>,
    ) -> Result<(), Stop> {
        let results = results.map_err(|e| Stop::Local(format!("storing proofs failed: {e}")))?;
        for (req, outcome) in reqs.iter().zip(results) {
            let result = match outcome {
                Outcome::Applied(r) => r,
                Outcome::Forked(r) => {
                    self.release_upgrade();
                    match r {
                        Ok(_) => {
                            // Blocks past the shared prefix are gone: scan again from the start.
                            self.cursor = 0;
                            self.exact.clear();
                            self.unavailable.clear();
                            self.prev_requested = None;
                        }
                        Err(e) if peer_fault(&e) => {
                            return Err(Stop::Peer(format!("fork proof failed verification: {e}")))
                        }
                        Err(e) => return Err(Stop::Local(format!("following a fork failed: {e}"))),
                    }
                    continue;
                }
                Outcome::Checked(r) => {
                    self.release_upgrade();
                    let why = self.conflict.take().unwrap_or_default();
                    return Err(match r {
                        Ok(Some(ev)) => Stop::Peer(format!(
                            "the writer signed two different heads for fork {} (ours at length {}, the peer's at length {}): evidence kept, archive flagged",
                            ev.fork,
                            ev.local.length,
                            ev.remote.length + ev.remote.additional_nodes.iter().map(|n| flat::count_leaves(n.index)).sum::<u64>()
                        )),
                        Ok(None) => Stop::Peer(format!("{why}; its head extends ours, so the upgrade was a lie")),
                        Err(e) if peer_fault(&e) => Stop::Peer(format!("{why}; its head does not verify either: {e}")),
                        Err(e) => Stop::Local(format!("recording fork evidence failed: {e}")),
                    });
                }
            };
            if let Some(seq) = req.block {
                self.release(seq);
            }
            if req.upgrade {
                self.release_upgrade();
            }
            let e = match result {
                Ok(v) => {
                    if v.block.is_some() {
                        self.archive
                            .counters
                            .downloaded
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                Err(e) => e,
            };
            // An upgrade that does not fit our head: a lie, or the writer signed two heads.
            // Ask for the peer's head from length 0 before judging (once per peer).
            let status = self.status();
            if req.upgrade
                && status.length > 0
                && (matches!(e, LogError::Conflict { .. }) || peer_fault(&e))
            {
                let why = format!("upgrade from the peer failed: {e}");
                if self.conflict.is_some() || self.remote.length < status.length {
                    return Err(Stop::Peer(why));
                }
                self.conflict = Some(why);
                continue;
            }
            match e {
                LogError::Conflict { length } => {
                    return Err(Stop::Peer(format!(
                        "sent a different signed head at length {length}"
                    )));
                }
                e if peer_fault(&e) => {
                    if let (true, Some(seq)) = (req.optimistic, req.block) {
                        let anchor = ancestor(seq, req.nodes as u32);
                        if self
                            .log
                            .node(anchor)
                            .map_err(|e| Stop::Local(e.to_string()))?
                            .is_none()
                        {
                            // The block before it did not arrive: ask again with the exact count.
                            self.exact.insert(seq);
                            continue;
                        }
                    }
                    return Err(Stop::Peer(format!(
                        "proof for block {:?} failed verification: {e}",
                        req.block
                    )));
                }
                LogError::MissingNode { .. } => {
                    if let Some(seq) = req.block {
                        self.exact.insert(seq);
                    }
                }
                e => return Err(Stop::Local(format!("storing a proof failed: {e}"))),
            }
        }
        Ok(())
    }

    /// Sends requests until the window is full: an upgrade if the peer is ahead, then blocks.
    async fn fill(&mut self) -> Result<(), Stop> {
        if self.writable || !self.remote.synced || !self.remote.uploading {
            return Ok(());
        }
        let status = self.status();
        let head = self.log.head();
        // The signed head gives the mean block size; large blocks mean fewer requests in flight.
        let mean = head
            .byte_length
            .checked_div(head.length)
            .unwrap_or(0)
            .max(1);
        let window =
            ((WINDOW_BYTES / mean) as usize).clamp(MIN_WINDOW.min(self.window), self.window);
        if self.inflight.len() >= window {
            return Ok(());
        }
        if self.special_inflight {
            return Ok(());
        }
        if self.conflict.is_some() {
            // Our length is at most the peer's (checked when the upgrade failed).
            return self
                .ask_head(Ask::ConflictCheck, status.fork, status.length)
                .await;
        }
        let same_fork = self.remote.fork == status.fork;
        if !same_fork && status.length > 0 {
            if self.remote.fork > status.fork
                && self.remote.length > 0
                && !self.upgrade_refused
                && self.claim_upgrade()
            {
                // The writer truncated: follow it, as JS replicas do.
                return self
                    .ask_head(Ask::ForkProof, self.remote.fork, self.remote.length)
                    .await;
            }
            if self.remote.fork < status.fork && !self.warned_fork {
                self.warned_fork = true;
                tracing::debug!(
                    local = status.fork,
                    remote = self.remote.fork,
                    "peer is on an older fork; nothing to ask it"
                );
            }
            return Ok(());
        }
        let now = Instant::now();
        let mut msgs = Vec::new();

        if self.remote.length > status.length
            && (self.remote.can_upgrade || status.length == 0)
            && !self.upgrade_refused
            && self.claim_upgrade()
        {
            let first = status.length;
            let block = (self.remote.has(first) && self.archive.claim(first)).then(|| {
                self.claimed.insert(first);
                first
            });
            let id = self.take_id();
            msgs.push(Message::Request(Request {
                id,
                fork: self.remote.fork,
                block: block.map(|index| WireRequestBlock { index, nodes: 0 }),
                hash: None,
                seek: None,
                upgrade: Some(WireRequestUpgrade {
                    start: status.length,
                    length: self.remote.length - status.length,
                }),
                manifest: false,
                priority: 0,
            }));
            self.inflight.insert(
                id,
                Inflight {
                    ask: Ask::Data,
                    block,
                    upgrade: true,
                    optimistic: false,
                    nodes: 0,
                    sent: now,
                },
            );
        }

        let end = status.length.min(self.remote.length);
        let mut seq = self.cursor.max(status.contiguous);
        if seq < end && self.inflight.len() < window {
            let mut scanned = 0;
            while seq < end && self.inflight.len() < window && scanned < 4 * window {
                scanned += 1;
                if !self.remote.has(seq) {
                    // Jump to the next range the peer holds.
                    match self.remote.ranges.range(seq..).next() {
                        Some((start, _)) => {
                            seq = *start;
                            continue;
                        }
                        None => break,
                    }
                }
                let stored = self.log.has(seq).map_err(|e| Stop::Local(e.to_string()))?;
                if stored || self.unavailable.contains(&seq) {
                    seq += 1;
                    continue;
                }
                if !self.archive.claim(seq) {
                    self.skipped = Some(self.skipped.map_or(seq, |s| s.min(seq)));
                    seq += 1;
                    continue;
                }
                self.claimed.insert(seq);
                // The run rule: the lowest ancestor shared with block seq - 1 has its children
                // stored once that block's proof is in, provided it lies below a root.
                let shared_levels = seq.trailing_zeros();
                let root_levels = head
                    .roots
                    .iter()
                    .find(|r| {
                        flat::left_span(r.index) <= 2 * seq && 2 * seq <= flat::right_span(r.index)
                    })
                    .map(|r| flat::depth(r.index))
                    .unwrap_or(0);
                let exact = self.exact.remove(&seq)
                    || seq == 0
                    || self.prev_requested != Some(seq - 1)
                    || shared_levels >= root_levels;
                let nodes = if exact {
                    self.log
                        .missing_nodes(seq)
                        .map_err(|e| Stop::Local(e.to_string()))?
                } else {
                    shared_levels as u64
                };
                let id = self.take_id();
                msgs.push(Message::Request(Request {
                    id,
                    fork: status.fork,
                    block: Some(WireRequestBlock { index: seq, nodes }),
                    hash: None,
                    seek: None,
                    upgrade: None,
                    manifest: false,
                    priority: 0,
                }));
                self.inflight.insert(
                    id,
                    Inflight {
                        ask: Ask::Data,
                        block: Some(seq),
                        upgrade: false,
                        optimistic: !exact,
                        nodes,
                        sent: now,
                    },
                );
                self.prev_requested = Some(seq);
                seq += 1;
            }
        }
        self.cursor = seq;
        self.send(msgs).await
    }

    /// Asks for the peer's head at fork `fork` as a proof from length 0 to `length`.
    async fn ask_head(&mut self, ask: Ask, fork: u64, length: u64) -> Result<(), Stop> {
        let id = self.take_id();
        self.special_inflight = true;
        self.inflight.insert(
            id,
            Inflight {
                ask,
                block: None,
                upgrade: true,
                optimistic: false,
                nodes: 0,
                sent: Instant::now(),
            },
        );
        self.send(vec![Message::Request(Request {
            id,
            fork,
            block: None,
            hash: None,
            seek: None,
            upgrade: Some(WireRequestUpgrade { start: 0, length }),
            manifest: false,
            priority: 0,
        })])
        .await
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}
