//! The crawler's read-only pages in a real browser: the real `fritter-crawler` serves a data
//! directory holding real signed archives (three people, a reply across archives, tags used by
//! several authors, a hostile status), and `tests/js/crawler-web-e2e.js` drives headless Chromium
//! through search, a tag page, a thread, a profile and the trending chart, on a phone-sized
//! screen, checking that hostile text stays text, that a tall status is clamped until "Show more",
//! that no request leaves the crawler and that no page throws. A screenshot of each page goes to `target/test-artifacts/crawler-web/`.
//!
//! Needs `node`, `npm ci --prefix tests/js` and Debian's `chromium` (`/usr/bin/chromium`, or
//! `FRITTER_CHROMIUM`); skipped with a note when one is missing, unless `CI` is set.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fritter_common::crypto::KeyPair;
use fritter_common::model::{
    extract_tags, ArchiveUrl, File, Profile, Reply, Status, StatusId, ThreadRef, Timestamp,
};
use fritter_common::store::Store;
use fritter_tests::{spawn, CrawlerProcess};
use serde_json::{json, Value};

use fritter_tests::browser::{chromium, js_dir};

fn available() -> bool {
    fritter_tests::browser::available("crawler browser test")
}

/// A person's archive, written in its own store, then copied into the crawler's data directory.
struct Author {
    dir: tempfile::TempDir,
    key: String,
}

impl Author {
    fn new(name: &str) -> Author {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::new(dir.path());
        store.save_identity(&KeyPair::generate()).expect("identity");
        let key = fritter_tests::holding_locks(|| {
            let own = store.open_own().expect("open");
            own.put_file(&File::Profile(Profile {
                name: name.into(),
                bio: format!("{name}'s bio"),
                avatar: None,
            }))
            .expect("profile");
            own.key().to_hex()
        });
        Author { dir, key }
    }

    /// Posts `text` (its tags extracted), replying to `to` if given; returns what a reply pins.
    fn post(&self, text: &str, to: Option<(&ThreadRef, &ThreadRef)>) -> ThreadRef {
        let store = Store::new(self.dir.path());
        fritter_tests::holding_locks(|| {
            let own = store.open_own().expect("open");
            let mut status = Status::new(text, Timestamp::now());
            status.tags = extract_tags(text);
            status.reply = to.map(|(root, parent)| Reply {
                root: root.clone(),
                parent: parent.clone(),
            });
            let id = StatusId::now();
            let r = own.put_file(&File::Status { id, status }).expect("post");
            std::thread::sleep(Duration::from_millis(2));
            ThreadRef {
                url: ArchiveUrl::status(own.key().into(), id),
                seq: r.seq,
                hash: r.hash,
            }
        })
    }

    /// Copies the archive's files into `data`/archives, where the crawler finds it on start.
    fn copy_into(&self, data: &Path) {
        let from = self.dir.path().join("archives").join(&self.key);
        let to = data.join("archives").join(&self.key);
        std::fs::create_dir_all(&to).expect("mkdir");
        for name in ["tree", "data", "bitfield"] {
            if from.join(name).exists() {
                std::fs::copy(from.join(name), to.join(name)).expect("copy");
            }
        }
    }
}

fn get(c: &CrawlerProcess, path: &str) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut res = agent
        .get(format!("{}{path}", c.base))
        .call()
        .expect("the crawler answers");
    let text = res.body_mut().read_to_string().expect("a body");
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

#[test]
fn crawler_pages_in_a_browser() {
    if !available() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let ada = Author::new("Ada Lovelace");
    let bob = Author::new("Bob Builder");
    let cy = Author::new("Cy Twombly");
    let root = ada.post(
        "Engines that weave #algebra like looms weave #flowers",
        None,
    );
    bob.post(
        "Replying from the workshop: lovely #algebra",
        Some((&root, &root)),
    );
    cy.post("Painting some #flowers today", None);
    cy.post("More #algebra please", None);
    let hostile =
        "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned=2\"> #hostile";
    cy.post(hostile, None);
    // 990 line breaks: without a clamp, 23,000 px of page.
    let tall = format!("Tall{}end", "\n".repeat(990));
    let tall_ref = cy.post(&tall, None);
    for a in [&ada, &bob, &cy] {
        a.copy_into(data.path());
    }

    let crawler = CrawlerProcess::start(data.path(), Vec::<String>::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = get(&crawler, "/v1/status");
        if s["archives"] == 3 && s["synced"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the crawler never indexed: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let artifacts =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts/crawler-web");
    let config = json!({
        "base": crawler.base,
        "artifacts": artifacts,
        "chromium": chromium(),
        "root": root.url.to_string(),
        "ada": ada.key,
        "bob": bob.key,
        "hostile": hostile,
        "tall": tall_ref.url.to_string(),
    });
    let mut cmd = Command::new("node");
    cmd.arg(js_dir().join("crawler-web-e2e.js"))
        .arg(config.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = spawn(&mut cmd).expect("start node");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut steps = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        eprintln!("crawler-web-e2e: {line}");
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            steps.push(v);
        }
    }
    let status = child.wait().expect("node exits");
    assert!(
        status.success(),
        "the browser test failed ({status}): {steps:?}"
    );
    let done: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(
        done,
        [
            "search finds the status",
            "tag page lists it",
            "thread shows the reply",
            "profile shows the name",
            "trending draws the chart",
            "hostile text stayed text",
            "tall status clamped",
            "keyboard reaches the search box",
            "bad input is explained",
            "done"
        ]
    );
    for shot in ["search", "tag", "thread", "profile", "trending"] {
        assert!(
            artifacts.join(format!("{shot}.png")).exists(),
            "no {shot}.png"
        );
    }
}
