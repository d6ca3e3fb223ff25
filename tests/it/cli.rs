//! The `fritter` command line, driven as a user would: one data directory per user, archives of
//! others made "held locally" by copying their log files (replication comes later).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use fritter_tests::{Fritter, Run};
use serde_json::{json, Value};

/// The weak (small-order) ed25519 key that must be refused everywhere.
const WEAK_KEY: &str = "0100000000000000000000000000000000000000000000000000000000000000";

/// Alice, and Bob whose archive (with one status) Alice holds and follows.
struct Pair {
    alice: Fritter,
    bob: Fritter,
    bob_url: String,
    /// Bob's status, as `show --json` in Bob's own data directory reports it.
    bob_status: Value,
}

fn pair() -> Pair {
    let alice = Fritter::new();
    alice.init("Alice");
    let bob = Fritter::new();
    let bob_url = bob.init("Bob Jones");
    let posted = bob.json(["post", "Hello from Bob #intro"]);
    let bob_status = bob.json(["show", posted["url"].as_str().unwrap()]);
    alice.hold_copy_of(&bob);
    alice.json(["follow", &bob.key()]);
    Pair {
        alice,
        bob,
        bob_url,
        bob_status,
    }
}

fn str_of<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
}

#[test]
fn init_url_and_profile() {
    let f = Fritter::new();
    let created = f.json([
        "init",
        "--name",
        "  Ada Lovelace ",
        "--bio",
        "first programmer",
    ]);
    let url = str_of(&created, "/url");
    assert!(
        url.starts_with("hyper://") && url.ends_with('/') && url.len() == 73,
        "{url}"
    );
    assert_eq!(
        created["profile"],
        json!({"name": "Ada Lovelace", "bio": "first programmer"})
    );
    assert_eq!(created["seq"], 0);

    f.run(["url"]).success().stdout_has(url);
    assert_eq!(f.json(["url"]), json!({ "url": url }));

    // A second init is refused, saying where the identity is and what its URL is.
    f.run(["init", "--name", "Again"])
        .fails(1, "an identity already exists")
        .stderr_has(url)
        .stderr_has(&f.data_dir().display().to_string());

    f.run(["profile"])
        .success()
        .stdout_has("Name: Ada Lovelace")
        .stdout_has("Bio:  first programmer");
    let updated = f.json(["profile", "--bio", "poet of science"]);
    assert_eq!(updated["updated"], true);
    assert_eq!(
        updated["profile"],
        json!({"name": "Ada Lovelace", "bio": "poet of science"})
    );
    assert_eq!(
        f.json(["show", "/profile.json"])["value"],
        updated["profile"]
    );
    f.run(["profile", "--name", " "])
        .fails(1, "profile name is empty");
}

#[test]
fn post_finds_tags_and_mentions_of_followed_archives() {
    let p = pair();
    let posted = p
        .alice
        .json(["post", "Lunch with @bobjones and @nobody #Rust #rust"]);
    assert_eq!(posted["status"]["tags"], json!(["rust"]));
    assert_eq!(
        posted["status"]["mentions"],
        json!([{"name": "bobjones", "url": p.bob_url}])
    );
    assert_eq!(posted["unresolved"], json!(["nobody"]));
    let url = str_of(&posted, "/url");
    assert!(
        url.contains("/statuses/") && url.ends_with(".json"),
        "{url}"
    );
    assert_eq!(str_of(&posted, "/hash").len(), 64);

    // What was written is what `show` reads back, pinned to the same entry.
    let shown = p.alice.json(["show", url]);
    assert_eq!(shown["value"], posted["status"]);
    assert_eq!(
        (&shown["seq"], &shown["hash"]),
        (&posted["seq"], &posted["hash"])
    );

    // In text mode the unresolved name is a warning on stderr.
    p.alice
        .run(["post", "hi @nobody"])
        .success()
        .stdout_has("Posted hyper://")
        .stderr_has("warning: @nobody matches none of the archives you follow");
}

#[test]
fn reply_pins_the_parent_entry_and_keeps_the_thread_root() {
    let p = pair();
    let bob_status_url = str_of(&p.bob_status, "/url");
    let pinned =
        json!({"url": bob_status_url, "seq": p.bob_status["seq"], "hash": p.bob_status["hash"]});

    let first = p.alice.json(["reply", bob_status_url, "Welcome!"]);
    let shown = p.alice.json(["show", str_of(&first, "/url")]);
    assert_eq!(shown["value"]["threadParent"], pinned);
    assert_eq!(shown["value"]["threadRoot"], pinned);
    assert_eq!(
        shown["value"]["mentions"],
        json!([{"name": "Bob Jones", "url": p.bob_url}])
    );

    // A reply to the reply (given as a bare path in Alice's archive) keeps Bob's status as root.
    let path = str_of(&first, "/path");
    let second = p.alice.json(["reply", path, "Replying to myself"]);
    let shown = p.alice.json(["show", str_of(&second, "/url")]);
    assert_eq!(shown["value"]["threadRoot"], pinned);
    assert_eq!(
        shown["value"]["threadParent"],
        json!({"url": first["url"], "seq": first["seq"], "hash": first["hash"]})
    );
    assert_eq!(
        shown["value"].get("mentions"),
        None,
        "answering yourself mentions nobody"
    );

    // An archive not held here cannot be answered: its status cannot be pinned.
    let carol = Fritter::new();
    carol.init("Carol");
    let carols = carol.json(["post", "unseen"]);
    p.alice
        .run(["reply", str_of(&carols, "/url"), "hello?"])
        .fails(1, "is not held locally")
        .stderr_has("follow it so it gets replicated");
    // Nor can a status that does not exist, or a URL that is not a status.
    p.alice
        .run(["reply", &format!("{}profile.json", p.bob_url), "hm"])
        .fails(1, "is not a status");
    let _ = &p.bob;
}

#[test]
fn like_once_then_unlike() {
    let p = pair();
    let subject = str_of(&p.bob_status, "/url");
    let liked = p.alice.json(["like", subject]);
    assert_eq!(liked["alreadyLiked"], false);
    let path = str_of(&liked, "/path");
    assert!(
        path.starts_with("/likes/") && path.len() == "/likes/.json".len() + 32,
        "{path}"
    );
    assert_eq!(p.alice.json(["show", path])["value"]["subject"], subject);

    let again = p.alice.json(["like", subject]);
    assert_eq!(again["alreadyLiked"], true);
    assert_eq!(again["seq"], liked["seq"], "nothing new was written");
    p.alice
        .run(["like", subject])
        .success()
        .stdout_has("already liked");

    let unliked = p.alice.json(["unlike", subject]);
    assert_eq!(unliked["wasLiked"], true);
    p.alice.run(["show", path]).fails(1, "does not exist");
    assert_eq!(p.alice.json(["unlike", subject])["wasLiked"], false);
}

#[test]
fn delete_hides_a_status_but_history_keeps_it() {
    let f = Fritter::new();
    f.init("Dee");
    let posted = f.json(["post", "oops"]);
    let kept = f.json(["post", "keep me"]);
    let path = str_of(&posted, "/path");

    let deleted = f.json(["delete", str_of(&posted, "/url")]);
    assert_eq!(deleted["path"], path);
    let listing = f.json(["ls", "/statuses"]);
    let paths: Vec<&Value> = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["path"])
        .collect();
    assert_eq!(paths, [&kept["path"]]);
    f.run(["show", path]).fails(1, "does not exist");
    f.run(["delete", path])
        .fails(1, "does not exist")
        .stderr_has("fritter ls");

    let history = f.json(["log", path]);
    let ops: Vec<(&Value, &Value)> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (&e["op"], &e["seq"]))
        .collect();
    assert_eq!(
        ops,
        [
            (&json!("put"), &posted["seq"]),
            (&json!("del"), &deleted["seq"])
        ]
    );
    f.run(["log"])
        .success()
        .stdout_has(&format!("del     {}  {path}", str_of(&deleted, "/hash")));

    // Only your own files can be deleted.
    let other = Fritter::new();
    let other_url = other.init("Other");
    f.run(["delete", &format!("{other_url}profile.json")])
        .fails(1, "you can only delete your own files");
}

#[test]
fn follow_and_unfollow() {
    let alice = Fritter::new();
    let alice_url = alice.init("Alice");
    let bob = Fritter::new();
    let bob_url = bob.init("Bob");

    // Not held yet: followed all the same, with a note.
    alice
        .run(["follow", &bob_url])
        .success()
        .stdout_has("Following")
        .stdout_has("not held locally yet");
    let again = alice.json(["follow", &bob.key().to_uppercase()]);
    assert_eq!(
        (again["changed"].clone(), again["following"].clone()),
        (json!(false), json!(1))
    );
    alice
        .run(["follow", &bob_url])
        .success()
        .stdout_has("already follow");
    assert_eq!(
        alice.json(["show", "/follows.json"])["value"],
        json!({"urls": [bob_url]})
    );

    alice
        .run(["follow", &alice_url])
        .fails(1, "your own archive");
    alice
        .run(["follow", &format!("{bob_url}profile.json")])
        .fails(1, "follow the archive itself");

    let unfollowed = alice.json(["unfollow", &bob_url]);
    assert_eq!(
        (
            unfollowed["changed"].clone(),
            unfollowed["following"].clone()
        ),
        (json!(true), json!(0))
    );
    alice
        .run(["unfollow", &bob_url])
        .success()
        .stdout_has("were not following");
    assert_eq!(
        alice.json(["show", "/follows.json"])["value"],
        json!({"urls": []})
    );
}

#[test]
fn show_ls_and_log_read_own_and_held_archives() {
    let p = pair();
    let ls = p.alice.json(["ls"]);
    let paths: Vec<&str> = ls["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/follows.json", "/profile.json"]);
    p.alice
        .run(["ls", "/"])
        .success()
        .stdout_has("/follows.json")
        .stdout_has("/profile.json");

    // Bob's archive by URL: the same files and entries Bob sees.
    let theirs = p.alice.json(["ls", &format!("{}statuses/", p.bob_url)]);
    assert_eq!(theirs, p.bob.json(["ls", "/statuses"]));
    let shown = p.alice.json(["show", str_of(&p.bob_status, "/url")]);
    assert_eq!(shown, p.bob_status);
    assert_eq!(p.alice.json(["log", &p.bob_url]), p.bob.json(["log"]));
    p.alice
        .run(["show", &format!("{}profile.json", p.bob_url)])
        .success()
        .stdout_has("\"name\": \"Bob Jones\"");

    let log = p.alice.json(["log"]);
    assert_eq!(log["length"], 2);
    assert_eq!(log["entries"][0]["op"], "put");
    assert_eq!(log["entries"][1]["path"], "/follows.json");

    p.alice
        .run(["show", "/nothing.json"])
        .fails(1, "does not exist");
    p.alice
        .run(["show", &p.bob_url])
        .fails(1, "names a whole archive");
    let stranger = Fritter::new();
    let stranger_url = stranger.init("Stranger");
    p.alice
        .run(["ls", &stranger_url])
        .fails(1, "is not held locally")
        .stderr_has("fritter follow");
}

#[test]
fn export_then_import_restores_the_same_archive() {
    let f = Fritter::new();
    let url = f.init("Mover");
    f.json(["post", "before the move #backup"]);
    let backup = f.data_dir().join("backup.fritter");
    let backup = backup.to_str().unwrap();
    let exported = f.json(["export", backup]);
    assert_eq!(
        (exported["archive"].as_str(), &exported["entries"]),
        (Some(url.as_str()), &json!(2))
    );
    f.run(["export", backup]).fails(1, "--force");
    f.json(["export", backup, "--force"]);

    let fresh = Fritter::new();
    let imported = fresh.json(["import", backup]);
    assert_eq!(imported["archive"], url);
    assert_eq!(fresh.json(["url"])["url"], url);
    assert_eq!(fresh.json(["ls"]), f.json(["ls"]));
    assert_eq!(fresh.json(["log"]), f.json(["log"]));
    // The restored identity can write.
    fresh.json(["post", "after the move"]);
    fresh
        .run(["import", backup])
        .fails(1, "an identity already exists")
        .stderr_has("empty data directory");
}

#[test]
fn errors_say_what_to_do() {
    let empty = Fritter::new();
    empty
        .run(["post", "hello"])
        .fails(1, "no identity")
        .stderr_has("fritter init --name NAME");
    empty.run(["url"]).fails(1, "fritter init --name NAME");

    let f = Fritter::new();
    f.init("Erin");
    f.run(["follow", "not-a-url"])
        .fails(1, "is not a valid archive url");
    f.run(["follow", "hyper://abc/"])
        .fails(1, "expected 64 hex characters");
    f.run(["follow", WEAK_KEY]).fails(1, "weak (small-order)");
    f.run(["follow", &format!("hyper://{WEAK_KEY}/")])
        .fails(1, "weak (small-order)");
    f.run(["show", &format!("hyper://{WEAK_KEY}/profile.json")])
        .fails(1, "weak (small-order)");
    f.run(["post", &"x".repeat(2000)])
        .fails(1, "status text is 2000 characters; the limit is 1000");
    f.run(["post", "   "]).fails(1, "status text is empty");
    f.run(["like", "/profile.json"]).fails(1, "is not a status");

    // Usage errors come from clap, with exit code 2.
    let usage = f.run(["frobnicate"]);
    usage.check(usage.code == Some(2), "expected exit code 2");
    let usage = f.run(["post"]);
    usage.check(
        usage.code == Some(2) && usage.stderr.contains("<TEXT>"),
        "expected a usage error",
    );
    assert_eq!(
        f.json(["ls", "/statuses"])["files"],
        json!([]),
        "nothing was written"
    );
}

#[test]
fn a_locked_archive_names_the_holder_and_the_way_out() {
    let f = Fritter::new();
    f.init("Locked");
    // Another process holds the archive, as a running `fritter serve` would.
    let mut holder = Command::new(env!("CARGO_BIN_EXE_hold_lock"));
    holder
        .arg(f.data_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut holder = fritter_tests::spawn(&mut holder).expect("start hold_lock");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read from hold_lock");
    assert_eq!(
        line.trim(),
        format!("locked {}", holder.id()),
        "hold_lock took the lock"
    );

    f.run(["post", "blocked"])
        .fails(1, "is in use by another process")
        .stderr_has(&format!("pid {}", holder.id()))
        .stderr_has("fritter serve");
    // Reads take no lock.
    f.run(["show", "/profile.json"]).success();

    drop(holder.stdin.take());
    assert!(holder.wait().expect("hold_lock exits").success());
    f.run(["post", "free again"]).success();
}

#[test]
fn every_json_output_is_one_value() {
    let p = pair();
    let subject = str_of(&p.bob_status, "/url").to_owned();
    let backup = p
        .alice
        .data_dir()
        .join("b.fritter")
        .to_str()
        .unwrap()
        .to_owned();
    let posted = p.alice.json(["post", "json #all"]);
    let mine = str_of(&posted, "/url").to_owned();
    let commands: Vec<Vec<&str>> = vec![
        vec!["url"],
        vec!["profile"],
        vec!["profile", "--bio", "b"],
        vec!["post", "x"],
        vec!["reply", &subject, "y"],
        vec!["like", &subject],
        vec!["unlike", &subject],
        vec!["follow", &p.bob_url],
        vec!["unfollow", &p.bob_url],
        vec!["show", "/profile.json"],
        vec!["ls"],
        vec!["log"],
        vec!["log", "/profile.json"],
        vec!["delete", &mine],
        vec!["export", &backup],
    ];
    for args in commands {
        let run = p
            .alice
            .run([&["--json"], args.as_slice()].concat())
            .success();
        let value = run.json();
        run.check(value.is_object(), "expected a JSON object");
        run.check(
            run.stdout.trim_end().lines().count() == 1,
            "expected one line",
        );
    }
    let fresh = Fritter::new();
    fresh.run(["--json", "import", &backup]).success().json();
}

#[test]
fn every_command_has_help() {
    let f = Fritter::new();
    let top = f.run(["--help"]).success();
    for command in [
        "init", "url", "profile", "post", "reply", "like", "unlike", "delete", "follow",
        "unfollow", "show", "ls", "log", "export", "import",
    ] {
        top.check(
            top.stdout.contains(&format!("  {command} ")),
            &format!("top-level help lists {command}"),
        );
        let help = f.run([command, "--help"]).success();
        help.check(help.stdout.contains("Usage: fritter"), "expected usage");
    }
}

/// Runs `fritter --data-dir <data_dir> <args>` with `RUST_LOG` set, its stderr a pipe (not a
/// terminal).
fn run_logged(data_dir: &std::path::Path, rust_log: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(fritter_tests::fritter_bin());
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("FRITTER_DATA_DIR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", rust_log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = fritter_tests::spawn(&mut cmd)
        .and_then(|child| child.wait_with_output())
        .expect("run fritter");
    Run::new(&cmd, output)
}

#[test]
fn unknown_flags_are_errors_and_text_after_double_dash_is_text() {
    let f = Fritter::new();
    f.init("Dash");
    let usage = f.run(["post", "--txt"]);
    usage.check(usage.code == Some(2), "expected a usage error");
    usage.check(
        usage.stderr.contains("unexpected argument '--txt'") && usage.stderr.contains("-- --txt"),
        "expected the error to name the flag and the way to post it as text",
    );
    let usage = f.run(["reply", "/statuses/x.json", "-v"]);
    usage.check(usage.code == Some(2), "expected a usage error for reply");
    assert_eq!(
        f.json(["ls", "/statuses"])["files"],
        json!([]),
        "nothing posted"
    );

    let posted = f.json(["post", "--", "--txt"]);
    assert_eq!(posted["status"]["text"], "--txt");
}

#[test]
fn causes_are_said_once() {
    let f = Fritter::new();
    let missing = f.data_dir().join("no-such-backup");
    let run = f
        .run(["import", missing.to_str().unwrap()])
        .fails(1, "No such file or directory (os error 2)");
    run.check(
        run.stderr.matches("No such file or directory").count() == 1,
        "expected the cause once",
    );

    // A data directory that cannot be made: the store's error, once.
    let file = f.data_dir().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let run = run_logged(&file.join("data"), "warn", &["init", "--name", "X"])
        .fails(1, "Not a directory (os error 20)");
    run.check(
        run.stderr.matches("Not a directory").count() == 1,
        "expected the cause once",
    );
}

#[test]
fn no_colour_codes_when_stderr_is_not_a_terminal() {
    let f = Fritter::new();
    f.init("Plain");
    // Logs at debug and an error.
    let run = run_logged(f.data_dir(), "debug", &["like", "/profile.json"]);
    run.check(run.code == Some(1), "expected the command to fail");
    run.check(run.stderr.contains("DEBUG"), "expected debug logs");
    run.check(!run.stderr.contains('\u{1b}'), "expected no escape codes");
    // A usage error from clap.
    let run = run_logged(f.data_dir(), "debug", &["post", "--txt"]);
    run.check(run.code == Some(2), "expected a usage error");
    run.check(!run.stderr.contains('\u{1b}'), "expected no escape codes");
}

#[test]
fn tags_and_mentions_are_never_dropped_in_silence() {
    let p = pair();
    let tags: String = (0..25).map(|i| format!("#t{i} ")).collect();
    p.alice.run(["post", &tags]).fails(
        1,
        "the status has 25 different #tags; the limit is 20: remove 5 of them",
    );
    p.alice
        .run(["post", &format!("#{}", "a".repeat(65))])
        .fails(1, "a tag is at most 64");
    assert_eq!(
        p.alice.json(["ls", "/statuses"])["files"],
        json!([]),
        "nothing was written"
    );
    // Twenty tags fit, all of them kept.
    let tags: String = (0..20).map(|i| format!("#t{i} ")).collect();
    let posted = p.alice.json(["post", &tags]);
    assert_eq!(posted["status"]["tags"].as_array().map(Vec::len), Some(20));
}

#[test]
fn a_new_data_directory_is_private() {
    let f = Fritter::new();
    let dir = f.data_dir().join("fresh");
    run_logged(&dir, "warn", &["init", "--name", "Private"]).success();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&dir)
            .expect("the data directory")
            .permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o700, "the data directory holds the secret key");
}
