//! Sequential specifications the linearizability search checks histories against.
//!
//! A history is first paired into [`Operation`]s (an invoke with its completion). A [`Model`]
//! then says which independent part (key) each operation belongs to and builds, for one part, a
//! [`PartModel`]: the initial state and the step function, over compact operations and states
//! the model chooses (e.g. values interned to small integers). Keeping the per-part model separate
//! lets a model intern values per key and lets the search run keys on different threads.

use crate::history::{Event, EventType};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Definitely did not happen (kept only when the model says the failure is an observation).
    Fail,
    /// `info`, or no completion at all: it may have happened at any time after its invoke, or never.
    Info,
}

/// One client operation: an invoke paired with its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    pub process: u64,
    pub f: String,
    pub key: Option<String>,
    /// The invoke's value (write: the value; cas: `[from, to]`; read: usually null).
    pub input: Value,
    /// The completion's value (read ok: the value seen); null when there is none.
    pub output: Value,
    pub outcome: Outcome,
    pub error: Option<String>,
    /// `index` of the invoke and completion events (for messages).
    pub invoke_index: u64,
    pub complete_index: Option<u64>,
    /// Times in nanoseconds, for messages; `ret_time` is None for info/pending ops.
    pub call_time: u64,
    pub ret_time: Option<u64>,
    /// Positions in the event sequence; they, not times, order operations in real time.
    pub call_pos: usize,
    pub ret_pos: Option<usize>,
}

impl Operation {
    /// "event 12" or "events 12-15", for error messages.
    pub fn events(&self) -> String {
        match self.complete_index {
            Some(c) => format!("events {}-{}", self.invoke_index, c),
            None => format!("event {}", self.invoke_index),
        }
    }
}

/// Pairs invokes with completions, ignoring nemesis events. Errors name the event index: a
/// completion with no open invoke, a second invoke on a busy process, a completion whose `f`
/// differs from its invoke's.
pub fn pair(events: &[Event]) -> Result<Vec<Operation>, String> {
    let mut ops: Vec<Operation> = Vec::new();
    let mut open: HashMap<u64, usize> = HashMap::new();
    for (pos, e) in events.iter().enumerate() {
        let Some(p) = e.process.client() else {
            continue;
        };
        if e.kind == EventType::Invoke {
            if let Some(&i) = open.get(&p) {
                return Err(format!(
                    "event {}: process {p} invokes {} while its {} from event {} has not completed",
                    e.index, e.f, ops[i].f, ops[i].invoke_index
                ));
            }
            open.insert(p, ops.len());
            ops.push(Operation {
                process: p,
                f: e.f.clone(),
                key: e.key.clone(),
                input: e.value.clone(),
                output: Value::Null,
                outcome: Outcome::Info,
                error: None,
                invoke_index: e.index,
                complete_index: None,
                call_time: e.time,
                ret_time: None,
                call_pos: pos,
                ret_pos: None,
            });
            continue;
        }
        let Some(i) = open.remove(&p) else {
            return Err(format!(
                "event {}: {} completion of {} by process {p}, which has no open invoke",
                e.index,
                kind_name(e.kind),
                e.f
            ));
        };
        let op = &mut ops[i];
        if op.f != e.f {
            return Err(format!(
                "event {}: process {p} completes {} but invoked {} at event {}",
                e.index, e.f, op.f, op.invoke_index
            ));
        }
        op.complete_index = Some(e.index);
        op.error = e.error.clone();
        match e.kind {
            EventType::Ok => {
                op.outcome = Outcome::Ok;
                op.output = e.value.clone();
                op.ret_time = Some(e.time.max(op.call_time));
                op.ret_pos = Some(pos);
            }
            EventType::Fail => {
                op.outcome = Outcome::Fail;
                op.output = e.value.clone();
                op.ret_time = Some(e.time.max(op.call_time));
                op.ret_pos = Some(pos);
            }
            EventType::Info | EventType::Invoke => op.outcome = Outcome::Info,
        }
    }
    Ok(ops)
}

fn kind_name(k: EventType) -> &'static str {
    match k {
        EventType::Invoke => "invoke",
        EventType::Ok => "ok",
        EventType::Fail => "fail",
        EventType::Info => "info",
    }
}

/// A model op with the real-time interval it may take effect in.
#[derive(Clone, Debug)]
pub struct Timed<O> {
    pub op: O,
    pub call: usize,
    /// None: may take effect any time after `call`, or never.
    pub ret: Option<usize>,
}

/// One independent part of a history, ready to search (built by
/// [`crate::linearizability::prepare`]).
pub struct Prepared<'h, P: PartModel> {
    pub key: String,
    pub part: P,
    /// Model ops with their real-time intervals, and the history operation each came from.
    pub ops: Vec<Timed<P::Op>>,
    pub source: Vec<&'h Operation>,
}

/// A sequential specification for a whole history: how it splits into independent parts, and how
/// one part's operations become model operations.
pub trait Model: Sync {
    type Part: PartModel;
    /// The independent part `op` belongs to (its key; one fixed name when there is only one).
    fn part_of(&self, op: &Operation) -> Result<String, String>;
    /// Builds the model for one part and converts its operations; `None` drops an operation that
    /// cannot constrain anything (a failed write, a read that never returned). Errors name the
    /// event (e.g. an unknown `f`).
    #[allow(clippy::type_complexity)]
    fn build(
        &self,
        ops: &[&Operation],
    ) -> Result<(Self::Part, Vec<Option<<Self::Part as PartModel>::Op>>), String>;
}

/// The sequential specification of one independent part. States should be small and cheap to
/// hash (an interned value as a `u32` is ideal); the search copies and hashes them constantly.
pub trait PartModel: Send + Sync {
    type Op: Clone + Debug + Send + Sync;
    type State: Clone + Eq + Hash + Debug + Send + Sync;
    fn init(&self) -> Self::State;
    /// The state after `op`, or None if `op`'s observed output is impossible in `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
    /// The state in words for explanations ("5", "never written").
    fn show_state(&self, state: &Self::State) -> String;
    /// The state as JSON for the report.
    fn state_json(&self, state: &Self::State) -> Value;
    /// True if `op` sets the state without looking at it and observes nothing (a plain write).
    /// Lets the search skip pointless orders of crashed writes. Default: false (always safe).
    fn is_blind(&self, op: &Self::Op) -> bool {
        let _ = op;
        false
    }
    /// True if `a` and `b` have the same effect and observation in every state (two crashed
    /// writes of the same value). Lets the search treat crashed twins as one. Default: false.
    fn interchangeable(&self, a: &Self::Op, b: &Self::Op) -> bool {
        let _ = (a, b);
        false
    }
    /// True if `op` never changes the state (a read, a failed cas). Lets the search linearize it
    /// as soon as it is legal without branching. Default: false (always safe).
    fn is_read_only(&self, op: &Self::Op) -> bool {
        let _ = op;
        false
    }
    /// The state `op` leaves wherever it takes effect, if that is always one state (a write, a
    /// cas: the value written); None where it depends on the state (an increment). Asked of
    /// ops that are not read-only; where every one of them answers, the search bounds when
    /// each state can hold (`search::pinned`), which decides histories of unique values.
    /// Default: None.
    fn leaves(&self, op: &Self::Op) -> Option<Self::State> {
        let _ = op;
        None
    }
    /// The one state `op` is legal in, if there is only one (a read: the value it saw; a cas:
    /// the value it expects); None if more (a failed cas, a write). Default: None.
    fn needs(&self, op: &Self::Op) -> Option<Self::State> {
        let _ = op;
        None
    }
    /// A cheap necessary condition, checked before any search: an op that can never be
    /// linearized whatever the order, with the reason in words. The default finds none.
    fn impossible(&self, ops: &[Timed<Self::Op>]) -> Option<(usize, String)> {
        let _ = ops;
        None
    }
    /// Another cheap sufficient condition, checked before any search: an op that no order can
    /// linearize (e.g. a stale read), with a few ops (indices, the op included) that show it on
    /// their own; they are explained like a search failure. Lets histories the search cannot
    /// finish (many crashed ops) still be proved invalid. Default: none.
    fn certainly_blocked(&self, ops: &[Timed<Self::Op>]) -> Option<(usize, Vec<usize>)> {
        let _ = ops;
        None
    }
}
