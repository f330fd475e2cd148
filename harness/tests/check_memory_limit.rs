//! `harness check --memory-limit MIB`: the search's memory cap is a flag. A bad value is refused
//! naming the flag; a history too hard for a small cap is unknown and says which limit, its
//! value and what to try.

mod cli_util;
use cli_util::{all_output, harness_on, scratch};

/// Rounds of `procs` writes in flight at once (values 0..4), with `crashed` writes and cas that
/// never return and three reads in flight beside them, then a read of the last value; in round
/// `bad`, reads of 4, 0 and 4 again after that, with a write of 0 between and one write of 4
/// open (crashed): a write of 4 was in flight earlier in that round too, so no cheap check
/// settles it, and the crashed ops make the search large.
fn history(procs: u64, rounds: u64, bad: u64, crashed: u64) -> String {
    let mut lines = Vec::new();
    let mut push = |p: u64, kind: &str, f: &str, v: String| {
        let i = lines.len();
        lines.push(format!(
            r#"{{"index":{i},"time":{},"process":{p},"type":"{kind}","f":"{f}","value":{v}}}"#,
            i * 1000
        ));
    };
    let mut next_crashed = 1000;
    for r in 0..rounds {
        let value = |p: u64| {
            if r == bad && p == 0 {
                4
            } else {
                (p * 7 + r) % 4
            }
        };
        for p in 0..procs {
            push(p, "invoke", "write", value(p).to_string());
        }
        for k in 0..crashed {
            let v = (k * 3 + r) % 4;
            let (f, v) = match k % 2 {
                0 => ("write", v.to_string()),
                _ => ("cas", format!("[{v},{}]", (v + 1) % 4)),
            };
            push(next_crashed, "invoke", f, v.clone());
            push(next_crashed, "info", f, v);
            next_crashed += 1;
        }
        for k in 0..3 {
            push(500 + k, "invoke", "read", "null".into());
        }
        for p in 0..procs {
            push(p, "ok", "write", value(p).to_string());
        }
        for k in 0..3 {
            push(500 + k, "ok", "read", value(procs - 1 - k).to_string());
        }
        let last = value(procs - 1);
        push(procs, "invoke", "read", "null".into());
        push(procs, "ok", "read", last.to_string());
        if r == bad {
            // 4, then 0, then 4 again with one write of 4 left open (the crashed one): the
            // first read of 4 uses it up. Checks that only ask whether some open op could write
            // a value (the coarse frontier's) cannot see that.
            push(999, "invoke", "write", "4".into());
            push(999, "info", "write", "4".into());
            for (f, v) in [("read", "4"), ("write", "0"), ("read", "0"), ("read", "4")] {
                let arg = if f == "read" { "null" } else { v };
                push(procs, "invoke", f, arg.into());
                push(procs, "ok", f, v.into());
            }
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn memory_limit_is_a_flag_and_unknown_says_what_to_try() {
    let dir = scratch("memory-limit");
    let file = dir.join("history.jsonl");
    std::fs::write(&file, history(20, 6, 4, 4)).unwrap();

    for bad in ["0", "0.5", "nan", "1e9"] {
        let out = harness_on(&["check", "--memory-limit", bad], &[&file]);
        let text = all_output(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {text}");
        assert!(text.contains("--memory-limit"), "{bad}: {text}");
    }

    let out = harness_on(&["check", "--memory-limit", "1"], &[&file]);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("memory limit of 1 MiB"), "{text}");
    assert!(text.contains("--memory-limit"), "{text}");

    let out = harness_on(&["check", "--memory-limit", "512"], &[&file]);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
