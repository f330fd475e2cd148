//! The fault schedule: which faults happen, to whom, and when, all decided up front from the run's
//! seed and saved as `schedule.json`, so a run can be replayed exactly (`harness test --replay`).
//! Pure functions only; [`crate::nemesis`] carries a schedule out.
//!
//! Partition topologies use Jepsen's names and shapes. A grudge maps each node to the nodes it
//! does not hear from; node `x` not hearing from `y` cuts the directed link `y→x` (see
//! [`cut_links`]).

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
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
}

impl FaultKind {
    pub const ALL: [FaultKind; 3] = [FaultKind::Partition, FaultKind::Pause, FaultKind::Kill];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Pause => "pause",
            FaultKind::Kill => "kill",
        }
    }

    /// The targets that make sense for this kind of fault.
    pub fn applicable(self, t: Target) -> bool {
        use Target::*;
        match self {
            FaultKind::Partition => matches!(t, One | Leader | Majority | MajoritiesRing | Bridge),
            FaultKind::Pause | FaultKind::Kill => {
                matches!(t, One | Leader | Minority | Majority | All)
            }
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

/// The faults of `--nemesis`: a comma-separated list of `partition`, `pause`, `kill`, or `none`.
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
                .find(|k| k.name() == part)
                .ok_or_else(|| {
                    format!("unknown fault '{part}': expected partition, pause, kill or none")
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
    Partition { topology: Target, grudge: Grudge },
    Pause { target: Target, nodes: Vec<String> },
    Kill { target: Target, nodes: Vec<String> },
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Partition { .. } => FaultKind::Partition,
            Fault::Pause { .. } => FaultKind::Pause,
            Fault::Kill { .. } => FaultKind::Kill,
        }
    }

    /// The target (for a partition, its topology) it was drawn for.
    pub fn target(&self) -> Target {
        match self {
            Fault::Partition { topology, .. } => *topology,
            Fault::Pause { target, .. } | Fault::Kill { target, .. } => *target,
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
/// `interval × U(0.5, 1.5)` seconds; each faulty period gets a random kind and a random target
/// applicable to it. Windows end by `time_limit`. Deterministic in the seed.
pub fn generate(p: &Plan) -> Result<Schedule, String> {
    validate(p.kinds, p.targets, p.interval_s)?;
    check_periods(p.kinds, p.time_limit_s, p.interval_s)?;
    // A stream of its own, so the clients' use of the seed does not shift the faults.
    let mut rng = StdRng::seed_from_u64(p.seed ^ 0x6e65_6d65_7369_7321);
    let mut windows = Vec::new();
    let mut t = 0.0;
    let mut faulty = false;
    let limit = p.time_limit_s;
    while !p.kinds.0.is_empty() && t < limit {
        let len = p.interval_s * rng.gen_range(0.5..1.5);
        if faulty && limit - t >= 0.1 {
            let mut order = p.nodes.to_vec();
            order.shuffle(&mut rng);
            // Only faults that do something on this cluster (a one-node cluster has no links
            // and no minority); kinds are equally likely, then targets.
            let options: Vec<Vec<Fault>> = p
                .kinds
                .0
                .iter()
                .map(|k| {
                    p.targets
                        .0
                        .iter()
                        .filter(|t| k.applicable(**t))
                        .filter_map(|t| make_fault(*k, *t, &order))
                        .collect::<Vec<_>>()
                })
                .filter(|fs| !fs.is_empty())
                .collect();
            if let Some(faults) = options.choose(&mut rng) {
                let fault = faults.choose(&mut rng).expect("not empty").clone();
                windows.push(Window {
                    start_s: millis(t),
                    stop_s: millis((t + len).min(limit)),
                    fault,
                });
            }
        }
        t += len;
        faulty = !faulty;
    }
    Ok(Schedule {
        seed: p.seed,
        nodes: p.nodes.to_vec(),
        nemesis: p.kinds.clone(),
        targets: p.targets.clone(),
        interval_s: p.interval_s,
        time_limit_s: p.time_limit_s,
        windows,
    })
}

/// The fault of `kind` on `target` over `order`, or `None` if it would hit nothing.
fn make_fault(kind: FaultKind, target: Target, order: &[String]) -> Option<Fault> {
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
                Fault::Pause { nodes: ns, .. } | Fault::Kill { nodes: ns, .. } => {
                    ns.iter().collect()
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
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn set(xs: &[&str]) -> BTreeSet<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    fn links(xs: &[(&str, &str)]) -> BTreeSet<Link> {
        xs.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// Every ordered pair across the two sides.
    fn across(a: &[&str], b: &[&str]) -> BTreeSet<Link> {
        let mut out = BTreeSet::new();
        for x in a {
            for y in b {
                out.insert((x.to_string(), y.to_string()));
                out.insert((y.to_string(), x.to_string()));
            }
        }
        out
    }

    #[test]
    fn one_isolates_the_first_node_both_ways() {
        let g = topology_grudge(Target::One, &nodes(5)).unwrap();
        assert_eq!(g["n1"], set(&["n2", "n3", "n4", "n5"]));
        assert_eq!(g["n3"], set(&["n1"]));
        assert_eq!(cut_links(&g), across(&["n1"], &["n2", "n3", "n4", "n5"]));
    }

    #[test]
    fn majority_splits_into_halves() {
        let g = topology_grudge(Target::Majority, &nodes(5)).unwrap();
        assert_eq!(cut_links(&g), across(&["n1", "n2"], &["n3", "n4", "n5"]));
        assert_eq!(cut_links(&g).len(), 12);
    }

    #[test]
    fn bridge_keeps_one_node_talking_to_both_halves() {
        let g = topology_grudge(Target::Bridge, &nodes(5)).unwrap();
        assert!(!g.contains_key("n3"));
        assert_eq!(cut_links(&g), across(&["n1", "n2"], &["n4", "n5"]));
    }

    #[test]
    fn majorities_ring_gives_each_node_a_different_majority() {
        for n in [3, 4, 5, 6, 7] {
            let ns = nodes(n);
            let g = topology_grudge(Target::MajoritiesRing, &ns).unwrap();
            let mut seen = BTreeSet::new();
            for x in &ns {
                let blocked = g.get(x).cloned().unwrap_or_default();
                let hears: BTreeSet<String> = ns
                    .iter()
                    .filter(|y| !blocked.contains(*y))
                    .cloned()
                    .collect();
                assert!(hears.contains(x), "n={n}: {x} hears itself");
                assert_eq!(hears.len(), n / 2 + 1, "n={n}: {x} hears a majority");
                if n > 3 {
                    assert!(seen.insert(hears), "n={n}: {x}'s majority is unique");
                }
            }
        }
        // n=5 on the ring n1..n5: each node hears its two neighbours.
        let g = topology_grudge(Target::MajoritiesRing, &nodes(5)).unwrap();
        assert_eq!(g["n1"], set(&["n3", "n4"]));
        assert_eq!(g["n3"], set(&["n1", "n5"]));
        assert_eq!(cut_links(&g).iter().filter(|(_, to)| to == "n1").count(), 2);
        assert!(cut_links(&g).contains(&("n3".to_string(), "n1".to_string())));
        assert!(!cut_links(&g).contains(&("n2".to_string(), "n1".to_string())));
    }

    #[test]
    fn cut_links_reverse_the_grudge() {
        let mut g = Grudge::new();
        g.insert("n1".into(), set(&["n2"]));
        assert_eq!(cut_links(&g), links(&[("n2", "n1")]));
    }

    #[test]
    fn node_targets_have_the_right_sizes() {
        let ns = nodes(5);
        assert_eq!(target_nodes(Target::One, &ns).len(), 1);
        assert_eq!(target_nodes(Target::Minority, &ns).len(), 2);
        assert_eq!(target_nodes(Target::Majority, &ns).len(), 3);
        assert_eq!(target_nodes(Target::All, &ns), ns);
        assert_eq!(topology_grudge(Target::All, &ns), None);
    }

    #[test]
    fn parse_lists() {
        assert_eq!("none".parse::<Kinds>().unwrap(), Kinds(vec![]));
        assert_eq!(
            "pause, kill".parse::<Kinds>().unwrap(),
            Kinds(vec![FaultKind::Pause, FaultKind::Kill])
        );
        let e = "partition,crash".parse::<Kinds>().unwrap_err();
        assert!(e.contains("'crash'"), "{e}");
        assert_eq!(
            "bridge,majorities-ring".parse::<Targets>().unwrap().0,
            vec![Target::Bridge, Target::MajoritiesRing]
        );
        assert!("ring".parse::<Targets>().is_err());
    }

    fn plan<'a>(ns: &'a [String], k: &'a Kinds, t: &'a Targets, seed: u64) -> Plan<'a> {
        Plan {
            seed,
            nodes: ns,
            kinds: k,
            targets: t,
            interval_s: 10.0,
            time_limit_s: 120.0,
        }
    }

    #[test]
    fn schedules_are_deterministic_alternating_and_bounded() {
        let ns = nodes(5);
        let k = Kinds(FaultKind::ALL.to_vec());
        let t = Targets::default();
        let a = generate(&plan(&ns, &k, &t, 42)).unwrap();
        assert_eq!(a, generate(&plan(&ns, &k, &t, 42)).unwrap());
        assert_ne!(a.windows, generate(&plan(&ns, &k, &t, 43)).unwrap().windows);
        assert!(a.windows.len() >= 3, "{:?}", a.windows);
        let mut prev_stop = 0.0;
        for w in &a.windows {
            // A quiet gap of at least half an interval before each fault.
            assert!(w.start_s >= prev_stop + 5.0 - 1e-9, "{w:?}");
            assert!(w.stop_s > w.start_s && w.stop_s <= 120.0, "{w:?}");
            assert!(w.stop_s - w.start_s <= 15.0 + 1e-9, "{w:?}");
            prev_stop = w.stop_s;
        }
        let kinds: BTreeSet<FaultKind> = generate(&plan(&ns, &k, &t, 7))
            .unwrap()
            .windows
            .iter()
            .chain(&a.windows)
            .map(|w| w.fault.kind())
            .collect();
        assert_eq!(kinds.len(), 3, "all kinds show up in two schedules");
    }

    #[test]
    fn schedules_respect_kinds_and_targets() {
        let ns = nodes(5);
        let k = Kinds(vec![FaultKind::Partition]);
        let t: Targets = "bridge,one".parse().unwrap();
        let s = generate(&plan(&ns, &k, &t, 1)).unwrap();
        assert!(!s.windows.is_empty());
        for w in &s.windows {
            match &w.fault {
                Fault::Partition { topology, .. } => {
                    assert!(matches!(topology, Target::Bridge | Target::One))
                }
                f => panic!("unexpected {f:?}"),
            }
        }
        let none = generate(&plan(&ns, &Kinds(vec![]), &t, 1)).unwrap();
        assert!(none.windows.is_empty());
        let ring: Targets = "bridge,majorities-ring".parse().unwrap();
        let e = generate(&plan(&ns, &Kinds(vec![FaultKind::Pause]), &ring, 1)).unwrap_err();
        assert!(
            e.contains("--nemesis-targets") && e.contains("pause"),
            "{e}"
        );
    }

    #[test]
    fn faults_that_would_hit_nothing_are_never_scheduled() {
        let one = nodes(1);
        let k = Kinds(FaultKind::ALL.to_vec());
        let t = Targets::default();
        let s = generate(&plan(&one, &k, &t, 3)).unwrap();
        assert!(!s.windows.is_empty());
        for w in &s.windows {
            match &w.fault {
                Fault::Pause { nodes, .. } | Fault::Kill { nodes, .. } => {
                    assert_eq!(nodes, &one, "{w:?}")
                }
                f => panic!("a one-node cluster cannot be partitioned: {f:?}"),
            }
        }
        let only_partitions = Kinds(vec![FaultKind::Partition]);
        assert!(generate(&plan(&one, &only_partitions, &t, 3))
            .unwrap()
            .windows
            .is_empty());
    }

    #[test]
    fn schedule_json_round_trips_and_is_checked() {
        let ns = nodes(3);
        let k = Kinds(FaultKind::ALL.to_vec());
        let t = Targets::default();
        let s = generate(&plan(&ns, &k, &t, 9)).unwrap();
        let dir = std::env::temp_dir().join(format!("schedule-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("schedule.json");
        s.save(&path).unwrap();
        assert_eq!(Schedule::load(&path).unwrap(), s);
        std::fs::write(&path, "{\"seed\": 1,\n \"nodes\": 3}").unwrap();
        let e = Schedule::load(&path).unwrap_err();
        assert!(e.contains("schedule.json:2:"), "{e}");
        let e = s.check_nodes(&nodes(2)).unwrap_err();
        assert!(e.contains("not in the cluster"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
