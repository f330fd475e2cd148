//! A real etcd cluster (Debian's etcd 3.4; scripts/setup installs it) behind `etcd-node`, tested
//! with `--net netns` under partitions and a kill with restart: the history is linearizable.
//! etcd missing is a named error, exit 2, nothing left behind.

mod cli_util;
use cli_util::*;
use std::path::PathBuf;
use std::process::Command;

/// Builds `etcd-node` into the harness's own target dir and profile (a no-op when fresh).
fn etcd_node() -> PathBuf {
    let dir = harness().parent().unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "-q", "-p", "etcd-node", "--target-dir"])
        .arg(dir.parent().unwrap());
    if dir.file_name().unwrap() != "debug" {
        cmd.arg("--release");
    }
    assert!(cmd.status().unwrap().success(), "building etcd-node failed");
    dir.join("etcd-node")
}

fn etcd_test(store: &std::path::Path, bin: &std::path::Path) -> Command {
    let mut cmd = Command::new(harness());
    cmd.args([
        "test",
        "--net",
        "netns",
        "--nodes",
        "3",
        "--time-limit",
        "8",
    ])
    .args([
        "--nemesis",
        "partition,pause,kill",
        "--nemesis-interval",
        "1.5",
    ])
    // This seed's schedule holds partitions and a kill (with its restart) within 8 s.
    .args([
        "--seed",
        "7",
        "--op-timeout",
        "3",
        "--recovery-time",
        "2",
        "--concurrency",
        "4",
    ])
    .arg("--node-bin")
    .arg(bin)
    .arg("--store")
    .arg(store);
    cmd
}

#[test]
fn etcd_under_partitions_and_a_kill_is_linearizable() {
    let bin = etcd_node();
    let store = scratch("etcd-netns");
    let out = run(etcd_test(&store, &bin));
    assert_eq!(out.status.code(), Some(0), "valid (exit 0)");
    let dir = latest(&store);
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["verdict"], "valid");
    assert!(results["counts"]["ok"].as_u64().unwrap() > 10, "{results}");
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    for f in ["start-partition", "kill", "start"] {
        assert!(
            history.contains(&format!("\"f\":\"{f}\"")),
            "no {f} in the history"
        );
    }
    // Every member ran etcd on its own namespace address.
    let log = std::fs::read_to_string(dir.join("nodes").join("n1.log")).unwrap_or_default()
        + &std::fs::read_to_string(dir.join("nodes").join("n2.log")).unwrap_or_default()
        + &std::fs::read_to_string(dir.join("nodes").join("n3.log")).unwrap_or_default();
    assert!(log.contains("etcd at http://10."), "{log}");
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn etcd_missing_is_a_named_error() {
    let bin = etcd_node();
    let store = scratch("etcd-missing");
    let path = path_with_only("etcd-missing-path", &["ip", "nft", "tc"]);
    let mut cmd = etcd_test(&store, &bin);
    cmd.env("PATH", &path);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("cannot start `etcd`") && e.contains("etcd-server"),
        "{e}"
    );
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::remove_dir_all(&path).unwrap();
}
