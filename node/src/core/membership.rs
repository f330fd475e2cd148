//! Membership: which nodes vote on which slot. A configuration (a set of members) is chosen in
//! the log like any other command (`Op::Reconfigure`); chosen in slot `i`, it governs every slot
//! from `i + α` on ([`alpha`]). The state machine only records the change and its slot
//! (`AppState::changes`); this module owns the rule.
//!
//! Why it is safe: the configuration governing slot `s` was chosen in a slot at most `s - α`, so
//! a node that has applied every slot below `applied` knows the configuration of every slot
//! below `applied + α` (its horizon), and only those. A proposer never counts a quorum for a
//! slot beyond its horizon, so every proposer counts each slot's quorum in the same
//! configuration, and two quorums of one slot always intersect. A leader therefore never has
//! more than α slots in flight past what it applied, across a change or not.
//!
//! Why these α: Multi-Paxos 16, the default window, so the limit changes nothing for a default
//! node, while the cost of a change (the leader fills up to α slots with no-ops so that a change
//! is in force at once even without client traffic) stays one window of small messages. Basic
//! Paxos 1: it runs one slot at a time anyway, so a change is in force from the next slot and
//! costs nothing. Every node of a cluster runs the same variant, hence the same α: it is part
//! of what the log means.

use super::config::Variant;
use super::quorum::Votes;
use super::Node;
use crate::kv::OpResult;
use crate::protocol::Slot;

/// α: slots between the one where a configuration is chosen and the first one it governs.
pub fn alpha(variant: Variant) -> Slot {
    match variant {
        Variant::Basic => 1,
        Variant::Multi => 16,
    }
}

/// The configuration governing `slot`: the latest change in force there (chosen at least
/// `alpha` slots before), else `initial`. `changes`: (slot chosen, members bits) in slot order.
pub fn governing(initial: Votes, changes: &[(Slot, u64)], alpha: Slot, slot: Slot) -> Votes {
    changes
        .iter()
        .rev()
        .find(|(chosen, _)| chosen + alpha <= slot)
        .map_or(initial, |(_, m)| Votes::from_bits(*m))
}

impl Node {
    /// The configuration at start: `--members`, or every node.
    pub(super) fn initial_members(&self) -> Votes {
        match self.cfg.members {
            0 => Votes::from_bits(u64::MAX >> (64 - self.cfg.n)),
            m => Votes::from_bits(m),
        }
    }

    fn alpha(&self) -> Slot {
        alpha(self.cfg.variant)
    }

    /// The first slot this node does not know the members of.
    fn horizon(&self) -> Slot {
        self.learner.app.applied + self.alpha()
    }

    /// The members that vote on `slot`, if this node knows them (`slot` below its horizon).
    pub(super) fn members_at(&self, slot: Slot) -> Option<Votes> {
        let changes = &self.learner.app.changes;
        (slot < self.horizon())
            .then(|| governing(self.initial_members(), changes, self.alpha(), slot))
    }

    /// The members now: those of the first slot not applied.
    pub(super) fn members_now(&self) -> Votes {
        self.members_at(self.learner.app.applied)
            .expect("the first slot not applied is below the horizon")
    }

    /// Whether `votes` are a quorum for `slot`: a majority of its configuration. `false` beyond
    /// the horizon. The seeded `removed-vote` bug counts every vote against the configuration's
    /// size, a removed node's included.
    pub(super) fn quorum(&self, slot: Slot, votes: Votes) -> bool {
        let Some(m) = self.members_at(slot) else {
            return false;
        };
        if self.cfg.bugs.removed_vote {
            return votes.count() > m.count() / 2;
        }
        votes.is_quorum_of(m)
    }

    /// Whether promises from `votes` are a quorum for every slot from `from` up to the horizon
    /// (the slots a new Multi-Paxos leader may propose in before it applies more).
    pub(super) fn quorum_from(&self, from: Slot, votes: Votes) -> bool {
        let app = &self.learner.app;
        let horizon = self.horizon();
        let from = from.max(app.applied);
        let starts = app
            .changes
            .iter()
            .map(|(c, _)| c + self.alpha())
            .filter(|s| *s > from && *s < horizon);
        [from]
            .into_iter()
            .chain(starts)
            .all(|s| self.quorum(s, votes))
    }

    /// Whether this node may vote on `slot`: not when it knows it is no member there (a node
    /// behind votes; the proposer, which knows the slot's members, counts only theirs).
    pub(super) fn may_vote(&self, slot: Slot) -> bool {
        self.cfg.bugs.removed_vote
            || self
                .members_at(slot)
                .is_none_or(|m| m.contains(self.cfg.me))
    }

    /// Whether this node is a member now (only members stand for election).
    pub(super) fn is_member(&self) -> bool {
        self.members_now().contains(self.cfg.me)
    }

    /// Whether a chosen change is not yet in force at `slot`: the proposer then fills slots with
    /// no-ops so the change takes effect without waiting for client commands.
    pub(super) fn change_pending(&self, slot: Slot) -> bool {
        let changes = &self.learner.app.changes;
        changes
            .last()
            .is_some_and(|(c, _)| c + self.alpha() > slot && slot < self.horizon())
    }

    /// Answers the configuration changes now in force (`reconfigure_ok` means in force: the
    /// nodes it removes may then be stopped, the members it adds are voting).
    pub(super) fn reply_in_force(&mut self) {
        let applied = self.learner.app.applied;
        let waiting = &mut self.clients.until_in_force;
        for (tag, _) in waiting.extract_if(.., |(_, from)| *from <= applied) {
            self.out.replies.push((tag, OpResult::Reconfigured));
        }
    }

    /// Whether `members` (bits) is a configuration of this cluster: not empty, known nodes only.
    pub(super) fn valid_members(&self, members: u64) -> bool {
        members != 0 && members & !(u64::MAX >> (64 - self.cfg.n)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Bugs, Config, Core, Input, Timing};
    use crate::durable::Durable;
    use crate::protocol::{Ballot, Msg};
    use std::sync::Arc;

    /// Node 2 of 3, outside the configuration {0, 1}, gets an accept: the `Accepted` answers it
    /// sends (now or once its vote is durable).
    fn votes_of_a_non_member(bugs: Bugs) -> usize {
        let cfg = Config {
            me: 2,
            n: 3,
            members: 0b011,
            variant: Variant::Multi,
            bugs,
            incarnation: 1,
            seed: 1,
            timing: Timing::default(),
        };
        let mut c = Core::new(cfg, Durable::default());
        let msg = Msg::Accept {
            ballot: Ballot { round: 1, node: 1 },
            slot: 0,
            value: Arc::new(Vec::new()),
            commit: 0,
            decided: Vec::new(),
            voters: 0,
        };
        c.step(Input::Peer { from: 1, msg });
        c.end_batch();
        let r = c.ready();
        let later = r.disk.map(|d| d.after_this.msgs).unwrap_or_default();
        r.now
            .msgs
            .iter()
            .chain(later.iter())
            .filter(|(_, m)| matches!(m, Msg::Accepted { .. }))
            .count()
    }

    #[test]
    fn a_non_member_does_not_vote_unless_the_bug_is_on() {
        assert_eq!(votes_of_a_non_member(Bugs::default()), 0);
        let mut bugs = Bugs::default();
        bugs.enable("removed-vote").unwrap();
        assert_eq!(votes_of_a_non_member(bugs), 1);
    }

    fn set(nodes: &[usize]) -> Votes {
        let mut v = Votes::NONE;
        nodes.iter().for_each(|n| v.add(*n));
        v
    }

    #[test]
    fn a_change_governs_from_alpha_slots_after_it_is_chosen() {
        let initial = set(&[0, 1, 2]);
        let changes = [(5, set(&[0, 1, 2, 3]).bits()), (30, set(&[1, 2, 3]).bits())];
        for a in [alpha(Variant::Basic), alpha(Variant::Multi)] {
            assert_eq!(governing(initial, &changes, a, 0), initial);
            assert_eq!(governing(initial, &changes, a, 5 + a - 1), initial);
            assert_eq!(governing(initial, &changes, a, 5 + a), set(&[0, 1, 2, 3]));
            assert_eq!(
                governing(initial, &changes, a, 30 + a - 1),
                set(&[0, 1, 2, 3])
            );
            assert_eq!(governing(initial, &changes, a, 30 + a), set(&[1, 2, 3]));
            assert_eq!(governing(initial, &[], a, 1000), initial);
        }
        assert_eq!((alpha(Variant::Basic), alpha(Variant::Multi)), (1, 16));
    }

    #[test]
    fn quorums_count_members_only() {
        let m = set(&[2, 3, 4]);
        assert!(set(&[2, 3]).is_quorum_of(m));
        assert!(
            !set(&[0, 1, 2]).is_quorum_of(m),
            "removed nodes do not count"
        );
        assert!(!set(&[4]).is_quorum_of(m));
        assert!(set(&[0, 1]).is_quorum_of(set(&[0, 1, 2])));
        assert!(
            !set(&[0]).is_quorum_of(set(&[0, 1])),
            "two members need both"
        );
    }
}
