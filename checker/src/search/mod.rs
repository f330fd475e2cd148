//! Linearizability search over one independent part: Wing & Gong's backtracking search with
//! Lowe's cache of (linearized set, state), shaped like Porcupine's `checkSingle`.
//!
//! The history is a list of call and return entries (`entries`). At each node the candidates
//! are the calls before the first return still in the list: linearizing one lifts its entries
//! out and pushes it on the `path`; when no candidate is left the last one is undone and the
//! scan goes on after it. Ops that never returned are tried after the returned ones, and only if
//! they were called before that first return. The cache (`cache`, keyed as in `hash`) skips
//! nodes already explored.
//!
//! Three more pruning rules, each a function below, keep histories with crashed ops and many
//! reads cheap: `legal_read`, `overwrites_crashed` and `twin_waits`.

mod budget;
mod cache;
mod entries;
mod hash;
mod path;

pub use budget::Budget;

use crate::model::{PartModel, Timed};
use budget::Meter;
use cache::Seen;
use entries::{op_of, Cursor, Entries, Entry, Look};
use path::{Longest, Path};

/// How a search ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Search {
    Linearizable,
    /// `linearized`: the longest sequence of ops (indices into the searched slice) that could be
    /// linearized; `blocked`: the op that could not be linearized after it.
    NotLinearizable {
        linearized: Vec<usize>,
        blocked: usize,
    },
    /// Budget ran out ("time limit", "memory limit") or the search was cancelled.
    OutOfBudget {
        reason: &'static str,
        deepest: usize,
    },
}

/// Searches for a linearization of `ops` from `part.init()`. `done` is called at every node where
/// all returned ops are linearized, with the state there; returning true ends the search as
/// linearizable, false keeps exploring (used to enumerate the states possible at a point).
/// Returns the outcome and the number of distinct (set, state) nodes explored.
pub fn search<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    budget: &Budget,
    done: &mut dyn FnMut(&P::State) -> bool,
) -> (Search, u64) {
    let returned = ops.iter().filter(|t| t.ret.is_some()).count();
    let mut path = Path::new(part.init(), returned);
    if path.complete() && done(&path.state) {
        return (Search::Linearizable, 0);
    }
    let mut list = Entries::new(ops);
    let twins = twins(part, ops);
    let mut seen = Seen::default();
    let mut longest = Longest::default();
    let mut meter = Meter::new(budget);
    let (mut at, mut fresh) = (Cursor::start(&list), true);
    loop {
        if let Some(reason) = meter.tick(|| seen.bytes() + path.bytes()) {
            let deepest = longest.progress;
            return (Search::OutOfBudget { reason, deepest }, seen.states);
        }
        if std::mem::take(&mut fresh) {
            if let Some(read) = legal_read(part, ops, &list, &path.state) {
                at = Cursor::forced(read);
            }
        }
        match at.look(&list) {
            Look::Candidate(e) => {
                let op = &ops[op_of(e)].op;
                let pruned = overwrites_crashed(part, &path, op) || twin_waits(&twins, &path, at);
                let next = if pruned {
                    None
                } else {
                    part.step(&path.state, op)
                };
                let depth = path.depth();
                // `lift` refuses a node the cache has seen (Lowe's rule).
                if next.is_some_and(|next| path.lift(&mut list, &mut seen, at, next)) {
                    longest.pushed(depth, op_of(e));
                    if path.complete() && done(&path.state) {
                        return (Search::Linearizable, seen.states);
                    }
                    (at, fresh) = (Cursor::start(&list), true);
                } else {
                    at = at.skip(&list);
                }
            }
            Look::FirstReturn(first) => {
                if let Some(r) = first {
                    longest.stuck(&path, op_of(r));
                }
                at = at.to_pending(&list, first);
            }
            Look::Exhausted => {
                let Some(undone) = path.unlift(&mut list) else {
                    let result = match longest.blocked {
                        Some(blocked) => Search::NotLinearizable {
                            linearized: longest.ops,
                            blocked,
                        },
                        None => Search::Linearizable, // enumeration finished
                    };
                    return (result, seen.states);
                };
                longest.popped(path.depth());
                at = undone.skip(&list);
            }
        }
    }
}

/// Pruning: a read-only op (a read, a failed cas) that is legal now is linearized now, alone,
/// without trying anything else first: any order placing it later works with it moved here.
fn legal_read<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    list: &Entries,
    state: &P::State,
) -> Option<Entry> {
    list.leading_calls().find(|&c| {
        let op = &ops[op_of(c)].op;
        part.is_read_only(op) && part.step(state, op).is_some()
    })
}

/// Pruning: an op that overwrites the state without looking at it ([`PartModel::is_blind`]),
/// right after a never-returned op, hides that op's effect: leaving the crashed op out ("never
/// happened") reaches the same states, so this order need not be tried.
fn overwrites_crashed<P: PartModel>(part: &P, path: &Path<P::State>, op: &P::Op) -> bool {
    path.ends_crashed() && part.is_blind(op)
}

/// Pruning: interchangeable never-returned ops are used in call order, so a crashed op waits
/// until its earlier twin is on the path.
fn twin_waits<S: std::hash::Hash>(twins: &[usize], path: &Path<S>, at: Cursor) -> bool {
    at.pending && {
        let twin = twins[op_of(at.entry)];
        twin != usize::MAX && !path.has_crashed(twin)
    }
}

/// For each never-returned op, the nearest earlier one (among the 64 before it) that is
/// interchangeable with it; `usize::MAX` if none.
fn twins<P: PartModel>(part: &P, ops: &[Timed<P::Op>]) -> Vec<usize> {
    let crashed: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_none()).collect();
    let mut twin = vec![usize::MAX; ops.len()];
    for (k, &i) in crashed.iter().enumerate() {
        let earlier = crashed[..k].iter().rev().take(64);
        if let Some(&j) = earlier
            .clone()
            .find(|&&j| part.interchangeable(&ops[j].op, &ops[i].op))
        {
            twin[i] = j;
        }
    }
    twin
}
