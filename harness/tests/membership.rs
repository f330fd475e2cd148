//! Membership changes with real processes: a 3-node `paxos-node` cluster with two spares grows to
//! five and shrinks to three while clients run (a schedule written here, run with `--replay`), and
//! the history is linearizable; the nodes that joined empty serve every write acknowledged before
//! they joined; a removed node's data dir stays; replaying the run repeats its steps; a node
//! without membership support gives a clear refusal; and the modes that cannot start spares say so.

mod cli_util;

use cli_util::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// add n4, add n5, remove n1, remove n2: n1..n3 → n1..n5 → n3..n5.
fn grow_and_shrink() -> Value {
    let step = |at: f64, change: &str, add: &[&str], remove: &[&str], members: &[&str]| {
        json!({"start_s": at, "stop_s": at, "kind": "membership", "change": change,
               "add": add, "remove": remove, "members": members})
    };
    json!({
        "seed": 1, "nodes": ["n1", "n2", "n3", "n4", "n5"], "spares": ["n4", "n5"],
        "nemesis": ["membership"], "targets": ["one"], "interval_s": 1.5, "time_limit_s": 8.0,
        "windows": [
            step(1.0, "add", &["n4"], &[], &["n1", "n2", "n3", "n4"]),
            step(2.5, "add", &["n5"], &[], &["n1", "n2", "n3", "n4", "n5"]),
            step(4.0, "remove", &[], &["n1"], &["n2", "n3", "n4", "n5"]),
            step(5.5, "remove", &[], &["n2"], &["n3", "n4", "n5"]),
        ]
    })
}

/// A run folder holding only what `--replay` reads: the options and the schedule.
fn planned_run(name: &str) -> PathBuf {
    let dir = scratch(name).join("planned");
    std::fs::create_dir_all(&dir).unwrap();
    let options = json!({"nodes": 3, "spare": 2, "nemesis": ["membership"], "time_limit": 8.0,
                         "recovery_time": 1.0, "concurrency": 6, "seed": 1});
    let test = json!({"name": "planned", "options": options});
    std::fs::write(dir.join("test.json"), test.to_string()).unwrap();
    std::fs::write(dir.join("schedule.json"), grow_and_shrink().to_string()).unwrap();
    dir
}

fn replay(dir: &Path, store: &Path) -> PathBuf {
    build_paxos_node();
    let mut cmd = std::process::Command::new(harness());
    cmd.arg("test")
        .arg("--replay")
        .arg(dir)
        .arg("--store")
        .arg(store);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    latest(store)
}

/// The grow-and-shrink run, made once for the tests that look at it.
fn grown_and_shrunk() -> &'static PathBuf {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = planned_run("grow");
        replay(&dir, &dir.parent().unwrap().join("store"))
    })
}

fn history(run: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn nemesis<'a>(h: &'a [Value], f: &str) -> Vec<&'a Value> {
    h.iter()
        .filter(|e| e["process"] == "nemesis" && e["f"] == f)
        .collect()
}

#[test]
fn a_cluster_grows_to_five_and_shrinks_to_three_and_stays_linearizable() {
    let run = grown_and_shrunk();
    let results = read_json(&run.join("results.json"));
    assert_eq!(results["verdict"], "valid", "{results}");
    let h = history(run);
    let stops = nemesis(&h, "stop-membership");
    let ok: Vec<&Value> = stops
        .iter()
        .copied()
        .filter(|e| e["value"]["outcome"] == "ok")
        .collect();
    assert_eq!(ok.len(), 4, "every step in force: {stops:?}");
    assert_eq!(
        ok[1]["value"]["members"],
        json!(["n1", "n2", "n3", "n4", "n5"])
    );
    assert_eq!(ok[3]["value"]["members"], json!(["n3", "n4", "n5"]));
    // Clients of n1 moved once its removal was in force; the final reads went to n3..n5.
    let removed_at = ok[2]["index"].as_u64().unwrap();
    let late_to_n1 = h.iter().filter(|e| {
        e["type"] == "invoke" && e["node"] == "n1" && e["index"].as_u64().unwrap() > removed_at
    });
    assert_eq!(late_to_n1.count(), 0, "a client still sent to n1");
    for spare in ["n4", "n5"] {
        let served = h.iter().filter(|e| e["type"] == "ok" && e["node"] == spare);
        assert!(served.count() > 10, "{spare} served no clients");
    }
    let stats = read_json(&run.join("node-stats.json"));
    assert_eq!(stats["n1"]["is_member"], 0, "{stats}");
    assert_eq!(stats["n4"]["is_member"], 1, "{stats}");
    let figures = read_json(&run.join("membership.json"));
    assert_eq!(figures.as_array().map(Vec::len), Some(4), "{figures}");
}

/// Per key, the last value acknowledged (write or cas) before event index `before`.
fn acked_before(h: &[Value], before: u64) -> BTreeMap<String, Value> {
    let mut invoked: BTreeMap<u64, &Value> = BTreeMap::new();
    let mut acked = BTreeMap::new();
    for e in h
        .iter()
        .take_while(|e| e["index"].as_u64().unwrap() < before)
    {
        let Some(p) = e["process"].as_u64() else {
            continue;
        };
        match e["type"].as_str() {
            Some("invoke") => {
                invoked.insert(p, e);
            }
            Some("ok") if e["f"] != "read" => {
                let key = e["key"].as_str().unwrap_or("").to_string();
                acked.insert(key, invoked[&p]["value"].clone());
            }
            _ => {}
        }
    }
    acked
}

#[test]
fn nodes_that_joined_empty_serve_every_write_acknowledged_before_they_joined() {
    let run = grown_and_shrunk();
    let h = history(run);
    let joined = nemesis(&h, "stop-membership")[0]["index"].as_u64().unwrap();
    let acked = acked_before(&h, joined);
    assert!(
        acked.len() > 5,
        "too few writes before n4 joined: {acked:?}"
    );
    // The final phase's reads are the last reads of each key on each member.
    let mut final_reads: BTreeMap<(String, String), Value> = BTreeMap::new();
    for e in h.iter().filter(|e| e["type"] == "ok" && e["f"] == "read") {
        let at = (
            e["node"].as_str().unwrap().into(),
            e["key"].as_str().unwrap().into(),
        );
        final_reads.insert(at, e["value"].clone());
    }
    for key in acked.keys() {
        for node in ["n4", "n5"] {
            let seen = final_reads.get(&(node.to_string(), key.clone()));
            assert!(
                seen.is_some_and(|v| !v.is_null()),
                "{node} read {seen:?} for {key}, written before it joined"
            );
        }
        let n3 = &final_reads[&("n3".to_string(), key.clone())];
        assert_eq!(&final_reads[&("n4".to_string(), key.clone())], n3, "{key}");
    }
}

#[test]
fn a_removed_nodes_data_dir_is_left_in_place() {
    let run = grown_and_shrunk();
    for removed in ["n1", "n2"] {
        let dir = run.join("nodes").join(removed);
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .collect();
        assert!(!files.is_empty(), "{} was emptied", dir.display());
    }
}

#[test]
fn replaying_a_membership_run_repeats_its_steps() {
    let first = grown_and_shrunk();
    let store = scratch("replay-again");
    let again = replay(first, &store);
    let schedule = |r: &Path| read_json(&r.join("schedule.json"));
    assert_eq!(schedule(first), schedule(&again));
    let labels = |r: &Path| -> Vec<Value> {
        let h = history(r);
        let starts = nemesis(&h, "start-membership");
        starts.iter().map(|e| e["value"]["label"].clone()).collect()
    };
    assert_eq!(labels(first), labels(&again));
    assert_eq!(labels(&again).len(), 4);
}

/// A run of the tiny node in `mode` with one spare under the membership nemesis, one step a second.
fn tiny_membership_run(store: &Path, mode: &str, time_limit: &str) -> std::process::Output {
    let extra = [
        "--spare",
        "1",
        "--nemesis",
        "membership",
        "--time-limit",
        time_limit,
        "--nemesis-interval",
        "1",
    ];
    run(tiny_test(store, mode, &extra))
}

#[test]
fn a_node_without_membership_support_gives_a_clear_refusal() {
    let store = scratch("not-supported");
    let out = tiny_membership_run(&store, "correct", "3");
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("does not support membership changes"),
        "{text}"
    );
    let run = latest(&store);
    let h = history(&run);
    let failed = nemesis(&h, "fault-failed");
    assert_eq!(
        failed.len(),
        1,
        "one refusal, later steps skipped: {failed:?}"
    );
    assert_eq!(failed[0]["value"]["step"], "membership");
    let error = failed[0]["value"]["error"].as_str().unwrap();
    assert!(error.contains("not-supported, code 10"), "{error}");
    let results = read_json(&run.join("results.json"));
    let warnings = results["warnings"].to_string();
    assert!(
        warnings.contains("does not support membership"),
        "{warnings}"
    );
}

#[test]
fn a_node_that_never_answers_a_change_gives_a_clear_entry_not_a_hang() {
    let store = scratch("mute");
    let out = tiny_membership_run(&store, "mute-reconfigure", "2");
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let h = history(&latest(&store));
    let failed = nemesis(&h, "fault-failed");
    assert!(!failed.is_empty(), "no fault-failed entry");
    let error = failed[0]["value"]["error"].as_str().unwrap();
    assert!(error.contains("no member put it in force"), "{error}");
    let stops = nemesis(&h, "stop-membership");
    assert!(
        stops.iter().all(|e| e["value"]["outcome"] == "no-answer"),
        "{stops:?}"
    );
}

#[test]
fn spares_and_the_membership_nemesis_are_refused_where_they_cannot_run() {
    let store = scratch("refused");
    for (extra, names) in [
        (&["--nemesis", "membership"][..], "--spare 1 or more"),
        (
            &["--spare", "1", "--hosts", "/nonexistent.toml"][..],
            "--spare 1",
        ),
    ] {
        let out = run(tiny_test(&store, "correct", extra));
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(stderr(&out).contains(names), "{extra:?}: {}", stderr(&out));
    }
}
