//! Client requests received by this node: each becomes a command with a request id, pending
//! until it is applied (the reply), or its deadline passes (an indefinite `timeout`).

use super::Node;
use crate::kv::{Command, Op, OpResult, ReqId};
use std::collections::BTreeMap;

pub(super) struct Pending {
    pub(super) cmd: Command,
    pub(super) tag: u64,
    since: u64,
    sent: u64,
}

pub(super) struct Clients {
    /// This node incarnation's name in request ids: `incarnation << 8 | me`.
    pub(super) origin: u64,
    next_seq: u64,
    /// By seq.
    pub(super) pending: BTreeMap<u64, Pending>,
    /// Applied configuration changes whose reply waits until they are in force: (tag, first
    /// slot they govern).
    pub(super) until_in_force: Vec<(u64, u64)>,
}

impl Clients {
    pub(super) fn new(incarnation: u64, me: usize) -> Clients {
        Clients {
            origin: (incarnation << 8) | me as u64,
            next_seq: 0,
            pending: BTreeMap::new(),
            until_in_force: Vec::new(),
        }
    }
}

impl Node {
    /// A new request: the command to submit.
    pub(super) fn new_request(&mut self, tag: u64, op: Op) -> Command {
        let c = &mut self.clients;
        let seq = c.next_seq;
        c.next_seq += 1;
        let done_below = c.pending.keys().next().copied().unwrap_or(seq);
        let id = ReqId {
            origin: c.origin,
            seq,
        };
        if let Some(o) = &mut self.observer {
            o.request(tag, id);
        }
        let cmd = Command { id, done_below, op };
        c.pending.insert(
            seq,
            Pending {
                cmd: cmd.clone(),
                tag,
                since: self.now,
                sent: self.now,
            },
        );
        cmd
    }

    /// Every pending command (`all`) or those waiting longer than `resubmit`, to submit again.
    pub(super) fn due_again(&mut self, all: bool) -> Vec<Command> {
        let low = self.clients.pending.keys().next().copied().unwrap_or(0);
        let mut again = Vec::new();
        for p in self.clients.pending.values_mut() {
            if all || self.now >= p.sent + self.cfg.timing.resubmit {
                p.sent = self.now;
                p.cmd.done_below = low;
                again.push(p.cmd.clone());
            }
        }
        if !again.is_empty() {
            self.bump("resubmits", again.len() as u64);
        }
        again
    }

    /// Every pending command, as it stands.
    pub(super) fn pending_commands(&self) -> Vec<Command> {
        self.clients
            .pending
            .values()
            .map(|p| p.cmd.clone())
            .collect()
    }

    /// Answers `timeout` to requests past their deadline.
    pub(super) fn expire_requests(&mut self) {
        let deadline = self.cfg.timing.client_deadline;
        let expired: Vec<u64> = self
            .clients
            .pending
            .iter()
            .filter(|(_, p)| self.now >= p.since + deadline)
            .map(|(s, _)| *s)
            .collect();
        for s in expired {
            let p = self.clients.pending.remove(&s).expect("listed above");
            let r = OpResult::Error(0, "not decided in time".into());
            self.out.replies.push((p.tag, r));
        }
    }
}
