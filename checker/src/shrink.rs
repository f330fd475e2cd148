//! Shrinking a failing key's history to a handful of ops: Zeller's delta debugging (ddmin) down
//! to a 1-minimal set (removing any single op makes it linearizable).
//!
//! Removing ops from a history can itself break linearizability (drop the write a read saw), so a
//! candidate only counts as failing if the search still fails at the op it could not linearize
//! in the full history, and the set passes the model's cheap pre-check (every value read has a
//! writer in the set). That keeps the result about the real violation rather than about ops the
//! shrinker removed.

use crate::model::{PartModel, Prepared, Timed};
use crate::search::{search, Budget, Search};
use std::sync::atomic::AtomicU64;
use std::time::Instant;

/// Delta debugging over `items`. `fails` says whether a subset still fails (None: out of budget,
/// stop). Returns the smallest failing subset found and whether it is known to be 1-minimal.
pub fn ddmin(
    mut items: Vec<usize>,
    fails: &mut dyn FnMut(&[usize]) -> Option<bool>,
) -> (Vec<usize>, bool) {
    let mut n = 2;
    while items.len() >= 2 {
        let size = items.len().div_ceil(n);
        let chunks: Vec<Vec<usize>> = items.chunks(size).map(|c| c.to_vec()).collect();
        let mut reduced = false;
        for c in &chunks {
            match fails(c) {
                None => return (items, false),
                Some(true) => {
                    (items, n, reduced) = (c.clone(), 2, true);
                    break;
                }
                Some(false) => {}
            }
        }
        if !reduced && chunks.len() > 2 {
            for i in 0..chunks.len() {
                let rest: Vec<usize> = (0..chunks.len())
                    .filter(|&j| j != i)
                    .flat_map(|j| chunks[j].iter().copied())
                    .collect();
                match fails(&rest) {
                    None => return (items, false),
                    Some(true) => {
                        (items, n, reduced) = (rest, (n - 1).max(2), true);
                        break;
                    }
                    Some(false) => {}
                }
            }
        }
        if !reduced {
            if n >= items.len() {
                break;
            }
            n = (2 * n).min(items.len());
        }
    }
    // With one item left, the empty set is the only smaller candidate; it never fails here
    // because the blocked op is always kept.
    (items, true)
}

/// Shrinks part `p`, whose op `blocked` could not be linearized, to a 1-minimal failing set of op
/// indices (sorted, `blocked` included). The bool says whether 1-minimality was reached before
/// `deadline`.
pub fn shrink<P: PartModel>(
    p: &Prepared<P>,
    blocked: usize,
    deadline: Instant,
) -> (Vec<usize>, bool) {
    let memory = AtomicU64::new(0);
    let never = || false;
    let budget = Budget {
        deadline: Some(deadline),
        memory_limit: Some(256 << 20),
        memory_used: &memory,
        cancelled: &never,
    };
    let mut fails = |subset: &[usize]| -> Option<bool> {
        // Searches shorter than the search's own budget check interval never look at the clock.
        if Instant::now() >= deadline {
            return None;
        }
        let mut idx: Vec<usize> = subset.iter().copied().chain([blocked]).collect();
        idx.sort_unstable();
        let ops: Vec<Timed<P::Op>> = idx.iter().map(|&i| p.ops[i].clone()).collect();
        if p.part.impossible(&ops).is_some() {
            return Some(false);
        }
        // It must still fail at the same op, not at some other op the removals broke.
        match search(&p.part, &ops, &budget, &mut |_| true).0 {
            Search::Linearizable => Some(false),
            Search::NotLinearizable { blocked: b, .. } => Some(idx[b] == blocked),
            Search::OutOfBudget { .. } => None,
        }
    };
    let end = p.ops[blocked].ret.unwrap_or(usize::MAX);
    let before: Vec<usize> = (0..p.ops.len())
        .filter(|&i| i != blocked && p.ops[i].call < end)
        .collect();
    let start = match fails(&before) {
        Some(true) => before,
        Some(false) => (0..p.ops.len()).filter(|&i| i != blocked).collect(),
        None => return (vec![blocked], false),
    };
    // Nearest ops first: ddmin keeps the first half when it can, so the result stays close to
    // the failure instead of building some other violation out of distant ops.
    let mut start = start;
    let at = p.ops[blocked].call;
    start.sort_by_key(|&i| p.ops[i].call.abs_diff(at));
    let (mut kept, minimal) = ddmin(start, &mut fails);
    kept.push(blocked);
    kept.sort_unstable();
    (kept, minimal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddmin_finds_a_one_minimal_subset() {
        // Fails iff it contains both 3 and 7.
        let mut tests = 0;
        let (kept, minimal) = ddmin((0..20).collect(), &mut |s| {
            tests += 1;
            Some(s.contains(&3) && s.contains(&7))
        });
        assert_eq!(kept, vec![3, 7]);
        assert!(minimal);
        assert!(tests < 60, "{tests} tests");
    }

    #[test]
    fn ddmin_stops_when_out_of_budget() {
        let (kept, minimal) = ddmin((0..8).collect(), &mut |_| None);
        assert_eq!(kept.len(), 8);
        assert!(!minimal);
    }
}
