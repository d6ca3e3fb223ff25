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
//! `fritter feed`, [`feed`]); [`remote`] sends commands through a running `fritter serve`.
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
pub mod identity;
pub mod index;
pub mod output;
pub mod publish;
pub mod remote;
pub mod serve;
pub mod sync;
pub mod views;

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
    // While `fritter serve` holds the archive, writes go through it.
    let through_serve = remote::request_for(&cli.command);
    match run_here(&app, cli.command, out) {
        Err(err) if is_storage_full(&err) => {
            Err(err.context(storage_full_message(Some(app.store.root()))))
        }
        Err(err) if remote::is_locked(&err) => match (through_serve, remote::Remote::find(&app)) {
            (Some((path, body)), Some(serve)) => {
                tracing::debug!(
                    url = serve.url(),
                    path,
                    "the archive is held by `fritter serve`; asking it"
                );
                out.emit(&serve.post(path, &body)?)?;
                Ok(())
            }
            _ => Err(err),
        },
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
