//! Writing to your archive: statuses, replies, likes and deletions.

use std::fmt;

use anyhow::{anyhow, bail};
use fritter_common::archive::{Archive, ArchiveError, EntryRef};
use fritter_common::crypto::PublicKey;
use fritter_common::model::{validate_file, ArchiveUrl, File, FilePath, Like, StatusId, Timestamp};
use fritter_common::store::StoreError;
use serde::Serialize;
use serde_json::Value;

use crate::address::{not_held, require_file, Address};
use crate::compose::{self, Draft, Parent};
use crate::follows::{known_names, KnownNames};
use crate::identity::read_profile;
use crate::output::{as_string, hex, Report};
use crate::App;

/// `fritter post` and `fritter reply`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Posted {
    #[serde(serialize_with = "as_string")]
    pub url: ArchiveUrl,
    pub path: FilePath,
    #[serde(flatten)]
    pub entry: EntryRef,
    /// The status as written.
    pub status: Value,
    /// `@names` that resolved to nobody you follow.
    pub unresolved: Vec<String>,
    /// How many followed archives are not held here, so their names could not be matched.
    #[serde(skip)]
    pub not_held: usize,
}

/// `fritter like`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Liked {
    #[serde(serialize_with = "as_string")]
    pub subject: ArchiveUrl,
    pub path: FilePath,
    /// The entry that wrote the like (this time, or the first time).
    #[serde(flatten)]
    pub entry: EntryRef,
    pub already_liked: bool,
}

/// `fritter unlike`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unliked {
    #[serde(serialize_with = "as_string")]
    pub subject: ArchiveUrl,
    pub path: FilePath,
    /// Whether there was a like to take back.
    pub was_liked: bool,
    /// The entry that deleted the like, if there was one.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryRef>,
}

/// `fritter delete`.
#[derive(Debug, Serialize)]
pub struct Deleted {
    #[serde(serialize_with = "as_string")]
    pub url: ArchiveUrl,
    pub path: FilePath,
    /// The entry that recorded the deletion.
    #[serde(flatten)]
    pub entry: EntryRef,
}

/// Publishes a status, its `@names` resolved against the followed archives held here.
pub fn post(app: &App, text: &str) -> anyhow::Result<Posted> {
    // A text too long is refused here, before the lock: with `fritter serve` holding it, the
    // request would otherwise be sent to it only to be refused there.
    compose::check_text(text)?;
    let own = app.store.open_own()?;
    post_with(app, &own, text)
}

/// [`post`] into `own`, held open by the caller; `@mentions` resolve against what `app` holds.
pub fn post_with(app: &App, own: &Archive, text: &str) -> anyhow::Result<Posted> {
    let known = known_names(app, own)?;
    post_in(own, &known, text)
}

/// Publishes a status into `own` (held open by the caller, e.g. `fritter serve`).
pub fn post_in(own: &Archive, known: &KnownNames, text: &str) -> anyhow::Result<Posted> {
    let draft = compose::status(text, Timestamp::now(), &known.names)?;
    write_status(own, draft, known.not_held.len())
}

/// Publishes a reply to the status at `target`, pinned to the entry that wrote it.
pub fn reply(app: &App, target: &str, text: &str) -> anyhow::Result<Posted> {
    compose::check_text(text)?;
    let own = app.store.open_own()?;
    reply_with(app, &own, target, text)
}

/// [`reply`] from `own`, held open by the caller.
pub fn reply_with(app: &App, own: &Archive, target: &str, text: &str) -> anyhow::Result<Posted> {
    let parent_url = status_url(app, target)?;
    let key: PublicKey = parent_url.key().into();
    let parent = if key == own.key() {
        read_parent(own, parent_url)?
    } else {
        let archive = match app.store.open_view(&key) {
            Ok(archive) => archive,
            Err(StoreError::UnknownArchive(_)) => {
                return Err(not_held(
                    app,
                    key,
                    ", so the status cannot be read to pin your reply to it",
                ))
            }
            Err(err) => return Err(err.into()),
        };
        read_parent(&archive, parent_url)?
    };
    let known = known_names(app, own)?;
    reply_in(own, &known, &parent, text)
}

/// Publishes into `own` a reply to `parent`, already read by the caller.
pub fn reply_in(
    own: &Archive,
    known: &KnownNames,
    parent: &Parent,
    text: &str,
) -> anyhow::Result<Posted> {
    let draft = compose::reply(
        text,
        Timestamp::now(),
        &known.names,
        parent,
        own.key().into(),
    )?;
    write_status(own, draft, known.not_held.len())
}

fn write_status(own: &Archive, draft: Draft, not_held: usize) -> anyhow::Result<Posted> {
    let id = StatusId::now();
    let file = File::Status {
        id,
        status: draft.status,
    };
    let entry = own.put_file(&file)?;
    Ok(Posted {
        url: ArchiveUrl::status(own.key().into(), id),
        path: id.path(),
        entry,
        status: compose::as_written(&file)?,
        unresolved: draft.unresolved,
        not_held,
    })
}

/// Reads the status answered, and its author's name if the archive has a profile.
pub fn read_parent(archive: &Archive, url: ArchiveUrl) -> anyhow::Result<Parent> {
    let path = url.path().cloned().unwrap_or_else(FilePath::root);
    let version = archive.get(&path)?.ok_or_else(|| {
        anyhow!(
            "{url} does not exist (it may have been deleted); see the statuses there with `fritter ls hyper://{}/statuses`",
            url.key()
        )
    })?;
    let File::Status { status, .. } = validate_file(&version.path, &version.value)? else {
        bail!("{url} is not a status");
    };
    // The name only makes the mention friendlier; a broken profile does not stop the reply.
    let author_name = read_profile(archive)
        .ok()
        .flatten()
        .map(|(profile, _)| profile.name);
    Ok(Parent {
        url,
        entry: version.entry,
        status,
        author_name,
    })
}

/// The status a command names: a URL, or a path in your archive.
pub fn status_url(app: &App, input: &str) -> anyhow::Result<ArchiveUrl> {
    let (key, path) = Address::parse(input)?.locate(app)?;
    let url = ArchiveUrl::new(key.into(), path);
    if url.status_id().is_none() {
        bail!("{input} is not a status; give hyper://<key>/statuses/<id>.json (see `fritter ls hyper://<key>/statuses`)");
    }
    Ok(url)
}

/// Likes a status, once.
pub fn like(app: &App, target: &str) -> anyhow::Result<Liked> {
    let own = app.store.open_own()?;
    like_in(&own, status_url(app, target)?)
}

/// Likes `subject` from `own`, once.
pub fn like_in(own: &Archive, subject: ArchiveUrl) -> anyhow::Result<Liked> {
    let path = Like::path_for(&subject);
    if let Some(existing) = own.get(&path)? {
        return Ok(Liked {
            subject,
            path,
            entry: existing.entry,
            already_liked: true,
        });
    }
    let entry = own.put_file(&File::Like(compose::like(
        subject.clone(),
        Timestamp::now(),
    )))?;
    Ok(Liked {
        subject,
        path,
        entry,
        already_liked: false,
    })
}

/// Takes back a like.
pub fn unlike(app: &App, target: &str) -> anyhow::Result<Unliked> {
    let own = app.store.open_own()?;
    unlike_in(&own, status_url(app, target)?)
}

/// Takes back `own`'s like of `subject`.
pub fn unlike_in(own: &Archive, subject: ArchiveUrl) -> anyhow::Result<Unliked> {
    let path = Like::path_for(&subject);
    let entry = match own.get(&path)? {
        Some(_) => Some(own.delete(&path)?),
        None => None,
    };
    Ok(Unliked {
        subject,
        path,
        was_liked: entry.is_some(),
        entry,
    })
}

/// Deletes a file of your archive.
pub fn delete(app: &App, target: &str) -> anyhow::Result<Deleted> {
    let own = app.store.open_own()?;
    delete_in(&own, target)
}

/// Deletes a file of `own`, named by a path or a URL of `own`.
pub fn delete_in(own: &Archive, target: &str) -> anyhow::Result<Deleted> {
    let path = match Address::parse(target)? {
        Address::Own(path) => path,
        Address::Url(url) if PublicKey::from(url.key()) == own.key() => {
            url.path().cloned().unwrap_or_else(FilePath::root)
        }
        Address::Url(url) => {
            bail!(
                "{url} is not in your archive ({}); you can only delete your own files",
                own.url()
            )
        }
    };
    require_file(&path, target, "/statuses/<id>.json")?;
    let entry = own.delete(&path).map_err(|err| match err {
        ArchiveError::NotFound { .. } => anyhow!("{err}; list your files with `fritter ls`"),
        err => err.into(),
    })?;
    Ok(Deleted {
        url: ArchiveUrl::new(own.key().into(), path.clone()),
        path,
        entry,
    })
}

impl fmt::Display for Posted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let is_reply = self.status.get("threadParent").is_some();
        writeln!(
            f,
            "{} {}",
            if is_reply { "Replied" } else { "Posted" },
            self.url
        )?;
        write!(
            f,
            "  entry {}, hash {}",
            self.entry.seq,
            hex(&self.entry.hash)
        )?;
        if let Some(parent) = self
            .status
            .pointer("/threadParent/url")
            .and_then(Value::as_str)
        {
            write!(f, "\n  in reply to {parent}")?;
        }
        let list = |key: &str| {
            self.status
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let tags = list("tags");
        if !tags.is_empty() {
            let tags: Vec<String> = tags
                .iter()
                .filter_map(Value::as_str)
                .map(|t| format!("#{t}"))
                .collect();
            write!(f, "\n  tags: {}", tags.join(" "))?;
        }
        let mentions = list("mentions");
        if !mentions.is_empty() {
            let mentions: Vec<String> = mentions
                .iter()
                .map(|m| {
                    let field = |k| m.get(k).and_then(Value::as_str).unwrap_or_default();
                    format!("@{} ({})", field("name"), field("url"))
                })
                .collect();
            write!(f, "\n  mentions: {}", mentions.join(", "))?;
        }
        Ok(())
    }
}

impl Report for Posted {
    fn warnings(&self) -> Vec<String> {
        let hint = match self.not_held {
            0 => String::new(),
            1 => {
                "; 1 archive you follow is not held locally yet, so its name is unknown".to_owned()
            }
            n => format!(
                "; {n} archives you follow are not held locally yet, so their names are unknown"
            ),
        };
        self.unresolved
            .iter()
            .map(|name| {
                format!("@{name} matches none of the archives you follow (or more than one), so it stays plain text{hint}")
            })
            .collect()
    }
}

impl fmt::Display for Liked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.already_liked {
            write!(
                f,
                "You already liked {}; nothing changed (`fritter unlike URL` takes it back)",
                self.subject
            )
        } else {
            write!(
                f,
                "Liked {}\n  {}, entry {}, hash {}",
                self.subject,
                self.path,
                self.entry.seq,
                hex(&self.entry.hash)
            )
        }
    }
}

impl Report for Liked {}

impl fmt::Display for Unliked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entry {
            Some(entry) => write!(
                f,
                "Unliked {} (entry {}, hash {})",
                self.subject,
                entry.seq,
                hex(&entry.hash)
            ),
            None => write!(f, "You had not liked {}; nothing changed", self.subject),
        }
    }
}

impl Report for Unliked {}

impl fmt::Display for Deleted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Deleted {} (entry {}, hash {})",
            self.path,
            self.entry.seq,
            hex(&self.entry.hash)
        )?;
        write!(
            f,
            "It is gone from your archive's files; `fritter log` still shows that it existed."
        )
    }
}

impl Report for Deleted {}
