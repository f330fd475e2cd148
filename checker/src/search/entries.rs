//! The search's view of the history: call and return entries in two index-linked lists, and the
//! cursor that walks the candidates of one search node.
//!
//! Op `i` has call entry `2i` and return entry `2i + 1`. Ops that returned have both entries in
//! the main list; ops that never returned have only their call, in the pending list (they may
//! take effect any time after their call, or never, so they are tried last). Both lists are in
//! history order. Linearizing an op lifts its entries out of the lists; backtracking puts them
//! back in place (dancing links), so the lists always hold exactly the ops not yet linearized.

use crate::model::Timed;

/// An entry: `2 * op` for a call, `2 * op + 1` for a return; the two list heads come after.
pub(super) type Entry = u32;

/// The op an entry belongs to.
#[inline]
pub(super) fn op_of(e: Entry) -> usize {
    e as usize / 2
}

pub(super) struct Entries {
    next: Vec<Entry>,
    prev: Vec<Entry>,
    /// History position of each entry (calls: invoke, returns: completion).
    pos: Vec<usize>,
    main: Entry,
    pending: Entry,
}

impl Entries {
    pub(super) fn new<O>(ops: &[Timed<O>]) -> Self {
        let n = ops.len() as u32;
        let (main, pending) = (2 * n, 2 * n + 1);
        let mut pos = vec![usize::MAX; 2 * n as usize + 2];
        for (i, t) in ops.iter().enumerate() {
            pos[2 * i] = t.call;
            pos[2 * i + 1] = t.ret.unwrap_or(usize::MAX);
        }
        let mut order: Vec<Entry> = (0..n)
            .flat_map(|i| [2 * i, 2 * i + 1])
            .filter(|&e| e & 1 == 0 || ops[op_of(e)].ret.is_some())
            .collect();
        order.sort_unstable_by_key(|&e| pos[e as usize]);
        let mut list = Entries {
            next: (0..2 * n + 2).collect(),
            prev: (0..2 * n + 2).collect(),
            pos,
            main,
            pending,
        };
        let (mut tail_main, mut tail_pending) = (main, pending);
        for e in order {
            let (head, tail) = match ops[op_of(e)].ret {
                Some(_) => (main, &mut tail_main),
                None => (pending, &mut tail_pending),
            };
            list.next[*tail as usize] = e;
            (list.prev[e as usize], list.next[e as usize]) = (*tail, head);
            list.prev[head as usize] = e;
            *tail = e;
        }
        list
    }

    #[inline]
    pub(super) fn next(&self, e: Entry) -> Entry {
        self.next[e as usize]
    }

    /// The calls of the main list before its first return: the returned ops that may be
    /// linearized next.
    pub(super) fn leading_calls(&self) -> impl Iterator<Item = Entry> + '_ {
        let first = self.next(self.main);
        std::iter::successors(Some(first), |&c| Some(self.next(c)))
            .take_while(|&c| c != self.main && c & 1 == 0)
    }

    /// The main list's first return entry (the list's head if none is left), and how many calls
    /// come before it.
    fn first_return(&self) -> (Entry, u32) {
        let (mut e, mut calls) = (self.next(self.main), 0);
        while e != self.main && e & 1 == 0 {
            e = self.next(e);
            calls += 1;
        }
        (e, calls)
    }

    /// The main list's entries, in history order.
    pub(super) fn main(&self) -> impl Iterator<Item = Entry> + '_ {
        let first = self.next(self.main);
        std::iter::successors(Some(first), |&c| Some(self.next(c))).take_while(|&c| c != self.main)
    }

    /// The history position of entry `e`.
    #[inline]
    pub(super) fn pos(&self, e: Entry) -> usize {
        self.pos[e as usize]
    }

    /// Takes op `e`'s call (and its return if it returned) out of the lists.
    #[inline]
    pub(super) fn lift(&mut self, e: Entry, returned: bool) {
        self.unlink(e);
        if returned {
            self.unlink(e + 1);
        }
    }

    /// Undoes [`Entries::lift`] (in reverse order, so adjacent entries relink correctly).
    #[inline]
    pub(super) fn unlift(&mut self, e: Entry, returned: bool) {
        if returned {
            self.relink(e + 1);
        }
        self.relink(e);
    }

    fn unlink(&mut self, x: Entry) {
        let (p, nx) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = nx;
        self.prev[nx as usize] = p;
    }

    fn relink(&mut self, x: Entry) {
        let (p, nx) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = x;
        self.prev[nx as usize] = x;
    }
}

/// Where the scan of one node's candidates is: first the main list's calls up to its first
/// return, then the pending list's calls made before that return (`bound`).
#[derive(Clone, Copy)]
pub(super) struct Cursor {
    pub(super) entry: Entry,
    /// In the pending list: `entry` is a never-returned op.
    pub(super) pending: bool,
    /// A read-only op tried alone (see `legal_read`): no other candidate is tried at this node.
    pub(super) forced: bool,
    bound: usize,
    /// The main list's candidates not tried yet.
    left: u32,
}

/// What the cursor is on.
pub(super) enum Look {
    /// A call that may be linearized next.
    Candidate(Entry),
    /// The end of the main list's candidates: the first return entry, if any is left.
    FirstReturn(Option<Entry>),
    /// No candidate left at this node.
    Exhausted,
}

impl Cursor {
    /// The first candidate of a fresh node: the op of its first return (see [`Cursor::skip`]).
    pub(super) fn start(list: &Entries) -> Self {
        let (first, calls) = list.first_return();
        Cursor {
            entry: if first == list.main { first } else { first - 1 },
            pending: false,
            forced: false,
            bound: list.pos[first as usize],
            left: calls.saturating_sub(1),
        }
    }

    /// The position of the node's first return not yet linearized (`usize::MAX`: none): the ops
    /// called before it are the node's candidates.
    pub(super) fn bound(&self) -> usize {
        self.bound
    }

    /// Only `e` (a leading call) is tried at this node.
    pub(super) fn forced(e: Entry) -> Self {
        Cursor {
            entry: e,
            pending: false,
            forced: true,
            bound: 0,
            left: 0,
        }
    }

    #[inline]
    pub(super) fn look(&self, list: &Entries) -> Look {
        let e = self.entry;
        if !self.pending {
            if e == list.main {
                Look::FirstReturn(None)
            } else if e & 1 == 1 {
                Look::FirstReturn(Some(e))
            } else {
                Look::Candidate(e)
            }
        } else if e == list.pending || list.pos[e as usize] >= self.bound {
            Look::Exhausted
        } else {
            Look::Candidate(e)
        }
    }

    /// From the main list's end (its first return) to the pending ops called before it.
    pub(super) fn to_pending(self, list: &Entries) -> Self {
        Cursor {
            entry: list.next(list.pending),
            pending: true,
            forced: false,
            bound: self.bound,
            left: 0,
        }
    }

    /// The pending candidates from this cursor on (its entry included): the never-returned
    /// ops called before the node's first return.
    pub(super) fn candidates<'a>(&self, list: &'a Entries) -> impl Iterator<Item = Entry> + 'a {
        let bound = self.bound;
        std::iter::successors(Some(self.entry), |&c| Some(list.next(c)))
            .take_while(move |&c| c != list.pending && list.pos[c as usize] < bound)
    }

    /// Past the current candidate (it failed, or everything after it was explored). The main
    /// list's candidates are tried in the order they return, the first return's op first: an
    /// op that returns late is placed only once those returning sooner were tried, so a write
    /// open for long does not end, early on, the state a cas returning soon needs (the search
    /// tries every candidate all the same; only the order changes). With `epochs`, on the
    /// bench's valid 100,000-op row without crashes: 0.3 M states, 2.0 M in call order.
    #[inline]
    pub(super) fn skip(self, list: &Entries) -> Self {
        if self.forced {
            // Any order placing the read later works with it here: nothing else to try.
            return Cursor {
                entry: list.pending,
                pending: true,
                forced: false,
                bound: self.bound,
                left: 0,
            };
        }
        if self.pending {
            return Cursor {
                entry: list.next(self.entry),
                ..self
            };
        }
        if self.left == 0 {
            return Cursor {
                entry: list.first_return().0,
                ..self
            };
        }
        // The candidates' returns follow the first return in the list, in the order wanted,
        // among other ops' returns: a return whose call comes before the first return is one.
        let mut r = list.next(self.entry + 1);
        while r & 1 == 0 || list.pos[r as usize - 1] >= self.bound {
            debug_assert!(r != list.main, "fewer candidates than counted");
            r = list.next(r);
        }
        Cursor {
            entry: r - 1,
            left: self.left - 1,
            ..self
        }
    }
}
