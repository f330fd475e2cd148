//! The tokio shell around the core: peer links (dial every `--peers` address, reconnect, never
//! assume delivery), the client port (JSON lines, many requests in flight per connection), the
//! ticker, and the disk. One thread owns the core: it takes every input that is waiting (up to
//! [`MAX_BATCH`]), steps the core through all of them and sends at once what the core's
//! [`Ready`](crate::core::Ready) says may leave now; a disk thread writes the records of every
//! batch waiting, syncs once (group commit) when any of them needs it, and then sends what waited
//! for those batches, client replies included. The shell does not decide what waits for what:
//! the core does ([`crate::core::ready`]).

use crate::core::{Bugs, Config, Core, Effects, Input, Timing, To, Variant, MAX_NODES};
use crate::durable::{Record, Snapshot};
use crate::kv::{Op, OpResult};
use crate::protocol::Msg;
use crate::storage::{DiskStats, Storage};
use anyhow::{Context, Result};
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub struct ShellConfig {
    pub id: String,
    pub listen: SocketAddr,
    pub client: SocketAddr,
    pub peers: Vec<(String, SocketAddr)>,
    /// The configuration governing slot 0 (`--members`); `None`: every node.
    pub members: Option<Vec<String>>,
    pub data_dir: PathBuf,
    pub variant: Variant,
    pub bugs: Bugs,
    pub tick: Duration,
    pub timing: Timing,
}

type Line = mpsc::UnboundedSender<String>;

enum Event {
    Tick,
    Peer { from: usize, msg: Msg },
    Client { conn: Line, msg_id: Json, op: Op },
    Stats { conn: Line, msg_id: Json },
}

/// The most inputs stepped through in one batch.
pub const MAX_BATCH: usize = 4096;

/// Peer messages waiting for a link; beyond this the link is slow or cut and messages drop.
const PEER_QUEUE: usize = 4096;

pub fn run(cfg: ShellConfig) -> Result<()> {
    // Every node orders the same ids the same way: index = position in the sorted list.
    let mut ids: Vec<String> = cfg.peers.iter().map(|(id, _)| id.clone()).collect();
    ids.push(cfg.id.clone());
    ids.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
    ids.dedup();
    if ids.len() != cfg.peers.len() + 1 {
        anyhow::bail!(
            "--peers: duplicate node id or this node's own id ({})",
            cfg.id
        );
    }
    if ids.len() > MAX_NODES {
        anyhow::bail!(
            "--peers: {} nodes (this one and {} peers), but paxos-node supports at most {MAX_NODES}",
            ids.len(),
            cfg.peers.len()
        );
    }
    let me = ids.iter().position(|i| *i == cfg.id).expect("pushed above");
    let index_of: HashMap<String, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), i))
        .collect();
    let members = match &cfg.members {
        None => 0,
        Some(names) => {
            members_bits(names, &index_of).map_err(|(_, e)| anyhow::anyhow!("--members: {e}"))?
        }
    };
    let (mut storage, durable, incarnation) = Storage::open(&cfg.data_dir)?;
    storage.skip_sync = cfg.bugs.unsynced_wal;
    let core_cfg = Config {
        me,
        n: ids.len(),
        members,
        variant: cfg.variant,
        bugs: cfg.bugs,
        incarnation,
        seed: incarnation.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ me as u64,
        timing: cfg.timing.clone(),
    };
    let core = Core::new(core_cfg, durable);
    storage.write_snapshot(&core.durable_snapshot())?;
    tracing::info!(
        id = %cfg.id, index = me, incarnation, variant = ?cfg.variant, bugs = ?cfg.bugs,
        "paxos-node starting"
    );

    // One thread runs the sockets and the core together: on 2 cores, handing every message
    // between threads cost more in wakeups than the work itself.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    let mut links: Vec<Option<mpsc::Sender<Arc<[u8]>>>> = vec![None; ids.len()];
    rt.block_on(async {
        let peer_listener = TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("--listen {}", cfg.listen))?;
        tokio::spawn(accept_peers(peer_listener, index_of.clone(), tx.clone()));
        for (id, addr) in &cfg.peers {
            let (ltx, lrx) = mpsc::channel(PEER_QUEUE);
            links[index_of[id]] = Some(ltx);
            tokio::spawn(peer_link(cfg.id.clone(), *addr, lrx));
        }
        let ticker_tx = tx.clone();
        let tick = cfg.tick;
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(tick);
            // A paused process must not see the ticks it missed: its clock stalls with it.
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
                if ticker_tx.send(Event::Tick).is_err() {
                    break;
                }
            }
        });
        let client_listener = TcpListener::bind(cfg.client)
            .await
            .with_context(|| format!("--client {}", cfg.client))?;
        let names = Arc::new(index_of.clone());
        tokio::spawn(accept_clients(client_listener, names, tx.clone()));
        anyhow::Ok(())
    })?;
    drop(tx);
    let result = rt.block_on(core_loop(core, storage, rx, links));
    rt.shutdown_background();
    result
}

/// Counters kept by the shell, merged into `stats`.
#[derive(Default)]
struct ShellStats {
    batches: u64,
    inputs: u64,
    client_requests: u64,
    peer_drops: Arc<AtomicU64>,
}

/// Effects ready to leave: peer messages, and replies with the connection they go to.
#[derive(Default)]
struct Outgoing {
    msgs: Vec<(To, Msg)>,
    replies: Vec<(Line, Json, OpResult)>,
}

impl Outgoing {
    /// Finds each reply's connection (a request without one is dropped).
    fn new(e: Effects, waiting: &mut HashMap<u64, (Line, Json)>) -> Outgoing {
        let replies = e
            .replies
            .into_iter()
            .filter_map(|(tag, r)| waiting.remove(&tag).map(|(c, id)| (c, id, r)))
            .collect();
        Outgoing {
            msgs: e.msgs,
            replies,
        }
    }

    fn send(self, links: &Links, drops: &AtomicU64) {
        for (to, m) in &self.msgs {
            send(links, *to, m, drops);
        }
        for (conn, msg_id, r) in self.replies {
            let _ = conn.send(reply_line(&msg_id, r));
        }
    }
}

/// What the disk thread gets from one batch (a [`DiskBatch`] with its replies' connections).
struct Job {
    number: u64,
    needs_sync: bool,
    records: Vec<Record>,
    snapshot: Option<Snapshot>,
    after_earlier: Outgoing,
    after_this: Outgoing,
}

type Links = Arc<Vec<Option<mpsc::Sender<Arc<[u8]>>>>>;

/// Steps the core through every waiting input, sends what may leave at once, and hands the rest
/// to the disk thread, which syncs in the background: the core never waits for the disk.
async fn core_loop(
    mut core: Core,
    storage: Storage,
    mut rx: mpsc::UnboundedReceiver<Event>,
    links: Vec<Option<mpsc::Sender<Arc<[u8]>>>>,
) -> Result<()> {
    let links: Links = Arc::new(links);
    let mut next_tag = 0u64;
    let mut waiting: HashMap<u64, (Line, Json)> = HashMap::new();
    let mut st = ShellStats::default();
    let disk_stats = storage.stats.clone();
    // The number of the last disk batch the disk thread made durable.
    let persisted = Arc::new(AtomicU64::new(0));
    let (dtx, drx) = std::sync::mpsc::channel::<Job>();
    let disk = {
        let links = links.clone();
        let drops = st.peer_drops.clone();
        let persisted = persisted.clone();
        std::thread::Builder::new()
            .name("disk".into())
            .spawn(move || disk_loop(storage, drx, links, drops, persisted))?
    };
    let mut batch = Vec::with_capacity(1024);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        st.batches += 1;
        st.inputs += batch.len() as u64;
        core.set_wall_ms(wall_ms());
        for ev in batch.drain(..) {
            match ev {
                Event::Tick => core.step(Input::Tick),
                Event::Peer { from, msg } => core.step(Input::Peer { from, msg }),
                Event::Client { conn, msg_id, op } => {
                    st.client_requests += 1;
                    next_tag += 1;
                    waiting.insert(next_tag, (conn, msg_id));
                    core.step(Input::Client { tag: next_tag, op });
                }
                Event::Stats { conn, msg_id } => {
                    let body = stats_line(&core, &disk_stats, &st, &msg_id);
                    let _ = conn.send(body);
                }
            }
        }
        core.end_batch();
        core.on_persisted(persisted.load(Acquire));
        let ready = core.ready();
        Outgoing::new(ready.now, &mut waiting).send(&links, &st.peer_drops);
        let Some(b) = ready.disk else { continue };
        let job = Job {
            number: b.number,
            needs_sync: b.needs_sync(),
            after_earlier: Outgoing::new(b.after_earlier, &mut waiting),
            after_this: Outgoing::new(b.after_this, &mut waiting),
            records: b.records,
            snapshot: b.snapshot,
        };
        if dtx.send(job).is_err() {
            break;
        }
    }
    drop(dtx);
    disk.join()
        .map_err(|_| anyhow::anyhow!("disk thread panicked"))?
}

/// The wall clock, in ms since the epoch (what a clock fault sets wrong).
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn stats_line(core: &Core, d: &DiskStats, st: &ShellStats, msg_id: &Json) -> String {
    let mut s: serde_json::Map<String, Json> = core
        .stats()
        .into_iter()
        .map(|(k, v)| (k, Json::from(v)))
        .collect();
    s.insert("fsyncs".into(), d.fsyncs.load(Relaxed).into());
    s.insert("fsync_micros".into(), d.fsync_micros.load(Relaxed).into());
    s.insert(
        "snapshots_written".into(),
        d.snapshots_written.load(Relaxed).into(),
    );
    s.insert("batches".into(), st.batches.into());
    s.insert("inputs".into(), st.inputs.into());
    s.insert("client_requests".into(), st.client_requests.into());
    s.insert("peer_drops".into(), st.peer_drops.load(Relaxed).into());
    s.insert("clock_ms".into(), wall_ms().into());
    let body = json!({"type": "stats_ok", "in_reply_to": msg_id, "stats": s});
    body.to_string() + "\n"
}

/// Writes every waiting batch's records, syncs once (group commit), then sends what waited.
fn disk_loop(
    mut storage: Storage,
    rx: std::sync::mpsc::Receiver<Job>,
    links: Links,
    drops: Arc<AtomicU64>,
    persisted: Arc<AtomicU64>,
) -> Result<()> {
    let mut jobs = Vec::new();
    while let Ok(mut first) = rx.recv() {
        // Every batch before `first` was made durable by the previous round.
        std::mem::take(&mut first.after_earlier).send(&links, &drops);
        jobs.push(first);
        jobs.extend(rx.try_iter());
        let needs_sync = jobs.iter().any(|j| j.needs_sync);
        for j in &jobs {
            storage.write_batch(j.snapshot.as_ref(), &j.records)?;
        }
        if needs_sync {
            storage.sync()?;
        }
        let last = jobs.last().expect("one at least").number;
        persisted.store(last, Release);
        for j in jobs.drain(..) {
            j.after_earlier.send(&links, &drops);
            j.after_this.send(&links, &drops);
        }
    }
    Ok(())
}

/// Serializes once and queues the bytes on each link; a full queue (slow or cut link) drops.
fn send(links: &Links, to: To, msg: &Msg, drops: &AtomicU64) {
    let mut bytes = serde_json::to_vec(msg).expect("messages serialize");
    bytes.push(b'\n');
    let bytes: Arc<[u8]> = bytes.into();
    let one = |l: &mpsc::Sender<Arc<[u8]>>| {
        if l.try_send(bytes.clone()).is_err() {
            drops.fetch_add(1, Relaxed);
        }
    };
    match to {
        To::One(i) => {
            if let Some(Some(l)) = links.get(i) {
                one(l)
            }
        }
        To::All => links.iter().flatten().for_each(one),
    }
}

fn reply_line(msg_id: &Json, r: OpResult) -> String {
    let body = match r {
        OpResult::Read(v) => json!({"type": "read_ok", "value": v, "in_reply_to": msg_id}),
        OpResult::Write => json!({"type": "write_ok", "in_reply_to": msg_id}),
        OpResult::Cas => json!({"type": "cas_ok", "in_reply_to": msg_id}),
        OpResult::Reconfigured => json!({"type": "reconfigure_ok", "in_reply_to": msg_id}),
        OpResult::Error(code, text) => {
            json!({"type": "error", "code": code, "text": text, "in_reply_to": msg_id})
        }
    };
    body.to_string() + "\n"
}

async fn accept_peers(
    l: TcpListener,
    index_of: HashMap<String, usize>,
    tx: mpsc::UnboundedSender<Event>,
) {
    loop {
        let Ok((s, _)) = l.accept().await else {
            continue;
        };
        let _ = s.set_nodelay(true);
        tokio::spawn(read_peer(s, index_of.clone(), tx.clone()));
    }
}

/// Reads one inbound peer connection: a hello line with the sender's id, then messages.
async fn read_peer(
    s: TcpStream,
    index_of: HashMap<String, usize>,
    tx: mpsc::UnboundedSender<Event>,
) {
    let mut lines = BufReader::with_capacity(1 << 16, s).lines();
    let Ok(Some(hello)) = lines.next_line().await else {
        return;
    };
    let Some(&from) = index_of.get(hello.trim()) else {
        tracing::warn!("peer connection from unknown node {hello:?}; closing it");
        return;
    };
    while let Ok(Some(line)) = lines.next_line().await {
        match serde_json::from_str::<Msg>(&line) {
            Ok(msg) => {
                if tx.send(Event::Peer { from, msg }).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!("bad message from {hello}: {e}; closing the link");
                return;
            }
        }
    }
}

/// Keeps one outbound link to a peer (through the harness's proxy): dial, write, and on any
/// error drop what is queued and dial again.
async fn peer_link(me: String, addr: SocketAddr, mut rx: mpsc::Receiver<Arc<[u8]>>) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let conn = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await;
        let Ok(Ok(s)) = conn else {
            while rx.try_recv().is_ok() {}
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(200));
            continue;
        };
        backoff = Duration::from_millis(10);
        let _ = s.set_nodelay(true);
        let mut w = BufWriter::with_capacity(1 << 16, s);
        if w.write_all(format!("{me}\n").as_bytes()).await.is_err() || w.flush().await.is_err() {
            continue;
        }
        'conn: loop {
            let Some(first) = rx.recv().await else { return };
            if w.write_all(&first).await.is_err() {
                break 'conn;
            }
            while let Ok(m) = rx.try_recv() {
                if w.write_all(&m).await.is_err() {
                    break 'conn;
                }
            }
            if w.flush().await.is_err() {
                break 'conn;
            }
        }
    }
}

/// Node names to their index, for `reconfigure` requests.
type Names = Arc<HashMap<String, usize>>;

async fn accept_clients(l: TcpListener, names: Names, tx: mpsc::UnboundedSender<Event>) {
    loop {
        let Ok((s, _)) = l.accept().await else {
            continue;
        };
        let _ = s.set_nodelay(true);
        tokio::spawn(serve_client(s, names.clone(), tx.clone()));
    }
}

/// The members named, as bits; the error is a reply code (1 unknown node, 12 malformed) and text.
fn members_bits(names: &[String], index_of: &HashMap<String, usize>) -> Result<u64, (u32, String)> {
    if names.is_empty() {
        return Err((12, "an empty configuration".into()));
    }
    let mut bits = 0u64;
    for name in names {
        let Some(i) = index_of.get(name) else {
            let mut known: Vec<&String> = index_of.keys().collect();
            known.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
            return Err((1, format!("unknown node {name:?} (known: {known:?})")));
        };
        bits |= 1 << i;
    }
    Ok(bits)
}

async fn serve_client(s: TcpStream, names: Names, tx: mpsc::UnboundedSender<Event>) {
    let (r, w) = s.into_split();
    let (ltx, mut lrx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut w = BufWriter::new(w);
        while let Some(line) = lrx.recv().await {
            if w.write_all(line.as_bytes()).await.is_err() {
                return;
            }
            while let Ok(line) = lrx.try_recv() {
                if w.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
            if w.flush().await.is_err() {
                return;
            }
        }
    });
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        match parse_request(&line) {
            Ok(Request::Op(msg_id, op)) => {
                let _ = tx.send(Event::Client {
                    conn: ltx.clone(),
                    msg_id,
                    op,
                });
            }
            Ok(Request::Reconfigure(msg_id, members)) => match members_bits(&members, &names) {
                Ok(members) => {
                    let _ = tx.send(Event::Client {
                        conn: ltx.clone(),
                        msg_id,
                        op: Op::Reconfigure { members },
                    });
                }
                Err((code, text)) => {
                    let _ = ltx.send(reply_line(&msg_id, OpResult::Error(code, text)));
                }
            },
            Ok(Request::Stats(msg_id)) => {
                let _ = tx.send(Event::Stats {
                    conn: ltx.clone(),
                    msg_id,
                });
            }
            Err((msg_id, code, text)) => {
                let _ = ltx.send(reply_line(&msg_id, OpResult::Error(code, text)));
            }
        }
    }
}

enum Request {
    Op(Json, Op),
    Stats(Json),
    /// The members named (mapped to nodes by the caller, who knows the names).
    Reconfigure(Json, Vec<String>),
}

/// Parses one client line; errors carry the reply (code 12 malformed, 10 not supported).
fn parse_request(line: &str) -> Result<Request, (Json, u32, String)> {
    let v: Json =
        serde_json::from_str(line).map_err(|e| (Json::Null, 12, format!("not JSON: {e}")))?;
    let msg_id = v.get("msg_id").cloned().unwrap_or(Json::Null);
    let bad = |what: &str| (msg_id.clone(), 12, what.to_string());
    let key = || -> Result<String, (Json, u32, String)> {
        match v.get("key") {
            Some(Json::String(s)) => Ok(s.clone()),
            Some(Json::Null) | None => Err(bad("missing \"key\"")),
            Some(other) => Ok(other.to_string()),
        }
    };
    let field = |name: &str| {
        v.get(name)
            .cloned()
            .ok_or_else(|| bad(&format!("missing \"{name}\"")))
    };
    if msg_id.is_null() {
        return Err(bad("missing \"msg_id\""));
    }
    let op = match v.get("type").and_then(Json::as_str) {
        Some("read") => Op::Read { key: key()? },
        Some("write") => Op::Write {
            key: key()?,
            value: field("value")?,
        },
        Some("cas") => Op::Cas {
            key: key()?,
            from: field("from")?,
            to: field("to")?,
        },
        Some("stats") => return Ok(Request::Stats(msg_id)),
        Some("reconfigure") => {
            let names = match v.get("members") {
                Some(Json::Array(a)) => a
                    .iter()
                    .map(|m| m.as_str().map(str::to_string))
                    .collect::<Option<Vec<String>>>()
                    .ok_or_else(|| bad("\"members\" must list node names (strings)"))?,
                Some(_) => return Err(bad("\"members\" must be a list of node names")),
                None => return Err(bad("missing \"members\"")),
            };
            return Ok(Request::Reconfigure(msg_id, names));
        }
        Some(t) => {
            return Err((
                msg_id.clone(),
                10,
                format!("unsupported request type {t:?}"),
            ))
        }
        None => return Err(bad("missing \"type\"")),
    };
    Ok(Request::Op(msg_id, op))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_requests_and_names_what_is_wrong() {
        let Ok(Request::Op(id, Op::Cas { key, from, to })) =
            parse_request(r#"{"type":"cas","key":"k","from":3,"to":4,"msg_id":3}"#)
        else {
            panic!("cas did not parse");
        };
        assert_eq!(
            (id, key, from, to),
            (json!(3), "k".to_string(), json!(3), json!(4))
        );
        assert!(matches!(
            parse_request(r#"{"type":"stats","msg_id":9}"#),
            Ok(Request::Stats(_))
        ));
        let Err((id, code, text)) = parse_request(r#"{"type":"write","key":"k","msg_id":2}"#)
        else {
            panic!("write without value accepted");
        };
        assert_eq!((id, code), (json!(2), 12));
        assert!(text.contains("value"), "{text}");
        let Err((_, code, _)) = parse_request(r#"{"type":"txn","msg_id":2}"#) else {
            panic!("txn accepted");
        };
        assert_eq!(code, 10);
        assert!(parse_request("{oops").is_err());
    }

    #[test]
    fn replies_follow_the_contract() {
        assert_eq!(
            reply_line(&json!(1), OpResult::Read(Json::Null)),
            "{\"in_reply_to\":1,\"type\":\"read_ok\",\"value\":null}\n"
        );
        let e = reply_line(&json!(3), OpResult::Error(22, "x".into()));
        let v: Json = serde_json::from_str(&e).unwrap();
        assert_eq!(
            (v["type"].as_str(), v["code"].as_u64()),
            (Some("error"), Some(22))
        );
    }
}
