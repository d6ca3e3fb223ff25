//! Moving an identity: `fritter export` writes the secret key and archive to one file,
//! `fritter import` restores them, verified, into an empty data directory.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::bail;
use fritter_common::backup::{self, BackupError};
use fritter_common::model::ArchiveUrl;
use fritter_common::store::StoreError;
use serde::Serialize;

use crate::output::{as_string, Report};
use crate::App;

/// `fritter export`.
#[derive(Debug, Serialize)]
pub struct Exported {
    pub file: PathBuf,
    #[serde(serialize_with = "as_string")]
    pub archive: ArchiveUrl,
    pub entries: u64,
    pub bytes: u64,
}

/// `fritter import`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Imported {
    pub file: PathBuf,
    #[serde(serialize_with = "as_string")]
    pub archive: ArchiveUrl,
    pub data_dir: PathBuf,
    pub entries: u64,
    pub bytes: u64,
}

/// Writes your identity and archive to `file`.
pub fn export(app: &App, file: &Path, force: bool) -> anyhow::Result<Exported> {
    // Hold the archive's lock so its files cannot change while they are copied.
    let _own = app.store.open_own()?;
    export_held(app, file, force)
}

/// [`export`] by the process that holds the archive's lock (and lets no write happen meanwhile).
pub fn export_held(app: &App, file: &Path, force: bool) -> anyhow::Result<Exported> {
    if file.exists() && !force {
        bail!(
            "{} exists; pass --force to replace it, or choose another file",
            file.display()
        );
    }
    let summary = backup::export(&app.store, file)?;
    Ok(Exported {
        file: file.to_owned(),
        archive: ArchiveUrl::root(summary.archive.into()),
        entries: summary.entries,
        bytes: summary.bytes,
    })
}

/// Restores an identity and archive from `file`.
pub fn import(app: &App, file: &Path) -> anyhow::Result<Imported> {
    let summary = match backup::import(&app.store, file) {
        Ok(summary) => summary,
        Err(err @ BackupError::Store(StoreError::IdentityExists(..))) => {
            bail!("{err}; import into an empty data directory (--data-dir DIR)")
        }
        Err(err) => return Err(err.into()),
    };
    Ok(Imported {
        file: file.to_owned(),
        archive: ArchiveUrl::root(summary.archive.into()),
        data_dir: app.store.root().to_owned(),
        entries: summary.entries,
        bytes: summary.bytes,
    })
}

impl fmt::Display for Exported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Exported {} ({} entries, {} bytes) to {}",
            self.archive,
            self.entries,
            self.bytes,
            self.file.display()
        )?;
        write!(
            f,
            "It holds your secret key: keep it private. Restore it with `fritter import {}` into an empty data directory.",
            self.file.display()
        )
    }
}

impl Report for Exported {}

impl fmt::Display for Imported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Imported {} ({} entries, {} bytes) into {}",
            self.archive,
            self.entries,
            self.bytes,
            self.data_dir.display()
        )
    }
}

impl Report for Imported {}
