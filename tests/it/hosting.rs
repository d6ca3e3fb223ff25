//! The hosting service end to end, with real processes on 127.0.0.1 and no DHT or mDNS: app A
//! signs up with a `fritter-crawler` that has `[hosting] enabled = true` (`fritter host signup`
//! through A's running `fritter serve`), A's process is killed, a new app B follows A and gets
//! all of A's statuses from the service alone; A comes back, posts, and B sees it.

use std::time::{Duration, Instant};

use fritter_tests::{CrawlerProcess, Daemon, Fritter};
use serde_json::Value;

const OFFLINE: [&str; 2] = ["--no-dht", "--no-mdns"];

fn get(c: &CrawlerProcess, path: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut res = agent
        .get(format!("{}{path}", c.base))
        .call()
        .expect("the crawler answers");
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string().expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Polls `path` until `cond` holds.
#[track_caller]
fn wait_for(c: &CrawlerProcess, path: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, v) = get(c, path);
        if s == 200 && cond(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} never happened: {s} {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `fritter serve` for `user`, dialing the service's replication address.
fn serve(user: &Fritter, service_peer: &str) -> Daemon {
    let _ = std::fs::remove_file(user.data_dir().join("serve.json"));
    let mut node = user.start([
        "serve",
        "--http",
        "127.0.0.1:0",
        "--listen",
        "127.0.0.1:0",
        "--peer",
        service_peer,
        OFFLINE[0],
        OFFLINE[1],
    ]);
    node.wait_until(60, "fritter serve to start", |_| {
        user.data_dir().join("serve.json").exists()
    });
    node
}

fn log_length(user: &Fritter) -> u64 {
    user.json(["log"])["length"].as_u64().expect("a length")
}

#[test]
fn a_hosted_archive_stays_reachable_while_its_owner_is_away() {
    let data = tempfile::tempdir().expect("temp dir");
    let config = data.path().join("crawler.toml");
    std::fs::write(
        &config,
        "[hosting]\nenabled = true\ncheck_interval_ms = 200\n",
    )
    .expect("write the config");
    let crawler = CrawlerProcess::start(
        &data.path().join("data"),
        ["--config", config.to_str().expect("UTF-8 path")],
    );
    let out = crawler.stdout();
    assert!(
        out.contains("hosting service for https://127.0.0.1:"),
        "{out}"
    );
    let replication = out
        .split("replication on ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .expect("the replication address")
        .to_owned();

    let ada = Fritter::new();
    let ada_url = ada.init("Ada");
    let mut statuses = Vec::new();
    for text in ["first", "second #hosting"] {
        statuses.push(
            ada.json(["post", text])["url"]
                .as_str()
                .expect("url")
                .to_owned(),
        );
    }
    let node = serve(&ada, &replication);

    // Signup goes through the running serve (which holds the archive) and waits for the account.
    let signed = ada
        .run(["--json", "host", "signup", &crawler.base, "--timeout", "60"])
        .success();
    let signed_up = signed.json();
    assert_eq!(signed_up["account"]["account"], true, "{signed_up}");
    let proof_path = signed_up["proof"]["path"]
        .as_str()
        .expect("proof path")
        .to_owned();
    assert!(proof_path.starts_with("/proofs/127.0.0.1:"), "{proof_path}");
    signed.check(signed.stderr.contains("waiting for"), "progress on stderr");
    // The proof is in the signed archive, and the account list is public.
    let shown = ada.json(["show", &proof_path]);
    assert_eq!(
        shown["value"]["nonce"],
        signed_up["account"]["proof"]["nonce"]
    );
    let accounts = wait_for(
        &crawler,
        "/v1/hosting/accounts",
        "the account listed",
        |v| v["count"] == 1,
    );
    assert_eq!(accounts["accounts"][0]["archive"], ada.key());

    // Hosting requests through serve: add, list, remove.
    let other = Fritter::new();
    let other_url = other.init("Other");
    ada.json(["host", "add", &other_url, "--name", "friend"]);
    let listed = ada.json(["host", "ls"]);
    assert_eq!(listed["requests"][0]["name"], "friend", "{listed}");
    wait_for(
        &crawler,
        &format!("/v1/hosting/{}", ada.key()),
        "the request seen",
        |v| v["archives"][1]["name"] == "friend",
    );
    ada.json(["host", "rm", "friend"]);
    wait_for(
        &crawler,
        &format!("/v1/hosting/{}", ada.key()),
        "the request dropped",
        |v| v["archives"].as_array().is_some_and(|a| a.len() == 1),
    );
    ada.run(["host", "rm", "friend"])
        .fails(1, "no hosting request named friend");

    // One more status through serve; the service catches up with everything.
    statuses.push(
        ada.json(["post", "third, just before sleeping"])["url"]
            .as_str()
            .expect("url")
            .to_owned(),
    );
    let length = log_length(&ada);
    wait_for(
        &crawler,
        &format!("/v1/hosting/{}", ada.key()),
        "the service to hold all of Ada",
        |v| v["archives"][0]["length"] == length && v["archives"][0]["state"] == "hosted",
    );
    let listed = ada.json(["host", "ls"]);
    assert_eq!(
        listed["services"][0]["status"]["archives"][0]["state"], "hosted",
        "{listed}"
    );

    // Ada's machine goes to sleep.
    drop(node);

    let bob = Fritter::new();
    bob.init("Bob");
    bob.json(["follow", &ada_url]);
    let synced = bob
        .run([
            "--json",
            "sync",
            "--once",
            "--timeout",
            "60",
            OFFLINE[0],
            OFFLINE[1],
            "--peer",
            &replication,
        ])
        .success()
        .json();
    assert_eq!(synced["caughtUp"], true, "{synced}");
    for (url, text) in
        statuses
            .iter()
            .zip(["first", "second #hosting", "third, just before sleeping"])
    {
        assert_eq!(bob.json(["show", url])["value"]["text"], text);
    }

    // Ada comes back and posts; Bob sees it through the service.
    let _node = serve(&ada, &replication);
    let back = ada.json(["post", "good morning"])["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let length = log_length(&ada);
    wait_for(
        &crawler,
        &format!("/v1/hosting/{}", ada.key()),
        "the service to get the new status",
        |v| v["archives"][0]["length"] == length,
    );
    bob.run([
        "sync",
        "--once",
        "--timeout",
        "60",
        OFFLINE[0],
        OFFLINE[1],
        "--peer",
        &replication,
    ])
    .success();
    assert_eq!(bob.json(["show", &back])["value"]["text"], "good morning");
}
