//! The request parameters, parsed by hand: an unknown, repeated, oversized or malformed
//! parameter is a 400 that names it and says what it takes.

use std::collections::HashMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use fritter_common::crypto::PublicKey;
use fritter_common::model::ArchiveUrl;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, AppState, MAX_LIMIT, MAX_PARAM_BYTES};
use crate::index::search;

/// Most distinct query parameters kept (no endpoint takes more than 12).
const MAX_PARAMS: usize = 32;

/// A request's query parameters. A name given twice is remembered, not silently overwritten,
/// so [`params`] can refuse it by name.
#[derive(Default)]
pub(super) struct Params {
    map: HashMap<String, String>,
    repeated: Option<String>,
    too_many: bool,
}

impl std::ops::Deref for Params {
    type Target = HashMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Params;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("query parameters")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Params, A::Error> {
                let mut p = Params::default();
                while let Some((k, v)) = a.next_entry::<String, String>()? {
                    if p.map.contains_key(&k) {
                        p.repeated.get_or_insert(k);
                    } else if p.map.len() >= MAX_PARAMS {
                        p.too_many = true;
                    } else {
                        p.map.insert(k, v);
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_map(Visitor)
    }
}

pub(super) fn params(
    q: Result<Query<Params>, QueryRejection>,
    allowed: &[&str],
) -> Result<Params, ApiError> {
    let Query(map) = q.map_err(|e| ApiError::param("query", e.body_text()))?;
    if map.too_many {
        return Err(ApiError::param(
            "query",
            format!(
                "too many parameters: this endpoint takes {}",
                allowed.join(", ")
            ),
        ));
    }
    if let Some(k) = &map.repeated {
        return Err(ApiError::param(k, "given more than once: give it once"));
    }
    for (k, v) in map.iter() {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::param(
                k,
                if allowed.is_empty() {
                    "unknown parameter; this endpoint takes none".to_owned()
                } else {
                    format!(
                        "unknown parameter; this endpoint takes {}",
                        allowed.join(", ")
                    )
                },
            ));
        }
        if v.len() > MAX_PARAM_BYTES {
            return Err(ApiError::param(
                k,
                format!("too long: at most {MAX_PARAM_BYTES} bytes"),
            ));
        }
    }
    Ok(map)
}

/// The `{key}` of a path; a path that does not decode (invalid UTF-8) is a bad `key`.
pub(super) fn path_key(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(key) = p.map_err(|e| ApiError::param("key", e.body_text()))?;
    if key.len() > MAX_PARAM_BYTES {
        return Err(ApiError::param(
            "key",
            format!("too long: at most {MAX_PARAM_BYTES} bytes"),
        ));
    }
    Ok(key)
}

pub(super) fn archive_key(name: &str, value: &str) -> Result<String, ApiError> {
    let url = ArchiveUrl::parse_lenient(value)
        .map_err(|e| ApiError::param(name, format!("not an archive key or URL: {e}")))?;
    Ok(url.key().to_string())
}

pub(super) fn opt_key(p: &Params, name: &str) -> Result<Option<String>, ApiError> {
    p.get(name).map(|v| archive_key(name, v)).transpose()
}

pub(super) fn limit(p: &Params, default: usize) -> Result<usize, ApiError> {
    match p.get("limit") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::param(
                "limit",
                format!("a whole number from 1 to {MAX_LIMIT}"),
            )),
        },
    }
}

/// A time: RFC 3339 or Unix milliseconds.
pub(super) fn time_ms(p: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    let Some(v) = p.get(name) else {
        return Ok(None);
    };
    if let Ok(ms) = v.parse::<i64>() {
        if (0..=253_402_300_799_999).contains(&ms) {
            return Ok(Some(ms));
        }
    }
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| Some((t.unix_timestamp_nanos() / 1_000_000) as i64))
        .map_err(|_| {
            ApiError::param(
                name,
                "an RFC 3339 time (2024-05-01T12:00:00Z) or Unix milliseconds",
            )
        })
}

pub(super) fn tag(p: &Params) -> Result<Option<String>, ApiError> {
    let Some(t) = p.get("tag") else {
        return Ok(None);
    };
    let t = t.strip_prefix('#').unwrap_or(t);
    let tags = fritter_common::model::extract_tags(&format!("#{t}"));
    match tags.as_slice() {
        [one] if one.chars().count() == t.chars().count() => Ok(Some(one.clone())),
        _ => Err(ApiError::param(
            "tag",
            "a tag is 1 to 64 letters, digits and _, with at least one letter",
        )),
    }
}

/// `scope` and `viewer`: the archives a view is limited to, if any.
pub(super) async fn scope(
    state: &AppState,
    p: &Params,
) -> Result<(Option<Vec<String>>, Value), ApiError> {
    let scope = p.get("scope").map_or("all", String::as_str);
    // A viewer is checked even where the scope does not use it, so a typo is not ignored.
    let viewer = opt_key(p, "viewer")?;
    let hops = match scope {
        "all" => return Ok((None, json!({"scope": "all"}))),
        "follows" => 1,
        "hops2" => 2,
        _ => return Err(ApiError::param("scope", "one of all, follows, hops2")),
    };
    let viewer = viewer.ok_or_else(|| {
        ApiError::param("viewer", "scope=follows and scope=hops2 need a viewer key")
    })?;
    let v = viewer.clone();
    let set = state
        .blocking(move |idx| Ok(search::scope(idx, &v, hops)?))
        .await?;
    let crawler = state.crawler().clone();
    let crawled = set
        .iter()
        .filter(|k| {
            PublicKey::from_hex(k)
                .map(|k| crawler.holds(&k))
                .unwrap_or(false)
        })
        .count();
    let viewer_known = PublicKey::from_hex(&viewer).is_ok_and(|k| crawler.holds(&k));
    let info = json!({"scope": scope, "viewer": viewer, "viewerCrawled": viewer_known,
                      "archivesInScope": set.len(), "crawledInScope": crawled});
    Ok((Some(set), info))
}

pub(super) fn cursor_latest(p: &Params) -> Result<Option<String>, ApiError> {
    match p.get("cursor") {
        None => Ok(None),
        Some(c) if search::parse_cursor(c).is_some() => Ok(Some(c.clone())),
        Some(_) => Err(ApiError::param(
            "cursor",
            "pass back the cursor of the previous page unchanged",
        )),
    }
}
