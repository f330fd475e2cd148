//! The acceptor: promises and votes, made durable through the batch's records.

use super::config::Variant;
use super::quorum::Votes;
use super::Node;
use crate::durable::{AccSlot, Record};
use crate::protocol::{Ballot, Msg, Scope, Slot, Value};
use std::collections::{BTreeMap, BTreeSet};

/// How far an accept's implied promise reaches. An accept for ballot `b` also promises `b`, over
/// the slots the variant's prepares cover: one slot in Basic Paxos, every slot in Multi-Paxos.
/// The `Accept` message does not say which, so the acceptor is told once, at start-up; this is
/// the only thing it knows of the variant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum AcceptPromises {
    #[default]
    ThisSlot,
    AllSlots,
}

impl From<Variant> for AcceptPromises {
    fn from(v: Variant) -> Self {
        match v {
            Variant::Basic => AcceptPromises::ThisSlot,
            Variant::Multi => AcceptPromises::AllSlots,
        }
    }
}

#[derive(Default)]
pub(super) struct Acceptor {
    pub(super) promises: AcceptPromises,
    /// Promised for every slot (Multi-Paxos prepares).
    pub(super) promised: Ballot,
    pub(super) slots: BTreeMap<Slot, AccSlot>,
    /// Slots below are decided and forgotten.
    pub(super) floor: Slot,
    /// Slots whose accepted value is kept in memory only: this node was not asked to vote.
    /// Losing one in a crash is as if the accept never arrived; a later vote writes it first.
    pub(super) unwritten: BTreeSet<Slot>,
}

impl Acceptor {
    pub(super) fn promised_for(&self, slot: Slot) -> Ballot {
        self.slots
            .get(&slot)
            .map_or(self.promised, |a| a.promised.max(self.promised))
    }

    /// The accepted value of `slot` if it was accepted under `ballot`.
    pub(super) fn accepted_under(&self, slot: Slot, ballot: Ballot) -> Option<Value> {
        self.slots
            .get(&slot)
            .and_then(|a| a.accepted.as_ref())
            .filter(|(b, _)| *b == ballot)
            .map(|(_, v)| v.clone())
    }

    /// The highest round this acceptor has promised anywhere.
    pub(super) fn max_round(&self) -> u64 {
        self.slots
            .values()
            .map(|a| a.promised.round)
            .chain([self.promised.round])
            .max()
            .unwrap_or(0)
    }

    /// Forgets every slot below `slot` (decided and applied).
    pub(super) fn truncate(&mut self, slot: Slot) {
        self.slots = self.slots.split_off(&slot);
        self.unwritten = self.unwritten.split_off(&slot);
        self.floor = self.floor.max(slot);
    }

    pub(super) fn replay(&mut self, r: Record) {
        match r {
            Record::Promise { ballot } => self.promised = self.promised.max(ballot),
            Record::PromiseSlot { slot, ballot } if slot >= self.floor => {
                let e = self.slots.entry(slot).or_default();
                e.promised = e.promised.max(ballot);
            }
            Record::Accepted {
                slot,
                ballot,
                value,
            } if slot >= self.floor => {
                let e = self.slots.entry(slot).or_default();
                e.accepted = Some((ballot, value));
                match self.promises {
                    AcceptPromises::AllSlots => self.promised = self.promised.max(ballot),
                    AcceptPromises::ThisSlot => e.promised = e.promised.max(ballot),
                }
            }
            _ => {}
        }
    }
}

impl Node {
    /// Answers a prepare with a promise or a nack; `true` when it promised.
    pub(super) fn on_prepare(&mut self, from: usize, ballot: Ballot, scope: Scope) -> bool {
        self.max_round = self.max_round.max(ballot.round);
        let accepted = match scope {
            Scope::Slot(s) => {
                let p = self.acc.promised_for(s);
                if s < self.acc.floor || ballot < p {
                    self.nack(from, ballot, p);
                    return false;
                }
                let e = self.acc.slots.entry(s).or_default();
                if e.promised != ballot {
                    e.promised = ballot;
                    self.persist(Record::PromiseSlot { slot: s, ballot });
                }
                let e = &self.acc.slots[&s];
                e.accepted.iter().map(|(b, v)| (s, *b, v.clone())).collect()
            }
            Scope::From(s) => {
                let top = self
                    .acc
                    .slots
                    .range(s..)
                    .map(|(_, a)| a.promised)
                    .max()
                    .unwrap_or(Ballot::ZERO)
                    .max(self.acc.promised);
                if ballot < top {
                    self.nack(from, ballot, top);
                    return false;
                }
                if self.acc.promised != ballot {
                    self.acc.promised = ballot;
                    self.persist(Record::Promise { ballot });
                }
                self.acc
                    .slots
                    .range(s.max(self.acc.floor)..)
                    .filter_map(|(s, a)| a.accepted.as_ref().map(|(b, v)| (*s, *b, v.clone())))
                    .collect()
            }
        };
        let m = Msg::Promise {
            ballot,
            accepted,
            log_start: self.acc.floor,
            commit: self.learner.app.applied,
        };
        self.send(from, m);
        true
    }

    /// Accepts (or nacks) a value; `true` when accepted. `voters`: a thrifty leader asks only a
    /// majority to vote; the others keep the value (to learn the decision from) without a sync
    /// or an answer.
    pub(super) fn on_accept(
        &mut self,
        from: usize,
        ballot: Ballot,
        slot: Slot,
        value: Value,
        voters: Votes,
    ) -> bool {
        self.max_round = self.max_round.max(ballot.round);
        let p = self.acc.promised_for(slot);
        if slot < self.acc.floor || (ballot < p && !self.cfg.bugs.accept_below_promise) {
            self.nack(from, ballot, p);
            return false;
        }
        let e = self.acc.slots.entry(slot).or_default();
        match self.acc.promises {
            AcceptPromises::AllSlots => self.acc.promised = self.acc.promised.max(ballot),
            AcceptPromises::ThisSlot => e.promised = e.promised.max(ballot),
        }
        if e.accepted.as_ref().map(|(b, _)| *b) != Some(ballot) {
            e.accepted = Some((ballot, value));
            self.acc.unwritten.insert(slot);
        }
        if (voters.is_empty() || voters.contains(self.cfg.me)) && self.may_vote(slot) {
            if self.acc.unwritten.remove(&slot) {
                let value = self.acc.slots[&slot]
                    .accepted
                    .as_ref()
                    .expect("set above")
                    .1
                    .clone();
                self.persist(Record::Accepted {
                    slot,
                    ballot,
                    value,
                });
            }
            self.send(from, Msg::Accepted { ballot, slot });
        }
        true
    }

    pub(super) fn nack(&mut self, to: usize, ballot: Ballot, promised: Ballot) {
        let m = Msg::Nack {
            ballot,
            promised,
            log_start: self.acc.floor,
            commit: self.learner.app.applied,
        };
        self.send(to, m);
    }

    fn persist(&mut self, r: Record) {
        if !self.cfg.bugs.volatile_acceptor {
            self.out.records.push(r);
        }
    }
}
