//! The `kv` model: independent read/write/cas registers, one per key (Jepsen's independent
//! keys), checked key by key. Each key is a [`super::register`] part.

use super::register::{build_register, RegOp, RegisterPart};
use checker::model::{Model, Operation};
use serde_json::Value;

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
