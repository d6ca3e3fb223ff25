//! Folding entries into the index: what each entry means to it ([`Op`], decoded and validated
//! once), and applying a chunk of them to the shared maps (threads, like counts,
//! notifications), or removing everything an archive contributed.

use std::collections::{HashMap, HashSet};

use fritter_common::archive::Skipped;
use fritter_common::crypto::PublicKey;
use fritter_common::model::{Entry, File, Like, StatusId};

use super::{
    status_key, ArchiveState, Changes, Inner, Notification, ProfileInfo, Reason, StatusKey,
    MAX_NOTIFICATIONS,
};

/// Most skip reasons remembered per archive (the count keeps going).
const MAX_SKIPPED_KEPT: usize = 20;

/// What a folded entry means to the index (only what it needs: no texts).
pub(super) enum Op {
    Status {
        id: StatusId,
        seq: u64,
        thread: Option<(StatusKey, StatusKey)>,
        mentions: Vec<PublicKey>,
        time_ms: i64,
    },
    DelStatus(StatusId),
    Like {
        slug: String,
        subject: StatusKey,
        time_ms: i64,
    },
    DelLike(String),
    Profile(ProfileInfo),
    DelProfile,
    Follows(Vec<PublicKey>),
    DelFollows,
    Other,
}

impl Inner {
    /// Removes everything `key` contributed to the shared maps.
    pub(super) fn forget(&mut self, key: &PublicKey) {
        let Some(state) = self.archives.get_mut(key) else {
            return;
        };
        for (id, (parent, _)) in state.replies.drain() {
            unlink(&mut self.children, parent, (*key, id));
        }
        for (_, subject) in state.likes.drain() {
            uncount(&mut self.like_counts, subject);
        }
        self.notifications.retain(|n| n.from != *key);
    }

    pub(super) fn apply(
        &mut self,
        key: &PublicKey,
        own: PublicKey,
        ops: Vec<Op>,
        skipped: Vec<Skipped>,
        folded: u64,
        changes: &mut Changes,
    ) {
        let Inner {
            archives,
            children,
            like_counts,
            notifications,
        } = self;
        let Some(state) = archives.get_mut(key) else {
            return;
        };
        let now_ms = fritter_common::model::Timestamp::now().unix_millis();
        // Status ids written (Some(seq)) or deleted (None) by this chunk, last op wins.
        let mut written: HashMap<StatusId, Option<u64>> = HashMap::new();
        let mut order: Vec<StatusId> = Vec::new();
        for op in ops {
            match op {
                Op::Status {
                    id,
                    seq,
                    thread,
                    mentions,
                    time_ms,
                } => {
                    drop_status_links(state, children, notifications, key, id);
                    if written.insert(id, Some(seq)).is_none() {
                        order.push(id);
                    }
                    changes.statuses.push((*key, id));
                    if let Some((parent, root)) = thread {
                        children.entry(parent).or_default().push((*key, id));
                        state.replies.insert(id, (parent, root));
                    }
                    if *key != own {
                        let time_ms = time_ms.min(now_ms);
                        let reply_to_own = thread.is_some_and(|(parent, _)| parent.0 == own);
                        let reason = if reply_to_own {
                            Some(Reason::Reply)
                        } else if mentions.contains(&own) {
                            Some(Reason::Mention)
                        } else {
                            None
                        };
                        if let Some(reason) = reason {
                            notify(
                                notifications,
                                Notification {
                                    reason,
                                    from: *key,
                                    status: Some(id),
                                    like: None,
                                    subject: thread.map(|(parent, _)| parent),
                                    time_ms,
                                },
                            );
                            changes.notifications += 1;
                        }
                    }
                }
                Op::DelStatus(id) => {
                    drop_status_links(state, children, notifications, key, id);
                    if written.insert(id, None).is_none() {
                        order.push(id);
                    }
                    changes.deleted.push((*key, id));
                }
                Op::Like {
                    slug,
                    subject,
                    time_ms,
                } => {
                    drop_like(state, like_counts, notifications, key, &slug);
                    *like_counts.entry(subject).or_default() += 1;
                    if *key != own && subject.0 == own {
                        notify(
                            notifications,
                            Notification {
                                reason: Reason::Like,
                                from: *key,
                                status: None,
                                like: Some(slug.clone()),
                                subject: Some(subject),
                                time_ms: time_ms.min(now_ms),
                            },
                        );
                        changes.notifications += 1;
                    }
                    state.likes.insert(slug, subject);
                }
                Op::DelLike(slug) => drop_like(state, like_counts, notifications, key, &slug),
                Op::Profile(p) => state.profile = Some(p),
                Op::DelProfile => state.profile = None,
                Op::Follows(f) => state.follows = f,
                Op::DelFollows => state.follows.clear(),
                Op::Other => {}
            }
        }
        // Apply the chunk's status writes to the sorted vector: rewrites in place, deletions in
        // one pass, new ids appended (sorted again only if they came out of order).
        let mut removed = HashSet::new();
        let mut added = Vec::new();
        for id in order {
            let Some(change) = written.get(&id).copied() else {
                continue;
            };
            match (
                state.statuses.binary_search_by_key(&id, |(i, _)| *i),
                change,
            ) {
                (Ok(pos), Some(seq)) => state.statuses[pos].1 = seq,
                (Ok(_), None) => {
                    removed.insert(id);
                }
                (Err(_), Some(seq)) => added.push((id, seq)),
                (Err(_), None) => {}
            }
        }
        if !removed.is_empty() {
            state.statuses.retain(|(id, _)| !removed.contains(id));
        }
        if !added.is_empty() {
            let in_order = added.windows(2).all(|w| w[0].0 < w[1].0)
                && state
                    .statuses
                    .last()
                    .is_none_or(|(last, _)| *last < added[0].0);
            state.statuses.extend(added);
            if !in_order {
                state.statuses.sort_unstable_by_key(|(id, _)| *id);
            }
        }
        state.skipped += skipped.len() as u64;
        for s in skipped {
            if state.skipped_first.len() < MAX_SKIPPED_KEPT {
                state.skipped_first.push(s);
            }
        }
        state.folded = folded;
    }
}

fn notify(notifications: &mut Vec<Notification>, n: Notification) {
    if notifications.len() >= MAX_NOTIFICATIONS {
        // Drop the oldest (by time), keeping the vector in arrival order otherwise.
        if let Some((pos, _)) = notifications
            .iter()
            .enumerate()
            .min_by_key(|(_, n)| n.time_ms)
        {
            notifications.remove(pos);
        }
    }
    notifications.push(n);
}

fn unlink(children: &mut HashMap<StatusKey, Vec<StatusKey>>, parent: StatusKey, child: StatusKey) {
    if let Some(kids) = children.get_mut(&parent) {
        kids.retain(|k| *k != child);
        if kids.is_empty() {
            children.remove(&parent);
        }
    }
}

fn uncount(counts: &mut HashMap<StatusKey, u32>, subject: StatusKey) {
    if let Some(n) = counts.get_mut(&subject) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(&subject);
        }
    }
}

fn drop_status_links(
    state: &mut ArchiveState,
    children: &mut HashMap<StatusKey, Vec<StatusKey>>,
    notifications: &mut Vec<Notification>,
    key: &PublicKey,
    id: StatusId,
) {
    if let Some((parent, _)) = state.replies.remove(&id) {
        unlink(children, parent, (*key, id));
    }
    notifications.retain(|n| !(n.from == *key && n.status == Some(id)));
}

fn drop_like(
    state: &mut ArchiveState,
    counts: &mut HashMap<StatusKey, u32>,
    notifications: &mut Vec<Notification>,
    key: &PublicKey,
    slug: &str,
) {
    if let Some(subject) = state.likes.remove(slug) {
        uncount(counts, subject);
        notifications.retain(|n| !(n.from == *key && n.like.as_deref() == Some(slug)));
    }
}

/// Decodes and validates one entry into what the index needs, or the reason it is skipped.
pub(super) fn decode(seq: u64, block: &[u8]) -> Result<Op, String> {
    let entry = Entry::decode(block).map_err(|e| e.to_string())?;
    let file = entry.validate().map_err(|e| e.to_string())?;
    let path = entry.path();
    Ok(match (file, &entry) {
        (Some(File::Status { id, status }), _) => {
            let thread = status.reply.as_ref().and_then(|r| {
                let parent = status_key(&r.parent.url)?;
                let root = status_key(&r.root.url)?;
                Some((parent, root))
            });
            Op::Status {
                id,
                seq,
                thread,
                mentions: status.mentions.iter().map(|m| m.url.key().into()).collect(),
                time_ms: status.created_at.unix_millis(),
            }
        }
        (Some(File::Like(like)), _) => match status_key(&like.subject) {
            Some(subject) => Op::Like {
                slug: Like::slug(&like.subject),
                subject,
                time_ms: like.created_at.unix_millis(),
            },
            None => Op::Other,
        },
        (Some(File::Profile(p)), _) => Op::Profile(ProfileInfo {
            name: p.name,
            bio: p.bio,
        }),
        (Some(File::Follows(f)), _) => Op::Follows(f.urls.iter().map(|u| u.key().into()).collect()),
        (Some(_), _) => Op::Other,
        (None, Entry::Del { .. }) => {
            let mut segments = path.segments();
            match (segments.next(), segments.next(), segments.next()) {
                (Some("statuses"), Some(name), None) => {
                    match name.strip_suffix(".json").map(str::parse::<StatusId>) {
                        Some(Ok(id)) => Op::DelStatus(id),
                        _ => Op::Other,
                    }
                }
                (Some("likes"), Some(name), None) => match name.strip_suffix(".json") {
                    Some(slug) => Op::DelLike(slug.to_owned()),
                    None => Op::Other,
                },
                (Some("profile.json"), None, None) => Op::DelProfile,
                (Some("follows.json"), None, None) => Op::DelFollows,
                _ => Op::Other,
            }
        }
        (None, Entry::Put { .. }) => Op::Other,
    })
}
