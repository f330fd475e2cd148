//! The fault schedule: which faults happen, to whom, and when, all decided up front from the run's
//! seed and saved as `schedule.json`, so a run can be replayed exactly (`harness test --replay`).
//! Pure functions only; [`crate::nemesis`] carries a schedule out.
//!
//! Partition topologies use Jepsen's names and shapes. A grudge maps each node to the nodes it
//! does not hear from; node `x` not hearing from `y` cuts the directed link `y→x` (see
//! [`cut_links`]). Packet faults (`loss`, `dup`, `rate`; netns mode only) are in [`packet`],
//! clock faults in [`clock`], and how windows are drawn so that they cover every kind in [`draw`].

pub mod clock;
pub mod draw;
pub mod membership;
pub mod packet;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// A kind of fault the nemesis can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Cut links between nodes through the proxies.
    Partition,
    /// SIGSTOP, later SIGCONT.
    Pause,
    /// SIGKILL, later restart with the same arguments and data dir.
    Kill,
    /// A share of the packets on some links dropped (nftables `numgen`; netns mode only).
    Loss,
    /// A share of the packets on some links sent twice (nftables `dup`; netns mode only).
    Dup,
    /// Some nodes' outgoing bandwidth limited (tc `tbf`; netns mode only).
    Rate,
    /// SIGKILL and every write not yet synced lost (a FUSE layer), later restart.
    PowerCut,
    /// Some nodes' wall clocks set wrong: bumped, strobing or skewed (see [`clock`]).
    Clock,
    /// Nodes added to or removed from the configuration, one change at a time (see
    /// [`membership`]); needs spare nodes (`--spare`).
    Membership,
}

impl FaultKind {
    /// The kinds every network mode supports (the hunt draws from these).
    pub const ALL: [FaultKind; 3] = [FaultKind::Partition, FaultKind::Pause, FaultKind::Kill];
    /// The packet faults: kernel rules, so `--net netns` only (the proxies carry streams).
    pub const PACKET: [FaultKind; 3] = [FaultKind::Loss, FaultKind::Dup, FaultKind::Rate];
    /// The kinds a node's own process feels, beyond [`FaultKind::ALL`]; each needs a mechanism
    /// the machine may lack (libfaketime, FUSE).
    pub const NODE: [FaultKind; 2] = [FaultKind::Clock, FaultKind::PowerCut];

    pub fn is_packet(self) -> bool {
        FaultKind::PACKET.contains(&self)
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Pause => "pause",
            FaultKind::Kill => "kill",
            FaultKind::Loss => "loss",
            FaultKind::Dup => "dup",
            FaultKind::Rate => "rate",
            FaultKind::PowerCut => "power-cut",
            FaultKind::Clock => "clock",
            FaultKind::Membership => "membership",
        }
    }

    /// The targets that make sense for this kind of fault.
    pub fn applicable(self, t: Target) -> bool {
        use Target::*;
        match self {
            FaultKind::Partition => matches!(t, One | Leader | Majority | MajoritiesRing | Bridge),
            FaultKind::Pause
            | FaultKind::Kill
            | FaultKind::Rate
            | FaultKind::PowerCut
            | FaultKind::Clock => {
                matches!(t, One | Leader | Minority | Majority | All)
            }
            // Node sets (the links to and from them) and the link topologies.
            FaultKind::Loss | FaultKind::Dup => true,
            // Its steps are drawn from the configuration, not from targets.
            FaultKind::Membership => true,
        }
    }
}

/// Whom a fault hits. For partitions these are topologies: `one` isolates one node, `majority`
/// splits the nodes into random halves, `majorities-ring` gives every node a different majority,
/// `bridge` splits into halves joined by one node. For pause and kill they are node sets: `one`,
/// `minority` (⌊n/2⌋ nodes), `majority` (⌊n/2⌋+1 nodes), `all`. `leader` (Jepsen's `primaries`)
/// is the node that says it leads, asked when the fault starts (the optional `stats` request,
/// `"is_leader": 1`); isolated by a partition, or paused or killed. When no node says so it falls
/// back to the random node drawn in the schedule, so `--replay` repeats it only where the same
/// node leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    One,
    Leader,
    Minority,
    Majority,
    MajoritiesRing,
    Bridge,
    All,
}

impl Target {
    pub const ALL: [Target; 7] = [
        Target::One,
        Target::Leader,
        Target::Minority,
        Target::Majority,
        Target::MajoritiesRing,
        Target::Bridge,
        Target::All,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::One => "one",
            Target::Leader => "leader",
            Target::Minority => "minority",
            Target::Majority => "majority",
            Target::MajoritiesRing => "majorities-ring",
            Target::Bridge => "bridge",
            Target::All => "all",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The faults of `--nemesis`: a comma-separated list of `partition`, `pause`, `kill`, `loss`,
/// `dup`, `rate`, `clock`, or `none`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Kinds(pub Vec<FaultKind>);

impl FromStr for Kinds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim() == "none" {
            return Ok(Kinds(vec![]));
        }
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim) {
            let k = FaultKind::ALL
                .into_iter()
                .chain(FaultKind::PACKET)
                .chain(FaultKind::NODE)
                .chain([FaultKind::Membership])
                .find(|k| k.name() == part)
                .ok_or_else(|| {
                    format!(
                        "unknown fault '{part}': expected partition, pause, kill, loss, dup, \
                         rate, power-cut, clock, membership or none"
                    )
                })?;
            if !out.contains(&k) {
                out.push(k);
            }
        }
        Ok(Kinds(out))
    }
}

impl fmt::Display for Kinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.0.iter().map(|k| k.name()).collect();
        f.write_str(&names.join(","))
    }
}

/// The targets of `--nemesis-targets`: a comma-separated list of target names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Targets(pub Vec<Target>);

impl Default for Targets {
    fn default() -> Self {
        Targets(Target::ALL.to_vec())
    }
}

impl FromStr for Targets {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim) {
            let t = Target::ALL
                .into_iter()
                .find(|t| t.name() == part)
                .ok_or_else(|| {
                    format!(
                        "unknown target '{part}': expected one, leader, minority, majority, \
                         majorities-ring, bridge or all"
                    )
                })?;
            if !out.contains(&t) {
                out.push(t);
            }
        }
        Ok(Targets(out))
    }
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|t| t.name()).collect();
        f.write_str(&names.join(","))
    }
}

/// Node → the nodes it does not hear from.
pub type Grudge = BTreeMap<String, BTreeSet<String>>;

/// A directed link `(from, to)`, as in [`crate::proxy::Link`].
pub type Link = (String, String);

/// The directed links a grudge cuts: `x` not hearing from `y` cuts `y→x`.
pub fn cut_links(grudge: &Grudge) -> BTreeSet<Link> {
    grudge
        .iter()
        .flat_map(|(x, ys)| ys.iter().map(move |y| (y.clone(), x.clone())))
        .collect()
}

/// Every node of each component stops hearing from every node outside it.
fn complete_grudge(components: &[&[String]]) -> Grudge {
    let mut g = Grudge::new();
    for (i, comp) in components.iter().enumerate() {
        let others: BTreeSet<String> = components
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, c)| c.iter().cloned())
            .collect();
        for n in comp.iter() {
            g.insert(n.clone(), others.clone());
        }
    }
    g.retain(|_, s| !s.is_empty());
    g
}

/// The grudge of a partition topology over `nodes`, taken in the given order (the caller shuffles).
/// Node-set targets (`minority`, `all`) are not topologies and give `None`.
pub fn topology_grudge(t: Target, nodes: &[String]) -> Option<Grudge> {
    let n = nodes.len();
    let half = n / 2;
    Some(match t {
        // The first node alone, against the rest (for `leader`, the caller puts it first).
        Target::One | Target::Leader => complete_grudge(&[&nodes[..n.min(1)], &nodes[n.min(1)..]]),
        // ⌊n/2⌋ nodes against the rest.
        Target::Majority => complete_grudge(&[&nodes[..half], &nodes[half..]]),
        // Halves as `majority`; the first node of the second half keeps talking to everyone.
        Target::Bridge => {
            let mut g = complete_grudge(&[&nodes[..half], &nodes[half..]]);
            if let Some(bridge) = nodes.get(half) {
                g.remove(bridge);
                for s in g.values_mut() {
                    s.remove(bridge);
                }
                g.retain(|_, s| !s.is_empty());
            }
            g
        }
        // Nodes on a ring; each window of a majority's size gives its middle node the window as
        // the nodes it hears from (Jepsen's majorities-ring).
        Target::MajoritiesRing => {
            let m = n / 2 + 1;
            let mut g = Grudge::new();
            for i in 0..n {
                let window: BTreeSet<&String> = (0..m).map(|k| &nodes[(i + k) % n]).collect();
                let centre = nodes[(i + (m - 1) / 2) % n].clone();
                let blocked: BTreeSet<String> = nodes
                    .iter()
                    .filter(|x| !window.contains(x))
                    .cloned()
                    .collect();
                if !blocked.is_empty() {
                    g.insert(centre, blocked);
                }
            }
            g
        }
        Target::Minority | Target::All => return None,
    })
}

/// The nodes a pause or kill hits, from `nodes` in the given order (the caller shuffles).
pub fn target_nodes(t: Target, nodes: &[String]) -> Vec<String> {
    let n = nodes.len();
    let k = match t {
        Target::One | Target::Leader => 1,
        Target::Minority => n / 2,
        Target::Majority => n / 2 + 1,
        _ => n,
    };
    let mut out = nodes[..k.min(n)].to_vec();
    out.sort();
    out
}

/// One fault, fully decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    Partition {
        topology: Target,
        grudge: Grudge,
    },
    Pause {
        target: Target,
        nodes: Vec<String>,
    },
    Kill {
        target: Target,
        nodes: Vec<String>,
    },
    /// `pct` percent of the packets on each directed link `(from, to)` dropped.
    Loss {
        target: Target,
        links: BTreeSet<Link>,
        pct: f64,
    },
    /// `pct` percent of the packets on each directed link sent twice.
    Dup {
        target: Target,
        links: BTreeSet<Link>,
        pct: f64,
    },
    /// Each node's outgoing bandwidth limited to `kbit` kbit/s.
    Rate {
        target: Target,
        nodes: Vec<String>,
        kbit: f64,
    },
    /// The nodes killed and their unsynced writes dropped; restarted at the stop.
    PowerCut {
        target: Target,
        nodes: Vec<String>,
    },
    /// Each node's wall clock off by `offset_ms` in the way `mode` says (see [`clock::Mode`]).
    Clock {
        target: Target,
        nodes: Vec<String>,
        mode: clock::Mode,
        offset_ms: f64,
    },
    /// The configuration changed to `members`: `add` joined, `remove` left. A step, not a
    /// window: it starts and stops at once, and is never undone.
    Membership {
        change: membership::Change,
        add: Vec<String>,
        remove: Vec<String>,
        members: Vec<String>,
    },
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Partition { .. } => FaultKind::Partition,
            Fault::Pause { .. } => FaultKind::Pause,
            Fault::Kill { .. } => FaultKind::Kill,
            Fault::Loss { .. } => FaultKind::Loss,
            Fault::Dup { .. } => FaultKind::Dup,
            Fault::Rate { .. } => FaultKind::Rate,
            Fault::PowerCut { .. } => FaultKind::PowerCut,
            Fault::Clock { .. } => FaultKind::Clock,
            Fault::Membership { .. } => FaultKind::Membership,
        }
    }

    /// The target (for a partition, its topology) it was drawn for.
    pub fn target(&self) -> Target {
        match self {
            Fault::Partition { topology, .. } => *topology,
            Fault::Pause { target, .. }
            | Fault::Kill { target, .. }
            | Fault::Loss { target, .. }
            | Fault::Dup { target, .. }
            | Fault::Rate { target, .. }
            | Fault::PowerCut { target, .. } => *target,
            Fault::Clock { target, .. } => *target,
            Fault::Membership { .. } => Target::One,
        }
    }

    /// A short description for the progress line and the log.
    pub fn describe(&self) -> String {
        match self {
            Fault::Partition { topology, grudge } => {
                format!(
                    "partition {topology} ({} links cut)",
                    cut_links(grudge).len()
                )
            }
            Fault::Pause { nodes, .. } => format!("pause {}", nodes.join(",")),
            Fault::Kill { nodes, .. } => format!("kill {}", nodes.join(",")),
            Fault::Loss { target, links, pct } => {
                format!("loss {pct}% {target} ({} links)", links.len())
            }
            Fault::Dup { target, links, pct } => {
                format!("dup {pct}% {target} ({} links)", links.len())
            }
            Fault::Rate { nodes, kbit, .. } => format!("rate {kbit} kbit/s {}", nodes.join(",")),
            Fault::PowerCut { nodes, .. } => format!("power-cut {}", nodes.join(",")),
            Fault::Clock {
                nodes,
                mode,
                offset_ms,
                ..
            } => format!(
                "clock {} {}",
                clock::label(*mode, *offset_ms),
                nodes.join(",")
            ),
            Fault::Membership { change, .. } => membership::describe(*change, self),
        }
    }
}

/// A fault held from `start_s` to `stop_s` seconds after the test started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub start_s: f64,
    pub stop_s: f64,
    #[serde(flatten)]
    pub fault: Fault,
}

/// What `schedule.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub seed: u64,
    pub nodes: Vec<String>,
    pub nemesis: Kinds,
    pub targets: Targets,
    pub interval_s: f64,
    pub time_limit_s: f64,
    pub windows: Vec<Window>,
    /// The nodes started outside the first configuration (`--spare`); none in older files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spares: Vec<String>,
}

/// What [`generate`] needs.
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    pub seed: u64,
    pub nodes: &'a [String],
    pub kinds: &'a Kinds,
    pub targets: &'a Targets,
    pub interval_s: f64,
    pub time_limit_s: f64,
    /// This run's turn among a suite's runs of the same faults (`--nemesis-turn`), if any.
    pub turn: Option<u32>,
    /// The nodes (of `nodes`) that are not members at the start (`--spare`).
    pub spares: &'a [String],
}

impl Plan<'_> {
    /// The first configuration: every node that is not a spare, in `nodes` order.
    pub fn members(&self) -> Vec<String> {
        let spare = |n: &String| self.spares.contains(n);
        self.nodes.iter().filter(|n| !spare(n)).cloned().collect()
    }
}

/// The shortest `--nemesis-interval`: periods last `interval × U(0.5, 1.5)` and times are kept
/// in milliseconds, so anything shorter would only make empty windows.
pub const MIN_INTERVAL_S: f64 = 0.01;
/// The most quiet and faulty periods one schedule may have (`--time-limit` / `--nemesis-interval`),
/// so building it stays quick and small.
pub const MAX_PERIODS: f64 = 100_000.0;

/// Refuses a schedule of more than [`MAX_PERIODS`] periods; nothing to check without faults.
pub fn check_periods(kinds: &Kinds, time_limit_s: f64, interval_s: f64) -> Result<(), String> {
    let periods = time_limit_s / interval_s;
    if kinds.0.is_empty() || periods <= MAX_PERIODS {
        return Ok(());
    }
    let show = crate::duration::show;
    Err(format!(
        "--time-limit {} with --nemesis-interval {} makes {} fault periods; at most \
         {MAX_PERIODS} (raise --nemesis-interval to at least {})",
        show(time_limit_s),
        show(interval_s),
        show(periods.round()),
        show(time_limit_s / MAX_PERIODS)
    ))
}

/// Checks that every fault kind has at least one target it can use; the error names the flags.
pub fn validate(kinds: &Kinds, targets: &Targets, interval_s: f64) -> Result<(), String> {
    if !(interval_s.is_finite() && interval_s >= MIN_INTERVAL_S) {
        return Err(format!(
            "--nemesis-interval {}: must be at least {MIN_INTERVAL_S} seconds \
             (fault times have millisecond resolution)",
            crate::duration::show(interval_s)
        ));
    }
    for k in &kinds.0 {
        if !targets.0.iter().any(|t| k.applicable(*t)) {
            let fit: Vec<&str> = Target::ALL
                .into_iter()
                .filter(|t| k.applicable(*t))
                .map(Target::name)
                .collect();
            return Err(format!(
                "--nemesis-targets {targets} gives '{k}' nothing to do: add one of {}",
                fit.join(", ")
            ));
        }
    }
    Ok(())
}

/// Materializes the schedule: quiet and faulty periods alternate, starting quiet, each lasting
/// `interval × U(0.5, 1.5)` seconds; every kind gets a window before any repeats, and each kind's
/// targets take turns (see [`draw`]). Windows end by `time_limit`. Deterministic in the seed.
pub fn generate(p: &Plan) -> Result<Schedule, String> {
    generate_with(p, &packet::Amounts::default())
}

/// As [`generate`], with the amounts packet faults use (`--nemesis-loss`, ...).
pub fn generate_with(p: &Plan, amounts: &packet::Amounts) -> Result<Schedule, String> {
    validate(p.kinds, p.targets, p.interval_s)?;
    check_periods(p.kinds, p.time_limit_s, p.interval_s)?;
    draw::check_fit(p, amounts)?;
    // A stream of its own, so the clients' use of the seed does not shift the faults.
    let mut rng = StdRng::seed_from_u64(p.seed ^ 0x6e65_6d65_7369_7321);
    let windows = draw::windows(p, amounts, &mut rng);
    Ok(Schedule {
        seed: p.seed,
        nodes: p.nodes.to_vec(),
        nemesis: p.kinds.clone(),
        targets: p.targets.clone(),
        interval_s: p.interval_s,
        time_limit_s: p.time_limit_s,
        windows,
        spares: p.spares.to_vec(),
    })
}

/// The fault of `kind` on `target` over `order`, or `None` if it would hit nothing.
pub(crate) fn make_fault(
    kind: FaultKind,
    target: Target,
    order: &[String],
    amounts: &packet::Amounts,
) -> Option<Fault> {
    let fault = match kind {
        FaultKind::Partition => Fault::Partition {
            topology: target,
            grudge: topology_grudge(target, order).filter(|g| !g.is_empty())?,
        },
        FaultKind::Pause => Fault::Pause {
            target,
            nodes: Some(target_nodes(target, order)).filter(|n| !n.is_empty())?,
        },
        FaultKind::Kill => Fault::Kill {
            target,
            nodes: Some(target_nodes(target, order)).filter(|n| !n.is_empty())?,
        },
        FaultKind::PowerCut => Fault::PowerCut {
            target,
            nodes: Some(target_nodes(target, order)).filter(|n| !n.is_empty())?,
        },
        FaultKind::Loss | FaultKind::Dup | FaultKind::Rate => {
            return packet::make_fault(kind, target, order, amounts)
        }
        FaultKind::Clock => clock::make_fault(target, order)?,
        FaultKind::Membership => return None,
    };
    Some(fault)
}

fn millis(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

impl Schedule {
    /// Writes `schedule.json`.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).expect("schedules serialize");
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads a `schedule.json`, checking that it fits a cluster of `nodes`.
    pub fn load(path: &Path) -> Result<Schedule, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let s: Schedule = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}:{}:{}: not a schedule: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        s.check_nodes(&s.nodes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(s)
    }

    /// Every node a window names must be one of `nodes`.
    pub fn check_nodes(&self, nodes: &[String]) -> Result<(), String> {
        for (i, w) in self.windows.iter().enumerate() {
            let named: Vec<&String> = match &w.fault {
                Fault::Partition { grudge, .. } => grudge
                    .iter()
                    .flat_map(|(x, ys)| std::iter::once(x).chain(ys))
                    .collect(),
                Fault::Pause { nodes: ns, .. }
                | Fault::Kill { nodes: ns, .. }
                | Fault::Rate { nodes: ns, .. }
                | Fault::PowerCut { nodes: ns, .. } => ns.iter().collect(),
                Fault::Clock { nodes: ns, .. } => ns.iter().collect(),
                Fault::Membership {
                    add,
                    remove,
                    members,
                    ..
                } => add.iter().chain(remove).chain(members).collect(),
                Fault::Loss { links, .. } | Fault::Dup { links, .. } => {
                    links.iter().flat_map(|(a, b)| [a, b]).collect()
                }
            };
            if let Some(bad) = named.into_iter().find(|n| !nodes.contains(n)) {
                return Err(format!(
                    "window {i} names node '{bad}', which is not in the cluster ({})",
                    nodes.join(",")
                ));
            }
            let in_range = w.start_s >= 0.0 && w.stop_s <= crate::duration::MAX_SECS;
            if !(in_range && w.stop_s >= w.start_s) {
                return Err(format!(
                    "window {i} has start {} and stop {} (times are seconds from 0 to {})",
                    crate::duration::show(w.start_s),
                    crate::duration::show(w.stop_s),
                    crate::duration::MAX_SECS
                ));
            }
            packet::check_amount(&w.fault).map_err(|e| format!("window {i}: {e}"))?;
            clock::check_amount(&w.fault).map_err(|e| format!("window {i}: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
