//! Partitions on SSH hosts: the same nftables table as netns mode ([`crate::net::nft`]), written
//! on each host over SSH (as root, or through passwordless sudo).

use super::remote::RemoteHosts;
use super::ssh::Remote;
use crate::net::nft::cut_script;
use crate::proxy::PartitionMode;
use crate::schedule::Link;
use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const STEP: Duration = Duration::from_secs(10);

/// The partition rules of a run's hosts, and the links they cut now.
pub struct HostFirewall {
    hosts: Arc<RemoteHosts>,
    ids: Vec<String>,
    mode: PartitionMode,
    cut: Mutex<BTreeSet<Link>>,
}

/// Whether `sudo -n` works on the host: `ok`, `no` (it asks for a password or refuses) or
/// `missing` (not installed). The probe always exits 0: ssh takes 127 for a missing command.
pub async fn sudo_state(r: &Remote) -> Result<&'static str> {
    let probe = "if ! command -v sudo >/dev/null 2>&1; then echo missing; \
                 elif sudo -n true >/dev/null 2>&1; then echo ok; else echo no; fi";
    Ok(match r.run_ok(probe, STEP).await?.trim() {
        "ok" => "ok",
        "missing" => "missing",
        _ => "no",
    })
}

/// `sudo -n ` for a host that is not logged in as root, or `""`; an error names the host when it
/// has neither.
pub async fn privilege_prefix(r: &Remote) -> Result<&'static str> {
    let uid = r.run_ok("id -u", STEP).await?;
    if uid.trim() == "0" {
        return Ok("");
    }
    let why = match r.spec.sudo {
        false => ", and sudo = false",
        true => match sudo_state(r).await? {
            "ok" => return Ok("sudo -n "),
            "missing" => ", and sudo is not installed",
            _ => ", and `sudo -n true` fails (sudo asks for a password or refuses)",
        },
    };
    bail!(
        "host {}: partitions and packet faults need root or passwordless sudo for nft and tc \
         there (the user is uid {}{why}); log in as root, set `sudo = true` with passwordless \
         sudo, or leave partition, loss, dup and rate out of --nemesis",
        r.spec.name,
        uid.trim(),
    )
}

impl HostFirewall {
    /// `ids[i]` is the node on host `i`.
    pub fn new(hosts: Arc<RemoteHosts>, ids: Vec<String>, mode: PartitionMode) -> HostFirewall {
        HostFirewall {
            hosts,
            ids,
            mode,
            cut: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn cut_links(&self) -> BTreeSet<Link> {
        self.cut.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn addr(&self, id: &str) -> Option<Ipv4Addr> {
        let i = self.ids.iter().position(|n| n == id)?;
        Some(self.hosts.addrs[i])
    }

    /// Replaces the cut links with `links`: every host's table rewritten, all hosts at once.
    pub async fn set_cut(&self, links: &BTreeSet<Link>) -> Result<()> {
        let mut blocked: BTreeMap<&str, Vec<Ipv4Addr>> = BTreeMap::new();
        for (from, to) in links {
            let src = self
                .addr(from)
                .ok_or_else(|| anyhow!("partition: no node {from}"))?;
            blocked.entry(to.as_str()).or_default().push(src);
        }
        let runs = self.ids.iter().enumerate().map(|(i, id)| {
            let from = blocked.get(id.as_str()).map_or(&[][..], |v| v.as_slice());
            let script = cut_script(from, self.mode);
            let host = &self.hosts.hosts[i];
            let sudo = self.hosts.sudo[i];
            async move {
                let cmd = format!("{sudo}nft -f - <<'HARNESS_NFT'\n{script}HARNESS_NFT\n");
                host.run_ok(&cmd, STEP)
                    .await
                    .map_err(|e| anyhow!("host {}: {e:#}", host.spec.name))
            }
        });
        for r in futures_util::future::join_all(runs).await {
            r?;
        }
        *self.cut.lock().unwrap_or_else(|p| p.into_inner()) = links.clone();
        Ok(())
    }
}
