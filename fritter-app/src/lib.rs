//! The personal Fritter app: the `fritter` command line over your archive and the archives you
//! follow. `main.rs` only parses arguments and starts logging; everything else is here, so tests
//! drive the same code:
//!
//! ```
//! use clap::Parser;
//! use fritter_app::{cli::Cli, output::Output, run};
//!
//! # fn main() -> anyhow::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let dir = dir.path().to_str().expect("temp dirs are UTF-8 here");
//! let mut fritter = |args: &[&str]| -> anyhow::Result<String> {
//!     let cli = Cli::try_parse_from([&["fritter", "--data-dir", dir, "--json"], args].concat())?;
//!     let (mut out, mut err) = (Vec::new(), Vec::new());
//!     run(cli, &mut Output::new(true, &mut out, &mut err))?;
//!     Ok(String::from_utf8(out)?)
//! };
//! fritter(&["init", "--name", "Ada"])?;
//! let posted: serde_json::Value = serde_json::from_str(&fritter(&["post", "Hello #fritter"])?)?;
//! assert_eq!(posted["status"]["tags"][0], "fritter");
//! # Ok(()) }
//! ```
//!
//! Modules: [`cli`] (commands and flags), [`config`] (the data directory), [`address`] (how
//! commands name files), [`compose`] (building statuses, replies and likes), one module per
//! group of commands ([`identity`], [`publish`], [`follows`], [`files`], [`backup`], [`host`] for hosting services), and
//! [`output`] (text or JSON). `fritter serve` ([`serve`]) runs the node and the web app over an
//! in-memory [`index`] of the own and followed archives, which [`views`] renders (also for
//! `fritter feed`, [`feed`]); [`remote`] sends commands through a running `fritter serve` or
//! `fritter sync`, with one [`idempotency`] key per command so a retried write is done once.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod address;
pub mod backup;
pub mod cli;
pub mod compose;
pub mod config;
pub mod feed;
pub mod files;
pub mod follows;
pub mod host;
pub mod idempotency;
pub mod identity;
pub mod index;
pub mod output;
pub mod publish;
pub mod remote;
pub mod serve;
pub mod sync;
pub mod views;

use std::time::{Duration, Instant};

use anyhow::Context;
use fritter_common::crypto::PublicKey;
use fritter_common::store::Store;

use cli::{Cli, Command};
use config::Config;
use output::Output;

/// What every command works with: the configuration and the data directory.
#[derive(Debug, Clone)]
pub struct App {
    pub config: Config,
    pub store: Store,
}

impl App {
    pub fn new(config: Config) -> App {
        let store = Store::new(&config.data_dir);
        App { config, store }
    }

    /// Your archive's key, or an error saying how to create an identity.
    pub fn own_key(&self) -> anyhow::Result<PublicKey> {
        Ok(self.store.require_identity()?.public())
    }
}

/// Runs one command and prints its report.
pub fn run(cli: Cli, out: &mut Output<'_>) -> anyhow::Result<()> {
    let app = App::new(Config::load(cli.data_dir)?);
    tracing::debug!(data_dir = %app.config.data_dir.display(), "data directory");
    let result = match remote::request_for(&cli.command) {
        Some((path, body)) => write(&app, &cli.command, path, &body, out),
        None => run_here(&app, cli.command, out),
    };
    match result {
        Err(err) if is_storage_full(&err) => {
            Err(err.context(storage_full_message(Some(app.store.root()))))
        }
        result => result,
    }
}

fn run_here(app: &App, command: Command, out: &mut Output<'_>) -> anyhow::Result<()> {
    let app = app.clone();
    match command {
        Command::Init { name, bio } => out.emit(&identity::init(&app, &name, &bio)?)?,
        Command::Url => out.emit(&identity::url(&app)?)?,
        Command::Profile { name, bio } => out.emit(&identity::profile(&app, name, bio)?)?,
        Command::Post { text } => out.emit(&publish::post(&app, &text)?)?,
        Command::Reply { url, text } => out.emit(&publish::reply(&app, &url, &text)?)?,
        Command::Like { url } => out.emit(&publish::like(&app, &url)?)?,
        Command::Unlike { url } => out.emit(&publish::unlike(&app, &url)?)?,
        Command::Delete { url } => out.emit(&publish::delete(&app, &url)?)?,
        Command::Follow { url } => out.emit(&follows::follow(&app, &url)?)?,
        Command::Unfollow { url } => out.emit(&follows::unfollow(&app, &url)?)?,
        Command::Show { path } => out.emit(&files::show(&app, &path)?)?,
        Command::Ls { path } => out.emit(&files::ls(&app, &path)?)?,
        Command::Log { path } => out.emit(&files::log(&app, path.as_deref())?)?,
        Command::Export { file, force } => out.emit(&backup::export(&app, &file, force)?)?,
        Command::Import { file } => out.emit(&backup::import(&app, &file)?)?,
        Command::Serve { http, net, crawler } => serve::run(
            app,
            serve::ServeOptions {
                http,
                net: net.flags(),
                crawler,
            },
            out,
        )?,
        Command::Sync { net, once, timeout } => {
            let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let timeout = std::time::Duration::from_secs(timeout);
            out.emit(&sync::run(&app, &net.flags(), once, timeout, progress)?)?
        }
        Command::Peers => out.emit(&sync::peers(&app)?)?,
        Command::Host { command } => host::run(&app, command, out)?,
        Command::Feed { limit, cursor } => {
            out.emit(&feed::feed(&app, cursor.as_deref(), usize::from(limit))?)?
        }
    }
    Ok(())
}

/// How long a write that found the archive locked waits for its holder's `serve.json` (a
/// `fritter serve` or `fritter sync` writes it just after taking the lock).
const FIND_SERVER: Duration = Duration::from_secs(2);
/// Rounds of "here, else through the server" before a write gives up on a server that stops
/// answering.
const ROUNDS: u32 = 3;

/// A write command: done here when the archive is free, otherwise through the running `fritter
/// serve` or `fritter sync` that holds it. Every attempt carries the same idempotency key, so an
/// attempt whose answer was lost is not done twice, also when the server died meanwhile and
/// the write falls back to here.
fn write(
    app: &App,
    command: &Command,
    path: &str,
    body: &serde_json::Value,
    out: &mut Output<'_>,
) -> anyhow::Result<()> {
    let key = idempotency::new_key();
    let request = idempotency::request_digest(path, &serde_json::to_vec(body)?);
    let mut round = 1;
    loop {
        let locked = match write_here(app, command, &key, &request, out) {
            Err(err) if remote::is_locked(&err) => err,
            done => return done,
        };
        let deadline = Instant::now() + FIND_SERVER;
        let server = loop {
            match remote::Remote::find(app) {
                Some(server) => break server,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                None => return Err(locked),
            }
        };
        tracing::debug!(
            url = server.url(),
            path,
            "the archive is held by a running server; asking it"
        );
        match server.post(path, body, &key) {
            Ok(rendered) => return Ok(out.emit(&rendered)?),
            // It stopped: the archive may be free now, and the key tells whether it wrote.
            Err(err) if err.is::<remote::NoAnswer>() && round < ROUNDS => round += 1,
            Err(err) => return Err(err),
        }
    }
}

/// A write command done by this process, which holds the archive meanwhile; a key already
/// answered gets its recorded answer.
fn write_here(
    app: &App,
    command: &Command,
    key: &str,
    request: &str,
    out: &mut Output<'_>,
) -> anyhow::Result<()> {
    let own = app.store.open_own()?;
    let keys = idempotency::Keys::new(app);
    if let idempotency::Begin::Replay { body, .. } = keys.begin(key, request, own.log().len())? {
        let answer: serde_json::Value =
            serde_json::from_str(&body).context("a recorded answer is damaged")?;
        return Ok(out.emit(&remote::Rendered::from_answer(&answer))?);
    }
    let done = Done {
        keys: &keys,
        key,
        request,
    };
    match command {
        Command::Post { text } => done.emit(publish::post_with(app, &own, text)?, out),
        Command::Reply { url, text } => done.emit(publish::reply_with(app, &own, url, text)?, out),
        Command::Like { url } => {
            done.emit(publish::like_in(&own, publish::status_url(app, url)?)?, out)
        }
        Command::Unlike { url } => done.emit(
            publish::unlike_in(&own, publish::status_url(app, url)?)?,
            out,
        ),
        Command::Delete { url } => done.emit(publish::delete_in(&own, url)?, out),
        Command::Follow { url } => done.emit(follows::follow_in(app, &own, url)?, out),
        Command::Unfollow { url } => done.emit(follows::unfollow_in(app, &own, url)?, out),
        Command::Profile { name, bio } => {
            done.emit(identity::profile_in(&own, name.clone(), bio.clone())?, out)
        }
        Command::Export { file, force } => done.emit(backup::export_held(app, file, *force)?, out),
        _ => anyhow::bail!("this command does not write your archive"),
    }
}

/// A keyed write done here: its answer is recorded before it is printed.
struct Done<'a> {
    keys: &'a idempotency::Keys,
    key: &'a str,
    request: &'a str,
}

impl Done<'_> {
    fn emit<R: output::Report>(&self, report: R, out: &mut Output<'_>) -> anyhow::Result<()> {
        let answer = serde_json::to_string(&remote::answer_of(&report)?)?;
        self.keys.finish(self.key, self.request, 200, &answer)?;
        Ok(out.emit(&report)?)
    }
}

/// Whether an error only means the reader of our output went away (`fritter log | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Whether an error means the data directory's disk is full, wherever in its chain the log or
/// the store found out. (A bare I/O error is not counted: it may be about another disk, such as
/// the one stdout goes to.)
pub fn is_storage_full(err: &anyhow::Error) -> bool {
    use fritter_common::archive::ArchiveError;
    use fritter_common::log::LogError;
    use fritter_common::store::StoreError;
    use std::io::ErrorKind::StorageFull;
    err.chain().any(|e| {
        e.downcast_ref::<LogError>()
            .is_some_and(LogError::is_storage_full)
            || matches!(e.downcast_ref::<ArchiveError>(), Some(ArchiveError::Log(log)) if log.is_storage_full())
            || match e.downcast_ref::<StoreError>() {
                Some(StoreError::Log(log)) => log.is_storage_full(),
                Some(StoreError::Io { cause, .. }) => cause.kind() == StorageFull,
                _ => false,
            }
    })
}

/// What to tell the user when the disk is full: the same words with and without `fritter serve`.
pub fn storage_full_message(data_dir: Option<&std::path::Path>) -> String {
    match data_dir {
        Some(dir) => format!(
            "no space left on device: free space on the disk of {} and try again",
            dir.display()
        ),
        None => {
            "no space left on device: free space on the disk of the data directory and try again"
                .to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::Value;

    use super::*;

    fn parse(dir: &str, args: &[&str]) -> Cli {
        Cli::try_parse_from([&["fritter", "--data-dir", dir, "--json"], args].concat()).unwrap()
    }

    /// A write done by the CLI itself (no server: it died, say) consults the key's record too.
    #[test]
    fn a_write_done_here_is_not_done_again_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        run(
            parse(d, &["init", "--name", "Ada"]),
            &mut Output::new(true, &mut o, &mut e),
        )
        .unwrap();
        let app = App::new(Config::load(Some(dir.path().into())).unwrap());
        let command = parse(d, &["post", "only once"]).command;
        let (path, body) = remote::request_for(&command).unwrap();
        let request = idempotency::request_digest(path, &serde_json::to_vec(&body).unwrap());
        let key = idempotency::new_key();
        let mut answers = Vec::new();
        let mut lengths = Vec::new();
        for _ in 0..2 {
            let (mut o, mut e) = (Vec::new(), Vec::new());
            write_here(
                &app,
                &command,
                &key,
                &request,
                &mut Output::new(true, &mut o, &mut e),
            )
            .unwrap();
            answers.push(serde_json::from_slice::<Value>(&o).unwrap());
            lengths.push(app.store.open_own().unwrap().log().len());
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[0]["status"]["text"], "only once");
        assert_eq!(lengths[0], lengths[1], "written once");
    }
}
