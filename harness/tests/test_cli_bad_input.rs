//! Bad input gives a clear error (exit 2) or a recorded `info` with the reason; never a panic
//! (exit 101) or a hang. Real processes and sockets throughout.

mod cli_util;
use cli_util::*;
use std::process::Command;

fn assert_setup_error(out: &std::process::Output, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "setup errors exit 2");
    let err = stderr(out);
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn missing_node_binary_names_the_flag_and_path() {
    let store = scratch("missing");
    let out = run({
        let mut c = Command::new(harness());
        c.args(["test", "--node-bin", "/nonexistent/node", "--store"])
            .arg(&store);
        c
    });
    assert_setup_error(&out, &["--node-bin", "/nonexistent/node"]);
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn non_executable_node_binary_is_refused() {
    let store = scratch("noexec");
    let bin = store.join("node.txt");
    std::fs::write(&bin, "not a program").unwrap();
    let out = run({
        let mut c = Command::new(harness());
        c.args(["test", "--node-bin"])
            .arg(&bin)
            .arg("--store")
            .arg(&store);
        c
    });
    assert_setup_error(&out, &["--node-bin", "not executable"]);
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn bad_option_values_name_the_flag() {
    let store = scratch("badflag");
    for (arg, flag) in [
        ("--time-limit=-3", "--time-limit"),
        ("--concurrency=0", "--concurrency"),
        ("--rate=0", "--rate"),
        ("--op-timeout=nan", "--op-timeout"),
    ] {
        let out = run(tiny_test(&store, "correct", &[arg]));
        assert_setup_error(&out, &[flag]);
    }
    let out = run(tiny_test(&store, "correct", &["--workload", "queue"]));
    assert_setup_error(&out, &["queue"]);
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn more_nodes_than_the_default_node_supports_is_refused_but_not_for_another_node() {
    let store = scratch("toomany");
    let out = run({
        let mut c = Command::new(harness());
        c.args(["test", "--nodes", "65", "--store"]).arg(&store);
        c
    });
    assert_setup_error(
        &out,
        &["harness: error: --nodes 65: the default node (paxos-node) supports at most 64 nodes"],
    );
    // A third-party node has no such limit: the error is about the binary, not the count.
    let out = run({
        let mut c = Command::new(harness());
        c.args([
            "test",
            "--nodes",
            "65",
            "--node-bin",
            "/nonexistent/node",
            "--store",
        ])
        .arg(&store);
        c
    });
    assert_setup_error(&out, &["/nonexistent/node"]);
    assert!(!stderr(&out).contains("at most 64"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn node_that_exits_at_start_reports_id_status_and_log() {
    let store = scratch("exit");
    let out = run(tiny_test(&store, "exit", &[]));
    assert_setup_error(
        &out,
        &["node n1", "exit status: 3", "exiting at start as asked"],
    );
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn node_that_never_gets_ready_times_out_with_its_log() {
    let store = scratch("never");
    let t0 = std::time::Instant::now();
    let out = run(tiny_test(
        &store,
        "never-ready",
        &["--ready-timeout", "1.5"],
    ));
    assert_setup_error(
        &out,
        &["node n1", "did not accept connections", "mode never-ready"],
    );
    assert!(t0.elapsed() < std::time::Duration::from_secs(60), "no hang");
    // The node that never got ready was killed, not left behind.
    let dir = latest(&store);
    for pid in node_pids(&dir) {
        assert!(
            wait_until(std::time::Duration::from_secs(10), || !alive(pid)),
            "pid {pid} survived"
        );
    }
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn port_already_taken_is_a_clear_error() {
    let store = scratch("taken");
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let mut cmd = tiny_test(&store, "correct", &[]);
    cmd.args(["--client-bind", &addr]);
    let out = run(cmd);
    assert_setup_error(&out, &["node n1", "exit status: 1", "in use"]);
    drop(held);
    std::fs::remove_dir_all(&store).unwrap();
}

fn infos_with(store: &std::path::Path, reason: &str) -> usize {
    let events = checker::history::read_jsonl(&latest(store).join("history.jsonl")).unwrap();
    events
        .iter()
        .filter(|e| e.kind == checker::history::EventType::Info)
        .filter(|e| e.error.as_deref().is_some_and(|r| r.contains(reason)))
        .count()
}

#[test]
fn garbage_replies_are_recorded_as_info_with_the_reason() {
    let store = scratch("garbage");
    let out = run(tiny_test(&store, "garbage", &["--time-limit", "1"]));
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "a run, not a crash"
    );
    assert!(infos_with(&store, "bad-reply: not JSON") > 0);
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn unknown_in_reply_to_is_recorded_as_info_with_the_reason() {
    let store = scratch("unknown");
    let out = run(tiny_test(&store, "unknown-reply", &["--time-limit", "1"]));
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "a run, not a crash"
    );
    assert!(infos_with(&store, "unknown in_reply_to") > 0);
    // Each info retires its process: ids grow by the concurrency (4).
    let events = checker::history::read_jsonl(&latest(&store).join("history.jsonl")).unwrap();
    let max = events
        .iter()
        .filter_map(|e| e.process.client())
        .max()
        .unwrap();
    assert!(max >= 4, "processes were not retired after info");
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn a_run_where_no_operation_succeeded_is_no_plain_valid() {
    // A node that answers every request with garbage: the checker would call the all-`info`
    // history valid, but it proves nothing (issue 13), so the run is unknown (exit 3) and warns.
    let store = scratch("no-evidence");
    let out = run(tiny_test(&store, "garbage", &["--time-limit", "1"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("broke the node contract") && stderr.contains("bad-reply: not JSON"),
        "{stderr}"
    );
    let results = std::fs::read_to_string(latest(&store).join("results.json")).unwrap();
    assert!(
        results.contains("no client operation succeeded"),
        "{results}"
    );
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn a_closed_stdout_does_not_crash_the_run() {
    // `harness test | head -0`: the summary cannot be written; before, that panicked (exit 101).
    let store = scratch("closed-stdout");
    let mut cmd = tiny_test(&store, "correct", &["--time-limit", "0.5"]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(latest(&store).join("results.json").is_file());
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn killed_nodes_are_not_called_contract_breakers() {
    // A SIGKILLed node resets its connections: that is a fault, not a reply that breaks the node
    // contract, so it must not feed the contract warning. paxos-node, since it survives kills.
    build_paxos_node();
    let store = scratch("kill-no-contract");
    let mut cmd = Command::new(harness());
    cmd.arg("test").arg("--store").arg(&store);
    cmd.args([
        "--nodes",
        "3",
        "--nemesis",
        "kill",
        "--nemesis-interval",
        "1",
    ]);
    cmd.args([
        "--time-limit",
        "4",
        "--recovery-time",
        "1",
        "--concurrency",
        "16",
    ]);
    let out = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("broke the node contract"), "{stderr}");
    let history = std::fs::read_to_string(latest(&store).join("history.jsonl")).unwrap();
    assert!(
        history.contains("connection-closed"),
        "no kill cut a connection"
    );
    std::fs::remove_dir_all(&store).unwrap();
}
