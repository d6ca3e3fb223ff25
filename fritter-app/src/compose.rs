//! Building what a user writes, before it touches an archive: a status with its tags and
//! mentions, a reply pinned to the exact entry it answers, a like. Pure functions, so the rules
//! are tested without a data directory.
//!
//! Nothing the writer typed is dropped in silence: a text with more `#tags` or `@mentions` than a
//! status may hold, or a `#word` too long to be a tag, is refused with the limit named, since a
//! status published with part of its tags missing looks fine and is not.

use fritter_common::archive::EntryRef;
use fritter_common::model::limits::{
    MAX_MENTIONS, MAX_STATUS_BYTES, MAX_STATUS_CHARS, MAX_TAGS, MAX_TAG_CHARS,
};
use fritter_common::model::{
    extract_mentions, resolve_mentions, scan_tags, ArchiveKey, ArchiveUrl, Entry, File, Like,
    Mention, ModelError, Reply, Status, ThreadRef, Timestamp,
};
use serde_json::Value;

/// Why a text cannot be published as written; each names the limit it ran into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    #[error(
        "status text is {len} characters; the limit is {MAX_STATUS_CHARS} characters: shorten it"
    )]
    TooLong { len: usize },
    #[error("the status has {count} different #tags; the limit is {MAX_TAGS}: remove {} of them", .count - MAX_TAGS)]
    TooManyTags { count: usize },
    #[error("#{tag} is {len} characters; a tag is at most {MAX_TAG_CHARS}: shorten it, or drop the # to keep it plain text")]
    TagTooLong { tag: String, len: usize },
    #[error("the status mentions {count} people{}; the limit is {MAX_MENTIONS}: remove {} @names", reply_note(.reply), .count - MAX_MENTIONS)]
    TooManyMentions { count: usize, reply: bool },
}

fn reply_note(reply: &bool) -> &'static str {
    if *reply {
        " (a reply also mentions the author it answers)"
    } else {
        ""
    }
}

/// Refuses a text longer than a status may be, before any work is spent on it (the tag and
/// mention scans, opening the archive, asking `fritter serve`). The model's byte limit needs no
/// check of its own: no character is longer than 4 bytes in UTF-8.
pub fn check_text(text: &str) -> Result<(), ComposeError> {
    const _: () = assert!(MAX_STATUS_BYTES >= 4 * MAX_STATUS_CHARS);
    // A string has at least as many bytes as characters, so most texts need no counting.
    if text.len() > MAX_STATUS_CHARS {
        let len = text.chars().count();
        if len > MAX_STATUS_CHARS {
            return Err(ComposeError::TooLong { len });
        }
    }
    Ok(())
}

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

/// A new status: the text, its `#tags`, and its `@mentions` resolved against `known`; refused
/// if any of them would not fit (see [`ComposeError`]).
pub fn status(text: &str, created_at: Timestamp, known: &[Known]) -> Result<Draft, ComposeError> {
    check_text(text)?;
    let tags = scan_tags(text);
    if let Some(tag) = tags.too_long.into_iter().next() {
        let len = tag.chars().count();
        return Err(ComposeError::TagTooLong { tag, len });
    }
    if tags.tags.len() > MAX_TAGS {
        return Err(ComposeError::TooManyTags {
            count: tags.tags.len(),
        });
    }
    let names = names(text, known);
    if names.archives > MAX_MENTIONS {
        return Err(ComposeError::TooManyMentions {
            count: names.archives,
            reply: false,
        });
    }
    let mut status = Status::new(text, created_at);
    status.tags = tags.tags;
    status.mentions = resolve_mentions(text, known);
    Ok(Draft {
        status,
        unresolved: names.unresolved,
    })
}

/// A reply to `parent`: a status whose thread references pin the parent's entry, and which
/// mentions the parent's author (unless that is the writer, `own`), first.
pub fn reply(
    text: &str,
    created_at: Timestamp,
    known: &[Known],
    parent: &Parent,
    own: ArchiveKey,
) -> Result<Draft, ComposeError> {
    let mut draft = status(text, created_at, known)?;
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
        if draft.status.mentions.len() > MAX_MENTIONS {
            return Err(ComposeError::TooManyMentions {
                count: draft.status.mentions.len(),
                reply: true,
            });
        }
    }
    Ok(draft)
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

/// What the `@names` of a text come to.
struct Names {
    /// The names that [`resolve_mentions`] leaves out because no known archive, or more than
    /// one, answers to them.
    unresolved: Vec<String>,
    /// How many different archives the other names resolve to, which [`resolve_mentions`] would
    /// cut at [`MAX_MENTIONS`].
    archives: usize,
}

/// Tries each `@name` of `text` alone, so a second name for an archive already mentioned does
/// not count as unresolved, nor as one more archive.
fn names(text: &str, known: &[Known]) -> Names {
    let mut tried: Vec<String> = Vec::new();
    let mut unresolved: Vec<String> = Vec::new();
    let mut archives: Vec<ArchiveKey> = Vec::new();
    for span in extract_mentions(text) {
        if tried.contains(&span.name) {
            continue;
        }
        match resolve_mentions(&format!("@{}", span.name), known).first() {
            Some(mention) if !archives.contains(&mention.url.key()) => {
                archives.push(mention.url.key())
            }
            Some(_) => {}
            None => unresolved.push(span.name.clone()),
        }
        tried.push(span.name);
    }
    Names {
        unresolved,
        archives: archives.len(),
    }
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
        let draft = status(text, now(), &known()).unwrap();
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

    /// `count` people, each followed under the name `pN`, and a text mentioning them all.
    fn crowd(count: u8) -> (Vec<Known>, String) {
        let known: Vec<Known> = (0..count)
            .map(|i| (format!("p{i}"), root(100 + i)))
            .collect();
        let text = (0..count).map(|i| format!("@p{i} ")).collect();
        (known, text)
    }

    #[test]
    fn too_many_tags_are_refused_not_cut() {
        let tags = |n: usize| (0..n).map(|i| format!("#t{i} ")).collect::<String>();
        let ok = status(&tags(MAX_TAGS), now(), &[]).unwrap();
        assert_eq!(ok.status.tags.len(), MAX_TAGS);
        // The same tag twice counts once.
        assert!(status(&format!("{} #t0 #T1", tags(MAX_TAGS)), now(), &[]).is_ok());
        let err = status(&tags(25), now(), &[]).unwrap_err();
        assert_eq!(err, ComposeError::TooManyTags { count: 25 });
        assert_eq!(
            err.to_string(),
            "the status has 25 different #tags; the limit is 20: remove 5 of them"
        );
    }

    #[test]
    fn a_tag_too_long_is_refused_not_dropped() {
        let long = "a".repeat(MAX_TAG_CHARS + 1);
        let err = status(&format!("see #{long}"), now(), &[]).unwrap_err();
        assert_eq!(err, ComposeError::TagTooLong { tag: long, len: 65 });
        assert!(err.to_string().contains("a tag is at most 64"), "{err}");
        // Not a tag at all (no letter): plain text, as before.
        assert!(status(&format!("#{}", "1".repeat(80)), now(), &[]).is_ok());
    }

    #[test]
    fn too_many_mentions_are_refused_not_cut() {
        let (known, text) = crowd(MAX_MENTIONS as u8);
        let ok = status(&text, now(), &known).unwrap();
        assert_eq!(ok.status.mentions.len(), MAX_MENTIONS);
        let (known, text) = crowd(MAX_MENTIONS as u8 + 1);
        let err = status(&text, now(), &known).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the status mentions 51 people; the limit is 50: remove 1 @names"
        );
        // Two names of one archive are one mention.
        let (mut known, text) = crowd(MAX_MENTIONS as u8);
        known.push(("alias".to_owned(), root(100)));
        assert!(status(&format!("{text} @alias"), now(), &known).is_ok());
    }

    #[test]
    fn a_reply_that_cannot_mention_its_author_is_refused() {
        let (known, text) = crowd(MAX_MENTIONS as u8);
        let p = parent(2, "3kq2nzxh4vk22", 7, None);
        let err = reply(&text, now(), &known, &p, key(1)).unwrap_err();
        assert_eq!(
            err,
            ComposeError::TooManyMentions {
                count: 51,
                reply: true
            }
        );
        assert!(
            err.to_string().contains("also mentions the author"),
            "{err}"
        );
    }

    #[test]
    fn too_long_texts_are_refused_with_the_limit() {
        let err = status(&"x".repeat(1001), now(), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "status text is 1001 characters; the limit is 1000 characters: shorten it"
        );
        // Counted in characters, not bytes.
        assert!(status(&"😀".repeat(1000), now(), &[]).is_ok());
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
        let draft = reply("agreed", now(), &known(), &p, key(1)).unwrap();
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
        let draft = reply("me too", now(), &known(), &p, key(1)).unwrap();
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

        let draft = reply("cc @carol", now(), &known(), &p, key(1)).unwrap();
        assert_eq!(names(&draft), ["Bob Jones", "carol"]);
        assert_eq!(draft.status.mentions[0].url, root(2));

        // Already mentioned in the text: kept as written, not added twice.
        let draft = reply("@carol @bobjones yes", now(), &known(), &p, key(1)).unwrap();
        assert_eq!(names(&draft), ["carol", "bobjones"]);

        // Answering yourself mentions nobody.
        let draft = reply("adding to this", now(), &known(), &p, key(2)).unwrap();
        assert!(draft.status.mentions.is_empty());

        // No profile known: a short key names the author.
        let anonymous = Parent {
            author_name: None,
            ..p
        };
        let draft = reply("hm", now(), &[], &anonymous, key(1)).unwrap();
        assert_eq!(names(&draft), [key(2).to_string()[..8].to_owned()]);
    }

    #[test]
    fn composed_files_pass_the_model_checks() {
        use fritter_common::model::StatusId;
        let p = parent(2, "3kq2nzxh4vk22", 7, None);
        let draft = reply("#tag @carol", now(), &known(), &p, key(1)).unwrap();
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
