//! What a peer told us about its log: its head, and the blocks it holds as a contiguous prefix
//! plus a bounded set of further ranges, kept merged.

use std::collections::BTreeMap;

/// Ranges remembered per peer (beyond the contiguous prefix).
const MAX_RANGES: usize = 4096;

/// What the peer told us about its log.
#[derive(Debug, Default)]
pub(super) struct Remote {
    pub(super) synced: bool,
    pub(super) fork: u64,
    pub(super) length: u64,
    pub(super) can_upgrade: bool,
    pub(super) uploading: bool,
    /// Blocks `0..contiguous` are held by the peer.
    pub(super) contiguous: u64,
    /// Other held ranges, start -> end.
    pub(super) ranges: BTreeMap<u64, u64>,
    /// The length the peer last said it knows of ours.
    #[cfg(test)]
    pub(super) acknowledged: u64,
}

impl Remote {
    pub(super) fn has(&self, seq: u64) -> bool {
        if seq >= self.length {
            return false;
        }
        if seq < self.contiguous {
            return true;
        }
        self.ranges
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, end)| seq < *end)
    }

    pub(super) fn add_range(&mut self, start: u64, end: u64) {
        if end <= start || end <= self.contiguous {
            return;
        }
        let (mut start, mut end) = (start.max(self.contiguous), end);
        // Merge with overlapping or touching neighbours.
        let touching: Vec<u64> = self
            .ranges
            .range(..=end)
            .filter(|(_, e)| **e >= start)
            .map(|(s, _)| *s)
            .collect();
        for s in touching {
            if let Some(e) = self.ranges.remove(&s) {
                start = start.min(s);
                end = end.max(e);
            }
        }
        if start <= self.contiguous {
            self.contiguous = end;
            let absorbed: Vec<u64> = self.ranges.range(..=end).map(|(s, _)| *s).collect();
            for s in absorbed {
                if let Some(e) = self.ranges.remove(&s) {
                    self.contiguous = self.contiguous.max(e);
                }
            }
            return;
        }
        if self.ranges.len() < MAX_RANGES {
            self.ranges.insert(start, end);
        }
    }

    pub(super) fn drop_range(&mut self, start: u64, end: u64) {
        if start < self.contiguous {
            if end < self.contiguous {
                self.ranges.insert(end, self.contiguous);
            }
            self.contiguous = start;
        }
        let hit: Vec<(u64, u64)> = self
            .ranges
            .range(..end)
            .filter(|(_, e)| **e > start)
            .map(|(s, e)| (*s, *e))
            .collect();
        for (s, e) in hit {
            self.ranges.remove(&s);
            if s < start {
                self.ranges.insert(s, start);
            }
            if e > end {
                self.ranges.insert(end, e);
            }
        }
    }
}
