//! `harness test`: one full run (or `--test-count N`) against a real cluster.
//!
//! The flow of a run: plan the cluster (ports, argv, peer addresses) → create the run folder and
//! `test.json` → launch nodes and wait until ready → main phase (clients, nemesis) for
//! `--time-limit` → final phase (heal every fault, wait `--recovery-time`, read every key from
//! every node) → node stats → stop nodes → check the history → `results.json` and a summary.
//!
//! [`run_test`] is the library entry point (used by suites): it never exits the process.

use crate::client::{self, Clients};
use crate::cluster::{self, Cluster, ClusterPlan};
use crate::duration;
use crate::error::SetupError;
use crate::history::History;
use crate::membership;
use crate::nemesis::{self, Faults};
use crate::open_files;
use crate::options::workload_name;
use crate::progress::Progress;
use crate::replay;
use crate::run_context::RunContext;
use crate::schedule::FaultKind;
use crate::store::{self, RunDir};
use crate::test_args::TestArgs;
use anyhow::{bail, Result};
use checker::{CheckOptions, CheckResult, Verdict};
use report::run_files::{
    verdict_name, CheckRecord, LatencyMs, ResultCounts, ResultsFile, TestFile,
};
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// What one run concluded; everything a suite needs to tabulate it.
#[derive(Clone, Debug, Serialize)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub verdict: Verdict,
    pub explanation: String,
    /// Completed (`ok`) client operations per second during the main phase.
    pub ops_per_sec: f64,
    /// Latency percentiles of ok operations, milliseconds.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Share of main-phase operations the cluster answered: `ok`, or a `fail` that observed the
    /// state (cas precondition-failed, key-does-not-exist). Unavailable and timed-out ops count
    /// against it.
    pub availability: f64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub seed: u64,
    /// The run was cut short by SIGINT/SIGTERM.
    pub interrupted: bool,
}

impl RunOutcome {
    /// The process exit code for this outcome: 0 valid, 1 invalid, 3 unknown, 128 + the signal
    /// number when interrupted ([`cluster::interrupt_exit_code`]).
    pub fn exit_code(&self) -> u8 {
        match (self.verdict, self.interrupted) {
            (Verdict::Invalid, _) => 1,
            (_, true) => cluster::interrupt_exit_code(),
            (v, false) => v.exit_code(),
        }
    }
}

/// NEMESIS HOOK: starts the fault schedule for the main phase. The task must return promptly
/// once aborted; faults still active are healed by [`heal_everything`].
fn start_nemesis(ctx: &Arc<RunContext>, faults: &Arc<Faults>) -> tokio::task::JoinHandle<()> {
    let schedule = Arc::new(faults.schedule.clone());
    let steps = membership::run(ctx.clone(), schedule);
    let faults = nemesis::run(ctx.clone(), faults.clone());
    tokio::spawn(async move {
        tokio::join!(faults, steps);
    })
}

/// NEMESIS HOOK: the final phase's heal: every link healed, every paused node resumed, every
/// killed node restarted.
async fn heal_everything(ctx: &RunContext, faults: &Faults) -> Result<()> {
    let healed = nemesis::heal(ctx, faults).await;
    membership::settle(ctx).await;
    healed
}

/// The runtime a run's clients, nemesis and proxies' control live on: one thread. The nodes and
/// the harness share the machine's cores, and a second runtime thread cost more in cross-thread
/// wake-ups than it gave (harness CPU per operation). Proxies and the checker have threads of
/// their own.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// `harness test` from the command line: runs, prints, and returns the exit code.
pub fn run(args: TestArgs) -> Result<u8, SetupError> {
    let args = replay::replay_args(args).map_err(|e| SetupError::new("harness: error", e))?;
    // Before the loop: `--test-count 0` would otherwise run nothing and exit 0.
    args.validate()
        .map_err(|e| SetupError::new("harness: error", e))?;
    let rt = runtime().map_err(|e| {
        SetupError::new(
            "harness",
            anyhow::anyhow!("cannot start the async runtime: {e}"),
        )
    })?;
    let mut worst = 0u8;
    let base_seed = args.seed.unwrap_or_else(rand::random);
    for i in 0..args.test_count {
        let mut one = args.clone();
        one.seed = Some(base_seed.wrapping_add(i as u64));
        one.test_count = 1;
        let outcome = match rt.block_on(run_test(&one)) {
            Ok(o) => o,
            // Stopped by a signal before the run had a verdict (e.g. while nodes started).
            Err(e) if cluster::interrupted() => {
                crate::errln!("harness: {e:#}");
                worst = cluster::interrupt_exit_code();
                break;
            }
            Err(e) => return Err(SetupError::new("harness: error", e)),
        };
        worst = worse(worst, outcome.exit_code());
        if outcome.interrupted {
            break;
        }
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(worst)
}

/// Interrupted beats invalid beats unknown beats valid.
fn worse(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        0 => 0,
        3 => 1,
        1 => 2,
        _ => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// One full run. Setup errors (bad options, missing binary, a node that does not start) are
/// `Err`; everything after the cluster is up ends in an outcome.
pub async fn run_test(args: &TestArgs) -> Result<RunOutcome> {
    args.validate()?;
    cluster::install_guards();
    let mut args = args.clone();
    let seed = *args.seed.get_or_insert_with(rand::random);
    let name = args.test_name();
    let (bin, node_args) = match &args.node_bin {
        Some(bin) => {
            cluster::check_node_bin(bin)?;
            (bin.clone(), args.node_args.clone())
        }
        None => {
            let bin = cluster::default_node_bin()?;
            let mut a = vec!["--variant".to_string(), args.variant.as_str().to_string()];
            a.extend(args.node_args.iter().cloned());
            (bin, a)
        }
    };
    let proxies = args.net.net == crate::net::NetMode::Proxy;
    let what = format!("a {}-node run", args.all_nodes());
    let fd_note = open_files::ensure(open_files::needed(args.all_nodes(), proxies), &what)
        .map_err(anyhow::Error::msg)?;
    let run = RunDir::create(&args.store, &name)?;
    let span = run.span();
    if let Some(note) = fd_note {
        span.in_scope(|| tracing::info!("{note}"));
    }
    let result = run_in(&args, seed, &name, bin, node_args, &run)
        .instrument(span.clone())
        .await;
    if let Err(e) = &result {
        span.in_scope(|| tracing::error!("run failed: {e:#}"));
    }
    result
}

async fn run_in(
    args: &TestArgs,
    seed: u64,
    name: &str,
    bin: PathBuf,
    node_args: Vec<String>,
    run: &RunDir,
) -> Result<RunOutcome> {
    tracing::info!(test = name, seed, run_dir = %run.path.display(), "run starting");
    if args.nodes < 2 && args.nemesis.nemesis.0.contains(&FaultKind::Partition) {
        let msg = "--nemesis partition: a 1-node cluster has no links to cut, \
                   so no partition will be injected (use --nodes 2 or more)";
        tracing::warn!("{msg}");
        if !args.quiet {
            crate::errln!("harness: warning: {msg}");
        }
    }
    let mut plan = ClusterPlan::new(bin.clone(), args.all_nodes(), &run.path, node_args.clone())?;
    if args.spare > 0 {
        let ids = plan.nodes.iter().map(|n| n.id.clone());
        plan.members = Some(ids.take(args.nodes).collect());
    }
    plan.ready_timeout = duration::secs(args.ready_timeout);
    let latency = (args.nemesis.net_latency, args.nemesis.net_jitter);
    let netns = crate::net::attach(&args.net, latency, &mut plan).await?;
    plan.remote =
        crate::hosts::remote::attach(&args.hosts, &args.nemesis.nemesis, args.net.net, &mut plan)
            .await?;
    let faults = nemesis::prepare(
        &args.nemesis,
        args.time_limit,
        seed,
        &mut plan,
        &run.path,
        netns,
    )
    .await?;
    let faults = Arc::new(faults);
    let started = store::rfc3339_now();
    let test = TestFile {
        name: Some(name.to_string()),
        seed: Some(seed),
        started: Some(started.clone()),
        harness_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        node_bin: Some(bin.clone()),
        node_args: node_args.clone(),
        node_argv: (0..plan.nodes.len())
            .map(|i| (plan.nodes[i].id.clone(), plan.argv(i)))
            .collect(),
        // The variant is the default node's flag; a third-party node has none.
        variant: args
            .node_bin
            .is_none()
            .then(|| args.variant.as_str().to_string()),
        workload: Some(workload_name(args.workload).to_string()),
        ..TestFile::new(args)
    };
    run.write_json("test.json", &test)?;

    let launch = Cluster::launch(plan);
    let cluster = tokio::select! {
        // The signal handler stops the nodes itself, so a node may be seen dying of it before
        // the interrupt wakes this task: that is the interrupt too, not a node failure.
        c = launch => match c {
            Ok(c) => Arc::new(c),
            Err(_) if cluster::interrupted() => bail!("interrupted while starting nodes"),
            Err(e) => return Err(e),
        },
        _ = cluster::wait_interrupt() => bail!("interrupted while starting nodes"),
    };

    let start = Instant::now();
    let history = Arc::new(History::create(&run.file("history.jsonl"), start)?);
    let nodes: Vec<_> = cluster
        .plan
        .nodes
        .iter()
        .map(|n| (n.id.clone(), n.client))
        .collect();
    let generator = workloads::generators::generator(args.workload, args.concurrency, seed);
    let clients = Clients::new(
        history.clone(),
        generator,
        nodes.clone(),
        args.concurrency,
        duration::secs(args.op_timeout),
        args.rate,
        seed,
    );
    if let Some(first) = &cluster.plan.members {
        clients.members.set(first);
    }
    let ctx = Arc::new(RunContext {
        cluster: cluster.clone(),
        history: history.clone(),
        active_faults: Default::default(),
        members: clients.members.clone(),
    });
    let limit = duration::secs(args.time_limit);
    let progress = Progress::start(
        name,
        clients.stats.clone(),
        ctx.active_faults.clone(),
        limit,
        args.quiet,
    );

    // Main phase.
    progress.set_phase("main");
    let cpu_at_start = cpu_secs(false);
    let workers = clients.spawn_main();
    let nemesis = start_nemesis(&ctx, &faults);
    let debug_panic = std::env::var("HARNESS_DEBUG_PANIC_AFTER_S")
        .ok()
        .and_then(|s| s.parse::<f64>().ok());
    tokio::select! {
        _ = tokio::time::sleep(limit) => {}
        _ = cluster::wait_interrupt() => {}
        _ = history.wait_failed() => {}
        _ = async {
            match debug_panic {
                Some(s) => tokio::time::sleep(duration::secs(s)).await,
                None => std::future::pending().await,
            }
        } => panic!("HARNESS_DEBUG_PANIC_AFTER_S: deliberate panic mid-run"),
    }
    clients.stop();
    nemesis.abort();
    let _ = nemesis.await;
    for w in workers {
        let _ = w.await;
    }
    let main_secs = start.elapsed().as_secs_f64();
    let harness_cpu_main_s = cpu_secs(false) - cpu_at_start;
    let ok = clients.stats.ok.load(Ordering::Relaxed);
    let ops_per_sec = ok as f64 / main_secs.max(1e-9);
    let availability = clients.stats.availability();

    let node_stats = final_phase(args, &ctx, &faults, &clients, &progress).await;
    if let Some(e) = history.write_error() {
        // Disk full or the like: every later event would be lost, so the run stops here.
        stop_nodes(&cluster, &progress).await;
        progress.finish();
        bail!(
            "{e}; the run stopped at {:.2} s (the file holds the events before the failure)",
            start.elapsed().as_secs_f64()
        );
    }
    if !cluster::interrupted() {
        run.write_json("node-stats.json", &node_stats)?;
    }
    stop_nodes(&cluster, &progress).await;
    let duration_s = start.elapsed().as_secs_f64();

    // Check.
    progress.set_phase("checking");
    let check = check_history(args, &run.file("history.jsonl"), &history).await;
    progress.finish();
    let interrupted = cluster::interrupted();
    let (verdict, explanation) = match (check.verdict, interrupted) {
        (Verdict::Invalid, _) | (_, false) => (check.verdict, check.explanation.clone()),
        (_, true) => (
            Verdict::Unknown,
            format!(
                "interrupted; the history prefix checked: {}",
                check.explanation
            ),
        ),
    };
    let lat = clients.stats.latency_ms();
    let (tok, tfail, tinfo) = clients.stats.counts();
    let (verdict, explanation) = no_evidence(verdict, explanation, clients.stats.counts());
    membership_figures(run, &ctx, args.quiet).await;
    let mut warnings = cluster.warnings();
    warnings.extend(ctx.members.warnings());
    if let Some((n, first)) = clients.stats.bad_replies() {
        tracing::warn!(count = n, first = %first, "replies that break the node contract");
        crate::errln!(
            "harness: warning: {n} node replies broke the node contract (recorded as info); \
             the first: {first}"
        );
    }
    let results = ResultsFile {
        test: Some(name.to_string()),
        verdict: Some(verdict_name(verdict).to_string()),
        explanation: Some(explanation.clone()),
        check: Some(CheckRecord::from(&check)),
        counts: Some(ResultCounts {
            ok: Some(tok),
            fail: Some(tfail),
            info: Some(tinfo),
            by_f: clients.stats.by_f_json(),
        }),
        ops_per_sec: Some(ops_per_sec),
        availability: Some(availability),
        latency_ms: lat.map(|(p50, p95, p99, max)| LatencyMs {
            p50: Some(p50),
            p95: Some(p95),
            p99: Some(p99),
            max: Some(max),
        }),
        started: Some(started),
        duration_s: Some(duration_s),
        main_phase_s: Some(main_secs),
        harness_cpu_main_s: Some(harness_cpu_main_s),
        interrupted: Some(interrupted),
        seed: Some(seed),
        events: Some(history.len()),
        run_dir: Some(run.path.clone()),
        warnings,
        ..ResultsFile::new()
    };
    run.write_json("results.json", &results)?;
    for note in crate::report_cmd::after_run(&run.path, &args.store) {
        tracing::info!("{note}");
    }
    let outcome = RunOutcome {
        run_dir: run.path.clone(),
        verdict,
        explanation,
        ops_per_sec,
        p50_ms: lat.map(|l| l.0),
        p99_ms: lat.map(|l| l.2),
        availability,
        ok: tok,
        fail: tfail,
        info: tinfo,
        seed,
        interrupted,
    };
    tracing::info!(verdict = ?outcome.verdict, ops_per_sec, "run finished");
    if !args.quiet {
        print_summary(&outcome);
    }
    Ok(outcome)
}

/// With membership steps: the throughput around each change ([`membership::figures`]) in
/// `membership.json`, and a line of the summary for them and for the changes that failed.
async fn membership_figures(run: &RunDir, ctx: &RunContext, quiet: bool) -> Option<String> {
    let tried = ctx.members.summary().await?;
    let events = checker::history::read_jsonl(&run.file("history.jsonl")).unwrap_or_default();
    let figs = membership::figures::around_changes(&events);
    if let Err(e) = run.write_json("membership.json", &figs) {
        tracing::warn!("cannot write membership.json: {e:#}");
    }
    let line = match membership::figures::summary(&figs) {
        Some(f) => format!("{tried}\n            {f}"),
        None => tried,
    };
    tracing::info!("membership: {line}");
    if !quiet {
        crate::outln!("membership: {line}");
    }
    Some(line)
}

/// A run in which no operation succeeded proves nothing, whatever the checker says: the node may
/// not be answering at all. Like an empty history in `harness check`, it is no plain valid.
fn no_evidence(
    verdict: Verdict,
    explanation: String,
    counts: (u64, u64, u64),
) -> (Verdict, String) {
    let (ok, fail, info) = counts;
    if verdict != Verdict::Valid || ok > 0 {
        return (verdict, explanation);
    }
    let why = format!(
        "no client operation succeeded ({fail} fail, {info} info), so the history says nothing \
         about consistency; is the node answering? (see the errors in history.jsonl)"
    );
    (Verdict::Unknown, why)
}

/// The final phase, skipped once the run is interrupted or its history cannot be written:
/// heal every fault, wait `--recovery-time`, read every key from every node, and ask each node
/// for its stats.
async fn final_phase(
    args: &TestArgs,
    ctx: &RunContext,
    faults: &Faults,
    clients: &Arc<Clients>,
    progress: &Progress,
) -> serde_json::Map<String, Value> {
    let mut node_stats = serde_json::Map::new();
    let stopped = || cluster::interrupted() || ctx.history.write_error().is_some();
    // Whatever step is under way when a signal comes or the history fails ends at once.
    let until_stopped = || async {
        tokio::select! {
            _ = cluster::wait_interrupt() => {}
            _ = ctx.history.wait_failed() => {}
        }
    };
    if stopped() {
        return node_stats;
    }
    progress.set_phase("healing");
    tokio::select! {
        r = heal_everything(ctx, faults) => if let Err(e) = r {
            tracing::error!("healing failed: {e:#}");
            progress.println(&format!("harness: healing failed: {e:#}"));
        },
        _ = until_stopped() => return node_stats,
    }
    // A run that never injected a fault has nothing to recover from.
    let recovery = if faults.schedule.windows.is_empty() {
        0.0
    } else {
        args.recovery_time
    };
    progress.set_phase("recovery");
    tokio::select! {
        _ = tokio::time::sleep(duration::secs(recovery)) => {}
        _ = until_stopped() => return node_stats,
    }
    progress.set_phase("final reads");
    let keys = clients
        .generator
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .keys_used();
    tokio::select! {
        _ = clients.final_reads(keys) => {}
        _ = until_stopped() => return node_stats,
    }
    for (id, addr) in &clients.nodes {
        tokio::select! {
            s = client::fetch_stats(*addr, Duration::from_secs(1)) => {
                node_stats.insert(id.clone(), s.unwrap_or(Value::Null));
            }
            _ = until_stopped() => break,
        }
    }
    node_stats
}

/// Reports the nodes that exited by themselves, then stops every node (and reaps it).
async fn stop_nodes(cluster: &Cluster, progress: &Progress) {
    // After a signal the harness killed them itself.
    let count = if cluster::interrupted() {
        0
    } else {
        cluster.len()
    };
    for i in 0..count {
        if let Some(status) = cluster.exited(i).await {
            let id = &cluster.plan.nodes[i].id;
            tracing::warn!(node = %id, %status, "node exited on its own during the run");
            progress.println(&format!(
                "harness: node {id} exited on its own ({status}); see nodes/{id}.log"
            ));
        }
    }
    cluster.shutdown().await;
}

/// How long an interrupted run may spend checking the history it has.
const INTERRUPTED_CHECK: Duration = Duration::from_secs(1);

async fn check_history(args: &TestArgs, path: &std::path::Path, history: &History) -> CheckResult {
    let unknown = |explanation: String| CheckResult {
        verdict: Verdict::Unknown,
        explanation,
        counterexample: None,
        keys: 0,
        ops: 0,
        states_explored: 0,
        elapsed_ms: 0.0,
    };
    if args.no_check {
        return unknown("not checked (--no-check)".into());
    }
    if let Some(e) = history.write_error() {
        return unknown(format!("the history could not be written completely: {e}"));
    }
    let events = match checker::history::read_jsonl(path) {
        Ok(ev) => ev,
        Err(e) => return unknown(format!("cannot read the history: {e}")),
    };
    let workload = args.workload;
    // An interrupted run still checks its prefix, but briefly: the user asked it to end.
    let mut limit = duration::secs(args.check_time_limit);
    if cluster::interrupted() {
        limit = limit.min(INTERRUPTED_CHECK);
    }
    let opts = CheckOptions {
        time_limit: Some(limit),
        // `validate` refused a bad value before the run.
        memory_limit_bytes: crate::check_cmd::memory_limit_bytes(args.memory_limit)
            .unwrap_or_default(),
        ..Default::default()
    };
    let work = tokio::task::spawn_blocking(move || workloads::check(workload, &events, &opts));
    let res = tokio::select! {
        r = work => r,
        // The search thread is left to the process exit; the run ends now.
        _ = cluster::wait_interrupt(), if !cluster::interrupted() => {
            return unknown("interrupted while checking".into());
        }
    };
    match res {
        Ok(Ok(r)) => r,
        Ok(Err(msg)) => unknown(format!("checker: {msg}")),
        Err(e) => unknown(format!("checker crashed: {e}")),
    }
}

/// User + system CPU seconds of the harness process, or of its reaped children (the nodes).
pub fn cpu_secs(children: bool) -> f64 {
    use nix::libc;
    let who = if children {
        libc::RUSAGE_CHILDREN
    } else {
        libc::RUSAGE_SELF
    };
    // SAFETY: getrusage only fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut u) } != 0 {
        return 0.0;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn print_summary(o: &RunOutcome) {
    let verdict = match o.verdict {
        Verdict::Valid => "valid",
        Verdict::Invalid => "INVALID",
        Verdict::Unknown => "unknown",
    };
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2} ms"));
    crate::outln!("verdict:    {verdict}: {}", o.explanation);
    crate::outln!(
        "operations: {} ok, {} fail, {} info ({:.0}% answered in the main phase)",
        o.ok,
        o.fail,
        o.info,
        o.availability * 100.0
    );
    crate::outln!(
        "throughput: {:.1} ops/s   latency p50 {}  p99 {}",
        o.ops_per_sec,
        ms(o.p50_ms),
        ms(o.p99_ms)
    );
    crate::outln!("run folder: {}", o.run_dir.display());
}

/// Suites spawn runs as tasks: the run future must stay `Send`.
#[cfg(test)]
fn _run_test_is_send(
    a: &TestArgs,
) -> impl std::future::Future<Output = Result<RunOutcome>> + Send + '_ {
    run_test(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_exit_code_wins() {
        assert_eq!(worse(0, 3), 3);
        assert_eq!(worse(3, 1), 1);
        assert_eq!(worse(1, 0), 1);
    }
}
