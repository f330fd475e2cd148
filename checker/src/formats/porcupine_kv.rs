//! `porcupine-kv`: Porcupine's key-value histories (`test_data/kv/*.txt`), one EDN map per line:
//!
//! ```text
//! {:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}
//! {:process 0, :type :ok, :f :get, :key "7", :value ""}
//! ```
//! `get` becomes `read`, `put` becomes `write`, `append` stays; values are strings and a missing
//! key reads as `""`. The model is `append` (workloads' Porcupine kv model), checked per key.

use super::edn;
use super::jepsen_edn::{fill_from_invoke, op_from_map};
use super::{LineError, ModelKind, Parsed};
use crate::history::EventType;
use serde_json::Value;
use std::collections::HashMap;

pub fn parse(text: &str) -> Result<Parsed, LineError> {
    let ops = edn::read_ops(text)?;
    let mut events = Vec::with_capacity(ops.len());
    let mut invoke_values: HashMap<u64, Value> = HashMap::new();
    for (line, op) in &ops {
        let mut e = op_from_map(*line, op)?;
        if let Some(p) = e.process.client() {
            e.f = match e.f.as_str() {
                "get" => "read".to_string(),
                "put" => "write".to_string(),
                _ => std::mem::take(&mut e.f),
            };
            if e.key.is_none() {
                return Err(LineError::new(*line, format!("{} op has no :key", e.f)));
            }
            if e.kind == EventType::Invoke && e.f == "read" {
                e.value = Value::Null;
            }
            fill_from_invoke(&mut e, p, &mut invoke_values);
        }
        events.push((*line, e));
    }
    let has_times = !ops.is_empty() && ops.iter().all(|(_, op)| op.get("time").is_some());
    Ok(Parsed {
        events,
        has_times,
        model: ModelKind::Append,
        default_init: None,
    })
}
