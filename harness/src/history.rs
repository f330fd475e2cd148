//! The history writer: every event is numbered, timestamped, written and flushed to
//! `history.jsonl` the moment it happens, so a crashed run still leaves a checkable prefix.
//!
//! Index and time are taken under the same lock as the write, so the file is ordered by both.

use checker::history::{to_line, Event, EventType, Process};
use serde_json::Value;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

pub struct History {
    start: Instant,
    inner: Mutex<Inner>,
}

struct Inner {
    out: BufWriter<File>,
    next_index: u64,
    /// First write error; later events are dropped from the file but the run carries on.
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

#[allow(dead_code)] // record_nemesis and start serve the nemesis.
impl History {
    /// Creates `path` (truncating) with `start` as time zero.
    pub fn create(path: &Path, start: Instant) -> std::io::Result<History> {
        let out = BufWriter::with_capacity(64 * 1024, File::create(path)?);
        Ok(History {
            start,
            inner: Mutex::new(Inner {
                out,
                next_index: 0,
                failed: None,
            }),
        })
    }

    /// Nanoseconds since the test started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// Records one event; returns its time (ns since start).
    pub fn record(&self, e: Entry<'_>) -> u64 {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let time = self.now();
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
        let mut line = to_line(&event);
        line.push('\n');
        if inner.failed.is_none() {
            let res = inner
                .out
                .write_all(line.as_bytes())
                .and_then(|_| inner.out.flush());
            if let Err(err) = res {
                tracing::error!("history write failed, later events are lost: {err}");
                inner.failed = Some(err.to_string());
            }
        }
        time
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

    /// The first write error, if the file could not be written.
    pub fn write_error(&self) -> Option<String> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failed
            .clone()
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
}
