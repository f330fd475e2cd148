//! The shape of a suite file, as serde reads it.

use crate::options::Variant;
use serde::Deserialize;
use workloads::Workload;

/// The seeded bugs of `paxos-node` (docs/seeded-bugs.md); `lease-read` and `clock-lease` exist
/// only in multi.
pub const BUGS: &[&str] = &[
    "volatile-acceptor",
    "ignore-promised-value",
    "accept-below-promise",
    "local-read",
    "lease-read",
    "unsynced-wal",
    "clock-lease",
    "removed-vote",
];

/// The harness's default cluster size, used to judge whether a fault can happen at all.
pub const DEFAULT_NODES: u32 = 5;

/// What a run is expected to conclude.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    #[default]
    Valid,
    Invalid,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Valid => "valid",
            Expect::Invalid => "invalid",
        }
    }
}

/// The fields shared by `[defaults]` and `[[test]]`. Every one is optional in the file; an entry's
/// value wins over the default's.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    pub name: Option<String>,
    pub description: Option<String>,
    pub variants: Option<Vec<Variant>>,
    pub workloads: Option<Vec<Workload>>,
    pub faults: Option<Vec<String>>,
    pub seeds: Option<Vec<u64>>,
    pub repeats: Option<u32>,
    pub expect: Option<Expect>,
    pub nodes: Option<u32>,
    pub time_limit: Option<f64>,
    pub concurrency: Option<u32>,
    pub rate: Option<f64>,
    pub recovery_time: Option<f64>,
    pub op_timeout: Option<f64>,
    pub nemesis_interval: Option<f64>,
    pub nemesis_targets: Option<Vec<String>>,
    pub partition_mode: Option<String>,
    pub net_latency: Option<f64>,
    pub net_jitter: Option<f64>,
    pub check_time_limit: Option<f64>,
    pub node_bin: Option<String>,
    pub node_args: Option<Vec<String>>,
    pub bugs: Option<Vec<String>>,
    /// Passed verbatim to `harness test`, for options this file format does not name.
    pub harness_args: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub suite: Meta,
    #[serde(default)]
    pub defaults: Fields,
    #[serde(default, rename = "test")]
    pub tests: Vec<Fields>,
}
