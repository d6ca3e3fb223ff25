//! `hyper://` URLs, the way one archive points at another or at a file in it; parsed in one strict
//! form so that equal URLs are equal strings and a follow list cannot hold one archive twice.

use std::fmt;
use std::str::FromStr;

use super::error::{shown, ModelError};
use super::id::StatusId;
use super::key::ArchiveKey;
use super::limits::MAX_URL_BYTES;
use super::path::FilePath;

/// The scheme of archive URLs.
const SCHEME: &str = "hyper://";

/// A URL naming an archive (`hyper://<key>/`) or a file in it (`hyper://<key>/statuses/x.json`).
///
/// The strict form, the only one [`FromStr`] accepts and [`Display`](fmt::Display) writes, is the
/// lowercase scheme `hyper://`, exactly 64 hex characters of a valid [`ArchiveKey`] (written back in
/// lowercase), then `/` and an optional [`FilePath`], in at most 512 bytes. There is no query,
/// fragment, user, port or percent-decoding. The root path is kept as "no path", so
/// `hyper://<key>/` has one representation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArchiveUrl {
    key: ArchiveKey,
    path: Option<FilePath>,
}

impl ArchiveUrl {
    /// The URL of a whole archive, `hyper://<key>/`.
    pub fn root(key: ArchiveKey) -> ArchiveUrl {
        ArchiveUrl { key, path: None }
    }

    /// The URL of a file in an archive; the root path gives [`ArchiveUrl::root`].
    pub fn new(key: ArchiveKey, path: FilePath) -> ArchiveUrl {
        let path = if path.is_root() { None } else { Some(path) };
        ArchiveUrl { key, path }
    }

    /// The URL of a status, `hyper://<key>/statuses/<id>.json`.
    pub fn status(key: ArchiveKey, id: StatusId) -> ArchiveUrl {
        ArchiveUrl {
            key,
            path: Some(id.path()),
        }
    }

    /// The archive's key.
    pub fn key(&self) -> ArchiveKey {
        self.key
    }

    /// The file path; `None` for the archive root.
    pub fn path(&self) -> Option<&FilePath> {
        self.path.as_ref()
    }

    /// Whether this URL names a whole archive rather than a file in it.
    pub fn is_root(&self) -> bool {
        self.path.is_none()
    }

    /// The status id, when this URL names a status (`/statuses/<id>.json`).
    pub fn status_id(&self) -> Option<StatusId> {
        StatusId::from_path(self.path.as_ref()?)
    }

    /// Parses a URL the way a person may type it on a command line: surrounding whitespace is
    /// ignored, and a bare 64-hex key or `hyper://<key>` without the final `/` means the archive
    /// root. Anything else must be in the strict form.
    pub fn parse_lenient(s: &str) -> Result<ArchiveUrl, ModelError> {
        let s = s.trim();
        let bare = s.strip_prefix(SCHEME).unwrap_or(s);
        if bare.len() == 64 && bare.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(ArchiveUrl::root(bare.parse()?));
        }
        s.parse()
    }
}

impl FromStr for ArchiveUrl {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<ArchiveUrl, ModelError> {
        let refuse = |reason: String| ModelError::InvalidUrl {
            value: shown(s),
            reason,
        };
        if s.len() > MAX_URL_BYTES {
            return Err(refuse(format!(
                "it is {} bytes; the limit is {MAX_URL_BYTES}",
                s.len()
            )));
        }
        let Some(rest) = s.strip_prefix(SCHEME) else {
            return Err(refuse("it must start with hyper://".to_owned()));
        };
        if s.contains(['?', '#']) {
            return Err(refuse("queries and fragments are not allowed".to_owned()));
        }
        let (Some(hex), Some(path)) = (rest.get(..64), rest.get(64..)) else {
            return Err(refuse(
                "expected 64 hex characters of an archive key after hyper://".to_owned(),
            ));
        };
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(refuse(
                "expected 64 hex characters of an archive key after hyper://".to_owned(),
            ));
        }
        let key: ArchiveKey = hex
            .parse()
            .map_err(|err: ModelError| refuse(err.to_string()))?;
        match path.chars().next() {
            Some('/') => {}
            None => {
                return Err(refuse(
                    "expected / after the key (hyper://<key>/)".to_owned(),
                ))
            }
            Some(':') => return Err(refuse("ports are not allowed".to_owned())),
            Some(_) => {
                return Err(refuse(
                    "expected exactly 64 hex characters, then /".to_owned(),
                ))
            }
        }
        let path: FilePath = path
            .parse()
            .map_err(|err: ModelError| refuse(err.to_string()))?;
        Ok(ArchiveUrl::new(key, path))
    }
}

impl fmt::Display for ArchiveUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            None => write!(f, "{SCHEME}{}/", self.key),
            Some(path) => write!(f, "{SCHEME}{}{path}", self.key),
        }
    }
}

impl fmt::Debug for ArchiveUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArchiveUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    use super::*;
    use crate::model::key::tests::{key, WEAK};

    fn check(input: &str, expected: Result<&str, &str>) {
        check_with(input, expected, |s| s.parse());
    }

    fn check_lenient(input: &str, expected: Result<&str, &str>) {
        check_with(input, expected, ArchiveUrl::parse_lenient);
    }

    fn check_with(
        input: &str,
        expected: Result<&str, &str>,
        parse: impl Fn(&str) -> Result<ArchiveUrl, ModelError>,
    ) {
        match (parse(input), expected) {
            (Ok(url), Ok(want)) => assert_eq!(url.to_string(), want),
            (Err(err), Err(fragment)) => {
                let message = err.to_string();
                assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
            }
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parses_the_strict_form() {
        let k = key(1);
        let root = format!("hyper://{k}/");
        check(&root, Ok(&root));
        check(
            &format!("hyper://{}/", k.to_string().to_uppercase()),
            Ok(&root),
        );
        let file = format!("hyper://{k}/statuses/x.json");
        check(&file, Ok(&file));
        let url: ArchiveUrl = root.parse().unwrap();
        assert!(url.is_root());
        assert_eq!(url.key(), k);
        assert_eq!(url, ArchiveUrl::root(k));
        assert_eq!(ArchiveUrl::new(k, FilePath::root()), url);
    }

    #[test]
    fn refuses_loose_forms() {
        let k = key(1);
        check(&format!("hyper://{k}"), Err("expected / after the key"));
        check(&format!("HYPER://{k}/"), Err("must start with hyper://"));
        check(&format!("dat://{k}/"), Err("must start with hyper://"));
        check(&k.to_string(), Err("must start with hyper://"));
        check(&format!("hyper://{k}:80/"), Err("ports are not allowed"));
        check(
            &format!("hyper://user@{k}/"),
            Err("expected 64 hex characters"),
        );
        check(&format!("hyper://{k}/a?b=1"), Err("queries and fragments"));
        check(&format!("hyper://{k}/#top"), Err("queries and fragments"));
        check(
            &format!("hyper://{k}0/"),
            Err("expected exactly 64 hex characters, then /"),
        );
        check(
            &format!("hyper://{}/", &k.to_string()[..63]),
            Err("expected 64 hex characters"),
        );
        check(&format!("hyper://{k}//"), Err("empty segment"));
        check(&format!("hyper://{k}/a/../b"), Err("`..` segments"));
        check(&format!("hyper://{k}/a\u{202e}b"), Err("U+202E"));
        check(&format!("hyper://{WEAK}/"), Err("weak (small-order)"));
        check(
            &format!("hyper://{k}/{}", "a/".repeat(300)),
            Err("the limit is 512"),
        );
        check("hyper://", Err("expected 64 hex characters"));
        check(
            "hyper://ééééééééééééééééééééééééééééééééé/",
            Err("expected 64 hex characters"),
        );
    }

    #[test]
    fn lenient_parse_takes_bare_keys() {
        let k = key(2);
        let root = format!("hyper://{k}/");
        check_lenient(&k.to_string(), Ok(&root));
        check_lenient(&format!("  {}\n", k.to_string().to_uppercase()), Ok(&root));
        check_lenient(&format!("hyper://{k}"), Ok(&root));
        check_lenient(
            &format!("hyper://{k}/x.json"),
            Ok(&format!("hyper://{k}/x.json")),
        );
        check_lenient(WEAK, Err("weak (small-order)"));
        check_lenient("alice", Err("must start with hyper://"));
    }

    #[test]
    fn status_urls() {
        let k = key(3);
        let id = StatusId::from_parts(1_700_000_000_000_000, 1).unwrap();
        let url = ArchiveUrl::status(k, id);
        assert_eq!(url.to_string(), format!("hyper://{k}/statuses/{id}.json"));
        assert_eq!(url.status_id(), Some(id));
        assert_eq!(ArchiveUrl::root(k).status_id(), None);
    }

    fn arb_key() -> impl Strategy<Value = ArchiveKey> {
        any::<[u8; 32]>().prop_map(|seed| {
            ArchiveKey::from_bytes(SigningKey::from_bytes(&seed).verifying_key().to_bytes())
                .unwrap()
        })
    }

    fn arb_path() -> impl Strategy<Value = FilePath> {
        prop::collection::vec("[a-zA-Z0-9._~ é日-]{1,20}", 0..5)
            .prop_filter_map("dot segment", |segments| {
                format!("/{}", segments.join("/")).parse().ok()
            })
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(key in arb_key(), path in arb_path(), upper in any::<bool>()) {
            let url = ArchiveUrl::new(key, path);
            let text = url.to_string();
            prop_assert_eq!(text.parse::<ArchiveUrl>().unwrap(), url.clone());
            prop_assert_eq!(ArchiveUrl::parse_lenient(&text).unwrap(), url.clone());
            if upper {
                let shouting = format!("hyper://{}{}", key.to_string().to_uppercase(), &text[72..]);
                prop_assert_eq!(shouting.parse::<ArchiveUrl>().unwrap().to_string(), text);
            }
        }

        #[test]
        fn parse_never_panics(s in "hyper://[0-9a-fA-F]{0,70}\\PC{0,40}") {
            let _ = s.parse::<ArchiveUrl>();
            let _ = ArchiveUrl::parse_lenient(&s);
        }
    }
}
