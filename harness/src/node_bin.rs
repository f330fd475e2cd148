//! Finding the node binary: the default `paxos-node` (built when stale), and checking that a
//! given one can start (exists, is executable, and a script's `#!` interpreter exists).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The default node binary: `paxos-node` next to the harness executable. When the harness was
/// built from this workspace and that binary is missing or older than the node's sources, builds
/// it with cargo (same profile; `cargo run` builds only the harness). Otherwise, when missing, a
/// clear error that says how to build it.
pub fn default_node_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the harness executable")?;
    let dir = exe
        .parent()
        .context("harness executable has no directory")?;
    let bin = dir.join("paxos-node");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let node_crate = workspace.join("node");
    if !node_crate.join("Cargo.toml").is_file() {
        if bin.is_file() {
            return Ok(bin);
        }
        bail!(
            "node binary {} not found; build it with `cargo build --release -p paxos-node` \
             or pass --node-bin PATH",
            bin.display()
        );
    }
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let sources = newest_mtime(&node_crate);
    if let (Some(built), Some(sources)) = (built, sources) {
        if built >= sources {
            return Ok(bin);
        }
    }
    let release = dir.file_name().is_some_and(|n| n != "debug");
    let target_dir = dir
        .parent()
        .context("harness executable is not in a target dir")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(&cargo);
    cmd.current_dir(&workspace)
        .args(["build", "-p", "paxos-node"])
        .arg("--target-dir")
        .arg(target_dir);
    if release {
        cmd.arg("--release");
    }
    crate::errln!(
        "harness: {} is {}; building it: cargo build -p paxos-node{}",
        bin.display(),
        if built.is_some() {
            "older than node/src"
        } else {
            "missing"
        },
        if release { " --release" } else { "" }
    );
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {:?} to build paxos-node", cargo))?;
    if !status.success() || !bin.is_file() {
        bail!(
            "building paxos-node failed ({status}); build it with `cargo build --release -p \
             paxos-node` or pass --node-bin PATH"
        );
    }
    Ok(bin)
}

/// The newest modification time of `Cargo.toml` and any file under `src/` of a crate.
fn newest_mtime(krate: &Path) -> Option<std::time::SystemTime> {
    fn walk(p: &Path, newest: &mut Option<std::time::SystemTime>) {
        let Ok(meta) = std::fs::metadata(p) else {
            return;
        };
        if meta.is_dir() {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                walk(&e.path(), newest);
            }
        } else if let Ok(t) = meta.modified() {
            *newest = (*newest).max(Some(t));
        }
    }
    let mut newest = None;
    walk(&krate.join("Cargo.toml"), &mut newest);
    walk(&krate.join("src"), &mut newest);
    newest
}

/// Checks that `bin` exists and is executable; the error names the flag.
pub fn check_node_bin(bin: &Path) -> Result<()> {
    match node_bin_problem(bin) {
        Some(why) => bail!("--node-bin {}: {why}", bin.display()),
        None => Ok(()),
    }
}

/// What keeps `bin` from starting as a node, if anything: missing, not a file, not executable,
/// or a script whose `#!` interpreter is missing (which `exec` reports as the script missing).
pub fn node_bin_problem(bin: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(bin) {
        Ok(m) => m,
        Err(e) => return Some(e.to_string()),
    };
    if !meta.is_file() {
        return Some("not a file".into());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Some("not executable (chmod +x it)".into());
    }
    interpreter_problem(bin)
}

/// For a script, whether the interpreter its `#!` line names is missing or not executable.
pub fn interpreter_problem(bin: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(bin).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|&b| b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    let interp = line.split_whitespace().next()?;
    let ok =
        std::fs::metadata(interp).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    (!ok).then(|| {
        format!(
            "a script whose `#!` line names the interpreter {interp}, which does not exist or is \
             not executable"
        )
    })
}
