//! Scheduled packet faults end to end (`harness test --net netns --nemesis loss,dup,rate`; needs
//! root, `ip`, `nft`, `tc`): every window the schedule holds starts and stops in the history,
//! the final phase heals the last one, nothing outlives the run, and `--replay` repeats the same
//! windows. In proxy mode the packet kinds are refused by name (exit 2) before anything is made.
//! The rules themselves are probed packet by packet in netns_faults.rs.

mod cli_util;
use cli_util::*;
use std::path::Path;
use std::process::Stdio;

/// One netns run at a time (each removes what dead runs left).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The nemesis events of a run's history: (f, value).
fn nemesis_events(dir: &Path) -> Vec<(String, serde_json::Value)> {
    let text = std::fs::read_to_string(dir.join("history.jsonl")).expect("history.jsonl");
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a json line"))
        .filter(|e| e["process"] == "nemesis")
        .map(|e| {
            (
                e["f"].as_str().unwrap_or("").to_string(),
                e["value"].clone(),
            )
        })
        .collect()
}

/// Runs `cmd` with its output captured; its exit code, stderr and pid.
fn run_pid(mut cmd: std::process::Command) -> (Option<i32>, String, u32) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start harness");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("--- exit {:?}\n{err}", out.status.code());
    (out.status.code(), err, pid)
}

/// The windows that started are the scheduled ones, in order; only the last may be missing (the
/// main phase can end, timing being real, just before a window that starts at its very end).
fn all_but_a_late_last(started: &[String], scheduled: &[String]) {
    assert_eq!(started, &scheduled[..started.len()], "{scheduled:?}");
    assert!(
        started.len() + 1 >= scheduled.len(),
        "{started:?} of {scheduled:?}"
    );
}

#[test]
fn packet_windows_start_stop_heal_and_replay() {
    let _one = serial();
    let store = scratch("netns-packet");
    let opts = [
        "--net",
        "netns",
        "--nodes",
        "3",
        "--time-limit",
        "5",
        "--nemesis",
        "loss,dup,rate",
        "--nemesis-interval",
        "0.6",
        "--nemesis-loss",
        "40",
        "--seed",
        "3",
        "--no-check",
    ];
    let (code, err, pid) = run_pid(tiny_test(&store, "correct", &opts));
    assert!(code == Some(0) || code == Some(3), "exit {code:?}: {err}");
    assert_eq!(left_by(pid), Vec::<String>::new(), "left behind");
    let dir = latest(&store);
    let sched = read_json(&dir.join("schedule.json"));
    let windows = sched["windows"].as_array().unwrap().clone();
    assert!(windows.len() >= 2, "{windows:?}");
    let mut kinds: Vec<String> = Vec::new();
    for w in &windows {
        let k = w["kind"].as_str().unwrap().to_string();
        assert!(["loss", "dup", "rate"].contains(&k.as_str()), "{w}");
        if k == "loss" {
            assert_eq!(w["pct"], 40.0, "--nemesis-loss is the window's share: {w}");
            assert!(!w["links"].as_array().unwrap().is_empty(), "{w}");
        }
        kinds.push(k);
    }
    // Each window started and stopped (the last one maybe by the final phase's heal), in order.
    let events = nemesis_events(&dir);
    let starts: Vec<String> = events
        .iter()
        .filter_map(|(f, _)| f.strip_prefix("start-").map(String::from))
        .collect();
    let stops: Vec<String> = events
        .iter()
        .filter_map(|(f, _)| f.strip_prefix("stop-").map(String::from))
        .collect();
    all_but_a_late_last(&starts, &kinds);
    assert_eq!(stops, starts, "{events:?}");
    let last = events.last().unwrap();
    assert!(last.0.starts_with("stop-"), "ends healed: {events:?}");

    // Replay: the same windows; in proxy mode refused by name.
    let store2 = scratch("netns-packet-replay");
    let mut cmd = std::process::Command::new(harness());
    cmd.args(["test", "--replay"])
        .arg(&dir)
        .arg("--store")
        .arg(&store2);
    let (code, err, pid) = run_pid(cmd);
    assert!(code == Some(0) || code == Some(3), "exit {code:?}: {err}");
    assert_eq!(left_by(pid), Vec::<String>::new(), "left behind");
    let again = latest(&store2);
    assert_eq!(read_json(&again.join("schedule.json")), sched);
    let replayed: Vec<String> = nemesis_events(&again)
        .iter()
        .filter_map(|(f, _)| f.strip_prefix("start-").map(String::from))
        .collect();
    all_but_a_late_last(&replayed, &kinds);
    let mut cmd = std::process::Command::new(harness());
    cmd.args(["test", "--net", "proxy", "--replay"])
        .arg(&dir)
        .arg("--store")
        .arg(&store2);
    let (code, err, _) = run_pid(cmd);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--net netns") && err.contains("--nemesis"),
        "{err}"
    );
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::remove_dir_all(&store2).unwrap();
}

#[test]
fn packet_kinds_in_proxy_mode_and_bad_amounts_are_refused_by_name() {
    let store = scratch("packet-bad");
    for kind in ["loss", "dup", "rate", "partition,rate"] {
        let out = run(tiny_test(&store, "correct", &["--nemesis", kind]));
        assert_eq!(out.status.code(), Some(2), "--nemesis {kind}");
        let e = stderr(&out);
        assert!(e.contains("--nemesis") && e.contains("--net netns"), "{e}");
    }
    for (flag, v) in [("--nemesis-loss", "0"), ("--nemesis-rate", "nan")] {
        let args = ["--net", "netns", "--nemesis", "loss,rate", flag, v];
        let out = run(tiny_test(&store, "correct", &args));
        assert_eq!(out.status.code(), Some(2), "{flag} {v}");
        assert!(stderr(&out).contains(flag), "{}", stderr(&out));
    }
    // Refused before anything was made: no run folder.
    let made: Vec<_> = std::fs::read_dir(&store).unwrap().collect();
    assert!(made.is_empty(), "{made:?}");
    std::fs::remove_dir_all(&store).unwrap();
}
