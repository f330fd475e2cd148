//! The open-file limit, checked before a run starts. A run holds about five descriptors per
//! proxied link (a listener and both ends of its connections), and links grow as n², so a
//! default `ulimit -n` of 1024 is too small for 20 nodes: clients would fail with EMFILE, recorded
//! as ordinary failed operations. The soft limit is raised towards the hard one where that
//! suffices (the nodes inherit it); otherwise the run is refused with the number it needs.

use nix::libc;

/// Descriptors per proxied directed link: its listener, and two connections of two ends each
/// (a node's connection and the one replacing it after a cut).
const PER_LINK: u64 = 5;
/// Per node: the clients' shared connection, final reads, stats, its log while it is spawned.
const PER_NODE: u64 = 6;
/// The runtime, the history, logs, standard streams and what a check opens.
const MARGIN: u64 = 64;

/// Descriptors one run of `nodes` nodes needs beyond those open now; `proxies` when every link
/// goes through a harness proxy (not with `--net netns`).
pub fn needed(nodes: usize, proxies: bool) -> u64 {
    let n = nodes as u64;
    let links = if proxies { n * n.saturating_sub(1) } else { 0 };
    PER_LINK * links + PER_NODE * n + MARGIN
}

/// Makes room for `more` descriptors on top of the ones open now (so runs of one suite or hunt
/// in parallel add up). Returns a note when the soft limit was raised; an error with the number
/// needed when the hard limit is too low.
pub fn ensure(more: u64, what: &str) -> Result<Option<String>, String> {
    let open = open_now();
    let need = open + more;
    let (soft, hard) = limits()?;
    if need <= soft {
        return Ok(None);
    }
    if need > hard {
        return Err(format!(
            "{what} needs about {need} open files ({open} open now + {more}), but the limit is \
             {soft} and its hard limit {hard}; raise it (ulimit -n {need} as root) or run fewer nodes"
        ));
    }
    // Headroom for reconnects, but not the whole hard limit (it may be huge, and the nodes inherit
    // the soft limit).
    let new = (need * 2).min(hard);
    set_soft(new, hard)?;
    Ok(Some(format!(
        "raised the open-file limit from {soft} to {new} ({what} needs about {need})"
    )))
}

fn open_now() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

fn limits() -> Result<(u64, u64), String> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only fills the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(format!(
            "cannot read the open-file limit: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok((r.rlim_cur, r.rlim_max))
}

fn set_soft(soft: u64, hard: u64) -> Result<(), String> {
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
        return Err(format!(
            "cannot raise the open-file limit to {soft}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_grow_as_n_squared_and_netns_needs_no_proxies() {
        assert_eq!(needed(1, true), PER_NODE + MARGIN);
        assert_eq!(needed(20, true), PER_LINK * 380 + PER_NODE * 20 + MARGIN);
        assert!(
            needed(20, true) > 1024,
            "20 proxied nodes do not fit in 1024"
        );
        assert_eq!(needed(20, false), PER_NODE * 20 + MARGIN);
    }

    #[test]
    fn a_need_within_the_current_limit_changes_nothing() {
        assert_eq!(ensure(1, "this test"), Ok(None));
    }
}
