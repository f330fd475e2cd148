//! Clock faults on real node processes, through libfaketime (Debian package `faketime`; on SSH
//! hosts, the host's own copy and a control file in the node's folder there): with
//! `--nemesis clock` every node starts with `LD_PRELOAD` naming the library and
//! `FAKETIME_TIMESTAMP_FILE` naming a control file of its own, which holds the node's clock offset
//! in seconds (`+2.500`) and which the library re-reads on every clock call
//! (`FAKETIME_NO_CACHE`). Only the wall clock (`CLOCK_REALTIME`, `gettimeofday`, `time`) is
//! faked: `FAKETIME_DONT_FAKE_MONOTONIC` keeps the monotonic clock, so timers and the node's
//! tick keep their pace. Strobes and skews are offsets rewritten every [`STEP_MS`] (libfaketime's
//! own rate modifier misbehaves when changed at run time).
//!
//! The control files live in a temporary folder `harness-clock-HARNESS-N` that is removed when the
//! run ends; one left by a harness that was killed is removed by the next run or `harness
//! clean` ([`clean_dead`]). Only processes that read the clock through the dynamically linked
//! C library are reached: a statically linked binary (most Go programs) ignores `LD_PRELOAD`.

use crate::schedule::clock::{offset_at, Mode};
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Where Debian and other distributions put the library.
pub const LIBRARY: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

/// How often a strobing or skewed clock's offset is rewritten.
pub const STEP_MS: u64 = 20;

const DIR_PREFIX: &str = "harness-clock-";

/// Names the library where it is not in one of the usual places (the tests point it at a
/// missing file to see the refusal).
pub const LIBRARY_ENV: &str = "JEPSEN_FAKETIME_LIB";

/// The library, or an error that says how to install it.
pub fn library() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(LIBRARY_ENV) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!(
            "--nemesis clock needs libfaketime: {LIBRARY_ENV} names {}, which is not a file",
            p.display()
        );
    }
    match LIBRARY.iter().map(Path::new).find(|p| p.is_file()) {
        Some(p) => Ok(p.to_path_buf()),
        None => bail!(
            "--nemesis clock needs libfaketime (Debian package `faketime`, or run scripts/setup); \
             not found at {}",
            LIBRARY.join(", ")
        ),
    }
}

/// The run's clock control files, one per node; the folder goes when this is dropped.
pub struct Clocks {
    sink: Sink,
    /// The task rewriting a strobing or skewed window's offsets.
    driver: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// A window set some clock wrong and it was not reset yet.
    off: AtomicBool,
}

/// Where the control files are.
enum Sink {
    /// In a folder on this machine.
    Local { lib: PathBuf, dir: PathBuf },
    /// On SSH hosts, a file in each node's run folder there.
    Remote(Vec<RemoteFile>),
}

/// A node's control file on its host, and a remote shell that writes into it each line it
/// reads: a skew rewrites the offset every [`STEP_MS`], too often for an SSH command each.
struct RemoteFile {
    id: String,
    lib: String,
    path: String,
    /// The latest offset line and its number; the writer skips those it had no time for.
    tx: tokio::sync::watch::Sender<(u64, String)>,
    /// The number of the last line the host wrote.
    ack: tokio::sync::watch::Receiver<u64>,
    writer: tokio::task::JoinHandle<()>,
}

fn offset_line(offset_ms: f64) -> String {
    format!("{:+.3}", offset_ms / 1000.0)
}

impl Clocks {
    /// Makes the folder and a control file at offset 0 for each of `ids`.
    pub fn new(ids: &[String]) -> Result<Clocks> {
        let lib = library()?;
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let me = crate::reaper::harness_id();
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{me}-{n}"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot make the clock folder {}", dir.display()))?;
        let clocks = Clocks::with(Sink::Local { lib, dir });
        for id in ids {
            clocks.set(id, 0.0)?;
        }
        Ok(clocks)
    }

    fn with(sink: Sink) -> Clocks {
        Clocks {
            sink,
            driver: Mutex::new(None),
            off: AtomicBool::new(false),
        }
    }

    /// A control file at offset 0 in each host's run folder (`ids[i]` runs on host `i`), with
    /// the host's own libfaketime.
    pub async fn remote(
        hosts: &crate::hosts::remote::RemoteHosts,
        ids: &[String],
    ) -> Result<Clocks> {
        use crate::hosts::ssh::quote;
        let mut files = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let host = &hosts.hosts[i];
            let path = format!("{}/clock.rc", hosts.dir(i));
            let (q, tmp) = (quote(&path), quote(&format!("{path}.tmp")));
            host.run_ok(
                &format!("printf '%s\\n' {} > {q}", offset_line(0.0)),
                std::time::Duration::from_secs(10),
            )
            .await
            .with_context(|| {
                format!(
                    "host {}: cannot write the clock control file",
                    host.spec.name
                )
            })?;
            // Each line is `SEQ OFFSET`; the shell says SEQ back once the file holds OFFSET.
            let script = format!(
                "while read -r n v; do printf '%s\\n' \"$v\" > {tmp} && mv {tmp} {q} && echo \"$n\"; done"
            );
            let mut child = host
                .spawn(&script)
                .await
                .with_context(|| format!("host {}: the clock writer", host.spec.name))?;
            let mut stdin = child
                .stdin()
                .take()
                .context("the clock writer has no stdin")?;
            let stdout = child
                .stdout()
                .take()
                .context("the clock writer has no stdout")?;
            let (tx, mut rx) = tokio::sync::watch::channel((0u64, offset_line(0.0)));
            let (ack_tx, ack) = tokio::sync::watch::channel(0u64);
            let writer = tokio::spawn(async move {
                use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
                let _child = child;
                let acks = async move {
                    let mut lines = tokio::io::BufReader::new(stdout).lines();
                    while let Ok(Some(l)) = lines.next_line().await {
                        let _ = ack_tx.send(l.trim().parse().unwrap_or(0));
                    }
                };
                let writes = async move {
                    while rx.changed().await.is_ok() {
                        let (n, v) = rx.borrow_and_update().clone();
                        let line = format!("{n} {v}\n");
                        if stdin.write_all(line.as_bytes()).await.is_err()
                            || stdin.flush().await.is_err()
                        {
                            break;
                        }
                    }
                };
                tokio::join!(acks, writes);
            });
            files.push(RemoteFile {
                id: id.clone(),
                lib: hosts.faketime[i].clone(),
                path,
                tx,
                ack,
                writer,
            });
        }
        Ok(Clocks::with(Sink::Remote(files)))
    }

    /// Waits (at most `limit`) until every host's control file holds what was last set: on
    /// SSH hosts the files are written in the background, and a clock window's observed offset
    /// should be read after its bump landed. At once for local files.
    pub async fn settle(&self, limit: std::time::Duration) {
        let Sink::Remote(files) = &self.sink else {
            return;
        };
        let waits = files.iter().map(|f| {
            let sent = f.tx.borrow().0;
            let mut ack = f.ack.clone();
            async move {
                let _ = tokio::time::timeout(limit, ack.wait_for(|n| *n >= sent)).await;
            }
        });
        futures_util::future::join_all(waits).await;
    }

    fn remote_file(&self, id: &str) -> Option<&RemoteFile> {
        match &self.sink {
            Sink::Remote(files) => files.iter().find(|f| f.id == id),
            Sink::Local { .. } => None,
        }
    }

    fn file(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.rc"))
    }

    /// What node `id` is started with.
    pub fn env(&self, id: &str) -> Vec<(String, OsString)> {
        let (lib, file): (OsString, OsString) = match &self.sink {
            Sink::Local { lib, dir } => (lib.clone().into(), Clocks::file(dir, id).into()),
            Sink::Remote(_) => match self.remote_file(id) {
                Some(f) => (f.lib.clone().into(), f.path.clone().into()),
                None => return Vec::new(),
            },
        };
        vec![
            ("LD_PRELOAD".into(), lib),
            ("FAKETIME_TIMESTAMP_FILE".into(), file),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
            ("FAKETIME_DONT_RESET".into(), "1".into()),
        ]
    }

    /// Sets node `id`'s clock `offset_ms` off the true time; written whole (a rename), so the
    /// library never reads half a line.
    pub fn set(&self, id: &str, offset_ms: f64) -> Result<()> {
        let dir = match &self.sink {
            Sink::Local { dir, .. } => dir,
            Sink::Remote(_) => {
                let f = self
                    .remote_file(id)
                    .ok_or_else(|| anyhow::anyhow!("no clock control file for node {id}"))?;
                let n = f.tx.borrow().0 + 1;
                return f
                    .tx
                    .send((n, offset_line(offset_ms)))
                    .map_err(|_| anyhow::anyhow!("node {id}: the clock writer on its host ended"));
            }
        };
        let path = Clocks::file(dir, id);
        let tmp = dir.join(format!("{id}.rc.tmp"));
        std::fs::write(&tmp, format!("{}\n", offset_line(offset_ms)))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .with_context(|| format!("cannot write the clock control file {}", path.display()))
    }

    /// Puts a clock fault in force on `nodes`: a bump at once, a strobe or skew by a task that
    /// rewrites the offset until [`Clocks::reset`].
    pub fn start(self: &std::sync::Arc<Self>, nodes: &[String], mode: Mode, offset_ms: f64) {
        self.stop_driver();
        self.off.store(true, Ordering::SeqCst);
        for id in nodes {
            if let Err(e) = self.set(id, offset_at(mode, offset_ms, 0.0)) {
                tracing::error!("{e:#}");
            }
        }
        if mode == Mode::Bump {
            return;
        }
        let (me, nodes) = (self.clone(), nodes.to_vec());
        let task = tokio::spawn(async move {
            let begun = tokio::time::Instant::now();
            let mut iv = tokio::time::interval(std::time::Duration::from_millis(STEP_MS));
            loop {
                iv.tick().await;
                let elapsed = begun.elapsed().as_secs_f64() * 1000.0;
                for id in &nodes {
                    let _ = me.set(id, offset_at(mode, offset_ms, elapsed));
                }
            }
        });
        *self.driver.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    }

    fn stop_driver(&self) {
        if let Some(t) = self.driver.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }

    /// Whether a clock window is in force.
    pub fn is_off(&self) -> bool {
        self.off.load(Ordering::SeqCst)
    }

    /// Sets every clock in `ids` right again.
    pub fn reset(&self, ids: &[String]) {
        self.stop_driver();
        self.off.store(false, Ordering::SeqCst);
        for id in ids {
            if let Err(e) = self.set(id, 0.0) {
                tracing::error!("{e:#}");
            }
        }
    }
}

impl Drop for Clocks {
    fn drop(&mut self) {
        self.stop_driver();
        match &self.sink {
            Sink::Local { dir, .. } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            // The hosts' files go with their run folders.
            Sink::Remote(files) => files.iter().for_each(|f| f.writer.abort()),
        }
    }
}

/// Removes the clock folders of harnesses that are no longer running; says which.
pub fn clean_dead() -> Vec<String> {
    let tmp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((id, _)) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|rest| rest.rsplit_once('-'))
        else {
            continue;
        };
        if crate::reaper::harness_alive(id) {
            continue;
        }
        if std::fs::remove_dir_all(e.path()).is_ok() {
            out.push(format!(
                "removed the clock control files {}, left by a harness that died",
                e.path().display()
            ));
        }
    }
    out
}
