//! `fritter serve --crawler URL` against the real crawler: a thread opened in the app shows a
//! reply written by someone the user does not follow, marked as coming from the crawler, next to
//! the statuses held locally; and the app announces its archive to the crawler.

use fritter_tests::{CrawlerProcess, Fritter};

use crate::app::Serve;
use crate::crawler::{get, listening_addr, wait_for};

const OFFLINE: [&str; 2] = ["--no-dht", "--no-mdns"];

#[test]
fn a_thread_merges_replies_from_people_not_followed_through_the_crawler() {
    let alice = Fritter::new();
    let alice_url = alice.init("Alice");
    let root = alice.json(["post", "Who else runs #fritter?"])["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let bob = Fritter::new();
    let bob_url = bob.init("Bob");
    bob.hold_copy_of(&alice);
    bob.json(["reply", &root, "Me, since today"]);
    // Carol follows Alice only.
    let carol = Fritter::new();
    let carol_url = carol.init("Carol");
    carol.json(["follow", &alice_url]);

    let mut alice_node = alice.start(["sync", "--listen", "127.0.0.1:0", OFFLINE[0], OFFLINE[1]]);
    let mut bob_node = bob.start(["sync", "--listen", "127.0.0.1:0", OFFLINE[0], OFFLINE[1]]);
    alice_node.wait_until(30, "alice to listen", |d| {
        listening_addr(&d.stderr()).is_some()
    });
    bob_node.wait_until(30, "bob to listen", |d| {
        listening_addr(&d.stderr()).is_some()
    });
    let alice_addr = listening_addr(&alice_node.stderr()).expect("address");
    let bob_addr = listening_addr(&bob_node.stderr()).expect("address");

    let data = tempfile::tempdir().expect("temp dir");
    let crawler = CrawlerProcess::start(
        data.path(),
        [
            "--peer",
            &alice_addr,
            "--peer",
            &bob_addr,
            "--seed",
            &alice_url,
            "--seed",
            &bob_url,
        ],
    );
    wait_for(&crawler, &format!("/v1/thread?uri={root}"), 90, |v| {
        v["thread"]["replies"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });

    let carol_key = carol_url
        .trim_start_matches("hyper://")
        .trim_end_matches('/')
        .to_owned();
    let (status, v) = get(&crawler, &format!("/v1/archives/{carol_key}"));
    assert_eq!(status, 404, "the crawler cannot know Carol yet: {v}");
    let app = Serve::start(&carol, &[&alice_addr], &["--crawler", &crawler.base]);
    // The app announces Carol's archive: the crawler holds it from then on.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, v) = get(&crawler, &format!("/v1/archives/{carol_key}"));
        if status == 200 {
            assert_eq!(v["archive"], carol_key.as_str(), "{v}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the crawler never learned Carol's archive: {status} {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let thread = app.wait_for(
        &format!("/api/thread?url={root}"),
        "the crawler's reply in the thread",
        |v| {
            v["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|i| i["fromCrawler"] == true))
        },
    );
    let items = thread["items"].as_array().expect("items");
    let root_item = items
        .iter()
        .find(|i| i["url"] == root.as_str())
        .unwrap_or_else(|| panic!("the root in {thread}"));
    assert_eq!(
        root_item["fromCrawler"], false,
        "Alice is followed: {thread}"
    );
    let reply = items
        .iter()
        .find(|i| i["fromCrawler"] == true)
        .expect("a reply from the crawler");
    assert_eq!(reply["parent"], root.as_str(), "{thread}");
    let text = reply["item"].to_string();
    assert!(text.contains("Me, since today"), "{thread}");
}
