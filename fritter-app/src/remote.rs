//! Commands through a running `fritter serve` or `fritter sync`: while one runs it holds the
//! archive's write lock, so a write command that finds the lock taken sends the same request to
//! its API instead (address and token from `serve.json` in the data directory, mode 0600), and
//! prints the server's report exactly as it would have printed its own.
//!
//! Every attempt of one command carries the same idempotency key ([`crate::idempotency`]): an
//! attempt whose answer was lost (timeout, connection closed) is sent again, and the server
//! answers it with the first answer instead of writing twice.

use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, Context};
use fritter_common::store::StoreError;
use serde::Serialize;
use serde_json::{json, Value};

use crate::cli::Command;
use crate::output::Report;
use crate::serve::api::TOKEN_HEADER;
use crate::serve::ServeInfo;
use crate::App;

/// The server named by `serve.json` did not answer (it stopped, or the connection broke).
#[derive(Debug, thiserror::Error)]
#[error("`fritter serve` at {url} does not answer: {source}")]
pub struct NoAnswer {
    pub url: String,
    source: ureq::Error,
}

/// Attempts of one request whose answer is lost, before giving up on the server.
const ATTEMPTS: u32 = 3;

/// A running `fritter serve` of this data directory.
pub struct Remote {
    info: ServeInfo,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").finish_non_exhaustive()
    }
}

/// A report rendered by the server: its JSON, its text and its warnings.
#[derive(Debug)]
pub struct Rendered {
    pub json: Value,
    pub text: String,
    pub warnings: Vec<String>,
}

impl Serialize for Rendered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Report for Rendered {
    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

impl Remote {
    /// The server named by `serve.json`, if there is one (it may have stopped since).
    pub fn find(app: &App) -> Option<Remote> {
        let info = ServeInfo::read(app)?;
        // Left behind by a server that was killed: nobody answers there.
        // SAFETY: signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(info.pid as libc::pid_t, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            return None;
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        Some(Remote { info, agent })
    }

    pub fn url(&self) -> &str {
        &self.info.url
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.info.url.trim_end_matches('/'), path)
    }

    fn answer(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Value> {
        let mut res = result.map_err(|source| NoAnswer {
            url: self.info.url.clone(),
            source,
        })?;
        let status = res.status();
        let text = res
            .body_mut()
            .with_config()
            .limit(16 * 1024 * 1024)
            .read_to_string()
            .context("cannot read the answer of `fritter serve`")?;
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            // Not the API's answer (a proxy's, or an older server's): its first words say more
            // than "not JSON" would.
            let words: String = text.trim().chars().take(200).collect();
            return Err(anyhow!("`fritter serve` answered {status}: {words}"));
        };
        if !status.is_success() {
            let message = value["error"].as_str().unwrap_or("request failed");
            return Err(anyhow!("{message}"));
        }
        Ok(value)
    }

    /// `GET <path>` of the API.
    pub fn get(&self, path_and_query: &str) -> anyhow::Result<Value> {
        self.wait_started()?;
        self.answer(self.agent.get(&self.endpoint(path_and_query)).call())
    }

    /// Waits (up to a minute) while the server is still opening the archives.
    fn wait_started(&self) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let me = self.answer(self.agent.get(&self.endpoint("/api/me")).call())?;
            if let Some(err) = me["error"].as_str() {
                return Err(anyhow!("`fritter serve` is not serving yet: {err}"));
            }
            if me["starting"] != true || std::time::Instant::now() > deadline {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `POST <path>` of a write endpoint, with the token and the command's idempotency key;
    /// sent again (same key) when the answer is lost. The server's report.
    pub fn post(&self, path: &str, body: &Value, key: &str) -> anyhow::Result<Rendered> {
        self.wait_started()?;
        let mut attempt = 1;
        let value = loop {
            let sent = self.answer(
                self.agent
                    .post(&self.endpoint(path))
                    .header(TOKEN_HEADER, &self.info.token)
                    .header(crate::idempotency::HEADER, key)
                    .send_json(body),
            );
            match sent {
                Err(err) if err.is::<NoAnswer>() && attempt < ATTEMPTS => {
                    tracing::debug!(error = %format!("{err:#}"), attempt, key, "no answer; sending again");
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                    attempt += 1;
                }
                other => break other?,
            }
        };
        Ok(Rendered::from_answer(&value))
    }
}

impl Rendered {
    /// A write's answer as [`answer_of`] made it.
    pub fn from_answer(value: &Value) -> Rendered {
        Rendered {
            json: value["result"].clone(),
            text: value["text"].as_str().unwrap_or_default().to_owned(),
            warnings: value["warnings"]
                .as_array()
                .map(|w| {
                    w.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// A write's answer, as the API sends it and a repeated idempotency key gets it: the report as
/// JSON, as text, and its warnings.
pub fn answer_of<R: Report>(report: &R) -> anyhow::Result<Value> {
    Ok(json!({
        "result": serde_json::to_value(report)?,
        "text": report.to_string(),
        "warnings": report.warnings(),
    }))
}

/// The API request that does what a write command does, if it is one `fritter serve` can run.
pub fn request_for(command: &Command) -> Option<(&'static str, Value)> {
    Some(match command {
        // The server runs elsewhere: the file is named as this command's directory sees it.
        Command::Export { file, force } => (
            "/api/export",
            json!({ "file": std::path::absolute(file).ok()?, "force": force }),
        ),
        Command::Post { text } => ("/api/post", json!({ "text": text })),
        Command::Reply { url, text } => ("/api/reply", json!({ "url": url, "text": text })),
        Command::Like { url } => ("/api/like", json!({ "url": url })),
        Command::Unlike { url } => ("/api/unlike", json!({ "url": url })),
        Command::Delete { url } => ("/api/delete", json!({ "url": url })),
        Command::Follow { url } => ("/api/follow", json!({ "url": url })),
        Command::Unfollow { url } => ("/api/unfollow", json!({ "url": url })),
        Command::Profile { name, bio } if name.is_some() || bio.is_some() => {
            ("/api/profile", json!({ "name": name, "bio": bio }))
        }
        _ => return None,
    })
}

/// Whether an error is the own archive's lock being held by another process.
pub fn is_locked(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        matches!(
            e.downcast_ref::<StoreError>(),
            Some(StoreError::Locked { .. })
        )
    })
}
