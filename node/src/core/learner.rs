//! The learner: decided slots, applying them in order, snapshots, and catch-up from peers.

use super::membership::alpha;
use super::Node;
use crate::durable::Snapshot;
use crate::kv::{AppState, Op, OpResult};
use crate::protocol::{Ballot, Msg, Slot, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Most decided slots in one catch-up answer.
const MAX_CATCHUP: usize = 256;

pub(super) struct Learner {
    pub(super) app: AppState,
    pub(super) decided: BTreeMap<Slot, Value>,
    /// Decided slots, not yet applied, that this node decided itself (counting its own vote).
    pub(super) own_decided: BTreeSet<Slot>,
    pub(super) last_snap: Arc<AppState>,
    pub(super) known_commit: Slot,
    pub(super) catchup_peer: usize,
    pub(super) last_catchup: u64,
    /// When this node last saw itself behind without progress: (tick, applied then).
    pub(super) behind_since: (u64, Slot),
}

impl Learner {
    pub(super) fn new(app: AppState) -> Learner {
        let applied = app.applied;
        Learner {
            last_snap: Arc::new(app.clone()),
            app,
            decided: BTreeMap::new(),
            own_decided: BTreeSet::new(),
            known_commit: applied,
            catchup_peer: 0,
            last_catchup: 0,
            behind_since: (0, applied),
        }
    }

    /// Whether `slot` is decided here (applied or not).
    pub(super) fn knows(&self, slot: Slot) -> bool {
        slot < self.app.applied || self.decided.contains_key(&slot)
    }
}

impl Node {
    pub(super) fn note_commit(&mut self, commit: Slot, from: usize) {
        let l = &mut self.learner;
        if commit > l.known_commit {
            l.known_commit = commit;
            l.catchup_peer = from;
        }
    }

    /// A peer says `slot` was chosen under `ballot`: learned if this node accepted the value
    /// there, else a sign this node is behind. `true` if newly learned.
    pub(super) fn on_decide(&mut self, from: usize, slot: Slot, ballot: Ballot) -> bool {
        if self.learner.knows(slot) {
            return false;
        }
        match self.acc.accepted_under(slot, ballot) {
            Some(v) => self.learn(slot, v),
            None => {
                self.note_commit(slot + 1, from);
                false
            }
        }
    }

    /// Records a decision and applies what is ready; `false` if it was known already.
    pub(super) fn learn(&mut self, slot: Slot, value: Value) -> bool {
        if self.learner.knows(slot) {
            return false;
        }
        if let Some(o) = &mut self.observer {
            o.learned(slot, &value);
        }
        self.learner.decided.insert(slot, value);
        // A decision past a gap means this node is behind: the gap is decided somewhere.
        self.learner.known_commit = self.learner.known_commit.max(slot + 1);
        self.apply_ready();
        true
    }

    /// A decision this node made itself: its replies wait for the node's own vote to be durable.
    pub(super) fn learn_own(&mut self, slot: Slot, value: Value) {
        self.learner.own_decided.insert(slot);
        self.learn(slot, value);
    }

    fn apply_ready(&mut self) {
        let l = &mut self.learner;
        while let Some(v) = l.decided.get(&l.app.applied).cloned() {
            let own = l.own_decided.remove(&l.app.applied);
            for cmd in v.iter() {
                let Some(res) = l.app.apply(cmd) else {
                    continue;
                };
                if cmd.id.origin == self.clients.origin {
                    if let Some(p) = self.clients.pending.remove(&cmd.id.seq) {
                        if res == OpResult::Reconfigured {
                            let from = l.app.applied + alpha(self.cfg.variant);
                            self.clients.until_in_force.push((p.tag, from));
                        } else if own {
                            self.out.replies.push((p.tag, res));
                        } else {
                            self.out.free_replies.push((p.tag, res));
                        }
                    }
                }
            }
            l.app.applied += 1;
            *self.counters.entry("slots_applied").or_insert(0) += 1;
            *self.counters.entry("commands_applied").or_insert(0) += v.len() as u64;
        }
        l.known_commit = l.known_commit.max(l.app.applied);
        if l.app.applied >= l.last_snap.applied + self.cfg.timing.snapshot_every {
            self.take_snapshot();
        }
        self.reply_in_force();
    }

    fn take_snapshot(&mut self) {
        let l = &mut self.learner;
        let a = l.app.applied;
        l.last_snap = Arc::new(l.app.clone());
        l.decided = l
            .decided
            .split_off(&a.saturating_sub(self.cfg.timing.keep_tail));
        self.acc.truncate(a);
        self.out.set_snapshot(self.durable_snapshot());
        self.bump("snapshots", 1);
    }

    /// The full durable state now.
    pub(super) fn durable_snapshot(&self) -> Snapshot {
        let app = self.learner.last_snap.clone();
        if self.cfg.bugs.volatile_acceptor {
            return Snapshot {
                app,
                ..Snapshot::default()
            };
        }
        Snapshot {
            promised: self.acc.promised,
            slots: self
                .acc
                .slots
                .range(app.applied..)
                .map(|(s, a)| (*s, a.clone()))
                .collect(),
            app,
        }
    }

    /// Gaps normally fill by themselves (decisions in flight); asks a peer only when this node
    /// has been behind without progress for a while.
    pub(super) fn catchup_tick(&mut self) {
        let (now, n, me) = (self.now, self.cfg.n, self.cfg.me);
        let every = self.cfg.timing.catchup;
        let l = &mut self.learner;
        if l.behind_since.1 != l.app.applied || l.known_commit <= l.app.applied {
            l.behind_since = (now, l.app.applied);
        } else if n > 1 && now >= l.behind_since.0 + every && now >= l.last_catchup + every {
            l.last_catchup = now;
            if l.catchup_peer == me {
                l.catchup_peer = (l.catchup_peer + 1) % n;
            }
            let (peer, from) = (l.catchup_peer, l.app.applied);
            // If that does not help, the next attempt asks another peer: the one that told us
            // about the commit may be stuck itself.
            l.catchup_peer = (l.catchup_peer + 1) % n;
            self.send(peer, Msg::CatchupReq { from });
        }
    }

    /// Answers with the snapshot if `from` is behind it, and every decided slot known from
    /// there on, applied or not (a peer may hold a slot this node lacks and vice versa).
    pub(super) fn serve_catchup(&mut self, to: usize, from: Slot) {
        let l = &self.learner;
        let first_kept = l.decided.keys().next().copied().unwrap_or(l.app.applied);
        let (snapshot, start) = if from < first_kept && l.last_snap.applied > from {
            (Some(l.last_snap.clone()), l.last_snap.applied)
        } else {
            (None, from)
        };
        let entries: Vec<(Slot, Value)> = l
            .decided
            .range(start..)
            .take(MAX_CATCHUP)
            .map(|(s, v)| (*s, v.clone()))
            .collect();
        if snapshot.is_none() && entries.is_empty() {
            return;
        }
        self.send(to, Msg::CatchupResp { snapshot, entries });
    }

    /// After a catch-up answer moved this node from `before`: asks `from` for more while behind.
    pub(super) fn catch_up_more(&mut self, from: usize, before: Slot) {
        let l = &mut self.learner;
        if l.app.applied > before && l.app.applied < l.known_commit {
            l.last_catchup = self.now;
            let from_slot = l.app.applied;
            self.send(from, Msg::CatchupReq { from: from_slot });
        }
    }

    /// Replaces the applied state with a peer's snapshot (which is ahead of it).
    pub(super) fn install(&mut self, s: Arc<AppState>) {
        self.bump("snapshots_installed", 1);
        let l = &mut self.learner;
        l.app = (*s).clone();
        let a = s.applied;
        l.decided = l.decided.split_off(&a);
        l.own_decided = l.own_decided.split_off(&a);
        l.last_snap = s;
        self.acc.truncate(a);
        let done: Vec<u64> = self
            .clients
            .pending
            .keys()
            .copied()
            .filter(|seq| self.learner.app.is_done(self.clients.origin, *seq))
            .collect();
        for seq in done {
            let p = self.clients.pending.remove(&seq).expect("listed");
            let r = match p.cmd.op {
                Op::Write { .. } => OpResult::Write,
                _ => OpResult::Error(0, "applied, result lost in catch-up".into()),
            };
            self.out.replies.push((p.tag, r));
        }
        self.apply_ready();
        self.out.set_snapshot(self.durable_snapshot());
    }
}
