//! `harness check` and `harness analyze` through the real binary: verdicts and exit codes on small
//! histories, and bad input that must name `file:line` and exit 2 (never a panic).

mod cli_util;
use cli_util::{all_output, harness_on};
use serde_json::{json, Value};
use std::path::PathBuf;

/// A fresh scratch folder under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("harness-check-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An event line of our format.
fn ev(p: u64, kind: &str, f: &str, value: Value) -> String {
    json!({"index": 0, "time": 0, "process": p, "type": kind, "f": f, "value": value}).to_string()
}

fn lines(events: &[String]) -> String {
    events.join("\n") + "\n"
}

fn valid_history() -> String {
    lines(&[
        ev(0, "invoke", "write", json!(1)),
        ev(0, "ok", "write", json!(1)),
        ev(1, "invoke", "read", Value::Null),
        ev(1, "ok", "read", json!(1)),
    ])
}

fn invalid_history() -> String {
    lines(&[
        ev(0, "invoke", "write", json!(1)),
        ev(0, "ok", "write", json!(1)),
        ev(1, "invoke", "read", Value::Null),
        ev(1, "ok", "read", json!(2)),
    ])
}

#[test]
fn verdicts_and_exit_codes() {
    let s = Scratch::new("verdicts");
    let good = s.file("good.jsonl", &valid_history());
    let bad = s.file("bad.jsonl", &invalid_history());
    let empty = s.file("empty.jsonl", "");
    // An empty history is no evidence (issue 13): EMPTY, exit 3, next to a valid file.
    let o = harness_on(&["check"], &[&good, &empty]);
    assert_eq!(o.status.code(), Some(3), "{}", all_output(&o));
    assert!(
        all_output(&o).contains("good.jsonl: VALID"),
        "{}",
        all_output(&o)
    );
    assert!(
        all_output(&o).contains("empty.jsonl: EMPTY"),
        "{}",
        all_output(&o)
    );
    let o = harness_on(&["check"], &[&good]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    let o = harness_on(&["check"], &[&good, &bad]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    let t = all_output(&o);
    assert!(t.contains("bad.jsonl: INVALID"), "{t}");
    assert!(t.contains("read returned 2") || t.contains("2"), "{t}");
    assert!(t.contains("2 files: 1 valid, 1 invalid"), "{t}");
    // --json: one document with every file and a summary.
    let o = harness_on(&["check", "--json"], &[&good, &bad]);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["files"][0]["verdict"], "valid");
    assert_eq!(doc["files"][1]["verdict"], "invalid");
    assert!(
        doc["files"][1]["check"]["explanation"]
            .as_str()
            .unwrap()
            .len()
            > 10
    );
    assert_eq!(doc["summary"]["exit_code"], 1);
    assert!(doc["summary"]["parse_ms"].as_f64().is_some());
}

#[test]
fn init_changes_the_verdict() {
    let s = Scratch::new("init");
    // A read of 5 before any write: legal only if the register started at 5.
    let h = s.file(
        "h.jsonl",
        &lines(&[
            ev(0, "invoke", "read", Value::Null),
            ev(0, "ok", "read", json!(5)),
        ]),
    );
    assert_eq!(harness_on(&["check"], &[&h]).status.code(), Some(1));
    assert_eq!(
        harness_on(&["check", "--init", "5"], &[&h]).status.code(),
        Some(0)
    );
}

/// Runs `check` on one file and returns (exit code, output).
fn check_one(s: &Scratch, name: &str, content: &str, extra: &[&str]) -> (Option<i32>, String) {
    let p = s.file(name, content);
    let mut args = vec!["check"];
    args.extend_from_slice(extra);
    let o = harness_on(&args, &[&p]);
    (o.status.code(), all_output(&o))
}

#[test]
fn bad_input_names_file_and_line() {
    let s = Scratch::new("bad");
    let good = ev(0, "invoke", "read", Value::Null);
    let cases: Vec<(&str, String, &str)> =
        vec![
        ("malformed.jsonl", format!("{good}\n{{\"index\": 1, \"time\"\n"), "malformed.jsonl:2: "),
        (
            "orphan.jsonl",
            lines(&[ev(0, "invoke", "read", Value::Null), ev(3, "ok", "read", json!(1))]),
            "orphan.jsonl:2: completion (ok) of read by process 3 with no invoke",
        ),
        (
            "busy.jsonl",
            lines(&[ev(0, "invoke", "read", Value::Null), ev(0, "invoke", "write", json!(1))]),
            "busy.jsonl:2: second invoke on busy process 0",
        ),
        (
            "unknown-f.jsonl",
            lines(&[ev(0, "invoke", "scan", Value::Null)]),
            "unknown-f.jsonl:1: unknown f `scan`",
        ),
        (
            "unknown-type.jsonl",
            lines(&[good.clone(), good.replace("invoke", "done")]),
            "unknown-type.jsonl:2: unknown variant `done`",
        ),
        (
            "bad-cas.jsonl",
            lines(&[ev(0, "invoke", "cas", json!(3)), ev(0, "ok", "cas", json!(3))]),
            "bad-cas.jsonl:1: cas value must be [from, to]",
        ),
        (
            "bad.edn",
            "[{:process 0, :type :invoke, :f :read, :value nil}\n {:process 0 :type}]".to_string(),
            "bad.edn:2: bad EDN: map has an odd number",
        ),
        (
            "bad.log",
            "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:okay\t:read\t1\n"
                .to_string(),
            "bad.log:2: unknown type `:okay`",
        ),
    ];
    for (name, content, want) in cases {
        let (code, out) = check_one(&s, name, &content, &[]);
        assert_eq!(code, Some(2), "{name}: {out}");
        assert!(out.contains(want), "{name}: expected {want:?} in:\n{out}");
        assert!(!out.contains("panicked"), "{out}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let s = Scratch::new("usage");
    let p = s.file("h.jsonl", &valid_history());
    for args in [
        vec!["check", "--format", "csv"],
        vec!["check", "--model", "queue"],
        vec!["check", "--time-limit", "-1"],
        vec!["check", "--time-limit", "soon"],
    ] {
        let o = harness_on(&args, &[&p]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", all_output(&o));
    }
    let o = harness_on(&["check"], &[&s.0.join("missing.jsonl")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        all_output(&o).contains("missing.jsonl: cannot read"),
        "{}",
        all_output(&o)
    );
    let o = harness_on(&["check"], &[]);
    assert_eq!(o.status.code(), Some(2), "no paths is a usage error");
}

#[test]
fn analyze_rewrites_the_verdict_and_keeps_other_fields() {
    let s = Scratch::new("analyze");
    s.file(
        "test.json",
        &json!({"name": "t", "workload": "register"}).to_string(),
    );
    // A torn last line (a killed harness) is dropped; the prefix is invalid.
    let torn = invalid_history() + "{\"index\":4,\"ti";
    s.file("history.jsonl", &torn);
    let before = json!({"test": "t", "verdict": "valid", "ops_per_sec": 12.5, "counts": {"ok": 2}});
    s.file("results.json", &before.to_string());
    let o = harness_on(&["analyze"], &[&s.0]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    assert!(
        all_output(&o).contains("torn last line"),
        "{}",
        all_output(&o)
    );
    let after: Value =
        serde_json::from_str(&std::fs::read_to_string(s.0.join("results.json")).unwrap()).unwrap();
    assert_eq!(after["verdict"], "invalid");
    assert_eq!(after["check"]["verdict"], "invalid");
    assert_eq!(after["ops_per_sec"], 12.5);
    assert_eq!(after["counts"], json!({"ok": 2}));

    // A bad line in the middle is an error that names it, and results.json is left alone.
    let mid = format!(
        "{}\n{{oops\n{}",
        ev(0, "invoke", "write", json!(1)),
        ev(0, "ok", "write", json!(1))
    );
    s.file("history.jsonl", &mid);
    let o = harness_on(&["analyze"], &[&s.0]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        all_output(&o).contains("history.jsonl:2:"),
        "{}",
        all_output(&o)
    );

    // No workload in test.json.
    s.file("test.json", "{}");
    let o = harness_on(&["analyze"], &[&s.0]);
    assert_eq!(o.status.code(), Some(2));
    assert!(all_output(&o).contains("workload"), "{}", all_output(&o));
}
