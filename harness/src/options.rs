//! Option values shared by `harness test` and suite files: the Paxos variant, the workload names,
//! and the largest cluster the default node supports.

use serde::{Deserialize, Serialize};
use workloads::Workload;

/// The most nodes the default node (paxos-node) accepts: it keeps quorums as 64-bit sets, one
/// bit per node. A limit of that node, not of the contract (docs/node-contract.md): a third-party
/// `--node-bin` is not limited.
pub const DEFAULT_NODE_MAX_NODES: usize = 64;

/// `--variant`: passed to the default node as `--variant basic|multi`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    Basic,
    Multi,
}

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Basic => "basic",
            Variant::Multi => "multi",
        }
    }
}

/// `--workload NAME`: `register` or `kv`.
pub fn parse_workload(s: &str) -> Result<Workload, String> {
    match s {
        "register" => Ok(Workload::Register),
        "kv" => Ok(Workload::Kv),
        _ => Err(format!("unknown workload {s:?} (expected register or kv)")),
    }
}

/// The name `--workload` takes, also used in run names.
pub fn workload_name(w: Workload) -> &'static str {
    match w {
        Workload::Register => "register",
        Workload::Kv => "kv",
    }
}

/// Refuses a cluster larger than the default node supports; `None` when `nodes` is fine or the
/// node is a third-party one.
pub fn node_count_problem(nodes: usize, default_node: bool) -> Option<String> {
    (default_node && nodes > DEFAULT_NODE_MAX_NODES).then(|| {
        format!("the default node (paxos-node) supports at most {DEFAULT_NODE_MAX_NODES} nodes")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_names_parse_back() {
        for w in [Workload::Register, Workload::Kv] {
            assert_eq!(parse_workload(workload_name(w)), Ok(w));
        }
        assert!(parse_workload("queue")
            .unwrap_err()
            .contains("register or kv"));
    }

    #[test]
    fn only_the_default_node_is_limited() {
        assert_eq!(node_count_problem(64, true), None);
        let e = node_count_problem(65, true).unwrap();
        assert!(e.contains("paxos-node") && e.contains("at most 64"), "{e}");
        assert_eq!(node_count_problem(65, false), None);
    }
}
