//! The run store: `STORE/<test>/<YYYYMMDDTHHMMSS.mmmZ>/` with `test.json`, `history.jsonl`,
//! `results.json`, `harness.log`, `nodes/`; symlinks `STORE/latest` and `STORE/<test>/latest`.
//!
//! `harness.log` is written through `tracing`: one global subscriber whose writer appends to the
//! log of every run in progress (normally exactly one).

use anyhow::{Context, Result};
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};

/// A run folder.
pub struct RunDir {
    pub path: PathBuf,
    log: Arc<Mutex<File>>,
}

static LOGS: Mutex<Vec<Arc<Mutex<File>>>> = Mutex::new(Vec::new());

fn logs() -> std::sync::MutexGuard<'static, Vec<Arc<Mutex<File>>>> {
    LOGS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes each formatted tracing line to every open run log.
struct RunLogs;
impl Write for RunLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for f in logs().iter() {
            let _ = f.lock().unwrap_or_else(|p| p.into_inner()).write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the global tracing subscriber once (`RUST_LOG` filters; default `info`).
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use tracing_subscriber::EnvFilter;
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(|| RunLogs)
            .try_init();
    });
}

/// The folder name for a run started now: `YYYYMMDDTHHMMSS.mmmZ` (UTC).
pub fn timestamp_now() -> String {
    let fmt = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&fmt)
        .expect("timestamp formats")
}

pub fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("rfc3339 formats")
}

/// A test name must be one path component.
pub fn check_test_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name != "latest"
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
    anyhow::ensure!(
        ok,
        "--name {name:?}: use letters, digits and - _ . + only (and not `latest`)"
    );
    Ok(())
}

impl RunDir {
    /// Creates `store/<test>/<timestamp>/` (with a suffix if two runs start in the same
    /// millisecond), its `nodes/` folder and `harness.log`, and points the `latest` links at it.
    pub fn create(store: &Path, test: &str) -> Result<RunDir> {
        check_test_name(test)?;
        init_tracing();
        let test_dir = store.join(test);
        std::fs::create_dir_all(&test_dir).with_context(|| {
            format!(
                "--store {}: cannot create {}",
                store.display(),
                test_dir.display()
            )
        })?;
        let ts = timestamp_now();
        let mut name = ts.clone();
        let mut n = 1;
        let path = loop {
            let p = test_dir.join(&name);
            match std::fs::create_dir(&p) {
                Ok(()) => break p,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    n += 1;
                    name = format!("{ts}-{n}");
                }
                Err(e) => return Err(e).with_context(|| format!("cannot create {}", p.display())),
            }
        };
        std::fs::create_dir_all(path.join("nodes"))?;
        let log = File::create(path.join("harness.log"))
            .with_context(|| format!("cannot create {}/harness.log", path.display()))?;
        let log = Arc::new(Mutex::new(log));
        logs().push(log.clone());
        relink(&test_dir.join("latest"), Path::new(&name))?;
        relink(&store.join("latest"), &Path::new(test).join(&name))?;
        Ok(RunDir { path, log })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `name` as pretty JSON.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        let path = self.file(name);
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        logs().retain(|l| !Arc::ptr_eq(l, &self.log));
    }
}

/// Atomically points symlink `link` at `target` (relative to the link's folder).
fn relink(link: &Path, target: &Path) -> Result<()> {
    let tmp = link.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("cannot create symlink {}", tmp.display()))?;
    std::fs::rename(&tmp, link).with_context(|| format!("cannot update {}", link.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_distinct_folders_and_latest_links() {
        let store = std::env::temp_dir().join(format!("harness-store-{}", std::process::id()));
        let a = RunDir::create(&store, "t1").unwrap();
        let b = RunDir::create(&store, "t1").unwrap();
        assert_ne!(a.path, b.path);
        assert!(a.path.join("nodes").is_dir() && a.path.join("harness.log").is_file());
        let latest = std::fs::canonicalize(store.join("latest")).unwrap();
        assert_eq!(latest, std::fs::canonicalize(&b.path).unwrap());
        let latest = std::fs::canonicalize(store.join("t1/latest")).unwrap();
        assert_eq!(latest, std::fs::canonicalize(&b.path).unwrap());
        assert!(RunDir::create(&store, "../x").is_err());
        drop((a, b));
        std::fs::remove_dir_all(&store).unwrap();
    }
}
