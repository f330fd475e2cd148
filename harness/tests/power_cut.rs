//! `--nemesis power-cut` with real processes and real FUSE mounts: a node that writes, syncs
//! some, writes more and is cut sees exactly the synced data when it restarts (and, under plain
//! kills, everything); the fault is refused without FUSE (simulated by pointing
//! `JEPSEN_FUSE_DEVICE` at a missing file) while other faults run; no mount outlives a run,
//! including one whose harness was SIGKILLed (then `harness clean` removes it).

mod cli_util;
use cli_util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A node script: at every start it appends what its data dir's `log` holds to `seen` (outside
/// the data dir), then appends `synced K` to the log and syncs the file and the directory, then
/// appends `unsynced K`, then runs as the tiny node.
fn logging_node(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let seen = dir.join("seen");
    let body = format!(
        "#!/bin/sh\nprev=''\nfor a in \"$@\"; do [ \"$prev\" = --data-dir ] && d=\"$a\"; prev=\"$a\"; done\n\
         k=$(date +%s%N)\n\
         {{ echo \"start $k\"; cat \"$d/log\" 2>/dev/null; }} >> {seen}\n\
         echo \"synced $k\" >> \"$d/log\" && sync \"$d/log\" && sync \"$d\" || exit 9\n\
         echo \"unsynced $k\" >> \"$d/log\"\n\
         exec {tiny} \"$@\"\n",
        seen = seen.display(),
        tiny = tiny_node().display()
    );
    let path = dir.join("logging-node.sh");
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (path, seen)
}

fn test_cmd(store: &Path, node: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(harness());
    cmd.arg("test")
        .arg("--node-bin")
        .arg(node)
        .arg("--store")
        .arg(store);
    for (flag, value) in [
        ("--nodes", "1"),
        ("--recovery-time", "0.2"),
        ("--concurrency", "2"),
    ] {
        if !extra.contains(&flag) {
            cmd.args([flag, value]);
        }
    }
    cmd.args(extra).args(["--", "--mode", "correct"]);
    cmd
}

/// The tiny node keeps its state in memory, so a run with kills is not checked: the verdict
/// is unknown (exit 3), anything else is a failure to run.
const UNCHECKED: Option<i32> = Some(3);

/// The blocks of `seen`: for each start, the log lines it found.
fn starts(seen: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(seen).unwrap();
    let mut out: Vec<Vec<String>> = Vec::new();
    for line in text.lines() {
        if line.starts_with("start ") {
            out.push(Vec::new());
        } else {
            out.last_mut()
                .expect("a start first")
                .push(line.to_string());
        }
    }
    out
}

/// Mount points of FUSE mounts under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.display().to_string();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| p.starts_with(&dir))
        .collect()
}

fn nemesis_fs(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    text.lines()
        .filter(|l| l.contains("\"nemesis\""))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["f"].to_string())
        .collect()
}

/// A 3 s run of the logging node with a window of `kind` every 0.4 s, unchecked.
fn short_run(store: &Path, node: &Path, kind: &str) -> std::process::Output {
    let args = [
        "--nemesis",
        kind,
        "--nemesis-interval",
        "0.4",
        "--time-limit",
        "3",
        "--no-check",
    ];
    run(test_cmd(store, node, &args))
}

#[test]
fn after_each_power_cut_the_node_sees_exactly_what_it_synced() {
    let store = scratch("pc-synced");
    let (node, seen) = logging_node(&store);
    let out = short_run(&store, &node, "power-cut");
    assert_eq!(out.status.code(), UNCHECKED, "{}", stderr(&out));
    let run_dir = latest(&store);
    let fs = nemesis_fs(&run_dir);
    assert!(fs.iter().any(|f| f == "\"start-power-cut\""), "{fs:?}");
    assert!(fs.iter().any(|f| f == "\"stop-power-cut\""), "{fs:?}");
    let blocks = starts(&seen);
    assert!(
        blocks.len() >= 2,
        "at least one restart after a cut: {blocks:?}"
    );
    // On the disk after the run: every start's synced line, and only the last start's unsynced
    // one (the run ended with a clean stop, which keeps everything).
    let disk = std::fs::read_to_string(run_dir.join("nodes/n1.disk/log")).unwrap();
    let disk: Vec<String> = disk.lines().map(str::to_string).collect();
    let synced: Vec<String> = disk
        .iter()
        .filter(|l| l.starts_with("synced"))
        .cloned()
        .collect();
    assert_eq!(synced.len(), blocks.len(), "{disk:?}");
    let last = synced.last().unwrap().replace("synced", "unsynced");
    assert_eq!(disk, [synced.clone(), vec![last]].concat());
    for (i, found) in blocks.iter().enumerate() {
        assert_eq!(
            found,
            &synced[..i],
            "start {i} saw what was synced before it, nothing else"
        );
    }
    assert_eq!(
        mounts_under(&store),
        Vec::<String>::new(),
        "no mount outlives the run"
    );
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn a_plain_kill_keeps_unsynced_writes_as_the_page_cache_does() {
    let store = scratch("pc-kill");
    let (node, seen) = logging_node(&store);
    let out = short_run(&store, &node, "kill");
    assert_eq!(out.status.code(), UNCHECKED, "{}", stderr(&out));
    let blocks = starts(&seen);
    assert!(blocks.len() >= 2, "at least one restart: {blocks:?}");
    assert!(
        blocks[1].iter().any(|l| l.starts_with("unsynced")),
        "{blocks:?}"
    );
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn without_fuse_power_cut_is_refused_and_other_faults_still_run() {
    let store = scratch("pc-nofuse");
    let missing = store.join("no-such-fuse-device");
    // Two kinds fit the tiny test's 1.5 s only with short periods.
    let fast = ["--nemesis-interval", "0.5"];
    let mut cmd = tiny_test(
        &store,
        "correct",
        &["--nemesis", "power-cut,kill", fast[0], fast[1]],
    );
    cmd.env("JEPSEN_FUSE_DEVICE", &missing);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("--nemesis power-cut needs FUSE"), "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
    let mut cmd = tiny_test(
        &store,
        "correct",
        &["--nemesis", "kill,pause", "--no-check", fast[0], fast[1]],
    );
    cmd.env("JEPSEN_FUSE_DEVICE", &missing);
    assert_eq!(
        run(cmd).status.code(),
        UNCHECKED,
        "kill and pause need no FUSE"
    );
    std::fs::remove_dir_all(&store).unwrap();
}

/// SIGKILL of the harness leaves its mounts (no code of it runs); `clean`, or the next run,
/// unmounts them.
fn sigkilled_harness_leaves_a_mount(name: &str) -> PathBuf {
    let store = scratch(name);
    let (node, _) = logging_node(&store);
    let mut cmd = test_cmd(
        &store,
        &node,
        &[
            "--nemesis",
            "power-cut",
            "--nemesis-interval",
            "30",
            "--time-limit",
            "60",
        ],
    );
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&store, 1, Duration::from_secs(30));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        mounts_under(&store).len(),
        1,
        "the killed harness's mount is left"
    );
    store
}

#[test]
fn harness_clean_unmounts_what_a_sigkilled_harness_left() {
    let store = sigkilled_harness_leaves_a_mount("pc-sigkill-clean");
    let left = mounts_under(&store);
    let out = run({
        let mut c = Command::new(harness());
        c.arg("clean");
        c
    });
    assert!(out.status.success());
    // Another test's harness starting now may unmount it first; either way it must go.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        mounts_under(&store).is_empty(),
        "left {left:?}, clean said {stdout}"
    );
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn the_next_run_unmounts_what_a_sigkilled_harness_left() {
    let store = sigkilled_harness_leaves_a_mount("pc-sigkill-next");
    let out = run(tiny_test(&store, "correct", &["--time-limit", "0.3"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(mounts_under(&store).is_empty());
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn ctrl_c_unmounts_every_layer() {
    let store = scratch("pc-ctrlc");
    let (node, _) = logging_node(&store);
    let mut cmd = test_cmd(
        &store,
        &node,
        &[
            "--nodes",
            "3",
            "--nemesis",
            "power-cut",
            "--time-limit",
            "60",
            "--no-check",
        ],
    );
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&store, 3, Duration::from_secs(30));
    assert_eq!(mounts_under(&store).len(), 3);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    assert_eq!(wait_exit(&mut child), Some(130));
    assert!(
        mounts_under(&store).is_empty(),
        "{:?}",
        mounts_under(&store)
    );
    std::fs::remove_dir_all(&store).unwrap();
}
