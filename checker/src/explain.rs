//! Turning a failed search into words and JSON: which key, the op that cannot be linearized, the
//! longest linearizable prefix and the values possible there, the ops concurrent with it, and a
//! shrunk set of ops that still fails.

use crate::counterexample::{Counterexample, CounterexampleOp};
use crate::model::{Operation, Outcome, PartModel, Prepared, Timed};
use crate::search::{search, Budget, Search};
use serde_json::{json, Value};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// How long explaining (possible states, shrinking) may take at most.
const EXPLAIN_BUDGET: Duration = Duration::from_secs(3);
/// Most states or ops listed in words.
const LIST: usize = 8;

/// Explains why part `p` is not linearizable: `blocked` could not be linearized after the ops in
/// `linearized` (indices into `p.ops`); `reason` is set when the cheap pre-check found it.
pub fn explain<P: PartModel>(
    p: &Prepared<P>,
    linearized: &[usize],
    blocked: usize,
    reason: Option<&str>,
    deadline: Option<Instant>,
) -> (String, Value) {
    let limit = Instant::now() + EXPLAIN_BUDGET;
    let deadline = deadline.map_or(limit, |d| d.max(Instant::now()).min(limit));
    let f = p.source[blocked];
    let t = &p.ops[blocked];
    let concurrent: Vec<usize> = (0..p.ops.len())
        .filter(|&i| i != blocked && overlaps(&p.ops[i], t))
        .collect();
    // The last op that finished before the blocked one started and could change the value.
    let last = (0..p.ops.len())
        .filter(|&i| p.ops[i].ret.is_some_and(|r| r < t.call) && p.source[i].f != "read")
        .max_by_key(|&i| p.ops[i].ret);
    let (mut states, states_complete) = possible_states(p, blocked, deadline);
    let searched = states.len();
    open_writes(p, blocked, &mut states);
    let impossible_everywhere =
        searched > 0 && states.iter().all(|s| p.part.step(s, &t.op).is_none());
    let shown: Vec<String> = states
        .iter()
        .take(LIST)
        .map(|s| p.part.show_state(s))
        .collect();
    let mut values = join_or(&shown);
    if states.len() > LIST {
        values = format!("{values} (and {} more)", states.len() - LIST);
    }

    let what = format!("{} at {}", describe(f), when(f));
    let mut text = match (reason, last) {
        (Some(r), _) => format!("{what}, but {r}"),
        (None, _) if searched == 0 && states.is_empty() => {
            format!("{what}, but {}", no_states(states_complete))
        }
        (None, _) if searched == 0 => format!(
            "{what}, but {}; ops with unknown outcome could have written {values}",
            no_states(states_complete)
        ),
        (None, Some(l)) if impossible_everywhere => format!(
            "{what}, but after the {} that finished at {} the only possible {} {values}",
            describe(p.source[l]),
            secs(p.source[l].ret_time.unwrap_or(0)),
            if states.len() == 1 {
                "value was"
            } else {
                "values were"
            },
        ),
        (None, None) if impossible_everywhere => {
            format!(
                "{what}, but before it the only possible {} {values}",
                plural(states.len())
            )
        }
        (None, _) => format!(
            "{what}, but no order of it and the ops around it fits what they observed (the \
             possible values when it started were {values})"
        ),
    };
    // Crashed ops overlap everything after their invoke: name them apart, briefly.
    let (returned, crashed): (Vec<usize>, Vec<usize>) =
        concurrent.iter().partition(|&&i| p.ops[i].ret.is_some());
    let list = |ops: &mut dyn Iterator<Item = &usize>| -> Vec<String> {
        ops.take(LIST)
            .map(|&i| format!("{} ({})", describe(p.source[i]), interval(p.source[i])))
            .collect()
    };
    if !returned.is_empty() {
        let more = returned.len().saturating_sub(LIST);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        text += &format!(
            ". Concurrent with it: {}{more}",
            list(&mut returned.iter()).join(", ")
        );
    }
    if !crashed.is_empty() {
        text += &format!(
            ". {} earlier op{} with unknown outcome might also have taken effect ({})",
            crashed.len(),
            if crashed.len() == 1 { "" } else { "s" },
            list(&mut crashed.iter().rev().take(3)).join(", ")
        );
    }
    text = format!("not linearizable: {}: {text}.", key_name(&p.key));
    if !states_complete && searched > 0 {
        text += " (The search for the possible values was cut short by its time budget: the list \
                 may be incomplete.)";
    }

    let (shrunk, minimal) = if reason.is_some() {
        (vec![blocked], true)
    } else {
        crate::shrink::shrink(p, blocked, deadline)
    };
    if shrunk.len() == 1 && !minimal {
        text += " (The history could not be shrunk within the time budget.)";
    } else if !minimal {
        text += " (Shrinking was cut short by its time budget.)";
    }
    if shrunk.len() > 1 {
        let list: Vec<String> = shrunk
            .iter()
            .map(|&i| format!("{} ({})", describe(p.source[i]), interval(p.source[i])))
            .collect();
        text += &format!(
            " {} {} ops that still cannot be linearized: {}.",
            if minimal {
                "A minimal set of"
            } else {
                "A reduced set of"
            },
            shrunk.len(),
            list.join("; ")
        );
    }

    let tail = linearized.len().saturating_sub(20);
    let ops = |ix: &mut dyn Iterator<Item = usize>| {
        ix.map(|i| CounterexampleOp::of(p.source[i])).collect()
    };
    let cx = Counterexample {
        key: p.key.clone(),
        op: Some(CounterexampleOp::of(f)),
        reason: reason.map(str::to_string),
        linearized_prefix_len: linearized.len(),
        linearized_prefix_tail: ops(&mut linearized[tail..].iter().copied()),
        possible_states: states.iter().map(|s| p.part.state_json(s)).collect(),
        possible_states_complete: states_complete,
        last_finished: last.map(|l| CounterexampleOp::of(p.source[l])),
        concurrent: ops(&mut concurrent.iter().copied()),
        shrunk: ops(&mut shrunk.iter().copied()),
        shrunk_minimal: minimal,
        other: Default::default(),
    };
    let json = serde_json::to_value(cx).expect("a counterexample is plain data");
    (text, json)
}

/// The states the part could be in while `blocked` was running: every linearization of the ops
/// invoked before it returned, in which all ops that returned before it was invoked took effect
/// and the others may or may not have. The bool is false if the budget cut the enumeration short.
pub fn possible_states<P: PartModel>(
    p: &Prepared<P>,
    blocked: usize,
    deadline: Instant,
) -> (Vec<P::State>, bool) {
    let t = &p.ops[blocked];
    let end = t.ret.unwrap_or(usize::MAX);
    let ops: Vec<Timed<P::Op>> = (0..p.ops.len())
        .filter(|&i| i != blocked && p.ops[i].call < end)
        .map(|i| {
            let mut o = p.ops[i].clone();
            o.ret = o.ret.filter(|&r| r < t.call);
            o
        })
        .collect();
    let memory = AtomicU64::new(0);
    let never = || false;
    let budget = Budget {
        deadline: Some(deadline),
        memory_limit: Some(256 << 20),
        memory_used: &memory,
        cancelled: &never,
    };
    let mut states: Vec<P::State> = Vec::new();
    let (outcome, _) = search(&p.part, &ops, &budget, &mut |s| {
        if !states.contains(s) {
            states.push(s.clone());
        }
        states.len() >= 1000
    });
    let complete = !matches!(outcome, Search::OutOfBudget { .. }) && states.len() < 1000;
    (states, complete)
}

/// Adds to `states` every value an op with unknown outcome, invoked before `blocked` returned,
/// could have left: the value it leaves from one of `states`, or, for an op that sets the state
/// without looking at it (a write), from any state. So the list never leaves out a crashed
/// write that could land, even when the search for `states` found none or was cut short.
fn open_writes<P: PartModel>(p: &Prepared<P>, blocked: usize, states: &mut Vec<P::State>) {
    let end = p.ops[blocked].ret.unwrap_or(usize::MAX);
    let open = (0..p.ops.len()).filter(|&i| i != blocked && p.ops[i].ret.is_none());
    let init = p.part.init();
    for i in open.filter(|&i| p.ops[i].call < end) {
        let op = &p.ops[i].op;
        let from: Vec<P::State> = match p.part.is_blind(op) {
            true => vec![init.clone()],
            false => states.clone(),
        };
        for s in from.iter().filter_map(|s| p.part.step(s, op)) {
            if !states.contains(&s) && states.len() < 1000 {
                states.push(s);
            }
        }
    }
}

/// "key k7", or "the register" for the single unnamed part.
pub fn key_name(key: &str) -> String {
    if key.is_empty() {
        "the register".to_string()
    } else {
        format!("key {key}")
    }
}

fn overlaps<O>(a: &Timed<O>, b: &Timed<O>) -> bool {
    a.call < b.ret.unwrap_or(usize::MAX) && b.call < a.ret.unwrap_or(usize::MAX)
}

/// "read of k7 returned 3", "write of 5 to k7", "cas of k7 from 1 to 2".
pub fn describe(op: &Operation) -> String {
    let of = op
        .key
        .as_ref()
        .map(|k| format!(" of {k}"))
        .unwrap_or_default();
    let to = op
        .key
        .as_ref()
        .map(|k| format!(" to {k}"))
        .unwrap_or_default();
    let pending = match op.outcome {
        Outcome::Info => " (outcome unknown)",
        _ => "",
    };
    let failed = match (op.outcome, op.error.as_deref()) {
        (Outcome::Fail, Some(e)) => format!(" that failed with {e}"),
        (Outcome::Fail, None) => " that failed".to_string(),
        _ => String::new(),
    };
    match (op.f.as_str(), &op.input) {
        ("read", _) => format!("read{of} returned {}", show(&op.output)),
        ("write", v) => format!("write of {}{to}{pending}", show(v)),
        ("cas", Value::Array(a)) if a.len() == 2 => {
            format!(
                "cas{of} from {} to {}{failed}{pending}",
                show(&a[0]),
                show(&a[1])
            )
        }
        (f, Value::Null) if op.outcome == Outcome::Ok => {
            format!("{f}{of} returned {}", show(&op.output))
        }
        (f, v) => format!("{f} of {}{to}{failed}{pending}", show(v)),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        v => v.to_string(),
    }
}

fn secs(ns: u64) -> String {
    format!("{:.2} s", ns as f64 / 1e9)
}

/// When the op returned, or when it was invoked if it never did.
fn when(op: &Operation) -> String {
    match op.ret_time {
        Some(t) if op.outcome == Outcome::Ok || op.outcome == Outcome::Fail => secs(t),
        _ => format!("{} (invoked; never returned)", secs(op.call_time)),
    }
}

fn interval(op: &Operation) -> String {
    match op.ret_time {
        Some(t) => format!("{:.2}-{}", op.call_time as f64 / 1e9, secs(t)),
        None => format!("from {}, never returned", secs(op.call_time)),
    }
}

/// Why no possible value can be listed: none exists, or the budget ran out before one was found.
fn no_states(complete: bool) -> &'static str {
    if complete {
        "no value was possible when it started: no order of the ops before it fits what they \
         observed"
    } else {
        "the values possible when it started could not be worked out within the time budget"
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        "value was"
    } else {
        "values were"
    }
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => "none".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// An op as JSON for the report.
pub fn op_json(op: &Operation) -> Value {
    json!({
        "process": op.process,
        "f": op.f,
        "key": op.key,
        "value": op.input,
        "output": op.output,
        "type": match op.outcome { Outcome::Ok => "ok", Outcome::Fail => "fail", Outcome::Info => "info" },
        "error": op.error,
        "invoke_index": op.invoke_index,
        "complete_index": op.complete_index,
        "start_s": op.call_time as f64 / 1e9,
        "end_s": op.ret_time.map(|t| t as f64 / 1e9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;

    /// One state; an op with `true` steps, one with `false` is impossible anywhere.
    struct Gate;

    impl PartModel for Gate {
        type Op = bool;
        type State = ();
        fn init(&self) {}
        fn step(&self, _: &(), ok: &bool) -> Option<()> {
            ok.then_some(())
        }
        fn show_state(&self, _: &()) -> String {
            "the state".into()
        }
        fn state_json(&self, _: &()) -> Value {
            Value::Null
        }
    }

    fn op(f: &str, i: u64) -> Operation {
        Operation {
            process: i,
            f: f.into(),
            key: None,
            input: json!(i),
            output: Value::Null,
            outcome: Outcome::Ok,
            error: None,
            invoke_index: 2 * i,
            complete_index: Some(2 * i + 1),
            call_time: 2 * i,
            ret_time: Some(2 * i + 1),
            call_pos: 2 * i as usize,
            ret_pos: Some(2 * i as usize + 1),
        }
    }

    /// A register of small values: `Some(v)` writes v, `None` can never happen.
    struct Blind;

    impl PartModel for Blind {
        type Op = Option<u8>;
        type State = u8;
        fn init(&self) -> u8 {
            0
        }
        fn step(&self, _: &u8, op: &Option<u8>) -> Option<u8> {
            *op
        }
        fn is_blind(&self, op: &Option<u8>) -> bool {
            op.is_some()
        }
        fn show_state(&self, s: &u8) -> String {
            s.to_string()
        }
        fn state_json(&self, s: &u8) -> Value {
            json!(s)
        }
    }

    /// When no order of the ops before the blocked one fits, a write with unknown outcome
    /// invoked before it could still have left its value: the words name that value.
    #[test]
    fn values_open_writes_could_leave_are_listed() {
        let mut open = op("write", 1);
        (open.outcome, open.ret_time, open.ret_pos) = (Outcome::Info, None, None);
        let ops = [op("write", 0), open, op("read", 2)];
        let t = |op, i: usize, ret: Option<usize>| Timed {
            op,
            call: 2 * i,
            ret,
        };
        let p = Prepared {
            key: String::new(),
            part: Blind,
            ops: vec![
                t(None, 0, Some(1)),
                t(Some(7), 1, None),
                t(None, 2, Some(5)),
            ],
            source: ops.iter().collect(),
        };
        let (text, cx) = explain(&p, &[], 2, None, None);
        assert!(!text.contains("none"), "{text}");
        assert!(text.contains("could have written 7"), "{text}");
        assert_eq!(cx["possible_states"], json!([7]), "{cx}");
    }

    /// An op before the blocked one that cannot happen leaves no possible value: the words say
    /// so instead of "the only possible values were none".
    #[test]
    fn no_possible_value_is_said_in_words() {
        let ops = [op("write", 0), op("write", 1)];
        let timed = |i: usize| Timed {
            op: false,
            call: 2 * i,
            ret: Some(2 * i + 1),
        };
        let p = Prepared {
            key: String::new(),
            part: Gate,
            ops: vec![timed(0), timed(1)],
            source: ops.iter().collect(),
        };
        let (text, _) = explain(&p, &[], 1, None, None);
        assert!(!text.contains("were none"), "{text}");
        assert!(
            text.contains("no value was possible when it started"),
            "{text}"
        );
        let (text, _) = explain(&p, &[], 1, None, Some(Instant::now()));
        assert!(!text.contains("none"), "{text}");
    }
}
