//! Faults on a real `paxos-node` cluster behind the harness's link proxies: isolating a node stops
//! its peer traffic and its writes while the majority carries on, and it serves again after the
//! heal; a cluster killed whole comes back from its data dirs with the value it had.

use harness::cluster::{Cluster, ClusterPlan};
use harness::proxy::{NetOptions, Network};
use harness::schedule::{cut_links, topology_grudge, Target};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// `paxos-node` from this target dir, built if missing.
fn paxos_node() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let bin = profile_dir.join("paxos-node");
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "-p", "paxos-node", "--target-dir"])
            .arg(profile_dir.parent().unwrap());
        if profile_dir.ends_with("release") {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().unwrap().success(),
            "building paxos-node failed"
        );
    }
    bin
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nemesis-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One request on a fresh connection; the reply, or None if none comes within `wait`.
async fn call(addr: SocketAddr, body: Value, wait: Duration) -> Option<Value> {
    let attempt = async {
        let s = TcpStream::connect(addr).await.ok()?;
        let (r, mut w) = s.into_split();
        let mut line = body.to_string();
        line.push('\n');
        w.write_all(line.as_bytes()).await.ok()?;
        let mut r = BufReader::new(r);
        let mut reply = String::new();
        r.read_line(&mut reply).await.ok()?;
        serde_json::from_str(&reply).ok()
    };
    timeout(wait, attempt).await.ok().flatten()
}

/// Retries `body` against `addr` until the reply has type `want`, within `deadline`.
async fn until(addr: SocketAddr, body: Value, want: &str, deadline: Duration) -> Value {
    let end = Instant::now() + deadline;
    loop {
        if let Some(r) = call(addr, body.clone(), Duration::from_secs(2)).await {
            if r["type"] == want {
                return r;
            }
        }
        assert!(
            Instant::now() < end,
            "no {want} from {addr} for {body} within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn launch(n: usize, dir: &std::path::Path) -> (Cluster, Network) {
    let mut plan = ClusterPlan::new(
        paxos_node(),
        n,
        dir,
        vec!["--variant".into(), "multi".into()],
    )
    .unwrap();
    let nodes: Vec<(String, SocketAddr)> = plan
        .nodes
        .iter()
        .map(|s| (s.id.clone(), s.listen))
        .collect();
    let net = Network::start_dedicated(&nodes, NetOptions::default()).unwrap();
    for ((from, to), addr) in plan.peer_addr.iter_mut() {
        *addr = net.proxy_addr(from, to).unwrap();
    }
    (Cluster::launch(plan).await.unwrap(), net)
}

fn write(v: u64, id: u64) -> Value {
    json!({"type": "write", "key": "k", "value": v, "msg_id": id})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_node_loses_its_peers_and_serves_again_after_heal() {
    let dir = scratch("paxos-partition");
    let (c, net) = launch(3, &dir).await;
    let client = |i: usize| c.plan.nodes[i].client;
    let long = Duration::from_secs(30);
    until(client(0), write(1, 1), "write_ok", long).await;

    let ids = c.ids();
    let cut = cut_links(&topology_grudge(Target::One, &ids).unwrap());
    assert_eq!(cut.len(), 4, "n1 is cut from n2 and n3, both ways");
    net.set_cut(&cut);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bytes = |from: &str, to: &str| {
        let s = net.stats(from, to).unwrap();
        s.bytes_fwd.load(Ordering::Relaxed) + s.bytes_back.load(Ordering::Relaxed)
    };
    let frozen: Vec<u64> = cut.iter().map(|(f, t)| bytes(f, t)).collect();
    let open_before = bytes("n2", "n3") + bytes("n3", "n2");

    // The majority side makes progress; the isolated node never completes a write.
    until(client(1), write(2, 2), "write_ok", long).await;
    for id in 3..6 {
        let r = call(client(0), write(id, id), Duration::from_secs(1)).await;
        assert_ne!(
            r.as_ref().map(|r| r["type"].clone()),
            Some(json!("write_ok")),
            "an isolated node cannot commit a write"
        );
    }
    let after: Vec<u64> = cut.iter().map(|(f, t)| bytes(f, t)).collect();
    assert_eq!(frozen, after, "no byte crossed a cut link");
    assert!(
        bytes("n2", "n3") + bytes("n3", "n2") > open_before,
        "the majority kept talking"
    );

    net.heal_all();
    until(client(0), write(9, 9), "write_ok", long).await;
    let r = until(
        client(2),
        json!({"type": "read", "key": "k", "msg_id": 10}),
        "read_ok",
        long,
    )
    .await;
    assert_eq!(r["value"], 9);
    c.shutdown().await;
    drop(net);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_killed_whole_restarts_with_its_data() {
    let dir = scratch("paxos-kill");
    let (c, net) = launch(3, &dir).await;
    let long = Duration::from_secs(30);
    until(c.plan.nodes[0].client, write(42, 1), "write_ok", long).await;
    let pids: Vec<i32> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(c.pid(i).await.unwrap());
        }
        v
    };
    for i in 0..3 {
        c.kill(i).await.unwrap();
    }
    for (i, old) in pids.iter().enumerate() {
        c.restart(i).await.unwrap();
        assert_ne!(c.pid(i).await.unwrap(), *old, "a new process");
    }
    let r = until(
        c.plan.nodes[1].client,
        json!({"type": "read", "key": "k", "msg_id": 2}),
        "read_ok",
        long,
    )
    .await;
    assert_eq!(
        r["value"], 42,
        "the acknowledged write survived SIGKILL of every node"
    );
    c.shutdown().await;
    drop(net);
    std::fs::remove_dir_all(&dir).unwrap();
}
