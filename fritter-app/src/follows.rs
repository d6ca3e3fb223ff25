//! Who you follow: `/follows.json` of your archive, and the names of the followed archives held
//! here, which `@mentions` resolve against.

use std::fmt;

use anyhow::bail;
use fritter_common::archive::{Archive, EntryRef};
use fritter_common::crypto::PublicKey;
use fritter_common::model::{validate_file, ArchiveUrl, File, Follows};
use fritter_common::store::StoreError;
use serde::Serialize;

use crate::compose::Known;
use crate::identity::read_profile;
use crate::output::{as_string, Report};
use crate::App;

/// `fritter follow` and `fritter unfollow`.
#[derive(Debug, Serialize)]
pub struct Followed {
    #[serde(serialize_with = "as_string")]
    pub url: ArchiveUrl,
    /// The archive's profile name, when it is held here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Follow (true) or unfollow (false); the JSON tells them apart by the command run.
    #[serde(skip)]
    pub follow: bool,
    /// Whether `/follows.json` was rewritten.
    pub changed: bool,
    /// Whether this data directory holds the archive.
    pub held: bool,
    /// How many archives you follow now.
    pub following: usize,
    /// The entry that rewrote `/follows.json`, when it changed.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryRef>,
}

/// The names `@mentions` resolve against.
#[derive(Debug, Default)]
pub struct KnownNames {
    /// The profile name of each followed archive held here.
    pub names: Vec<Known>,
    /// Followed archives not held here (or unreadable), whose names are unknown.
    pub not_held: Vec<ArchiveUrl>,
}

/// Your follow list, and the entry that wrote it (none before the first follow).
pub fn read_follows(archive: &Archive) -> anyhow::Result<(Follows, Option<EntryRef>)> {
    let Some(version) = archive.get(&Follows::path())? else {
        return Ok((Follows::default(), None));
    };
    match validate_file(&version.path, &version.value)? {
        File::Follows(follows) => Ok((follows, Some(version.entry))),
        other => bail!("{} holds {other:?}, not a follow list", version.path),
    }
}

/// The profile names of the archives `own` follows that this data directory holds.
pub fn known_names(app: &App, own: &Archive) -> anyhow::Result<KnownNames> {
    let (follows, _) = read_follows(own)?;
    let mut known = KnownNames::default();
    for url in follows.urls {
        let key: PublicKey = url.key().into();
        if key == own.key() {
            continue;
        }
        match profile_name(app, key) {
            Ok(Some(name)) => known.names.push((name, url)),
            Ok(None) => known.not_held.push(url),
            Err(err) => {
                tracing::warn!(archive = %key, error = %format!("{err:#}"), "cannot read a followed archive's profile");
                known.not_held.push(url);
            }
        }
    }
    Ok(known)
}

/// The profile name of an archive held here; `None` when it is not held or has no profile.
pub fn profile_name(app: &App, key: PublicKey) -> anyhow::Result<Option<String>> {
    let archive = match app.store.open_view(&key) {
        Ok(archive) => archive,
        Err(StoreError::UnknownArchive(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    Ok(read_profile(&archive)?.map(|(profile, _)| profile.name))
}

/// Adds an archive to `/follows.json`.
pub fn follow(app: &App, input: &str) -> anyhow::Result<Followed> {
    let own = app.store.open_own()?;
    follow_in(app, &own, input)
}

/// Adds an archive to `own`'s `/follows.json` (`own` held open by the caller).
pub fn follow_in(app: &App, own: &Archive, input: &str) -> anyhow::Result<Followed> {
    let url = archive_url(input)?;
    if PublicKey::from(url.key()) == own.key() {
        bail!("{url} is your own archive; follow someone else's");
    }
    let (mut follows, _) = read_follows(own)?;
    let changed = !follows.urls.contains(&url);
    let entry = if changed {
        follows.urls.push(url.clone());
        Some(own.put_file(&File::Follows(follows.clone()))?)
    } else {
        None
    };
    report(app, url, true, changed, follows.urls.len(), entry)
}

/// Removes an archive from `/follows.json`.
pub fn unfollow(app: &App, input: &str) -> anyhow::Result<Followed> {
    let own = app.store.open_own()?;
    unfollow_in(app, &own, input)
}

/// Removes an archive from `own`'s `/follows.json`.
pub fn unfollow_in(app: &App, own: &Archive, input: &str) -> anyhow::Result<Followed> {
    let url = archive_url(input)?;
    let (mut follows, _) = read_follows(own)?;
    let before = follows.urls.len();
    follows.urls.retain(|u| *u != url);
    let changed = follows.urls.len() != before;
    let entry = if changed {
        Some(own.put_file(&File::Follows(follows.clone()))?)
    } else {
        None
    };
    report(app, url, false, changed, follows.urls.len(), entry)
}

fn report(
    app: &App,
    url: ArchiveUrl,
    follow: bool,
    changed: bool,
    following: usize,
    entry: Option<EntryRef>,
) -> anyhow::Result<Followed> {
    let key: PublicKey = url.key().into();
    // The name is a courtesy: an unreadable profile does not fail the follow.
    let (held, name) = match app.store.open_view(&key) {
        Ok(archive) => (
            true,
            read_profile(&archive)
                .ok()
                .flatten()
                .map(|(profile, _)| profile.name),
        ),
        Err(_) => (false, None),
    };
    Ok(Followed {
        url,
        name,
        follow,
        changed,
        held,
        following,
        entry,
    })
}

/// An archive's root URL from `hyper://<key>/` or a bare key; a file URL is refused rather than
/// guessed at.
pub fn archive_url(input: &str) -> anyhow::Result<ArchiveUrl> {
    let url = ArchiveUrl::parse_lenient(input)?;
    if !url.is_root() {
        bail!(
            "{url} names a file; follow the archive itself: hyper://{}/",
            url.key()
        );
    }
    Ok(url)
}

impl fmt::Display for Followed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match &self.name {
            Some(name) => format!("{name} ({})", self.url),
            None => self.url.to_string(),
        };
        let count = match self.following {
            1 => "1 archive".to_owned(),
            n => format!("{n} archives"),
        };
        match (self.follow, self.changed) {
            (true, true) => write!(f, "Following {who}; you follow {count}")?,
            (true, false) => write!(f, "You already follow {who}; nothing changed")?,
            (false, true) => write!(f, "Unfollowed {who}; you follow {count}")?,
            (false, false) => write!(f, "You were not following {who}; nothing changed")?,
        }
        if self.follow && !self.held {
            write!(
                f,
                "\nIt is not held locally yet: its statuses and name appear once it is replicated."
            )?;
        }
        Ok(())
    }
}

impl Report for Followed {}
