//! Node ports that no other harness process on this machine hands out at the same time.
//!
//! A node's port is picked free and then released so the node can bind it; a harness running
//! beside this one (a `hunt --parallel`, two CI jobs) could pick it in that window, or while a
//! killed node is down, and then one of the two nodes fails with "Address already in use". Each
//! port a plan uses is therefore claimed with an open-file-description lock on byte `port` of one
//! shared lock file, held as long as the plan lives; the kernel drops it when the process dies,
//! however it dies, so a claim never outlives its harness.

use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// A claimed port; dropping it releases the claim.
#[derive(Debug)]
pub struct PortClaim {
    // Only held: closing the file releases the lock.
    _file: Option<File>,
}

fn lock_path() -> PathBuf {
    std::env::temp_dir().join("harness-ports.lock")
}

/// Claims `port`, or None if another claim (in this process or another) holds it. Where the
/// lock file cannot be opened, every port is claimable: the old behaviour, races included.
pub fn claim(port: u16) -> Option<PortClaim> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(lock_path());
    let Ok(file) = file else {
        return Some(PortClaim { _file: None });
    };
    // SAFETY: flock is plain old data; every field the kernel reads is set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = port as libc::off_t;
    lock.l_len = 1;
    match fcntl(file.as_raw_fd(), FcntlArg::F_OFD_SETLK(&lock)) {
        Ok(_) => Some(PortClaim { _file: Some(file) }),
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => None,
        // Locks unsupported here (an odd /tmp): behave as before.
        Err(_) => Some(PortClaim { _file: None }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_port_is_refused_until_released() {
        let port = 64_999; // outside the nodes' range, so no cluster of another test holds it
        let first = claim(port).expect("a free port is claimable");
        assert!(
            claim(port).is_none(),
            "a second claim of a held port must fail"
        );
        assert!(claim(port + 1).is_some(), "another port is independent");
        drop(first);
        assert!(claim(port).is_some(), "a released port is claimable again");
    }
}
