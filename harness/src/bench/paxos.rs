//! `harness bench paxos`: throughput and latency of real paxos-node clusters, Basic vs Multi.
//!
//! For every combination of `--nodes`, `--variants` and `--workloads` it runs `harness test`
//! (through [`crate::test_cmd::run_test`], proxies on every link, durability on, no faults, no
//! linearizability check) `--runs` times and prints the median ops/s, p50 and p99, then the
//! Multi/Basic throughput ratio. `--power-layer off,on` measures each run without and with the
//! power-cut layer (docs/faults.md, "Power cuts"). Targets on a 2-core machine: Multi >= 10,000 ops/s at
//! concurrency 32, >= 10x Basic, p50 < 2 ms. A benchmark, not a test: it prints, never asserts.
use crate::SetupError;

use crate::test_args::TestArgs;
use crate::test_cmd::run_test;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Runs per configuration; figures are medians over them.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds of load per run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Client processes.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Cluster sizes.
    #[arg(long, value_delimiter = ',', default_value = "3,5")]
    nodes: Vec<usize>,
    /// Variants: basic, multi.
    #[arg(long, value_delimiter = ',', default_value = "basic,multi")]
    variants: Vec<String>,
    /// Workloads: register, kv.
    #[arg(long, value_delimiter = ',', default_value = "register,kv")]
    workloads: Vec<String>,
    /// Where the runs are stored.
    #[arg(long, default_value = "results/bench-paxos")]
    store: PathBuf,
    /// Seconds without a reply before an operation counts as info.
    #[arg(long, default_value_t = 5.0)]
    op_timeout: f64,
    /// With or without the power-cut layer under every data dir (off, on, or off,on: then each
    /// run measures both, one after the other, so the two see the same machine). With it
    /// on, runs use `--nemesis power-cut` with an interval too long for any cut to happen.
    #[arg(long, value_delimiter = ',', default_value = "off", value_parser = ["off", "on"])]
    power_layer: Vec<String>,
    /// A paxos-node build to measure instead of the default (e.g. a copy of an older build,
    /// for a before/after comparison); it gets `--variant` like the default one.
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// Arguments appended to every node's command line (e.g. `-- --thrifty false`).
    #[arg(last = true, value_name = "NODE_ARGS")]
    node_args: Vec<String>,
}

struct Row {
    nodes: usize,
    layer: String,
    variant: String,
    workload: String,
    ops: f64,
    p50: f64,
    p99: f64,
}

const BENCH: &str = "harness bench paxos";

pub fn run(a: Args) -> Result<u8, SetupError> {
    if a.runs == 0 || a.seconds <= 0.0 || a.concurrency == 0 {
        return Err(SetupError::msg(
            BENCH,
            "--runs, --seconds and --concurrency must be positive",
        ));
    }
    let rt = crate::test_cmd::runtime()
        .map_err(|e| SetupError::msg(BENCH, format!("cannot start the async runtime: {e}")))?;
    let mut rows = Vec::new();
    for &nodes in &a.nodes {
        for workload in &a.workloads {
            for variant in &a.variants {
                let layers = a.power_layer.len();
                let (mut ops, mut p50, mut p99) = (
                    vec![vec![]; layers],
                    vec![vec![]; layers],
                    vec![vec![]; layers],
                );
                for (run, (l, layer)) in
                    (0..a.runs).flat_map(|r| a.power_layer.iter().enumerate().map(move |l| (r, l)))
                {
                    let mut argv = vec![
                        "--nodes".to_string(),
                        nodes.to_string(),
                        "--variant".into(),
                        variant.clone(),
                        "--workload".into(),
                        workload.clone(),
                        "--concurrency".into(),
                        a.concurrency.to_string(),
                        "--time-limit".into(),
                        a.seconds.to_string(),
                        "--op-timeout".into(),
                        a.op_timeout.to_string(),
                        "--recovery-time".into(),
                        "0".into(),
                        "--nemesis".into(),
                        if layer == "on" { "power-cut" } else { "none" }.into(),
                        "--nemesis-interval".into(),
                        (a.seconds * 4.0).to_string(),
                        "--seed".into(),
                        (run as u64 + 1).to_string(),
                        "--store".into(),
                        a.store.display().to_string(),
                        "--name".into(),
                        format!("{variant}-{workload}-{nodes}n"),
                        "--no-check".into(),
                        "--quiet".into(),
                    ];
                    if let Some(bin) = &a.node_bin {
                        argv.extend(["--node-bin".into(), bin.display().to_string()]);
                    }
                    argv.push("--".into());
                    if a.node_bin.is_some() {
                        argv.extend(["--variant".into(), variant.clone()]);
                    }
                    argv.extend(a.node_args.iter().cloned());
                    let args = TestArgs::from_argv(argv).map_err(|e| SetupError::msg(BENCH, e))?;
                    match rt.block_on(run_test(&args)) {
                        Ok(o) => {
                            crate::errln!(
                                "  {nodes} nodes {variant:5} {workload:8} layer {layer:3} run {}: {:.0} ops/s, p50 {:.2} ms, p99 {:.2} ms ({})",
                                run + 1,
                                o.ops_per_sec,
                                o.p50_ms.unwrap_or(f64::NAN),
                                o.p99_ms.unwrap_or(f64::NAN),
                                o.run_dir.display()
                            );
                            ops[l].push(o.ops_per_sec);
                            p50[l].push(o.p50_ms.unwrap_or(f64::NAN));
                            p99[l].push(o.p99_ms.unwrap_or(f64::NAN));
                        }
                        Err(e) => {
                            return Err(SetupError::new(
                                BENCH,
                                e.context(format!("{nodes} nodes {variant} {workload}")),
                            ))
                        }
                    }
                }
                for (l, layer) in a.power_layer.iter().enumerate() {
                    rows.push(Row {
                        nodes,
                        layer: layer.clone(),
                        variant: variant.clone(),
                        workload: workload.clone(),
                        ops: median(std::mem::take(&mut ops[l])),
                        p50: median(std::mem::take(&mut p50[l])),
                        p99: median(std::mem::take(&mut p99[l])),
                    });
                }
            }
        }
    }
    print_table(&rows, &a);
    Ok(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn print_table(rows: &[Row], a: &Args) {
    crate::outln!(
        "paxos-node, concurrency {}, {} s per run, median of {} runs, durability on, no faults",
        a.concurrency,
        a.seconds,
        a.runs
    );
    crate::outln!();
    crate::outln!(
        "| nodes | variant | workload | power-cut layer | ops/s | p50 ms | p99 ms | multi/basic |"
    );
    crate::outln!("|---:|---|---|---|---:|---:|---:|---:|");
    for r in rows {
        let basic = rows.iter().find(|b| {
            b.variant == "basic"
                && b.nodes == r.nodes
                && b.workload == r.workload
                && b.layer == r.layer
        });
        let ratio = match basic {
            Some(b) if r.variant == "multi" && b.ops > 0.0 => format!("{:.1}x", r.ops / b.ops),
            _ => String::new(),
        };
        crate::outln!(
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {} |",
            r.nodes,
            r.variant,
            r.workload,
            r.layer,
            r.ops,
            r.p50,
            r.p99,
            ratio
        );
    }
}
