//! Packet faults in the schedule (`--nemesis loss,dup,rate`, netns mode only): which links or
//! nodes a window hits, and how hard.
//!
//! `loss` and `dup` hit directed links. A node-set target (`one`, `leader`, `minority`,
//! `majority`, `all`, as for pause) hits every link to and from those nodes; a topology
//! (`majorities-ring`, `bridge`) hits exactly the links a partition of that shape would cut.
//! `rate` limits the outgoing bandwidth of a node set (a qdisc sits on a node's interface, not on
//! a link).

use super::{cut_links, target_nodes, topology_grudge, Fault, FaultKind, Link, Target};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How hard faults hit: `--nemesis-loss`, `--nemesis-dup`, `--nemesis-rate`, `--nemesis-clock-offset`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Amounts {
    pub loss_pct: f64,
    pub dup_pct: f64,
    pub rate_kbit: f64,
    /// The largest clock bump or strobe, in seconds (`--nemesis-clock-offset`).
    pub clock_offset_s: f64,
}

impl Default for Amounts {
    /// Jepsen's packet nemesis defaults: 20 % loss, 20 % duplication, 1 Mbit/s.
    fn default() -> Self {
        Amounts {
            loss_pct: 20.0,
            dup_pct: 20.0,
            rate_kbit: 1000.0,
            clock_offset_s: 10.0,
        }
    }
}

/// The smallest share nftables' `numgen random mod 10000` can express.
pub const MIN_PCT: f64 = 0.01;
/// 10 Gbit/s: a larger limit limits nothing on a veth, and keeps tc's numbers small.
pub const MAX_KBIT: f64 = 10_000_000.0;

/// Checks a percentage (`what` names the flag or field); from [`MIN_PCT`] to 100.
pub fn check_pct(what: &str, v: f64) -> Result<(), String> {
    if !(MIN_PCT..=100.0).contains(&v) {
        return Err(format!(
            "{what} {v}: must be a percentage from {MIN_PCT} to 100"
        ));
    }
    Ok(())
}

/// Checks a bandwidth (`what` names the flag or field); from 1 to [`MAX_KBIT`] kbit/s.
pub fn check_kbit(what: &str, v: f64) -> Result<(), String> {
    if !(1.0..=MAX_KBIT).contains(&v) {
        return Err(format!("{what} {v}: must be from 1 to {MAX_KBIT} kbit/s"));
    }
    Ok(())
}

impl Amounts {
    /// Every amount in range; errors name the flag.
    pub fn validate(&self) -> Result<(), String> {
        check_pct("--nemesis-loss", self.loss_pct)?;
        check_pct("--nemesis-dup", self.dup_pct)?;
        check_kbit("--nemesis-rate", self.rate_kbit)?;
        super::clock::check_offset("--nemesis-clock-offset", self.clock_offset_s)
    }
}

/// A packet fault's amount, for a schedule read from a file.
pub(super) fn check_amount(f: &Fault) -> Result<(), String> {
    match f {
        Fault::Loss { pct, .. } | Fault::Dup { pct, .. } => check_pct("pct", *pct),
        Fault::Rate { kbit, .. } => check_kbit("kbit", *kbit),
        _ => Ok(()),
    }
}

/// Every directed link between `nodes` and the rest of `all`, and among `nodes`.
pub fn links_touching(nodes: &[String], all: &[String]) -> BTreeSet<Link> {
    let mut out = BTreeSet::new();
    for a in all {
        for b in all.iter().filter(|b| *b != a) {
            if nodes.contains(a) || nodes.contains(b) {
                out.insert((a.clone(), b.clone()));
            }
        }
    }
    out
}

/// The links a `loss` or `dup` window on `target` hits, over `order` (shuffled by the caller).
pub fn target_links(target: Target, order: &[String]) -> BTreeSet<Link> {
    match target {
        Target::MajoritiesRing | Target::Bridge => topology_grudge(target, order)
            .map(|g| cut_links(&g))
            .unwrap_or_default(),
        _ => links_touching(&target_nodes(target, order), order),
    }
}

/// The packet fault of `kind` on `target`, or `None` if it would hit nothing (a one-node
/// cluster has no links).
pub(super) fn make_fault(
    kind: FaultKind,
    target: Target,
    order: &[String],
    a: &Amounts,
) -> Option<Fault> {
    let links = || Some(target_links(target, order)).filter(|l| !l.is_empty());
    Some(match kind {
        FaultKind::Loss => Fault::Loss {
            target,
            links: links()?,
            pct: a.loss_pct,
        },
        FaultKind::Dup => Fault::Dup {
            target,
            links: links()?,
            pct: a.dup_pct,
        },
        FaultKind::Rate => Fault::Rate {
            target,
            nodes: Some(target_nodes(target, order)).filter(|n| !n.is_empty())?,
            kbit: a.rate_kbit,
        },
        _ => return None,
    })
}

/// The same fault aimed at `leader` instead (a `leader` target, resolved when it starts).
pub fn aim_at(f: Fault, leader: &str, all: &[String]) -> Fault {
    let me = [leader.to_string()];
    match f {
        Fault::Loss { target, pct, .. } => Fault::Loss {
            target,
            links: links_touching(&me, all),
            pct,
        },
        Fault::Dup { target, pct, .. } => Fault::Dup {
            target,
            links: links_touching(&me, all),
            pct,
        },
        Fault::Rate { target, kbit, .. } => Fault::Rate {
            target,
            nodes: me.to_vec(),
            kbit,
        },
        other => other,
    }
}
