//! What nodes say to each other and what goes into the log: ballots, commands, peer messages.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
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

/// Identifies one client request: `origin` names the node incarnation that received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReqId {
    pub origin: u64,
    pub seq: u64,
}

/// A key-value operation as the client asked for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    Read { key: String },
    Write { key: String, value: Json },
    Cas { key: String, from: Json, to: Json },
}

impl Op {
    pub fn is_read(&self) -> bool {
        matches!(self, Op::Read { .. })
    }
}

/// A command in the log. `done_below`: every request of this origin with a lower seq has been
/// answered, so the state machine may forget them (bounded duplicate table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub id: ReqId,
    pub done_below: u64,
    pub op: Op,
}

/// The value of one slot: a batch of commands (empty = no-op).
pub type Value = Arc<Vec<Command>>;

/// The answer to a client operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OpResult {
    Read(Json),
    Write,
    Cas,
    /// Maelstrom error code and text.
    Error(u32, String),
}

/// Which slots a prepare covers: one (Basic Paxos) or all from a point on (Multi-Paxos).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    Slot(Slot),
    From(Slot),
}

/// What must be on disk before an effect of a batch may be seen by others. The shell gives the
/// core batches of inputs; the records a batch produces are synced in the background.
///
/// - `ThisBatch`: promises and votes reveal acceptor state the batch may have changed; a prepare
///   must not leave before the proposer's promise to itself is durable, or a restarted proposer
///   could count a promise it no longer keeps.
/// - `EarlierBatches`: decisions, catch-up answers and client replies. A decision counts this
///   node's own vote, cast when it proposed, in an earlier batch (every other vote arrives as an
///   `Accepted`, sent after its acceptor's sync, so the decision is always in a later batch
///   than the proposal when there are two or more nodes). A decision learned from a peer is
///   already durable on a majority.
/// - `Nothing`: accepts (phase 1 finished after a sync), heartbeats, nacks, forwards, catch-up
///   requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Durability {
    Nothing,
    EarlierBatches,
    ThisBatch,
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
        snapshot: Option<Arc<crate::kv::AppState>>,
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

    /// What must be durable before the message may leave (see [`Durability`]).
    pub fn durability(&self) -> Durability {
        match self {
            Msg::Prepare { .. } | Msg::Promise { .. } | Msg::Accepted { .. } => {
                Durability::ThisBatch
            }
            Msg::Decide { .. } | Msg::CatchupResp { .. } => Durability::EarlierBatches,
            Msg::Accept { decided, .. } if !decided.is_empty() => Durability::EarlierBatches,
            _ => Durability::Nothing,
        }
    }
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}
