//! Operation generators: what each client process asks next.
//!
//! `register` drives one key with read, write and cas over a small value range. `kv` drives many
//! independent keys, a small group of processes per key and a bounded number of operations per
//! key, like Jepsen's `independent/concurrent-generator`: each key's history stays short enough to
//! check quickly, and the keys are checked independently.

use crate::Workload;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Values are drawn from `0..VALUE_RANGE`; a small range makes cas succeed often enough.
pub const VALUE_RANGE: i64 = 5;

/// The key the single-register workload uses on the wire. Its history events carry no `key`.
pub const REGISTER_WIRE_KEY: &str = "r";

/// One operation to invoke.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// `read` | `write` | `cas`.
    pub f: &'static str,
    /// The key recorded in the history; `None` for the single register.
    pub key: Option<String>,
    /// read: null; write: the integer; cas: `[from, to]`.
    pub value: Value,
}

impl Op {
    /// The key sent to the node.
    pub fn wire_key(&self) -> &str {
        self.key.as_deref().unwrap_or(REGISTER_WIRE_KEY)
    }

    /// A read of `key` (`None` = the single register), as the final phase issues.
    pub fn read(key: Option<String>) -> Op {
        Op {
            f: "read",
            key,
            value: Value::Null,
        }
    }
}

/// Produces operations for client processes. `slot` is the logical process slot `0..concurrency`
/// (a process id modulo the concurrency), so slots sharing a key stay together.
pub trait Generator: Send {
    fn next_op(&mut self, slot: usize) -> Op;
    /// Every key handed out so far, for the final reads (`None` = the single register).
    fn keys_used(&self) -> Vec<Option<String>>;
}

/// The generator for a workload.
pub fn generator(workload: Workload, concurrency: usize, seed: u64) -> Box<dyn Generator> {
    match workload {
        Workload::Register => Box::new(RegisterGen {
            rng: SmallRng::seed_from_u64(seed),
        }),
        Workload::Kv => Box::new(KvGen::new(
            concurrency,
            seed,
            KvGen::PROCS_PER_KEY,
            KvGen::OPS_PER_KEY,
        )),
    }
}

fn random_op(rng: &mut SmallRng, key: Option<String>) -> Op {
    let (f, value) = match rng.gen_range(0..3) {
        0 => ("read", Value::Null),
        1 => ("write", json!(rng.gen_range(0..VALUE_RANGE))),
        _ => (
            "cas",
            json!([rng.gen_range(0..VALUE_RANGE), rng.gen_range(0..VALUE_RANGE)]),
        ),
    };
    Op { f, key, value }
}

struct RegisterGen {
    rng: SmallRng,
}

impl Generator for RegisterGen {
    fn next_op(&mut self, _slot: usize) -> Op {
        random_op(&mut self.rng, None)
    }
    fn keys_used(&self) -> Vec<Option<String>> {
        vec![None]
    }
}

/// Groups of `procs_per_key` slots share a key; after `ops_per_key` invocations the group moves
/// on to a fresh key.
pub struct KvGen {
    rng: SmallRng,
    procs_per_key: usize,
    ops_per_key: usize,
    /// Per group: current key number and invocations issued on it.
    groups: Vec<(u64, usize)>,
    next_key: u64,
}

impl KvGen {
    pub const PROCS_PER_KEY: usize = 3;
    pub const OPS_PER_KEY: usize = 60;

    pub fn new(concurrency: usize, seed: u64, procs_per_key: usize, ops_per_key: usize) -> Self {
        let procs_per_key = procs_per_key.max(1);
        let n_groups = concurrency.max(1).div_ceil(procs_per_key);
        KvGen {
            rng: SmallRng::seed_from_u64(seed),
            procs_per_key,
            ops_per_key: ops_per_key.max(1),
            groups: (0..n_groups as u64).map(|k| (k, 0)).collect(),
            next_key: n_groups as u64,
        }
    }
}

impl Generator for KvGen {
    fn next_op(&mut self, slot: usize) -> Op {
        let g = (slot / self.procs_per_key) % self.groups.len();
        if self.groups[g].1 >= self.ops_per_key {
            self.groups[g] = (self.next_key, 0);
            self.next_key += 1;
        }
        self.groups[g].1 += 1;
        let key = format!("k{}", self.groups[g].0);
        random_op(&mut self.rng, Some(key))
    }
    fn keys_used(&self) -> Vec<Option<String>> {
        // Keys are numbered densely; groups that never ran still count, harmlessly.
        (0..self.next_key).map(|k| Some(format!("k{k}"))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_ops_have_no_key_and_small_values() {
        let mut g = generator(Workload::Register, 4, 1);
        for _ in 0..200 {
            let op = g.next_op(0);
            assert_eq!(op.key, None);
            assert_eq!(op.wire_key(), REGISTER_WIRE_KEY);
            match op.f {
                "read" => assert!(op.value.is_null()),
                "write" => assert!((0..VALUE_RANGE).contains(&op.value.as_i64().unwrap())),
                "cas" => assert_eq!(op.value.as_array().unwrap().len(), 2),
                f => panic!("unexpected f {f}"),
            }
        }
        assert_eq!(g.keys_used(), vec![None]);
    }

    #[test]
    fn kv_groups_share_a_key_and_rotate_after_the_budget() {
        let mut g = KvGen::new(6, 7, 3, 4);
        let k0: Vec<_> = (0..3).map(|s| g.next_op(s).key.unwrap()).collect();
        assert!(k0.iter().all(|k| k == &k0[0]), "{k0:?}");
        let other = g.next_op(3).key.unwrap();
        assert_ne!(other, k0[0]);
        // Group 0 has used 3 of 4; the 5th op of the group goes to a new key.
        let fourth = g.next_op(0).key.unwrap();
        let fifth = g.next_op(1).key.unwrap();
        assert_eq!(fourth, k0[0]);
        assert_ne!(fifth, k0[0]);
        assert!(g.keys_used().contains(&Some(fifth)));
    }

    #[test]
    fn same_seed_same_ops() {
        let a: Vec<_> = {
            let mut g = generator(Workload::Kv, 5, 42);
            (0..50).map(|i| g.next_op(i % 5)).collect()
        };
        let mut g = generator(Workload::Kv, 5, 42);
        let b: Vec<_> = (0..50).map(|i| g.next_op(i % 5)).collect();
        assert_eq!(a, b);
    }
}
