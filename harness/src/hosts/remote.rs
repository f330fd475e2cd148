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
    bin_name: String,
    leave_running: bool,
    /// `sudo -n ` where nft needs it, else `""`.
    pub sudo: Vec<&'static str>,
    /// Partitions are among the faults: the watchdog also removes the rules.
    partitions: bool,
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
    if let Some(k) = kinds
        .0
        .iter()
        .find(|k| **k != FaultKind::Partition && !matches!(k, FaultKind::Pause | FaultKind::Kill))
    {
        bail!("--nemesis {k} is not supported with --hosts yet (partition, pause and kill are)");
    }
    let partitions = kinds.0.contains(&FaultKind::Partition);
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
    let tasks: Vec<_> = file
        .hosts
        .iter()
        .map(|h| {
            let (h, cfg, bin) = (h.clone(), file.ssh_config.clone(), plan.bin.clone());
            let dir = format!("/tmp/harness-remote-{run}/{}", h.name);
            let remote_bin = format!("{dir}/{bin_name}");
            tokio::spawn(async move {
                let addr = resolve(&h)?;
                let r = Remote::connect(&h, cfg.as_deref(), STEP)
                    .await
                    .map_err(|e| {
                        anyhow!("host {} ({}): cannot connect: {e:#}", h.name, h.address)
                    })?;
                let sudo = match partitions {
                    true => privilege_prefix(&r).await?,
                    false => "",
                };
                if partitions {
                    r.run_ok(&format!("{sudo}nft list tables >/dev/null"), STEP)
                        .await
                        .map_err(|e| anyhow!("host {}: partitions need nft: {e:#}", h.name))?;
                }
                r.run_ok(&format!("mkdir -p {}/data", quote(&dir)), STEP)
                    .await?;
                r.upload(&bin, &remote_bin, true, STEP * 6)
                    .await
                    .with_context(|| format!("host {}", h.name))?;
                Ok::<_, anyhow::Error>((r, addr, dir, sudo))
            })
        })
        .collect();
    let (mut hosts, mut addrs, mut dirs, mut sudo) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut failed = None;
    for t in tasks {
        match t.await.map_err(|e| anyhow!("host setup panicked: {e}")) {
            Ok(Ok((r, a, d, s))) => {
                hosts.push(r);
                addrs.push(a);
                dirs.push(d);
                sudo.push(s);
            }
            Ok(Err(e)) | Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed {
        // The hosts that were set up keep nothing of a run that will not start.
        for (h, d) in hosts.iter().zip(&dirs) {
            let _ = h.run(&remove_dir_script(d), STEP).await;
        }
        return Err(e);
    }
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
        hosts,
        addrs,
        dirs,
        bin_name,
        leave_running: args.leave_running,
        sudo,
        partitions,
    });
    for (h, d) in remote.hosts.iter().zip(&remote.dirs) {
        tracing::info!(host = %h.spec.name, address = %h.spec.address, dir = %d, "host ready");
    }
    Ok(Some(remote))
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

    fn log(&self, i: usize) -> String {
        format!("{}/node.log", self.dirs[i])
    }

    /// Starts node `i` with `argv` on its host; returns once the wrapper reported the group.
    pub async fn start(&self, i: usize, argv: &[String]) -> Result<RemoteProc> {
        let host = &self.hosts[i];
        let bin = format!("{}/{}", self.dirs[i], self.bin_name);
        let words: Vec<String> = std::iter::once(bin)
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
            let unrule = match self.partitions {
                true => format!(" {}nft delete table ip jepsen_cut;", self.sudo[i]),
                false => String::new(),
            };
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
        for (i, h) in self.hosts.iter().enumerate() {
            match h.download(&self.log(i), STEP * 3).await {
                Ok(bytes) => {
                    if let Err(e) = std::fs::write(&self.local_logs[i], bytes) {
                        tracing::warn!(host = %h.spec.name, "cannot write the node log: {e}");
                    }
                }
                Err(e) => tracing::warn!(host = %h.spec.name, "cannot fetch the node log: {e:#}"),
            }
        }
    }

    /// At the end of the run: the logs fetched, then each host's folder removed, or with
    /// `--leave-running` how to stop the nodes printed.
    pub async fn finish(&self, pgids: &[Option<i32>]) {
        self.fetch_logs().await;
        for (i, h) in self.hosts.iter().enumerate() {
            if self.leave_running {
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
                continue;
            }
            if let Err(e) = h.run(&remove_dir_script(&self.dirs[i]), STEP).await {
                tracing::warn!(host = %h.spec.name, "cannot remove {}: {e:#}", self.dirs[i]);
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
