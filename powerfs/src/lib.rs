//! powerfs: a FUSE layer over a backing directory that keeps every write apart until it is
//! synced, so that a *cut* loses exactly what a power failure would: all data written to a file
//! since its last `fsync`/`fdatasync`, and every create, rename and unlink in a directory since
//! that directory's last `fsync`. The harness mounts one over each node's data directory for
//! `--nemesis power-cut` (semantics in docs/faults.md, "Power cuts").
//!
//! Main types: [`Layer`] (one mount: [`Layer::stop`] is a clean shutdown, [`Layer::cut`] a power
//! cut), [`check_device`] (is FUSE usable here), [`unmount_where`] (remove mounts a killed
//! process left). The state lives in [`model`]; [`fs`] answers the kernel's calls.

pub mod fs;
pub mod model;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Environment variable naming the FUSE device to check instead of `/dev/fuse` (tests point it
/// at a missing file to see the refusal).
pub const DEVICE_ENV: &str = "JEPSEN_FUSE_DEVICE";

/// The FUSE device [`check_device`] opens.
pub fn device() -> PathBuf {
    std::env::var_os(DEVICE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/fuse"))
}

/// Whether FUSE can be used: the device opens for reading and writing. The error names the
/// device and the cause.
pub fn check_device() -> Result<(), String> {
    let dev = device();
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dev)
        .map(drop)
        .map_err(|e| format!("cannot open the FUSE device {}: {e}", dev.display()))
}

/// One mounted layer.
pub struct Layer {
    model: Arc<Mutex<model::Model>>,
    session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
    backing: PathBuf,
}

impl Layer {
    /// Mounts a layer at `mountpoint` over `backing` (both directories; `backing` is what is
    /// durable). `source` names the mount in `/proc/self/mountinfo` (see [`unmount_where`]).
    pub fn mount(backing: &Path, mountpoint: &Path, source: &str) -> io::Result<Layer> {
        std::fs::create_dir_all(backing)?;
        std::fs::create_dir_all(mountpoint)?;
        let model = Arc::new(Mutex::new(model::Model::load(backing)?));
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName(source.to_string()),
            fuser::MountOption::Subtype("powerfs".into()),
            fuser::MountOption::NoAtime,
        ];
        let fs = fs::PowerFs {
            model: model.clone(),
        };
        let session = fuser::spawn_mount(fs, mountpoint, &config)?;
        Ok(Layer {
            model,
            session: Some(session),
            mountpoint: mountpoint.to_path_buf(),
            backing: backing.to_path_buf(),
        })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// A clean shutdown: everything is made durable, then the layer is unmounted.
    pub fn stop(mut self) -> io::Result<()> {
        let synced = self
            .model
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sync_all();
        let unmounted = self.unmount();
        synced.map_err(io::Error::from_raw_os_error)?;
        unmounted
    }

    /// A power cut: the layer is unmounted and everything not synced is dropped; the backing
    /// directory holds what survived.
    pub fn cut(mut self) -> io::Result<()> {
        self.unmount()
    }

    /// Unmounts; synced data of files that had no durable name (the orphan area) goes with the
    /// mount, as a file system check would reclaim it.
    fn unmount(&mut self) -> io::Result<()> {
        let Some(s) = self.session.take() else {
            return Ok(());
        };
        s.umount_and_join()?;
        match std::fs::remove_dir_all(self.backing.join(model::ORPHANS)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for Layer {
    /// Dropped without [`Layer::stop`]: as a cut.
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}

/// The FUSE mounts of this machine: (mount point, source). A direct mount (as root) has type
/// `fuse`, one made through fusermount3 `fuse.powerfs`; the source is what [`Layer::mount`] was
/// given, so callers pick theirs by it.
pub fn mounts() -> Vec<(PathBuf, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines().filter_map(parse_mountinfo).collect()
}

fn parse_mountinfo(line: &str) -> Option<(PathBuf, String)> {
    let (left, right) = line.split_once(" - ")?;
    let mountpoint = left.split(' ').nth(4)?;
    let mut right = right.split(' ');
    let (fstype, source) = (right.next()?, right.next()?);
    (fstype == "fuse" || fstype == "fuse.powerfs")
        .then(|| (PathBuf::from(unescape(mountpoint)), unescape(source)))
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(std::str::from_utf8(o).ok()?, 8).ok());
        match (b[i], oct) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lazily unmounts every powerfs mount whose source `pick` accepts (a mount whose process was
/// killed answers every call with an error until then). Returns the mount points removed.
pub fn unmount_where(pick: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut done = Vec::new();
    for (point, source) in mounts() {
        if pick(&source) && lazy_unmount(&point) {
            done.push(point);
        }
    }
    done
}

fn lazy_unmount(point: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(point.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; umount2 only reads it.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return true;
    }
    // Not root: the setuid helper may unmount what this user mounted.
    std::process::Command::new("fusermount3")
        .args(["-u", "-z"])
        .arg(point)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_of_powerfs_mounts_are_found_and_unescaped() {
        let line = "812 30 0:77 / /tmp/run\\040x/n1 rw,nosuid,nodev,relatime shared:400 - \
                    fuse jepsen-powerfs:1-ab rw,user_id=0,group_id=0";
        assert_eq!(
            parse_mountinfo(line),
            Some((PathBuf::from("/tmp/run x/n1"), "jepsen-powerfs:1-ab".into()))
        );
        let other = "25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw";
        assert_eq!(parse_mountinfo(other), None);
    }
}
