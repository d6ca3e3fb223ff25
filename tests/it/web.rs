//! The web app in a real browser: two `fritter serve` processes replicating with each other,
//! driven through headless Chromium by `tests/js/web-e2e.js` (playwright-core): first-run name
//! prompt, follow by pasting a URL, a post arriving live, a reply and its notification, hostile
//! text shown as text, a tall status clamped until "Show more", cross-origin writes refused, no
//! external requests. A screenshot of the
//! feed is written to `target/test-artifacts/web/feed.png`.
//!
//! Needs `node`, `npm ci --prefix tests/js` and Debian's `chromium` (`/usr/bin/chromium`, or
//! `FRITTER_CHROMIUM`); skipped with a note when one is missing, unless `CI` is set.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use fritter_tests::{spawn, Fritter};
use serde_json::{json, Value};

use crate::app::Serve;

use fritter_tests::browser::{chromium, js_dir};

fn available() -> bool {
    fritter_tests::browser::available("browser test")
}

#[test]
fn two_people_in_a_browser() {
    if !available() {
        return;
    }
    let (a, b) = (Fritter::new(), Fritter::new());
    // No identities: each app asks for a name on first run.
    let sa = Serve::start(&a, &[], &[]);
    let sb = Serve::start(&b, &[&sa.peer_addr], &[]);
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts/web");
    let config = json!({
        "a": sa.url,
        "b": sb.url,
        "artifacts": artifacts,
        "chromium": chromium(),
    });
    let mut cmd = Command::new("node");
    cmd.arg(js_dir().join("web-e2e.js"))
        .arg(config.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = spawn(&mut cmd).expect("start node");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut steps = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        eprintln!("web-e2e: {line}");
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            steps.push(v);
        }
    }
    let status = child.wait().expect("node exits");
    if !status.success() {
        sa.fail(&format!("the browser test failed ({status}): {steps:?}"));
    }
    let done: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(
        done,
        [
            "identities",
            "b follows a",
            "b sees a's post live",
            "hostile text stayed text",
            "tall status clamped",
            "b replied",
            "a sees the reply notification",
            "thread shows the conversation",
            "cross-origin writes refused",
            "screenshot",
            "done"
        ]
    );
    assert!(artifacts.join("feed.png").exists());
    // Both apps still agree with what the browser saw.
    let (_, feed) = sb.get("/api/feed");
    assert_eq!(feed["items"][0]["text"], "Nice post, Ada!");
    assert_eq!(
        feed["items"][0]["replyTo"]["author"]["name"],
        "Ada Lovelace"
    );
}
