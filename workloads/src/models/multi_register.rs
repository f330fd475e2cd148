//! The `multi-register` model (Knossos'): a `txn` of reads and writes over several registers,
//! applied atomically; a read of `nil` is unknown. As in Knossos, `fail` ops did not happen and are
//! dropped. The history is one part: a txn spans registers.

use checker::model::{Model, Operation, Outcome, PartModel};
use serde_json::Value;
use std::collections::HashMap;

/// Knossos' `(multi-register {:x 0 :y 0})`: every register starts at `initial`.
#[derive(Clone, Debug, Default)]
pub struct MultiRegister {
    pub initial: Value,
}

impl MultiRegister {
    pub fn new(initial: Value) -> Self {
        MultiRegister { initial }
    }
}

/// One step of a txn over interned registers and values; `Read(r, None)` is an unknown read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Micro {
    Read(u16, Option<u32>),
    Write(u16, u32),
}

/// The registers' names and the interned values of one history.
#[derive(Clone, Debug)]
pub struct MultiPart {
    registers: Vec<String>,
    values: Vec<Value>,
    init: u32,
}

impl Model for MultiRegister {
    type Part = MultiPart;

    fn part_of(&self, _op: &Operation) -> Result<String, String> {
        Ok(String::new())
    }

    fn build(&self, ops: &[&Operation]) -> Result<(MultiPart, Vec<Option<Vec<Micro>>>), String> {
        let mut regs: HashMap<String, u16> = HashMap::new();
        let mut registers = Vec::new();
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut values = Vec::new();
        let mut intern = |v: &Value| -> u32 {
            *ids.entry(v.to_string()).or_insert_with(|| {
                values.push(v.clone());
                values.len() as u32 - 1
            })
        };
        let init = intern(&self.initial);
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            if op.f != "txn" {
                return Err(format!(
                    "event {}: unknown f {:?} (the multi-register model knows txn)",
                    op.invoke_index, op.f
                ));
            }
            // The completion has the values read; an indeterminate txn only has the invoke's.
            let txn = match op.outcome {
                Outcome::Fail => {
                    out.push(None);
                    continue;
                }
                Outcome::Ok => &op.output,
                Outcome::Info => &op.input,
            };
            let bad = || {
                format!(
                    "event {}: txn value must be [[\"read\"|\"write\", register, value], ...], got {txn}",
                    op.invoke_index
                )
            };
            let Value::Array(steps) = txn else {
                return Err(bad());
            };
            let mut micros = Vec::with_capacity(steps.len());
            for step in steps {
                let Some([f, reg, v]) = step.as_array().map(Vec::as_slice) else {
                    return Err(bad());
                };
                let (Some(f), Some(reg)) = (f.as_str(), reg.as_str()) else {
                    return Err(bad());
                };
                let r = match regs.get(reg) {
                    Some(&r) => r,
                    None => {
                        let r = u16::try_from(registers.len()).map_err(|_| bad())?;
                        registers.push(reg.to_string());
                        regs.insert(reg.to_string(), r);
                        r
                    }
                };
                micros.push(match f {
                    "read" => Micro::Read(r, (!v.is_null()).then(|| intern(v))),
                    "write" => Micro::Write(r, intern(v)),
                    _ => return Err(bad()),
                });
            }
            out.push(Some(micros));
        }
        Ok((
            MultiPart {
                registers,
                values,
                init,
            },
            out,
        ))
    }
}

impl PartModel for MultiPart {
    type Op = Vec<Micro>;
    /// One interned value per register, in `registers` order.
    type State = Box<[u32]>;

    fn init(&self) -> Box<[u32]> {
        vec![self.init; self.registers.len()].into_boxed_slice()
    }

    fn step(&self, state: &Box<[u32]>, op: &Vec<Micro>) -> Option<Box<[u32]>> {
        let mut next = state.clone();
        for m in op {
            match *m {
                Micro::Read(r, Some(v)) if next[r as usize] != v => return None,
                Micro::Read(..) => {}
                Micro::Write(r, v) => next[r as usize] = v,
            }
        }
        Some(next)
    }

    fn show_state(&self, state: &Box<[u32]>) -> String {
        let parts: Vec<String> = self
            .registers
            .iter()
            .zip(state.iter())
            .map(|(r, &v)| format!("{r}={}", self.values[v as usize]))
            .collect();
        parts.join(", ")
    }

    fn state_json(&self, state: &Box<[u32]>) -> Value {
        Value::Object(
            self.registers
                .iter()
                .zip(state.iter())
                .map(|(r, &v)| (r.clone(), self.values[v as usize].clone()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_reads_and_writes_atomically() {
        let p = MultiPart {
            registers: vec!["x".into(), "y".into()],
            values: vec![0.into(), 2.into()],
            init: 0,
        };
        let s = p.init();
        let write_y = vec![Micro::Write(1, 1)];
        let s = p.step(&s, &write_y).unwrap();
        assert_eq!(p.show_state(&s), "x=0, y=2");
        assert!(p
            .step(&s, &vec![Micro::Read(0, Some(0)), Micro::Read(1, Some(1))])
            .is_some());
        assert!(p
            .step(&s, &vec![Micro::Read(0, Some(0)), Micro::Read(1, Some(0))])
            .is_none());
        assert!(
            p.step(&s, &vec![Micro::Read(1, None)]).is_some(),
            "nil read is unknown"
        );
        let both = vec![Micro::Write(0, 1), Micro::Read(0, Some(1))];
        assert!(p.step(&s, &both).is_some(), "a txn sees its own write");
    }
}
