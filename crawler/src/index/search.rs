//! The read side of the index: the queries behind each API view. Every function is blocking
//! (run it off the async workers) and bounded by the limits its caller passes in.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use serde::Serialize;
use serde_json::{json, Value};
use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery};
use tantivy::schema::{Field, IndexRecordOption, Value as _};
use tantivy::{DocAddress, DocId, Score, Searcher, SegmentReader, TantivyDocument, Term};

use super::query::{self, Expr};
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
        let mut c: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, term(f.kind, "status"))];
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

/// One page of hits.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub hits: Vec<Value>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub cursor: Option<String>,
}

fn stored(searcher: &Searcher, f: &Fields, addr: DocAddress) -> Result<Value, IndexError> {
    let doc: TantivyDocument = searcher.doc(addr)?;
    Ok(doc
        .get_first(f.json)
        .and_then(|v| v.as_str())
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null))
}

/// Parses a `latest` cursor, `<createdAt ms>.<ingest seq>`.
pub fn parse_cursor(s: &str) -> Option<(i64, u64)> {
    let (c, i) = s.split_once('.')?;
    Some((c.parse().ok()?, i.parse().ok()?))
}

type SortKey = (i64, u64);

fn by_created(
) -> impl Fn(&SegmentReader) -> Box<dyn FnMut(DocId) -> SortKey> + Send + Sync + 'static {
    |seg: &SegmentReader| {
        let c = seg.fast_fields().i64("created").ok();
        let s = seg.fast_fields().u64("iseq").ok();
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
            let top =
                searcher.search(&q, &TopDocs::with_limit(limit + 1).order_by(by_created()))?;
            let more = top.len() > limit;
            let mut hits = Vec::with_capacity(limit);
            let mut last = None;
            for (k, addr) in top.into_iter().take(limit) {
                hits.push(stored(&searcher, f, addr)?);
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
                .map(|(_, addr)| stored(&searcher, f, addr))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page {
                hits,
                cursor: more.then(|| (offset + limit).to_string()),
            })
        }
    }
}

/// Statuses written after ingest sequence `after`, oldest first (the stream).
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
    let q = BooleanQuery::new(filter.clauses(f));
    let top = searcher.search(
        &q,
        &TopDocs::with_limit(limit.max(1)).order_by(|seg: &SegmentReader| {
            let s = seg.fast_fields().u64("iseq").ok();
            move |doc: DocId| {
                std::cmp::Reverse(s.as_ref().and_then(|s| s.first(doc)).unwrap_or(u64::MAX))
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

/// The whole reply tree of the thread `uri` belongs to.
pub fn thread(idx: &Index, uri: &str) -> Result<Value, IndexError> {
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
        &TopDocs::with_limit(MAX_THREAD_POSTS + 1).order_by(by_created()),
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
    let mut visited = HashSet::new();
    let mut truncated = false;
    let mut root_node = node(
        &root_uri,
        root.as_ref(),
        &posts,
        &children,
        &mut visited,
        0,
        &mut truncated,
    );
    // Parents that were not crawled: placeholders under the root, holding their replies.
    if let Some(list) = root_node.get_mut("replies").and_then(Value::as_array_mut) {
        for m in &missing {
            list.push(node(
                m,
                None,
                &posts,
                &children,
                &mut visited,
                1,
                &mut truncated,
            ));
        }
    }
    partial |= truncated;
    Ok(json!({
        "root": root_uri,
        "requested": uri,
        "posts": posts.len() + usize::from(root.is_some()),
        "truncated": partial,
        "thread": root_node,
    }))
}

fn node(
    uri: &str,
    hit: Option<&Value>,
    posts: &HashMap<String, Value>,
    children: &HashMap<String, Vec<String>>,
    visited: &mut HashSet<String>,
    depth: usize,
    truncated: &mut bool,
) -> Value {
    visited.insert(uri.to_owned());
    let mut replies = Vec::new();
    if let Some(kids) = children.get(uri) {
        if depth >= MAX_THREAD_DEPTH {
            *truncated = true;
        } else {
            for k in kids {
                if visited.contains(k) {
                    continue;
                }
                let child = posts.get(k);
                let mut n = node(k, child, posts, children, visited, depth + 1, truncated);
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
    match hit {
        Some(h) => json!({"uri": uri, "post": h, "replies": replies}),
        None => json!({"uri": uri, "notFound": true, "replies": replies}),
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
    fn of(&self, created: i64) -> usize {
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

#[derive(Default)]
struct TagStat {
    posts: u64,
    authors: HashSet<u64>,
    first: i64,
    series: Vec<u64>,
}

impl TagStat {
    fn merge(&mut self, o: TagStat) {
        if self.posts == 0 || o.first < self.first {
            self.first = o.first;
        }
        self.posts += o.posts;
        self.authors.extend(o.authors);
        if self.series.len() < o.series.len() {
            self.series.resize(o.series.len(), 0);
        }
        for (a, b) in self.series.iter_mut().zip(o.series) {
            *a += b;
        }
    }
}

struct TrendCollector {
    buckets: Buckets,
}

struct TrendSegment {
    tags: Option<tantivy::columnar::StrColumn>,
    authors: Option<tantivy::columnar::Column<u64>>,
    created: Option<tantivy::columnar::Column<i64>>,
    buckets: Buckets,
    stats: HashMap<u64, TagStat>,
}

impl Collector for TrendCollector {
    type Fruit = HashMap<String, TagStat>;
    type Child = TrendSegment;

    fn for_segment(&self, _: u32, seg: &SegmentReader) -> tantivy::Result<TrendSegment> {
        let ff = seg.fast_fields();
        Ok(TrendSegment {
            tags: ff.str("tags")?,
            authors: ff.u64("author_id").ok(),
            created: ff.i64("created").ok(),
            buckets: self.buckets,
            stats: HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<HashMap<String, TagStat>>) -> tantivy::Result<Self::Fruit> {
        let mut out: HashMap<String, TagStat> = HashMap::new();
        for fruit in fruits {
            for (k, v) in fruit {
                out.entry(k).or_default().merge(v);
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for TrendSegment {
    type Fruit = HashMap<String, TagStat>;

    fn collect(&mut self, doc: DocId, _: Score) {
        let Some(tags) = &self.tags else { return };
        let author = self
            .authors
            .as_ref()
            .and_then(|a| a.first(doc))
            .unwrap_or(0);
        let created = self
            .created
            .as_ref()
            .and_then(|c| c.first(doc))
            .unwrap_or(0);
        for ord in tags.term_ords(doc) {
            let s = self.stats.entry(ord).or_default();
            if s.posts == 0 || created < s.first {
                s.first = created;
            }
            s.posts += 1;
            s.authors.insert(author);
            if s.series.is_empty() {
                s.series = vec![0; self.buckets.count];
            }
            if let Some(b) = s.series.get_mut(self.buckets.of(created)) {
                *b += 1;
            }
        }
    }

    fn harvest(self) -> Self::Fruit {
        let Some(tags) = self.tags else {
            return HashMap::new();
        };
        let mut out = HashMap::with_capacity(self.stats.len());
        for (ord, stat) in self.stats {
            let mut s = String::new();
            if let Ok(true) = tags.ord_to_str(ord, &mut s) {
                out.insert(s, stat);
            }
        }
        out
    }
}

/// Top tags of statuses created in `[from, to)`: ranked by distinct authors, then posts; a tag
/// needs at least `min_authors` authors (so one author cannot make it trend). Each comes with
/// its posts per time bucket.
pub fn trending(idx: &Index, q: TrendQuery) -> Result<Vec<Trend>, IndexError> {
    let buckets = Buckets {
        count: q.buckets.count.clamp(1, MAX_BUCKETS),
        ..q.buckets
    };
    let filter = Filter {
        authors: q.authors,
        since: Some(q.from),
        until: Some(q.to),
        ..Filter::default()
    };
    let searcher = idx.reader.searcher();
    let bq = BooleanQuery::new(filter.clauses(&idx.f));
    let stats = searcher.search(&bq, &TrendCollector { buckets })?;
    let mut ranked: Vec<(String, TagStat)> = stats
        .into_iter()
        .filter(|(_, s)| s.authors.len() as u64 >= q.min_authors)
        .collect();
    ranked.sort_by(|a, b| {
        (b.1.authors.len(), b.1.posts, &a.0).cmp(&(a.1.authors.len(), a.1.posts, &b.0))
    });
    ranked.truncate(q.limit);
    ranked
        .into_iter()
        .map(|(tag, s)| {
            let page = statuses(
                idx,
                &Filter {
                    tag: Some(tag.clone()),
                    ..filter.clone()
                },
                Sort::Latest,
                q.samples,
                None,
            )?;
            let mut series = s.series;
            series.resize(buckets.count, 0);
            Ok(Trend {
                posts: s.posts,
                authors: s.authors.len() as u64,
                first_seen_ms: s.first,
                series,
                samples: page.hits,
                tag,
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
            .order_by(|seg: &SegmentReader| {
                let a = seg.fast_fields().u64("author_id").ok();
                move |doc: DocId| {
                    std::cmp::Reverse(a.as_ref().and_then(|a| a.first(doc)).unwrap_or(0))
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
