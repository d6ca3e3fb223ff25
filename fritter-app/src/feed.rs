//! `fritter feed`: the same feed the web app shows. Through `fritter serve` when it runs (its
//! index is in memory already), else built here from the archives held in the data directory.

use std::sync::Arc;

use anyhow::Context;
use fritter_common::archive::Archive;
use fritter_common::crypto::PublicKey;
use fritter_common::store::StoreError;

use crate::address::open_view;
use crate::follows::read_follows;
use crate::index::{Cursor, Index};
use crate::remote::Remote;
use crate::views::{FeedPage, Views};
use crate::App;

/// A feed page, newest first.
pub fn feed(app: &App, cursor: Option<&str>, limit: usize) -> anyhow::Result<FeedPage> {
    let parsed = cursor
        .map(|c| {
            Cursor::parse(c).with_context(|| {
                format!("{c} is not a feed cursor; pass the one printed after `More:`")
            })
        })
        .transpose()?;
    if let Some(remote) = Remote::find(app) {
        let mut query = format!("/api/feed?limit={limit}");
        if let Some(c) = parsed {
            query.push_str(&format!("&cursor={}", c.encode()));
        }
        match remote.get(&query) {
            Ok(value) => {
                return serde_json::from_value(value)
                    .context("`fritter serve` answered with an unexpected feed");
            }
            Err(err) => {
                tracing::info!(error = %format!("{err:#}"), "building the feed here instead");
            }
        }
    }
    let index = local_index(app)?;
    Ok(Views::new(&index).feed(parsed, limit))
}

/// An index of the own archive and every followed archive held here, read-only.
pub fn local_index(app: &App) -> anyhow::Result<Index> {
    let own = open_view(app, app.own_key()?)?;
    let own = Arc::new(Archive::new(own.log().clone()));
    let index = Index::new(own.clone());
    let (follows, _) = read_follows(&own)?;
    let mut archives = Vec::new();
    for url in follows.urls {
        let key: PublicKey = url.key().into();
        match app.store.open_view(&key) {
            Ok(open) => archives.push(Arc::new(Archive::new(open.log().clone()))),
            Err(StoreError::UnknownArchive(_)) => {}
            Err(err) => {
                tracing::warn!(archive = %key, error = %err, "cannot open a followed archive")
            }
        }
    }
    index.set_archives(archives);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    index.refresh_all(threads);
    Ok(index)
}
