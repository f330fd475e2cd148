//! Real processes: membership changes. A 3-node cluster (n1-n3 members, n4 and n5 started with
//! empty data directories as non-members) grows to 5 and shrinks to 3 (n1 and n2 removed) while
//! a client writes; joined nodes serve reads with every write acknowledged before they joined;
//! removed nodes keep their data directories and come back as non-members.

mod procs;

use procs::{Client, Cluster};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One write of the single writer: when it began and ended, its value, whether acknowledged.
struct Write {
    invoke: Instant,
    complete: Instant,
    value: i64,
    ok: bool,
}

type History = Arc<Mutex<Vec<Write>>>;

/// Writes 1, 2, 3... to `x` through `c` until `stop`.
fn writer(mut c: Client, stop: Arc<AtomicBool>, h: History) {
    let mut v = 0;
    while !stop.load(Ordering::Relaxed) {
        v += 1;
        let invoke = Instant::now();
        let r = c.call(json!({"type":"write","key":"x","value":v}));
        let ok = r["type"] == "write_ok";
        h.lock().unwrap().push(Write {
            invoke,
            complete: Instant::now(),
            value: v,
            ok,
        });
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads `x` through `c` and checks it against the writes: at least the last write acknowledged
/// before the read began, at most the last one begun before it ended (one writer, rising values:
/// that is linearizability for this register). Returns the value.
fn checked_read(c: &mut Client, h: &History, who: &str) -> i64 {
    let invoke = Instant::now();
    let v = c.read("x").as_i64().unwrap_or(0);
    let complete = Instant::now();
    let h = h.lock().unwrap();
    let floor = h
        .iter()
        .filter(|w| w.ok && w.complete < invoke)
        .map(|w| w.value)
        .max()
        .unwrap_or(0);
    let top = h
        .iter()
        .filter(|w| w.invoke < complete)
        .map(|w| w.value)
        .max()
        .unwrap_or(0)
        + 1; // the write in flight now may not be recorded yet
    assert!(
        v >= floor && v <= top,
        "{who} read x={v}, but writes acknowledged before the read reached {floor} (and none above {top} had begun)"
    );
    v
}

/// Prints (for the record, not asserted) the writes per second and the longest time with no
/// write acknowledged while the four changes ran.
fn report_gaps(h: &History, start: Instant, end: Instant, variant: &str) {
    let h = h.lock().unwrap();
    let mut t: Vec<Instant> = h.iter().filter(|w| w.ok).map(|w| w.complete).collect();
    t.retain(|c| *c > start && *c < end);
    let gap = t
        .windows(2)
        .map(|w| w[1] - w[0])
        .chain(t.first().map(|f| *f - start))
        .max()
        .unwrap_or_default();
    let secs = (end - start).as_secs_f64();
    let before: Vec<&Write> = h.iter().filter(|w| w.ok && w.complete < start).collect();
    let before_secs = before
        .first()
        .map_or(0.0, |w| (start - w.invoke).as_secs_f64());
    eprintln!(
        "{variant}: 4 changes in {:.0} ms, {:.0} writes/s (one writer; {:.0} before), longest gap {} ms",
        secs * 1000.0,
        t.len() as f64 / secs,
        before.len() as f64 / before_secs.max(1e-3),
        gap.as_millis()
    );
}

fn stats(c: &mut Client) -> Value {
    let id = c.send(json!({"type":"stats"}));
    let r = c.recv();
    assert_eq!(r["in_reply_to"], json!(id), "{r}");
    r["stats"].clone()
}

/// Polls node `i`'s stats until `want` holds (20 s at most).
fn wait_stats(cl: &Cluster, i: usize, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let mut c = cl.client(i);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = stats(&mut c);
        if want(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "n{}: never {what}: {s}", i + 1);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn reconfigure(c: &mut Client, members: &[&str]) -> Value {
    c.call(json!({"type":"reconfigure","members":members}))
}

/// Bits of the members named `n1`... (index = number - 1, as the node sorts names).
fn bits(members: &[usize]) -> u64 {
    members.iter().map(|m| 1u64 << (m - 1)).sum()
}

fn grow_and_shrink(variant: &str) {
    let mut cl = Cluster::configure(5, variant, &["--members", "n1,n2,n3"]);
    for i in 0..5 {
        cl.launch(i);
    }
    let mut admin = cl.client(0);
    admin.write("before", 41);
    for i in [3, 4] {
        let s = wait_stats(&cl, i, "up", |_| true);
        assert_eq!(
            s["is_member"],
            json!(0),
            "n{} starts as a non-member: {s}",
            i + 1
        );
    }
    let h: History = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let w = {
        let (c, stop, h) = (cl.client(2), stop.clone(), h.clone());
        std::thread::spawn(move || writer(c, stop, h))
    };
    std::thread::sleep(Duration::from_millis(300));

    // Grow: n4, then n5.
    let changes_start = Instant::now();
    for (members, names) in [
        (bits(&[1, 2, 3, 4]), &["n1", "n2", "n3", "n4"][..]),
        (bits(&[1, 2, 3, 4, 5]), &["n1", "n2", "n3", "n4", "n5"][..]),
    ] {
        let r = reconfigure(&mut admin, names);
        assert_eq!(r["type"], "reconfigure_ok", "{r}");
        // `reconfigure_ok` means in force at the node that answered.
        assert_eq!(stats(&mut admin)["members"], json!(members));
        for i in 0..5 {
            wait_stats(&cl, i, "in the new configuration", |s| {
                s["members"] == json!(members)
            });
        }
        let joined = names.len() - 1;
        let s = wait_stats(&cl, joined, "a member", |s| s["is_member"] == json!(1));
        assert!(s["applied"].as_u64().unwrap() > 0, "{s}");
        let mut c = cl.client(joined);
        assert_eq!(c.read("before"), json!(41), "n{} after joining", joined + 1);
        checked_read(&mut c, &h, &format!("n{}", joined + 1));
    }

    // Shrink: n1 leaves, then n2 (asked through the leaving nodes themselves).
    let r = reconfigure(&mut admin, &["n2", "n3", "n4", "n5"]);
    assert_eq!(r["type"], "reconfigure_ok", "{r}");
    let r = reconfigure(&mut cl.client(1), &["n3", "n4", "n5"]);
    assert_eq!(r["type"], "reconfigure_ok", "{r}");
    for i in 0..5 {
        wait_stats(&cl, i, "in the final configuration", |s| {
            s["members"] == json!(bits(&[3, 4, 5]))
        });
    }
    let changes_end = Instant::now();
    for i in [0, 1] {
        // A removed leader steps down at its next tick.
        wait_stats(&cl, i, "removed and not leading", |s| {
            s["is_member"] == json!(0) && s["is_leader"] == json!(0)
        });
    }
    // The removed nodes are stopped; the three members go on alone.
    cl.kill(0);
    cl.kill(1);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    let during = h
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.ok && w.invoke > changes_start && w.complete < changes_end)
        .count();
    assert!(
        during >= 3,
        "only {during} writes acknowledged during the changes"
    );
    report_gaps(&h, changes_start, changes_end, variant);
    for i in [2, 3, 4] {
        let v = checked_read(&mut cl.client(i), &h, &format!("n{}", i + 1));
        assert!(v > 0);
    }

    // A removed node's data directory is left as it was: restarted, it has its state back and
    // knows it is no member.
    for i in [0, 1] {
        let files = std::fs::read_dir(&cl.nodes[i].data_dir).unwrap().count();
        assert!(files > 0, "n{}'s data directory is empty", i + 1);
        cl.launch(i);
        // Its promises and votes are back (decisions it learns again, as after any restart).
        let s = wait_stats(&cl, i, "restarted", |_| true);
        assert!(
            s["log_length"].as_u64().unwrap() > 0,
            "n{} lost its state: {s}",
            i + 1
        );
        wait_stats(&cl, i, "caught up as a non-member", |s| {
            s["is_member"] == json!(0) && s["members"] == json!(bits(&[3, 4, 5]))
        });
    }
    // The restarted non-members do not disturb the members.
    cl.client(4).write("after", 7);
    assert_eq!(cl.client(3).read("after"), json!(7));

    // Every node killed at once: the configuration comes back from the data directories (the
    // log says it), though each node was started with `--members n1,n2,n3`.
    for i in 0..5 {
        cl.kill(i);
    }
    for i in 0..5 {
        cl.launch(i);
    }
    // (A Basic Paxos node decides the log again only when it has a command to propose.)
    assert_eq!(cl.client(2).read("after"), json!(7));
    checked_read(&mut cl.client(3), &h, "n4 after a restart of all");
    for i in 0..5 {
        wait_stats(&cl, i, "back in the final configuration", |s| {
            s["members"] == json!(bits(&[3, 4, 5]))
        });
    }
}

#[test]
fn multi_grows_to_five_and_shrinks_to_three_while_a_client_writes() {
    grow_and_shrink("multi");
}

#[test]
fn basic_grows_to_five_and_shrinks_to_three_while_a_client_writes() {
    grow_and_shrink("basic");
}

#[test]
fn bad_reconfigure_requests_get_clear_errors() {
    let cl = Cluster::start(3, "multi", &[]);
    let mut c = cl.client(0);
    let cases = [
        (json!({"type":"reconfigure","members":["n1","n9"]}), 1, "n9"),
        (json!({"type":"reconfigure","members":[]}), 12, "empty"),
        (json!({"type":"reconfigure","members":"n1"}), 12, "members"),
        (json!({"type":"reconfigure","members":[1,2]}), 12, "members"),
        (json!({"type":"reconfigure"}), 12, "members"),
    ];
    for (body, code, word) in cases {
        let r = c.call(body.clone());
        assert_eq!(
            (r["type"].as_str(), r["code"].as_u64()),
            (Some("error"), Some(code)),
            "{body}: {r}"
        );
        assert!(r["text"].as_str().unwrap().contains(word), "{body}: {r}");
    }
    // The node still serves, with every node a member (no --members given).
    c.write("k", 1);
    let s = stats(&mut c);
    assert_eq!(s["members"], json!(bits(&[1, 2, 3])), "{s}");
}

#[test]
fn unknown_member_at_start_is_a_clear_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paxos-node"))
        .args([
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:1",
            "--client",
            "127.0.0.1:2",
        ])
        .args(["--peers", "n2=127.0.0.1:3", "--members", "n1,n7"])
        .args(["--data-dir", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--members") && err.contains("n7"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The node a change is asked of is SIGKILLed right after the request: the change is chosen or
/// not, never half; asked again elsewhere, it is in force everywhere, restarted node included.
fn kill_during_change(variant: &str) {
    let mut cl = Cluster::configure(4, variant, &["--members", "n1,n2,n3"]);
    for i in 0..4 {
        cl.launch(i);
    }
    cl.client(1).write("k", 1);
    let target = if variant == "multi" {
        (0..3)
            .find(|&i| stats(&mut cl.client(i))["is_leader"] == json!(1))
            .unwrap_or(0)
    } else {
        0
    };
    let mut c = cl.client(target);
    c.send(json!({"type":"reconfigure","members":["n1","n2","n3","n4"]}));
    std::thread::sleep(Duration::from_millis(3));
    cl.kill(target);
    cl.launch(target);
    let other = (target + 1) % 3;
    let r = reconfigure(&mut cl.client(other), &["n1", "n2", "n3", "n4"]);
    assert_eq!(r["type"], "reconfigure_ok", "{r}");
    for i in 0..4 {
        wait_stats(&cl, i, "in the new configuration", |s| {
            s["members"] == json!(bits(&[1, 2, 3, 4]))
        });
    }
    assert_eq!(cl.client(3).read("k"), json!(1));
    // Two of the four down: three of four is still a majority of the new configuration, two
    // is not, so a write through the survivors needs n4's vote.
    cl.kill(target);
    cl.client(other).write("k", 2);
    assert_eq!(cl.client(3).read("k"), json!(2));
}

#[test]
fn multi_change_survives_a_kill_mid_change() {
    kill_during_change("multi");
}

#[test]
fn basic_change_survives_a_kill_mid_change() {
    kill_during_change("basic");
}
