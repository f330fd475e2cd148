//! The counterexample of an invalid check, as `results.json` stores it under `check` and the
//! report draws it: the failing key, the op that cannot be linearized, the linearized prefix, the
//! states the key could have been in, the ops concurrent with the failing one and a shrunk set of
//! ops that still cannot be linearized.
//!
//! Every field has a default, so counterexamples of older layouts still load; fields this type
//! does not know are kept in [`Counterexample::other`] and written back unchanged.

use crate::model::{Operation, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What [`crate::explain::explain`] writes for the failing key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counterexample {
    /// The independent key that fails (empty for a single register).
    pub key: String,
    /// The op no linearization can place.
    #[serde(alias = "failing_op")]
    pub op: Option<CounterexampleOp>,
    /// Why the model refused the op, when it said.
    pub reason: Option<String>,
    pub linearized_prefix_len: usize,
    /// The last (up to 20) ops of the longest linearized prefix.
    pub linearized_prefix_tail: Vec<CounterexampleOp>,
    /// The states the key could have been in while the failing op ran.
    #[serde(alias = "states")]
    pub possible_states: Vec<Value>,
    /// False when the enumeration of those states was cut short.
    pub possible_states_complete: bool,
    pub last_finished: Option<CounterexampleOp>,
    /// Ops overlapping the failing one.
    pub concurrent: Vec<CounterexampleOp>,
    /// A small set of ops that still cannot be linearized (the failing op among them).
    #[serde(alias = "ops")]
    pub shrunk: Vec<CounterexampleOp>,
    /// True when no op of `shrunk` can be dropped.
    pub shrunk_minimal: bool,
    /// Fields of other layouts, kept as they were.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One client operation of a counterexample.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CounterexampleOp {
    pub process: Option<u64>,
    pub f: String,
    pub key: Option<String>,
    /// The invoke's value.
    pub value: Value,
    /// The completion's value (what a read saw).
    pub output: Value,
    /// `ok`, `fail` or `info`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub error: Option<String>,
    /// History `index` of the invoke and of the completion.
    #[serde(alias = "index")]
    pub invoke_index: Option<u64>,
    pub complete_index: Option<u64>,
    /// Seconds from the start of the run.
    #[serde(alias = "invoke_time")]
    pub start_s: Option<f64>,
    #[serde(alias = "complete_time")]
    pub end_s: Option<f64>,
}

impl CounterexampleOp {
    pub fn of(op: &Operation) -> CounterexampleOp {
        let kind = match op.outcome {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        };
        CounterexampleOp {
            process: Some(op.process),
            f: op.f.clone(),
            key: op.key.clone(),
            value: op.input.clone(),
            output: op.output.clone(),
            kind: Some(kind.into()),
            error: op.error.clone(),
            invoke_index: Some(op.invoke_index),
            complete_index: op.complete_index,
            start_s: Some(op.call_time as f64 / 1e9),
            end_s: op.ret_time.map(|t| t as f64 / 1e9),
        }
    }

    /// The same op: same invoke event when both know it, else equal.
    pub fn same(&self, other: &CounterexampleOp) -> bool {
        match (self.invoke_index, other.invoke_index) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_op_is_written_as_explain_writes_it() {
        let op = Operation {
            process: 3,
            f: "cas".into(),
            key: Some("k1".into()),
            input: json!([1, 2]),
            output: Value::Null,
            outcome: Outcome::Info,
            error: Some("op-timeout".into()),
            invoke_index: 7,
            complete_index: None,
            call_time: 1_500_000_000,
            ret_time: None,
            call_pos: 0,
            ret_pos: None,
        };
        let typed = serde_json::to_value(CounterexampleOp::of(&op)).unwrap();
        assert_eq!(typed, crate::explain::op_json(&op));
    }

    #[test]
    fn older_layouts_load_and_keep_their_fields() {
        let v = json!({"key": "k1", "failing_op": {"index": 2},
            "ops": [{"index": 2, "process": 0, "f": "read", "invoke_time": 22}],
            "prefix": [{"time": 5}]});
        let cx: Counterexample = serde_json::from_value(v).unwrap();
        assert_eq!(cx.op.as_ref().and_then(|o| o.invoke_index), Some(2));
        assert!(cx.shrunk[0].same(cx.op.as_ref().unwrap()));
        assert_eq!(cx.shrunk[0].start_s, Some(22.0));
        assert_eq!(cx.other["prefix"], json!([{"time": 5}]));
    }
}
