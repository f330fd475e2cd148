//! Real `paxos-node` processes on loopback for the tests: a cluster whose nodes are killed when
//! it is dropped, and a JSON-lines client. Shared by `smoke` and `membership`.

// Each test file uses part of it.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Node {
    pub args: Vec<String>,
    pub client: String,
    pub child: Option<Child>,
    pub log: PathBuf,
    pub data_dir: PathBuf,
}

/// Kills every node it started when dropped (also when a test fails).
pub struct Cluster {
    pub nodes: Vec<Node>,
    _dir: TempDir,
}

pub struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port the OS calls free now, never one this process handed out before: tests run in
/// parallel, and a port freed here may be given again before the node that is to bind it does,
/// so a client would reach another test's node.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

impl Cluster {
    /// `n` nodes, all started.
    pub fn start(n: usize, variant: &str, extra: &[&str]) -> Cluster {
        let mut c = Cluster::configure(n, variant, extra);
        for i in 0..n {
            c.launch(i);
        }
        c
    }

    /// `n` nodes that know each other, none started yet (see [`Cluster::launch`]).
    pub fn configure(n: usize, variant: &str, extra: &[&str]) -> Cluster {
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
                data_dir: dir.join(format!("n{}", i + 1)),
            });
        }
        Cluster {
            nodes,
            _dir: TempDir(dir),
        }
    }

    pub fn launch(&mut self, i: usize) {
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

    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }

    pub fn client(&self, i: usize) -> Client {
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

pub struct Client {
    pub w: TcpStream,
    r: BufReader<TcpStream>,
    next: u64,
}

impl Client {
    /// Connects, waiting until the node is ready.
    pub fn connect(addr: &str, log: &Path) -> Client {
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

    pub fn send(&mut self, mut body: Value) -> u64 {
        self.next += 1;
        body["msg_id"] = json!(self.next);
        writeln!(self.w, "{body}").unwrap();
        self.next
    }

    pub fn recv(&mut self) -> Value {
        let mut line = String::new();
        let n = self
            .r
            .read_line(&mut line)
            .expect("reply before the read timeout");
        assert!(n > 0, "connection closed");
        serde_json::from_str(&line).unwrap()
    }

    /// One request, retried on indefinite errors (e.g. while a leader is elected).
    pub fn call(&mut self, body: Value) -> Value {
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

    pub fn write(&mut self, key: &str, v: i64) {
        let r = self.call(json!({"type":"write","key":key,"value":v}));
        assert_eq!(r["type"], "write_ok", "{r}");
    }

    pub fn read(&mut self, key: &str) -> Value {
        let r = self.call(json!({"type":"read","key":key}));
        assert_eq!(r["type"], "read_ok", "{r}");
        r["value"].clone()
    }
}
