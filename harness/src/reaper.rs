//! Holding every process a node starts, even one that leaves the node's process group or session
//! (a double fork with `setsid`, as daemons do), which process groups and `PR_SET_PDEATHSIG`
//! cannot reach.
//!
//! Two means, for the two ways a harness ends:
//! - While the harness lives it is a *child subreaper*: an orphaned descendant is re-parented to
//!   it, not to init, so the whole tree of everything it started stays below it. Ending a node,
//!   a cluster or the harness kills the processes that belong to it and reaps them.
//! - Every node and, by inheritance, everything it starts carries [`ENV`], naming the harness
//!   (pid and start time, which no later process shares), the cluster and the node. That finds
//!   a node's processes wherever they went, and after a SIGKILL of the harness (where no code of
//!   ours runs) lets `harness clean`, or the next harness that starts nodes, kill what was left.
//!
//! Reaping is by pid, never `waitpid(-1)`: the node processes themselves belong to tokio, which
//! waits for each of them.

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use procfs::process::Process;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

/// The environment variable every node process carries: `HARNESS/CLUSTER/NODE`, where `HARNESS`
/// is `PIDNS.PID.STARTTIME` of the harness (its pid namespace, as a harness in a container sees
/// other pids than one outside it).
pub const ENV: &str = "HARNESS_NODE_OF";

/// How long a sweep waits for the processes it killed to be gone.
const GRACE: Duration = Duration::from_secs(3);

/// This harness as [`ENV`] names it.
pub(crate) fn harness_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let pid = std::process::id();
        let start = Process::myself()
            .and_then(|p| p.stat())
            .map_or(0, |s| s.starttime);
        format!("{}.{pid}.{start}", pid_namespace())
    })
}

/// This process's pid namespace, as the inode number `/proc/self/ns/pid` links to.
fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

/// A new cluster's part of [`ENV`] values: `HARNESS/CLUSTER/`.
pub fn new_cluster_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{}/{}/", harness_id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Makes this process a child subreaper and, once per process, kills what harnesses that died
/// left behind (telling stderr and the run log which).
pub fn hold_descendants() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::warn!("cannot become a child subreaper ({e}): a node's daemonized child may outlive the harness");
        }
        for left in clean_dead().into_iter().chain(crate::power::clean_dead()) {
            tracing::warn!("{left}");
            crate::errln!("harness: {left}");
        }
    });
}

/// One process as a sweep sees it.
#[derive(Debug)]
struct Proc {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    session: i32,
    zombie: bool,
    /// The value of [`ENV`], when the process has it and we may read its environment.
    tag: Option<String>,
}

fn read(p: &Process, with_tag: bool) -> Option<Proc> {
    let stat = p.stat().ok()?;
    let tag = with_tag
        .then(|| p.environ().ok()?.remove(std::ffi::OsStr::new(ENV)))
        .flatten()
        .map(|v| v.to_string_lossy().into_owned());
    Some(Proc {
        pid: stat.pid,
        ppid: stat.ppid,
        pgrp: stat.pgrp,
        session: stat.session,
        zombie: matches!(stat.state, 'Z' | 'X'),
        tag,
    })
}

/// Every process of the machine we can see (environments only of our own user's).
fn scan() -> Vec<Proc> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.flatten().filter_map(|p| read(&p, true)).collect()
}

/// The live processes whose [`ENV`] value `matches` (a node's whole value, or a cluster's
/// `HARNESS/CLUSTER/` prefix), with that value.
pub fn tagged(matches: impl Fn(&str) -> bool) -> Vec<(i32, String)> {
    scan()
        .into_iter()
        .filter(|p| !p.zombie)
        .filter_map(|p| Some((p.pid, p.tag.filter(|t| matches(t))?)))
        .collect()
}

/// Kills every process whose tag `matches` or that is in one of the process `groups` of nodes
/// just killed, and reaps those that are our children, except the pids in `keep` (live nodes,
/// which tokio reaps). A zombie has no environment left to read: a dead node's children
/// (re-parented to the harness) are known by their group, and an adopted daemon that ended on
/// its own by leading a session of its own (nodes and the harness's helpers lead none).
pub fn kill_tagged(matches: impl Fn(&str) -> bool, groups: &[i32], keep: &BTreeSet<i32>) {
    let me = std::process::id() as i32;
    let pids = scan()
        .into_iter()
        .filter(|p| {
            let tagged = !p.zombie && p.tag.as_deref().is_some_and(&matches);
            let ours = p.zombie && p.ppid == me;
            let grouped = groups.contains(&p.pgrp) && (!p.zombie || ours);
            let daemon = ours && p.session == p.pid && !keep.contains(&p.pid);
            tagged || grouped || daemon
        })
        .map(|p| p.pid)
        .collect();
    kill_and_reap(pids, keep);
}

/// Kills what belongs to this harness and is not a live node's own process: everything tagged
/// with this harness, and every orphan it adopted that is not in the harness's own process
/// group (the helpers the harness runs, such as `ip`, stay in its group). For a panic or a
/// signal, while other runs of this process may still be tearing down.
pub fn kill_ours(keep: &BTreeSet<i32>) {
    let me = std::process::id() as i32;
    let my_group = nix::unistd::getpgrp().as_raw();
    let prefix = format!("{}/", harness_id());
    let pids = scan()
        .into_iter()
        .filter(|p| p.pid != me && !p.zombie)
        .filter(|p| {
            p.tag.as_deref().is_some_and(|t| t.starts_with(&prefix))
                || (p.ppid == me && p.pgrp != my_group && !keep.contains(&p.pid))
        })
        .map(|p| p.pid)
        .collect();
    kill_and_reap(pids, keep);
}

/// At the harness's end, when nothing it started should still run: kills every descendant
/// (with the harness a subreaper, every process a node ever started that is still alive is one)
/// and everything tagged with this harness, and reaps them.
pub fn kill_all_descendants() {
    let me = std::process::id() as i32;
    let prefix = format!("{}/", harness_id());
    for _ in 0..10 {
        let procs = scan();
        let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in &procs {
            children.entry(p.ppid).or_default().push(p.pid);
        }
        let mut tree = BTreeSet::new();
        let mut stack = vec![me];
        while let Some(pid) = stack.pop() {
            for &c in children.get(&pid).into_iter().flatten() {
                if tree.insert(c) {
                    stack.push(c);
                }
            }
        }
        // A zombie of another parent is dead already, and not ours to reap.
        let doomed: Vec<i32> = procs
            .iter()
            .filter(|p| p.pid != me && !(p.zombie && p.ppid != me))
            .filter(|p| {
                tree.contains(&p.pid) || p.tag.as_deref().is_some_and(|t| t.starts_with(&prefix))
            })
            .map(|p| p.pid)
            .collect();
        if doomed.is_empty() {
            return;
        }
        kill_and_reap(doomed, &BTreeSet::new());
    }
}

/// SIGKILLs `pids`, then waits (bounded) until each is gone, reaping those that became our
/// zombie children (but not `keep`). Processes of other parents are left to them once dead.
fn kill_and_reap(pids: Vec<i32>, keep: &BTreeSet<i32>) {
    let me = std::process::id() as i32;
    let mut pending: Vec<i32> = pids.into_iter().filter(|&p| p != me).collect();
    for &pid in &pending {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let end = Instant::now() + GRACE;
    while !pending.is_empty() {
        pending.retain(|&pid| {
            let Some(p) = Process::new(pid).ok().and_then(|p| read(&p, false)) else {
                return false;
            };
            if !p.zombie {
                return true;
            }
            if p.ppid == me && !keep.contains(&pid) {
                let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
            }
            false
        });
        if pending.is_empty() || Instant::now() >= end {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether the harness `PIDNS.PID.STARTTIME` may still run: it does (a reused pid has another
/// start time), or it ran in another pid namespace, where this one cannot tell.
pub(crate) fn harness_alive(id: &str) -> bool {
    let mut parts = id.splitn(3, '.').map(|p| p.parse::<u64>().ok());
    let (Some(Some(ns)), Some(Some(pid)), Some(Some(start))) =
        (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if ns != pid_namespace() {
        return true;
    }
    Process::new(pid as i32)
        .and_then(|p| p.stat())
        .is_ok_and(|s| s.starttime == start)
}

/// Kills every process tagged by a harness that no longer runs (one that was SIGKILLed: its
/// nodes died with it, but not what they had daemonized), and removes its clock control files.
/// One line per process killed or folder removed.
pub fn clean_dead() -> Vec<String> {
    let mut said = Vec::new();
    let mut pids = Vec::new();
    for p in scan() {
        let Some(tag) = p.tag.as_deref() else {
            continue;
        };
        if p.zombie || p.pid == std::process::id() as i32 {
            continue;
        }
        let mut parts = tag.splitn(3, '/');
        let harness = parts.next().unwrap_or("");
        let node = parts.nth(1).unwrap_or("?");
        if harness_alive(harness) {
            continue;
        }
        let what = Process::new(p.pid)
            .and_then(|p| p.stat())
            .map(|s| s.comm)
            .unwrap_or_default();
        let dead_pid = harness.split('.').nth(1).unwrap_or("?");
        said.push(format!(
            "killed process {} ({what}), left by node {node} of a harness (pid {dead_pid}) \
             that died",
            p.pid
        ));
        pids.push(p.pid);
    }
    kill_and_reap(pids, &BTreeSet::new());
    said.extend(crate::clock::clean_dead());
    said
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_harness_is_alive_and_a_made_up_one_is_not() {
        assert!(harness_alive(harness_id()));
        let (rest, start) = harness_id().rsplit_once('.').unwrap();
        let later: u64 = start.parse::<u64>().unwrap() + 1;
        assert!(!harness_alive(&format!("{rest}.{later}")));
        assert!(!harness_alive("nonsense"));
        let pid = rest.split('.').nth(1).unwrap();
        assert!(
            harness_alive(&format!("1.{pid}.{later}")),
            "another pid namespace's harness is not judged"
        );
    }

    #[test]
    fn cluster_prefixes_differ_and_name_this_harness() {
        let (a, b) = (new_cluster_prefix(), new_cluster_prefix());
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("{}/", harness_id())));
    }
}
