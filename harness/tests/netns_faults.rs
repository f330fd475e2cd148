//! Kernel-level faults in real namespaces (needs root, `ip`, `nft`): each partition topology cuts
//! exactly its address pairs, probed pair by pair on 5 nodes with a bounded TCP connect, in both
//! partition modes; healing opens every pair again.

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
