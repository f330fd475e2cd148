//! Netns mode for a normal user: the harness re-executes itself inside a user namespace of its own
//! (as rootless containers do), where it is root over a private network and mount namespace. The
//! run's namespaces, bridge and rules then live inside that private network, which dies with the
//! harness: nothing can outlive it, not even after a SIGKILL.

use super::tools;
use anyhow::{bail, Result};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Set in the re-executed harness.
const INSIDE: &str = "HARNESS_ROOTLESS_INSIDE";

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { nix::libc::geteuid() }
}

/// For a command that uses netns mode: as root, nothing to do; as a normal user, replaces this
/// process (same pid) with the same command inside a new user, network and mount namespace; inside
/// it, gives the harness a private `/run` (where `ip netns` keeps its files) and a loopback.
/// Returns only when the command can go on in this process.
pub fn enter_if_needed(wants_netns: bool) -> Result<()> {
    if !wants_netns {
        return Ok(());
    }
    if std::env::var_os(INSIDE).is_some() {
        return set_up_inside();
    }
    if euid() == 0 {
        return Ok(());
    }
    if tools::find("unshare").is_none() {
        bail!(
            "--net netns as a normal user needs the `unshare` binary (Debian package util-linux) \
             to run in a user namespace; or run as root"
        );
    }
    let probe = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--mount", "true"])
        .stderr(Stdio::piped())
        .output()?;
    if !probe.status.success() {
        bail!(
            "--net netns needs root or unprivileged user namespaces, and this user cannot make \
             one ({}); run as root, allow user namespaces (sysctl user.max_user_namespaces, \
             kernel.unprivileged_userns_clone), or use --net proxy",
            String::from_utf8_lossy(&probe.stderr).trim()
        );
    }
    let exe = std::env::current_exe()?;
    let err = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--mount", "--"])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(INSIDE, "1")
        .exec();
    bail!("cannot re-execute the harness in a user namespace: {err}")
}

fn set_up_inside() -> Result<()> {
    if euid() != 0 {
        bail!("the re-executed harness is not root in its user namespace");
    }
    tools::run("mount", &["-t", "tmpfs", "harness-run", "/run"], None)?;
    tools::ip(&["link", "set", "lo", "up"])?;
    Ok(())
}
