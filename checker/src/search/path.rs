//! The current search path: the ops linearized so far, in order, with what undoing each needs,
//! and the longest path that ended at a blocked op (for the explanation).

use super::cache::Seen;
use super::entries::{op_of, Cursor, Entries};
use super::hash::{self, OpsHash};
use std::hash::Hash;

/// One linearized op: the cursor that chose it (to resume the scan after undoing it) and the
/// state before it.
struct Frame<S> {
    at: Cursor,
    state: S,
}

/// The linearized ops and the state they lead to. The linearized set itself is never stored:
/// it is the entries lifted out of the lists, plus its hash for the cache.
pub(super) struct Path<S> {
    frames: Vec<Frame<S>>,
    pub(super) state: S,
    /// Never-returned ops on the path, as (class, how many) sorted by class. Crashed ops of a
    /// class are used in call order (`twin_waits`), so the count says which ones; the cache
    /// compares these counts.
    crashed: Vec<(u32, u32)>,
    /// The class of each op.
    class: Vec<u32>,
    /// Hash of the returned ops on the path.
    hash: OpsHash,
    /// Per op: whether it is on the path.
    done: Vec<bool>,
    /// Returned ops not yet linearized, of `returned` in all.
    remaining: usize,
    returned: usize,
}

impl<S: Hash> Path<S> {
    pub(super) fn new(init: S, class: Vec<u32>, returned: usize) -> Self {
        let ops = class.len();
        Path {
            frames: Vec::new(),
            state: init,
            crashed: Vec::new(),
            class,
            hash: (0, 0),
            done: vec![false; ops],
            remaining: returned,
            returned,
        }
    }

    pub(super) fn depth(&self) -> usize {
        self.frames.len()
    }

    /// Every returned op is linearized.
    pub(super) fn complete(&self) -> bool {
        self.remaining == 0
    }

    /// Progress counts returned ops only: crashed ops may pad the path.
    pub(super) fn progress(&self) -> usize {
        self.returned - self.remaining
    }

    /// The last op linearized never returned.
    pub(super) fn ends_crashed(&self) -> bool {
        self.frames.last().is_some_and(|f| f.at.pending)
    }

    /// When the last op linearized never returned: that op and the state before it.
    pub(super) fn last_crashed(&self) -> Option<(usize, &S)> {
        let f = self.frames.last().filter(|f| f.at.pending)?;
        Some((op_of(f.at.entry), &f.state))
    }

    /// The state before the last op linearized.
    pub(super) fn before_last(&self) -> Option<&S> {
        self.frames.last().map(|f| &f.state)
    }

    pub(super) fn has(&self, op: usize) -> bool {
        self.done[op]
    }

    /// The ops linearized from `depth` on.
    pub(super) fn ops_from(&self, depth: usize) -> impl Iterator<Item = usize> + '_ {
        self.frames[depth..].iter().map(|f| op_of(f.at.entry))
    }

    pub(super) fn bytes(&self) -> usize {
        self.frames.capacity() * size_of::<Frame<S>>() + self.done.len()
    }

    /// Linearizes the candidate under `at`, reaching `next`, unless that node (or one that
    /// dominates it) was seen before. True if it did.
    #[inline]
    pub(super) fn lift(
        &mut self,
        list: &mut Entries,
        seen: &mut Seen,
        at: Cursor,
        next: S,
    ) -> bool {
        let i = op_of(at.entry);
        let hash = match at.pending {
            true => self.hash,
            false => hash::toggle(self.hash, i),
        };
        let key = hash::node_key(hash, &next);
        if at.pending {
            self.count_crashed(i, true);
        }
        let returned = self.returned - self.remaining + !at.pending as usize;
        if !seen.visit(returned, key, &self.crashed) {
            if at.pending {
                self.count_crashed(i, false);
            }
            return false;
        }
        let state = std::mem::replace(&mut self.state, next);
        self.frames.push(Frame { at, state });
        list.lift(at.entry, !at.pending);
        self.done[i] = true;
        if !at.pending {
            self.remaining -= 1;
        }
        self.hash = hash;
        true
    }

    /// Counts crashed op `i` in (or out of) the path's class counts.
    fn count_crashed(&mut self, i: usize, add: bool) {
        let c = self.class[i];
        let slot = self.crashed.partition_point(|x| x.0 < c);
        match self.crashed.get_mut(slot) {
            Some(x) if x.0 == c && add => x.1 += 1,
            Some(x) if x.0 == c && x.1 > 1 => x.1 -= 1,
            Some(x) if x.0 == c => {
                self.crashed.remove(slot);
            }
            _ if add => self.crashed.insert(slot, (c, 1)),
            _ => unreachable!("a crashed op on the path is counted"),
        }
    }

    /// Undoes the last [`Path::lift`]; returns the cursor that chose it, or None at the root.
    #[inline]
    pub(super) fn unlift(&mut self, list: &mut Entries) -> Option<Cursor> {
        let f = self.frames.pop()?;
        let i = op_of(f.at.entry);
        if f.at.pending {
            self.count_crashed(i, false);
        } else {
            self.remaining += 1;
            self.hash = hash::toggle(self.hash, i);
        }
        list.unlift(f.at.entry, !f.at.pending);
        self.done[i] = false;
        self.state = f.state;
        Some(f.at)
    }
}

/// The path that linearized the most returned ops before getting stuck, and the op it got
/// stuck at. It is kept as a copy; `shared` says how much of it the current path still starts
/// with, so recording a longer one copies only what differs.
#[derive(Default)]
pub(super) struct Longest {
    pub(super) ops: Vec<usize>,
    pub(super) blocked: Option<usize>,
    pub(super) progress: usize,
    shared: usize,
}

impl Longest {
    /// The path is stuck at op `blocked`: keep it if it got further than any before.
    pub(super) fn stuck<S: Hash>(&mut self, path: &Path<S>, blocked: usize) {
        let progress = path.progress();
        if self.blocked.is_some() && progress <= self.progress {
            return;
        }
        self.progress = progress;
        self.ops.truncate(self.shared);
        self.ops.extend(path.ops_from(self.shared));
        (self.shared, self.blocked) = (path.depth(), Some(blocked));
    }

    /// Op `i` was linearized at `depth`.
    #[inline]
    pub(super) fn pushed(&mut self, depth: usize, i: usize) {
        if self.shared == depth && self.ops.get(depth) == Some(&i) {
            self.shared += 1;
        }
    }

    /// The path was cut back to `depth`.
    #[inline]
    pub(super) fn popped(&mut self, depth: usize) {
        self.shared = self.shared.min(depth);
    }
}
