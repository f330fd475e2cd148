//! Multi-Paxos: an elected leader runs phase 1 once for every slot from a point on, then only
//! phase 2, several slots in flight at once, each a batch of commands. Followers forward their
//! commands to the leader and hold off elections while they hear from it. The leader's
//! heartbeats also keep a lease, read only by the seeded `lease-read` and `clock-lease` bugs.

use super::quorum::Votes;
use super::{Node, To};
use crate::kv::Command;
use crate::protocol::{Ballot, Msg, Scope, Slot, Value};
use rand::Rng;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

pub struct MultiProposer {
    role: Role,
    my_ballot: Ballot,
    leader: Option<usize>,
    leader_ballot: Ballot,
    election_at: u64,
    next_slot: Slot,
    proposals: BTreeMap<Slot, Proposal>,
    /// Values a new leader must propose again in slots beyond its horizon (whose members it
    /// does not know yet): proposed once it has applied enough (see `membership`).
    held: BTreeMap<Slot, Value>,
    /// Who promised this leader's ballot: it proposes in a slot only if they are a quorum of
    /// the slot's members, else it runs phase 1 again.
    promised_by: Votes,
    queue: VecDeque<Command>,
    forward_buf: Vec<Command>,
    /// Thrifty accepts: the followers asked to vote (none: everyone).
    fast_voters: Votes,
    /// Slots this leader decided in the current batch of inputs, not yet told to peers.
    decides_out: Vec<(Slot, Ballot)>,
    last_hb: u64,
    /// The last heartbeat's send tick and who acknowledged it.
    hb_acks: (u64, Votes),
    lease_start: u64,
    /// The wall clock when the last heartbeat was sent, and the latest such time a majority
    /// acknowledged: the `clock-lease` bug's lease runs from it.
    hb_wall: u64,
    lease_wall: u64,
}

struct Proposal {
    value: Value,
    acks: Votes,
    sent: u64,
    /// Who was asked to vote (none: everyone).
    voters: Votes,
}

enum Role {
    Follower,
    Candidate {
        from: Slot,
        promises: Votes,
        accepted: BTreeMap<Slot, (Ballot, Value)>,
        log_start: Slot,
        started: u64,
    },
    Leader,
}

impl MultiProposer {
    /// `election_at`: the tick of the first election; `next_slot`: the first slot not applied.
    pub(super) fn new(election_at: u64, next_slot: Slot) -> MultiProposer {
        MultiProposer {
            role: Role::Follower,
            my_ballot: Ballot::ZERO,
            leader: None,
            leader_ballot: Ballot::ZERO,
            election_at,
            next_slot,
            proposals: BTreeMap::new(),
            held: BTreeMap::new(),
            promised_by: Votes::NONE,
            queue: VecDeque::new(),
            forward_buf: Vec::new(),
            fast_voters: Votes::NONE,
            decides_out: Vec::new(),
            last_hb: 0,
            hb_acks: (0, Votes::NONE),
            lease_start: 0,
            hb_wall: 0,
            lease_wall: 0,
        }
    }

    pub(super) fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader)
    }

    pub(super) fn leader(&self) -> Option<usize> {
        self.leader
    }

    /// Whether the (tick-counted, hence buggy) lease holds.
    pub(super) fn lease_holds(&self, n: &Node) -> bool {
        self.is_leader() && self.lease_start > 0 && n.now < self.lease_start + n.cfg.timing.lease
    }

    /// Whether the lease timed by the wall clock holds. Right while clocks are: a follower waits
    /// at least as long after the heartbeat before it stands for election. But a clock that
    /// jumped ahead stamps the lease in the future, and one that runs slow stretches it.
    pub(super) fn clock_lease_holds(&self, n: &Node) -> bool {
        let lease_ms = n.cfg.timing.lease * n.cfg.timing.tick_ms;
        self.is_leader() && self.lease_wall > 0 && n.wall_ms < self.lease_wall + lease_ms
    }

    pub(super) fn submit(&mut self, cmd: Command) {
        match self.role {
            Role::Leader | Role::Candidate { .. } => self.queue.push_back(cmd),
            Role::Follower => {
                if self.leader.is_some() {
                    self.forward_buf.push(cmd)
                }
            }
        }
    }

    fn resubmit(&mut self, n: &mut Node, all: bool) {
        for c in n.due_again(all) {
            self.submit(c);
        }
    }

    pub(super) fn on_forward(&mut self, cmds: Vec<Command>) {
        if matches!(self.role, Role::Leader | Role::Candidate { .. }) {
            self.queue.extend(cmds);
        }
    }

    // ----- timers -----

    pub(super) fn on_tick(&mut self, n: &mut Node) {
        if !n.is_member() && !matches!(self.role, Role::Follower) {
            // Removed, and the change is in force: the members elect a leader among them.
            self.step_down(n);
        }
        match &self.role {
            Role::Leader => {
                if n.now >= self.last_hb + n.cfg.timing.heartbeat {
                    self.send_heartbeat(n);
                }
                self.resend_stuck(n);
            }
            Role::Candidate { started, .. } => {
                if n.now >= started + n.cfg.timing.election_max {
                    self.start_election(n);
                }
            }
            // Only members stand for election; a node not (yet) one follows and catches up.
            Role::Follower if !n.is_member() => self.election_at = n.rand_election(),
            Role::Follower => {
                if self.leader.is_some_and(|l| !n.members_now().contains(l)) {
                    // The leader was removed: no need to wait for its heartbeats to stop.
                    self.leader = None;
                    let soon = n.rng.gen_range(0..=n.cfg.timing.heartbeat);
                    self.election_at = self.election_at.min(n.now + soon);
                }
                if n.now >= self.election_at {
                    self.start_election(n);
                }
            }
        }
        self.resubmit(n, false);
    }

    /// Resends accepts not answered in time to those that have not voted; a thrifty accept is
    /// given less time, and then goes to everyone.
    fn resend_stuck(&mut self, n: &mut Node) {
        let resend = n.cfg.timing.resend;
        let thrifty_wait = n.cfg.timing.thrifty_wait;
        let mut again = Vec::new();
        for (s, p) in self.proposals.iter_mut() {
            let stuck_voter = !p.voters.is_empty() && n.now >= p.sent + thrifty_wait;
            if stuck_voter || n.now >= p.sent + resend {
                p.sent = n.now;
                p.voters = Votes::NONE;
                again.push((*s, p.value.clone(), p.acks));
            }
        }
        if !again.is_empty() {
            // A voter is slow or gone: everyone votes until a slot decides again.
            self.fast_voters = Votes::NONE;
        }
        for (slot, value, acks) in again {
            n.bump("accept_resends", 1);
            for peer in 0..n.cfg.n {
                if !acks.contains(peer) {
                    let m = Msg::Accept {
                        ballot: self.my_ballot,
                        slot,
                        value: value.clone(),
                        commit: n.learner.app.applied,
                        decided: Vec::new(),
                        voters: 0,
                    };
                    n.send(peer, m);
                }
            }
        }
    }

    // ----- leadership -----

    /// A leader's heartbeat; also restarts the count of acks that keeps its lease.
    fn send_heartbeat(&mut self, n: &mut Node) {
        self.last_hb = n.now;
        self.hb_acks = (n.now, Votes::of(n.cfg.me));
        self.hb_wall = n.wall_ms;
        let m = Msg::Heartbeat {
            ballot: self.my_ballot,
            commit: n.learner.app.applied,
            sent: n.now,
        };
        n.broadcast_others(m);
    }

    pub(super) fn on_heartbeat(&mut self, n: &mut Node, from: usize, ballot: Ballot, sent: u64) {
        if ballot >= n.acc.promised {
            self.follow(n, ballot);
            n.send(from, Msg::HeartbeatAck { ballot, sent });
        } else {
            n.nack(from, ballot, n.acc.promised);
        }
    }

    pub(super) fn on_hb_ack(&mut self, n: &mut Node, from: usize, ballot: Ballot, sent: u64) {
        if !self.is_leader() || ballot != self.my_ballot || sent != self.hb_acks.0 {
            return;
        }
        self.hb_acks.1.add(from);
        if self.hb_acks.1.is_quorum_of(n.members_now()) {
            self.lease_start = self.lease_start.max(sent);
            self.lease_wall = self.lease_wall.max(self.hb_wall);
        }
    }

    /// This node promised `ballot` to `from`: a higher ballot deposes it, and elections wait.
    pub(super) fn promised(&mut self, n: &mut Node, from: usize, ballot: Ballot) {
        if from == n.cfg.me {
            return;
        }
        if ballot > self.my_ballot && !matches!(self.role, Role::Follower) {
            self.step_down(n);
        }
        self.election_at = n.rand_election();
    }

    /// This node accepted a value from `from` under `ballot`: that is the leader.
    pub(super) fn accepted_from(&mut self, n: &mut Node, from: usize, ballot: Ballot) {
        if from != n.cfg.me {
            self.follow(n, ballot);
        }
    }

    /// Hearing from a leader with `ballot`: follow it and hold off elections.
    fn follow(&mut self, n: &mut Node, ballot: Ballot) {
        if ballot < self.leader_ballot {
            return;
        }
        let node = ballot.node as usize;
        let changed = ballot > self.leader_ballot;
        self.leader_ballot = ballot;
        self.election_at = n.rand_election();
        if changed {
            if ballot > self.my_ballot && !matches!(self.role, Role::Follower) {
                self.step_down(n);
            }
            if node != n.cfg.me {
                self.leader = Some(node);
                self.resubmit(n, true);
            }
        }
    }

    fn step_down(&mut self, n: &mut Node) {
        self.role = Role::Follower;
        self.proposals.clear();
        self.held.clear();
        self.queue.clear();
        self.lease_start = 0;
        self.lease_wall = 0;
        if self.leader == Some(n.cfg.me) {
            self.leader = None;
        }
        n.bump("step_downs", 1);
    }

    fn start_election(&mut self, n: &mut Node) {
        n.max_round = n
            .max_round
            .max(n.acc.promised.round)
            .max(self.leader_ballot.round)
            + 1;
        self.my_ballot = Ballot {
            round: n.max_round,
            node: n.cfg.me as u32,
        };
        let from = n.learner.app.applied;
        self.role = Role::Candidate {
            from,
            promises: Votes::NONE,
            accepted: BTreeMap::new(),
            log_start: 0,
            started: n.now,
        };
        self.proposals.clear();
        self.held.clear();
        n.bump("phase1_rounds", 1);
        self.election_at = n.rand_election();
        n.broadcast(Msg::Prepare {
            ballot: self.my_ballot,
            scope: Scope::From(from),
        });
    }

    pub(super) fn on_promise(
        &mut self,
        n: &mut Node,
        from: usize,
        ballot: Ballot,
        accepted: Vec<(Slot, Ballot, Value)>,
        log_start: Slot,
    ) {
        let Role::Candidate {
            from: start,
            promises,
            accepted: acc,
            log_start: ls,
            ..
        } = &mut self.role
        else {
            return;
        };
        if ballot != self.my_ballot {
            return;
        }
        promises.add(from);
        *ls = (*ls).max(log_start);
        for (s, b, v) in accepted {
            if acc.get(&s).is_none_or(|(b0, _)| b > *b0) {
                acc.insert(s, (b, v));
            }
        }
        if n.quorum_from(*start, *promises) {
            self.become_leader(n);
        }
    }

    /// Phase 1 is done for every slot from the candidate's start: proposes again every value a
    /// promise reported (a no-op or queued commands in the gaps), then serves new commands.
    fn become_leader(&mut self, n: &mut Node) {
        let Role::Candidate {
            from,
            promises,
            accepted,
            log_start,
            ..
        } = std::mem::replace(&mut self.role, Role::Leader)
        else {
            return;
        };
        self.promised_by = promises;
        n.bump("leader_changes", 1);
        self.leader = Some(n.cfg.me);
        self.fast_voters = Votes::NONE;
        self.leader_ballot = self.my_ballot;
        let start = from.max(log_start);
        let top_decided = n.learner.decided.keys().next_back().map_or(0, |s| s + 1);
        let top_accepted = accepted.keys().next_back().map_or(0, |s| s + 1);
        for s in start..top_accepted {
            if n.learner.knows(s) {
                continue;
            }
            let found = accepted.get(&s).map(|(_, v)| v.clone());
            let value = match found {
                Some(v) if !n.cfg.bugs.ignore_promised_value => v,
                _ => self.take_batch(n),
            };
            self.propose(n, s, value);
        }
        self.next_slot = start
            .max(n.learner.app.applied)
            .max(top_decided)
            .max(top_accepted);
        self.send_heartbeat(n);
        self.queue.extend(n.pending_commands());
    }

    // ----- phase 2 -----

    fn take_batch(&mut self, n: &Node) -> Value {
        let k = self.queue.len().min(n.cfg.timing.max_batch);
        let app = &n.learner.app;
        let batch: Vec<Command> = self
            .queue
            .drain(..k)
            .filter(|c| !app.is_done(c.id.origin, c.id.seq))
            .collect();
        Arc::new(batch)
    }

    fn propose(&mut self, n: &mut Node, slot: Slot, value: Value) {
        if n.members_at(slot).is_none() {
            self.held.insert(slot, value);
            return;
        }
        if !n.quorum(slot, self.promised_by) {
            // The slot's members changed past what phase 1 covered.
            n.bump("membership_reelections", 1);
            return self.start_election(n);
        }
        n.bump("proposals", 1);
        let voters = match self.fast_voters {
            f if f.is_empty() => f,
            f if !n.quorum(slot, f.with(n.cfg.me)) => Votes::NONE,
            f => f.with(n.cfg.me),
        };
        self.proposals.insert(
            slot,
            Proposal {
                value: value.clone(),
                acks: Votes::NONE,
                sent: n.now,
                voters,
            },
        );
        n.broadcast(Msg::Accept {
            ballot: self.my_ballot,
            slot,
            value,
            commit: n.learner.app.applied,
            decided: Vec::new(),
            voters: voters.bits(),
        });
    }

    /// Proposes the next batch of queued commands if the window and the pipelining rule allow;
    /// `false` when there is nothing more to propose now. The caller handles this node's own
    /// accept and vote before asking again: a slot decided at once frees its place.
    pub(super) fn propose_next(&mut self, n: &mut Node) -> bool {
        if !self.is_leader() {
            return false;
        }
        if let Some((&slot, _)) = self.held.first_key_value() {
            if n.members_at(slot).is_some() {
                let value = self.held.remove(&slot).expect("present");
                self.propose(n, slot, value);
                return true;
            }
        }
        // A chosen change is put in force at once: no-ops fill the slots up to it.
        let pad = self.queue.is_empty() && n.change_pending(self.next_slot);
        let few = !self.proposals.is_empty() && self.queue.len() < n.cfg.timing.pipeline_min;
        let wait = !pad && (self.queue.is_empty() || few);
        // Never past the horizon: at most α slots in flight beyond what this leader applied.
        if wait
            || self.proposals.len() >= n.cfg.timing.window
            || n.members_at(self.next_slot).is_none()
        {
            return false;
        }
        let value = self.take_batch(n);
        if !value.is_empty() || pad {
            let slot = self.next_slot;
            self.next_slot += 1;
            self.propose(n, slot, value);
        }
        true
    }

    pub(super) fn on_accepted(&mut self, n: &mut Node, from: usize, ballot: Ballot, slot: Slot) {
        if !self.is_leader() || ballot != self.my_ballot {
            return;
        }
        let Some(p) = self.proposals.get_mut(&slot) else {
            return;
        };
        p.acks.add(from);
        if n.quorum(slot, p.acks) {
            let p = self.proposals.remove(&slot).expect("present");
            if n.cfg.timing.thrifty {
                // The followers that answered first are asked alone next time.
                let members = n.members_at(slot).expect("counted a quorum");
                let acks = Votes::from_bits(p.acks.bits() & members.bits());
                self.fast_voters = acks.without(n.cfg.me);
            }
            n.learn_own(slot, p.value);
            self.decides_out.push((slot, ballot));
        }
    }

    pub(super) fn on_nack(&mut self, n: &mut Node, ballot: Ballot, promised: Ballot) {
        if ballot == self.my_ballot
            && promised > self.my_ballot
            && !matches!(self.role, Role::Follower)
        {
            self.step_down(n);
            self.election_at = n.rand_election();
        }
    }

    // ----- closing a batch -----

    /// Sends the commands of this batch that wait for the leader.
    pub(super) fn flush_forwards(&mut self, n: &mut Node) {
        if self.forward_buf.is_empty() {
            return;
        }
        match self.leader {
            Some(l) if l != n.cfg.me => {
                let cmds = std::mem::take(&mut self.forward_buf);
                n.send(l, Msg::Forward { cmds });
            }
            _ => self.forward_buf.clear(),
        }
    }

    /// Tells peers this batch's decisions: inside this batch's accept when there is one (under
    /// load there nearly always is), else as `Decide` messages.
    pub(super) fn flush_decides(&mut self, n: &mut Node) {
        for (slot, ballot) in std::mem::take(&mut self.decides_out) {
            let carrier = n.out.msgs.iter_mut().find_map(|(to, m)| match m {
                Msg::Accept {
                    ballot: b, decided, ..
                } if *to == To::All && *b == ballot => Some(decided),
                _ => None,
            });
            match carrier {
                Some(decided) => decided.push(slot),
                None => n.broadcast_others(Msg::Decide { slot, ballot }),
            }
        }
    }

    // ----- decided elsewhere -----

    /// `slot` was decided by others: its proposal is over.
    pub(super) fn forget(&mut self, slot: Slot) {
        self.proposals.remove(&slot);
        self.held.remove(&slot);
    }

    /// Slots below `slot_end` came with a snapshot.
    pub(super) fn forget_below(&mut self, slot_end: Slot) {
        self.proposals = self.proposals.split_off(&slot_end);
        self.held = self.held.split_off(&slot_end);
        self.next_slot = self.next_slot.max(slot_end);
    }
}
