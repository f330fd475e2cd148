//! One SSH connection per host: the system OpenSSH client through the `openssh` crate (one
//! multiplexed master per host, honouring the ssh config), and remote commands that each carry a
//! deadline, so an unreachable or stuck host is an error, never a hang.

use super::file::HostSpec;
use anyhow::{anyhow, bail, Context, Result};
use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long a master may sit without sessions before it exits: after a SIGKILL of the harness
/// nobody closes it, and this is how long it then outlives the harness.
const MASTER_IDLE_SECS: usize = 5;

/// A connected host.
pub struct Remote {
    pub spec: HostSpec,
    session: Arc<Session>,
}

impl Remote {
    /// Connects to `spec` (ssh's ConnectTimeout is `limit`; the whole handshake must also end
    /// within it). `ssh_config` is passed as `-F`.
    pub async fn connect(
        spec: &HostSpec,
        ssh_config: Option<&Path>,
        limit: Duration,
    ) -> Result<Remote> {
        let mut b = SessionBuilder::default();
        b.port(spec.port)
            .connect_timeout(limit)
            .server_alive_interval(Duration::from_secs(2))
            .known_hosts_check(KnownHosts::Add)
            .control_directory(std::env::temp_dir())
            .control_persist(ControlPersist::IdleFor(
                NonZeroUsize::new(MASTER_IDLE_SECS).expect("non-zero"),
            ));
        if let Some(u) = &spec.user {
            b.user(u.clone());
        }
        if let Some(k) = &spec.key {
            if !k.is_file() {
                bail!("key {} is not a readable file", k.display());
            }
            b.keyfile(k);
        }
        if let Some(c) = ssh_config {
            b.config_file(c);
        }
        let connect = b.connect_mux(&spec.address);
        let session = tokio::time::timeout(limit + Duration::from_secs(1), connect)
            .await
            .map_err(|_| anyhow!("no answer within {limit:?}"))?
            .map_err(|e| anyhow!("{}", error_text(&e)))?;
        Ok(Remote {
            spec: spec.clone(),
            session: Arc::new(session),
        })
    }

    /// `sh -c script` on the host, all output collected, within `limit`.
    pub async fn run(&self, script: &str, limit: Duration) -> Result<Output> {
        let mut cmd = self.session.command("sh");
        cmd.arg("-c").arg(script);
        tokio::time::timeout(limit, cmd.output())
            .await
            .map_err(|_| anyhow!("`{}` did not end within {limit:?}", short(script)))?
            .map_err(|e| anyhow!("`{}`: {}", short(script), error_text(&e)))
    }

    /// As [`Remote::run`], but a non-zero exit is an error carrying stderr; returns stdout.
    pub async fn run_ok(&self, script: &str, limit: Duration) -> Result<String> {
        let out = self.run(script, limit).await?;
        if !out.status.success() {
            bail!(
                "`{}` failed ({}): {}",
                short(script),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Copies the local file `local` to `remote` (made executable if `exec`), within `limit`.
    pub async fn upload(
        &self,
        local: &Path,
        remote: &str,
        exec: bool,
        limit: Duration,
    ) -> Result<()> {
        let data = tokio::fs::read(local)
            .await
            .with_context(|| format!("cannot read {}", local.display()))?;
        let q = quote(remote);
        let chmod = if exec {
            format!(" && chmod +x {q}.part.$$")
        } else {
            String::new()
        };
        // The part file is the shell's own (hosts sharing a file system may copy at once), and
        // executable before it takes the name.
        let script = format!(
            "mkdir -p \"$(dirname {q})\" && cat > {q}.part.$${chmod} && mv {q}.part.$$ {q}"
        );
        let send = async {
            let mut cmd = self.session.command("sh");
            cmd.arg("-c")
                .arg(&script)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = cmd
                .spawn()
                .await
                .map_err(|e| anyhow!("{}", error_text(&e)))?;
            let mut stdin = child.stdin().take().context("no stdin")?;
            stdin.write_all(&data).await.context("sending the file")?;
            stdin.shutdown().await.context("sending the file")?;
            drop(stdin);
            let out = child
                .wait_with_output()
                .await
                .map_err(|e| anyhow!("{}", error_text(&e)))?;
            if !out.status.success() {
                bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
            }
            Ok(())
        };
        tokio::time::timeout(limit, send)
            .await
            .map_err(|_| anyhow!("copying {} did not end within {limit:?}", local.display()))?
            .with_context(|| format!("cannot copy {} to {remote}", local.display()))
    }

    /// The remote file `remote`, read within `limit`.
    pub async fn download(&self, remote: &str, limit: Duration) -> Result<Vec<u8>> {
        let out = self.run(&format!("cat {}", quote(remote)), limit).await?;
        if !out.status.success() {
            bail!(
                "cannot read {remote}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out.stdout)
    }

    /// Starts `sh -c script` and leaves it running, its stdin a pipe from this process: the
    /// script can wait for that pipe to close (the harness ended, however) and clean up.
    pub async fn spawn(&self, script: &str) -> Result<openssh::Child<Arc<Session>>> {
        let mut cmd = Session::to_command(self.session.clone(), "sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let spawn = cmd.spawn();
        tokio::time::timeout(Duration::from_secs(10), spawn)
            .await
            .map_err(|_| anyhow!("starting a remote shell did not end within 10 s"))?
            .map_err(|e| anyhow!("cannot start a remote shell: {}", error_text(&e)))
    }

    /// Ends the master connection (waits at most `limit`).
    pub async fn close(self, limit: Duration) {
        if let Ok(s) = Arc::try_unwrap(self.session) {
            let _ = tokio::time::timeout(limit, s.close()).await;
        }
    }
}

/// An `openssh` error with its causes: the master's log says why ssh gave up.
fn error_text(e: &openssh::Error) -> String {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !t.is_empty() && !text.contains(&t) {
            text.push_str(": ");
            text.push_str(t.trim());
        }
        src = s.source();
    }
    text
}

/// A single-quoted shell word.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn short(script: &str) -> String {
    let line = script.lines().next().unwrap_or("");
    if line.len() > 60 {
        format!("{}...", line.chars().take(57).collect::<String>())
    } else {
        line.to_string()
    }
}
