//! Building what a user writes, before it touches an archive: a status with its tags and
//! mentions, a reply pinned to the exact entry it answers, a like. Pure functions, so the rules
//! are tested without a data directory.

use fritter_common::archive::EntryRef;
use fritter_common::model::{
    extract_mentions, extract_tags, limits::MAX_MENTIONS, resolve_mentions, ArchiveKey, ArchiveUrl,
    Entry, File, Like, Mention, ModelError, Reply, Status, ThreadRef, Timestamp,
};
use serde_json::Value;

/// A profile name the writer knows, and the archive it belongs to (usually someone followed).
pub type Known = (String, ArchiveUrl);

/// A status ready to be written, and the `@names` of its text that named nobody known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub status: Status,
    /// `@names` that matched no known archive, or more than one, in order, each once.
    pub unresolved: Vec<String>,
}

/// The status being answered, as read from its archive.
#[derive(Debug, Clone)]
pub struct Parent {
    /// Its URL, `hyper://<key>/statuses/<id>.json`.
    pub url: ArchiveUrl,
    /// The log entry that wrote its current version.
    pub entry: EntryRef,
    pub status: Status,
    /// The profile name of its author, if their profile is known.
    pub author_name: Option<String>,
}

/// A new status: the text, its `#tags`, and its `@mentions` resolved against `known`.
pub fn status(text: &str, created_at: Timestamp, known: &[Known]) -> Draft {
    let mut status = Status::new(text, created_at);
    status.tags = extract_tags(text);
    status.mentions = resolve_mentions(text, known);
    Draft {
        status,
        unresolved: unresolved(text, known),
    }
}

/// A reply to `parent`: a status whose thread references pin the parent's entry, and which
/// mentions the parent's author (unless that is the writer, `own`), first.
pub fn reply(
    text: &str,
    created_at: Timestamp,
    known: &[Known],
    parent: &Parent,
    own: ArchiveKey,
) -> Draft {
    let mut draft = status(text, created_at, known);
    draft.status.reply = Some(thread_refs(&parent.url, parent.entry, &parent.status));
    let author = parent.url.key();
    if author != own && !draft.status.mentions.iter().any(|m| m.url.key() == author) {
        // A profile name is a valid mention name; without one, a short key stands in.
        let name = parent
            .author_name
            .clone()
            .unwrap_or_else(|| author.to_string()[..8].to_owned());
        draft.status.mentions.insert(
            0,
            Mention {
                url: ArchiveUrl::root(author),
                name,
            },
        );
        draft.status.mentions.truncate(MAX_MENTIONS);
    }
    draft
}

/// The thread references of a reply to the status at `url`, written by log entry `entry`: the
/// parent is that entry; the root is the parent's own root if it is a reply, else the parent.
pub fn thread_refs(url: &ArchiveUrl, entry: EntryRef, parent: &Status) -> Reply {
    let pinned = ThreadRef {
        url: url.clone(),
        seq: entry.seq,
        hash: entry.hash,
    };
    let root = match &parent.reply {
        Some(reply) => reply.root.clone(),
        None => pinned.clone(),
    };
    Reply {
        root,
        parent: pinned,
    }
}

/// A like of the status at `subject`.
pub fn like(subject: ArchiveUrl, created_at: Timestamp) -> Like {
    Like {
        subject,
        created_at,
    }
}

/// The JSON value `file` is written as: normalized (trimmed name, canonical URLs and times) by
/// the same checks the archive makes, so reports show exactly what was stored.
pub fn as_written(file: &File) -> Result<Value, ModelError> {
    match file.to_entry()? {
        Entry::Put { value, .. } => Ok(Value::Object(value)),
        Entry::Del { .. } => Ok(Value::Null),
    }
}

/// The `@names` of `text` that [`resolve_mentions`] leaves out because no known archive, or
/// more than one, answers to them. Each name is tried alone, so a second name for an archive
/// already mentioned does not count as unresolved.
fn unresolved(text: &str, known: &[Known]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for span in extract_mentions(text) {
        if out.contains(&span.name) {
            continue;
        }
        if resolve_mentions(&format!("@{}", span.name), known).is_empty() {
            out.push(span.name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use fritter_common::crypto::KeyPair;

    use super::*;

    fn key(n: u8) -> ArchiveKey {
        KeyPair::from_seed(&[n; 32]).public().into()
    }

    fn root(n: u8) -> ArchiveUrl {
        ArchiveUrl::root(key(n))
    }

    fn status_url(n: u8, id: &str) -> ArchiveUrl {
        format!("hyper://{}/statuses/{id}.json", key(n))
            .parse()
            .unwrap()
    }

    fn now() -> Timestamp {
        "2024-05-01T12:00:00.000Z".parse().unwrap()
    }

    fn known() -> Vec<Known> {
        vec![
            ("Bob Jones".to_owned(), root(2)),
            ("carol".to_owned(), root(3)),
            ("Dan".to_owned(), root(4)),
            ("dan".to_owned(), root(5)),
        ]
    }

    /// Composes `text` against [`known`] and checks tags, mentions (`name -> archive number`)
    /// and unresolved names.
    fn check(text: &str, tags: &[&str], mentions: &[(&str, u8)], unresolved: &[&str]) {
        let draft = status(text, now(), &known());
        assert_eq!(draft.status.text, text);
        assert_eq!(draft.status.created_at, now());
        assert_eq!(draft.status.tags, tags, "tags of {text:?}");
        let got: Vec<(String, ArchiveUrl)> = draft
            .status
            .mentions
            .iter()
            .map(|m| (m.name.clone(), m.url.clone()))
            .collect();
        let want: Vec<(String, ArchiveUrl)> = mentions
            .iter()
            .map(|(name, n)| (name.to_string(), root(*n)))
            .collect();
        assert_eq!(got, want, "mentions of {text:?}");
        assert_eq!(draft.unresolved, unresolved, "unresolved of {text:?}");
        assert!(draft.status.reply.is_none());
    }

    #[test]
    fn tags_are_found_and_lowercased() {
        check(
            "Hello #Fritter and #café, #fritter again",
            &["fritter", "café"],
            &[],
            &[],
        );
        check("no tags in a#b or https://x/#frag or #123", &[], &[], &[]);
    }

    #[test]
    fn mentions_resolve_against_known_names() {
        check("hi @carol", &[], &[("carol", 3)], &[]);
        // Whitespace and case are ignored when no name matches exactly.
        check("lunch with @bobjones", &[], &[("bobjones", 2)], &[]);
        // One archive is mentioned once, by the first name used.
        check("@carol @Carol", &[], &[("carol", 3)], &[]);
    }

    #[test]
    fn unknown_and_ambiguous_mentions_are_reported() {
        check(
            "hi @erin and @carol and @erin",
            &[],
            &[("carol", 3)],
            &["erin"],
        );
        // Exact names win; only a loose match shared by two archives is ambiguous.
        check("@Dan", &[], &[("Dan", 4)], &[]);
        check("@DAN", &[], &[], &["DAN"]);
        check("mail bob@example.com", &[], &[], &[]);
    }

    fn parent(n: u8, id: &str, seq: u64, reply: Option<Reply>) -> Parent {
        let mut status = Status::new("parent", now());
        status.reply = reply;
        Parent {
            url: status_url(n, id),
            entry: EntryRef {
                seq,
                hash: [seq as u8; 32],
            },
            status,
            author_name: Some("Bob Jones".to_owned()),
        }
    }

    fn pin(n: u8, id: &str, seq: u64) -> ThreadRef {
        ThreadRef {
            url: status_url(n, id),
            seq,
            hash: [seq as u8; 32],
        }
    }

    #[test]
    fn reply_to_a_thread_start_uses_it_as_root_and_parent() {
        let p = parent(2, "3kq2nzxh4vk22", 7, None);
        let draft = reply("agreed", now(), &known(), &p, key(1));
        let refs = draft.status.reply.unwrap();
        assert_eq!(refs.parent, pin(2, "3kq2nzxh4vk22", 7));
        assert_eq!(refs.root, refs.parent);
    }

    #[test]
    fn reply_to_a_reply_keeps_the_thread_root() {
        let thread = Reply {
            root: pin(3, "3kq2nzxh4vk23", 1),
            parent: pin(3, "3kq2nzxh4vk23", 1),
        };
        let p = parent(2, "3kq2nzxh4vk24", 9, Some(thread));
        let draft = reply("me too", now(), &known(), &p, key(1));
        let refs = draft.status.reply.unwrap();
        assert_eq!(refs.root, pin(3, "3kq2nzxh4vk23", 1));
        assert_eq!(refs.parent, pin(2, "3kq2nzxh4vk24", 9));
    }

    #[test]
    fn reply_mentions_the_parent_author_first_and_once() {
        let p = parent(2, "3kq2nzxh4vk22", 7, None);
        let names = |d: &Draft| {
            d.status
                .mentions
                .iter()
                .map(|m| m.name.clone())
                .collect::<Vec<_>>()
        };

        let draft = reply("cc @carol", now(), &known(), &p, key(1));
        assert_eq!(names(&draft), ["Bob Jones", "carol"]);
        assert_eq!(draft.status.mentions[0].url, root(2));

        // Already mentioned in the text: kept as written, not added twice.
        let draft = reply("@carol @bobjones yes", now(), &known(), &p, key(1));
        assert_eq!(names(&draft), ["carol", "bobjones"]);

        // Answering yourself mentions nobody.
        let draft = reply("adding to this", now(), &known(), &p, key(2));
        assert!(draft.status.mentions.is_empty());

        // No profile known: a short key names the author.
        let anonymous = Parent {
            author_name: None,
            ..p
        };
        let draft = reply("hm", now(), &[], &anonymous, key(1));
        assert_eq!(names(&draft), [key(2).to_string()[..8].to_owned()]);
    }

    #[test]
    fn composed_files_pass_the_model_checks() {
        use fritter_common::model::StatusId;
        let p = parent(2, "3kq2nzxh4vk22", 7, None);
        let draft = reply("#tag @carol", now(), &known(), &p, key(1));
        let id = StatusId::from_parts(1_700_000_000_000_000, 0).unwrap();
        File::Status {
            id,
            status: draft.status,
        }
        .to_entry()
        .unwrap();
        File::Like(like(status_url(2, "3kq2nzxh4vk22"), now()))
            .to_entry()
            .unwrap();
        assert!(File::Like(like(root(2), now())).to_entry().is_err());
    }
}
