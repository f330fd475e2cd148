//! Shared by the checker's tests and benches: a register model (the product's own lives in
//! `workloads`, which depends on this crate) and the generator of hard register histories
//! (`shapes`). Benches include this folder with `#[path]`.

#![allow(dead_code)]

pub mod shapes;

use checker::model::{Model, Operation, Outcome, PartModel};
use checker::search::Budget;
use serde_json::{json, Value};

/// One read/write/cas register over integers; null is "never written".
pub struct Reg;
pub struct RegPart;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Read(Option<i64>),
    Write(i64),
    Cas(i64, i64),
    /// A cas that failed with `precondition-failed`: the value was not `from`.
    CasFailed(i64),
}

impl Model for Reg {
    type Part = RegPart;
    fn part_of(&self, op: &Operation) -> Result<String, String> {
        Ok(op.key.clone().unwrap_or_default())
    }
    fn build(&self, ops: &[&Operation]) -> Result<(RegPart, Vec<Option<Op>>), String> {
        let ops = ops.iter().map(|o| {
            let cas = || (o.input[0].as_i64().unwrap(), o.input[1].as_i64().unwrap());
            match (o.f.as_str(), o.outcome, o.error.as_deref()) {
                ("read", Outcome::Ok, _) => Some(Op::Read(o.output.as_i64())),
                ("write", Outcome::Ok | Outcome::Info, _) => {
                    Some(Op::Write(o.input.as_i64().unwrap()))
                }
                ("cas", Outcome::Ok | Outcome::Info, _) => Some(Op::Cas(cas().0, cas().1)),
                ("cas", Outcome::Fail, Some("precondition-failed")) => Some(Op::CasFailed(cas().0)),
                _ => None,
            }
        });
        Ok((RegPart, ops.collect()))
    }
}

impl PartModel for RegPart {
    type Op = Op;
    type State = Option<i64>;
    fn init(&self) -> Option<i64> {
        None
    }
    fn step(&self, s: &Option<i64>, op: &Op) -> Option<Option<i64>> {
        step(*s, *op)
    }
    fn is_blind(&self, op: &Op) -> bool {
        matches!(op, Op::Write(_))
    }
    fn interchangeable(&self, a: &Op, b: &Op) -> bool {
        a == b
    }
    fn is_read_only(&self, op: &Op) -> bool {
        matches!(op, Op::Read(_) | Op::CasFailed(_))
    }
    fn leaves(&self, op: &Op) -> Option<Option<i64>> {
        match *op {
            Op::Write(v) | Op::Cas(_, v) => Some(Some(v)),
            Op::Read(_) | Op::CasFailed(_) => None,
        }
    }
    fn needs(&self, op: &Op) -> Option<Option<i64>> {
        match *op {
            Op::Read(v) => Some(v),
            Op::Cas(a, _) => Some(Some(a)),
            Op::Write(_) | Op::CasFailed(_) => None,
        }
    }
    fn show_state(&self, s: &Option<i64>) -> String {
        match s {
            Some(v) => v.to_string(),
            None => "null (never written)".into(),
        }
    }
    fn state_json(&self, s: &Option<i64>) -> Value {
        json!(s)
    }
}

pub fn step(s: Option<i64>, op: Op) -> Option<Option<i64>> {
    match op {
        Op::Read(v) => (v == s).then_some(s),
        Op::Write(v) => Some(Some(v)),
        Op::Cas(a, b) => (s == Some(a)).then_some(Some(b)),
        Op::CasFailed(a) => (s != Some(a)).then_some(s),
    }
}

/// Runs `f` with a search budget that never runs out (no deadline, no memory cap, never
/// cancelled): the agreement tests compare verdicts, not limits.
pub fn unbounded<R>(f: impl FnOnce(&Budget) -> R) -> R {
    let memory = std::sync::atomic::AtomicU64::new(0);
    let never = || false;
    f(&Budget {
        deadline: None,
        memory_limit: None,
        memory_used: &memory,
        cancelled: &never,
    })
}
