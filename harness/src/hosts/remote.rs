//! Nodes run on the hosts of a hosts file: setup (binary copied, a folder per host), each node
//! started over SSH in its own process group under a watchdog, signals to that group, logs
//! fetched back into the run folder.
//!
//! The watchdog: each node runs under a small remote shell whose stdin is a pipe from the
//! harness, which writes a byte to it every [`HEARTBEAT`]. When that pipe closes (the harness
//! ended, however: even SIGKILL closes it) or stays silent for [`SILENCE`] (the host lost the
//! control machine), the shell SIGKILLs the node's group, so no node outlives the harness on any
//! host. `--leave-running` starts nodes without it.

use super::file::{self, HostSpec};
use super::firewall::privilege_prefix;
use super::ssh::{quote, Remote};
use crate::net::NetMode;
use crate::schedule::{FaultKind, Kinds};
use anyhow::{anyhow, bail, Context, Result};
use futures_util::future::join_all;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// Every setup command's deadline; copying the binary gets several.
const STEP: Duration = Duration::from_secs(10);
/// How often the harness tells each watchdog it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a watchdog waits for a heartbeat before it stops its node, in seconds.
pub const SILENCE: u32 = 30;

/// The `--hosts` options of `harness test`.
#[derive(clap::Args, Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HostsRunArgs {
    /// Run the nodes on the hosts of this hosts file (TOML, one [[host]] per node; see
    /// `harness hosts check`), over SSH, instead of on this machine.
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<PathBuf>,
    /// With --hosts: leave the nodes running on their hosts at the end, for inspection (the
    /// harness prints how to stop them).
    #[arg(long, requires = "hosts")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub leave_running: bool,
}

/// The hosts of a run, connected, node `i` on host `i`.
pub struct RemoteHosts {
    pub hosts: Vec<Remote>,
    /// Each host's address, as the nodes and the clients reach it.
    pub addrs: Vec<Ipv4Addr>,
    /// Each host's folder for this run (`/tmp/harness-remote-<run>/<host>`).
    dirs: Vec<String>,
    /// Each host's copy of the node binary, in its cache folder ([`cached_upload`]).
    bins: Vec<String>,
    leave_running: bool,
    /// `sudo -n ` where nft and tc need it, else `""`.
    pub sudo: Vec<&'static str>,
    /// Each host's interface towards the others (with packet faults, else empty).
    pub devs: Vec<String>,
    /// Each host's libfaketime (with clock faults, else empty).
    pub faketime: Vec<String>,
    /// What the faults need on the hosts; the watchdog also undoes the rules.
    needs: Needs,
    /// The logs' local copies, written at the end.
    local_logs: Vec<PathBuf>,
}

impl std::fmt::Debug for RemoteHosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteHosts")
            .field("dirs", &self.dirs)
            .finish()
    }
}

/// A node running on a host: the wrapper's session, the node's process group there.
pub struct RemoteProc {
    pub pgid: i32,
    /// The wrapper's session; dropping it closes the watchdog's pipe.
    child: Option<openssh::Child<Arc<openssh::Session>>>,
    /// The node's exit code (a signal is 128 + N), once the wrapper reported it.
    exit: Arc<Mutex<Option<i32>>>,
    /// Writes the heartbeat; it owns the wrapper's stdin, so ending it closes the pipe.
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for RemoteProc {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

impl RemoteProc {
    pub fn exit_code(&self) -> Option<i32> {
        *self.exit.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Connects to every host of `args.hosts` (in parallel) and prepares them for `plan`: the node
/// binary copied, a folder per host, every node listening on its host's address. `None` without
/// `--hosts`.
pub async fn attach(
    args: &HostsRunArgs,
    kinds: &Kinds,
    net: NetMode,
    plan: &mut crate::cluster::ClusterPlan,
) -> Result<Option<Arc<RemoteHosts>>> {
    let Some(path) = &args.hosts else {
        return Ok(None);
    };
    if net != NetMode::Proxy {
        bail!(
            "--hosts and --net netns do not mix: with --hosts the nodes use the hosts' own network"
        );
    }
    if kinds.0.contains(&FaultKind::PowerCut) {
        bail!(
            "--nemesis power-cut is not supported with --hosts: its FUSE layer runs inside the \
             harness process, on this machine, and cannot hold a remote node's data dir (the \
             other faults are)"
        );
    }
    let needs = Needs::of(kinds);
    let file = file::load(path)?;
    if file.hosts.len() != plan.nodes.len() {
        bail!(
            "--hosts {}: lists {} hosts but the run has {} nodes (--nodes); one node runs on each host",
            path.display(),
            file.hosts.len(),
            plan.nodes.len()
        );
    }
    let run = plan.nodes[0]
        .log_path
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .map_or_else(
            || std::process::id().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
    let bin_name = plan
        .bin
        .file_name()
        .map_or("node".into(), |n| n.to_string_lossy().into_owned());
    // Hashed while the hosts connect: a 60 MB binary takes a while to read.
    let (hash_tx, hash) = tokio::sync::watch::channel(None);
    let local = plan.bin.clone();
    tokio::spawn(async move {
        let h = local_sha256(&local).await.map_err(|e| format!("{e:#}"));
        let _ = hash_tx.send(Some(h));
    });
    let peers: Vec<Option<Ipv4Addr>> = file.hosts.iter().map(|h| resolve(h).ok()).collect();
    let tasks: Vec<_> = file
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let job = Setup {
                spec: h.clone(),
                ssh_config: file.ssh_config.clone(),
                bin: plan.bin.clone(),
                hash: hash.clone(),
                dir: format!("/tmp/harness-remote-{run}/{}", h.name),
                remote_bin: format!("{CACHE_DIR}/{}/{bin_name}", h.name),
                // Any other host: the interface towards it carries the node's traffic.
                peer: peers
                    .iter()
                    .enumerate()
                    .find_map(|(j, a)| (j != i).then_some(*a)?),
                needs,
            };
            tokio::spawn(job.run())
        })
        .collect();
    let mut set = Vec::new();
    let mut failed = None;
    for t in tasks {
        match t.await.map_err(|e| anyhow!("host setup panicked: {e}")) {
            Ok(Ok(h)) => set.push(h),
            Ok(Err(e)) | Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed {
        // The hosts that were set up keep nothing of a run that will not start.
        for h in &set {
            let _ = h.remote.run(&remove_dir_script(&h.dir), STEP).await;
        }
        return Err(e);
    }
    let addrs: Vec<Ipv4Addr> = set.iter().map(|h| h.addr).collect();
    let dirs: Vec<String> = set.iter().map(|h| h.dir.clone()).collect();
    for (spec, (addr, dir)) in plan.nodes.iter_mut().zip(addrs.iter().zip(&dirs)) {
        spec.listen = SocketAddr::from((*addr, super::PEER_PORT));
        spec.client = SocketAddr::from((*addr, super::CLIENT_PORT));
        spec.data_dir = PathBuf::from(format!("{dir}/data"));
    }
    let listen: std::collections::BTreeMap<String, SocketAddr> = plan
        .nodes
        .iter()
        .map(|n| (n.id.clone(), n.listen))
        .collect();
    for ((_, to), addr) in plan.peer_addr.iter_mut() {
        *addr = listen[to];
    }
    let remote = Arc::new(RemoteHosts {
        local_logs: plan.nodes.iter().map(|n| n.log_path.clone()).collect(),
        addrs,
        dirs,
        sudo: set.iter().map(|h| h.sudo).collect(),
        bins: set.iter().map(|h| h.remote_bin.clone()).collect(),
        devs: set.iter().map(|h| h.dev.clone()).collect(),
        faketime: set.iter().map(|h| h.faketime.clone()).collect(),
        hosts: set.into_iter().map(|h| h.remote).collect(),
        leave_running: args.leave_running,
        needs,
    });
    for (h, d) in remote.hosts.iter().zip(&remote.dirs) {
        tracing::info!(host = %h.spec.name, address = %h.spec.address, dir = %d, "host ready");
    }
    Ok(Some(remote))
}

/// What a run's faults need on every host.
#[derive(Clone, Copy, Debug, Default)]
struct Needs {
    /// nft (partitions, loss, dup), and so root or sudo.
    nft: bool,
    /// Packet faults: the interface towards the peers.
    packets: bool,
    /// Rate windows: tc.
    tc: bool,
    /// Clock windows: libfaketime.
    clock: bool,
}

impl Needs {
    fn of(kinds: &Kinds) -> Needs {
        let has = |k| kinds.0.contains(&k);
        Needs {
            nft: super::check::needs_nft(kinds),
            packets: FaultKind::PACKET.iter().any(|k| has(*k)),
            tc: has(FaultKind::Rate),
            clock: has(FaultKind::Clock),
        }
    }
}

/// One host's setup for a run, done in a task of its own.
struct Setup {
    spec: HostSpec,
    ssh_config: Option<PathBuf>,
    bin: PathBuf,
    /// The local binary's SHA-256, once known.
    hash: tokio::sync::watch::Receiver<Option<Result<String, String>>>,
    dir: String,
    remote_bin: String,
    peer: Option<Ipv4Addr>,
    needs: Needs,
}

/// A host set up: connected, checked for what the faults need, the binary in its cache.
struct Ready {
    remote: Remote,
    addr: Ipv4Addr,
    dir: String,
    remote_bin: String,
    sudo: &'static str,
    dev: String,
    faketime: String,
}

impl Setup {
    async fn run(self) -> Result<Ready> {
        let h = &self.spec;
        let addr = resolve(h)?;
        let r = Remote::connect(h, self.ssh_config.as_deref(), STEP)
            .await
            .map_err(|e| anyhow!("host {} ({}): cannot connect: {e:#}", h.name, h.address))?;
        let sudo = match self.needs.nft || self.needs.tc {
            true => privilege_prefix(&r).await?,
            false => "",
        };
        if self.needs.nft {
            r.run_ok(&format!("{sudo}nft list tables >/dev/null"), STEP)
                .await
                .map_err(|e| {
                    anyhow!(
                        "host {}: partitions and packet faults need nft: {e:#}",
                        h.name
                    )
                })?;
        }
        let dev = match (self.needs.packets, self.peer) {
            (true, Some(p)) => super::packets::peer_dev(&r, p).await?,
            _ => String::new(),
        };
        if self.needs.tc {
            r.run_ok(
                &format!("{sudo}tc qdisc show dev {} >/dev/null", quote(&dev)),
                STEP,
            )
            .await
            .map_err(|e| anyhow!("host {}: rate faults need tc: {e:#}", h.name))?;
        }
        let faketime = match self.needs.clock {
            true => super::check::faketime(&r, STEP)
                .await?
                .ok_or_else(|| anyhow!("host {}: {}", h.name, super::check::NO_FAKETIME))?,
            false => String::new(),
        };
        r.run_ok(&format!("mkdir -p {}/data", quote(&self.dir)), STEP)
            .await?;
        let mut rx = self.hash.clone();
        let hash = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| anyhow!("hashing the node binary ended without an answer"))?
            .clone()
            .unwrap_or_else(|| Err("no hash".into()))
            .map_err(|e| anyhow!(e))?;
        cached_upload(&r, &self.bin, &hash, &self.remote_bin)
            .await
            .with_context(|| format!("host {}", h.name))?;
        Ok(Ready {
            remote: r,
            addr,
            dir: self.dir,
            remote_bin: self.remote_bin,
            sudo,
            dev,
            faketime,
        })
    }
}

/// Where each host keeps its copy of the node binary between runs: `<CACHE_DIR>/<host>/<binary>`
/// (the host's name in it, so namespace hosts sharing one file system keep apart copies).
pub const CACHE_DIR: &str = "/tmp/harness-cache";

/// The SHA-256 of a local file, by the system's `sha256sum`.
async fn local_sha256(path: &Path) -> Result<String> {
    let out = tokio::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .await
        .context("cannot run sha256sum")?;
    if !out.status.success() {
        bail!(
            "sha256sum {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

/// Copies `bin` to `remote` unless the host's copy there already has the SHA-256 `hash` (a
/// debug paxos-node is ~60 MB: copying it to five hosts each run took most of the setup).
async fn cached_upload(r: &Remote, bin: &Path, hash: &str, remote: &str) -> Result<()> {
    let script = format!("sha256sum {} 2>/dev/null; true", quote(remote));
    let theirs = r.run_ok(&script, STEP).await?;
    let theirs = theirs.split_whitespace().next().unwrap_or_default();
    let short = &hash[..hash.len().min(12)];
    if !hash.is_empty() && theirs == hash {
        tracing::info!(host = %r.spec.name, path = remote, sha256 = short, "node binary already on the host (same sha256): not copied");
        return Ok(());
    }
    let size = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
    r.upload(bin, remote, true, STEP * 6).await?;
    tracing::info!(host = %r.spec.name, path = remote, sha256 = short, bytes = size, "node binary copied to the host (its copy was missing or differed)");
    Ok(())
}

/// The host's IPv4 address (a name is looked up here, once).
fn resolve(h: &HostSpec) -> Result<Ipv4Addr> {
    (h.address.as_str(), h.port)
        .to_socket_addrs()
        .with_context(|| format!("host {}: cannot resolve {}", h.name, h.address))?
        .find_map(|a| match a {
            SocketAddr::V4(v4) => Some(*v4.ip()),
            SocketAddr::V6(_) => None,
        })
        .ok_or_else(|| anyhow!("host {}: {} has no IPv4 address", h.name, h.address))
}

impl RemoteHosts {
    pub fn leave_running(&self) -> bool {
        self.leave_running
    }

    /// Host `i`'s run folder.
    pub fn dir(&self, i: usize) -> &str {
        &self.dirs[i]
    }

    /// What the watchdog runs to take host `i`'s fault rules out (` cmd;` each).
    fn undo_rules(&self, i: usize) -> String {
        let sudo = self.sudo[i];
        let mut s = String::new();
        if self.needs.nft {
            s.push_str(&format!(
                " {sudo}nft delete table ip jepsen_cut; {sudo}nft delete table ip jepsen_packet;"
            ));
        }
        if self.needs.tc {
            s.push_str(&format!(
                " {sudo}tc qdisc del dev {} root;",
                quote(&self.devs[i])
            ));
        }
        s
    }

    fn log(&self, i: usize) -> String {
        format!("{}/node.log", self.dirs[i])
    }

    /// Starts node `i` with `argv` and `env` on its host; returns once the wrapper reported the
    /// group.
    pub async fn start(
        &self,
        i: usize,
        argv: &[String],
        env: &[(String, std::ffi::OsString)],
    ) -> Result<RemoteProc> {
        let host = &self.hosts[i];
        let env = env
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_string_lossy()));
        let words: Vec<String> = std::iter::once("env".to_string())
            .chain(env)
            .chain(std::iter::once(self.bins[i].clone()))
            .chain(argv.iter().cloned())
            .map(|w| quote(&w))
            .collect();
        let node = format!(
            "setsid {} </dev/null >>{} 2>&1 3<&- &",
            words.join(" "),
            quote(&self.log(i))
        );
        let watchdog = if self.leave_running {
            String::new()
        } else {
            // Background jobs get /dev/null as stdin; fd 3 is the session's. Once the node has
            // ended (killed by the nemesis, say) the watchdog is disarmed: the harness is alive.
            let unrule = self.undo_rules(i);
            format!(
                "{{ while [ -n \"$(timeout {SILENCE} head -c 1 <&3)\" ]; do :; done; \
                 kill -s KILL -- -$pg;{unrule} }} >/dev/null 2>&1 &\nwd=$!\n"
            )
        };
        let script = format!(
            "exec 3<&0\ncd {dir} || exit 97\n{node}\npg=$!\necho \"pgid $pg\"\n{watchdog}wait $pg\ncode=$?\n{disarm}echo \"exit $code\"\n",
            disarm = if self.leave_running { "" } else { "kill $wd 2>/dev/null\n" },
            dir = quote(&self.dirs[i])
        );
        let mut child = host
            .spawn(&script)
            .await
            .with_context(|| format!("host {}", host.spec.name))?;
        let stdout = child.stdout().take().context("no stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(STEP, lines.next_line())
            .await
            .map_err(|_| {
                anyhow!(
                    "host {}: the node wrapper did not start within {STEP:?}",
                    host.spec.name
                )
            })?
            .context("reading the node wrapper")?
            .unwrap_or_default();
        let pgid: i32 = first
            .strip_prefix("pgid ")
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| anyhow!("host {}: the node wrapper said {first:?}", host.spec.name))?;
        let exit = Arc::new(Mutex::new(None));
        let seen = exit.clone();
        tokio::spawn(async move {
            while let Ok(Some(l)) = lines.next_line().await {
                if let Some(code) = l.strip_prefix("exit ").and_then(|c| c.trim().parse().ok()) {
                    *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(code);
                }
            }
        });
        let heartbeat = match (self.leave_running, child.stdin().take()) {
            (false, Some(mut stdin)) => Some(tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                while stdin.write_all(b".").await.is_ok() && stdin.flush().await.is_ok() {
                    tokio::time::sleep(HEARTBEAT).await;
                }
            })),
            _ => None,
        };
        tracing::info!(node = i + 1, host = %host.spec.name, pgid, "node started on its host");
        Ok(RemoteProc {
            pgid,
            child: Some(child),
            exit,
            heartbeat,
        })
    }

    /// Sends `sig` (a `kill` name: STOP, CONT, KILL) to node `i`'s group on its host.
    pub async fn signal(&self, i: usize, p: &RemoteProc, sig: &str) -> Result<()> {
        let host = &self.hosts[i];
        host.run_ok(&format!("kill -s {sig} -- -{}", p.pgid), STEP)
            .await
            .with_context(|| {
                format!("host {}: SIG{sig} to node group {}", host.spec.name, p.pgid)
            })?;
        Ok(())
    }

    /// SIGKILLs node `i`'s group and waits (bounded) for its wrapper to end.
    pub async fn kill(&self, i: usize, mut p: RemoteProc) {
        if p.exit_code().is_none() {
            if let Err(e) = self.signal(i, &p, "KILL").await {
                tracing::warn!("{e:#}");
            }
        }
        // The wrapper disarms its watchdog once the node is gone; only then may the pipe close,
        // or the watchdog would take the close for a dead harness (and lift the partitions).
        if let Some(child) = p.child.take() {
            let _ = tokio::time::timeout(STEP, child.wait()).await;
        }
        if let Some(h) = p.heartbeat.take() {
            h.abort();
        }
    }

    /// Copies every node's log into the run folder (`nodes/<id>.log`); problems are logged.
    pub async fn fetch_logs(&self) {
        let fetch = self.hosts.iter().enumerate().map(|(i, h)| async move {
            match h.download(&self.log(i), STEP * 3).await {
                Ok(bytes) => {
                    if let Err(e) = std::fs::write(&self.local_logs[i], bytes) {
                        tracing::warn!(host = %h.spec.name, "cannot write the node log: {e}");
                    }
                }
                Err(e) => tracing::warn!(host = %h.spec.name, "cannot fetch the node log: {e:#}"),
            }
        });
        join_all(fetch).await;
    }

    /// At the end of the run: the logs fetched, then each host's folder removed, or with
    /// `--leave-running` how to stop the nodes printed.
    pub async fn finish(&self, pgids: &[Option<i32>]) {
        self.fetch_logs().await;
        if !self.leave_running {
            let remove = self
                .hosts
                .iter()
                .zip(&self.dirs)
                .map(|(h, dir)| async move {
                    if let Err(e) = h.run(&remove_dir_script(dir), STEP).await {
                        tracing::warn!(host = %h.spec.name, "cannot remove {dir}: {e:#}");
                    }
                });
            join_all(remove).await;
            return;
        }
        for (i, h) in self.hosts.iter().enumerate() {
            if let Some(pg) = pgids[i] {
                crate::errln!(
                    "harness: node n{} left running on host {} ({}), process group {pg}, in {}; \
                     stop it with: ssh {} 'kill -s TERM -- -{pg}'",
                    i + 1,
                    h.spec.name,
                    h.spec.address,
                    self.dirs[i],
                    h.spec.address
                );
            }
        }
    }
}

/// Removes a host's run folder, and the run's parent folder once it is empty.
fn remove_dir_script(dir: &str) -> String {
    let parent = Path::new(dir)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    format!(
        "rm -rf {}; rmdir {} 2>/dev/null; true",
        quote(dir),
        quote(&parent)
    )
}
