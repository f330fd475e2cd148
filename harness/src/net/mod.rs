//! The network between nodes: `--net proxy` (the default; a userspace TCP proxy on every directed
//! link, see [`crate::proxy`]) or `--net netns` (one network namespace per node on a bridge the
//! run owns, [`netns::NetNs`]; every node is given the same real address for a peer).
//!
//! Netns mode drives the `ip` binary (iproute2) rather than a netlink crate: the commands are the
//! ones an operator types to inspect or undo what a run made, the netlink crates would add an
//! async stack and a dependency tree for a few dozen calls per run, and `nft`, which the fault
//! rules need, has no well-kept Rust binding.

pub mod link_faults;
pub mod links;
pub mod netns;
pub mod nft;
pub mod packet;
pub mod rootless;
pub mod tools;

use crate::cluster::ClusterPlan;
use netns::NetNs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;

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

impl NetMode {
    /// The name `--net` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            NetMode::Proxy => "proxy",
            NetMode::Netns => "netns",
        }
    }

    /// The default is not written to test.json, which stays as before netns mode existed.
    fn is_proxy(&self) -> bool {
        *self == NetMode::Proxy
    }
}

/// The network options of `harness test`.
#[derive(clap::Args, Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NetArgs {
    /// How nodes are connected: proxy (TCP proxies on loopback) or netns (a network namespace
    /// per node, needs root, `ip` and `nft`; see docs/faults.md).
    #[arg(long, value_enum, default_value_t = NetMode::Proxy)]
    #[serde(skip_serializing_if = "NetMode::is_proxy")]
    pub net: NetMode,
    /// With --net netns: the run's subnet, a.b.c.0/24 (default: the first free 10.77.N.0/24).
    /// Refused if the host already routes it.
    #[arg(long, value_name = "SUBNET")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_subnet: Option<netns::Subnet>,
    /// With --net netns: percent of packets lost on every link between nodes (nftables numgen).
    #[arg(long, default_value_t = 0.0, value_name = "PCT")]
    #[serde(skip_serializing_if = "is_zero")]
    pub net_loss: f64,
    /// With --net netns: percent of packets sent twice on every link between nodes (nftables dup).
    #[arg(long, default_value_t = 0.0, value_name = "PCT")]
    #[serde(skip_serializing_if = "is_zero")]
    pub net_dup: f64,
    /// With --net netns: each node's outgoing bandwidth in kbit/s (tc tbf; 0: unlimited).
    #[arg(long, default_value_t = 0.0, value_name = "KBIT")]
    #[serde(skip_serializing_if = "is_zero")]
    pub net_rate: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl NetArgs {
    /// Checks the network options; errors name the flag.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (flag, v, max) in [
            ("--net-loss", self.net_loss, 100.0),
            ("--net-dup", self.net_dup, 100.0),
            ("--net-rate", self.net_rate, f64::MAX),
        ] {
            if !v.is_finite() || v < 0.0 || v > max {
                anyhow::bail!("{flag} {v}: must be a number from 0 to {max}");
            }
            if v > 0.0 && self.net == NetMode::Proxy {
                anyhow::bail!("{flag} needs --net netns (the proxies carry streams, not packets)");
            }
        }
        if self.net_subnet.is_some() && self.net == NetMode::Proxy {
            anyhow::bail!("--net-subnet needs --net netns");
        }
        Ok(())
    }

    /// Packet faults in `--nemesis` (`loss`, `dup`, `rate`) need netns mode (or SSH hosts, checked
    /// by the caller); the error names
    /// the flag.
    pub fn check_nemesis(&self, kinds: &crate::schedule::Kinds) -> anyhow::Result<()> {
        match kinds.0.iter().find(|k| k.is_packet()) {
            Some(k) if self.net == NetMode::Proxy => anyhow::bail!(
                "--nemesis {k} needs --net netns or --hosts (packet faults are kernel rules; the \
                 proxies carry streams, not packets)"
            ),
            _ => Ok(()),
        }
    }
}

/// `harness clean`: kills the processes and removes the namespaces, bridges and veths that dead
/// runs left.
#[derive(clap::Args, Clone, Debug)]
pub struct CleanArgs {}

/// Runs `harness clean`; prints what it killed and removed. Exit code 0.
pub fn run_clean(_: CleanArgs) -> Result<u8, crate::SetupError> {
    let mut killed = crate::reaper::clean_dead();
    killed.extend(crate::power::clean_dead());
    for k in &killed {
        crate::outln!("harness clean: {k}");
    }
    if tools::find("ip").is_none() {
        crate::outln!("harness clean: no `ip` binary, so no network namespaces to look at");
        return Ok(0);
    }
    let removed = netns::clean_dead();
    if removed.is_empty() && killed.is_empty() {
        crate::outln!("harness clean: nothing left by dead runs");
    }
    for r in &removed {
        crate::outln!("harness clean: removed {r}");
    }
    Ok(0)
}

/// With `--net netns`: makes the run's namespaces, puts the link faults in force (with
/// `latency_ms`, `jitter_ms` of `--net-latency`, `--net-jitter`), and moves every node of `plan`
/// into its own namespace, listening on its own address (ports as planned) and given every peer's
/// real address. `None` in proxy mode.
pub async fn attach(
    args: &NetArgs,
    (latency_ms, jitter_ms): (f64, f64),
    plan: &mut ClusterPlan,
) -> anyhow::Result<Option<Arc<NetNs>>> {
    if args.net == NetMode::Proxy {
        return Ok(None);
    }
    let ids: Vec<String> = plan.nodes.iter().map(|n| n.id.clone()).collect();
    let subnet = args.net_subnet;
    let faults = links::LinkFaults {
        loss_pct: args.net_loss,
        dup_pct: args.net_dup,
        rate_kbit: args.net_rate,
        latency_ms,
        jitter_ms,
    };
    let net = tokio::task::spawn_blocking(move || -> anyhow::Result<NetNs> {
        let mut net = NetNs::create(&ids, subnet)?;
        links::apply(&net, &faults)?;
        net.link_faults = faults;
        Ok(net)
    })
    .await??;
    for spec in plan.nodes.iter_mut() {
        let node = net.node(&spec.id).expect("a namespace per node");
        spec.listen.set_ip(node.addr.into());
        spec.client.set_ip(node.addr.into());
        spec.netns = Some(node.ns_path());
    }
    let listen: BTreeMap<String, SocketAddr> = plan
        .nodes
        .iter()
        .map(|n| (n.id.clone(), n.listen))
        .collect();
    for ((_, to), addr) in plan.peer_addr.iter_mut() {
        *addr = listen[to];
    }
    Ok(Some(Arc::new(net)))
}

/// Makes `cmd`'s child enter the network namespace at `path` between fork and exec (so its pid is
/// the node's, as in proxy mode). The returned file must stay open until the child is spawned.
pub fn enter_in_child(cmd: &mut tokio::process::Command, path: &Path) -> anyhow::Result<File> {
    let file = File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open the namespace {}: {e}", path.display()))?;
    let fd = file.as_raw_fd();
    // SAFETY: setns is async-signal-safe; the fd is open until the spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if nix::libc::setns(fd, nix::libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(file)
}
