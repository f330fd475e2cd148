//! The node's durable state in `--data-dir`: `snapshot.json` (applied state plus acceptor state,
//! replaced atomically by rename) and `wal.log` (acceptor records written since, one JSON line
//! each, synced with one fdatasync per batch). A torn last line of the log (a crash mid-write) is
//! ignored: nothing written after the last sync was ever acted on.

use crate::core::{Durable, Record, Snapshot};
use anyhow::{Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

pub struct Storage {
    dir: PathBuf,
    wal: BufWriter<File>,
    dirty: bool,
    pub stats: Arc<DiskStats>,
}

/// Disk counters, readable from other threads.
#[derive(Default)]
pub struct DiskStats {
    pub fsyncs: AtomicU64,
    pub fsync_micros: AtomicU64,
    pub snapshots_written: AtomicU64,
}

impl Storage {
    /// Reads what is on disk and bumps the incarnation counter (synced before returning).
    pub fn open(dir: &Path) -> Result<(Storage, Durable, u64)> {
        fs::create_dir_all(dir).with_context(|| format!("--data-dir {}", dir.display()))?;
        let inc_path = dir.join("incarnation");
        let incarnation = match fs::read_to_string(&inc_path) {
            Ok(s) => s.trim().parse::<u64>().unwrap_or(0) + 1,
            Err(_) => 1,
        };
        write_synced(&inc_path, incarnation.to_string().as_bytes())?;
        let snap_path = dir.join("snapshot.json");
        let snapshot = match File::open(&snap_path) {
            Ok(f) => Some(
                serde_json::from_reader::<_, Snapshot>(BufReader::new(f))
                    .with_context(|| format!("{}: unreadable snapshot", snap_path.display()))?,
            ),
            Err(_) => None,
        };
        let wal_path = dir.join("wal.log");
        let mut records = Vec::new();
        if let Ok(f) = File::open(&wal_path) {
            for line in BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Record>(&line) {
                    Ok(r) => records.push(r),
                    Err(_) => break,
                }
            }
        }
        let wal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&wal_path)
            .with_context(|| format!("{}", wal_path.display()))?;
        let storage = Storage {
            dir: dir.to_path_buf(),
            wal: BufWriter::with_capacity(1 << 16, wal),
            dirty: false,
            stats: Arc::default(),
        };
        Ok((storage, Durable { snapshot, records }, incarnation))
    }

    /// Appends records (buffered; durable after the next [`Storage::sync`]).
    pub fn write(&mut self, records: &[Record]) -> Result<()> {
        for r in records {
            serde_json::to_writer(&mut self.wal, r)?;
            self.wal.write_all(b"\n")?;
            self.dirty = true;
        }
        Ok(())
    }

    /// Makes everything written so far durable: one fdatasync, if anything was written.
    pub fn sync(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.wal.flush()?;
        let t = std::time::Instant::now();
        self.wal
            .get_ref()
            .sync_data()
            .context("fdatasync wal.log")?;
        self.stats.fsyncs.fetch_add(1, Relaxed);
        self.stats
            .fsync_micros
            .fetch_add(t.elapsed().as_micros() as u64, Relaxed);
        self.dirty = false;
        Ok(())
    }

    /// Replaces the snapshot (write, sync, rename, sync dir) and empties the log behind it.
    pub fn write_snapshot(&mut self, s: &Snapshot) -> Result<()> {
        let tmp = self.dir.join("snapshot.json.tmp");
        write_synced(&tmp, &serde_json::to_vec(s)?)?;
        fs::rename(&tmp, self.dir.join("snapshot.json")).context("rename snapshot")?;
        File::open(&self.dir)?.sync_all().context("sync data dir")?;
        self.wal.flush()?;
        self.wal.get_ref().set_len(0).context("truncate wal.log")?;
        self.wal.get_ref().sync_data()?;
        self.dirty = false;
        self.stats.snapshots_written.fetch_add(1, Relaxed);
        Ok(())
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).with_context(|| format!("{}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()
        .with_context(|| format!("sync {}", path.display()))?;
    Ok(())
}
