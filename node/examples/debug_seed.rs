//! Runs one simulation seed under faults and prints each surviving node's learner state and
//! counters: where to start when a seed fails (then `SIM_TRACE=1` for every event).
//!
//! `cargo run --release -p paxos-node --example debug_seed -- SEED [NODES] [basic|multi]`
//! (defaults: 3 nodes, multi). `DEBUG_MEMBERSHIP=1`: the run with membership changes instead
//! (5 nodes, 3 members at start; NODES is then ignored).

// The examples use part of the simulation's driver; the rest serves the simulation test.
#[allow(dead_code)]
#[path = "../tests/sim/mod.rs"]
mod sim;

use paxos_node::core::{Bugs, Variant};
use sim::Sim;

fn parse(args: &[String]) -> Result<(u64, usize, Variant), String> {
    let seed = match args.first() {
        Some(s) => s.parse().map_err(|e| format!("SEED {s:?}: {e}"))?,
        None => return Err("missing SEED".into()),
    };
    let n = match args.get(1) {
        Some(s) => s.parse().map_err(|e| format!("NODES {s:?}: {e}"))?,
        None => 3,
    };
    if !(2..=paxos_node::core::MAX_NODES).contains(&n) {
        return Err(format!(
            "NODES {n}: between 2 and {}",
            paxos_node::core::MAX_NODES
        ));
    }
    let variant = match args.get(2).map(String::as_str) {
        None | Some("multi") => Variant::Multi,
        Some("basic") => Variant::Basic,
        Some(v) => return Err(format!("variant {v:?}: basic or multi")),
    };
    Ok((seed, n, variant))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (seed, n, variant) = parse(&args).unwrap_or_else(|e| {
        eprintln!("debug_seed: {e}\nusage: debug_seed SEED [NODES] [basic|multi]");
        std::process::exit(2);
    });
    let mut sim = match std::env::var_os("DEBUG_MEMBERSHIP") {
        Some(_) => Sim::with_members(seed, variant, 0b00111),
        None => Sim::new(seed, n, variant, Bugs::default(), true),
    };
    sim.run(sim.stop_clients_at + 1_000_000);
    for (i, c) in sim.nodes.iter().enumerate() {
        if let Some(c) = c {
            println!("node {i}: {}\n   {:?}", c.debug_state(), c.stats());
        }
    }
    println!(
        "ok after healing: {}; changes asked {}, ok {}",
        sim.ok_count_after(sim.stop_faults_at),
        sim.reconfigs_sent,
        sim.reconfigs_ok
    );
    if let Err(v) = sim.check() {
        println!("violation: {v}");
    }
}
