//! Trending tags without scanning the index on every request.
//!
//! A trending view counts, per tag, the posts and the distinct authors of every status in a
//! window (up to 7 days: all of them, on a young crawler). Collecting that from tantivy per
//! request costs ~1 µs per status, a second at a million. So each segment is summarized once
//! into its tag postings sorted by time, `(createdAt, author, doc)` per tagged status, and a
//! request walks only the part of each list inside its window, marking authors in a bitset.
//!
//! Segments never change but for deletes, so a summary is keyed by the segment and its delete
//! stamp: a delete or a merge makes a new key, summarized again (off the request path: the
//! ingest thread warms the cache after each commit, see [`TrendCache::warm`]). Authors get dense
//! numbers (the first 8 bytes of their key, numbered in the order first seen) so the distinct
//! count is a bitset, not a hash set.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tantivy::index::SegmentId;
use tantivy::{DocAddress, DocId, Searcher, SegmentReader};

/// A tagged status in a segment summary.
#[derive(Debug, Clone, Copy)]
struct Post {
    created: i64,
    author: u32,
    doc: DocId,
}

/// One segment's tag postings, each list sorted by `created`.
struct SegmentTrends {
    tags: HashMap<String, Vec<Post>>,
}

type SegmentKey = (SegmentId, u32, Option<u64>);

fn segment_key(seg: &SegmentReader) -> SegmentKey {
    (
        seg.segment_id(),
        seg.num_deleted_docs(),
        seg.delete_opstamp(),
    )
}

/// Dense author numbers.
#[derive(Default)]
struct Authors {
    ids: HashMap<u64, u32>,
}

impl Authors {
    fn dense(&mut self, author: u64) -> u32 {
        let next = self.ids.len() as u32;
        *self.ids.entry(author).or_insert(next)
    }
}

/// The per-segment summaries of the current index, and the author numbering they share.
#[derive(Default)]
pub struct TrendCache {
    segments: Mutex<HashMap<SegmentKey, Arc<SegmentTrends>>>,
    authors: Mutex<Authors>,
}

impl std::fmt::Debug for TrendCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrendCache").finish_non_exhaustive()
    }
}

impl TrendCache {
    /// Summarizes the segments of `searcher` not summarized yet, and forgets the summaries of
    /// segments it no longer has. Called after each commit, so requests find them ready.
    pub fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        let live: Vec<SegmentKey> = searcher.segment_readers().iter().map(segment_key).collect();
        self.summaries(searcher)?;
        self.segments.lock().retain(|k, _| live.contains(k));
        Ok(())
    }

    fn summaries(&self, searcher: &Searcher) -> tantivy::Result<Vec<Arc<SegmentTrends>>> {
        let mut out = Vec::with_capacity(searcher.segment_readers().len());
        for seg in searcher.segment_readers() {
            let key = segment_key(seg);
            let known = self.segments.lock().get(&key).cloned();
            let summary = match known {
                Some(s) => s,
                None => {
                    // Built outside the map's lock: requests for other windows go on meanwhile.
                    let s = Arc::new(self.summarize(seg)?);
                    self.segments.lock().insert(key, s.clone());
                    s
                }
            };
            out.push(summary);
        }
        Ok(out)
    }

    fn summarize(&self, seg: &SegmentReader) -> tantivy::Result<SegmentTrends> {
        let ff = seg.fast_fields();
        let Some(tags) = ff.str("tags")? else {
            return Ok(SegmentTrends {
                tags: HashMap::new(),
            });
        };
        let authors = ff.u64("author_id")?;
        let created = ff.i64("created")?;
        let alive = seg.alive_bitset();
        let mut by_ord: Vec<Vec<Post>> = vec![Vec::new(); tags.num_terms()];
        {
            let mut dense = self.authors.lock();
            for doc in 0..seg.max_doc() {
                if alive.is_some_and(|a| a.is_deleted(doc)) {
                    continue;
                }
                let mut ords = tags.term_ords(doc).peekable();
                if ords.peek().is_none() {
                    continue;
                }
                let post = Post {
                    created: created.first(doc).unwrap_or(0),
                    author: dense.dense(authors.first(doc).unwrap_or(0)),
                    doc,
                };
                for ord in ords {
                    if let Some(list) = by_ord.get_mut(ord as usize) {
                        list.push(post);
                    }
                }
            }
        }
        let mut out = HashMap::with_capacity(by_ord.len());
        let mut name = String::new();
        for (ord, mut posts) in by_ord.into_iter().enumerate() {
            if posts.is_empty() || !tags.ord_to_str(ord as u64, &mut name)? {
                continue;
            }
            posts.sort_unstable_by_key(|p| p.created);
            posts.shrink_to_fit();
            out.insert(name.clone(), posts);
        }
        Ok(SegmentTrends { tags: out })
    }

    /// Counts every tag's posts in `[from, to)` by the given authors (hex keys; all if `None`).
    pub fn count(
        &self,
        searcher: &Searcher,
        from: i64,
        to: i64,
        authors: Option<&[String]>,
        buckets: &super::search::Buckets,
        samples: usize,
    ) -> tantivy::Result<Vec<TagCount>> {
        let segments = self.summaries(searcher)?;
        let (allowed, n_authors) = {
            let dense = self.authors.lock();
            let allowed = authors.map(|keys| {
                let mut set = Bits::new(dense.ids.len());
                for k in keys {
                    if let Some(&id) = dense.ids.get(&super::author_id(k)) {
                        set.insert(id);
                    }
                }
                set
            });
            (allowed, dense.ids.len())
        };
        let mut names: Vec<&str> = segments
            .iter()
            .flat_map(|s| s.tags.keys().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut seen = Bits::new(n_authors);
        let mut marked: Vec<u32> = Vec::new();
        let mut out = Vec::new();
        for name in names {
            let mut c = TagCount {
                tag: name.to_owned(),
                posts: 0,
                authors: 0,
                first: i64::MAX,
                series: vec![0; buckets.count.max(1)],
                newest: Vec::new(),
            };
            for (ord, seg) in segments.iter().enumerate() {
                let Some(posts) = seg.tags.get(name) else {
                    continue;
                };
                let lo = posts.partition_point(|p| p.created < from);
                let hi = posts.partition_point(|p| p.created < to);
                let window = posts.get(lo..hi).unwrap_or(&[]);
                let mut taken = 0;
                for p in window.iter().rev() {
                    if allowed.as_ref().is_some_and(|a| !a.contains(p.author)) {
                        continue;
                    }
                    c.posts += 1;
                    c.first = c.first.min(p.created);
                    if let Some(b) = c.series.get_mut(buckets.of(p.created)) {
                        *b += 1;
                    }
                    if seen.insert(p.author) {
                        marked.push(p.author);
                    }
                    if taken < samples {
                        taken += 1;
                        c.newest.push((
                            p.created,
                            DocAddress {
                                segment_ord: ord as u32,
                                doc_id: p.doc,
                            },
                        ));
                    }
                }
            }
            if c.posts == 0 {
                continue;
            }
            c.authors = marked.len() as u64;
            for a in marked.drain(..) {
                seen.remove(a);
            }
            c.newest.sort_unstable_by_key(|n| std::cmp::Reverse(n.0));
            c.newest.truncate(samples);
            out.push(c);
        }
        Ok(out)
    }
}

/// One tag's counts in a window.
#[derive(Debug, Clone)]
pub struct TagCount {
    pub tag: String,
    pub posts: u64,
    pub authors: u64,
    /// `createdAt` of the earliest post.
    pub first: i64,
    pub series: Vec<u64>,
    /// The newest posts, newest first: `(createdAt, document)`.
    pub newest: Vec<(i64, DocAddress)>,
}

/// A plain bitset of dense author numbers.
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }

    /// Sets bit `i`; true if it was clear. Numbers past the end (authors first seen after the
    /// set was sized) grow it.
    fn insert(&mut self, i: u32) -> bool {
        let (w, b) = ((i / 64) as usize, 1u64 << (i % 64));
        if w >= self.0.len() {
            self.0.resize(w + 1, 0);
        }
        let was = self.0[w] & b != 0;
        self.0[w] |= b;
        !was
    }

    fn contains(&self, i: u32) -> bool {
        self.0
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    fn remove(&mut self, i: u32) {
        if let Some(w) = self.0.get_mut((i / 64) as usize) {
            *w &= !(1u64 << (i % 64));
        }
    }
}
