//! `harness test --memory-limit MIB`: the run's own check gets the search's memory cap, as
//! `check` and `analyze` do. A bad value is refused before any node starts; a cap too small for
//! the run's history gives unknown, naming the limit and what to try; test.json keeps the value.

mod cli_util;
use cli_util::{all_output, latest, read_json, run, scratch, tiny_test};

#[test]
fn a_bad_memory_limit_is_refused_before_the_run() {
    let store = scratch("memory-limit-bad");
    for bad in ["0", "nan", "1e9"] {
        let out = run(tiny_test(&store, "correct", &["--memory-limit", bad]));
        let text = all_output(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {text}");
        assert!(text.contains("--memory-limit"), "{bad}: {text}");
        assert!(!store.join("latest").exists(), "{bad}: no run folder");
    }
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn the_runs_check_gets_the_memory_limit() {
    let store = scratch("memory-limit");
    // 40 clients on one register, its one node paused past the op timeout again and again:
    // thousands of concurrent ops and hundreds that stay open, more than 1 MiB of search (with
    // no pauses, 40 and even 100 clients now often decide within 1 MiB).
    let args = [
        "--nemesis",
        "pause",
        "--nemesis-interval",
        "0.4",
        "--op-timeout",
        "0.1",
        "--workload",
        "register",
        "--concurrency",
        "40",
        "--time-limit",
        "2",
        "--memory-limit",
        "1",
    ];
    let out = run(tiny_test(&store, "correct", &args));
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(3), "unknown exits 3: {text}");
    let dir = latest(&store);
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["verdict"], "unknown", "{results}");
    let why = results["check"]["explanation"].as_str().unwrap_or_default();
    assert!(why.contains("the memory limit of 1 MiB ran out"), "{why}");
    assert!(
        why.contains("more memory (--memory-limit, in MiB)"),
        "{why}"
    );
    let test = read_json(&dir.join("test.json"));
    assert_eq!(test["options"]["memory_limit"], 1.0, "{test}");
    std::fs::remove_dir_all(&store).unwrap();
}
