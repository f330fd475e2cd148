//! Hashing for the cache: a 128-bit key per search node, built from an incremental (Zobrist)
//! hash of the returned ops linearized and a hash of the state. A false "seen before" needs a
//! 128-bit collision, far rarer than a hardware fault.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// The two 64-bit halves of the Zobrist hash of a set of ops.
pub(super) type OpsHash = (u64, u64);

/// `h` with op `i` added or removed (XOR is its own inverse).
#[inline]
pub(super) fn toggle(h: OpsHash, i: usize) -> OpsHash {
    (h.0 ^ zobrist(i, 1), h.1 ^ zobrist(i, 2))
}

/// The hash of the union of two disjoint sets of ops (such as the placed ops that change the
/// state and the placed reads: an op is one or the other), from theirs.
#[inline]
pub(super) fn union(a: OpsHash, b: OpsHash) -> OpsHash {
    (a.0 ^ b.0, a.1 ^ b.1)
}

/// The cache key of a node: its linearized ops and its state.
#[inline]
pub(super) fn node_key<S: Hash>(ops: OpsHash, state: &S) -> u128 {
    ((ops.0 ^ hash_state(state, 1)) as u128) << 64 | (ops.1 ^ hash_state(state, 2)) as u128
}

/// A fixed pseudo-random 64-bit value per (op, table): splitmix64.
fn zobrist(i: usize, table: u64) -> u64 {
    mix((i as u64).wrapping_mul(2).wrapping_add(table))
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn hash_state<S: Hash>(s: &S, seed: u64) -> u64 {
    let mut h = FxLike(seed.wrapping_mul(0x51_7CC1_B727_220A));
    s.hash(&mut h);
    mix(h.0 ^ seed)
}

/// A fast word hasher; its output is mixed again by [`hash_state`].
struct FxLike(u64);
impl Hasher for FxLike {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(*b as u64);
        }
    }
    fn write_u64(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7CC1_B727_220A);
    }
    fn write_u32(&mut self, w: u32) {
        self.write_u64(w as u64)
    }
    fn write_usize(&mut self, w: usize) {
        self.write_u64(w as u64)
    }
}

/// Maps and sets keyed by [`node_key`]s, hashed by [`KeyHasher`] (the standard hasher cost
/// the frontier a twentieth of its time).
pub(super) type KeyMap<V> = HashMap<u128, V, BuildHasherDefault<KeyHasher>>;
pub(super) type KeySet = HashSet<u128, BuildHasherDefault<KeyHasher>>;

/// The cache's own hasher: its keys are already uniform hashes, so use their low bits.
#[derive(Default)]
pub(super) struct KeyHasher(u64);
impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u128 keys are hashed")
    }
    fn write_u128(&mut self, k: u128) {
        self.0 = k as u64 ^ (k >> 64) as u64;
    }
}
