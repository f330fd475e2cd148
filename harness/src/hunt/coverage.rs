//! Steering: what a run reports, bucketed into a coverage signature, and the corpus of
//! configurations that reached buckets no earlier run had reached.
//!
//! A run's signature is a set of `name=bucket` strings: each node counter of interest (summed
//! over nodes from node-stats.json; the ballot as its maximum) in power-of-two buckets like AFL's
//! hit counts (0, 1, 2, 3, 4-7, 8-15, ...), the share of operations answered in tenths paired with
//! the fault kinds that were on (availability per fault mix), and the indeterminate (`info`)
//! operations, also bucketed. The coverage map is the union of all signatures seen. A run whose
//! signature adds buckets puts its configuration in the corpus with energy from the number of
//! new buckets (capped: early runs find everything new); the next configuration is, two times in
//! five, a mutation of a corpus entry picked in proportion to its energy (which then decays, so
//! one lucky entry does not take over), and otherwise a fresh swarm draw. That is greybox
//! fuzzing's loop (as in Mallory, CCS 2023) with node counters for feedback instead of code
//! coverage.

use crate::test_args::TestArgs;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// The counters of paxos-node's `stats` reply that describe protocol states (others, like
/// message counts, grow with the run's length more than with what happened).
const COUNTERS: [&str; 8] = [
    "leader_changes",
    "phase1_rounds",
    "accept_resends",
    "step_downs",
    "resubmits",
    "basic_backoffs",
    "snapshots_installed",
    "local_reads",
];

/// AFL-style bucket of a count: 0, 1, 2, 3, then one per power of two.
pub fn bucket(n: u64) -> u32 {
    match n {
        0..=3 => n as u32,
        _ => 64 - n.leading_zeros() + 1,
    }
}

/// What one run tells the steering.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Counter name → total over nodes (the ballot: its largest round).
    pub counters: Vec<(String, u64)>,
    pub availability: f64,
    pub info_ops: u64,
}

impl Observed {
    /// Reads `node-stats.json` of a run folder (missing or odd files give no counters).
    pub fn read(run_dir: &Path, availability: f64, info_ops: u64) -> Observed {
        let stats: Value = std::fs::read_to_string(run_dir.join("node-stats.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        Observed {
            counters: counters(&stats),
            availability,
            info_ops,
        }
    }

    /// The run's coverage signature, given the fault kinds its configuration had on.
    pub fn signature(&self, faults: &str) -> BTreeSet<String> {
        let mut s: BTreeSet<String> = self
            .counters
            .iter()
            .map(|(k, v)| format!("{k}={}", bucket(*v)))
            .collect();
        let tenth = (self.availability.clamp(0.0, 1.0) * 10.0).floor() as u32;
        s.insert(format!("availability[{faults}]={tenth}"));
        s.insert(format!("info={}", bucket(self.info_ops)));
        s
    }
}

fn counters(stats: &Value) -> Vec<(String, u64)> {
    let Some(nodes) = stats.as_object() else {
        return Vec::new();
    };
    let node_stats: Vec<&serde_json::Map<String, Value>> =
        nodes.values().filter_map(Value::as_object).collect();
    if node_stats.is_empty() {
        return Vec::new();
    }
    let get = |s: &serde_json::Map<String, Value>, k: &str| s.get(k).and_then(Value::as_u64);
    let mut out: Vec<(String, u64)> = COUNTERS
        .iter()
        .map(|k| {
            let total = node_stats.iter().filter_map(|s| get(s, k)).sum();
            (k.to_string(), total)
        })
        .collect();
    let ballot = node_stats
        .iter()
        .filter_map(|s| get(s, "ballot_round"))
        .max()
        .unwrap_or(0);
    out.push(("ballot_round".into(), ballot));
    out
}

/// A configuration that reached new coverage.
#[derive(Clone, Debug)]
pub struct Entry {
    pub config: TestArgs,
    pub energy: f64,
    /// Which run put it here.
    pub run: usize,
}

/// The coverage map and the corpus.
#[derive(Default)]
pub struct Coverage {
    pub seen: BTreeSet<String>,
    pub corpus: Vec<Entry>,
}

/// How often a configuration is a mutation of a corpus entry rather than a fresh draw. Below one
/// half: most coverage is new in the first runs, and a mutation redraws only a few dimensions, so
/// a higher share keeps a short hunt circling its first few configurations.
const MUTATE_SHARE: f64 = 0.4;
/// An entry's energy is multiplied by this each time it is picked.
const DECAY: f64 = 0.6;
/// The most new buckets an entry's energy counts. A hunt's first runs find nearly every bucket
/// new whatever they did (the first run of a 10-minute clock-lease hunt: 11, later runs 1-4), so
/// uncounted, the first configuration and its mutations took 8 of that hunt's 31 runs.
const NEW_BUCKETS_COUNTED: usize = 3;

impl Coverage {
    /// Adds a run's signature; returns how many buckets were new (and keeps the configuration
    /// in the corpus if any were).
    pub fn add(&mut self, run: usize, config: &TestArgs, signature: BTreeSet<String>) -> usize {
        self.add_weighted(run, config, signature, 1.0)
    }

    /// [`Coverage::add`] for a run that kept `availability` of its operations: an entry's energy
    /// is its new buckets (at most [`NEW_BUCKETS_COUNTED`]) and grows as the run's availability falls (up to three times at none), so configurations that
    /// took the cluster down are mutated more often. Lost acceptors and deposed leaders live
    /// there, and new counter buckets alone reward them no more than any other novelty.
    pub fn add_weighted(
        &mut self,
        run: usize,
        config: &TestArgs,
        signature: BTreeSet<String>,
        availability: f64,
    ) -> usize {
        // A run without operations (NaN) tells nothing: plain weight.
        let kept = if availability.is_nan() {
            1.0
        } else {
            availability.clamp(0.0, 1.0)
        };
        let weight = 1.0 + 2.0 * (1.0 - kept);
        let new = signature
            .into_iter()
            .filter(|b| self.seen.insert(b.clone()))
            .count();
        if new > 0 {
            self.corpus.push(Entry {
                config: config.clone(),
                energy: new.min(NEW_BUCKETS_COUNTED) as f64 * weight,
                run,
            });
        }
        new
    }

    /// A parent to mutate (decaying its energy), or `None` for a fresh draw.
    pub fn pick_parent(&mut self, rng: &mut StdRng) -> Option<(usize, TestArgs)> {
        let total: f64 = self.corpus.iter().map(|e| e.energy).sum();
        if total <= 0.0 || !rng.gen_bool(MUTATE_SHARE) {
            return None;
        }
        let mut x = rng.gen_range(0.0..total);
        let i = self
            .corpus
            .iter()
            .position(|e| {
                x -= e.energy;
                x < 0.0
            })
            .unwrap_or(self.corpus.len() - 1);
        let e = &mut self.corpus[i];
        e.energy *= DECAY;
        Some((e.run, e.config.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    #[test]
    fn buckets_grow_by_powers_of_two() {
        let b: Vec<u32> = [0, 1, 2, 3, 4, 7, 8, 15, 16, 1000].map(bucket).to_vec();
        assert_eq!(b, [0, 1, 2, 3, 4, 4, 5, 5, 6, 11]);
    }

    #[test]
    fn signatures_sum_counters_over_nodes() {
        let stats = json!({"n1": {"leader_changes": 2, "ballot_round": 3, "phase1_rounds": 1},
                           "n2": {"leader_changes": 3, "ballot_round": 9}, "n3": null});
        let o = Observed {
            counters: counters(&stats),
            availability: 0.93,
            info_ops: 5,
        };
        let s = o.signature("pause");
        for b in ["leader_changes=4", "ballot_round=5", "phase1_rounds=1"] {
            assert!(s.contains(b), "{b} in {s:?}");
        }
        assert!(
            s.contains("availability[pause]=9") && s.contains("info=4"),
            "{s:?}"
        );
        assert!(counters(&json!({"n1": null})).is_empty());
    }

    #[test]
    fn runs_that_took_the_cluster_down_get_more_energy() {
        let mut c = Coverage::default();
        let a = TestArgs::default();
        let sig = |x: &str| BTreeSet::from([x.to_string()]);
        c.add_weighted(0, &a, sig("x=1"), 1.0);
        c.add_weighted(1, &a, sig("x=2"), 0.2);
        c.add_weighted(2, &a, sig("x=3"), f64::NAN);
        let many = (0..11).map(|i| format!("y={i}")).collect();
        c.add_weighted(3, &a, many, 1.0);
        let e: Vec<f64> = c.corpus.iter().map(|e| e.energy).collect();
        assert_eq!(e[0], 1.0);
        assert!((e[1] - 2.6).abs() < 1e-9, "{e:?}");
        assert_eq!(e[2], 1.0, "no operations: plain weight");
        assert_eq!(e[3], 3.0, "eleven new buckets count as three");
    }

    #[test]
    fn new_buckets_enter_the_corpus_and_steer_the_next_draw() {
        let mut c = Coverage::default();
        let a = TestArgs::default();
        let sig = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        assert_eq!(c.add(0, &a, sig(&["x=1", "y=0"])), 2);
        assert_eq!(c.add(1, &a, sig(&["x=1"])), 0, "nothing new");
        assert_eq!(c.add(2, &a, sig(&["x=2"])), 1);
        assert_eq!(c.corpus.len(), 2);
        let mut rng = StdRng::seed_from_u64(5);
        let picks: Vec<usize> = (0..40)
            .filter_map(|_| c.pick_parent(&mut rng).map(|(run, _)| run))
            .collect();
        assert!(picks.len() > 10 && picks.len() < 35, "{}", picks.len());
        assert!(picks.contains(&0) && picks.contains(&2));
        assert!(
            c.corpus.iter().all(|e| e.energy < 1.0),
            "picking decays energy"
        );
    }
}
