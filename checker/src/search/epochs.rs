//! Pruning for the depth-first search: a node is hopeless if some state has fewer *epochs*
//! left before a point than the ops that must use one up by then. For models whose
//! state-changing ops each leave one known state ([`PartModel::leaves`]) and whose checking ops
//! are legal in one state ([`PartModel::needs`]), like `pinned`.
//!
//! **The count.** From a node in state `s`, take a state `v` and a point `T` of the history. An
//! epoch of `v` is a maximal run of the linearization in state `v`. A *consumer* of `v` (an op
//! legal only in `v` that leaves another state: a cas from `v`) ends an epoch; one that
//! returned before `T` takes effect before `T`. Between two consumers the state goes from
//! another state back to `v`, so some op between them leaves `v` from another state: a *maker*
//! (an op leaving `v` that does not need it), placed before the second consumer, so called
//! before that one returned, before `T`. Before the first consumer, a maker too, unless `s` is
//! `v`. So the consumers of `v` not linearized that returned before `T` are at most the makers
//! not linearized called before `T`, plus one if `s` is `v`; and a read of `v` that returned
//! before `T` needs one epoch at least. Crashed consumers need not take effect and are not
//! counted; crashed makers may, and are (see `Epochs::crashed`).
//!
//! Where the count fails no linearization goes on from the node, whichever path reached it:
//! the node is cut like one whose every child failed (an enumeration loses nothing either,
//! it wants only nodes where every returned op is linearized). Placing an op lowers the
//! count only for the state it left (an epoch ended, or a maker spent where `v` already held),
//! so that state alone is checked, after every op that changes the state.
//!
//! **Why.** With dozens of concurrent writes and cas of a few values and no crashed op, a
//! write placed too early ends the epoch a cas from its value needed, and the depth-first
//! search notices only at that cas's return, a hundred ops later, after exploring every order
//! of the ops between (the bench's valid 100,000-op row without crashes: 1.7 M states at one
//! such point, 8.6 M in all; 2.0 M with this cut).

use super::entries::{op_of, Entries};
use crate::model::{PartModel, Timed};
use std::collections::HashMap;

const NONE: u32 = u32::MAX;

/// The history entries one check looks at, from the first not yet linearized: far enough to
/// see the returns of the ops open beside the node (50 processes), and a bound on its cost.
const HORIZON: usize = 512;

pub(super) struct Epochs<S> {
    /// The states some op needs, numbered.
    index: HashMap<S, u32>,
    /// Per op: the state it makes (leaves without needing it), if numbered.
    makes: Vec<u32>,
    /// Per op: the state it needs, if numbered, and whether it ends that state's epoch (a
    /// returned consumer; a read only needs one).
    needs: Vec<(u32, bool)>,
    /// Per state: the first call of a crashed maker. The count is checked only at points
    /// before it, where it needs no crashed op.
    crashed: Vec<usize>,
}

impl<S: Clone + Eq + std::hash::Hash> Epochs<S> {
    /// None if some state-changing op does not say which state it leaves.
    pub(super) fn new<P: PartModel<State = S>>(part: &P, ops: &[Timed<P::Op>]) -> Option<Self> {
        let mut index = HashMap::new();
        for t in ops {
            if let Some(v) = part.needs(&t.op) {
                let n = index.len() as u32;
                index.entry(v).or_insert(n);
            }
        }
        let mut crashed = vec![usize::MAX; index.len()];
        let (mut makes, mut needs) = (Vec::new(), Vec::new());
        for t in ops {
            let need = part.needs(&t.op).map_or(NONE, |v| index[&v]);
            let leaves = match part.is_read_only(&t.op) {
                true => None,
                false => part.leaves(&t.op).map(|u| index.get(&u).copied())?,
            };
            let make = leaves.unwrap_or(NONE);
            let make = if make == need { NONE } else { make };
            if make != NONE && t.ret.is_none() {
                let first = &mut crashed[make as usize];
                *first = (*first).min(t.call);
            }
            makes.push(make);
            let ends = leaves != Some(need) && !part.is_read_only(&t.op);
            needs.push((need, ends && t.ret.is_some()));
        }
        Some(Epochs {
            index,
            makes,
            needs,
            crashed,
        })
    }

    /// Whether no linearization goes on from the node with `list` left, in state `now`, an op
    /// having just left state `before` (see the module doc): if so, the returned op whose need
    /// no epoch is left for, which is where the search would have got stuck.
    pub(super) fn hopeless(&self, list: &Entries, before: &S, now: &S) -> Option<usize> {
        let &v = self.index.get(before)?; // no op needs it
        let limit = self.crashed[v as usize];
        let (mut makers, mut consumers, mut read) = ((before == now) as u32, 0u32, false);
        for e in list.main().take(HORIZON) {
            if list.pos(e) >= limit {
                break;
            }
            let i = op_of(e);
            if e & 1 == 0 {
                makers += (self.makes[i] == v) as u32;
            } else if self.needs[i].0 == v {
                match self.needs[i].1 {
                    true => consumers += 1,
                    false => read = true,
                }
                if consumers.max(read as u32) > makers {
                    return Some(i);
                }
            }
        }
        None
    }
}
