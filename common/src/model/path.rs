//! File paths inside an archive, checked once at the edge so that no later code has to worry
//! about `..`, hidden control characters or unbounded lengths in a path a peer sent.

use std::fmt;
use std::str::FromStr;

use super::error::{code_point, shown, ModelError};
use super::limits::{MAX_PATH_BYTES, MAX_PATH_SEGMENTS, MAX_SEGMENT_BYTES};
use super::text::is_unsafe_char;

/// An absolute path in an archive, such as `/statuses/3kq2nzxh4vk22.json`, or the root `/`.
///
/// A valid path starts with `/`, has at most 16 non-empty segments of at most 128 bytes each and
/// 256 bytes in all, no `.` or `..` segment, no trailing `/` (except the root itself), no segment
/// starting or ending with whitespace (which would look like another path), and none of
/// these characters: control characters, U+2028/U+2029, bidi controls (U+061C, U+200E, U+200F,
/// U+202A–U+202E, U+2066–U+2069), `\`, `?` and `#`. The last two are refused so that every path
/// can be written verbatim after the key of a `hyper://` URL. Paths are not percent-decoded.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FilePath(String);

impl FilePath {
    /// The root `/`, which names the archive itself (for listings), never a file.
    pub fn root() -> FilePath {
        FilePath("/".to_owned())
    }

    /// A path built by this module from parts that are valid by construction.
    pub(crate) fn from_trusted(path: String) -> FilePath {
        debug_assert!(
            FilePath::from_str(&path).is_ok(),
            "{path} is not a valid path"
        );
        FilePath(path)
    }

    /// The path as written, such as `/profile.json`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the root `/`.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The segments between the slashes; none for the root.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|segment| !segment.is_empty())
    }

    /// The last segment, such as `profile.json`; `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        if self.is_root() {
            return None;
        }
        self.0.rsplit('/').next()
    }

    /// The directory holding this path (`/statuses` for `/statuses/x.json`, `/` for
    /// `/profile.json`); `None` for the root.
    pub fn parent(&self) -> Option<FilePath> {
        if self.is_root() {
            return None;
        }
        match self.0.rfind('/') {
            Some(0) | None => Some(FilePath::root()),
            Some(end) => Some(FilePath(self.0[..end].to_owned())),
        }
    }

    /// This path with one more segment, checked like any other path.
    pub fn join(&self, name: &str) -> Result<FilePath, ModelError> {
        let joined = if self.is_root() {
            format!("/{name}")
        } else {
            format!("{}/{name}", self.0)
        };
        joined.parse()
    }

    /// Whether `other` lies strictly inside this path taken as a directory, segment by segment:
    /// `/statuses` is a directory prefix of `/statuses/x.json` but not of `/statuses2/x.json`,
    /// nor of itself. The root is a directory prefix of every other path.
    pub fn is_dir_prefix(&self, other: &FilePath) -> bool {
        if self.is_root() {
            return !other.is_root();
        }
        other
            .0
            .strip_prefix(self.0.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }

    /// Whether this path is `dir` or lies inside it, segment by segment (like
    /// [`std::path::Path::starts_with`]).
    pub fn starts_with(&self, dir: &FilePath) -> bool {
        self == dir || dir.is_dir_prefix(self)
    }
}

impl FromStr for FilePath {
    type Err = ModelError;

    fn from_str(path: &str) -> Result<FilePath, ModelError> {
        let refuse = |reason: String| ModelError::InvalidPath {
            value: shown(path),
            reason,
        };
        // The length comes first so that a megabyte of junk is refused without being scanned.
        if path.len() > MAX_PATH_BYTES {
            return Err(refuse(format!(
                "it is {} bytes; the limit is {MAX_PATH_BYTES}",
                path.len()
            )));
        }
        let Some(rest) = path.strip_prefix('/') else {
            return Err(refuse("it must start with /".to_owned()));
        };
        if rest.is_empty() {
            return Ok(FilePath::root());
        }
        for (index, segment) in rest.split('/').enumerate() {
            if index == MAX_PATH_SEGMENTS {
                return Err(refuse(format!(
                    "it has more than {MAX_PATH_SEGMENTS} segments"
                )));
            }
            if segment.is_empty() {
                return Err(refuse(
                    "it has an empty segment (a doubled or trailing /)".to_owned(),
                ));
            }
            if segment == "." || segment == ".." {
                return Err(refuse("`.` and `..` segments are not allowed".to_owned()));
            }
            if segment.len() > MAX_SEGMENT_BYTES {
                return Err(refuse(format!(
                    "a segment is {} bytes; the limit is {MAX_SEGMENT_BYTES}",
                    segment.len()
                )));
            }
            if let Some(c) = segment.chars().find(|&c| matches!(c, '\\' | '?' | '#')) {
                return Err(refuse(format!(
                    "it contains `{c}`, which paths may not hold"
                )));
            }
            if let Some(c) = segment.chars().find(|&c| is_unsafe_char(c)) {
                return Err(refuse(format!(
                    "it contains {}; control, line separator and bidi characters are not allowed",
                    code_point(c)
                )));
            }
            if segment.starts_with(char::is_whitespace) || segment.ends_with(char::is_whitespace) {
                return Err(refuse(
                    "a segment starts or ends with whitespace".to_owned(),
                ));
            }
        }
        Ok(FilePath(path.to_owned()))
    }
}

impl fmt::Display for FilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for FilePath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl fmt::Debug for FilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FilePath({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input`; `expected` is the canonical path, or `Err(fragment)` with a fragment of
    /// the error message.
    fn check(input: &str, expected: Result<&str, &str>) {
        match (input.parse::<FilePath>(), expected) {
            (Ok(path), Ok(want)) => assert_eq!(path.as_str(), want),
            (Err(err), Err(fragment)) => {
                let message = err.to_string();
                assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
            }
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    fn path(s: &str) -> FilePath {
        s.parse().unwrap()
    }

    #[test]
    fn accepts_ordinary_paths() {
        check("/", Ok("/"));
        check("/profile.json", Ok("/profile.json"));
        check(
            "/statuses/3kq2nzxh4vk22.json",
            Ok("/statuses/3kq2nzxh4vk22.json"),
        );
        check("/...", Ok("/..."));
        check("/café/日本語.json", Ok("/café/日本語.json"));
        check("/a b/c", Ok("/a b/c"));
        check("/a /c", Err("starts or ends with whitespace"));
        check("/\u{a0}a", Err("starts or ends with whitespace"));
        check("/x.json ", Err("starts or ends with whitespace"));
    }

    #[test]
    fn refuses_relative_and_empty() {
        check("", Err("must start with /"));
        check("profile.json", Err("must start with /"));
        check("//", Err("empty segment"));
        check("/a//b", Err("empty segment"));
        check("/statuses/", Err("empty segment"));
    }

    #[test]
    fn refuses_dot_segments() {
        check("/.", Err("`..` segments"));
        check("/..", Err("`..` segments"));
        check("/a/../b", Err("`..` segments"));
        check("/a/./b", Err("`..` segments"));
    }

    #[test]
    fn refuses_hostile_characters() {
        check("/a\0b", Err("U+0000"));
        check("/a\nb", Err("U+000A"));
        check("/a\u{7f}", Err("U+007F"));
        check("/a\u{85}", Err("U+0085"));
        check("/a\u{2028}", Err("U+2028"));
        check("/a\u{2029}", Err("U+2029"));
        check("/txt.\u{202e}nosj", Err("U+202E"));
        check("/a\u{202a}", Err("U+202A"));
        check("/a\u{2066}", Err("U+2066"));
        check("/a\u{2069}", Err("U+2069"));
        check("/a\\..\\b", Err("`\\`"));
        check("/a?b", Err("`?`"));
        check("/a#b", Err("`#`"));
    }

    #[test]
    fn refuses_long_paths() {
        check(
            &format!("/{}", "a".repeat(128)),
            Ok(&format!("/{}", "a".repeat(128))),
        );
        check(
            &format!("/{}", "a".repeat(129)),
            Err("a segment is 129 bytes; the limit is 128"),
        );
        check(&"/a".repeat(16), Ok(&"/a".repeat(16)));
        check(&"/a".repeat(17), Err("more than 16 segments"));
        check(&format!("/{}", "a/".repeat(200)), Err("the limit is 256"));
        check(
            &"/".repeat(1_000_000),
            Err("it is 1000000 bytes; the limit is 256"),
        );
    }

    #[test]
    fn error_quotes_the_path_safely() {
        let err = "/x\u{1b}[31m".parse::<FilePath>().unwrap_err().to_string();
        assert!(!err.contains('\u{1b}'), "{err:?}");
    }

    #[test]
    fn helpers() {
        assert_eq!(path("/statuses/x.json").file_name(), Some("x.json"));
        assert_eq!(path("/").file_name(), None);
        assert_eq!(path("/statuses/x.json").parent(), Some(path("/statuses")));
        assert_eq!(path("/profile.json").parent(), Some(FilePath::root()));
        assert_eq!(FilePath::root().parent(), None);
        assert_eq!(path("/a/b").segments().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(FilePath::root().segments().count(), 0);
        assert_eq!(FilePath::root().join("x.json").unwrap(), path("/x.json"));
        assert_eq!(
            path("/likes").join("x.json").unwrap(),
            path("/likes/x.json")
        );
        assert!(path("/likes").join("..").is_err());
        assert!(path("/likes").join("a/b").is_ok());
    }

    #[test]
    fn directory_prefixes_work_segment_by_segment() {
        let statuses = path("/statuses");
        assert!(statuses.is_dir_prefix(&path("/statuses/x.json")));
        assert!(!statuses.is_dir_prefix(&path("/statuses2/x.json")));
        assert!(!statuses.is_dir_prefix(&statuses));
        assert!(FilePath::root().is_dir_prefix(&statuses));
        assert!(!FilePath::root().is_dir_prefix(&FilePath::root()));
        assert!(path("/statuses/x.json").starts_with(&statuses));
        assert!(statuses.starts_with(&statuses));
        assert!(!path("/statuses2/x.json").starts_with(&statuses));
        assert!(statuses.starts_with(&FilePath::root()));
    }
}
