//! Nodes on SSH hosts, tested without remote machines: on the namespace hosts of [`ssh_bed`], each
//! with its own sshd.

mod cli_util;
mod ssh_bed;

use cli_util::run as run_cmd;
use cli_util::*;
use ssh_bed::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `harness hosts check FILE`, bounded (`wait_exit`): a hang fails the test instead of hanging
/// it. Also returns how long it took, which the test prints.
fn hosts_check(file: &Path, extra: &[&str]) -> (Option<i32>, String, Duration) {
    let node = paxos_node();
    let t = Instant::now();
    let mut child = Command::new(harness())
        .args(["hosts", "check", "--timeout", "10", "--node-bin"])
        .arg(node)
        .args(extra)
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_exit(&mut child);
    let out = child.wait_with_output().unwrap();
    let text = all_output(&out);
    eprintln!("--- hosts check exit {code:?} in {:?}\n{text}", t.elapsed());
    (code, text, t.elapsed())
}

#[test]
fn hosts_check_passes_on_good_hosts() {
    let _one = serial();
    let bed = SshBed::new("good", 3);
    let (code, out, _) = hosts_check(&bed.hosts_file("hosts.toml", &[]), &[]);
    assert_eq!(code, Some(0), "{out}");
    for n in ["n1", "n2", "n3"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(n))
            .expect("a row per host");
        assert!(line.contains("root") && line.contains("runs"), "{line}");
        assert!(line.ends_with("ok"), "{line}");
    }
    assert!(out.contains("all 3 hosts ready"), "{out}");
    let left: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("harness-check-")
        })
        .collect();
    assert!(left.is_empty(), "the check left its copies: {left:?}");
}

#[test]
fn hosts_check_names_the_host_and_the_problem() {
    let _one = serial();
    let bed = SshBed::new("bad", 3);
    let unreachable = format!("address = \"{}\"", bed.unused_addr());
    let wrong_key = format!("key = \"{}\"", bed.dir.join("wrong_key").display());
    // A second `address` in a table would be a duplicate key: the unreachable host's file is
    // the same file with one address replaced.
    let file = bed.hosts_file("wrong-key.toml", &[(1, &wrong_key)]);
    let (code, out, _) = hosts_check(&file, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("host n2 (") && out.contains("Permission denied"),
        "{out}"
    );
    assert!(
        !out.contains("host n1 (") && !out.contains("host n3 ("),
        "{out}"
    );

    let text = std::fs::read_to_string(&file).unwrap().replacen(
        &format!("address = \"{}\"", bed.net.nodes[2].addr),
        &unreachable,
        1,
    );
    let file = bed.dir.join("unreachable.toml");
    std::fs::write(&file, text).unwrap();
    let (code, out, _) = hosts_check(&file, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("host n3 (") && out.contains("cannot connect"),
        "{out}"
    );

    // `harness test --hosts` refuses an unreachable host before any node starts, naming it, and
    // the hosts it did reach keep nothing.
    let good = bed.hosts_file("good.toml", &[]);
    let text = std::fs::read_to_string(&good).unwrap().replacen(
        &format!("address = \"{}\"", bed.net.nodes[2].addr),
        &unreachable,
        1,
    );
    let file = bed.dir.join("one-unreachable.toml");
    std::fs::write(&file, text).unwrap();
    let store = scratch("ssh-bad-run");
    let mut child = hosts_test(&file, &store, "3", ALL)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(wait_exit(&mut child), Some(2));
    let err = all_output(&child.wait_with_output().unwrap());
    assert!(
        err.contains("host n3 (") && err.contains("cannot connect"),
        "{err}"
    );
    let run = latest(&store)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        !Path::new(&format!("/tmp/harness-remote-{run}")).exists(),
        "the hosts that were reached keep the copy"
    );
    // The fault kind the hosts cannot take is refused by name, with the reason.
    let out = run_cmd(hosts_test(&good, &store, "3", "power-cut"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--nemesis power-cut is not supported with --hosts: its FUSE layer"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn hosts_check_refuses_an_unknown_key_with_its_line() {
    let dir = scratch("ssh-unknown-key");
    let file = dir.join("hosts.toml");
    std::fs::write(
        &file,
        "[[host]]\naddress = \"10.0.0.1\"\n\n[[host]]\naddress = \"10.0.0.2\"\nsudoo = true\n",
    )
    .unwrap();
    let (code, out, _) = hosts_check(&file, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains(&format!("{}:6:1:", file.display())), "{out}");
    assert!(out.contains("unknown field `sudoo`"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every fault kind `--hosts` supports.
const ALL: &str = "partition,pause,kill";

/// With 3 nodes and 10 s at an interval of 1 s, this seed's schedule has a pause (0.7 s), a kill
/// (3.1 s) and a partition (4.2 s): each starts seconds before the end, so its remote steps land
/// within the run even on a loaded machine (each takes a few hundred ms over SSH).
const SEED: &str = "2";

/// `harness test --hosts FILE` on the bed's 3 hosts.
fn hosts_test(file: &Path, store: &Path, time_limit: &str, nemesis: &str) -> Command {
    let mut cmd = Command::new(harness());
    cmd.arg("test")
        .arg("--hosts")
        .arg(file)
        .arg("--node-bin")
        .arg(paxos_node())
        .args([
            "--nodes",
            "3",
            "--time-limit",
            time_limit,
            "--recovery-time",
            "1",
        ])
        .args(["--nemesis", nemesis, "--nemesis-interval", "1"])
        .args(["--seed", SEED, "--concurrency", "3", "--quiet", "--store"])
        .arg(store);
    cmd
}

/// A bed of 3 hosts and a `harness test --hosts` on it, started and waited for until its nodes
/// are ready: the bed, the store, the harness process and the run folder.
fn started_run(
    bed_name: &str,
    store_name: &str,
    time_limit: &str,
    nemesis: &str,
) -> (SshBed, PathBuf, Child, PathBuf) {
    let bed = SshBed::new(bed_name, 3);
    let store = scratch(store_name);
    let file = bed.hosts_file("hosts.toml", &[]);
    let child = hosts_test(&file, &store, time_limit, nemesis)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dir = wait_ready(&store, 3, Duration::from_secs(120));
    (bed, store, child, dir)
}

#[test]
fn a_run_on_three_ssh_hosts_is_valid_and_leaves_nothing() {
    let _one = serial();
    let bed = SshBed::new("run", 3);
    let store = scratch("ssh-run");
    let file = bed.hosts_file("hosts.toml", &[]);
    let mut child = hosts_test(&file, &store, "10", ALL)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_exit(&mut child);
    let dir = latest(&store);
    let log = std::fs::read_to_string(dir.join("harness.log")).unwrap();
    eprintln!("{log}");
    assert_eq!(code, Some(0), "verdict valid (exit 0)");
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["verdict"], "valid");
    assert!(results["counts"]["ok"].as_u64().unwrap() > 0);

    // Every node listened on its host's address, and the nemesis reached them there.
    let test = read_json(&dir.join("test.json"));
    for (i, node) in bed.net.nodes.iter().enumerate() {
        let argv = test["node_argv"][format!("n{}", i + 1)].to_string();
        assert!(argv.contains(&format!("{}:", node.addr)), "{argv}");
    }
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    for f in ["kill", "start", "start-partition", "pause"] {
        assert!(
            history.contains(&format!("\"f\":\"{f}\"")),
            "no {f} in the history"
        );
    }
    assert!(!log.contains("partition rules failed"), "nft failed");
    assert!(log.contains("killed on its host"), "kill went to the host");
    // The history checks again on its own, and every node's log came back.
    let check = harness_on(&["check"], &[&dir.join("history.jsonl")]);
    assert!(check.status.success(), "{}", all_output(&check));
    for id in ["n1", "n2", "n3"] {
        let node_log = dir.join("nodes").join(format!("{id}.log"));
        let len = std::fs::metadata(&node_log).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{} fetched", node_log.display());
    }
    assert_eq!(remote_procs(&dir), Vec::<String>::new(), "left running");
    assert!(!remote_dir(&dir).exists());

    // A local run of the same seed draws the same schedule, and the two compare.
    let local_store = scratch("ssh-run-local");
    let mut local = Command::new(harness());
    local
        .arg("test")
        .arg("--node-bin")
        .arg(paxos_node())
        .args(["--nodes", "3", "--time-limit", "10", "--recovery-time", "1"])
        .args(["--nemesis", ALL, "--nemesis-interval", "1", "--seed", SEED])
        .args(["--concurrency", "3", "--quiet", "--store"])
        .arg(&local_store);
    assert_eq!(run_cmd(local).status.code(), Some(0));
    let local_dir = latest(&local_store);
    assert_eq!(
        read_json(&local_dir.join("schedule.json")),
        read_json(&dir.join("schedule.json"))
    );
    let page = local_store.join("compare");
    let cmp = harness_on(&["compare", "--out"], &[&page, &local_dir, &dir]);
    assert!(cmp.status.success(), "{}", all_output(&cmp));
    assert!(page.join("index.html").is_file());
    std::fs::remove_dir_all(&local_store).unwrap();
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn sigkill_of_the_harness_stops_every_remote_node() {
    let _one = serial();
    let (_bed, store, mut child, dir) = started_run("sigkill", "ssh-sigkill", "60", ALL);
    let is_node = |l: &&String| {
        l.split_whitespace()
            .nth(1)
            .is_some_and(|c| c.ends_with("/paxos-node"))
    };
    assert_eq!(
        remote_procs(&dir).iter().filter(is_node).count(),
        3,
        "{:?}",
        remote_procs(&dir)
    );
    child.kill().unwrap();
    let _ = child.wait();
    let gone = wait_until(Duration::from_secs(30), || remote_procs(&dir).is_empty());
    assert!(gone, "outlived the harness: {:?}", remote_procs(&dir));
    // The hosts' folders stay (as a crashed local run's data does); this test removes them.
    let _ = std::fs::remove_dir_all(remote_dir(&dir));
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn ctrl_c_of_the_harness_stops_every_remote_node_and_fetches_the_logs() {
    let _one = serial();
    let (_bed, store, mut child, dir) = started_run("sigint", "ssh-sigint", "60", ALL);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(wait_exit(&mut child), Some(130));
    assert!(
        wait_until(Duration::from_secs(30), || remote_procs(&dir).is_empty()),
        "outlived the harness: {:?}",
        remote_procs(&dir)
    );
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["interrupted"], true);
    for id in ["n1", "n2", "n3"] {
        let node_log = dir.join("nodes").join(format!("{id}.log"));
        assert!(node_log.is_file(), "{} fetched", node_log.display());
    }
    let _ = std::fs::remove_dir_all(remote_dir(&dir));
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn leave_running_keeps_the_nodes_up_and_says_how_to_stop_them() {
    let _one = serial();
    let bed = SshBed::new("leave", 3);
    let store = scratch("ssh-leave");
    let file = bed.hosts_file("hosts.toml", &[]);
    let mut cmd = hosts_test(&file, &store, "1.5", "none");
    cmd.arg("--leave-running");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0));
    let dir = latest(&store);
    let err = stderr(&out);
    let stops: Vec<&str> = err.lines().filter(|l| l.contains("left running")).collect();
    assert_eq!(stops.len(), 3, "{err}");
    // Still serving on every host after the harness ended.
    for node in &bed.net.nodes {
        let addr = std::net::SocketAddr::from((node.addr, 7401));
        assert!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok(),
            "{} is down",
            node.id
        );
    }
    // The printed command stops each (run here through the same ssh config and key).
    for (line, node) in stops.iter().zip(&bed.net.nodes) {
        let remote = line
            .split("ssh ")
            .nth(1)
            .unwrap()
            .split_once(' ')
            .unwrap()
            .1;
        let remote = remote.trim().trim_matches('\'');
        let ok = Command::new("ssh")
            .arg("-F")
            .arg(bed.dir.join("ssh_config"))
            .arg("-i")
            .arg(bed.dir.join("key"))
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=accept-new",
            ])
            .arg(format!("root@{}", node.addr))
            .arg(remote)
            .status()
            .unwrap()
            .success();
        assert!(ok, "{remote} on {}", node.id);
    }
    assert!(
        wait_until(Duration::from_secs(30), || remote_procs(&dir).is_empty()),
        "still running: {:?}",
        remote_procs(&dir)
    );
    let _ = std::fs::remove_dir_all(remote_dir(&dir));
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn a_host_that_drops_mid_run_is_a_crashed_node_not_a_hang() {
    let _one = serial();
    let (bed, store, mut child, dir) = started_run("drop", "ssh-drop", "8", "pause,kill");
    // Host n3 leaves the network: every packet to and from it is lost from now on.
    let veth = format!("{}v3", bed.net.tag);
    let down = Command::new("ip")
        .args(["link", "set", &veth, "down"])
        .status()
        .unwrap();
    assert!(down.success());
    let mut code = None;
    let ended = wait_until(Duration::from_secs(180), || match child.try_wait() {
        Ok(Some(s)) => {
            code = s.code();
            true
        }
        _ => false,
    });
    if !ended {
        let _ = child.kill();
    }
    assert!(ended, "the run hung after a host dropped");
    let log = std::fs::read_to_string(dir.join("harness.log")).unwrap();
    eprintln!("{log}");
    assert!(matches!(code, Some(0 | 3)), "exit {code:?}");
    let results = read_json(&dir.join("results.json"));
    assert!(results["counts"]["ok"].as_u64().unwrap() > 0);
    let check = harness_on(&["check"], &[&dir.join("history.jsonl")]);
    assert!(check.status.success(), "{}", all_output(&check));
    assert!(log.contains("host n3"), "the run says which host failed");
    // Every fault step that could not reach n3 is in the history too, not only in the log.
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let steps_failed = log.matches("failed: host n3").count();
    let recorded = history
        .lines()
        .filter(|l| l.contains("\"fault-failed\"") && l.contains("\"node\":\"n3\""))
        .count();
    assert_eq!(recorded, steps_failed, "fault-failed events for n3");
    // Cut off from the harness, the node on n3 stops itself once the heartbeats stop.
    let node_on_n3 = |l: &String| l.contains("/n3/paxos-node");
    assert!(
        wait_until(Duration::from_secs(60), || !remote_procs(&dir)
            .iter()
            .any(node_on_n3)),
        "the node on the dropped host outlived the run: {:?}",
        remote_procs(&dir)
    );
    let _ = std::fs::remove_dir_all(remote_dir(&dir));
    std::fs::remove_dir_all(&store).unwrap();
}

/// The default suite (suites/smoke.toml: both variants, every fault kind, 3 nodes) on the bed's
/// 3 hosts: every run valid, every run's faults reached the hosts, nothing left running.
#[test]
fn the_smoke_suite_runs_on_three_ssh_hosts() {
    let _one = serial();
    let bed = SshBed::new("suite", 3);
    let store = scratch("ssh-suite");
    let file = bed.hosts_file("hosts.toml", &[]);
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/smoke.toml");
    paxos_node();
    let mut cmd = Command::new(harness());
    cmd.arg("suite")
        .arg(&smoke)
        .arg("--hosts")
        .arg(&file)
        .arg("--store")
        .arg(&store);
    let out = run_cmd(cmd);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let summary = read_json(&store.join("smoke").join("latest").join("summary.json"));
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 8, "{summary:#}");
    assert_eq!(summary["counts"]["pass"], 8, "{summary:#}");
    for r in runs {
        let dir = store
            .join("smoke")
            .join("latest")
            .join(r["run_dir"].as_str().unwrap());
        let test = read_json(&dir.join("test.json"));
        let argv = test["node_argv"]["n1"].to_string();
        assert!(
            argv.contains(&format!("{}:", bed.net.nodes[0].addr)),
            "{argv}"
        );
        let log = std::fs::read_to_string(dir.join("harness.log")).unwrap();
        assert!(!log.contains("partition rules failed"), "{}", dir.display());
    }
    let left = Command::new("pgrep")
        .args(["-a", "-f", "harness-remote-"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&left.stdout)
    );
    std::fs::remove_dir_all(&store).unwrap();
}
