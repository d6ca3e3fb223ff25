//! The OpenAPI 3 document of the API, written by hand. A test requests every path it lists (and
//! checks each route of the router is listed), so it stays true.

use axum::Json;
use serde_json::{json, Value};

/// `GET /openapi.json`.
pub async fn handler() -> Json<Value> {
    Json(document())
}

fn param(name: &str, location: &str, required: bool, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": location, "required": required, "description": description,
           "schema": schema})
}

fn s() -> Value {
    json!({"type": "string"})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({
        "200": {"description": description, "content": {"application/json": {"schema": schema}}},
        "400": {"$ref": "#/components/responses/BadRequest"},
        "429": {"$ref": "#/components/responses/RateLimited"},
        "503": {"$ref": "#/components/responses/Busy"}
    })
}

/// The document.
pub fn document() -> Value {
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
        s(),
    );
    let scope = param(
        "scope",
        "query",
        false,
        "all (default), follows (the viewer's follows) or hops2 (and their follows)",
        json!({"type": "string", "enum": ["all", "follows", "hops2"]}),
    );
    let viewer = param(
        "viewer",
        "query",
        false,
        "The viewer's archive key, for scope=follows|hops2",
        s(),
    );
    let key = param(
        "key",
        "path",
        true,
        "An archive key (64 hex) or hyper:// URL",
        s(),
    );
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
            "parameters": [key, limit, cursor, scope, viewer],
            "responses": ok("A page of statuses", page.clone())}},
        "/v1/thread": {"get": {"summary": "The whole reply tree of the thread a status belongs to; parents not crawled are placeholders (notFound)",
            "parameters": [param("uri", "query", true, "A status URL, hyper://<key>/statuses/<id>.json", s())],
            "responses": ok("The thread", json!({"type": "object", "required": ["root", "thread", "coverage"], "properties": {
                "root": {"type": "string"}, "truncated": {"type": "boolean"},
                "thread": {"$ref": "#/components/schemas/ThreadNode"},
                "coverage": {"$ref": "#/components/schemas/Coverage"}}}))}},
        "/v1/trending": {"get": {"summary": "Top tags in a window by distinct authors, then posts; a tag needs several authors",
            "parameters": [param("window", "query", false, "1h, 24h (default) or 7d", json!({"type": "string", "enum": ["1h", "24h", "7d"]})), limit, scope, viewer],
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
            "parameters": [param("q", "query", false, "The query", s()),
                param("author", "query", false, "Archive key", s()),
                param("tag", "query", false, "A tag, with or without #", s()),
                param("mention", "query", false, "Archive key of a mentioned archive", s()),
                param("lang", "query", false, "Language tag", s()),
                param("since", "query", false, "RFC 3339 time or Unix ms, inclusive", s()),
                param("until", "query", false, "RFC 3339 time or Unix ms, exclusive", s()),
                param("sort", "query", false, "latest (default) or top", json!({"type": "string", "enum": ["latest", "top"]})),
                limit, cursor, scope, viewer],
            "responses": ok("A page of statuses", page)}},
        "/v1/archives/{key}": {"get": {"summary": "An archive: profile, counts, log and index checkpoint",
            "parameters": [key],
            "responses": {"200": {"description": "The archive", "content": {"application/json": {"schema": {"type": "object", "required": ["archive", "log", "coverage"]}}}},
                          "400": {"$ref": "#/components/responses/BadRequest"},
                          "404": {"$ref": "#/components/responses/NotFound"}}}},
        "/v1/archives/{key}/followers": {"get": {"summary": "Archives whose follow list holds this one",
            "parameters": [key, limit, cursor],
            "responses": ok("Followers", json!({"type": "object", "required": ["followers", "total", "coverage"]}))}},
        "/v1/stream": {"get": {"summary": "Server-sent events: one `status` event per status indexed; resume with Last-Event-ID",
            "parameters": [param("tag", "query", false, "Only this tag", s()),
                param("mention", "query", false, "Only statuses mentioning this archive", s()),
                param("author", "query", false, "Only statuses of this archive", s()),
                param("cursor", "query", false, "Resume after this event id (as Last-Event-ID)", s()),
                param("Last-Event-ID", "header", false, "Resume after this event id", s())],
            "responses": {"200": {"description": "An event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                          "400": {"$ref": "#/components/responses/BadRequest"},
                          "503": {"$ref": "#/components/responses/Busy"}}}},
        "/v1/crawl": {"post": {"summary": "Ask the crawler to crawl an archive (rate-limited per client)",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}, "additionalProperties": false}}}},
            "responses": {"202": {"description": "Accepted", "content": {"application/json": {"schema": {"type": "object", "required": ["archive", "new"], "properties": {"archive": {"type": "string"}, "new": {"type": "boolean"}}}}}},
                          "400": {"$ref": "#/components/responses/BadRequest"},
                          "429": {"$ref": "#/components/responses/RateLimited"}}}},
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
              "notFound": {"type": "boolean"}, "parentChanged": {"type": "boolean"},
              "replies": {"type": "array", "items": {"$ref": "#/components/schemas/ThreadNode"}}}}
        },
        "responses": {
          "BadRequest": {"description": "A bad parameter, named in error.param", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "NotFound": {"description": "Not found", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "RateLimited": {"description": "Too many requests", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Busy": {"description": "Busy or timed out", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    })
}
