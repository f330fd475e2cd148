//! Kernel-level faults in real namespaces (needs root, `ip`, `nft`): each partition topology cuts
//! exactly its address pairs, probed pair by pair on 5 nodes with a bounded TCP connect, in both
//! partition modes; healing opens every pair again. Whole-run loss, duplication and bandwidth
//! limits, and the scheduled packet-fault windows (`--nemesis loss,dup,rate`), measured with
//! bounded UDP and TCP probes: in force on exactly their links or nodes, gone after the heal,
//! and the heal leaves the whole-run faults in force.

mod cli_util;
use harness::net::netns::NetNs;
use harness::net::nft::Firewall;
use harness::proxy::PartitionMode;
use harness::schedule::{cut_links, topology_grudge, Link, Target};
use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

const PORT: u16 = 7300;
const PROBE: Duration = Duration::from_millis(400);

/// One test at a time: each creation first removes dead runs' leftovers.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

fn enter(ns_path: &std::path::Path) {
    let f = std::fs::File::open(ns_path).expect("open namespace");
    // SAFETY: setns on this thread with a valid namespace fd.
    let rc = unsafe { nix::libc::setns(f.as_raw_fd(), nix::libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns");
}

/// A listener in every namespace, accepting (a bounded number of) probes.
fn listen_everywhere(net: &NetNs) {
    for n in &net.nodes {
        let (path, addr) = (n.ns_path(), SocketAddr::new(n.addr.into(), PORT));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            enter(&path);
            let l = TcpListener::bind(addr).expect("bind");
            tx.send(()).unwrap();
            for s in l.incoming().take(10_000) {
                drop(s);
            }
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("listener up");
    }
}

/// Connects from inside `from`'s namespace to `to`'s listener: `Ok` or the error kind.
fn probe_all(net: &NetNs) -> Vec<((String, String), Result<(), ErrorKind>)> {
    let mut runs = Vec::new();
    for a in &net.nodes {
        for b in &net.nodes {
            if a.id == b.id {
                continue;
            }
            let (path, target) = (a.ns_path(), SocketAddr::new(b.addr.into(), PORT));
            let pair = (a.id.clone(), b.id.clone());
            runs.push((
                pair,
                std::thread::spawn(move || {
                    enter(&path);
                    TcpStream::connect_timeout(&target, PROBE)
                        .map(drop)
                        .map_err(|e| e.kind())
                }),
            ));
        }
    }
    runs.into_iter()
        .map(|(pair, h)| (pair, h.join().unwrap()))
        .collect()
}

/// A TCP connection between `a` and `b` needs packets both ways: it fails if either direction
/// is cut.
fn expected_blocked(links: &BTreeSet<Link>, a: &str, b: &str) -> bool {
    links.contains(&(a.to_string(), b.to_string()))
        || links.contains(&(b.to_string(), a.to_string()))
}

fn check_topologies(mode: PartitionMode) {
    let ids: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
    let net = Arc::new(NetNs::create(&ids, None).expect("create"));
    listen_everywhere(&net);
    let fw = Firewall::new(net.clone(), mode);
    assert!(
        probe_all(&net).iter().all(|(_, r)| r.is_ok()),
        "all open at first"
    );
    for t in [
        Target::One,
        Target::Leader,
        Target::Majority,
        Target::MajoritiesRing,
        Target::Bridge,
    ] {
        let links = cut_links(&topology_grudge(t, &ids).unwrap());
        fw.set_cut(&links).expect("apply");
        assert_eq!(fw.cut_links(), links);
        let (mut blocked, mut open) = (0, 0);
        for ((a, b), r) in probe_all(&net) {
            let want = expected_blocked(&links, &a, &b);
            assert_eq!(
                r.is_err(),
                want,
                "{t} {mode:?}: {a}->{b} got {r:?}, cut {links:?}"
            );
            if want {
                blocked += 1
            } else {
                open += 1
            }
            // Silent times out, reset is refused at once.
            if want {
                let kind = r.unwrap_err();
                match mode {
                    PartitionMode::Silent => assert_eq!(kind, ErrorKind::TimedOut, "{t} {a}->{b}"),
                    PartitionMode::Reset => {
                        assert_eq!(kind, ErrorKind::ConnectionRefused, "{t} {a}->{b}")
                    }
                }
            }
        }
        assert!(
            blocked > 0 && open + blocked == 20,
            "{t}: {blocked} blocked, {open} open"
        );
        fw.heal().expect("heal");
        assert!(fw.cut_links().is_empty());
        let after: Vec<_> = probe_all(&net)
            .into_iter()
            .filter(|(_, r)| r.is_err())
            .collect();
        assert!(after.is_empty(), "{t}: still cut after healing: {after:?}");
    }
}

#[test]
fn every_topology_cuts_exactly_its_pairs_silently() {
    let _one = serial();
    check_topologies(PartitionMode::Silent);
}

#[test]
fn every_topology_cuts_exactly_its_pairs_with_resets() {
    let _one = serial();
    check_topologies(PartitionMode::Reset);
}

/// Sends `n` UDP datagrams from inside `from` (or from the host when `None`) to `to`'s address
/// and counts what arrives there (bounded: the receiver stops 500 ms after the last datagram).
fn udp_count(net: &NetNs, from: Option<usize>, to: usize, n: usize) -> usize {
    use std::net::UdpSocket;
    let (to_path, to_addr) = (
        net.nodes[to].ns_path(),
        SocketAddr::new(net.nodes[to].addr.into(), 7400),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let receiver = std::thread::spawn(move || {
        enter(&to_path);
        let s = UdpSocket::bind(to_addr).expect("bind udp");
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 64];
        let mut got = 0;
        while s.recv(&mut buf).is_ok() {
            got += 1;
        }
        got
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("receiver up");
    let from_path = from.map(|i| net.nodes[i].ns_path());
    std::thread::spawn(move || {
        if let Some(p) = from_path {
            enter(&p);
        }
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        for i in 0..n {
            s.send_to(b"probe", to_addr).unwrap();
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    })
    .join()
    .unwrap();
    receiver.join().unwrap()
}

fn five() -> Vec<String> {
    (1..=5).map(|i| format!("n{i}")).collect()
}

#[test]
fn loss_at_30_percent_drops_about_that_share_between_nodes_only() {
    use harness::net::links::{apply, LinkFaults};
    let _one = serial();
    let net = NetNs::create(&five()[..2], None).expect("create");
    let n = 2000;
    assert_eq!(udp_count(&net, Some(0), 1, n), n, "no loss before the rule");
    let loss = LinkFaults {
        loss_pct: 30.0,
        ..Default::default()
    };
    apply(&net, &loss).expect("apply loss");
    let got = udp_count(&net, Some(0), 1, n);
    eprintln!("30 % loss: {got} of {n} arrived");
    // 70 % of 2000 is 1400 (standard deviation about 20): a wide margin.
    assert!(
        (1200..=1600).contains(&got),
        "{got} of {n} arrived at 30 % loss"
    );
    // The harness's own traffic (from the bridge) is not a link between nodes.
    assert_eq!(udp_count(&net, None, 1, n), n, "client traffic lost");
    apply(&net, &LinkFaults::default()).expect("clear");
    assert_eq!(udp_count(&net, Some(0), 1, n), n, "loss after clearing");
}

#[test]
fn duplication_at_20_percent_sends_about_that_share_twice() {
    use harness::net::links::{apply, LinkFaults};
    let _one = serial();
    let net = NetNs::create(&five()[..2], None).expect("create");
    let dup = LinkFaults {
        dup_pct: 20.0,
        ..Default::default()
    };
    apply(&net, &dup).expect("apply dup");
    let n = 2000;
    let got = udp_count(&net, Some(0), 1, n);
    eprintln!("20 % dup: {got} arrived for {n} sent");
    assert!(
        (2200..=2600).contains(&got),
        "{got} arrived for {n} sent at 20 % dup"
    );
}

/// Sends `bytes` over TCP from inside node `from` to node `to`; the time it took.
fn transfer(net: &NetNs, from: usize, to: usize, bytes: usize) -> Duration {
    use std::io::{Read, Write};
    let (path, addr) = (
        net.nodes[to].ns_path(),
        SocketAddr::new(net.nodes[to].addr.into(), 7500),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = std::thread::spawn(move || {
        enter(&path);
        let l = TcpListener::bind(addr).unwrap();
        tx.send(()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all.len()
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let from = net.nodes[from].ns_path();
    let started = std::time::Instant::now();
    std::thread::spawn(move || {
        enter(&from);
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        s.write_all(&vec![7u8; bytes]).unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(sink.join().unwrap(), bytes);
    started.elapsed()
}

#[test]
fn a_bandwidth_limit_slows_a_bulk_transfer() {
    use harness::net::links::{apply, LinkFaults};
    let _one = serial();
    let net = NetNs::create(&five()[..2], None).expect("create");
    let transfer = |bytes: usize| transfer(&net, 0, 1, bytes);
    let fast = transfer(100_000);
    apply(
        &net,
        &LinkFaults {
            rate_kbit: 800.0,
            ..Default::default()
        },
    )
    .expect("apply rate");
    // 100 kB at 800 kbit/s takes about 1 s; unlimited it takes milliseconds.
    let slow = transfer(100_000);
    eprintln!("100 kB: {fast:?} unlimited, {slow:?} at 800 kbit/s");
    assert!(
        slow > Duration::from_millis(500) && slow > fast * 5,
        "{fast:?} then {slow:?}"
    );
}

#[test]
fn latency_in_netns_mode_needs_netem() {
    let _one = serial();
    let net = NetNs::create(&five()[..1], None).expect("create");
    let has_netem = harness::net::links::require_netem(&net);
    drop(net);
    let store = std::env::temp_dir().join(format!("netns-netem-{}", std::process::id()));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "test",
            "--net",
            "netns",
            "--nodes",
            "1",
            "--time-limit",
            "0.5",
        ])
        .args([
            "--nemesis",
            "none",
            "--net-latency",
            "10",
            "--no-check",
            "--store",
        ])
        .arg(&store)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match has_netem {
        Err(e) => {
            assert!(e.to_string().contains("sch_netem"), "{e}");
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(stderr.contains("sch_netem"), "{stderr}");
        }
        Ok(()) => assert_eq!(out.status.code(), Some(0), "{stderr}"),
    }
    assert_eq!(cli_util::left_by(pid), Vec::<String>::new(), "left behind");
    let _ = std::fs::remove_dir_all(&store);
}

fn ids(n: usize) -> Vec<String> {
    five()[..n].to_vec()
}

fn loss_window(pct: f64, ids: &[String]) -> harness::schedule::Fault {
    use harness::schedule::packet::links_touching;
    harness::schedule::Fault::Loss {
        target: Target::One,
        links: links_touching(&ids[..1], ids),
        pct,
    }
}

#[test]
fn a_loss_window_drops_on_its_links_only_and_heals() {
    use harness::net::packet::PacketFaults;
    let _one = serial();
    let ids = ids(3);
    let net = Arc::new(NetNs::create(&ids, None).expect("create"));
    let p = PacketFaults::new(net.clone());
    let n = 2000;
    p.apply(&loss_window(50.0, &ids)).expect("apply");
    assert!(p.active().is_some());
    let hit = udp_count(&net, Some(1), 0, n);
    let spared = udp_count(&net, Some(1), 2, n);
    let back = udp_count(&net, Some(0), 2, n);
    eprintln!("50 % loss window on n1: n2->n1 {hit}, n1->n3 {back}, n2->n3 {spared} of {n}");
    // 50 % of 2000 is 1000 (standard deviation about 22): a wide margin.
    assert!((800..=1200).contains(&hit), "n2->n1 {hit} of {n}");
    assert!((800..=1200).contains(&back), "n1->n3 {back} of {n}");
    assert_eq!(spared, n, "n2->n3 is not one of the window's links");
    let healed = p.heal().expect("heal");
    assert!(matches!(
        healed,
        Some(harness::schedule::Fault::Loss { .. })
    ));
    assert!(p.active().is_none());
    assert_eq!(udp_count(&net, Some(1), 0, n), n, "loss after the heal");
    assert_eq!(p.heal().expect("heal twice"), None);
}

#[test]
fn a_dup_window_duplicates_on_its_links_and_heals() {
    use harness::net::packet::PacketFaults;
    use harness::schedule::{packet::links_touching, Fault};
    let _one = serial();
    let ids = ids(3);
    let net = Arc::new(NetNs::create(&ids, None).expect("create"));
    let p = PacketFaults::new(net.clone());
    let n = 2000;
    let dup = Fault::Dup {
        target: Target::One,
        links: links_touching(&ids[..1], &ids),
        pct: 30.0,
    };
    p.apply(&dup).expect("apply");
    let hit = udp_count(&net, Some(0), 1, n);
    let spared = udp_count(&net, Some(2), 1, n);
    eprintln!("30 % dup window on n1: n1->n2 {hit}, n3->n2 {spared} for {n} sent");
    assert!((2300..=2900).contains(&hit), "n1->n2 {hit} for {n}");
    assert_eq!(spared, n, "n3->n2 is not one of the window's links");
    p.heal().expect("heal");
    assert_eq!(udp_count(&net, Some(0), 1, n), n, "dup after the heal");
}

#[test]
fn a_rate_window_slows_its_node_and_heals_back_to_the_whole_run_faults() {
    use harness::net::links::{apply, LinkFaults};
    use harness::net::packet::PacketFaults;
    use harness::schedule::Fault;
    let _one = serial();
    let ids = ids(3);
    let mut net = NetNs::create(&ids, None).expect("create");
    // Whole-run duplication (as --net-dup 20) stays in force through a window and its heal
    // (duplication, not loss: TCP under heavy loss would make the transfers slow).
    net.link_faults = LinkFaults {
        dup_pct: 20.0,
        ..Default::default()
    };
    apply(&net, &net.link_faults).expect("whole-run dup");
    let net = Arc::new(net);
    let p = PacketFaults::new(net.clone());
    let fast = transfer(&net, 0, 1, 100_000);
    let rate = Fault::Rate {
        target: Target::One,
        nodes: vec!["n1".into()],
        kbit: 800.0,
    };
    p.apply(&rate).expect("apply");
    let slow = transfer(&net, 0, 1, 100_000);
    let other = transfer(&net, 2, 1, 100_000);
    p.heal().expect("heal");
    let after = transfer(&net, 0, 1, 100_000);
    eprintln!(
        "100 kB n1->n2: {fast:?}, {slow:?} at 800 kbit/s (n3->n2 {other:?}), {after:?} after"
    );
    // 100 kB at 800 kbit/s takes about 1 s; unlimited it takes milliseconds.
    assert!(slow > Duration::from_millis(500), "{slow:?}");
    assert!(
        slow > other * 3 && slow > after * 3,
        "{other:?} {slow:?} {after:?}"
    );
    let got = udp_count(&net, Some(1), 0, 2000);
    assert!(
        (2200..=2700).contains(&got),
        "whole-run dup gone: {got} for 2000"
    );
    // A loss window on top, healed: the whole-run rule is still there.
    p.apply(&loss_window(50.0, &ids)).expect("apply loss");
    p.heal().expect("heal loss");
    let got = udp_count(&net, Some(1), 0, 2000);
    assert!(
        (2200..=2700).contains(&got),
        "whole-run dup after a window: {got} for 2000"
    );
}
