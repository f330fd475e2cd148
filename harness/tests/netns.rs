//! Real network namespaces (needs root, `ip` and `nft`; scripts/setup installs them): creation,
//! addresses, isolation from the outside, clean-up on drop and after a dead run.

use harness::net::netns::{self, NetNs, Subnet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

/// One test at a time: each creation first removes dead runs' leftovers, which would race with
/// the test that makes one on purpose.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

/// Namespaces and links on the host whose names start with `tag`.
fn leftovers(tag: &str) -> Vec<String> {
    let mut out: Vec<String> = ip(&["netns", "list"])
        .lines()
        .chain(ip(&["-o", "link", "show"]).lines())
        .filter(|l| l.contains(tag))
        .map(String::from)
        .collect();
    out.sort();
    out
}

/// A listener bound inside namespace `ns_path`, answering one line per connection; the thread
/// enters the namespace alone (setns affects only the calling thread).
fn serve_in(ns_path: std::path::PathBuf, addr: SocketAddr) -> std::sync::mpsc::Receiver<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&ns_path).expect("open namespace");
        // SAFETY: setns on this thread with a valid namespace fd.
        let rc = unsafe { nix::libc::setns(f.as_raw_fd(), nix::libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns");
        let l = TcpListener::bind(addr).expect("bind inside the namespace");
        ready_tx.send(()).unwrap();
        for mut s in l.incoming().take(1).flatten() {
            let _ = s.write_all(b"hello\n");
        }
    });
    ready_rx
}

#[test]
fn namespaces_get_their_addresses_and_go_away_on_drop() {
    let _one = serial();
    let net = NetNs::create(&ids(3), None).expect("create");
    let tag = net.tag.clone();
    let names = ip(&["netns", "list"]);
    for n in &net.nodes {
        assert!(names.contains(&n.ns), "namespace {} missing: {names}", n.ns);
        let addrs = ip(&["-n", &n.ns, "-4", "-o", "addr", "show", "dev", "eth0"]);
        assert!(addrs.contains(&format!("{}/24", n.addr)), "{addrs}");
        let routes = ip(&["-n", &n.ns, "route", "show"]);
        assert!(
            !routes.contains("default"),
            "a default route in {}: {routes}",
            n.ns
        );
    }
    assert!(ip(&["-br", "link"]).contains(&net.bridge));
    assert!(net.bridge.len() <= 15);

    // The harness (host side) reaches a listener inside node 2's namespace at its address.
    let node = &net.nodes[1];
    let addr = SocketAddr::new(node.addr.into(), 7100);
    serve_in(node.ns_path(), addr)
        .recv_timeout(Duration::from_secs(5))
        .expect("listener up");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    assert_eq!(buf, "hello\n");

    drop(net);
    assert_eq!(leftovers(&tag), Vec::<String>::new());
}

#[test]
fn a_subnet_the_host_routes_is_refused_and_nothing_is_left() {
    let _one = serial();
    let first = NetNs::create(&ids(2), None).expect("create");
    let taken = first.subnet;
    let before = ip(&["netns", "list"]);
    let e = NetNs::create(&ids(2), Some(taken)).unwrap_err().to_string();
    assert!(
        e.contains("already routed") && e.contains(&taken.to_string()),
        "{e}"
    );
    assert_eq!(
        ip(&["netns", "list"]),
        before,
        "the refused run made namespaces"
    );
    drop(first);
}

#[test]
fn what_a_dead_run_left_is_found_and_removed() {
    let _one = serial();
    // A live run of this process, which the clean-up must not touch.
    let live = NetNs::create(&ids(1), None).expect("create");
    // A pid that no longer runs: a child that exited and was reaped.
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let subnet: Subnet = "10.79.1.0/24".parse().unwrap();
    let net = NetNs::create_for_pid(&ids(3), Some(subnet), dead_pid).expect("create");
    let tag = net.tag.clone();
    // As after a SIGKILL: the harness never ran its clean-up.
    std::mem::forget(net);
    assert_eq!(leftovers(&tag).len(), 3 + 1 + 3, "{:?}", leftovers(&tag));
    let removed = netns::clean_dead();
    assert!(
        removed.iter().any(|r| r.contains(&format!("{tag}br"))),
        "{removed:?}"
    );
    assert_eq!(leftovers(&tag), Vec::<String>::new());
    assert_eq!(
        leftovers(&live.tag).len(),
        1 + 1 + 1,
        "the live run was touched"
    );
}
