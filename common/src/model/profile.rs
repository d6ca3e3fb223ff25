//! The profile, `/profile.json`: how an archive's owner names and describes themself.

use serde_json::{Map, Value};

use super::error::{shown, ModelError};
use super::file::{object, Fields};
use super::limits::{MAX_BIO_CHARS, MAX_NAME_CHARS};
use super::path::FilePath;
use super::text::{check_chars, check_free_text, check_name, check_not_blank};

/// `{"name": "Alice", "bio": "…", "avatar": "/avatar.png"}`.
///
/// `name` is 1 to 64 characters once trimmed (and stored trimmed), with no control, line separator
/// or bidi characters. `bio` is at most 512 characters without control characters other than
/// newline and tab; absent reads as empty. `avatar`, if present, is the path of a file in the same
/// archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The display name.
    pub name: String,
    /// A short self-description; empty when there is none.
    pub bio: String,
    /// The path of a picture in the same archive.
    pub avatar: Option<FilePath>,
}

impl Profile {
    /// Where the profile lives.
    pub const PATH: &'static str = "/profile.json";

    /// [`Profile::PATH`] as a path.
    pub fn path() -> FilePath {
        FilePath::from_trusted(Profile::PATH.to_owned())
    }

    pub(crate) fn from_fields(fields: &Fields<'_>) -> Result<Profile, ModelError> {
        let name = fields.str("name")?.trim();
        let what = fields.name("name");
        check_not_blank(&what, name)?;
        check_chars(&what, name, MAX_NAME_CHARS)?;
        check_name(&what, name)?;

        let bio = fields.opt_str("bio")?.unwrap_or_default();
        let what = fields.name("bio");
        check_chars(&what, bio, MAX_BIO_CHARS)?;
        check_free_text(&what, bio)?;

        let avatar: Option<FilePath> = fields.opt_parse("avatar")?;
        if let Some(root) = avatar.as_ref().filter(|path| path.is_root()) {
            return Err(ModelError::Invalid {
                what: fields.name("avatar"),
                value: shown(root.as_str()),
                reason: "it must name a file, not the archive root".to_owned(),
            });
        }
        Ok(Profile {
            name: name.to_owned(),
            bio: bio.to_owned(),
            avatar,
        })
    }

    pub(crate) fn to_object(&self) -> Map<String, Value> {
        object([
            ("name", Some(self.name.clone().into())),
            ("bio", Some(self.bio.clone().into())),
            (
                "avatar",
                self.avatar.as_ref().map(|path| path.as_str().into()),
            ),
        ])
    }
}
