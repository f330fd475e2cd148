//! Drawing configurations swarm-style: every free dimension of a `harness test` configuration
//! (one the user did not type) is drawn on its own, and list-valued ones (fault kinds, targets)
//! turn each member on with probability one half, so rare combinations come up as often as
//! common ones. [`Space::mutate`] redraws a few dimensions of a parent configuration.
//!
//! Two thirds of the fault draws are *focused* instead (see [`FOCUS`]): one fault kind on the targets that
//! take away what the cluster relies on (most or all of its acceptors at once, or its leader). A
//! plain swarm draw reaches those only through several coin flips at once, and then the schedule
//! spends most windows on milder targets. The regions come from a bag, each as often as its weight
//! before any repeats, so a short hunt gets every one. The op timeout is mostly drawn below the shortest fault
//! window, so clients give up on a stuck node while the fault still holds and ask again.

use crate::options::{Variant, DEFAULT_NODE_MAX_NODES};
use crate::proxy::PartitionMode;
use crate::schedule::{FaultKind, Kinds, Target, Targets};
use crate::test_args::TestArgs;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use workloads::Workload;

/// One thing a configuration can vary; its clap id (the `TestArgs` field it sets) tells whether
/// the user fixed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dim {
    Variant,
    Workload,
    Nodes,
    Concurrency,
    TimeLimit,
    OpTimeout,
    Kinds,
    Targets,
    Interval,
    PartitionMode,
    Latency,
    Spare,
}

impl Dim {
    const ALL: [Dim; 12] = [
        Dim::Variant,
        Dim::Workload,
        Dim::Nodes,
        Dim::Concurrency,
        Dim::TimeLimit,
        Dim::OpTimeout,
        Dim::Kinds,
        Dim::Targets,
        Dim::Interval,
        Dim::PartitionMode,
        Dim::Latency,
        Dim::Spare,
    ];

    fn name(self) -> &'static str {
        match self {
            Dim::Variant => "variant",
            Dim::Workload => "workload",
            Dim::Nodes => "nodes",
            Dim::Concurrency => "concurrency",
            Dim::TimeLimit => "time-limit",
            Dim::OpTimeout => "op-timeout",
            Dim::Kinds => "nemesis",
            Dim::Targets => "nemesis-targets",
            Dim::Interval => "nemesis-interval",
            Dim::PartitionMode => "partition-mode",
            Dim::Latency => "net-latency",
            Dim::Spare => "spare",
        }
    }

    /// The `TestArgs` field ids that, typed by the user, fix this dimension.
    fn ids(self) -> &'static [&'static str] {
        match self {
            Dim::Variant => &["variant", "node_bin"],
            Dim::Workload => &["workload"],
            Dim::Nodes => &["nodes"],
            Dim::Concurrency => &["concurrency"],
            Dim::TimeLimit => &["time_limit"],
            Dim::OpTimeout => &["op_timeout"],
            Dim::Kinds => &["nemesis"],
            Dim::Targets => &["nemesis_targets"],
            Dim::Interval => &["nemesis_interval"],
            Dim::PartitionMode => &["partition_mode"],
            Dim::Latency => &["net_latency", "net_jitter"],
            Dim::Spare => &["spare"],
        }
    }
}

/// Where configurations are drawn from: the user's options (the typed ones fixed) and bounds.
#[derive(Clone, Debug)]
pub struct Space {
    base: TestArgs,
    free: Vec<Dim>,
    min_nodes: usize,
    max_nodes: usize,
    max_run_time: f64,
    /// The fault kinds this machine and network mode can inject (see [`super::fault_kinds`]).
    kinds: Vec<FaultKind>,
    /// The focus regions still due in this round (indices into [`FOCUS`], each as many times as
    /// its weight): like the schedule's bags, every region comes up before any repeats, so a
    /// short hunt is not left without, say, a leader pause by a run of bad luck.
    focus_bag: Arc<Mutex<Vec<usize>>>,
    /// The focus regions the hunt's opening has yet to run, next first (`None`: not ordered
    /// yet); see [`Space::opening_due`].
    opening: Arc<Mutex<Option<Vec<usize>>>>,
}

const CONCURRENCY: [usize; 5] = [2, 4, 8, 16, 32];
const OP_TIMEOUT: [f64; 4] = [0.25, 0.5, 1.0, 2.0];
const INTERVAL: [f64; 6] = [0.5, 1.0, 1.5, 2.0, 3.0, 5.0];
const LATENCY_MS: [f64; 4] = [1.0, 2.0, 5.0, 10.0];
const RUN_TIME: [f64; 4] = [8.0, 12.0, 20.0, 30.0];

/// A focused fault region: the fault kinds it turns on, the only targets they get, a weight, and
/// the kinds it takes instead where the machine can inject them all (empty: none).
type Focus = (
    &'static [FaultKind],
    &'static [Target],
    u32,
    &'static [FaultKind],
);

/// The focused fault regions. Killing a majority or all nodes loses whatever an acceptor keeps
/// only in memory, and a power cut of all of them whatever it wrote but did not sync; pausing or
/// cutting off the leader makes a deposed leader that may go on believing it leads, and a clock
/// set wrong before the cut makes it believe longer; bridge and ring partitions give two leaders a
/// common acceptor; membership changes among partitions leave removed nodes beside a side of the
/// cut. The regions that cost the cluster its acceptors or its leader weigh most. A region whose
/// kinds the machine cannot inject is never drawn.
///
/// Where the machine has them, three regions take a stronger form that loses nothing the weaker
/// finds: a power cut is a SIGKILL that also drops unsynced writes (so it finds every bug a kill
/// of most or all nodes finds, and those of a missing fsync), and a leader cut preceded by a clock
/// fault on the same leader is still a leader cut; the kill of a majority alone stays a kill.
/// Measured in 10-minute hunts: with power cuts of all nodes at weight 1 among 15, `unsynced-wal`
/// took 97-555 s (median 380 s), at 3 among 17 a median of 152 s; docs/seeded-bugs.md.
const FOCUS: [Focus; 11] = [
    (
        &[FaultKind::Kill],
        &[Target::All],
        3,
        &[FaultKind::PowerCut],
    ),
    (&[FaultKind::Kill], &[Target::Majority], 1, &[]),
    (
        &[FaultKind::Kill],
        &[Target::Majority, Target::All],
        1,
        &[FaultKind::PowerCut],
    ),
    (&[FaultKind::Pause], &[Target::Leader], 3, &[]),
    (&[FaultKind::Pause], &[Target::Majority], 1, &[]),
    (
        &[FaultKind::Partition],
        &[Target::Leader],
        1,
        &[FaultKind::Clock, FaultKind::Partition],
    ),
    (&[FaultKind::Partition], &[Target::Bridge], 1, &[]),
    (&[FaultKind::Partition], &[Target::MajoritiesRing], 1, &[]),
    (&[FaultKind::PowerCut], &[Target::All], 1, &[]),
    (
        &[FaultKind::Clock, FaultKind::Partition],
        &[Target::Leader],
        3,
        &[],
    ),
    (
        &[FaultKind::Membership, FaultKind::Partition],
        &[Target::Majority, Target::Bridge],
        2,
        &[],
    ),
];
/// The spare nodes a run with membership changes gets when `--spare` is free: one to add, or
/// two so that a replace and an add can both happen.
const SPARES: [usize; 2] = [1, 2];
/// How often a fault draw is focused rather than a swarm subset.
const FOCUS_SHARE: f64 = 2.0 / 3.0;
/// How often a drawn op timeout longer than half the shortest window (a quarter of the interval) is redrawn
/// below it; the rest keep ops that outlast whole windows. Runs with leader faults always redraw:
/// in 10-minute lease-read hunts every find had a 0.5 s timeout, and the misses' leader pauses
/// mostly kept 2 s ones (docs/seeded-bugs.md).
const SHORT_TIMEOUT_SHARE: f64 = 0.75;
/// The fewest clients a run with leader faults gets when concurrency is free: a deposed leader's
/// stale answer needs a write acknowledged by the new leader and a read at the old one in the
/// same window, and the lease-read misses mostly had 2-4 clients.
const LEADER_FAULT_CLIENTS: usize = 8;
/// ... and the fewest per node: a woken leader answers only the reads waiting at it, one op per
/// client, a read one time in three (the plain command's reason for 20 clients,
/// docs/seeded-bugs.md).
const LEADER_FAULT_CLIENTS_PER_NODE: usize = 4;
/// The shortest op timeout a free one gets on the Basic variant with more clients than this:
/// every Basic op runs both phases and concurrent proposers back off from each other, so with
/// 16-32 clients, link latency and a 0.25 s timeout no op returned in time (runs with 0 ok ops,
/// unknown: one in the one-hour correct-node hunt, docs/seeded-bugs.md, and the first run of
/// the correct-node hunt test).
const BASIC_SHORT_TIMEOUT_CLIENTS: usize = 8;
const BASIC_MIN_TIMEOUT: f64 = 0.5;
/// The shortest interval for faults aimed at the leader: its windows (at least half the
/// interval) must outlast an election and leave the new leader time to take writes, or a deposed
/// leader never has anything to be stale about.
const FAILOVER_INTERVAL: f64 = 2.0;
/// Windows per run a free time limit is stretched to fit: a fault exposes a race only in some of
/// its windows, so a run with one or two of them mostly tests nothing.
const WINDOWS_PER_RUN: f64 = 6.0;

/// Whether the run's faults aim at a leader that exists: the Basic variant has none (every
/// node proposes), so a `leader` fault there hits the scheduled node and needs no failover.
fn leader_faults(a: &TestArgs) -> bool {
    let basic = a.node_bin.is_none() && a.variant == Variant::Basic;
    !basic && a.nemesis.nemesis_targets.0.contains(&Target::Leader)
}

impl Space {
    /// `typed`: the ids of the options the user typed (see [`super::args::typed_ids`]);
    /// `kinds`: the fault kinds that may be drawn.
    pub fn new(
        base: TestArgs,
        typed: &BTreeSet<String>,
        (min_nodes, max_nodes): (usize, usize),
        max_run_time: f64,
        kinds: Vec<FaultKind>,
    ) -> Space {
        let free = Dim::ALL
            .into_iter()
            .filter(|d| !d.ids().iter().any(|id| typed.contains(*id)))
            .filter(|d| *d != Dim::Variant || base.node_bin.is_none())
            .collect();
        Space {
            base,
            free,
            min_nodes,
            max_nodes,
            max_run_time,
            kinds,
            focus_bag: Arc::default(),
            opening: Arc::default(),
        }
    }

    /// The names of the dimensions drawn, for `--help`-like messages and hunt.json.
    pub fn free_names(&self) -> Vec<String> {
        self.free.iter().map(|d| d.name().to_string()).collect()
    }

    /// A fresh configuration: every free dimension drawn, with its own run seed.
    pub fn draw(&self, rng: &mut StdRng) -> TestArgs {
        let mut a = self.base.clone();
        for d in &self.free {
            // Kinds and targets are drawn together; spares follow from the kinds.
            if *d != Dim::Targets || !self.free.contains(&Dim::Kinds) {
                self.set(*d, &mut a, rng);
            }
        }
        a.seed = Some(rng.gen());
        self.repair(&mut a, rng);
        a
    }

    /// `parent` with one to three free dimensions redrawn and a new run seed.
    pub fn mutate(&self, parent: &TestArgs, rng: &mut StdRng) -> TestArgs {
        let mut a = parent.clone();
        let dims: Vec<Dim> = self
            .free
            .iter()
            .copied()
            .filter(|d| *d != Dim::Spare)
            .collect();
        let k = rng.gen_range(1..=3).min(dims.len());
        for d in dims.choose_multiple(rng, k) {
            self.set(*d, &mut a, rng);
        }
        a.seed = Some(rng.gen());
        self.repair(&mut a, rng);
        a
    }

    /// Makes a drawn configuration valid: every fault kind gets a target it can use (one added
    /// at random when the drawn targets give it none; a kind is dropped instead when the user
    /// fixed the targets); the targets never end up empty.
    fn repair(&self, a: &mut TestArgs, rng: &mut StdRng) {
        let targets_free = self.free.contains(&Dim::Targets);
        let n = &mut a.nemesis;
        if !targets_free {
            let t = n.nemesis_targets.0.clone();
            n.nemesis.0.retain(|k| t.iter().any(|t| k.applicable(*t)));
        }
        for k in n.nemesis.0.clone() {
            if !n.nemesis_targets.0.iter().any(|t| k.applicable(*t)) {
                let fit: Vec<Target> = Target::ALL
                    .into_iter()
                    .filter(|t| k.applicable(*t))
                    .collect();
                n.nemesis_targets.0.push(*fit.choose(rng).unwrap());
            }
        }
        if n.nemesis_targets.0.is_empty() {
            n.nemesis_targets = Targets::default();
        }
        n.nemesis_targets.0.sort();
        n.nemesis.0.sort();
        self.fit_spares(a, rng);
        self.fit_members(a);
        self.fit_workload(a);
        self.fit_windows(a);
        self.fit_interval(a);
        self.shorten_op_timeout(a, rng);
        self.fit_leader_clients(a, rng);
        self.fit_leader_latency(a, rng);
        self.fit_basic_timeout(a);
    }

    /// Spare nodes exactly when membership changes are drawn: a free `--spare` gets one or two
    /// with them and none without (spares outside the configuration only cost processes); a
    /// typed `--spare 0` drops membership changes, which need a node to add.
    fn fit_spares(&self, a: &mut TestArgs, rng: &mut StdRng) {
        let membership = a.nemesis.nemesis.0.contains(&FaultKind::Membership);
        if self.free.contains(&Dim::Spare) {
            a.spare = match membership {
                false => 0,
                true if a.spare == 0 => *SPARES.choose(rng).unwrap(),
                true => a.spare,
            };
            if a.node_bin.is_none() {
                a.spare = a.spare.min(DEFAULT_NODE_MAX_NODES.saturating_sub(a.nodes));
            }
        }
        if a.spare == 0 {
            a.nemesis.nemesis.0.retain(|k| *k != FaultKind::Membership);
        }
    }

    /// A free workload is kv when the faults can lose acknowledged writes (kills or power cuts
    /// of a majority or all nodes, membership changes) or make a deposed leader or a second one
    /// (faults on the leader, bridge and ring partitions): kv reads every key back from every
    /// node at the end and gives each key few writers, where on the one register a lost write is
    /// soon overwritten and a stale read mostly returns a value some write could have left. In
    /// 10-minute `unsynced-wal` hunts, the power cuts of all nodes drawn on the register found
    /// nothing; over 80 hunts of all eight seeded bugs, 3 of 58 register runs found their bug and
    /// 76 of 306 kv runs; leader pauses on `lease-read` found it in 0 of 8 register runs and 5 of
    /// 8 kv runs (seeds 1-8, docs/seeded-bugs.md).
    fn fit_workload(&self, a: &mut TestArgs) {
        let n = &a.nemesis;
        let crash = |k: &FaultKind| matches!(k, FaultKind::Kill | FaultKind::PowerCut);
        let most = |t: &Target| matches!(t, Target::Majority | Target::All);
        let loses = n.nemesis.0.contains(&FaultKind::Membership)
            || (n.nemesis.0.iter().any(crash) && n.nemesis_targets.0.iter().any(most));
        let two_leaders =
            |t: &Target| matches!(t, Target::Leader | Target::Bridge | Target::MajoritiesRing);
        let stale = !n.nemesis.0.is_empty() && n.nemesis_targets.0.iter().any(two_leaders);
        if (loses || stale) && self.free.contains(&Dim::Workload) {
            a.workload = Workload::Kv;
        }
    }

    /// A free even node count is made odd (one less, or one more at the lower bound) when
    /// membership changes are drawn or faults aim at the leader. Membership: two quorums of q
    /// among n nodes with no member in common need 2q - n votes from outside the configuration (a
    /// removed node, say), one in an odd cluster and two in an even one, so the even one hides
    /// what a single change exposes; `removed-vote` was found by membership runs on 3 nodes in 6
    /// of 6, on 5 in 3 of 4, on 4 in 1 of 6. The leader (measured, the cause not pinned down):
    /// runs of leader pauses found `lease-read` in 13 of 16 on 3 or 5 nodes and 4 of 8 on 4, clock
    /// faults with leader partitions `clock-lease` in 9 of 16 and 3 of 8 (docs/seeded-bugs.md).
    fn fit_members(&self, a: &mut TestArgs) {
        let membership = a.nemesis.nemesis.0.contains(&FaultKind::Membership);
        let wanted = membership || leader_faults(a);
        if !wanted || !self.free.contains(&Dim::Nodes) || a.nodes % 2 == 1 {
            return;
        }
        if a.nodes > self.min_nodes {
            a.nodes -= 1;
        } else if a.nodes < self.max_nodes {
            a.nodes += 1;
        }
    }

    /// A free link latency is dropped from half the runs that pause the leader, so a quarter of
    /// them keep one: latency is what swarm testing calls a suppressor of the stale reads a woken
    /// leader gives. Leader-pause runs (kv, 12 s, 16-32 clients, op timeout 0.5 s, interval 2,
    /// seeds 1-6 on 3 and 5 nodes) found `lease-read` in 9 of 12 without latency and 2 of 12
    /// with 5 ms; clock faults with leader partitions found `clock-lease` in 8 of 12 either way
    /// (docs/seeded-bugs.md), so those keep theirs.
    fn fit_leader_latency(&self, a: &mut TestArgs, rng: &mut StdRng) {
        let n = &a.nemesis;
        let paused = n.nemesis.0.contains(&FaultKind::Pause);
        let latency = n.net_latency > 0.0 || n.net_jitter > 0.0;
        let free = self.free.contains(&Dim::Latency);
        if free && paused && latency && leader_faults(a) && rng.gen_bool(0.5) {
            (a.nemesis.net_latency, a.nemesis.net_jitter) = (0.0, 0.0);
        }
    }

    /// A free concurrency below [`LEADER_FAULT_CLIENTS`], or below
    /// [`LEADER_FAULT_CLIENTS_PER_NODE`] per node, is redrawn among the ones above (the largest
    /// if none is) when the leader is a target.
    fn fit_leader_clients(&self, a: &mut TestArgs, rng: &mut StdRng) {
        let wanted = LEADER_FAULT_CLIENTS.max(LEADER_FAULT_CLIENTS_PER_NODE * a.nodes);
        if !self.free.contains(&Dim::Concurrency) || !leader_faults(a) || a.concurrency >= wanted {
            return;
        }
        let fit: Vec<usize> = CONCURRENCY.into_iter().filter(|c| *c >= wanted).collect();
        a.concurrency = fit
            .choose(rng)
            .copied()
            .unwrap_or(CONCURRENCY[CONCURRENCY.len() - 1]);
    }

    /// A free interval too long for one window of every kind in the run is lowered to the
    /// longest that fits (the test would refuse it).
    fn fit_interval(&self, a: &mut TestArgs) {
        let kinds = a.nemesis.nemesis.0.len().max(1) as f64;
        if !self.free.contains(&Dim::Interval) || kinds * a.nemesis.nemesis_interval <= a.time_limit
        {
            return;
        }
        if let Some(v) = INTERVAL
            .into_iter()
            .rev()
            .find(|v| kinds * v <= a.time_limit)
        {
            a.nemesis.nemesis_interval = v;
        }
    }

    /// Free interval and time limit made to fit the faults: leader faults get windows longer than
    /// a failover, and the run gets [`WINDOWS_PER_RUN`] windows where `--max-run-time` allows.
    fn fit_windows(&self, a: &mut TestArgs) {
        let n = &mut a.nemesis;
        if n.nemesis.0.is_empty() {
            return;
        }
        if self.free.contains(&Dim::Interval)
            && n.nemesis_targets.0.contains(&Target::Leader)
            && n.nemesis_interval < FAILOVER_INTERVAL
        {
            n.nemesis_interval = FAILOVER_INTERVAL;
        }
        if self.free.contains(&Dim::TimeLimit) {
            let wanted = n.nemesis_interval * WINDOWS_PER_RUN;
            if a.time_limit < wanted {
                let fit = RUN_TIME
                    .into_iter()
                    .find(|t| *t >= wanted)
                    .unwrap_or(wanted);
                a.time_limit = fit.min(self.max_run_time).max(a.time_limit);
            }
        }
    }

    /// A free op timeout above half the shortest fault window (which is half the interval) is
    /// mostly redrawn among the ones below: a client must give up on a stuck node and ask again
    /// while the fault still holds, with time left for that second op to go wrong.
    fn shorten_op_timeout(&self, a: &mut TestArgs, rng: &mut StdRng) {
        let short = a.nemesis.nemesis_interval / 4.0;
        if !self.free.contains(&Dim::OpTimeout) || a.op_timeout <= short {
            return;
        }
        let leader = leader_faults(a);
        let fit: Vec<f64> = OP_TIMEOUT.into_iter().filter(|t| *t <= short).collect();
        if let Some(t) = fit
            .choose(rng)
            .filter(|_| leader || rng.gen_bool(SHORT_TIMEOUT_SHARE))
        {
            a.op_timeout = *t;
        }
    }

    /// A free op timeout below [`BASIC_MIN_TIMEOUT`] is raised to it on the Basic variant with
    /// more than [`BASIC_SHORT_TIMEOUT_CLIENTS`] clients.
    fn fit_basic_timeout(&self, a: &mut TestArgs) {
        let basic = a.node_bin.is_none() && a.variant == Variant::Basic;
        if basic
            && self.free.contains(&Dim::OpTimeout)
            && a.concurrency > BASIC_SHORT_TIMEOUT_CLIENTS
            && a.op_timeout < BASIC_MIN_TIMEOUT
        {
            a.op_timeout = BASIC_MIN_TIMEOUT;
        }
    }

    /// Fault kinds and targets. Both free: drawn together, focused or a swarm subset each. One
    /// of them typed: the other is drawn to fit it (a focus region of a typed kind, or a subset).
    fn set_faults(&self, d: Dim, a: &mut TestArgs, rng: &mut StdRng) {
        let n = &mut a.nemesis;
        let kinds_free = self.free.contains(&Dim::Kinds);
        let targets_free = self.free.contains(&Dim::Targets);
        // Kinds free: a region whose every kind can be drawn. Kinds typed: one that shares a
        // kind with them (only its targets are taken).
        let allowed = |i: &usize| {
            let kinds = FOCUS[*i].0;
            if kinds_free {
                kinds.iter().all(|k| self.kinds.contains(k))
            } else {
                kinds.iter().any(|k| n.nemesis.0.contains(k))
            }
        };
        let any_focus = (0..FOCUS.len()).any(|i| allowed(&i));
        let region = match targets_free && any_focus {
            true => self.opening_focus(allowed, rng).or_else(|| {
                rng.gen_bool(FOCUS_SHARE)
                    .then(|| self.next_focus(allowed, rng))
            }),
            false => None,
        };
        if let Some(region) = region {
            let (kinds, targets, _, stronger) = FOCUS[region];
            if kinds_free {
                let drawable =
                    !stronger.is_empty() && stronger.iter().all(|k| self.kinds.contains(k));
                n.nemesis = Kinds(if drawable { stronger } else { kinds }.to_vec());
            }
            n.nemesis_targets = Targets(targets.to_vec());
            return;
        }
        if kinds_free && (d == Dim::Kinds || targets_free) {
            n.nemesis = Kinds(subset(&self.kinds, rng));
        }
        if targets_free {
            n.nemesis_targets = Targets(subset(&Target::ALL, rng));
        }
    }

    /// Whether the hunt is still in its opening: a fresh focused draw of every focus region the
    /// machine and the typed options allow, one each, before any swarm draw or mutation, heaviest
    /// first (ties in random order). Without it a region of weight 2 in 18 met its first run after
    /// 5-20 runs (`removed-vote`'s membership changes, docs/seeded-bugs.md); with it, within the
    /// first 11. Drawn by weight (without replacement) instead, a given weight-3 region came
    /// at run 4.2 on average (now 2), often after the ones that cannot find what it finds.
    pub fn opening_due(&self) -> bool {
        if !self.free.contains(&Dim::Targets) {
            return false;
        }
        match &*self.opening.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(left) => !left.is_empty(),
            None => (0..FOCUS.len()).any(|i| self.allowed_for_base(i)),
        }
    }

    /// Whether region `i` can be drawn with the user's options as typed.
    fn allowed_for_base(&self, i: usize) -> bool {
        let kinds = FOCUS[i].0;
        match self.free.contains(&Dim::Kinds) {
            true => kinds.iter().all(|k| self.kinds.contains(k)),
            false => kinds
                .iter()
                .any(|k| self.base.nemesis.nemesis.0.contains(k)),
        }
    }

    /// The opening's next region, if it has one left (see [`Space::opening_due`]).
    fn opening_focus(&self, allowed: impl Fn(&usize) -> bool, rng: &mut StdRng) -> Option<usize> {
        let mut opening = self.opening.lock().unwrap_or_else(|p| p.into_inner());
        let left = opening.get_or_insert_with(|| {
            let mut order: Vec<usize> = (0..FOCUS.len()).filter(|i| allowed(i)).collect();
            order.shuffle(rng);
            // Stable: ties keep their shuffled order. Lightest first, as `pop` takes the last.
            order.sort_by_key(|i| FOCUS[*i].2);
            self.refill_after_opening(&order, rng);
            order
        });
        left.retain(|i| allowed(i));
        left.pop()
    }

    /// Counts the opening as the first draws of the bag's first round: that round then holds
    /// only the heavier regions' further copies, so they come back soon after it, where a
    /// fresh round would leave a weight-2 region's second run anywhere in the next 27 or so
    /// (`removed-vote` hunts whose one opening membership run missed took 6 minutes;
    /// docs/seeded-bugs.md).
    fn refill_after_opening(&self, opening: &[usize], rng: &mut StdRng) {
        let mut bag = self.focus_bag.lock().unwrap_or_else(|p| p.into_inner());
        if !bag.is_empty() {
            return;
        }
        for (i, f) in FOCUS.iter().enumerate() {
            let n = f.2 as usize - opening.contains(&i) as usize;
            bag.extend(std::iter::repeat_n(i, n));
        }
        bag.shuffle(rng);
    }

    /// The next allowed focus region from the bag, refilled (weights as multiplicities,
    /// shuffled) when it holds none.
    fn next_focus(&self, allowed: impl Fn(&usize) -> bool, rng: &mut StdRng) -> usize {
        let mut bag = self.focus_bag.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(at) = bag.iter().rposition(&allowed) {
                return bag.remove(at);
            }
            *bag = FOCUS
                .iter()
                .enumerate()
                .flat_map(|(i, f)| std::iter::repeat_n(i, f.2 as usize))
                .collect();
            bag.shuffle(rng);
        }
    }

    fn set(&self, d: Dim, a: &mut TestArgs, rng: &mut StdRng) {
        let n = &mut a.nemesis;
        match d {
            Dim::Variant => a.variant = *[Variant::Basic, Variant::Multi].choose(rng).unwrap(),
            // kv three times in four: its keys are read back from every node at the end, so a
            // lost write stays visible; on the one register it is soon overwritten.
            Dim::Workload => {
                a.workload = if rng.gen_bool(0.75) {
                    Workload::Kv
                } else {
                    Workload::Register
                }
            }
            Dim::Nodes => a.nodes = rng.gen_range(self.min_nodes..=self.max_nodes),
            Dim::Concurrency => a.concurrency = *CONCURRENCY.choose(rng).unwrap(),
            Dim::TimeLimit => {
                let fit: Vec<f64> = RUN_TIME
                    .into_iter()
                    .filter(|t| *t <= self.max_run_time)
                    .collect();
                a.time_limit = fit.choose(rng).copied().unwrap_or(self.max_run_time);
            }
            Dim::OpTimeout => a.op_timeout = *OP_TIMEOUT.choose(rng).unwrap(),
            Dim::Kinds | Dim::Targets => self.set_faults(d, a, rng),
            // Drawn with the kinds, in `fit_spares`.
            Dim::Spare => {}
            Dim::Interval => n.nemesis_interval = *INTERVAL.choose(rng).unwrap(),
            Dim::PartitionMode => {
                n.partition_mode = *[PartitionMode::Silent, PartitionMode::Reset]
                    .choose(rng)
                    .unwrap()
            }
            Dim::Latency => {
                if rng.gen_bool(0.5) {
                    (n.net_latency, n.net_jitter) = (0.0, 0.0);
                } else {
                    n.net_latency = *LATENCY_MS.choose(rng).unwrap();
                    n.net_jitter = n.net_latency * rng.gen_range(0..=2) as f64 / 4.0;
                }
            }
        }
    }
}

/// Each member with probability one half (swarm testing's feature omission).
fn subset<T: Copy>(all: &[T], rng: &mut StdRng) -> Vec<T> {
    all.iter().copied().filter(|_| rng.gen_bool(0.5)).collect()
}

/// The faults a configuration can inject, with the targets each may hit, e.g.
/// `kill@majority+all,pause@leader`: availability is bucketed per such label, so taking the
/// cluster down with a new fault and target counts as new coverage.
pub fn fault_label(a: &TestArgs) -> String {
    let n = &a.nemesis;
    let label: Vec<String> = n
        .nemesis
        .0
        .iter()
        .map(|k| {
            let ts: Vec<&str> = n
                .nemesis_targets
                .0
                .iter()
                .filter(|t| k.applicable(**t))
                .map(|t| t.name())
                .collect();
            format!("{k}@{}", ts.join("+"))
        })
        .collect();
    if label.is_empty() {
        "none".into()
    } else {
        label.join(",")
    }
}

/// The features a configuration turns on, as short labels (for the report's table of which
/// features the finding runs had).
pub fn features(a: &TestArgs) -> Vec<String> {
    let n = &a.nemesis;
    let mut f = vec![
        format!("variant={}", a.variant.as_str()),
        format!("workload={}", crate::options::workload_name(a.workload)),
        format!("nodes={}", a.nodes),
        format!("concurrency={}", a.concurrency),
        format!("op-timeout={}", a.op_timeout),
    ];
    if n.nemesis.0.is_empty() {
        f.push("no-faults".into());
    } else {
        f.extend(n.nemesis.0.iter().map(|k| k.name().to_string()));
        f.extend(
            n.nemesis_targets
                .0
                .iter()
                .filter(|t| n.nemesis.0.iter().any(|k| k.applicable(**t)))
                .map(|t| format!("target={t}")),
        );
        f.push(format!("interval={}", n.nemesis_interval));
    }
    if a.spare > 0 {
        f.push(format!("spare={}", a.spare));
    }
    if n.partition_mode == PartitionMode::Reset && n.nemesis.0.contains(&FaultKind::Partition) {
        f.push("partition-mode=reset".into());
    }
    if n.net_latency > 0.0 {
        f.push("latency".into());
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn space(typed: &[&str], base: TestArgs) -> Space {
        let typed = typed.iter().map(|s| s.to_string()).collect();
        let kinds = [
            FaultKind::ALL.as_slice(),
            &FaultKind::NODE,
            &[FaultKind::Membership],
        ]
        .concat();
        Space::new(base, &typed, (3, 5), 20.0, kinds)
    }

    fn json(a: &TestArgs) -> serde_json::Value {
        serde_json::to_value(a).unwrap()
    }

    #[test]
    fn drawing_is_deterministic_for_a_seed() {
        // A fresh space each time: its focus bag is part of the hunt's state.
        let draw = |seed| {
            let s = space(&[], TestArgs::default());
            let mut rng = StdRng::seed_from_u64(seed);
            let a: Vec<_> = (0..5).map(|_| json(&s.draw(&mut rng))).collect();
            let first = s.draw(&mut rng);
            (a, json(&s.mutate(&first, &mut rng)))
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn drawn_configurations_vary_stay_in_bounds_and_are_valid() {
        let s = space(&[], TestArgs::default());
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            let a = s.draw(&mut rng);
            a.validate().unwrap_or_else(|e| panic!("{e:#}: {a:?}"));
            assert!((3..=5).contains(&a.nodes));
            assert!(a.time_limit <= 20.0);
            seen.insert(features(&a).join(" "));
        }
        assert!(seen.len() > 150, "swarm draws differ: {}", seen.len());
    }

    #[test]
    fn the_hard_fault_regions_are_drawn_often() {
        let s = space(&[], TestArgs::default());
        let mut rng = StdRng::seed_from_u64(7);
        let draws = 1000;
        let (mut kill_most, mut pause_leader) = (0, 0);
        for _ in 0..draws {
            let a = s.draw(&mut rng);
            let n = &a.nemesis;
            let only = |k, ts: &[Target]| {
                n.nemesis.0 == [k] && n.nemesis_targets.0.iter().all(|t| ts.contains(t))
            };
            // Where power cuts can be injected, the kill-all regions cut the power instead.
            kill_most += (only(FaultKind::Kill, &[Target::Majority, Target::All])
                || only(FaultKind::PowerCut, &[Target::Majority, Target::All]))
                as usize;
            // Lost writes stay visible: read back from every node at the end.
            if kill_most > 0 && only(FaultKind::PowerCut, &[Target::All]) {
                assert_eq!(a.workload, Workload::Kv, "{a:?}");
            }
            // The pause outlasts the op timeout: a client gives up and asks the paused node again.
            pause_leader += (only(FaultKind::Pause, &[Target::Leader])
                && a.op_timeout < n.nemesis_interval / 2.0) as usize;
        }
        assert!(
            kill_most * 10 > draws,
            "kill most or all: {kill_most}/{draws}"
        );
        assert!(
            pause_leader * 25 > draws,
            "pause leader: {pause_leader}/{draws}"
        );
    }

    #[test]
    fn the_opening_runs_every_allowed_focus_region_once_then_ends() {
        let s = space(&[], TestArgs::default());
        let mut rng = StdRng::seed_from_u64(5);
        assert!(s.opening_due());
        let mut seen: Vec<usize> = std::iter::from_fn(|| s.opening_focus(|_| true, &mut rng))
            .take(100)
            .collect();
        assert!(!s.opening_due());
        let weights: Vec<u32> = seen.iter().map(|i| FOCUS[*i].2).collect();
        assert!(weights.windows(2).all(|w| w[0] >= w[1]), "{weights:?}");
        seen.sort_unstable();
        assert_eq!(seen, (0..FOCUS.len()).collect::<Vec<_>>());
        // The rest of the first round: the heavier regions' further copies, then a full round.
        let extra: usize = FOCUS.iter().map(|f| f.2 as usize - 1).sum();
        let mut rest: Vec<usize> = (0..extra)
            .map(|_| s.next_focus(|_| true, &mut rng))
            .collect();
        rest.sort_unstable();
        let heavy: Vec<usize> = (0..FOCUS.len())
            .flat_map(|i| std::iter::repeat_n(i, FOCUS[i].2 as usize - 1))
            .collect();
        assert_eq!(rest, heavy);
        // Fresh draws use it up, one region each, and then the hunt may mutate.
        let s = space(&[], TestArgs::default());
        for _ in 0..FOCUS.len() {
            assert!(s.opening_due());
            let a = s.draw(&mut rng);
            assert!(!a.nemesis.nemesis.0.is_empty(), "{a:?}");
        }
        assert!(!s.opening_due());
        // Targets typed: no opening (no region can be drawn as it is).
        let typed = space(&["nemesis_targets"], TestArgs::default());
        assert!(!typed.opening_due());
    }

    #[test]
    fn every_focus_region_comes_up_by_its_weight_before_any_repeats() {
        let s = space(&[], TestArgs::default());
        let mut rng = StdRng::seed_from_u64(9);
        let round: usize = FOCUS.iter().map(|f| f.2 as usize).sum();
        for _ in 0..3 {
            let mut count = vec![0u32; FOCUS.len()];
            for _ in 0..round {
                count[s.next_focus(|_| true, &mut rng)] += 1;
            }
            let weights: Vec<u32> = FOCUS.iter().map(|f| f.2).collect();
            assert_eq!(count, weights);
        }
        // Only the kill regions allowed (the user typed --nemesis kill): they take turns alone.
        let kill = |i: &usize| FOCUS[*i].0 == [FaultKind::Kill];
        let kills: u32 = FOCUS
            .iter()
            .filter(|f| f.0 == [FaultKind::Kill])
            .map(|f| f.2)
            .sum();
        let mut count = vec![0u32; FOCUS.len()];
        for _ in 0..2 * kills {
            count[s.next_focus(kill, &mut rng)] += 1;
        }
        for (i, f) in FOCUS.iter().enumerate() {
            let want = if f.0 == [FaultKind::Kill] { 2 * f.2 } else { 0 };
            assert_eq!(count[i], want, "{f:?}");
        }
    }

    #[test]
    fn leader_faults_outlast_a_failover_with_short_timeouts_and_runs_hold_several_windows() {
        let s = space(&[], TestArgs::default());
        let mut rng = StdRng::seed_from_u64(11);
        let (mut leader, mut paused, mut slowed) = (0, 0, 0);
        for _ in 0..500 {
            let a = s.draw(&mut rng);
            let n = &a.nemesis;
            if n.nemesis.0.is_empty() {
                continue;
            }
            if a.variant == Variant::Basic && a.concurrency > BASIC_SHORT_TIMEOUT_CLIENTS {
                assert!(a.op_timeout >= BASIC_MIN_TIMEOUT, "{a:?}");
            }
            if n.nemesis_targets.0.contains(&Target::Leader) {
                assert!(n.nemesis_interval >= FAILOVER_INTERVAL, "{a:?}");
            }
            if leader_faults(&a) {
                leader += 1;
                assert!(a.nodes % 2 == 1, "leader faults on an odd cluster: {a:?}");
                if n.nemesis.0.contains(&FaultKind::Pause) {
                    paused += 1;
                    slowed += (n.net_latency > 0.0) as usize;
                }
                // A client gives up on the deposed leader and asks again inside the window.
                assert!(a.op_timeout <= n.nemesis_interval / 4.0, "{a:?}");
                let per_node = (LEADER_FAULT_CLIENTS_PER_NODE * a.nodes).min(32);
                assert!(a.concurrency >= LEADER_FAULT_CLIENTS.max(per_node), "{a:?}");
            }
            // Within the bound of 20 s a run: 6 windows, or as many as fit.
            let wanted = (n.nemesis_interval * WINDOWS_PER_RUN).min(20.0);
            assert!(a.time_limit >= wanted, "{a:?}");
        }
        assert!(leader > 25, "leader-targeted Multi draws: {leader}/500");
        // Link latency on about a quarter of the leader pauses (half of all other runs).
        assert!(paused > 20, "leader pauses: {paused}");
        assert!(
            slowed > 0 && slowed * 10 < paused * 4,
            "{slowed}/{paused} slowed"
        );
    }

    #[test]
    fn power_cuts_clock_faults_and_membership_changes_are_drawn_with_what_they_need() {
        let s = space(&[], TestArgs::default());
        let mut rng = StdRng::seed_from_u64(13);
        let (mut cut_all, mut clock_leader, mut membership) = (0, 0, 0);
        let mut parent = s.draw(&mut rng);
        for i in 0..600 {
            let a = if i % 2 == 0 {
                s.draw(&mut rng)
            } else {
                s.mutate(&parent, &mut rng)
            };
            a.validate().unwrap_or_else(|e| panic!("{e:#}: {a:?}"));
            let k = &a.nemesis.nemesis.0;
            let t = &a.nemesis.nemesis_targets.0;
            cut_all += (k == &[FaultKind::PowerCut] && t == &[Target::All]) as usize;
            clock_leader += (k.contains(&FaultKind::Clock) && t.contains(&Target::Leader)) as usize;
            let has = k.contains(&FaultKind::Membership);
            membership += has as usize;
            // Spares exactly when nodes are added and removed; the writes lost stay visible.
            assert_eq!(has, a.spare > 0, "{a:?}");
            assert!(!has || a.workload == Workload::Kv, "{a:?}");
            assert!(
                !has || a.nodes % 2 == 1,
                "membership on an odd cluster: {a:?}"
            );
            let stale = t
                .iter()
                .any(|t| matches!(t, Target::Leader | Target::Bridge | Target::MajoritiesRing));
            assert!(
                k.is_empty() || !stale || a.workload == Workload::Kv,
                "{a:?}"
            );
            parent = a;
        }
        assert!(cut_all > 15, "power cut all: {cut_all}/600");
        assert!(clock_leader > 30, "clock on the leader: {clock_leader}/600");
        assert!(membership > 30, "membership: {membership}/600");
    }

    #[test]
    fn kinds_the_machine_cannot_inject_are_never_drawn() {
        let typed = BTreeSet::new();
        let s = Space::new(
            TestArgs::default(),
            &typed,
            (3, 5),
            20.0,
            FaultKind::ALL.to_vec(),
        );
        let mut rng = StdRng::seed_from_u64(17);
        let mut kill_all = 0;
        for _ in 0..300 {
            let a = s.draw(&mut rng);
            let n = &a.nemesis;
            // Without power cuts, the region of all nodes at once kills them.
            kill_all +=
                (n.nemesis.0 == [FaultKind::Kill] && n.nemesis_targets.0 == [Target::All]) as usize;
            assert!(
                a.nemesis
                    .nemesis
                    .0
                    .iter()
                    .all(|k| FaultKind::ALL.contains(k)),
                "{a:?}"
            );
            assert_eq!(a.spare, 0);
        }
        assert!(kill_all > 10, "kill all: {kill_all}/300");
    }

    #[test]
    fn a_typed_spare_of_zero_leaves_membership_out() {
        let base = TestArgs::from_argv(["--spare", "0"]).unwrap();
        let s = space(&["spare"], base);
        let mut rng = StdRng::seed_from_u64(19);
        for _ in 0..300 {
            let a = s.draw(&mut rng);
            assert!(
                !a.nemesis.nemesis.0.contains(&FaultKind::Membership),
                "{a:?}"
            );
            a.validate().unwrap();
        }
    }

    #[test]
    fn fault_labels_name_kinds_with_their_targets() {
        let a = TestArgs::from_argv([
            "--nemesis",
            "kill,partition",
            "--nemesis-targets",
            "all,bridge",
        ])
        .unwrap();
        assert_eq!(fault_label(&a), "kill@all,partition@bridge");
        let none = TestArgs::from_argv(["--nemesis", "none"]).unwrap();
        assert_eq!(fault_label(&none), "none");
    }

    #[test]
    fn a_typed_fault_kind_gets_focused_targets() {
        let base = TestArgs::from_argv(["--nemesis", "kill"]).unwrap();
        let s = space(&["nemesis"], base);
        let mut rng = StdRng::seed_from_u64(5);
        let all_only = (0..200)
            .map(|_| s.draw(&mut rng))
            .filter(|a| a.nemesis.nemesis_targets.0 == [Target::All])
            .count();
        assert!(all_only > 20, "kill all alone: {all_only}/200");
    }

    #[test]
    fn typed_options_stay_fixed() {
        let base = TestArgs::from_argv([
            "--nodes",
            "7",
            "--workload",
            "kv",
            "--nemesis",
            "pause",
            "--",
            "--bug",
            "x",
        ])
        .unwrap();
        let s = space(&["nodes", "workload", "nemesis", "node_args"], base);
        let mut rng = StdRng::seed_from_u64(3);
        let first = s.draw(&mut rng);
        for a in [s.draw(&mut rng), s.mutate(&first, &mut rng)] {
            assert_eq!(a.nodes, 7);
            assert_eq!(a.workload, Workload::Kv);
            assert_eq!(a.nemesis.nemesis.0, [FaultKind::Pause]);
            assert_eq!(a.node_args, ["--bug", "x"]);
            a.validate().unwrap();
        }
        assert!(!s.free_names().contains(&"nodes".to_string()));
    }
}
