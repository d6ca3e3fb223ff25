//! The API's contract: every route listed in `/openapi.json` answers in the documented shape,
//! the stream resumes, pages carry a strict policy.

use super::*;

/// Fetches `/openapi.json` from `app`, requests every GET path it lists (with `key` for
/// `{key}` and `thread` for the thread's uri) and checks each answers 200 with the fields its
/// schema requires. Returns the document.
async fn every_listed_path_answers(app: &axum::Router, key: &PublicKey, thread: &str) -> Value {
    let (s, doc) = call(
        app.clone(),
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if path == "/v1/stream" || ops.get("get").is_none() {
            continue;
        }
        let uri = path.replace("{key}", &key.to_hex());
        let uri = if path == "/v1/thread" {
            format!("{uri}?uri={thread}")
        } else {
            uri
        };
        let (s, v) = call(app.clone(), Request::get(&uri).body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
        check_required(&ops["get"]["responses"]["200"], &v, &uri);
    }
    doc
}

/// Checks `v` has every field the documented response `resp` requires.
#[track_caller]
fn check_required(resp: &Value, v: &Value, what: &str) {
    let required = resp["content"]["application/json"]["schema"]["required"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for field in required {
        assert!(
            v.get(field.as_str().unwrap()).is_some(),
            "{what} lacks {field}: {v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_lists_every_route_and_every_listed_path_answers() {
    let mut e = env();
    let alice = e.writer("Alice");
    let r = post(&alice, "hi", &[], None);
    e.settle();
    let doc =
        every_listed_path_answers(&router(e.state.clone()), &alice.key, &r.url.to_string()).await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(
        !paths.keys().any(|p| p.starts_with("/v1/hosting")),
        "hosting is off, yet documented"
    );
    for route in [
        "/v1/status",
        "/v1/mentions/{key}",
        "/v1/thread",
        "/v1/trending",
        "/v1/search",
        "/v1/archives/{key}",
        "/v1/archives/{key}/followers",
        "/v1/stream",
        "/v1/crawl",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(route), "{route} is not documented");
    }
    let (s, v) = e
        .request(
            Request::post("/v1/crawl")
                .header("content-type", "application/json")
                .body(Body::from(format!(
                    r#"{{"url": "hyper://{}/"}}"#,
                    KeyPair::generate().public()
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["new"], true);
    assert!(e
        .dir
        .path()
        .join("archives")
        .join(v["archive"].as_str().unwrap())
        .exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_delivers_and_resumes_from_last_event_id() {
    use futures::StreamExt;
    let mut e = env();
    let alice = e.writer("Alice");
    e.settle();
    let resp = router(e.state.clone())
        .oneshot(
            Request::get("/v1/stream?tag=news")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body().into_data_stream();
    post(&alice, "first #news", &[], None);
    post(&alice, "not news", &[], None);
    post(&alice, "second #news", &[], None);
    let mut text = String::new();
    let read = async {
        while text.matches("event: status").count() < 2 {
            let chunk = body.next().await.unwrap().unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .unwrap();
    assert!(
        text.contains("first #news") && text.contains("second #news"),
        "{text}"
    );
    assert!(!text.contains("not news"));
    let first_id: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .parse()
        .unwrap();
    // Reconnect after the first event: the second comes again, then what was written since.
    post(&alice, "third #news", &[], None);
    let resp = router(e.state.clone())
        .oneshot(
            Request::get("/v1/stream?tag=news")
                .header("last-event-id", first_id.to_string())
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = resp.into_body().into_data_stream();
    let mut text = String::new();
    let read = async {
        while text.matches("event: status").count() < 2 {
            let chunk = body.next().await.unwrap().unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .unwrap();
    let second = text.find("second #news").unwrap();
    let third = text.find("third #news").unwrap();
    assert!(second < third && !text.contains("first #news"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_are_served_with_a_strict_policy() {
    let e = env();
    for (uri, kind) in [
        ("/", "text/html"),
        ("/tag/rust", "text/html"),
        ("/thread?uri=hyper%3A%2F%2Fx", "text/html"),
        ("/profile/abc", "text/html"),
        ("/trending?window=7d", "text/html"),
        ("/assets/crawler.js", "text/javascript"),
        ("/assets/crawler.css", "text/css"),
        ("/assets/icon.svg", "image/svg+xml"),
    ] {
        let resp = router(e.state.clone())
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{uri}");
        let h = resp.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{uri}: {:?}",
            h["content-type"]
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'none'; script-src 'self';"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        if kind == "text/html" {
            // One shell: no inline script or style, only this server's assets.
            assert!(text.contains(r#"<script src="/assets/crawler.js" defer></script>"#));
            assert!(!text.contains("<script>") && !text.contains("style="));
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
    }
    // The API is unchanged beside the pages: unknown paths are still JSON errors.
    let (s, v) = e.get("/v1/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"]["message"].is_string(), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_documents_the_hosting_routes_when_hosting_is_on() {
    use fritter_crawler::hosting::{self, Hosting, HostingConfig};
    let mut e = env();
    let alice = e.writer("Alice");
    let r = post(&alice, "hi", &[], None);
    e.settle();
    let h = Hosting::open(
        e.crawler.clone(),
        HostingConfig {
            enabled: true,
            ..HostingConfig::default()
        },
        e.dir.path(),
        "hosting.test",
    )
    .unwrap();
    let app = router_with(e.state.clone(), hosting::api::router(h));
    // A signup under way, so GET /v1/hosting/{key} has something to show.
    let (s, signup) = call(
        app.clone(),
        Request::post("/v1/hosting/signup")
            .header("content-type", "application/json")
            .body(Body::from(format!(r#"{{"archive": "{}"}}"#, alice.key)))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{signup}");
    let doc = every_listed_path_answers(&app, &alice.key, &r.url.to_string()).await;
    let paths = doc["paths"].as_object().unwrap();
    for route in [
        "/v1/hosting/signup",
        "/v1/hosting/accounts",
        "/v1/hosting/{key}",
        "/v1/search",
        "/v1/crawl",
    ] {
        assert!(paths.contains_key(route), "{route} is not documented");
    }
    check_required(
        &paths["/v1/hosting/signup"]["post"]["responses"]["200"],
        &signup,
        "signup",
    );
    // Every documented error reference resolves.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/components/").skip(1) {
        let target = r.split('"').next().unwrap();
        let mut node = &doc["components"];
        for part in target.split('/') {
            node = &node[part];
        }
        assert!(node.is_object(), "dangling $ref {target}");
    }
}
