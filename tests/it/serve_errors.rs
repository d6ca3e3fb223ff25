//! Errors through `fritter serve` keep their meaning: every rejection (axum's own included) is the
//! API's JSON error with a fitting status, a full disk is said plainly (507) rather than hidden
//! behind a generic 500, the CLI acting through the server names the limit it ran into, and the
//! write token it sends never reaches its log, even at `RUST_LOG=trace`.

use std::process::{Command, Stdio};

use fritter_tests::{fritter_bin, spawn, Fritter, Run};
use serde_json::{json, Value};

use crate::app::Serve;

/// A raw request to the server: status, content type and body parsed as JSON (or `Null`).
fn request(
    serve: &Serve,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, String, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .build()
        .into();
    let uri = format!("{}{}", serve.url, path.trim_start_matches('/'));
    let mut req = ureq::http::Request::builder().method(method).uri(&uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = match body {
        Some(body) => agent.run(req.body(body.to_vec()).expect("a request")),
        None => agent.run(req.body(()).expect("a request")),
    };
    let mut res = res.expect("the server answers");
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Expects the API's JSON error with `status` and a message containing `fragment`.
#[track_caller]
fn check_error(answer: (u16, String, Value), status: u16, fragment: &str, what: &str) {
    let (got, content_type, body) = answer;
    assert_eq!(got, status, "{what}: status, body {body}");
    assert!(
        content_type.starts_with("application/json"),
        "{what}: content type {content_type:?}"
    );
    let message = body["error"].as_str().unwrap_or_else(|| {
        panic!("{what}: expected {{\"error\": \"...\"}}, got {body}");
    });
    assert!(
        message.contains(fragment),
        "{what}: {message:?} does not say {fragment:?}"
    );
}

#[test]
fn every_rejection_is_the_apis_json_error() {
    let f = Fritter::new();
    f.init("Ada");
    let serve = Serve::start(&f, &[], &[]);
    let token = serve.token.clone();
    let json_type = ("content-type", "application/json");
    let writer = [("x-fritter-token", token.as_str()), json_type];

    let huge = serde_json::to_vec(&json!({ "text": "x".repeat(100_000) })).expect("json");
    check_error(
        request(&serve, "POST", "/api/post", &writer, Some(&huge)),
        413,
        "limit of 65536 bytes (a status is at most 1000 characters)",
        "a body over the limit",
    );
    check_error(
        request(
            &serve,
            "POST",
            "/api/post",
            &[("x-fritter-token", &token), ("content-type", "text/plain")],
            Some(b"{\"text\": \"hi\"}"),
        ),
        415,
        "Content-Type: application/json",
        "a body that is not declared JSON",
    );
    check_error(
        request(&serve, "POST", "/api/post", &writer, Some(b"{\"text\": ")),
        400,
        "not valid JSON",
        "malformed JSON",
    );
    check_error(
        request(
            &serve,
            "POST",
            "/api/post",
            &writer,
            Some(b"{\"txt\": \"hi\"}"),
        ),
        422,
        "missing field `text`",
        "JSON of the wrong shape",
    );
    check_error(
        request(&serve, "GET", "/api/feed?limit=many", &[], None),
        400,
        "bad query parameters",
        "a malformed query",
    );
    check_error(
        request(&serve, "GET", "/api/thread", &[], None),
        400,
        "missing field `url`",
        "a missing query parameter",
    );
    check_error(
        request(&serve, "GET", "/no/such/page", &[], None),
        404,
        "no such page",
        "an unknown path",
    );
    check_error(
        request(&serve, "DELETE", "/api/feed", &[], None),
        405,
        "method DELETE is not allowed",
        "a wrong method",
    );
    check_error(
        request(&serve, "BREW", "/", &[], None),
        405,
        "not allowed",
        "a method nobody knows",
    );
    // The caller's mistakes in a well-formed request keep their words and limits too.
    let tags: String = (0..25).map(|i| format!("#t{i} ")).collect();
    let body = serde_json::to_vec(&json!({ "text": tags })).expect("json");
    check_error(
        request(&serve, "POST", "/api/post", &writer, Some(&body)),
        400,
        "25 different #tags; the limit is 20",
        "too many tags",
    );
    let (_, feed) = serve.get("/api/feed");
    assert_eq!(feed["items"], json!([]), "nothing was posted");
}

#[test]
fn the_cli_through_serve_names_the_limit() {
    let f = Fritter::new();
    f.init("Ada");
    let _serve = Serve::start(&f, &[], &[]);
    f.run(["post", &"x".repeat(5000)]).fails(
        1,
        "status text is 5000 characters; the limit is 1000 characters",
    );
    let tags: String = (0..25).map(|i| format!("#t{i} ")).collect();
    f.run(["post", &tags])
        .fails(1, "the status has 25 different #tags; the limit is 20");
    let long_tag = format!("#{}", "a".repeat(70));
    f.run(["post", &long_tag])
        .fails(1, "is 70 characters; a tag is at most 64");
    // Through the server, and nothing half-written.
    let posted = f.json(["post", "fine #one"]);
    assert_eq!(posted["status"]["tags"], json!(["one"]));
    assert_eq!(
        f.json(["ls", "/statuses"])["files"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[test]
fn the_write_token_never_reaches_the_log() {
    let f = Fritter::new();
    f.init("Ada");
    let serve = Serve::start(&f, &[], &[]);
    let mut cmd = Command::new(fritter_bin());
    cmd.arg("--data-dir")
        .arg(f.data_dir())
        .args(["post", "through serve, logged"])
        .env_remove("FRITTER_DATA_DIR")
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = spawn(&mut cmd)
        .and_then(|child| child.wait_with_output())
        .expect("run fritter post");
    let run = Run::new(&cmd, output).success();
    // It did go through the server, with the HTTP client's own log on.
    run.check(
        run.stderr.contains("asking it") && run.stderr.contains("ureq"),
        "expected the debug log of a request through serve",
    );
    // Neither whole nor in pieces (a byte dump shows 16 bytes a row): no 10 characters of it.
    let token = &serve.token;
    let leaked = (0..=token.len() - 10).any(|i| run.stderr.contains(&token[i..i + 10]));
    run.check(!leaked, "the write token is in the log");
}

/// A tmpfs of `size` mounted on a directory, unmounted when dropped.
struct SmallDisk {
    dir: std::path::PathBuf,
}

impl SmallDisk {
    /// `Err` says why there is none (the mount needs root).
    fn mount(dir: &std::path::Path, size: &str) -> Result<SmallDisk, String> {
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(SmallDisk {
            dir: dir.to_owned(),
        })
    }

    fn path(&self) -> &std::path::Path {
        &self.dir
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // Small writes may still fit in the last page: fill that too.
        while let Ok(n) = file.write(&[0u8; 512]) {
            if n == 0 {
                break;
            }
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

#[test]
fn a_full_disk_is_said_plainly_through_serve() {
    // The data directory is the small disk (unmounted before the directory is removed).
    let f = Fritter::new();
    let disk = match SmallDisk::mount(f.data_dir(), "8m") {
        Ok(disk) => disk,
        Err(reason) => {
            eprintln!("SKIPPED a_full_disk_is_said_plainly_through_serve: no tmpfs: {reason}");
            return;
        }
    };
    let data = disk.path().to_owned();
    f.init("Ada");
    let serve = Serve::start(&f, &[], &[]);
    f.json(["post", "before the disk filled up"]);
    let filler = disk.fill();

    let want = format!(
        "no space left on device: free space on the disk of {}",
        data.display()
    );
    let text = "x".repeat(900);
    let body = serde_json::to_vec(&json!({ "text": text })).expect("json");
    let writer = [
        ("x-fritter-token", serve.token.as_str()),
        ("content-type", "application/json"),
    ];
    // The last pages of the log's files may still hold a post or two: write until they are full.
    let mut answer = request(&serve, "POST", "/api/post", &writer, Some(&body));
    for _ in 0..20 {
        if answer.0 != 200 {
            break;
        }
        answer = request(&serve, "POST", "/api/post", &writer, Some(&body));
    }
    check_error(answer, 507, &want, "a post on a full disk");
    f.run(["post", &text]).fails(1, &want);
    // Reads keep working.
    let (status, feed) = serve.get("/api/feed");
    assert_eq!(status, 200, "{feed}");
    let texts: Vec<&str> = feed["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["text"].as_str()).collect())
        .unwrap_or_default();
    assert!(texts.contains(&"before the disk filled up"), "{feed}");

    // Once space is back, writes work again.
    std::fs::remove_file(filler).expect("free the space");
    let posted = f.json(["post", "after space came back"]);
    assert_eq!(posted["status"]["text"], "after space came back");
}
