//! paxos-node: a replicated key-value store over Basic Paxos or Multi-Paxos that speaks the node
//! contract (docs/node-contract.md).

use clap::Parser;
use paxos_node::core::{Bugs, Timing, Variant};
use paxos_node::shell::{self, ShellConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "paxos-node", version, about)]
struct Args {
    /// This node's name (n1 ... nN).
    #[arg(long)]
    id: String,
    /// Where peers connect to this node.
    #[arg(long)]
    listen: SocketAddr,
    /// Where clients connect (JSON lines).
    #[arg(long)]
    client: SocketAddr,
    /// Every other node as id=addr, comma separated (empty for a one-node cluster).
    #[arg(long, default_value = "")]
    peers: String,
    /// The nodes that are members at start, comma separated (default: this node and every
    /// peer). The others start as non-members: they follow the log and vote once a
    /// `reconfigure` adds them. Every node of a cluster must be given the same list.
    #[arg(long)]
    members: Option<String>,
    /// Directory for durable state (kept across restarts).
    #[arg(long)]
    data_dir: PathBuf,
    /// basic: both phases per command; multi: stable leader, phase 2 only.
    #[arg(long, value_enum, default_value = "multi")]
    variant: VariantArg,
    /// Turn on a seeded bug (repeatable): volatile-acceptor, ignore-promised-value,
    /// accept-below-promise, local-read, lease-read, unsynced-wal, clock-lease, removed-vote.
    #[arg(long = "bug", value_parser = parse_bug)]
    bugs: Vec<String>,
    /// Timer tick in milliseconds (timeouts are counted in ticks).
    #[arg(long, default_value_t = 5)]
    tick_ms: u64,
    /// Multi-Paxos: slots in flight at once (fewer means bigger batches); never more than
    /// α = 16 past the last applied slot, so that every slot's configuration is known.
    #[arg(long, default_value_t = Timing::default().window)]
    window: usize,
    /// Multi-Paxos: commands per slot at most.
    #[arg(long, default_value_t = Timing::default().max_batch)]
    max_batch: usize,
    /// Multi-Paxos: commands that must wait before a further slot joins those in flight.
    #[arg(long, default_value_t = Timing::default().pipeline_min)]
    pipeline_min: usize,
    /// Multi-Paxos: ask only a majority to vote on each slot (`false`: every node votes).
    #[arg(long, default_value_t = Timing::default().thrifty, action = clap::ArgAction::Set)]
    thrifty: bool,
    /// Snapshot the applied state and truncate the log every this many applied slots.
    #[arg(long, default_value_t = Timing::default().snapshot_every)]
    snapshot_every: u64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum VariantArg {
    Basic,
    Multi,
}

fn parse_peers(s: &str) -> Result<Vec<(String, SocketAddr)>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| parse_peer(p.trim()))
        .collect()
}

fn parse_peer(s: &str) -> Result<(String, SocketAddr), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("peer {s:?} is not id=addr"))?;
    let addr = addr
        .parse()
        .map_err(|e| format!("peer {id}: address {addr:?}: {e}"))?;
    Ok((id.to_string(), addr))
}

fn parse_bug(s: &str) -> Result<String, String> {
    Bugs::default().enable(s)?;
    Ok(s.to_string())
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args = Args::parse();
    let peers = match parse_peers(&args.peers) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("paxos-node: --peers: {e}");
            std::process::exit(2);
        }
    };
    let mut bugs = Bugs::default();
    for b in &args.bugs {
        bugs.enable(b).expect("validated by clap");
    }
    let cfg = ShellConfig {
        id: args.id,
        listen: args.listen,
        client: args.client,
        peers,
        members: args.members.map(|m| {
            m.split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect()
        }),
        data_dir: args.data_dir,
        variant: match args.variant {
            VariantArg::Basic => Variant::Basic,
            VariantArg::Multi => Variant::Multi,
        },
        bugs,
        tick: Duration::from_millis(args.tick_ms.max(1)),
        timing: Timing {
            window: args.window.max(1),
            max_batch: args.max_batch.max(1),
            snapshot_every: args.snapshot_every.max(1),
            pipeline_min: args.pipeline_min,
            thrifty: args.thrifty,
            tick_ms: args.tick_ms.max(1),
            ..Timing::default()
        },
    };
    if let Err(e) = shell::run(cfg) {
        eprintln!("paxos-node: {e:#}");
        std::process::exit(1);
    }
}
