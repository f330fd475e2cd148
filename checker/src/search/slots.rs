//! Sets of open ops as bitsets: each returning op takes a slot (a bit) at its call and gives it
//! back at its return, so a set of open ops is a few words however long the history, and a
//! union is one OR per word. The coarse frontier (`coarse`) keeps its `maybe` sets so: sorted
//! vectors of op numbers made it spend most of its time merging and allocating.
//!
//! A slot is given back only once no set holds its op any more (the coarse frontier drops the
//! returning op from every configuration), so a later op reusing it is never confused with it.

use crate::model::Timed;

/// Which slot each open op holds.
pub(super) struct Slots {
    slot: Vec<u32>,
    free: Vec<u32>,
    /// Words per set: enough for the most returning ops open at once.
    pub(super) words: usize,
}

impl Slots {
    /// Slots for the returning ops of `ops`, sized by the most open at once over `events`
    /// (time, op, is a return).
    pub(super) fn new<O>(ops: &[Timed<O>], events: &[(usize, u32, bool)]) -> Self {
        let (mut open, mut most) = (0usize, 0usize);
        for &(_, x, is_return) in events {
            if is_return {
                open -= 1;
            } else if ops[x as usize].ret.is_some() {
                open += 1;
                most = most.max(open);
            }
        }
        let words = most.div_ceil(64).max(1);
        Slots {
            slot: vec![u32::MAX; ops.len()],
            free: (0..(words * 64) as u32).rev().collect(),
            words,
        }
    }

    /// Gives op `x` (called now) a slot.
    pub(super) fn take(&mut self, x: u32) -> u32 {
        let s = self
            .free
            .pop()
            .expect("sized for the most ops open at once");
        self.slot[x as usize] = s;
        s
    }

    /// The slot of open op `x`.
    pub(super) fn of(&self, x: u32) -> u32 {
        self.slot[x as usize]
    }

    /// Takes back `x`'s slot (it returned, and no set holds it).
    pub(super) fn give_back(&mut self, x: u32) {
        self.free.push(self.slot[x as usize]);
        self.slot[x as usize] = u32::MAX;
    }

    pub(super) fn empty(&self) -> OpSet {
        OpSet(vec![0; self.words].into_boxed_slice())
    }
}

/// A set of open ops, by slot.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct OpSet(Box<[u64]>);

impl OpSet {
    pub(super) fn insert(&mut self, s: u32) {
        self.0[s as usize / 64] |= 1 << (s % 64);
    }

    pub(super) fn remove(&mut self, s: u32) {
        self.0[s as usize / 64] &= !(1 << (s % 64));
    }

    pub(super) fn contains(&self, s: u32) -> bool {
        self.0[s as usize / 64] & 1 << (s % 64) != 0
    }

    pub(super) fn union_with(&mut self, other: &OpSet) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
    }
}
