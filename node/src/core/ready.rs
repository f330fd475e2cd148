//! What may leave before what is durable: the one place that decides it.
//!
//! The driver (the shell, or the simulation) steps the core through a batch of inputs, calls
//! [`Core::end_batch`](super::Core::end_batch), then takes the batch's effects with
//! [`Core::ready`](super::Core::ready):
//!
//! - [`Ready::now`]: send at once.
//! - [`Ready::disk`]: a [`DiskBatch`] numbered `N` (1, 2, ... in order; batches with nothing for
//!   the disk get no number). Its `snapshot` (if any) and then its `records` must be made
//!   durable in number order; `after_earlier` may leave once batch `N - 1` is durable, `after_this` once `N` is.
//!
//! The driver reports durability with [`Core::on_persisted`](super::Core::on_persisted): what
//! waits only for earlier batches then leaves in a later `now` if they are durable by the time
//! its own batch closes. The core never waits for the disk.
//!
//! Why each message waits for what it waits for:
//! - this batch: promises and votes reveal acceptor state the batch may have changed; a prepare
//!   must not leave before the proposer's promise to itself is durable, or a restarted proposer
//!   could count a promise it no longer keeps.
//! - earlier batches: decisions, catch-up answers and client replies. A decision counts this
//!   node's own vote, cast when it proposed, in an earlier batch (every other vote arrives as an
//!   `Accepted`, sent after its acceptor's sync, so the decision is always in a later batch than
//!   the proposal when there are two or more nodes). A decision learned from a peer is already
//!   durable on a majority, so replies it produces leave at once. On a one-node cluster the
//!   node's own vote decides in the very batch that cast it: everything that waits for earlier
//!   batches waits for this one too.
//! - nothing: accepts (phase 1 finished after a sync), heartbeats, nacks, forwards, catch-up
//!   requests.

use crate::durable::{Record, Snapshot};
use crate::kv::OpResult;
use crate::protocol::Msg;
use std::collections::VecDeque;

/// Where a peer message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum To {
    One(usize),
    /// Every peer (not this node).
    All,
}

/// Peer messages and client replies (by the tag the driver gave the request).
#[derive(Debug, Default)]
pub struct Effects {
    pub msgs: Vec<(To, Msg)>,
    pub replies: Vec<(u64, OpResult)>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty() && self.replies.is_empty()
    }

    fn append(&mut self, other: &mut Effects) {
        self.msgs.append(&mut other.msgs);
        self.replies.append(&mut other.replies);
    }
}

/// One batch's effects (see the module doc).
#[derive(Debug, Default)]
pub struct Ready {
    pub now: Effects,
    pub disk: Option<DiskBatch>,
}

/// What one batch needs from the disk, and what waits for it.
#[derive(Debug)]
pub struct DiskBatch {
    pub number: u64,
    /// Replaces the durable state (the log included): write it before `records`.
    pub snapshot: Option<Snapshot>,
    /// Acceptor records to append (after `snapshot`, if any).
    pub records: Vec<Record>,
    /// May leave once batch `number - 1` is durable.
    pub after_earlier: Effects,
    /// May leave once this batch is durable.
    pub after_this: Effects,
}

impl DiskBatch {
    /// Whether this batch needs a sync (else it is durable once the earlier ones are).
    pub fn needs_sync(&self) -> bool {
        !self.records.is_empty() || self.snapshot.is_some() || !self.after_this.is_empty()
    }
}

/// What must be durable before a message may leave.
enum Wait {
    Nothing,
    EarlierBatches,
    ThisBatch,
}

fn wait_for(msg: &Msg) -> Wait {
    match msg {
        Msg::Prepare { .. } | Msg::Promise { .. } | Msg::Accepted { .. } => Wait::ThisBatch,
        Msg::Decide { .. } | Msg::CatchupResp { .. } => Wait::EarlierBatches,
        Msg::Accept { decided, .. } if !decided.is_empty() => Wait::EarlierBatches,
        _ => Wait::Nothing,
    }
}

/// The effects of the batch being stepped, and the count of disk batches handed out and known
/// durable.
#[derive(Default)]
pub(super) struct Outbox {
    pub(super) records: Vec<Record>,
    pub(super) snapshot: Option<Snapshot>,
    pub(super) msgs: Vec<(To, Msg)>,
    /// Replies that may count this node's own vote: they wait for earlier batches.
    pub(super) replies: Vec<(u64, OpResult)>,
    /// Replies to commands a peer decided: durable on a majority already.
    pub(super) free_replies: Vec<(u64, OpResult)>,
    /// Messages to this node itself, handled before the batch closes.
    pub(super) loopback: VecDeque<Msg>,
    numbered: u64,
    persisted: u64,
}

impl Outbox {
    /// The batch replaces the durable state with `s`. The records so far are in it; those that
    /// follow (later inputs of the batch) go after it, so the disk must write the snapshot first.
    pub(super) fn set_snapshot(&mut self, s: Snapshot) {
        self.records.clear();
        self.snapshot = Some(s);
    }

    pub(super) fn on_persisted(&mut self, number: u64) {
        self.persisted = self.persisted.max(number);
    }

    /// Sorts this batch's effects by what they wait for; `n`: the cluster size.
    pub(super) fn ready(&mut self, n: usize) -> Ready {
        let mut now = Effects::default();
        let mut earlier = Effects::default();
        let mut this = Effects::default();
        for (to, m) in self.msgs.drain(..) {
            match wait_for(&m) {
                Wait::Nothing => now.msgs.push((to, m)),
                Wait::EarlierBatches => earlier.msgs.push((to, m)),
                Wait::ThisBatch => this.msgs.push((to, m)),
            }
        }
        now.replies = std::mem::take(&mut self.free_replies);
        earlier.replies = std::mem::take(&mut self.replies);
        if n == 1 {
            this.append(&mut earlier);
        } else if self.persisted == self.numbered {
            now.append(&mut earlier);
        }
        let records = std::mem::take(&mut self.records);
        let snapshot = self.snapshot.take();
        if records.is_empty() && snapshot.is_none() && earlier.is_empty() && this.is_empty() {
            return Ready { now, disk: None };
        }
        self.numbered += 1;
        Ready {
            now,
            disk: Some(DiskBatch {
                number: self.numbered,
                records,
                snapshot,
                after_earlier: earlier,
                after_this: this,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Ballot, Slot};

    fn batch(out: &mut Outbox, decided: Slot) {
        let ballot = Ballot { round: 1, node: 0 };
        out.records.push(Record::Promise { ballot });
        out.msgs.push((
            To::All,
            Msg::Decide {
                slot: decided,
                ballot,
            },
        ));
        out.msgs
            .push((To::One(1), Msg::Accepted { ballot, slot: 0 }));
        let hb = Msg::Heartbeat {
            ballot,
            commit: 0,
            sent: 0,
        };
        out.msgs.push((To::All, hb));
        out.replies.push((7, OpResult::Write));
        out.free_replies.push((8, OpResult::Cas));
    }

    fn kinds(e: &Effects) -> (Vec<&str>, Vec<u64>) {
        let m = e.msgs.iter().map(|(_, m)| m.kind()).collect();
        (m, e.replies.iter().map(|(t, _)| *t).collect())
    }

    #[test]
    fn decisions_wait_for_earlier_batches_votes_for_this_one() {
        let mut out = Outbox::default();
        batch(&mut out, 0);
        // Nothing earlier: the decision and its reply leave at once.
        let r = out.ready(3);
        assert_eq!(kinds(&r.now), (vec!["heartbeat", "decide"], vec![8, 7]));
        let d = r.disk.expect("records to write");
        assert_eq!((d.number, d.records.len()), (1, 1));
        assert!(d.after_earlier.is_empty() && d.needs_sync());
        assert_eq!(kinds(&d.after_this), (vec!["accepted"], vec![]));
        // Batch 1 is not durable yet: batch 2's decision waits for it.
        batch(&mut out, 1);
        let d = out.ready(3).disk.expect("records to write");
        assert_eq!(d.number, 2);
        assert_eq!(kinds(&d.after_earlier), (vec!["decide"], vec![7]));
        // Once told, the next batch's decision leaves at once again.
        out.on_persisted(2);
        batch(&mut out, 2);
        let r = out.ready(3);
        assert_eq!(kinds(&r.now), (vec!["heartbeat", "decide"], vec![8, 7]));
        // A batch with nothing to wait for gets no number.
        out.msgs.push((To::One(2), Msg::CatchupReq { from: 0 }));
        let r = out.ready(3);
        assert!(r.disk.is_none() && r.now.msgs.len() == 1);
        assert_eq!(out.ready(3).disk.map(|d| d.number), None);
    }

    #[test]
    fn one_node_decisions_wait_for_their_own_batch() {
        let mut out = Outbox::default();
        batch(&mut out, 0);
        let r = out.ready(1);
        assert_eq!(kinds(&r.now), (vec!["heartbeat"], vec![8]));
        let d = r.disk.expect("records to write");
        assert!(d.after_earlier.is_empty() && d.needs_sync());
        assert_eq!(kinds(&d.after_this), (vec!["accepted", "decide"], vec![7]));
    }
}
