//! Noticing a node that listens beyond what the run gave it: a TCP socket in LISTEN state on
//! `0.0.0.0`, `::` or any non-loopback address is reachable from other machines, and connections
//! made there bypass the run's proxies and their faults.
//!
//! The sockets come from the kernel's own tables: each process's open file descriptors name its
//! socket inodes (`/proc/PID/fd`), and the TCP tables of its network namespace
//! (`/proc/PID/net/tcp`, `tcp6`) give each inode's local address and state.

use procfs::net::TcpState;
use procfs::process::{FDTarget, Process};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

/// Where a node may listen without a warning.
#[derive(Clone, Copy, Debug)]
pub enum Allowed {
    /// `--net proxy`: loopback only (any of 127.0.0.0/8, `::1`).
    Loopback,
    /// `--net netns`: loopback, the node's address, and the wildcard, which inside the node's own
    /// namespace reaches no other address.
    Namespace(IpAddr),
}

impl Allowed {
    pub fn permits(self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match self {
            Allowed::Loopback => ip.is_loopback(),
            Allowed::Namespace(own) => ip.is_loopback() || ip.is_unspecified() || ip == own,
        }
    }
}

/// The local addresses of the TCP sockets that processes `pids` hold open in LISTEN state, each
/// with the pid holding it. Processes that are gone or not ours to read are skipped.
pub fn listening(pids: &[i32]) -> BTreeSet<(SocketAddr, i32)> {
    let mut out = BTreeSet::new();
    for &pid in pids {
        let Ok(p) = Process::new(pid) else { continue };
        let Ok(fds) = p.fd() else { continue };
        let inodes: BTreeSet<u64> = fds
            .flatten()
            .filter_map(|fd| match fd.target {
                FDTarget::Socket(inode) => Some(inode),
                _ => None,
            })
            .collect();
        if inodes.is_empty() {
            continue;
        }
        let tables = [p.tcp(), p.tcp6()];
        for entry in tables.into_iter().flatten().flatten() {
            if entry.state == TcpState::Listen && inodes.contains(&entry.inode) {
                out.insert((entry.local_address, pid));
            }
        }
    }
    out
}

/// One line per listening socket `allowed` does not permit, naming node `id`.
pub fn warnings(id: &str, pids: &[i32], allowed: Allowed) -> Vec<String> {
    listening(pids)
        .into_iter()
        .filter(|(addr, _)| !allowed.permits(addr.ip()))
        .map(|(addr, pid)| {
            let comm = Process::new(pid)
                .and_then(|p| p.stat())
                .map(|s| s.comm)
                .unwrap_or_default();
            let beyond = match allowed {
                Allowed::Loopback => "beyond loopback".to_string(),
                Allowed::Namespace(own) => format!("beyond its address {own} and loopback"),
            };
            format!(
                "node {id} listens on {addr} ({beyond}; pid {pid}, {comm}): other hosts can \
                 reach it there, and connections made there bypass the run's proxies and faults"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn finds_this_process_listening_on_the_wildcard_but_permits_loopback() {
        let wild = TcpListener::bind("0.0.0.0:0").unwrap();
        let lo = TcpListener::bind("127.0.0.1:0").unwrap();
        let me = std::process::id() as i32;
        let found = listening(&[me]);
        let (w, l) = (wild.local_addr().unwrap(), lo.local_addr().unwrap());
        assert!(found.contains(&(w, me)), "{found:?}");
        assert!(found.contains(&(l, me)), "{found:?}");
        let said = warnings("n1", &[me], Allowed::Loopback);
        assert!(said.iter().any(|s| s.contains(&w.to_string())), "{said:?}");
        assert!(!said.iter().any(|s| s.contains(&l.to_string())), "{said:?}");
    }

    #[test]
    fn what_each_mode_permits() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let lo = Allowed::Loopback;
        assert!(lo.permits(ip("127.0.0.2")) && lo.permits(ip("::1")));
        assert!(lo.permits(ip("::ffff:127.0.0.1")));
        assert!(!lo.permits(ip("0.0.0.0")) && !lo.permits(ip("::")));
        assert!(!lo.permits(ip("10.1.2.3")));
        let ns = Allowed::Namespace(ip("10.77.0.2"));
        assert!(ns.permits(ip("10.77.0.2")) && ns.permits(ip("0.0.0.0")));
        assert!(!ns.permits(ip("10.77.0.3")));
    }
}
