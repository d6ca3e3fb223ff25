//! The follow list, `/follows.json`: the archives whose statuses make up the owner's feed and
//! which the app replicates.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::error::{shown, ModelError};
use super::file::{as_str, object, parse_str, Fields};
use super::limits::MAX_FOLLOWS;
use super::path::FilePath;
use super::url::ArchiveUrl;

/// `{"urls": ["hyper://<key>/", …]}`: archive root URLs, at most [`MAX_FOLLOWS`], each archive
/// once (URLs are compared in canonical form, so upper- and lowercase hex are the same archive).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Follows {
    /// The followed archives' root URLs.
    pub urls: Vec<ArchiveUrl>,
}

impl Follows {
    /// Where the follow list lives.
    pub const PATH: &'static str = "/follows.json";

    /// [`Follows::PATH`] as a path.
    pub fn path() -> FilePath {
        FilePath::from_trusted(Follows::PATH.to_owned())
    }

    pub(crate) fn from_fields(fields: &Fields<'_>) -> Result<Follows, ModelError> {
        let items = fields.array("urls", MAX_FOLLOWS)?;
        let mut urls = Vec::with_capacity(items.len());
        let mut seen = HashSet::with_capacity(items.len());
        for (what, item) in items {
            let url: ArchiveUrl = parse_str(&what, as_str(&what, item)?)?;
            if !url.is_root() {
                return Err(ModelError::Invalid {
                    what,
                    value: shown(&url.to_string()),
                    reason: "follow an archive by its root url, hyper://<key>/".to_owned(),
                });
            }
            if !seen.insert(url.key()) {
                return Err(ModelError::Duplicate {
                    what: fields.name("urls"),
                    value: shown(&url.to_string()),
                });
            }
            urls.push(url);
        }
        Ok(Follows { urls })
    }

    pub(crate) fn to_object(&self) -> Map<String, Value> {
        let urls = self
            .urls
            .iter()
            .map(|url| Value::from(url.to_string()))
            .collect();
        object([("urls", Some(Value::Array(urls)))])
    }
}
