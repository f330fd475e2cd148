//! `cargo bench -p workloads --bench check`: the linearizability checker on large generated
//! histories (linearizable by construction, with crashed ops), and on the same histories with
//! one stale read (invalid: explanation and shrinking included). Prints the median of several
//! runs and the peak memory of the process.
//!
//! Optional arguments: runs per case (default 5); words selecting cases by name.

use checker::history::{Event, EventType, Process};
use checker::{CheckOptions, Verdict};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::time::Instant;
use workloads::{check, Workload};

/// Simulates `procs` clients doing `ops` read/write/cas ops over `keys` keys (values 0..5).
/// Each op takes effect at a random moment between its invoke and its completion; about 1 in
/// 200 ops (times `crash`) crashes (info), after or before taking effect (then it may still take
/// effect later, or never); a cas whose `from` differs fails with precondition-failed.
fn history(seed: u64, procs: usize, keys: usize, ops: usize, crash: f64) -> Vec<Event> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut values: Vec<Option<i64>> = vec![None; keys];
    let mut events: Vec<Event> = Vec::with_capacity(2 * ops);
    // Per process slot: (process id, open op: (f, key, input, output, effect done)).
    type Open = (&'static str, usize, Value, Value, bool);
    let mut slots: Vec<(u64, Option<Open>)> = (0..procs as u64).map(|p| (p, None)).collect();
    let mut next_pid = procs as u64;
    let mut crashed: Vec<(&'static str, usize, Value)> = Vec::new();
    let mut invoked = 0;
    let mut time = 0u64;
    let key_name = |k: usize| (keys > 1).then(|| format!("k{k}"));
    while invoked < ops || slots.iter().any(|s| s.1.is_some()) {
        time += rng.gen_range(1_000..50_000);
        let s = rng.gen_range(0..procs);
        let pid = slots[s].0;
        let event = |kind, f: &str, key: usize, value: Value, error: Option<&str>| Event {
            index: 0,
            time,
            process: Process::Client(pid),
            kind,
            f: f.to_string(),
            key: key_name(key),
            value,
            node: None,
            error: error.map(str::to_string),
        };
        match slots[s].1.take() {
            None if invoked < ops => {
                let key = rng.gen_range(0..keys);
                let (f, input) = match rng.gen_range(0..10) {
                    0..=4 => ("read", Value::Null),
                    5..=7 => ("write", json!(rng.gen_range(0..5))),
                    _ => ("cas", json!([rng.gen_range(0..5), rng.gen_range(0..5)])),
                };
                events.push(event(EventType::Invoke, f, key, input.clone(), None));
                invoked += 1;
                slots[s].1 = Some((f, key, input, Value::Null, false));
            }
            None => {}
            Some((f, key, input, _, false)) => {
                if rng.gen_bool(0.003 * crash) {
                    // Crash before taking effect: it may still happen later, or never.
                    events.push(event(
                        EventType::Info,
                        f,
                        key,
                        input.clone(),
                        Some("timeout"),
                    ));
                    crashed.push((f, key, input));
                    slots[s] = (next_pid, None);
                    next_pid += 1;
                    continue;
                }
                let v = &mut values[key];
                let output = match f {
                    "read" => json!(*v),
                    "write" => {
                        *v = input.as_i64();
                        Value::Null
                    }
                    _ if *v == input[0].as_i64() => {
                        *v = input[1].as_i64();
                        Value::Null
                    }
                    _ => json!("precondition-failed"),
                };
                slots[s].1 = Some((f, key, input, output, true));
            }
            Some((f, key, input, output, true)) => {
                if f != "read" && rng.gen_bool(0.002 * crash) {
                    events.push(event(EventType::Info, f, key, input, Some("timeout")));
                    slots[s] = (next_pid, None);
                    next_pid += 1;
                } else if output == json!("precondition-failed") {
                    let e = event(EventType::Fail, f, key, input, Some("precondition-failed"));
                    events.push(e);
                } else if f == "read" {
                    events.push(event(EventType::Ok, f, key, output, None));
                } else {
                    events.push(event(EventType::Ok, f, key, input, None));
                }
            }
        }
        if !crashed.is_empty() && rng.gen_bool(0.01) {
            let (f, key, input) = crashed.swap_remove(rng.gen_range(0..crashed.len()));
            let v = &mut values[key];
            match f {
                "write" => *v = input.as_i64(),
                "cas" if *v == input[0].as_i64() => *v = input[1].as_i64(),
                _ => {}
            }
        }
    }
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    events
}

/// Makes the history non-linearizable: a fresh process writes 101 at a quarter of the way (to a
/// key of its own in kv histories; into the one register otherwise),
/// and at three quarters writes 100 and then reads 101 back, with nothing else writing 101.
fn stale_read(events: &mut Vec<Event>) {
    let at = |events: &Vec<Event>, i: usize, f: &str, kind, value: Value| Event {
        index: 0,
        time: events[i].time,
        process: Process::Client(1_000_000 + i as u64),
        kind,
        f: f.to_string(),
        key: events[i].key.as_ref().map(|_| "kbad".to_string()),
        value,
        node: None,
        error: None,
    };
    let (i1, i2) = (events.len() / 4, events.len() * 3 / 4);
    let late = [
        at(events, i2, "write", EventType::Invoke, json!(100)),
        at(events, i2, "write", EventType::Ok, json!(100)),
        at(events, i2, "read", EventType::Invoke, Value::Null),
        at(events, i2, "read", EventType::Ok, json!(101)),
    ];
    let early = [
        at(events, i1, "write", EventType::Invoke, json!(101)),
        at(events, i1, "write", EventType::Ok, json!(101)),
    ];
    events.splice(i2..i2, late);
    events.splice(i1..i1, early);
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn case(name: &str, w: Workload, events: &[Event], want: Verdict, runs: usize, limit: Option<f64>) {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a.parse::<usize>().is_err() && !a.starts_with("--"))
        .collect();
    if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
        return;
    }
    let mut opts = CheckOptions::default();
    let env = std::env::var("CHECK_TIME_LIMIT")
        .ok()
        .map(|s| s.parse().expect("seconds"));
    opts.time_limit = env.or(limit).map(std::time::Duration::from_secs_f64);
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = check(w, events, &opts).expect("generated histories are well formed");
        times.push(t.elapsed().as_secs_f64());
        last = Some(r);
    }
    let r = last.unwrap();
    if r.verdict == Verdict::Unknown {
        let t = median(times);
        println!("{name:<44} median {t:>7.3} s  {}", r.explanation);
        return;
    }
    assert_eq!(r.verdict, want, "{name}: {}", r.explanation);
    println!(
        "{name:<44} median {:>7.3} s  (min {:.3}, max {:.3}, {runs} runs)  {} ops, {} keys, {} states",
        median(times.clone()),
        times.iter().cloned().fold(f64::MAX, f64::min),
        times.iter().cloned().fold(0.0, f64::max),
        r.ops,
        r.keys,
        r.states_explored
    );
    if want == Verdict::Invalid {
        let shrunk = r
            .counterexample
            .as_ref()
            .map_or(0, |c| c["shrunk"].as_array().map_or(0, |a| a.len()));
        println!("    shrunk to {shrunk} ops: {}", r.explanation);
    }
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let reg_ops = std::env::var("BENCH_REG_OPS").map_or(20_000, |s| s.parse().expect("ops"));
    let kv = history(1, 50, 1000, 200_000, 1.0);
    let reg = history(2, 10, 1, reg_ops, 1.0);
    let reg_no_crash = history(3, 10, 1, reg_ops, 0.0);
    let info = |h: &[Event]| h.iter().filter(|e| e.kind == EventType::Info).count();
    println!(
        "generated: kv {} events ({} info), register {} events ({} info)",
        kv.len(),
        info(&kv),
        reg.len(),
        info(&reg)
    );
    use Verdict::*;
    use Workload::*;
    case(
        "kv 200k ops, 1000 keys, 50 procs (valid)",
        Kv,
        &kv,
        Valid,
        runs,
        None,
    );
    case(
        "register 20k ops, 10 procs (valid)",
        Register,
        &reg,
        Valid,
        runs,
        None,
    );
    let (mut kv_bad, mut reg_bad, mut reg_nc_bad) = (kv.clone(), reg.clone(), reg_no_crash);
    stale_read(&mut kv_bad);
    stale_read(&mut reg_bad);
    stale_read(&mut reg_nc_bad);
    case(
        "kv 200k ops, one stale read (invalid)",
        Kv,
        &kv_bad,
        Invalid,
        runs,
        None,
    );
    let name = "register 20k ops, no crashes, stale read (invalid)";
    case(name, Register, &reg_nc_bad, Invalid, runs, None);
    // A stale read among dozens of crashed ops: settled by the stale-read pre-check, not the search.
    let name = "register 20k ops, crashes, stale read (10 s limit)";
    case(name, Register, &reg_bad, Invalid, 1, Some(10.0));
    println!("peak memory (VmHWM): {:.0} MB", peak_rss_mb());
}
