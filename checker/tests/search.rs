//! Property tests of the linearizability search, with the small register model of tests/common
//! (the product's models live in `workloads`): histories linearizable by construction check valid, one
//! impossible read makes them invalid, and a slow exact reference search agrees with the fast one
//! on thousands of small random histories.

use checker::history::{Event, EventType, Process};
use checker::linearizability::check_events;
use checker::{CheckOptions, Verdict};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

// The register model shared with the frontier tests and bench (tests/common).
mod common;
use common::{step, Op, Reg};

// ---------------------------------------------------------------- random histories

/// An op as generated: what it did and how it ended.
#[derive(Clone, Debug)]
struct GenOp {
    process: u64,
    f: &'static str,
    input: Value,
    output: Value,
    kind: EventType,
    error: Option<&'static str>,
    call: usize,
    ret: Option<usize>,
}

/// Turns ops into events ordered by position (call/ret positions are distinct slots).
fn to_events(ops: &[GenOp]) -> Vec<Event> {
    let mut slots: Vec<(usize, Event)> = Vec::new();
    for o in ops {
        let mut e = Event {
            index: 0,
            time: o.call as u64 * 10_000_000,
            process: Process::Client(o.process),
            kind: EventType::Invoke,
            f: o.f.to_string(),
            key: None,
            value: if o.f == "read" {
                Value::Null
            } else {
                o.input.clone()
            },
            node: None,
            error: None,
        };
        slots.push((o.call, e.clone()));
        if let Some(r) = o.ret {
            e.time = r as u64 * 10_000_000;
            e.kind = o.kind;
            e.value = if o.f == "read" {
                o.output.clone()
            } else {
                o.input.clone()
            };
            e.error = o.error.map(str::to_string);
            slots.push((r, e));
        }
    }
    slots.sort_by_key(|s| s.0);
    let mut events: Vec<Event> = slots.into_iter().map(|s| s.1).collect();
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    events
}

/// A history linearizable by construction: each op takes effect at a random moment between its
/// invoke and completion (or, for crashed ops, at some moment after the invoke, or never).
fn linearizable_history(rng: &mut SmallRng, procs: u64, steps: usize) -> Vec<GenOp> {
    let mut value: Option<i64> = None;
    let mut ops: Vec<GenOp> = Vec::new();
    // Per process: index of its open op and whether it has taken effect.
    let mut open: Vec<Option<(usize, bool)>> = vec![None; procs as usize];
    let mut ids: Vec<u64> = (0..procs).collect();
    let mut next_id = procs;
    let mut crashed: Vec<usize> = Vec::new();
    let mut pos = 0;
    for _ in 0..steps {
        let p = rng.gen_range(0..procs as usize);
        match open[p] {
            None => {
                let (f, input) = match rng.gen_range(0..3) {
                    0 => ("read", Value::Null),
                    1 => ("write", json!(rng.gen_range(0..4))),
                    _ => ("cas", json!([rng.gen_range(0..4), rng.gen_range(0..4)])),
                };
                ops.push(GenOp {
                    process: ids[p],
                    f,
                    input,
                    output: Value::Null,
                    kind: EventType::Info,
                    error: None,
                    call: pos,
                    ret: None,
                });
                open[p] = Some((ops.len() - 1, false));
            }
            Some((i, false)) => {
                // Take effect now (or, sometimes, fail without effect).
                let o = &mut ops[i];
                let s = value;
                match o.f {
                    "read" => o.output = json!(s),
                    "write" => value = o.input.as_i64(),
                    _ => {
                        if s == o.input[0].as_i64() {
                            value = o.input[1].as_i64();
                        } else {
                            o.kind = EventType::Fail;
                            o.error = Some("precondition-failed");
                        }
                    }
                }
                open[p] = Some((i, true));
            }
            Some((i, true)) => {
                let o = &mut ops[i];
                o.ret = Some(pos);
                if o.kind == EventType::Info {
                    o.kind = EventType::Ok;
                }
                if rng.gen_bool(0.1) && o.f != "read" {
                    // Crash after taking effect: the client saw nothing.
                    o.kind = EventType::Info;
                    o.error = Some("timeout");
                    (ids[p], next_id) = (next_id, next_id + 1);
                }
                open[p] = None;
            }
        }
        // Now and then an op crashes before taking effect, and later may still take effect.
        if rng.gen_bool(0.03) {
            if let Some((i, false)) = open[p] {
                ops[i].kind = EventType::Info;
                ops[i].ret = Some(pos + 1);
                pos += 1;
                crashed.push(i);
                (ids[p], next_id) = (next_id, next_id + 1);
                open[p] = None;
            }
        }
        if !crashed.is_empty() && rng.gen_bool(0.05) {
            let i = crashed.swap_remove(rng.gen_range(0..crashed.len()));
            let o = &ops[i];
            match o.f {
                "write" => value = o.input.as_i64(),
                "cas" if value == o.input[0].as_i64() => value = o.input[1].as_i64(),
                _ => {}
            }
        }
        pos += 1;
    }
    // Crashed reads and cas ops that failed before completing tell nothing; a `fail` that never
    // took effect is fine too. Info ops keep no completion position in the search anyway.
    for o in &mut ops {
        if o.kind == EventType::Info && o.ret.is_some() && o.f == "read" {
            o.output = Value::Null;
        }
        if o.kind == EventType::Fail && o.error.is_none() {
            o.error = Some("timeout");
        }
    }
    ops
}

fn check(ops: &[GenOp]) -> Verdict {
    let r = check_events(&Reg, &to_events(ops), &CheckOptions::default()).unwrap();
    r.verdict
}

/// Whether the coarse frontier search (one configuration per state) refutes the history.
fn coarse_refutes(ops: &[GenOp]) -> bool {
    let operations = checker::model::pair(&to_events(ops)).unwrap();
    let parts = checker::linearizability::prepare(&Reg, &operations).unwrap();
    common::unbounded(|budget| {
        (parts.iter()).any(|p| checker::search::coarse_refutes(&p.part, &p.ops, budget))
    })
}

/// Whether the beam of width 2 (small enough to drop configurations here) proves every part
/// of the history valid.
fn beam_proves(ops: &[GenOp]) -> bool {
    let operations = checker::model::pair(&to_events(ops)).unwrap();
    let parts = checker::linearizability::prepare(&Reg, &operations).unwrap();
    common::unbounded(|budget| {
        (parts.iter()).all(|p| checker::search::beam_proves_valid(&p.part, &p.ops, budget, 2))
    })
}

#[test]
fn histories_linearizable_by_construction_are_valid() {
    let mut rng = SmallRng::seed_from_u64(1);
    for round in 0..300 {
        let (procs, steps) = (rng.gen_range(1..8), rng.gen_range(0..200));
        let ops = linearizable_history(&mut rng, procs, steps);
        let r = check_events(&Reg, &to_events(&ops), &CheckOptions::default()).unwrap();
        assert_eq!(
            r.verdict,
            Verdict::Valid,
            "round {round}: {}\n{ops:#?}",
            r.explanation
        );
    }
}

#[test]
fn one_impossible_read_makes_it_invalid() {
    let mut rng = SmallRng::seed_from_u64(2);
    let mut checked = 0;
    for round in 0..300 {
        let (procs, steps) = (rng.gen_range(1..8), rng.gen_range(10..200));
        let mut ops = linearizable_history(&mut rng, procs, steps);
        let reads: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].f == "read" && ops[i].kind == EventType::Ok)
            .collect();
        if reads.is_empty() {
            continue;
        }
        let i = reads[rng.gen_range(0..reads.len())];
        ops[i].output = json!(99); // never written
        let r = check_events(&Reg, &to_events(&ops), &CheckOptions::default()).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid, "round {round}");
        let cx = r.counterexample.unwrap();
        assert_eq!(cx["op"]["output"], json!(99), "round {round}: {cx}");
        checked += 1;
    }
    assert!(checked > 200);
}

// ---------------------------------------------------------------- the reference search

/// Exact and slow: tries every order, no cache, no pruning. An op may go next if no other
/// unlinearized op returned before it was invoked; crashed ops may be left out.
fn reference(ops: &[(Op, usize, Option<usize>)]) -> bool {
    fn go(ops: &[(Op, usize, Option<usize>)], done: u32, s: Option<i64>) -> bool {
        let all_returned_done = ops
            .iter()
            .enumerate()
            .all(|(i, o)| o.2.is_none() || done & (1 << i) != 0);
        if all_returned_done {
            return true;
        }
        (0..ops.len()).any(|i| {
            let free = done & (1 << i) == 0
                && !ops
                    .iter()
                    .enumerate()
                    .any(|(j, o)| done & (1 << j) == 0 && o.2.is_some_and(|r| r < ops[i].1));
            free && step(s, ops[i].0).is_some_and(|ns| go(ops, done | 1 << i, ns))
        })
    }
    go(ops, 0, None)
}

/// Random small histories, most of them not linearizable: random intervals and read values.
fn random_history(rng: &mut SmallRng) -> Vec<GenOp> {
    let n = rng.gen_range(0..8);
    let mut slots: Vec<usize> = (0..2 * n).collect();
    for i in (1..slots.len()).rev() {
        slots.swap(i, rng.gen_range(0..=i));
    }
    (0..n)
        .map(|i| {
            let (a, b) = (
                slots[2 * i].min(slots[2 * i + 1]),
                slots[2 * i].max(slots[2 * i + 1]),
            );
            let vals = [json!(rng.gen_range(0..3)), json!(rng.gen_range(0..3))];
            let f = ["read", "write", "cas"][rng.gen_range(0..3)];
            let mut o = GenOp {
                process: i as u64,
                f,
                input: Value::Null,
                output: Value::Null,
                kind: EventType::Ok,
                error: None,
                call: a,
                ret: Some(b),
            };
            o.input = match o.f {
                "read" => Value::Null,
                "write" => vals[0].clone(),
                _ => json!([vals[0], vals[1]]),
            };
            if o.f == "read" {
                o.output = if rng.gen_bool(0.2) {
                    Value::Null
                } else {
                    vals[1].clone()
                };
            }
            match rng.gen_range(0..10) {
                0 => o.ret = None,
                1 => o.kind = EventType::Info,
                2 => (o.kind, o.error) = (EventType::Fail, Some("precondition-failed")),
                3 => (o.kind, o.error) = (EventType::Fail, Some("timeout")),
                _ => {}
            }
            o
        })
        .collect()
}

/// The reference's view of `ops`: failed ops dropped (but precondition-failed cas kept),
/// crashed ops without a return, crashed reads dropped.
fn reference_ops(ops: &[GenOp]) -> Vec<(Op, usize, Option<usize>)> {
    ops.iter()
        .filter_map(|o| {
            let crashed = o.ret.is_none() || o.kind == EventType::Info;
            let ret = if crashed { None } else { o.ret };
            let op = match (o.f, o.kind) {
                ("read", EventType::Ok) if !crashed => Op::Read(o.output.as_i64()),
                ("write", EventType::Ok | EventType::Info) => Op::Write(o.input.as_i64()?),
                ("cas", EventType::Ok | EventType::Info) => {
                    Op::Cas(o.input[0].as_i64()?, o.input[1].as_i64()?)
                }
                ("cas", EventType::Fail) if o.error == Some("precondition-failed") => {
                    Op::CasFailed(o.input[0].as_i64()?)
                }
                _ => return None,
            };
            Some((op, o.call, ret))
        })
        .collect()
}

#[test]
fn fast_search_agrees_with_the_reference() {
    let mut rng = SmallRng::seed_from_u64(3);
    let (mut valid, mut invalid, mut coarse, mut beam) = (0, 0, 0, 0);
    for round in 0..3000 {
        let ops = random_history(&mut rng);
        let want = reference(&reference_ops(&ops));
        let got = check(&ops);
        assert_eq!(got == Verdict::Valid, want, "round {round}: {ops:#?}");
        // The coarse search may only refute invalid ones.
        let refuted = coarse_refutes(&ops);
        assert!(!(want && refuted), "coarse, round {round}: {ops:#?}");
        coarse += refuted as usize;
        // The beam may only prove valid ones.
        let proved = beam_proves(&ops);
        assert!(want || !proved, "beam, round {round}: {ops:#?}");
        beam += proved as usize;
        if want {
            valid += 1
        } else {
            invalid += 1
        }
    }
    // Both outcomes are exercised in earnest.
    assert!(
        valid > 500 && invalid > 500 && coarse > 1000 && beam > 1200,
        "{valid} valid, {invalid} invalid, {coarse} refuted coarse, {beam} proved by the beam"
    );
}

#[test]
fn shrunk_counterexample_is_small_and_still_fails() {
    let mut rng = SmallRng::seed_from_u64(4);
    let ops = linearizable_history(&mut rng, 5, 400);
    // Make one late read stale: it returns a value some write wrote, but not one possible then.
    // Not every such change is impossible (a concurrent write may explain it): take the first
    // from three quarters on that is.
    let reads: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].f == "read" && ops[i].kind == EventType::Ok)
        .collect();
    let written = |v: i64| ops.iter().any(|o| o.f == "write" && o.input == json!(v));
    let (events, r) = reads[reads.len() * 3 / 4..]
        .iter()
        .flat_map(|&i| (0..4).map(move |v| (i, v)))
        .filter(|&(i, v)| ops[i].output.as_i64() != Some(v) && written(v))
        .find_map(|(i, v)| {
            let mut bad = ops.clone();
            bad[i].output = json!(v);
            let events = to_events(&bad);
            let r = check_events(&Reg, &events, &CheckOptions::default()).unwrap();
            (r.verdict == Verdict::Invalid).then_some((events, r))
        })
        .expect("some late read made stale is not linearizable");
    let cx = r
        .counterexample
        .expect("an invalid verdict has a counterexample");
    let shrunk = cx["shrunk"].as_array().unwrap();
    assert!(
        !shrunk.is_empty() && shrunk.len() <= 6,
        "{} ops: {cx}",
        shrunk.len()
    );
    assert_eq!(cx["shrunk_minimal"], true);
    // The shrunk ops alone, as a history of their own, still fail.
    let kept: Vec<u64> = shrunk
        .iter()
        .flat_map(|o| [o["invoke_index"].as_u64(), o["complete_index"].as_u64()])
        .flatten()
        .collect();
    let sub: Vec<Event> = events
        .into_iter()
        .filter(|e| kept.contains(&e.index))
        .collect();
    assert_eq!(sub.len(), kept.len(), "every shrunk op's events: {cx}");
    let again = check_events(&Reg, &sub, &CheckOptions::default()).unwrap();
    assert_eq!(again.verdict, Verdict::Invalid, "{}", again.explanation);
}
