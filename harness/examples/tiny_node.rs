//! A tiny single-node test node speaking docs/node-contract.md: an in-memory key-value store.
//! Used by the harness's own tests and by `harness bench clients`; not replicated, so run it with
//! `--nodes 1`.
//!
//! `--mode` picks a behaviour (after `--` on the harness command line):
//! - `correct` (default): a linearizable in-memory register per key;
//! - `stale`: reads return the value before the latest write (a deliberate bug);
//! - `exit`: exits with status 3 at start;
//! - `never-ready`: never opens its client port;
//! - `garbage`: answers every request with a line that is not JSON;
//! - `unknown-reply`: answers with an `in_reply_to` nobody asked for.
//! - `huge`: reads return 2^70, an integer beyond 64 bits.
//! - `mute-reconfigure`: as `correct`, but never answers a `reconfigure` request.
//!
//! `--leader ID`: the node with that id says `"is_leader": 1` in its `stats` (the others 0), for
//! the nemesis's `leader` target.
//!
//! `--client-bind ADDR` binds the client port there instead of `--client` (to test a port that
//! is already taken).

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Store {
    current: HashMap<String, Value>,
    /// The value before the latest write, for `--mode stale`.
    previous: HashMap<String, Value>,
}

struct Node {
    mode: String,
    is_leader: bool,
    store: Mutex<Store>,
    requests: AtomicU64,
}

fn arg(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let id = arg(&args, "--id").unwrap_or_else(|| "n?".into());
    let mode = arg(&args, "--mode").unwrap_or_else(|| "correct".into());
    let client = arg(&args, "--client-bind")
        .or_else(|| arg(&args, "--client"))
        .expect("--client ADDR is required");
    let is_leader = arg(&args, "--leader").as_deref() == Some(id.as_str());
    eprintln!("tiny_node {id}: mode {mode}, client {client}");
    match mode.as_str() {
        "exit" => {
            eprintln!("tiny_node {id}: exiting at start as asked (--mode exit)");
            std::process::exit(3);
        }
        "never-ready" => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        "correct" | "stale" | "garbage" | "unknown-reply" | "huge" | "mute-reconfigure" => {}
        m => {
            eprintln!("tiny_node {id}: unknown --mode {m}");
            std::process::exit(2);
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = match TcpListener::bind(&client).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("tiny_node {id}: cannot bind client port {client}: {e}");
                std::process::exit(1);
            }
        };
        let node = Arc::new(Node {
            mode,
            is_leader,
            store: Mutex::new(Store::default()),
            requests: AtomicU64::new(0),
        });
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve(node.clone(), stream));
        }
    });
}

async fn serve(node: Arc<Node>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    let mut out = BufWriter::new(w);
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = match serde_json::from_str::<Value>(&line) {
            Ok(req) if node.mutes(&req) => continue,
            Ok(req) => node.handle(&req),
            Err(_) => json!({"type":"error","code":12,"text":"not JSON"}).to_string(),
        };
        if out.write_all(reply.as_bytes()).await.is_err() || out.write_all(b"\n").await.is_err() {
            return;
        }
        // Batch replies: flush once no further request is already buffered.
        if lines.get_ref().buffer().is_empty() && out.flush().await.is_err() {
            return;
        }
    }
}

impl Node {
    /// A request this node's mode leaves unanswered.
    fn mutes(&self, req: &Value) -> bool {
        self.mode == "mute-reconfigure"
            && req.get("type").and_then(Value::as_str) == Some("reconfigure")
    }

    fn handle(&self, req: &Value) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let msg_id = req.get("msg_id").and_then(Value::as_u64).unwrap_or(0);
        match self.mode.as_str() {
            "garbage" => return format!("this is not json #{n}"),
            "unknown-reply" => {
                return json!({"type":"read_ok","value":1,"in_reply_to":msg_id + 1000}).to_string()
            }
            "huge" if req.get("type").and_then(Value::as_str) == Some("read") => {
                // Written by hand: serde_json cannot hold 2^70 exactly.
                return format!(
                    r#"{{"type":"read_ok","value":1180591620717411303424,"in_reply_to":{msg_id}}}"#
                );
            }
            _ => {}
        }
        let key = req
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut st = self.store.lock().unwrap();
        let mut body = match req.get("type").and_then(Value::as_str) {
            Some("read") => {
                let source = if self.mode == "stale" {
                    &st.previous
                } else {
                    &st.current
                };
                json!({"type":"read_ok","value":source.get(&key).cloned().unwrap_or(Value::Null)})
            }
            Some("write") => {
                let v = req.get("value").cloned().unwrap_or(Value::Null);
                let old = st.current.insert(key.clone(), v).unwrap_or(Value::Null);
                st.previous.insert(key, old);
                json!({"type":"write_ok"})
            }
            Some("cas") => {
                let from = req.get("from").cloned().unwrap_or(Value::Null);
                let to = req.get("to").cloned().unwrap_or(Value::Null);
                match st.current.get(&key).cloned() {
                    None => json!({"type":"error","code":20,"text":"no such key"}),
                    Some(cur) if cur != from => {
                        json!({"type":"error","code":22,"text":"from differs"})
                    }
                    Some(cur) => {
                        st.current.insert(key.clone(), to);
                        st.previous.insert(key, cur);
                        json!({"type":"cas_ok"})
                    }
                }
            }
            Some("stats") => {
                let stats = json!({"requests": n + 1, "keys": st.current.len(),
                    "is_leader": u8::from(self.is_leader)});
                json!({"type":"stats_ok","stats": stats})
            }
            _ => json!({"type":"error","code":10,"text":"not supported"}),
        };
        body["in_reply_to"] = json!(msg_id);
        body.to_string()
    }
}
