//! What a replica is told at start: its place in the cluster, the variant, seeded bugs, timing.

/// `basic`: every command runs both phases for its slot. `multi`: a stable leader runs phase 1
/// once and then only phase 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Basic,
    Multi,
}

/// Seeded bugs: each turns on one realistic mistake (see docs/seeded-bugs.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Acceptor state is never written to disk, so SIGKILL forgets promises and votes.
    pub volatile_acceptor: bool,
    /// A new proposer proposes its own value even when a promise reports an accepted one.
    pub ignore_promised_value: bool,
    /// An acceptor accepts ballots below the one it promised.
    pub accept_below_promise: bool,
    /// Reads are answered from the local state machine, bypassing the log.
    pub local_read: bool,
    /// The multi leader answers reads locally while its (tick-counted) lease holds.
    pub lease_read: bool,
    /// The WAL is written but never fdatasynced: replies go out while the records are only in
    /// the page cache (the storage layer reads this one, not the core).
    pub unsynced_wal: bool,
    /// The multi leader answers reads locally while its lease holds by its wall clock.
    pub clock_lease: bool,
    /// A removed node keeps voting, and quorums count every vote against the configuration's
    /// size, so votes of nodes outside the slot's configuration make a "majority".
    pub removed_vote: bool,
}

impl Bugs {
    pub const NAMES: [&'static str; 8] = [
        "volatile-acceptor",
        "ignore-promised-value",
        "accept-below-promise",
        "local-read",
        "lease-read",
        "unsynced-wal",
        "clock-lease",
        "removed-vote",
    ];

    /// Turns on the bug called `name`; the error lists the known names.
    pub fn enable(&mut self, name: &str) -> Result<(), String> {
        let flag = match name {
            "volatile-acceptor" => &mut self.volatile_acceptor,
            "ignore-promised-value" => &mut self.ignore_promised_value,
            "accept-below-promise" => &mut self.accept_below_promise,
            "local-read" => &mut self.local_read,
            "lease-read" => &mut self.lease_read,
            "unsynced-wal" => &mut self.unsynced_wal,
            "clock-lease" => &mut self.clock_lease,
            "removed-vote" => &mut self.removed_vote,
            _ => {
                return Err(format!(
                    "unknown bug '{name}' (known: {})",
                    Bugs::NAMES.join(", ")
                ))
            }
        };
        *flag = true;
        Ok(())
    }
}

/// Timeouts in ticks, and sizes.
#[derive(Clone, Debug)]
pub struct Timing {
    pub heartbeat: u64,
    pub election_min: u64,
    pub election_max: u64,
    /// Resend an unanswered accept after this long.
    pub resend: u64,
    /// Re-submit a client command not yet decided after this long.
    pub resubmit: u64,
    /// Answer `timeout` (indefinite) to a client after this long.
    pub client_deadline: u64,
    /// Give up a Basic Paxos round after this long.
    pub basic_timeout: u64,
    /// Basic Paxos backoff unit; the wait is random in `0..=backoff << attempts`.
    pub backoff: u64,
    pub catchup: u64,
    /// How long the (buggy) lease is believed to hold.
    pub lease: u64,
    /// The tick's length in ms, for the (buggy) lease timed by the wall clock.
    pub tick_ms: u64,
    /// Take a snapshot and truncate the log every this many applied slots.
    pub snapshot_every: u64,
    /// Decided slots kept behind a snapshot to serve catch-up cheaply.
    pub keep_tail: u64,
    /// Multi-Paxos: slots in flight at once.
    pub window: usize,
    /// Multi-Paxos: commands per slot at most.
    pub max_batch: usize,
    /// Multi-Paxos: a further slot starts while others are in flight only once this many
    /// commands wait. Each slot costs a round of messages and a sync on every node, so under
    /// light load one bigger batch after the slot in flight beats many small pipelined ones.
    pub pipeline_min: usize,
    /// Multi-Paxos: ask only a majority (the followers that answered first last time) to vote
    /// on each slot, so the others skip a sync per slot.
    pub thrifty: bool,
    /// Multi-Paxos: ticks to wait for thrifty voters before asking everyone.
    pub thrifty_wait: u64,
}

impl Default for Timing {
    /// Tuned for a 5 ms tick.
    fn default() -> Self {
        Timing {
            heartbeat: 10,
            election_min: 40,
            election_max: 80,
            resend: 20,
            resubmit: 100,
            client_deadline: 2000,
            basic_timeout: 40,
            backoff: 1,
            catchup: 10,
            lease: 40,
            tick_ms: 5,
            snapshot_every: 1000,
            keep_tail: 200,
            window: 16,
            max_batch: 1000,
            pipeline_min: 64,
            thrifty: true,
            thrifty_wait: 2,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// This node's index in `0..n`.
    pub me: usize,
    /// Cluster size, at most [`MAX_NODES`](super::MAX_NODES).
    pub n: usize,
    /// The configuration governing slot 0 (bit `i` = node `i`; 0: all `n` nodes). Every node of
    /// a cluster is started with the same one; later changes are in the log.
    pub members: u64,
    pub variant: Variant,
    pub bugs: Bugs,
    /// Distinct for every start of this node (request ids must not repeat across restarts).
    pub incarnation: u64,
    pub seed: u64,
    pub timing: Timing,
}
