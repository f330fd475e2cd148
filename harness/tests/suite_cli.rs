//! `harness suite` end to end: real `harness` processes running real node processes (the tiny
//! in-memory test node, so each run takes about a second), and the summaries they leave.

mod cli_util;
use cli_util::{harness, scratch, tiny_node};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn suite(store: &Path, file: &Path, extra: &[&str]) -> Output {
    let out = Command::new(harness())
        .arg("suite")
        .arg(file)
        .arg("--store")
        .arg(store)
        .args(extra)
        .output()
        .expect("run harness suite");
    eprintln!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A suite against the tiny node: one node, short phases, no faults.
fn tiny_suite(dir: &Path, entries: &str) -> PathBuf {
    let file = dir.join("tiny.toml");
    let text = format!(
        "[defaults]\nnode_bin = {:?}\nnodes = 1\ntime_limit = 1\nrecovery_time = 0.2\n\
         concurrency = 3\nfaults = [\"none\"]\n\n{entries}",
        tiny_node().display().to_string()
    );
    std::fs::write(&file, text).unwrap();
    file
}

fn latest(store: &Path) -> PathBuf {
    store.join("tiny").join("latest")
}

fn summary(store: &Path) -> Value {
    let text = std::fs::read_to_string(latest(store).join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// (testcase name, "failure"/"error"/"", its text) for each testcase, read with an XML parser.
fn junit_cases(store: &Path) -> Vec<(String, String, String)> {
    use quick_xml::events::Event;
    let xml = std::fs::read_to_string(latest(store).join("junit.xml")).unwrap();
    let mut r = quick_xml::Reader::from_str(&xml);
    let mut cases = Vec::new();
    let mut in_child = false;
    loop {
        match r.read_event().expect("junit.xml is well-formed XML") {
            Event::Start(e) if e.name().as_ref() == b"testcase" => {
                let name = e.try_get_attribute("name").unwrap().unwrap();
                cases.push((
                    name.unescape_value().unwrap().into_owned(),
                    String::new(),
                    String::new(),
                ));
            }
            Event::Start(e) if matches!(e.name().as_ref(), b"failure" | b"error") => {
                let c = cases.last_mut().unwrap();
                c.1 = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                in_child = true;
            }
            Event::Text(t) if in_child => {
                cases.last_mut().unwrap().2 += &t.unescape().unwrap();
            }
            Event::End(e) if matches!(e.name().as_ref(), b"failure" | b"error") => {
                in_child = false;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    cases
}

#[test]
fn a_suite_of_real_runs_meets_its_expectations_and_writes_every_summary() {
    let dir = scratch("suite-ok");
    let store = dir.join("results");
    let file = tiny_suite(
        &dir,
        "[[test]]\nname = \"correct\"\nnode_args = [\"--mode\", \"correct\"]\nseeds = [1, 2]\n\n\
         [[test]]\nname = \"stale\"\nnode_args = [\"--mode\", \"stale\"]\nexpect = \"invalid\"\n",
    );
    let out = suite(&store, &file, &["--parallel", "2"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("suite tiny: 3 passed, 0 failed"),
        "{stdout}"
    );

    let s = summary(&store);
    assert_eq!(s["counts"]["total"], 3);
    assert_eq!(s["counts"]["pass"], 3);
    let runs = s["runs"].as_array().unwrap();
    let names: Vec<_> = runs.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "correct-multi-register-none-s1",
            "correct-multi-register-none-s2",
            "stale-multi-register-none-s1"
        ]
    );
    let stale = &runs[2];
    assert_eq!(stale["verdict"], "invalid");
    assert!(stale["first_violation_s"].as_f64().unwrap() > 0.0);
    assert!(stale["ops_per_sec"].as_f64().unwrap() > 0.0);
    // Each run has its own folder, with its history and verdict, inside the suite's folder.
    for r in runs {
        let run_dir = latest(&store).join(r["run_dir"].as_str().unwrap());
        assert!(
            run_dir.join("history.jsonl").is_file(),
            "{}",
            run_dir.display()
        );
        let results: Value =
            serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(results["verdict"], r["verdict"]);
    }

    let cases = junit_cases(&store);
    assert_eq!(cases.len(), 3);
    assert!(cases.iter().all(|c| c.1.is_empty()), "{cases:?}");
    let md = std::fs::read_to_string(latest(&store).join("summary.md")).unwrap();
    let table = md.split("### By entry").next().unwrap();
    assert_eq!(
        table.lines().filter(|l| l.starts_with("| ")).count(),
        1 + 3,
        "{md}"
    );
    assert!(md.contains("| stale | invalid | 1 | 1 | 100% |"), "{md}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missed_expectation_exits_1_with_a_junit_failure_that_explains() {
    let dir = scratch("suite-missed");
    let store = dir.join("results");
    let file = tiny_suite(
        &dir,
        "[[test]]\nname = \"stale\"\nnode_args = [\"--mode\", \"stale\"]\n",
    );
    let out = suite(&store, &file, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[1/1] FAIL"), "{stderr}");
    let cases = junit_cases(&store);
    assert_eq!(cases.len(), 1);
    let (name, kind, text) = &cases[0];
    assert_eq!(name, "stale-multi-register-none-s1");
    assert_eq!(kind, "failure");
    assert!(text.contains("verdict: invalid (expected valid)"), "{text}");
    assert!(text.contains("not linearizable"), "{text}");
    assert!(
        text.contains("report: stale-multi-register-none-s1/"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_that_cannot_start_exits_2_and_says_why() {
    let dir = scratch("suite-setup");
    let store = dir.join("results");
    let file = tiny_suite(
        &dir,
        "[[test]]\nname = \"dies\"\nnode_args = [\"--mode\", \"exit\"]\n\n\
         [[test]]\nname = \"fine\"\n",
    );
    let out = suite(&store, &file, &[]);
    assert_eq!(out.status.code(), Some(2));
    let s = summary(&store);
    assert_eq!(s["counts"]["error"], 1);
    assert_eq!(
        s["counts"]["pass"], 1,
        "the suite goes on after a broken run"
    );
    let why = s["runs"][0]["explanation"].as_str().unwrap();
    assert!(why.contains("n1"), "names the node: {why}");
    assert_eq!(junit_cases(&store)[0].1, "error");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_suite_files_exit_2_naming_file_line_entry_and_field_and_run_nothing() {
    let dir = scratch("suite-bad");
    let store = dir.join("results");
    let file = dir.join("bad.toml");
    let cases = [
        (
            "[[test]]\nname = \"a\"\n\n[[test]]\nname = \"b\"\ntimelimit = 3\n",
            "bad.toml:6:1: [[test]] \"b\" (entry 2): unknown field `timelimit`, did you mean `time_limit`?",
        ),
        (
            "[[test]]\nname = \"a\"\nseeds = []\n",
            "bad.toml:3:1: [[test]] \"a\" (entry 1), field `seeds`: is empty",
        ),
        (
            "[[test]]\nname = \"a\"\nworkloads = [\"queue\"]\n",
            "[[test]] \"a\" (entry 1), field `workloads`: unknown variant `queue`",
        ),
        (
            "[[test]]\nname = \"a\"\nnodes = 65\n",
            "bad.toml:3:1: [[test]] \"a\" (entry 1), field `nodes`: is 65, but the default node \
             (paxos-node) supports at most 64 nodes",
        ),
        (
            "[[test]]\nname = \"a\"\nnemesis_targets = [\"everyone\"]\n",
            "run a-multi-register-none-s1: harness test rejects its arguments",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&file, text).unwrap();
        let out = suite(&store, &file, &[]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{text}\nwant {want}\ngot {stderr}");
        assert!(!store.exists(), "nothing runs on bad input");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn list_expands_the_shipped_suites() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (file, runs) in [("smoke", 8), ("nightly", 64)] {
        let out = Command::new(harness())
            .args(["suite", "--list"])
            .arg(root.join("suites").join(format!("{file}.toml")))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<_> = stdout
            .lines()
            .filter(|l| l.contains("harness test"))
            .collect();
        assert_eq!(lines.len(), runs, "{stdout}");
        assert!(stdout.contains(&format!("{runs} runs")), "{stdout}");
    }
    let out = Command::new(harness())
        .args(["suite", "--list"])
        .arg(root.join("suites/bugs.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .filter(|l| l.contains("harness test"))
            .all(|l| l.contains("expect=invalid") && l.contains("--bug")),
        "{stdout}"
    );
}

#[test]
fn net_puts_every_run_of_a_suite_in_that_network_mode() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(harness())
        .args(["suite", "--list", "--net", "netns"])
        .arg(root.join("suites/smoke.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let runs: Vec<_> = stdout
        .lines()
        .filter(|l| l.contains("harness test"))
        .collect();
    assert_eq!(runs.len(), 8, "{stdout}");
    assert!(runs.iter().all(|l| l.ends_with("--net netns")), "{stdout}");
    let bad = Command::new(harness())
        .args(["suite", "--list", "--net", "wifi"])
        .arg(root.join("suites/smoke.toml"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_etcd_suite_runs_etcd_node_in_netns_mode() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(harness())
        .args(["suite", "--list"])
        .arg(root.join("suites/etcd.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let runs: Vec<_> = stdout
        .lines()
        .filter(|l| l.contains("harness test"))
        .collect();
    assert_eq!(runs.len(), 30, "{stdout}");
    assert!(
        runs.iter()
            .all(|l| l.contains("--node-bin target/release/etcd-node") && l.contains("--net netns")),
        "{stdout}"
    );
    assert!(runs.iter().any(|l| l.contains("--net-loss 10")), "{stdout}");
    assert!(
        runs.iter()
            .any(|l| l.contains("--nemesis loss,dup,rate") && l.contains("--nemesis-loss 30")),
        "{stdout}"
    );
}

/// The run names `--list` prints, with the given extra flags.
fn listed(file: &Path, extra: &[&str]) -> Vec<String> {
    let out = Command::new(harness())
        .args(["suite", "--list"])
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("harness test"))
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

#[test]
fn shards_split_the_nightly_matrix_into_disjoint_slices_that_cover_it() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/nightly.toml");
    let whole = listed(&file, &[]);
    assert!(whole.len() > 10, "{whole:?}");
    for n in [1, 2, 3, 5, 7] {
        let mut seen: Vec<String> = Vec::new();
        for k in 1..=n {
            let part = listed(&file, &["--shard", &format!("{k}/{n}")]);
            // Slices are within one run of each other's length.
            assert!(
                part.len().abs_diff(whole.len() / n) <= 1,
                "{k}/{n}: {part:?}"
            );
            seen.extend(part);
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "a run in two shards of {n}");
        let mut expected = whole.clone();
        expected.sort();
        assert_eq!(sorted, expected, "shards of {n} miss or add runs");
    }
}

#[test]
fn sharded_real_runs_merge_into_the_summary_of_the_whole_suite() {
    let dir = scratch("suite-shards");
    let file = tiny_suite(
        &dir,
        "[[test]]\nname = \"correct\"\nnode_args = [\"--mode\", \"correct\"]\nseeds = [1, 2]\n\n\
         [[test]]\nname = \"stale\"\nnode_args = [\"--mode\", \"stale\"]\nexpect = \"invalid\"\n",
    );
    assert_eq!(suite(&dir.join("whole"), &file, &[]).status.code(), Some(0));
    let whole = summary(&dir.join("whole"));
    let mut shard_dirs = vec![];
    for k in 1..=2 {
        let store = dir.join(format!("shard{k}"));
        let out = suite(&store, &file, &["--shard", &format!("{k}/2")]);
        assert_eq!(out.status.code(), Some(0));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("(shard {k}/2)")), "{stdout}");
        shard_dirs.push(latest(&store));
    }
    let merged = dir.join("merged");
    let out = Command::new(harness())
        .args(["suite", "merge", "--out"])
        .arg(&merged)
        .args(&shard_dirs)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(m["counts"], whole["counts"]);
    // Real runs differ in timing, so the entries are compared without their violation times.
    let entries = |s: &Value| -> Vec<Value> {
        let mut e = s["entries"].as_array().unwrap().clone();
        e.iter_mut().for_each(|x| {
            x.as_object_mut()
                .unwrap()
                .remove("median_first_violation_s");
        });
        e
    };
    assert_eq!(entries(&m), entries(&whole));
    let names = |s: &Value| -> Vec<(String, String)> {
        s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["name"].to_string(), r["verdict"].to_string()))
            .collect()
    };
    assert_eq!(names(&m), names(&whole));
    for r in m["runs"].as_array().unwrap() {
        let run_dir = merged.join(r["run_dir"].as_str().unwrap());
        assert!(
            run_dir.join("history.jsonl").is_file(),
            "{}",
            run_dir.display()
        );
    }

    // One shard alone is not the suite.
    let out = Command::new(harness())
        .args(["suite", "merge", "--out"])
        .arg(dir.join("half"))
        .arg(&shard_dirs[0])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("shard 2/2 missing (given: 1/2)"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
