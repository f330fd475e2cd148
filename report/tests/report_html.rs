//! Builds synthetic run folders (the shape the harness writes), generates their reports, index
//! and comparison, and parses the HTML to check every part is there, escaped, and that odd runs
//! say what is missing instead of failing.

use report::{compare, index};
use scraper::{Html, Selector};
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

/// A scratch folder, removed when the test ends.
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("report-html-{name}-"))
        .tempdir()
        .unwrap()
}

/// A small deterministic generator of client histories with a partition, a pause and a kill.
fn history(ops: usize, processes: u64, seed: u64) -> String {
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % 10_000) as f64 / 10_000.0
    };
    let ms = 1_000_000f64;
    let mut events: Vec<(u64, String)> = Vec::new();
    let per = ops / processes as usize;
    // Spread each process's ops over about 30 s.
    let gap = 30_000.0 * ms / per.max(1) as f64;
    for p in 0..processes {
        let mut t = p as f64 * 0.3 * ms;
        for i in 0..per {
            let f = ["read", "write", "cas"][(i + p as usize) % 3];
            let start = t;
            let faulty = (8_000.0..14_000.0).contains(&(t / ms));
            let lat = (0.5 + next() * 3.0) * ms * if faulty { 20.0 } else { 1.0 };
            let r = next();
            let (ty, lat) = if faulty && r < 0.2 {
                ("info", 1000.0 * ms)
            } else if faulty && r < 0.5 {
                ("fail", lat)
            } else {
                ("ok", lat)
            };
            let key = format!("k{}", i % 5);
            events.push((
                t as u64,
                format!(r#""process":{p},"type":"invoke","f":"{f}","key":"{key}","value":1"#),
            ));
            t += lat;
            events.push((
                t as u64,
                format!(
                    r#""process":{p},"type":"{ty}","f":"{f}","key":"{key}","value":1,"node":"n1""#
                ),
            ));
            t = t.max(start + gap * (0.5 + next()));
        }
    }
    let end = events.iter().map(|e| e.0).max().unwrap_or(0);
    for (at, f, v) in [
        (8_000, "start-partition", r#""majority""#),
        (14_000, "stop-partition", "null"),
        (18_000, "pause", r#"["n1"]"#),
        (21_000, "resume", r#"["n1"]"#),
        (24_000, "kill", r#"["n2"]"#),
        (26_000, "start", r#"["n2"]"#),
    ] {
        let at = at * 1_000_000;
        if at < end {
            events.push((
                at,
                format!(r#""process":"nemesis","type":"info","f":"{f}","value":{v}"#),
            ));
        }
    }
    events.sort_by_key(|e| e.0);
    let mut out = String::new();
    for (i, (t, rest)) in events.iter().enumerate() {
        let _ = writeln!(out, r#"{{"index":{i},"time":{t},{rest}}}"#);
    }
    out
}

struct RunSpec {
    ops: usize,
    verdict: &'static str,
    variant: &'static str,
    node_stats: bool,
    results: bool,
}

fn make_run(dir: &Path, s: RunSpec, seed: u64) {
    std::fs::create_dir_all(dir.join("nodes")).unwrap();
    std::fs::write(dir.join("history.jsonl"), history(s.ops, 4, seed)).unwrap();
    std::fs::write(dir.join("nodes/n1.log"), "started\n").unwrap();
    let test = json!({"name": "kv-faults", "workload": "kv", "nodes": 3, "variant": s.variant,
        "seed": seed, "faults": ["partition", "pause", "kill"], "note": "<script>alert(1)</script>"});
    std::fs::write(dir.join("test.json"), test.to_string()).unwrap();
    if s.results {
        let cx = json!({"key": "k1", "failing_op": {"index": 2},
        "ops": [
            {"index": 0, "process": 0, "f": "write", "value": 1, "invoke_time": 0, "complete_time": 10},
            {"index": 1, "process": 1, "f": "write", "value": 2, "invoke_time": 12, "complete_time": 20},
            {"index": 2, "process": 2, "f": "read", "value": 1, "invoke_time": 22, "complete_time": 30},
        ]});
        let r = json!({"test": "kv-faults", "verdict": s.verdict,
            "check": {"verdict": s.verdict, "keys": 5, "ops": s.ops, "states_explored": 10, "elapsed_ms": 1.0,
                "explanation": "key k1: read 1 <after> write 2 completed",
                "counterexample": if s.verdict == "invalid" { cx } else { serde_json::Value::Null }},
            "ops_per_sec": 100.0, "latency_ms": {"p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 4.0},
            "started": "2026-11-22T19:00:00Z", "duration_s": 30.0});
        std::fs::write(dir.join("results.json"), r.to_string()).unwrap();
    }
    if s.node_stats {
        let ns = json!({"n1": {"msgs_sent": 3000, "leader_changes": 2, "phase1_rounds": 5},
            "n2": {"msgs_sent": 2000}, "n3": null});
        std::fs::write(dir.join("node-stats.json"), ns.to_string()).unwrap();
    }
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text(doc: &Html, s: &str) -> String {
    doc.select(&sel(s))
        .flat_map(|e| e.text())
        .collect::<Vec<_>>()
        .join(" ")
}

fn count(doc: &Html, s: &str) -> usize {
    doc.select(&sel(s)).count()
}

fn spec(ops: usize, verdict: &'static str) -> RunSpec {
    RunSpec {
        ops,
        verdict,
        variant: "multi",
        node_stats: true,
        results: true,
    }
}

#[test]
fn invalid_run_report_has_every_part() {
    let d_dir = tmp("invalid");
    let d = d_dir.path();
    make_run(d, spec(4000, "invalid"), 7);
    let w = report::write_run_report(d).unwrap();
    let doc = Html::parse_document(&std::fs::read_to_string(&w.report).unwrap());
    // Verdict banner with the checker's words, escaped.
    assert_eq!(count(&doc, "header#verdict.invalid"), 1);
    assert!(text(&doc, "#verdict").contains("read 1 <after> write 2"));
    assert_eq!(count(&doc, "script"), 0, "text from files must be escaped");
    // Counterexample timeline: three ops, the impossible one marked, a key history link.
    assert_eq!(count(&doc, "#counterexample svg g.op"), 3);
    assert_eq!(count(&doc, "#counterexample svg g.impossible"), 1);
    assert!(text(&doc, "#counterexample g.impossible").contains("read 1"));
    assert_eq!(
        count(&doc, "#counterexample a[href='history-key-k1.jsonl']"),
        1
    );
    assert!(d.join("history-key-k1.jsonl").is_file());
    // Configuration and the replay command.
    assert!(text(&doc, "#config").contains("multi"));
    assert!(text(&doc, "#replay").starts_with("harness test --replay /"));
    // Stats tables: one row per f plus the total; periods quiet + each fault kind.
    assert_eq!(count(&doc, "#counts tr"), 1 + 3 + 1);
    let periods = text(&doc, "#availability");
    for p in ["all", "quiet", "partition", "pause", "kill"] {
        assert!(periods.contains(p), "{p} missing from {periods}");
    }
    // Plots inline, axes labelled, fault legend.
    for id in ["latency-raw", "latency-quantiles", "rate"] {
        let svg = text(&doc, &format!("figure#{id} svg"));
        assert!(
            svg.contains("time (s)") && svg.contains("partition (fault)"),
            "{id}: {svg}"
        );
        assert!(d.join(format!("{id}.svg")).is_file());
    }
    // Fault timeline, node stats, links.
    assert_eq!(count(&doc, "#faults svg"), 1);
    assert!(text(&doc, "#node-summary").contains("2"));
    assert!(text(&doc, "#node-stats").contains("no answer"));
    assert_eq!(count(&doc, "#files a[href='nodes/n1.log']"), 1);
    assert_eq!(count(&doc, "#files a[href='history.jsonl']"), 1);
    assert!(w.notes.iter().any(|n| n.contains("n3")), "{:?}", w.notes);
}

#[test]
fn odd_runs_say_what_is_missing() {
    // Empty history, no results, no node stats.
    let d_dir = tmp("empty");
    let d = d_dir.path();
    std::fs::write(d.join("history.jsonl"), "").unwrap();
    let w = report::write_run_report(d).unwrap();
    let doc = Html::parse_document(&std::fs::read_to_string(&w.report).unwrap());
    assert_eq!(count(&doc, "header#verdict.unchecked"), 1);
    let notes = text(&doc, "#notes");
    assert!(notes.contains("no results.json"), "{notes}");
    assert!(notes.contains("no test.json"), "{notes}");
    assert!(notes.contains("history is empty"), "{notes}");
    assert!(text(&doc, "#nodes").contains("node-stats.json is missing"));

    // No history at all.
    let d_dir = tmp("nohistory");
    let d = d_dir.path();
    let w = report::write_run_report(d).unwrap();
    assert!(
        w.notes.iter().any(|n| n.contains("no history.jsonl")),
        "{:?}",
        w.notes
    );

    // Aborted: truncated last line and ops never completed.
    let d_dir = tmp("aborted");
    let d = d_dir.path();
    make_run(
        d,
        RunSpec {
            ops: 40,
            verdict: "valid",
            variant: "basic",
            node_stats: false,
            results: false,
        },
        3,
    );
    let mut h = std::fs::read_to_string(d.join("history.jsonl")).unwrap();
    h.push_str(r#"{"index":999,"time":99999999999,"process":0,"type":"invoke","f":"read"}"#);
    h.push('\n');
    h.push_str(r#"{"index":1000,"time":99999999999,"proc"#);
    std::fs::write(d.join("history.jsonl"), h).unwrap();
    let w = report::write_run_report(d).unwrap();
    let all = w.notes.join("\n");
    assert!(all.contains("history.jsonl:"), "{all}");
    assert!(all.contains("cut short"), "{all}");
    assert!(all.contains("never completed"), "{all}");

    // Every op failing.
    let d_dir = tmp("allfail");
    let d = d_dir.path();
    let mut h = String::new();
    for i in 0..10u64 {
        let _ = writeln!(
            h,
            r#"{{"index":{},"time":{},"process":0,"type":"invoke","f":"write","value":1}}"#,
            2 * i,
            i * 1000
        );
        let _ = writeln!(
            h,
            r#"{{"index":{},"time":{},"process":0,"type":"fail","f":"write","value":1}}"#,
            2 * i + 1,
            i * 1000 + 500
        );
    }
    std::fs::write(d.join("history.jsonl"), h).unwrap();
    let w = report::write_run_report(d).unwrap();
    assert!(w.notes.iter().any(|n| n.contains("no operation succeeded")));
    let doc = Html::parse_document(&std::fs::read_to_string(&w.report).unwrap());
    assert!(text(&doc, "#availability").contains("0.0%"));

    // One op.
    let d_dir = tmp("oneop");
    let d = d_dir.path();
    std::fs::write(
        d.join("history.jsonl"),
        "{\"index\":0,\"time\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n\
         {\"index\":1,\"time\":5,\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":null}\n",
    )
    .unwrap();
    let w = report::write_run_report(d).unwrap();
    let doc = Html::parse_document(&std::fs::read_to_string(&w.report).unwrap());
    assert_eq!(count(&doc, "#counts tr"), 3);

    // Not a folder.
    let err = report::write_run_report(Path::new("/nonexistent/run"))
        .err()
        .unwrap();
    assert!(err.contains("/nonexistent/run"), "{err}");
}

#[test]
fn index_and_comparison_pages() {
    let store_dir = tmp("store");
    let store = store_dir.path();
    let mut dirs = Vec::new();
    for (i, variant) in ["basic", "basic", "multi", "multi"].iter().enumerate() {
        let d = store
            .join("kv-faults")
            .join(format!("2026112{i}T000000.000Z"));
        make_run(
            &d,
            RunSpec {
                ops: 800,
                verdict: "valid",
                variant,
                node_stats: i != 0,
                results: true,
            },
            i as u64 + 1,
        );
        report::write_run_report(&d).unwrap();
        dirs.push(d);
    }
    let (path, n) = index::write_index(store).unwrap();
    assert_eq!(n, 4);
    let doc = Html::parse_document(&std::fs::read_to_string(path).unwrap());
    let links: Vec<_> = doc
        .select(&sel("#runs a"))
        .map(|a| a.value().attr("href").unwrap().to_string())
        .collect();
    assert_eq!(links[0], "kv-faults/20261123T000000.000Z/report.html");
    assert_eq!(links.len(), 4);

    let out = store.join("cmp");
    let page = compare::write_comparison(&dirs, &out).unwrap();
    let doc = Html::parse_document(&std::fs::read_to_string(page).unwrap());
    assert!(text(&doc, "h1").contains("basic vs multi"));
    assert_eq!(count(&doc, "#runs tr"), 5);
    assert_eq!(count(&doc, "#spread tr"), 3);
    assert!(text(&doc, "figure#cdf svg").contains("latency (ms, log)"));
    // Same schedule in every run: the throughput plot shades it.
    assert!(text(&doc, "figure#throughput svg").contains("partition (fault)"));
    let periods = text(&doc, "#periods");
    assert!(periods.contains("quiet") && periods.contains("partition"));
    assert!(out.join("latency-cdf.svg").is_file());
    assert!(compare::write_comparison(&dirs[..1], &out).is_err());
}
