//! Packet faults on SSH hosts (`--nemesis loss,dup,rate`): the netns mode's rules
//! ([`crate::net::packet`]), each node's written on its host over SSH (as root or through
//! passwordless sudo), on the interface the host reaches its peers through.

use super::remote::RemoteHosts;
use super::ssh::quote;
use crate::net::link_faults::LinkFaults;
use crate::net::packet::PacketNet;
use anyhow::{anyhow, Result};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

const STEP: Duration = Duration::from_secs(10);

/// The hosts of a run as a [`PacketNet`]; its calls come from blocking threads, which wait on the
/// runtime for the SSH commands.
pub struct HostNet {
    hosts: Arc<RemoteHosts>,
    ids: Vec<String>,
    rt: tokio::runtime::Handle,
}

impl HostNet {
    /// `ids[i]` is the node on host `i`. Must be called on the runtime.
    pub fn new(hosts: Arc<RemoteHosts>, ids: Vec<String>) -> HostNet {
        HostNet {
            hosts,
            ids,
            rt: tokio::runtime::Handle::current(),
        }
    }

    fn run(&self, i: usize, cmd: &str) -> Result<()> {
        let host = &self.hosts.hosts[i];
        let cmd = format!("{}{cmd}", self.hosts.sudo[i]);
        self.rt
            .block_on(host.run_ok(&cmd, STEP))
            .map(drop)
            .map_err(|e| anyhow!("host {}: {e:#}", host.spec.name))
    }
}

impl PacketNet for HostNet {
    fn nodes(&self) -> Vec<(String, Ipv4Addr)> {
        self.ids
            .iter()
            .cloned()
            .zip(self.hosts.addrs.iter().copied())
            .collect()
    }

    /// The hosts have no whole-run link faults: a rate window's heal deletes the root qdisc,
    /// which puts the host's default back.
    fn base(&self) -> LinkFaults {
        LinkFaults::default()
    }

    fn dev(&self, i: usize) -> String {
        self.hosts.devs[i].clone()
    }

    fn nft_each(&self, scripts: &[String]) -> Result<()> {
        let runs = scripts.iter().enumerate().map(|(i, script)| {
            let host = &self.hosts.hosts[i];
            let cmd = format!(
                "{}nft -f - <<'HARNESS_NFT'\n{script}HARNESS_NFT\n",
                self.hosts.sudo[i]
            );
            async move {
                host.run_ok(&cmd, STEP)
                    .await
                    .map_err(|e| anyhow!("host {}: {e:#}", host.spec.name))
            }
        });
        for r in self.rt.block_on(futures_util::future::join_all(runs)) {
            r?;
        }
        Ok(())
    }

    fn tc(&self, i: usize, args: &[String]) -> Result<()> {
        let words: Vec<String> = args.iter().map(|a| quote(a)).collect();
        self.run(i, &format!("tc {}", words.join(" ")))
    }
}

/// The interface `r` reaches `peer` through (`ip route get`), for the dup rules and the rate
/// qdisc.
pub async fn peer_dev(r: &super::ssh::Remote, peer: Ipv4Addr) -> Result<String> {
    let out = r
        .run_ok(&format!("ip -o route get {peer}"), STEP)
        .await
        .map_err(|e| anyhow!("host {}: packet faults need `ip`: {e:#}", r.spec.name))?;
    route_dev(&out).ok_or_else(|| {
        anyhow!(
            "host {}: `ip route get {peer}` names no interface: {}",
            r.spec.name,
            out.trim()
        )
    })
}

/// The word after `dev` in `ip route get`'s answer.
fn route_dev(route: &str) -> Option<String> {
    let mut words = route.split_whitespace();
    words.position(|w| w == "dev")?;
    words.next().map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_comes_from_the_route() {
        let out = "10.77.0.2 dev eth0 src 10.77.0.1 uid 0 \\    cache ";
        assert_eq!(route_dev(out).as_deref(), Some("eth0"));
        assert_eq!(route_dev("local 127.0.0.1 dev"), None);
        assert_eq!(route_dev("unreachable"), None);
    }
}
