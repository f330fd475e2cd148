//! Classes of interchangeable ops ([`crate::model::PartModel::interchangeable`]: the same effect
//! and observation in every state, e.g. two writes of the same value), and the links the search
//! follows inside a class.
//!
//! Ops of one class differ only in their real-time interval, so the search need not tell apart
//! two of them that could both go next: see `later_twin` and `twin_waits` in the search.

use crate::model::{PartModel, Timed};

/// How many recent classes an op is compared with. A finer split than the true one only loses
/// pruning, never soundness, so an op of a class not seen lately just starts a new one.
const RECENT: usize = 64;

pub(super) const NONE: u32 = u32::MAX;

pub(super) struct Classes {
    /// The class of each op.
    pub(super) class: Vec<u32>,
    /// For a returned op: the op of its class that returned just before it (`NONE` if none).
    pub(super) returned_before: Vec<u32>,
    /// For a never-returned op: the never-returned op of its class called just before it.
    pub(super) crashed_before: Vec<u32>,
}

impl Classes {
    pub(super) fn new<P: PartModel>(part: &P, ops: &[Timed<P::Op>]) -> Self {
        let class = assign(part, ops);
        let n = ops.len();
        let (mut returned_before, mut crashed_before) = (vec![NONE; n], vec![NONE; n]);
        let classes = class.iter().max().map_or(0, |&c| c as usize + 1);
        // Ops are in call order: the last crashed op seen of each class is the one called last.
        let mut last_crashed = vec![NONE; classes];
        for i in 0..n {
            if ops[i].ret.is_none() {
                let c = class[i] as usize;
                crashed_before[i] = last_crashed[c];
                last_crashed[c] = i as u32;
            }
        }
        let mut by_ret: Vec<usize> = (0..n).filter(|&i| ops[i].ret.is_some()).collect();
        by_ret.sort_unstable_by_key(|&i| ops[i].ret);
        let mut last_returned = vec![NONE; classes];
        for i in by_ret {
            let c = class[i] as usize;
            returned_before[i] = last_returned[c];
            last_returned[c] = i as u32;
        }
        Classes {
            class,
            returned_before,
            crashed_before,
        }
    }
}

/// A class number per op: the class of the first of the `RECENT` most recently used classes
/// whose representative it is interchangeable with, or a new one.
fn assign<P: PartModel>(part: &P, ops: &[Timed<P::Op>]) -> Vec<u32> {
    let mut reps: Vec<usize> = Vec::new();
    // Classes, most recently used last.
    let mut recent: Vec<u32> = Vec::with_capacity(RECENT + 1);
    let mut class = Vec::with_capacity(ops.len());
    for (i, t) in ops.iter().enumerate() {
        let found = recent
            .iter()
            .rposition(|&c| part.interchangeable(&ops[reps[c as usize]].op, &t.op));
        let c = match found {
            Some(k) => recent.remove(k),
            None => {
                reps.push(i);
                (reps.len() - 1) as u32
            }
        };
        recent.push(c);
        if recent.len() > RECENT {
            recent.remove(0);
        }
        class.push(c);
    }
    class
}
