//! The run store: `STORE/<test>/<YYYYMMDDTHHMMSS.mmmZ>/` with `test.json`, `history.jsonl`,
//! `results.json`, `harness.log`, `nodes/`; symlinks `STORE/latest` and `STORE/<test>/latest`.
//!
//! `harness.log` is written through `tracing`: one global subscriber routes each event to the log
//! of the run whose `run` span (field `log_id`) encloses it, so parallel runs keep separate logs.
//! Events outside any run span (a task spawned without `.in_current_span()`) go to every open log.

use anyhow::{Context, Result};
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

/// A run folder.
pub struct RunDir {
    pub path: PathBuf,
    log_id: u64,
}

static LOGS: Mutex<Vec<(u64, Arc<Mutex<File>>)>> = Mutex::new(Vec::new());

fn logs() -> std::sync::MutexGuard<'static, Vec<(u64, Arc<Mutex<File>>)>> {
    LOGS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Marks the span of one run (see [`RunDir::span`]).
struct RunLogId(u64);

/// Formats events as `TIME LEVEL target: message k=v ...` and appends them to the right run log.
struct RouteLayer;

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
    log_id: Option<u64>,
}

impl tracing::field::Visit for Fields {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "log_id" {
            self.log_id = Some(value);
        } else {
            self.record_debug(field, &value);
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            use std::fmt::Write as _;
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for RouteLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let (Some(log_id), Some(span)) = (f.log_id, ctx.span(id)) {
            span.extensions_mut().insert(RunLogId(log_id));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let target = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|s| s.extensions().get::<RunLogId>().map(|r| r.0))
        });
        let mut f = Fields::default();
        event.record(&mut f);
        let meta = event.metadata();
        let line = format!(
            "{} {:>5} {}: {}{}\n",
            rfc3339_now(),
            meta.level(),
            meta.target(),
            f.message,
            f.rest
        );
        for (id, file) in logs().iter() {
            if target.is_none_or(|t| t == *id) {
                let _ = file
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .write_all(line.as_bytes());
            }
        }
    }
}

/// Installs the global tracing subscriber once (`RUST_LOG` filters; default `info`).
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        use tracing_subscriber::EnvFilter;
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(RouteLayer)
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
        static NEXT_LOG_ID: AtomicU64 = AtomicU64::new(1);
        let log_id = NEXT_LOG_ID.fetch_add(1, Ordering::Relaxed);
        logs().push((log_id, Arc::new(Mutex::new(log))));
        relink(&test_dir.join("latest"), Path::new(&name))?;
        relink(&store.join("latest"), &Path::new(test).join(&name))?;
        Ok(RunDir { path, log_id })
    }

    /// The span to run this run's work in: events inside it go to this run's `harness.log`.
    pub fn span(&self) -> tracing::Span {
        tracing::info_span!("run", log_id = self.log_id)
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
        logs().retain(|(id, _)| *id != self.log_id);
    }
}

/// Atomically points symlink `link` at `target` (relative to the link's folder).
fn relink(link: &Path, target: &Path) -> Result<()> {
    // Runs of a suite relink from several threads of one process: the pid alone would hand two
    // of them the same temporary name, and the second rename would find it gone.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = link.with_extension(format!("tmp{}-{n}", std::process::id()));
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

    #[test]
    fn events_go_to_the_log_of_their_run() {
        let store = std::env::temp_dir().join(format!("harness-store-logs-{}", std::process::id()));
        let a = RunDir::create(&store, "a").unwrap();
        let b = RunDir::create(&store, "b").unwrap();
        a.span().in_scope(|| tracing::info!(n = 1, "only in a"));
        b.span().in_scope(|| tracing::info!("only in b"));
        tracing::info!("in every open log");
        let log = |r: &RunDir| std::fs::read_to_string(r.file("harness.log")).unwrap();
        let (la, lb) = (log(&a), log(&b));
        assert!(
            la.contains("only in a n=1") && !la.contains("only in b"),
            "{la}"
        );
        assert!(
            lb.contains("only in b") && !lb.contains("only in a"),
            "{lb}"
        );
        assert!(la.contains("in every open log") && lb.contains("in every open log"));
        drop((a, b));
        std::fs::remove_dir_all(&store).unwrap();
    }
}
