//! The hosting service: the always-on peer that keeps a user's archive (and the archives it
//! lists) reachable while the user's machine sleeps. Enabled by `[hosting] enabled = true`.
//!
//! Signup is a proof of ownership, with no password:
//! 1. `POST /v1/hosting/signup {archive}` hands out a nonce (128 random bits) bound to that
//!    archive and to this service's host name, single use, expiring (`nonce_ttl_ms`); the
//!    crawler starts replicating the archive.
//! 2. The owner writes `/proofs/<host>.json {service, nonce, createdAt}` with a signed entry.
//! 3. The checker reads the proof from the replica (verified like every block), consumes the
//!    nonce and creates the account, whose id is the archive key. Accounts are kept in
//!    `<data-dir>/hosting/accounts.json` (written to a temporary file, synced, renamed), with the
//!    seq and hash of the proof entry so anyone can re-check the claim in the signed archive.
//!
//! Re-hosting: an account lists archives in `/hosting/<name>.json {url}`. The checker walks the
//! account's own archive first, then the requests by name, counting archives and the bytes of
//! each log (`LogInfo::byte_length`) against the quota (`max_archives`, `max_bytes`):
//! - within quota: `hosted`, held and replicated (announced, served to every peer);
//! - over the archive count, or over the bytes on first sight: `refused`, and not held (its
//!   replica is deleted unless the crawler held it before hosting asked; a size refusal is not
//!   fetched again for 10 minutes);
//! - an archive that was hosted and then grew past the byte quota: `frozen`. It is taken out of
//!   replication (no longer fetched, and no longer served, since the replication node cannot
//!   serve a log without also accepting its updates) and its replica kept on disk, so it comes
//!   back as soon as the account is under quota again. Its bytes still count.
//!
//! The reason is in `GET /v1/hosting/{key}`. Deleting a request stops hosting that archive and
//! deletes its replica (unless another account hosts it too).
//!
//! The checker runs on a blocking thread after any change of a watched log (`Log::subscribe`)
//! and at least every `check_interval_ms`.

pub mod api;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use fritter_common::archive::{Archive, ArchiveError};
use fritter_common::crypto::PublicKey;
use fritter_common::model::{validate_file, File, FilePath, ServiceUrl, Timestamp};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::crawl::Crawler;

/// How long an archive refused for its size is not fetched again.
const REFUSED_RETRY: Duration = Duration::from_secs(600);

/// Largest `accounts.json` read at start.
const MAX_ACCOUNTS_FILE: u64 = 64 * 1024 * 1024;

/// Settings of the `[hosting]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostingConfig {
    /// Whether this crawler is also a hosting service.
    pub enabled: bool,
    /// The host name (`host` or `host:port`) proofs must name; default: the HTTP address.
    pub host: Option<String>,
    /// Bytes per account, over all its archives (its own included).
    pub max_bytes: u64,
    /// Archives per account, its own included.
    pub max_archives: usize,
    /// How long a signup nonce stays valid, in milliseconds.
    pub nonce_ttl_ms: u64,
    /// Signups per minute per client address (the burst is the same number).
    pub signup_per_minute: f64,
    /// Live nonces at most (all archives); further signups get a 503 until some expire.
    pub max_pending: usize,
    /// Live nonces per archive at most.
    pub max_nonces_per_archive: usize,
    /// Longest pause between two checks, in milliseconds (changes trigger one at once).
    pub check_interval_ms: u64,
}

impl Default for HostingConfig {
    fn default() -> Self {
        HostingConfig {
            enabled: false,
            host: None,
            max_bytes: 100 * 1000 * 1000,
            max_archives: 15,
            nonce_ttl_ms: 10 * 60 * 1000,
            signup_per_minute: 10.0,
            max_pending: 10_000,
            max_nonces_per_archive: 16,
            check_interval_ms: 1000,
        }
    }
}

/// Why a signup or a claim failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostingError {
    #[error("{0}")]
    BadRequest(String),
    #[error("too many signup requests: retry in a minute")]
    RateLimited,
    #[error("the service cannot take more signups now: retry later")]
    Busy,
    #[error("archive {0} already has an account here")]
    AccountExists(PublicKey),
    #[error("no proof at {path} yet")]
    NoProof { path: String },
    #[error("the proof at {path} is invalid: {reason}")]
    InvalidProof { path: String, reason: String },
    #[error("the proof names the service {found}, not {expected}")]
    WrongService { found: String, expected: String },
    #[error("the proof's nonce is unknown here: never issued by this service, already used, or expired long ago; ask for a new one")]
    UnknownNonce,
    #[error("the proof's nonce was issued for another archive")]
    OtherArchive,
    #[error("the proof's nonce has expired; ask for a new one")]
    Expired,
    #[error("the archive is not held here")]
    NotHeld,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ArchiveError> for HostingError {
    fn from(e: ArchiveError) -> Self {
        HostingError::Internal(e.to_string())
    }
}

/// A nonce handed out and not yet used.
struct Nonce {
    archive: PublicKey,
    expires: Instant,
}

/// A signup under way: the archive asked for a nonce and has no account yet.
#[derive(Default)]
struct Pending {
    /// Why the last check did not create the account.
    problem: Option<String>,
}

/// An account, as stored in `accounts.json` and listed by `GET /v1/hosting/accounts`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// The archive key, hex: the account's id.
    pub archive: String,
    /// When the account was created (RFC 3339).
    pub created_at: String,
    /// The proof entry in the signed archive that created it.
    pub proof: ProofRef,
}

/// Where the proof of an account is, so anyone can re-check it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProofRef {
    pub path: String,
    pub seq: u64,
    /// The entry's BLAKE2b leaf hash, hex.
    pub hash: String,
    pub nonce: String,
}

#[derive(Serialize, Deserialize)]
struct AccountsFile {
    version: u32,
    accounts: Vec<Account>,
    /// Per account (hex), the archives it once hosted within quota, so one that grew past the
    /// quota stays frozen (not refused and deleted) across restarts.
    #[serde(default)]
    accepted: BTreeMap<String, Vec<String>>,
}

type Accepted = HashSet<(PublicKey, PublicKey)>;

/// What happens to one archive of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HostedState {
    Hosted,
    Frozen,
    Refused,
}

/// One archive of an account, as last checked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostedArchive {
    /// The `/hosting/<name>.json` name; absent for the account's own archive.
    pub name: Option<String>,
    pub url: String,
    pub state: HostedState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub bytes: u64,
    pub length: u64,
}

/// The state of one account, as last checked.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountStatus {
    pub archives: Vec<HostedArchive>,
    /// Bytes and archives counted against the quota.
    pub used_bytes: u64,
    pub used_archives: usize,
    /// `/hosting/` files that are not valid requests, with the reason.
    pub invalid: Vec<(String, String)>,
}

struct State {
    nonces: HashMap<[u8; 16], Nonce>,
    pending: HashMap<PublicKey, Pending>,
    accounts: BTreeMap<PublicKey, Account>,
    statuses: HashMap<PublicKey, AccountStatus>,
    /// (account, archive) pairs that were once hosted within quota: growing past it freezes them.
    accepted: Accepted,
    /// (account, archive) pairs refused for their size, not fetched again until then.
    refused: HashMap<(PublicKey, PublicKey), (Instant, String)>,
    /// `accepted` changed since `accounts.json` was written.
    accepted_dirty: bool,
    /// Archives held because of hosting (pending signups, accounts, their requests).
    referenced: HashSet<PublicKey>,
}

/// The hosting service. See the module docs.
pub struct Hosting {
    crawler: Arc<Crawler>,
    config: HostingConfig,
    service: ServiceUrl,
    accounts_path: PathBuf,
    state: Mutex<State>,
    views: Mutex<HashMap<PublicKey, Arc<Archive>>>,
    watchers: Mutex<HashMap<PublicKey, tokio::task::JoinHandle<()>>>,
    changed: Notify,
    /// This service, for the watcher tasks (which must not keep it alive).
    me: Weak<Hosting>,
    pub(crate) signup_limiter: crate::api::RateLimiter,
}

impl std::fmt::Debug for Hosting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosting").finish_non_exhaustive()
    }
}

impl Hosting {
    /// The service for `host` (`host` or `host:port`), its accounts loaded from `data_dir`.
    /// Call [`Hosting::spawn_checker`] to start checking. Needs a tokio runtime.
    pub fn open(
        crawler: Arc<Crawler>,
        config: HostingConfig,
        data_dir: &Path,
        host: &str,
    ) -> anyhow::Result<Arc<Hosting>> {
        let service: ServiceUrl = format!("https://{host}/").parse().map_err(|e| {
            anyhow::anyhow!("the hosting host name {host:?} is not valid ({e}); set [hosting] host")
        })?;
        let accounts_path = data_dir.join("hosting").join("accounts.json");
        let (accounts, accepted) = load_accounts(&accounts_path)?;
        let hosting = Arc::new_cyclic(|me| Hosting {
            me: me.clone(),
            signup_limiter: crate::api::RateLimiter::new(
                config.signup_per_minute / 60.0,
                config.signup_per_minute.max(1.0),
            ),
            crawler,
            config,
            service,
            accounts_path,
            state: Mutex::new(State {
                nonces: HashMap::new(),
                pending: HashMap::new(),
                accounts,
                statuses: HashMap::new(),
                accepted,
                accepted_dirty: false,
                refused: HashMap::new(),
                referenced: HashSet::new(),
            }),
            views: Mutex::new(HashMap::new()),
            watchers: Mutex::new(HashMap::new()),
            changed: Notify::new(),
        });
        Ok(hosting)
    }

    /// The service URL proofs must name, `https://<host>/`.
    pub fn service(&self) -> &ServiceUrl {
        &self.service
    }

    pub fn config(&self) -> &HostingConfig {
        &self.config
    }

    /// The path of this service's proof in an archive.
    pub fn proof_path(&self) -> String {
        format!("/proofs/{}.json", self.service.host())
    }

    /// Runs [`Hosting::check`] after every change of a watched archive, and at least every
    /// `check_interval_ms`, until the service is dropped.
    pub fn spawn_checker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        let interval = Duration::from_millis(self.config.check_interval_ms.max(10));
        tokio::spawn(async move {
            loop {
                let Some(h) = me.upgrade() else { break };
                let run = h.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || run.check()).await {
                    tracing::error!("hosting check failed: {e}");
                }
                let _ = tokio::time::timeout(interval, h.changed.notified()).await;
                drop(h);
                // Let a burst of appends settle into one check.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }

    /// Hands out a nonce for `archive` and starts replicating it.
    pub fn signup(&self, archive: PublicKey) -> Result<(String, Duration), HostingError> {
        let now = Instant::now();
        let ttl = Duration::from_millis(self.config.nonce_ttl_ms);
        {
            let mut st = self.state.lock();
            if st.accounts.contains_key(&archive) {
                return Err(HostingError::AccountExists(archive));
            }
            st.nonces.retain(|_, n| n.expires > now);
            if st.nonces.len() >= self.config.max_pending {
                return Err(HostingError::Busy);
            }
            let mine = st.nonces.values().filter(|n| n.archive == archive).count();
            if mine >= self.config.max_nonces_per_archive {
                return Err(HostingError::RateLimited);
            }
            let nonce: [u8; 16] = rand::random();
            st.nonces.insert(
                nonce,
                Nonce {
                    archive,
                    expires: now + ttl,
                },
            );
            st.pending.entry(archive).or_default();
            st.referenced.insert(archive);
            drop(st);
            if let Err(e) = self.crawler.learn(archive) {
                self.state.lock().nonces.remove(&nonce);
                return Err(match e {
                    crate::crawl::CrawlError::Full(_) => HostingError::Busy,
                    e => HostingError::Internal(format!("cannot hold the archive: {e}")),
                });
            }
            self.watch(archive);
            self.changed.notify_one();
            Ok((hex::encode(nonce), ttl))
        }
    }

    /// Every account, oldest key order.
    pub fn accounts(&self) -> Vec<Account> {
        self.state.lock().accounts.values().cloned().collect()
    }

    /// The account of `key` and its last checked state; else whether a signup is pending and
    /// what it waits for.
    pub fn status(&self, key: &PublicKey) -> Option<serde_json::Value> {
        let st = self.state.lock();
        if let Some(account) = st.accounts.get(key) {
            let status = st.statuses.get(key).cloned().unwrap_or_default();
            return Some(serde_json::json!({
                "archive": key.to_hex(),
                "account": true,
                "createdAt": account.created_at,
                "proof": account.proof,
                "quota": {"maxBytes": self.config.max_bytes, "maxArchives": self.config.max_archives},
                "usedBytes": status.used_bytes,
                "usedArchives": status.used_archives,
                "archives": status.archives,
                "invalid": status.invalid.iter().map(|(p, r)| serde_json::json!({"path": p, "reason": r})).collect::<Vec<_>>(),
            }));
        }
        st.pending.get(key).map(|p| {
            serde_json::json!({
                "archive": key.to_hex(),
                "account": false,
                "pending": true,
                "proofPath": self.proof_path(),
                "problem": p.problem,
            })
        })
    }

    /// One round: expire nonces, check pending proofs, re-evaluate every account's archives.
    pub fn check(&self) {
        let now = Instant::now();
        let pending: Vec<PublicKey> = {
            let mut st = self.state.lock();
            st.nonces.retain(|_, n| n.expires > now);
            let live: HashSet<PublicKey> = st.nonces.values().map(|n| n.archive).collect();
            st.pending.retain(|k, _| live.contains(k));
            st.pending.keys().copied().collect()
        };
        for key in pending {
            match self.claim(&key) {
                Ok(_) => tracing::info!("hosting: account created for {key}"),
                Err(e) => {
                    if let Some(p) = self.state.lock().pending.get_mut(&key) {
                        p.problem = Some(e.to_string());
                    }
                }
            }
        }
        let accounts: Vec<PublicKey> = self.state.lock().accounts.keys().copied().collect();
        let mut referenced: HashSet<PublicKey> = HashSet::new();
        let mut statuses = HashMap::new();
        for account in accounts {
            let status = self.evaluate(&account, &mut referenced);
            statuses.insert(account, status);
        }
        let released: Vec<PublicKey> = {
            let mut st = self.state.lock();
            st.statuses = statuses;
            referenced.extend(st.pending.keys().copied());
            let released = st
                .referenced
                .difference(&referenced)
                .copied()
                .collect::<Vec<_>>();
            st.referenced = referenced;
            released
        };
        for key in released {
            self.release(&key);
        }
        let mut st = self.state.lock();
        if st.accepted_dirty {
            match save_accounts(&self.accounts_path, &st.accounts, &st.accepted) {
                Ok(()) => st.accepted_dirty = false,
                Err(e) => tracing::warn!("hosting: saving the accounts: {e}"),
            }
        }
    }

    /// Checks the proof in `key`'s archive; creates the account if it holds.
    pub fn claim(&self, key: &PublicKey) -> Result<Account, HostingError> {
        let view = self.view(key).ok_or(HostingError::NotHeld)?;
        let path_str = self.proof_path();
        let path: FilePath = path_str
            .parse()
            .map_err(|e| HostingError::Internal(format!("{e}")))?;
        let version = view.get(&path)?.ok_or_else(|| HostingError::NoProof {
            path: path_str.clone(),
        })?;
        let proof = match validate_file(&version.path, &version.value) {
            Ok(File::Proof(p)) => p,
            Ok(_) => {
                return Err(HostingError::InvalidProof {
                    path: path_str,
                    reason: "not a proof".into(),
                })
            }
            Err(e) => {
                return Err(HostingError::InvalidProof {
                    path: path_str,
                    reason: e.to_string(),
                })
            }
        };
        if proof.service.host() != self.service.host() {
            return Err(HostingError::WrongService {
                found: proof.service.to_string(),
                expected: self.service.to_string(),
            });
        }
        let mut st = self.state.lock();
        if st.accounts.contains_key(key) {
            return Err(HostingError::AccountExists(*key));
        }
        match st.nonces.get(&proof.nonce) {
            None => return Err(HostingError::UnknownNonce),
            Some(n) if n.archive != *key => return Err(HostingError::OtherArchive),
            Some(n) if n.expires <= Instant::now() => {
                st.nonces.remove(&proof.nonce);
                return Err(HostingError::Expired);
            }
            Some(_) => {}
        }
        let account = Account {
            archive: key.to_hex(),
            created_at: Timestamp::now().to_string(),
            proof: ProofRef {
                path: path_str,
                seq: version.entry.seq,
                hash: hex::encode(version.entry.hash),
                nonce: hex::encode(proof.nonce),
            },
        };
        let mut accounts = st.accounts.clone();
        accounts.insert(*key, account.clone());
        save_accounts(&self.accounts_path, &accounts, &st.accepted)
            .map_err(|e| HostingError::Internal(format!("saving the accounts: {e}")))?;
        st.accounts = accounts;
        // Single use: this nonce and every other one of the archive are spent.
        st.nonces.retain(|_, n| n.archive != *key);
        st.pending.remove(key);
        Ok(account)
    }

    /// Walks one account's archives against the quota; holds, freezes, refuses accordingly.
    fn evaluate(&self, account: &PublicKey, referenced: &mut HashSet<PublicKey>) -> AccountStatus {
        let mut status = AccountStatus::default();
        let mut wanted: Vec<(Option<String>, PublicKey)> = vec![(None, *account)];
        if let Err(e) = self.crawler.learn(*account) {
            tracing::warn!("hosting: cannot hold account archive {account}: {e}");
        }
        self.watch(*account);
        if let Some(view) = self.view(account) {
            match hosting_requests(&view) {
                Ok((requests, invalid)) => {
                    wanted.extend(requests.into_iter().map(|(n, k)| (Some(n), k)));
                    status.invalid = invalid;
                }
                Err(e) => tracing::warn!("hosting: reading {account}: {e}"),
            }
        }
        let mut seen = HashSet::new();
        for (name, key) in wanted {
            if !seen.insert(key) {
                continue;
            }
            let url = format!("hyper://{}/", key.to_hex());
            let refuse = |status: &mut AccountStatus, reason: String| {
                status.archives.push(HostedArchive {
                    name: name.clone(),
                    url: url.clone(),
                    state: HostedState::Refused,
                    reason: Some(reason),
                    bytes: 0,
                    length: 0,
                });
            };
            if status.used_archives + 1 > self.config.max_archives {
                refuse(
                    &mut status,
                    format!(
                        "over the quota of {} archives per account",
                        self.config.max_archives
                    ),
                );
                continue;
            }
            let earlier = {
                let mut st = self.state.lock();
                let now = Instant::now();
                st.refused.retain(|_, (until, _)| *until > now);
                st.refused.get(&(*account, key)).map(|(_, r)| r.clone())
            };
            if let Some(reason) = earlier {
                refuse(&mut status, reason);
                continue;
            }
            if let Err(e) = self.crawler.learn(key) {
                refuse(&mut status, format!("the service cannot hold it: {e}"));
                continue;
            }
            let Some(log) = self.crawler.log(&key) else {
                refuse(&mut status, "the service cannot hold it".into());
                continue;
            };
            let info = log.info();
            let total = status.used_bytes.saturating_add(info.byte_length);
            let accepted = self.state.lock().accepted.contains(&(*account, key));
            let (state, reason) = if total <= self.config.max_bytes {
                if !accepted {
                    let mut st = self.state.lock();
                    st.accepted.insert((*account, key));
                    st.accepted_dirty = true;
                }
                (HostedState::Hosted, None)
            } else if accepted || key == *account {
                (
                    HostedState::Frozen,
                    Some(format!(
                        "the account is over its quota of {} bytes ({total} with this archive): this archive is no longer updated",
                        self.config.max_bytes
                    )),
                )
            } else {
                let reason = format!(
                    "it would take the account past its quota of {} bytes ({total}); retried in 10 minutes",
                    self.config.max_bytes
                );
                // Not fetched again at every check: the replica is deleted and stays so a while.
                self.state.lock().refused.insert(
                    (*account, key),
                    (Instant::now() + REFUSED_RETRY, reason.clone()),
                );
                refuse(&mut status, reason);
                continue;
            };
            referenced.insert(key);
            status.used_archives += 1;
            status.used_bytes = total;
            if let Some(swarm) = self.crawler.swarm() {
                match state {
                    HostedState::Hosted => {
                        swarm.add(log.clone());
                    }
                    _ => {
                        swarm.remove(&key);
                    }
                }
            }
            self.watch(key);
            status.archives.push(HostedArchive {
                name,
                url,
                state,
                reason,
                bytes: info.byte_length,
                length: info.length,
            });
        }
        status
    }

    /// Stops holding an archive hosting no longer needs, and deletes its replica.
    fn release(&self, key: &PublicKey) {
        if let Some(w) = self.watchers.lock().remove(key) {
            w.abort();
        }
        self.views.lock().remove(key);
        let mut st = self.state.lock();
        st.accepted.retain(|(_, k)| k != key);
        st.accepted_dirty = true;
        drop(st);
        match self.crawler.forget(key) {
            Ok(_) => tracing::info!("hosting: released {key}"),
            Err(e) => tracing::warn!("hosting: releasing {key}: {e}"),
        }
    }

    /// The file view of a held archive, folded incrementally across checks.
    fn view(&self, key: &PublicKey) -> Option<Arc<Archive>> {
        let log = self.crawler.log(key)?;
        let mut views = self.views.lock();
        let view = views
            .entry(*key)
            .or_insert_with(|| Arc::new(Archive::new(log.clone())));
        if !Arc::ptr_eq(view.log(), &log) {
            *view = Arc::new(Archive::new(log));
        }
        Some(view.clone())
    }

    /// Wakes the checker whenever `key`'s log changes.
    fn watch(&self, key: PublicKey) {
        let Some(log) = self.crawler.log(&key) else {
            return;
        };
        let mut watchers = self.watchers.lock();
        if watchers.get(&key).is_some_and(|w| !w.is_finished()) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me: Weak<Hosting> = self.me.clone();
        let mut rx = log.subscribe();
        drop(log);
        watchers.insert(
            key,
            rt.spawn(async move {
                while rx.changed().await.is_ok() {
                    match me.upgrade() {
                        Some(h) => h.changed.notify_one(),
                        None => break,
                    }
                }
            }),
        );
    }
}

/// The valid `/hosting/*.json` requests of an archive, by name, and the invalid files.
#[allow(clippy::type_complexity)]
fn hosting_requests(
    view: &Archive,
) -> Result<(Vec<(String, PublicKey)>, Vec<(String, String)>), ArchiveError> {
    let dir: FilePath = "/hosting".parse().map_err(ArchiveError::Model)?;
    let mut requests = Vec::new();
    let mut invalid = Vec::new();
    for (path, _) in view.list(&dir)? {
        let Some(version) = view.get(&path)? else {
            continue;
        };
        match validate_file(&version.path, &version.value) {
            Ok(File::Hosting { name, request }) => requests.push((name, request.url.key().into())),
            Ok(_) => invalid.push((path.to_string(), "not a hosting request".to_owned())),
            Err(e) => invalid.push((path.to_string(), e.to_string())),
        }
    }
    requests.sort();
    Ok((requests, invalid))
}

fn load_accounts(path: &Path) -> anyhow::Result<(BTreeMap<PublicKey, Account>, Accepted)> {
    use std::io::Read;
    let mut text = String::new();
    match std::fs::File::open(path) {
        Ok(f) => {
            f.take(MAX_ACCOUNTS_FILE + 1)
                .read_to_string(&mut text)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((BTreeMap::new(), Accepted::new()))
        }
        Err(e) => anyhow::bail!("reading {}: {e}", path.display()),
    }
    anyhow::ensure!(
        text.len() as u64 <= MAX_ACCOUNTS_FILE,
        "{} is over 64 MiB",
        path.display()
    );
    let file: AccountsFile = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a valid accounts file ({e}); restore it from a backup",
            path.display()
        )
    })?;
    let mut accounts = BTreeMap::new();
    for a in file.accounts {
        match PublicKey::from_hex(&a.archive) {
            Ok(k) => {
                accounts.insert(k, a);
            }
            Err(e) => tracing::warn!("{}: skipping account {}: {e}", path.display(), a.archive),
        }
    }
    let mut accepted = Accepted::new();
    for (account, keys) in &file.accepted {
        let Ok(account) = PublicKey::from_hex(account) else {
            continue;
        };
        for k in keys {
            if let Ok(k) = PublicKey::from_hex(k) {
                accepted.insert((account, k));
            }
        }
    }
    Ok((accounts, accepted))
}

/// Writes the accounts atomically: a temporary file, synced, renamed, the directory synced.
fn save_accounts(
    path: &Path,
    accounts: &BTreeMap<PublicKey, Account>,
    accepted: &Accepted,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("accounts.json.tmp");
    let file = AccountsFile {
        version: 1,
        accounts: accounts.values().cloned().collect(),
        accepted: {
            let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (account, key) in accepted {
                if accounts.contains_key(account) {
                    map.entry(account.to_hex()).or_default().push(key.to_hex());
                }
            }
            map.values_mut().for_each(|v| v.sort());
            map
        },
    };
    let bytes = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
