//! `harness bench net`: the two network modes side by side. Partition latency: milliseconds from
//! the nemesis's decision to the cut being in force (proxy: every link proxy told; netns: the
//! nftables transaction committed in every namespace) and back (heal), for the `majority`
//! topology on `--nodes` nodes. Throughput: client ops/s and p50 of paxos-node (Multi, no faults,
//! no check) in each mode. Runs alternate between the modes (A B A B) and figures are medians.
//! A benchmark: it prints, never asserts. Netns mode needs root, `ip` and `nft`.

use crate::net::netns::NetNs;
use crate::net::nft::Firewall;
use crate::proxy::{NetOptions, Network, PartitionMode};
use crate::schedule::{cut_links, topology_grudge, Target};
use crate::test_args::TestArgs;
use crate::test_cmd::run_test;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Cluster size.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Partition apply/heal rounds per mode.
    #[arg(long, default_value_t = 30)]
    partitions: usize,
    /// paxos-node runs per mode; ops/s figures are medians over them.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds of load per paxos-node run.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Client processes.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Where the paxos-node runs are stored.
    #[arg(long, default_value = "results/bench-net")]
    store: PathBuf,
}

pub fn run(a: Args) -> Result<u8, crate::SetupError> {
    const BENCH: &str = "harness bench net";
    if a.nodes < 2 || a.partitions == 0 || a.runs == 0 || a.seconds <= 0.0 {
        return Err(crate::SetupError::msg(
            BENCH,
            "need --nodes >= 2 and positive --partitions, --runs, --seconds",
        ));
    }
    crate::cluster::install_guards();
    bench(&a)
        .map(|()| 0)
        .map_err(|e| crate::SetupError::new(BENCH, e))
}

fn bench(a: &Args) -> anyhow::Result<()> {
    let ids: Vec<String> = (1..=a.nodes).map(|i| format!("n{i}")).collect();
    let links = cut_links(&topology_grudge(Target::Majority, &ids).expect("a topology"));
    let dummy: Vec<(String, SocketAddr)> = ids
        .iter()
        .map(|id| (id.clone(), SocketAddr::from(([127, 0, 0, 1], 9))))
        .collect();
    let proxies = Network::start_dedicated(&dummy, NetOptions::default())?;
    let netns = Arc::new(NetNs::create(&ids, None)?);
    let fw = Firewall::new(netns.clone(), PartitionMode::Silent);
    crate::outln!(
        "net bench: {} nodes, majority partition ({} directed links cut), {} rounds per mode",
        a.nodes,
        links.len(),
        a.partitions
    );
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let (mut p_on, mut p_off, mut n_on, mut n_off) = (vec![], vec![], vec![], vec![]);
    for _ in 0..a.partitions {
        let t = Instant::now();
        proxies.set_cut(&links);
        p_on.push(ms(t));
        let t = Instant::now();
        proxies.heal_all();
        p_off.push(ms(t));
        let t = Instant::now();
        fw.set_cut(&links)?;
        n_on.push(ms(t));
        let t = Instant::now();
        fw.heal()?;
        n_off.push(ms(t));
    }
    drop(fw);
    drop(netns);
    drop(proxies);

    let rt = crate::test_cmd::runtime()?;
    let (mut p_ops, mut n_ops, mut p_lat, mut n_lat) = (vec![], vec![], vec![], vec![]);
    for run in 0..a.runs {
        for mode in ["proxy", "netns"] {
            let argv = [
                "--nodes".to_string(),
                a.nodes.to_string(),
                "--net".into(),
                mode.into(),
                "--nemesis".into(),
                "none".into(),
                "--time-limit".into(),
                a.seconds.to_string(),
                "--concurrency".into(),
                a.concurrency.to_string(),
                "--no-check".into(),
                "--quiet".into(),
                "--store".into(),
                a.store.display().to_string(),
                "--name".into(),
                format!("net-{mode}"),
                "--seed".into(),
                (run as u64 + 1).to_string(),
            ];
            let args = TestArgs::from_argv(argv).map_err(|e| anyhow::anyhow!("{e}"))?;
            let o = rt.block_on(run_test(&args))?;
            crate::outln!(
                "run {}: {mode:5} {:.0} ops/s, p50 {:.2} ms",
                run + 1,
                o.ops_per_sec,
                o.p50_ms.unwrap_or(f64::NAN)
            );
            let (ops, lat) = if mode == "proxy" {
                (&mut p_ops, &mut p_lat)
            } else {
                (&mut n_ops, &mut n_lat)
            };
            ops.push(o.ops_per_sec);
            lat.push(o.p50_ms.unwrap_or(f64::NAN));
            if o.interrupted {
                anyhow::bail!("interrupted");
            }
        }
    }
    crate::outln!("medians:");
    crate::outln!("| | proxy | netns |");
    crate::outln!("|---|---|---|");
    crate::outln!(
        "| partition apply, ms (p50 / max) | {} | {} |",
        spread(p_on),
        spread(n_on)
    );
    crate::outln!(
        "| partition heal, ms (p50 / max) | {} | {} |",
        spread(p_off),
        spread(n_off)
    );
    crate::outln!(
        "| paxos-node multi, ops/s | {:.0} | {:.0} |",
        median(p_ops),
        median(n_ops)
    );
    crate::outln!(
        "| paxos-node multi, client p50 ms | {:.2} | {:.2} |",
        median(p_lat),
        median(n_lat)
    );
    Ok(())
}

fn spread(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!("{:.3} / {:.3}", v[v.len() / 2], v[v.len() - 1])
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
