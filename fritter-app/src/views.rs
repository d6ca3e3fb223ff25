//! What the app shows, as JSON-ready values: feed pages, statuses with the post they answer,
//! threads, notifications and profiles. Built from the [`Index`] (which statuses, in which order)
//! and the logs (their content, read back and verified per page). Shared by `fritter serve`'s API
//! and `fritter feed`, so both print the same thing.

use std::collections::{HashMap, HashSet};
use std::fmt;

use fritter_common::crypto::PublicKey;
use fritter_common::model::{ArchiveUrl, Entry, File, Like, Status, StatusId};
use serde::{Deserialize, Serialize};

use crate::index::{status_key, Cursor, Index, Indexed, Notification, Reason, StatusKey};
use crate::output::Report;

/// Most statuses of one feed or profile page.
pub const MAX_PAGE: usize = 100;

/// Most statuses shown in one thread.
pub const MAX_THREAD: usize = 1000;

/// Deepest reply shown in a thread.
pub const MAX_THREAD_DEPTH: usize = 64;

/// Who wrote something.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Deserialize)]
pub struct Author {
    pub url: String,
    pub key: String,
    /// The profile name, when the archive is held (and has a valid profile).
    pub name: Option<String>,
    /// The user's own archive.
    #[serde(rename = "self")]
    pub own: bool,
    /// An archive the user follows (held and indexed).
    pub followed: bool,
}

/// A status as shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub url: String,
    pub id: String,
    pub author: Author,
    /// The entry that wrote it (what a reply pins).
    pub seq: u64,
    pub hash: String,
    pub text: String,
    pub created_at: String,
    pub tags: Vec<String>,
    pub mentions: Vec<MentionShown>,
    /// The status answered, for replies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Parent>,
    /// The first status of the thread, for replies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Replies and likes from the archives indexed here.
    pub replies: usize,
    pub likes: u32,
    /// Whether the user likes it.
    pub liked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MentionShown {
    pub url: String,
    pub name: String,
}

/// The status a reply answers: shown when held, else only its URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parent {
    pub url: String,
    pub author: Author,
    /// The parent, when it is held here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<Box<Item>>,
    /// True when the parent is not held here (or was deleted).
    pub not_found: bool,
}

/// A page of the feed (or of one archive's statuses).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedPage {
    pub items: Vec<Item>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// One status of a thread, in reading order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadNode {
    pub url: String,
    pub depth: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The status, or none for a placeholder (not held here, nor known to the crawler).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<Item>,
    /// Known only through the crawler: written by someone the user does not follow.
    pub from_crawler: bool,
    /// The status the thread was opened on.
    pub focus: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Thread {
    pub root: String,
    pub items: Vec<ThreadNode>,
}

/// A notification as shown.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationShown {
    pub reason: Reason,
    pub from: Author,
    /// The reply or mention.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Item>,
    /// The user's status concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub time: String,
    pub unread: bool,
    /// Known only through the crawler.
    pub from_crawler: bool,
}

/// Reads statuses for display from an [`Index`].
pub struct Views<'a> {
    pub index: &'a Index,
}

impl<'a> std::fmt::Debug for Views<'a> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Views").finish_non_exhaustive()
    }
}

impl<'a> Views<'a> {
    pub fn new(index: &'a Index) -> Views<'a> {
        Views { index }
    }

    pub fn author(&self, key: PublicKey) -> Author {
        let own = key == self.index.own();
        let followed = !own && self.index.archive(&key).is_some();
        Author {
            url: format!("hyper://{}/", key.to_hex()),
            key: key.to_hex(),
            name: self.index.profile(&key).map(|p| p.name),
            own,
            followed,
        }
    }

    /// The feed: own and followed statuses older than `cursor`, newest first.
    pub fn feed(&self, cursor: Option<Cursor>, limit: usize) -> FeedPage {
        let limit = limit.clamp(1, MAX_PAGE);
        let found = self.index.page(cursor.unwrap_or_else(Cursor::now), limit);
        self.page_of(found, limit)
    }

    /// One archive's statuses, newest first.
    pub fn archive_statuses(
        &self,
        key: &PublicKey,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> FeedPage {
        let limit = limit.clamp(1, MAX_PAGE);
        let found = self
            .index
            .archive_page(key, cursor.unwrap_or_else(Cursor::now), limit);
        self.page_of(found, limit)
    }

    fn page_of(&self, found: Vec<Indexed>, limit: usize) -> FeedPage {
        let next = (found.len() == limit)
            .then(|| found.last())
            .flatten()
            .map(|last| {
                Cursor {
                    id: last.id,
                    key: *last.key.as_bytes(),
                }
                .encode()
            });
        let items = found
            .into_iter()
            .filter_map(|ix| self.item(ix, true))
            .collect();
        FeedPage { items, next }
    }

    /// Reads one indexed status back from its log; `None` if it cannot be read any more (the log
    /// forked since it was indexed). With `parent`, a reply carries the status it answers.
    pub fn item(&self, ix: Indexed, parent: bool) -> Option<Item> {
        let archive = self.index.archive(&ix.key)?;
        let (entry, decoded) = match archive.entry(ix.seq) {
            Ok(read) => read,
            Err(err) => {
                tracing::debug!(archive = %ix.key, seq = ix.seq, error = %err, "status unreadable");
                return None;
            }
        };
        let Entry::Put { .. } = decoded else {
            return None;
        };
        let Ok(Some(File::Status { id, status })) = decoded.validate() else {
            return None;
        };
        if id != ix.id {
            return None;
        }
        Some(self.item_of(ix.key, id, entry.seq, &entry.hash, &status, parent))
    }

    /// A status as shown, from its content.
    pub fn item_of(
        &self,
        key: PublicKey,
        id: StatusId,
        seq: u64,
        hash: &[u8; 32],
        status: &Status,
        parent: bool,
    ) -> Item {
        let url = ArchiveUrl::status(key.into(), id);
        let (replies, likes) = self.index.counts((key, id));
        let reply_to = match (&status.reply, parent) {
            (Some(reply), true) => Some(self.parent(&reply.parent.url)),
            _ => None,
        };
        Item {
            url: url.to_string(),
            id: id.to_string(),
            author: self.author(key),
            seq,
            hash: hex::encode(hash),
            text: status.text.clone(),
            created_at: status.created_at.to_string(),
            tags: status.tags.clone(),
            mentions: status
                .mentions
                .iter()
                .map(|m| MentionShown {
                    url: m.url.to_string(),
                    name: m.name.clone(),
                })
                .collect(),
            reply_to,
            root: status.reply.as_ref().map(|r| r.root.url.to_string()),
            replies,
            likes,
            liked: self.index.liked_by_own(&Like::slug(&url)),
        }
    }

    fn parent(&self, url: &ArchiveUrl) -> Parent {
        let key: PublicKey = url.key().into();
        let item = status_key(url)
            .and_then(|(k, id)| self.index.find(&k, id))
            .and_then(|ix| self.item(ix, false))
            .map(Box::new);
        Parent {
            url: url.to_string(),
            author: self.author(key),
            not_found: item.is_none(),
            item,
        }
    }

    /// The conversation around `focus` known locally: every status linked to its thread root.
    pub fn local_thread(
        &self,
        focus: StatusKey,
    ) -> (StatusKey, Vec<(StatusKey, Option<StatusKey>)>) {
        // The root as the focus names it; walking up covers replies whose root is not held.
        let root = self
            .index
            .thread_refs(focus)
            .map(|(_, root)| root)
            .unwrap_or(focus);
        let mut nodes: Vec<(StatusKey, Option<StatusKey>)> = Vec::new();
        let mut seen = HashSet::new();
        // Ancestors of the focus, up to the root or the first one not held.
        let mut cur = focus;
        while let Some((parent, _)) = self.index.thread_refs(cur) {
            if !seen.insert(cur) || nodes.len() >= MAX_THREAD {
                break;
            }
            nodes.push((cur, Some(parent)));
            cur = parent;
        }
        let top = cur;
        // Everything below the root and below the highest known ancestor.
        let mut queue = vec![root, top];
        while let Some(at) = queue.pop() {
            if nodes.len() >= MAX_THREAD {
                break;
            }
            if seen.insert(at) {
                nodes.push((at, self.index.thread_refs(at).map(|(p, _)| p)));
            }
            for kid in self.index.children(at) {
                if !seen.contains(&kid) {
                    queue.push(kid);
                }
            }
        }
        (root, nodes)
    }

    /// Lays out a thread: depth-first from `root`, replies oldest first; statuses whose parent is
    /// unknown follow under a placeholder. `known` maps each status URL to its parent URL and
    /// its item (none when not held), and whether the crawler supplied it.
    pub fn layout(
        root: &str,
        focus: &str,
        known: &HashMap<String, (Option<String>, Option<Item>, bool)>,
    ) -> Thread {
        let mut kids: HashMap<&str, Vec<&str>> = HashMap::new();
        for (url, (parent, _, _)) in known {
            if let Some(parent) = parent {
                kids.entry(parent.as_str()).or_default().push(url.as_str());
            }
        }
        for list in kids.values_mut() {
            // Status ids sort by time; the URL ends with the id.
            list.sort_by_key(|u| (u.rsplit('/').next().unwrap_or(""), *u));
        }
        let mut items = Vec::new();
        let mut visited = HashSet::new();
        let mut stack: Vec<(&str, usize)> = vec![(root, 0)];
        let mut starts: Vec<&str> = known
            .iter()
            .filter(|(url, (parent, _, _))| {
                url.as_str() != root
                    && parent
                        .as_deref()
                        .is_none_or(|p| !known.contains_key(p) && p != root)
            })
            .map(|(url, _)| url.as_str())
            .collect();
        starts.sort();
        loop {
            while let Some((url, depth)) = stack.pop() {
                if !visited.insert(url) || items.len() >= MAX_THREAD {
                    continue;
                }
                let entry = known.get(url);
                items.push(ThreadNode {
                    url: url.to_owned(),
                    depth,
                    parent: entry.and_then(|(p, _, _)| p.clone()),
                    item: entry.and_then(|(_, item, _)| item.clone()),
                    from_crawler: entry.is_some_and(|(_, _, c)| *c),
                    focus: url == focus,
                });
                if let Some(list) = kids.get(url) {
                    for kid in list.iter().rev() {
                        stack.push((kid, (depth + 1).min(MAX_THREAD_DEPTH)));
                    }
                }
            }
            // A branch whose parent is missing: show its parent as a placeholder under the root.
            let Some(start) = starts.pop() else { break };
            if visited.contains(start) {
                continue;
            }
            let parent = known.get(start).and_then(|(p, _, _)| p.clone());
            match parent {
                Some(p) if !visited.contains(p.as_str()) => {
                    items.push(ThreadNode {
                        url: p.clone(),
                        depth: 1,
                        parent: None,
                        item: None,
                        from_crawler: false,
                        focus: false,
                    });
                    stack.push((start, 2));
                }
                _ => stack.push((start, 1)),
            }
        }
        Thread {
            root: root.to_owned(),
            items,
        }
    }

    /// A notification as shown.
    pub fn notification(&self, n: &Notification, read_up_to_ms: i64) -> NotificationShown {
        let status = n
            .status
            .and_then(|id| self.index.find(&n.from, id))
            .and_then(|ix| self.item(ix, true));
        NotificationShown {
            reason: n.reason,
            from: self.author(n.from),
            status,
            subject: n
                .subject
                .map(|(k, id)| ArchiveUrl::status(k.into(), id).to_string()),
            time: fritter_common::model::Timestamp::from_unix_millis(n.time_ms)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            unread: n.time_ms > read_up_to_ms,
            from_crawler: false,
        }
    }
}

impl fmt::Display for FeedPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.items.is_empty() {
            return write!(
                f,
                "Your feed is empty: post with `fritter post TEXT`, follow with `fritter follow hyper://<key>/`"
            );
        }
        for (n, item) in self.items.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write_item(f, item)?;
        }
        if let Some(next) = &self.next {
            write!(f, "\n\nMore: fritter feed --cursor {next}")?;
        }
        Ok(())
    }
}

fn who(author: &Author) -> String {
    match (&author.name, author.own) {
        (Some(name), true) => format!("{name} (you)"),
        (Some(name), false) => name.clone(),
        (None, _) => format!("{}…", &author.key[..8.min(author.key.len())]),
    }
}

/// Text as a terminal shows it: any control character (none pass validation, but this is what a
/// terminal would obey) replaced, so someone else's status can never drive the terminal.
fn plain(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

fn write_item(f: &mut fmt::Formatter<'_>, item: &Item) -> fmt::Result {
    writeln!(f, "{}  {}", who(&item.author), item.created_at)?;
    writeln!(f, "  {}", item.url)?;
    if let Some(parent) = &item.reply_to {
        match &parent.item {
            Some(p) => {
                let mut text: String = p.text.chars().take(60).collect();
                if p.text.chars().count() > 60 {
                    text.push('…');
                }
                writeln!(
                    f,
                    "  in reply to {}: {}",
                    who(&p.author),
                    text.escape_debug()
                )?;
            }
            None => writeln!(f, "  in reply to {} (not held here)", parent.url)?,
        }
    }
    for line in item.text.lines() {
        // Control characters never reach a status (validation refuses them); escape anyway so a
        // terminal is never driven by what someone else wrote.
        writeln!(f, "  | {}", plain(line))?;
    }
    write!(
        f,
        "  {} {}, {} {}{}",
        item.replies,
        if item.replies == 1 {
            "reply"
        } else {
            "replies"
        },
        item.likes,
        if item.likes == 1 { "like" } else { "likes" },
        if item.liked { " (you like it)" } else { "" }
    )
}

impl Report for FeedPage {}
