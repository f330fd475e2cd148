//! The `register` model: one read/write/cas register, the product's own workload (and, one per
//! key, the `kv` model's part). Values (integers, strings, any JSON) are interned per key, so a
//! state is a `u32` and a step is a couple of comparisons.

use checker::model::{Model, Operation, Outcome, PartModel, Timed};
use serde_json::Value;
use std::collections::HashMap;

/// A register over read, write and cas. `initial` is the value before any write: null (the
/// default) means never written, so only a read of null sees it; Knossos data uses 0.
#[derive(Clone, Debug, Default)]
pub struct Register {
    pub initial: Value,
}

impl Register {
    pub fn new(initial: Value) -> Self {
        Register { initial }
    }
}

impl Model for Register {
    type Part = RegisterPart;
    fn part_of(&self, _op: &Operation) -> Result<String, String> {
        Ok(String::new())
    }
    fn build(&self, ops: &[&Operation]) -> Result<(RegisterPart, Vec<Option<RegOp>>), String> {
        build_register(&self.initial, ops)
    }
}

/// A register operation over interned values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegOp {
    Read(u32),
    Write(u32),
    Cas(u32, u32),
    /// A cas that failed with `precondition-failed`: the value was not `from`.
    CasFailed(u32),
}

/// One key's register: the interned values and the initial one.
#[derive(Clone, Debug)]
pub struct RegisterPart {
    values: Vec<Value>,
    init: u32,
}

pub(super) fn build_register(
    initial: &Value,
    ops: &[&Operation],
) -> Result<(RegisterPart, Vec<Option<RegOp>>), String> {
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut values = Vec::new();
    let mut intern = |v: &Value| -> u32 {
        *ids.entry(v.to_string()).or_insert_with(|| {
            values.push(v.clone());
            values.len() as u32 - 1
        })
    };
    let init = intern(initial);
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let failed = op.outcome == Outcome::Fail;
        let m = match op.f.as_str() {
            "read" => (op.outcome == Outcome::Ok).then(|| RegOp::Read(intern(&op.output))),
            "write" => (!failed).then(|| RegOp::Write(intern(&op.input))),
            "cas" => {
                let (from, to) = match &op.input {
                    Value::Array(a) if a.len() == 2 => (intern(&a[0]), intern(&a[1])),
                    v => {
                        return Err(format!(
                            "event {}: cas value must be [from, to], got {v}",
                            op.invoke_index
                        ))
                    }
                };
                match (failed, op.error.as_deref()) {
                    (false, _) => Some(RegOp::Cas(from, to)),
                    (true, Some("precondition-failed")) => Some(RegOp::CasFailed(from)),
                    (true, _) => None,
                }
            }
            f => {
                return Err(format!(
                    "event {}: unknown f {f:?} (the register model knows read, write and cas)",
                    op.invoke_index
                ))
            }
        };
        out.push(m);
    }
    Ok((RegisterPart { values, init }, out))
}

impl RegisterPart {
    fn show(&self, v: u32) -> String {
        match &self.values[v as usize] {
            Value::Null => "null (never written)".to_string(),
            v => v.to_string(),
        }
    }
}

impl PartModel for RegisterPart {
    type Op = RegOp;
    type State = u32;
    fn init(&self) -> u32 {
        self.init
    }
    fn step(&self, s: &u32, op: &RegOp) -> Option<u32> {
        match *op {
            RegOp::Read(v) => (v == *s).then_some(v),
            RegOp::Write(v) => Some(v),
            RegOp::Cas(from, to) => (from == *s).then_some(to),
            RegOp::CasFailed(from) => (from != *s).then_some(*s),
        }
    }
    fn is_blind(&self, op: &RegOp) -> bool {
        matches!(op, RegOp::Write(_))
    }
    fn interchangeable(&self, a: &RegOp, b: &RegOp) -> bool {
        a == b
    }
    fn is_read_only(&self, op: &RegOp) -> bool {
        matches!(op, RegOp::Read(_) | RegOp::CasFailed(_))
    }
    fn leaves(&self, op: &RegOp) -> Option<u32> {
        match *op {
            RegOp::Write(v) | RegOp::Cas(_, v) => Some(v),
            RegOp::Read(_) | RegOp::CasFailed(_) => None,
        }
    }
    fn needs(&self, op: &RegOp) -> Option<u32> {
        match *op {
            RegOp::Read(v) | RegOp::Cas(v, _) => Some(v),
            RegOp::Write(_) | RegOp::CasFailed(_) => None,
        }
    }
    fn show_state(&self, s: &u32) -> String {
        self.show(*s)
    }
    fn state_json(&self, s: &u32) -> Value {
        self.values[*s as usize].clone()
    }
    /// A completed read (or cas) of a value that no write or cas invoked before it returned could
    /// have produced.
    fn impossible(&self, ops: &[Timed<RegOp>]) -> Option<(usize, String)> {
        // The two earliest writers of each value (call position, op), so an op is never its own.
        let mut writers = vec![[(usize::MAX, usize::MAX); 2]; self.values.len()];
        for (i, t) in ops.iter().enumerate() {
            if let RegOp::Write(v) | RegOp::Cas(_, v) = t.op {
                let w = &mut writers[v as usize];
                if (t.call, i) < w[0] {
                    w[1] = w[0];
                    w[0] = (t.call, i);
                } else if (t.call, i) < w[1] {
                    w[1] = (t.call, i);
                }
            }
        }
        ops.iter().enumerate().find_map(|(i, t)| {
            let (RegOp::Read(v) | RegOp::Cas(v, _)) = t.op else {
                return None;
            };
            let ret = t.ret?;
            let w = writers[v as usize];
            let first = if w[0].1 == i { w[1].0 } else { w[0].0 };
            (v != self.init && first > ret).then(|| {
                (
                    i,
                    format!(
                        "no write of {} was invoked before it returned",
                        self.show(v)
                    ),
                )
            })
        })
    }

    /// A stale read: a read (or cas) of `v` invoked after a write of another value returned, where
    /// that write was invoked after every write of `v` invoked before the read returned had
    /// returned (none of those crashed). Every order puts the read after that write, and the
    /// read needs a write of `v` between the two; but a write of `v` invoked after the read
    /// returned comes after the read, and the others come before that write. So the read cannot
    /// see `v`. Crashed ops elsewhere do not matter, so this settles histories the search cannot.
    fn certainly_blocked(&self, ops: &[Timed<RegOp>]) -> Option<(usize, Vec<usize>)> {
        // Per value, its writes as (call, the position every write of the value called so far
        // returned before; usize::MAX: one never returned), in call order.
        let mut by_value: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.values.len()];
        for t in ops {
            if let RegOp::Write(v) | RegOp::Cas(_, v) = t.op {
                by_value[v as usize].push((t.call, t.ret.map_or(usize::MAX, |r| r + 1)));
            }
        }
        for w in &mut by_value {
            w.sort_unstable();
            let mut latest = 0;
            for x in w.iter_mut() {
                latest = latest.max(x.1);
                x.1 = latest;
            }
        }
        // Where the writes of `v` that could precede an op returning at `ret` had all returned.
        let settled = |v: u32, ret: usize| {
            let w = &by_value[v as usize];
            w[..w.partition_point(|x| x.0 < ret)]
                .last()
                .map_or(0, |x| x.1)
        };
        let mut writes: Vec<(usize, usize, u32, usize)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t.op {
                RegOp::Write(u) | RegOp::Cas(_, u) => t.ret.map(|r| (r, t.call, u, i)),
                _ => None,
            })
            .collect();
        writes.sort_unstable();
        let mut reads: Vec<(usize, usize, u32)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t.op {
                RegOp::Read(v) | RegOp::Cas(v, _) if t.ret.is_some() => Some((t.call, i, v)),
                _ => None,
            })
            .collect();
        reads.sort_unstable();
        // Among writes returned so far: the latest invoked, and the latest of another value.
        // Entries are (call, value, op).
        type Latest = Option<(usize, u32, usize)>;
        let (mut best, mut other): (Latest, Latest) = (None, None);
        let mut w = writes.into_iter().peekable();
        let (x, r, v) = reads.into_iter().find_map(|(call, r, v)| {
            while let Some((_, c, u, j)) = w.next_if(|x| x.0 < call) {
                match best {
                    Some((bc, bu, _)) if c <= bc => {
                        if u != bu && other.is_none_or(|o| c > o.0) {
                            other = Some((c, u, j));
                        }
                    }
                    Some((_, bu, _)) if bu == u => best = Some((c, u, j)),
                    _ => (other, best) = (best, Some((c, u, j))),
                }
            }
            let x = if best.is_some_and(|b| b.1 != v) {
                best
            } else {
                other
            };
            let ret = ops[r].ret.expect("only returned reads");
            x.filter(|&(c, _, _)| c >= settled(v, ret))
                .map(|x| (x.2, r, v))
        })?;
        // The witness: every write of `v` invoked before the read returned, the later write,
        // and the read, in history order.
        let ret = ops[r].ret.expect("only returned reads");
        let mut witness: Vec<usize> = (0..ops.len())
            .filter(|&i| matches!(ops[i].op, RegOp::Write(u) | RegOp::Cas(_, u) if u == v))
            .filter(|&i| i != r && ops[i].call < ret)
            .chain([x, r])
            .collect();
        witness.sort_by_key(|&i| ops[i].call);
        Some((r, witness))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_steps() {
        let p = RegisterPart {
            values: vec![Value::Null, 1.into(), 2.into()],
            init: 0,
        };
        assert_eq!(p.step(&0, &RegOp::Read(0)), Some(0));
        assert_eq!(p.step(&0, &RegOp::Read(1)), None);
        assert_eq!(p.step(&0, &RegOp::Write(2)), Some(2));
        assert_eq!(p.step(&2, &RegOp::Cas(2, 1)), Some(1));
        assert_eq!(p.step(&1, &RegOp::Cas(2, 1)), None);
        assert_eq!(p.step(&1, &RegOp::CasFailed(1)), None);
        assert_eq!(p.step(&1, &RegOp::CasFailed(2)), Some(1));
        assert_eq!(p.show_state(&0), "null (never written)");
    }

    #[test]
    fn precheck_finds_reads_of_values_nobody_wrote() {
        let p = RegisterPart {
            values: vec![Value::Null, 1.into(), 2.into()],
            init: 0,
        };
        let t = |op, call, ret| Timed {
            op,
            call,
            ret: Some(ret),
        };
        // A cas from 2 to 2 cannot justify itself.
        let ops = [t(RegOp::Write(1), 0, 1), t(RegOp::Cas(2, 2), 2, 3)];
        assert_eq!(p.impossible(&ops).map(|x| x.0), Some(1));
        // A write of 2 invoked before the read returned can.
        let ops = [t(RegOp::Read(2), 0, 3), t(RegOp::Write(2), 2, 5)];
        assert_eq!(p.impossible(&ops), None);
        let ops = [t(RegOp::Read(2), 0, 3), t(RegOp::Write(2), 4, 5)];
        assert!(p.impossible(&ops).unwrap().1.contains("no write of 2"));
    }

    #[test]
    fn a_stale_read_is_found_when_its_value_is_written_again_later() {
        let p = RegisterPart {
            values: (0..5).map(Value::from).collect(),
            init: 0,
        };
        let t = |op, call, ret| Timed { op, call, ret };
        // Write 4, then write 0, then a read of 4; 4 is written again (once crashed) only
        // after the read returned, so no order lets the read see it.
        let ops = [
            t(RegOp::Write(4), 0, Some(1)),
            t(RegOp::Write(0), 2, Some(3)),
            t(RegOp::Read(4), 4, Some(5)),
            t(RegOp::Write(4), 6, Some(7)),
            t(RegOp::Write(4), 8, None),
        ];
        assert_eq!(p.certainly_blocked(&ops), Some((2, vec![0, 1, 2])));
        // A write of 4 invoked before the read returned could be what it saw.
        let mut open = ops.clone();
        open[3].call = 3;
        open.sort_by_key(|t| t.call);
        assert_eq!(p.certainly_blocked(&open), None);
    }

    #[test]
    fn stale_reads_found_before_search_are_never_linearizable() {
        use checker::search::{search, Budget, Search};
        use rand::rngs::SmallRng;
        use rand::seq::SliceRandom;
        use rand::{Rng, SeedableRng};
        let p = RegisterPart {
            values: (0..4).map(Value::from).collect(),
            init: 0,
        };
        let memory = std::sync::atomic::AtomicU64::new(0);
        let never = || false;
        let budget = Budget {
            deadline: None,
            memory_limit: None,
            memory_used: &memory,
            cancelled: &never,
        };
        let mut rng = SmallRng::seed_from_u64(7);
        let mut found = 0;
        for _ in 0..3000 {
            let n = rng.gen_range(2..9);
            let mut slots: Vec<usize> = (0..2 * n).collect();
            slots.shuffle(&mut rng);
            let mut ops: Vec<Timed<RegOp>> = (0..n)
                .map(|i| {
                    let (a, b) = (slots[2 * i], slots[2 * i + 1]);
                    let v = rng.gen_range(0..4);
                    let op = match rng.gen_range(0..7) {
                        0..=2 => RegOp::Read(v),
                        3..=4 => RegOp::Write(v),
                        5 => RegOp::Cas(rng.gen_range(0..4), v),
                        _ => RegOp::CasFailed(v),
                    };
                    let crashed = !matches!(op, RegOp::Read(_)) && rng.gen_bool(0.3);
                    let ret = (!crashed).then_some(a.max(b));
                    Timed {
                        op,
                        call: a.min(b),
                        ret,
                    }
                })
                .collect();
            ops.sort_by_key(|t| t.call);
            let Some((blocked, witness)) = p.certainly_blocked(&ops) else {
                continue;
            };
            found += 1;
            assert!(
                witness.contains(&blocked)
                    && matches!(ops[blocked].op, RegOp::Read(_) | RegOp::Cas(..))
            );
            let sub: Vec<Timed<RegOp>> = witness.iter().map(|&i| ops[i].clone()).collect();
            for h in [&ops, &sub] {
                let (r, _) = search(&p, h, &budget, &mut |_| true);
                assert!(matches!(r, Search::NotLinearizable { .. }), "{h:?}");
            }
        }
        assert!(found > 100, "only {found} stale reads found");
    }
}
