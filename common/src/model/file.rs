//! The archive layout: which paths may hold which files, and the one function that turns an
//! untrusted `(path, JSON value)` pair into a checked, typed [`File`].
//!
//! Two choices keep hostile archives small and dull:
//! - **Unknown paths are refused.** Only the six locations below exist; anything else (another
//!   top-level file, a nested folder, a non-`.json` name, a status whose file name is not a
//!   [`StatusId`]) is an error, so an archive cannot carry files nobody checks.
//! - **Unknown fields are ignored and dropped.** A newer client may add fields; they are not
//!   refused, but they are not kept either: the typed [`File`] is what gets stored and served
//!   again, never the raw bytes. Their cost is bounded by the entry limits (64 KiB, depth 32),
//!   which are checked before any parsing.

use serde_json::{Map, Value};

use super::entry::Entry;
use super::error::{shown, ModelError};
use super::follows::Follows;
use super::hosting::{check_hosting_name, HostingRequest};
use super::id::StatusId;
use super::like::Like;
use super::path::FilePath;
use super::profile::Profile;
use super::proof::{canonical_host, OwnershipProof};
use super::status::Status;

/// A checked file of the archive layout.
///
/// | path | variant |
/// |---|---|
/// | `/profile.json` | [`File::Profile`] |
/// | `/follows.json` | [`File::Follows`] |
/// | `/statuses/<id>.json` | [`File::Status`], `<id>` a [`StatusId`] |
/// | `/likes/<slug>.json` | [`File::Like`], `<slug>` from [`Like::slug`] |
/// | `/proofs/<host>.json` | [`File::Proof`], `<host>` from [`ServiceUrl::host`](super::ServiceUrl::host) |
/// | `/hosting/<name>.json` | [`File::Hosting`], `<name>` 1 to 64 of `a-z 0-9 _ -` |
// A status is a few hundred bytes; files are handled one at a time, so boxing it would only make
// matching clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum File {
    /// `/profile.json`.
    Profile(Profile),
    /// `/follows.json`.
    Follows(Follows),
    /// `/statuses/<id>.json`.
    Status {
        /// The id in the file name.
        id: StatusId,
        status: Status,
    },
    /// `/likes/<slug>.json`, the slug derived from the like's subject.
    Like(Like),
    /// `/proofs/<host>.json`, the host that of the proof's service.
    Proof(OwnershipProof),
    /// `/hosting/<name>.json`.
    Hosting {
        /// The name in the file name.
        name: String,
        request: HostingRequest,
    },
}

impl File {
    /// Where the file lives; fails only for a [`File::Hosting`] with an invalid name.
    pub fn path(&self) -> Result<FilePath, ModelError> {
        Ok(match self {
            File::Profile(_) => Profile::path(),
            File::Follows(_) => Follows::path(),
            File::Status { id, .. } => id.path(),
            File::Like(like) => like.path(),
            File::Proof(proof) => proof.path(),
            File::Hosting { name, .. } => HostingRequest::path(name)?,
        })
    }

    /// The file's JSON object, as written to the archive. It is not checked: see
    /// [`File::to_entry`].
    pub fn to_value(&self) -> Value {
        Value::Object(self.to_object())
    }

    /// The `put` entry that writes this file, after the checks a reader makes
    /// ([`validate_file`]), so a writer never publishes what readers would refuse. The entry holds
    /// the normalized file (trimmed name, lowercase tags, canonical URLs and times).
    pub fn to_entry(&self) -> Result<Entry, ModelError> {
        let path = self.path()?;
        let file = validate_file(&path, &self.to_value())?;
        Ok(Entry::Put {
            path,
            value: file.to_object(),
        })
    }

    fn to_object(&self) -> Map<String, Value> {
        match self {
            File::Profile(profile) => profile.to_object(),
            File::Follows(follows) => follows.to_object(),
            File::Status { status, .. } => status.to_object(),
            File::Like(like) => like.to_object(),
            File::Proof(proof) => proof.to_object(),
            File::Hosting { request, .. } => request.to_object(),
        }
    }
}

/// Checks an untrusted file: its path must be one of the layout's locations and its value must
/// be a JSON object matching that location's schema.
///
/// Returns the typed, normalized file. Fields the schema does not know are ignored; see the
/// module documentation for why.
pub fn validate_file(path: &FilePath, value: &Value) -> Result<File, ModelError> {
    let location = locate(path)?;
    match value {
        Value::Object(map) => validate_located(path, location, map),
        other => Err(ModelError::WrongType {
            what: location.noun().to_owned(),
            expected: "an object",
            found: kind(other),
        }),
    }
}

/// [`validate_file`] for a value already known to be an object, as in an [`Entry::Put`].
pub(crate) fn validate_object(
    path: &FilePath,
    map: &Map<String, Value>,
) -> Result<File, ModelError> {
    validate_located(path, locate(path)?, map)
}

fn validate_located(
    path: &FilePath,
    location: Location,
    map: &Map<String, Value>,
) -> Result<File, ModelError> {
    let fields = Fields {
        what: location.noun().to_owned(),
        map,
    };
    let file = match location {
        Location::Profile => File::Profile(Profile::from_fields(&fields)?),
        Location::Follows => File::Follows(Follows::from_fields(&fields)?),
        Location::Status(id) => File::Status {
            id,
            status: Status::from_fields(&fields)?,
        },
        Location::Like => File::Like(Like::from_fields(&fields)?),
        Location::Proof => File::Proof(OwnershipProof::from_fields(&fields)?),
        Location::Hosting(name) => File::Hosting {
            name,
            request: HostingRequest::from_fields(&fields)?,
        },
    };
    // A like or proof names its own path from its content; one stored elsewhere could be a
    // second like of the same status, or a proof posing as another service's.
    let expected = file.path()?;
    if expected != *path {
        return Err(ModelError::WrongPath {
            path: shown(path.as_str()),
            expected: expected.to_string(),
        });
    }
    Ok(file)
}

/// A location of the archive layout, read from a path alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    Profile,
    Follows,
    Status(StatusId),
    Like,
    Proof,
    Hosting(String),
}

impl Location {
    /// The word error messages use for the file at this location.
    fn noun(&self) -> &'static str {
        match self {
            Location::Profile => "profile",
            Location::Follows => "follows",
            Location::Status(_) => "status",
            Location::Like => "like",
            Location::Proof => "proof",
            Location::Hosting(_) => "hosting request",
        }
    }
}

/// Finds the location of a path, refusing paths outside the layout.
pub(crate) fn locate(path: &FilePath) -> Result<Location, ModelError> {
    let unknown = || ModelError::UnknownFile {
        path: shown(path.as_str()),
    };
    let mut segments = path.segments();
    let (first, second) = match (segments.next(), segments.next(), segments.next()) {
        (Some(first), second, None) => (first, second),
        _ => return Err(unknown()),
    };
    let Some(name) = second else {
        return match first {
            "profile.json" => Ok(Location::Profile),
            "follows.json" => Ok(Location::Follows),
            _ => Err(unknown()),
        };
    };
    if !matches!(first, "statuses" | "likes" | "proofs" | "hosting") {
        return Err(unknown());
    }
    let stem = name.strip_suffix(".json").ok_or_else(unknown)?;
    let refuse = |reason: String| ModelError::InvalidPath {
        value: shown(path.as_str()),
        reason,
    };
    match first {
        "statuses" => stem
            .parse()
            .map(Location::Status)
            .map_err(|err: ModelError| refuse(err.to_string())),
        "likes" => {
            if stem.len() == 32 && stem.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                Ok(Location::Like)
            } else {
                Err(refuse(
                    "a like's name is 32 lowercase hex characters (see Like::slug)".to_owned(),
                ))
            }
        }
        "proofs" => match canonical_host(stem) {
            Ok(host) if host == stem => Ok(Location::Proof),
            Ok(host) => Err(refuse(format!("the service host is written {host}"))),
            Err(reason) => Err(refuse(format!(
                "{} is not a service host: {reason}",
                shown(stem)
            ))),
        },
        _ => match check_hosting_name(stem) {
            Ok(()) => Ok(Location::Hosting(stem.to_owned())),
            Err(reason) => Err(refuse(reason)),
        },
    }
}

/// Reads the fields of one untrusted JSON object, naming each in its errors (`status createdAt`).
/// A field that is `null` counts as absent.
pub(crate) struct Fields<'a> {
    what: String,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// The fields of `value`, which must be an object; `what` names it in errors.
    pub(crate) fn new(what: String, value: &'a Value) -> Result<Fields<'a>, ModelError> {
        match value {
            Value::Object(map) => Ok(Fields { what, map }),
            other => Err(ModelError::WrongType {
                what,
                expected: "an object",
                found: kind(other),
            }),
        }
    }

    /// How errors name a field of this object.
    pub(crate) fn name(&self, field: &str) -> String {
        format!("{} {field}", self.what)
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|value| !value.is_null())
    }

    /// A required string field.
    pub(crate) fn str(&self, field: &str) -> Result<&'a str, ModelError> {
        match self.get(field) {
            Some(value) => as_str(&self.name(field), value),
            None => Err(ModelError::Missing {
                what: self.name(field),
            }),
        }
    }

    /// An optional string field.
    pub(crate) fn opt_str(&self, field: &str) -> Result<Option<&'a str>, ModelError> {
        self.get(field)
            .map(|value| as_str(&self.name(field), value))
            .transpose()
    }

    /// A required string field parsed into `T`.
    pub(crate) fn parse<T: std::str::FromStr<Err = ModelError>>(
        &self,
        field: &str,
    ) -> Result<T, ModelError> {
        parse_str(&self.name(field), self.str(field)?)
    }

    /// An optional string field parsed into `T`.
    pub(crate) fn opt_parse<T: std::str::FromStr<Err = ModelError>>(
        &self,
        field: &str,
    ) -> Result<Option<T>, ModelError> {
        self.opt_str(field)?
            .map(|s| parse_str(&self.name(field), s))
            .transpose()
    }

    /// A required whole-number field, at most `max`.
    pub(crate) fn u64(&self, field: &str, max: u64) -> Result<u64, ModelError> {
        let what = self.name(field);
        match self.get(field) {
            None => Err(ModelError::Missing { what }),
            Some(Value::Number(number)) => match number.as_u64() {
                Some(n) if n <= max => Ok(n),
                _ => Err(ModelError::Invalid {
                    what,
                    value: shown(&number.to_string()),
                    reason: format!("expected a whole number from 0 to {max}"),
                }),
            },
            Some(other) => Err(ModelError::WrongType {
                what,
                expected: "a number",
                found: kind(other),
            }),
        }
    }

    /// A required string field of exactly `N` bytes written as `2 * N` hex characters.
    pub(crate) fn hex<const N: usize>(&self, field: &str) -> Result<[u8; N], ModelError> {
        let text = self.str(field)?;
        let mut bytes = [0u8; N];
        if text.len() != 2 * N || hex::decode_to_slice(text, &mut bytes).is_err() {
            return Err(ModelError::Invalid {
                what: self.name(field),
                value: shown(text),
                reason: format!("expected {} hex characters", 2 * N),
            });
        }
        Ok(bytes)
    }

    /// An optional object field.
    pub(crate) fn object(&self, field: &str) -> Result<Option<Fields<'a>>, ModelError> {
        self.get(field)
            .map(|value| Fields::new(self.name(field), value))
            .transpose()
    }

    /// An optional array field (absent reads as empty) of at most `limit` items, each with the
    /// name errors give it (`status mentions[3]`). The count is checked before any item is read.
    pub(crate) fn array(
        &self,
        field: &str,
        limit: usize,
    ) -> Result<Vec<(String, &'a Value)>, ModelError> {
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) if items.len() > limit => Err(ModelError::TooMany {
                what: self.name(field),
                count: items.len(),
                limit,
            }),
            Some(Value::Array(items)) => Ok(items
                .iter()
                .enumerate()
                .map(|(index, item)| (self.name(&format!("{field}[{index}]")), item))
                .collect()),
            Some(other) => Err(ModelError::WrongType {
                what: self.name(field),
                expected: "an array",
                found: kind(other),
            }),
        }
    }
}

/// A value that must be a string.
pub(crate) fn as_str<'a>(what: &str, value: &'a Value) -> Result<&'a str, ModelError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(ModelError::WrongType {
            what: what.to_owned(),
            expected: "a string",
            found: kind(other),
        }),
    }
}

/// A string parsed into `T`, its error naming the field.
pub(crate) fn parse_str<T: std::str::FromStr<Err = ModelError>>(
    what: &str,
    s: &str,
) -> Result<T, ModelError> {
    s.parse().map_err(|err| ModelError::Field {
        what: what.to_owned(),
        reason: Box::new(err),
    })
}

/// The JSON type of a value, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Builds a JSON object from `(field, value)` pairs, for the `to_object` of each file type.
pub(crate) fn object<const N: usize>(fields: [(&str, Option<Value>); N]) -> Map<String, Value> {
    fields
        .into_iter()
        .filter_map(|(field, value)| Some((field.to_owned(), value?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::key::tests::key;
    use crate::model::{ArchiveUrl, Like, ServiceUrl, Timestamp};

    fn path(s: &str) -> FilePath {
        s.parse().unwrap()
    }

    /// Validates `value` at `at`; `expected` is `Ok(())` or `Err(fragment of the message)`.
    fn check(at: &str, value: Value, expected: Result<(), &str>) {
        match (validate_file(&path(at), &value), expected) {
            (Ok(file), Ok(())) => {
                // Whatever a reader accepts, a writer reproduces.
                let entry = file.to_entry().unwrap();
                assert_eq!(entry.path().as_str(), at);
                assert_eq!(entry.validate().unwrap(), Some(file));
            }
            (Err(err), Err(fragment)) => {
                let message = err.to_string();
                assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
            }
            (got, want) => panic!("{at}: got {got:?}, want {want:?}"),
        }
    }

    fn url(seed: u8) -> String {
        ArchiveUrl::root(key(seed)).to_string()
    }

    #[test]
    fn locates_known_paths() {
        let id = StatusId::from_parts(1, 2).unwrap();
        let check = |at: &str, want: Location| assert_eq!(locate(&path(at)).unwrap(), want);
        check("/profile.json", Location::Profile);
        check("/follows.json", Location::Follows);
        check(&format!("/statuses/{id}.json"), Location::Status(id));
        check(&format!("/likes/{}.json", "0a".repeat(16)), Location::Like);
        check("/proofs/crawler.example.json", Location::Proof);
        check("/proofs/localhost:8080.json", Location::Proof);
        check(
            "/hosting/my-name_1.json",
            Location::Hosting("my-name_1".into()),
        );
    }

    #[test]
    fn refuses_unknown_paths() {
        let check = |at: &str, fragment: &str| {
            let message = locate(&path(at)).unwrap_err().to_string();
            assert!(
                message.contains(fragment),
                "{at}: {message:?} lacks {fragment:?}"
            );
        };
        check("/", "is not a fritter file");
        check("/index.html", "is not a fritter file");
        check("/profile.json/x", "is not a fritter file");
        check("/statuses", "is not a fritter file");
        check("/statuses/a/b.json", "is not a fritter file");
        check("/statuses/3kq2nzxh4vk22.txt", "is not a fritter file");
        check("/other/x.json", "is not a fritter file");
        check("/Profile.json", "is not a fritter file");
        check("/statuses/hello.json", "is not a valid status id");
        check("/likes/ABCDEF.json", "32 lowercase hex");
        check(
            &format!("/likes/{}.json", "A".repeat(32)),
            "32 lowercase hex",
        );
        check(
            "/proofs/Crawler.example.json",
            "the service host is written crawler.example",
        );
        check("/proofs/-bad-.json", "is not a service host");
        check(
            "/proofs/x.example:443.json",
            "the service host is written x.example",
        );
        check("/hosting/Bad Name.json", "hosting name");
        check("/hosting/.json", "hosting name");
    }

    #[test]
    fn refuses_non_objects() {
        check(
            "/profile.json",
            json!("alice"),
            Err("profile must be an object, not a string"),
        );
        check(
            "/follows.json",
            json!([]),
            Err("follows must be an object, not an array"),
        );
        check("/nope.json", json!({}), Err("is not a fritter file"));
    }

    #[test]
    fn profiles() {
        check(
            "/profile.json",
            json!({"name": "Alice", "bio": "hi", "avatar": "/avatar.png"}),
            Ok(()),
        );
        check("/profile.json", json!({"name": "Alice"}), Ok(()));
        check(
            "/profile.json",
            json!({"name": "Alice", "bio": null, "avatar": null}),
            Ok(()),
        );
        check("/profile.json", json!({}), Err("profile name is missing"));
        check(
            "/profile.json",
            json!({"name": 7}),
            Err("profile name must be a string, not a number"),
        );
        check(
            "/profile.json",
            json!({"name": "   "}),
            Err("profile name is empty"),
        );
        check(
            "/profile.json",
            json!({"name": "a".repeat(65)}),
            Err("profile name is 65 characters; the limit is 64"),
        );
        check(
            "/profile.json",
            json!({"name": "admin\u{202e}"}),
            Err("U+202E"),
        );
        check("/profile.json", json!({"name": "a\nb"}), Err("U+000A"));
        check(
            "/profile.json",
            json!({"name": "a", "bio": "b".repeat(513)}),
            Err("profile bio is 513 characters; the limit is 512"),
        );
        check(
            "/profile.json",
            json!({"name": "a", "bio": "\u{1b}[2J"}),
            Err("U+001B"),
        );
        check(
            "/profile.json",
            json!({"name": "a", "avatar": "/"}),
            Err("profile avatar"),
        );
        check(
            "/profile.json",
            json!({"name": "a", "avatar": "../x"}),
            Err("profile avatar: \"../x\" is not a valid file path"),
        );
    }

    #[test]
    fn profile_name_is_trimmed() {
        let file = validate_file(&path("/profile.json"), &json!({"name": "  Alice  "})).unwrap();
        assert_eq!(
            file.to_entry().unwrap().validate().unwrap(),
            Some(file.clone())
        );
        let File::Profile(profile) = file else {
            panic!("{file:?}")
        };
        assert_eq!(profile.name, "Alice");
    }

    #[test]
    fn unknown_fields_are_dropped() {
        let junk = json!({"name": "Alice", "extra": {"deep": [[[1]]]}, "more": "x"});
        let file = validate_file(&path("/profile.json"), &junk).unwrap();
        assert_eq!(file.to_value(), json!({"name": "Alice", "bio": ""}));
    }

    #[test]
    fn follows() {
        check("/follows.json", json!({"urls": [url(1), url(2)]}), Ok(()));
        check("/follows.json", json!({}), Ok(()));
        check(
            "/follows.json",
            json!({"urls": "x"}),
            Err("follows urls must be an array, not a string"),
        );
        check(
            "/follows.json",
            json!({"urls": [1]}),
            Err("follows urls[0] must be a string, not a number"),
        );
        check(
            "/follows.json",
            json!({"urls": ["alice"]}),
            Err("follows urls[0]: \"alice\" is not a valid archive url"),
        );
        check(
            "/follows.json",
            json!({"urls": [format!("{}profile.json", url(1))]}),
            Err("follows urls[0]"),
        );
        let upper = format!("hyper://{}/", key(1).to_string().to_uppercase());
        check(
            "/follows.json",
            json!({"urls": [url(1), upper]}),
            Err("more than once"),
        );
    }

    #[test]
    fn follows_caps_the_count_before_reading() {
        let urls: Vec<Value> = (0..10_001).map(|_| json!("not even a url")).collect();
        check(
            "/follows.json",
            json!({ "urls": urls }),
            Err("follows urls lists 10001 items; the limit is 10000"),
        );
    }

    fn status_url(seed: u8, micros: u64) -> String {
        ArchiveUrl::status(key(seed), StatusId::from_parts(micros, 0).unwrap()).to_string()
    }

    fn thread_ref(seed: u8) -> Value {
        json!({"url": status_url(seed, 1_700_000_000_000_000), "seq": 3, "hash": "ab".repeat(32)})
    }

    #[test]
    fn statuses() {
        let at = format!(
            "/statuses/{}.json",
            StatusId::from_parts(1_700_000_000_000_000, 5).unwrap()
        );
        let at = at.as_str();
        let created = "2024-05-01T12:00:00Z";
        check(
            at,
            json!({"text": "hello #world", "createdAt": created}),
            Ok(()),
        );
        check(
            at,
            json!({
                "text": "re", "createdAt": created,
                "threadRoot": thread_ref(1), "threadParent": thread_ref(1),
                "mentions": [{"url": url(2), "name": "bob"}],
                "tags": ["World", "日本語"], "lang": "en-GB",
            }),
            Ok(()),
        );
        check(
            at,
            json!({"createdAt": created}),
            Err("status text is missing"),
        );
        check(
            at,
            json!({"text": "", "createdAt": created}),
            Err("status text is empty"),
        );
        check(
            at,
            json!({"text": " \n ", "createdAt": created}),
            Err("status text is empty"),
        );
        check(
            at,
            json!({"text": "a".repeat(5123), "createdAt": created}),
            Err("status text is 5123 characters; the limit is 1000"),
        );
        check(
            at,
            json!({"text": "€".repeat(1000), "createdAt": created}),
            Ok(()),
        );
        // 1000 characters take at most 4000 bytes, so the byte limit only restates the character one.
        check(
            at,
            json!({"text": "😀".repeat(1000), "createdAt": created}),
            Ok(()),
        );
        check(at, json!({"text": "x"}), Err("status createdAt is missing"));
        check(
            at,
            json!({"text": "x", "createdAt": "yesterday"}),
            Err("status createdAt: \"yesterday\" is not a valid timestamp"),
        );
        check(
            at,
            json!({"text": "x", "createdAt": created, "threadRoot": thread_ref(1)}),
            Err("status threadParent"),
        );
        check(
            at,
            json!({"text": "x", "createdAt": created, "threadParent": thread_ref(1)}),
            Err("status threadRoot"),
        );
        let mut bad = thread_ref(1);
        bad["url"] = json!(url(1));
        check(
            at,
            json!({"text": "x", "createdAt": created, "threadRoot": bad.clone(), "threadParent": bad}),
            Err("status threadRoot url"),
        );
        let mut bad = thread_ref(1);
        bad["seq"] = json!(9_007_199_254_740_992u64);
        check(
            at,
            json!({"text": "x", "createdAt": created, "threadRoot": bad.clone(), "threadParent": bad}),
            Err("expected a whole number from 0 to 9007199254740991"),
        );
        let mut bad = thread_ref(1);
        bad["seq"] = json!(-1);
        check(
            at,
            json!({"text": "x", "createdAt": created, "threadRoot": bad.clone(), "threadParent": bad}),
            Err("status threadRoot seq"),
        );
        let mut bad = thread_ref(1);
        bad["hash"] = json!("abc");
        check(
            at,
            json!({"text": "x", "createdAt": created, "threadRoot": bad.clone(), "threadParent": bad}),
            Err("expected 64 hex characters"),
        );
        check(
            at,
            json!({"text": "x", "createdAt": created, "tags": ["a b"]}),
            Err("status tags[0]"),
        );
        check(
            at,
            json!({"text": "x", "createdAt": created, "tags": ["Rust", "rust"]}),
            Err("more than once"),
        );
        check(
            at,
            json!({"text": "x", "createdAt": created, "lang": "en_US"}),
            Err("status lang \"en_US\" is invalid"),
        );
        check(
            at,
            json!({"text": "x", "createdAt": created, "lang": "-en"}),
            Err("status lang"),
        );
        check(
            at,
            json!({"text": "x", "createdAt": created, "lang": "a".repeat(36)}),
            Err("status lang"),
        );
        check(
            at,
            json!({"text": "x", "createdAt": created, "mentions": [{"url": url(2)}]}),
            Err("status mentions[0] name is missing"),
        );
        check(
            at,
            json!({"text": "x", "createdAt": created, "mentions": [{"url": status_url(2, 5), "name": "b"}]}),
            Err("status mentions[0] url"),
        );
        let twice = json!([{"url": url(2), "name": "b"}, {"url": url(2), "name": "c"}]);
        check(
            at,
            json!({"text": "x", "createdAt": created, "mentions": twice}),
            Err("more than once"),
        );
    }

    #[test]
    fn hostile_statuses() {
        let at = format!("/statuses/{}.json", StatusId::from_parts(1, 0).unwrap());
        let created = "2024-05-01T12:00:00Z";
        let mentions: Vec<Value> = (0..10_000)
            .map(|_| json!({"url": url(2), "name": "b"}))
            .collect();
        check(
            &at,
            json!({"text": "x", "createdAt": created, "mentions": mentions}),
            Err("status mentions lists 10000 items; the limit is 50"),
        );
        let megabyte = "a".repeat(1 << 20);
        check(
            &at,
            json!({"text": megabyte, "createdAt": created}),
            Err("status text is 1048576 characters; the limit is 1000"),
        );
        check(
            &at,
            json!({"text": "a\u{0}b", "createdAt": created}),
            Err("U+0000"),
        );
        check(
            &at,
            json!({"text": "x", "createdAt": created, "threadRoot": 1e300, "threadParent": 1}),
            Err("must be an object"),
        );
        let tags: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        check(
            &at,
            json!({"text": "x", "createdAt": created, "tags": tags}),
            Err("lists 21 items; the limit is 20"),
        );
    }

    #[test]
    fn likes() {
        let subject: ArchiveUrl = status_url(3, 42).parse().unwrap();
        let at = Like::path_for(&subject);
        check(
            at.as_str(),
            json!({"subject": subject.to_string(), "createdAt": "2024-05-01T12:00:00Z"}),
            Ok(()),
        );
        let elsewhere = format!("/likes/{}.json", "0".repeat(32));
        check(
            &elsewhere,
            json!({"subject": subject.to_string(), "createdAt": "2024-05-01T12:00:00Z"}),
            Err(&format!("it belongs at {at}")),
        );
        check(
            at.as_str(),
            json!({"subject": url(3), "createdAt": "2024-05-01T12:00:00Z"}),
            Err("like subject"),
        );
    }

    #[test]
    fn proofs() {
        let value = |service: &str| json!({"service": service, "nonce": "0f".repeat(16), "createdAt": "2024-05-01T12:00:00Z"});
        check(
            "/proofs/crawler.example.json",
            value("https://crawler.example/verify"),
            Ok(()),
        );
        check(
            "/proofs/localhost:8080.json",
            value("https://localhost:8080"),
            Ok(()),
        );
        check(
            "/proofs/crawler.example.json",
            value("https://CRAWLER.example:443/"),
            Ok(()),
        );
        check(
            "/proofs/other.example.json",
            value("https://crawler.example/"),
            Err("it belongs at /proofs/crawler.example.json"),
        );
        check(
            "/proofs/crawler.example.json",
            value("http://crawler.example/"),
            Err("must start with https://"),
        );
        let mut short = value("https://crawler.example/");
        short["nonce"] = json!("0f");
        check(
            "/proofs/crawler.example.json",
            short,
            Err("proof nonce \"0f\" is invalid: expected 32 hex characters"),
        );
        let proof = validate_file(
            &path("/proofs/crawler.example.json"),
            &value("https://crawler.example"),
        )
        .unwrap();
        let File::Proof(proof) = proof else { panic!() };
        assert_eq!(
            proof.service,
            "https://crawler.example/".parse::<ServiceUrl>().unwrap()
        );
    }

    #[test]
    fn hosting_requests() {
        check("/hosting/alice.json", json!({"url": url(4)}), Ok(()));
        check(
            "/hosting/alice.json",
            json!({"url": format!("{}x.json", url(4))}),
            Err("hosting request url"),
        );
        check(
            "/hosting/alice.json",
            json!({}),
            Err("hosting request url is missing"),
        );
        let request = File::Hosting {
            name: "Bad".into(),
            request: HostingRequest {
                url: ArchiveUrl::root(key(4)),
            },
        };
        assert!(request
            .to_entry()
            .unwrap_err()
            .to_string()
            .contains("hosting name"));
    }

    #[test]
    fn to_entry_refuses_invalid_files() {
        let status = Status::new("", Timestamp::now());
        let file = File::Status {
            id: StatusId::now(),
            status,
        };
        assert_eq!(
            file.to_entry().unwrap_err(),
            ModelError::Empty {
                what: "status text".into()
            }
        );
    }
}
