//! Views that follow later changes: trending with follows, deletes and scope; scoped threads;
//! deletes in the stream; rewritten and pre-existing histories indexed once per file.

use super::*;

fn status_path(r: &ThreadRef) -> fritter_common::model::FilePath {
    let id = r.url.status_id().unwrap();
    File::Status {
        id,
        status: Status::new("x", Timestamp::now()),
    }
    .path()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn trending_follows_deletes_and_scope() {
    let mut e = env();
    let viewer = e.writer("Viewer");
    let a = e.writer("A");
    let b = e.writer("B");
    let c = e.writer("C");
    viewer.follow(&[&a, &b, &c]);
    post(&a, "#fritter one", &[], None);
    post(&b, "#fritter two", &[], None);
    let c1 = post(&c, "#fritter three", &[], None);
    let c2 = post(&c, "#fritter four", &[], None);
    e.settle();
    let t = e.ok("/v1/trending?window=1h").await;
    assert_eq!(t["trends"][0]["tag"], "fritter", "{t}");
    assert_eq!(t["trends"][0]["posts"], 4);
    assert_eq!(t["trends"][0]["authors"], 3);
    // Deleting statuses takes them out of the counts, samples included.
    c.archive.delete(&status_path(&c1)).unwrap();
    c.archive.delete(&status_path(&c2)).unwrap();
    e.settle();
    let t = e.ok("/v1/trending?window=1h").await;
    assert_eq!(t["trends"][0]["posts"], 2, "{t}");
    assert_eq!(t["trends"][0]["authors"], 2);
    let samples = t["trends"][0]["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2);
    assert!(
        samples.iter().all(|s| s["archive"] != c.key.to_hex()),
        "{t}"
    );
    // C posts again: counted again. The viewer's scope then drops B.
    post(&c, "#fritter five", &[], None);
    viewer.follow(&[&a, &c]);
    e.settle();
    let t = e.ok("/v1/trending?window=1h").await;
    assert_eq!(t["trends"][0]["posts"], 3, "{t}");
    assert_eq!(t["trends"][0]["authors"], 3);
    let t = e
        .ok(&format!(
            "/v1/trending?window=1h&scope=follows&viewer={}",
            viewer.key.to_hex()
        ))
        .await;
    assert_eq!(t["trends"][0]["posts"], 2, "{t}");
    assert_eq!(t["trends"][0]["authors"], 2);
    assert_eq!(t["coverage"]["scope"], "follows");
}

#[tokio::test(flavor = "multi_thread")]
async fn thread_in_a_scope_keeps_replies_of_the_scope_only() {
    let mut e = env();
    let viewer = e.writer("Viewer");
    let a = e.writer("A");
    let b = e.writer("B");
    let c = e.writer("C");
    viewer.follow(&[&a, &c]);
    let root = post(&a, "root", &[], None);
    let by_b = post(&b, "b replies", &[], Some((&root, &root)));
    let _c_under_b = post(&c, "c answers b", &[], Some((&root, &by_b)));
    let _b_alone = post(&b, "b again", &[], Some((&root, &root)));
    let _a_reply = post(&a, "a replies", &[], Some((&root, &root)));
    e.settle();
    let all = e
        .ok(&format!(
            "/v1/thread?uri={}",
            urlencode(&root.url.to_string())
        ))
        .await;
    assert_eq!(all["posts"], 5, "{all}");
    assert_eq!(all["thread"]["replies"].as_array().unwrap().len(), 3);
    let scoped = e
        .ok(&format!(
            "/v1/thread?uri={}&scope=follows&viewer={}",
            urlencode(&root.url.to_string()),
            viewer.key.to_hex()
        ))
        .await;
    assert_eq!(scoped["coverage"]["scope"], "follows");
    assert_eq!(scoped["posts"], 3, "{scoped}");
    let replies = scoped["thread"]["replies"].as_array().unwrap();
    // B's first reply stays as a placeholder holding C's answer; B's other reply is gone.
    assert_eq!(replies.len(), 2, "{scoped}");
    let placeholder = &replies[0];
    assert_eq!(placeholder["uri"], by_b.url.to_string());
    assert_eq!(placeholder["outOfScope"], true);
    assert!(placeholder.get("post").is_none());
    assert_eq!(
        placeholder["replies"][0]["post"]["status"]["text"],
        "c answers b"
    );
    assert_eq!(replies[1]["post"]["status"]["text"], "a replies");
    let (s, v) = e
        .get(&format!(
            "/v1/thread?uri={}&scope=follows",
            urlencode(&root.url.to_string())
        ))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["param"], "viewer");
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_tells_of_deleted_statuses() {
    use futures::StreamExt;
    let mut e = env();
    let alice = e.writer("Alice");
    e.settle();
    let resp = router(e.state.clone())
        .oneshot(
            Request::get(format!("/v1/stream?author={}", alice.key.to_hex()))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body().into_data_stream();
    let gone = post(&alice, "soon gone", &[], None);
    e.settle();
    alice.archive.delete(&status_path(&gone)).unwrap();
    let mut text = String::new();
    let read = async {
        while !text.contains("event: delete") || !text.ends_with("\n\n") {
            let chunk = body.next().await.unwrap().unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .unwrap();
    let status_at = text.find("event: status").unwrap();
    let delete_at = text.find("event: delete").unwrap();
    assert!(status_at < delete_at, "{text}");
    let data: Value = serde_json::from_str(
        text[delete_at..]
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data["uri"], gone.url.to_string());
    assert_eq!(data["deleted"], true);
    assert!(data.get("status").is_none());
    // The deleted status is gone from the views.
    let s = e
        .ok(&format!("/v1/search?author={}", alice.key.to_hex()))
        .await;
    assert_eq!(s["hits"].as_array().unwrap().len(), 0, "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn large_rewritten_files_keep_their_last_version() {
    let mut e = env();
    let big = e.writer("Big");
    let friend = e.writer("Friend");
    e.settle();
    // 60 rewrites of a ~100 KB follow list (6 MB, past what one chunk holds decoded), then a
    // short one: the index keeps exactly the last.
    for round in 0..60u32 {
        let urls = (0..1500)
            .map(|_| ArchiveUrl::root(KeyPair::generate().public().into()))
            .collect();
        big.archive
            .put_file(&File::Follows(Follows { urls }))
            .unwrap();
        if round == 59 {
            big.follow(&[&friend]);
        }
    }
    e.settle();
    let a = e.ok(&format!("/v1/archives/{}", big.key.to_hex())).await;
    assert_eq!(a["following"], 1, "{a}");
    let f = e
        .ok(&format!("/v1/archives/{}/followers", friend.key.to_hex()))
        .await;
    assert_eq!(f["followers"].as_array().map(Vec::len), Some(1), "{f}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_archive_met_with_its_history_keeps_one_document_per_file() {
    let mut e = env();
    // The whole history is written before the crawler holds the archive, so it is indexed in
    // one fresh pass over several chunks: a pass that skips the deletes of files it has not
    // written yet must still replace the ones it has.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    store.save_identity(&KeyPair::generate()).unwrap();
    let open = store.open_own().unwrap();
    let key = open.log().key();
    let status = |i: u64, text: &str| {
        let at = 1_700_000_000_000 + i as i64;
        File::Status {
            id: StatusId::from_parts(at as u64 * 1000, 0).unwrap(),
            status: Status::new(text, Timestamp::from_unix_millis(at).unwrap()),
        }
    };
    let mut blocks: Vec<Vec<u8>> = (0..700)
        .map(|i| status(i, &format!("word{i} plain")))
        .map(|f| f.to_entry().unwrap().encode_checked().unwrap())
        .collect();
    // Rewritten and deleted two chunks (of 256 entries) after they were written.
    blocks.push(
        status(3, "rewritten plain")
            .to_entry()
            .unwrap()
            .encode_checked()
            .unwrap(),
    );
    let gone = status(4, "x").path().unwrap();
    blocks.push(Entry::Del { path: gone }.encode());
    let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
    open.log().append_batch(&refs).unwrap();
    assert!(e.crawler.follow(open));
    e.writers.push(dir);
    e.settle();

    let a = e.ok(&format!("/v1/archives/{}", key.to_hex())).await;
    assert_eq!(a["statuses"], 699, "700 written, one deleted: {a}");
    let hits = |q: &str| {
        let q = q.to_owned();
        let e = &e;
        async move { uris(&e.ok(&format!("/v1/search?q={q}")).await["hits"]).len() }
    };
    assert_eq!(hits("rewritten").await, 1);
    assert_eq!(hits("word3").await, 0, "the first version is replaced");
    assert_eq!(hits("word4").await, 0, "the deleted status is gone");
    assert_eq!(hits("word5").await, 1);
    assert_eq!(hits("word699").await, 1);
}
