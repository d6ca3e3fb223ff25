//! What a command prints: text for a person, or with `--json` one JSON value for a program.
//! Every command returns a report that can be shown both ways, so the two never drift apart.

use std::fmt;
use std::io::{self, Write};

use serde::Serialize;

/// The result of a command: its JSON shape (`Serialize`) and its text (`Display`).
pub trait Report: Serialize + fmt::Display {
    /// Remarks for a person, shown on stderr in text mode (in JSON they are fields of the value).
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Where reports go.
pub struct Output<'a> {
    json: bool,
    stdout: &'a mut dyn Write,
    stderr: &'a mut dyn Write,
}

impl<'a> std::fmt::Debug for Output<'a> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("json", &self.json)
            .finish_non_exhaustive()
    }
}

impl<'a> Output<'a> {
    /// Writes reports as JSON when `json`, else as text, to the given streams.
    pub fn new(json: bool, stdout: &'a mut dyn Write, stderr: &'a mut dyn Write) -> Output<'a> {
        Output {
            json,
            stdout,
            stderr,
        }
    }

    /// A progress line for a person, on stderr (in text and JSON modes alike).
    pub fn note(&mut self, line: &str) -> io::Result<()> {
        writeln!(self.stderr, "{line}")?;
        self.stderr.flush()
    }

    /// Prints one report: one line of JSON, or its text and then its warnings.
    pub fn emit<R: Report>(&mut self, report: &R) -> io::Result<()> {
        if self.json {
            serde_json::to_writer(&mut *self.stdout, report)?;
            writeln!(self.stdout)?;
        } else {
            let text = report.to_string();
            if !text.is_empty() {
                writeln!(self.stdout, "{}", text.trim_end_matches('\n'))?;
            }
            for warning in report.warnings() {
                writeln!(self.stderr, "warning: {warning}")?;
            }
        }
        self.stdout.flush()
    }
}

/// Serializes a value as its `Display` form, as JSON shows URLs.
pub fn as_string<T: fmt::Display, S: serde::Serializer>(
    value: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// A hash as people see it in text output: all 64 hex characters, since it is what a reply pins
/// and what a crawler's answer can be checked against.
pub fn hex(hash: &[u8; 32]) -> String {
    hex::encode(hash)
}

#[cfg(test)]
mod tests {
    //! Snapshots of every report, in JSON and as text, from fixed values.

    use std::path::PathBuf;

    use expect_test::{expect, Expect};
    use fritter_common::archive::{EntryRef, HistoryItem};
    use fritter_common::crypto::KeyPair;
    use fritter_common::model::{ArchiveKey, ArchiveUrl, FilePath};
    use serde_json::json;

    use super::*;
    use crate::backup::{Exported, Imported};
    use crate::files::{Listed, Listing, Logged, Shown};
    use crate::follows::Followed;
    use crate::identity::{Created, OwnUrl, ProfileShown};
    use crate::publish::{Deleted, Liked, Posted, Unliked};

    fn key(n: u8) -> ArchiveKey {
        KeyPair::from_seed(&[n; 32]).public().into()
    }

    fn url(n: u8, path: &str) -> ArchiveUrl {
        format!("hyper://{}{path}", key(n)).parse().unwrap()
    }

    fn entry(seq: u64) -> EntryRef {
        EntryRef {
            seq,
            hash: [0xab; 32],
        }
    }

    /// Shortens the keys and hashes of the fixtures so snapshots stay readable.
    fn short(text: &str) -> String {
        let mut text = text.replace(&"ab".repeat(32), "<hash>");
        for n in 1..4 {
            text = text.replace(&key(n).to_string(), &format!("<key{n}>"));
        }
        text
    }

    fn check<R: Report>(report: R, json: Expect, human: Expect) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        Output::new(true, &mut out, &mut err).emit(&report).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(line.lines().count(), 1, "one line of JSON");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        json.assert_eq(&short(&serde_json::to_string_pretty(&value).unwrap()));
        assert!(err.is_empty(), "JSON mode keeps stderr quiet");

        let (mut out, mut err) = (Vec::new(), Vec::new());
        Output::new(false, &mut out, &mut err)
            .emit(&report)
            .unwrap();
        let text = String::from_utf8(out).unwrap() + &String::from_utf8(err).unwrap();
        human.assert_eq(&short(&text));
    }

    #[test]
    fn init() {
        check(
            Created {
                url: url(1, "/"),
                data_dir: PathBuf::from("/data"),
                profile: json!({"name": "Ada", "bio": ""}),
                entry: entry(0),
            },
            expect![[r#"
                {
                  "dataDir": "/data",
                  "hash": "<hash>",
                  "profile": {
                    "bio": "",
                    "name": "Ada"
                  },
                  "seq": 0,
                  "url": "hyper://<key1>/"
                }"#]],
            expect![[r#"
                Created your archive: hyper://<key1>/
                Your identity and archive are kept in /data.

                Next:
                  fritter post "Hello #fritter"       publish a status
                  fritter follow hyper://<key>/       follow someone; @names resolve against who you follow
                  fritter url                         print your address, to share it
            "#]],
        );
    }

    #[test]
    fn url_and_profile() {
        check(
            OwnUrl { url: url(1, "/") },
            expect![[r#"
                {
                  "url": "hyper://<key1>/"
                }"#]],
            expect![[r#"
                hyper://<key1>/
            "#]],
        );
        check(
            ProfileShown {
                url: url(1, "/profile.json"),
                profile: json!({"name": "Ada", "bio": "math"}),
                entry: entry(3),
                updated: true,
            },
            expect![[r#"
                {
                  "hash": "<hash>",
                  "profile": {
                    "bio": "math",
                    "name": "Ada"
                  },
                  "seq": 3,
                  "updated": true,
                  "url": "hyper://<key1>/profile.json"
                }"#]],
            expect![[r#"
                Updated your profile (entry 3, hash <hash>)
                Name: Ada
                Bio:  math
            "#]],
        );
    }

    #[test]
    fn post_with_an_unresolved_mention() {
        check(
            Posted {
                url: url(1, "/statuses/3kq2nzxh4vk22.json"),
                path: "/statuses/3kq2nzxh4vk22.json".parse().unwrap(),
                entry: entry(4),
                status: json!({"text": "hi @bob @eve #x", "createdAt": "2024-05-01T12:00:00.000Z",
                    "tags": ["x"], "mentions": [{"url": url(2, "/").to_string(), "name": "bob"}]}),
                unresolved: vec!["eve".to_owned()],
                not_held: 1,
            },
            expect![[r#"
                {
                  "hash": "<hash>",
                  "path": "/statuses/3kq2nzxh4vk22.json",
                  "seq": 4,
                  "status": {
                    "createdAt": "2024-05-01T12:00:00.000Z",
                    "mentions": [
                      {
                        "name": "bob",
                        "url": "hyper://<key2>/"
                      }
                    ],
                    "tags": [
                      "x"
                    ],
                    "text": "hi @bob @eve #x"
                  },
                  "unresolved": [
                    "eve"
                  ],
                  "url": "hyper://<key1>/statuses/3kq2nzxh4vk22.json"
                }"#]],
            expect![[r#"
                Posted hyper://<key1>/statuses/3kq2nzxh4vk22.json
                  entry 4, hash <hash>
                  tags: #x
                  mentions: @bob (hyper://<key2>/)
                warning: @eve matches none of the archives you follow (or more than one), so it stays plain text; 1 archive you follow is not held locally yet, so its name is unknown
            "#]],
        );
    }

    #[test]
    fn like_unlike_delete() {
        let subject = url(2, "/statuses/3kq2nzxh4vk22.json");
        let like_path: FilePath = "/likes/0123456789abcdef0123456789abcdef.json"
            .parse()
            .unwrap();
        check(
            Liked {
                subject: subject.clone(),
                path: like_path.clone(),
                entry: entry(5),
                already_liked: true,
            },
            expect![[r#"
                {
                  "alreadyLiked": true,
                  "hash": "<hash>",
                  "path": "/likes/0123456789abcdef0123456789abcdef.json",
                  "seq": 5,
                  "subject": "hyper://<key2>/statuses/3kq2nzxh4vk22.json"
                }"#]],
            expect![[r#"
                You already liked hyper://<key2>/statuses/3kq2nzxh4vk22.json; nothing changed (`fritter unlike URL` takes it back)
            "#]],
        );
        check(
            Unliked {
                subject,
                path: like_path,
                was_liked: false,
                entry: None,
            },
            expect![[r#"
                {
                  "path": "/likes/0123456789abcdef0123456789abcdef.json",
                  "subject": "hyper://<key2>/statuses/3kq2nzxh4vk22.json",
                  "wasLiked": false
                }"#]],
            expect![[r#"
                You had not liked hyper://<key2>/statuses/3kq2nzxh4vk22.json; nothing changed
            "#]],
        );
        check(
            Deleted {
                url: url(1, "/statuses/3kq2nzxh4vk22.json"),
                path: "/statuses/3kq2nzxh4vk22.json".parse().unwrap(),
                entry: entry(6),
            },
            expect![[r#"
                {
                  "hash": "<hash>",
                  "path": "/statuses/3kq2nzxh4vk22.json",
                  "seq": 6,
                  "url": "hyper://<key1>/statuses/3kq2nzxh4vk22.json"
                }"#]],
            expect![[r#"
                Deleted /statuses/3kq2nzxh4vk22.json (entry 6, hash <hash>)
                It is gone from your archive's files; `fritter log` still shows that it existed.
            "#]],
        );
    }

    #[test]
    fn follow() {
        check(
            Followed {
                url: url(2, "/"),
                name: Some("Bob".into()),
                follow: true,
                changed: true,
                held: true,
                following: 1,
                entry: Some(entry(7)),
            },
            expect![[r#"
                {
                  "changed": true,
                  "following": 1,
                  "hash": "<hash>",
                  "held": true,
                  "name": "Bob",
                  "seq": 7,
                  "url": "hyper://<key2>/"
                }"#]],
            expect![[r#"
                Following Bob (hyper://<key2>/); you follow 1 archive
            "#]],
        );
        check(
            Followed {
                url: url(2, "/"),
                name: None,
                follow: true,
                changed: true,
                held: false,
                following: 2,
                entry: Some(entry(7)),
            },
            expect![[r#"
                {
                  "changed": true,
                  "following": 2,
                  "hash": "<hash>",
                  "held": false,
                  "seq": 7,
                  "url": "hyper://<key2>/"
                }"#]],
            expect![[r#"
                Following hyper://<key2>/; you follow 2 archives
                It is not held locally yet: its statuses and name appear once it is replicated.
            "#]],
        );
        check(
            Followed {
                url: url(2, "/"),
                name: None,
                follow: false,
                changed: false,
                held: false,
                following: 0,
                entry: None,
            },
            expect![[r#"
                {
                  "changed": false,
                  "following": 0,
                  "held": false,
                  "url": "hyper://<key2>/"
                }"#]],
            expect![[r#"
                You were not following hyper://<key2>/; nothing changed
            "#]],
        );
    }

    #[test]
    fn show_ls_log() {
        check(
            Shown {
                url: url(1, "/profile.json"),
                path: "/profile.json".parse().unwrap(),
                entry: entry(0),
                value: json!({"name": "Ada", "bio": ""}),
            },
            expect![[r#"
                {
                  "hash": "<hash>",
                  "path": "/profile.json",
                  "seq": 0,
                  "url": "hyper://<key1>/profile.json",
                  "value": {
                    "bio": "",
                    "name": "Ada"
                  }
                }"#]],
            expect![[r#"
                {
                  "bio": "",
                  "name": "Ada"
                }
            "#]],
        );
        check(
            Listing {
                archive: url(1, "/"),
                dir: FilePath::root(),
                files: vec![Listed {
                    path: "/profile.json".parse().unwrap(),
                    url: url(1, "/profile.json"),
                    entry: entry(0),
                }],
            },
            expect![[r#"
                {
                  "archive": "hyper://<key1>/",
                  "dir": "/",
                  "files": [
                    {
                      "hash": "<hash>",
                      "path": "/profile.json",
                      "seq": 0,
                      "url": "hyper://<key1>/profile.json"
                    }
                  ]
                }"#]],
            expect![[r#"
                0      /profile.json
            "#]],
        );
        check(
            Logged {
                archive: url(1, "/"),
                path: None,
                length: 2,
                entries: vec![
                    HistoryItem {
                        entry: entry(0),
                        op: "put",
                        path: "/profile.json".into(),
                    },
                    HistoryItem {
                        entry: entry(1),
                        op: "del",
                        path: "/profile.json".into(),
                    },
                ],
            },
            expect![[r#"
                {
                  "archive": "hyper://<key1>/",
                  "entries": [
                    {
                      "hash": "<hash>",
                      "op": "put",
                      "path": "/profile.json",
                      "seq": 0
                    },
                    {
                      "hash": "<hash>",
                      "op": "del",
                      "path": "/profile.json",
                      "seq": 1
                    }
                  ],
                  "length": 2
                }"#]],
            expect![[r#"
                0      put     <hash>  /profile.json
                1      del     <hash>  /profile.json
            "#]],
        );
    }

    #[test]
    fn export_import() {
        check(
            Exported {
                file: PathBuf::from("b.fritter"),
                archive: url(1, "/"),
                entries: 3,
                bytes: 900,
            },
            expect![[r#"
                {
                  "archive": "hyper://<key1>/",
                  "bytes": 900,
                  "entries": 3,
                  "file": "b.fritter"
                }"#]],
            expect![[r#"
                Exported hyper://<key1>/ (3 entries, 900 bytes) to b.fritter
                It holds your secret key: keep it private. Restore it with `fritter import b.fritter` into an empty data directory.
            "#]],
        );
        check(
            Imported {
                file: PathBuf::from("b.fritter"),
                archive: url(1, "/"),
                data_dir: PathBuf::from("/data"),
                entries: 3,
                bytes: 900,
            },
            expect![[r#"
                {
                  "archive": "hyper://<key1>/",
                  "bytes": 900,
                  "dataDir": "/data",
                  "entries": 3,
                  "file": "b.fritter"
                }"#]],
            expect![[r#"
                Imported hyper://<key1>/ (3 entries, 900 bytes) into /data
            "#]],
        );
    }
}
