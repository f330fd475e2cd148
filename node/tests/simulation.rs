//! Deterministic simulation of the protocol core under faults (the driver is in `sim`). Each run
//! checks that no slot is decided with two values (a decision counts once the effects of the
//! batch that learned it may leave), that replicas converge on the same state, and that every
//! client result is linearizable with respect to the decided log.
//!
//! `PAXOS_SIM_SEEDS` (seeds per variant) and `PAXOS_SIM_FIRST_SEED` choose the seeds of the
//! `*_is_safe_under_faults` tests. `SIM_TRACE=1` prints every event of a run; with
//! `PAXOS_SIM_SEEDS=1 PAXOS_SIM_FIRST_SEED=N` and `--nocapture` that is the story of one failing
//! seed. The examples `print_counts` and `debug_seed` summarise runs.

mod sim;

use paxos_node::core::{Bugs, Variant};
use paxos_node::shell::MAX_BATCH;
use sim::membership::run_membership_seed;
use sim::{run_seed, Sim};

/// Seeds per variant: `PAXOS_SIM_SEEDS` (default `count`), starting at `PAXOS_SIM_FIRST_SEED`.
fn seeds(variant: Variant, count: u64) {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let count = env("PAXOS_SIM_SEEDS").unwrap_or(count);
    let first = env("PAXOS_SIM_FIRST_SEED").unwrap_or(0);
    for seed in first..first + count {
        let n = if seed % 3 == 2 { 5 } else { 3 };
        if let Err(v) = run_seed(seed, n, variant, Bugs::default()) {
            panic!("seed {seed} {variant:?} n={n}: {v}");
        }
    }
}

#[test]
fn multi_paxos_is_safe_under_faults() {
    seeds(Variant::Multi, 2000);
}

#[test]
fn basic_paxos_is_safe_under_faults() {
    seeds(Variant::Basic, 2000);
}

#[test]
fn quiet_network_makes_progress_on_both_variants() {
    for variant in [Variant::Basic, Variant::Multi] {
        let mut sim = Sim::new(7, 3, variant, Bugs::default(), false);
        sim.run(sim.stop_clients_at + 500_000);
        sim.check().unwrap();
        let ok = sim.ok_count_after(0);
        assert!(
            ok > 100,
            "{variant:?}: only {ok} ops completed without faults"
        );
    }
}

/// The paths that need several inputs in one batch are taken: decisions folded into the next
/// accept, several commands forwarded at once, batches up to the shell's largest.
#[test]
fn batches_hold_several_inputs() {
    let mut sim = Sim::new(3, 5, Variant::Multi, Bugs::default(), true);
    sim.run(sim.stop_clients_at);
    sim.check().unwrap();
    let mean = sim.batched_inputs as f64 / sim.batches as f64;
    eprintln!(
        "batches {} mean {mean:.2} largest {} folded decides {} multi-command forwards {}",
        sim.batches, sim.largest_batch, sim.folded_decides, sim.multi_forwards
    );
    assert!(
        sim.largest_batch >= 8 && sim.largest_batch <= MAX_BATCH,
        "largest batch {}",
        sim.largest_batch
    );
    assert!(mean > 1.1, "{mean:.2} inputs per batch");
    assert!(sim.folded_decides > 0 && sim.multi_forwards > 0);
}

#[test]
fn thrifty_leader_makes_only_a_majority_sync() {
    let syncs_per_slot = |thrifty: bool| {
        let mut sim = Sim::new(11, 5, Variant::Multi, Bugs::default(), false);
        sim.thrifty = Some(thrifty);
        (0..5).for_each(|i| sim.start(i));
        sim.run(sim.stop_clients_at + 500_000);
        sim.check().unwrap();
        assert!(
            sim.ok_count_after(0) > 100,
            "thrifty {thrifty}: no progress"
        );
        sim.syncs as f64 / sim.decided.len() as f64
    };
    let (thrifty, everyone) = (syncs_per_slot(true), syncs_per_slot(false));
    eprintln!("syncs per slot: thrifty {thrifty:.2}, everyone {everyone:.2}");
    // 3 voters of 5 would make 0.6; group commit merges some syncs in both cases.
    assert!(
        thrifty < 0.8 * everyone,
        "thrifty {thrifty:.2} syncs per slot vs {everyone:.2} when everyone votes"
    );
}

/// With `bug` on, some seed must show a violation.
fn finds(bug: &str, variant: Variant, max_seeds: u64) {
    let mut bugs = Bugs::default();
    bugs.enable(bug).unwrap();
    for seed in 0..max_seeds {
        if let Err(v) = run_seed(seed, 3, variant, bugs) {
            eprintln!("{bug}: seed {seed}: {v}");
            return;
        }
    }
    panic!("{bug} ({variant:?}) went unnoticed in {max_seeds} seeds");
}

#[test]
fn finds_volatile_acceptor() {
    finds("volatile-acceptor", Variant::Multi, 200);
}

#[test]
fn finds_ignore_promised_value() {
    finds("ignore-promised-value", Variant::Multi, 200);
}

#[test]
fn finds_ignore_promised_value_in_basic() {
    finds("ignore-promised-value", Variant::Basic, 400);
}

#[test]
fn finds_volatile_acceptor_in_basic() {
    finds("volatile-acceptor", Variant::Basic, 400);
}

#[test]
fn finds_local_read_in_basic() {
    finds("local-read", Variant::Basic, 400);
}

#[test]
fn finds_accept_below_promise() {
    finds("accept-below-promise", Variant::Basic, 200);
}

#[test]
fn finds_local_read() {
    finds("local-read", Variant::Multi, 200);
}

#[test]
fn finds_lease_read() {
    finds("lease-read", Variant::Multi, 200);
}

/// Seeds with membership changes (adds, removes, replaces among 5 nodes) among the faults.
fn membership_seeds(variant: Variant, count: u64) {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let count = env("PAXOS_SIM_SEEDS").unwrap_or(count);
    let first = env("PAXOS_SIM_FIRST_SEED").unwrap_or(0);
    for seed in first..first + count {
        if let Err(v) = run_membership_seed(seed, variant, Bugs::default()) {
            panic!("seed {seed} {variant:?} with membership changes: {v}");
        }
    }
}

#[test]
fn multi_paxos_is_safe_under_membership_changes() {
    membership_seeds(Variant::Multi, 1000);
}

#[test]
fn basic_paxos_is_safe_under_membership_changes() {
    membership_seeds(Variant::Basic, 1000);
}

/// A run with changes really changes the members: some change is answered `reconfigure_ok`,
/// and the nodes agree on members other than those at start.
#[test]
fn membership_changes_take_effect() {
    for variant in [Variant::Basic, Variant::Multi] {
        let mut changed = 0;
        for seed in 0..20 {
            let mut sim = Sim::with_members(seed, variant, 0b00111);
            sim.run(sim.stop_clients_at + 500_000);
            sim.check().unwrap();
            assert!(
                sim.reconfigs_sent > 0,
                "{variant:?} seed {seed}: no change asked"
            );
            let members = sim.members_in_force();
            if sim.reconfigs_ok > 0 && members.iter().all(|m| *m == members[0] && *m != 0b00111) {
                changed += 1;
            }
        }
        assert!(
            changed >= 10,
            "{variant:?}: only {changed} of 20 runs changed the members"
        );
    }
}

/// With `bug` on, at least `min_found` of `seeds` seeds with membership changes show a violation.
fn finds_with_changes(bug: &str, variant: Variant, seeds: u64, min_found: u64) {
    let mut bugs = Bugs::default();
    bugs.enable(bug).unwrap();
    let found = (0..seeds)
        .filter(|seed| run_membership_seed(*seed, variant, bugs).is_err())
        .count() as u64;
    eprintln!("{bug} ({variant:?}): found in {found} of {seeds} seeds");
    assert!(
        found >= min_found,
        "{bug} ({variant:?}) found in only {found} of {seeds} seeds with membership changes"
    );
}

#[test]
fn finds_removed_vote() {
    finds_with_changes("removed-vote", Variant::Multi, 50, 3);
}

#[test]
fn finds_removed_vote_in_basic() {
    finds_with_changes("removed-vote", Variant::Basic, 50, 25);
}

/// The bug needs membership changes: without them every node is a member and it is harmless.
#[test]
fn removed_vote_is_harmless_without_changes() {
    let mut bugs = Bugs::default();
    bugs.enable("removed-vote").unwrap();
    for seed in 0..30 {
        run_seed(seed, 3, Variant::Multi, bugs).unwrap();
    }
}
