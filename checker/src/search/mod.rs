//! Linearizability search over one independent part. [`decide`] runs bounds on when each state
//! can hold first (`pinned`, one pass, for models whose ops leave known states), which can only
//! refute; then the breadth-first search over events (`frontier`); where its frontier grows too
//! wide, a coarse form of the frontier with one configuration per state (`coarse`),
//! which can only refute; then the same search keeping only a few configurations (a beam),
//! which can only prove valid; then [`search`]: Wing & Gong's backtracking
//! search with Lowe's cache of (linearized set, state), shaped like Porcupine's `checkSingle`
//! (also used to enumerate the states possible at a point).
//!
//! The history is a list of call and return entries (`entries`). At each node the candidates
//! are the calls before the first return still in the list, tried in the order they return
//! (see `Cursor::skip`): linearizing one lifts its entries out and pushes it on the `path`;
//! when no candidate is left the last one is undone and the scan goes on after it. Ops that never returned are tried after the returned ones, and only if
//! they were called before that first return. The cache (`cache`, keyed as in `hash`) skips
//! nodes already explored.
//!
//! More pruning rules, each a function below with its argument, keep histories with many
//! concurrent ops, crashed ops and reads cheap: `legal_read`, `overwrites_crashed` (and its
//! look-ahead `only_blind_follows`), `commutes_with_crashed`, `later_twin` and `twin_waits`.
//! The last two work on classes of interchangeable ops (`classes`), so the search branches on
//! what ops do, not on which process did them. `hopeless` cuts nodes where a state has too few
//! epochs left for the ops that need it (`epochs`), so a write placed too early fails at once.

mod budget;
mod cache;
mod classes;
mod coarse;
mod entries;
mod epochs;
mod frontier;
mod hash;
mod path;
mod pinned;
mod slots;

pub use budget::Budget;

use crate::model::{PartModel, Timed};
use budget::Meter;
use cache::Seen;
use classes::Classes;
use entries::{op_of, Cursor, Entries, Entry, Look};
use epochs::Epochs;
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

/// Decides whether `ops` can be linearized from `part.init()`: by the bounds (`pinned`)
/// refuting it, by the frontier search (`frontier`), or, where its frontier grows too wide, by
/// its coarse form refuting it, its beam proving it valid, or by [`search`]. Returns the outcome and the
/// number of configurations or nodes explored.
pub fn decide<P: PartModel>(part: &P, ops: &[Timed<P::Op>], budget: &Budget) -> (Search, u64) {
    // One pass, so first: it decides histories of unique values, whose states are too many for
    // the frontier (the bench's unique-decoy row at 100,000 ops: 3.7-4.0 s of CPU when the
    // frontier ran first, 0.25-0.4 s now; the other rows within the noise).
    if let Some(refuted) = pinned::refute(part, ops) {
        return refuted;
    }
    let classes = Classes::new(part, ops);
    if let Some(decided) = frontier::decide(part, ops, &classes, budget) {
        return decided;
    }
    // Cheap (one configuration per state), and it refutes most invalid histories the exact
    // frontier gave up on; a valid history costs it one pass.
    if let Some(refuted) = coarse::refute(part, ops, &classes, budget) {
        return refuted;
    }
    // It finds one linearization of a valid history with many crashed ops in a pass, where
    // the depth-first search backtracks over long prefixes. After the coarse frontier: on
    // the bench's invalid 20,000-op stale-read row the beam spends 0.7 s before it fails,
    // the coarse frontier costs the valid row 0.4 s. Without crashed ops (the bench's valid
    // row with none) it failed after about 0.2 s, and the depth-first search decides it.
    let crashed = ops.iter().any(|t| t.ret.is_none());
    for &width in BEAM_WIDTHS.iter().filter(|_| crashed) {
        if let Some(proved) = frontier::prove_valid(part, ops, &classes, budget, width) {
            return proved;
        }
    }
    search(part, ops, budget, &mut |_| true)
}

/// The configurations the beam keeps after each event ([`frontier::prove_valid`]), one try
/// per width while it empties (an empty beam proves nothing, and a later one may survive). On
/// the valid 20,000-op row with 500 crashed ops, 5 took 1.1 M states (0.7 s), 8 1.9 M
/// (0.9 s), 16 1.6 s, 32 2.8 s, and 4 emptied; on its 100,000-op form 5 took 5.5 M states,
/// 8 9.8 M. 5 is close to the edge, so 8 is tried after it: an empty beam costs at most
/// what a full pass does (on the valid 10,000-op row both empty, 0.15 s each).
const BEAM_WIDTHS: [usize; 2] = [5, 8];

/// Whether the frontier search keeping at most `width` configurations after each event finds
/// `ops` linearizable (which makes it so): public for the agreement tests, which give it a
/// width small enough to prune on small histories.
pub fn beam_proves_valid<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    budget: &Budget,
    width: usize,
) -> bool {
    let classes = Classes::new(part, ops);
    let proved = frontier::prove_valid(part, ops, &classes, budget, width);
    proved.is_some_and(|(r, _)| matches!(r, Search::Linearizable))
}

/// Whether the coarse frontier (`coarse`) finds `ops` not linearizable (which makes it so):
/// public for the agreement tests.
pub fn coarse_refutes<P: PartModel>(part: &P, ops: &[Timed<P::Op>], budget: &Budget) -> bool {
    let classes = Classes::new(part, ops);
    let refuted = coarse::refute(part, ops, &classes, budget);
    refuted.is_some_and(|(r, _)| matches!(r, Search::NotLinearizable { .. }))
}

/// Whether the bounds on when each state can hold (`pinned`) find `ops` not linearizable
/// (which makes it so): public for the agreement tests.
pub fn pinned_refutes<P: PartModel>(part: &P, ops: &[Timed<P::Op>], budget: &Budget) -> bool {
    let _ = budget; // one pass: no limit to check
    let refuted = pinned::refute(part, ops);
    refuted.is_some_and(|(r, _)| matches!(r, Search::NotLinearizable { .. }))
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
    search_cutting(part, ops, budget, done, &mut 0)
}

/// The depth-first search alone, with how many nodes `epochs` cut: public for the agreement
/// tests, which check that the rule is exercised.
pub fn search_counting_cuts<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    budget: &Budget,
) -> (Search, u64) {
    let mut cuts = 0;
    let (outcome, _) = search_cutting(part, ops, budget, &mut |_| true, &mut cuts);
    (outcome, cuts)
}

/// [`search`], counting the nodes `epochs` cut in `cuts`.
fn search_cutting<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    budget: &Budget,
    done: &mut dyn FnMut(&P::State) -> bool,
    cuts: &mut u64,
) -> (Search, u64) {
    let returned = ops.iter().filter(|t| t.ret.is_some()).count();
    let classes = Classes::new(part, ops);
    let path = Path::new(part.init(), classes.class.clone(), returned);
    if path.complete() && done(&path.state) {
        return (Search::Linearizable, 0);
    }
    let mut seen = Seen::default();
    let result = run(part, ops, budget, done, &classes, path, &mut seen);
    *cuts = seen.cut;
    seen.free();
    result
}

/// The search loop of [`search`], from the root `path`, recording nodes in `seen`.
fn run<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    budget: &Budget,
    done: &mut dyn FnMut(&P::State) -> bool,
    classes: &Classes,
    mut path: Path<P::State>,
    seen: &mut Seen,
) -> (Search, u64) {
    let mut list = Entries::new(ops);
    let epochs = Epochs::new(part, ops);
    let mut longest = Longest::default();
    let mut meter = Meter::new(budget);
    let (mut at, mut fresh) = (Cursor::start(&list), true);
    // Whether a blind crashed op placed at this node could only be followed by blind ops.
    let mut blind_next = false;
    loop {
        if let Some(reason) = meter.tick(seen.compared, || seen.bytes() + path.bytes()) {
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
                let pruned = overwrites_crashed(part, &path, op)
                    || (at.pending && blind_next && part.is_blind(op))
                    || later_twin(classes, ops, &path, at)
                    || twin_waits(classes, &path, at);
                let next = if pruned {
                    None
                } else {
                    part.step(&path.state, op)
                };
                let next =
                    next.filter(|n| at.pending || !commutes_with_crashed(part, ops, &path, op, n));
                let depth = path.depth();
                // `lift` refuses a node the cache has seen (Lowe's rule).
                let lifted = next.is_some_and(|next| path.lift(&mut list, seen, at, next));
                let stuck = lifted
                    .then(|| hopeless(part, epochs.as_ref(), &list, &path, op))
                    .flatten();
                if let Some(blocked) = stuck {
                    // Recorded as if explored: the shrinker and the explanation then name the
                    // op the search would have got stuck at.
                    longest.stuck(&path, blocked);
                    seen.cut += 1;
                    path.unlift(&mut list);
                    longest.popped(depth);
                    at = at.skip(&list);
                } else if lifted {
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
                at = at.to_pending(&list);
                blind_next = only_blind_follows(part, ops, &list, &path, at);
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
                if undone.pending {
                    // Back at the parent's crashed candidates: its look-ahead, not the child's.
                    blind_next =
                        only_blind_follows(part, ops, &list, &path, undone.to_pending(&list));
                }
                at = undone.skip(&list);
            }
        }
    }
}

/// Pruning: after an op that changes the state, the node it reached is cut if the epochs
/// left of the state it ended are too few (see `epochs`); Some names the op left without one.
fn hopeless<P: PartModel>(
    part: &P,
    epochs: Option<&Epochs<P::State>>,
    list: &Entries,
    path: &Path<P::State>,
    op: &P::Op,
) -> Option<usize> {
    let (epochs, before) = (epochs?, path.before_last()?);
    if part.is_read_only(op) {
        return None;
    }
    epochs.hopeless(list, before, &path.state)
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

/// Pruning, a look-ahead of `overwrites_crashed`: a blind crashed op placed at a node where
/// every candidate (the returned ones before the first return, and the crashed ones called
/// before it) is blind too has no child: placing it changes neither list but the pending one,
/// so the next node's candidates are these same ops (less itself), and each of them is blind
/// right after a crashed op. (No read-only op is among them, so `legal_read` forces none.) The
/// node is not even entered, which saves its cache entry. Not when every returned op is
/// linearized: the path may end there, and an enumeration (`done` returning false) wants the
/// state it ends in.
fn only_blind_follows<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    list: &Entries,
    path: &Path<P::State>,
    pending: Cursor,
) -> bool {
    let blind = |e: Entry| part.is_blind(&ops[op_of(e)].op);
    let mut crashed = pending.candidates(list).peekable();
    // Without a crashed candidate there is nothing to prune: skip the scan.
    crashed.peek().is_some()
        && !path.complete()
        && crashed.all(blind)
        && list.leading_calls().all(blind)
}

/// Pruning: a never-returned op `c` is linearized only right before a returned op it enables
/// (or changes): if the next op `y` is legal without it and the two in either order reach the
/// same state (`next`), the order `y, c` is tried instead. Exchange argument: `c` has no return,
/// so nothing has to follow it and it may move later; `y` was a candidate before `c` was placed
/// (`c` changed no list but the pending one), so it may move earlier. Each such swap moves a
/// crashed op later past a returned one, so the swaps end. (Not for `y` never returned too: two
/// crashed ops that commute, such as appends to two keys, would then exclude each other both
/// ways.) So crashed ops are placed just in time, not at every point they could be.
fn commutes_with_crashed<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    path: &Path<P::State>,
    y: &P::Op,
    next: &P::State,
) -> bool {
    let Some((c, before)) = path.last_crashed() else {
        return false;
    };
    part.step(before, y)
        .and_then(|s| part.step(&s, &ops[c].op))
        .is_some_and(|s| s == *next)
}

/// Pruning: of two interchangeable returned ops that could both go next, only the one that
/// returns first is tried. Exchange argument: take any linearization from here that places the
/// later one, `b`, now and the earlier one, `a`, at some later point `q`; swap them. The ops are
/// interchangeable, so every state along the order is unchanged. `a` now is allowed: it is a
/// candidate, so it was called and everything that returned before its call is linearized. `b`
/// at `q` is allowed: `q` comes before `a`'s return, which comes before `b`'s. An op that had to
/// follow `b` (called after `b` returned) was called after `a` returned too, so it already
/// followed `q`. So placing `a` now is never worse.
fn later_twin<O, S: std::hash::Hash>(
    classes: &Classes,
    ops: &[Timed<O>],
    path: &Path<S>,
    at: Cursor,
) -> bool {
    if at.pending || at.forced {
        return false;
    }
    // Ops of the class that returned before this one, latest first. Those returned before the
    // node's first open return are all linearized already: stop there.
    let bound = at.bound();
    let mut a = classes.returned_before[op_of(at.entry)];
    while a != classes::NONE {
        let t = &ops[a as usize];
        if t.ret.is_some_and(|r| r < bound) {
            return false;
        }
        if !path.has(a as usize) && t.call < bound {
            return true;
        }
        a = classes.returned_before[a as usize];
    }
    false
}

/// Pruning: interchangeable never-returned ops are used in call order, so a crashed op waits
/// until its earlier twin is on the path. Exchange argument: both were called before any point
/// the later one could take, and neither has to return, so the earlier one can take its place.
fn twin_waits<S: std::hash::Hash>(classes: &Classes, path: &Path<S>, at: Cursor) -> bool {
    at.pending && {
        let twin = classes.crashed_before[op_of(at.entry)];
        twin != classes::NONE && !path.has(twin as usize)
    }
}
