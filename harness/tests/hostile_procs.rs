//! Nodes that misbehave as processes: a node that daemonizes a grandchild (double fork with
//! `setsid`, out of the node's process group and session), a node that listens on 0.0.0.0, a
//! node script whose `#!` interpreter is missing, a suite whose `node_bin` is missing, and what
//! the harness says about nodes it killed itself. Every node here is a real process: a small
//! shell script in front of the tiny node.

mod cli_util;
use cli_util::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BOUND: Duration = Duration::from_secs(10);

/// `harness test` as [`tiny_test`] runs it (`extra` overrides its defaults), but with `node` as
/// the node binary.
fn test_with_node(store: &Path, node: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(harness());
    cmd.arg("test")
        .arg("--node-bin")
        .arg(node)
        .arg("--store")
        .arg(store);
    let defaults = [
        ("--nodes", "1"),
        ("--recovery-time", "0.2"),
        ("--nemesis", "none"),
        ("--concurrency", "4"),
    ];
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            cmd.args([flag, value]);
        }
    }
    cmd.args(extra);
    cmd
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A node that starts `sleep 1000` through a double fork with `setsid` (the sleeper writes its
/// pid to `gc.pid` in `dir` and adds it to `gc.pids`), then runs as the tiny node.
fn daemonizing_node(dir: &Path) -> PathBuf {
    let (pidfile, all) = (dir.join("gc.pid"), dir.join("gc.pids"));
    let body = format!(
        "#!/bin/sh\n( setsid sh -c 'echo $$ > {}; echo $$ >> {}; exec sleep 1000' & )\n\
         exec {} \"$@\"\n",
        pidfile.display(),
        all.display(),
        tiny_node().display()
    );
    write_script(dir, "daemonizing-node.sh", &body)
}

/// Starts `harness test` with the daemonizing node; returns the harness, the run folder, and the
/// grandchild's pid once it runs (out of the node's session: no process group holds it).
fn start_daemonizing(store: &Path, time_limit: &str) -> (std::process::Child, PathBuf, Reap) {
    let node = daemonizing_node(store);
    let mut cmd = test_with_node(store, &node, &["--time-limit", time_limit, "--no-check"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let child = cmd.spawn().expect("start harness");
    let dir = wait_ready(store, 1, Duration::from_secs(30));
    let pidfile = store.join("gc.pid");
    let mut gc = None;
    assert!(
        wait_until(BOUND, || {
            gc = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok());
            gc.is_some()
        }),
        "the node's grandchild never wrote its pid"
    );
    let gc = gc.unwrap();
    assert!(alive(gc), "the grandchild runs while the harness does");
    let node_pid = node_pids(&dir)[0];
    let session = |pid: i32| nix::unistd::getsid(Some(Pid::from_raw(pid))).unwrap();
    assert_ne!(
        session(gc),
        session(node_pid),
        "the grandchild left the node's session"
    );
    (child, dir, Reap(gc))
}

/// The grandchild's pid; kills it when a test ends, passed or failed, so none leaves it running.
struct Reap(i32);

impl Drop for Reap {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
        }
    }
}

fn assert_gone(pid: i32, when: &str) {
    let gone = wait_until(BOUND, || !alive(pid));
    assert!(
        gone,
        "the node's setsid grandchild {pid} outlived the harness ({when})"
    );
}

#[test]
fn a_daemonized_grandchild_ends_with_a_normal_run() {
    let store = scratch("hp-normal");
    let (mut child, _dir, gc) = start_daemonizing(&store, "0.5");
    assert_eq!(
        wait_exit(&mut child),
        Some(3),
        "a --no-check run is unknown: exit 3"
    );
    assert_gone(gc.0, "normal end");
    std::fs::remove_dir_all(&store).unwrap();
}

fn signal_ends_the_grandchild(name: &str, sig: Signal) {
    let store = scratch(name);
    let (mut child, _dir, gc) = start_daemonizing(&store, "60");
    kill(Pid::from_raw(child.id() as i32), sig).unwrap();
    assert!(wait_exit(&mut child).is_some());
    assert_gone(gc.0, sig.as_str());
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn a_daemonized_grandchild_ends_with_sigterm_of_the_harness() {
    signal_ends_the_grandchild("hp-sigterm", Signal::SIGTERM);
}

#[test]
fn a_daemonized_grandchild_ends_with_sigint_of_the_harness() {
    signal_ends_the_grandchild("hp-sigint", Signal::SIGINT);
}

/// A kill fault kills the node's whole tree, as a crash of its machine would: the grandchild
/// of the killed node is gone while the run goes on (the restarted node starts another).
#[test]
fn a_kill_fault_takes_the_daemonized_grandchild_too() {
    let store = scratch("hp-killfault");
    let node = daemonizing_node(&store);
    let extra = ["--time-limit", "60", "--no-check", "--nemesis", "kill"];
    let mut cmd = test_with_node(&store, &node, &extra);
    cmd.args(["--nemesis-interval", "0.3"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("start harness");
    let dir = wait_ready(&store, 1, Duration::from_secs(30));
    let log = || std::fs::read_to_string(dir.join("harness.log")).unwrap_or_default();
    let killed = wait_until(Duration::from_secs(30), || {
        log().contains("killed (SIGKILL)")
    });
    let pids: Vec<i32> = std::fs::read_to_string(store.join("gc.pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let _reap: Vec<Reap> = pids.iter().map(|&p| Reap(p)).collect();
    let first_gone = !pids.is_empty() && wait_until(BOUND, || !alive(pids[0]));
    let running = child.try_wait().unwrap().is_none();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    wait_exit(&mut child);
    assert!(killed, "the nemesis killed the node: {}", log());
    assert!(!pids.is_empty(), "the first node started a grandchild");
    assert!(running, "the run was still going");
    assert!(
        first_gone,
        "the killed node's grandchild {} outlived it",
        pids[0]
    );
    std::fs::remove_dir_all(&store).unwrap();
}

/// Runs the kill fault every 0.3 s on a node script that starts a child with `start_child`
/// (which appends the child's pid to `kids`); true if the first child is gone from /proc (not
/// even a zombie) while the run goes on.
fn kill_faults_reap_the_first_child(name: &str, start_child: &str) -> bool {
    let store = scratch(name);
    let kids = store.join("kids");
    let start_child = start_child.replace("KIDS", &kids.display().to_string());
    let body = format!(
        "#!/bin/sh\n{start_child}\nexec {} \"$@\"\n",
        tiny_node().display()
    );
    let node = write_script(&store, "parent-node.sh", &body);
    let extra = ["--time-limit", "60", "--no-check", "--nemesis", "kill"];
    let mut cmd = test_with_node(&store, &node, &extra);
    cmd.args(["--nemesis-interval", "0.3"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("start harness");
    let dir = wait_ready(&store, 1, Duration::from_secs(30));
    let log = || std::fs::read_to_string(dir.join("harness.log")).unwrap_or_default();
    let killed = wait_until(Duration::from_secs(30), || {
        log().matches("killed (SIGKILL)").count() >= 2
    });
    let first: Option<i32> = std::fs::read_to_string(&kids)
        .unwrap_or_default()
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok());
    let _reap = first.map(Reap);
    let in_proc = |pid: i32| Path::new(&format!("/proc/{pid}")).exists();
    let reaped = first.is_some_and(|p| wait_until(BOUND, || !in_proc(p)));
    let running = child.try_wait().unwrap().is_none();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    wait_exit(&mut child);
    assert!(killed, "the nemesis killed the node twice: {}", log());
    assert!(first.is_some(), "the first node started a child");
    assert!(running, "the run was still going");
    std::fs::remove_dir_all(&store).unwrap();
    reaped
}

/// A killed node's children in its group re-parent to the harness (a subreaper), which reaps
/// them: a kill fault leaves no zombie behind while the run goes on.
#[test]
fn a_kill_fault_leaves_no_zombie_of_the_nodes_children() {
    let reaped = kill_faults_reap_the_first_child("hp-zombies", "sleep 1000 &\necho $! >> KIDS");
    assert!(reaped, "the killed node's child is left as a zombie");
}

/// A daemon that ends on its own while the run goes on is reaped at the next kill fault.
#[test]
fn a_daemon_that_ends_on_its_own_leaves_no_zombie() {
    let start = "( setsid sh -c 'echo $$ >> KIDS; exec sleep 0.1' & )";
    let reaped = kill_faults_reap_the_first_child("hp-daemon-zombie", start);
    assert!(
        reaped,
        "the ended daemon is left as a zombie of the harness"
    );
}

/// SIGKILL of the harness: no code of it runs, the node dies of its parent-death signal, and
/// the grandchild is left; then `clean` finds it by the mark every node process carries.
fn sigkilled_harness_leaves_a_grandchild(name: &str) -> (PathBuf, Reap) {
    let store = scratch(name);
    let (mut child, dir, gc) = start_daemonizing(&store, "60");
    let node_pid = node_pids(&dir)[0];
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wait_until(BOUND, || !alive(node_pid)),
        "the node dies with the harness"
    );
    (store, gc)
}

#[test]
fn harness_clean_kills_what_a_sigkilled_harness_left() {
    let (store, gc) = sigkilled_harness_leaves_a_grandchild("hp-sigkill-clean");
    // Another test's harness starting now may kill it first; either way it must go.
    let left = alive(gc.0);
    let out = run({
        let mut c = Command::new(harness());
        c.arg("clean");
        c
    });
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    // ... also between the check above and `clean`: then clean found nothing, rightly.
    let raced = stdout.contains("nothing left") && !alive(gc.0);
    if left && !raced {
        assert!(
            stdout.contains(&format!("killed process {} (sleep)", gc.0)),
            "{stdout}"
        );
        assert!(stdout.contains("left by node n1"), "{stdout}");
    }
    assert_gone(gc.0, "SIGKILL, then harness clean");
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn the_next_run_kills_what_a_sigkilled_harness_left() {
    let (store, gc) = sigkilled_harness_leaves_a_grandchild("hp-sigkill-next");
    let out = run(tiny_test(&store, "correct", &["--time-limit", "0.3"]));
    assert_eq!(out.status.code(), Some(0), "the next run itself is valid");
    assert_gone(gc.0, "SIGKILL, then the next run");
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn ctrl_c_does_not_call_the_nodes_it_killed_self_exited() {
    let store = scratch("hp-ctrlc-msg");
    let mut cmd = tiny_test(
        &store,
        "correct",
        &["--nodes", "3", "--time-limit", "60", "--no-check"],
    );
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    wait_ready(&store, 3, Duration::from_secs(30));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = {
        wait_exit(&mut child);
        child.wait_with_output().unwrap()
    };
    let err = stderr(&out);
    assert!(err.contains("SIGINT: nodes stopped"), "{err}");
    assert!(!err.contains("exited on its own"), "{err}");
    let log = std::fs::read_to_string(latest(&store).join("harness.log")).unwrap();
    assert!(!log.contains("exited on its own"), "{log}");
    std::fs::remove_dir_all(&store).unwrap();
}

/// The tiny node, but with its client port bound on 0.0.0.0 (the same port).
fn wildcard_node_script() -> String {
    format!(
        "#!/bin/sh\nprev=\nfor a in \"$@\"; do\n  [ \"$prev\" = --client ] && port=\"${{a##*:}}\"\n  \
         prev=\"$a\"\ndone\nexec {} \"$@\" --client-bind \"0.0.0.0:$port\"\n",
        tiny_node().display()
    )
}

#[test]
fn a_node_that_listens_on_the_wildcard_is_warned_about_everywhere() {
    let store = scratch("hp-wildcard");
    let node = write_script(&store, "wildcard-node.sh", &wildcard_node_script());
    let out = run(test_with_node(&store, &node, &["--time-limit", "0.5"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning does not change the verdict"
    );
    let dir = latest(&store);
    let err = stderr(&out);
    assert!(
        err.contains("harness: warning: node n1 listens on 0.0.0.0:"),
        "{err}"
    );
    assert!(err.contains("beyond loopback"), "{err}");
    let log = std::fs::read_to_string(dir.join("harness.log")).unwrap();
    assert!(log.contains("node n1 listens on 0.0.0.0:"), "{log}");
    let results = read_json(&dir.join("results.json"));
    let warnings = results["warnings"]
        .as_array()
        .expect("results.json has warnings");
    assert_eq!(
        warnings.len(),
        1,
        "one warning, not one per check: {warnings:?}"
    );
    assert!(warnings[0].as_str().unwrap().contains("0.0.0.0:"));
    let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(page.contains("Warnings"), "the report shows the warning");
    assert!(page.contains("node n1 listens on 0.0.0.0:"));
    std::fs::remove_dir_all(&store).unwrap();
}

/// In its own network namespace the wildcard reaches only the node's address and loopback,
/// which the run gave it: no warning.
#[test]
fn in_netns_mode_the_wildcard_of_the_nodes_namespace_is_expected() {
    let store = scratch("hp-netns-wildcard");
    let node = write_script(&store, "wildcard-node.sh", &wildcard_node_script());
    let extra = ["--time-limit", "0.5", "--net", "netns", "--no-check"];
    let out = run(test_with_node(&store, &node, &extra));
    assert_eq!(
        out.status.code(),
        Some(3),
        "a --no-check run is unknown: exit 3"
    );
    assert!(!stderr(&out).contains("listens on"), "{}", stderr(&out));
    let dir = latest(&store);
    let log = std::fs::read_to_string(dir.join("nodes").join("n1.log")).unwrap();
    assert!(
        log.contains("client 0.0.0.0:"),
        "the node bound the wildcard: {log}"
    );
    let results = read_json(&dir.join("results.json"));
    assert!(results.get("warnings").is_none(), "{results}");
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn a_node_on_loopback_gets_no_warning() {
    let store = scratch("hp-loopback");
    let out = run(tiny_test(&store, "correct", &["--time-limit", "0.3"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let results = read_json(&latest(&store).join("results.json"));
    assert!(results.get("warnings").is_none(), "{results}");
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn a_script_with_a_missing_interpreter_names_the_interpreter() {
    let store = scratch("hp-shebang");
    let node = write_script(
        &store,
        "node.py",
        "#!/nonexistent/python9 -u\nprint('hi')\n",
    );
    let out = run(test_with_node(&store, &node, &["--time-limit", "0.3"]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("/nonexistent/python9"), "{err}");
    assert!(err.contains("interpreter"), "{err}");
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn a_suite_with_a_missing_node_bin_is_refused_at_load_with_its_line() {
    let store = scratch("hp-suite-nodebin");
    let suite = store.join("s.toml");
    std::fs::write(
        &suite,
        "[defaults]\ntime_limit = 0.3\n\n[[test]]\nname = \"ok\"\n\n[[test]]\nname = \"gone\"\n\
         node_bin = \"/nonexistent/node\"\n",
    )
    .unwrap();
    let out = run({
        let mut c = Command::new(harness());
        c.arg("suite")
            .arg(&suite)
            .arg("--store")
            .arg(store.join("res"));
        c
    });
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let want = format!(
        "{}:9:1: [[test]] \"gone\" (entry 2), field `node_bin`: /nonexistent/node",
        suite.display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(!store.join("res").exists(), "nothing ran");
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn a_suite_run_that_errors_is_an_error_on_stdout_and_in_summary_md() {
    let store = scratch("hp-suite-error");
    let suite = store.join("s.toml");
    let body = format!(
        "[[test]]\nname = \"dies\"\nnodes = 1\ntime_limit = 0.3\nnode_bin = \"{}\"\n\
         node_args = [\"--mode\", \"exit\"]\n",
        tiny_node().display()
    );
    std::fs::write(&suite, body).unwrap();
    let res = store.join("res");
    let out = run({
        let mut c = Command::new(harness());
        c.arg("suite").arg(&suite).arg("--store").arg(&res);
        c
    });
    assert_eq!(out.status.code(), Some(2), "a run that could not start");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("suite s: 0 passed, 0 failed, 0 unknown, 1 errors"),
        "{stdout}"
    );
    let md = std::fs::read_to_string(res.join("s").join("latest").join("summary.md")).unwrap();
    assert!(md.contains("0 failed · 0 unknown · 1 errors"), "{md}");
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn a_node_that_floods_its_output_cannot_fill_the_disk() {
    // 400 MB on stdout before the node starts (unbounded before: `exec yes` wrote 18 GB in 3 s).
    let store = scratch("hp-flood");
    let script = format!(
        "#!/bin/sh\nhead -c 400000000 /dev/zero\nexec {} \"$@\"\n",
        tiny_node().display()
    );
    let node = write_script(&store, "flood-node.sh", &script);
    let out = run(test_with_node(
        &store,
        &node,
        &["--time-limit", "0.5", "--ready-timeout", "30"],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = latest(&store).join("nodes").join("n1.log");
    let len = std::fs::metadata(&log).unwrap().len();
    let limit = harness::node_log::LIMIT;
    assert!(len > limit / 2 && len < limit + 4096, "log is {len} bytes");
    let bytes = std::fs::read(&log).unwrap();
    let tail = String::from_utf8_lossy(&bytes[bytes.len() - 200..]).to_string();
    assert!(tail.contains("[harness: log cut at"), "{tail}");
    std::fs::remove_dir_all(&store).unwrap();
}
