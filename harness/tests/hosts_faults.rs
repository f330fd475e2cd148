//! Faults on SSH hosts beyond partition, pause and kill (packet faults, clock), privileges, the
//! binary cache, and a benchmark of setup and fault-step costs, on the namespace hosts of
//! [`ssh_bed`].

mod cli_util;
mod ssh_bed;

use cli_util::*;
use ssh_bed::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `harness test --hosts FILE` (or a local run without `file`) with `bin` on `nodes` nodes.
fn test_cmd(
    bin: &Path,
    file: Option<&Path>,
    store: &Path,
    nodes: usize,
    extra: &[&str],
) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("test");
    if let Some(f) = file {
        cmd.arg("--hosts").arg(f);
    }
    cmd.arg("--node-bin")
        .arg(paxos_node())
        .args(["--nodes", &nodes.to_string(), "--recovery-time", "1"])
        .args([
            "--concurrency",
            &nodes.to_string(),
            "--nemesis-interval",
            "1",
        ])
        .args(["--quiet", "--store"])
        .arg(store)
        .args(extra);
    cmd
}

// ---------------------------------------------------------------------------------------------
// Benchmark (ignored: run it by name). Speed is measured here, never asserted.

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One run: seconds from spawning the harness to its first op (history.jsonl's first line), and
/// each fault step's ms from its scheduled time to its event in the history, by event name.
fn timed_run(cmd: &mut Command, store: &Path) -> (f64, Vec<(String, f64)>) {
    let t = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let history = store.join("latest").join("history.jsonl");
    let mut first = None;
    let ended = wait_until(Duration::from_secs(300), || {
        if first.is_none() && std::fs::metadata(&history).is_ok_and(|m| m.len() > 0) {
            first = Some(t.elapsed().as_secs_f64());
        }
        matches!(child.try_wait(), Ok(Some(_)))
    });
    assert!(ended, "the run did not end");
    let dir = latest(store);
    (first.expect("an op"), step_costs(&dir))
}

/// Each nemesis event's delay after the scheduled start (or stop) of its window, in ms.
fn step_costs(dir: &Path) -> Vec<(String, f64)> {
    let schedule = read_json(&dir.join("schedule.json"));
    let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| e["process"] == "nemesis")
        .collect();
    let mut out = Vec::new();
    for (f, kind, edge) in [
        ("pause", "pause", "start_s"),
        ("resume", "pause", "stop_s"),
        ("kill", "kill", "start_s"),
        ("start-partition", "partition", "start_s"),
        ("stop-partition", "partition", "stop_s"),
    ] {
        let windows = schedule["windows"].as_array().unwrap().iter();
        let at: Vec<f64> = windows
            .filter(|w| w["kind"] == kind)
            .map(|w| w[edge].as_f64().unwrap())
            .collect();
        let seen = events.iter().filter(|e| e["f"] == f);
        for (e, s) in seen.zip(at) {
            let ms = e["time"].as_f64().unwrap() / 1e6 - s * 1000.0;
            out.push((f.to_string(), ms));
        }
    }
    out
}

/// Where a run's setup went: the setup lines of harness.log, in seconds after the first.
fn timeline(dir: &Path) {
    let log = std::fs::read_to_string(dir.join("harness.log")).unwrap_or_default();
    let secs = |l: &str| {
        let t = l.split_whitespace().next()?;
        let hms = t.split('T').nth(1)?.trim_end_matches('Z');
        let mut p = hms.split(':').map(|x| x.parse::<f64>().ok());
        Some(p.next()?? * 3600.0 + p.next()?? * 60.0 + p.next()??)
    };
    let Some(t0) = log.lines().next().and_then(secs) else {
        return;
    };
    eprintln!("setup of {}:", dir.display());
    let marks = [
        "run starting",
        "binary",
        "host ready",
        "started on its host",
        "node ready",
    ];
    for l in log.lines().filter(|l| marks.iter().any(|m| l.contains(m))) {
        let what = l.split_once("  ").map_or(l, |x| x.1);
        let what: String = what.chars().take(90).collect();
        eprintln!("  +{:.3} s {what}", secs(l).unwrap_or(t0) - t0);
    }
}

/// `HOSTS_BENCH_BEFORE=/path/to/old/harness cargo test -p harness --test hosts_faults --
/// --ignored --nocapture bench`: time to first op on 5 hosts for the old binary, this one with a
/// cold binary cache and with a warm one (runs interleaved), and each fault step's cost on
/// hosts and locally. `HOSTS_BENCH_RUNS` runs of each (default 5); `HOSTS_BENCH_AFTER` names
/// the new binary (default: this build's).
#[test]
#[ignore]
fn bench_setup_and_fault_steps_on_five_hosts() {
    let _one = serial();
    let bed = SshBed::new("bench", 5);
    let file = bed.hosts_file("hosts.toml", &[]);
    let runs: usize = std::env::var("HOSTS_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let before = std::env::var_os("HOSTS_BENCH_BEFORE").map(PathBuf::from);
    // A copy, so that a rebuild while the benchmark runs does not change what it measures.
    let after = std::env::var_os("HOSTS_BENCH_AFTER").map_or_else(harness, PathBuf::from);
    let args = [
        "--time-limit",
        "8",
        "--nemesis",
        "partition,pause,kill",
        "--nemesis-targets",
        "majority",
        "--seed",
        "2",
    ];
    let mut variants: Vec<(&str, PathBuf, Option<&Path>, bool)> = Vec::new();
    if let Some(b) = &before {
        variants.push(("before", b.clone(), Some(&file), true));
    }
    variants.push(("after, cold cache", after.clone(), Some(&file), true));
    variants.push(("after, warm cache", after.clone(), Some(&file), false));
    variants.push(("local", after, None, false));
    let mut first: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut steps: Vec<Vec<(String, f64)>> = vec![Vec::new(); variants.len()];
    for r in 0..runs {
        for (v, (name, bin, hosts, cold)) in variants.iter().enumerate() {
            if *cold {
                let _ = std::fs::remove_dir_all("/tmp/harness-cache");
            }
            let store = scratch(&format!("bench-{v}-{r}"));
            let (t, s) = timed_run(&mut test_cmd(bin, *hosts, &store, 5, &args), &store);
            eprintln!("run {r} {name}: first op after {t:.2} s");
            first[v].push(t);
            steps[v].extend(s);
            if r + 1 == runs && hosts.is_some() && !cold {
                timeline(&latest(&store));
            }
            let _ = std::fs::remove_dir_all(&store);
        }
    }
    eprintln!("\ntime to first op, 5 nodes, median of {runs} (min-max):");
    for (v, (name, ..)) in variants.iter().enumerate() {
        let f = &first[v];
        let (lo, hi) = f
            .iter()
            .fold((f64::MAX, 0.0f64), |(l, h), x| (l.min(*x), h.max(*x)));
        eprintln!(
            "  {name:<18} {:6.2} s  ({lo:.2}-{hi:.2})",
            median(f.clone())
        );
    }
    eprintln!("\nfault step, ms from its scheduled time to its history event, median (n):");
    for f in [
        "pause",
        "resume",
        "kill",
        "start-partition",
        "stop-partition",
    ] {
        let cells: Vec<String> = variants
            .iter()
            .enumerate()
            .map(|(v, (name, ..))| {
                let xs: Vec<f64> = steps[v].iter().filter(|s| s.0 == f).map(|s| s.1).collect();
                format!("{name}: {:.1} ({})", median(xs.clone()), xs.len())
            })
            .collect();
        eprintln!("  {f:<16} {}", cells.join(" | "));
    }
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// `cmd` run in host `i`'s namespace (the hosts' rules live there).
fn in_host(bed: &SshBed, i: usize, cmd: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &bed.net.nodes[i].ns])
        .args(cmd)
        .output()
        .expect("run ip netns exec");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the hosts' packet rules hold now: (a loss rule, a dup rule, a tbf qdisc) on any host.
fn packet_rules_now(bed: &SshBed) -> [bool; 3] {
    let mut seen = [false; 3];
    for i in 0..bed.net.nodes.len() {
        let table = in_host(bed, i, &["nft", "list", "table", "ip", "jepsen_packet"]);
        seen[0] |= table.contains("numgen random") && table.contains("drop");
        seen[1] |= table.contains("dup to");
        seen[2] |= in_host(bed, i, &["tc", "qdisc", "show", "dev", "eth0"]).contains("tbf");
    }
    seen
}

fn ssh_test(file: &Path, store: &Path, extra: &[&str]) -> Command {
    test_cmd(&harness(), Some(file), store, 3, extra)
}

/// loss, dup, rate and clock on the 3 hosts: each window's rules are seen on the hosts while the
/// run goes, every clock window moved a remote node's clock (libfaketime on the host), the run
/// is valid and no rule outlives it. The node binary is copied the first time and only then.
#[test]
fn packet_and_clock_faults_reach_the_hosts_and_leave_no_rules() {
    let _one = serial();
    let bed = SshBed::new("packet", 3);
    let file = bed.hosts_file("hosts.toml", &[]);
    for n in ["n1", "n2", "n3"] {
        let _ = std::fs::remove_dir_all(Path::new("/tmp/harness-cache").join(n));
    }
    let check = Command::new(harness())
        .args([
            "hosts",
            "check",
            "--nemesis",
            "loss,dup,rate,clock",
            "--node-bin",
        ])
        .arg(paxos_node())
        .arg(&file)
        .output()
        .unwrap();
    let text = all_output(&check);
    assert!(check.status.success(), "{text}");
    assert!(
        text.contains("faketime") && text.matches(" yes ").count() == 3,
        "{text}"
    );

    let store = scratch("ssh-packet");
    let args = [
        "--time-limit",
        "10",
        "--nemesis",
        "loss,dup,rate,clock",
        "--seed",
        "3",
    ];
    let mut child = ssh_test(&file, &store, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut seen = [false; 3];
    let ended = wait_until(Duration::from_secs(180), || {
        let now = packet_rules_now(&bed);
        (0..3).for_each(|k| seen[k] |= now[k]);
        matches!(child.try_wait(), Ok(Some(_)))
    });
    assert!(ended, "the run did not end");
    let dir = latest(&store);
    let log = std::fs::read_to_string(dir.join("harness.log")).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0), "{log}");
    assert_eq!(
        seen, [true; 3],
        "loss, dup and rate rules seen on the hosts"
    );
    assert!(!log.contains("rules failed"), "{log}");
    assert_eq!(
        log.matches("node binary copied to the host").count(),
        3,
        "{log}"
    );

    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    for f in [
        "start-loss",
        "stop-loss",
        "start-dup",
        "start-rate",
        "start-clock",
    ] {
        assert!(history.contains(&format!("\"f\":\"{f}\"")), "no {f}");
    }
    // Every clock window starts at least a quarter of --nemesis-clock-offset (10 s) off.
    let clocks: Vec<serde_json::Value> = history
        .lines()
        .filter(|l| l.contains("\"start-clock\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for c in &clocks {
        let seen = c["value"]["observed_offset_ms"].as_object().unwrap();
        assert!(!seen.is_empty(), "{c}");
        assert!(
            seen.values().any(|v| v.as_f64().unwrap().abs() > 1000.0),
            "no node's clock moved: {c}"
        );
    }
    assert_eq!(
        packet_rules_now(&bed),
        [false; 3],
        "rules left on the hosts"
    );
    assert!(!remote_dir(&dir).exists());

    // A second run finds the binary in each host's cache.
    let out = cli_util::run(ssh_test(
        &file,
        &store,
        &["--time-limit", "1", "--nemesis", "none"],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let log = std::fs::read_to_string(latest(&store).join("harness.log")).unwrap();
    assert_eq!(
        log.matches("already on the host (same sha256): not copied")
            .count(),
        3,
        "{log}"
    );
    assert!(!log.contains("node binary copied"), "{log}");
    std::fs::remove_dir_all(&store).unwrap();
}

/// Host n2 logged in as a user without root or sudo (scripts/setup adds `harness-nopriv`): a
/// partition run is refused before any node starts, naming the host and what it lacks, and the
/// hosts keep nothing.
#[test]
fn a_partition_on_a_host_without_root_or_sudo_is_refused() {
    let _one = serial();
    let uid = Command::new("id")
        .args(["-u", "harness-nopriv"])
        .output()
        .unwrap();
    assert!(
        uid.status.success(),
        "no user harness-nopriv: run scripts/setup first"
    );
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_string();
    let bed = SshBed::new("nopriv", 3);
    let store = scratch("ssh-nopriv");
    // With sudo = true the reason depends on whether this machine has sudo at all.
    for (name, sudo, why) in [
        ("nosudo.toml", "sudo = false", &["and sudo = false"][..]),
        (
            "sudo.toml",
            "sudo = true",
            &["and sudo is not installed", "and `sudo -n true` fails"][..],
        ),
    ] {
        let file = bed.hosts_file(name, &[(1, "user = \"harness-nopriv\""), (1, sudo)]);
        let args = ["--time-limit", "2", "--nemesis", "partition"];
        let out = cli_util::run(ssh_test(&file, &store, &args));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("host n2: partitions"), "{err}");
        assert!(err.contains("need root or passwordless sudo"), "{err}");
        assert!(
            why.iter().any(|w| err.contains(&format!("uid {uid}, {w}"))),
            "{err}"
        );
        assert!(
            !err.contains("host n1") && !err.contains("host n3"),
            "{err}"
        );
        assert!(
            !remote_dir(&latest(&store)).exists(),
            "the hosts keep the copy"
        );
    }
    std::fs::remove_dir_all(&store).unwrap();
}
