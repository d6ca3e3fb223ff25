//! Interop with the real Hypercore: a JS peer (`tests/js/peer.js`, hypercore@11.37.1, compat
//! cores, plain TCP wrapped in `@hyperswarm/secret-stream`) replicates a Fritter archive of
//! 10,000 entries and then a live append; and a JS writer's 10,000 entries replicate to a
//! Fritter replica, then live appends.
//!
//! Skipped with a note when `node` or `tests/js/node_modules` is missing, unless `CI` is set
//! (then missing tools fail the test). Set up with `npm ci --prefix tests/js`.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use crate::replicate_support::*;
use fritter_common::crypto::KeyPair;
use serde_json::Value;
use tokio::sync::mpsc;

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/js")
}

/// Whether the JS peer can run here; without it the test is skipped, except in CI.
fn js_available() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let modules = js_dir()
        .join("node_modules/hypercore/package.json")
        .exists();
    if node && modules {
        return true;
    }
    let why = if node {
        "tests/js/node_modules is missing (run `npm ci --prefix tests/js`)"
    } else {
        "`node` is not installed"
    };
    if std::env::var_os("CI").is_some() {
        panic!("JS interop test cannot run in CI: {why}");
    }
    eprintln!("note: skipping the JS interop test: {why}");
    false
}

/// A running `peer.js`, killed on drop; its JSON output lines arrive on a channel.
struct JsPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<Value>,
    seen: Vec<Value>,
}

impl JsPeer {
    fn spawn(args: &[&str]) -> JsPeer {
        let mut child = Command::new("node")
            .arg(js_dir().join("peer.js"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("peer.js: {line}"),
                }
            }
        });
        let stdin = child.stdin.take();
        JsPeer {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line whose `event` is `event` and that satisfies `cond`, within `secs`.
    async fn expect(&mut self, secs: u64, event: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(v)) => {
                    self.seen.push(v.clone());
                    if v["event"] == "error" {
                        panic!("peer.js failed: {}", v["error"]);
                    }
                    if v["event"] == event && cond(&v) {
                        return v;
                    }
                }
                Ok(None) => panic!("peer.js exited before {event}; it printed {:?}", self.seen),
                Err(_) => panic!(
                    "timed out after {secs} s waiting for {event} from peer.js; it printed {:?}",
                    self.seen
                ),
            }
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to peer.js");
        stdin.flush().expect("flush");
    }
}

impl Drop for JsPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fritter_archive_replicates_to_a_js_reader_then_live() {
    trace();
    if !js_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let kp = KeyPair::from_seed(&[7; 32]);
    let w = writer(dir.path(), &kp);
    fill(&w, 0, 10_000);
    let node = listening_node().await;
    node.add(w.clone());
    let addr = node.local_addr().expect("listening").to_string();

    let mut js = JsPeer::spawn(&[
        "reader",
        "--key",
        &kp.public().to_hex(),
        "--connect",
        &addr,
        "--expect",
        "10000",
    ]);
    let synced = js.expect(60, "synced", |_| true).await;
    assert_eq!(synced["length"], 10_000, "{synced}");
    assert_eq!(synced["bad"], 0, "entries that did not match: {synced}");
    assert_eq!(
        synced["treeHash"].as_str(),
        Some(hex::encode(w.info().tree_hash).as_str()),
        "{synced}"
    );
    eprintln!("JS reader: 10,000 entries in {} ms", synced["ms"]);

    let w2 = w.clone();
    tokio::task::spawn_blocking(move || w2.append(&entry(10_000)))
        .await
        .expect("join")
        .expect("append");
    let live = js.expect(20, "length", |v| v["index"] == 10_000).await;
    assert_eq!(live["ok"], true, "{live}");
    within(10, "shutdown", node.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_writer_replicates_to_a_fritter_replica_then_live() {
    trace();
    if !js_available() {
        return;
    }
    let seed = [9u8; 32];
    let kp = KeyPair::from_seed(&seed);
    let mut js = JsPeer::spawn(&["writer", "--seed", &hex::encode(seed), "--entries", "10000"]);
    let ready = js.expect(60, "ready", |_| true).await;
    assert_eq!(
        ready["key"].as_str(),
        Some(kp.public().to_hex().as_str()),
        "compat key is the public key"
    );
    let port = ready["port"].as_u64().expect("port");

    let dir = tempfile::tempdir().expect("tempdir");
    let r = replica(dir.path(), &kp);
    let node = dialing_node().await;
    node.add(r.clone());
    node.connect(format!("127.0.0.1:{port}").parse().expect("addr"))
        .await
        .expect("connect");
    wait_status(&r, 60, "10,000 entries from JS", |s| s.contiguous == 10_000).await;
    let got = r.read_range(0, 10_000).expect("read");
    assert!(
        got.iter().enumerate().all(|(i, b)| *b == entry(i as u64)),
        "entries match what JS wrote"
    );

    js.send("append 1");
    wait_status(&r, 20, "a live append from JS", |s| s.contiguous == 10_001).await;
    js.send("append 5");
    wait_status(&r, 20, "five more live appends", |s| s.contiguous == 10_006).await;
    assert_eq!(
        r.read_range(10_000, 10_006).expect("read"),
        (10_000..10_006).map(entry).collect::<Vec<_>>()
    );
    within(10, "shutdown", node.shutdown()).await;
}
