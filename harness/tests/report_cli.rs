//! `harness report`, `harness report --index` and `harness compare` as a user runs them, on
//! synthetic run folders, with fontconfig pointed at an empty configuration (no fonts at all, as
//! on a bare CI machine): the plots must still render their text.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output};

/// A scratch folder, removed when the test ends.
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("report-cli-{name}-"))
        .tempdir()
        .unwrap()
}

/// A run folder with 200 ops over 2 s, a partition in the middle, and the files `harness test` writes.
fn make_run(dir: &Path, variant: &str) {
    std::fs::create_dir_all(dir.join("nodes")).unwrap();
    let mut h = String::new();
    let mut i = 0;
    let mut line = |h: &mut String, t: u64, rest: &str| {
        let _ = writeln!(h, r#"{{"index":{i},"time":{t},{rest}}}"#);
        i += 1;
    };
    for n in 0..200u64 {
        let t = n * 10_000_000;
        if n == 80 {
            line(
                &mut h,
                t,
                r#""process":"nemesis","type":"info","f":"start-partition","value":"majority""#,
            );
        }
        if n == 120 {
            line(
                &mut h,
                t,
                r#""process":"nemesis","type":"info","f":"stop-partition","value":null"#,
            );
        }
        let f = ["read", "write"][(n % 2) as usize];
        line(
            &mut h,
            t,
            &format!(
                r#""process":{},"type":"invoke","f":"{f}","value":null"#,
                n % 4
            ),
        );
        let ty = if (80..120).contains(&n) { "info" } else { "ok" };
        let lat = 1_000_000 + (n % 7) * 500_000;
        line(
            &mut h,
            t + lat,
            &format!(r#""process":{},"type":"{ty}","f":"{f}","value":1"#, n % 4),
        );
    }
    std::fs::write(dir.join("history.jsonl"), h).unwrap();
    let test = format!(
        r#"{{"name":"cli","workload":"register","node_args":["--variant","{variant}"],"seed":1}}"#
    );
    std::fs::write(dir.join("test.json"), test).unwrap();
    std::fs::write(
        dir.join("results.json"),
        r#"{"test":"cli","verdict":"valid","explanation":"ok: fine","ops_per_sec":100.0,"latency_ms":{"p99":3.0}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("nodes/n1.log"), "hello\n").unwrap();
}

/// Runs the harness with no fonts available to fontconfig.
fn harness(args: &[&str], fonts: &Path) -> Output {
    std::fs::write(
        fonts.join("fonts.conf"),
        "<?xml version=\"1.0\"?>\n<!DOCTYPE fontconfig SYSTEM \"fonts.dtd\">\n<fontconfig></fontconfig>\n",
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .env("FONTCONFIG_FILE", fonts.join("fonts.conf"))
        .env("FONTCONFIG_PATH", fonts)
        .env("XDG_DATA_HOME", fonts)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn report_renders_plots_without_fonts() {
    let root_dir = tmp("fonts");
    let root = root_dir.path();
    let run = root.join("store/cli/20260101T000000.000Z");
    make_run(&run, "basic");
    let out = harness(&["report", s(&run)], root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("report.html"));
    for (f, words) in [
        (
            "latency-raw.svg",
            ["completion time (s)", "latency (ms, log)"],
        ),
        ("latency-quantiles.svg", ["time (s)", "latency (ms, log)"]),
        ("rate.svg", ["time (s)", "completions per second (ops/s)"]),
    ] {
        let svg = std::fs::read_to_string(run.join(f)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{f}"
        );
        for w in words {
            assert!(svg.contains(w), "{f} lacks axis label {w:?}");
        }
        assert!(
            svg.contains("partition (fault)"),
            "{f} lacks the fault legend"
        );
    }
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    for id in [
        "verdict", "config", "replay", "stats", "plots", "faults", "nodes", "files",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "report lacks #{id}");
    }
    // The run has no node stats: the report says so rather than failing.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("node-stats.json"), "{stderr}");
}

#[test]
fn index_and_compare_commands() {
    let root_dir = tmp("index");
    let root = root_dir.path();
    let store = root.join("store");
    let a = store.join("cli/20260101T000000.000Z");
    let b = store.join("cli/20260102T000000.000Z");
    make_run(&a, "basic");
    make_run(&b, "multi");
    let out = harness(&["report", "--index", "--store", s(&store)], root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(2 runs)"));
    let index = std::fs::read_to_string(store.join("index.html")).unwrap();
    let (pos_b, pos_a) = (
        index.find("20260102T000000.000Z").unwrap(),
        index.find("20260101T000000.000Z").unwrap(),
    );
    assert!(pos_b < pos_a, "newest run first");

    let cmp = root.join("cmp");
    let out = harness(&["compare", s(&a), s(&b), "-o", s(&cmp)], root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(cmp.join("index.html")).unwrap();
    assert!(page.contains("basic vs multi"));

    // Bad input: a clear error naming the problem, exit 2, no panic.
    let out = harness(&["report", s(&root.join("missing"))], root);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    let out = harness(&["compare", s(&a), "-o", s(&cmp)], root);
    assert_eq!(out.status.code(), Some(2));
    let out = harness(
        &["report", "--index", "--store", s(&root.join("nostore"))],
        root,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nostore"));
}

/// The real checker's verdict on a register history.
fn check_register(lines: &[&str]) -> checker::CheckResult {
    let events: Vec<_> = lines
        .iter()
        .map(|l| checker::history::parse_line(l).unwrap())
        .collect();
    let opts = checker::CheckOptions::default();
    workloads::check(workloads::Workload::Register, &events, &opts).unwrap()
}

/// The real checker's counterexample for an impossible read, drawn by the real report.
#[test]
fn invalid_run_draws_the_checkers_counterexample() {
    let root_dir = tmp("invalid");
    let root = root_dir.path();
    let run = root.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let lines = [
        r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","value":1}"#,
        r#"{"index":1,"time":1000000,"process":0,"type":"ok","f":"write","value":1}"#,
        r#"{"index":2,"time":2000000,"process":1,"type":"invoke","f":"write","value":3}"#,
        r#"{"index":3,"time":3000000,"process":1,"type":"ok","f":"write","value":3}"#,
        r#"{"index":4,"time":4000000,"process":2,"type":"invoke","f":"read","value":null}"#,
        r#"{"index":5,"time":5000000,"process":2,"type":"ok","f":"read","value":1}"#,
    ];
    std::fs::write(run.join("history.jsonl"), lines.join("\n") + "\n").unwrap();
    let check = check_register(&lines);
    assert_eq!(check.verdict, checker::Verdict::Invalid);
    let results = serde_json::json!({"test": "bad-read", "verdict": "invalid", "check": check});
    std::fs::write(run.join("results.json"), results.to_string()).unwrap();

    let out = harness(&["report", s(&run)], root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    let cx = &html[html
        .find("id=\"counterexample\"")
        .expect("counterexample section")..];
    let cx = &cx[..cx.find("</section>").unwrap()];
    let impossible = cx
        .find("class=\"op impossible\"")
        .expect("impossible op marked");
    assert!(cx[impossible..].contains("read"), "{cx}");
    assert!(cx.matches("class=\"op").count() >= 2, "{cx}");
    assert!(html.contains("class=\"banner invalid\""));
}

#[test]
fn analyze_rewrites_the_report_and_the_index() {
    let root_dir = tmp("analyze");
    let root = root_dir.path();
    let store = root.join("store");
    let run = store.join("cli/20260101T000000.000Z");
    make_run(&run, "basic");
    assert!(harness(&["report", "--index", "--store", s(&store)], root)
        .status
        .success());
    let before = std::fs::metadata(store.join("index.html"))
        .unwrap()
        .modified()
        .unwrap();
    assert!(!run.join("report.html").exists());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = harness(&["analyze", s(&run)], root);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("report: "), "{stdout}");
    assert!(run.join("report.html").is_file());
    let after = std::fs::metadata(store.join("index.html"))
        .unwrap()
        .modified()
        .unwrap();
    assert!(after > before, "index rewritten");
    let index = std::fs::read_to_string(store.join("index.html")).unwrap();
    assert!(index.contains("20260101T000000.000Z/report.html"));
}

/// The counterexample the real checker gives reads into the schema's type with nothing left
/// over, and is written back into results.json unchanged.
#[test]
fn the_checkers_counterexample_round_trips_through_the_schema() {
    let lines = [
        r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","value":1}"#,
        r#"{"index":1,"time":1000000,"process":0,"type":"ok","f":"write","value":1}"#,
        r#"{"index":2,"time":2000000,"process":1,"type":"invoke","f":"cas","value":[1,2]}"#,
        r#"{"index":3,"time":3000000,"process":1,"type":"info","f":"cas","value":[1,2]}"#,
        r#"{"index":4,"time":4000000,"process":2,"type":"invoke","f":"read","value":null}"#,
        r#"{"index":5,"time":5000000,"process":2,"type":"ok","f":"read","value":3}"#,
    ];
    let check = check_register(&lines);
    let v = check
        .counterexample
        .clone()
        .expect("an invalid check has one");
    let cx: checker::counterexample::Counterexample = serde_json::from_value(v.clone()).unwrap();
    assert!(cx.other.is_empty(), "untyped fields: {:?}", cx.other.keys());
    assert_eq!(serde_json::to_value(&cx).unwrap(), v);
    let record = report::run_files::CheckRecord::from(&check);
    let written = serde_json::to_value(&record).unwrap();
    assert_eq!(written, serde_json::to_value(&check).unwrap());
}
