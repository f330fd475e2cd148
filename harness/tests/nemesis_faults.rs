//! Faults on real processes: a paused node stops answering and answers again after resume; a
//! killed node comes back with a new pid, the same argv and its data dir; `harness test` records
//! every fault of its schedule in the history; `--replay` reruns the same schedule and seed.
//! Nodes are the harness's tiny test node (harness/examples/tiny_node.rs).

mod cli_util;

use checker::history::{read_jsonl, Event, EventType};
use cli_util::tiny_node;
use harness::cluster::{Cluster, ClusterPlan, NodeState};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nemesis-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A JSON-lines client connection.
struct Conn {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Conn {
    async fn connect(addr: std::net::SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).await.unwrap();
        let (r, w) = s.into_split();
        Conn {
            r: BufReader::new(r),
            w,
        }
    }
    async fn send(&mut self, body: Value) {
        let mut line = body.to_string();
        line.push('\n');
        self.w.write_all(line.as_bytes()).await.unwrap();
    }
    /// The next reply, or None if none comes within `wait`.
    async fn reply(&mut self, wait: Duration) -> Option<Value> {
        let mut line = String::new();
        match timeout(wait, self.r.read_line(&mut line)).await {
            Ok(Ok(n)) if n > 0 => Some(serde_json::from_str(&line).unwrap()),
            Ok(_) => panic!("connection closed"),
            Err(_) => None,
        }
    }
}

async fn one_node(dir: &Path) -> Cluster {
    let plan = ClusterPlan::new(tiny_node(), 1, dir, vec![]).unwrap();
    Cluster::launch(plan).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_stops_answering_and_answers_after_resume() {
    let dir = scratch("pause");
    let c = one_node(&dir).await;
    let mut conn = Conn::connect(c.plan.nodes[0].client).await;
    conn.send(json!({"type":"write","key":"k","value":1,"msg_id":1}))
        .await;
    let r = conn
        .reply(Duration::from_secs(10))
        .await
        .expect("a running node answers");
    assert_eq!(r["type"], "write_ok");

    c.pause(0).await.unwrap();
    assert_eq!(c.state(0).await, NodeState::Paused);
    conn.send(json!({"type":"read","key":"k","msg_id":2})).await;
    assert_eq!(
        conn.reply(Duration::from_millis(1500)).await,
        None,
        "a paused node must not answer"
    );

    c.resume(0).await.unwrap();
    let r = conn
        .reply(Duration::from_secs(10))
        .await
        .expect("the node answers after resume");
    assert_eq!(
        (r["type"].as_str(), r["in_reply_to"].as_u64()),
        (Some("read_ok"), Some(2))
    );
    assert_eq!(r["value"], 1);
    c.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

fn cmdline(pid: i32) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/cmdline")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_comes_back_with_a_new_pid_same_args_and_its_data() {
    let dir = scratch("kill");
    let c = one_node(&dir).await;
    let spec = c.plan.nodes[0].clone();
    let pid1 = c.pid(0).await.unwrap();
    let argv1 = cmdline(pid1);
    let marker = spec.data_dir.join("state");
    std::fs::write(&marker, "written before the kill").unwrap();

    c.kill(0).await.unwrap();
    assert_eq!(c.state(0).await, NodeState::Killed);
    assert!(
        !Path::new(&format!("/proc/{pid1}")).exists(),
        "killed and reaped"
    );
    assert!(
        TcpStream::connect(spec.client).await.is_err(),
        "nobody listens on a killed node's client port"
    );

    c.restart(0).await.unwrap();
    let pid2 = c.pid(0).await.unwrap();
    assert_ne!(pid1, pid2, "a restarted node is a new process");
    assert_eq!(cmdline(pid2), argv1, "restarted with the same arguments");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "written before the kill",
        "the data dir survives"
    );
    let mut conn = Conn::connect(spec.client).await;
    conn.send(json!({"type":"read","key":"k","msg_id":1})).await;
    let r = conn
        .reply(Duration::from_secs(10))
        .await
        .expect("answers after restart");
    assert_eq!(r["type"], "read_ok");
    c.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `harness test` with a tiny node and the given options; returns the run folder.
fn harness_test(store: &Path, extra: &[&str]) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("test")
        .arg("--node-bin")
        .arg(tiny_node())
        .arg("--store")
        .arg(store)
        .args(["--recovery-time", "0.5", "--no-check"])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // --no-check: the verdict is unknown (exit 3); anything else is a failure to run.
    assert_eq!(out.status.code(), Some(3), "harness test failed: {stderr}");
    let latest = std::fs::read_link(store.join("latest")).unwrap();
    if latest.is_absolute() {
        latest
    } else {
        store.join(latest)
    }
}

fn nemesis_events(run: &Path) -> Vec<Event> {
    read_jsonl(&run.join("history.jsonl"))
        .unwrap()
        .into_iter()
        .filter(Event::is_nemesis)
        .collect()
}

#[test]
fn harness_test_records_each_scheduled_pause_and_the_node_answers_after() {
    let store = scratch("run-pause");
    let run = harness_test(
        &store,
        &[
            "--nodes",
            "1",
            "--nemesis",
            "pause",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "5",
            "--seed",
            "3",
            "--op-timeout",
            "0.5",
        ],
    );
    let schedule: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("schedule.json")).unwrap()).unwrap();
    let windows = schedule["windows"].as_array().unwrap();
    assert!(!windows.is_empty(), "a 5 s run with 1 s periods has faults");
    let events = nemesis_events(&run);
    let fs: Vec<&str> = events.iter().map(|e| e.f.as_str()).collect();
    let expected: Vec<&str> = windows.iter().flat_map(|_| ["pause", "resume"]).collect();
    assert_eq!(fs, expected, "one pause and one resume per window");
    for (w, pair) in windows.iter().zip(events.chunks(2)) {
        let start = w["start_s"].as_f64().unwrap();
        let t = pair[0].time as f64 / 1e9;
        assert!(
            t >= start - 0.01 && t < start + 2.0,
            "pause at {t}, scheduled {start}"
        );
        assert_eq!(pair[0].value, json!(["n1"]));
        assert_eq!(pair[0].kind, EventType::Info);
    }

    // While paused, nothing invoked during the pause completes ok before the resume.
    let all = read_jsonl(&run.join("history.jsonl")).unwrap();
    for pair in events.chunks(2) {
        let (p, r) = (pair[0].time, pair[1].time);
        let mut open = std::collections::HashMap::new();
        for e in &all {
            match (e.kind, &e.process) {
                (EventType::Invoke, proc_) => {
                    open.insert(proc_.clone(), e.time);
                }
                (EventType::Ok, proc_) => {
                    let inv = open.remove(proc_).unwrap_or(0);
                    assert!(
                        !(inv > p + 100_000_000 && e.time < r),
                        "op invoked at {inv} during the pause [{p}, {r}] completed ok at {}",
                        e.time
                    );
                }
                _ => {}
            }
        }
    }
    // And it answers again after the last resume.
    let last_resume = events.last().unwrap().time;
    assert!(
        all.iter()
            .any(|e| e.kind == EventType::Ok && e.time > last_resume),
        "no ok after the last resume"
    );
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn leader_faults_hit_the_node_that_says_it_leads() {
    let store = scratch("run-leader");
    // Not a replicated cluster: three tiny nodes, of which n2 says it leads.
    let run = harness_test(
        &store,
        &[
            "--nodes",
            "3",
            "--nemesis",
            "pause,kill",
            "--nemesis-targets",
            "leader",
            "--nemesis-interval",
            "0.6",
            "--time-limit",
            "4",
            "--seed",
            "5",
            "--op-timeout",
            "0.5",
            "--",
            "--leader",
            "n2",
        ],
    );
    let events = nemesis_events(&run);
    let hits: Vec<&Event> = events
        .iter()
        .filter(|e| e.f == "pause" || e.f == "kill")
        .collect();
    // Drawn at random, two or more faults would all hit n2 at most once in 9 runs.
    assert!(hits.len() >= 2, "too few faults: {events:?}");
    for e in hits {
        assert_eq!(e.value, json!(["n2"]), "{} hit another node", e.f);
    }
    std::fs::remove_dir_all(&store).unwrap();
}

#[test]
fn replay_reruns_the_same_schedule_and_seed_with_overrides() {
    let store = scratch("run-replay");
    let first = harness_test(
        &store,
        &[
            "--nodes",
            "3",
            "--nemesis",
            "partition,pause,kill",
            "--nemesis-interval",
            "0.7",
            "--time-limit",
            "4",
            "--seed",
            "11",
        ],
    );
    // Give the second run a folder of its own (names are per millisecond).
    std::thread::sleep(Duration::from_millis(5));
    let second = harness_test(
        &store,
        &["--replay", first.to_str().unwrap(), "--concurrency", "2"],
    );
    assert_ne!(first, second);
    let read = |p: PathBuf| -> Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    assert_eq!(
        read(first.join("schedule.json")),
        read(second.join("schedule.json")),
        "the same faults, whom and when"
    );
    let (t1, t2) = (
        read(first.join("test.json")),
        read(second.join("test.json")),
    );
    assert_eq!(t1["seed"], 11);
    assert_eq!(t2["seed"], 11, "the same seed");
    assert_eq!(t2["options"]["nodes"], 3, "stored options are reused");
    assert_eq!(t2["options"]["time_limit"], 4.0);
    assert_eq!(
        t2["options"]["concurrency"], 2,
        "options on the command line win"
    );
    let fs = |run: &Path| -> Vec<(String, Value)> {
        nemesis_events(run)
            .into_iter()
            .map(|e| (e.f, e.value))
            .collect()
    };
    // Windows that start well before the end run in full in both runs (one near the end may
    // lose the race with the end of the main phase on a loaded machine).
    let schedule = read(first.join("schedule.json"));
    let settled = schedule["windows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["start_s"].as_f64().unwrap() < 3.0)
        .count();
    assert!(settled > 0, "the schedule has faults in the first 3 s");
    let (a, b) = (fs(&first), fs(&second));
    assert!(
        a.len() >= 2 * settled && b.len() >= 2 * settled,
        "{a:?} {b:?}"
    );
    assert_eq!(
        a[..2 * settled],
        b[..2 * settled],
        "the same nemesis events in the same order"
    );
    std::fs::remove_dir_all(&store).unwrap();
}
