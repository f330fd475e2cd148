//! `etcd-node`: a real etcd member behind the node contract (docs/node-contract.md), the worked
//! example of testing a system that does not speak the contract. It starts `etcd` with the node's
//! id, addresses and `--data-dir`, and answers the contract's client protocol by running `etcdctl`
//! (etcd's own v3 client) against its local member:
//!
//! - `read` is `etcdctl get` (linearizable, etcd's default; never `--consistency=s`);
//! - `write` is `etcdctl put`;
//! - `cas` is `etcdctl txn` comparing the value: a failed compare is a definite
//!   `precondition-failed`;
//! - a timeout or any other error of a write or cas is indefinite (code 0, `info`); of a read,
//!   `temporarily-unavailable` (a read changes nothing);
//! - `stats` reports `is_leader` from `etcdctl endpoint status`.
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

/// Runs `etcdctl ARGS` against the local member: stdout, or stderr as the error.
async fn etcdctl(url: &str, args: &[&str], stdin: Option<String>) -> Result<String, String> {
    let mut cmd = Command::new("etcdctl");
    cmd.env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            url,
            "--dial-timeout=1s",
            "--command-timeout=2s",
        ])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run etcdctl: {e}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().await.map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn error(code: u32, text: &str) -> Value {
    json!({"type": "error", "code": code, "text": text})
}

/// One request's reply body (without `in_reply_to`).
async fn answer(url: &str, req: &Value) -> Value {
    // A key as etcd sees it: a string key's text, or a number's digits.
    let key = match &req["key"] {
        Value::String(k) => k.clone(),
        other => other.to_string(),
    };
    match req["type"].as_str().unwrap_or("") {
        "read" => match etcdctl(url, &["get", &key, "--print-value-only"], None).await {
            Ok(out) => {
                let v = out.trim();
                let value = if v.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(v).unwrap_or(Value::Null)
                };
                json!({"type": "read_ok", "value": value})
            }
            Err(e) => error(11, &e),
        },
        "write" => match etcdctl(url, &["put", &key, &req["value"].to_string()], None).await {
            Ok(_) => json!({"type": "write_ok"}),
            Err(e) => error(0, &e),
        },
        "cas" => {
            let txn = format!(
                "value(\"{}\") = \"{}\"\n\nput {} {}\n\n\n",
                key, req["from"], key, req["to"]
            );
            match etcdctl(url, &["txn"], Some(txn)).await {
                Ok(out) if out.starts_with("SUCCESS") => json!({"type": "cas_ok"}),
                Ok(_) => error(22, "compare failed"),
                Err(e) => error(0, &e),
            }
        }
        "stats" => match etcdctl(url, &["endpoint", "status", "-w", "json"], None).await {
            Ok(out) => {
                let s: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
                let st = &s[0]["Status"];
                let leader = st["leader"].as_u64();
                let me = st["header"]["member_id"].as_u64();
                let is_leader = u8::from(leader.is_some() && leader == me);
                json!({"type": "stats_ok", "stats": {"is_leader": is_leader}})
            }
            Err(e) => error(11, &e),
        },
        other => error(10, &format!("unsupported request type {other:?}")),
    }
}

async fn serve(stream: TcpStream, url: Arc<String>) {
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
        let (tx, url) = (tx.clone(), url.clone());
        tokio::spawn(async move {
            let mut reply = answer(&url, &req).await;
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
    let url = Arc::new(url);
    loop {
        tokio::select! {
            s = etcd.wait() => bail!("etcd exited ({:?})", s),
            c = listener.accept() => {
                if let Ok((stream, _)) = c {
                    tokio::spawn(serve(stream, url.clone()));
                }
            }
        }
    }
}
