//! One network namespace per node on a bridge the run owns: creation, clean-up, and finding what a
//! dead run left.
//!
//! Every name carries the run's tag, `jr` + the harness pid (5 base-36 digits) + 4 hex digits of
//! run id: the bridge is `<tag>br`, node `i`'s host-side veth `<tag>v<i>` (at most 15 characters,
//! the kernel's limit), its namespace `<tag>-n<i>` (inside it, the veth is `eth0`). A tag whose pid
//! no longer runs belongs to a dead run; [`clean_dead`] removes what it left. Nodes get `.1`, `.2`,
//! ... of the run's /24, the bridge (the harness's side, where clients connect from) `.254`. No
//! namespace has a default route and nothing is NATed, so no packet leaves the machine.

use super::tools;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;

/// A run's /24: `a.b.c.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Subnet([u8; 3]);

impl Subnet {
    /// Address `.host` of the subnet.
    pub fn addr(self, host: u8) -> Ipv4Addr {
        let [a, b, c] = self.0;
        Ipv4Addr::new(a, b, c, host)
    }

    fn range(self) -> (u32, u32) {
        let lo = u32::from(self.addr(0));
        (lo, lo + 255)
    }
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("subnet {s:?}: expected a.b.c.0/24, e.g. 10.77.0.0/24");
        let (addr, len) = s.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let [a, b, c, d] = ip.octets();
        if len != "24" || d != 0 {
            return Err(bad());
        }
        if !ip.is_private() {
            return Err(format!(
                "subnet {s}: must be a private range (10/8, 172.16/12, 192.168/16)"
            ));
        }
        Ok(Subnet([a, b, c]))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/24", self.addr(0))
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Subnet {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// Where [`NetNs::create`] looks for a free subnet when none is given: 10.77.0.0/24 and up.
const AUTO_BASE: [u8; 2] = [10, 77];

const TAG_LEN: usize = 11;

fn base36(mut v: u32, width: usize) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = digits[(v % 36) as usize];
        v /= 36;
    }
    String::from_utf8(out).expect("ascii")
}

/// A run's tag for a harness `pid`.
fn tag_for(pid: u32) -> String {
    format!("jr{}{:04x}", base36(pid, 5), rand::random::<u16>())
}

/// The harness pid in a name that starts with a tag.
fn tag_pid(name: &str) -> Option<u32> {
    let tag = name.get(..TAG_LEN)?;
    if !tag.starts_with("jr") || !tag[7..].chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(&tag[2..7], 36).ok()
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Tags of this process's live setups, for the panic hook and the signal handler.
static LIVE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn live() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes every setup this process still has (namespaces, bridge). For the panic hook and the
/// signal handler; the setups' own `Drop` then finds nothing left to do.
pub fn remove_live() {
    let tags: Vec<String> = live().iter().cloned().collect();
    for tag in tags {
        remove_tagged(&tag);
    }
}

/// Deletes every namespace and link whose name starts with `tag`; errors are ignored (some may
/// never have been made). Deleting a namespace deletes its veth pair.
fn remove_tagged(tag: &str) {
    let (namespaces, links) = tagged_names();
    for ns in namespaces.iter().filter(|n| n.starts_with(tag)) {
        let _ = tools::ip(&["netns", "del", ns]);
    }
    for link in links.iter().filter(|n| n.starts_with(tag)) {
        let _ = tools::ip(&["link", "del", link]);
    }
    live().remove(tag);
}

/// The names of namespaces and links that look like ours.
fn tagged_names() -> (Vec<String>, Vec<String>) {
    let namespaces = tools::ip(&["netns", "list"]).unwrap_or_default();
    let namespaces = namespaces
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| tag_pid(n).is_some())
        .map(String::from)
        .collect();
    let links = tools::ip(&["-o", "link", "show"]).unwrap_or_default();
    let links = links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n))
        .filter(|n| tag_pid(n).is_some())
        .map(String::from)
        .collect();
    (namespaces, links)
}

/// Removes what dead runs left (namespaces, bridges, veths whose tag names a pid that no longer
/// runs) and returns the names removed. Live runs, of this process or another, are left alone.
pub fn clean_dead() -> Vec<String> {
    let (namespaces, links) = tagged_names();
    let dead = |n: &String| tag_pid(n).is_some_and(|pid| !pid_alive(pid));
    let mut removed = Vec::new();
    for ns in namespaces.iter().filter(|n| dead(n)) {
        if tools::ip(&["netns", "del", ns]).is_ok() {
            removed.push(format!("namespace {ns}"));
        }
    }
    // Veths went with their namespaces; what is left is bridges (and a veth whose namespace
    // was never made).
    let (_, links_now) = tagged_names();
    for link in links.iter().filter(|n| dead(n) && links_now.contains(n)) {
        if tools::ip(&["link", "del", link]).is_ok() {
            removed.push(format!("link {link}"));
        }
    }
    removed
}

/// One node's place in the network.
#[derive(Clone, Debug)]
pub struct NsNode {
    pub id: String,
    /// The namespace's name (`ip netns exec NAME`).
    pub ns: String,
    pub addr: Ipv4Addr,
}

impl NsNode {
    /// The namespace's file, for `setns`.
    pub fn ns_path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.ns)
    }
}

/// A run's bridge and namespaces; dropping it removes them all.
#[derive(Debug)]
pub struct NetNs {
    pub tag: String,
    pub subnet: Subnet,
    pub bridge: String,
    pub nodes: Vec<NsNode>,
    /// The whole-run link faults in force (`--net-loss`, ...; see [`super::links`]), which a
    /// scheduled packet fault's heal restores.
    pub link_faults: super::link_faults::LinkFaults,
}

impl NetNs {
    /// Makes a bridge and one namespace per node id on `subnet` (default: the first free
    /// 10.77.N.0/24). Refuses a subnet the host already routes. Removes what dead runs left
    /// first. On error nothing of this run is left behind.
    pub fn create(ids: &[String], subnet: Option<Subnet>) -> Result<NetNs> {
        Self::create_for_pid(ids, subnet, std::process::id())
    }

    /// As [`NetNs::create`], with names that carry `pid` (tests simulate a dead run with it).
    pub fn create_for_pid(ids: &[String], subnet: Option<Subnet>, pid: u32) -> Result<NetNs> {
        tools::require_all()?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { nix::libc::geteuid() } != 0 {
            bail!(
                "--net netns needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN to make namespaces and \
                 bridges); run as root, run `harness test --net netns` (which enters a user \
                 namespace of its own), or use --net proxy"
            );
        }
        if ids.len() > 253 {
            bail!("--net netns: at most 253 nodes on a /24, not {}", ids.len());
        }
        for gone in clean_dead() {
            tracing::info!("removed {gone}, left by a dead run");
        }
        // One creation at a time on this machine, so two runs never take the same subnet.
        let _lock = machine_lock()?;
        let subnet = match subnet {
            Some(s) => {
                if let Some(route) = routed_overlap(s)? {
                    bail!(
                        "--net-subnet {s}: already routed on this host ({route}); choose \
                         another subnet"
                    );
                }
                s
            }
            None => free_subnet()?,
        };
        let tag = tag_for(pid);
        let net = NetNs {
            bridge: format!("{tag}br"),
            nodes: ids
                .iter()
                .enumerate()
                .map(|(i, id)| NsNode {
                    id: id.clone(),
                    ns: format!("{tag}-n{}", i + 1),
                    addr: subnet.addr(i as u8 + 1),
                })
                .collect(),
            tag,
            subnet,
            link_faults: Default::default(),
        };
        live().insert(net.tag.clone());
        net.build()
            .with_context(|| format!("cannot set up the network namespaces on {subnet}"))?;
        tracing::info!(tag = %net.tag, %subnet, bridge = %net.bridge, "network namespaces ready");
        Ok(net)
    }

    /// The harness's own address on the bridge.
    pub fn host_addr(&self) -> Ipv4Addr {
        self.subnet.addr(254)
    }

    pub fn node(&self, id: &str) -> Option<&NsNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    fn build(&self) -> Result<()> {
        let br = self.bridge.as_str();
        let host = format!("{}/24", self.host_addr());
        tools::ip(&["link", "add", br, "type", "bridge"])?;
        tools::ip(&["addr", "add", &host, "dev", br])?;
        tools::ip(&["link", "set", br, "up"])?;
        for (i, n) in self.nodes.iter().enumerate() {
            let veth = format!("{}v{}", self.tag, i + 1);
            let addr = format!("{}/24", n.addr);
            tools::ip(&["netns", "add", &n.ns])?;
            tools::ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &n.ns,
            ])?;
            tools::ip(&["link", "set", &veth, "master", br, "up"])?;
            tools::ip(&["-n", &n.ns, "addr", "add", &addr, "dev", "eth0"])?;
            tools::ip(&["-n", &n.ns, "link", "set", "eth0", "up"])?;
            tools::ip(&["-n", &n.ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        remove_tagged(&self.tag);
    }
}

/// An exclusive lock on a file under /run, held while a run picks its subnet and builds on it.
fn machine_lock() -> Result<nix::fcntl::Flock<std::fs::File>> {
    let path = "/run/jepsen-rs-netns.lock";
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {path}"))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow!("cannot lock {path}: {e}"))
}

/// The first host route (or address) that overlaps `s`, if any; the default route does not count.
fn routed_overlap(s: Subnet) -> Result<Option<String>> {
    let routes = tools::ip(&["-4", "-o", "route", "show", "table", "all"])?;
    let (lo, hi) = s.range();
    const TYPES: [&str; 9] = [
        "local",
        "broadcast",
        "unicast",
        "multicast",
        "anycast",
        "blackhole",
        "unreachable",
        "prohibit",
        "throw",
    ];
    for line in routes.lines() {
        let mut words = line.split_whitespace();
        let mut dest = words.next().unwrap_or("");
        if TYPES.contains(&dest) {
            dest = words.next().unwrap_or("");
        }
        let Some((start, end)) = prefix_range(dest) else {
            continue;
        };
        if start <= hi && lo <= end {
            return Ok(Some(line.trim().to_string()));
        }
    }
    Ok(None)
}

/// `a.b.c.d/len` (or a bare address) as an inclusive range; `None` for `default` and the like.
fn prefix_range(dest: &str) -> Option<(u32, u32)> {
    let (addr, len) = dest.split_once('/').unwrap_or((dest, "32"));
    let ip: Ipv4Addr = addr.parse().ok()?;
    let len: u32 = len.parse().ok().filter(|l| (1..=32).contains(l))?;
    let mask = u32::MAX << (32 - len);
    let start = u32::from(ip) & mask;
    Some((start, start | !mask))
}

fn free_subnet() -> Result<Subnet> {
    for c in 0..=255u8 {
        let s = Subnet([AUTO_BASE[0], AUTO_BASE[1], c]);
        if routed_overlap(s)?.is_none() {
            return Ok(s);
        }
    }
    bail!("--net netns: no free subnet in 10.77.0.0/16; give one with --net-subnet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_fit_interface_names_and_carry_the_pid() {
        for pid in [1, 4242, 4_194_304] {
            let tag = tag_for(pid);
            assert_eq!(tag.len(), TAG_LEN);
            assert!(format!("{tag}v64").len() <= 15);
            assert_eq!(tag_pid(&format!("{tag}br")), Some(pid));
        }
        assert_eq!(tag_pid("eth0"), None);
        assert_eq!(tag_pid("jrxyz"), None);
    }

    #[test]
    fn subnets_parse_and_overlaps_are_ranges() {
        let s: Subnet = "10.77.3.0/24".parse().unwrap();
        assert_eq!(s.addr(254).to_string(), "10.77.3.254");
        assert!("10.77.3.1/24".parse::<Subnet>().is_err());
        assert!("10.77.3.0/16".parse::<Subnet>().is_err());
        assert!("8.8.8.0/24"
            .parse::<Subnet>()
            .unwrap_err()
            .contains("private"));
        assert_eq!(
            prefix_range("10.0.0.0/8"),
            Some((
                u32::from(Ipv4Addr::new(10, 0, 0, 0)),
                u32::from(Ipv4Addr::new(10, 255, 255, 255))
            ))
        );
        assert_eq!(prefix_range("default"), None);
    }
}
