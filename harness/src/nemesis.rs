//! The nemesis: puts a proxy on every link before the nodes start, carries out the fault schedule
//! during the main phase (partitions through the proxies, SIGSTOP/SIGCONT pauses, SIGKILL and
//! restart), records every start and stop in the history, and heals everything for the final
//! phase. `--replay RUN_DIR` reruns a stored run with its configuration, seed and schedule.
//! With `--net netns`, partitions and the packet faults (`loss`, `dup`, `rate`) are kernel rules
//! inside the nodes' namespaces ([`crate::net::nft`], [`crate::net::packet`]). Clock faults go
//! through libfaketime control files ([`crate::clock`]).
//!
//! Each fault step runs in a task of its own under a lock, so aborting the schedule at the end of
//! the main phase never leaves a step half done: [`heal`] waits for it, then undoes what is left.

use crate::clock::Clocks;
use crate::cluster::{ClusterPlan, NodeState};
use crate::net::netns::NetNs;
use crate::net::nft::Firewall;
use crate::net::packet::PacketFaults;
use crate::proxy::{NetOptions, Network, PartitionMode};
use crate::run_context::RunContext;
use crate::schedule::packet::{self, Amounts};
use crate::schedule::{self, cut_links, Fault, FaultKind, Kinds, Schedule, Targets};
use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The fault options of `harness test`. A field missing from a stored test.json takes its
/// command-line default.
#[derive(clap::Args, Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct NemesisArgs {
    /// Faults to inject: a comma-separated list of partition, pause, kill, power-cut (a kill
    /// that loses unsynced writes; needs FUSE), clock (wall clocks bumped, strobed or skewed;
    /// needs libfaketime), membership (adds and removes members; needs --spare), and with
    /// --net netns loss, dup, rate (packet faults); or none. Every
    /// kind listed gets a window before any kind repeats, and each kind's targets take turns the
    /// same way.
    #[arg(long, default_value = "partition,pause,kill", value_name = "FAULTS")]
    pub nemesis: Kinds,
    /// Average length of each quiet and each faulty period, in seconds (2: a 30 s run gets
    /// about seven faults; 2 found more seeded bugs than 3, docs/seeded-bugs.md). When the periods drawn would leave a kind without a window, the
    /// first ones are shortened (to no less than half the interval); a --time-limit below
    /// kinds × interval cannot fit every kind and is refused, naming the shortest that fits.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub nemesis_interval: f64,
    /// Whom faults hit. Partitions use one, majority, majorities-ring, bridge; pause and kill use
    /// one, minority, majority, all.
    #[arg(
        long,
        default_value = "one,minority,majority,majorities-ring,bridge,all",
        value_name = "TARGETS"
    )]
    pub nemesis_targets: Targets,
    /// This run's turn among runs of the same faults: its first round of targets starts at the
    /// N-th target listed in --nemesis-targets (in that order, not shuffled), so runs with turns
    /// 0, 1, 2, ... cover every target before any repeats. A suite sets it for each of its runs.
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nemesis_turn: Option<u32>,
    /// Percent of packets a `loss` window drops on each link it hits.
    #[arg(long, default_value_t = 20.0, value_name = "PCT")]
    #[serde(skip_serializing_if = "is_default_loss")]
    pub nemesis_loss: f64,
    /// Percent of packets a `dup` window sends twice on each link it hits.
    #[arg(long, default_value_t = 20.0, value_name = "PCT")]
    #[serde(skip_serializing_if = "is_default_dup")]
    pub nemesis_dup: f64,
    /// The outgoing bandwidth, kbit/s, a `rate` window leaves each node it hits.
    #[arg(long, default_value_t = 1000.0, value_name = "KBIT")]
    #[serde(skip_serializing_if = "is_default_rate")]
    pub nemesis_rate: f64,
    /// The largest clock bump or strobe, in seconds: each clock window jumps by a quarter to all
    /// of it, forward or back (a skew gains or loses up to 500 ms per second).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    #[serde(skip_serializing_if = "is_default_clock")]
    pub nemesis_clock_offset: f64,
    /// What a cut does to open connections: silent (like iptables DROP) or reset (RST at once).
    #[arg(long, value_enum, default_value_t = PartitionMode::Silent)]
    pub partition_mode: PartitionMode,
    /// Milliseconds added to every message on every link.
    #[arg(long, default_value_t = 0.0, value_name = "MS")]
    pub net_latency: f64,
    /// Milliseconds of uniform ± spread around --net-latency (never reordering a connection).
    #[arg(long, default_value_t = 0.0, value_name = "MS")]
    pub net_jitter: f64,
    /// Rerun a stored run: its options and seed (test.json) and faults (schedule.json); options
    /// given on this command line override the stored ones.
    #[arg(long, value_name = "RUN_DIR")]
    pub replay: Option<PathBuf>,
}

// The packet-fault amounts are not written to test.json at their defaults, so a run without
// them stores the same options as before they existed.
fn is_default_loss(v: &f64) -> bool {
    *v == Amounts::default().loss_pct
}

fn is_default_dup(v: &f64) -> bool {
    *v == Amounts::default().dup_pct
}

fn is_default_rate(v: &f64) -> bool {
    *v == Amounts::default().rate_kbit
}

fn is_default_clock(v: &f64) -> bool {
    *v == Amounts::default().clock_offset_s
}

#[derive(Parser)]
struct Standalone {
    #[command(flatten)]
    args: NemesisArgs,
}

impl Default for NemesisArgs {
    /// The command-line defaults.
    fn default() -> Self {
        Standalone::parse_from(["nemesis"]).args
    }
}

impl NemesisArgs {
    /// Checks the fault options; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        for (flag, v) in [
            ("--net-latency", self.net_latency),
            ("--net-jitter", self.net_jitter),
        ] {
            if !v.is_finite() || v < 0.0 {
                bail!("{flag} {v}: must be a non-negative number of milliseconds");
            }
        }
        self.amounts().validate().map_err(|e| anyhow!(e))?;
        schedule::validate(&self.nemesis, &self.nemesis_targets, self.nemesis_interval)
            .map_err(|e| anyhow!(e))
    }

    /// How hard the packet faults hit.
    pub fn amounts(&self) -> Amounts {
        Amounts {
            loss_pct: self.nemesis_loss,
            dup_pct: self.nemesis_dup,
            rate_kbit: self.nemesis_rate,
            clock_offset_s: self.nemesis_clock_offset,
        }
    }
}

/// The run's fault machinery, made before the nodes start.
pub struct Faults {
    pub net: Network,
    /// With `--net netns`: the namespaces' firewall, where partitions are nftables rules.
    pub netns: Option<Arc<Firewall>>,
    /// With `--net netns`: the scheduled packet faults.
    pub packets: Option<Arc<PacketFaults>>,
    /// With `--hosts`: the hosts' firewalls, where partitions are nftables rules.
    pub hosts: Option<Arc<crate::hosts::firewall::HostFirewall>>,
    /// With `--nemesis clock`: the nodes' clock control files.
    pub clocks: Option<Arc<Clocks>>,
    pub schedule: Schedule,
    /// Held by each fault step and by the heal, so they never interleave.
    busy: tokio::sync::Mutex<()>,
    /// Set by the heal: steps that have not started yet are skipped.
    healed: AtomicBool,
    /// The nodes whose power is cut now (restarted by the window's stop or the heal).
    cut: std::sync::Mutex<Vec<String>>,
}

impl Faults {
    /// Cuts exactly `links`: in the proxies, or as nftables rules with `--net netns` (run off
    /// the runtime's thread: nft takes milliseconds).
    async fn set_cut(&self, links: &std::collections::BTreeSet<schedule::Link>) {
        if let Some(fw) = &self.hosts {
            if let Err(e) = fw.set_cut(links).await {
                tracing::error!("partition rules failed: {e:#}");
            }
            return;
        }
        match &self.netns {
            Some(fw) => {
                let (fw, links) = (fw.clone(), links.clone());
                match tokio::task::spawn_blocking(move || fw.set_cut(&links)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!("partition rules failed: {e:#}"),
                    Err(e) => tracing::error!("partition rules failed: {e}"),
                }
            }
            None => self.net.set_cut(links),
        }
    }

    /// Puts a packet fault in force (`Some`) or heals the one in force (`None`), off the
    /// runtime's thread. Returns the fault healed.
    async fn set_packet(&self, fault: Option<Fault>) -> Option<Fault> {
        let Some(p) = self.packets.clone() else {
            tracing::error!("packet faults need --net netns or --hosts");
            return None;
        };
        let done = tokio::task::spawn_blocking(move || match &fault {
            Some(f) => p.apply(f).map(|()| None),
            None => p.heal(),
        })
        .await;
        match done {
            Ok(Ok(healed)) => healed,
            Ok(Err(e)) => {
                tracing::error!("packet fault rules failed: {e:#}");
                None
            }
            Err(e) => {
                tracing::error!("packet fault rules failed: {e}");
                None
            }
        }
    }

    fn cut_links(&self) -> std::collections::BTreeSet<schedule::Link> {
        if let Some(fw) = &self.hosts {
            return fw.cut_links();
        }
        match &self.netns {
            Some(fw) => fw.cut_links(),
            None => self.net.cut_links(),
        }
    }
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v / 1000.0)
}

/// Starts a proxy for every link and points the plan's `--peers` at them (not with `netns`: the
/// nodes keep each other's real addresses); generates the schedule
/// (or loads it with `--replay`) and saves it as `schedule.json` in the run folder.
/// `time_limit_s` is the main phase's length, which the schedule fills.
pub async fn prepare(
    n: &NemesisArgs,
    time_limit_s: f64,
    seed: u64,
    plan: &mut ClusterPlan,
    run_dir: &Path,
    netns: Option<Arc<NetNs>>,
) -> Result<Faults> {
    let mut nodes: Vec<(String, SocketAddr)> = plan
        .nodes
        .iter()
        .map(|s| (s.id.clone(), s.listen))
        .collect();
    let ids: Vec<String> = nodes.iter().map(|(id, _)| id.clone()).collect();
    let spares = crate::membership::spares(plan);
    // In netns mode and on SSH hosts the nodes dial each other's real addresses.
    let direct = netns.is_some() || plan.remote.is_some();
    if direct {
        nodes.clear();
    }
    let opts = NetOptions {
        mode: n.partition_mode,
        latency: ms(n.net_latency),
        jitter: ms(n.net_jitter),
        seed,
    };
    let net = Network::start_dedicated(&nodes, opts).context("cannot start the link proxies")?;
    for ((from, to), addr) in plan.peer_addr.iter_mut().filter(|_| !direct) {
        *addr = net
            .proxy_addr(from, to)
            .ok_or_else(|| anyhow!("no proxy for link {from}->{to}"))?;
    }
    let schedule = match &n.replay {
        Some(dir) => {
            let s = Schedule::load(&dir.join("schedule.json")).map_err(|e| anyhow!(e))?;
            s.check_nodes(&ids).map_err(|e| {
                anyhow!(
                    "--replay {}: schedule.json: {e} (check --nodes)",
                    dir.display()
                )
            })?;
            crate::membership::check_replay_spares(&s, &spares, dir)?;
            s
        }
        None => schedule::generate_with(
            &schedule::Plan {
                seed,
                nodes: &ids,
                kinds: &n.nemesis,
                targets: &n.nemesis_targets,
                interval_s: n.nemesis_interval,
                time_limit_s,
                turn: n.nemesis_turn,
                spares: &spares,
            },
            &n.amounts(),
        )
        .map_err(|e| anyhow!(e))?,
    };
    if netns.is_none() && plan.remote.is_none() {
        if let Some(w) = schedule.windows.iter().find(|w| w.fault.kind().is_packet()) {
            bail!(
                "--nemesis {}: packet faults need --net netns or --hosts (the proxies carry \
                 streams, not packets); the schedule's window at {} s is one",
                w.fault.kind(),
                w.start_s
            );
        }
    }
    let power_cut = schedule::FaultKind::PowerCut;
    if n.nemesis.0.contains(&power_cut)
        || schedule.windows.iter().any(|w| w.fault.kind() == power_cut)
    {
        crate::power::check()?;
        plan.power_cut = true;
    }
    let clocks = clock_files(&schedule, plan).await?;
    schedule
        .save(&run_dir.join("schedule.json"))
        .map_err(|e| anyhow!(e))?;
    tracing::info!(
        faults = %schedule.nemesis,
        windows = schedule.windows.len(),
        partition_mode = ?n.partition_mode,
        net_latency_ms = n.net_latency,
        net_jitter_ms = n.net_jitter,
        replay = ?n.replay,
        "nemesis schedule saved to schedule.json"
    );
    Ok(Faults {
        net,
        packets: packet_net(netns.clone(), plan, &ids).map(|n| Arc::new(PacketFaults::new(n))),
        hosts: plan.remote.clone().map(|h| {
            Arc::new(crate::hosts::firewall::HostFirewall::new(
                h,
                ids.clone(),
                n.partition_mode,
            ))
        }),
        clocks,
        netns: netns.map(|ns| Arc::new(Firewall::new(ns, n.partition_mode))),
        schedule,
        busy: tokio::sync::Mutex::new(()),
        healed: AtomicBool::new(false),
        cut: Default::default(),
    })
}

/// Where packet rules go: the namespaces, or the SSH hosts.
fn packet_net(
    netns: Option<Arc<NetNs>>,
    plan: &ClusterPlan,
    ids: &[String],
) -> Option<Arc<dyn crate::net::packet::PacketNet>> {
    if let Some(ns) = netns {
        return Some(ns);
    }
    let hosts = plan.remote.clone()?;
    Some(Arc::new(crate::hosts::packets::HostNet::new(
        hosts,
        ids.to_vec(),
    )))
}

/// With clock windows in the schedule: every node's clock control file, named in its environment.
async fn clock_files(schedule: &Schedule, plan: &mut ClusterPlan) -> Result<Option<Arc<Clocks>>> {
    if !schedule
        .windows
        .iter()
        .any(|w| w.fault.kind() == FaultKind::Clock)
    {
        return Ok(None);
    }
    let ids: Vec<String> = plan.nodes.iter().map(|s| s.id.clone()).collect();
    let clocks = match &plan.remote {
        Some(hosts) => Clocks::remote(hosts, &ids).await?,
        None => Clocks::new(&ids)?,
    };
    for spec in &mut plan.nodes {
        spec.env.extend(clocks.env(&spec.id));
    }
    Ok(Some(Arc::new(clocks)))
}

/// Carries out the schedule, relative to the history's time zero. Abort it at the end of the
/// main phase, then call [`heal`].
pub async fn run(ctx: Arc<RunContext>, faults: Arc<Faults>) {
    let start = tokio::time::Instant::from_std(ctx.history.start());
    let at = |s: f64| start + Duration::from_secs_f64(s);
    let windows = faults.schedule.windows.iter();
    // Membership steps have a track of their own (`crate::membership::run`).
    for w in windows
        .filter(|w| w.fault.kind() != FaultKind::Membership)
        .cloned()
    {
        tokio::time::sleep_until(at(w.start_s)).await;
        let fault = aim_at_leader(&ctx, w.fault).await;
        step(&ctx, &faults, fault.clone(), true).await;
        tokio::time::sleep_until(at(w.stop_s)).await;
        step(&ctx, &faults, fault, false).await;
    }
}

/// A `leader` fault hits the node that says it leads now; otherwise (or when none says so) the
/// fault stays as scheduled.
async fn aim_at_leader(ctx: &RunContext, fault: Fault) -> Fault {
    if fault.target() != schedule::Target::Leader {
        return fault;
    }
    let Some(leader) = find_leader(ctx).await else {
        tracing::info!("no node says it leads; the leader fault hits the scheduled node");
        return fault;
    };
    match fault {
        Fault::Partition { topology, grudge } => {
            let mut order = ctx.cluster.ids();
            order.retain(|id| *id != leader);
            order.insert(0, leader);
            let grudge = schedule::topology_grudge(topology, &order).unwrap_or(grudge);
            Fault::Partition { topology, grudge }
        }
        Fault::Pause { target, .. } => Fault::Pause {
            target,
            nodes: vec![leader],
        },
        Fault::Kill { target, .. } => Fault::Kill {
            target,
            nodes: vec![leader],
        },
        Fault::PowerCut { target, .. } => Fault::PowerCut {
            target,
            nodes: vec![leader],
        },
        f @ (Fault::Loss { .. } | Fault::Dup { .. } | Fault::Rate { .. }) => {
            packet::aim_at(f, &leader, &ctx.cluster.ids())
        }
        Fault::Clock {
            target,
            mode,
            offset_ms,
            ..
        } => Fault::Clock {
            target,
            nodes: vec![leader],
            mode,
            offset_ms,
        },
        f @ Fault::Membership { .. } => f,
    }
}

/// The running node whose `stats` reply says `"is_leader": 1` (the first one, if several do).
async fn find_leader(ctx: &RunContext) -> Option<String> {
    for (i, id) in ctx.cluster.ids().into_iter().enumerate() {
        if ctx.cluster.state(i).await != NodeState::Running {
            continue;
        }
        let addr = ctx.cluster.plan.nodes[i].client;
        let stats = crate::client::fetch_stats(addr, Duration::from_millis(300)).await;
        if stats.and_then(|s| s.get("is_leader")?.as_f64()) == Some(1.0) {
            return Some(id);
        }
    }
    None
}

/// Applies (`on`) or undoes a fault in a task of its own, which an abort of [`run`] cannot cut.
async fn step(ctx: &Arc<RunContext>, faults: &Arc<Faults>, fault: Fault, on: bool) {
    let (ctx, faults) = (ctx.clone(), faults.clone());
    let task = tokio::spawn(async move {
        let _busy = faults.busy.lock().await;
        if faults.healed.load(Ordering::SeqCst) {
            return;
        }
        if on {
            apply(&ctx, &faults, &fault).await;
        } else {
            undo(&ctx, &faults, &fault).await;
        }
    });
    let _ = task.await;
}

fn active(ctx: &RunContext) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<String>> {
    ctx.active_faults.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fault step that did not reach its node (a remote host that dropped, a node that would not
/// restart): the run goes on, and the history says so (`fault-failed`), not only the log.
pub(crate) fn step_failed(ctx: &RunContext, step: &str, id: &str, e: &anyhow::Error) {
    tracing::warn!(node = %id, "{step} failed: {e:#}");
    ctx.history.record_nemesis(
        "fault-failed",
        json!({"step": step, "node": id, "error": format!("{e:#}")}),
    );
}

fn index(ctx: &RunContext, id: &str) -> Option<usize> {
    ctx.cluster.index_of(id)
}

async fn apply(ctx: &RunContext, faults: &Faults, fault: &Fault) {
    match fault {
        Fault::Partition { topology, grudge } => {
            faults.set_cut(&cut_links(grudge)).await;
            ctx.history.record_nemesis(
                "start-partition",
                json!({"topology": topology, "grudge": grudge}),
            );
        }
        Fault::Pause { nodes, .. } => {
            let done = on_each(ctx, nodes, "pause", |i| ctx.cluster.pause(i)).await;
            ctx.history.record_nemesis("pause", json!(done));
        }
        Fault::Kill { nodes, .. } => {
            let done = on_each(ctx, nodes, "kill", |i| ctx.cluster.kill(i)).await;
            ctx.history.record_nemesis("kill", json!(done));
        }
        Fault::PowerCut { target, nodes } => power_cut(ctx, faults, *target, nodes).await,
        Fault::Loss { target, links, pct } | Fault::Dup { target, links, pct } => {
            faults.set_packet(Some(fault.clone())).await;
            ctx.history.record_nemesis(
                &format!("start-{}", fault.kind()),
                json!({"target": target, "links": links, "pct": pct}),
            );
        }
        Fault::Rate {
            target,
            nodes,
            kbit,
        } => {
            faults.set_packet(Some(fault.clone())).await;
            ctx.history.record_nemesis(
                "start-rate",
                json!({"target": target, "nodes": nodes, "kbit": kbit}),
            );
        }
        Fault::Clock { .. } => start_clock(ctx, faults, fault).await,
        Fault::Membership { .. } => return,
    }
    active(ctx).insert(fault.describe());
}

async fn undo(ctx: &RunContext, faults: &Faults, fault: &Fault) {
    match fault {
        Fault::Partition { .. } => {
            faults.set_cut(&Default::default()).await;
            ctx.history
                .record_nemesis("stop-partition", json!("network-healed"));
        }
        Fault::Pause { nodes, .. } => {
            let ids: Vec<String> = nodes.clone();
            resume(ctx, &ids).await;
        }
        Fault::Kill { nodes, .. } => {
            restart(ctx, nodes).await;
        }
        Fault::PowerCut { .. } => power_back(ctx, faults).await,
        Fault::Loss { .. } | Fault::Dup { .. } | Fault::Rate { .. } => {
            faults.set_packet(None).await;
            stop_packet(ctx, fault);
        }
        Fault::Clock { nodes, .. } => stop_clock(ctx, faults, nodes).await,
        Fault::Membership { .. } => return,
    }
    active(ctx).remove(&fault.describe());
}

/// Sets the clocks of a clock window and records it, with the offset each node then reports
/// (`clock_ms` in its `stats`, when it has one) against the harness's own clock.
async fn start_clock(ctx: &RunContext, faults: &Faults, fault: &Fault) {
    let Fault::Clock {
        target,
        nodes,
        mode,
        offset_ms,
    } = fault
    else {
        return;
    };
    let Some(clocks) = &faults.clocks else {
        tracing::error!("clock faults need the clock control files made at launch");
        return;
    };
    clocks.start(nodes, *mode, *offset_ms);
    clocks.settle(Duration::from_secs(2)).await;
    let mut seen = serde_json::Map::new();
    for id in nodes {
        if let Some(off) = observed_offset(ctx, id).await {
            seen.insert(id.clone(), json!(off));
        }
    }
    ctx.history.record_nemesis(
        "start-clock",
        json!({"target": target, "nodes": nodes, "mode": mode, "offset_ms": offset_ms,
               "label": schedule::clock::label(*mode, *offset_ms), "observed_offset_ms": seen}),
    );
}

/// How far node `id`'s wall clock (`clock_ms` in its `stats`) is from the harness's, in ms.
async fn observed_offset(ctx: &RunContext, id: &str) -> Option<i64> {
    let i = index(ctx, id)?;
    let addr = ctx.cluster.plan.nodes[i].client;
    let stats = crate::client::fetch_stats(addr, Duration::from_millis(300)).await?;
    let clock = stats.get("clock_ms")?.as_f64()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis() as f64;
    Some((clock - now).round() as i64)
}

async fn stop_clock(ctx: &RunContext, faults: &Faults, nodes: &[String]) {
    if let Some(clocks) = &faults.clocks {
        clocks.reset(nodes);
    }
    ctx.history.record_nemesis("stop-clock", json!(nodes));
}

fn stop_packet(ctx: &RunContext, fault: &Fault) {
    ctx.history
        .record_nemesis(&format!("stop-{}", fault.kind()), json!("healed"));
}

/// SIGKILLs the nodes and drops what they had not synced; `start-power-cut` names them.
async fn power_cut(ctx: &RunContext, faults: &Faults, target: schedule::Target, ids: &[String]) {
    let done = on_each(ctx, ids, "power cut", |i| ctx.cluster.power_cut(i)).await;
    faults
        .cut
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(done.iter().cloned());
    ctx.history
        .record_nemesis("start-power-cut", json!({"target": target, "nodes": done}));
}

/// Restarts the nodes whose power was cut (their layers mounted again); `stop-power-cut`
/// names those that came back.
async fn power_back(ctx: &RunContext, faults: &Faults) {
    let ids = std::mem::take(&mut *faults.cut.lock().unwrap_or_else(|p| p.into_inner()));
    if ids.is_empty() {
        return;
    }
    let done = on_each(ctx, &ids, "restart after the power cut", |i| {
        ctx.cluster.restart(i)
    })
    .await;
    ctx.history
        .record_nemesis("stop-power-cut", json!({"nodes": done}));
}

async fn resume(ctx: &RunContext, ids: &[String]) {
    let done = on_each(ctx, ids, "resume", |i| ctx.cluster.resume(i)).await;
    ctx.history.record_nemesis("resume", json!(done));
}

async fn restart(ctx: &RunContext, ids: &[String]) {
    let done = on_each(ctx, ids, "restart", |i| ctx.cluster.restart(i)).await;
    ctx.history.record_nemesis("start", json!(done));
}

/// Runs `act` on every node of `ids` at once (on SSH hosts each is a round trip, and a
/// majority's pause should land together, not one host after another); returns the ids it
/// worked on, in order. A failure is a `fault-failed` event.
async fn on_each<F, Fut>(ctx: &RunContext, ids: &[String], step: &str, act: F) -> Vec<String>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let runs = ids.iter().map(|id| {
        let i = index(ctx, id);
        let run = i.map(&act);
        async move {
            match run {
                Some(f) => (id, Some(f.await)),
                None => (id, None),
            }
        }
    });
    let mut done = Vec::new();
    for (id, r) in futures_util::future::join_all(runs).await {
        match r {
            Some(Ok(())) => done.push(id.clone()),
            Some(Err(e)) => step_failed(ctx, step, id, &e),
            None => tracing::warn!(node = %id, "{step}: no such node"),
        }
    }
    done
}

/// The final phase's heal: waits for a fault step in progress, then heals every link, resumes
/// every paused node and restarts every killed one, recording each in the history. Returns an
/// error naming the nodes that could not be brought back.
pub async fn heal(ctx: &RunContext, faults: &Faults) -> Result<()> {
    let _busy = faults.busy.lock().await;
    faults.healed.store(true, Ordering::SeqCst);
    if !faults.cut_links().is_empty() {
        faults.set_cut(&Default::default()).await;
        ctx.history
            .record_nemesis("stop-partition", json!("network-healed"));
    }
    if faults
        .packets
        .as_ref()
        .is_some_and(|p| p.active().is_some())
    {
        if let Some(f) = faults.set_packet(None).await {
            stop_packet(ctx, &f);
        }
    }
    power_back(ctx, faults).await;
    if faults.clocks.as_ref().is_some_and(|c| c.is_off()) {
        stop_clock(ctx, faults, &ctx.cluster.ids()).await;
    }
    let (mut paused, mut killed) = (Vec::new(), Vec::new());
    for (i, id) in ctx.cluster.ids().into_iter().enumerate() {
        match ctx.cluster.state(i).await {
            NodeState::Paused => paused.push(id),
            NodeState::Killed => killed.push(id),
            NodeState::Running => {}
        }
    }
    if !paused.is_empty() {
        resume(ctx, &paused).await;
    }
    if !killed.is_empty() {
        restart(ctx, &killed).await;
    }
    active(ctx).clear();
    let mut down = Vec::new();
    for (i, id) in ctx.cluster.ids().into_iter().enumerate() {
        if ctx.cluster.state(i).await != NodeState::Running {
            down.push(id);
        }
    }
    if !down.is_empty() {
        bail!("could not bring back {} (see harness.log)", down.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<NemesisArgs, clap::Error> {
        Standalone::try_parse_from(std::iter::once("nemesis").chain(words.iter().copied()))
            .map(|s| s.args)
    }

    #[test]
    fn fault_options_parse_and_default_to_every_fault() {
        let a = NemesisArgs::default();
        assert_eq!(a.nemesis.to_string(), "partition,pause,kill");
        assert_eq!(a.nemesis_interval, 2.0);
        assert_eq!(a.partition_mode, PartitionMode::Silent);
        let a = parse(&[
            "--nemesis",
            "none",
            "--partition-mode",
            "reset",
            "--net-latency",
            "20",
        ])
        .unwrap();
        assert!(a.nemesis.0.is_empty());
        assert_eq!(a.partition_mode, PartitionMode::Reset);
        assert_eq!(a.net_latency, 20.0);
        assert!(parse(&["--nemesis", "flood"]).is_err());
        let bad = parse(&["--nemesis", "kill", "--nemesis-targets", "bridge"])
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(bad.contains("--nemesis-targets"), "{bad}");
        let a = NemesisArgs {
            net_jitter: -3.0,
            ..Default::default()
        };
        let bad = a.validate().unwrap_err().to_string();
        assert!(bad.contains("--net-jitter"), "{bad}");
    }

    #[test]
    fn packet_fault_options_parse_and_bad_amounts_name_the_flag() {
        let a = parse(&["--nemesis", "loss,dup,rate", "--nemesis-loss", "35"]).unwrap();
        assert_eq!(a.nemesis.to_string(), "loss,dup,rate");
        assert!(a.validate().is_ok());
        assert_eq!(a.amounts().loss_pct, 35.0);
        assert_eq!((a.amounts().dup_pct, a.amounts().rate_kbit), (20.0, 1000.0));
        for (flag, v) in [
            ("--nemesis-loss", "0"),
            ("--nemesis-dup", "101"),
            ("--nemesis-rate", "0.5"),
            ("--nemesis-rate", "1e12"),
        ] {
            let bad = parse(&["--nemesis", "loss", flag, v])
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(bad.contains(flag), "{flag} {v}: {bad}");
        }
        // rate limits nodes: a list of topologies only gives it nothing to do.
        let bad = parse(&["--nemesis", "rate", "--nemesis-targets", "bridge"])
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(bad.contains("'rate'"), "{bad}");
        assert!(parse(&["--nemesis", "loss", "--nemesis-targets", "bridge"])
            .unwrap()
            .validate()
            .is_ok());
    }
}
