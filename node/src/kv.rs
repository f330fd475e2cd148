//! The replicated state machine: a key-value map plus the table that makes each client request
//! take effect once, however many times it is proposed or decided.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::{BTreeSet, HashMap};

/// Identifies one client request: `origin` names the node incarnation that received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReqId {
    pub origin: u64,
    pub seq: u64,
}

/// A key-value operation as the client asked for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    Read {
        key: String,
    },
    Write {
        key: String,
        value: Json,
    },
    Cas {
        key: String,
        from: Json,
        to: Json,
    },
    /// A new configuration (bit `i` = node `i`), chosen in the log like any command; the core
    /// decides from which slot it governs (`core::membership`).
    Reconfigure {
        members: u64,
    },
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

/// The answer to a client operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OpResult {
    Read(Json),
    Write,
    Cas,
    Reconfigured,
    /// Maelstrom error code and text.
    Error(u32, String),
}

/// Per origin (node incarnation): requests below `done_below` are finished and forgotten;
/// `applied` holds the applied seqs at or above it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OriginState {
    pub done_below: u64,
    pub applied: BTreeSet<u64>,
}

/// The state after applying every log slot below `applied` (the log itself is
/// [`crate::protocol`]'s: this module knows commands, not slots).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AppState {
    pub applied: u64,
    pub kv: HashMap<String, Json>,
    pub origins: HashMap<u64, OriginState>,
    /// Configuration changes applied: (slot chosen, members bits), in slot order.
    #[serde(default)]
    pub changes: Vec<(u64, u64)>,
}

impl AppState {
    /// Applies one command. `None` when it is a duplicate (or abandoned by its origin) and so
    /// skipped; the state is then unchanged.
    pub fn apply(&mut self, cmd: &Command) -> Option<OpResult> {
        let o = self.origins.entry(cmd.id.origin).or_default();
        if cmd.done_below > o.done_below {
            o.done_below = cmd.done_below;
            let keep = o.applied.split_off(&cmd.done_below);
            o.applied = keep;
        }
        if cmd.id.seq < o.done_below || !o.applied.insert(cmd.id.seq) {
            return None;
        }
        Some(self.execute(&cmd.op))
    }

    /// Runs an operation against the map (also used by the seeded local-read bugs).
    pub fn execute(&mut self, op: &Op) -> OpResult {
        match op {
            Op::Read { key } => OpResult::Read(self.kv.get(key).cloned().unwrap_or(Json::Null)),
            Op::Write { key, value } => {
                self.kv.insert(key.clone(), value.clone());
                OpResult::Write
            }
            Op::Cas { key, from, to } => match self.kv.get_mut(key) {
                None => OpResult::Error(20, format!("key {key} does not exist")),
                Some(v) if v == from => {
                    *v = to.clone();
                    OpResult::Cas
                }
                Some(v) => OpResult::Error(22, format!("expected {from}, found {v}")),
            },
            Op::Reconfigure { members } => {
                // Applied in slot `applied` (it counts up after the slot's commands).
                self.changes.push((self.applied, *members));
                OpResult::Reconfigured
            }
        }
    }

    /// Whether this request of `origin` has already been applied or given up.
    pub fn is_done(&self, origin: u64, seq: u64) -> bool {
        self.origins
            .get(&origin)
            .is_some_and(|o| seq < o.done_below || o.applied.contains(&seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(seq: u64, done_below: u64, op: Op) -> Command {
        Command {
            id: ReqId { origin: 7, seq },
            done_below,
            op,
        }
    }

    #[test]
    fn duplicates_apply_once_and_table_stays_small() {
        let mut s = AppState::default();
        let w = |v: i64| Op::Write {
            key: "k".into(),
            value: v.into(),
        };
        assert_eq!(s.apply(&cmd(0, 0, w(1))), Some(OpResult::Write));
        assert_eq!(s.apply(&cmd(0, 0, w(1))), None);
        let cas = Op::Cas {
            key: "k".into(),
            from: 1.into(),
            to: 2.into(),
        };
        assert_eq!(s.apply(&cmd(1, 1, cas.clone())), Some(OpResult::Cas));
        assert!(matches!(
            s.apply(&cmd(2, 2, cas)),
            Some(OpResult::Error(22, _))
        ));
        // seq 0 is below done_below now: a late duplicate is skipped.
        assert_eq!(s.apply(&cmd(0, 0, w(9))), None);
        assert_eq!(s.origins[&7].applied.len(), 1);
        let r = s.apply(&cmd(3, 3, Op::Read { key: "k".into() }));
        assert_eq!(r, Some(OpResult::Read(2.into())));
        let missing = Op::Cas {
            key: "x".into(),
            from: 1.into(),
            to: 2.into(),
        };
        assert!(matches!(
            s.apply(&cmd(4, 4, missing)),
            Some(OpResult::Error(20, _))
        ));
    }
}
