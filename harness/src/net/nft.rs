//! Kernel-level network faults in netns mode: partitions as nftables rules inside the nodes'
//! namespaces, by address pair.
//!
//! A cut directed link `from→to` (see [`crate::schedule::cut_links`]: `to` does not hear from
//! `from`) is a rule in `to`'s namespace on the input hook: packets from `from`'s address are
//! dropped (`--partition-mode silent`, like Jepsen's iptables DROP) or answered with a TCP reset
//! (`reset`; then `to`'s own TCP packets to `from` are reset too and resets pass, so every
//! connection between the two is refused at once, as with the proxies). Each namespace's partition rules live in a table of their own, `ip jepsen_cut`,
//! replaced in one nft transaction, so a new partition never shows a mix of old and new rules;
//! healing deletes the table.

use super::netns::NetNs;
use super::tools;
use crate::proxy::PartitionMode;
use crate::schedule::Link;
use anyhow::{anyhow, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

const CUT_TABLE: &str = "jepsen_cut";

/// The partition rules of a run's namespaces, and the links they cut now.
pub struct Firewall {
    pub net: Arc<NetNs>,
    mode: PartitionMode,
    cut: Mutex<BTreeSet<Link>>,
}

impl Firewall {
    pub fn new(net: Arc<NetNs>, mode: PartitionMode) -> Firewall {
        Firewall {
            net,
            mode,
            cut: Mutex::new(BTreeSet::new()),
        }
    }

    /// The links cut now.
    pub fn cut_links(&self) -> BTreeSet<Link> {
        self.cut.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the cut links with `links`; every namespace's rules are rewritten (in parallel).
    /// Links naming an unknown node are an error.
    pub fn set_cut(&self, links: &BTreeSet<Link>) -> Result<()> {
        let mut blocked: BTreeMap<&str, Vec<Ipv4Addr>> = BTreeMap::new();
        for (from, to) in links {
            let src = self
                .net
                .node(from)
                .ok_or_else(|| anyhow!("partition: no node {from}"))?;
            blocked.entry(to.as_str()).or_default().push(src.addr);
        }
        let scripts: Vec<(String, String)> = self
            .net
            .nodes
            .iter()
            .map(|n| {
                let from = blocked.get(n.id.as_str()).map_or(&[][..], |v| v.as_slice());
                (n.ns.clone(), cut_script(from, self.mode))
            })
            .collect();
        in_every_namespace(&scripts)?;
        *self.cut.lock().unwrap_or_else(|p| p.into_inner()) = links.clone();
        Ok(())
    }

    /// Removes every partition rule.
    pub fn heal(&self) -> Result<()> {
        self.set_cut(&BTreeSet::new())
    }
}

/// Runs each `(namespace, script)` with `nft -f -`, all at once; the first error wins.
pub fn in_every_namespace(scripts: &[(String, String)]) -> Result<()> {
    std::thread::scope(|s| {
        let runs: Vec<_> = scripts
            .iter()
            .map(|(ns, script)| s.spawn(move || tools::nft_in(ns, script)))
            .collect();
        runs.into_iter()
            .map(|r| {
                r.join()
                    .unwrap_or_else(|_| Err(anyhow!("nft thread panicked")))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(())
}

/// One namespace's partition table: dropped (or reset) input from each `from` address. An empty
/// list only deletes the table.
pub fn cut_script(from: &[Ipv4Addr], mode: PartitionMode) -> String {
    // `add` then `delete` makes the delete succeed whether or not the table exists.
    let mut s = format!("add table ip {CUT_TABLE}\ndelete table ip {CUT_TABLE}\n");
    if from.is_empty() {
        return s;
    }
    let set: Vec<String> = from.iter().map(|a| a.to_string()).collect();
    let set = set.join(", ");
    s.push_str(&format!(
        "table ip {CUT_TABLE} {{\n  chain input {{\n    type filter hook input priority -10; policy accept;\n"
    ));
    if mode == PartitionMode::Reset {
        // Resets from the other side pass, so a connection is refused at once on both ends.
        s.push_str(&format!(
            "    ip saddr {{ {set} }} tcp flags rst accept\n    ip saddr {{ {set} }} meta l4proto tcp reject with tcp reset\n"
        ));
    }
    s.push_str(&format!("    ip saddr {{ {set} }} drop\n  }}\n"));
    if mode == PartitionMode::Reset {
        // This node's own connections to a node it does not hear from are reset at once too.
        s.push_str(&format!(
            "  chain output {{\n    type filter hook output priority -10; policy accept;\n    ip daddr {{ {set} }} meta l4proto tcp tcp flags != rst reject with tcp reset\n  }}\n"
        ));
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_replace_the_table_and_reset_only_in_reset_mode() {
        let a = [Ipv4Addr::new(10, 77, 0, 2), Ipv4Addr::new(10, 77, 0, 3)];
        let silent = cut_script(&a, PartitionMode::Silent);
        assert!(silent.starts_with("add table ip jepsen_cut\ndelete table ip jepsen_cut\n"));
        assert!(
            silent.contains("ip saddr { 10.77.0.2, 10.77.0.3 } drop"),
            "{silent}"
        );
        assert!(!silent.contains("reset"));
        let reset = cut_script(&a, PartitionMode::Reset);
        assert!(reset.contains("reject with tcp reset"), "{reset}");
        let heal = cut_script(&[], PartitionMode::Reset);
        assert!(!heal.contains("chain"), "{heal}");
    }
}
