//! Shared helpers for the tests that run the `harness` command: its binary, the tiny test node,
//! scratch stores and process liveness checks. Everything here runs real processes.
// Each test file compiles this module and uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_harness"))
}

/// `target/<profile>/examples/tiny_node`, brought up to date once per test process: `cargo test
/// --test X` builds no examples, and a stale copy would test old code.
pub fn tiny_node() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let dir = harness().parent().unwrap().to_path_buf();
    let bin = dir.join("examples").join("tiny_node");
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let target_dir = dir.parent().unwrap();
        let mut cmd = Command::new(cargo);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "-p",
                "harness",
                "--example",
                "tiny_node",
                "--target-dir",
            ])
            .arg(target_dir);
        if dir.file_name().unwrap() != "debug" {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo to build the tiny node");
        assert!(status.success(), "building the tiny_node example failed");
    });
    bin
}

/// `harness ARGS PATHS...`, run to its end.
pub fn harness_on(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(harness())
        .args(args)
        .args(paths)
        .output()
        .unwrap()
}

/// Stdout then stderr, for assertions that do not care which one a message went to.
pub fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A fresh, empty store folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("harness-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `harness test` against the tiny node in `mode`, with short phases and no faults. `extra`
/// options override the defaults here.
pub fn tiny_test(store: &Path, mode: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(harness());
    cmd.arg("test")
        .arg("--node-bin")
        .arg(tiny_node())
        .arg("--store")
        .arg(store);
    let defaults = [
        ("--nodes", "1"),
        ("--time-limit", "1.5"),
        ("--recovery-time", "0.2"),
        ("--nemesis", "none"),
        ("--concurrency", "4"),
    ];
    for (flag, value) in defaults {
        let overridden = extra
            .iter()
            .any(|e| *e == flag || e.starts_with(&format!("{flag}=")));
        if !overridden {
            cmd.args([flag, value]);
        }
    }
    cmd.args(extra).args(["--", "--mode", mode]);
    cmd
}

pub fn run(mut cmd: Command) -> Output {
    let out = cmd.output().expect("run harness");
    eprintln!(
        "--- harness exit {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The run folder `store/latest` points at.
pub fn latest(store: &Path) -> PathBuf {
    std::fs::canonicalize(store.join("latest")).expect("store/latest exists")
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Node pids from `harness.log` ("node started ... pid=N").
pub fn node_pids(run_dir: &Path) -> Vec<i32> {
    let log = std::fs::read_to_string(run_dir.join("harness.log")).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains("node started"))
        .filter_map(|l| l.split("pid=").nth(1))
        .filter_map(|s| s.split_whitespace().next()?.parse().ok())
        .collect()
}

/// A process is alive if /proc has it and it is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            state != Some("Z") && state != Some("X")
        }
    }
}

/// Polls `cond` every 50 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the newest run in `store` logged `n` ready nodes; returns the run folder.
pub fn wait_ready(store: &Path, n: usize, limit: Duration) -> PathBuf {
    let mut dir = None;
    let ok = wait_until(limit, || {
        let Ok(d) = std::fs::canonicalize(store.join("latest")) else {
            return false;
        };
        let log = std::fs::read_to_string(d.join("harness.log")).unwrap_or_default();
        dir = Some(d);
        log.matches("node ready").count() >= n
    });
    assert!(ok, "nodes did not become ready within {limit:?}");
    dir.unwrap()
}

/// The prefix of every name a harness with `pid` makes: `jr` + the pid in 5 base-36 digits.
pub fn prefix(pid: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut v = pid;
    let mut out = vec![b'0'; 5];
    for slot in out.iter_mut().rev() {
        *slot = digits[(v % 36) as usize];
        v /= 36;
    }
    format!("jr{}", String::from_utf8(out).unwrap())
}

/// Namespaces and links whose names a harness with `pid` made.
pub fn left_by(pid: u32) -> Vec<String> {
    let p = prefix(pid);
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().expect("run ip");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut out: Vec<String> = ip(&["netns", "list"])
        .lines()
        .chain(ip(&["-o", "link", "show"]).lines())
        .filter(|l| l.contains(&p))
        .map(String::from)
        .collect();
    out.sort();
    out
}

/// Waits (bounded) for a harness child to exit; its exit code (-1 for a signal).
pub fn wait_exit(child: &mut std::process::Child) -> Option<i32> {
    let mut code = None;
    let exited = wait_until(Duration::from_secs(30), || match child.try_wait() {
        Ok(Some(s)) => {
            code = Some(s.code().unwrap_or(-1));
            true
        }
        _ => false,
    });
    if !exited {
        let _ = child.kill();
        panic!("harness did not exit");
    }
    code
}

/// Builds `paxos-node` into the harness's own target dir and profile (a no-op when fresh).
pub fn build_paxos_node() {
    let dir = harness().parent().unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "-q", "-p", "paxos-node", "--target-dir"])
        .arg(dir.parent().unwrap());
    if dir.file_name().unwrap() != "debug" {
        cmd.arg("--release");
    }
    assert!(
        cmd.status().unwrap().success(),
        "building paxos-node failed"
    );
}

/// A scratch folder holding only links to `tools` (from /usr/sbin), to put on PATH so a test can
/// run the harness without some other program (etcd, unshare, ...).
pub fn path_with_only(name: &str, tools: &[&str]) -> PathBuf {
    let dir = scratch(name);
    for tool in tools {
        std::os::unix::fs::symlink(format!("/usr/sbin/{tool}"), dir.join(tool)).unwrap();
    }
    dir
}
