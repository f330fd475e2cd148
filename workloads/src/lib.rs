//! Workloads: what clients do (operation generators) and what is correct (sequential models the
//! checker searches with). `register` is one key; `kv` is many independent keys.

pub mod append;
pub mod generators;
pub mod knossos;
pub mod models;

use checker::history::Event;
use checker::linearizability::check_events;
use checker::{CheckOptions, CheckResult};

/// The workloads the harness can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// One register: read, write, cas over a small value range. Events carry no `key`.
    Register,
    /// Many independent keys, few ops per key at a time (Jepsen's independent keys).
    Kv,
}

/// Checks a history with this workload's sequential model.
/// Errors name what is wrong with the history (a completion with no invoke, ...).
pub fn check(
    workload: Workload,
    events: &[Event],
    opts: &CheckOptions,
) -> Result<CheckResult, String> {
    match workload {
        Workload::Register => check_events(&models::Register::default(), events, opts),
        Workload::Kv => check_events(&models::Kv::default(), events, opts),
    }
}
