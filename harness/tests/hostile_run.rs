//! A run's lifecycle under hostile conditions, with real processes, signals, files and limits: a
//! low `--rate`, signals in several phases, absurd durations, a full disk (a real 1 MiB tmpfs;
//! needs root, like the netns tests), a lowered open-file limit, a node that answers with an
//! integer beyond 64 bits.

mod cli_util;

use cli_util::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn spawn_quiet(mut cmd: Command) -> std::process::Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stderr_of(child: &mut std::process::Child) -> String {
    use std::io::Read;
    let mut s = String::new();
    child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

/// Waits for the process to disappear from /proc: reaped by the harness (or by init after the
/// harness exited). A zombie still has its /proc entry.
fn gone(pid: i32) -> bool {
    wait_until(Duration::from_secs(5), || {
        !Path::new(&format!("/proc/{pid}")).exists()
    })
}

#[test]
fn a_low_rate_ends_at_the_time_limit() {
    let store = scratch("low-rate");
    // Before: each client slept up to 2 × concurrency / rate = 160 s between operations, and
    // the main phase waited for it.
    let mut child = spawn_quiet(tiny_test(
        &store,
        "correct",
        &["--time-limit", "2", "--rate", "0.05"],
    ));
    let code = wait_exit(&mut child);
    let err = stderr_of(&mut child);
    assert_eq!(code, Some(0), "{err}");
    let results = read_json(&latest(&store).join("results.json"));
    let main = results["main_phase_s"].as_f64().unwrap();
    assert!((2.0..10.0).contains(&main), "main phase lasted {main} s");
}

#[test]
fn sigterm_with_a_low_rate_ends_the_run_and_reaps_the_node() {
    let store = scratch("term-low-rate");
    let mut child = spawn_quiet(tiny_test(
        &store,
        "correct",
        &["--time-limit", "60", "--rate", "0.05"],
    ));
    let run_dir = wait_ready(&store, 1, Duration::from_secs(20));
    let pids = node_pids(&run_dir);
    assert_eq!(pids.len(), 1, "one node started");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let code = wait_exit(&mut child);
    let err = stderr_of(&mut child);
    assert_eq!(code, Some(143), "128 + SIGTERM: {err}");
    assert!(gone(pids[0]), "node {} left behind (zombie?)", pids[0]);
    let results = read_json(&run_dir.join("results.json"));
    assert_eq!(results["interrupted"], true);
    assert!(
        !err.contains("exited on its own"),
        "the harness killed it: {err}"
    );
}

#[test]
fn each_signal_exits_with_128_plus_its_number() {
    for (signal, want) in [
        (Signal::SIGINT, 130),
        (Signal::SIGTERM, 143),
        (Signal::SIGHUP, 129),
    ] {
        let store = scratch(&format!("signal-{}", signal as i32));
        let mut child = spawn_quiet(tiny_test(&store, "correct", &["--time-limit", "60"]));
        wait_ready(&store, 1, Duration::from_secs(20));
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        let code = wait_exit(&mut child);
        let err = stderr_of(&mut child);
        assert_eq!(code, Some(want), "{signal}: {err}");
        assert!(
            err.contains(&format!("harness: {signal}")),
            "{signal}: {err}"
        );
    }
}

#[test]
fn a_signal_while_nodes_start_exits_with_the_signal_code() {
    let store = scratch("term-starting");
    let mut child = spawn_quiet(tiny_test(&store, "never-ready", &["--ready-timeout", "60"]));
    let started = wait_until(Duration::from_secs(20), || {
        std::fs::canonicalize(store.join("latest")).is_ok_and(|d| !node_pids(&d).is_empty())
    });
    assert!(started, "the node was never started");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let code = wait_exit(&mut child);
    let err = stderr_of(&mut child);
    assert_eq!(code, Some(143), "{err}");
    assert!(err.contains("interrupted while starting nodes"), "{err}");
}

#[test]
fn a_signal_in_the_final_phase_ends_the_run() {
    let store = scratch("term-final");
    let args = [
        "--time-limit",
        "1",
        "--nemesis",
        "pause",
        "--nemesis-interval",
        "0.2",
        "--recovery-time",
        "60",
    ];
    let mut child = spawn_quiet(tiny_test(&store, "correct", &args));
    let run_dir = wait_ready(&store, 1, Duration::from_secs(20));
    // Past the one-second main phase, into the minute of recovery.
    std::thread::sleep(Duration::from_millis(2500));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let code = wait_exit(&mut child);
    let err = stderr_of(&mut child);
    assert_eq!(code, Some(143), "{err}");
    let results = read_json(&run_dir.join("results.json"));
    assert_eq!(results["interrupted"], true);
    let main = results["main_phase_s"].as_f64().unwrap();
    assert!(
        main >= 1.0,
        "the signal came after the main phase ({main} s)"
    );
    assert!(!run_dir.join("node-stats.json").exists());
}

/// `harness ARGS`, its exit code and stderr; bounded, since some of these used to spin.
fn harness_says(args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(harness());
    cmd.args(args);
    let mut child = spawn_quiet(cmd);
    let code = wait_exit(&mut child);
    let err = stderr_of(&mut child);
    eprintln!("--- harness {args:?}: exit {code:?}\n{err}");
    (code, err)
}

#[test]
fn huge_and_odd_durations_are_refused_naming_the_flag() {
    let store = scratch("durations");
    let s = store.to_str().unwrap();
    let history = store.join("h.jsonl");
    std::fs::write(
        &history,
        r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"read","value":null}
{"index":1,"time":1,"process":0,"type":"ok","f":"read","value":null}
"#,
    )
    .unwrap();
    let h = history.to_str().unwrap();
    let test = |flag: &'static str, v: &'static str| vec!["test", "--store", s, flag, v];
    let mut cases: Vec<(Vec<&str>, &str)> = [
        "--time-limit",
        "--op-timeout",
        "--ready-timeout",
        "--check-time-limit",
        "--recovery-time",
        "--net-latency",
        "--net-jitter",
        "--nemesis-interval",
    ]
    .into_iter()
    .map(|f| (test(f, "1e300"), f))
    .collect();
    cases.push((test("--time-limit", "inf"), "--time-limit"));
    cases.push((test("--op-timeout", "1e-400"), "--op-timeout"));
    cases.push((vec!["check", "--time-limit", "1e300", h], "--time-limit"));
    cases.push((vec!["analyze", "--time-limit", "1e300", s], "--time-limit"));
    // Hunt durations take units (90s, 10m, 1h), so no exponents.
    let big = "100000000000000000000";
    cases.push((vec!["hunt", "--store", s, "--time", big], "--time"));
    cases.push((
        vec!["hunt", "--store", s, "--time", "99999999999h"],
        "--time",
    ));
    cases.push((
        vec!["hunt", "--store", s, "--time", "1m", "--shrink-time", big],
        "--shrink-time",
    ));
    for (args, flag) in cases {
        let (code, err) = harness_says(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?} must name {flag}: {err}");
        assert!(
            err.contains("604800") || err.contains("at least 0.01"),
            "{args:?} must state the bound: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // Nothing was run: no run folder (named after the default workload, kv; register before).
    assert!(!store.join("multi-kv").exists());
    assert!(!store.join("multi-register").exists());
}

#[test]
fn a_tiny_nemesis_interval_is_refused_at_once() {
    let store = scratch("tiny-interval");
    let s = store.to_str().unwrap();
    let (code, err) = harness_says(&["test", "--store", s, "--nemesis-interval", "1e-300"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--nemesis-interval 1e-300: must be at least 0.01"),
        "{err}"
    );
    // Within the interval bound but too many periods: the bound is stated.
    let args = ["test", "--store", s, "--time-limit", "600000"];
    let (code, err) = harness_says(&[&args[..], &["--nemesis-interval", "0.02"]].concat());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("at most 100000"), "{err}");
    assert!(
        err.contains("raise --nemesis-interval to at least 6"),
        "{err}"
    );
}

#[test]
fn a_suite_file_with_a_huge_duration_fails_when_it_loads() {
    let store = scratch("suite-durations");
    for (field, value) in [
        ("time_limit", "1e300"),
        ("op_timeout", "1e300"),
        ("net_latency", "1e300"),
        ("nemesis_interval", "1e-300"),
    ] {
        let file = store.join(format!("{field}.toml"));
        std::fs::write(
            &file,
            format!("[[test]]\nname = \"a\"\n\n[[test]]\nname = \"b\"\n{field} = {value}\n"),
        )
        .unwrap();
        let out = run({
            let mut c = Command::new(harness());
            c.arg("suite").arg(&file).arg("--store").arg(&store);
            c
        });
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{field}: {err}");
        let at = format!("{}:6:", file.display());
        assert!(
            err.contains(&at),
            "{field}: the error points at {at}: {err}"
        );
        assert!(err.contains(&format!("field `{field}`")), "{field}: {err}");
        assert!(!err.contains("panicked"), "{field}: {err}");
        // Found before anything ran: no suite folder, so no summary left "in progress".
        let dirs = std::fs::read_dir(&store)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count();
        assert_eq!(dirs, 0, "{field}: a run started");
    }
}

#[test]
fn test_count_zero_is_refused() {
    let store = scratch("count-0");
    let out = run(tiny_test(&store, "correct", &["--test-count", "0"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--test-count 0"), "{}", stderr(&out));
}

#[test]
fn a_one_node_partition_warns() {
    let store = scratch("one-node-partition");
    let out = run(tiny_test(
        &store,
        "correct",
        &["--time-limit", "0.5", "--nemesis", "partition"],
    ));
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("warning: --nemesis partition: a 1-node cluster has no links to cut"),
        "{err}"
    );
}

#[test]
fn an_integer_beyond_64_bits_from_a_node_is_refused_not_rounded() {
    let store = scratch("huge-int");
    let out = run(tiny_test(&store, "huge", &["--time-limit", "0.5"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(latest(&store).join("history.jsonl")).unwrap();
    let refused = text
        .lines()
        .filter(|l| l.contains("node n1 sent the number 1180591620717411303424"))
        .count();
    assert!(refused > 0, "no read was refused");
    // Before: recorded as an ok read of 1.1805916207174113e21.
    assert!(!text.contains("e21"), "a rounded value was recorded");
}

/// A real, small tmpfs, unmounted when dropped (also when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount -t tmpfs failed (this test needs root)");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_the_run_at_once_naming_the_history() {
    let disk = Tmpfs::mount(scratch("disk-full").join("mnt"), "1m");
    // Before: the run went on for the whole minute, then blamed node-stats.json.
    let mut child = spawn_quiet(tiny_test(&disk.0, "correct", &["--time-limit", "60"]));
    let code = wait_exit(&mut child);
    let err = stderr_of(&mut child);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("history.jsonl: No space left on device"),
        "{err}"
    );
    assert!(err.contains("the run stopped at"), "{err}");
    assert!(!err.contains("node-stats.json"), "{err}");
}

/// `cmd` with its open-file limit set to `soft:hard` before it starts.
fn with_nofile(mut cmd: Command, soft: u64, hard: u64) -> Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let r = nix::libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if nix::libc::setrlimit(nix::libc::RLIMIT_NOFILE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

#[test]
fn a_too_low_open_file_limit_is_refused_with_the_number_needed() {
    let store = scratch("nofile-low");
    let cmd = tiny_test(&store, "correct", &["--nodes", "20", "--time-limit", "0.5"]);
    let out = run(with_nofile(cmd, 200, 200));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("a 20-node run needs about"), "{err}");
    assert!(err.contains("the limit is 200"), "{err}");
    assert!(
        !store.join("latest").exists(),
        "refused before the run folder"
    );
}

#[test]
fn the_soft_open_file_limit_is_raised_when_the_hard_one_allows() {
    let store = scratch("nofile-raise");
    // Eight proxied nodes need more than 150 descriptors: before, clients failed with EMFILE.
    // The tiny node does not replicate, so the history of eight is not checked (exit 3).
    let args = ["--nodes", "8", "--time-limit", "0.5", "--no-check"];
    let out = run(with_nofile(tiny_test(&store, "correct", &args), 150, 4096));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let log = std::fs::read_to_string(latest(&store).join("harness.log")).unwrap();
    assert!(log.contains("raised the open-file limit from 150"), "{log}");
    let history = std::fs::read_to_string(latest(&store).join("history.jsonl")).unwrap();
    assert!(!history.contains("Too many open files"));
}
