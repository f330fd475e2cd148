//! `harness hosts check FILE`: every host of a hosts file verified before a run, in parallel,
//! each problem named with its host: reachable, user and key accepted, the node binary copied and
//! runs, privileges for the faults chosen, clock offset, free ports.

use super::file::{self, HostSpec, HostsFile};
use super::ssh::{quote, Remote};
use crate::schedule::{FaultKind, Kinds};
use crate::SetupError;
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Options of `harness hosts check`.
#[derive(clap::Args, Clone, Debug)]
pub struct CheckArgs {
    /// The hosts file (TOML, one [[host]] table per host).
    pub file: PathBuf,
    /// The node binary to copy and run with --help (default: paxos-node next to the harness).
    #[arg(long, value_name = "PATH")]
    pub node_bin: Option<PathBuf>,
    /// The faults the run will use: partition and the packet faults need root or passwordless
    /// sudo (`sudo = true`) and nft on the host; clock needs libfaketime there.
    #[arg(long, default_value = "partition,pause,kill", value_name = "FAULTS")]
    pub nemesis: Kinds,
    /// Seconds each host gets to answer each step.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// The largest clock offset from this machine accepted, in milliseconds.
    #[arg(long, default_value_t = 1000.0, value_name = "MS")]
    pub max_clock_offset: f64,
    /// The node's peer and client ports, which must be free on every host.
    #[arg(long, default_values_t = [super::PEER_PORT, super::CLIENT_PORT], value_delimiter = ',', value_name = "PORTS")]
    pub ports: Vec<u16>,
}

/// What was found on one host; `problem` is the first thing that failed.
#[derive(Debug, Default)]
pub struct Report {
    pub name: String,
    pub address: String,
    pub user: String,
    pub node: String,
    pub privileges: String,
    /// `yes` or `no` with clock faults asked for, else empty.
    pub faketime: String,
    pub clock_ms: Option<f64>,
    pub ports: String,
    pub problem: Option<String>,
}

/// Runs the command: prints a table, exit 0 if every host passed, else 2 naming each problem.
pub fn run(args: CheckArgs) -> Result<u8, SetupError> {
    let hosts = file::load(&args.file).map_err(|e| SetupError::new("hosts check", e))?;
    let node_bin = match &args.node_bin {
        Some(b) => b.clone(),
        None => {
            crate::node_bin::default_node_bin().map_err(|e| SetupError::new("hosts check", e))?
        }
    };
    crate::node_bin::check_node_bin(&node_bin).map_err(|e| SetupError::new("hosts check", e))?;
    let rt = crate::test_cmd::runtime().map_err(|e| SetupError::new("hosts check", e))?;
    let reports = rt.block_on(check_all(&hosts, &node_bin, &args));
    print_table(&reports);
    let problems: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            Some(format!(
                "host {} ({}): {}",
                r.name,
                r.address,
                r.problem.as_ref()?
            ))
        })
        .collect();
    if problems.is_empty() {
        outln!("all {} hosts ready", reports.len());
        return Ok(0);
    }
    Err(SetupError::msg("hosts check", problems.join("\n")))
}

/// Checks every host at once; one report per host, in file order.
pub async fn check_all(
    hosts: &HostsFile,
    node_bin: &std::path::Path,
    args: &CheckArgs,
) -> Vec<Report> {
    let tasks: Vec<_> = hosts
        .hosts
        .iter()
        .map(|h| {
            let (h, cfg, bin, args) = (
                h.clone(),
                hosts.ssh_config.clone(),
                node_bin.to_path_buf(),
                args.clone(),
            );
            tokio::spawn(async move { check_one(&h, cfg.as_deref(), &bin, &args).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap_or_else(|e| Report {
            problem: Some(format!("the check panicked: {e}")),
            ..Default::default()
        }));
    }
    out
}

async fn check_one(
    h: &HostSpec,
    cfg: Option<&std::path::Path>,
    bin: &std::path::Path,
    args: &CheckArgs,
) -> Report {
    let mut r = Report {
        name: h.name.clone(),
        address: format!("{}:{}", h.address, h.port),
        ..Default::default()
    };
    let limit = Duration::from_secs_f64(args.timeout.max(0.1));
    let remote = match Remote::connect(h, cfg, limit).await {
        Ok(s) => s,
        Err(e) => {
            r.problem = Some(format!("cannot connect: {e:#}"));
            return r;
        }
    };
    if let Err(e) = probe(&remote, &mut r, bin, args, limit).await {
        r.problem = Some(format!("{e:#}"));
    }
    remote.close(limit).await;
    r
}

/// The checks after connecting, in order; the first failure ends them.
async fn probe(
    s: &Remote,
    r: &mut Report,
    bin: &std::path::Path,
    args: &CheckArgs,
    limit: Duration,
) -> Result<()> {
    let who = s.run_ok("id -un; id -u", limit).await?;
    let mut who = who.lines();
    let (user, uid) = (
        who.next().unwrap_or("?").to_string(),
        who.next().unwrap_or(""),
    );
    r.user = user;
    let root = uid.trim() == "0";

    let parent = format!("/tmp/harness-check-{}", std::process::id());
    let dir = format!("{parent}/{}", s.spec.name);
    let remote_bin = format!(
        "{dir}/{}",
        bin.file_name().unwrap_or_default().to_string_lossy()
    );
    let copied = async {
        s.upload(bin, &remote_bin, true, limit * 6).await?;
        let out = s
            .run(&format!("{} --help", quote(&remote_bin)), limit)
            .await?;
        if !out.status.success() {
            bail!(
                "the node binary does not run here ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
    .await;
    let rm = format!(
        "rm -rf {}; rmdir {} 2>/dev/null; true",
        quote(&dir),
        quote(&parent)
    );
    let _ = s.run(&rm, limit).await;
    copied?;
    r.node = "runs".into();

    r.privileges = privileges(s, root).await?;
    if needs_nft(&args.nemesis) && r.privileges == "none" {
        bail!(
            "user {} is not root and sudo = false (or sudo asks for a password): partitions and \
             packet faults need root or passwordless sudo for nft",
            r.user
        );
    }
    if needs_nft(&args.nemesis) {
        let sudo = if root { "" } else { "sudo -n " };
        let nft = s.run(&format!("{sudo}nft list tables"), limit).await?;
        if !nft.status.success() {
            bail!(
                "nft does not run here: {}",
                String::from_utf8_lossy(&nft.stderr).trim()
            );
        }
    }

    if args.nemesis.0.contains(&FaultKind::Clock) {
        let found = faketime(s, limit).await?;
        r.faketime = if found.is_some() { "yes" } else { "no" }.into();
        if found.is_none() {
            bail!("{NO_FAKETIME}");
        }
    }

    let (offset, rtt) = clock_offset(s, limit).await?;
    r.clock_ms = Some(offset);
    // The remote reading fell somewhere in the round trip: only what is beyond half of it counts.
    if offset.abs() - rtt / 2.0 > args.max_clock_offset {
        bail!(
            "the clock is {offset:+.0} ms off this machine's (more than --max-clock-offset {} ms)",
            args.max_clock_offset
        );
    }

    let busy = busy_ports(s, &args.ports, limit).await?;
    if !busy.is_empty() {
        r.ports = format!("busy: {busy:?}");
        bail!("ports {busy:?} are already taken (something listens on them)");
    }
    r.ports = "free".into();
    Ok(())
}

/// Why a host cannot take clock faults.
pub const NO_FAKETIME: &str = "--nemesis clock needs libfaketime on the host (Debian package \
     `faketime`), not found in the usual places";

/// The host's libfaketime, if it is in one of the usual places.
pub async fn faketime(s: &Remote, limit: Duration) -> Result<Option<String>> {
    let candidates: Vec<String> = crate::clock::LIBRARY.iter().map(|p| quote(p)).collect();
    let script = format!(
        "for p in {}; do if [ -f \"$p\" ]; then echo \"$p\"; break; fi; done",
        candidates.join(" ")
    );
    let out = s.run_ok(&script, limit).await?;
    Ok(Some(out.trim().to_string()).filter(|p| !p.is_empty()))
}

pub(crate) fn needs_nft(kinds: &Kinds) -> bool {
    kinds
        .0
        .iter()
        .any(|k| matches!(k, FaultKind::Partition) || FaultKind::PACKET.contains(k))
}

/// `root`, `sudo` (passwordless, when the host allows it) or `none`.
async fn privileges(s: &Remote, root: bool) -> Result<String> {
    if root {
        return Ok("root".into());
    }
    if s.spec.sudo && super::firewall::sudo_state(s).await? == "ok" {
        return Ok("sudo".into());
    }
    Ok("none".into())
}

/// The host's clock minus this machine's, in ms, read halfway through the round trip; and the
/// round trip, in ms.
async fn clock_offset(s: &Remote, limit: Duration) -> Result<(f64, f64)> {
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    };
    let t0 = now();
    let out = s.run_ok("date +%s.%N", limit).await?;
    let t1 = now();
    let remote: f64 = out
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("`date +%s.%N` printed {:?}, not seconds", out.trim()))?;
    Ok(((remote - (t0 + t1) / 2.0) * 1000.0, (t1 - t0) * 1000.0))
}

/// Which of `ports` something listens on (TCP, v4 or v6), from /proc/net/tcp*.
pub(crate) async fn busy_ports(s: &Remote, ports: &[u16], limit: Duration) -> Result<Vec<u16>> {
    let table = s
        .run_ok("cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; true", limit)
        .await?;
    Ok(ports
        .iter()
        .copied()
        .filter(|p| listening(&table).contains(p))
        .collect())
}

/// The local ports in LISTEN state (st 0A) of a /proc/net/tcp table.
fn listening(table: &str) -> Vec<u16> {
    table
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let local = w.nth(1)?;
            let state = w.nth(1)?;
            let port = local.rsplit(':').next()?;
            (state == "0A").then(|| u16::from_str_radix(port, 16).ok())?
        })
        .collect()
}

fn print_table(reports: &[Report]) {
    outln!(
        "{:<8} {:<22} {:<8} {:<6} {:<6} {:<8} {:>9} {:<6} status",
        "host",
        "address",
        "user",
        "node",
        "privs",
        "faketime",
        "clock ms",
        "ports"
    );
    for r in reports {
        let clock = r
            .clock_ms
            .map(|c| format!("{c:+.1}"))
            .unwrap_or_else(|| "-".into());
        let dash = |s: &str| {
            if s.is_empty() {
                "-".to_string()
            } else {
                s.to_string()
            }
        };
        outln!(
            "{:<8} {:<22} {:<8} {:<6} {:<6} {:<8} {:>9} {:<6} {}",
            r.name,
            r.address,
            dash(&r.user),
            dash(&r.node),
            dash(&r.privileges),
            dash(&r.faketime),
            clock,
            dash(&r.ports),
            r.problem
                .as_deref()
                .map_or("ok".to_string(), |p| format!("FAILED: {p}"))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_ports_come_from_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n   \
                     0: 00000000:1CE8 00000000:0000 0A 00000000:00000000 00:00000000\n   \
                     1: 0100007F:1CE9 0100007F:9C40 01 00000000:00000000 00:00000000\n";
        assert_eq!(listening(table), vec![0x1CE8]);
    }

    #[test]
    fn partitions_and_packet_faults_need_nft() {
        assert!(needs_nft(&"pause,partition".parse().unwrap()));
        assert!(needs_nft(&"loss".parse().unwrap()));
        assert!(!needs_nft(&"pause,kill".parse().unwrap()));
    }
}
