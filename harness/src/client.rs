//! Clients: `--concurrency` logical processes (tokio tasks) spread over the nodes round-robin,
//! each running a closed loop of operations and recording every invoke and completion in the
//! history.
//!
//! The processes talking to one node share one connection to it (a [`Link`]): requests carry
//! unique `msg_id`s, a writer task batches whatever requests are queued into one write, and a
//! reader task hands each reply to the operation waiting for its `in_reply_to`. This is what the
//! contract allows and what lets the harness drive tens of thousands of operations per second.
//! A reply to an operation that already timed out is dropped; garbage, or a reply to an id never
//! sent, breaks the connection: every operation waiting on it ends `info` with the reason.
//!
//! As in Jepsen, a process whose operation ends indefinitely (`info`: timeout, connection lost
//! after sending, an indefinite error code, a reply we cannot understand) is retired: its
//! connection is dropped and the slot continues as process `id + concurrency`, so a late effect of
//! the old operation can never be confused with a new one.

use crate::history::{Entry, History};
use checker::history::{EventType, Process};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use workloads::generators::{Generator, Op};

/// Longest reply line we accept; anything longer is garbage.
const MAX_LINE: u64 = 1 << 20;
/// Pause after a connection attempt failed, so a dead node is not hammered in a hot loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(50);

const FS: [&str; 3] = ["read", "write", "cas"];

/// Live counters, read by the progress line and the summary.
#[derive(Default)]
pub struct Stats {
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
    /// Operations the service answered: ok, plus fails that observed the state (a cas whose
    /// `from` differed, a missing key). The numerator of availability.
    pub answered: AtomicU64,
    /// Replies that broke the node contract (`bad-reply: ...` errors), and the first of them.
    pub bad_replies: AtomicU64,
    first_bad_reply: Mutex<Option<String>>,
    /// `[f][ok, fail, info]` with f in read, write, cas.
    by_f: [[AtomicU64; 3]; 3],
    /// Latency of each `ok` operation in microseconds (4 bytes per op).
    latencies_us: Mutex<Vec<u32>>,
}

impl Stats {
    fn count(&self, f: &str, kind: EventType, error: Option<&str>, latency: Duration) {
        let observed = matches!(error, Some("precondition-failed" | "key-does-not-exist"));
        if let Some(e) = error.filter(|e| e.starts_with("bad-reply")) {
            if self.bad_replies.fetch_add(1, Ordering::Relaxed) == 0 {
                *self
                    .first_bad_reply
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(e.into());
            }
        }
        if kind == EventType::Ok || observed {
            self.answered.fetch_add(1, Ordering::Relaxed);
        }
        let (total, col) = match kind {
            EventType::Ok => (&self.ok, 0),
            EventType::Fail => (&self.fail, 1),
            _ => (&self.info, 2),
        };
        total.fetch_add(1, Ordering::Relaxed);
        if let Some(row) = FS.iter().position(|x| *x == f) {
            self.by_f[row][col].fetch_add(1, Ordering::Relaxed);
        }
        if kind == EventType::Ok {
            let us = latency.as_micros().min(u32::MAX as u128) as u32;
            self.latencies_us
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(us);
        }
    }

    /// How many replies broke the node contract, and the first such error.
    pub fn bad_replies(&self) -> Option<(u64, String)> {
        let first = self
            .first_bad_reply
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        first
            .clone()
            .map(|e| (self.bad_replies.load(Ordering::Relaxed), e))
    }

    /// `{"read": {"ok":n,"fail":n,"info":n}, ...}`
    pub fn by_f_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (row, f) in FS.iter().enumerate() {
            let c = &self.by_f[row];
            m.insert(
                f.to_string(),
                json!({"ok": c[0].load(Ordering::Relaxed), "fail": c[1].load(Ordering::Relaxed),
                       "info": c[2].load(Ordering::Relaxed)}),
            );
        }
        Value::Object(m)
    }

    /// Latency percentiles of ok operations in milliseconds: `(p50, p95, p99, max)`.
    pub fn latency_ms(&self) -> Option<(f64, f64, f64, f64)> {
        let mut v = self
            .latencies_us
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        Some((at(0.5), at(0.95), at(0.99), at(1.0)))
    }

    /// Share of completed operations the service answered (see `answered`); 0 when none ran.
    pub fn availability(&self) -> f64 {
        let (ok, fail, info) = self.counts();
        let total = ok + fail + info;
        if total == 0 {
            return 0.0;
        }
        self.answered.load(Ordering::Relaxed) as f64 / total as f64
    }

    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.fail.load(Ordering::Relaxed),
            self.info.load(Ordering::Relaxed),
        )
    }
}

/// What all client processes of a run share.
pub struct Clients {
    pub history: Arc<History>,
    pub stats: Arc<Stats>,
    pub generator: Mutex<Box<dyn Generator>>,
    /// `(id, client address)` per node.
    pub nodes: Vec<(String, SocketAddr)>,
    pub concurrency: usize,
    pub op_timeout: Duration,
    /// Total operations per second over all processes; `None` = as fast as replies come.
    pub rate: Option<f64>,
    pub seed: u64,
    /// Set by [`Clients::stop`] to end the main phase: processes finish their current operation
    /// and return; one waiting out its `--rate` delay returns at once.
    stop: watch::Sender<bool>,
    /// Highest process id used so far.
    max_process: AtomicU64,
    /// The shared connection to each node, made on first use and remade after it breaks.
    links: Vec<tokio::sync::Mutex<Option<Arc<Link>>>>,
    /// The nodes clients talk to: the members now (every node unless membership changes).
    pub members: Arc<crate::membership::Members>,
}

/// How one operation ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Completion {
    Ok(Value),
    Fail(String),
    Info(String),
}

impl Clients {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        history: Arc<History>,
        generator: Box<dyn Generator>,
        nodes: Vec<(String, SocketAddr)>,
        concurrency: usize,
        op_timeout: Duration,
        rate: Option<f64>,
        seed: u64,
    ) -> Arc<Clients> {
        let n = nodes.len();
        Arc::new(Clients {
            history,
            stats: Arc::new(Stats::default()),
            generator: Mutex::new(generator),
            concurrency: concurrency.max(1),
            op_timeout,
            rate,
            seed,
            stop: watch::channel(false).0,
            max_process: AtomicU64::new(0),
            links: (0..n).map(|_| tokio::sync::Mutex::new(None)).collect(),
            members: Arc::new(crate::membership::Members::new(
                nodes.iter().map(|(id, _)| id.clone()).collect(),
            )),
            nodes,
        })
    }

    /// Spawns the `concurrency` processes of the main phase.
    pub fn spawn_main(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        use tracing::Instrument;
        (0..self.concurrency)
            .map(|slot| {
                let me = self.clone();
                tokio::spawn(async move { me.main_loop(slot).await }.in_current_span())
            })
            .collect()
    }

    /// Ends the main phase (see the `stop` field).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    async fn main_loop(self: Arc<Self>, slot: usize) {
        let mut p = ClientProcess::new(slot as u64);
        let mut rng = SmallRng::seed_from_u64(self.seed ^ (slot as u64).wrapping_mul(0x9E37));
        let mut stop = self.stop.subscribe();
        while !self.stopped() {
            if let Some(rate) = self.rate {
                // Jepsen's stagger: a uniform delay averaging concurrency / rate per process.
                // A low rate makes it long, so the end of the main phase cuts it short.
                let mean = (self.concurrency as f64 / rate).min(crate::duration::MAX_SECS);
                let d = crate::duration::secs(rng.gen_range(0.0..=2.0 * mean));
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = stop.wait_for(|v| *v) => break,
                }
            }
            let op = self
                .generator
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .next_op(slot);
            // A removed node's clients move to the members left (its replies so far stay).
            let node = self.members.route(slot);
            if p.invoke(&self, &op, node).await {
                tokio::time::sleep(CONNECT_BACKOFF).await;
            }
        }
    }

    /// The final phase: reads every key from every member, `concurrency` at a time, as fresh
    /// processes. Recorded like any other operation.
    pub async fn final_reads(self: &Arc<Self>, keys: Vec<Option<String>>) {
        use tracing::Instrument;
        let members = self.members.indices();
        let work: Vec<(Option<String>, usize)> = keys
            .iter()
            .flat_map(|k| members.iter().map(move |n| (k.clone(), *n)))
            .collect();
        let queue = Arc::new(Mutex::new(work.into_iter()));
        let c = self.concurrency as u64;
        let base = (self.max_process.load(Ordering::Relaxed) / c + 1) * c;
        let workers: Vec<_> = (0..self.concurrency as u64)
            .map(|w| {
                let me = self.clone();
                let queue = queue.clone();
                tokio::spawn(
                    async move {
                        let mut p = ClientProcess::new(base + w);
                        loop {
                            let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                            let Some((key, node)) = next else { break };
                            p.invoke(&me, &Op::read(key), node).await;
                        }
                    }
                    .in_current_span(),
                )
            })
            .collect();
        for w in workers {
            let _ = w.await;
        }
    }
}

/// Where a reply goes: the value of the reply, or why the operation is indefinite.
type ReplyTx = oneshot::Sender<Result<Value, String>>;

/// One shared connection to a node (see the module doc).
struct Link {
    shared: Arc<LinkShared>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

struct LinkShared {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    waiting: HashMap<u64, ReplyTx>,
    last_id: u64,
    /// Set when the connection broke; no new request may wait on it.
    broken: Option<String>,
}

impl LinkShared {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the link broken and ends every waiting operation with `reason`.
    fn break_with(&self, reason: String) {
        let mut p = self.pending();
        if p.broken.is_none() {
            tracing::debug!(%reason, waiting = p.waiting.len(), "client connection broken");
            p.broken = Some(reason.clone());
        }
        for (_, tx) in p.waiting.drain() {
            let _ = tx.send(Err(reason.clone()));
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Link {
    fn start(stream: TcpStream, node: &str) -> Link {
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        let shared = Arc::new(LinkShared {
            pending: Mutex::new(Pending::default()),
        });
        let (out, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(w, rx, shared.clone()));
        let reader = tokio::spawn(read_loop(BufReader::new(r), shared.clone(), node.into()));
        Link {
            shared,
            out,
            tasks: [writer, reader],
        }
    }

    fn is_broken(&self) -> bool {
        self.shared.pending().broken.is_some()
    }

    /// Sends `body` (a JSON object without its closing brace) with a fresh `msg_id` and waits
    /// for the reply until `deadline`.
    async fn call(&self, body: &str, deadline: tokio::time::Instant) -> Result<Value, String> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut p = self.shared.pending();
            if let Some(reason) = &p.broken {
                return Err(reason.clone());
            }
            p.last_id += 1;
            let id = p.last_id;
            p.waiting.insert(id, tx);
            id
        };
        let line = format!("{body},\"msg_id\":{id}}}\n").into_bytes();
        if self.out.send(line).is_err() {
            self.shared.pending().waiting.remove(&id);
            return Err("connection-closed".into());
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err("connection-closed".into()),
            Err(_) => {
                self.shared.pending().waiting.remove(&id);
                Err("op-timeout".into())
            }
        }
    }
}

/// Writes queued requests, as many per write as are waiting.
async fn write_loop(
    mut w: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    shared: Arc<LinkShared>,
) {
    let mut buf = Vec::with_capacity(16 * 1024);
    while let Some(first) = rx.recv().await {
        buf.clear();
        buf.extend_from_slice(&first);
        while buf.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(more) => buf.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if let Err(e) = w.write_all(&buf).await {
            shared.break_with(format!("connection-closed: {e}"));
            return;
        }
    }
}

/// Hands each reply to the operation waiting for it; breaks the link on anything else.
async fn read_loop(mut r: BufReader<OwnedReadHalf>, shared: Arc<LinkShared>, node: String) {
    let mut line = String::new();
    loop {
        line.clear();
        let res = (&mut r).take(MAX_LINE).read_line(&mut line).await;
        let reason = match res {
            Ok(0) => "connection-closed".to_string(),
            // Text that is not UTF-8 breaks the contract; a reset (a killed node) does not.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                format!("bad-reply: unreadable ({e})")
            }
            Err(e) => format!("connection-closed: {e}"),
            Ok(_) if !line.ends_with('\n') => {
                format!("bad-reply: line longer than {MAX_LINE} bytes")
            }
            Ok(_) => match serde_json::from_str::<Value>(&line) {
                Err(_) => format!("bad-reply: not JSON: {}", clip(&line)),
                Ok(reply) => match reply.get("in_reply_to").and_then(Value::as_u64) {
                    None => format!("bad-reply: no in_reply_to: {}", clip(&line)),
                    Some(id) => {
                        let reply = if inexact_number(&reply) {
                            Err(inexact_reply(&node, &line))
                        } else {
                            Ok(reply)
                        };
                        let mut p = shared.pending();
                        if let Some(tx) = p.waiting.remove(&id) {
                            let _ = tx.send(reply);
                            continue;
                        }
                        if id <= p.last_id && id > 0 {
                            // The reply of an operation that already timed out.
                            continue;
                        }
                        format!("bad-reply: unknown in_reply_to {id} (never sent)")
                    }
                },
            },
        };
        shared.break_with(reason);
        return;
    }
}

/// One logical client process: just its current id; connections belong to the nodes' links.
struct ClientProcess {
    id: u64,
}

impl ClientProcess {
    fn new(id: u64) -> Self {
        ClientProcess { id }
    }

    /// Runs one operation against node `node`, recording invoke and completion. Returns true
    /// when the caller should back off (the connection could not be made).
    async fn invoke(&mut self, c: &Clients, op: &Op, node: usize) -> bool {
        let node_id = c.nodes[node].0.as_str();
        c.max_process.fetch_max(self.id, Ordering::Relaxed);
        let t0 = Instant::now();
        c.history.record(Entry {
            process: Process::Client(self.id),
            kind: EventType::Invoke,
            f: op.f,
            key: op.key.as_deref(),
            value: op.value.clone(),
            node: Some(node_id),
            error: None,
        });
        let deadline = tokio::time::Instant::from_std(t0 + c.op_timeout);
        let (completion, backoff) = match c.link(node, deadline).await {
            Err(reason) => (Completion::Fail(reason), true),
            Ok(link) => {
                let completion = match link.call(&request_body(op), deadline).await {
                    Ok(reply) => map_reply(op, &reply),
                    Err(reason) => Completion::Info(reason),
                };
                (completion, false)
            }
        };
        let (kind, value, error) = match completion {
            Completion::Ok(v) => (EventType::Ok, v, None),
            Completion::Fail(e) => (EventType::Fail, op.value.clone(), Some(e)),
            Completion::Info(e) => (EventType::Info, op.value.clone(), Some(e)),
        };
        c.stats.count(op.f, kind, error.as_deref(), t0.elapsed());
        c.history.record(Entry {
            process: Process::Client(self.id),
            kind,
            f: op.f,
            key: op.key.as_deref(),
            value,
            node: Some(node_id),
            error,
        });
        if kind == EventType::Info {
            // Retire: the old operation may still take effect; never reuse its process.
            self.id += c.concurrency as u64;
        }
        backoff
    }
}

/// The request for `op` without `msg_id` and the closing brace (added by [`Link::call`]).
fn request_body(op: &Op) -> String {
    let key = serde_json::to_string(op.wire_key()).expect("string serializes");
    match op.f {
        "read" => format!(r#"{{"type":"read","key":{key}"#),
        "write" => format!(r#"{{"type":"write","key":{key},"value":{}"#, op.value),
        _ => format!(
            r#"{{"type":"cas","key":{key},"from":{},"to":{}"#,
            op.value[0], op.value[1]
        ),
    }
}

impl Clients {
    /// The live link to `node`, connecting if there is none. An error means nothing was sent:
    /// the operation definitely failed.
    async fn link(&self, node: usize, deadline: tokio::time::Instant) -> Result<Arc<Link>, String> {
        let mut slot = self.links[node].lock().await;
        if let Some(link) = slot.as_ref() {
            if !link.is_broken() {
                return Ok(link.clone());
            }
        }
        *slot = None;
        let addr = self.nodes[node].1;
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => Err("connect-timeout".into()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Err("connection-refused".into())
            }
            Ok(Err(e)) => Err(format!("connect-error: {e}")),
            Ok(Ok(stream)) => {
                let link = Arc::new(Link::start(stream, &self.nodes[node].0));
                *slot = Some(link.clone());
                Ok(link)
            }
        }
    }
}

/// Integers from 2^53 up that serde_json could not keep as a 64-bit integer are held as an `f64`,
/// which has rounded them: such a reply cannot be recorded exactly, so it is refused.
fn inexact_number(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64() && n.as_f64().is_some_and(|f| f.abs() >= EXACT_LIMIT),
        Value::Array(a) => a.iter().any(inexact_number),
        Value::Object(m) => m.values().any(inexact_number),
        _ => false,
    }
}

/// 2^53: the first integer an `f64` cannot tell from its neighbour.
const EXACT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Why a reply with an [`inexact_number`] is refused, quoting the number as the node wrote it.
fn inexact_reply(node: &str, line: &str) -> String {
    let number = number_tokens(line)
        .find(|t| {
            t.parse::<i64>().is_err()
                && t.parse::<u64>().is_err()
                && t.parse::<f64>().is_ok_and(|f| f.abs() >= EXACT_LIMIT)
        })
        .unwrap_or("?");
    format!(
        "bad-reply: node {node} sent the number {number}, which is beyond 2^53 and outside 64-bit \
         integers, so it cannot be recorded exactly"
    )
}

/// The number tokens of a JSON text, outside strings.
fn number_tokens(text: &str) -> impl Iterator<Item = &str> {
    let (mut in_string, mut escaped, mut start) = (false, false, None);
    let mut out = Vec::new();
    for (i, c) in text.char_indices() {
        let numeric = !in_string && (c.is_ascii_digit() || "+-.eE".contains(c));
        match (numeric, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(&text[s..i]);
                start = None;
            }
            _ => {}
        }
        if in_string {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else if c == '"' {
            in_string = true;
        }
    }
    out.extend(start.map(|s| &text[s..]));
    out.into_iter()
}

fn clip(s: &str) -> String {
    let s = s.trim_end();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// Maelstrom error names by code.
pub fn error_name(code: i64) -> String {
    match code {
        0 => "timeout".into(),
        1 => "node-not-found".into(),
        10 => "not-supported".into(),
        11 => "temporarily-unavailable".into(),
        12 => "malformed-request".into(),
        13 => "crash".into(),
        14 => "abort".into(),
        20 => "key-does-not-exist".into(),
        21 => "key-already-exists".into(),
        22 => "precondition-failed".into(),
        30 => "txn-conflict".into(),
        c => format!("error-{c}"),
    }
}

/// Maps a reply (already matched by `in_reply_to`) to a completion, per docs/node-contract.md.
pub fn map_reply(op: &Op, reply: &Value) -> Completion {
    let ty = reply.get("type").and_then(Value::as_str).unwrap_or("");
    match (op.f, ty) {
        ("read", "read_ok") => Completion::Ok(reply.get("value").cloned().unwrap_or(Value::Null)),
        ("write", "write_ok") | ("cas", "cas_ok") => Completion::Ok(op.value.clone()),
        (_, "error") => {
            let Some(code) = reply.get("code").and_then(Value::as_i64) else {
                return Completion::Info(format!(
                    "bad-reply: error without code: {}",
                    clip(&reply.to_string())
                ));
            };
            let name = error_name(code);
            let definite = matches!(code, 1 | 10 | 11 | 12 | 14 | 20 | 21 | 22 | 30);
            match (op.f, code) {
                // The absence of the key was observed: a read of null.
                ("read", 20) => Completion::Ok(Value::Null),
                _ if definite => Completion::Fail(name),
                _ => Completion::Info(name),
            }
        }
        (f, ty) => Completion::Info(format!("bad-reply: {ty:?} does not answer {f}")),
    }
}

/// Asks a node for its optional `stats`; `None` when it does not answer in time or at all.
pub async fn fetch_stats(addr: SocketAddr, timeout: Duration) -> Option<Value> {
    let work = async {
        let stream = TcpStream::connect(addr).await.ok()?;
        let (r, mut w) = stream.into_split();
        w.write_all(b"{\"type\":\"stats\",\"msg_id\":1}\n")
            .await
            .ok()?;
        let mut line = String::new();
        BufReader::new(r)
            .take(MAX_LINE)
            .read_line(&mut line)
            .await
            .ok()?;
        let reply: Value = serde_json::from_str(&line).ok()?;
        (reply.get("type")? == "stats_ok").then(|| reply.get("stats").cloned())?
    };
    tokio::time::timeout(timeout, work).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(f: &'static str, value: Value) -> Op {
        Op {
            f,
            key: None,
            value,
        }
    }

    #[test]
    fn numbers_beyond_64_bits_are_refused_with_their_text() {
        let line = r#"{"type":"read_ok","value":[1180591620717411303424,"2e99"],"in_reply_to":7}"#;
        let reply: Value = serde_json::from_str(line).unwrap();
        assert!(inexact_number(&reply));
        let e = inexact_reply("n2", line);
        assert!(
            e.contains("node n2") && e.contains(" 1180591620717411303424,"),
            "{e}"
        );
        // 2^63 still fits a u64, and small floats are as exact as they were written.
        for ok in [r#"{"value":9223372036854775808}"#, r#"{"value":1.5}"#] {
            assert!(!inexact_number(&serde_json::from_str(ok).unwrap()), "{ok}");
        }
        let toks: Vec<_> = number_tokens(r#"{"a\"1":-2.5e3,"b":[7]}"#).collect();
        assert_eq!(toks, ["-2.5e3", "7"]);
    }

    #[test]
    fn replies_map_per_the_contract() {
        let read = op("read", Value::Null);
        let cas = op("cas", json!([1, 2]));
        let write = op("write", json!(3));
        assert_eq!(
            map_reply(&read, &json!({"type":"read_ok","value":4})),
            Completion::Ok(json!(4))
        );
        assert_eq!(
            map_reply(&write, &json!({"type":"write_ok"})),
            Completion::Ok(json!(3))
        );
        assert_eq!(
            map_reply(&cas, &json!({"type":"cas_ok"})),
            Completion::Ok(json!([1, 2]))
        );
        assert_eq!(
            map_reply(&read, &json!({"type":"error","code":20})),
            Completion::Ok(Value::Null)
        );
        assert_eq!(
            map_reply(&cas, &json!({"type":"error","code":22})),
            Completion::Fail("precondition-failed".into())
        );
        assert_eq!(
            map_reply(&cas, &json!({"type":"error","code":20})),
            Completion::Fail("key-does-not-exist".into())
        );
        assert_eq!(
            map_reply(&write, &json!({"type":"error","code":11})),
            Completion::Fail("temporarily-unavailable".into())
        );
        for code in [0, 13, 1000, 1234] {
            assert!(matches!(
                map_reply(&write, &json!({"type":"error","code":code})),
                Completion::Info(_)
            ));
        }
        assert!(
            matches!(map_reply(&read, &json!({"type":"write_ok"})), Completion::Info(e) if e.starts_with("bad-reply"))
        );
    }
}
