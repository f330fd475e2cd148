//! No node process outlives the harness: normal end, Ctrl-C (SIGINT), a panic, and a SIGKILL of
//! the harness itself. Each test starts a real harness with three tiny nodes and checks the node
//! pids (from harness.log) are gone within a bounded wait.

mod cli_util;
use cli_util::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

const BOUND: Duration = Duration::from_secs(10);

fn start(store: &Path, time_limit: &str, env: Option<(&str, &str)>) -> (Child, std::path::PathBuf) {
    // Three independent tiny nodes are not one consistent store: skip the check.
    let args = ["--nodes", "3", "--time-limit", time_limit, "--no-check"];
    let mut cmd = tiny_test(store, "correct", &args);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start harness");
    let dir = wait_ready(store, 3, Duration::from_secs(30));
    (child, dir)
}

fn assert_all_gone(dir: &Path) {
    let pids = node_pids(dir);
    assert_eq!(pids.len(), 3, "three nodes were started: {pids:?}");
    for pid in pids {
        assert!(
            wait_until(BOUND, || !alive(pid)),
            "node pid {pid} outlived the harness"
        );
    }
}

#[test]
fn normal_end_leaves_no_node() {
    let store = scratch("orphan-normal");
    let (mut child, dir) = start(&store, "0.5", None);
    wait_exit(&mut child);
    assert_all_gone(&dir);
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn ctrl_c_stops_every_node_and_exits_130() {
    let store = scratch("orphan-sigint");
    let (mut child, dir) = start(&store, "60", None);
    let pids = node_pids(&dir);
    assert!(
        pids.iter().all(|&p| alive(p)),
        "nodes run before the signal"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    assert_eq!(wait_exit(&mut child), Some(130));
    assert_all_gone(&dir);
    // The interrupted run still wrote its results.
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["interrupted"], true);
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn panic_mid_run_stops_every_node() {
    let store = scratch("orphan-panic");
    let (mut child, dir) = start(&store, "60", Some(("HARNESS_DEBUG_PANIC_AFTER_S", "1")));
    assert_eq!(wait_exit(&mut child), Some(101), "a panic exits 101");
    assert_all_gone(&dir);
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn sigkill_of_the_harness_takes_the_nodes_down() {
    let store = scratch("orphan-sigkill");
    let (mut child, dir) = start(&store, "60", None);
    let pids = node_pids(&dir);
    assert!(
        pids.iter().all(|&p| alive(p)),
        "nodes run before the signal"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_all_gone(&dir);
    std::fs::remove_dir_all(&store).unwrap();
}
