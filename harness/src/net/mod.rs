//! The network between nodes: `--net proxy` (the default; a userspace TCP proxy on every directed
//! link, see [`crate::proxy`]) or `--net netns` (one network namespace per node on a bridge the
//! run owns, [`netns::NetNs`]; every node is given the same real address for a peer).
//!
//! Netns mode drives the `ip` binary (iproute2) rather than a netlink crate: the commands are the
//! ones an operator types to inspect or undo what a run made, the netlink crates would add an
//! async stack and a dependency tree for a few dozen calls per run, and `nft`, which the fault
//! rules need, has no well-kept Rust binding.

pub mod netns;
pub mod tools;

use serde::{Deserialize, Serialize};

/// `--net`: how nodes are connected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// A TCP proxy on every directed link, on loopback.
    #[default]
    Proxy,
    /// One network namespace per node, its own address on a bridge; faults are kernel rules.
    Netns,
}

/// The network options of `harness test`.
#[derive(clap::Args, Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NetArgs {
    /// How nodes are connected: proxy (TCP proxies on loopback) or netns (a network namespace
    /// per node, needs root, `ip` and `nft`; see docs/faults.md).
    #[arg(long, value_enum, default_value_t = NetMode::Proxy)]
    pub net: NetMode,
    /// With --net netns: the run's subnet, a.b.c.0/24 (default: the first free 10.77.N.0/24).
    /// Refused if the host already routes it.
    #[arg(long, value_name = "SUBNET")]
    pub net_subnet: Option<netns::Subnet>,
}

/// `harness clean`: removes the namespaces, bridges and veths dead runs left.
#[derive(clap::Args, Clone, Debug)]
pub struct CleanArgs {}

/// Runs `harness clean`; prints what it removed. Exit code 0.
pub fn run_clean(_: CleanArgs) -> Result<u8, crate::SetupError> {
    if tools::find("ip").is_none() {
        println!("harness clean: no `ip` binary, so no network namespaces to look at");
        return Ok(0);
    }
    let removed = netns::clean_dead();
    if removed.is_empty() {
        println!("harness clean: nothing left by dead runs");
    }
    for r in &removed {
        println!("harness clean: removed {r}");
    }
    Ok(0)
}
