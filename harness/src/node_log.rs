//! A node's stdout and stderr, copied into `nodes/<id>.log` up to a limit.
//!
//! A node given the log file itself could fill the disk: `exec yes` wrote 18 GB in 3 s and took
//! the history down with it. So the harness owns the file and copies the node's pipes into it;
//! past [`LIMIT`] bytes (per node, restarts included) it writes one line saying so and drains
//! the rest unwritten, so the node never blocks on a full pipe.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

/// Bytes of output kept per node log.
pub const LIMIT: u64 = 256 << 20;

/// One node's log file and the bytes written to it so far.
pub struct NodeLog {
    path: PathBuf,
    written: Arc<AtomicU64>,
    limit: u64,
}

impl NodeLog {
    pub fn new(path: &Path) -> NodeLog {
        NodeLog::with_limit(path, LIMIT)
    }

    pub fn with_limit(path: &Path, limit: u64) -> NodeLog {
        NodeLog {
            path: path.to_path_buf(),
            written: Arc::new(AtomicU64::new(0)),
            limit,
        }
    }

    /// Copies `pipe` into the log until the writer side closes.
    pub fn copy<R: AsyncRead + Unpin + Send + 'static>(&self, pipe: R) -> JoinHandle<()> {
        let (path, written, limit) = (self.path.clone(), self.written.clone(), self.limit);
        tokio::spawn(async move {
            if let Err(e) = copy_capped(pipe, &path, &written, limit).await {
                tracing::warn!(log = %path.display(), "node log: {e}");
            }
        })
    }
}

async fn copy_capped<R: AsyncRead + Unpin>(
    mut pipe: R,
    path: &Path,
    written: &AtomicU64,
    limit: u64,
) -> std::io::Result<()> {
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await?;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = pipe.read(&mut buf).await?;
        if n == 0 {
            return file.flush().await;
        }
        let before = written.fetch_add(n as u64, Ordering::Relaxed);
        let keep = limit.saturating_sub(before).min(n as u64) as usize;
        file.write_all(&buf[..keep]).await?;
        // Said once: the first drop is the one whose count crosses the limit.
        if keep < n && before.saturating_add(keep as u64) == limit {
            let note = format!("\n[harness: log cut at {limit} bytes; the node wrote more]\n");
            file.write_all(note.as_bytes()).await?;
            file.flush().await?;
        }
    }
}

/// Waits briefly for copies to finish, so a dead node's last words are in the file.
pub async fn drain(copies: Vec<JoinHandle<()>>) {
    for c in copies {
        let _ = tokio::time::timeout(Duration::from_millis(500), c).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_limit_then_says_so_and_drains() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n1.log");
        let log = NodeLog::with_limit(&path, 1000);
        let (mut w, r) = tokio::io::duplex(4096);
        let copy = log.copy(r);
        for _ in 0..100 {
            w.write_all(&[b'a'; 100]).await.unwrap();
        }
        drop(w);
        copy.await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&"a".repeat(1000)), "{}", text.len());
        let note = "\n[harness: log cut at 1000 bytes; the node wrote more]\n";
        assert_eq!(
            text.len(),
            1000 + note.len(),
            "all 10,000 bytes were drained, 1,000 kept"
        );
        assert!(text.ends_with(note));
    }

    #[tokio::test]
    async fn says_so_when_the_limit_falls_on_a_read_boundary() {
        // A slice is read in whole 64 KiB chunks, so the limit is reached exactly.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n1.log");
        let data = vec![b'z'; 3 << 16];
        let written = AtomicU64::new(0);
        copy_capped(&data[..], &path, &written, 1 << 16)
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("[harness: log cut at 65536 bytes; the node wrote more]\n"));
        assert_eq!(text.matches("log cut").count(), 1);
    }
}
