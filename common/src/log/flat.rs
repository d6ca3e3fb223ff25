//! Flat-tree index arithmetic: the numbering Hypercore uses to lay a merkle tree out in one array
//! (leaves at even indexes, parents at odd ones), mirrored from the `flat-tree` JS module.

/// Number of trailing one bits: the height of the node above the leaves.
pub fn depth(index: u64) -> u32 {
    (!index).trailing_zeros()
}

/// Position of the node among the nodes of its depth.
pub fn offset(index: u64) -> u64 {
    index >> (depth(index) + 1)
}

/// Index of the node at `depth` and `offset`.
pub fn index(depth: u32, offset: u64) -> u64 {
    (offset << (depth + 1)) | ((1u64 << depth) - 1)
}

pub fn parent(i: u64) -> u64 {
    let d = depth(i);
    index(d + 1, offset(i) >> 1)
}

pub fn sibling(i: u64) -> u64 {
    let d = depth(i);
    index(d, offset(i) ^ 1)
}

/// Leftmost leaf index under `i`.
pub fn left_span(i: u64) -> u64 {
    let d = depth(i);
    if d == 0 {
        i
    } else {
        offset(i) << (d + 1)
    }
}

/// Rightmost leaf index under `i`.
pub fn right_span(i: u64) -> u64 {
    let d = depth(i);
    if d == 0 {
        i
    } else {
        ((offset(i) + 1) << (d + 1)) - 2
    }
}

pub fn count_leaves(i: u64) -> u64 {
    1u64 << depth(i)
}

/// Children of a parent node; `None` for a leaf.
pub fn children(i: u64) -> Option<(u64, u64)> {
    let d = depth(i);
    if d == 0 {
        return None;
    }
    let off = offset(i) * 2;
    Some((index(d - 1, off), index(d - 1, off + 1)))
}

/// The roots of a tree whose leaves end before `head` (`head` = 2 * length), left to right.
pub fn full_roots(head: u64) -> Vec<u64> {
    let mut result = Vec::with_capacity(64);
    let mut remaining = head / 2;
    let mut off = 0u64;
    while remaining > 0 {
        let mut factor = 1u64;
        while factor * 2 <= remaining {
            factor *= 2;
        }
        result.push(off + factor - 1);
        off += 2 * factor;
        remaining -= factor;
    }
    result
}

/// A cursor over the flat tree with the same moves as `flat-tree`'s `Iterator`.
/// `factor` is twice the number of leaves under the current node.
#[derive(Debug, Clone, Copy)]
pub struct Iter {
    pub index: u64,
    pub factor: u64,
}

impl Iter {
    pub fn new(index: u64) -> Self {
        let mut it = Iter {
            index: 0,
            factor: 2,
        };
        it.seek(index);
        it
    }

    pub fn seek(&mut self, index: u64) {
        self.index = index;
        // Indexes above 2^62 never come from a valid tree; saturate instead of overflowing.
        self.factor = if index & 1 == 1 {
            1u64 << (depth(index) + 1).min(63)
        } else {
            2
        };
    }

    pub fn offset(&self) -> u64 {
        self.index / self.factor
    }

    pub fn is_left(&self) -> bool {
        self.offset() & 1 == 0
    }

    pub fn contains(&self, index: u64) -> bool {
        let half = self.factor / 2;
        if index > self.index {
            index < self.index + half
        } else if index < self.index {
            index + half > self.index
        } else {
            true
        }
    }

    pub fn prev(&mut self) -> u64 {
        if self.offset() == 0 {
            return self.index;
        }
        self.index -= self.factor;
        self.index
    }

    #[allow(clippy::should_implement_trait)] // the name of the JS flat-tree move it mirrors
    pub fn next(&mut self) -> u64 {
        self.index += self.factor;
        self.index
    }

    pub fn sibling(&mut self) -> u64 {
        if self.is_left() {
            self.next()
        } else {
            self.prev()
        }
    }

    pub fn parent(&mut self) -> u64 {
        if self.offset() & 1 == 1 {
            self.index -= self.factor / 2;
        } else {
            self.index += self.factor / 2;
        }
        self.factor *= 2;
        self.index
    }

    pub fn left_child(&mut self) -> u64 {
        if self.factor == 2 {
            return self.index;
        }
        self.factor /= 2;
        self.index -= self.factor / 2;
        self.index
    }

    pub fn right_child(&mut self) -> u64 {
        if self.factor == 2 {
            return self.index;
        }
        self.factor /= 2;
        self.index += self.factor / 2;
        self.index
    }

    pub fn right_span(&mut self) -> u64 {
        self.index = self.index + self.factor / 2 - 1;
        self.factor = 2;
        self.index
    }

    pub fn next_tree(&mut self) -> u64 {
        self.index = self.index + self.factor / 2 + 1;
        self.factor = 2;
        self.index
    }

    pub fn count_leaves(&self) -> u64 {
        self.factor / 2
    }

    /// Climbs to the largest complete tree starting at the current leaf that ends before `head`.
    /// Returns false when the current position cannot start such a root.
    pub fn full_root(&mut self, head: u64) -> bool {
        if head <= self.index || self.index & 1 == 1 {
            return false;
        }
        while head > self.index + self.factor + self.factor / 2 {
            self.index += self.factor / 2;
            self.factor *= 2;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        assert_eq!(depth(0), 0);
        assert_eq!(depth(1), 1);
        assert_eq!(depth(3), 2);
        assert_eq!(parent(0), 1);
        assert_eq!(parent(2), 1);
        assert_eq!(parent(1), 3);
        assert_eq!(sibling(1), 5);
        assert_eq!(left_span(3), 0);
        assert_eq!(right_span(3), 6);
        assert_eq!(children(3), Some((1, 5)));
        assert_eq!(full_roots(6), vec![1, 4]);
        assert_eq!(full_roots(2000)[0], 511);
    }

    #[test]
    fn iterator_matches_functions() {
        for i in 0..2000u64 {
            let mut it = Iter::new(i);
            assert_eq!(it.offset(), offset(i));
            assert_eq!(it.sibling(), sibling(i));
            let mut it = Iter::new(i);
            assert_eq!(it.parent(), parent(i));
            let mut it = Iter::new(i);
            assert_eq!(it.right_span(), right_span(i));
        }
    }

    #[test]
    fn full_root_walk_matches_full_roots() {
        for len in 1..300u64 {
            let head = 2 * len;
            let mut roots = vec![];
            let mut it = Iter::new(0);
            while it.full_root(head) {
                roots.push(it.index);
                it.next_tree();
            }
            assert_eq!(roots, full_roots(head), "length {len}");
        }
    }
}
