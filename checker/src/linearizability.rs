//! Checking a whole history for linearizability: pair its events, split it into independent
//! parts (P-compositionality), search every part on all cores ([`crate::search`]), and turn the
//! outcome into a [`CheckResult`], explaining the first failing part ([`crate::explain`]).

use crate::explain::{explain, key_name};
use crate::history::Event;
use crate::model::{pair, Model, Operation, PartModel, Prepared, Timed};
use crate::search::{decide, Budget, Search};
use crate::verdict::{CheckOptions, CheckResult, Verdict, DEFAULT_MEMORY_LIMIT};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Splits the paired operations into parts and builds each part's model. Errors name the event.
pub fn prepare<'h, M: Model>(
    model: &M,
    operations: &'h [Operation],
) -> Result<Vec<Prepared<'h, M::Part>>, String> {
    let mut parts: BTreeMap<String, Vec<&Operation>> = BTreeMap::new();
    for op in operations {
        parts.entry(model.part_of(op)?).or_default().push(op);
    }
    let mut out = Vec::with_capacity(parts.len());
    for (key, all) in parts {
        let (part, converted) = model.build(&all)?;
        let (mut ops, mut source) = (Vec::new(), Vec::new());
        for (op, m) in all.into_iter().zip(converted) {
            if let Some(m) = m {
                ops.push(Timed {
                    op: m,
                    call: op.call_pos,
                    ret: op.ret_pos,
                });
                source.push(op);
            }
        }
        if !ops.is_empty() {
            out.push(Prepared {
                key,
                part,
                ops,
                source,
            });
        }
    }
    Ok(out)
}

/// What one part's check found.
pub enum PartVerdict {
    Valid,
    /// From the cheap pre-check (`reason`) or from the search.
    Invalid {
        linearized: Vec<usize>,
        blocked: usize,
        reason: Option<String>,
        /// Non-empty: these ops alone (indices, `blocked` among them) show it; explain only them.
        witness: Vec<usize>,
    },
    Unknown {
        reason: &'static str,
        deepest: usize,
    },
}

/// Checks one part: the cheap necessary condition, then the search. Also returns the number of
/// states explored.
pub fn check_part<P: PartModel>(p: &Prepared<P>, budget: &Budget) -> (PartVerdict, u64) {
    let invalid = |blocked, reason, witness| PartVerdict::Invalid {
        linearized: vec![],
        blocked,
        reason,
        witness,
    };
    if let Some((blocked, reason)) = p.part.impossible(&p.ops) {
        return (invalid(blocked, Some(reason), vec![]), 0);
    }
    // Only where crashed ops can make the search blow up: elsewhere the search is fast and its
    // explanation (the values possible, the concurrent ops) says more.
    let crashed = p.ops.iter().any(|t| t.ret.is_none());
    if let Some((blocked, witness)) = crashed.then(|| p.part.certainly_blocked(&p.ops)).flatten() {
        return (invalid(blocked, None, witness), 0);
    }
    let (outcome, states) = decide(&p.part, &p.ops, budget);
    let verdict = match outcome {
        Search::Linearizable => PartVerdict::Valid,
        Search::NotLinearizable {
            linearized,
            blocked,
        } => PartVerdict::Invalid {
            linearized,
            blocked,
            reason: None,
            witness: vec![],
        },
        Search::OutOfBudget { reason, deepest } => PartVerdict::Unknown { reason, deepest },
    };
    (verdict, states)
}

/// Checks a whole history against `model`: pairs events, checks every part (keys in parallel),
/// and explains the first failing key (in key order).
pub fn check_events<M: Model>(
    model: &M,
    events: &[Event],
    opts: &CheckOptions,
) -> Result<CheckResult, String> {
    let started = Instant::now();
    let operations = pair(events)?;
    let mut parts = prepare(model, &operations)?;
    let deadline = opts.time_limit.map(|d| started + d);
    let results = check_parts(&parts, opts, deadline);
    // Explaining must not cost more than deciding: it gets as long as the search took (at least
    // a fifth of a second, at most what `explain` allows), within the check's own deadline.
    let searched = started.elapsed().max(Duration::from_millis(200));
    let explain_by = Instant::now() + searched;
    let explain_by = Some(deadline.map_or(explain_by, |d| d.min(explain_by)));
    let states: u64 = results.iter().map(|r| r.1).sum();
    let ops = parts.iter().map(|p| p.ops.len()).sum();
    let mut result = CheckResult {
        verdict: Verdict::Valid,
        explanation: String::new(),
        counterexample: None,
        keys: parts.len(),
        ops,
        states_explored: states,
        elapsed_ms: 0.0,
    };
    let first = |want: fn(&PartVerdict) -> bool| results.iter().position(|r| want(&r.0));
    if let Some(i) = first(|v| matches!(v, PartVerdict::Invalid { .. })) {
        let (text, json) = explain_invalid(parts.swap_remove(i), &results[i].0, explain_by);
        result.verdict = Verdict::Invalid;
        result.explanation = text;
        result.counterexample = Some(json);
    } else if let Some(i) = first(|v| matches!(v, PartVerdict::Unknown { .. })) {
        result.verdict = Verdict::Unknown;
        result.explanation = unknown_text(&parts, &results, i, states, opts);
    } else {
        result.explanation = format!(
            "ok: {ops} ops over {} key{} are linearizable",
            parts.len(),
            if parts.len() == 1 { "" } else { "s" }
        );
    }
    result.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(result)
}

/// The explanation and counterexample of the invalid part `p`.
fn explain_invalid<P: PartModel>(
    mut p: Prepared<P>,
    verdict: &PartVerdict,
    deadline: Option<Instant>,
) -> (String, serde_json::Value) {
    let PartVerdict::Invalid {
        linearized,
        blocked,
        reason,
        witness,
    } = verdict
    else {
        unreachable!("explain_invalid is given an invalid part")
    };
    let (mut linearized, mut blocked) = (linearized.clone(), *blocked);
    if let Some(b) = witness.iter().position(|&w| w == blocked) {
        // The whole part may be too hard to search (crashed ops): explain the few ops alone.
        blocked = b;
        p.ops = witness.iter().map(|&w| p.ops[w].clone()).collect();
        p.source = witness.iter().map(|&w| p.source[w]).collect();
        linearized.clear();
    }
    explain(&p, &linearized, blocked, reason.as_deref(), deadline)
}

/// Why part `i` (unknown) leaves the verdict unknown, and how far the check got.
fn unknown_text<P: PartModel>(
    parts: &[Prepared<P>],
    results: &[(PartVerdict, u64)],
    i: usize,
    states: u64,
    opts: &CheckOptions,
) -> String {
    let PartVerdict::Unknown { reason, deepest } = &results[i].0 else {
        unreachable!("unknown_text is given an unknown part")
    };
    let done = results
        .iter()
        .filter(|r| matches!(r.0, PartVerdict::Valid))
        .count();
    let p = &parts[i];
    let memory = opts.memory_limit_bytes.unwrap_or(DEFAULT_MEMORY_LIMIT);
    let (limit, more) = match *reason {
        "time limit" => (
            opts.time_limit
                .map_or(String::new(), |t| format!(" of {:.1} s", t.as_secs_f64())),
            "more time (--time-limit)",
        ),
        "memory limit" => (
            match memory >> 20 {
                0 => format!(" of {memory} bytes"),
                mib => format!(" of {mib} MiB"),
            },
            "more memory (--memory-limit, in MiB)",
        ),
        _ => (String::new(), "checking this key alone"),
    };
    let procs = {
        let mut seen: Vec<u64> = p.source.iter().map(|o| o.process).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    };
    let open = p.ops.iter().filter(|t| t.ret.is_none()).count();
    format!(
        "unknown: the {reason}{limit} ran out while checking {}, after linearizing {deepest} of \
         its {} ops ({procs} processes, {open} with unknown outcome); {done} of {} keys were \
         checked and found linearizable; {states} states explored. To decide it, try {more}, \
         or a run with fewer processes per key or fewer crashed ops",
        key_name(&p.key),
        p.ops.len(),
        parts.len()
    )
}

/// Runs every part's check on a pool of scoped threads, largest parts first. Once a part is
/// invalid, parts after it in key order are cancelled (their verdict cannot change the outcome).
fn check_parts<P: PartModel>(
    parts: &[Prepared<P>],
    opts: &CheckOptions,
    deadline: Option<Instant>,
) -> Vec<(PartVerdict, u64)> {
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(parts.len().max(1));
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(parts[i].ops.len()));
    let (next, first_invalid, memory) = (
        AtomicUsize::new(0),
        AtomicUsize::new(usize::MAX),
        AtomicU64::new(0),
    );
    let worker = || {
        let mut mine = Vec::new();
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&i) = order.get(k) else { break };
            // Any invalid key settles the verdict, so every other search stops (as Porcupine
            // does); the lowest invalid key that finished is the one explained.
            let cancelled = || first_invalid.load(Ordering::Relaxed) != usize::MAX;
            let budget = Budget {
                deadline,
                memory_limit: Some(opts.memory_limit_bytes.unwrap_or(DEFAULT_MEMORY_LIMIT)),
                memory_used: &memory,
                cancelled: &cancelled,
            };
            let r = check_part(&parts[i], &budget);
            if matches!(r.0, PartVerdict::Invalid { .. }) {
                first_invalid.fetch_min(i, Ordering::Relaxed);
            }
            mine.push((i, r));
        }
        mine
    };
    let all: Vec<Vec<(usize, (PartVerdict, u64))>> = if threads <= 1 {
        vec![worker()]
    } else {
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
            hs.into_iter()
                .map(|h| h.join().expect("checker thread panicked"))
                .collect()
        })
    };
    let mut slots: Vec<Option<(PartVerdict, u64)>> = (0..parts.len()).map(|_| None).collect();
    for (i, r) in all.into_iter().flatten() {
        slots[i] = Some(r);
    }
    slots
        .into_iter()
        .map(|s| s.expect("every part checked"))
        .collect()
}
