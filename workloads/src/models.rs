//! The sequential models the product checks with: `register` (one read/write/cas register) and
//! `kv` (an independent register per key). Values (integers, strings, any JSON) are interned per
//! key, so a state is a `u32` and a step is a couple of comparisons.

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

/// Independent registers, one per key (Jepsen's independent keys); checked key by key.
#[derive(Clone, Debug, Default)]
pub struct Kv {
    pub initial: Value,
}

impl Kv {
    pub fn new(initial: Value) -> Self {
        Kv { initial }
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

impl Model for Kv {
    type Part = RegisterPart;
    fn part_of(&self, op: &Operation) -> Result<String, String> {
        op.key.clone().ok_or_else(|| {
            format!(
                "event {}: {} has no key (kv ops need one)",
                op.invoke_index, op.f
            )
        })
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

fn build_register(
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
}
