//! The OpenAPI 3 document of the API, written by hand. A test requests every path it lists (and
//! checks each route of the router is listed), with and without the hosting service, and
//! `scripts/schemathesis.sh` fuzzes a running crawler against it, so it stays true.

use serde_json::{json, Value};

fn param(name: &str, location: &str, required: bool, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": location, "required": required, "description": description,
           "schema": schema})
}

fn s() -> Value {
    json!({"type": "string"})
}

/// An archive key: 64 hex of an ed25519 public key that is not of small order, bare or as
/// `hyper://<key>/`. Not every 64 hex is such a key, which a pattern cannot say (a pattern
/// would promise that 00..00 is accepted): the custom format names it, and
/// scripts/schemathesis.sh teaches the fuzzer to generate it.
fn key_schema() -> Value {
    json!({"type": "string", "format": "fritter-key",
           "description": "64 hex of an ed25519 public key that is not of small order, or hyper://<key>/"})
}

/// Strings whose accepted set no portable pattern states exactly carry a custom `format`
/// (their descriptions say what it means), so a fuzzer neither promises more than the server
/// takes nor calls a value the server rightly takes a violation. The formats:
/// - `fritter-key`: see [`key_schema`];
/// - `fritter-status-url`: `hyper://<key>/statuses/<id>.json`;
/// - `fritter-query`: the search grammar within its caps;
/// - `fritter-tag`: 1 to 64 Unicode letters, digits and _, at least one letter, `#` optional;
/// - `fritter-time`: Unix milliseconds (0 to year 9999) or an RFC 3339 time;
/// - `fritter-cursor`: a time-order page cursor, `<createdAt ms>.<ingest seq>`, as returned;
/// - `fritter-offset`: an offset-paging cursor, a whole number, as returned.
fn format(name: &str) -> Value {
    json!({"type": "string", "format": name})
}

/// `scope` and `viewer` as one exploded object (form style, so on the wire they are the two
/// query parameters `scope=` and `viewer=`): that way the document can say that
/// `scope=follows|hops2` needs a `viewer`, which separate parameters cannot.
fn view_param() -> Value {
    json!({"name": "view", "in": "query", "required": false, "style": "form", "explode": true,
           "description": "The query parameters scope (all, the default; follows: the viewer's follows; hops2: and their follows) and viewer (the viewer's archive key, needed by follows and hops2)",
           "schema": {"type": "object", "additionalProperties": false, "properties": {
               "scope": {"type": "string", "enum": ["all", "follows", "hops2"]},
               "viewer": key_schema()},
            "anyOf": [{"required": ["viewer"]}, {"properties": {"scope": {"const": "all"}}}]}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({
        "200": {"description": description, "content": {"application/json": {"schema": schema}}},
        "400": {"$ref": "#/components/responses/BadRequest"},
        "429": {"$ref": "#/components/responses/RateLimited"},
        "503": {"$ref": "#/components/responses/Busy"}
    })
}

/// The document; with `hosting`, the hosting service's routes too.
pub fn document(hosting: bool) -> Value {
    let mut doc = api();
    if hosting {
        if let (Some(Value::Object(paths)), Value::Object(more)) =
            (doc.get_mut("paths"), hosting_paths())
        {
            paths.extend(more);
        }
    }
    doc
}

/// The hosting service's routes (`crate::hosting::api`).
fn hosting_paths() -> Value {
    let key = param(
        "key",
        "path",
        true,
        "The archive key (64 hex) or root URL, hyper://<key>/",
        key_schema(),
    );
    let quota = json!({"type": "object", "required": ["maxBytes", "maxArchives"], "properties": {
        "maxBytes": {"type": "integer"}, "maxArchives": {"type": "integer"}}});
    json!({
      "/v1/hosting/signup": {"post": {"summary": "Start a signup: a nonce to write into the archive as proof of ownership (rate-limited per client)",
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["archive"], "properties": {
              "archive": key_schema()}}}}},
          "responses": {
              "200": {"description": "The nonce and where to write it", "content": {"application/json": {"schema": {"type": "object",
                  "required": ["archive", "service", "host", "nonce", "proofPath", "expiresAt", "expiresInSecs", "next"], "properties": {
                  "archive": {"type": "string"}, "service": {"type": "string"}, "host": {"type": "string"},
                  "nonce": {"type": "string"}, "proofPath": {"type": "string"}, "expiresAt": {"type": "string"},
                  "expiresInSecs": {"type": "integer"}, "next": {"type": "string"}}}}}},
              "400": {"$ref": "#/components/responses/BadRequest"},
              "409": {"description": "The archive already has an account", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "413": {"$ref": "#/components/responses/TooLarge"},
              "429": {"$ref": "#/components/responses/RateLimited"},
              "503": {"$ref": "#/components/responses/Busy"}}}},
      "/v1/hosting/accounts": {"get": {"summary": "Every account with its proof entry, for anyone to re-check",
          "responses": ok("The accounts", json!({"type": "object", "required": ["service", "quota", "count", "accounts"], "properties": {
              "service": {"type": "string"}, "quota": quota, "count": {"type": "integer"},
              "accounts": {"type": "array", "items": {"type": "object"}}}}))}},
      "/v1/hosting/{key}": {"get": {"summary": "An account: its archives, quota use and what was refused; or the pending signup and what it waits for",
          "parameters": [key],
          "responses": {
              "200": {"description": "The account or pending signup", "content": {"application/json": {"schema": {"type": "object",
                  "required": ["archive", "account"], "properties": {"archive": {"type": "string"}, "account": {"type": "boolean"},
                  "pending": {"type": "boolean"}}}}}},
              "400": {"$ref": "#/components/responses/BadRequest"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "429": {"$ref": "#/components/responses/RateLimited"},
              "503": {"$ref": "#/components/responses/Busy"}}}}
    })
}

/// The crawler's own API.
fn api() -> Value {
    let limit = param(
        "limit",
        "query",
        false,
        "Page size, 1 to 100",
        json!({"type": "integer", "minimum": 1, "maximum": 100}),
    );
    let cursor = param(
        "cursor",
        "query",
        false,
        "The cursor of the previous page, unchanged",
        format("fritter-cursor"),
    );
    let view = view_param();
    let key = param(
        "key",
        "path",
        true,
        "An archive key (64 hex) or hyper:// URL",
        key_schema(),
    );
    let time = |name: &str, what: &str| {
        param(
            name,
            "query",
            false,
            &format!(
                "{what}: Unix milliseconds (or an RFC 3339 time such as 2024-05-01T12:00:00Z)"
            ),
            format("fritter-time"),
        )
    };
    let page = json!({"type": "object", "required": ["hits", "coverage"], "properties": {
        "hits": {"type": "array", "items": {"$ref": "#/components/schemas/StatusHit"}},
        "cursor": {"type": ["string", "null"]},
        "coverage": {"$ref": "#/components/schemas/Coverage"}}});
    json!({
      "openapi": "3.1.0",
      "info": {"title": "Fritter crawler API", "version": env!("CARGO_PKG_VERSION"),
               "description": "Mentions, threads, trending tags and search over every archive the crawler holds. Every hit names its archive, entry seq and entry hash; every answer states its coverage."},
      "paths": {
        "/v1/status": {"get": {"summary": "Crawler status: archives known, synced, lagging, errors, index checkpoint",
            "responses": ok("Status", json!({"type": "object", "required": ["archives", "synced", "lagging", "errors", "index"]}))}},
        "/v1/mentions/{key}": {"get": {"summary": "Statuses mentioning an archive, newest first",
            "parameters": [key, limit, cursor, view],
            "responses": ok("A page of statuses", page.clone())}},
        "/v1/thread": {"get": {"summary": "The whole reply tree of the thread a status belongs to; parents not crawled are placeholders (notFound); with a scope, replies from outside it are left out, or kept as placeholders (outOfScope) when they hold replies in it",
            "parameters": [param("uri", "query", true, "A status URL, hyper://<key>/statuses/<id>.json",
                json!({"type": "string", "format": "fritter-status-url"})), view],
            "responses": ok("The thread", json!({"type": "object", "required": ["root", "thread", "coverage"], "properties": {
                "root": {"type": "string"}, "truncated": {"type": "boolean"},
                "thread": {"$ref": "#/components/schemas/ThreadNode"},
                "coverage": {"$ref": "#/components/schemas/Coverage"}}}))}},
        "/v1/trending": {"get": {"summary": "Top tags in a window by distinct authors, then posts; a tag needs several authors",
            "parameters": [param("window", "query", false, "1h, 24h (default) or 7d", json!({"type": "string", "enum": ["1h", "24h", "7d"]})), limit, view],
            "responses": ok("Trends", json!({"type": "object", "required": ["trends", "coverage"], "properties": {
                "buckets": {"type": "object", "description": "The time buckets of each trend's series: count buckets of widthMs from startMs (Unix ms); the last also counts statuses dated up to 5 minutes ahead",
                    "required": ["startMs", "widthMs", "count"], "properties": {
                    "startMs": {"type": "integer"}, "widthMs": {"type": "integer"}, "count": {"type": "integer"}}},
                "trends": {"type": "array", "items": {"type": "object", "required": ["tag", "posts", "authors", "samples"], "properties": {
                    "tag": {"type": "string"}, "posts": {"type": "integer"}, "authors": {"type": "integer"},
                    "firstSeenMs": {"type": "integer"},
                    "series": {"type": "array", "items": {"type": "integer"}, "description": "Posts per bucket of `buckets`, oldest first"},
                    "samples": {"type": "array", "items": {"$ref": "#/components/schemas/StatusHit"}}}}},
                "coverage": {"$ref": "#/components/schemas/Coverage"}}}))}},
        "/v1/search": {"get": {"summary": "Search statuses",
            "description": "q: words (all must match), \"phrases\", #tags, @names, -excluded, OR, parentheses; at most 256 bytes, 16 terms, depth 4.",
            "parameters": [param("q", "query", false, "The query in the grammar above (format fritter-query)",
                    json!({"type": "string", "format": "fritter-query", "maxLength": 256})),
                param("author", "query", false, "Archive key", key_schema()),
                param("tag", "query", false, "A tag, with or without #: 1 to 64 letters, digits and _, at least one letter",
                    format("fritter-tag")),
                param("mention", "query", false, "Archive key of a mentioned archive", key_schema()),
                param("lang", "query", false, "Language tag", json!({"type": "string", "pattern": "^[a-zA-Z0-9-]{1,35}$"})),
                time("since", "Inclusive start"),
                time("until", "Exclusive end (an end not after the start matches nothing)"),
                {"name": "order", "in": "query", "required": false, "style": "form", "explode": true,
                 "description": "The query parameters sort (latest, the default, or top) and cursor (of the previous page, unchanged: <ms>.<seq> for latest, an offset up to 1000 for top)",
                 "schema": {"type": "object", "additionalProperties": false, "properties": {
                     "sort": {"type": "string", "enum": ["latest", "top"]}, "cursor": {"type": "string"}},
                  "anyOf": [
                     {"required": ["sort"], "properties": {"sort": {"const": "top"}, "cursor": format("fritter-offset")}},
                     {"properties": {"sort": {"const": "latest"}, "cursor": format("fritter-cursor")}}]}},
                limit, view],
            "responses": ok("A page of statuses", page)}},
        "/v1/archives/{key}": {"get": {"summary": "An archive: profile, counts, log and index checkpoint",
            "parameters": [key],
            "responses": {"200": {"description": "The archive", "content": {"application/json": {"schema": {"type": "object", "required": ["archive", "log", "coverage"]}}}},
                          "400": {"$ref": "#/components/responses/BadRequest"},
                          "404": {"$ref": "#/components/responses/NotFound"}}}},
        "/v1/archives/{key}/followers": {"get": {"summary": "Archives whose follow list holds this one",
            "parameters": [key, limit, param("cursor", "query", false, "The cursor of the previous page, unchanged",
                format("fritter-offset"))],
            "responses": ok("Followers", json!({"type": "object", "required": ["followers", "total", "coverage"]}))}},
        "/v1/stream": {"get": {"summary": "Server-sent events: one `status` event per status indexed, one `delete` event (uri, archive, seq, hash, deleted: true) per status deleted (sent to every stream but for the author filter: a deleted status has no tags left); resume with Last-Event-ID",
            "parameters": [param("tag", "query", false, "Only this tag", s()),
                param("mention", "query", false, "Only statuses mentioning this archive", s()),
                param("author", "query", false, "Only statuses of this archive", s()),
                param("cursor", "query", false, "Resume after this event id (as Last-Event-ID)", s()),
                param("Last-Event-ID", "header", false, "Resume after this event id", s())],
            "responses": {"200": {"description": "An event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                          "400": {"$ref": "#/components/responses/BadRequest"},
                          "503": {"$ref": "#/components/responses/Busy"}}}},
        "/v1/crawl": {"post": {"summary": "Ask the crawler to crawl an archive (rate-limited per client)",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["url"], "properties": {"url": key_schema()}, "additionalProperties": false}}}},
            "responses": {"202": {"description": "Accepted", "content": {"application/json": {"schema": {"type": "object", "required": ["archive", "new"], "properties": {"archive": {"type": "string"}, "new": {"type": "boolean"}}}}}},
                          "400": {"$ref": "#/components/responses/BadRequest"},
                          "413": {"$ref": "#/components/responses/TooLarge"},
                          "429": {"$ref": "#/components/responses/RateLimited"},
                          "503": {"$ref": "#/components/responses/Busy"}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3 document", "content": {"application/json": {"schema": {"type": "object"}}}}}}}
      },
      "components": {
        "schemas": {
          "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
              "code": {"type": "string"}, "message": {"type": "string"}, "param": {"type": "string"}}}}},
          "Coverage": {"type": "object", "required": ["archives", "synced", "lagging", "errors", "indexCursor", "asOf", "scope"], "properties": {
              "archives": {"type": "integer"}, "synced": {"type": "integer"}, "lagging": {"type": "integer"},
              "errors": {"type": "integer"}, "indexCursor": {"type": "integer"}, "asOf": {"type": "string"},
              "scope": {"type": "string"}, "viewer": {"type": "string"}, "archivesInScope": {"type": "integer"},
              "crawledInScope": {"type": "integer"}}},
          "StatusHit": {"type": "object", "required": ["uri", "archive", "path", "seq", "hash", "status"], "properties": {
              "uri": {"type": "string"}, "archive": {"type": "string"}, "path": {"type": "string"},
              "seq": {"type": "integer"}, "hash": {"type": "string"}, "cursor": {"type": "integer"},
              "status": {"type": "object"}}},
          "ThreadNode": {"type": "object", "required": ["uri", "replies"], "properties": {
              "uri": {"type": "string"}, "post": {"$ref": "#/components/schemas/StatusHit"},
              "notFound": {"type": "boolean"}, "outOfScope": {"type": "boolean"}, "parentChanged": {"type": "boolean"},
              "replies": {"type": "array", "items": {"$ref": "#/components/schemas/ThreadNode"}}}}
        },
        "responses": {
          "BadRequest": {"description": "A bad parameter, named in error.param", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "NotFound": {"description": "Not found", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "RateLimited": {"description": "Too many requests", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Busy": {"description": "Busy or timed out", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "TooLarge": {"description": "The request body is over the limit", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    })
}
