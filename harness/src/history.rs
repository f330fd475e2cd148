//! The history writer: every event is numbered, timestamped and written to `history.jsonl` (no
//! user-space buffer left behind) as it happens, so a crashed run still leaves a checkable prefix.
//!
//! Index and time are taken under the same lock that appends the line, so the file is ordered by
//! both. Writes are group-committed: the caller that finds no write in progress writes out every
//! line queued so far, and keeps going until the queue is empty; callers arriving meanwhile just
//! queue. Every `record` therefore reaches the file within one `write(2)` of its own, and the file
//! is always a prefix of the history in index order (never a gap).

use checker::history::{Event, EventType, Process};
use serde_json::Value;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;
use tokio::sync::watch;

pub struct History {
    start: Instant,
    path: PathBuf,
    /// Turns true at the first failed write, so the run can stop at once.
    failed_tx: watch::Sender<bool>,
    inner: Mutex<Inner>,
    /// Held only by the one caller currently writing.
    file: Mutex<File>,
}

struct Inner {
    /// Lines recorded but not yet written.
    queue: Vec<u8>,
    /// A caller is writing the queue out.
    writing: bool,
    next_index: u64,
    /// First write error; later events are dropped from the file (the run stops, see
    /// [`History::wait_failed`]).
    failed: Option<String>,
}

/// What a client completion or nemesis event says, before it gets its index and time.
pub struct Entry<'a> {
    pub process: Process,
    pub kind: EventType,
    pub f: &'a str,
    pub key: Option<&'a str>,
    pub value: Value,
    pub node: Option<&'a str>,
    pub error: Option<String>,
}

impl History {
    /// Creates `path` (truncating) with `start` as time zero.
    pub fn create(path: &Path, start: Instant) -> std::io::Result<History> {
        Ok(History {
            start,
            path: path.to_path_buf(),
            failed_tx: watch::channel(false).0,
            inner: Mutex::new(Inner {
                queue: Vec::with_capacity(64 * 1024),
                writing: false,
                next_index: 0,
                failed: None,
            }),
            file: Mutex::new(File::create(path)?),
        })
    }

    /// Nanoseconds since the test started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one event; returns its time (ns since start).
    pub fn record(&self, e: Entry<'_>) -> u64 {
        let time;
        {
            let mut inner = self.lock();
            time = self.now();
            let event = Event {
                index: inner.next_index,
                time,
                process: e.process,
                kind: e.kind,
                f: e.f.to_string(),
                key: e.key.map(str::to_string),
                value: e.value,
                node: e.node.map(str::to_string),
                error: e.error,
            };
            inner.next_index += 1;
            serde_json::to_writer(&mut inner.queue, &event).expect("events always serialize");
            inner.queue.push(b'\n');
            if inner.writing {
                return time; // the writer in progress picks it up before it stops
            }
            inner.writing = true;
        }
        self.write_out();
        time
    }

    /// Writes queued lines until none are left; only one caller at a time gets here.
    fn write_out(&self) {
        let mut chunk = Vec::with_capacity(64 * 1024);
        loop {
            {
                let mut inner = self.lock();
                if inner.queue.is_empty() {
                    inner.writing = false;
                    return;
                }
                std::mem::swap(&mut inner.queue, &mut chunk);
                if inner.failed.is_some() {
                    chunk.clear();
                    continue;
                }
            }
            let res = self
                .file
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .write_all(&chunk);
            chunk.clear();
            if let Err(err) = res {
                tracing::error!("history write failed, later events are lost: {err}");
                self.lock().failed = Some(err.to_string());
                self.failed_tx.send_replace(true);
            }
        }
    }

    /// A nemesis event (`process` `"nemesis"`, `type` `info`): `f` such as `start-partition`,
    /// `value` naming the nodes or the grudge. Also logged to `harness.log`.
    pub fn record_nemesis(&self, f: &str, value: Value) -> u64 {
        tracing::info!(f, %value, "nemesis");
        self.record(Entry {
            process: Process::nemesis(),
            kind: EventType::Info,
            f,
            key: None,
            value,
            node: None,
            error: None,
        })
    }

    /// Events recorded so far.
    pub fn len(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_index
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first write error, if the file could not be written: `cannot write PATH: CAUSE`.
    pub fn write_error(&self) -> Option<String> {
        let cause = self.lock().failed.clone()?;
        Some(format!("cannot write {}: {cause}", self.path.display()))
    }

    /// Resolves once a write of the history has failed.
    pub async fn wait_failed(&self) {
        let mut rx = self.failed_tx.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_hit_the_file_at_once_in_index_order() {
        let dir = std::env::temp_dir().join(format!("harness-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        let h = History::create(&path, Instant::now()).unwrap();
        h.record(Entry {
            process: Process::Client(3),
            kind: EventType::Invoke,
            f: "write",
            key: Some("k7"),
            value: serde_json::json!(4),
            node: Some("n1"),
            error: None,
        });
        // Not dropped, not flushed explicitly: the line must already be readable.
        let events = checker::history::read_jsonl(&path).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].key.as_deref(), Some("k7"));
        h.record_nemesis("pause", serde_json::json!(["n2"]));
        let events = checker::history::read_jsonl(&path).unwrap();
        assert_eq!(events[1].index, 1);
        assert!(events[1].is_nemesis());
        assert!(events[1].time >= events[0].time);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_records_all_land_in_index_order() {
        let dir = std::env::temp_dir().join(format!("harness-history-mt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        let h = std::sync::Arc::new(History::create(&path, Instant::now()).unwrap());
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        h.record(Entry {
                            process: Process::Client(t),
                            kind: EventType::Invoke,
                            f: "write",
                            key: None,
                            value: serde_json::json!(i),
                            node: None,
                            error: None,
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Every record has returned and no write is in progress: all 8000 lines are on disk.
        let events = checker::history::read_jsonl(&path).unwrap();
        assert_eq!(events.len(), 8000);
        assert!(events.iter().enumerate().all(|(i, e)| e.index == i as u64));
        assert!(events.windows(2).all(|w| w[0].time <= w[1].time));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
