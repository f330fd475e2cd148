//! `harness test --net netns` end to end (needs root, `ip`, `nft`; scripts/setup installs them):
//! paxos-node in a namespace per node gets `valid`, every node is given the same real address for
//! a peer, and no namespace or bridge outlives the harness (normal end, Ctrl-C, a panic, a
//! SIGKILL followed by `harness clean`). As a normal user the harness runs in a user namespace of
//! its own. Bad network options are named errors, exit 2.

mod cli_util;
use cli_util::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One test at a time: every netns run first removes what dead runs left, which would race with
/// the test that leaves something on purpose.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

fn netns_test(store: &Path, extra: &[&str]) -> Command {
    let mut args = vec!["--net", "netns", "--no-check"];
    args.extend_from_slice(extra);
    tiny_test(store, "correct", &args)
}

/// Starts a 3-node netns run of the tiny node; waits until its nodes are ready.
fn start(store: &Path, env: Option<(&str, &str)>) -> (Child, std::path::PathBuf) {
    let mut cmd = netns_test(store, &["--nodes", "3", "--time-limit", "60"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start harness");
    let dir = wait_ready(store, 3, Duration::from_secs(30));
    (child, dir)
}

#[test]
fn paxos_node_in_namespaces_is_valid_and_peers_share_addresses() {
    let _one = serial();
    let store = scratch("netns-paxos");
    let mut cmd = Command::new(harness());
    cmd.args([
        "test",
        "--net",
        "netns",
        "--time-limit",
        "4",
        "--recovery-time",
        "1",
    ])
    .args([
        "--nemesis",
        "partition,pause,kill",
        "--nemesis-interval",
        "1",
        "--quiet",
    ])
    // This seed's schedule holds a partition and a kill within 4 s.
    .args(["--seed", "1"])
    .arg("--store")
    .arg(&store);
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "verdict valid (exit 0)");
    let dir = latest(&store);
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["verdict"], "valid");
    assert!(results["counts"]["ok"].as_u64().unwrap() > 0);

    // Every node is given the same address for a peer: that peer's own --listen, on the subnet.
    let test = read_json(&dir.join("test.json"));
    let argv = test["node_argv"].as_object().unwrap();
    let flag = |v: &serde_json::Value, f: &str| -> String {
        let a: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        a[a.iter().position(|x| *x == f).unwrap() + 1].to_string()
    };
    let listen: BTreeMap<String, String> = argv
        .iter()
        .map(|(id, v)| (id.clone(), flag(v, "--listen")))
        .collect();
    assert_eq!(listen.len(), 5);
    for (id, v) in argv {
        assert!(
            listen[id].starts_with("10."),
            "{id} listens on {}",
            listen[id]
        );
        for peer in flag(v, "--peers").split(',') {
            let (p, addr) = peer.split_once('=').unwrap();
            assert_eq!(addr, listen[p], "{id} is given {addr} for {p}");
        }
    }
    // The nemesis paused and killed nodes by pid, as in proxy mode.
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert!(history.contains("\"f\":\"kill\"") && history.contains("\"f\":\"start\""));
    assert!(
        history.contains("\"f\":\"start-partition\""),
        "a partition (nftables) ran"
    );
    let log = std::fs::read_to_string(dir.join("harness.log")).unwrap();
    assert!(
        !log.contains("partition rules failed"),
        "nft failed: see harness.log"
    );
    assert_eq!(left_by(pid), Vec::<String>::new(), "left behind");
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn ctrl_c_removes_the_namespaces() {
    let _one = serial();
    let store = scratch("netns-sigint");
    let (mut child, _) = start(&store, None);
    assert_eq!(
        left_by(child.id()).len(),
        3 + 1 + 3,
        "namespaces, bridge, veths while running"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    assert_eq!(wait_exit(&mut child), Some(130));
    assert_eq!(left_by(child.id()), Vec::<String>::new());
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn a_panic_removes_the_namespaces() {
    let _one = serial();
    let store = scratch("netns-panic");
    let (mut child, _) = start(&store, Some(("HARNESS_DEBUG_PANIC_AFTER_S", "1")));
    assert_eq!(wait_exit(&mut child), Some(101), "a panic exits 101");
    assert_eq!(left_by(child.id()), Vec::<String>::new());
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn after_a_sigkill_harness_clean_removes_what_the_run_left() {
    let _one = serial();
    let store = scratch("netns-sigkill");
    let (mut child, dir) = start(&store, None);
    let pid = child.id();
    child.kill().unwrap(); // SIGKILL: no clean-up runs
    child.wait().unwrap();
    for node in node_pids(&dir) {
        assert!(
            wait_until(Duration::from_secs(10), || !alive(node)),
            "node {node} lives on"
        );
    }
    assert_eq!(
        left_by(pid).len(),
        3 + 1 + 3,
        "the dead run's namespaces, bridge and veths remain"
    );
    let out = run({
        let mut c = Command::new(harness());
        c.arg("clean");
        c
    });
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&prefix(pid)));
    assert_eq!(left_by(pid), Vec::<String>::new());
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn bad_network_options_are_named_errors_and_leave_nothing() {
    let _one = serial();
    let store = scratch("netns-bad");
    let out = run(tiny_test(&store, "correct", &["--net", "bogus"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bogus"), "{}", stderr(&out));

    // A subnet the host routes: take the one of a live run of the library.
    let live = harness::net::netns::NetNs::create(&["a".into()], None).unwrap();
    let subnet = live.subnet.to_string();
    let mut cmd = netns_test(&store, &["--net-subnet", &subnet]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(e.contains("already routed") && e.contains(&subnet), "{e}");
    assert_eq!(left_by(pid), Vec::<String>::new());
    drop(live);

    // No `nft` in PATH (a PATH with `ip` alone).
    let bin = scratch("netns-bad-path");
    std::os::unix::fs::symlink("/usr/sbin/ip", bin.join("ip")).unwrap();
    let mut cmd = netns_test(&store, &[]);
    cmd.env("PATH", &bin);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`nft` binary"), "{}", stderr(&out));
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::remove_dir_all(&bin).unwrap();
}

/// `cmd` as the unprivileged user nobody (uid 65534), keeping the environment.
fn as_nobody(prog: &Path) -> Command {
    let mut cmd = Command::new("/usr/bin/setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(prog);
    cmd
}

/// A store folder nobody can write to.
fn shared_scratch(name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch(name);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

#[test]
fn as_a_normal_user_netns_mode_runs_in_a_user_namespace() {
    let _one = serial();
    let store = shared_scratch("netns-rootless");
    let mut cmd = as_nobody(&harness());
    cmd.args([
        "test",
        "--net",
        "netns",
        "--nodes",
        "3",
        "--time-limit",
        "3",
    ])
    .args([
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "1",
        "--recovery-time",
        "1",
    ])
    .args(["--concurrency", "4", "--store"])
    .arg(&store)
    .arg("--node-bin")
    .arg(tiny_node())
    .args(["--no-check", "--", "--mode", "correct"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "unchecked: unknown; {}",
        stderr(&out)
    );
    let dir = latest(&store);
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert!(
        history.contains("\"f\":\"start-partition\""),
        "a partition ran"
    );
    let log = std::fs::read_to_string(dir.join("harness.log")).unwrap();
    assert!(log.contains("network namespaces ready"), "{log}");
    assert!(!log.contains("partition rules failed"), "{log}");
    // Its namespaces lived in its own private network: the host never saw them.
    assert_eq!(left_by(pid), Vec::<String>::new());
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn without_root_or_unshare_netns_mode_is_a_named_error() {
    let _one = serial();
    let store = shared_scratch("netns-nonroot");
    let bin = path_with_only("netns-nonroot-path", &["ip", "nft", "tc"]);
    let mut cmd = as_nobody(&harness());
    cmd.args([
        "test",
        "--net",
        "netns",
        "--nodes",
        "1",
        "--nemesis",
        "none",
    ])
    .args(["--node-bin", "/bin/true", "--store"])
    .arg(&store)
    .env("PATH", &bin);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("`unshare` binary") && e.contains("run as root"),
        "{e}"
    );
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::remove_dir_all(&bin).unwrap();
}
