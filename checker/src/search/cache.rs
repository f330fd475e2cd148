//! Lowe's cache of search nodes already explored.

use super::hash::KeyHasher;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

/// Lowe's cache, keyed by a hash of the returned ops linearized and the state. Never-returned
/// ops are kept out of the hash, as counts per class: a node that used at least as many of
/// every class as an already seen node (same key) is dominated, since the extra ones could also
/// be left out for ever (and the ones used are the first of their class, so more is a superset).
///
/// The count sets of one key live in one flat vector (see [`Antichain`]): a visit scans it
/// without chasing a pointer per set, and most sets are ruled out by their header alone.
///
/// Nodes are kept in bands by how many returned ops they linearized ([`BAND`] per band): a
/// key's band is a function of its set of ops, so a node is always looked up where it was
/// recorded, and a search moving along a long history touches one or two small tables, not
/// one of millions of entries where every look-up missed the processor's caches (on the
/// 100,000-op bench row without crashes, most of the search's time).
#[derive(Default)]
pub(super) struct Seen {
    bands: Vec<Band>,
    pending_bytes: usize,
    /// Distinct nodes recorded.
    pub(super) states: u64,
    /// Nodes recorded that `hopeless` then cut (the agreement tests check it does).
    pub(super) cut: u64,
    /// Sets of counts compared so far: the search's meter counts them as steps, since one visit
    /// may compare thousands.
    pub(super) compared: u64,
}

/// Returned ops linearized per band of [`Seen`].
const BAND: usize = 1024;

/// The nodes of one band.
#[derive(Default)]
struct Band {
    plain: HashSet<u128, BuildHasherDefault<KeyHasher>>,
    with_pending: HashMap<u128, Antichain, BuildHasherDefault<KeyHasher>>,
}

impl Seen {
    /// Records a node that linearized `returned` returned ops; false if it (or a node
    /// dominating it) was seen before. `pending`: the crashed ops used, as (class, how many),
    /// sorted by class.
    pub(super) fn visit(&mut self, returned: usize, key: u128, pending: &[(u32, u32)]) -> bool {
        let band = returned / BAND;
        if band >= self.bands.len() {
            self.bands.resize_with(band + 1, Band::default);
        }
        let Band {
            plain,
            with_pending,
        } = &mut self.bands[band];
        if pending.is_empty() {
            // One probe of the table, not two (`contains`, then `insert`): on the large searches
            // it is a cache miss each.
            if !plain.insert(key) {
                return false;
            }
            if !with_pending.is_empty() {
                if let Some(gone) = with_pending.remove(&key) {
                    self.pending_bytes -= gone.bytes();
                }
            }
        } else {
            if plain.contains(&key) {
                return false;
            }
            let sets = with_pending.entry(key).or_default();
            let before = sets.bytes();
            let added = sets.add(pending, &mut self.compared);
            self.pending_bytes = self.pending_bytes + sets.bytes() - before;
            if !added {
                return false;
            }
        }
        self.states += 1;
        true
    }

    pub(super) fn bytes(&self) -> usize {
        let band = |b: &Band| b.plain.capacity() * 17 + b.with_pending.capacity() * 41;
        self.bands.iter().map(band).sum::<usize>() + self.pending_bytes
    }
}

/// Caches above this size are freed on a thread of their own: freeing millions of entries can
/// take longer than a second, and the verdict (or the `unknown` at its time limit) should not
/// wait for it.
const FREE_ASIDE: usize = 64 << 20;

impl Seen {
    /// Frees the cache; a large one on a thread of its own (see [`FREE_ASIDE`]).
    pub(super) fn free(self) {
        if self.bytes() < FREE_ASIDE {
            return;
        }
        // If no thread can be started, the closure (and with it the cache) is dropped here.
        let _ = std::thread::Builder::new()
            .name("free-cache".into())
            .spawn(move || drop(self));
    }
}

/// The minimal count sets seen for one key, none a subset of another, stored back to back:
/// each as a header `[len, total, mask]` (the number of classes, the sum of the counts, a bit
/// per class modulo 32) and then `len` pairs `class, count`. A set `q` can only be a subset of
/// `p` (every class of `q` in `p` with at least its count) if `q` has no more classes, no larger
/// total and no class bit `p` lacks; the header checks those before the pairs are read.
#[derive(Default)]
pub(super) struct Antichain(Vec<u32>);

const HEADER: usize = 3;

struct Header {
    len: u32,
    total: u32,
    mask: u32,
}

fn header(set: &[(u32, u32)]) -> Header {
    Header {
        len: set.len() as u32,
        total: set.iter().map(|x| x.1).sum(),
        mask: set.iter().fold(0, |m, x| m | 1 << (x.0 % 32)),
    }
}

impl Header {
    /// Whether a set with this header may be a subset of one with header `p`.
    fn may_be_within(&self, p: &Header) -> bool {
        self.len <= p.len && self.total <= p.total && self.mask & !p.mask == 0
    }
}

impl Antichain {
    fn bytes(&self) -> usize {
        // The vector itself is counted with the map it sits in.
        4 * self.0.capacity()
    }

    /// The stored sets: each header and its pairs as a flat slice.
    fn sets(&self) -> impl Iterator<Item = (Header, &[u32])> + '_ {
        let mut rest = &self.0[..];
        std::iter::from_fn(move || {
            let (h, tail) = rest.split_first_chunk::<HEADER>()?;
            let (pairs, tail) = tail.split_at(2 * h[0] as usize);
            rest = tail;
            let h = Header {
                len: h[0],
                total: h[1],
                mask: h[2],
            };
            Some((h, pairs))
        })
    }

    /// Adds `set` unless a stored set is within it (then false); drops the stored sets `set` is
    /// within. Counts the sets compared in `compared`.
    fn add(&mut self, set: &[(u32, u32)], compared: &mut u64) -> bool {
        let h = header(set);
        let mut dominated_any = false;
        for (q, pairs) in self.sets() {
            *compared += 1;
            if q.may_be_within(&h) && is_subset(pairs, set) {
                return false;
            }
            dominated_any |= h.may_be_within(&q) && is_subset_rev(set, pairs);
        }
        if dominated_any {
            self.drop_within(set, &h);
        }
        self.0.extend([h.len, h.total, h.mask]);
        self.0.extend(set.iter().flat_map(|x| [x.0, x.1]));
        true
    }

    /// Removes the stored sets that `set` (header `h`) is a subset of, keeping the others.
    fn drop_within(&mut self, set: &[(u32, u32)], h: &Header) {
        let mut kept = Vec::with_capacity(self.0.len());
        for (q, pairs) in self.sets() {
            if !(h.may_be_within(&q) && is_subset_rev(set, pairs)) {
                kept.extend([q.len, q.total, q.mask]);
                kept.extend_from_slice(pairs);
            }
        }
        self.0 = kept;
    }
}

/// Whether the counts `a` (flat `class, count` pairs) are each at most `b`'s (both sorted by
/// class).
fn is_subset(a: &[u32], b: &[(u32, u32)]) -> bool {
    let mut b = b.iter();
    a.chunks_exact(2)
        .all(|x| b.any(|y| y.0 == x[0] && y.1 >= x[1]))
}

/// Whether the counts `a` are each at most `b`'s (flat pairs; both sorted by class).
fn is_subset_rev(a: &[(u32, u32)], b: &[u32]) -> bool {
    let mut b = b.chunks_exact(2);
    a.iter().all(|x| b.any(|y| y[0] == x.0 && y[1] >= x.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_within_a_stored_one_replaces_it_and_a_superset_is_refused() {
        let mut c = Antichain::default();
        let mut n = 0;
        assert!(c.add(&[(1, 2), (3, 1)], &mut n));
        assert!(c.add(&[(2, 1)], &mut n));
        // Not comparable with either: kept beside them.
        assert!(c.add(&[(1, 1), (4, 1)], &mut n));
        // A superset of a stored set is dominated.
        assert!(!c.add(&[(1, 3), (3, 1)], &mut n));
        assert!(!c.add(&[(2, 1), (5, 7)], &mut n));
        // A subset of two stored sets replaces both.
        assert!(c.add(&[(1, 1)], &mut n));
        let left: Vec<Vec<u32>> = c.sets().map(|(_, p)| p.to_vec()).collect();
        assert_eq!(left, vec![vec![2, 1], vec![1, 1]]);
        // Class 33 shares class 1's mask bit: the pairs still decide.
        assert!(c.add(&[(33, 1)], &mut n));
        assert!(!c.add(&[(1, 5)], &mut n));
    }
}
