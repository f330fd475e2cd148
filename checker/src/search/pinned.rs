//! A refutation from when each state can hold, for models whose state-changing ops each leave
//! one known state ([`PartModel::leaves`]: a register's writes and cas, whatever they are
//! applied to) and whose checking ops are legal in one state only ([`PartModel::needs`]: a
//! read, a cas). With unique written values each state has one op that makes it, so a read
//! pins its write, and a crashed cas from a value overwritten for good can never apply: the
//! exact frontier carries every crashed write of a fresh value as a configuration of its own,
//! the coarse one as a state of its own, and both give up on long histories, where this
//! bound decides them in one pass (the classic reduction for registers with unique values:
//! each value's epoch runs from its write to the next write).
//!
//! **The bounds.** A linearization puts each op that takes effect at a point inside its
//! interval (after its call; before its return if it returned), all points distinct. For a
//! state `v`, `made[v]` bounds the points of the ops that leave `v` (its *makers*): every such
//! point is below it. A returned op's point is below its return; an op legal only in state
//! `a` (a cas from `a`) is below `gone[a]`, defined next. The initial state counts as made at
//! 0, before every op.
//!
//! `gone[v]`: the return of a returned op `w` that changes the state and leaves a state other
//! than `v`, called at or after `made[v]` (the least such return). Past `gone[v]` the state is
//! never `v`: `w` takes effect (every returned op does) after its call, so after every maker
//! of `v`; it leaves another state; every op after it either changes nothing (read-only) or
//! leaves its own state, which is `v` only for a maker of `v`, and none comes that late. So an
//! op legal only in `v` that takes effect comes before `w`, below `gone[v]`: that is the bound
//! on a cas from `v` above.
//!
//! The two depend on each other (crashed cas chains), so they are computed from "no bound"
//! down, round by round: each round's values are bounds if the last round's were (by the
//! arguments above), and they only shrink. Stopping after any round is sound.
//!
//! **The refutation.** A returned op legal only in `v` and called at or after `gone[v]` takes
//! effect after `w`, where the state is not `v`: no linearization exists.

use super::Search;
use crate::model::{PartModel, Timed};
use std::collections::HashMap;

/// The rounds of narrowing bounds computed at most (each costs one pass over the ops).
const ROUNDS: usize = 32;

const NEVER: usize = usize::MAX;

/// Decides `ops` is not linearizable, if the bounds show it: None if they do not, or if some
/// state-changing op does not say which state it leaves. Returns the op that cannot take
/// effect (with no linearized prefix) and the work done.
pub(super) fn refute<P: PartModel>(part: &P, ops: &[Timed<P::Op>]) -> Option<(Search, u64)> {
    let mut index: HashMap<P::State, usize> = HashMap::new();
    let mut intern = |s: P::State| {
        let n = index.len();
        *index.entry(s).or_insert(n)
    };
    let init = intern(part.init());
    // Per op: the state it leaves (state-changing ops) and the one state it needs, if any.
    let mut leaves = vec![None; ops.len()];
    let mut needs = vec![None; ops.len()];
    for (i, t) in ops.iter().enumerate() {
        if !part.is_read_only(&t.op) {
            leaves[i] = Some(intern(part.leaves(&t.op)?));
        }
        needs[i] = part.needs(&t.op).map(&mut intern);
    }
    let states = index.len();
    let changers = Changers::new(ops, &leaves);
    let mut gone = vec![NEVER; states];
    let mut work = ops.len() as u64;
    for _ in 0..ROUNDS {
        let mut made = vec![None::<usize>; states];
        made[init] = Some(0);
        for (i, t) in ops.iter().enumerate() {
            let Some(v) = leaves[i] else { continue };
            let by_ret = t.ret.unwrap_or(NEVER);
            let by_need = needs[i].map_or(NEVER, |a| gone[a]);
            let bound = by_ret.min(by_need);
            made[v] = Some(made[v].map_or(bound, |m| m.max(bound)));
        }
        let next: Vec<usize> = (0..states)
            .map(|v| match made[v] {
                None => 0, // never made: never holds
                Some(NEVER) => NEVER,
                Some(m) => changers.first_return(m, v),
            })
            .collect();
        work += (ops.len() + states) as u64;
        if next == gone {
            break;
        }
        gone = next;
    }
    let blocked = (0..ops.len())
        .filter(|&i| ops[i].ret.is_some())
        .filter(|&i| needs[i].is_some_and(|v| ops[i].call >= gone[v]))
        .min_by_key(|&i| ops[i].call)?;
    let refuted = Search::NotLinearizable {
        linearized: vec![],
        blocked,
    };
    Some((refuted, work))
}

/// The returned state-changing ops by call, for the least return among those called at or
/// after a point that leave a state other than a given one.
struct Changers {
    calls: Vec<usize>,
    /// Per suffix (from the i-th call on): the least return and the state its op leaves, and
    /// the least return of an op leaving another state.
    best: Vec<((usize, usize), usize)>,
}

impl Changers {
    fn new<O>(ops: &[Timed<O>], leaves: &[Option<usize>]) -> Self {
        let mut by_call: Vec<(usize, usize, usize)> = (0..ops.len())
            .filter_map(|i| Some((ops[i].call, ops[i].ret?, leaves[i]?)))
            .collect();
        by_call.sort_unstable();
        let mut best = vec![((NEVER, NEVER), NEVER); by_call.len() + 1];
        for k in (0..by_call.len()).rev() {
            let (_, ret, state) = by_call[k];
            let ((r1, s1), r2) = best[k + 1];
            best[k] = if ret < r1 {
                // The old best becomes the other state's, unless it leaves the same one.
                ((ret, state), if s1 == state { r2 } else { r1 })
            } else if state != s1 {
                ((r1, s1), r2.min(ret))
            } else {
                ((r1, s1), r2)
            };
        }
        Changers {
            calls: by_call.iter().map(|c| c.0).collect(),
            best,
        }
    }

    /// The least return of a returned op called at or after `from` that leaves a state other
    /// than `v` ([`NEVER`] if none).
    fn first_return(&self, from: usize, v: usize) -> usize {
        let k = self.calls.partition_point(|&c| c < from);
        let ((r1, s1), r2) = self.best[k];
        if s1 != v {
            r1
        } else {
            r2
        }
    }
}
