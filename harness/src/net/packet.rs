//! Scheduled packet faults (`--nemesis loss,dup,rate`) in netns mode and on SSH hosts (the same
//! rules, written where each node runs: [`PacketNet`]): a window's rules go in,
//! and its heal takes them out, leaving the whole-run link faults (`--net-loss`, ...) as they were.
//!
//! Loss on the directed link `from→to` is a rule in `to`'s namespace on the input hook (packets
//! from `from`'s address, `numgen random` below the share: dropped); duplication is a rule in
//! `from`'s namespace on the output hook (`dup` to `to`'s address). Both live in a table of their
//! own, `ip jepsen_packet`, apart from the whole-run `ip jepsen_link`, so a heal deletes only the
//! window's. A rate window replaces each target node's root qdisc with a tbf at the window's rate
//! (or the whole-run rate where that is lower); its heal puts the whole-run qdisc back.

use super::links::{self, LinkFaults};
use super::netns::NetNs;
use super::nft::in_every_namespace;
use super::tools;
use crate::schedule::{Fault, Link};
use anyhow::{anyhow, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

const PACKET_TABLE: &str = "jepsen_packet";

/// Where a run's packet rules go: the namespaces of netns mode, or the SSH hosts of `--hosts`
/// ([`crate::hosts::packets`]). Node `i` is the i-th of [`PacketNet::nodes`]. Called off the
/// runtime's threads.
pub trait PacketNet: Send + Sync {
    /// Each node's id and address.
    fn nodes(&self) -> Vec<(String, Ipv4Addr)>;
    /// The whole-run link faults, which a rate window's heal puts back.
    fn base(&self) -> LinkFaults;
    /// The interface node `i` reaches its peers through.
    fn dev(&self, i: usize) -> String;
    /// `nft -f -` with `scripts[i]` where node `i` runs, all at once; the first error wins.
    fn nft_each(&self, scripts: &[String]) -> Result<()>;
    /// `tc ARGS` where node `i` runs.
    fn tc(&self, i: usize, args: &[String]) -> Result<()>;
}

impl PacketNet for NetNs {
    fn nodes(&self) -> Vec<(String, Ipv4Addr)> {
        self.nodes.iter().map(|n| (n.id.clone(), n.addr)).collect()
    }

    fn base(&self) -> LinkFaults {
        self.link_faults
    }

    fn dev(&self, _: usize) -> String {
        "eth0".into()
    }

    fn nft_each(&self, scripts: &[String]) -> Result<()> {
        let pairs: Vec<(String, String)> = self
            .nodes
            .iter()
            .zip(scripts)
            .map(|(n, s)| (n.ns.clone(), s.clone()))
            .collect();
        in_every_namespace(&pairs)
    }

    fn tc(&self, i: usize, args: &[String]) -> Result<()> {
        let mut all = vec!["-n", self.nodes[i].ns.as_str()];
        all.extend(args.iter().map(String::as_str));
        tools::run("tc", &all, None).map(drop)
    }
}

/// A run's scheduled packet faults, and the one in force now.
pub struct PacketFaults {
    pub net: Arc<dyn PacketNet>,
    active: Mutex<Option<Fault>>,
}

impl PacketFaults {
    pub fn new(net: Arc<dyn PacketNet>) -> PacketFaults {
        PacketFaults {
            net,
            active: Mutex::new(None),
        }
    }

    /// The packet fault in force now, if any.
    pub fn active(&self) -> Option<Fault> {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts a `loss`, `dup` or `rate` fault in force (after healing the one before, if any).
    pub fn apply(&self, f: &Fault) -> Result<()> {
        self.heal()?;
        match f {
            Fault::Loss { links, pct, .. } => self.rules(links, *pct, Rule::Loss)?,
            Fault::Dup { links, pct, .. } => self.rules(links, *pct, Rule::Dup)?,
            Fault::Rate { nodes, kbit, .. } => {
                for id in nodes {
                    let base = self.net.base();
                    let rate = match base.rate_kbit {
                        r if r > 0.0 => r.min(*kbit),
                        _ => *kbit,
                    };
                    self.set_qdisc(
                        id,
                        &LinkFaults {
                            rate_kbit: rate,
                            ..base
                        },
                    )?;
                }
            }
            other => return Err(anyhow!("not a packet fault: {}", other.describe())),
        }
        *self.active.lock().unwrap_or_else(|p| p.into_inner()) = Some(f.clone());
        Ok(())
    }

    /// Takes the fault in force out, if any; returns it.
    pub fn heal(&self) -> Result<Option<Fault>> {
        let Some(f) = self.active() else {
            return Ok(None);
        };
        match &f {
            Fault::Rate { nodes, .. } => {
                for id in nodes {
                    self.set_qdisc(id, &self.net.base())?;
                }
            }
            _ => self.rules(&BTreeSet::new(), 0.0, Rule::Loss)?,
        }
        *self.active.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(Some(f))
    }

    /// Rewrites every node's packet table for `rule` on `links` (an empty set: deletes it).
    fn rules(&self, links: &BTreeSet<Link>, pct: f64, rule: Rule) -> Result<()> {
        let nodes = self.net.nodes();
        let addr = |id: &str| {
            nodes
                .iter()
                .find(|(n, _)| n == id)
                .map(|(_, a)| *a)
                .ok_or_else(|| anyhow!("{}: no node {id}", rule.name()))
        };
        // Loss sits at the receiver (input from the senders), dup at the sender (output).
        let mut peers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (from, to) in links {
            let (here, there) = match rule {
                Rule::Loss => (to, from),
                Rule::Dup => (from, to),
            };
            let there = addr(there)?;
            addr(here)?;
            peers
                .entry(here.as_str())
                .or_default()
                .push(there.to_string());
        }
        let scripts: Vec<String> = nodes
            .iter()
            .enumerate()
            .map(|(i, (id, _))| {
                let p = peers.get(id.as_str()).map_or(&[][..], |v| v.as_slice());
                packet_script(p, pct, rule, &self.net.dev(i))
            })
            .collect();
        self.net.nft_each(&scripts)
    }

    /// Node `id`'s root qdisc as `f` asks (none: deleted).
    fn set_qdisc(&self, id: &str, f: &LinkFaults) -> Result<()> {
        let i = self
            .net
            .nodes()
            .iter()
            .position(|(n, _)| n == id)
            .ok_or_else(|| anyhow!("rate: no node {id}"))?;
        let dev = self.net.dev(i);
        let mut args: Vec<String> = match links::qdisc_args(f) {
            Some(_) => vec!["qdisc".into(), "replace".into()],
            None => vec!["qdisc".into(), "del".into()],
        };
        args.extend(["dev".into(), dev, "root".into()]);
        args.extend(links::qdisc_args(f).unwrap_or_default());
        self.net.tc(i, &args)
    }
}

/// Which packet rule a table holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    Loss,
    Dup,
}

impl Rule {
    fn name(self) -> &'static str {
        match self {
            Rule::Loss => "loss",
            Rule::Dup => "dup",
        }
    }
}

/// One node's packet table: `rule` at `pct` percent against `peers` (loss: input from them;
/// dup: output to them, through `dev`). No peers: the table is only deleted.
pub fn packet_script(peers: &[String], pct: f64, rule: Rule, dev: &str) -> String {
    let mut s = format!("add table ip {PACKET_TABLE}\ndelete table ip {PACKET_TABLE}\n");
    if peers.is_empty() {
        return s;
    }
    let set = peers.join(", ");
    let share = links::per_10k(pct);
    let (hook, body) = match rule {
        Rule::Loss => (
            "input",
            format!("ip saddr {{ {set} }} numgen random mod 10000 < {share} drop"),
        ),
        Rule::Dup => (
            "output",
            format!(
                "ip daddr {{ {set} }} numgen random mod 10000 < {share} dup to ip daddr device \"{dev}\""
            ),
        ),
    };
    s.push_str(&format!(
        "table ip {PACKET_TABLE} {{\n  chain {hook} {{\n    type filter hook {hook} priority -15; policy accept;\n    {body}\n  }}\n}}\n"
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_put_loss_on_input_and_dup_on_output() {
        let peers = ["10.77.0.1".to_string(), "10.77.0.3".to_string()];
        let loss = packet_script(&peers, 25.0, Rule::Loss, "eth0");
        assert!(
            loss.contains("hook input")
                && loss.contains(
                    "ip saddr { 10.77.0.1, 10.77.0.3 } numgen random mod 10000 < 2500 drop"
                ),
            "{loss}"
        );
        let dup = packet_script(&peers, 0.5, Rule::Dup, "ens3");
        assert!(
            dup.contains("hook output") && dup.contains("< 50 dup to ip daddr device \"ens3\""),
            "{dup}"
        );
        let heal = packet_script(&[], 25.0, Rule::Loss, "eth0");
        assert!(!heal.contains("chain") && heal.contains("delete table ip jepsen_packet"));
    }
}
