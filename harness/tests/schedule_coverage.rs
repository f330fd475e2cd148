//! Every requested fault kind shows up in every run: the seeded schedule gives each kind a window
//! before any kind repeats, and each kind's targets take turns; a time limit too short for one
//! window per kind is refused with the shortest one that fits. The last test runs a real
//! `paxos-node` cluster with the default kinds and reads its report.

mod cli_util;

use cli_util::{all_output, build_paxos_node, harness, latest, read_json, run, scratch};
use harness::schedule::packet::Amounts;
use harness::schedule::{generate, generate_with, FaultKind, Kinds, Plan, Schedule, Targets};
use std::collections::BTreeSet;
use std::process::Command;

fn nodes(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

fn schedule(ns: &[String], kinds: &str, seed: u64, interval_s: f64, limit_s: f64) -> Schedule {
    let k: Kinds = kinds.parse().unwrap();
    generate(&Plan {
        seed,
        nodes: ns,
        kinds: &k,
        targets: &Targets::default(),
        interval_s,
        time_limit_s: limit_s,
        turn: None,
        spares: &[],
    })
    .unwrap()
}

fn kinds_of(s: &Schedule) -> BTreeSet<FaultKind> {
    s.windows.iter().map(|w| w.fault.kind()).collect()
}

/// The issue's example: this seed used to draw no pause at all.
#[test]
fn the_issues_example_gets_all_three_kinds() {
    let s = schedule(&nodes(5), "partition,pause,kill", 7, 5.0, 60.0);
    let want: BTreeSet<FaultKind> = [FaultKind::Partition, FaultKind::Pause, FaultKind::Kill]
        .into_iter()
        .collect();
    assert_eq!(kinds_of(&s), want, "{:?}", s.windows);
    // The first three windows are the three kinds, once each.
    let first: BTreeSet<FaultKind> = s.windows[..3].iter().map(|w| w.fault.kind()).collect();
    assert_eq!(first, want);
}

/// Over many seeds, kind sets, cluster sizes and time limits from the shortest that fits: the
/// first `k` windows hold each of the `k` kinds once, every later run of `k` windows too, each
/// kind's targets do not repeat before all came up, and the periods keep their bounds.
#[test]
fn every_kind_comes_before_any_repeats_over_many_seeds() {
    let kind_sets = [
        "partition,pause,kill",
        "pause,kill,clock",
        "partition,pause,kill,clock",
        "partition,pause,kill,loss,dup,rate,clock",
    ];
    for set in kind_sets {
        let k: Kinds = set.parse().unwrap();
        for n in [1, 3, 5] {
            let ns = nodes(n);
            for seed in 0..150u64 {
                let interval = [0.5, 2.0, 5.0][seed as usize % 3];
                let kinds = harness::schedule::draw::usable(
                    &Plan {
                        seed,
                        nodes: &ns,
                        kinds: &k,
                        targets: &Targets::default(),
                        interval_s: interval,
                        time_limit_s: 1.0,
                        turn: None,
                        spares: &[],
                    },
                    &Amounts::default(),
                );
                let shortest = kinds.len() as f64 * interval;
                let limit = shortest * [1.0, 1.3, 2.0, 6.0][(seed / 3) as usize % 4];
                let s = schedule(&ns, set, seed, interval, limit);
                let ctx = format!("{set} n={n} seed={seed} interval={interval} limit={limit}");
                check_rounds(&s, kinds.len(), &ctx);
                check_targets(&s, &kinds, &ctx);
                check_periods(&s, interval, limit, &ctx);
            }
        }
    }
}

fn check_rounds(s: &Schedule, k: usize, ctx: &str) {
    assert!(s.windows.len() >= k, "{ctx}: {} windows", s.windows.len());
    for round in s.windows.chunks(k).filter(|c| c.len() == k) {
        let seen: BTreeSet<FaultKind> = round.iter().map(|w| w.fault.kind()).collect();
        assert_eq!(seen.len(), k, "{ctx}: a kind repeats in {round:?}");
    }
}

fn check_targets(s: &Schedule, kinds: &[(FaultKind, Vec<harness::schedule::Target>)], ctx: &str) {
    for (kind, targets) in kinds {
        let drawn: Vec<_> = s
            .windows
            .iter()
            .filter(|w| w.fault.kind() == *kind)
            .map(|w| w.fault.target())
            .collect();
        for round in drawn.chunks(targets.len()) {
            let seen: BTreeSet<_> = round.iter().collect();
            assert_eq!(seen.len(), round.len(), "{ctx}: {kind} targets {drawn:?}");
        }
    }
}

fn check_periods(s: &Schedule, interval: f64, limit: f64, ctx: &str) {
    let mut prev = 0.0;
    for w in &s.windows {
        assert!(
            w.start_s >= prev + interval / 2.0 - 0.002,
            "{ctx}: quiet gap before {w:?}"
        );
        assert!(
            w.stop_s <= limit + 1e-9 && w.stop_s > w.start_s,
            "{ctx}: {w:?}"
        );
        assert!(
            w.stop_s - w.start_s <= 1.5 * interval + 0.002,
            "{ctx}: {w:?}"
        );
        prev = w.stop_s;
    }
}

#[test]
fn schedules_are_seeded_and_replayable() {
    let ns = nodes(5);
    let a = schedule(&ns, "partition,pause,kill,clock", 11, 2.0, 40.0);
    assert_eq!(
        a,
        schedule(&ns, "partition,pause,kill,clock", 11, 2.0, 40.0)
    );
    assert_ne!(
        a.windows,
        schedule(&ns, "partition,pause,kill,clock", 12, 2.0, 40.0).windows
    );
}

#[test]
fn a_time_limit_too_short_for_every_kind_is_refused_by_the_library() {
    let ns = nodes(3);
    let k: Kinds = "partition,pause,kill".parse().unwrap();
    let e = generate_with(
        &Plan {
            seed: 1,
            nodes: &ns,
            kinds: &k,
            targets: &Targets::default(),
            interval_s: 5.0,
            time_limit_s: 14.0,
            turn: None,
            spares: &[],
        },
        &Amounts::default(),
    )
    .unwrap_err();
    assert!(e.contains("--time-limit 15 or more"), "{e}");
}

#[test]
fn a_time_limit_too_short_for_every_kind_exits_2_naming_the_shortest_that_fits() {
    let store = scratch("coverage-too-short");
    let out = run(cli_util::tiny_test(
        &store,
        "correct",
        &[
            "--nodes",
            "3",
            "--nemesis",
            "partition,pause,kill",
            "--nemesis-interval",
            "5",
            "--time-limit",
            "10",
        ],
    ));
    assert_eq!(out.status.code(), Some(2));
    let text = all_output(&out);
    assert!(
        text.contains("--time-limit 10 is too short")
            && text.contains("use --time-limit 15 or more")
            && text.contains("--nemesis-interval 3.333 or less"),
        "{text}"
    );
    // Refused before anything ran: no run folder.
    let made = std::fs::read_dir(&store).unwrap().count();
    assert_eq!(made, 0, "the store holds {made} entries");
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn the_help_says_what_happens_when_the_time_is_short() {
    let out = Command::new(harness())
        .args(["test", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("gets a window before any kind repeats") && help.contains("is refused"),
        "{help}"
    );
}

/// The default kinds and interval on a real cluster, at the shortest time limit that fits them
/// (3 kinds × 3 s): the report's fault timeline shows all three.
#[test]
fn a_default_run_reports_every_default_kind() {
    build_paxos_node();
    let store = scratch("coverage-default");
    let out = run({
        let mut c = Command::new(harness());
        c.args(["test", "--nodes", "3", "--time-limit", "9", "--seed", "7"])
            .args(["--recovery-time", "1", "--concurrency", "4"])
            .arg("--store")
            .arg(&store);
        c
    });
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let dir = latest(&store);
    let sched = read_json(&dir.join("schedule.json"));
    let kinds: BTreeSet<&str> = sched["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["kill", "partition", "pause"].into_iter().collect());
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let timeline = &report[report.find("Fault timeline").expect("a fault timeline")..];
    for kind in ["partition", "pause", "kill"] {
        assert!(
            timeline.contains(&format!("<td>{kind}</td>")),
            "{kind} missing from the report's fault intervals"
        );
    }
    let _ = std::fs::remove_dir_all(&store);
}
