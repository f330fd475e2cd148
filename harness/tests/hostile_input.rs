//! Hostile histories and report inputs through the real binary (issue 13): torn and empty
//! histories, numbers JSON cannot hold, times that run backwards, look-alike formats, folders
//! that are not runs and replayed schedules that cannot keep their times. Each must give a named
//! answer and the documented exit code, never a plain "valid" or a panic.

mod cli_util;

use cli_util::{all_output, harness, harness_on, scratch};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Asserts the exit code and that stdout or stderr holds `needle`.
fn says(o: &Output, code: i32, needle: &str) {
    let out = all_output(o);
    assert_eq!(o.status.code(), Some(code), "{out}");
    assert!(out.contains(needle), "{out}");
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// One event of our format.
fn ev(p: u64, kind: &str, f: &str, time: u64, value: Value) -> String {
    json!({"index": 0, "time": time, "process": p, "type": kind, "f": f, "value": value})
        .to_string()
}

fn lines(events: &[String]) -> String {
    events.join("\n") + "\n"
}

/// write 1, then a read of `read`: valid when `read` is 1.
fn history(read: u64) -> String {
    lines(&[
        ev(0, "invoke", "write", 10, json!(1)),
        ev(0, "ok", "write", 20, json!(1)),
        ev(1, "invoke", "read", 30, Value::Null),
        ev(1, "ok", "read", 40, json!(read)),
    ])
}

/// A run folder `analyze` can read, holding `hist` as its history.
fn run_dir(root: &Path, name: &str, hist: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    write(
        &dir,
        "test.json",
        &json!({"name": "t", "workload": "register"}).to_string(),
    );
    write(&dir, "history.jsonl", hist);
    dir
}

fn results_verdict(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["verdict"].clone()
}

/// A write cut short (crash, full disk) leaves a last line with no newline: `check` and
/// `analyze` both drop it, say so, and check the prefix. A valid prefix is not a plain 0.
#[test]
fn check_and_analyze_treat_a_torn_last_line_alike() {
    let root = scratch("hostile-torn");
    let torn = "{\"index\":4,\"time\":50,\"proc";
    for (read, code) in [(1, 3), (2, 1)] {
        let hist = history(read) + torn;
        let file = write(&root, "torn.jsonl", &hist);
        let o = harness_on(&["check"], &[&file]);
        assert_eq!(o.status.code(), Some(code), "check: {}", all_output(&o));
        assert!(
            all_output(&o).contains("torn.jsonl:5: torn last line ignored"),
            "{}",
            all_output(&o)
        );
        assert!(all_output(&o).contains("checked the 4 events before it"));
        if code == 3 {
            assert!(
                all_output(&o).contains("torn.jsonl: TORN"),
                "{}",
                all_output(&o)
            );
        }
        let dir = run_dir(&root, &format!("run-{read}"), &hist);
        let o = harness_on(&["analyze"], &[&dir]);
        assert_eq!(o.status.code(), Some(code), "analyze: {}", all_output(&o));
        assert!(
            all_output(&o).contains("history.jsonl:5: torn last line ignored"),
            "{}",
            all_output(&o)
        );
        let want = if code == 3 { "unknown" } else { "invalid" };
        assert_eq!(results_verdict(&dir), want);
    }
    // A bad last line written whole (newline included) is bad input for both.
    let hist = history(1) + torn + "\n";
    let file = write(&root, "bad.jsonl", &hist);
    let o = harness_on(&["check"], &[&file]);
    says(&o, 2, "bad.jsonl:5: ");
    let dir = run_dir(&root, "run-bad", &hist);
    let o = harness_on(&["analyze"], &[&dir]);
    says(&o, 2, "history.jsonl:5: ");
    std::fs::remove_dir_all(&root).unwrap();
}

/// No client operation is no evidence: EMPTY, exit 3, for `/dev/null`, blank lines and a
/// history of nemesis events only; `analyze` writes "unknown".
#[test]
fn an_empty_history_is_not_a_plain_valid() {
    let root = scratch("hostile-empty");
    let nemesis = json!({"index": 0, "time": 5, "process": "nemesis", "type": "info",
                         "f": "start-partition", "value": null})
    .to_string();
    let blank = write(&root, "blank.jsonl", "\n  \n");
    let only_nemesis = write(&root, "nemesis.jsonl", &lines(&[nemesis]));
    for p in [Path::new("/dev/null"), &blank, &only_nemesis] {
        let o = harness_on(&["check"], &[p]);
        assert_eq!(o.status.code(), Some(3), "{}", all_output(&o));
        assert!(all_output(&o).contains(": EMPTY ("), "{}", all_output(&o));
        assert!(
            all_output(&o).contains("failed write"),
            "{}",
            all_output(&o)
        );
        let o = harness_on(&["check", "--json"], &[p]);
        let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(doc["files"][0]["empty"], true);
        assert_eq!(doc["summary"]["empty"], 1);
        assert_eq!(doc["summary"]["exit_code"], 3);
    }
    let dir = run_dir(&root, "run", "");
    let o = harness_on(&["analyze"], &[&dir]);
    assert_eq!(o.status.code(), Some(3), "{}", all_output(&o));
    assert_eq!(results_verdict(&dir), "unknown");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn init_values_that_are_not_json_are_refused_by_flag() {
    let root = scratch("hostile-init");
    let file = write(&root, "h.jsonl", &history(0));
    for bad in ["O", "zero", "1180591620717411303424"] {
        let o = harness_on(&["check", "--init", bad], &[&file]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", all_output(&o));
        assert!(
            all_output(&o).contains(&format!("--init {bad}: ")),
            "{}",
            all_output(&o)
        );
    }
    // A string must be spelt as JSON.
    let o = harness_on(&["check", "--init", "\"O\""], &[&file]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    std::fs::remove_dir_all(&root).unwrap();
}

/// 2^70 and 2^70 + 1 would both round to 1.18e21 and compare equal: refused, never rounded.
#[test]
fn integers_beyond_64_bits_are_refused_with_file_and_line() {
    let root = scratch("hostile-big");
    let big = "1180591620717411303424";
    let hist = history(1).replacen(":1}", &format!(":{big}}}"), 1);
    assert!(hist.contains(big));
    let file = write(&root, "big.jsonl", &hist);
    let o = harness_on(&["check"], &[&file]);
    says(&o, 2, "big.jsonl:1: ");
    assert!(
        all_output(&o).contains("cannot be kept exact"),
        "{}",
        all_output(&o)
    );
    let dir = run_dir(&root, "run", &hist);
    let o = harness_on(&["analyze"], &[&dir]);
    says(&o, 2, "history.jsonl:1: ");
    // u64::MAX fits: kept exact, checked.
    let max = history(1).replace(":1}", &format!(":{}}}", u64::MAX));
    let file = write(&root, "max.jsonl", &max);
    assert_eq!(harness_on(&["check"], &[&file]).status.code(), Some(0));
    let edn = write(
        &root,
        "big.edn",
        &format!("[{{:process 0, :type :invoke, :f :write, :value {big}N}}]"),
    );
    let o = harness_on(&["check"], &[&edn]);
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    assert!(all_output(&o).contains("big.edn:1: "), "{}", all_output(&o));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_completion_before_its_invoke_is_refused() {
    let root = scratch("hostile-time");
    let hist = lines(&[
        ev(0, "invoke", "write", 500, json!(1)),
        ev(0, "ok", "write", 400, json!(1)),
    ]);
    let file = write(&root, "back.jsonl", &hist);
    let o = harness_on(&["check"], &[&file]);
    says(
        &o,
        2,
        "back.jsonl:2: completion of write by process 0 at time 400",
    );
    let dir = run_dir(&root, "run", &hist);
    let o = harness_on(&["analyze"], &[&dir]);
    says(&o, 2, "history.jsonl:2: ");
    std::fs::remove_dir_all(&root).unwrap();
}

/// Times are made strictly increasing in file order: u64::MAX left no room and panicked.
#[test]
fn the_largest_time_is_bad_input_not_a_panic() {
    let root = scratch("hostile-maxtime");
    let hist = lines(&[
        ev(0, "invoke", "write", u64::MAX, json!(1)),
        ev(0, "ok", "write", u64::MAX, json!(1)),
    ]);
    let file = write(&root, "max.jsonl", &hist);
    let o = harness_on(&["check"], &[&file]);
    says(&o, 2, "max.jsonl:2: time ");
    assert!(!all_output(&o).contains("panicked"), "{}", all_output(&o));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn look_alike_formats_are_named() {
    let root = scratch("hostile-format");
    let one = ev(0, "invoke", "read", 1, Value::Null);
    let arr = write(&root, "h.json", &format!("[{one},\n {one}]\n"));
    let o = harness_on(&["check"], &[&arr]);
    says(&o, 2, "h.json:1: this is a JSON array of events");
    assert!(!all_output(&o).contains("bad EDN"), "{}", all_output(&o));
    // A byte-order mark at the start carries no data: skipped, the history is checked.
    let bom = write(&root, "bom.jsonl", &format!("\u{feff}{}", history(1)));
    let o = harness_on(&["check"], &[&bom]);
    says(&o, 0, "bom.jsonl: VALID");
    // One in the middle (two files glued together) is named.
    let glued = format!("{}\u{feff}{}", history(1), history(1));
    let glued = write(&root, "glued.jsonl", &glued);
    let o = harness_on(&["check"], &[&glued]);
    says(&o, 2, "glued.jsonl:5: ");
    assert!(
        all_output(&o).contains("byte-order mark"),
        "{}",
        all_output(&o)
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn compare_refuses_a_folder_that_is_not_a_run() {
    let root = scratch("hostile-compare");
    let run = run_dir(&root, "run", &history(1));
    let not_a_run = root.join("photos");
    std::fs::create_dir_all(&not_a_run).unwrap();
    write(&not_a_run, "cat.jpg", "not a run");
    let out = root.join("cmp");
    let o = harness_on(
        &[
            "compare",
            run.to_str().unwrap(),
            not_a_run.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "needs -o: {}", all_output(&o));
    let o = Command::new(harness())
        .arg("compare")
        .args([&run, &not_a_run])
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    assert!(
        all_output(&o).contains(&format!("{}: not a run folder", not_a_run.display())),
        "{}",
        all_output(&o)
    );
    assert!(!out.join("index.html").exists());
    // `report` on it would write a page of notes that passes for a run with no data.
    let o = harness_on(&["report"], &[&not_a_run]);
    says(&o, 2, "not a run folder");
    assert!(!not_a_run.join("report.html").exists());
    std::fs::remove_dir_all(&root).unwrap();
}

/// Binary data is refused from its first bytes: `/dev/zero` would otherwise fill memory.
#[test]
fn binary_data_is_refused_before_it_fills_memory() {
    let o = harness_on(&["check"], &[Path::new("/dev/zero")]);
    says(
        &o,
        2,
        "/dev/zero: binary data (a NUL byte on line 1), not a history",
    );
}

/// A million `[` is refused by name, not a stack overflow that aborts the process.
#[test]
fn deeply_nested_edn_is_bad_input() {
    let root = scratch("hostile-deep");
    let deep = write(
        &root,
        "deep.edn",
        &("[".repeat(200_000) + &"]".repeat(200_000)),
    );
    let o = harness_on(&["check"], &[&deep]);
    says(&o, 2, "deep.edn:1: bad EDN: forms nested");
    std::fs::remove_dir_all(&root).unwrap();
}

/// A window of a schedule.json, as the harness writes them.
fn window(start: f64, stop: f64, fault: Value) -> Value {
    let mut w = json!({"start_s": start, "stop_s": stop});
    w.as_object_mut()
        .unwrap()
        .extend(fault.as_object().unwrap().clone());
    w
}

/// `harness test --replay DIR` on a folder whose schedule.json covers `time_limit` seconds with
/// `windows`; the stored run (tests/data/test.json) lasted 1 s.
fn replay(root: &Path, name: &str, time_limit: f64, windows: Vec<Value>) -> Output {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let stored = include_str!("data/test.json");
    write(&dir, "test.json", stored);
    let schedule = json!({
        "seed": 1, "nodes": ["n1", "n2", "n3"], "nemesis": ["partition", "pause"],
        "targets": ["one"], "interval_s": 2.0, "time_limit_s": time_limit, "windows": windows,
    });
    let text = serde_json::to_string_pretty(&schedule).unwrap();
    write(&dir, "schedule.json", &text);
    Command::new(harness())
        .args(["test", "--store"])
        .arg(root.join("store"))
        .arg("--replay")
        .arg(&dir)
        .output()
        .unwrap()
}

/// The nemesis runs one window at a time: an overlap would be re-timed, so it is refused, as
/// is a node that holds a grudge against itself; both before any node starts.
#[test]
fn a_replayed_schedule_that_cannot_keep_its_times_is_refused() {
    let root = scratch("hostile-replay");
    let pause = |n: &str| json!({"kind": "pause", "target": "one", "nodes": [n]});
    let o = replay(
        &root,
        "overlap",
        1.0,
        vec![window(0.1, 0.5, pause("n1")), window(0.3, 0.8, pause("n1"))],
    );
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    let t = all_output(&o);
    assert!(t.contains("schedule.json:"), "{t}");
    assert!(
        t.contains("window 1 (0.3-0.8 s) starts before window 0 (0.1-0.5 s) stops"),
        "{t}"
    );
    let self_grudge = json!({"kind": "partition", "topology": "one",
                             "grudge": {"n1": ["n1", "n2"]}});
    let o = replay(&root, "self", 1.0, vec![window(0.1, 0.2, self_grudge)]);
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    let t = all_output(&o);
    assert!(
        t.contains("window 0: node n1 holds a grudge against itself"),
        "{t}"
    );
    // A window past any bound (1e300 s made the nemesis panic).
    let o = replay(&root, "far", 1.0, vec![window(1e300, 1e300, pause("n1"))]);
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    let t = all_output(&o);
    assert!(
        t.contains("window 0 has start 1e300 and stop 1e300 (times are seconds from 0 to 604800)"),
        "{t}"
    );
    assert!(!t.contains("panicked"), "{t}");
    // In range, but past the schedule's own time limit.
    let o = replay(&root, "late", 1.0, vec![window(5.0, 6.0, pause("n1"))]);
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    let t = all_output(&o);
    assert!(
        t.contains("window 0 (5-6 s) ends after the schedule's time_limit_s (1 s)"),
        "{t}"
    );
    let o = replay(&root, "long", 1e300, vec![window(0.1, 0.2, pause("n1"))]);
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    let t = all_output(&o);
    assert!(
        t.contains("time_limit_s 1e300 is beyond the stored run's time limit (1 s"),
        "{t}"
    );
    assert!(!root.join("store").join("latest").exists(), "nothing ran");
    std::fs::remove_dir_all(&root).unwrap();
}
