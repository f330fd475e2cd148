//! `harness bench clients`: client capacity of the harness against a trivial in-memory node.
//!
//! Each run is a real `harness test` run (one `tiny_node` process, `--concurrency 32`, no faults,
//! no check). Figures per run: completed operations per second as recorded in the history
//! (every `ok`/`fail`/`info` completion during the main phase), harness CPU time per operation,
//! and the harness's resident memory growth per million operations; medians over `--runs`.

use crate::test_args::TestArgs;
use crate::test_cmd::{cpu_secs, run_test};
use crate::SetupError;
use anyhow::{anyhow, bail, Context, Result};
use report::run_files::ResultsFile;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Number of runs; medians are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 5.0)]
    time_limit: f64,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The trivial node (default: examples/tiny_node next to the harness, built if missing).
    #[arg(long)]
    node_bin: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<u8, SetupError> {
    bench(&args)
        .map(|()| 0)
        .map_err(|e| SetupError::new("harness bench clients", e))
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    completed_per_s: f64,
    ok_per_s: f64,
    cpu_us_per_op: f64,
    node_cpu_us_per_op: f64,
    rss_growth_mb_per_mop: f64,
    hwm_mb: f64,
}

fn bench(args: &Args) -> Result<()> {
    let node = match &args.node_bin {
        Some(p) => p.clone(),
        None => tiny_node_bin()?,
    };
    let store = std::env::temp_dir().join(format!("harness-bench-clients-{}", std::process::id()));
    let rt = crate::test_cmd::runtime()?;
    let mut samples = Vec::new();
    crate::outln!(
        "bench clients: {} runs x {}s, concurrency {}, node {}",
        args.runs,
        args.time_limit,
        args.concurrency,
        node.display()
    );
    // Run 0 warms up the allocator and page cache and is not counted.
    for i in 0..=args.runs.max(1) {
        let test = TestArgs::from_argv([
            "--nodes".to_string(),
            "1".into(),
            "--node-bin".into(),
            node.display().to_string(),
            "--concurrency".into(),
            args.concurrency.to_string(),
            "--time-limit".into(),
            args.time_limit.to_string(),
            "--recovery-time".into(),
            "0".into(),
            "--nemesis".into(),
            "none".into(),
            "--no-check".into(),
            "--quiet".into(),
            "--store".into(),
            store.display().to_string(),
            "--name".into(),
            "bench-clients".into(),
            "--seed".into(),
            i.to_string(),
        ])?;
        let rss0 = proc_status_kb("VmRSS")?;
        let child0 = cpu_secs(true);
        let outcome = rt.block_on(run_test(&test))?;
        let child1 = cpu_secs(true);
        let rss1 = proc_status_kb("VmRSS")?;
        let hwm = proc_status_kb("VmHWM")?;
        let (completed, main_s, main_cpu) = main_phase_figures(&outcome.run_dir)?;
        let ops = completed as f64;
        let s = Sample {
            completed_per_s: ops / main_s,
            ok_per_s: outcome.ops_per_sec,
            cpu_us_per_op: main_cpu * 1e6 / ops.max(1.0),
            node_cpu_us_per_op: (child1 - child0) * 1e6 / ops.max(1.0),
            rss_growth_mb_per_mop: (rss1 as f64 - rss0 as f64).max(0.0)
                / 1024.0
                / (ops / 1e6).max(1e-9),
            hwm_mb: hwm as f64 / 1024.0,
        };
        let _ = std::fs::remove_dir_all(&store);
        if i == 0 {
            continue;
        }
        crate::outln!(
            "run {}: {:>9.0} completed ops/s ({:.0} ok/s), harness {:.1} us CPU/op (main phase), node {:.1} us \
             CPU/op, RSS growth {:.2} MB per million ops, VmHWM {:.1} MB",
            i,
            s.completed_per_s,
            s.ok_per_s,
            s.cpu_us_per_op,
            s.node_cpu_us_per_op,
            s.rss_growth_mb_per_mop,
            s.hwm_mb
        );
        samples.push(s);
    }
    let med = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    crate::outln!(
        "median: {:.0} completed ops/s ({:.0} ok/s), harness {:.1} us CPU/op, node {:.1} us CPU/op, \
         RSS growth {:.2} MB per million ops, peak VmHWM {:.1} MB (target >= 30000 ops/s)",
        med(|s| s.completed_per_s),
        med(|s| s.ok_per_s),
        med(|s| s.cpu_us_per_op),
        med(|s| s.node_cpu_us_per_op),
        med(|s| s.rss_growth_mb_per_mop),
        samples.iter().map(|s| s.hwm_mb).fold(0.0, f64::max)
    );
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Completion events of client operations during the main phase, its length in seconds and the
/// harness CPU seconds it took.
fn main_phase_figures(run_dir: &Path) -> Result<(u64, f64, f64)> {
    let results = ResultsFile::read(run_dir).map_err(|e| anyhow!("{e}"))?;
    let main_s = results
        .main_phase_s
        .context("results.json: no main_phase_s")?;
    let cpu = results.harness_cpu_main_s.unwrap_or(f64::NAN);
    let end_ns = (main_s * 1e9) as u64;
    let events = checker::history::read_jsonl(&run_dir.join("history.jsonl"))?;
    let n = events
        .iter()
        .filter(|e| e.kind != checker::history::EventType::Invoke && !e.is_nemesis())
        .filter(|e| e.time <= end_ns)
        .count();
    Ok((n as u64, main_s, cpu))
}

fn proc_status_kb(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("/proc/self/status has no {field}"))
}

/// `examples/tiny_node` next to the harness; built with cargo when the harness was built from
/// this workspace and the example is missing.
fn tiny_node_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("harness has no directory")?;
    let bin = dir.join("examples").join("tiny_node");
    if bin.is_file() {
        return Ok(bin);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if !workspace.join("harness/examples/tiny_node.rs").is_file() {
        bail!("{} not found; pass --node-bin", bin.display());
    }
    let release = dir.file_name().is_some_and(|n| n != "debug");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "-p",
            "harness",
            "--example",
            "tiny_node",
            "--target-dir",
        ])
        .arg(dir.parent().context("no target dir")?);
    if release {
        cmd.arg("--release");
    }
    crate::errln!("harness: building the tiny_node example for the benchmark");
    if !cmd.status()?.success() || !bin.is_file() {
        bail!("building tiny_node failed; pass --node-bin");
    }
    Ok(bin)
}
