//! `harness test --replay RUN_DIR`: the stored run's options (test.json's `options`, read into
//! [`TestArgs`] by serde) with every option typed on this command line on top. The fault
//! schedule itself is loaded by the nemesis from the run folder's schedule.json.

use crate::schedule::{Fault, Schedule, Window};
use crate::test_args::TestArgs;
use anyhow::{anyhow, bail, Result};
use report::run_files::{FileError, TestFile};
use serde_json::{Map, Value};
use std::path::Path;

/// With `--replay RUN_DIR`: the stored options with the typed ones on top. Without it, `args`
/// unchanged.
pub fn replay_args(args: TestArgs) -> Result<TestArgs> {
    let Some(dir) = args.nemesis.replay.clone() else {
        return Ok(args);
    };
    let stored = stored_options(&dir)?;
    let schedule = dir.join("schedule.json");
    if !schedule.is_file() {
        bail!(
            "--replay {}: no schedule.json in that run folder",
            dir.display()
        );
    }
    let run_time_limit = stored.get("time_limit").and_then(Value::as_f64);
    check_windows(&schedule, run_time_limit)
        .map_err(|e| anyhow!("--replay {}: {e}", dir.display()))?;
    let mut replayed = merge(stored, &args, &typed_options()).map_err(|e| {
        anyhow!(
            "--replay {}: the stored options do not parse: {e}",
            dir.display()
        )
    })?;
    replayed.nemesis.replay = Some(dir);
    Ok(replayed)
}

/// Refuses a schedule the nemesis could not replay as written: it runs one window at a time, so a
/// window that starts before the previous one stops would be re-timed; a node that holds a
/// grudge against itself is no partition; and windows end by the schedule's time limit, which is
/// at most the stored run's (`run_time_limit`), so no time is beyond what a run can last.
/// Errors name the window and its line.
fn check_windows(path: &Path, run_time_limit: Option<f64>) -> Result<()> {
    let s = Schedule::load(path).map_err(|e| anyhow!(e))?;
    if let Some(run) = run_time_limit.filter(|&run| s.time_limit_s > run) {
        bail!(
            "{}: time_limit_s {} is beyond the stored run's time limit ({run} s, test.json)",
            path.display(),
            secs(s.time_limit_s)
        );
    }
    let text = std::fs::read_to_string(path)?;
    // Each window has one "start_s", in order: its line names the window in the file.
    let starts: Vec<usize> = text
        .match_indices("\"start_s\"")
        .map(|(at, _)| text[..at].matches('\n').count() + 1)
        .collect();
    let at = |i: usize| match starts.get(i).filter(|_| starts.len() == s.windows.len()) {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    };
    let span = |w: &Window| format!("{}-{} s", secs(w.start_s), secs(w.stop_s));
    for (i, w) in s.windows.iter().enumerate() {
        if w.stop_s > s.time_limit_s {
            bail!(
                "{}: window {i} ({}) ends after the schedule's time_limit_s ({} s)",
                at(i),
                span(w),
                s.time_limit_s
            );
        }
        if let Fault::Partition { grudge, .. } = &w.fault {
            if let Some((n, _)) = grudge.iter().find(|(n, ys)| ys.contains(*n)) {
                bail!(
                    "{}: window {i}: node {n} holds a grudge against itself",
                    at(i)
                );
            }
        }
        // Membership steps have a track of their own, beside the other faults.
        let own_track = |w: &Window| w.fault.kind() == crate::schedule::FaultKind::Membership;
        if own_track(w) {
            continue;
        }
        let Some(p) = (0..i).rev().find(|p| !own_track(&s.windows[*p])) else {
            continue;
        };
        let prev = &s.windows[p];
        if w.start_s < prev.stop_s {
            bail!(
                "{}: window {i} ({}) starts before window {p} ({}) stops: faults run one at a \
                 time, so it would not keep its times",
                at(i),
                span(w),
                span(prev)
            );
        }
    }
    Ok(())
}

/// Seconds as written, or in exponent form when a hostile file makes them huge.
fn secs(x: f64) -> String {
    if x.abs() < 1e9 {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// test.json's `options` object, read through the file's schema (so a folder of a newer layout
/// is refused by name).
fn stored_options(dir: &Path) -> Result<Map<String, Value>> {
    let saved = TestFile::<Map<String, Value>>::read(dir).map_err(|e| match e {
        FileError::Missing(path) => anyhow!(
            "--replay {}: cannot read {}: no such file",
            dir.display(),
            path.display()
        ),
        FileError::Invalid(msg) => anyhow!("--replay: {msg}"),
    })?;
    saved.options.ok_or_else(|| {
        anyhow!(
            "--replay: {} has no \"options\" object",
            dir.join("test.json").display()
        )
    })
}

/// The stored options, with the value of each option in `typed` taken from `current`; fields
/// the stored object lacks take their defaults.
fn merge(
    mut stored: Map<String, Value>,
    current: &TestArgs,
    typed: &[String],
) -> Result<TestArgs, serde_json::Error> {
    let current = serde_json::to_value(current)?;
    for id in typed {
        match current.get(id) {
            Some(v) => stored.insert(id.clone(), v.clone()),
            // Not written when it is the default (e.g. `--net proxy`): the default it is.
            None => stored.remove(id),
        };
    }
    stored.remove("replay");
    serde_json::from_value(Value::Object(stored))
}

/// The ids of the `harness test` options typed on this process's command line (clap's ids are
/// the field names, which are also the keys of the stored options).
fn typed_options() -> Vec<String> {
    use clap::{parser::ValueSource, Args};
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let Some(pos) = argv.iter().position(|a| a == "test") else {
        return vec![];
    };
    let cmd = TestArgs::augment_args(clap::Command::new("test"));
    let Ok(m) = cmd.try_get_matches_from(&argv[pos..]) else {
        return vec![];
    };
    m.ids()
        .filter(|id| m.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.as_str().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `options` of a test.json written by the harness before options were read back with
    /// serde (`harness test --nodes 1 --time-limit 1`).
    const STORED: &str = include_str!("../tests/data/test.json");

    fn stored() -> Map<String, Value> {
        let v: Value = serde_json::from_str(STORED).unwrap();
        v["options"].as_object().unwrap().clone()
    }

    #[test]
    fn stored_options_round_trip() {
        let opts = stored();
        let a = merge(opts.clone(), &TestArgs::default(), &[]).unwrap();
        assert_eq!((a.nodes, a.time_limit), (1, 1.0));
        assert_eq!(serde_json::to_value(&a).unwrap(), Value::Object(opts));
    }

    #[test]
    fn typed_options_override_and_missing_fields_default() {
        let mut opts = stored();
        opts.remove("net_jitter");
        opts.remove("check_time_limit");
        let cli = TestArgs::from_argv(["--time-limit", "7", "--", "--x"]).unwrap();
        let typed = ["time_limit".to_string(), "node_args".to_string()];
        let a = merge(opts, &cli, &typed).unwrap();
        assert_eq!((a.nodes, a.time_limit), (1, 7.0));
        assert_eq!(a.node_args, ["--x"]);
        let d = TestArgs::default();
        assert_eq!(a.check_time_limit, d.check_time_limit);
        assert_eq!(a.nemesis.net_jitter, d.nemesis.net_jitter);
        assert_eq!(d.nemesis.nemesis.to_string(), "partition,pause,kill");
    }

    #[test]
    fn a_typed_default_that_is_not_written_overrides_the_stored_value() {
        let mut opts = stored();
        opts.insert("net".into(), Value::from("netns"));
        let cli = TestArgs::from_argv(["--net", "proxy"]).unwrap();
        let a = merge(opts.clone(), &cli, &["net".to_string()]).unwrap();
        assert_eq!(a.net.net, crate::net::NetMode::Proxy);
        let a = merge(opts, &cli, &[]).unwrap();
        assert_eq!(a.net.net, crate::net::NetMode::Netns);
    }

    #[test]
    fn a_wrong_value_is_an_error() {
        let mut opts = stored();
        opts.insert("nodes".into(), Value::from("three"));
        assert!(merge(opts, &TestArgs::default(), &[]).is_err());
    }
}
