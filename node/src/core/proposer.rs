//! The variant, chosen once: every proposer-side event goes to Basic's or Multi's proposer.

use super::basic::BasicProposer;
use super::multi::MultiProposer;
use super::Node;
use crate::kv::{Command, Op};
use crate::protocol::{Ballot, Slot, Value};

pub enum Proposer {
    Basic(BasicProposer),
    Multi(MultiProposer),
}

impl Proposer {
    pub(super) fn is_leader(&self) -> bool {
        match self {
            Proposer::Basic(_) => false,
            Proposer::Multi(m) => m.is_leader(),
        }
    }

    /// Who this node believes leads (Multi-Paxos only).
    pub(super) fn leader(&self) -> Option<usize> {
        match self {
            Proposer::Basic(_) => None,
            Proposer::Multi(m) => m.leader(),
        }
    }

    pub(super) fn lease_holds(&self, n: &Node) -> bool {
        match self {
            Proposer::Basic(_) => false,
            Proposer::Multi(m) => m.lease_holds(n),
        }
    }

    pub(super) fn clock_lease_holds(&self, n: &Node) -> bool {
        match self {
            Proposer::Basic(_) => false,
            Proposer::Multi(m) => m.clock_lease_holds(n),
        }
    }

    pub(super) fn submit(&mut self, n: &mut Node, cmd: Command) {
        match self {
            // Basic runs one round at a time, for the oldest pending command.
            Proposer::Basic(b) => b.next(n),
            Proposer::Multi(m) => m.submit(cmd),
        }
    }

    pub(super) fn on_tick(&mut self, n: &mut Node) {
        match self {
            Proposer::Basic(b) => b.on_tick(n),
            Proposer::Multi(m) => m.on_tick(n),
        }
    }

    /// This node's acceptor promised `ballot` to `from`.
    pub(super) fn promised(&mut self, n: &mut Node, from: usize, ballot: Ballot) {
        if let Proposer::Multi(m) = self {
            m.promised(n, from, ballot)
        }
    }

    /// This node's acceptor accepted a value from `from` under `ballot`.
    pub(super) fn accepted_from(&mut self, n: &mut Node, from: usize, ballot: Ballot) {
        if let Proposer::Multi(m) = self {
            m.accepted_from(n, from, ballot)
        }
    }

    pub(super) fn on_promise(
        &mut self,
        n: &mut Node,
        from: usize,
        ballot: Ballot,
        accepted: Vec<(Slot, Ballot, Value)>,
        log_start: Slot,
    ) {
        match self {
            Proposer::Basic(b) => b.on_promise(n, from, ballot, accepted, log_start),
            Proposer::Multi(m) => m.on_promise(n, from, ballot, accepted, log_start),
        }
    }

    pub(super) fn on_accepted(&mut self, n: &mut Node, from: usize, ballot: Ballot, slot: Slot) {
        match self {
            Proposer::Basic(b) => b.on_accepted(n, from, ballot, slot),
            Proposer::Multi(m) => m.on_accepted(n, from, ballot, slot),
        }
    }

    pub(super) fn on_nack(&mut self, n: &mut Node, ballot: Ballot, promised: Ballot, log: Slot) {
        match self {
            Proposer::Basic(b) => b.on_nack(n, ballot, promised, log),
            Proposer::Multi(m) => m.on_nack(n, ballot, promised),
        }
    }

    pub(super) fn on_heartbeat(&mut self, n: &mut Node, from: usize, ballot: Ballot, sent: u64) {
        if let Proposer::Multi(m) = self {
            m.on_heartbeat(n, from, ballot, sent)
        }
    }

    pub(super) fn on_hb_ack(&mut self, n: &mut Node, from: usize, ballot: Ballot, sent: u64) {
        if let Proposer::Multi(m) = self {
            m.on_hb_ack(n, from, ballot, sent)
        }
    }

    pub(super) fn on_forward(&mut self, cmds: Vec<Command>) {
        if let Proposer::Multi(m) = self {
            m.on_forward(cmds)
        }
    }

    /// Proposes one more batch of queued commands; `false` when there is nothing to propose.
    pub(super) fn propose_next(&mut self, n: &mut Node) -> bool {
        match self {
            Proposer::Basic(_) => false,
            Proposer::Multi(m) => m.propose_next(n),
        }
    }

    pub(super) fn flush_forwards(&mut self, n: &mut Node) {
        if let Proposer::Multi(m) = self {
            m.flush_forwards(n)
        }
    }

    pub(super) fn flush_decides(&mut self, n: &mut Node) {
        if let Proposer::Multi(m) = self {
            m.flush_decides(n)
        }
    }

    /// `slot` was decided by others.
    pub(super) fn forget(&mut self, slot: Slot) {
        match self {
            Proposer::Basic(b) => b.forget(slot),
            Proposer::Multi(m) => m.forget(slot),
        }
    }

    /// Slots below `slot_end` came with a snapshot.
    pub(super) fn forget_below(&mut self, slot_end: Slot) {
        match self {
            Proposer::Basic(b) => b.forget_below(slot_end),
            Proposer::Multi(m) => m.forget_below(slot_end),
        }
    }
}

/// Whether a read may be answered from the local state (only the seeded read bugs say so).
pub(super) fn reads_locally(p: &Proposer, n: &Node, op: &Op) -> bool {
    let bugs = &n.cfg.bugs;
    op.is_read()
        && (bugs.local_read
            || (bugs.lease_read && p.lease_holds(n))
            || (bugs.clock_lease && p.clock_lease_holds(n)))
}
