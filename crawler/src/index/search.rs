//! The read side of the index: the queries behind each API view. Every function is blocking
//! (run it off the async workers) and bounded by the limits its caller passes in.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery};
use tantivy::schema::{Field, IndexRecordOption, Value as _};
use tantivy::{DocAddress, DocId, Searcher, SegmentReader, TantivyDocument, Term};

use super::columns::ColumnCache;
use super::query::{self, Expr};
use super::trends::TagCount;
use super::{Fields, Index, IndexError};

/// Most replies a thread view gathers.
pub const MAX_THREAD_POSTS: usize = 2000;
/// Deepest reply chain a thread view nests; deeper replies are cut (`truncated`).
pub const MAX_THREAD_DEPTH: usize = 100;
/// Largest offset of `sort=top` paging.
pub const MAX_OFFSET: usize = 1000;
/// Most archives a scope holds.
pub const MAX_SCOPE: usize = 20_000;

fn term(field: Field, s: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, s),
        IndexRecordOption::Basic,
    ))
}

/// Filters on statuses.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub text: Option<Expr>,
    /// Hex keys: only statuses written by these archives.
    pub authors: Option<Vec<String>>,
    pub tag: Option<String>,
    /// Hex key of a mentioned archive.
    pub mention: Option<String>,
    pub lang: Option<String>,
    /// Thread root URL.
    pub root: Option<String>,
    /// Unix milliseconds, inclusive.
    pub since: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub until: Option<i64>,
    /// Only documents with a larger ingest sequence (exclusive).
    pub after_iseq: Option<u64>,
}

impl Filter {
    fn clauses(&self, f: &Fields) -> Vec<(Occur, Box<dyn Query>)> {
        self.clauses_of(f, "status")
    }

    /// The clauses for documents of `kind` (`status`, or a deleted status's tombstone).
    fn clauses_of(&self, f: &Fields, kind: &str) -> Vec<(Occur, Box<dyn Query>)> {
        let mut c: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        // Only statuses have tags, mentions and a thread root: with one of those the kind
        // clause (a posting list of every status) would only slow the intersection down.
        let status_only = self.tag.is_some() || self.mention.is_some() || self.root.is_some();
        if !(kind == "status" && status_only) {
            c.push((Occur::Must, term(f.kind, kind)));
        }
        if let Some(e) = &self.text {
            c.push((Occur::Must, query::to_query(e, f.text)));
        }
        if let Some(a) = &self.authors {
            c.push((
                Occur::Must,
                Box::new(TermSetQuery::new(
                    a.iter().map(|k| Term::from_field_text(f.archive, k)),
                )),
            ));
        }
        if let Some(t) = &self.tag {
            c.push((Occur::Must, term(f.tags, t)));
        }
        if let Some(m) = &self.mention {
            c.push((Occur::Must, term(f.mentions, m)));
        }
        if let Some(l) = &self.lang {
            c.push((Occur::Must, term(f.lang, l)));
        }
        if let Some(r) = &self.root {
            c.push((Occur::Must, term(f.root, r)));
        }
        if self.since.is_some() || self.until.is_some() {
            c.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    self.since.map_or(Bound::Unbounded, |s| {
                        Bound::Included(Term::from_field_i64(f.created, s))
                    }),
                    self.until.map_or(Bound::Unbounded, |u| {
                        Bound::Excluded(Term::from_field_i64(f.created, u))
                    }),
                )),
            ));
        }
        if let Some(i) = self.after_iseq {
            c.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Excluded(Term::from_field_u64(f.iseq, i)),
                    Bound::Unbounded,
                )),
            ));
        }
        c
    }
}

/// How hits are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Newest `createdAt` first; cursor paging.
    Latest,
    /// Best text match first; offset paging up to [`MAX_OFFSET`].
    Top,
}

/// One page of hits, each the stored JSON as is (a page is passed through, never parsed).
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub hits: Vec<Box<RawValue>>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub cursor: Option<String>,
}

/// The stored hit of a document, unparsed.
fn stored_raw(
    searcher: &Searcher,
    f: &Fields,
    addr: DocAddress,
) -> Result<Box<RawValue>, IndexError> {
    let doc: TantivyDocument = searcher.doc(addr)?;
    let json = doc
        .get_first(f.json)
        .and_then(|v| v.as_bytes())
        .and_then(super::packed::unpack)
        .unwrap_or_else(|| "null".to_owned());
    // Written by the ingester with serde_json, so it parses; `null` if the store was damaged.
    Ok(RawValue::from_string(json)
        .or_else(|_| RawValue::from_string("null".to_owned()))
        .map_err(|e| tantivy::TantivyError::InternalError(e.to_string()))?)
}

fn stored(searcher: &Searcher, f: &Fields, addr: DocAddress) -> Result<Value, IndexError> {
    let doc: TantivyDocument = searcher.doc(addr)?;
    Ok(doc
        .get_first(f.json)
        .and_then(|v| v.as_bytes())
        .and_then(super::packed::unpack)
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null))
}

/// Parses a `latest` cursor, `<createdAt ms>.<ingest seq>`.
pub fn parse_cursor(s: &str) -> Option<(i64, u64)> {
    let (c, i) = s.split_once('.')?;
    Some((c.parse().ok()?, i.parse().ok()?))
}

type SortKey = (i64, u64);

fn by_created(
    columns: &Arc<ColumnCache>,
) -> impl Fn(&SegmentReader) -> Box<dyn FnMut(DocId) -> SortKey> + Send + Sync + 'static {
    let columns = columns.clone();
    move |seg: &SegmentReader| {
        let cols = columns.get(seg);
        let (c, s) = (cols.created, cols.iseq);
        Box::new(move |doc| {
            (
                c.as_ref().and_then(|c| c.first(doc)).unwrap_or(i64::MIN),
                s.as_ref().and_then(|s| s.first(doc)).unwrap_or(0),
            )
        })
    }
}

/// Statuses matching `filter`, one page.
pub fn statuses(
    idx: &Index,
    filter: &Filter,
    sort: Sort,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page, IndexError> {
    let f = &idx.f;
    let searcher = idx.reader.searcher();
    let limit = limit.clamp(1, 100);
    let mut clauses = filter.clauses(f);
    match sort {
        Sort::Latest => {
            if let Some((c, i)) = cursor.and_then(parse_cursor) {
                // Strictly after (c, i) in (created desc, iseq desc) order.
                let before: Box<dyn Query> = Box::new(RangeQuery::new(
                    Bound::Unbounded,
                    Bound::Excluded(Term::from_field_i64(f.created, c)),
                ));
                let tie: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
                    (
                        Occur::Must,
                        Box::new(RangeQuery::new(
                            Bound::Included(Term::from_field_i64(f.created, c)),
                            Bound::Included(Term::from_field_i64(f.created, c)),
                        )) as Box<dyn Query>,
                    ),
                    (
                        Occur::Must,
                        Box::new(RangeQuery::new(
                            Bound::Unbounded,
                            Bound::Excluded(Term::from_field_u64(f.iseq, i)),
                        )),
                    ),
                ]));
                clauses.push((
                    Occur::Must,
                    Box::new(BooleanQuery::new(vec![
                        (Occur::Should, before),
                        (Occur::Should, tie),
                    ])),
                ));
            }
            let q = BooleanQuery::new(clauses);
            let top = searcher.search(
                &q,
                &TopDocs::with_limit(limit + 1).order_by(by_created(&idx.columns)),
            )?;
            let more = top.len() > limit;
            let mut hits = Vec::with_capacity(limit);
            let mut last = None;
            for (k, addr) in top.into_iter().take(limit) {
                hits.push(stored_raw(&searcher, f, addr)?);
                last = Some(k);
            }
            Ok(Page {
                hits,
                cursor: more
                    .then_some(last)
                    .flatten()
                    .map(|(c, i)| format!("{c}.{i}")),
            })
        }
        Sort::Top => {
            let offset = cursor
                .and_then(|c| c.parse::<usize>().ok())
                .unwrap_or(0)
                .min(MAX_OFFSET);
            let q = BooleanQuery::new(clauses);
            let top = searcher.search(
                &q,
                &TopDocs::with_limit(limit + 1)
                    .and_offset(offset)
                    .order_by_score(),
            )?;
            let more = top.len() > limit && offset + limit < MAX_OFFSET;
            let hits = top
                .into_iter()
                .take(limit)
                .map(|(_, addr)| stored_raw(&searcher, f, addr))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page {
                hits,
                cursor: more.then(|| (offset + limit).to_string()),
            })
        }
    }
}

/// Statuses written after ingest sequence `after`, oldest first (the stream), and the
/// tombstones of statuses deleted since (`"deleted": true`). A tombstone has no text, tags or
/// mentions left to filter on, so every stream gets it, but for the author filter.
pub fn since_iseq(
    idx: &Index,
    filter: &Filter,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<(u64, Value)>, IndexError> {
    let f = &idx.f;
    let searcher = idx.reader.searcher();
    let filter = Filter {
        after_iseq: after,
        ..filter.clone()
    };
    let deleted = Filter {
        authors: filter.authors.clone(),
        after_iseq: after,
        ..Filter::default()
    }
    .clauses_of(f, crate::ingest::DELETED);
    let q = BooleanQuery::new(vec![
        (
            Occur::Should,
            Box::new(BooleanQuery::new(filter.clauses(f))) as Box<dyn Query>,
        ),
        (Occur::Should, Box::new(BooleanQuery::new(deleted))),
    ]);
    let top = searcher.search(
        &q,
        &TopDocs::with_limit(limit.max(1)).order_by({
            let columns = idx.columns.clone();
            move |seg: &SegmentReader| {
                let s = columns.get(seg).iseq;
                move |doc: DocId| {
                    std::cmp::Reverse(s.as_ref().and_then(|s| s.first(doc)).unwrap_or(u64::MAX))
                }
            }
        }),
    )?;
    top.into_iter()
        .map(|(std::cmp::Reverse(i), addr)| Ok((i, stored(&searcher, f, addr)?)))
        .collect()
}

fn find_one(idx: &Index, searcher: &Searcher, q: &dyn Query) -> Result<Option<Value>, IndexError> {
    let top = searcher.search(q, &TopDocs::with_limit(1).order_by_score())?;
    match top.first() {
        Some((_, addr)) => Ok(Some(stored(searcher, &idx.f, *addr)?)),
        None => Ok(None),
    }
}

/// The status at `uri`, if indexed.
pub fn status(idx: &Index, uri: &str) -> Result<Option<Value>, IndexError> {
    let searcher = idx.reader.searcher();
    find_status(idx, &searcher, uri)
}

/// The status document at `uri`: found by its document key, and only if it is a status (the
/// key of a profile has the same shape).
fn find_status(idx: &Index, searcher: &Searcher, uri: &str) -> Result<Option<Value>, IndexError> {
    let q = BooleanQuery::new(vec![
        (Occur::Must, term(idx.f.kind, "status")),
        (Occur::Must, term(idx.f.key, super::status_key(uri))),
    ]);
    find_one(idx, searcher, &q)
}

fn uri_of(hit: &Value) -> Option<&str> {
    hit.get("uri").and_then(Value::as_str)
}

fn parent_of(hit: &Value) -> Option<(&str, Option<&str>)> {
    let p = hit.pointer("/status/threadParent")?;
    Some((
        p.get("url").and_then(Value::as_str)?,
        p.get("hash").and_then(Value::as_str),
    ))
}

/// The whole reply tree of the thread `uri` belongs to. With `authors` (hex keys, a scope),
/// replies by anyone else are left out; one that has replies in the scope stays as a
/// placeholder (`outOfScope`) holding them. The root is always shown: it is what was asked.
pub fn thread(idx: &Index, uri: &str, authors: Option<&[String]>) -> Result<Value, IndexError> {
    let scope: Option<HashSet<&str>> = authors.map(|a| a.iter().map(String::as_str).collect());
    let f = &idx.f;
    let searcher = idx.reader.searcher();
    let asked = find_status(idx, &searcher, uri)?;
    let root_uri = asked
        .as_ref()
        .and_then(|h| h.pointer("/status/threadRoot/url"))
        .and_then(Value::as_str)
        .unwrap_or(uri)
        .to_owned();
    let root = find_status(idx, &searcher, &root_uri)?;
    let replies = searcher.search(
        &*term(f.root, &root_uri),
        &TopDocs::with_limit(MAX_THREAD_POSTS + 1).order_by(by_created(&idx.columns)),
    )?;
    let mut partial = replies.len() > MAX_THREAD_POSTS;
    let mut posts: HashMap<String, Value> = HashMap::new();
    // Oldest first, so children come out in time order.
    for (_, addr) in replies.into_iter().take(MAX_THREAD_POSTS).rev() {
        let hit = stored(&searcher, f, addr)?;
        if let Some(u) = uri_of(&hit) {
            posts.insert(u.to_owned(), hit);
        }
    }
    let mut order: Vec<(i64, u64, String)> = posts
        .iter()
        .map(|(u, h)| {
            let created = h
                .pointer("/status/createdAt")
                .and_then(Value::as_str)
                .and_then(|s| {
                    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .map_or(0, |t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
            let iseq = h.get("cursor").and_then(Value::as_u64).unwrap_or(0);
            (created, iseq, u.clone())
        })
        .collect();
    order.sort();
    let mut children: HashMap<String, Vec<String>> = HashMap::new();
    let mut missing: Vec<String> = Vec::new();
    for (_, _, u) in &order {
        let Some((parent, _)) = posts.get(u).and_then(parent_of) else {
            continue;
        };
        let parent = parent.to_owned();
        if parent != root_uri && !posts.contains_key(&parent) && !children.contains_key(&parent) {
            missing.push(parent.clone());
        }
        children.entry(parent).or_default().push(u.clone());
    }
    let mut tree = Tree {
        posts: &posts,
        children: &children,
        scope: scope.as_ref(),
        visited: HashSet::new(),
        truncated: false,
        shown: usize::from(root.is_some()),
    };
    let mut root_node = tree
        .node(&root_uri, root.as_ref(), 0, true)
        .unwrap_or(Value::Null);
    // Parents that were not crawled: placeholders under the root, holding their replies.
    if let Some(list) = root_node.get_mut("replies").and_then(Value::as_array_mut) {
        for m in &missing {
            list.extend(tree.node(m, None, 1, false));
        }
    }
    partial |= tree.truncated;
    Ok(json!({
        "root": root_uri,
        "requested": uri,
        "posts": tree.shown,
        "truncated": partial,
        "thread": root_node,
    }))
}

/// Builds the nested reply tree of [`thread`].
struct Tree<'a> {
    posts: &'a HashMap<String, Value>,
    children: &'a HashMap<String, Vec<String>>,
    scope: Option<&'a HashSet<&'a str>>,
    visited: HashSet<String>,
    truncated: bool,
    /// Posts shown in the tree.
    shown: usize,
}

impl Tree<'_> {
    /// The node of `uri` and its replies; `None` when neither it nor any reply under it is in
    /// the scope (the root is kept whatever its author).
    fn node(&mut self, uri: &str, hit: Option<&Value>, depth: usize, root: bool) -> Option<Value> {
        self.visited.insert(uri.to_owned());
        let mut replies = Vec::new();
        if let Some(kids) = self.children.get(uri) {
            if depth >= MAX_THREAD_DEPTH {
                self.truncated = true;
            } else {
                for k in kids {
                    if self.visited.contains(k) {
                        continue;
                    }
                    let child = self.posts.get(k);
                    let Some(mut n) = self.node(k, child, depth + 1, false) else {
                        continue;
                    };
                    // Flag a reply whose pinned parent hash is not the version indexed.
                    if let (Some(h), Some((_, Some(pinned)))) = (hit, child.and_then(parent_of)) {
                        if h.get("hash").and_then(Value::as_str) != Some(pinned) {
                            n["parentChanged"] = Value::Bool(true);
                        }
                    }
                    replies.push(n);
                }
            }
        }
        let in_scope = |h: &Value| {
            self.scope.is_none_or(|s| {
                h.get("archive")
                    .and_then(Value::as_str)
                    .is_some_and(|a| s.contains(a))
            })
        };
        match hit {
            Some(h) if root || in_scope(h) => {
                if !root {
                    self.shown += 1;
                }
                Some(json!({"uri": uri, "post": h, "replies": replies}))
            }
            Some(_) if replies.is_empty() => None,
            Some(_) => Some(json!({"uri": uri, "outOfScope": true, "replies": replies})),
            None if replies.is_empty() && !root && self.scope.is_some() => None,
            None => Some(json!({"uri": uri, "notFound": true, "replies": replies})),
        }
    }
}

/// One trending tag.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trend {
    pub tag: String,
    pub posts: u64,
    pub authors: u64,
    /// `createdAt` (Unix ms) of the earliest post in the window.
    pub first_seen_ms: i64,
    /// Posts per time bucket over the window, oldest first (see [`Buckets`]): the chart of
    /// the trending page.
    pub series: Vec<u64>,
    pub samples: Vec<Value>,
}

/// Most buckets a trending series has.
pub const MAX_BUCKETS: usize = 200;

/// The time buckets of a trending series: `count` buckets of `width_ms` from `start_ms`.
/// Statuses dated after the last bucket (clock skew) count in the last one.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Buckets {
    pub start_ms: i64,
    pub width_ms: i64,
    pub count: usize,
}

impl Buckets {
    pub(crate) fn of(&self, created: i64) -> usize {
        let i = (created.saturating_sub(self.start_ms) / self.width_ms.max(1)).max(0);
        (i as usize).min(self.count.saturating_sub(1))
    }
}

/// What [`trending`] is asked.
#[derive(Debug, Clone)]
pub struct TrendQuery {
    /// Statuses created in `[from, to)`, Unix ms.
    pub from: i64,
    pub to: i64,
    /// Hex keys: only statuses of these archives.
    pub authors: Option<Vec<String>>,
    /// Distinct authors a tag needs.
    pub min_authors: u64,
    pub limit: usize,
    /// Newest statuses shown per tag.
    pub samples: usize,
    pub buckets: Buckets,
}

/// Top tags of statuses created in `[from, to)`: ranked by distinct authors, then posts; a tag
/// needs at least `min_authors` authors (so one author cannot make it trend). Each comes with
/// its posts per time bucket.
pub fn trending(idx: &Index, q: TrendQuery) -> Result<Vec<Trend>, IndexError> {
    let buckets = Buckets {
        count: q.buckets.count.clamp(1, MAX_BUCKETS),
        ..q.buckets
    };
    let searcher = idx.reader.searcher();
    let mut ranked: Vec<TagCount> = idx
        .trends
        .count(
            &searcher,
            q.from,
            q.to,
            q.authors.as_deref(),
            &buckets,
            q.samples,
        )?
        .into_iter()
        .filter(|c| c.authors >= q.min_authors)
        .collect();
    ranked.sort_by(|a, b| (b.authors, b.posts, &a.tag).cmp(&(a.authors, a.posts, &b.tag)));
    ranked.truncate(q.limit);
    ranked
        .into_iter()
        .map(|c| {
            let samples = c
                .newest
                .iter()
                .map(|&(_, addr)| stored(&searcher, &idx.f, addr))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Trend {
                posts: c.posts,
                authors: c.authors,
                first_seen_ms: c.first,
                series: c.series,
                samples,
                tag: c.tag,
            })
        })
        .collect()
}

/// The follows document of an archive: the hex keys it follows.
pub fn follows_of(idx: &Index, hex: &str) -> Result<Option<Value>, IndexError> {
    let searcher = idx.reader.searcher();
    let q = BooleanQuery::new(vec![
        (Occur::Must, term(idx.f.kind, "follows")),
        (Occur::Must, term(idx.f.archive, hex)),
    ]);
    find_one(idx, &searcher, &q)
}

/// The profile document of an archive.
pub fn profile_of(idx: &Index, hex: &str) -> Result<Option<Value>, IndexError> {
    let searcher = idx.reader.searcher();
    let q = BooleanQuery::new(vec![
        (Occur::Must, term(idx.f.kind, "profile")),
        (Occur::Must, term(idx.f.archive, hex)),
    ]);
    find_one(idx, &searcher, &q)
}

/// Statuses indexed for an archive.
pub fn status_count(idx: &Index, hex: &str) -> Result<usize, IndexError> {
    let searcher = idx.reader.searcher();
    let q = BooleanQuery::new(vec![
        (Occur::Must, term(idx.f.kind, "status")),
        (Occur::Must, term(idx.f.archive, hex)),
    ]);
    Ok(searcher.search(&q, &Count)?)
}

/// Archives whose follow list holds `hex`: a page (by archive key order) and the total.
pub fn followers(
    idx: &Index,
    hex: &str,
    limit: usize,
    offset: usize,
) -> Result<(Vec<String>, usize), IndexError> {
    let searcher = idx.reader.searcher();
    let q = BooleanQuery::new(vec![
        (Occur::Must, term(idx.f.kind, "follows")),
        (Occur::Must, term(idx.f.follows, hex)),
    ]);
    let total = searcher.search(&q, &Count)?;
    let top = searcher.search(
        &q,
        &TopDocs::with_limit(limit.clamp(1, 1000))
            .and_offset(offset.min(MAX_SCOPE))
            .order_by({
                let columns = idx.columns.clone();
                move |seg: &SegmentReader| {
                    let a = columns.get(seg).author_id;
                    move |doc: DocId| {
                        std::cmp::Reverse(a.as_ref().and_then(|a| a.first(doc)).unwrap_or(0))
                    }
                }
            }),
    )?;
    let mut out = Vec::new();
    for (_, addr) in top {
        if let Some(a) = stored(&searcher, &idx.f, addr)?
            .get("archive")
            .and_then(Value::as_str)
        {
            out.push(a.to_owned());
        }
    }
    Ok((out, total))
}

/// The archives in a viewer's scope: its follows (`hops == 1`) or also their follows
/// (`hops == 2`), the viewer included, at most [`MAX_SCOPE`].
pub fn scope(idx: &Index, viewer: &str, hops: u8) -> Result<Vec<String>, IndexError> {
    let list = |hex: &str| -> Result<Vec<String>, IndexError> {
        Ok(follows_of(idx, hex)?
            .and_then(|v| v.get("follows").cloned())
            .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
            .unwrap_or_default())
    };
    let mut set: Vec<String> = vec![viewer.to_owned()];
    let mut seen: HashSet<String> = set.iter().cloned().collect();
    let first = list(viewer)?;
    for k in &first {
        if seen.insert(k.clone()) {
            set.push(k.clone());
        }
    }
    if hops >= 2 {
        for k in &first {
            for k2 in list(k)? {
                if set.len() >= MAX_SCOPE {
                    break;
                }
                if seen.insert(k2.clone()) {
                    set.push(k2);
                }
            }
        }
    }
    set.truncate(MAX_SCOPE);
    Ok(set)
}

/// Number of documents (all kinds) in the index.
pub fn doc_count(idx: &Index) -> u64 {
    idx.reader.searcher().num_docs()
}

/// Whether the index holds any status at all.
pub fn any_status(idx: &Index) -> Result<bool, IndexError> {
    let searcher = idx.reader.searcher();
    Ok(searcher.search(&AllQuery, &Count)? > 0)
}
