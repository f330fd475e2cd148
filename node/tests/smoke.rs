//! Real processes: three `paxos-node`s on loopback talking to each other directly, clients over
//! TCP, SIGKILL and restart with the same arguments.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Node {
    args: Vec<String>,
    client: String,
    child: Option<Child>,
    log: PathBuf,
}

/// Kills every node it started when dropped (also when a test fails).
struct Cluster {
    nodes: Vec<Node>,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    fn start(n: usize, variant: &str, extra: &[&str]) -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "paxos-smoke-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let peer: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let client: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for i in 0..n {
            let peers: Vec<String> = (0..n)
                .filter(|&j| j != i)
                .map(|j| format!("n{}=127.0.0.1:{}", j + 1, peer[j]))
                .collect();
            let mut args: Vec<String> = [
                "--id".to_string(),
                format!("n{}", i + 1),
                "--listen".into(),
                format!("127.0.0.1:{}", peer[i]),
                "--client".into(),
                format!("127.0.0.1:{}", client[i]),
                "--peers".into(),
                peers.join(","),
                "--data-dir".into(),
                dir.join(format!("n{}", i + 1)).display().to_string(),
                "--variant".into(),
                variant.into(),
            ]
            .into();
            args.extend(extra.iter().map(|s| s.to_string()));
            nodes.push(Node {
                args,
                client: format!("127.0.0.1:{}", client[i]),
                child: None,
                log: dir.join(format!("n{}.log", i + 1)),
            });
        }
        let mut c = Cluster {
            nodes,
            _dir: TempDir(dir),
        };
        for i in 0..n {
            c.launch(i);
        }
        c
    }

    fn launch(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_paxos-node"))
            .args(&node.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        node.child = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }

    fn client(&self, i: usize) -> Client {
        Client::connect(&self.nodes[i].client, &self.nodes[i].log)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
    next: u64,
}

impl Client {
    /// Connects, waiting until the node is ready.
    fn connect(addr: &str, log: &Path) -> Client {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match TcpStream::connect(addr) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    return Client {
                        r: BufReader::new(s.try_clone().unwrap()),
                        w: s,
                        next: 0,
                    };
                }
                Err(e) if Instant::now() > deadline => panic!(
                    "node at {addr} not ready: {e}; log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn send(&mut self, mut body: Value) -> u64 {
        self.next += 1;
        body["msg_id"] = json!(self.next);
        writeln!(self.w, "{body}").unwrap();
        self.next
    }

    fn recv(&mut self) -> Value {
        let mut line = String::new();
        let n = self
            .r
            .read_line(&mut line)
            .expect("reply before the read timeout");
        assert!(n > 0, "connection closed");
        serde_json::from_str(&line).unwrap()
    }

    /// One request, retried on indefinite errors (e.g. while a leader is elected).
    fn call(&mut self, body: Value) -> Value {
        for _ in 0..20 {
            let id = self.send(body.clone());
            let r = self.recv();
            assert_eq!(r["in_reply_to"], json!(id), "{r}");
            if r["type"] == "error" && r["code"] == 0 {
                continue;
            }
            return r;
        }
        panic!("no definite answer to {body}");
    }

    fn write(&mut self, key: &str, v: i64) {
        let r = self.call(json!({"type":"write","key":key,"value":v}));
        assert_eq!(r["type"], "write_ok", "{r}");
    }

    fn read(&mut self, key: &str) -> Value {
        let r = self.call(json!({"type":"read","key":key}));
        assert_eq!(r["type"], "read_ok", "{r}");
        r["value"].clone()
    }
}

fn kill_restart_and_recover(variant: &str) {
    let mut c = Cluster::start(3, variant, &[]);
    let mut a = c.client(0);
    a.write("x", 1);
    assert_eq!(c.client(1).read("x"), json!(1));
    assert_eq!(a.read("never-written"), Value::Null);
    let r = a.call(json!({"type":"cas","key":"x","from":5,"to":6}));
    assert_eq!(
        (r["type"].as_str(), r["code"].as_u64()),
        (Some("error"), Some(22)),
        "{r}"
    );
    let r = a.call(json!({"type":"cas","key":"x","from":1,"to":2}));
    assert_eq!(r["type"], "cas_ok", "{r}");

    // One node dies; the other two go on; it comes back and catches up.
    c.kill(2);
    let mut b = c.client(1);
    for v in 3..20 {
        b.write("x", v);
    }
    c.launch(2);
    assert_eq!(c.client(2).read("x"), json!(19));

    // Everyone dies at once: only what was synced survives, and that is everything acknowledged.
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.launch(i);
    }
    for i in 0..3 {
        assert_eq!(
            c.client(i).read("x"),
            json!(19),
            "node n{} after restart",
            i + 1
        );
    }
}

#[test]
fn multi_survives_sigkill_and_restart() {
    kill_restart_and_recover("multi");
}

#[test]
fn basic_survives_sigkill_and_restart() {
    kill_restart_and_recover("basic");
}

#[test]
fn one_node_cluster_works_and_recovers() {
    let mut c = Cluster::start(1, "multi", &[]);
    c.client(0).write("y", 5);
    c.kill(0);
    c.launch(0);
    assert_eq!(c.client(0).read("y"), json!(5));
}

/// Runs node n1 with `args` after its id and addresses (it is expected to exit at once).
fn start_fails(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_paxos-node"))
        .args([
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:1",
            "--client",
            "127.0.0.1:2",
        ])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bad_peer_list_is_a_clear_error() {
    let out = start_fails(&["--peers", "n2=nowhere", "--data-dir", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--peers") && err.contains("n2"), "{err}");
}

#[test]
fn many_requests_in_flight_on_one_connection() {
    let c = Cluster::start(3, "multi", &[]);
    let mut cl = c.client(1);
    let ids: Vec<u64> = (0..200)
        .map(|i| cl.send(json!({"type":"write","key":format!("k{}", i % 7),"value":i})))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for _ in &ids {
        let r = cl.recv();
        assert_eq!(r["type"], "write_ok", "{r}");
        seen.insert(r["in_reply_to"].as_u64().unwrap());
    }
    assert_eq!(seen.len(), ids.len());
    let s = {
        let id = cl.send(json!({"type":"stats"}));
        let r = cl.recv();
        assert_eq!(r["in_reply_to"], json!(id));
        r
    };
    assert_eq!(s["type"], "stats_ok", "{s}");
    assert!(
        s["stats"]["commands_applied"].as_u64().unwrap() >= 200,
        "{s}"
    );
    let r = {
        writeln!(cl.w, "{{\"type\":\"write\",\"key\":\"k\",\"msg_id\":77}}").unwrap();
        cl.recv()
    };
    assert_eq!(
        (r["code"].as_u64(), r["in_reply_to"].as_u64()),
        (Some(12), Some(77)),
        "{r}"
    );
}

#[test]
fn unknown_bug_is_a_clear_error() {
    let out = start_fails(&[
        "--peers",
        "n2=127.0.0.1:3",
        "--data-dir",
        "/nonexistent",
        "--bug",
        "nope",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nope") && err.contains("volatile-acceptor"),
        "{err}"
    );
}

#[test]
fn more_nodes_than_supported_is_a_clear_error() {
    let peers: Vec<String> = (2..=65).map(|i| format!("n{i}=127.0.0.1:{i}")).collect();
    let peers = peers.join(",");
    let out = start_fails(&["--peers", &peers, "--data-dir", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--peers") && err.contains("65 nodes") && err.contains("at most 64"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
