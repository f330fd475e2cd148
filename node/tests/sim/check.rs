//! The oracles: no slot decided with two values (counted as the driver releases decisions),
//! replicas that applied the same prefix hold the same state, every client result agrees with
//! the decided log (positions respecting real time) and the whole history is linearizable for
//! the project's checker.

use super::{OpRec, Sim};
use paxos_node::core::Core;
use paxos_node::kv::{AppState, Op, OpResult, ReqId};
use serde_json::{json, Value as Json};
use std::collections::HashMap;

impl Sim {
    /// Checks everything; returns the first violation found.
    pub fn check(&mut self) -> Result<(), String> {
        if let Some(v) = self.violation.take() {
            return Err(v);
        }
        // Replicas that applied the same prefix hold the same state.
        let apps: Vec<&AppState> = self.nodes.iter().flatten().map(|c| c.app()).collect();
        for a in &apps {
            for b in &apps {
                if a.applied == b.applied && a.kv != b.kv {
                    return Err(format!(
                        "replicas diverge at applied {}: {:?} vs {:?}",
                        a.applied, a.kv, b.kv
                    ));
                }
            }
        }
        self.check_linearizable()?;
        self.check_with_checker()
    }

    /// The history as the harness would record it, checked by the project's checker.
    fn check_with_checker(&self) -> Result<(), String> {
        use checker::history::{Event, EventType, Process};
        let mut raw: Vec<(u64, EventType, &OpRec, Json, Option<String>)> = Vec::new();
        let end = self.now;
        for op in &self.ops {
            let f_value = match &op.op {
                Op::Read { .. } => Json::Null,
                Op::Write { value, .. } => value.clone(),
                Op::Cas { from, to, .. } => json!([from, to]),
                Op::Reconfigure { .. } => unreachable!("admin requests are not client ops"),
            };
            raw.push((op.invoke, EventType::Invoke, op, f_value.clone(), None));
            let (kind, value, error) = match &op.result {
                None | Some(OpResult::Error(0, _)) => (EventType::Info, f_value, None),
                Some(OpResult::Read(v)) => (EventType::Ok, v.clone(), None),
                Some(OpResult::Write | OpResult::Cas | OpResult::Reconfigured) => {
                    (EventType::Ok, f_value, None)
                }
                Some(OpResult::Error(20, _)) => (
                    EventType::Fail,
                    f_value,
                    Some("key-does-not-exist".to_string()),
                ),
                Some(OpResult::Error(22, _)) => (
                    EventType::Fail,
                    f_value,
                    Some("precondition-failed".to_string()),
                ),
                Some(OpResult::Error(c, t)) => {
                    (EventType::Fail, f_value, Some(format!("{c}: {t}")))
                }
            };
            raw.push((op.complete.unwrap_or(end), kind, op, value, error));
        }
        raw.sort_by_key(|(t, kind, ..)| (*t, *kind != EventType::Invoke));
        let events: Vec<Event> = raw
            .into_iter()
            .enumerate()
            .map(|(i, (t, kind, op, value, error))| {
                let (f, key) = match &op.op {
                    Op::Read { key } => ("read", key),
                    Op::Write { key, .. } => ("write", key),
                    Op::Cas { key, .. } => ("cas", key),
                    Op::Reconfigure { .. } => unreachable!("admin requests are not client ops"),
                };
                Event {
                    index: i as u64,
                    time: t * 1000,
                    // A process per op: a client that timed out goes on as a new process,
                    // as in Jepsen, and its unanswered op stays open to the end.
                    process: Process::Client(op.id as u64),
                    kind,
                    f: f.to_string(),
                    key: Some(key.clone()),
                    value,
                    node: Some(format!("n{}", op.node + 1)),
                    error,
                }
            })
            .collect();
        let opts = checker::CheckOptions {
            time_limit: Some(std::time::Duration::from_secs(20)),
            threads: 1,
            ..Default::default()
        };
        let r = workloads::check(workloads::Workload::Kv, &events, &opts)?;
        match r.verdict {
            checker::Verdict::Invalid => Err(format!("checker: {}", r.explanation)),
            _ => Ok(()),
        }
    }

    /// Replays the decided log and checks each client result against it: every definite result
    /// must be what the log gives at the op's position, positions must respect real time, and a
    /// read answered outside the log must match some state between its invoke and completion.
    fn check_linearizable(&self) -> Result<(), String> {
        let mut app = AppState::default();
        let mut pos_of: HashMap<ReqId, (u64, OpResult)> = HashMap::new();
        let mut changes: HashMap<String, Vec<(u64, Json)>> = HashMap::new();
        let mut pos = 0u64;
        let mut slot = 0;
        while let Some(v) = self.decided.get(&slot) {
            for cmd in v.iter() {
                let before = app.kv.clone();
                if let Some(r) = app.apply(cmd) {
                    pos += 1;
                    pos_of.insert(cmd.id, (pos, r));
                    for (k, val) in &app.kv {
                        if before.get(k) != Some(val) {
                            changes
                                .entry(k.clone())
                                .or_default()
                                .push((pos, val.clone()));
                        }
                    }
                }
            }
            slot += 1;
        }
        // (op index, position) of ops that were applied.
        let placed: Vec<(usize, u64)> = self
            .ops
            .iter()
            .enumerate()
            .filter_map(|(i, _)| {
                let id = self.tags.get(&(i as u64))?;
                pos_of.get(id).map(|(p, _)| (i, *p))
            })
            .collect();
        let definite = |r: &Option<OpResult>| match r {
            None => false,
            Some(OpResult::Error(code, _)) => *code != 0,
            Some(_) => true,
        };
        let pos_map: HashMap<usize, u64> = placed.iter().copied().collect();
        // lo(t): highest position among applied ops that completed definitely before t.
        let mut done: Vec<(u64, u64)> = placed
            .iter()
            .filter(|(i, _)| definite(&self.ops[*i].result))
            .map(|(i, p)| (self.ops[*i].complete.expect("definite"), *p))
            .collect();
        done.sort();
        let mut run = 0;
        let prefix_max: Vec<(u64, u64)> = done
            .iter()
            .map(|(t, p)| {
                run = run.max(*p);
                (*t, run)
            })
            .collect();
        let lo = |t: u64| {
            let k = prefix_max.partition_point(|(c, _)| *c < t);
            if k == 0 {
                0
            } else {
                prefix_max[k - 1].1
            }
        };
        let mut invokes: Vec<(u64, u64)> = placed
            .iter()
            .map(|(i, p)| (self.ops[*i].invoke, *p))
            .collect();
        invokes.sort();
        let mut suffix_min = vec![u64::MAX; invokes.len() + 1];
        for k in (0..invokes.len()).rev() {
            suffix_min[k] = suffix_min[k + 1].min(invokes[k].1);
        }
        let hi = |t: u64| suffix_min[invokes.partition_point(|(c, _)| *c <= t)];
        for (i, op) in self.ops.iter().enumerate() {
            if !definite(&op.result) {
                continue;
            }
            let got = op.result.as_ref().expect("definite");
            let complete = op.complete.expect("definite");
            let floor = lo(op.invoke);
            match pos_map.get(&i) {
                Some(&p) => {
                    let id = self.tags[&(i as u64)];
                    let want = &pos_of[&id].1;
                    let same = match (got, want) {
                        (OpResult::Error(a, _), OpResult::Error(b, _)) => a == b,
                        _ => got == want,
                    };
                    if !same {
                        return Err(format!(
                            "op {i} {:?} at node {} got {got:?} but the log gives {want:?}",
                            op.op, op.node
                        ));
                    }
                    if p <= floor {
                        return Err(format!(
                            "op {i} {:?} placed at {p} though an op at {floor} completed before it began",
                            op.op
                        ));
                    }
                }
                None => {
                    let (Op::Read { key }, OpResult::Read(v)) = (&op.op, got) else {
                        return Err(format!(
                            "op {i} {:?} answered {got:?} but is not in the log",
                            op.op
                        ));
                    };
                    let top = hi(complete);
                    let ch = changes.get(key).map(Vec::as_slice).unwrap_or(&[]);
                    // State after position k: last change at or before k.
                    let at = |k: u64| {
                        ch.iter()
                            .rev()
                            .find(|(p, _)| *p <= k)
                            .map_or(Json::Null, |(_, v)| v.clone())
                    };
                    let mut ok = at(floor) == *v;
                    for (p, val) in ch {
                        if *p > floor && *p < top && val == v {
                            ok = true;
                        }
                    }
                    if !ok {
                        return Err(format!(
                            "stale read: op {i} read {key}={v} at node {} but the state between positions {floor} and {top} never had it (at {floor}: {})",
                            op.node,
                            at(floor)
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn converged(&self) -> bool {
        let nodes: Vec<&Core> = self.nodes.iter().flatten().collect();
        nodes.iter().all(|c| {
            c.app().applied == nodes[0].app().applied && c.stats().get("pending") == Some(&0)
        })
    }

    pub fn ok_count_after(&self, t: u64) -> usize {
        self.ops
            .iter()
            .filter(|o| {
                o.invoke >= t
                    && matches!(o.result, Some(ref r) if !matches!(r, OpResult::Error(0, _)))
            })
            .count()
    }
}
