//! Hosting requests, `/hosting/<name>.json`: an archive asks a hosting service to keep another
//! archive (usually its own) online under a name.

use serde_json::{Map, Value};

use super::error::{shown, ModelError};
use super::file::{object, Fields};
use super::limits::MAX_HOSTING_NAME_CHARS;
use super::path::FilePath;
use super::url::ArchiveUrl;

/// `{"url": "hyper://<key>/"}`, stored at `/hosting/<name>.json` where the name is 1 to 64 of
/// `a-z 0-9 _ -`; `url` is an archive root URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostingRequest {
    /// The root URL of the archive to host.
    pub url: ArchiveUrl,
}

impl HostingRequest {
    /// Where the request for `name` lives.
    pub fn path(name: &str) -> Result<FilePath, ModelError> {
        check_hosting_name(name).map_err(|reason| ModelError::Invalid {
            what: "hosting request".to_owned(),
            value: shown(name),
            reason,
        })?;
        Ok(FilePath::from_trusted(format!("/hosting/{name}.json")))
    }

    pub(crate) fn from_fields(fields: &Fields<'_>) -> Result<HostingRequest, ModelError> {
        let url: ArchiveUrl = fields.parse("url")?;
        if !url.is_root() {
            return Err(ModelError::Invalid {
                what: fields.name("url"),
                value: shown(&url.to_string()),
                reason: "it must name an archive root, hyper://<key>/".to_owned(),
            });
        }
        Ok(HostingRequest { url })
    }

    pub(crate) fn to_object(&self) -> Map<String, Value> {
        object([("url", Some(self.url.to_string().into()))])
    }
}

/// Checks a hosting name; the error is the reason, to go into a message.
pub(crate) fn check_hosting_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_HOSTING_NAME_CHARS
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "a hosting name is 1 to {MAX_HOSTING_NAME_CHARS} of a-z, 0-9, _ and -"
        ))
    }
}
