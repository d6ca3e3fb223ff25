//! The optional crawler (`--crawler URL`): whole threads (`GET {crawler}/v1/thread?uri=`) and
//! mentions from everyone (`GET {crawler}/v1/mentions/{key}`), what a node that only holds its
//! follows cannot know.
//!
//! A crawler's answer is untrusted like anything from the network: the body is bounded, every
//! status found in it is validated with the archive schema before use, and whatever does not
//! validate is dropped. The reader accepts any JSON layout that carries statuses as objects with
//! a status `url` and the status `value` (or `status`/`record`), optionally `seq` and `hash`, so
//! it does not depend on one crawler's exact envelope.

use std::time::Duration;

use anyhow::{bail, Context};
use fritter_common::crypto::PublicKey;
use fritter_common::model::{validate_file, ArchiveUrl, File, Status, StatusId};
use serde_json::Value;

/// Largest crawler answer read.
const MAX_BODY: u64 = 4 * 1024 * 1024;

/// Most statuses taken from one answer.
const MAX_STATUSES: usize = 1000;

/// Deepest nesting searched for statuses.
const MAX_DEPTH: usize = 12;

/// A status as the crawler reported it, validated.
#[derive(Debug, Clone)]
pub struct Crawled {
    pub key: PublicKey,
    pub id: StatusId,
    pub seq: u64,
    pub hash: [u8; 32],
    pub status: Status,
}

/// A crawler's HTTP API.
#[derive(Clone)]
pub struct Crawler {
    base: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Crawler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crawler")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Crawler {
    pub fn new(base: &str) -> anyhow::Result<Crawler> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--crawler {base}: expected an http:// or https:// URL");
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(3)))
            .http_status_as_error(true)
            .build()
            .into();
        Ok(Crawler { base, agent })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn get(&self, path_and_query: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path_and_query}", self.base);
        let text = self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("crawler request {url} failed"))?
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .with_context(|| format!("crawler answer from {url} is unreadable"))?;
        serde_json::from_str(&text)
            .with_context(|| format!("crawler answer from {url} is not JSON"))
    }

    /// Tells the crawler about the archive `key` (`POST /v1/crawl`), so it replicates and
    /// indexes it: how the people this user never followed find their statuses in threads,
    /// mentions and search.
    pub fn announce(&self, key: &PublicKey) -> anyhow::Result<()> {
        let url = format!("{}/v1/crawl", self.base);
        self.agent
            .post(&url)
            .header("content-type", "application/json")
            .send(serde_json::json!({"url": format!("hyper://{}/", key.to_hex())}).to_string())
            .with_context(|| format!("crawler request {url} failed"))?;
        Ok(())
    }

    /// [`Crawler::announce`] until the crawler takes it: at once, then after 5 s doubling to
    /// 10 minutes between tries (the crawler may be down, or rate-limiting this address).
    pub fn announce_in_background(&self, key: PublicKey) {
        let crawler = self.clone();
        let spawned = std::thread::Builder::new()
            .name("fritter-announce".into())
            .spawn(move || {
                let mut wait = Duration::from_secs(5);
                loop {
                    match crawler.announce(&key) {
                        Ok(()) => {
                            tracing::info!(crawler = %crawler.base, "announced the archive to the crawler");
                            return;
                        }
                        Err(err) => tracing::warn!(
                            crawler = %crawler.base,
                            error = %format!("{err:#}"),
                            "cannot announce the archive to the crawler; retrying in {} s",
                            wait.as_secs()
                        ),
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(600));
                }
            });
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "cannot start the announce thread");
        }
    }

    /// The statuses of the thread of `url`, as the crawler knows it.
    pub fn thread(&self, url: &ArchiveUrl) -> anyhow::Result<Vec<Crawled>> {
        let value = self.get(&format!("/v1/thread?uri={}", encode(&url.to_string())))?;
        Ok(statuses_in(&value))
    }

    /// Statuses that mention or reply to `key`, from everyone the crawler reached.
    pub fn mentions(&self, key: &PublicKey) -> anyhow::Result<Vec<Crawled>> {
        let value = self.get(&format!("/v1/mentions/{}", key.to_hex()))?;
        Ok(statuses_in(&value))
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every valid status found in a crawler answer, each once.
pub fn statuses_in(value: &Value) -> Vec<Crawled> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        if out.len() >= MAX_STATUSES || depth > MAX_DEPTH {
            continue;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().rev().map(|i| (i, depth + 1))),
            Value::Object(map) => {
                if let Some(c) = crawled(map) {
                    if seen.insert((c.key, c.id)) {
                        out.push(c);
                    }
                }
                stack.extend(map.values().map(|i| (i, depth + 1)));
            }
            _ => {}
        }
    }
    out
}

fn crawled(map: &serde_json::Map<String, Value>) -> Option<Crawled> {
    let url: ArchiveUrl = map
        .get("url")
        .or_else(|| map.get("uri"))?
        .as_str()?
        .parse()
        .ok()?;
    let id = url.status_id()?;
    let value = ["value", "status", "record"]
        .iter()
        .find_map(|k| map.get(*k).filter(|v| v.is_object()))?;
    let path = url.path()?.clone();
    let Ok(File::Status { status, .. }) = validate_file(&path, value) else {
        return None;
    };
    let seq = map.get("seq").and_then(Value::as_u64).unwrap_or(0);
    let mut hash = [0u8; 32];
    if let Some(h) = map.get("hash").and_then(Value::as_str) {
        let _ = hex::decode_to_slice(h, &mut hash);
    }
    Some(Crawled {
        key: url.key().into(),
        id,
        seq,
        hash,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fritter_common::crypto::KeyPair;
    use serde_json::json;

    #[test]
    fn finds_valid_statuses_in_any_envelope_and_drops_the_rest() {
        let key = KeyPair::from_seed(&[7; 32]).public().to_hex();
        let ok = format!("hyper://{key}/statuses/3kq2nzxh4vk22.json");
        let other = format!("hyper://{key}/statuses/3kq2nzxh4vk23.json");
        let answer = json!({
            "coverage": {"archives": 3},
            "thread": [
                {"url": ok, "seq": 4, "hash": "ab".repeat(32),
                 "value": {"text": "<script>x</script>", "createdAt": "2024-05-01T12:00:00.000Z"}},
                {"url": other, "value": {"text": "bad\u{7}", "createdAt": "2024-05-01T12:00:00.000Z"}},
                {"url": "hyper://nope/", "value": {}},
                {"children": [{"uri": ok, "status": {"text": "dup", "createdAt": "2024-05-01T12:00:00.000Z"}}]}
            ]
        });
        let found = statuses_in(&answer);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].status.text, "<script>x</script>");
        assert_eq!(found[0].seq, 4);
        assert_eq!(found[0].hash, [0xab; 32]);
        assert_eq!(encode("hyper://a/b c"), "hyper%3A%2F%2Fa%2Fb%20c");
    }
}
