//! Basic Paxos: every command runs both phases for the first slot this node has not seen
//! decided, one round at a time; a round that fails backs off for a random while.

use super::quorum::Votes;
use super::Node;
use crate::kv::Command;
use crate::protocol::{Ballot, Msg, Scope, Slot, Value};
use rand::Rng;
use std::sync::Arc;

#[derive(Default)]
pub struct BasicProposer {
    round: Option<Round>,
    backoff_until: u64,
    attempts: u32,
    last_hb: u64,
}

/// One Basic Paxos round for one slot.
struct Round {
    slot: Slot,
    ballot: Ballot,
    /// The command to propose (none: a no-op that puts a chosen configuration in force).
    cmd: Option<Command>,
    promises: Votes,
    best: Option<(Ballot, Value)>,
    /// Set once phase 1 is done: the value being proposed.
    value: Option<Value>,
    acks: Votes,
    started: u64,
}

impl BasicProposer {
    /// Starts a round for the oldest pending command (or a no-op while a chosen configuration
    /// is not in force yet), unless one runs or backoff holds.
    pub(super) fn next(&mut self, n: &mut Node) {
        if self.round.is_some() || n.now < self.backoff_until {
            return;
        }
        let mut slot = n.learner.app.applied;
        while n.learner.decided.contains_key(&slot) {
            slot += 1;
        }
        // Beyond the horizon this node does not know the slot's members: it catches up first.
        if n.members_at(slot).is_none() {
            return;
        }
        let cmd = match n.clients.pending.values().next() {
            Some(p) => {
                let mut cmd = p.cmd.clone();
                cmd.done_below = cmd.id.seq;
                Some(cmd)
            }
            None if n.change_pending(slot) && n.is_member() => None,
            None => return,
        };
        n.max_round += 1;
        let ballot = Ballot {
            round: n.max_round,
            node: n.cfg.me as u32,
        };
        self.round = Some(Round {
            slot,
            ballot,
            cmd,
            promises: Votes::NONE,
            best: None,
            value: None,
            acks: Votes::NONE,
            started: n.now,
        });
        n.bump("phase1_rounds", 1);
        n.bump("proposals", 1);
        n.broadcast(Msg::Prepare {
            ballot,
            scope: Scope::Slot(slot),
        });
    }

    /// Gives the round up: with `backoff` (outvoted) wait a random while, else (the slot was
    /// decided meanwhile) start the next round at once.
    fn abort(&mut self, n: &mut Node, backoff: bool) {
        self.round = None;
        if backoff {
            self.attempts = (self.attempts + 1).min(6);
            let max = n.cfg.timing.backoff << self.attempts;
            self.backoff_until = n.now + n.rng.gen_range(0..=max);
            n.bump("basic_backoffs", 1);
        } else {
            self.next(n);
        }
    }

    pub(super) fn on_tick(&mut self, n: &mut Node) {
        if let Some(r) = &self.round {
            if n.now >= r.started + n.cfg.timing.basic_timeout {
                self.abort(n, true);
            }
        }
        // No leader to send heartbeats: this tells peers how far this node has applied.
        if n.now >= self.last_hb + 2 * n.cfg.timing.heartbeat {
            self.last_hb = n.now;
            let m = Msg::Heartbeat {
                ballot: Ballot::ZERO,
                commit: n.learner.app.applied,
                sent: n.now,
            };
            n.broadcast_others(m);
        }
        self.next(n);
    }

    pub(super) fn on_promise(
        &mut self,
        n: &mut Node,
        from: usize,
        ballot: Ballot,
        accepted: Vec<(Slot, Ballot, Value)>,
        log_start: Slot,
    ) {
        let Some(r) = &mut self.round else { return };
        if r.ballot != ballot || r.value.is_some() {
            return;
        }
        if log_start > r.slot {
            return self.abort(n, false);
        }
        r.promises.add(from);
        for (s, b, v) in accepted {
            if s == r.slot && r.best.as_ref().is_none_or(|(b0, _)| b > *b0) {
                r.best = Some((b, v));
            }
        }
        if !n.quorum(r.slot, r.promises) {
            return;
        }
        let value = match &r.best {
            Some((_, v)) if !n.cfg.bugs.ignore_promised_value => v.clone(),
            _ => Arc::new(r.cmd.iter().cloned().collect()),
        };
        r.value = Some(value.clone());
        let m = Msg::Accept {
            ballot,
            slot: r.slot,
            value,
            commit: n.learner.app.applied,
            decided: Vec::new(),
            voters: 0,
        };
        n.broadcast(m);
    }

    pub(super) fn on_accepted(&mut self, n: &mut Node, from: usize, ballot: Ballot, slot: Slot) {
        let Some(r) = &mut self.round else { return };
        if r.ballot != ballot || r.slot != slot || r.value.is_none() {
            return;
        }
        r.acks.add(from);
        if !n.quorum(slot, r.acks) {
            return;
        }
        let value = r.value.clone().expect("checked");
        self.round = None;
        self.attempts = 0;
        n.learn_own(slot, value);
        n.broadcast_others(Msg::Decide { slot, ballot });
        self.next(n);
    }

    pub(super) fn on_nack(&mut self, n: &mut Node, ballot: Ballot, promised: Ballot, log: Slot) {
        let Some(r) = &self.round else { return };
        if r.ballot != ballot {
            return;
        }
        if promised > ballot {
            self.abort(n, true);
        } else if log > r.slot {
            self.abort(n, false);
        }
    }

    /// Slots below `slot_end` came with a snapshot: a round for one of them is over.
    pub(super) fn forget_below(&mut self, slot_end: Slot) {
        if self.round.as_ref().is_some_and(|r| r.slot < slot_end) {
            self.round = None;
        }
    }

    /// `slot` was decided by others: a round for it is over.
    pub(super) fn forget(&mut self, slot: Slot) {
        if self.round.as_ref().is_some_and(|r| r.slot == slot) {
            self.round = None;
        }
    }
}
