//! Membership changes in the simulation: an admin asks a random node, now and then while faults
//! run, to add a node, remove one or replace one (among 5 nodes, 3 of them members at start),
//! with the same oracles as every run.

use super::{Ev, Sim};
use paxos_node::core::{Bugs, Variant};
use paxos_node::kv::{Op, OpResult};
use rand::Rng;

/// Admin requests' tags: far above the client ops' (which index `Sim::ops`).
const ADMIN_TAG: u64 = 1 << 40;

pub fn is_admin(tag: u64) -> bool {
    tag >= ADMIN_TAG
}

impl Sim {
    /// A run with faults and membership changes, `members` at start.
    pub fn with_members(seed: u64, variant: Variant, members: u64) -> Sim {
        Sim::build(seed, 5, variant, Bugs::default(), true, members)
    }

    /// Asks a random node for a change of `target`: add, remove or replace one node, keeping
    /// between 3 and all nodes as members so a fault or two leaves a quorum.
    pub(super) fn reconfigure(&mut self) {
        if self.now >= self.stop_faults_at {
            return;
        }
        let next = self.now + self.rng.gen_range(100_000..300_000);
        self.at(next, Ev::Reconfigure);
        let all = (1u64 << self.n) - 1;
        let pick = |rng: &mut rand::rngs::SmallRng, set: u64| {
            let nodes: Vec<u32> = (0..64).filter(|i| set & (1 << i) != 0).collect();
            1u64 << nodes[rng.gen_range(0..nodes.len())]
        };
        let (inside, outside) = (self.target, all & !self.target);
        let count = inside.count_ones();
        let new = match self.rng.gen_range(0..3) {
            0 if outside != 0 => inside | pick(&mut self.rng, outside),
            1 if count > 3 => inside & !pick(&mut self.rng, inside),
            _ if outside != 0 => {
                (inside & !pick(&mut self.rng, inside)) | pick(&mut self.rng, outside)
            }
            _ => inside & !pick(&mut self.rng, inside),
        };
        self.target = new;
        self.reconfigs_sent += 1;
        let node = self.rng.gen_range(0..self.n);
        let tag = ADMIN_TAG + self.reconfigs_sent;
        let op = Op::Reconfigure { members: new };
        let d = self.rng.gen_range(50..500);
        self.at(self.now + d, Ev::Request { node, tag, op });
    }

    pub(super) fn on_admin_reply(&mut self, result: OpResult) {
        if result == OpResult::Reconfigured {
            self.reconfigs_ok += 1;
        }
    }

    /// The members in force at each live node now (from its `stats`).
    pub fn members_in_force(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .flatten()
            .map(|c| c.stats()["members"])
            .collect()
    }
}

/// Runs one seed with membership changes among the faults (5 nodes, members 0-2 at start);
/// returns the violation, if any. Panics on a liveness failure of the correct node, or if no
/// change was made.
pub fn run_membership_seed(seed: u64, variant: Variant, bugs: Bugs) -> Result<(), String> {
    let mut sim = Sim::build(seed, 5, variant, bugs, true, 0b00111);
    sim.run(sim.stop_clients_at);
    for _ in 0..50 {
        if sim.converged() || sim.violation.is_some() {
            break;
        }
        sim.run(sim.now + 100_000);
    }
    sim.check()?;
    if bugs == Bugs::default() {
        let progress = sim.ok_count_after(sim.stop_faults_at);
        assert!(
            progress >= 5,
            "seed {seed} {variant:?}: only {progress} ops succeeded after healing"
        );
        let applied = sim.applied();
        assert!(
            applied.iter().all(|a| *a == applied[0]),
            "seed {seed} {variant:?}: replicas did not converge: {applied:?}"
        );
        let members = sim.members_in_force();
        assert!(
            members.iter().all(|m| *m == members[0]),
            "seed {seed} {variant:?}: nodes disagree on the members in force: {members:?}"
        );
    }
    Ok(())
}
