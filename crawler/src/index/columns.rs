//! The fast-field columns of each segment, opened once.
//!
//! Opening a column reads its header and block index. Done for every segment on every query,
//! that was a fifth of the CPU of a mentions request (fourteen segments, two columns each). A
//! segment's columns never change (a delete only marks documents), so they are kept by segment
//! id until the segment is merged away.

use std::collections::HashMap;

use parking_lot::Mutex;
use tantivy::columnar::Column;
use tantivy::index::SegmentId;
use tantivy::{Searcher, SegmentReader};

/// The columns the views sort and filter by.
#[derive(Clone)]
pub struct SegmentColumns {
    /// `createdAt`, Unix milliseconds.
    pub created: Option<Column<i64>>,
    /// The ingest sequence.
    pub iseq: Option<Column<u64>>,
    /// The author id.
    pub author_id: Option<Column<u64>>,
}

impl std::fmt::Debug for SegmentColumns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentColumns").finish_non_exhaustive()
    }
}

impl SegmentColumns {
    fn open(seg: &SegmentReader) -> SegmentColumns {
        let ff = seg.fast_fields();
        SegmentColumns {
            created: ff.i64("created").ok(),
            iseq: ff.u64("iseq").ok(),
            author_id: ff.u64("author_id").ok(),
        }
    }
}

/// The open columns of the segments queried lately.
#[derive(Default)]
pub struct ColumnCache {
    segments: Mutex<HashMap<SegmentId, SegmentColumns>>,
}

impl std::fmt::Debug for ColumnCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnCache").finish_non_exhaustive()
    }
}

impl ColumnCache {
    /// The columns of `seg`, opened on first use.
    pub fn get(&self, seg: &SegmentReader) -> SegmentColumns {
        let id = seg.segment_id();
        if let Some(c) = self.segments.lock().get(&id) {
            return c.clone();
        }
        let c = SegmentColumns::open(seg);
        self.segments.lock().insert(id, c.clone());
        c
    }

    /// Forgets the segments `searcher` no longer has (called after each commit).
    pub fn retain(&self, searcher: &Searcher) {
        let live: Vec<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(SegmentReader::segment_id)
            .collect();
        self.segments.lock().retain(|id, _| live.contains(id));
    }
}
