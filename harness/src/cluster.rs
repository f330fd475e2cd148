//! Real node processes: planning ports and argv, launching, readiness, faults on processes
//! (pause, resume, kill, restart) and making sure no node outlives the harness.
//!
//! Every node runs in its own process group (so signals reach anything it forks, and a Ctrl-C in
//! the terminal reaches only the harness, which then stops the nodes itself). Nodes get
//! `PR_SET_PDEATHSIG = SIGKILL`, which covers a SIGKILL of the harness. The kernel sends that
//! signal when the *thread* that forked the child exits, so all spawns happen on one dedicated
//! thread that lives as long as the process. A global registry of live process groups lets the
//! signal handler and the panic hook kill every node. What a node starts outside its group (a
//! daemon that calls `setsid`) is held by [`crate::reaper`], and what a node listens on is
//! checked by [`crate::listen_check`].

use crate::listen_check;
pub use crate::node_bin::{check_node_bin, default_node_bin};
use anyhow::{anyhow, bail, Context, Result};
use futures_util::future::join_all;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::watch;

// ---------------------------------------------------------------------------------------------
// Process-group registry, signal handling, panic hook.

static GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
/// Node pids the harness SIGKILLed at a signal or panic: their death is not their own doing.
static KILLED_BY_US: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
static INTERRUPT: OnceLock<watch::Sender<bool>> = OnceLock::new();

fn groups() -> std::sync::MutexGuard<'static, BTreeSet<i32>> {
    GROUPS.lock().unwrap_or_else(|p| p.into_inner())
}

/// SIGKILLs every live node process group and what the nodes started outside them. Safe to call
/// from a panic hook or signal thread.
pub fn kill_all_groups() {
    let live = groups().clone();
    for &pgid in &live {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    KILLED_BY_US
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(&live);
    crate::reaper::kill_ours(&live);
}

fn interrupt_sender() -> &'static watch::Sender<bool> {
    INTERRUPT.get_or_init(|| watch::channel(false).0)
}

/// True once the harness got SIGINT, SIGTERM or SIGHUP.
pub fn interrupted() -> bool {
    *interrupt_sender().borrow()
}

/// Resolves when the harness gets SIGINT, SIGTERM or SIGHUP.
pub async fn wait_interrupt() {
    let mut rx = interrupt_sender().subscribe();
    let _ = rx.wait_for(|v| *v).await;
}

/// The number of the first signal that interrupted the harness; 0 if none did.
static SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// How long the run may take to finish up (stop clients, write results) after the first signal
/// before the harness exits anyway.
pub const FINISH_UP_GRACE: Duration = Duration::from_secs(5);

/// The exit code of an interrupted command, by the shell's convention 128 + signal number:
/// 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP (130 if no signal was recorded).
pub fn interrupt_exit_code() -> u8 {
    match SIGNAL.load(std::sync::atomic::Ordering::SeqCst) {
        0 => 130,
        n => (128 + n) as u8,
    }
}

/// Installs, once per process, the SIGINT/SIGTERM/SIGHUP handler (first signal: kill every node,
/// remove the run's network namespaces and tell the run to stop, which then has
/// [`FINISH_UP_GRACE`] to write its results; a second signal or the end of the grace: exit at once
/// with [`interrupt_exit_code`]) and a panic hook that does the same clean-up.
pub fn install_guards() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            kill_all_groups();
            crate::net::netns::remove_live();
            crate::power::unmount_live();
            previous(info);
        }));
        std::thread::Builder::new()
            .name("harness-signals".into())
            .spawn(signal_thread)
            .expect("spawn the signal thread");
        // Make sure the spawner thread exists before any node does.
        let _ = spawner();
    });
}

fn signal_thread() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("signal runtime");
    rt.block_on(async {
        let mut signals = Signals::install();
        let first = signals.next().await;
        SIGNAL.store(first as i32, std::sync::atomic::Ordering::SeqCst);
        kill_all_groups();
        crate::net::netns::remove_live();
        crate::errln!("\nharness: {first}: nodes stopped, finishing up (again to quit now)");
        interrupt_sender().send_replace(true);
        tokio::select! {
            _ = signals.next() => {}
            _ = tokio::time::sleep(FINISH_UP_GRACE) => {
                crate::errln!("harness: still finishing up after {FINISH_UP_GRACE:?}; quitting now");
            }
        }
        kill_all_groups();
        crate::net::netns::remove_live();
        crate::power::unmount_live();
        std::process::exit(interrupt_exit_code().into());
    });
}

/// The signals that stop a run.
struct Signals([(Signal, tokio::signal::unix::Signal); 3]);

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        let on = |s: Signal, k: SignalKind| (s, signal(k).expect("install a signal handler"));
        Signals([
            on(Signal::SIGINT, SignalKind::interrupt()),
            on(Signal::SIGTERM, SignalKind::terminate()),
            on(Signal::SIGHUP, SignalKind::hangup()),
        ])
    }

    async fn next(&mut self) -> Signal {
        let [(a, int), (b, term), (c, hup)] = &mut self.0;
        tokio::select! {
            _ = int.recv() => *a,
            _ = term.recv() => *b,
            _ = hup.recv() => *c,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The spawner thread.

type SpawnReply = std::sync::mpsc::SyncSender<std::io::Result<Child>>;
struct SpawnReq {
    cmd: Command,
    rt: tokio::runtime::Handle,
    reply: SpawnReply,
}

fn spawner() -> &'static Mutex<std::sync::mpsc::Sender<SpawnReq>> {
    static SPAWNER: OnceLock<Mutex<std::sync::mpsc::Sender<SpawnReq>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnReq>();
        std::thread::Builder::new()
            .name("harness-spawner".into())
            .spawn(move || {
                // Never returns while the process lives: its exit would fire PDEATHSIG.
                for mut req in rx {
                    let _guard = req.rt.enter();
                    let _ = req.reply.send(req.cmd.spawn());
                }
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn the spawner thread");
        Mutex::new(tx)
    })
}

/// Spawns `cmd` in its own process group with a parent-death SIGKILL, from the spawner thread,
/// and registers its group.
async fn spawn_node(mut cmd: Command) -> std::io::Result<Child> {
    let parent = std::process::id() as i32;
    cmd.process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe syscalls.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The harness may have died between fork and prctl: then die now.
            if nix::unistd::getppid().as_raw() != parent {
                nix::libc::_exit(137);
            }
            Ok(())
        });
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let req = SpawnReq {
        cmd,
        rt: tokio::runtime::Handle::current(),
        reply: tx,
    };
    spawner()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(req)
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    let child = tokio::task::spawn_blocking(move || rx.recv())
        .await
        .map_err(std::io::Error::other)?
        .map_err(|_| std::io::Error::other("spawner thread dropped the request"))??;
    if let Some(pid) = child.id() {
        groups().insert(pid as i32);
    }
    Ok(child)
}

// ---------------------------------------------------------------------------------------------
// Planning.

/// One node's launch parameters.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub id: String,
    /// Where peers connect (`--listen`).
    pub listen: SocketAddr,
    /// Where clients connect (`--client`).
    pub client: SocketAddr,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    /// With `--net netns`: the namespace file the node runs in (entered between fork and exec).
    pub netns: Option<PathBuf>,
    /// Set in the node's environment (e.g. the clock faults' preload).
    pub env: Vec<(String, std::ffi::OsString)>,
}

/// Everything needed to launch a cluster, computed before launch.
#[derive(Clone, Debug)]
pub struct ClusterPlan {
    pub bin: PathBuf,
    pub nodes: Vec<NodeSpec>,
    /// The address node `from` dials for peer `to`, keyed `(from, to)`. Defaults to `to`'s
    /// `--listen`; the nemesis replaces each entry with the address of that link's proxy.
    pub peer_addr: BTreeMap<(String, String), SocketAddr>,
    /// Appended verbatim to every node's argv.
    pub extra_args: Vec<String>,
    pub ready_timeout: Duration,
    /// Every data dir is a power-cut layer ([`crate::power`]), for `--nemesis power-cut`.
    pub power_cut: bool,
    /// With `--hosts`: node `i` runs on host `i` over SSH, not here.
    pub remote: Option<std::sync::Arc<crate::hosts::remote::RemoteHosts>>,
    /// With spare nodes (`--spare`): the first configuration, passed to every node as
    /// `--members`; `None` makes every node a member.
    pub members: Option<Vec<String>>,
    /// The node ports' claims, released when the last copy of the plan goes.
    _claims: std::sync::Arc<Vec<crate::ports::PortClaim>>,
}

/// A free loopback port for a node, held until the plan is built so one plan never gets the same
/// port twice, and claimed for as long as the plan lives so no other harness on this machine
/// takes it ([`crate::ports`]). Chosen below the kernel's ephemeral range (32768+ on Linux): the
/// proxies and every outgoing connection take ephemeral ports, so they can never grab a node's
/// port, not even while a killed node is down and about to be restarted on it.
fn free_listener() -> Result<(TcpListener, crate::ports::PortClaim)> {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for _ in 0..200 {
        let port = rng.gen_range(20_000..32_000);
        let Some(claim) = crate::ports::claim(port) else {
            continue;
        };
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            return Ok((l, claim));
        }
    }
    bail!("no free loopback port in 20000..32000 after 200 tries")
}

impl ClusterPlan {
    /// `n` nodes `n1..nN` with free loopback ports, logs in `run_dir/nodes/<id>.log` and data in
    /// `run_dir/nodes/<id>/`.
    pub fn new(bin: PathBuf, n: usize, run_dir: &Path, extra_args: Vec<String>) -> Result<Self> {
        let (mut held, mut claims) = (Vec::new(), Vec::new());
        let mut nodes = Vec::new();
        for i in 1..=n {
            let ((l, lc), (c, cc)) = (free_listener()?, free_listener()?);
            claims.extend([lc, cc]);
            let id = format!("n{i}");
            nodes.push(NodeSpec {
                listen: l.local_addr()?,
                client: c.local_addr()?,
                data_dir: run_dir.join("nodes").join(&id),
                log_path: run_dir.join("nodes").join(format!("{id}.log")),
                netns: None,
                env: Vec::new(),
                id,
            });
            held.push((l, c));
        }
        let mut peer_addr = BTreeMap::new();
        for a in &nodes {
            for b in &nodes {
                if a.id != b.id {
                    peer_addr.insert((a.id.clone(), b.id.clone()), b.listen);
                }
            }
        }
        Ok(ClusterPlan {
            bin,
            nodes,
            peer_addr,
            extra_args,
            ready_timeout: Duration::from_secs(20),
            power_cut: false,
            remote: None,
            members: None,
            _claims: std::sync::Arc::new(claims),
        })
    }

    /// The full argv (without the binary) of node `i`.
    pub fn argv(&self, i: usize) -> Vec<String> {
        let me = &self.nodes[i];
        let peers: Vec<String> = self
            .nodes
            .iter()
            .filter(|p| p.id != me.id)
            .map(|p| {
                format!(
                    "{}={}",
                    p.id,
                    self.peer_addr[&(me.id.clone(), p.id.clone())]
                )
            })
            .collect();
        let mut argv = vec![
            "--id".to_string(),
            me.id.clone(),
            "--listen".into(),
            me.listen.to_string(),
            "--client".into(),
            me.client.to_string(),
            "--peers".into(),
            peers.join(","),
            "--data-dir".into(),
            me.data_dir.display().to_string(),
        ];
        if let Some(members) = &self.members {
            argv.extend(["--members".to_string(), members.join(",")]);
        }
        argv.extend(self.extra_args.iter().cloned());
        argv
    }
}

// ---------------------------------------------------------------------------------------------
// The running cluster.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Running,
    Paused,
    Killed,
}

struct NodeProc {
    child: Option<Child>,
    pid: Option<i32>,
    state: NodeState,
    /// The tasks copying the node's stdout and stderr into its log.
    log_copies: Vec<tokio::task::JoinHandle<()>>,
    /// With `--hosts`: the node on its host (then `child` and `pid` stay `None`).
    remote: Option<crate::hosts::remote::RemoteProc>,
}

pub struct Cluster {
    pub plan: ClusterPlan,
    procs: Vec<tokio::sync::Mutex<NodeProc>>,
    logs: Vec<crate::node_log::NodeLog>,
    /// `HARNESS/CLUSTER/`: a node's processes carry this and the node's id in [`crate::reaper::ENV`].
    tag_prefix: String,
    /// What the run should be warned about (a node listening beyond loopback), once each.
    warnings: Mutex<Vec<String>>,
    /// With [`ClusterPlan::power_cut`]: each node's layer.
    disks: Option<crate::power::Disks>,
}

/// The last `n` lines of a log file, for error messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(n)..].join("\n    ");
    if tail.is_empty() {
        "    (log is empty)".into()
    } else {
        format!("    {tail}")
    }
}

impl Cluster {
    /// Launches every node and waits until each accepts a client connection. On failure every
    /// node is stopped and the error names the node, its exit status and the end of its log.
    pub async fn launch(plan: ClusterPlan) -> Result<Cluster> {
        crate::reaper::hold_descendants();
        install_guards();
        let n = plan.nodes.len();
        let cluster = Cluster {
            procs: (0..n)
                .map(|_| {
                    tokio::sync::Mutex::new(NodeProc {
                        child: None,
                        pid: None,
                        state: NodeState::Killed,
                        log_copies: Vec::new(),
                        remote: None,
                    })
                })
                .collect(),
            logs: plan
                .nodes
                .iter()
                .map(|n| crate::node_log::NodeLog::new(&n.log_path))
                .collect(),
            tag_prefix: crate::reaper::new_cluster_prefix(),
            warnings: Mutex::new(Vec::new()),
            disks: plan.power_cut.then(|| crate::power::Disks::new(n)),
            plan,
        };
        // All at once: on SSH hosts each start is a round trip or more; the first error (in node
        // order) is the one reported.
        let spawned = join_all((0..n).map(|i| cluster.spawn(i))).await;
        if let Some(e) = spawned.into_iter().find_map(Result::err) {
            cluster.shutdown().await;
            return Err(e);
        }
        let deadline = Instant::now() + cluster.plan.ready_timeout;
        let ready = join_all((0..n).map(|i| cluster.wait_ready(i, deadline))).await;
        if let Some(e) = ready.into_iter().find_map(Result::err) {
            cluster.shutdown().await;
            return Err(e);
        }
        cluster.check_listeners();
        Ok(cluster)
    }

    /// The [`crate::reaper::ENV`] value of node `i`'s processes.
    fn tag(&self, i: usize) -> String {
        format!("{}{}", self.tag_prefix, self.plan.nodes[i].id)
    }

    /// Warns (run log, stderr, [`Cluster::warnings`]) about every node that listens beyond the
    /// addresses the run gave it; each warning once.
    pub fn check_listeners(&self) {
        let mut found = Vec::new();
        let procs = crate::reaper::tagged(|t| t.starts_with(&self.tag_prefix));
        for (i, spec) in self.plan.nodes.iter().enumerate() {
            let tag = self.tag(i);
            let pids: Vec<i32> = procs
                .iter()
                .filter(|(_, t)| *t == tag)
                .map(|(pid, _)| *pid)
                .collect();
            let allowed = match spec.netns {
                Some(_) => listen_check::Allowed::Namespace(spec.listen.ip()),
                None => listen_check::Allowed::Loopback,
            };
            found.extend(listen_check::warnings(&spec.id, &pids, allowed));
        }
        let mut warnings = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        for w in found {
            if !warnings.contains(&w) {
                tracing::warn!("{w}");
                crate::errln!("harness: warning: {w}");
                warnings.push(w);
            }
        }
    }

    /// The warnings found so far, for results.json.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn len(&self) -> usize {
        self.plan.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plan.nodes.is_empty()
    }

    pub fn ids(&self) -> Vec<String> {
        self.plan.nodes.iter().map(|n| n.id.clone()).collect()
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.plan.nodes.iter().position(|n| n.id == id)
    }

    async fn spawn(&self, i: usize) -> Result<()> {
        let spec = &self.plan.nodes[i];
        if let Some(hosts) = &self.plan.remote {
            let proc = hosts.start(i, &self.plan.argv(i), &spec.env).await?;
            let mut p = self.procs[i].lock().await;
            p.remote = Some(proc);
            p.state = NodeState::Running;
            return Ok(());
        }
        if let Some(disks) = &self.disks {
            disks
                .mount(i, &spec.data_dir, &self.tag(i))
                .with_context(|| format!("node {}", spec.id))?;
        }
        std::fs::create_dir_all(&spec.data_dir).with_context(|| {
            format!(
                "node {}: cannot create {}",
                spec.id,
                spec.data_dir.display()
            )
        })?;
        // Fail here, with the node named, rather than in the copy task.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_path)
            .with_context(|| {
                format!("node {}: cannot open {}", spec.id, spec.log_path.display())
            })?;
        let mut cmd = Command::new(&self.plan.bin);
        cmd.args(self.plan.argv(i))
            .env(crate::reaper::ENV, self.tag(i))
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let _netns = match &spec.netns {
            Some(path) => Some(crate::net::enter_in_child(&mut cmd, path)?),
            None => None,
        };
        let child = spawn_node(cmd).await.map_err(|e| {
            let why = crate::node_bin::interpreter_problem(&self.plan.bin)
                .unwrap_or_else(|| e.to_string());
            anyhow!(
                "node {}: cannot start {}: {why}",
                spec.id,
                self.plan.bin.display()
            )
        })?;
        let mut child = child;
        let log = &self.logs[i];
        let copies = [
            child.stdout.take().map(|o| log.copy(o)),
            child.stderr.take().map(|e| log.copy(e)),
        ];
        let pid = child.id().map(|p| p as i32);
        tracing::info!(node = %spec.id, pid, argv = ?self.plan.argv(i), "node started");
        let mut p = self.procs[i].lock().await;
        *p = NodeProc {
            child: Some(child),
            pid,
            state: NodeState::Running,
            log_copies: copies.into_iter().flatten().collect(),
            remote: None,
        };
        Ok(())
    }

    /// Waits until node `i` accepts a TCP connection on its client port.
    async fn wait_ready(&self, i: usize, deadline: Instant) -> Result<()> {
        let spec = &self.plan.nodes[i];
        loop {
            {
                let mut p = self.procs[i].lock().await;
                if let Some(code) = p.remote.as_ref().and_then(|r| r.exit_code()) {
                    p.state = NodeState::Killed;
                    p.remote = None;
                    drop(p);
                    if let Some(hosts) = &self.plan.remote {
                        hosts.fetch_logs().await;
                    }
                    bail!(
                        "node {} exited during startup on its host (exit {code}); last lines of {}:\n{}",
                        spec.id,
                        spec.log_path.display(),
                        log_tail(&spec.log_path, 15)
                    );
                }
                if let Some(child) = p.child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        let pid = p.pid;
                        p.child = None;
                        p.state = NodeState::Killed;
                        let copies = std::mem::take(&mut p.log_copies);
                        drop(p);
                        unregister(pid);
                        // Give the log a moment to receive the node's last words.
                        crate::node_log::drain(copies).await;
                        bail!(
                            "node {} exited during startup ({status}); last lines of {}:\n{}",
                            spec.id,
                            spec.log_path.display(),
                            log_tail(&spec.log_path, 15)
                        );
                    }
                }
            }
            let attempt = tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(spec.client),
            )
            .await;
            if let Ok(Ok(_)) = attempt {
                tracing::info!(node = %spec.id, client = %spec.client, "node ready");
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "node {} did not accept connections on its client port {} within {:?} \
                     (still running); last lines of {}:\n{}",
                    spec.id,
                    spec.client,
                    self.plan.ready_timeout,
                    spec.log_path.display(),
                    log_tail(&spec.log_path, 15)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn pid(&self, i: usize) -> Option<i32> {
        self.procs[i].lock().await.pid
    }

    pub async fn state(&self, i: usize) -> NodeState {
        self.procs[i].lock().await.state
    }

    async fn signal(&self, i: usize, sig: Signal) -> Result<()> {
        let p = self.procs[i].lock().await;
        if let (Some(hosts), Some(r)) = (&self.plan.remote, &p.remote) {
            let name = sig.as_str().trim_start_matches("SIG");
            return hosts.signal(i, r, name).await;
        }
        let pid = p
            .pid
            .ok_or_else(|| anyhow!("node {} is not running", self.plan.nodes[i].id))?;
        killpg(Pid::from_raw(pid), sig)
            .with_context(|| format!("node {}: {sig} failed", self.plan.nodes[i].id))
    }

    /// SIGSTOP node `i`'s process group.
    pub async fn pause(&self, i: usize) -> Result<()> {
        self.signal(i, Signal::SIGSTOP).await?;
        self.procs[i].lock().await.state = NodeState::Paused;
        tracing::info!(node = %self.plan.nodes[i].id, "paused (SIGSTOP)");
        Ok(())
    }

    /// SIGCONT node `i`'s process group.
    pub async fn resume(&self, i: usize) -> Result<()> {
        self.signal(i, Signal::SIGCONT).await?;
        self.procs[i].lock().await.state = NodeState::Running;
        tracing::info!(node = %self.plan.nodes[i].id, "resumed (SIGCONT)");
        Ok(())
    }

    /// SIGKILL node `i`'s process group and everything else the node started, and reap them.
    /// Killing a dead node is a no-op.
    pub async fn kill(&self, i: usize) -> Result<()> {
        self.kill_node(i, true).await;
        Ok(())
    }

    /// [`Cluster::kill`]; `sweep: false` leaves the node's processes outside its group to a
    /// sweep of the whole cluster after it.
    /// Returns the pid (and process group) it killed, if the node was running.
    async fn kill_node(&self, i: usize, sweep: bool) -> Option<i32> {
        let mut p = self.procs[i].lock().await;
        if let (Some(hosts), Some(r)) = (&self.plan.remote, p.remote.take()) {
            let pgid = r.pgid;
            hosts.kill(i, r).await;
            tracing::info!(node = %self.plan.nodes[i].id, pgid, "killed on its host (SIGKILL)");
            p.state = NodeState::Killed;
            return None;
        }
        let killed = p.pid.take();
        if let Some(pid) = killed {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            if let Some(mut child) = p.child.take() {
                let status = child.wait().await;
                tracing::info!(node = %self.plan.nodes[i].id, pid, ?status, "killed (SIGKILL)");
            }
            unregister(Some(pid));
            if sweep {
                let tag = self.tag(i);
                crate::reaper::kill_tagged(|t| t == tag, &[pid], &groups().clone());
            }
        }
        p.state = NodeState::Killed;
        killed
    }

    /// Cuts node `i`'s power: SIGKILL, then every write it did not sync is lost (its layer is
    /// unmounted; [`Cluster::restart`] mounts it again). Needs [`ClusterPlan::power_cut`].
    pub async fn power_cut(&self, i: usize) -> Result<()> {
        let disks = self
            .disks
            .as_ref()
            .ok_or_else(|| anyhow!("power cuts need the power-cut layer"))?;
        self.kill_node(i, true).await;
        disks
            .cut(i)
            .with_context(|| format!("node {}", self.plan.nodes[i].id))?;
        tracing::info!(node = %self.plan.nodes[i].id, "power cut (unsynced writes dropped)");
        Ok(())
    }

    /// Restarts node `i` with the same argv and data dir (killing it first if it still runs) and
    /// waits until it is ready. The new process has a new pid.
    pub async fn restart(&self, i: usize) -> Result<()> {
        self.kill(i).await?;
        self.spawn(i).await?;
        self.wait_ready(i, Instant::now() + self.plan.ready_timeout)
            .await
    }

    /// Looks at what the nodes listen on a last time, then kills every node and everything
    /// the nodes started, and reaps them.
    pub async fn shutdown(&self) {
        if let Some(hosts) = &self.plan.remote {
            return self.shutdown_remote(hosts).await;
        }
        self.check_listeners();
        let mut killed = Vec::new();
        for i in 0..self.len() {
            killed.extend(self.kill_node(i, false).await);
        }
        let prefix = &self.tag_prefix;
        crate::reaper::kill_tagged(|t| t.starts_with(prefix), &killed, &groups().clone());
        if let Some(disks) = &self.disks {
            disks.stop_all();
        }
    }

    /// With `--hosts`: every node killed (unless `--leave-running`), the logs fetched, the
    /// hosts' folders removed.
    async fn shutdown_remote(&self, hosts: &crate::hosts::remote::RemoteHosts) {
        let stop = |i: usize| async move {
            let mut p = self.procs[i].lock().await;
            let pgid = p.remote.as_ref().map(|r| r.pgid);
            if hosts.leave_running() {
                // Started without a watchdog: closing its session leaves the node running.
                p.remote = None;
            }
            drop(p);
            self.kill_node(i, false).await;
            pgid
        };
        let pgids = join_all((0..self.len()).map(stop)).await;
        hosts.finish(&pgids).await;
    }

    /// Exit status of node `i` if it has exited on its own (not killed by us, nor by the
    /// harness's signal handler or panic hook).
    pub async fn exited(&self, i: usize) -> Option<std::process::ExitStatus> {
        use std::os::unix::process::ExitStatusExt;
        let mut p = self.procs[i].lock().await;
        if let Some(r) = &p.remote {
            let code = r.exit_code()?;
            return Some(std::process::ExitStatus::from_raw((code & 0xff) << 8));
        }
        let pid = p.pid?;
        let status = p.child.as_mut()?.try_wait().ok()??;
        let ours = KILLED_BY_US
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&pid);
        if ours && status.signal() == Some(Signal::SIGKILL as i32) {
            return None;
        }
        Some(status)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in &self.procs {
            if let Ok(p) = p.try_lock() {
                if let Some(pid) = p.pid {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                    unregister(Some(pid));
                }
            }
        }
        let prefix = &self.tag_prefix;
        crate::reaper::kill_tagged(|t| t.starts_with(prefix), &[], &groups().clone());
    }
}

fn unregister(pid: Option<i32>) {
    if let Some(pid) = pid {
        groups().remove(&pid);
    }
}
