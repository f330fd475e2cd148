//! Lowe's cache of search nodes already explored.

use super::hash::KeyHasher;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

/// Crashed ops used, as (class, how many), sorted by class.
type Counts = Box<[(u32, u32)]>;

/// Lowe's cache, keyed by a hash of the returned ops linearized and the state. Never-returned
/// ops are kept out of the hash, as counts per class: a node that used at least as many of
/// every class as an already seen node (same key) is dominated, since the extra ones could also
/// be left out for ever (and the ones used are the first of their class, so more is a superset).
#[derive(Default)]
pub(super) struct Seen {
    plain: HashSet<u128, BuildHasherDefault<KeyHasher>>,
    with_pending: HashMap<u128, Vec<Counts>, BuildHasherDefault<KeyHasher>>,
    pending_bytes: usize,
    /// Distinct nodes recorded.
    pub(super) states: u64,
    /// Sets of counts compared so far: the search's meter counts them as steps, since one visit
    /// may compare thousands.
    pub(super) compared: u64,
}

impl Seen {
    /// Records a node; false if it (or a node dominating it) was seen before.
    pub(super) fn visit(&mut self, key: u128, pending: &[(u32, u32)]) -> bool {
        if self.plain.contains(&key) {
            return false;
        }
        if pending.is_empty() {
            self.plain.insert(key);
            self.with_pending.remove(&key);
        } else {
            let sets = self.with_pending.entry(key).or_default();
            self.compared += sets.len() as u64;
            if sets.iter().any(|q| is_subset(q, pending)) {
                return false;
            }
            sets.retain(|q| !is_subset(pending, q));
            sets.push(pending.into());
            self.pending_bytes += 24 + 8 * pending.len();
        }
        self.states += 1;
        true
    }

    pub(super) fn bytes(&self) -> usize {
        self.plain.capacity() * 17 + self.with_pending.capacity() * 41 + self.pending_bytes
    }
}

/// Whether class counts `a` are each at most `b`'s (both sorted by class).
fn is_subset(a: &[(u32, u32)], b: &[(u32, u32)]) -> bool {
    let mut b = b.iter();
    a.iter().all(|x| b.any(|y| y.0 == x.0 && y.1 >= x.1))
}
