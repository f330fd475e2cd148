//! The `mutex` model (Knossos'): one lock, `acquire` legal iff free, `release` legal iff held. As
//! in Knossos, `fail` ops did not happen and are dropped. The history is one part.

use checker::model::{Model, Operation, Outcome, PartModel};
use serde_json::Value;

/// Knossos' `(mutex)`: one lock, initially free.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOp {
    Acquire,
    Release,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct MutexPart;

impl Model for Mutex {
    type Part = MutexPart;

    fn part_of(&self, _op: &Operation) -> Result<String, String> {
        Ok(String::new())
    }

    fn build(&self, ops: &[&Operation]) -> Result<(MutexPart, Vec<Option<LockOp>>), String> {
        let out = ops
            .iter()
            .map(|op| {
                let m = match op.f.as_str() {
                    "acquire" => LockOp::Acquire,
                    "release" => LockOp::Release,
                    f => {
                        return Err(format!(
                            "event {}: unknown f {f:?} (the mutex model knows acquire and release)",
                            op.invoke_index
                        ))
                    }
                };
                Ok((op.outcome != Outcome::Fail).then_some(m))
            })
            .collect::<Result<_, String>>()?;
        Ok((MutexPart, out))
    }
}

impl PartModel for MutexPart {
    type Op = LockOp;
    /// Held?
    type State = bool;

    fn init(&self) -> bool {
        false
    }

    fn step(&self, held: &bool, op: &LockOp) -> Option<bool> {
        match op {
            LockOp::Acquire => (!held).then_some(true),
            LockOp::Release => held.then_some(false),
        }
    }

    fn show_state(&self, held: &bool) -> String {
        if *held { "held" } else { "free" }.to_string()
    }

    fn state_json(&self, held: &bool) -> Value {
        Value::Bool(*held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutex_steps() {
        let p = MutexPart;
        assert_eq!(p.step(&false, &LockOp::Acquire), Some(true));
        assert_eq!(p.step(&true, &LockOp::Acquire), None);
        assert_eq!(p.step(&true, &LockOp::Release), Some(false));
        assert_eq!(p.step(&false, &LockOp::Release), None);
    }
}
