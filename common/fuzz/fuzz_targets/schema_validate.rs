//! `validate_file` for every kind of path on an untrusted JSON value, and the status-text
//! scanners `extract_tags` / `extract_mentions` / `resolve_mentions` on the raw text.
//! Checks: no panic; an accepted file can be written back at the same path and reads back as the
//! same file; mention spans point at `@name` in the text; tags and mentions found in a valid
//! status text make a valid status (the app's compose path).
#![no_main]

use fritter_common::model::limits::{MAX_MENTION_SPANS, MAX_TAGS};
use fritter_common::model::{
    extract_mentions, extract_tags, resolve_mentions, validate_file, ArchiveUrl, File, FilePath,
    Like, ServiceUrl, Status, StatusId, Timestamp,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const FIXED_PATHS: [&str; 6] = [
    "/profile.json",
    "/follows.json",
    "/statuses/3kq2nzxh4vk22.json",
    "/likes/0123456789abcdef0123456789abcdef.json",
    "/proofs/example.com.json",
    "/hosting/x.json",
];
const FRIEND: &str = "hyper://8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c/";

fn check_text(text: &str) {
    let tags = extract_tags(text);
    assert!(tags.len() <= MAX_TAGS, "{} tags", tags.len());
    for (i, tag) in tags.iter().enumerate() {
        assert!(!tag.is_empty() && !tag.contains('#'), "bad tag {tag:?}");
        assert!(!tags[..i].contains(tag), "duplicate tag {tag:?}");
    }
    let spans = extract_mentions(text);
    assert!(
        spans.len() <= MAX_MENTION_SPANS,
        "{} mention spans",
        spans.len()
    );
    let mut end = 0;
    for span in &spans {
        assert!(
            span.range.start >= end,
            "mention spans overlap or go backwards: {spans:?}"
        );
        end = span.range.end;
        let written = text.get(span.range.clone());
        assert_eq!(
            written,
            Some(format!("@{}", span.name).as_str()),
            "span {span:?} is not its @name in the text"
        );
    }

    // Compose a status the way the app does; if the bare text is a valid status, the tags and
    // mentions the scanners found must not make it invalid.
    let Ok(created_at) = "2024-05-01T12:00:00.000Z".parse::<Timestamp>() else {
        return;
    };
    let Ok(id) = "3kq2nzxh4vk22".parse::<StatusId>() else {
        return;
    };
    let bare = File::Status {
        id,
        status: Status::new(text, created_at),
    };
    if bare.to_entry().is_err() {
        return;
    }
    let friend: ArchiveUrl = FRIEND.parse().expect("friend url");
    let candidates: Vec<(String, ArchiveUrl)> = spans
        .iter()
        .take(1)
        .map(|s| (s.name.clone(), friend.clone()))
        .collect();
    let mut status = Status::new(text, created_at);
    status.tags = tags;
    status.mentions = resolve_mentions(text, &candidates);
    let file = File::Status { id, status };
    let path = id.path();
    match file.to_entry() {
        Ok(_) => fritter_fuzz::check_file_round_trip(&path, &file, "composed status"),
        Err(e) => {
            panic!("a valid status text with its own tags and mentions is refused: {e}\n{file:?}")
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_text(&text);

    let Ok(value) = serde_json::from_str::<Value>(&text) else {
        return;
    };
    let mut paths: Vec<FilePath> = FIXED_PATHS
        .iter()
        .map(|p| p.parse().expect("fixed path"))
        .collect();
    // Likes and proofs are named after their content: also try the path the value implies.
    if let Some(subject) = value
        .get("subject")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<ArchiveUrl>().ok())
    {
        paths.push(Like::path_for(&subject));
    }
    if let Some(service) = value
        .get("service")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<ServiceUrl>().ok())
    {
        if let Ok(path) = format!("/proofs/{}.json", service.host()).parse() {
            paths.push(path);
        }
    }
    for path in &paths {
        if let Ok(file) = validate_file(path, &value) {
            fritter_fuzz::check_file_round_trip(path, &file, "schema_validate");
        }
    }
});
