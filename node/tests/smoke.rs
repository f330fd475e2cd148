//! Real processes: three `paxos-node`s on loopback talking to each other directly, clients over
//! TCP, SIGKILL and restart with the same arguments.

mod procs;

use procs::Cluster;
use serde_json::{json, Value};
use std::io::Write;
use std::process::Command;

fn kill_restart_and_recover(variant: &str) {
    let mut c = Cluster::start(3, variant, &[]);
    let mut a = c.client(0);
    a.write("x", 1);
    assert_eq!(c.client(1).read("x"), json!(1));
    assert_eq!(a.read("never-written"), Value::Null);
    let r = a.call(json!({"type":"cas","key":"x","from":5,"to":6}));
    assert_eq!(
        (r["type"].as_str(), r["code"].as_u64()),
        (Some("error"), Some(22)),
        "{r}"
    );
    let r = a.call(json!({"type":"cas","key":"x","from":1,"to":2}));
    assert_eq!(r["type"], "cas_ok", "{r}");

    // One node dies; the other two go on; it comes back and catches up.
    c.kill(2);
    let mut b = c.client(1);
    for v in 3..20 {
        b.write("x", v);
    }
    c.launch(2);
    assert_eq!(c.client(2).read("x"), json!(19));

    // Everyone dies at once: only what was synced survives, and that is everything acknowledged.
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.launch(i);
    }
    for i in 0..3 {
        assert_eq!(
            c.client(i).read("x"),
            json!(19),
            "node n{} after restart",
            i + 1
        );
    }
}

#[test]
fn multi_survives_sigkill_and_restart() {
    kill_restart_and_recover("multi");
}

#[test]
fn basic_survives_sigkill_and_restart() {
    kill_restart_and_recover("basic");
}

#[test]
fn one_node_cluster_works_and_recovers() {
    let mut c = Cluster::start(1, "multi", &[]);
    c.client(0).write("y", 5);
    c.kill(0);
    c.launch(0);
    assert_eq!(c.client(0).read("y"), json!(5));
}

/// Runs node n1 with `args` after its id and addresses (it is expected to exit at once).
fn start_fails(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_paxos-node"))
        .args([
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:1",
            "--client",
            "127.0.0.1:2",
        ])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bad_peer_list_is_a_clear_error() {
    let out = start_fails(&["--peers", "n2=nowhere", "--data-dir", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--peers") && err.contains("n2"), "{err}");
}

#[test]
fn many_requests_in_flight_on_one_connection() {
    let c = Cluster::start(3, "multi", &[]);
    let mut cl = c.client(1);
    let ids: Vec<u64> = (0..200)
        .map(|i| cl.send(json!({"type":"write","key":format!("k{}", i % 7),"value":i})))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for _ in &ids {
        let r = cl.recv();
        assert_eq!(r["type"], "write_ok", "{r}");
        seen.insert(r["in_reply_to"].as_u64().unwrap());
    }
    assert_eq!(seen.len(), ids.len());
    let s = {
        let id = cl.send(json!({"type":"stats"}));
        let r = cl.recv();
        assert_eq!(r["in_reply_to"], json!(id));
        r
    };
    assert_eq!(s["type"], "stats_ok", "{s}");
    assert!(
        s["stats"]["commands_applied"].as_u64().unwrap() >= 200,
        "{s}"
    );
    let r = {
        writeln!(cl.w, "{{\"type\":\"write\",\"key\":\"k\",\"msg_id\":77}}").unwrap();
        cl.recv()
    };
    assert_eq!(
        (r["code"].as_u64(), r["in_reply_to"].as_u64()),
        (Some(12), Some(77)),
        "{r}"
    );
}

#[test]
fn unknown_bug_is_a_clear_error() {
    let out = start_fails(&[
        "--peers",
        "n2=127.0.0.1:3",
        "--data-dir",
        "/nonexistent",
        "--bug",
        "nope",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nope") && err.contains("volatile-acceptor"),
        "{err}"
    );
}

#[test]
fn more_nodes_than_supported_is_a_clear_error() {
    let peers: Vec<String> = (2..=65).map(|i| format!("n{i}=127.0.0.1:{i}")).collect();
    let peers = peers.join(",");
    let out = start_fails(&["--peers", &peers, "--data-dir", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--peers") && err.contains("65 nodes") && err.contains("at most 64"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
