//! `harness trend`: nights made from a real smoke suite's summary.json (tests/data/trend), with
//! noise, a real step and verdict changes; old and broken summaries among them.

mod cli_util;

use cli_util::{all_output, harness_on, read_json, scratch};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn real_summary() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/trend/smoke-summary.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A deterministic noise in [-1, 1).
fn noise(a: usize, b: usize) -> f64 {
    let x = ((a * 7919 + b * 104_729) % 1000) as f64;
    x / 500.0 - 1.0
}

/// Night `n` of `store/smoke/`: the real summary with ±4 % noise on every figure, one seeded-bug
/// run added (found), and `edit` applied to its runs.
fn night(store: &Path, n: usize, edit: impl Fn(&mut Vec<Value>)) -> PathBuf {
    let mut s = real_summary();
    let dir = store
        .join("smoke")
        .join(format!("2026010{}T02{n:02}00.000Z", n / 10));
    std::fs::create_dir_all(&dir).unwrap();
    s["started"] = json!(format!("2026-01-{:02}T02:17:00Z", n + 1));
    let runs = s["runs"].as_array_mut().unwrap();
    for (i, r) in runs.iter_mut().enumerate() {
        for (f, k) in [("ops_per_sec", 0), ("p99_ms", 1)] {
            let v = r[f].as_f64().unwrap();
            r[f] = json!(v * (1.0 + 0.04 * noise(n, i * 2 + k)));
        }
    }
    let mut bug = runs[0].clone();
    bug["name"] = json!("bug-multi-register-none-s1");
    bug["entry"] = json!("bug");
    bug["bugs"] = json!(["local-read"]);
    bug["expect"] = json!("invalid");
    bug["verdict"] = json!("invalid");
    bug["first_violation_s"] = json!(2.0 + n as f64 * 0.1);
    runs.push(bug);
    edit(runs);
    std::fs::write(dir.join("summary.json"), s.to_string()).unwrap();
    dir
}

fn trend(args: &[&str], dirs: &[&Path]) -> std::process::Output {
    harness_on(&[&["trend"][..], args].concat(), dirs)
}

const NIGHTS: usize = 14;

#[test]
fn the_last_nights_changes_alert_and_noise_does_not() {
    let root = scratch("trend-step");
    let store = root.join("results");
    for n in 0..NIGHTS - 1 {
        night(&store, n, |_| {});
    }
    // A report for one run of the first night, so its strip cell links to it.
    let first = store.join("smoke").join("20260100T020000.000Z");
    let rel = real_summary()["runs"][0]["report"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::create_dir_all(first.join(&rel).parent().unwrap()).unwrap();
    std::fs::write(first.join(&rel), "<html>the report</html>").unwrap();

    let out = root.join("out");
    let o = trend(
        &["--fail-on-regression", "--out", out.to_str().unwrap()],
        &[&store],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "only noise so far: {}",
        all_output(&o)
    );
    assert!(!all_output(&o).contains("ALERT"), "{}", all_output(&o));

    night(&store, NIGHTS - 1, |runs| {
        runs[3]["verdict"] = json!("invalid"); // faults-multi-register-partition: was valid
        runs[3]["outcome"] = json!("fail");
        runs[1]["verdict"] = json!("unknown"); // faults-basic-register-pause
        runs[1]["outcome"] = json!("unknown");
        let bug = runs.last_mut().unwrap();
        bug["verdict"] = json!("valid");
        bug["outcome"] = json!("fail");
        // The real step: multi register kill loses half its throughput and its p99 triples.
        runs[5]["ops_per_sec"] = json!(runs[5]["ops_per_sec"].as_f64().unwrap() * 0.5);
        runs[5]["p99_ms"] = json!(runs[5]["p99_ms"].as_f64().unwrap() * 3.0);
    });
    let o = trend(
        &["--fail-on-regression", "--out", out.to_str().unwrap()],
        &[&store],
    );
    let text = all_output(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let alerts: Vec<&str> = text.lines().filter(|l| l.starts_with("ALERT")).collect();
    let has = |kind: &str, subject: &str| {
        alerts
            .iter()
            .any(|l| l.starts_with(&format!("ALERT {kind} smoke {subject}")))
    };
    assert!(
        has("became-invalid", "faults-multi-register-partition-s1"),
        "{text}"
    );
    assert!(
        has("became-unknown", "faults-basic-register-pause-s1"),
        "{text}"
    );
    assert!(has("bug-not-found", "bug"), "{text}");
    assert!(has("throughput", "multi · register · kill"), "{text}");
    assert!(has("p99", "multi · register · kill"), "{text}");
    assert_eq!(
        alerts.len(),
        5,
        "nothing else moved beyond its noise: {text}"
    );

    let md = std::fs::read_to_string(out.join("trend.md")).unwrap();
    assert!(md.starts_with("## ❌ Trend: 5 regression alerts"), "{md}");
    assert!(md.contains("| bug-not-found | smoke | bug |"), "{md}");
    assert!(
        md.contains("median ± 3 · 1.4826 · MAD of the previous 14 nights"),
        "{md}"
    );

    let j = read_json(&out.join("trend.json"));
    let s = &j["suites"][0];
    assert_eq!(s["nights"].as_array().unwrap().len(), NIGHTS);
    assert_eq!(s["strips"].as_array().unwrap().len(), 9);
    assert_eq!(s["bugs"][0]["rate"][NIGHTS - 1], 0.0);
    assert_eq!(s["bugs"][0]["rate"][0], 1.0);
    let link = s["strips"][0]["cells"][0]["link"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join(link)).unwrap(),
        "<html>the report</html>",
        "links are relative to the page"
    );
    assert!(
        s["strips"][0]["cells"][1].get("link").is_none(),
        "no file, no link"
    );

    let html = std::fs::read_to_string(out.join("trend.html")).unwrap();
    assert!(html.contains(&format!("href=\"{link}\"")));
    assert!(
        !html.contains("<script src") && !html.contains("<link "),
        "self-contained"
    );
    // Without the flag, alerts are reported but the exit is 0.
    let o = trend(&["--out", out.to_str().unwrap()], &[&store]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn old_and_broken_summaries_are_listed_never_fatal() {
    let root = scratch("trend-old");
    let store = root.join("results");
    for n in 0..3 {
        night(&store, n, |_| {});
    }
    // Version 1: no schema_version, no p50, no entries, fewer fields per run.
    let old = store.join("smoke").join("20251231T021700.000Z");
    std::fs::create_dir_all(&old).unwrap();
    let v1 = json!({"suite": "smoke", "started": "2025-12-31T02:17:00Z", "runs": [
        {"name": "faults-basic-register-partition-s1", "outcome": "pass", "verdict": "valid",
         "expect": "valid", "variant": "basic", "workload": "register", "faults": "partition",
         "ops_per_sec": 400.0}]});
    std::fs::write(old.join("summary.json"), v1.to_string()).unwrap();
    let newer = store.join("smoke").join("future");
    std::fs::create_dir_all(&newer).unwrap();
    std::fs::write(
        newer.join("summary.json"),
        r#"{"schema_version": 9, "runs": []}"#,
    )
    .unwrap();
    let torn = store.join("smoke").join("torn");
    std::fs::create_dir_all(&torn).unwrap();
    std::fs::write(
        torn.join("summary.json"),
        r#"{"suite": "smoke", "runs": [{"na"#,
    )
    .unwrap();
    let nameless = store.join("smoke").join("nameless");
    std::fs::create_dir_all(&nameless).unwrap();
    std::fs::write(
        nameless.join("summary.json"),
        r#"{"runs": [{"outcome": 3}]}"#,
    )
    .unwrap();
    // `latest` links are not followed: the night it points at counts once.
    std::os::unix::fs::symlink(&old, store.join("smoke").join("latest")).unwrap();

    let out = root.join("out");
    let o = trend(&["--out", out.to_str().unwrap()], &[&store]);
    let text = all_output(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("future/summary.json: schema_version 9 is newer"),
        "{text}"
    );
    assert!(
        text.contains("torn/summary.json: not JSON of a summary (1:"),
        "{text}"
    );
    assert!(text.contains("nameless/summary.json: run 1:"), "{text}");
    let j = read_json(&out.join("trend.json"));
    let nights = j["suites"][0]["nights"].as_array().unwrap();
    assert_eq!(nights.len(), 4, "the old night and three new ones");
    assert_eq!(nights[0]["schema_version"], 1);
    assert_eq!(j["unreadable"].as_array().unwrap().len(), 3);
    let html = std::fs::read_to_string(out.join("trend.html")).unwrap();
    assert!(html.contains("Unreadable summaries") && html.contains("schema_version 9"));
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_missing_folder_is_bad_input() {
    let root = scratch("trend-missing");
    let o = trend(
        &["--out", root.join("o").to_str().unwrap()],
        &[&root.join("nope")],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        all_output(&o).contains("nope: No such file"),
        "{}",
        all_output(&o)
    );
    let o = trend(&["--band-k", "NaN"], &[&root]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        all_output(&o).contains("--band-k NaN"),
        "{}",
        all_output(&o)
    );
    std::fs::remove_dir_all(root).unwrap();
}

/// A real suite against the tiny node: both variants, two seeds, one cell.
fn tiny_variant_suite(root: &Path) -> PathBuf {
    let file = root.join("tiny.toml");
    let text = format!(
        "[defaults]\nnode_bin = {:?}\nnodes = 1\ntime_limit = 1\nrecovery_time = 0.2\n\
         concurrency = 3\nfaults = [\"none\"]\nseeds = [1, 2]\n\n[[test]]\nname = \"both\"\n\
         variants = [\"basic\", \"multi\"]\nnode_args = [\"--mode\", \"correct\"]\n",
        cli_util::tiny_node().display().to_string()
    );
    std::fs::write(&file, text).unwrap();
    let store = root.join("results");
    let o = harness_on(&["suite", "--store", store.to_str().unwrap()], &[&file]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    store.join("tiny").join("latest")
}

#[test]
fn suite_compare_puts_the_variants_of_each_cell_side_by_side() {
    let root = scratch("suite-compare");
    let night = tiny_variant_suite(&root);
    for _ in 0..2 {
        let o = harness_on(&["suite-compare"], &[&night]);
        assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
        assert!(
            all_output(&o).contains("suite-compare by variant: 1 cells"),
            "{}",
            all_output(&o)
        );
    }
    let md = std::fs::read_to_string(night.join("summary.md")).unwrap();
    assert!(
        md.starts_with("## ✅ Suite `tiny`"),
        "the suite's own summary stays first: {md}"
    );
    assert_eq!(
        md.matches("## basic vs multi by variant").count(),
        1,
        "replaced, not repeated: {md}"
    );
    let section = md.split("## basic vs multi by variant").nth(1).unwrap();
    assert!(section.contains("### both · register · none"), "{md}");
    let ops = section
        .lines()
        .find(|l| l.starts_with("| ops/s |"))
        .unwrap();
    assert_eq!(
        ops.matches("n=2").count(),
        2,
        "spread over two seeds a side: {ops}"
    );
    assert!(
        ops.ends_with("| **differs** |") || ops.ends_with("| within spread |"),
        "{ops}"
    );
    assert!(section.contains("| availability |"), "{md}");
    let html = std::fs::read_to_string(night.join("compare-variant/index.html")).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        2,
        "a CDF and an availability plot"
    );
    assert!(night.join("compare-variant/compare.md").is_file());

    // Two nights: each side has the runs of both.
    let out = root.join("two");
    let o = harness_on(
        &[
            "suite-compare",
            "--by",
            "seed",
            "--out",
            out.to_str().unwrap(),
        ],
        &[&night, &night],
    );
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.starts_with("## 1 vs 2 by seed"), "{md}");
    assert!(md.contains("### both · basic · register · none"), "{md}");
    let ops = md.lines().find(|l| l.starts_with("| ops/s |")).unwrap();
    assert_eq!(ops.matches("n=2").count(), 2, "{ops}");

    let o = harness_on(&["suite-compare", "--by", "net"], &[&night]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        all_output(&o).contains("--by net: every run has the same value (proxy)"),
        "{}",
        all_output(&o)
    );
    let o = harness_on(&["suite-compare"], &[&root]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        all_output(&o).contains("summary.json: cannot read"),
        "{}",
        all_output(&o)
    );
    std::fs::remove_dir_all(root).unwrap();
}
