//! How commands name files: a bare path means your own archive, a `hyper://` URL (or a bare key)
//! any archive held in this data directory.

use anyhow::{anyhow, bail};
use fritter_common::crypto::PublicKey;
use fritter_common::model::{ArchiveUrl, FilePath};
use fritter_common::store::{OpenArchive, StoreError};

use crate::App;

/// A file or folder as typed on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A path in your own archive, such as `/profile.json`.
    Own(FilePath),
    /// A URL of any archive, such as `hyper://<key>/statuses/<id>.json`.
    Url(ArchiveUrl),
}

impl Address {
    /// Reads an address the way a person types it: `hyper://…` (strict after the key) or a bare
    /// 64-hex key for an archive; anything else is a path in your archive, where the leading `/`
    /// may be left out and a trailing `/` is ignored (`statuses/` is `/statuses`).
    pub fn parse(input: &str) -> anyhow::Result<Address> {
        let s = input.trim();
        let bare_key = s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if bare_key {
            return Ok(Address::Url(ArchiveUrl::parse_lenient(s)?));
        }
        if s.contains("://") {
            // `$(fritter url)/statuses/` gives `hyper://<key>//statuses/`: empty segments are
            // never valid, so dropping them cannot change which file is meant.
            let url = match (
                s.strip_prefix("hyper://").and_then(|rest| rest.get(..64)),
                s.get(72..),
            ) {
                (Some(key), Some(path)) if path.starts_with('/') => {
                    format!("hyper://{key}{}", tidy(path))
                }
                _ => s.to_owned(),
            };
            return Ok(Address::Url(ArchiveUrl::parse_lenient(&url)?));
        }
        Ok(Address::Own(tidy(s).parse()?))
    }

    /// The archive and the path the address names; the root `/` for a whole archive.
    pub fn locate(&self, app: &App) -> anyhow::Result<(PublicKey, FilePath)> {
        Ok(match self {
            Address::Own(path) => (app.own_key()?, path.clone()),
            Address::Url(url) => (
                url.key().into(),
                url.path().cloned().unwrap_or_else(FilePath::root),
            ),
        })
    }
}

/// A typed path made absolute, without doubled or trailing slashes (`statuses/` is `/statuses`).
fn tidy(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", segments.join("/"))
}

/// Opens an archive of this data directory for reading, without taking its lock (so reads work
/// while another process writes), or says how to get it here.
pub fn open_view(app: &App, key: PublicKey) -> anyhow::Result<OpenArchive> {
    match app.store.open_view(&key) {
        Ok(archive) => Ok(archive),
        Err(StoreError::UnknownArchive(_)) if app.store.identity()?.is_some_and(|kp| kp.public() == key) => Err(anyhow!(
            "your archive hyper://{key}/ has no entries yet in {}; write something first, e.g. `fritter profile --name NAME`",
            app.store.root().display()
        )),
        Err(StoreError::UnknownArchive(_)) => Err(not_held(app, key, "")),
        Err(err) => Err(err.into()),
    }
}

/// The error for an archive this data directory does not hold; `why` (if not empty) says what
/// could not be done without it.
pub fn not_held(app: &App, key: PublicKey, why: &str) -> anyhow::Error {
    anyhow!(
        "archive hyper://{key}/ is not held locally (in {}){why}; follow it so it gets replicated: `fritter follow hyper://{key}/`",
        app.store.root().display()
    )
}

/// Refuses the root of an archive where a file is needed.
pub fn require_file(path: &FilePath, input: &str, example: &str) -> anyhow::Result<()> {
    if path.is_root() {
        bail!("{input} names a whole archive, not a file; give a file such as {example}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, &str>) {
        match (Address::parse(input), expected) {
            (Ok(Address::Own(path)), Ok(want)) => assert_eq!(path.as_str(), want),
            (Ok(Address::Url(url)), Ok(want)) => assert_eq!(url.to_string(), want),
            (Err(err), Err(fragment)) => assert!(err.to_string().contains(fragment), "{err}"),
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn paths_and_urls() {
        let key = fritter_common::crypto::KeyPair::from_seed(&[1; 32])
            .public()
            .to_hex();
        check("/profile.json", Ok("/profile.json"));
        check("statuses/", Ok("/statuses"));
        check("/", Ok("/"));
        check(&key, Ok(&format!("hyper://{key}/")));
        check(&format!("hyper://{key}"), Ok(&format!("hyper://{key}/")));
        check(
            &format!("hyper://{key}/statuses/x.json"),
            Ok(&format!("hyper://{key}/statuses/x.json")),
        );
        check(
            &format!("hyper://{key}//statuses/"),
            Ok(&format!("hyper://{key}/statuses")),
        );
        check(&format!("hyper://{key}:80/"), Err("ports are not allowed"));
        check("dat://abc/", Err("must start with hyper://"));
        check("hyper://nothex/", Err("expected 64 hex characters"));
        check(&"0".repeat(63), Ok(&format!("/{}", "0".repeat(63))));
        check(
            "0100000000000000000000000000000000000000000000000000000000000000",
            Err("weak (small-order)"),
        );
        check("/a/../b", Err("`..` segments"));
    }
}
