//! `workloads::check` end to end on small hand-written histories: verdicts, explanations, and
//! clear errors for bad input.

use checker::history::{parse_line, Event};
use checker::{CheckOptions, Verdict};
use workloads::{check, Workload};

fn events(lines: &[&str]) -> Vec<Event> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut e = parse_line(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            e.index = i as u64;
            e
        })
        .collect()
}

/// `p` `type` `f` `key` `value` at `t` (tenths of a second), as a history line.
fn ev(t: u64, p: u64, kind: &str, f: &str, key: &str, value: &str) -> String {
    format!(
        r#"{{"index":0,"time":{},"process":{p},"type":"{kind}","f":"{f}","key":"{key}","value":{value}}}"#,
        t * 100_000_000
    )
}

fn run(w: Workload, lines: &[String]) -> Result<checker::CheckResult, String> {
    let lines: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
    check(w, &events(&lines), &CheckOptions::default())
}

#[test]
fn empty_history_is_valid() {
    let r = check(Workload::Kv, &[], &CheckOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Valid);
    assert_eq!(r.ops, 0);
}

#[test]
fn sequential_kv_history_is_valid() {
    let h = [
        ev(1, 0, "invoke", "write", "a", "1"),
        ev(2, 0, "ok", "write", "a", "1"),
        ev(3, 1, "invoke", "read", "b", "null"),
        ev(4, 1, "ok", "read", "b", "null"),
        ev(5, 1, "invoke", "cas", "a", "[1,2]"),
        ev(6, 1, "ok", "cas", "a", "[1,2]"),
        ev(7, 0, "invoke", "read", "a", "null"),
        ev(8, 0, "ok", "read", "a", "2"),
    ];
    let r = run(Workload::Kv, &h).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.explanation);
    assert_eq!((r.keys, r.ops), (2, 4));
}

#[test]
fn stale_read_is_invalid_and_explained() {
    let h = [
        ev(1, 0, "invoke", "write", "k7", "3"),
        ev(2, 0, "ok", "write", "k7", "3"),
        ev(3, 0, "invoke", "write", "k7", "5"),
        ev(4, 0, "ok", "write", "k7", "5"),
        ev(5, 1, "invoke", "write", "k7", "6"),
        ev(6, 2, "invoke", "read", "k7", "null"),
        ev(7, 2, "ok", "read", "k7", "3"),
        ev(8, 1, "ok", "write", "k7", "6"),
    ];
    let r = run(Workload::Kv, &h).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    let want = "read of k7 returned 3 at 0.70 s, but after the write of 5 to k7 that finished at \
                0.40 s the only possible values were 5 or 6";
    assert!(r.explanation.contains(want), "{}", r.explanation);
    let cx = r.counterexample.unwrap();
    assert_eq!(cx["key"], "k7");
    assert_eq!(cx["shrunk"].as_array().unwrap().len(), 3, "{cx}");
}

#[test]
fn failed_cas_with_precondition_failed_is_an_observation() {
    let cas_fail = r#"{"index":0,"time":400,"process":1,"type":"fail","f":"cas","key":"a","value":[1,2],"error":"precondition-failed"}"#;
    let h = [
        ev(1, 0, "invoke", "write", "a", "1"),
        ev(2, 0, "ok", "write", "a", "1"),
        ev(3, 1, "invoke", "cas", "a", "[1,2]"),
        cas_fail.replace("400", "400000000"),
    ];
    let r = run(Workload::Kv, &h).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid, "{}", r.explanation);
    // Any other error means the cas did not happen: dropped.
    let h2 = [
        h[0].clone(),
        h[1].clone(),
        h[2].clone(),
        h[3].replace("precondition-failed", "timeout"),
    ];
    assert_eq!(run(Workload::Kv, &h2).unwrap().verdict, Verdict::Valid);
}

#[test]
fn crashed_write_may_take_effect_late_or_never() {
    let h = [
        ev(1, 0, "invoke", "write", "", "1"),
        ev(2, 0, "info", "write", "", "1"),
        ev(3, 1, "invoke", "read", "", "null"),
        ev(4, 1, "ok", "read", "", "null"),
        ev(5, 1, "invoke", "read", "", "null"),
        ev(6, 1, "ok", "read", "", "1"),
    ];
    assert_eq!(run(Workload::Register, &h).unwrap().verdict, Verdict::Valid);
    // ...but once seen, it cannot be unseen.
    let mut h3 = h.to_vec();
    h3.push(ev(7, 1, "invoke", "read", "", "null"));
    h3.push(ev(8, 1, "ok", "read", "", "null"));
    assert_eq!(
        run(Workload::Register, &h3).unwrap().verdict,
        Verdict::Invalid
    );
}

#[test]
fn stale_read_among_many_crashed_ops_is_invalid() {
    // 60 crashed writes and cas (they may take effect at any later time, or never) keep the
    // search from proving anything quickly; a read of 7 after a later write of 8 is still stale.
    let mut h = vec![
        ev(0, 0, "invoke", "write", "", "7"),
        ev(1, 0, "ok", "write", "", "7"),
    ];
    for i in 0..60u64 {
        let (v, t) = (i % 5, 2 + 4 * i);
        let crashed = match i % 3 {
            0 => ["write".to_string(), v.to_string()],
            _ => ["cas".to_string(), format!("[{},{}]", (v + 1) % 5, v)],
        };
        h.push(ev(t, 100 + i, "invoke", &crashed[0], "", &crashed[1]));
        h.push(ev(t, 100 + i, "info", &crashed[0], "", &crashed[1]));
        h.push(ev(
            t + 1,
            0,
            "invoke",
            "write",
            "",
            &((v + 2) % 5).to_string(),
        ));
        h.push(ev(t + 2, 0, "ok", "write", "", &((v + 2) % 5).to_string()));
        h.push(ev(t + 2, 1, "invoke", "read", "", "null"));
        h.push(ev(t + 3, 1, "ok", "read", "", &((v + 2) % 5).to_string()));
    }
    h.push(ev(300, 0, "invoke", "write", "", "8"));
    h.push(ev(301, 0, "ok", "write", "", "8"));
    h.push(ev(302, 1, "invoke", "read", "", "null"));
    h.push(ev(303, 1, "ok", "read", "", "7"));
    let lines: Vec<&str> = h.iter().map(|s| s.as_str()).collect();
    let opts = CheckOptions {
        time_limit: Some(std::time::Duration::from_secs(120)),
        ..Default::default()
    };
    let r = check(Workload::Register, &events(&lines), &opts).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid, "{}", r.explanation);
    let e = &r.explanation;
    assert!(
        e.contains("returned 7 at 30.30 s, but after the write of 8"),
        "{e}"
    );
    // Without the stale read the same history is linearizable.
    let r = check(
        Workload::Register,
        &events(&lines[..lines.len() - 2]),
        &opts,
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.explanation);
}

#[test]
fn bad_input_is_a_clear_error() {
    let orphan = [ev(1, 0, "ok", "read", "a", "1")];
    let e = run(Workload::Kv, &orphan).unwrap_err();
    assert!(e.contains("event 0") && e.contains("no open invoke"), "{e}");

    let busy = [
        ev(1, 0, "invoke", "read", "a", "null"),
        ev(2, 0, "invoke", "write", "a", "1"),
    ];
    let e = run(Workload::Kv, &busy).unwrap_err();
    assert!(
        e.contains("event 1") && e.contains("has not completed"),
        "{e}"
    );

    let unknown = [
        ev(1, 0, "invoke", "frob", "a", "1"),
        ev(2, 0, "ok", "frob", "a", "1"),
    ];
    let e = run(Workload::Kv, &unknown).unwrap_err();
    assert!(
        e.contains("event 0") && e.contains("unknown f \"frob\""),
        "{e}"
    );

    let no_key = [r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read"}"#.to_string()];
    let e = run(Workload::Kv, &no_key).unwrap_err();
    assert!(e.contains("event 0") && e.contains("no key"), "{e}");

    let bad_cas = [
        ev(1, 0, "invoke", "cas", "a", "3"),
        ev(2, 0, "ok", "cas", "a", "3"),
    ];
    let e = run(Workload::Kv, &bad_cas).unwrap_err();
    assert!(e.contains("[from, to]"), "{e}");
}

/// A long sequential register history: write i, read i, repeated.
fn long_history(n: u64) -> Vec<Event> {
    let mut lines = Vec::new();
    for i in 0..n {
        let v = (i % 5).to_string();
        lines.push(ev(4 * i, 0, "invoke", "write", "", &v));
        lines.push(ev(4 * i + 1, 0, "ok", "write", "", &v));
        lines.push(ev(4 * i + 2, 1, "invoke", "read", "", "null"));
        lines.push(ev(4 * i + 3, 1, "ok", "read", "", &v));
    }
    let lines: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
    events(&lines)
}

#[test]
fn budgets_give_unknown_with_how_far_it_got() {
    let h = long_history(3000);
    let ok = check(Workload::Register, &h, &CheckOptions::default()).unwrap();
    assert_eq!(ok.verdict, Verdict::Valid, "{}", ok.explanation);

    let opts = CheckOptions {
        time_limit: Some(std::time::Duration::ZERO),
        ..Default::default()
    };
    let r = check(Workload::Register, &h, &opts).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(r.explanation.contains("time limit"), "{}", r.explanation);
    assert!(r.explanation.contains("the register") && r.explanation.contains("of its 6000 ops"));
    assert!(r.states_explored > 0);

    let opts = CheckOptions {
        memory_limit_bytes: Some(1),
        ..Default::default()
    };
    let r = check(Workload::Register, &h, &opts).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(r.explanation.contains("memory limit"), "{}", r.explanation);
}

#[test]
fn register_initial_value_is_configurable() {
    use checker::linearizability::check_events;
    use workloads::models::Register;
    let h = [
        ev(1, 0, "invoke", "read", "", "null"),
        ev(2, 0, "ok", "read", "", "0"),
    ];
    let lines: Vec<&str> = h.iter().map(|s| s.as_str()).collect();
    let evs = events(&lines);
    let opts = CheckOptions::default();
    let zero = check_events(&Register::new(serde_json::json!(0)), &evs, &opts).unwrap();
    assert_eq!(zero.verdict, Verdict::Valid);
    let null = check_events(&Register::default(), &evs, &opts).unwrap();
    assert_eq!(null.verdict, Verdict::Invalid);
    assert!(
        null.explanation.contains("no write of 0"),
        "{}",
        null.explanation
    );
}
