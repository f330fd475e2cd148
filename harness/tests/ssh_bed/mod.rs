//! The namespace hosts of the `--hosts` tests: each host is a network namespace of its own
//! running Debian's sshd on its address (needs root, `ip`, `nft`, `sshd`, `ssh`; scripts/setup
//! installs them), and the harness connects with a key made for the test.
// Each test file uses a part of it.
#![allow(dead_code)]

use crate::cli_util::*;
use harness::net::netns::NetNs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One test at a time: namespace creation removes dead runs' leftovers and takes a machine lock.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "harness-test", "-f"])
        .arg(path)
        .status()
        .expect("run ssh-keygen")
        .success();
    assert!(ok, "ssh-keygen failed");
}

/// Namespace hosts, each with its own sshd; dropping it stops every sshd, removes the namespaces
/// and the folder of keys and configs.
pub struct SshBed {
    pub dir: PathBuf,
    sshd: Vec<Child>,
    pub net: NetNs,
}

impl SshBed {
    pub fn new(name: &str, n: usize) -> SshBed {
        let ids: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        let net = NetNs::create(&ids, None).expect("create the namespace hosts");
        let dir = scratch(&format!("sshbed-{name}"));
        let mut bed = SshBed {
            dir,
            sshd: Vec::new(),
            net,
        };
        keygen(&bed.dir.join("key"));
        keygen(&bed.dir.join("wrong_key"));
        std::fs::create_dir_all("/run/sshd").expect("make /run/sshd");
        std::fs::write(
            bed.dir.join("ssh_config"),
            format!(
                "UserKnownHostsFile {}\nGlobalKnownHostsFile /dev/null\nLogLevel ERROR\n",
                bed.dir.join("known_hosts").display()
            ),
        )
        .unwrap();
        for i in 0..n {
            let child = bed.start_sshd(i);
            bed.sshd.push(child);
        }
        for i in 0..n {
            bed.wait_listening(i);
        }
        bed
    }

    fn start_sshd(&self, i: usize) -> Child {
        let node = &self.net.nodes[i];
        let d = self.dir.join(&node.id);
        std::fs::create_dir_all(&d).unwrap();
        keygen(&d.join("host_key"));
        let config = format!(
            "ListenAddress {addr}\nPort 22\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {pid}\n\
             MaxSessions 100\nMaxStartups 100\n",
            addr = node.addr,
            hk = d.join("host_key").display(),
            ak = self.dir.join("key.pub").display(),
            pid = d.join("sshd.pid").display(),
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &node.ns,
                "/usr/sbin/sshd",
                "-D",
                "-e",
                "-f",
            ])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .expect("start sshd")
    }

    fn wait_listening(&self, i: usize) {
        let addr = std::net::SocketAddr::from((self.net.nodes[i].addr, 22));
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        assert!(
            up,
            "sshd of {} did not listen on {addr}",
            self.net.nodes[i].id
        );
    }

    /// A hosts file for every host; `extra` adds lines to host `i`'s table (a `key` or `user` line
    /// replaces the bed's).
    pub fn hosts_file(&self, name: &str, extra: &[(usize, &str)]) -> PathBuf {
        let mut text = format!(
            "ssh_config = \"{}\"\n",
            self.dir.join("ssh_config").display()
        );
        for (i, node) in self.net.nodes.iter().enumerate() {
            text.push_str(&format!("\n[[host]]\naddress = \"{}\"\n", node.addr));
            let own: Vec<&str> = extra.iter().filter(|(j, _)| *j == i).map(|e| e.1).collect();
            if !own.iter().any(|l| l.starts_with("user")) {
                text.push_str("user = \"root\"\n");
            }
            if !own.iter().any(|l| l.starts_with("key")) {
                text.push_str(&format!("key = \"{}\"\n", self.dir.join("key").display()));
            }
            for l in own {
                text.push_str(l);
                text.push('\n');
            }
        }
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn unused_addr(&self) -> std::net::Ipv4Addr {
        self.net.subnet.addr(200)
    }
}

/// Every process below `pid`, children first found first.
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let p: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut out = vec![];
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for (c, _) in parents.iter().filter(|(_, pp)| *pp == p) {
            out.push(*c);
            todo.push(*c);
        }
    }
    out
}

impl Drop for SshBed {
    fn drop(&mut self) {
        // The sessions' sshd processes (and anything they started) first: once the listener is
        // gone they would belong to init.
        for c in &mut self.sshd {
            for p in descendants(c.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn paxos_node() -> PathBuf {
    build_paxos_node();
    harness().parent().unwrap().join("paxos-node")
}

/// Processes whose command line names a remote folder of the run in `dir` (the namespace hosts
/// share this machine's process table, so pgrep sees the nodes).
pub fn remote_procs(dir: &Path) -> Vec<String> {
    let run = dir.file_name().unwrap().to_string_lossy().into_owned();
    let out = Command::new("pgrep")
        .args(["-a", "-f", &format!("harness-remote-{run}/")])
        .output()
        .expect("run pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// The hosts' folder of a run (`/tmp/harness-remote-<run>`).
pub fn remote_dir(dir: &Path) -> PathBuf {
    let run = dir.file_name().unwrap().to_string_lossy().into_owned();
    PathBuf::from(format!("/tmp/harness-remote-{run}"))
}
