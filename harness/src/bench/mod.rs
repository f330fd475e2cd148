//! `harness bench`: measurements that are benchmarks, not timed tests. Each prints its figures as
//! medians over several runs.

mod clients;
mod net;
mod paxos;
mod proxy;
mod trend;

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Client capacity against a trivial in-memory node.
    Clients(clients::Args),
    /// Added latency and message rate of one proxy hop.
    Proxy(proxy::Args),
    /// Throughput and latency of paxos-node clusters, Basic vs Multi.
    Paxos(paxos::Args),
    /// The two network modes side by side: partition apply/heal latency, paxos-node ops/s.
    Net(net::Args),
    /// Builds the trend page over synthetic nights (365 × 50 runs by default): time and size.
    Trend(trend::Args),
}

pub fn run(args: BenchArgs) -> Result<u8, crate::SetupError> {
    match args.what {
        What::Clients(a) => clients::run(a),
        What::Proxy(a) => proxy::run(a),
        What::Paxos(a) => paxos::run(a),
        What::Net(a) => net::run(a),
        What::Trend(a) => trend::run(a),
    }
}
