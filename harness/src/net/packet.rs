//! Scheduled packet faults in netns mode (`--nemesis loss,dup,rate`): a window's rules go in,
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
use std::sync::{Arc, Mutex};

const PACKET_TABLE: &str = "jepsen_packet";

/// A run's scheduled packet faults, and the one in force now.
pub struct PacketFaults {
    pub net: Arc<NetNs>,
    active: Mutex<Option<Fault>>,
}

impl PacketFaults {
    pub fn new(net: Arc<NetNs>) -> PacketFaults {
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
                    let base = self.net.link_faults;
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
                    self.set_qdisc(id, &self.net.link_faults)?;
                }
            }
            _ => self.rules(&BTreeSet::new(), 0.0, Rule::Loss)?,
        }
        *self.active.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(Some(f))
    }

    /// Rewrites every namespace's packet table for `rule` on `links` (an empty set: deletes it).
    fn rules(&self, links: &BTreeSet<Link>, pct: f64, rule: Rule) -> Result<()> {
        // Loss sits at the receiver (input from the senders), dup at the sender (output).
        let mut peers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (from, to) in links {
            let (here, there) = match rule {
                Rule::Loss => (to, from),
                Rule::Dup => (from, to),
            };
            let addr = self
                .net
                .node(there)
                .ok_or_else(|| anyhow!("{}: no node {there}", rule.name()))?
                .addr;
            self.net
                .node(here)
                .ok_or_else(|| anyhow!("{}: no node {here}", rule.name()))?;
            peers
                .entry(here.as_str())
                .or_default()
                .push(addr.to_string());
        }
        let scripts: Vec<(String, String)> = self
            .net
            .nodes
            .iter()
            .map(|n| {
                let p = peers.get(n.id.as_str()).map_or(&[][..], |v| v.as_slice());
                (n.ns.clone(), packet_script(p, pct, rule))
            })
            .collect();
        in_every_namespace(&scripts)
    }

    /// Node `id`'s root qdisc as `f` asks (none: deleted).
    fn set_qdisc(&self, id: &str, f: &LinkFaults) -> Result<()> {
        let n = self
            .net
            .node(id)
            .ok_or_else(|| anyhow!("rate: no node {id}"))?;
        match links::qdisc_args(f) {
            Some(q) => {
                let mut args = vec!["-n", &n.ns, "qdisc", "replace", "dev", "eth0", "root"];
                args.extend(q.iter().map(String::as_str));
                tools::run("tc", &args, None)?;
            }
            None => {
                let args = ["-n", &n.ns, "qdisc", "del", "dev", "eth0", "root"];
                tools::run("tc", &args, None)?;
            }
        }
        Ok(())
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

/// One namespace's packet table: `rule` at `pct` percent against `peers` (loss: input from
/// them; dup: output to them). No peers: the table is only deleted.
pub fn packet_script(peers: &[String], pct: f64, rule: Rule) -> String {
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
                "ip daddr {{ {set} }} numgen random mod 10000 < {share} dup to ip daddr device \"eth0\""
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
        let loss = packet_script(&peers, 25.0, Rule::Loss);
        assert!(
            loss.contains("hook input")
                && loss.contains(
                    "ip saddr { 10.77.0.1, 10.77.0.3 } numgen random mod 10000 < 2500 drop"
                ),
            "{loss}"
        );
        let dup = packet_script(&peers, 0.5, Rule::Dup);
        assert!(
            dup.contains("hook output") && dup.contains("< 50 dup to ip daddr"),
            "{dup}"
        );
        let heal = packet_script(&[], 25.0, Rule::Loss);
        assert!(!heal.contains("chain") && heal.contains("delete table ip jepsen_packet"));
    }
}
