//! Validation of one `[[test]]` entry (with `[defaults]` under it) and its expansion into runs:
//! variants × workloads × fault sets × seeds × repeats.

use super::format::{Expect, Fields, BUGS, DEFAULT_NODES};
use super::locate::{Locator, Region, SpecError};
use super::run_spec::RunSpec;
use crate::options::{node_count_problem, workload_name, Variant};
use std::collections::BTreeSet;
use workloads::Workload;

/// An entry's value if it set one, else the default's.
fn pick<T: Clone>(e: &Option<T>, d: &Option<T>) -> Option<T> {
    e.clone().or_else(|| d.clone())
}

/// The runs of entry `index`, or the first problem found in it.
pub fn expand(
    src: &Locator,
    index: usize,
    entry_name: &str,
    e: &Fields,
    d: &Fields,
) -> Result<Vec<RunSpec>, SpecError> {
    let err = |field: &str, msg: String| src.error(Region::Entry(index), Some(field), msg);

    let variants = pick(&e.variants, &d.variants).unwrap_or_else(|| vec![Variant::Multi]);
    let workloads = pick(&e.workloads, &d.workloads).unwrap_or_else(|| vec![Workload::Register]);
    let fault_sets = pick(&e.faults, &d.faults).unwrap_or_else(|| vec!["none".into()]);
    let seeds = pick(&e.seeds, &d.seeds).unwrap_or_else(|| vec![1]);
    let repeats = pick(&e.repeats, &d.repeats).unwrap_or(1);
    let expect = pick(&e.expect, &d.expect).unwrap_or_default();
    let bugs = pick(&e.bugs, &d.bugs).unwrap_or_default();
    let node_bin = pick(&e.node_bin, &d.node_bin);
    let nodes = pick(&e.nodes, &d.nodes);

    for (field, empty) in [
        ("variants", variants.is_empty()),
        ("workloads", workloads.is_empty()),
        ("faults", fault_sets.is_empty()),
        ("seeds", seeds.is_empty()),
    ] {
        if empty {
            return Err(err(
                field,
                "is empty, so the entry would run nothing (list at least one)".into(),
            ));
        }
    }
    no_duplicates(&variants, |v| v.as_str().to_string()).map_err(|m| err("variants", m))?;
    no_duplicates(&workloads, |w| workload_name(*w).to_string())
        .map_err(|m| err("workloads", m))?;
    no_duplicates(&seeds, |s| s.to_string()).map_err(|m| err("seeds", m))?;
    if repeats == 0 {
        return Err(err(
            "repeats",
            "must be at least 1 (0 would run nothing)".into(),
        ));
    }
    if let Some(n) = nodes {
        if n == 0 {
            return Err(err("nodes", "must be at least 1".into()));
        }
        if let Some(why) = node_count_problem(n as usize, node_bin.is_none()) {
            return Err(err(
                "nodes",
                format!("is {n}, but {why} (a custom node_bin is not limited)"),
            ));
        }
    }
    positive(pick(&e.rate, &d.rate)).map_err(|m| err("rate", m))?;
    durations(e, d).map_err(|(field, m)| err(field, m))?;
    if pick(&e.concurrency, &d.concurrency) == Some(0) {
        return Err(err("concurrency", "must be at least 1".into()));
    }

    let mut parsed_faults: Vec<Vec<String>> = Vec::new();
    for set in &fault_sets {
        let kinds = parse_fault_set(set).map_err(|m| err("faults", m))?;
        let cluster = nodes.unwrap_or(DEFAULT_NODES);
        if kinds.iter().any(|k| k == "partition") && cluster < 2 {
            return Err(err(
                "faults",
                format!("\"{set}\" cuts links, but a {cluster}-node cluster has none (nodes >= 2)"),
            ));
        }
        if parsed_faults.contains(&kinds) {
            return Err(err(
                "faults",
                format!("fault set \"{set}\" is listed twice"),
            ));
        }
        parsed_faults.push(kinds);
    }

    no_duplicates(&bugs, |b| b.clone()).map_err(|m| err("bugs", m))?;
    if node_bin.is_none() {
        for b in &bugs {
            if !BUGS.contains(&b.as_str()) {
                return Err(err(
                    "bugs",
                    format!(
                        "unknown seeded bug \"{b}\" (paxos-node has: {})",
                        BUGS.join(", ")
                    ),
                ));
            }
            if (b == "lease-read" || b == "clock-lease") && variants.contains(&Variant::Basic) {
                return Err(err(
                    "bugs",
                    format!(
                        "\"{b}\" exists only in the multi variant, but variants include \"basic\""
                    ),
                ));
            }
        }
        if expect == Expect::Invalid && bugs.is_empty() {
            return Err(err(
                "expect",
                "\"invalid\" needs a seeded bug (bugs = [...]) or a custom node_bin: \
                 the default node is expected to be correct"
                    .into(),
            ));
        }
    }

    let mut runs = Vec::new();
    let mut turns = vec![0u32; parsed_faults.len()];
    for &variant in &variants {
        for &workload in &workloads {
            for (set, kinds) in parsed_faults.iter().enumerate() {
                for &seed in &seeds {
                    for repeat in 1..=repeats {
                        let fault_slug = if kinds.is_empty() {
                            "none".to_string()
                        } else {
                            kinds.join("+")
                        };
                        let mut name = format!(
                            "{entry_name}-{}-{}-{fault_slug}-s{seed}",
                            variant.as_str(),
                            workload_name(workload)
                        );
                        if repeats > 1 {
                            name.push_str(&format!("-r{repeat}"));
                        }
                        runs.push(RunSpec {
                            name,
                            entry: entry_name.to_string(),
                            variant,
                            workload,
                            faults: kinds.clone(),
                            seed,
                            repeat,
                            turn: turns[set],
                            expect,
                            bugs: bugs.clone(),
                            nodes,
                            time_limit: pick(&e.time_limit, &d.time_limit),
                            concurrency: pick(&e.concurrency, &d.concurrency),
                            rate: pick(&e.rate, &d.rate),
                            recovery_time: pick(&e.recovery_time, &d.recovery_time),
                            op_timeout: pick(&e.op_timeout, &d.op_timeout),
                            nemesis_interval: pick(&e.nemesis_interval, &d.nemesis_interval),
                            nemesis_targets: pick(&e.nemesis_targets, &d.nemesis_targets)
                                .unwrap_or_default(),
                            partition_mode: pick(&e.partition_mode, &d.partition_mode),
                            net_latency: pick(&e.net_latency, &d.net_latency),
                            net_jitter: pick(&e.net_jitter, &d.net_jitter),
                            check_time_limit: pick(&e.check_time_limit, &d.check_time_limit),
                            node_bin: node_bin.clone(),
                            node_args: pick(&e.node_args, &d.node_args).unwrap_or_default(),
                            harness_args: pick(&e.harness_args, &d.harness_args)
                                .unwrap_or_default(),
                        });
                        turns[set] += 1;
                    }
                }
            }
        }
    }
    Ok(runs)
}

/// `"none"` → no faults; `"partition,kill"` → both.
fn parse_fault_set(set: &str) -> Result<Vec<String>, String> {
    let s = set.trim();
    if s == "none" {
        return Ok(Vec::new());
    }
    if s.is_empty() {
        return Err("an empty fault set; write \"none\" for a run without faults".into());
    }
    let mut kinds: Vec<String> = Vec::new();
    for part in s.split(',').map(str::trim) {
        if part == "none" {
            return Err(format!(
                "\"{set}\" mixes \"none\" with faults; \"none\" stands alone"
            ));
        }
        // The kinds `harness test --nemesis` knows, and its message naming them.
        if let Err(e) = part.parse::<crate::schedule::Kinds>() {
            return Err(format!("in \"{set}\": {e}"));
        }
        if kinds.iter().any(|k| k == part) {
            return Err(format!("\"{set}\" names \"{part}\" twice"));
        }
        kinds.push(part.to_string());
    }
    Ok(kinds)
}

fn no_duplicates<T>(items: &[T], show: impl Fn(&T) -> String) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for i in items {
        let s = show(i);
        if !seen.insert(s.clone()) {
            return Err(format!("lists {s} twice"));
        }
    }
    Ok(())
}

fn positive(v: Option<f64>) -> Result<(), String> {
    match v {
        Some(x) if !x.is_finite() => Err(format!("must be a finite number, not {x}")),
        Some(x) if x <= 0.0 => Err(format!("must be greater than 0, not {x}")),
        _ => Ok(()),
    }
}

/// The entry's durations, checked by the rules of `harness test` ([`crate::duration`]), so that
/// a value the run would refuse is found when the file loads: `(field, problem)`.
fn durations(e: &Fields, d: &Fields) -> Result<(), (&'static str, String)> {
    use crate::duration::{problem, Unit};
    for (field, v, unit, zero_ok) in [
        (
            "time_limit",
            pick(&e.time_limit, &d.time_limit),
            Unit::Seconds,
            false,
        ),
        (
            "op_timeout",
            pick(&e.op_timeout, &d.op_timeout),
            Unit::Seconds,
            false,
        ),
        (
            "recovery_time",
            pick(&e.recovery_time, &d.recovery_time),
            Unit::Seconds,
            true,
        ),
        (
            "check_time_limit",
            pick(&e.check_time_limit, &d.check_time_limit),
            Unit::Seconds,
            false,
        ),
        (
            "nemesis_interval",
            pick(&e.nemesis_interval, &d.nemesis_interval),
            Unit::Seconds,
            false,
        ),
        (
            "net_latency",
            pick(&e.net_latency, &d.net_latency),
            Unit::Millis,
            true,
        ),
        (
            "net_jitter",
            pick(&e.net_jitter, &d.net_jitter),
            Unit::Millis,
            true,
        ),
    ] {
        if let Some(p) = v.and_then(|v| problem(v, unit, zero_ok)) {
            return Err((field, p));
        }
    }
    if let Some(i) = pick(&e.nemesis_interval, &d.nemesis_interval) {
        if i < crate::schedule::MIN_INTERVAL_S {
            let min = crate::schedule::MIN_INTERVAL_S;
            return Err((
                "nemesis_interval",
                format!("must be at least {min}, not {i}"),
            ));
        }
    }
    Ok(())
}
