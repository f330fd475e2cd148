//! Power cuts (`--nemesis power-cut`): with the fault asked for, every node's `--data-dir` is a
//! powerfs mount over `nodes/<id>.disk` (the "disk": what is durable), mounted just before the
//! node starts and unmounted after it stops. A cut SIGKILLs the node, then unmounts its layer
//! dropping every write not yet synced, so the node restarts on what a power failure would have
//! left; a plain kill keeps the layer, as SIGKILL keeps the page cache. Semantics in
//! docs/faults.md ("Power cuts").
//!
//! A mount's source is `jepsen-powerfs:` and the node's [`crate::reaper::ENV`] tag, which names
//! the harness: after a SIGKILL of the harness (its mounts then answer every call with an
//! error), `harness clean` or the next run unmounts those whose harness is gone ([`clean_dead`]).

use anyhow::{anyhow, Context, Result};
use powerfs::Layer;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const SOURCE_PREFIX: &str = "jepsen-powerfs:";

/// Refuses the fault where FUSE cannot be used; the error says why and what still works.
pub fn check() -> Result<()> {
    powerfs::check_device().map_err(|e| {
        anyhow!(
            "--nemesis power-cut needs FUSE: {e} (load the fuse module and run as root, or \
             install fuse3 for fusermount3; the other faults run without it)"
        )
    })
}

/// Where node data lives on the "disk" behind its mount: `nodes/n1` -> `nodes/n1.disk`.
pub fn backing_dir(data_dir: &Path) -> PathBuf {
    let mut name = data_dir.file_name().unwrap_or_default().to_os_string();
    name.push(".disk");
    data_dir.with_file_name(name)
}

/// Lazily unmounts every layer this process still has (the harness is about to exit).
pub fn unmount_live() {
    let mine = format!("{SOURCE_PREFIX}{}/", crate::reaper::harness_id());
    powerfs::unmount_where(|s| s.starts_with(&mine));
}

/// Unmounts the layers of harnesses that no longer run; one line per mount.
pub fn clean_dead() -> Vec<String> {
    let dead = |source: &str| {
        source
            .strip_prefix(SOURCE_PREFIX)
            .and_then(|tag| tag.split('/').next())
            .is_some_and(|harness| !crate::reaper::harness_alive(harness))
    };
    powerfs::unmount_where(dead)
        .into_iter()
        .map(|p| {
            format!(
                "unmounted {}, a power-cut layer left by a harness that died",
                p.display()
            )
        })
        .collect()
}

/// The layers of a cluster's nodes, by node index.
pub struct Disks {
    layers: Vec<Mutex<Option<Layer>>>,
}

impl Disks {
    pub fn new(n: usize) -> Disks {
        Disks {
            layers: (0..n).map(|_| Mutex::new(None)).collect(),
        }
    }

    fn slot(&self, i: usize) -> std::sync::MutexGuard<'_, Option<Layer>> {
        self.layers[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Mounts node `i`'s layer over `data_dir` unless it is mounted; `tag` names the node.
    pub fn mount(&self, i: usize, data_dir: &Path, tag: &str) -> Result<()> {
        let mut slot = self.slot(i);
        if slot.is_some() {
            return Ok(());
        }
        let backing = backing_dir(data_dir);
        let layer = Layer::mount(&backing, data_dir, &format!("{SOURCE_PREFIX}{tag}"))
            .with_context(|| {
                format!(
                    "cannot mount the power-cut layer at {} over {}",
                    data_dir.display(),
                    backing.display()
                )
            })?;
        *slot = Some(layer);
        Ok(())
    }

    /// Cuts node `i`'s power (its process must be dead): unsynced writes are dropped.
    pub fn cut(&self, i: usize) -> Result<()> {
        match self.slot(i).take() {
            Some(layer) => layer.cut().context("unmount the power-cut layer"),
            None => Ok(()),
        }
    }

    /// A clean shutdown of every layer (the nodes must be dead): everything written is kept.
    pub fn stop_all(&self) {
        for i in 0..self.layers.len() {
            if let Some(layer) = self.slot(i).take() {
                let point = layer.mountpoint().to_path_buf();
                if let Err(e) = layer.stop() {
                    tracing::error!("power-cut layer at {}: {e}", point.display());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{self, Fault, Kinds, Targets};

    #[test]
    fn the_disk_sits_next_to_the_data_dir() {
        assert_eq!(
            backing_dir(Path::new("/r/nodes/n3")),
            PathBuf::from("/r/nodes/n3.disk")
        );
    }

    #[test]
    fn power_cut_parses_and_is_scheduled_on_node_sets() {
        let kinds: Kinds = "power-cut,kill".parse().unwrap();
        assert_eq!(kinds.to_string(), "power-cut,kill");
        let nodes: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
        let s = schedule::generate(&schedule::Plan {
            seed: 3,
            nodes: &nodes,
            kinds: &"power-cut".parse().unwrap(),
            targets: &"all".parse::<Targets>().unwrap(),
            interval_s: 1.0,
            time_limit_s: 10.0,
            turn: None,
            spares: &[],
        })
        .unwrap();
        assert!(!s.windows.is_empty());
        for w in &s.windows {
            assert!(
                matches!(&w.fault, Fault::PowerCut { nodes: ns, .. } if *ns == nodes),
                "{w:?}"
            );
        }
        let bad = schedule::validate(
            &"power-cut".parse().unwrap(),
            &"bridge".parse().unwrap(),
            1.0,
        );
        assert!(bad.unwrap_err().contains("'power-cut'"));
    }
}
