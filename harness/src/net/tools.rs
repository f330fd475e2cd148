//! Running the `ip`, `nft` and `tc` binaries: a missing binary is a named error, a failing command
//! an error that quotes the command and its stderr.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The binaries netns mode needs and the Debian package of each.
pub const NEEDED: [(&str, &str); 3] = [("ip", "iproute2"), ("nft", "nftables"), ("tc", "iproute2")];

/// Finds `tool` in `PATH`.
pub fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Checks that every binary netns mode needs is installed.
pub fn require_all() -> Result<()> {
    for (tool, package) in NEEDED {
        if find(tool).is_none() {
            bail!(
                "--net netns needs the `{tool}` binary (Debian package {package}; scripts/setup \
                 installs it), not found in PATH"
            );
        }
    }
    Ok(())
}

/// Runs `prog args...`, feeding `stdin` if given; the error quotes the command and its stderr.
pub fn run(prog: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    run_cmd(Command::new(prog), prog, args, stdin)
}

fn run_cmd(mut cmd: Command, prog: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = format!("{prog} {}", args.join(" "));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run `{shown}`"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .with_context(|| format!("`{shown}`: cannot write its input"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("`{shown}` did not finish"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip args...`.
pub fn ip(args: &[&str]) -> Result<String> {
    run("ip", args, None)
}

/// Runs `nft -f -` with `script` inside namespace `ns`. The child enters the namespace between
/// fork and exec (cheaper than `ip netns exec`, which also makes a mount namespace).
pub fn nft_in(ns: &str, script: &str) -> Result<String> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let path = std::path::Path::new("/run/netns").join(ns);
    let file = std::fs::File::open(&path)
        .with_context(|| format!("cannot open the namespace {}", path.display()))?;
    let fd = file.as_raw_fd();
    let mut cmd = Command::new("nft");
    // SAFETY: setns is async-signal-safe; `file` stays open until the child is spawned.
    unsafe {
        cmd.pre_exec(move || {
            if nix::libc::setns(fd, nix::libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run_cmd(cmd, "nft", &["-f", "-"], Some(script));
    drop(file);
    out.with_context(|| format!("in namespace {ns}"))
}
