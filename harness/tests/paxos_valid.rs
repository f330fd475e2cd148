//! `harness test` against real `paxos-node` clusters, both variants, no faults: the verdict is
//! `valid`. The node binary is the default one next to the harness, rebuilt first so the test
//! never runs a stale node.

mod cli_util;

use cli_util::{build_paxos_node, harness};
use serde_json::Value;
use std::process::Command;

fn run_valid(variant: &str, workload: &str) {
    build_paxos_node();
    let store = std::env::temp_dir().join(format!(
        "paxos-valid-{variant}-{workload}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&store);
    let out = Command::new(harness())
        .args([
            "test",
            "--nodes",
            "3",
            "--variant",
            variant,
            "--workload",
            workload,
        ])
        .args(["--concurrency", "6", "--rate", "300", "--time-limit", "3"])
        .args([
            "--op-timeout",
            "5",
            "--recovery-time",
            "1",
            "--nemesis",
            "none",
            "--seed",
            "7",
        ])
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let results = std::fs::read_dir(store.join(format!("{variant}-{workload}")))
        .unwrap_or_else(|e| panic!("no run folder ({e}):\n{text}"))
        .map(|e| e.unwrap().path().join("results.json"))
        .next()
        .expect("one run");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(r["verdict"], "valid", "{results:?}: {r}\n{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    let ok = r["counts"]["ok"].as_u64().unwrap();
    assert!(ok >= 100, "only {ok} ok operations: {r}");
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn multi_paxos_register_is_valid_without_faults() {
    run_valid("multi", "register");
}

#[test]
fn basic_paxos_register_is_valid_without_faults() {
    run_valid("basic", "register");
}

#[test]
fn multi_paxos_kv_is_valid_without_faults() {
    run_valid("multi", "kv");
}

#[test]
fn basic_paxos_kv_is_valid_without_faults() {
    run_valid("basic", "kv");
}
