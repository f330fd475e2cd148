//! Linearizability search: Wing & Gong's backtracking search with Lowe's cache of
//! (linearized set, state), run per independent part (P-compositionality) on all cores.
//!
//! The core is [`search`]. Operations become entries in two flat, index-linked lists ordered by
//! history position: completed ops (call and return entries) and ops that never returned (call
//! entries only; they may take effect any time after their call, or never, so they are tried last).
//! At each node the candidates are the calls before the first pending return. The linearized set
//! is never stored: it is the set of entries lifted out of the lists, and the cache keeps only a
//! 128-bit incremental (Zobrist) hash of it combined with a hash of the state. A false "seen
//! before" needs a 128-bit collision, far rarer than a hardware fault.
//!
//! One dominance rule keeps crashed writes cheap: a never-returned op that overwrites the state
//! without looking at it ([`PartModel::is_blind`]) is only linearized if an op that looks at the
//! state follows it, since otherwise leaving it out ("never happened") reaches the same states.

use crate::history::Event;
use crate::model::{pair, Model, Operation, PartModel, Timed};
use crate::verdict::{CheckOptions, CheckResult, Verdict, DEFAULT_MEMORY_LIMIT};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// Limits for one search; checked every few thousand steps.
pub struct Budget<'a> {
    pub deadline: Option<Instant>,
    pub memory_limit: Option<u64>,
    /// Bytes held by all searches running at once (shared across threads).
    pub memory_used: &'a AtomicU64,
    /// True when the search is no longer wanted (another key already failed).
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
}

impl Budget<'_> {
    /// Which limit ran out, if any.
    fn exceeded(&self) -> Option<&'static str> {
        if (self.cancelled)() {
            Some("cancelled")
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some("time limit")
        } else if (self.memory_limit).is_some_and(|m| self.memory_used.load(Ordering::Relaxed) > m)
        {
            Some("memory limit")
        } else {
            None
        }
    }
}

/// How a search ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Search {
    Linearizable,
    /// `linearized`: the longest sequence of ops (indices into the searched slice) that could be
    /// linearized; `blocked`: the op that could not be linearized after it.
    NotLinearizable {
        linearized: Vec<usize>,
        blocked: usize,
    },
    /// Budget ran out ("time limit", "memory limit") or the search was cancelled.
    OutOfBudget {
        reason: &'static str,
        deepest: usize,
    },
}

struct Frame<S> {
    entry: u32,
    state: S,
    bound: usize,
    pend: bool,
    blind_pending: bool,
    /// A read-only op linearized without branching: backtrack past this node.
    forced: bool,
}

/// Searches for a linearization of `ops` from `part.init()`. `done` is called at every node where
/// all returned ops are linearized, with the state there; returning true ends the search as
/// linearizable, false keeps exploring (used to enumerate the states possible at a point).
/// Returns the outcome and the number of distinct (set, state) nodes explored.
pub fn search<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    budget: &Budget,
    done: &mut dyn FnMut(&P::State) -> bool,
) -> (Search, u64) {
    let n = ops.len();
    let (main, pendh) = (2 * n as u32, 2 * n as u32 + 1);
    let mut next: Vec<u32> = (0..2 * n as u32 + 2).collect();
    let mut prev = next.clone();
    let pos = |e: u32| {
        let t = &ops[e as usize / 2];
        if e & 1 == 0 {
            t.call
        } else {
            t.ret.unwrap_or(usize::MAX)
        }
    };
    let mut order: Vec<u32> = (0..n as u32)
        .flat_map(|i| [2 * i, 2 * i + 1])
        .filter(|&e| e & 1 == 0 || ops[e as usize / 2].ret.is_some())
        .collect();
    order.sort_unstable_by_key(|&e| pos(e));
    let (mut tail_main, mut tail_pend) = (main, pendh);
    for &e in &order {
        let (head, tail) = match ops[e as usize / 2].ret {
            Some(_) => (main, &mut tail_main),
            None => (pendh, &mut tail_pend),
        };
        (next[*tail as usize], prev[e as usize], next[e as usize]) = (e, *tail, head);
        prev[head as usize] = e;
        *tail = e;
    }
    let unlink = |next: &mut [u32], prev: &mut [u32], x: u32| {
        let (p, nx) = (prev[x as usize], next[x as usize]);
        next[p as usize] = nx;
        prev[nx as usize] = p;
    };
    let relink = |next: &mut [u32], prev: &mut [u32], x: u32| {
        let (p, nx) = (prev[x as usize], next[x as usize]);
        next[p as usize] = x;
        prev[nx as usize] = x;
    };

    // Crashed ops that are interchangeable are used in call order: `twin[i]` is the previous one.
    let crashed: Vec<usize> = (0..n).filter(|&i| ops[i].ret.is_none()).collect();
    let mut twin = vec![usize::MAX; n];
    for (k, &i) in crashed.iter().enumerate() {
        let earlier = crashed[..k].iter().rev().take(64);
        if let Some(&j) = earlier
            .clone()
            .find(|&&j| part.interchangeable(&ops[j].op, &ops[i].op))
        {
            twin[i] = j;
        }
    }
    let total = ops.iter().filter(|t| t.ret.is_some()).count();
    let (mut remaining, mut best_progress) = (total, 0);
    let mut state = part.init();
    if remaining == 0 && done(&state) {
        return (Search::Linearizable, 0);
    }
    let mut seen = Seen::default();
    let mut plin: Vec<u32> = Vec::new(); // never-returned ops linearized on this path, sorted
    let (mut z1, mut z2) = (0u64, 0u64);
    let mut stack: Vec<Frame<P::State>> = Vec::new();
    let (mut best, mut blocked, mut same) = (Vec::<usize>::new(), None, 0usize);
    let (mut e, mut pend, mut bound) = (next[main as usize], false, 0usize);
    // `fresh`: at a node not yet looked at; `forcing`: trying a read-only op without branching.
    let (mut fresh, mut forcing, mut steps, mut reported) = (true, false, 0u64, 0u64);
    loop {
        steps += 1;
        if steps % 4096 == 0 {
            let bytes = (seen.bytes() + stack.capacity() * size_of::<Frame<P::State>>()) as u64;
            budget
                .memory_used
                .fetch_add(bytes.wrapping_sub(reported), Ordering::Relaxed);
            reported = bytes;
            if let Some(reason) = budget.exceeded() {
                budget.memory_used.fetch_sub(reported, Ordering::Relaxed);
                let deepest = best_progress;
                return (Search::OutOfBudget { reason, deepest }, seen.states);
            }
        }
        if std::mem::take(&mut fresh) {
            // A read-only op that is legal now can be linearized now without trying anything
            // else first: any order placing it later works with it moved here.
            let mut c = next[main as usize];
            while c != main && c & 1 == 0 {
                let op = &ops[c as usize / 2].op;
                if part.is_read_only(op) && part.step(&state, op).is_some() {
                    (e, forcing) = (c, true);
                    break;
                }
                c = next[c as usize];
            }
        }
        if !pend && (e == main || e & 1 == 1) {
            // The first unlinearized return: only calls before it are candidates.
            // Progress is counted in returned ops linearized (crashed ops may pad the stack).
            let progress = total - remaining;
            if e != main && (blocked.is_none() || progress > best_progress) {
                best_progress = progress;
                best.truncate(same);
                best.extend(stack[same..].iter().map(|f| f.entry as usize / 2));
                (same, blocked) = (stack.len(), Some(e as usize / 2));
            }
            let bound_here = if e == main { usize::MAX } else { pos(e) };
            (pend, bound, e) = (true, bound_here, next[pendh as usize]);
            continue;
        }
        if pend && (e == pendh || pos(e) >= bound) {
            // No candidate left here: backtrack.
            let Some(f) = stack.pop() else {
                budget.memory_used.fetch_sub(reported, Ordering::Relaxed);
                let result = match blocked {
                    Some(blocked) => Search::NotLinearizable {
                        linearized: best,
                        blocked,
                    },
                    None => Search::Linearizable, // enumeration finished
                };
                return (result, seen.states);
            };
            let i = f.entry as usize / 2;
            if f.pend {
                plin.retain(|&x| x as usize != i);
            } else {
                relink(&mut next, &mut prev, f.entry + 1);
                remaining += 1;
                (z1, z2) = (z1 ^ zobrist(i, 1), z2 ^ zobrist(i, 2));
            }
            relink(&mut next, &mut prev, f.entry);
            (state, pend, bound, e) = (f.state, f.pend, f.bound, next[f.entry as usize]);
            if f.forced {
                (pend, e) = (true, pendh);
            }
            same = same.min(stack.len());
            continue;
        }
        let i = e as usize / 2;
        let op = &ops[i].op;
        let pruned = (stack.last().is_some_and(|f| f.blind_pending) && part.is_blind(op))
            || (pend && twin[i] != usize::MAX && plin.binary_search(&(twin[i] as u32)).is_err());
        if let Some(ns) = part.step(&state, op).filter(|_| !pruned) {
            let (a, b) = match pend {
                true => (z1, z2),
                false => (z1 ^ zobrist(i, 1), z2 ^ zobrist(i, 2)),
            };
            let key = ((a ^ hash_state(&ns, 1)) as u128) << 64 | (b ^ hash_state(&ns, 2)) as u128;
            let at = plin.partition_point(|&x| (x as usize) < i);
            if pend {
                plin.insert(at, i as u32);
            }
            if seen.visit(key, &plin) {
                if same == stack.len() && best.get(same) == Some(&i) {
                    same += 1;
                }
                let blind_pending = pend;
                let old = std::mem::replace(&mut state, ns);
                let forced = std::mem::take(&mut forcing);
                stack.push(Frame {
                    entry: e,
                    state: old,
                    bound,
                    pend,
                    blind_pending,
                    forced,
                });
                unlink(&mut next, &mut prev, e);
                if !pend {
                    unlink(&mut next, &mut prev, e + 1);
                    remaining -= 1;
                }
                (z1, z2) = (a, b);
                if remaining == 0 && done(&state) {
                    budget.memory_used.fetch_sub(reported, Ordering::Relaxed);
                    return (Search::Linearizable, seen.states);
                }
                (pend, e, fresh) = (false, next[main as usize], true);
                continue;
            }
            if pend {
                plin.remove(at);
            }
        }
        if std::mem::take(&mut forcing) {
            // Linearizing the read-only op here leads to a node seen before: nothing new here.
            (pend, e) = (true, pendh);
            continue;
        }
        e = next[e as usize];
    }
}

/// Lowe's cache, keyed by a hash of the returned ops linearized and the state. Never-returned
/// ops are kept out of the hash: a node whose linearized never-returned ops are a superset of an
/// already seen node's (same key) is dominated, since those ops could also be left out for ever.
#[derive(Default)]
struct Seen {
    plain: HashSet<u128, BuildHasherDefault<KeyHasher>>,
    with_pending: HashMap<u128, Vec<Box<[u32]>>, BuildHasherDefault<KeyHasher>>,
    pending_bytes: usize,
    states: u64,
}

impl Seen {
    /// Records a node; false if it (or a node dominating it) was seen before.
    fn visit(&mut self, key: u128, pending: &[u32]) -> bool {
        if self.plain.contains(&key) {
            return false;
        }
        if pending.is_empty() {
            self.plain.insert(key);
            self.with_pending.remove(&key);
        } else {
            let sets = self.with_pending.entry(key).or_default();
            if sets.iter().any(|q| is_subset(q, pending)) {
                return false;
            }
            sets.retain(|q| !is_subset(pending, q));
            sets.push(pending.into());
            self.pending_bytes += 24 + 4 * pending.len();
        }
        self.states += 1;
        true
    }

    fn bytes(&self) -> usize {
        self.plain.capacity() * 17 + self.with_pending.capacity() * 41 + self.pending_bytes
    }
}

/// Whether sorted `a` is a subset of sorted `b`.
fn is_subset(a: &[u32], b: &[u32]) -> bool {
    let mut b = b.iter();
    a.iter().all(|x| b.any(|y| y == x))
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

/// The cache keys are already uniform hashes: use their low bits.
#[derive(Default)]
struct KeyHasher(u64);
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

/// One independent part of a history, ready to search.
pub struct Prepared<'h, P: PartModel> {
    pub key: String,
    pub part: P,
    /// Model ops with their real-time intervals, and the history operation each came from.
    pub ops: Vec<Timed<P::Op>>,
    pub source: Vec<&'h Operation>,
}

/// Pairs the events, splits them into parts and builds each part's model. Errors name the event.
pub fn prepare<'h, M: Model>(
    model: &M,
    operations: &'h [Operation],
) -> Result<Vec<Prepared<'h, M::Part>>, String> {
    let mut parts: BTreeMap<String, Vec<&Operation>> = BTreeMap::new();
    for op in operations {
        parts.entry(model.part_of(op)?).or_default().push(op);
    }
    let mut out = Vec::with_capacity(parts.len());
    for (key, all) in parts {
        let (part, converted) = model.build(&all)?;
        let (mut ops, mut source) = (Vec::new(), Vec::new());
        for (op, m) in all.into_iter().zip(converted) {
            if let Some(m) = m {
                ops.push(Timed {
                    op: m,
                    call: op.call_pos,
                    ret: op.ret_pos,
                });
                source.push(op);
            }
        }
        if !ops.is_empty() {
            out.push(Prepared {
                key,
                part,
                ops,
                source,
            });
        }
    }
    Ok(out)
}

/// What one part's check found.
pub enum PartVerdict {
    Valid,
    /// From the cheap pre-check (`reason`) or from the search.
    Invalid {
        linearized: Vec<usize>,
        blocked: usize,
        reason: Option<String>,
        /// Non-empty: these ops alone (indices, `blocked` among them) show it; explain only them.
        witness: Vec<usize>,
    },
    Unknown {
        reason: &'static str,
        deepest: usize,
    },
}

/// Checks one part: the cheap necessary condition, then the search.
pub fn check_part<P: PartModel>(p: &Prepared<P>, budget: &Budget) -> (PartVerdict, u64) {
    if let Some((blocked, reason)) = p.part.impossible(&p.ops) {
        let v = PartVerdict::Invalid {
            linearized: vec![],
            blocked,
            reason: Some(reason),
            witness: vec![],
        };
        return (v, 0);
    }
    // Only where crashed ops can make the search blow up: elsewhere the search is fast and its
    // explanation (the values possible, the concurrent ops) says more.
    let crashed = p.ops.iter().any(|t| t.ret.is_none());
    if let Some((blocked, witness)) = crashed.then(|| p.part.certainly_blocked(&p.ops)).flatten() {
        let v = PartVerdict::Invalid {
            linearized: vec![],
            blocked,
            reason: None,
            witness,
        };
        return (v, 0);
    }
    match search(&p.part, &p.ops, budget, &mut |_| true) {
        (Search::Linearizable, n) => (PartVerdict::Valid, n),
        (
            Search::NotLinearizable {
                linearized,
                blocked,
            },
            n,
        ) => (
            PartVerdict::Invalid {
                linearized,
                blocked,
                reason: None,
                witness: vec![],
            },
            n,
        ),
        (Search::OutOfBudget { reason, deepest }, n) => {
            (PartVerdict::Unknown { reason, deepest }, n)
        }
    }
}

/// Checks a whole history against `model`: pairs events, checks every part (keys in parallel),
/// and explains the first failing key (in key order).
pub fn check_events<M: Model>(
    model: &M,
    events: &[Event],
    opts: &CheckOptions,
) -> Result<CheckResult, String> {
    let started = Instant::now();
    let operations = pair(events)?;
    let mut parts = prepare(model, &operations)?;
    let deadline = opts.time_limit.map(|d| started + d);
    let results = check_parts(&parts, opts, deadline);
    let states: u64 = results.iter().map(|r| r.1).sum();
    let ops = parts.iter().map(|p| p.ops.len()).sum();
    let mut result = CheckResult {
        verdict: Verdict::Valid,
        explanation: String::new(),
        counterexample: None,
        keys: parts.len(),
        ops,
        states_explored: states,
        elapsed_ms: 0.0,
    };
    let invalid = results
        .iter()
        .position(|r| matches!(r.0, PartVerdict::Invalid { .. }));
    let unknown = results
        .iter()
        .position(|r| matches!(r.0, PartVerdict::Unknown { .. }));
    if let Some(i) = invalid {
        let PartVerdict::Invalid {
            linearized,
            blocked,
            reason,
            witness,
        } = &results[i].0
        else {
            unreachable!()
        };
        let mut p = parts.swap_remove(i);
        let (mut linearized, mut blocked) = (linearized.clone(), *blocked);
        if let Some(b) = witness.iter().position(|&w| w == blocked) {
            // The whole part may be too hard to search (crashed ops): explain the few ops alone.
            blocked = b;
            p.ops = witness.iter().map(|&w| p.ops[w].clone()).collect();
            p.source = witness.iter().map(|&w| p.source[w]).collect();
            linearized.clear();
        }
        let (text, json) =
            crate::explain::explain(&p, &linearized, blocked, reason.as_deref(), deadline);
        result.verdict = Verdict::Invalid;
        result.explanation = text;
        result.counterexample = Some(json);
    } else if let Some(i) = unknown {
        let PartVerdict::Unknown { reason, deepest } = &results[i].0 else {
            unreachable!()
        };
        let done = results
            .iter()
            .filter(|r| matches!(r.0, PartVerdict::Valid))
            .count();
        let p = &parts[i];
        result.verdict = Verdict::Unknown;
        result.explanation = format!(
            "unknown: the {reason} ran out while checking {}, after linearizing {deepest} of its \
             {} ops; {done} of {} keys were checked and found linearizable; {states} states \
             explored",
            key_name(&p.key),
            p.ops.len(),
            parts.len()
        );
    } else {
        result.explanation = format!(
            "ok: {ops} ops over {} key{} are linearizable",
            parts.len(),
            if parts.len() == 1 { "" } else { "s" }
        );
    }
    result.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(result)
}

/// "key k7", or "the register" for the single unnamed part.
pub fn key_name(key: &str) -> String {
    if key.is_empty() {
        "the register".to_string()
    } else {
        format!("key {key}")
    }
}

/// Runs every part's check on a pool of scoped threads, largest parts first. Once a part is
/// invalid, parts after it in key order are cancelled (their verdict cannot change the outcome).
fn check_parts<P: PartModel>(
    parts: &[Prepared<P>],
    opts: &CheckOptions,
    deadline: Option<Instant>,
) -> Vec<(PartVerdict, u64)> {
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(parts.len().max(1));
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(parts[i].ops.len()));
    let (next, first_invalid, memory) = (
        AtomicUsize::new(0),
        AtomicUsize::new(usize::MAX),
        AtomicU64::new(0),
    );
    let mut slots: Vec<Option<(PartVerdict, u64)>> = (0..parts.len()).map(|_| None).collect();
    let worker = || {
        let mut mine = Vec::new();
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&i) = order.get(k) else { break };
            // Any invalid key settles the verdict, so every other search stops (as Porcupine
            // does); the lowest invalid key that finished is the one explained.
            let cancelled = || first_invalid.load(Ordering::Relaxed) != usize::MAX;
            let budget = Budget {
                deadline,
                memory_limit: Some(opts.memory_limit_bytes.unwrap_or(DEFAULT_MEMORY_LIMIT)),
                memory_used: &memory,
                cancelled: &cancelled,
            };
            let r = check_part(&parts[i], &budget);
            if matches!(r.0, PartVerdict::Invalid { .. }) {
                first_invalid.fetch_min(i, Ordering::Relaxed);
            }
            mine.push((i, r));
        }
        mine
    };
    let all: Vec<Vec<(usize, (PartVerdict, u64))>> = if threads <= 1 {
        vec![worker()]
    } else {
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
            hs.into_iter()
                .map(|h| h.join().expect("checker thread panicked"))
                .collect()
        })
    };
    for (i, r) in all.into_iter().flatten() {
        slots[i] = Some(r);
    }
    slots
        .into_iter()
        .map(|s| s.expect("every part checked"))
        .collect()
}
