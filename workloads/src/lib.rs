//! Workloads: what clients do and what is correct.
//!
//! - [`generators`]: what each client process asks next ([`generators::Generator`], one per
//!   [`Workload`]);
//! - [`models`]: the sequential models the checker searches with ([`models::Register`],
//!   [`models::Kv`], and the models of imported data: [`models::AppendKv`],
//!   [`models::MultiRegister`], [`models::Mutex`]), and [`models::check_with`] to check a history
//!   with the model a [`checker::formats::ModelKind`] names;
//! - [`check`]: checks a run's history with its [`Workload`]'s model.

pub mod generators;
pub mod models;

use checker::formats::ModelKind;
use checker::history::Event;
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

impl Workload {
    /// The model its histories are checked with.
    pub fn model(self) -> ModelKind {
        match self {
            Workload::Register => ModelKind::Register,
            Workload::Kv => ModelKind::Kv,
        }
    }
}

/// Checks a history with this workload's sequential model (registers start never written).
/// Errors name what is wrong with the history (a completion with no invoke, ...).
pub fn check(
    workload: Workload,
    events: &[Event],
    opts: &CheckOptions,
) -> Result<CheckResult, String> {
    models::check_with(workload.model(), &serde_json::Value::Null, events, opts)
}
