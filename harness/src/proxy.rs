//! The proxy network: one TCP proxy per directed link `i→j`, so that faults on the network are real
//! socket faults. Node `i` dials its `--peers` address for `j`, which is the proxy for `i→j`; the
//! proxy forwards to `j`'s `--listen` address. All proxies bind `127.0.0.1` on free ports and run as
//! tokio tasks inside the harness process.
//!
//! Semantics (also in docs/faults.md):
//! - A link carries every connection that `i` opens to `j`, in both directions (requests and any
//!   replies sent back on the same connection). Cutting `i→j` does not touch connections `j` opens
//!   to `i`; a symmetric partition cuts both links.
//! - [`PartitionMode::Silent`] (default) behaves like iptables `DROP`: on cut, every connection on
//!   the link stops forwarding in both directions. Bytes already accepted are held (the proxy stops
//!   reading, so senders see TCP back-pressure, as with unacknowledged segments). New connections are
//!   accepted but held silent. When the link heals, every connection that saw the cut is closed
//!   (FIN), and the bytes it held are discarded with it: a stream is only ever cut short, never
//!   continued with a hole in it. New connections after the heal flow normally.
//! - [`PartitionMode::Reset`] closes every connection on the link with a TCP RST at once, and resets
//!   new connections while the link is cut, for nodes that want fail-fast behaviour.
//! - Latency: with `latency`/`jitter` set, each chunk read from a socket is delivered after
//!   `latency ± jitter` (uniform), never earlier than the chunk before it on the same connection
//!   and direction, so bytes are never reordered.
//! - When `j` refuses the proxy's connection (it is down), the proxy resets the connection from `i`.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// What a cut does to the connections on a link.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PartitionMode {
    /// Like iptables DROP: connections go silent and are closed when the link heals.
    #[default]
    Silent,
    /// Connections are reset (RST) at once; new ones are reset while the link is cut.
    Reset,
}

/// Network-wide proxy options.
#[derive(Clone, Debug, Default)]
pub struct NetOptions {
    pub mode: PartitionMode,
    /// Added to every chunk on every link.
    pub latency: Duration,
    /// Uniform ± spread around `latency` (clamped at zero, never reordering).
    pub jitter: Duration,
    /// Seeds the jitter.
    pub seed: u64,
}

/// A directed link `(from, to)`: the connections `from` opens to `to`.
pub type Link = (String, String);

/// Counters of one link, readable while it runs.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Connections accepted from `from`.
    pub conns: AtomicU64,
    /// Bytes delivered `from → to`.
    pub bytes_fwd: AtomicU64,
    /// Bytes delivered back `to → from` on the same connections.
    pub bytes_back: AtomicU64,
}

struct LinkProxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    stats: Arc<LinkStats>,
    task: JoinHandle<()>,
}

/// All the link proxies of one cluster. Dropping it stops every proxy and closes their connections.
pub struct Network {
    links: BTreeMap<Link, LinkProxy>,
    /// For a dedicated runtime: dropping it ends the runtime's thread.
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn all_pairs(nodes: &[(String, SocketAddr)]) -> Vec<(Link, SocketAddr)> {
    let mut pairs = Vec::new();
    for (from, _) in nodes {
        for (to, addr) in nodes {
            if from != to {
                pairs.push(((from.clone(), to.clone()), *addr));
            }
        }
    }
    pairs
}

impl Network {
    /// Starts one proxy for every ordered pair of distinct nodes. `nodes` gives each node's id and
    /// its `--listen` address. Must be called inside a tokio runtime; proxies run on it.
    pub async fn start(nodes: &[(String, SocketAddr)], opts: NetOptions) -> io::Result<Network> {
        Self::start_links(&all_pairs(nodes), opts).await
    }

    /// Like [`Network::start`], but the proxies run on a runtime of their own, on one thread
    /// that lives as long as the network. Their latency then does not depend on how busy the
    /// caller's runtime is, and one thread avoids cross-thread wake-ups on every hop.
    pub fn start_dedicated(
        nodes: &[(String, SocketAddr)],
        opts: NetOptions,
    ) -> io::Result<Network> {
        Self::start_links_dedicated(&all_pairs(nodes), opts)
    }

    /// Starts one proxy per given link, forwarding to the given address, on the current runtime.
    pub async fn start_links(
        links: &[(Link, SocketAddr)],
        opts: NetOptions,
    ) -> io::Result<Network> {
        Self::start_links_on(&tokio::runtime::Handle::current(), links, opts, None)
    }

    /// Starts one proxy per given link on a dedicated one-thread runtime.
    pub fn start_links_dedicated(
        links: &[(Link, SocketAddr)],
        opts: NetOptions,
    ) -> io::Result<Network> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("harness-proxies".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                })
            })?;
        Self::start_links_on(&handle, links, opts, Some(stop))
    }

    fn start_links_on(
        rt: &tokio::runtime::Handle,
        links: &[(Link, SocketAddr)],
        opts: NetOptions,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> io::Result<Network> {
        let mut net = Network {
            links: BTreeMap::new(),
            _stop: stop,
        };
        for (i, (link, target)) in links.iter().enumerate() {
            let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
            listener.set_nonblocking(true)?;
            let addr = listener.local_addr()?;
            let (cut, rx) = watch::channel(false);
            let stats = Arc::new(LinkStats::default());
            let ctx = LinkCtx {
                target: *target,
                opts: opts.clone(),
                seed: opts.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                stats: stats.clone(),
            };
            // Registered with the reactor of the runtime it runs on.
            let task = rt.spawn(async move {
                match TcpListener::from_std(listener) {
                    Ok(l) => serve(l, rx, Arc::new(ctx)).await,
                    Err(e) => tracing::error!("proxy for {addr} cannot listen: {e}"),
                }
            });
            net.links.insert(
                link.clone(),
                LinkProxy {
                    addr,
                    cut,
                    stats,
                    task,
                },
            );
        }
        Ok(net)
    }

    /// The proxy address `from` must dial to reach `to`.
    pub fn proxy_addr(&self, from: &str, to: &str) -> Option<SocketAddr> {
        self.links
            .get(&(from.to_string(), to.to_string()))
            .map(|l| l.addr)
    }

    /// The `--peers` argument for node `from`: `n2=127.0.0.1:X,n3=...`, one entry per link out.
    pub fn peers_arg(&self, from: &str) -> String {
        self.links
            .iter()
            .filter(|((f, _), _)| f == from)
            .map(|((_, to), l)| format!("{to}={}", l.addr))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every link, in order.
    pub fn links(&self) -> impl Iterator<Item = &Link> {
        self.links.keys()
    }

    /// Makes exactly `cut` cut and every other link healed. Unknown links are ignored.
    pub fn set_cut(&self, cut: &BTreeSet<Link>) {
        for (link, proxy) in &self.links {
            let want = cut.contains(link);
            proxy
                .cut
                .send_if_modified(|c| std::mem::replace(c, want) != want);
        }
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        self.set_cut(&BTreeSet::new());
    }

    /// The links currently cut.
    pub fn cut_links(&self) -> BTreeSet<Link> {
        self.links
            .iter()
            .filter(|(_, p)| *p.cut.borrow())
            .map(|(l, _)| l.clone())
            .collect()
    }

    /// Counters of one link.
    pub fn stats(&self, from: &str, to: &str) -> Option<&LinkStats> {
        self.links
            .get(&(from.to_string(), to.to_string()))
            .map(|l| &*l.stats)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for l in self.links.values() {
            l.task.abort();
        }
    }
}

struct LinkCtx {
    target: SocketAddr,
    opts: NetOptions,
    seed: u64,
    stats: Arc<LinkStats>,
}

/// Accepts connections on one link; the JoinSet owns them, so aborting this task closes them all.
async fn serve(listener: TcpListener, cut: watch::Receiver<bool>, ctx: Arc<LinkCtx>) {
    let mut conns = JoinSet::new();
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((down, _)) => {
                    n += 1;
                    ctx.stats.conns.fetch_add(1, Ordering::Relaxed);
                    conns.spawn(handle(down, cut.clone(), ctx.clone(), n));
                }
                // Out of descriptors or similar: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Waits until the link's cut state equals `want`. Returns false if the network is gone.
async fn wait_for(cut: &mut watch::Receiver<bool>, want: bool) -> bool {
    loop {
        if *cut.borrow_and_update() == want {
            return true;
        }
        if cut.changed().await.is_err() {
            return false;
        }
    }
}

enum Ended {
    Closed,
    Cut,
}

async fn handle(down: TcpStream, mut cut: watch::Receiver<bool>, ctx: Arc<LinkCtx>, n: u64) {
    let _ = down.set_nodelay(true);
    let up = tokio::select! {
        r = TcpStream::connect(ctx.target), if !*cut.borrow() => r,
        _ = wait_for(&mut cut, true) => return on_cut(down, None, cut, ctx.opts.mode).await,
    };
    let mut up = match up {
        Ok(up) => up,
        Err(_) => return reset(down),
    };
    let _ = up.set_nodelay(true);
    let mut down = down;
    let ended = tokio::select! {
        _ = forward(&mut down, &mut up, &ctx, n) => Ended::Closed,
        _ = wait_for(&mut cut, true) => Ended::Cut,
    };
    if let Ended::Cut = ended {
        on_cut(down, Some(up), cut, ctx.opts.mode).await;
    }
}

/// The link was cut while this connection was open (or being opened).
async fn on_cut(
    down: TcpStream,
    up: Option<TcpStream>,
    mut cut: watch::Receiver<bool>,
    mode: PartitionMode,
) {
    match mode {
        PartitionMode::Reset => {
            reset(down);
            if let Some(up) = up {
                reset(up);
            }
        }
        // Hold both sockets open and silent until the heal, then close them.
        PartitionMode::Silent => {
            wait_for(&mut cut, false).await;
        }
    }
}

fn reset(s: TcpStream) {
    let _ = s.set_zero_linger();
    drop(s);
}

/// Copies both ways until both directions end or one fails.
async fn forward(down: &mut TcpStream, up: &mut TcpStream, ctx: &LinkCtx, n: u64) {
    let (mut dr, mut dw) = down.split();
    let (mut ur, mut uw) = up.split();
    let s = &ctx.stats;
    let o = &ctx.opts;
    let _ = if o.latency.is_zero() && o.jitter.is_zero() {
        tokio::try_join!(
            pump(&mut dr, &mut uw, &s.bytes_fwd),
            pump(&mut ur, &mut dw, &s.bytes_back)
        )
    } else {
        let rng = |dir: u64| SmallRng::seed_from_u64(ctx.seed ^ (n << 1 | dir));
        tokio::try_join!(
            delayed_pump(&mut dr, &mut uw, &s.bytes_fwd, o, rng(0)),
            delayed_pump(&mut ur, &mut dw, &s.bytes_back, o, rng(1))
        )
    };
}

async fn pump<R, W>(r: &mut R, w: &mut W, delivered: &AtomicU64) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return w.shutdown().await;
        }
        w.write_all(&buf[..n]).await?;
        delivered.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Like [`pump`], but each chunk waits `latency ± jitter`, never overtaking the one before it.
async fn delayed_pump<R, W>(
    r: &mut R,
    w: &mut W,
    delivered: &AtomicU64,
    opts: &NetOptions,
    mut rng: SmallRng,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Bounded, so a slow receiver pushes back on the sender as TCP would.
    let (tx, mut rx) = mpsc::channel::<(Instant, Option<Vec<u8>>)>(1024);
    let (lat, jit) = (opts.latency, opts.jitter);
    let reader = async move {
        let mut buf = vec![0u8; 32 * 1024];
        let mut last = Instant::now();
        loop {
            let n = r.read(&mut buf).await?;
            let spread = if jit.is_zero() {
                0.0
            } else {
                rng.gen_range(-1.0..=1.0)
            };
            let delay = (lat.as_secs_f64() + spread * jit.as_secs_f64()).max(0.0);
            last = last.max(Instant::now() + Duration::from_secs_f64(delay));
            let chunk = (n > 0).then(|| buf[..n].to_vec());
            if tx.send((last, chunk)).await.is_err() || n == 0 {
                return Ok::<_, io::Error>(());
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            match chunk {
                Some(c) => {
                    w.write_all(&c).await?;
                    delivered.fetch_add(c.len() as u64, Ordering::Relaxed);
                }
                None => return w.shutdown().await,
            }
        }
        Ok(())
    };
    tokio::try_join!(reader, writer).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn peers_arg_lists_one_proxy_per_outgoing_link() {
        let nodes: Vec<(String, SocketAddr)> = (1..=3)
            .map(|i| (format!("n{i}"), "127.0.0.1:9".parse().unwrap()))
            .collect();
        let net = Network::start(&nodes, NetOptions::default()).await.unwrap();
        assert_eq!(net.links().count(), 6);
        let arg = net.peers_arg("n2");
        let parts: Vec<&str> = arg.split(',').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with("n1=127.0.0.1:"), "{arg}");
        assert!(parts[1].starts_with("n3=127.0.0.1:"), "{arg}");
        assert_ne!(net.proxy_addr("n1", "n2"), net.proxy_addr("n2", "n1"));
        let cut: BTreeSet<Link> = [("n1".to_string(), "n2".to_string())].into();
        net.set_cut(&cut);
        assert_eq!(net.cut_links(), cut);
        net.heal_all();
        assert!(net.cut_links().is_empty());
    }
}
