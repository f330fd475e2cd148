//! What nodes say to each other and what goes into the log: ballots, slots, slot values, peer
//! messages. The commands inside a value belong to the state machine ([`crate::kv`]).

use crate::kv::{AppState, Command};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A log position.
pub type Slot = u64;

/// A proposal number, unique per node: `(round, node)` ordered lexicographically.
/// `Ballot::ZERO` is below every real ballot (real rounds start at 1).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Ballot {
    pub round: u64,
    pub node: u32,
}

impl Ballot {
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };
}

/// The value of one slot: a batch of commands (empty = no-op).
pub type Value = Arc<Vec<Command>>;

/// Which slots a prepare covers: one (Basic Paxos) or all from a point on (Multi-Paxos).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    Slot(Slot),
    From(Slot),
}

/// Peer-to-peer messages. Every message may be lost, duplicated, delayed or reordered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Msg {
    Prepare {
        ballot: Ballot,
        scope: Scope,
    },
    /// `accepted`: (slot, ballot, value) for every slot in scope; `log_start`: slots below it are
    /// decided and forgotten by this acceptor; `commit`: first slot the sender has not applied.
    Promise {
        ballot: Ballot,
        accepted: Vec<(Slot, Ballot, Value)>,
        log_start: Slot,
        commit: Slot,
    },
    /// `decided`: earlier slots chosen under this same `ballot`, each learned from the value the
    /// receiver accepted there (a leader folds its decisions into its next accept, which saves a
    /// `Decide` per peer per slot under load).
    Accept {
        ballot: Ballot,
        slot: Slot,
        value: Value,
        commit: Slot,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        decided: Vec<Slot>,
        /// Bit `i` set: node `i` is asked to vote; 0: every receiver votes.
        #[serde(default, skip_serializing_if = "is_zero")]
        voters: u64,
    },
    Accepted {
        ballot: Ballot,
        slot: Slot,
    },
    /// `ballot` was refused because the acceptor promised `promised` (or the slot is below
    /// `log_start`, i.e. already decided).
    Nack {
        ballot: Ballot,
        promised: Ballot,
        log_start: Slot,
        commit: Slot,
    },
    /// The value accepted in `slot` under `ballot` is chosen.
    Decide {
        slot: Slot,
        ballot: Ballot,
    },
    Heartbeat {
        ballot: Ballot,
        commit: Slot,
        sent: u64,
    },
    HeartbeatAck {
        ballot: Ballot,
        sent: u64,
    },
    /// Client commands sent on to the leader.
    Forward {
        cmds: Vec<Command>,
    },
    CatchupReq {
        from: Slot,
    },
    CatchupResp {
        snapshot: Option<Arc<AppState>>,
        entries: Vec<(Slot, Value)>,
    },
}

impl Msg {
    /// A short name for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Prepare { .. } => "prepare",
            Msg::Promise { .. } => "promise",
            Msg::Accept { .. } => "accept",
            Msg::Accepted { .. } => "accepted",
            Msg::Nack { .. } => "nack",
            Msg::Decide { .. } => "decide",
            Msg::Heartbeat { .. } => "heartbeat",
            Msg::HeartbeatAck { .. } => "heartbeat_ack",
            Msg::Forward { .. } => "forward",
            Msg::CatchupReq { .. } => "catchup_req",
            Msg::CatchupResp { .. } => "catchup_resp",
        }
    }
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}
