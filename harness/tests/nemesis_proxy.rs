//! The proxy network with real sockets on loopback: cuts stop traffic without corrupting streams,
//! reset mode fails fast, latency is added without reordering, and each partition topology cuts
//! exactly the links it should.

use harness::proxy::{Link, NetOptions, Network, PartitionMode};
use harness::schedule::{cut_links, topology_grudge, Target};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, timeout, Instant};

/// Everything each accepted connection delivered, in accept order.
type Received = Arc<Mutex<Vec<Vec<u8>>>>;

/// A loopback server that records every byte it receives, per connection. With `echo`, it also
/// sends every byte back.
async fn recorder(echo: bool) -> (SocketAddr, Received) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let got: Received = Arc::default();
    let g = got.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let i = {
                let mut g = g.lock().unwrap();
                g.push(vec![]);
                g.len() - 1
            };
            let g = g.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    g.lock().unwrap()[i].extend_from_slice(&buf[..n]);
                    if echo && s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, got)
}

fn messages(range: std::ops::Range<u32>) -> Vec<u8> {
    range.flat_map(|i| format!("m{i}\n").into_bytes()).collect()
}

/// Polls until `cond` holds; panics with `what` after a generous deadline.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

/// True when the peer closed or reset the connection within the deadline.
async fn closed(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match timeout(within, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

fn link(a: &str, b: &str) -> Link {
    (a.to_string(), b.to_string())
}

async fn one_link(target: SocketAddr, opts: NetOptions) -> (Network, SocketAddr) {
    let net = Network::start_links(&[(link("a", "b"), target)], opts)
        .await
        .unwrap();
    let addr = net.proxy_addr("a", "b").unwrap();
    (net, addr)
}

#[tokio::test]
async fn silent_cut_holds_traffic_and_streams_stay_intact_after_heal() {
    let (target, got) = recorder(false).await;
    let (net, addr) = one_link(target, NetOptions::default()).await;
    let cut: BTreeSet<Link> = [link("a", "b")].into();

    let mut c1 = TcpStream::connect(addr).await.unwrap();
    let before = messages(0..100);
    c1.write_all(&before).await.unwrap();
    eventually("the first 100 messages arrive", || {
        got.lock().unwrap().first() == Some(&before)
    })
    .await;

    net.set_cut(&cut);
    sleep(Duration::from_millis(100)).await;
    // Written during the cut: accepted by the kernel, never delivered on this connection.
    c1.write_all(&messages(100..200)).await.unwrap();
    // A new connection is accepted but goes nowhere.
    let mut c2 = TcpStream::connect(addr).await.unwrap();
    c2.write_all(b"during the cut\n").await.unwrap();
    sleep(Duration::from_millis(500)).await;
    {
        let g = got.lock().unwrap();
        assert_eq!(
            g.len(),
            1,
            "no connection reached the target during the cut"
        );
        assert_eq!(g[0], before, "nothing crossed the cut link");
    }
    assert!(
        !closed(&mut c1, Duration::from_millis(200)).await,
        "a silent cut does not close connections"
    );
    assert_eq!(
        net.stats("a", "b")
            .unwrap()
            .conns
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );

    net.heal_all();
    assert!(
        closed(&mut c1, Duration::from_secs(5)).await,
        "held connection closed at heal"
    );
    assert!(
        closed(&mut c2, Duration::from_secs(5)).await,
        "connection made during the cut closed at heal"
    );
    sleep(Duration::from_millis(100)).await;
    {
        let g = got.lock().unwrap();
        assert_eq!(g.len(), 1, "the held connections were never forwarded");
        assert_eq!(
            g[0], before,
            "the old stream ends exactly where the cut began"
        );
    }

    // After the heal, new connections flow, complete and in order.
    let mut c3 = TcpStream::connect(addr).await.unwrap();
    let after = messages(200..5000);
    c3.write_all(&after).await.unwrap();
    eventually("a connection after the heal delivers everything", || {
        got.lock().unwrap().get(1) == Some(&after)
    })
    .await;
}

#[tokio::test]
async fn reset_mode_closes_connections_at_once() {
    let (target, got) = recorder(true).await;
    let opts = NetOptions {
        mode: PartitionMode::Reset,
        ..NetOptions::default()
    };
    let (net, addr) = one_link(target, opts).await;
    let mut c1 = TcpStream::connect(addr).await.unwrap();
    c1.write_all(b"ping\n").await.unwrap();
    let mut buf = [0u8; 5];
    timeout(Duration::from_secs(5), c1.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping\n");

    net.set_cut(&[link("a", "b")].into());
    assert!(
        closed(&mut c1, Duration::from_secs(5)).await,
        "reset at the cut"
    );
    let mut c2 = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed(&mut c2, Duration::from_secs(5)).await,
        "new connections reset while cut"
    );
    assert_eq!(got.lock().unwrap().len(), 1);

    net.heal_all();
    let mut c3 = TcpStream::connect(addr).await.unwrap();
    c3.write_all(b"pong\n").await.unwrap();
    timeout(Duration::from_secs(5), c3.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"pong\n");
}

#[tokio::test]
async fn a_dead_target_resets_the_connection() {
    // Bind and drop a listener to get a port nobody listens on.
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let (_net, addr) = one_link(dead, NetOptions::default()).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    assert!(closed(&mut c, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn latency_is_added_both_ways_without_reordering() {
    let (target, _) = recorder(true).await;
    let opts = NetOptions {
        latency: Duration::from_millis(60),
        jitter: Duration::from_millis(30),
        seed: 7,
        ..NetOptions::default()
    };
    let (_net, addr) = one_link(target, opts).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.set_nodelay(true).unwrap();

    // A round trip crosses the link twice: at least 2 × (60 - 30) ms.
    let t = Instant::now();
    c.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    c.read_exact(&mut one).await.unwrap();
    let rtt = t.elapsed();
    assert!(
        rtt >= Duration::from_millis(60),
        "round trip took only {rtt:?}"
    );

    // Many small writes with jitter come back byte for byte in order.
    let sent = messages(0..2000);
    let (mut r, mut w) = c.into_split();
    let writer = tokio::spawn(async move {
        for chunk in sent.chunks(37) {
            w.write_all(chunk).await.unwrap();
            tokio::task::yield_now().await;
        }
        w
    });
    let expect = messages(0..2000);
    let mut back = vec![0u8; expect.len()];
    timeout(Duration::from_secs(30), r.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert!(
        back == expect,
        "the echoed stream differs from what was sent"
    );
    writer.await.unwrap();
}

/// Opens a connection on every link, sends a probe, and returns the links whose probe arrived.
#[tokio::test]
async fn each_topology_cuts_exactly_its_links() {
    let ids: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
    let mut nodes = Vec::new();
    let mut inboxes = Vec::new();
    for id in &ids {
        let (addr, got) = recorder(false).await;
        nodes.push((id.clone(), addr));
        inboxes.push((id.clone(), got));
    }
    let net = Network::start(&nodes, NetOptions::default()).await.unwrap();
    let all: BTreeSet<Link> = net.links().cloned().collect();
    assert_eq!(all.len(), 20);

    for topology in [
        Target::One,
        Target::Majority,
        Target::MajoritiesRing,
        Target::Bridge,
    ] {
        for (_, got) in &inboxes {
            got.lock().unwrap().clear();
        }
        let grudge = topology_grudge(topology, &ids).unwrap();
        let cut = cut_links(&grudge);
        net.set_cut(&cut);
        let mut conns = Vec::new();
        for (from, to) in &all {
            let mut c = TcpStream::connect(net.proxy_addr(from, to).unwrap())
                .await
                .unwrap();
            c.write_all(format!("{from}\n").as_bytes()).await.unwrap();
            conns.push(c);
        }
        let arrived = || -> BTreeSet<Link> {
            let mut out = BTreeSet::new();
            for (to, got) in &inboxes {
                for bytes in got.lock().unwrap().iter() {
                    let from = String::from_utf8_lossy(bytes).trim().to_string();
                    if !from.is_empty() {
                        out.insert((from, to.clone()));
                    }
                }
            }
            out
        };
        let expected: BTreeSet<Link> = all.difference(&cut).cloned().collect();
        eventually(&format!("{topology}: open links deliver"), || {
            arrived().is_superset(&expected)
        })
        .await;
        sleep(Duration::from_millis(300)).await;
        assert_eq!(
            arrived(),
            expected,
            "{topology}: exactly the open links deliver"
        );
        match topology {
            Target::One => assert_eq!(cut.len(), 8),
            Target::Majority => assert_eq!(cut.len(), 12),
            Target::Bridge => assert_eq!(cut.len(), 8),
            Target::MajoritiesRing => assert_eq!(cut.len(), 10),
            _ => unreachable!(),
        }
        net.heal_all();
        drop(conns);
    }
}

/// The set-up `harness test` uses: proxies on a runtime of their own, callers without one.
#[test]
fn dedicated_runtime_proxies_forward_and_cut() {
    use std::io::{Read, Write};
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in echo.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let net =
        Network::start_links_dedicated(&[(link("a", "b"), target)], NetOptions::default()).unwrap();
    let addr = net.proxy_addr("a", "b").unwrap();
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");

    net.set_cut(&[link("a", "b")].into());
    std::thread::sleep(Duration::from_millis(100));
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    c.write_all(b"again").unwrap();
    assert!(c.read(&mut buf).is_err(), "no echo across a cut link");
    net.heal_all();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)), "closed at heal");
    drop(net);
    // Dropping the network stops its proxies.
    std::thread::sleep(Duration::from_millis(200));
    let mut c = std::net::TcpStream::connect(addr);
    if let Ok(c) = c.as_mut() {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)), "proxy gone");
    }
}
