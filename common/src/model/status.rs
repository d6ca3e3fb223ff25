//! Statuses, the posts of Fritter, with the threading and mention references that tie one
//! archive's posts to another's.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::error::{shown, ModelError};
use super::file::Fields;
use super::limits::{
    MAX_LANG_CHARS, MAX_MENTIONS, MAX_NAME_CHARS, MAX_SAFE_INTEGER, MAX_STATUS_BYTES,
    MAX_STATUS_CHARS, MAX_TAGS,
};
use super::text::{check_chars, check_free_text, check_name, check_not_blank, normalize_tag};
use super::timestamp::Timestamp;
use super::url::ArchiveUrl;

/// A status, stored at `/statuses/<id>.json`:
///
/// ```json
/// {"text": "hello #world", "createdAt": "2024-05-01T12:00:00.000Z",
///  "threadRoot": {...}, "threadParent": {...},
///  "mentions": [{"url": "hyper://<key>/", "name": "bob"}], "tags": ["world"], "lang": "en"}
/// ```
///
/// `text` is 1 to 1000 characters (so at most 4000 bytes), not blank, without control characters
/// other than newline and tab. `mentions` (at most 50, one per archive) name archive roots; `tags`
/// (at most 20, each a valid tag as [`extract_tags`](super::extract_tags) finds them) are lowercased
/// and must be distinct; `lang` is a BCP 47 language tag such as `en` or `pt-BR`. Empty lists and
/// absent options are left out of the JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// What the status says.
    pub text: String,
    /// `createdAt`.
    pub created_at: Timestamp,
    /// `threadRoot` and `threadParent`, which are present together or not at all.
    pub reply: Option<Reply>,
    /// The archives the text mentions.
    pub mentions: Vec<Mention>,
    /// The text's tags, lowercased, without `#`.
    pub tags: Vec<String>,
    /// The language of the text.
    pub lang: Option<String>,
}

/// What a reply answers: the first status of the thread and the status replied to (the same
/// one for a direct reply to the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// `threadRoot`.
    pub root: ThreadRef,
    /// `threadParent`.
    pub parent: ThreadRef,
}

/// A pointer to one status in another (or the same) archive, pinned to the log entry that wrote
/// it, so an edited or deleted status can be told from the one that was answered:
/// `{"url": "hyper://<key>/statuses/<id>.json", "seq": 12, "hash": "<64 hex>"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRef {
    /// The status URL.
    pub url: ArchiveUrl,
    /// The sequence number of the log entry that wrote the status, at most 2^53 - 1 so that a
    /// JavaScript reader holds it exactly.
    pub seq: u64,
    /// The BLAKE2b-256 hash of that log entry, as the log computes it; 64 hex characters in JSON.
    pub hash: [u8; 32],
}

/// An archive a status mentions: its root URL and the name it was mentioned by (1 to 64
/// characters, no control or bidi characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    /// The mentioned archive's root URL.
    pub url: ArchiveUrl,
    /// The name it was mentioned by, as written after `@`.
    pub name: String,
}

impl Status {
    /// A status with only a text and a time; fill in the rest as needed (for example
    /// `tags` from [`extract_tags`](super::extract_tags) and `mentions` from
    /// [`resolve_mentions`](super::resolve_mentions)).
    pub fn new(text: impl Into<String>, created_at: Timestamp) -> Status {
        Status {
            text: text.into(),
            created_at,
            reply: None,
            mentions: Vec::new(),
            tags: Vec::new(),
            lang: None,
        }
    }

    pub(crate) fn from_fields(fields: &Fields<'_>) -> Result<Status, ModelError> {
        let text = fields.str("text")?;
        let what = fields.name("text");
        check_chars(&what, text, MAX_STATUS_CHARS)?;
        if text.len() > MAX_STATUS_BYTES {
            return Err(ModelError::TooLong {
                what,
                len: text.len(),
                unit: "bytes",
                limit: MAX_STATUS_BYTES,
            });
        }
        check_not_blank(&what, text)?;
        check_free_text(&what, text)?;

        let created_at = fields.parse("createdAt")?;
        let root = fields
            .object("threadRoot")?
            .map(|f| ThreadRef::from_fields(&f))
            .transpose()?;
        let parent = fields
            .object("threadParent")?
            .map(|f| ThreadRef::from_fields(&f))
            .transpose()?;
        let reply = match (root, parent) {
            (Some(root), Some(parent)) => Some(Reply { root, parent }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ModelError::Missing {
                    what: fields
                        .name("threadParent (a reply needs both threadRoot and threadParent)"),
                })
            }
            (None, Some(_)) => {
                return Err(ModelError::Missing {
                    what: fields
                        .name("threadRoot (a reply needs both threadRoot and threadParent)"),
                })
            }
        };

        let mut mentions = Vec::new();
        let mut mentioned = HashSet::new();
        for (what, item) in fields.array("mentions", MAX_MENTIONS)? {
            let mention = Mention::from_fields(&Fields::new(what, item)?)?;
            if !mentioned.insert(mention.url.key()) {
                return Err(ModelError::Duplicate {
                    what: fields.name("mentions"),
                    value: shown(&mention.url.to_string()),
                });
            }
            mentions.push(mention);
        }

        let mut tags: Vec<String> = Vec::new();
        for (what, item) in fields.array("tags", MAX_TAGS)? {
            let written = super::file::as_str(&what, item)?;
            let tag = normalize_tag(written).ok_or_else(|| ModelError::Invalid {
                what,
                value: shown(written),
                reason: "a tag is 1 to 64 letters, digits, marks and _, with at least one letter"
                    .to_owned(),
            })?;
            if tags.contains(&tag) {
                return Err(ModelError::Duplicate {
                    what: fields.name("tags"),
                    value: shown(&tag),
                });
            }
            tags.push(tag);
        }

        let lang = fields.opt_str("lang")?;
        if let Some(lang) = lang {
            check_lang(&fields.name("lang"), lang)?;
        }

        Ok(Status {
            text: text.to_owned(),
            created_at,
            reply,
            mentions,
            tags,
            lang: lang.map(str::to_owned),
        })
    }

    pub(crate) fn to_object(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // Not reached: a status serializes to an object of strings and numbers.
            _ => Map::new(),
        }
    }
}

/// The status's JSON object (empty lists and absent options left out), written straight out:
/// the crawler stores every status it indexes this way, without building a `Value` first.
impl serde::Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("text", &self.text)?;
        m.serialize_entry("createdAt", &Shown(&self.created_at))?;
        if let Some(reply) = &self.reply {
            m.serialize_entry("threadRoot", &reply.root)?;
            m.serialize_entry("threadParent", &reply.parent)?;
        }
        if !self.mentions.is_empty() {
            m.serialize_entry("mentions", &self.mentions)?;
        }
        if !self.tags.is_empty() {
            m.serialize_entry("tags", &self.tags)?;
        }
        if let Some(lang) = &self.lang {
            m.serialize_entry("lang", lang)?;
        }
        m.end()
    }
}

impl serde::Serialize for ThreadRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("url", &Shown(&self.url))?;
        m.serialize_entry("seq", &self.seq)?;
        m.serialize_entry("hash", &crate::crypto::to_hex(&self.hash))?;
        m.end()
    }
}

impl serde::Serialize for Mention {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("url", &Shown(&self.url))?;
        m.serialize_entry("name", &self.name)?;
        m.end()
    }
}

/// Serializes a value as its `Display` text.
struct Shown<'a, T>(&'a T);

impl<T: std::fmt::Display> serde::Serialize for Shown<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

impl ThreadRef {
    fn from_fields(fields: &Fields<'_>) -> Result<ThreadRef, ModelError> {
        let url: ArchiveUrl = fields.parse("url")?;
        if url.status_id().is_none() {
            return Err(ModelError::Invalid {
                what: fields.name("url"),
                value: shown(&url.to_string()),
                reason: "it must name a status, hyper://<key>/statuses/<id>.json".to_owned(),
            });
        }
        Ok(ThreadRef {
            url,
            seq: fields.u64("seq", MAX_SAFE_INTEGER)?,
            hash: fields.hex("hash")?,
        })
    }
}

impl Mention {
    fn from_fields(fields: &Fields<'_>) -> Result<Mention, ModelError> {
        let url: ArchiveUrl = fields.parse("url")?;
        if !url.is_root() {
            return Err(ModelError::Invalid {
                what: fields.name("url"),
                value: shown(&url.to_string()),
                reason: "it must name an archive root, hyper://<key>/".to_owned(),
            });
        }
        let name = fields.str("name")?;
        let what = fields.name("name");
        check_not_blank(&what, name)?;
        check_chars(&what, name, MAX_NAME_CHARS)?;
        check_name(&what, name)?;
        Ok(Mention {
            url,
            name: name.to_owned(),
        })
    }
}

/// Checks a BCP 47-like language tag: 1 to 35 characters of ASCII letters, digits and `-`, in
/// subtags of 1 to 8 characters (`en`, `pt-BR`, `zh-Hant-TW`).
fn check_lang(what: &str, lang: &str) -> Result<(), ModelError> {
    let refuse = |reason: &str| ModelError::Invalid {
        what: what.to_owned(),
        value: shown(lang),
        reason: reason.to_owned(),
    };
    if lang.is_empty() || lang.len() > MAX_LANG_CHARS {
        return Err(refuse(
            "a language tag is 1 to 35 characters, such as en or pt-BR",
        ));
    }
    if !lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(refuse(
            "use ASCII letters, digits and - only, such as en or pt-BR",
        ));
    }
    if lang
        .split('-')
        .any(|subtag| subtag.is_empty() || subtag.len() > 8)
    {
        return Err(refuse(
            "each part between - is 1 to 8 characters, such as en or pt-BR",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(lang: &str, ok: bool) {
        assert_eq!(check_lang("lang", lang).is_ok(), ok, "{lang:?}");
    }

    #[test]
    fn language_tags() {
        check("en", true);
        check("pt-BR", true);
        check("zh-Hant-TW", true);
        check("x-private1", true);
        check("", false);
        check("en_US", false);
        check("en-", false);
        check("-en", false);
        check("en--us", false);
        check("toolongsubtag", false);
        check("日本", false);
        check(&"ab-".repeat(12), false);
    }
}
