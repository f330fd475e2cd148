//! The nemesis: puts a proxy on every link before the nodes start, carries out the fault schedule
//! during the main phase (partitions through the proxies, SIGSTOP/SIGCONT pauses, SIGKILL and
//! restart), records every start and stop in the history, and heals everything for the final
//! phase. `--replay RUN_DIR` reruns a stored run with its configuration, seed and schedule.
//!
//! Each fault step runs in a task of its own under a lock, so aborting the schedule at the end of
//! the main phase never leaves a step half done: [`heal`] waits for it, then undoes what is left.

use crate::cluster::{ClusterPlan, NodeState};
use crate::proxy::{NetOptions, Network, PartitionMode};
use crate::schedule::{self, cut_links, Fault, Kinds, Schedule, Targets};
use crate::test_cmd::{RunContext, TestArgs};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The fault options of `harness test`.
#[derive(clap::Args, Clone, Debug, Serialize, Deserialize)]
pub struct NemesisArgs {
    /// Faults to inject: a comma-separated list of partition, pause, kill; or none.
    #[arg(long, default_value = "partition,pause,kill", value_name = "FAULTS")]
    pub nemesis: Kinds,
    /// Average length of each quiet and each faulty period, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub nemesis_interval: f64,
    /// Whom faults hit. Partitions use one, majority, majorities-ring, bridge; pause and kill use
    /// one, minority, majority, all.
    #[arg(
        long,
        default_value = "one,minority,majority,majorities-ring,bridge,all",
        value_name = "TARGETS"
    )]
    pub nemesis_targets: Targets,
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
        schedule::validate(&self.nemesis, &self.nemesis_targets, self.nemesis_interval)
            .map_err(|e| anyhow!(e))
    }
}

/// The run's fault machinery, made before the nodes start.
pub struct Faults {
    pub net: Network,
    pub schedule: Schedule,
    /// Held by each fault step and by the heal, so they never interleave.
    busy: tokio::sync::Mutex<()>,
    /// Set by the heal: steps that have not started yet are skipped.
    healed: AtomicBool,
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v / 1000.0)
}

/// Starts a proxy for every link and points the plan's `--peers` at them; generates the schedule
/// (or loads it with `--replay`) and saves it as `schedule.json` in the run folder.
pub async fn prepare(
    args: &TestArgs,
    seed: u64,
    plan: &mut ClusterPlan,
    run_dir: &Path,
) -> Result<Faults> {
    let n = &args.nemesis;
    let nodes: Vec<(String, SocketAddr)> = plan
        .nodes
        .iter()
        .map(|s| (s.id.clone(), s.listen))
        .collect();
    let opts = NetOptions {
        mode: n.partition_mode,
        latency: ms(n.net_latency),
        jitter: ms(n.net_jitter),
        seed,
    };
    let net = Network::start_dedicated(&nodes, opts).context("cannot start the link proxies")?;
    for ((from, to), addr) in plan.peer_addr.iter_mut() {
        *addr = net
            .proxy_addr(from, to)
            .ok_or_else(|| anyhow!("no proxy for link {from}->{to}"))?;
    }
    let ids: Vec<String> = nodes.iter().map(|(id, _)| id.clone()).collect();
    let schedule = match &n.replay {
        Some(dir) => {
            let s = Schedule::load(&dir.join("schedule.json")).map_err(|e| anyhow!(e))?;
            s.check_nodes(&ids).map_err(|e| {
                anyhow!(
                    "--replay {}: schedule.json: {e} (check --nodes)",
                    dir.display()
                )
            })?;
            s
        }
        None => schedule::generate(&schedule::Plan {
            seed,
            nodes: &ids,
            kinds: &n.nemesis,
            targets: &n.nemesis_targets,
            interval_s: n.nemesis_interval,
            time_limit_s: args.time_limit,
        })
        .map_err(|e| anyhow!(e))?,
    };
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
        schedule,
        busy: tokio::sync::Mutex::new(()),
        healed: AtomicBool::new(false),
    })
}

/// Carries out the schedule, relative to the history's time zero. Abort it at the end of the
/// main phase, then call [`heal`].
pub async fn run(ctx: Arc<RunContext>) {
    let start = tokio::time::Instant::from_std(ctx.history.start());
    let at = |s: f64| start + Duration::from_secs_f64(s);
    for w in ctx.faults.schedule.windows.clone() {
        tokio::time::sleep_until(at(w.start_s)).await;
        let fault = aim_at_leader(&ctx, w.fault).await;
        step(&ctx, fault.clone(), true).await;
        tokio::time::sleep_until(at(w.stop_s)).await;
        step(&ctx, fault, false).await;
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
async fn step(ctx: &Arc<RunContext>, fault: Fault, on: bool) {
    let ctx = ctx.clone();
    let task = tokio::spawn(async move {
        let _busy = ctx.faults.busy.lock().await;
        if ctx.faults.healed.load(Ordering::SeqCst) {
            return;
        }
        if on {
            apply(&ctx, &fault).await;
        } else {
            undo(&ctx, &fault).await;
        }
    });
    let _ = task.await;
}

fn active(ctx: &RunContext) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<String>> {
    ctx.active_faults.lock().unwrap_or_else(|p| p.into_inner())
}

fn index(ctx: &RunContext, id: &str) -> Option<usize> {
    ctx.cluster.index_of(id)
}

async fn apply(ctx: &RunContext, fault: &Fault) {
    match fault {
        Fault::Partition { topology, grudge } => {
            ctx.faults.net.set_cut(&cut_links(grudge));
            ctx.history.record_nemesis(
                "start-partition",
                json!({"topology": topology, "grudge": grudge}),
            );
        }
        Fault::Pause { nodes, .. } => {
            let mut done = Vec::new();
            for id in nodes {
                match index(ctx, id) {
                    Some(i) => match ctx.cluster.pause(i).await {
                        Ok(()) => done.push(id.clone()),
                        Err(e) => tracing::warn!(node = %id, "pause failed: {e:#}"),
                    },
                    None => tracing::warn!(node = %id, "pause: no such node"),
                }
            }
            ctx.history.record_nemesis("pause", json!(done));
        }
        Fault::Kill { nodes, .. } => {
            let mut done = Vec::new();
            for id in nodes {
                if let Some(i) = index(ctx, id) {
                    match ctx.cluster.kill(i).await {
                        Ok(()) => done.push(id.clone()),
                        Err(e) => tracing::warn!(node = %id, "kill failed: {e:#}"),
                    }
                }
            }
            ctx.history.record_nemesis("kill", json!(done));
        }
    }
    active(ctx).insert(fault.describe());
}

async fn undo(ctx: &RunContext, fault: &Fault) {
    match fault {
        Fault::Partition { .. } => {
            ctx.faults.net.heal_all();
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
    }
    active(ctx).remove(&fault.describe());
}

async fn resume(ctx: &RunContext, ids: &[String]) {
    let mut done = Vec::new();
    for id in ids {
        if let Some(i) = index(ctx, id) {
            match ctx.cluster.resume(i).await {
                Ok(()) => done.push(id.clone()),
                Err(e) => tracing::warn!(node = %id, "resume failed: {e:#}"),
            }
        }
    }
    ctx.history.record_nemesis("resume", json!(done));
}

async fn restart(ctx: &RunContext, ids: &[String]) {
    let mut done = Vec::new();
    for id in ids {
        if let Some(i) = index(ctx, id) {
            match ctx.cluster.restart(i).await {
                Ok(()) => done.push(id.clone()),
                Err(e) => tracing::error!(node = %id, "restart failed: {e:#}"),
            }
        }
    }
    ctx.history.record_nemesis("start", json!(done));
}

/// The final phase's heal: waits for a fault step in progress, then heals every link, resumes
/// every paused node and restarts every killed one, recording each in the history. Returns an
/// error naming the nodes that could not be brought back.
pub async fn heal(ctx: &Arc<RunContext>) -> Result<()> {
    let _busy = ctx.faults.busy.lock().await;
    ctx.faults.healed.store(true, Ordering::SeqCst);
    if !ctx.faults.net.cut_links().is_empty() {
        ctx.faults.net.heal_all();
        ctx.history
            .record_nemesis("stop-partition", json!("network-healed"));
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

/// With `--replay RUN_DIR`: the stored run's options (test.json), with every option typed on this
/// command line on top. Without it, `args` unchanged.
pub fn replay_args(args: TestArgs) -> Result<TestArgs> {
    let Some(dir) = args.nemesis.replay.clone() else {
        return Ok(args);
    };
    let path = dir.join("test.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("--replay {}: cannot read {}", dir.display(), path.display()))?;
    let saved: Value = serde_json::from_str(&text)
        .with_context(|| format!("--replay: {} is not JSON", path.display()))?;
    let mut merged = saved
        .get("options")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| anyhow!("--replay: {} has no \"options\" object", path.display()))?;
    if !dir.join("schedule.json").is_file() {
        bail!(
            "--replay {}: no schedule.json in that run folder",
            dir.display()
        );
    }
    let current = serde_json::to_value(&args)?;
    for id in typed_options() {
        if let Some(v) = current.get(&id) {
            merged.insert(id, v.clone());
        }
    }
    merged.remove("replay");
    let words = to_argv(&merged);
    let mut replayed = TestArgs::from_argv(&words).map_err(|e| {
        anyhow!(
            "--replay {}: the stored options do not parse ({}): {e}",
            dir.display(),
            words.join(" ")
        )
    })?;
    replayed.nemesis.replay = Some(dir);
    Ok(replayed)
}

/// The ids of the `harness test` options typed on this process's command line.
fn typed_options() -> Vec<String> {
    use clap::{parser::ValueSource, Args};
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let Some(pos) = argv.iter().position(|a| a == "test") else {
        return vec![];
    };
    let cmd = TestArgs::augment_args(clap::Command::new("test"));
    let Ok(m) = cmd.try_get_matches_from(&argv[pos..]) else {
        return vec![];
    };
    m.ids()
        .filter(|id| m.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.as_str().to_string())
        .collect()
}

/// Turns stored options back into `harness test` words: `{"time_limit": 5}` → `--time-limit 5`.
fn to_argv(opts: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut words = Vec::new();
    for (k, v) in opts {
        if k == "node_args" {
            continue;
        }
        let flag = format!("--{}", k.replace('_', "-"));
        match v {
            Value::Null | Value::Bool(false) => {}
            Value::Bool(true) => words.push(flag),
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().map(scalar).collect();
                words.push(flag);
                words.push(if parts.is_empty() {
                    "none".into()
                } else {
                    parts.join(",")
                });
            }
            v => {
                words.push(flag);
                words.push(scalar(v));
            }
        }
    }
    if let Some(Value::Array(extra)) = opts.get("node_args") {
        if !extra.is_empty() {
            words.push("--".into());
            words.extend(extra.iter().map(scalar));
        }
    }
    words
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_options_parse_and_default_to_every_fault() {
        let a = TestArgs::default();
        assert_eq!(a.nemesis.nemesis.to_string(), "partition,pause,kill");
        assert_eq!(a.nemesis.nemesis_interval, 10.0);
        assert_eq!(a.nemesis.partition_mode, PartitionMode::Silent);
        let a = TestArgs::from_argv([
            "--nemesis",
            "none",
            "--partition-mode",
            "reset",
            "--net-latency",
            "20",
        ])
        .unwrap();
        assert!(a.nemesis.nemesis.0.is_empty());
        assert_eq!(a.nemesis.partition_mode, PartitionMode::Reset);
        assert_eq!(a.nemesis.net_latency, 20.0);
        assert!(TestArgs::from_argv(["--nemesis", "flood"]).is_err());
        let bad = TestArgs::from_argv(["--nemesis", "kill", "--nemesis-targets", "bridge"])
            .unwrap()
            .nemesis
            .validate()
            .unwrap_err()
            .to_string();
        assert!(bad.contains("--nemesis-targets"), "{bad}");
        let mut a = TestArgs::default();
        a.nemesis.net_jitter = -3.0;
        let bad = a.nemesis.validate().unwrap_err().to_string();
        assert!(bad.contains("--net-jitter"), "{bad}");
    }

    #[test]
    fn stored_options_turn_back_into_the_same_args() {
        let a = TestArgs::from_argv([
            "--nodes",
            "3",
            "--variant",
            "basic",
            "--seed",
            "77",
            "--nemesis",
            "pause,kill",
            "--nemesis-targets",
            "one,all",
            "--time-limit",
            "2.5",
            "--no-check",
            "--",
            "--x",
            "1",
        ])
        .unwrap();
        let v = serde_json::to_value(&a).unwrap();
        let words = to_argv(v.as_object().unwrap());
        let b = TestArgs::from_argv(&words).unwrap();
        assert_eq!(serde_json::to_value(&b).unwrap(), v, "{words:?}");
    }
}
