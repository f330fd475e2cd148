//! What a check concludes. Shared by the harness (results.json), the CLI and the report.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

impl Verdict {
    /// Jepsen's exit codes: 0 valid, 1 invalid, 3 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 3,
        }
    }
}

/// The memory cap used when [`CheckOptions::memory_limit_bytes`] is `None`: 1 GiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 1 << 30;

/// Budgets for one check. When one runs out the verdict is `unknown`, saying which and how far
/// the search got.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// `None`: no time limit.
    pub time_limit: Option<Duration>,
    /// Memory for search state (caches, stacks) over all keys at once. `None`: the default,
    /// [`DEFAULT_MEMORY_LIMIT`]; `Some(u64::MAX)` for none.
    pub memory_limit_bytes: Option<u64>,
    /// Worker threads for independent keys; 0 = all cores.
    pub threads: usize,
}

/// The outcome of checking one history. Fields may be added; none are renamed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckResult {
    pub verdict: Verdict,
    /// Plain words for a tired on-call engineer: why invalid, or why unknown, or a one-line "ok".
    pub explanation: String,
    /// Structured counterexample for the report (key, failing op, prefix, possible states,
    /// concurrent ops, shrunk ops), present when `verdict` is invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<serde_json::Value>,
    /// Number of independent keys checked.
    pub keys: usize,
    /// Client operations considered (after dropping failed ones).
    pub ops: usize,
    /// Search states explored, summed over keys.
    pub states_explored: u64,
    pub elapsed_ms: f64,
}
