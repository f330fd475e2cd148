//! `--nemesis clock` on real `paxos-node` clusters: the node sees the offset the schedule asked
//! for (it reports its wall clock as `clock_ms` in `stats`, and the harness records what it saw),
//! the history and the report show the windows with their offsets, the correct node stays valid,
//! and the clock control files never outlive the run, not even a SIGKILLed harness's.

mod cli_util;

use cli_util::{all_output, build_paxos_node, harness, latest, run, scratch, wait_ready};
use harness::schedule::{clock::Mode, generate, Fault, Kinds, Plan, Targets};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const TIME_LIMIT: f64 = 6.0;
const INTERVAL: f64 = 1.0;

/// The first seed whose schedule (3 nodes, clock faults on all, as [`clock_test`] runs it) has
/// a bump window.
fn seed_with_a_bump() -> u64 {
    let ids: Vec<String> = (1..=3).map(|i| format!("n{i}")).collect();
    let kinds: Kinds = "clock".parse().unwrap();
    let targets: Targets = "all".parse().unwrap();
    (0..100)
        .find(|seed| {
            let s = generate(&Plan {
                seed: *seed,
                nodes: &ids,
                kinds: &kinds,
                targets: &targets,
                interval_s: INTERVAL,
                time_limit_s: TIME_LIMIT,
                turn: None,
                spares: &[],
            })
            .unwrap();
            s.windows.iter().any(|w| {
                matches!(
                    w.fault,
                    Fault::Clock {
                        mode: Mode::Bump,
                        ..
                    }
                )
            })
        })
        .expect("some seed draws a bump")
}

fn clock_test(store: &Path, seed: u64, extra: &[&str]) -> Command {
    clock_test_for(store, seed, TIME_LIMIT, extra)
}

fn clock_test_for(store: &Path, seed: u64, time_limit: f64, extra: &[&str]) -> Command {
    build_paxos_node();
    let mut c = Command::new(harness());
    c.args(["test", "--nodes", "3", "--nemesis", "clock"])
        .args(["--nemesis-targets", "all", "--nemesis-interval", "1"])
        .args([
            "--time-limit",
            &time_limit.to_string(),
            "--recovery-time",
            "1",
        ])
        .args(["--concurrency", "4", "--seed", &seed.to_string()])
        .arg("--store")
        .arg(store)
        .args(extra);
    c
}

fn nemesis_events(run_dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(run_dir.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["process"] == "nemesis")
        .collect()
}

#[test]
fn a_clock_bump_is_seen_by_the_node_and_shown_with_its_offset() {
    let store = scratch("clock-bump");
    let out = run(clock_test(&store, seed_with_a_bump(), &[]));
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let dir = latest(&store);
    let events = nemesis_events(&dir);
    let starts: Vec<&Value> = events.iter().filter(|e| e["f"] == "start-clock").collect();
    let stops = events.iter().filter(|e| e["f"] == "stop-clock").count();
    assert!(!starts.is_empty() && stops >= starts.len(), "{events:?}");
    let mut bumps = 0;
    for e in &starts {
        let v = &e["value"];
        let offset = v["offset_ms"].as_f64().unwrap();
        let seen = v["observed_offset_ms"].as_object().unwrap();
        assert_eq!(seen.len(), 3, "every node reports its clock: {v}");
        for (node, obs) in seen {
            let obs = obs.as_f64().unwrap();
            match v["mode"].as_str().unwrap() {
                // What the node's own clock said, against the harness's: within 100 ms.
                "bump" => assert!((obs - offset).abs() <= 100.0, "{node}: {obs} vs {v}"),
                "strobe" => assert!((obs.abs() - offset.abs()).abs() <= 100.0, "{node}: {v}"),
                // A skew starts from the true time.
                _ => assert!(obs.abs() <= offset.abs(), "{node}: {v}"),
            }
        }
        bumps += (v["mode"] == "bump") as usize;
        assert!(v["label"].as_str().unwrap().contains(" ms"), "{v}");
    }
    assert!(bumps >= 1, "{starts:?}");
    // The report's fault intervals name each window with its offset.
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let label = starts
        .iter()
        .find(|e| e["value"]["mode"] == "bump")
        .map(|e| e["value"]["label"].as_str().unwrap().to_string())
        .unwrap();
    assert!(report.contains(&format!("{label} n1,n2,n3")), "{label}");
    // Clocks set right again at the heal: the stats asked at the end, written to node-stats.json
    // at once, read the true time (a bump is at least 2.5 s off).
    let path = dir.join("node-stats.json");
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let written = std::fs::metadata(&path).unwrap().modified().unwrap();
    let written_ms = written
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64;
    for node in ["n1", "n2", "n3"] {
        let clock = stats[node]["clock_ms"].as_f64().expect("clock_ms in stats");
        assert!(
            (clock - written_ms).abs() < 2000.0,
            "{node}: {clock} vs {written_ms}"
        );
    }
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn the_correct_node_stays_valid_under_clock_faults() {
    for variant in ["multi", "basic"] {
        let store = scratch(&format!("clock-valid-{variant}"));
        let out = run(clock_test(&store, 3, &["--variant", variant]));
        let text = all_output(&out);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("verdict:    valid"), "{text}");
        let _ = std::fs::remove_dir_all(&store);
    }
}

/// The clock folders a harness of this pid made (`harness-clock-NS.PID.START-N`).
fn clock_dirs_of(pid: u32) -> Vec<PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("harness-clock-")
                .and_then(|rest| rest.split('.').nth(1))
                .is_some_and(|p| p == pid.to_string())
        })
        .map(|e| e.path())
        .collect()
}

#[test]
fn clock_control_files_go_with_the_run_and_after_a_sigkill_with_harness_clean() {
    // A normal end.
    let store = scratch("clock-files");
    let child = clock_test(&store, 1, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(clock_dirs_of(pid), Vec::<PathBuf>::new());

    // SIGKILL of the harness mid-run: the folder stays until `harness clean`.
    let _ = std::fs::remove_dir_all(&store);
    let store = scratch("clock-files-killed");
    let mut child = clock_test_for(&store, 1, 60.0, &["--no-check"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_ready(&store, 3, Duration::from_secs(60));
    let left = clock_dirs_of(pid);
    assert_eq!(left.len(), 1, "the run's clock folder");
    assert!(left[0].join("n1.rc").is_file());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    assert!(left[0].is_dir(), "a SIGKILLed harness cannot clean up");
    let out = Command::new(harness()).arg("clean").output().unwrap();
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!left[0].exists(), "{text}");
    assert!(text.contains("removed the clock control files"), "{text}");
    let _ = std::fs::remove_dir_all(&store);
}

/// Over many seeds, clock windows come in all three modes, either way, within their bounds; a
/// schedule.json with a clock window reads back the same, and an offset beyond the bound is
/// refused naming the window.
#[test]
fn clock_windows_draw_every_mode_either_way_within_bounds() {
    let ids: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
    let kinds: Kinds = "clock".parse().unwrap();
    let targets = Targets::default();
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..60 {
        let s = generate(&Plan {
            seed,
            nodes: &ids,
            kinds: &kinds,
            targets: &targets,
            interval_s: 2.0,
            time_limit_s: 30.0,
            turn: None,
            spares: &[],
        })
        .unwrap();
        for w in &s.windows {
            let Fault::Clock {
                mode,
                offset_ms,
                nodes,
                ..
            } = &w.fault
            else {
                panic!("not a clock window: {w:?}");
            };
            assert!(!nodes.is_empty());
            let max = if *mode == Mode::Skew { 500.0 } else { 10_000.0 };
            assert!(
                offset_ms.abs() <= max && offset_ms.abs() >= max / 5.0,
                "{w:?}"
            );
            seen.insert((format!("{mode:?}"), *offset_ms > 0.0));
        }
    }
    assert_eq!(seen.len(), 6, "every mode, forward and back: {seen:?}");

    let store = scratch("clock-schedule-json");
    let s = generate(&Plan {
        seed: 1,
        nodes: &ids,
        kinds: &kinds,
        targets: &targets,
        interval_s: 2.0,
        time_limit_s: 10.0,
        turn: None,
        spares: &[],
    })
    .unwrap();
    let path = store.join("schedule.json");
    s.save(&path).unwrap();
    assert_eq!(harness::schedule::Schedule::load(&path).unwrap(), s);
    let mut bad = s.clone();
    if let Fault::Clock { offset_ms, .. } = &mut bad.windows[0].fault {
        *offset_ms = 1e12;
    }
    bad.save(&path).unwrap();
    let e = harness::schedule::Schedule::load(&path).unwrap_err();
    assert!(e.contains("window 0") && e.contains("offset_ms"), "{e}");
    let _ = std::fs::remove_dir_all(&store);
}

/// Without libfaketime a run with clock windows is refused before any node starts; the other
/// faults still run. (The library is installed here, so the test points `JEPSEN_FAKETIME_LIB`
/// at a missing file, as a machine without the package would look.)
#[test]
fn without_libfaketime_clock_is_refused_and_other_faults_still_run() {
    let store = scratch("clock-nolib");
    let missing = store.join("no-such-libfaketime.so.1");
    let mut cmd = clock_test(&store, 3, &[]);
    cmd.env("JEPSEN_FAKETIME_LIB", &missing);
    let out = run(cmd);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("--nemesis clock needs libfaketime"), "{text}");
    assert!(text.contains(&missing.display().to_string()), "{text}");
    // No node was started: the run folder has no node logs.
    let nodes = latest(&store).join("nodes");
    let started: Vec<_> = std::fs::read_dir(&nodes)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(started.is_empty(), "{started:?}");
    let mut cmd = Command::new(harness());
    cmd.args([
        "test",
        "--nodes",
        "3",
        "--nemesis",
        "pause,kill",
        "--no-check",
    ])
    .args([
        "--nemesis-interval",
        "1",
        "--time-limit",
        "3",
        "--recovery-time",
        "1",
    ])
    .arg("--store")
    .arg(&store)
    .env("JEPSEN_FAKETIME_LIB", &missing);
    let out = run(cmd);
    // 3: ran, history not checked (--no-check).
    assert_eq!(out.status.code(), Some(3), "{}", all_output(&out));
    let _ = std::fs::remove_dir_all(&store);
}
