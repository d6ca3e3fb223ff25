//! Reading archives: one file, a folder's files, and the history of every write, for your own
//! archive or any other held here. Reads take no lock, so they work while another process writes.

use std::fmt;

use anyhow::anyhow;
use fritter_common::archive::{EntryRef, HistoryItem};
use fritter_common::model::{ArchiveUrl, FilePath};
use serde::Serialize;
use serde_json::Value;

use crate::address::{open_view, require_file, Address};
use crate::output::{as_string, hex, Report};
use crate::App;

/// `fritter show`.
#[derive(Debug, Serialize)]
pub struct Shown {
    #[serde(serialize_with = "as_string")]
    pub url: ArchiveUrl,
    pub path: FilePath,
    /// The entry that wrote this version.
    #[serde(flatten)]
    pub entry: EntryRef,
    pub value: Value,
}

/// `fritter ls`.
#[derive(Debug, Serialize)]
pub struct Listing {
    #[serde(serialize_with = "as_string")]
    pub archive: ArchiveUrl,
    pub dir: FilePath,
    pub files: Vec<Listed>,
}

/// One file of a listing.
#[derive(Debug, Serialize)]
pub struct Listed {
    pub path: FilePath,
    #[serde(serialize_with = "as_string")]
    pub url: ArchiveUrl,
    #[serde(flatten)]
    pub entry: EntryRef,
}

/// `fritter log`.
#[derive(Debug, Serialize)]
pub struct Logged {
    #[serde(serialize_with = "as_string")]
    pub archive: ArchiveUrl,
    /// The path the history is limited to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<FilePath>,
    /// Entries in the log.
    pub length: u64,
    pub entries: Vec<HistoryItem>,
}

/// The current version of one file.
pub fn show(app: &App, input: &str) -> anyhow::Result<Shown> {
    let (key, path) = Address::parse(input)?.locate(app)?;
    require_file(&path, input, "/profile.json")?;
    let archive = open_view(app, key)?;
    let version = archive.get(&path)?.ok_or_else(|| {
        anyhow!(
            "{path} does not exist in archive {}; see what is there with `fritter ls {}`",
            archive.url(),
            archive.url()
        )
    })?;
    Ok(Shown {
        url: ArchiveUrl::new(key.into(), path),
        path: version.path,
        entry: version.entry,
        value: version.value,
    })
}

/// The files under a folder (or the one file a path names).
pub fn ls(app: &App, input: &str) -> anyhow::Result<Listing> {
    let (key, dir) = Address::parse(input)?.locate(app)?;
    let archive = open_view(app, key)?;
    let files = archive
        .list(&dir)?
        .into_iter()
        .map(|(path, entry)| Listed {
            url: ArchiveUrl::new(key.into(), path.clone()),
            path,
            entry,
        })
        .collect();
    Ok(Listing {
        archive: archive.url(),
        dir,
        files,
    })
}

/// Every entry of an archive's log, or those touching one path.
pub fn log(app: &App, input: Option<&str>) -> anyhow::Result<Logged> {
    let (key, path) = Address::parse(input.unwrap_or("/"))?.locate(app)?;
    let archive = open_view(app, key)?;
    let path = (!path.is_root()).then_some(path);
    let entries = archive.history(path.as_ref())?;
    Ok(Logged {
        archive: archive.url(),
        path,
        length: archive.info().length,
        entries,
    })
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string_pretty(&self.value).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Report for Shown {}

impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.files.is_empty() {
            return write!(f, "No files under {} in {}", self.dir, self.archive);
        }
        for file in &self.files {
            writeln!(f, "{:<6} {}", file.entry.seq, file.path)?;
        }
        Ok(())
    }
}

impl Report for Listing {}

impl fmt::Display for Logged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            let what = self
                .path
                .as_ref()
                .map(|p| format!(" touching {p}"))
                .unwrap_or_default();
            return write!(f, "No entries{what} in {}", self.archive);
        }
        for item in &self.entries {
            writeln!(
                f,
                "{:<6} {:<7} {}  {}",
                item.entry.seq,
                item.op,
                hex(&item.entry.hash),
                item.path
            )?;
        }
        Ok(())
    }
}

impl Report for Logged {}
