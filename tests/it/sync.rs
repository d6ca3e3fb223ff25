//! `fritter sync` and `fritter peers` between real processes on loopback: one user's node serves
//! their archive, another's `sync --once` fetches it through a direct peer address, verified, and
//! `peers` shows the running node.

use fritter_tests::Fritter;

/// The address a `fritter sync` printed on stderr: "... listening on 127.0.0.1:PORT".
fn listening_addr(stderr: &str) -> Option<String> {
    let line = stderr.lines().find(|l| l.contains("listening on "))?;
    let addr = line.rsplit("listening on ").next()?.trim();
    Some(addr.to_owned())
}

const OFFLINE: [&str; 2] = ["--no-dht", "--no-mdns"];

#[test]
fn sync_once_fetches_a_followed_archive_from_a_direct_peer() {
    let ada = Fritter::new();
    let ada_url = ada.init("Ada");
    let mut posts = Vec::new();
    for text in ["first #p2p", "second", "third @nobody"] {
        posts.push(
            ada.json(["post", text])["url"]
                .as_str()
                .expect("url")
                .to_owned(),
        );
    }

    let bob = Fritter::new();
    bob.init("Bob");
    bob.json(["follow", &ada_url]);
    // Before any sync Bob does not hold Ada's statuses.
    bob.run(["show", &posts[0]]).fails(1, "");

    let mut node = ada.start(["sync", "--listen", "127.0.0.1:0", OFFLINE[0], OFFLINE[1]]);
    node.wait_until(30, "the node to listen", |d| {
        listening_addr(&d.stderr()).is_some()
    });
    let addr = listening_addr(&node.stderr()).expect("address");

    // `fritter peers` on Ada's data dir reads the running node's status.
    node.wait_until(10, "the status file", |_| {
        ada.run(["--json", "peers"]).code == Some(0)
    });
    let peers = ada.json(["peers"]);
    assert_eq!(peers["listen"].as_str(), Some(addr.as_str()), "{peers}");
    assert_eq!(
        peers["archives"][0]["key"].as_str(),
        Some(ada.key().as_str())
    );
    assert_eq!(
        peers["archives"][0]["length"], 4,
        "profile and three statuses"
    );

    let synced = bob
        .run([
            "--json",
            "sync",
            "--once",
            "--timeout",
            "30",
            OFFLINE[0],
            OFFLINE[1],
            "--peer",
            &addr,
        ])
        .success()
        .json();
    assert_eq!(synced["caughtUp"], true, "{synced}");
    let held = synced["archives"]
        .as_array()
        .expect("archives")
        .iter()
        .find(|a| a["url"] == ada_url.as_str())
        .unwrap_or_else(|| panic!("Ada's archive in {synced}"));
    assert_eq!(held["length"], 4);
    assert_eq!(held["contiguous"], 4);
    assert!(synced["blocksDownloaded"].as_u64() >= Some(4));

    // Bob now holds Ada's statuses, verified, and reads them offline.
    let shown = bob.json(["show", &posts[2]]);
    assert_eq!(shown["value"]["text"], "third @nobody", "{shown}");

    // The node stops cleanly on SIGTERM and takes its status file with it.
    assert_eq!(node.stop(), Some(0), "{}", node.stderr());
    assert!(!ada.data_dir().join("sync.json").exists());
    ada.run(["peers"]).fails(1, "start one with `fritter sync`");
}

#[test]
fn sync_once_without_peers_says_what_to_do() {
    let bob = Fritter::new();
    bob.init("Bob");
    let ada = Fritter::new();
    let ada_url = ada.init("Ada");
    bob.json(["follow", &ada_url]);
    bob.run(["sync", "--once", "--timeout", "2", OFFLINE[0], OFFLINE[1]])
        .success()
        .stderr_has("--peer HOST:PORT");
}

#[test]
fn every_command_works_while_sync_runs() {
    let ada = Fritter::new();
    ada.init("Ada");
    let bob = Fritter::new();
    let bob_url = bob.init("Bob");
    let mut node = ada.start(["sync", "--listen", "127.0.0.1:0", OFFLINE[0], OFFLINE[1]]);
    node.wait_until(30, "the node to listen", |d| {
        listening_addr(&d.stderr()).is_some()
    });

    // Writes go through the running sync, which holds the archive.
    let posted = ada.json(["post", "while syncing"]);
    assert_eq!(posted["status"]["text"], "while syncing", "{posted}");
    let followed = ada.json(["follow", &bob_url]);
    assert_eq!(followed["changed"], true, "{followed}");
    ada.run(["profile", "--bio", "syncing"]).success();
    // Reads, the feed and the export too.
    ada.run(["show", "/profile.json"])
        .success()
        .stdout_has("syncing");
    let feed = ada.json(["feed"]);
    assert_eq!(feed["items"][0]["text"], "while syncing", "{feed}");
    let out = tempfile::tempdir().expect("a temp dir");
    let file = out.path().join("ada.fritter");
    ada.run(["export", file.to_str().expect("utf-8")]).success();

    assert_eq!(node.stop(), Some(0), "{}", node.stderr());
    assert!(!ada.data_dir().join("serve.json").exists());
    // The export holds what was written through the sync.
    let copy = Fritter::new();
    copy.run(["import", file.to_str().expect("utf-8")])
        .success();
    let shown = copy.json(["show", "/follows.json"]);
    assert!(shown.to_string().contains(&bob_url), "{shown}");
}
