//! Likes, `/likes/<slug>.json`: one file per liked status, named after the status so that liking
//! twice rewrites the same file and unliking deletes it.

use serde_json::{Map, Value};

use super::error::{shown, ModelError};
use super::file::{object, Fields};
use super::path::FilePath;
use super::timestamp::Timestamp;
use super::url::ArchiveUrl;

/// `{"subject": "hyper://<key>/statuses/<id>.json", "createdAt": "…"}`, stored at
/// `/likes/<slug>.json` with the slug from [`Like::slug`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Like {
    /// The liked status.
    pub subject: ArchiveUrl,
    /// `createdAt`.
    pub created_at: Timestamp,
}

impl Like {
    /// The file name of a like of `subject`: the first 32 hex characters (16 bytes) of the
    /// BLAKE2b-256 hash (unkeyed, no personalization) of the subject's canonical URL in UTF-8.
    ///
    /// 128 bits make collisions between two statuses practically impossible, and the rule is
    /// easy to repeat in JavaScript.
    pub fn slug(subject: &ArchiveUrl) -> String {
        let hash = blake2b_simd::Params::new()
            .hash_length(32)
            .hash(subject.to_string().as_bytes());
        hex::encode(&hash.as_bytes()[..16])
    }

    /// Where a like of `subject` lives, to write or to delete it.
    pub fn path_for(subject: &ArchiveUrl) -> FilePath {
        FilePath::from_trusted(format!("/likes/{}.json", Like::slug(subject)))
    }

    /// Where this like lives.
    pub fn path(&self) -> FilePath {
        Like::path_for(&self.subject)
    }

    pub(crate) fn from_fields(fields: &Fields<'_>) -> Result<Like, ModelError> {
        let subject: ArchiveUrl = fields.parse("subject")?;
        if subject.status_id().is_none() {
            return Err(ModelError::Invalid {
                what: fields.name("subject"),
                value: shown(&subject.to_string()),
                reason: "it must name a status, hyper://<key>/statuses/<id>.json".to_owned(),
            });
        }
        Ok(Like {
            subject,
            created_at: fields.parse("createdAt")?,
        })
    }

    pub(crate) fn to_object(&self) -> Map<String, Value> {
        object([
            ("subject", Some(self.subject.to_string().into())),
            ("createdAt", Some(self.created_at.to_string().into())),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::key::tests::key;
    use crate::model::StatusId;

    #[test]
    fn slug_is_stable_and_follows_the_canonical_url() {
        let id = StatusId::from_parts(1_700_000_000_000_000, 0).unwrap();
        let subject = ArchiveUrl::status(key(1), id);
        let slug = Like::slug(&subject);
        assert_eq!(slug.len(), 32);
        let full = blake2b_simd::Params::new()
            .hash_length(32)
            .hash(subject.to_string().as_bytes());
        assert_eq!(slug, full.to_hex()[..32]);
        let shouting = format!(
            "hyper://{}/statuses/{id}.json",
            key(1).to_string().to_uppercase()
        );
        assert_eq!(Like::slug(&shouting.parse().unwrap()), slug);
        assert_ne!(Like::slug(&ArchiveUrl::status(key(2), id)), slug);
        assert_eq!(
            Like::path_for(&subject).as_str(),
            format!("/likes/{slug}.json")
        );
    }
}
