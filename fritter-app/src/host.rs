//! `fritter host`: the client side of a hosting service (a `fritter-crawler` with `[hosting]
//! enabled = true`), the always-on peer that keeps your archive reachable while you sleep.
//!
//! - `signup URL`: asks the service for a nonce, writes `/proofs/<service-host>.json` into your
//!   signed archive, and waits until the service has read it back and created your account. The
//!   service must reach your archive: keep `fritter serve --peer <its replication address>` (or
//!   `fritter sync`) running.
//! - `add URL [--name NAME]`, `rm NAME`: write or delete `/hosting/<name>.json`, the archives the
//!   service should keep online for you (your own is always hosted).
//! - `ls`: your hosting requests, and what each service you signed up with says of them
//!   (hosted, frozen or refused, with the reason).
//!
//! Writes go to the archive directly, or through a running `fritter serve` that holds it
//! (`POST /api/file`, `POST /api/delete`). Services signed up with are remembered in
//! `<data-dir>/hosting.json` for `ls`.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use fritter_common::archive::{Archive, EntryRef};
use fritter_common::crypto::PublicKey;
use fritter_common::model::{
    ArchiveUrl, File, FilePath, HostingRequest, OwnershipProof, ServiceUrl, Timestamp,
};
use fritter_common::store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cli::HostCommand;
use crate::output::{as_string, hex, Output, Report};
use crate::remote::Remote;
use crate::App;

/// Largest answer read from a service.
const MAX_ANSWER: u64 = 1024 * 1024;

/// Runs one `fritter host` command.
pub fn run(app: &App, command: HostCommand, out: &mut Output<'_>) -> anyhow::Result<()> {
    match command {
        HostCommand::Signup { service, timeout } => {
            let signed = signup(app, &service, Duration::from_secs(timeout), out)?;
            out.emit(&signed)?
        }
        HostCommand::Add { url, name } => out.emit(&add(app, &url, name.as_deref())?)?,
        HostCommand::Rm { name } => out.emit(&rm(app, &name)?)?,
        HostCommand::Ls { service } => out.emit(&ls(app, service.as_deref())?)?,
    }
    Ok(())
}

/// A file written into your archive.
#[derive(Debug, Serialize)]
pub struct Written {
    #[serde(serialize_with = "as_string")]
    pub url: ArchiveUrl,
    pub path: FilePath,
    #[serde(flatten)]
    pub entry: EntryRef,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Wrote {} (entry {}, hash {})",
            self.url,
            self.entry.seq,
            hex(&self.entry.hash)
        )
    }
}

impl Report for Written {}

/// Writes a `/proofs/` or `/hosting/` file into `own` (for `fritter serve`'s `POST /api/file`).
pub fn put_in(own: &Archive, path: &str, value: Value) -> anyhow::Result<Written> {
    let path: FilePath = path.parse()?;
    let first = path.segments().next().unwrap_or_default();
    if !matches!(first, "proofs" | "hosting") {
        bail!("only /proofs/ and /hosting/ files can be written this way; use the other commands for the rest");
    }
    let entry = own.put(&path, value)?;
    Ok(Written {
        url: ArchiveUrl::new(own.key().into(), path.clone()),
        path,
        entry,
    })
}

/// Writes a file into your archive, here or through `fritter serve` if it holds the archive.
fn put_own(app: &App, file: &File) -> anyhow::Result<Written> {
    let path = file.path()?;
    match app.store.open_own() {
        Ok(own) => put_in(&own, path.as_str(), file.to_value()),
        Err(StoreError::Locked { .. }) if Remote::find(app).is_some() => {
            let remote = Remote::find(app).context("`fritter serve` is gone")?;
            tracing::debug!(url = remote.url(), "writing through `fritter serve`");
            let answer = remote.post(
                "/api/file",
                &json!({"path": path.as_str(), "value": file.to_value()}),
                &crate::idempotency::new_key(),
            )?;
            written_from(&answer.json)
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes a file of your archive, here or through `fritter serve`.
fn delete_own(app: &App, path: &FilePath) -> anyhow::Result<Written> {
    match app.store.open_own() {
        Ok(own) => {
            let entry = own.delete(path)?;
            Ok(Written {
                url: ArchiveUrl::new(own.key().into(), path.clone()),
                path: path.clone(),
                entry,
            })
        }
        Err(StoreError::Locked { .. }) if Remote::find(app).is_some() => {
            let remote = Remote::find(app).context("`fritter serve` is gone")?;
            let answer = remote.post(
                "/api/delete",
                &json!({"url": path.as_str()}),
                &crate::idempotency::new_key(),
            )?;
            written_from(&answer.json)
        }
        Err(e) => Err(e.into()),
    }
}

fn written_from(v: &Value) -> anyhow::Result<Written> {
    let bad = || anyhow!("`fritter serve` answered something unexpected: {v}");
    let mut hash = [0u8; 32];
    hex::decode_to_slice(v["hash"].as_str().ok_or_else(bad)?, &mut hash).map_err(|_| bad())?;
    Ok(Written {
        url: v["url"].as_str().ok_or_else(bad)?.parse::<ArchiveUrl>()?,
        path: v["path"].as_str().ok_or_else(bad)?.parse()?,
        entry: EntryRef {
            seq: v["seq"].as_u64().ok_or_else(bad)?,
            hash,
        },
    })
}

// ---- talking to a service ----

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// `http(s)://host[:port]` without a trailing slash, and the canonical host it names.
fn base_url(input: &str) -> anyhow::Result<(String, String)> {
    let rest = input
        .strip_prefix("https://")
        .or_else(|| input.strip_prefix("http://"))
        .ok_or_else(|| anyhow!("{input} is not a service address: give https://HOST[:PORT]"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = format!("https://{authority}/")
        .parse::<ServiceUrl>()
        .with_context(|| format!("{input} is not a service address"))?
        .host()
        .to_owned();
    let scheme = if input.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    Ok((format!("{scheme}://{authority}"), host))
}

fn call(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    base: &str,
) -> anyhow::Result<(u16, Value)> {
    let mut res = result.with_context(|| {
        format!("the hosting service at {base} does not answer; check the address")
    })?;
    let status = res.status().as_u16();
    let text = res
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string()
        .with_context(|| format!("cannot read the answer of {base}"))?;
    let value = serde_json::from_str(&text)
        .with_context(|| format!("{base} answered {status} with something other than JSON"))?;
    Ok((status, value))
}

fn error_message(v: &Value) -> String {
    v.pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("request failed")
        .to_owned()
}

/// `fritter host signup`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedUp {
    pub service: String,
    #[serde(serialize_with = "as_string")]
    pub archive: ArchiveUrl,
    pub proof: Written,
    /// The service's view of the account.
    pub account: Value,
}

impl fmt::Display for SignedUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Signed up with {} as {}", self.service, self.archive)?;
        writeln!(
            f,
            "  proof {} (entry {}, hash {})",
            self.proof.path,
            self.proof.entry.seq,
            hex(&self.proof.entry.hash)
        )?;
        write!(
            f,
            "Your archive is hosted there; add more with `fritter host add URL`."
        )
    }
}

impl Report for SignedUp {}

/// Signs up with the service at `input`: nonce, proof, and the wait for the account.
pub fn signup(
    app: &App,
    input: &str,
    timeout: Duration,
    out: &mut Output<'_>,
) -> anyhow::Result<SignedUp> {
    let key = app.own_key()?;
    let (base, host) = base_url(input)?;
    let agent = agent();
    let (status, answer) = call(
        agent
            .post(format!("{base}/v1/hosting/signup"))
            .send_json(json!({"archive": key.to_hex()})),
        &base,
    )?;
    if status != 200 {
        bail!("{base} refused the signup: {}", error_message(&answer));
    }
    let service: ServiceUrl = answer["service"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .with_context(|| format!("{base} answered an invalid service URL"))?;
    // Sign a proof only for the service contacted, never for another one it names.
    if service.host() != host {
        bail!(
            "{base} asked for a proof for {}, not for {host}; refusing (its [hosting] host setting must match the address you use)",
            service.host()
        );
    }
    let mut nonce = [0u8; 16];
    hex::decode_to_slice(answer["nonce"].as_str().unwrap_or_default(), &mut nonce)
        .map_err(|_| anyhow!("{base} answered an invalid nonce"))?;
    let proof = put_own(
        app,
        &File::Proof(OwnershipProof {
            service: service.clone(),
            nonce,
            created_at: Timestamp::now(),
        }),
    )?;
    remember(app, &base)?;
    out.note(&format!(
        "wrote {}; waiting for {base} to replicate your archive and read it",
        proof.path
    ))?;
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let (status, v) = call(
            agent
                .get(format!("{base}/v1/hosting/{}", key.to_hex()))
                .call(),
            &base,
        )?;
        if status == 200 && v["account"] == true {
            return Ok(SignedUp {
                service: service.to_string(),
                archive: ArchiveUrl::root(key.into()),
                proof,
                account: v,
            });
        }
        let problem = if status == 200 {
            v["problem"]
                .as_str()
                .unwrap_or("not checked yet")
                .to_owned()
        } else {
            error_message(&v)
        };
        if problem != last {
            out.note(&format!("  {problem}"))?;
            last = problem;
        }
        if Instant::now() > deadline {
            bail!(
                "{base} did not confirm within {} s (last: {last}); it must reach your archive: keep `fritter serve --peer <its replication address>` running, then check with `fritter host ls`",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Services signed up with, for `fritter host ls`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Services {
    services: Vec<String>,
}

fn services_path(app: &App) -> std::path::PathBuf {
    app.store.root().join("hosting.json")
}

fn remembered(app: &App) -> Vec<String> {
    std::fs::read_to_string(services_path(app))
        .ok()
        .and_then(|t| serde_json::from_str::<Services>(&t).ok())
        .map(|s| s.services)
        .unwrap_or_default()
}

fn remember(app: &App, base: &str) -> anyhow::Result<()> {
    let mut services = remembered(app);
    if !services.iter().any(|s| s == base) {
        services.push(base.to_owned());
    }
    let path = services_path(app);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&Services { services })?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Adds `/hosting/<name>.json {url}`; the name defaults to the first 12 hex digits of the key.
pub fn add(app: &App, url: &str, name: Option<&str>) -> anyhow::Result<Written> {
    let url = ArchiveUrl::parse_lenient(url)?;
    let key: PublicKey = url.key().into();
    let name = name.map_or_else(|| key.to_hex()[..12].to_owned(), str::to_owned);
    HostingRequest::path(&name)?;
    put_own(
        app,
        &File::Hosting {
            name,
            request: HostingRequest {
                url: ArchiveUrl::root(key.into()),
            },
        },
    )
}

/// Deletes `/hosting/<name>.json`: the services stop hosting that archive.
pub fn rm(app: &App, name: &str) -> anyhow::Result<Written> {
    let path = HostingRequest::path(name)?;
    let own = app.store.open_view(&app.own_key()?)?;
    if own.get(&path)?.is_none() {
        bail!("you have no hosting request named {name}; see them with `fritter host ls`");
    }
    drop(own);
    delete_own(app, &path)
}

/// `fritter host ls`.
#[derive(Debug, Serialize)]
pub struct HostList {
    /// `/hosting/*.json` of your archive: name and URL.
    pub requests: Vec<Value>,
    /// What each service says of your account (or why it could not be asked).
    pub services: Vec<Value>,
}

impl fmt::Display for HostList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.requests.is_empty() {
            writeln!(
                f,
                "No hosting requests (add one with `fritter host add URL`)."
            )?;
        } else {
            writeln!(f, "Hosting requests:")?;
            for r in &self.requests {
                writeln!(
                    f,
                    "  {}  {}",
                    r["name"].as_str().unwrap_or(""),
                    r["url"].as_str().unwrap_or("")
                )?;
            }
        }
        if self.services.is_empty() {
            write!(
                f,
                "No hosting service yet (sign up with `fritter host signup URL`)."
            )?;
        }
        for s in &self.services {
            let service = s["service"].as_str().unwrap_or("");
            if let Some(e) = s["error"].as_str() {
                writeln!(f, "{service}: {e}")?;
                continue;
            }
            let st = &s["status"];
            if st["account"] != true {
                writeln!(
                    f,
                    "{service}: no account yet ({})",
                    st["problem"].as_str().unwrap_or("pending")
                )?;
                continue;
            }
            writeln!(
                f,
                "{service}: {} of {} bytes, {} of {} archives",
                st["usedBytes"],
                st["quota"]["maxBytes"],
                st["usedArchives"],
                st["quota"]["maxArchives"]
            )?;
            for a in st["archives"].as_array().into_iter().flatten() {
                let name = a["name"].as_str().unwrap_or("(your archive)");
                write!(
                    f,
                    "  {name}  {}  {}",
                    a["url"].as_str().unwrap_or(""),
                    a["state"].as_str().unwrap_or("")
                )?;
                if let Some(r) = a["reason"].as_str() {
                    write!(f, ": {r}")?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

impl Report for HostList {}

/// Lists your hosting requests and asks each service (remembered, or `service`) about them.
pub fn ls(app: &App, service: Option<&str>) -> anyhow::Result<HostList> {
    let key = app.own_key()?;
    let own = app.store.open_view(&key)?;
    let dir: FilePath = "/hosting".parse()?;
    let mut requests = Vec::new();
    for (path, _) in own.list(&dir)? {
        if let Some(v) = own.get(&path)? {
            if let Ok(File::Hosting { name, request }) =
                fritter_common::model::validate_file(&v.path, &v.value)
            {
                requests.push(json!({"name": name, "url": request.url.to_string()}));
            }
        }
    }
    let services = match service {
        Some(s) => vec![base_url(s)?.0],
        None => remembered(app),
    };
    let agent = agent();
    let services = services
        .into_iter()
        .map(|base| {
            match call(
                agent
                    .get(format!("{base}/v1/hosting/{}", key.to_hex()))
                    .call(),
                &base,
            ) {
                Ok((200, v)) => json!({"service": base, "status": v}),
                Ok((_, v)) => json!({"service": base, "error": error_message(&v)}),
                Err(e) => json!({"service": base, "error": format!("{e:#}")}),
            }
        })
        .collect();
    Ok(HostList { requests, services })
}
