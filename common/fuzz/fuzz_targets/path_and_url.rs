//! `FilePath`, `ArchiveUrl` (strict `FromStr` and `parse_lenient`) and `StatusId` parsing of an
//! untrusted string. Checks: no panic; whatever parses displays as a string that parses back to
//! the same value; paths are kept verbatim and split/join consistently; ids are canonical.
#![no_main]

use fritter_common::model::limits::{MAX_PATH_BYTES, MAX_PATH_SEGMENTS};
use fritter_common::model::{ArchiveUrl, FilePath, StatusId};
use libfuzzer_sys::fuzz_target;

fn check_url(url: &ArchiveUrl, what: &str) {
    let text = url.to_string();
    let strict: ArchiveUrl = text
        .parse()
        .unwrap_or_else(|e| panic!("{what}: {text:?} does not parse back: {e}"));
    assert_eq!(&strict, url, "{what}: display/parse round trip");
    let lenient = ArchiveUrl::parse_lenient(&text)
        .unwrap_or_else(|e| panic!("{what}: {text:?} lenient: {e}"));
    assert_eq!(&lenient, url, "{what}: display/parse_lenient round trip");
    let path = url.path().cloned().unwrap_or_else(FilePath::root);
    assert_eq!(
        &ArchiveUrl::new(url.key(), path),
        url,
        "{what}: new(key, path)"
    );
    if let Some(id) = url.status_id() {
        assert_eq!(
            &ArchiveUrl::status(url.key(), id),
            url,
            "{what}: status url"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();

    if let Ok(path) = s.parse::<FilePath>() {
        assert_eq!(path.as_str(), s, "paths are kept verbatim");
        assert_eq!(path.to_string().parse::<FilePath>().as_ref(), Ok(&path));
        assert!(path.as_str().len() <= MAX_PATH_BYTES);
        assert!(path.segments().count() <= MAX_PATH_SEGMENTS);
        if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
            assert_eq!(parent.join(name).as_ref(), Ok(&path), "parent/join");
            assert!(parent.is_dir_prefix(&path) && path.starts_with(&parent));
        } else {
            assert!(path.is_root());
        }
    }

    if let Ok(url) = s.parse::<ArchiveUrl>() {
        assert!(
            url.to_string().eq_ignore_ascii_case(s),
            "strict urls display as written, up to hex case"
        );
        check_url(&url, "strict");
    }
    if let Ok(url) = ArchiveUrl::parse_lenient(s) {
        check_url(&url, "lenient");
    }

    if let Ok(id) = s.parse::<StatusId>() {
        assert_eq!(id.to_string(), s, "ids are canonical");
        assert_eq!(
            StatusId::from_parts(id.timestamp_micros(), id.clock()).ok(),
            Some(id)
        );
        assert_eq!(id.path().as_str(), format!("/statuses/{s}.json"));
    }
});
