//! Prints what a few simulation seeds did under faults, per variant: operations, how many
//! succeeded (after healing too), how far each replica applied, slots decided, batch sizes.
//!
//! `cargo run --release -p paxos-node --example print_counts [SEEDS]` (default 6).

// The examples use part of the simulation's driver; the rest serves the simulation test.
#[allow(dead_code)]
#[path = "../tests/sim/mod.rs"]
mod sim;

use paxos_node::core::{Bugs, Variant};
use sim::Sim;

fn main() {
    let seeds = match std::env::args().nth(1).map(|s| s.parse::<u64>()) {
        None => 6,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("print_counts: SEEDS must be a number: {e}");
            std::process::exit(2);
        }
    };
    for variant in [Variant::Basic, Variant::Multi] {
        for seed in 0..seeds {
            let mut sim = Sim::new(seed, 3, variant, Bugs::default(), true);
            sim.run(sim.stop_clients_at + 1_000_000);
            let ok = sim.ok_count_after(0);
            let noreply = sim.ops.iter().filter(|o| o.result.is_none()).count();
            let applied = sim.applied();
            println!(
                "{variant:?} seed {seed}: ops {} ok {ok} noreply {noreply} after-heal {} applied {applied:?} decided {} batches {} (largest {})",
                sim.ops.len(),
                sim.ok_count_after(sim.stop_faults_at),
                sim.decided.len(),
                sim.batches,
                sim.largest_batch,
            );
        }
    }
}
