//! `etcd-node`: a real etcd member behind the node contract (docs/node-contract.md), the worked
//! example of testing a system that does not speak the contract. It starts `etcd` with the node's
//! id, addresses and `--data-dir`, and answers the contract's client protocol by calling its local
//! member's v3 API as JSON over HTTP (etcd's gRPC gateway, `/v3/kv/...`):
//!
//! - `read` is a range request (linearizable, etcd's default; never `serializable`);
//! - `write` is a put;
//! - `cas` is a txn comparing the value: a failed compare is a definite `precondition-failed`;
//! - a write or cas that never reached etcd (connection refused) is a definite
//!   `temporarily-unavailable`; a timeout or an etcd error is indefinite (code 0, `info`); a
//!   failed read is `temporarily-unavailable` (a read changes nothing);
//! - `stats` reports `is_leader` from the maintenance status.
//!
//! etcd keeps one address per member in its membership, so it needs `harness test --net netns`
//! (every node given the same real address for a peer). Its client port is 2379 on the node's own
//! address. etcd runs in the node's process group, so pause, kill and restart reach it; a
//! restarted member finds its data in `<data-dir>/etcd`.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::sync::mpsc;

struct Args {
    id: String,
    listen: SocketAddr,
    client: SocketAddr,
    peers: Vec<(String, SocketAddr)>,
    data_dir: String,
}

fn parse_args() -> Result<Args> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str| -> Result<String> {
        let i = argv
            .iter()
            .position(|a| a == flag)
            .ok_or_else(|| anyhow!("{flag} is required"))?;
        argv.get(i + 1)
            .cloned()
            .ok_or_else(|| anyhow!("{flag} needs a value"))
    };
    let addr = |flag: &str| -> Result<SocketAddr> {
        get(flag)?
            .parse()
            .map_err(|e| anyhow!("{flag}: not an address: {e}"))
    };
    let mut peers = Vec::new();
    for p in get("--peers")?.split(',').filter(|p| !p.is_empty()) {
        let (id, a) = p
            .split_once('=')
            .ok_or_else(|| anyhow!("--peers: {p:?} is not id=addr"))?;
        let a = a
            .parse()
            .map_err(|e| anyhow!("--peers: {p:?}: not an address: {e}"))?;
        peers.push((id.to_string(), a));
    }
    Ok(Args {
        id: get("--id")?,
        listen: addr("--listen")?,
        client: addr("--client")?,
        peers,
        data_dir: get("--data-dir")?,
    })
}

/// etcd's client URL on this member's own address.
fn etcd_client_url(listen: SocketAddr) -> String {
    format!("http://{}:2379", listen.ip())
}

fn start_etcd(a: &Args) -> Result<tokio::process::Child> {
    let mut cluster = vec![format!("{}=http://{}", a.id, a.listen)];
    cluster.extend(
        a.peers
            .iter()
            .map(|(id, addr)| format!("{id}=http://{addr}")),
    );
    let url = etcd_client_url(a.listen);
    let mut cmd = Command::new("etcd");
    cmd.args(["--name", &a.id])
        .arg("--data-dir")
        .arg(format!("{}/etcd", a.data_dir))
        .args(["--listen-peer-urls", &format!("http://{}", a.listen)])
        .args([
            "--initial-advertise-peer-urls",
            &format!("http://{}", a.listen),
        ])
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args(["--initial-cluster", &cluster.join(",")])
        .args([
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            "jepsen-rs",
        ])
        .stdin(Stdio::null());
    // SAFETY: prctl is async-signal-safe; etcd must not outlive this adapter.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            Ok(())
        });
    }
    cmd.spawn()
        .context("cannot start `etcd` (Debian package etcd-server; scripts/setup installs it)")
}

/// Waits until etcd accepts TCP on its client port (not until it has a quorum: a member
/// restarted during a partition must still come up).
async fn wait_etcd(url: &str) -> Result<()> {
    let addr = url.trim_start_matches("http://").to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(&addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("etcd did not open its client port {addr} within 20 s")
}

/// etcd's v3 API as JSON (its gRPC gateway, on by default in 3.4) on the local member: one HTTP
/// connection pool per adapter instead of one `etcdctl` process per operation.
struct Etcd {
    http: reqwest::Client,
    url: String,
}

/// Why a call got no answer: `Unsent` means the request never reached etcd (nothing changed).
enum CallError {
    Unsent(String),
    Indefinite(String),
}

impl CallError {
    fn text(&self) -> &str {
        match self {
            CallError::Unsent(t) | CallError::Indefinite(t) => t,
        }
    }
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(s: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    String::from_utf8(bytes).ok()
}

impl Etcd {
    fn new(url: String) -> Result<Etcd> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Etcd { http, url })
    }

    /// POSTs `body` to `/v3/<path>`; the reply's JSON, or why there is none. An answer with
    /// an `error` field (etcd's gRPC status) is indefinite: a timed-out proposal may still commit.
    async fn call(&self, path: &str, body: Value) -> Result<Value, CallError> {
        let sent = self
            .http
            .post(format!("{}/v3/{path}", self.url))
            .json(&body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Err(CallError::Unsent(e.to_string())),
            Err(e) => return Err(CallError::Indefinite(e.to_string())),
        };
        let v: Value = resp
            .json()
            .await
            .map_err(|e| CallError::Indefinite(e.to_string()))?;
        match v.get("error") {
            Some(e) => Err(CallError::Indefinite(
                e.as_str().unwrap_or("etcd error").to_string(),
            )),
            None => Ok(v),
        }
    }
}

fn error(code: u32, text: &str) -> Value {
    json!({"type": "error", "code": code, "text": text})
}

/// A failed write or cas: definite (`temporarily-unavailable`) when etcd never got it, else
/// indefinite (code 0, `info`).
fn update_error(e: CallError) -> Value {
    match e {
        CallError::Unsent(t) => error(11, &t),
        CallError::Indefinite(t) => error(0, &t),
    }
}

/// One request's reply body (without `in_reply_to`).
async fn answer(etcd: &Etcd, req: &Value) -> Value {
    // A key as etcd sees it: a string key's text, or a number's digits.
    let key = b64(&match &req["key"] {
        Value::String(k) => k.clone(),
        other => other.to_string(),
    });
    match req["type"].as_str().unwrap_or("") {
        // Linearizable: `serializable` is left false.
        "read" => match etcd.call("kv/range", json!({"key": key})).await {
            Ok(v) => {
                let value = v["kvs"][0]["value"]
                    .as_str()
                    .and_then(unb64)
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(Value::Null);
                json!({"type": "read_ok", "value": value})
            }
            // A read changes nothing: a failed one is definite.
            Err(e) => error(11, e.text()),
        },
        "write" => {
            let body = json!({"key": key, "value": b64(&req["value"].to_string())});
            match etcd.call("kv/put", body).await {
                Ok(_) => json!({"type": "write_ok"}),
                Err(e) => update_error(e),
            }
        }
        "cas" => {
            let body = json!({
                "compare": [{"key": key, "result": "EQUAL", "target": "VALUE",
                             "value": b64(&req["from"].to_string())}],
                "success": [{"request_put": {"key": key, "value": b64(&req["to"].to_string())}}],
            });
            match etcd.call("kv/txn", body).await {
                // proto3 JSON leaves out a false `succeeded`.
                Ok(v) if v["succeeded"] == json!(true) => json!({"type": "cas_ok"}),
                Ok(_) => error(22, "compare failed"),
                Err(e) => update_error(e),
            }
        }
        "stats" => match etcd.call("maintenance/status", json!({})).await {
            Ok(v) => {
                // uint64 ids come as strings in proto3 JSON.
                let leader = v["leader"].as_str();
                let me = v["header"]["member_id"].as_str();
                let is_leader = u8::from(leader.is_some() && leader == me);
                json!({"type": "stats_ok", "stats": {"is_leader": is_leader}})
            }
            Err(e) => error(11, e.text()),
        },
        other => error(10, &format!("unsupported request type {other:?}")),
    }
}

async fn serve(stream: TcpStream, etcd: Arc<Etcd>) {
    let (rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let writer = tokio::spawn(async move {
        while let Some(v) = rx.recv().await {
            let line = format!("{v}\n");
            if wr.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let mut lines = BufReader::new(rd).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(req) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let (tx, etcd) = (tx.clone(), etcd.clone());
        tokio::spawn(async move {
            let mut reply = answer(&etcd, &req).await;
            reply["in_reply_to"] = req["msg_id"].clone();
            let _ = tx.send(reply);
        });
    }
    drop(tx);
    let _ = writer.await;
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("etcd-node: {e:#}");
        std::process::exit(2);
    }
}

async fn run() -> Result<()> {
    let args = parse_args()?;
    let url = etcd_client_url(args.listen);
    let mut etcd = start_etcd(&args)?;
    tokio::select! {
        r = wait_etcd(&url) => r?,
        s = etcd.wait() => bail!("etcd exited at start ({:?}); see the lines above", s),
    }
    let listener = TcpListener::bind(args.client)
        .await
        .with_context(|| format!("cannot bind --client {}", args.client))?;
    eprintln!(
        "etcd-node {}: etcd at {url}, clients on {}",
        args.id, args.client
    );
    let client = Arc::new(Etcd::new(url)?);
    loop {
        tokio::select! {
            s = etcd.wait() => bail!("etcd exited ({:?})", s),
            c = listener.accept() => {
                if let Ok((stream, _)) = c {
                    tokio::spawn(serve(stream, client.clone()));
                }
            }
        }
    }
}
