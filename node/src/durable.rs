//! The node's durable state as types: the acceptor records written to the log, the snapshot, and
//! what a restarted node reads back. [`crate::storage`] writes and reads them (one JSON line per
//! record, `snapshot.json`); the core produces them and replays them at start-up. Changing a
//! field here changes the on-disk format.

use crate::kv::AppState;
use crate::protocol::{Ballot, Slot, Value};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One acceptor state change to make durable.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Record {
    Promise {
        ballot: Ballot,
    },
    PromiseSlot {
        slot: Slot,
        ballot: Ballot,
    },
    Accepted {
        slot: Slot,
        ballot: Ballot,
        value: Value,
    },
}

/// An acceptor's state for one slot.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AccSlot {
    pub promised: Ballot,
    pub accepted: Option<(Ballot, Value)>,
}

/// Everything durable at one moment: the applied state and the acceptor state above it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub app: Arc<AppState>,
    pub promised: Ballot,
    pub slots: Vec<(Slot, AccSlot)>,
}

/// What a restarted node finds on disk: the last snapshot and the records written after it.
#[derive(Default)]
pub struct Durable {
    pub snapshot: Option<Snapshot>,
    pub records: Vec<Record>,
}
