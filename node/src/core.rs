//! The sans-I/O protocol core: one replica's acceptor, proposer and learner.
//!
//! Inputs are timer ticks, peer messages and client operations ([`Input`]); effects are collected
//! in an [`Output`]: acceptor records to make durable, peer messages and client replies. The shell
//! must make a batch's `records` (and `snapshot`) durable in batch order, and hold back each
//! effect until what [`Msg::durability`] asks for is durable: `replies` wait for earlier batches
//! (for this batch too on a one-node cluster), `free_replies` for nothing. The core never waits for the disk. It
//! reads no clock and does no I/O; time is the number of ticks it has been given, randomness a
//! seeded RNG.

use crate::kv::AppState;
use crate::protocol::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

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
}

impl Bugs {
    pub const NAMES: [&'static str; 5] = [
        "volatile-acceptor",
        "ignore-promised-value",
        "accept-below-promise",
        "local-read",
        "lease-read",
    ];

    /// Turns on the bug called `name`; the error lists the known names.
    pub fn enable(&mut self, name: &str) -> Result<(), String> {
        let flag = match name {
            "volatile-acceptor" => &mut self.volatile_acceptor,
            "ignore-promised-value" => &mut self.ignore_promised_value,
            "accept-below-promise" => &mut self.accept_below_promise,
            "local-read" => &mut self.local_read,
            "lease-read" => &mut self.lease_read,
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
    pub n: usize,
    pub variant: Variant,
    pub bugs: Bugs,
    /// Distinct for every start of this node (request ids must not repeat across restarts).
    pub incarnation: u64,
    pub seed: u64,
    pub timing: Timing,
}

pub enum Input {
    Tick,
    Peer { from: usize, msg: Msg },
    Client { tag: u64, op: Op },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum To {
    One(usize),
    /// Every peer (not this node).
    All,
}

/// One acceptor state change to make durable.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Record {
    Promise {
        ballot: Ballot,
    },
    PromiseSlot {
        slot: Slot,
        ballot: Ballot,
    },
    Accepted {
        slot: Slot,
        ballot: Ballot,
        value: Value,
    },
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AccSlot {
    pub promised: Ballot,
    pub accepted: Option<(Ballot, Value)>,
}

/// Everything durable at one moment: the applied state and the acceptor state above it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub app: Arc<AppState>,
    pub promised: Ballot,
    pub slots: Vec<(Slot, AccSlot)>,
}

/// What a restarted node finds on disk: the last snapshot and the records written after it.
#[derive(Default)]
pub struct Durable {
    pub snapshot: Option<Snapshot>,
    pub records: Vec<Record>,
}

#[derive(Default)]
pub struct Output {
    pub records: Vec<Record>,
    pub snapshot: Option<Snapshot>,
    pub msgs: Vec<(To, Msg)>,
    /// Replies that wait for every earlier batch's sync (they may count this node's own vote).
    pub replies: Vec<(u64, OpResult)>,
    /// Replies that may leave at once: their slots were decided by a peer, so the decision is
    /// durable on a majority already.
    pub free_replies: Vec<(u64, OpResult)>,
}

impl Output {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.snapshot.is_none()
            && self.msgs.is_empty()
            && self.replies.is_empty()
            && self.free_replies.is_empty()
    }
}

#[derive(Default)]
struct Acceptor {
    promised: Ballot,
    slots: BTreeMap<Slot, AccSlot>,
    /// Slots below are decided and forgotten.
    floor: Slot,
    /// Slots whose accepted value is kept in memory only: this node was not asked to vote.
    /// Losing one in a crash is as if the accept never arrived; a later vote writes it first.
    unwritten: std::collections::BTreeSet<Slot>,
}

impl Acceptor {
    fn promised_for(&self, slot: Slot) -> Ballot {
        self.slots
            .get(&slot)
            .map_or(self.promised, |a| a.promised.max(self.promised))
    }

    fn replay(&mut self, r: Record, variant: Variant) {
        match r {
            Record::Promise { ballot } => self.promised = self.promised.max(ballot),
            Record::PromiseSlot { slot, ballot } if slot >= self.floor => {
                let e = self.slots.entry(slot).or_default();
                e.promised = e.promised.max(ballot);
            }
            Record::Accepted {
                slot,
                ballot,
                value,
            } if slot >= self.floor => {
                let e = self.slots.entry(slot).or_default();
                e.accepted = Some((ballot, value));
                match variant {
                    Variant::Multi => self.promised = self.promised.max(ballot),
                    Variant::Basic => e.promised = e.promised.max(ballot),
                }
            }
            _ => {}
        }
    }
}

struct Pending {
    cmd: Command,
    tag: u64,
    since: u64,
    sent: u64,
}

struct Proposal {
    value: Value,
    acks: u64,
    sent: u64,
    /// Who was asked to vote (0: everyone).
    voters: u64,
}

enum Role {
    Follower,
    Candidate {
        from: Slot,
        promises: u64,
        accepted: BTreeMap<Slot, (Ballot, Value)>,
        log_start: Slot,
        started: u64,
    },
    Leader,
}

/// One Basic Paxos round for one slot.
struct Instance {
    slot: Slot,
    ballot: Ballot,
    cmd: Command,
    promises: u64,
    best: Option<(Ballot, Value)>,
    /// Set once phase 1 is done: the value being proposed.
    value: Option<Value>,
    acks: u64,
    started: u64,
}

const MAX_CATCHUP: usize = 256;

pub struct Core {
    cfg: Config,
    rng: SmallRng,
    now: u64,
    acc: Acceptor,
    // learner
    app: AppState,
    decided: BTreeMap<Slot, Value>,
    /// Decided slots, not yet applied, that this node decided itself (counting its own vote).
    own_decided: std::collections::BTreeSet<Slot>,
    last_snap: Arc<AppState>,
    known_commit: Slot,
    catchup_peer: usize,
    last_catchup: u64,
    /// When this node last saw itself behind without progress: (tick, applied then).
    behind_since: (u64, Slot),
    // client requests received here
    origin: u64,
    next_seq: u64,
    pending: BTreeMap<u64, Pending>,
    max_round: u64,
    // multi
    role: Role,
    my_ballot: Ballot,
    leader: Option<usize>,
    leader_ballot: Ballot,
    election_at: u64,
    next_slot: Slot,
    proposals: BTreeMap<Slot, Proposal>,
    queue: VecDeque<Command>,
    forward_buf: Vec<Command>,
    /// Thrifty accepts: the followers asked to vote (0: everyone).
    fast_voters: u64,
    /// Slots this leader decided in the current batch of inputs, not yet told to peers.
    decides_out: Vec<(Slot, Ballot)>,
    last_hb: u64,
    hb_acks: (u64, u64),
    lease_start: u64,
    // basic
    inst: Option<Instance>,
    backoff_until: u64,
    attempts: u32,
    loopback: VecDeque<Msg>,
    out: Output,
    stats: BTreeMap<&'static str, u64>,
    /// Decisions learned, in order, when tracing is on (for the simulation's safety checks).
    pub trace: Option<Vec<(Slot, Value)>>,
    /// Client tag to request id, when tracing is on (lets the simulation find ops in the log).
    pub trace_tags: Option<Vec<(u64, ReqId)>>,
}

impl Core {
    /// A node starting from what it finds on disk.
    pub fn new(cfg: Config, durable: Durable) -> Core {
        let mut acc = Acceptor::default();
        let mut app = AppState::default();
        if let Some(s) = durable.snapshot {
            app = (*s.app).clone();
            acc.promised = s.promised;
            acc.slots = s.slots.into_iter().collect();
            acc.floor = app.applied;
        }
        for r in durable.records {
            acc.replay(r, cfg.variant);
        }
        let max_round = acc
            .slots
            .values()
            .map(|a| a.promised.round)
            .chain([acc.promised.round])
            .max()
            .unwrap_or(0);
        let mut rng = SmallRng::seed_from_u64(cfg.seed ^ cfg.incarnation.rotate_left(32));
        let election_at = rng.gen_range(cfg.timing.election_min..=cfg.timing.election_max);
        let applied = app.applied;
        Core {
            origin: (cfg.incarnation << 8) | cfg.me as u64,
            rng,
            now: 0,
            last_snap: Arc::new(app.clone()),
            app,
            acc,
            decided: BTreeMap::new(),
            own_decided: Default::default(),
            known_commit: applied,
            catchup_peer: 0,
            last_catchup: 0,
            behind_since: (0, applied),
            next_seq: 0,
            pending: BTreeMap::new(),
            max_round,
            role: Role::Follower,
            my_ballot: Ballot::ZERO,
            leader: None,
            leader_ballot: Ballot::ZERO,
            election_at,
            next_slot: applied,
            proposals: BTreeMap::new(),
            queue: VecDeque::new(),
            forward_buf: Vec::new(),
            fast_voters: 0,
            decides_out: Vec::new(),
            last_hb: 0,
            hb_acks: (0, 0),
            lease_start: 0,
            inst: None,
            backoff_until: 0,
            attempts: 0,
            loopback: VecDeque::new(),
            out: Output::default(),
            stats: BTreeMap::new(),
            trace: None,
            trace_tags: None,
            cfg,
        }
    }

    /// Handles one input. Call [`Core::end_batch`] after a batch of inputs, then take the output.
    pub fn step(&mut self, input: Input) {
        match input {
            Input::Tick => {
                self.now += 1;
                self.on_tick();
            }
            Input::Peer { from, msg } => {
                if from >= self.cfg.n || from == self.cfg.me {
                    return;
                }
                self.count_msg("recv", &msg);
                self.on_msg(from, msg);
            }
            Input::Client { tag, op } => self.on_client(tag, op),
        }
        self.drain_loopback();
    }

    /// Closes a batch of inputs: cuts queued commands into proposals and flushes forwards.
    pub fn end_batch(&mut self) {
        self.propose_queued();
        if !self.forward_buf.is_empty() {
            match self.leader {
                Some(l) if l != self.cfg.me => {
                    let cmds = std::mem::take(&mut self.forward_buf);
                    self.send(l, Msg::Forward { cmds });
                }
                _ => self.forward_buf.clear(),
            }
        }
        self.drain_loopback();
        self.flush_decides();
    }

    /// Tells peers this batch's decisions: inside this batch's accept when there is one (under
    /// load there nearly always is), else as `Decide` messages.
    fn flush_decides(&mut self) {
        if self.decides_out.is_empty() {
            return;
        }
        for (slot, ballot) in std::mem::take(&mut self.decides_out) {
            let carrier = self.out.msgs.iter_mut().find_map(|(to, m)| match m {
                Msg::Accept {
                    ballot: b, decided, ..
                } if *to == To::All && *b == ballot => Some(decided),
                _ => None,
            });
            match carrier {
                Some(decided) => decided.push(slot),
                None => self.broadcast_others(Msg::Decide { slot, ballot }),
            }
        }
    }

    pub fn take_output(&mut self) -> Output {
        std::mem::take(&mut self.out)
    }

    /// The full durable state now (written by the shell at start-up, replacing the old log).
    pub fn durable_snapshot(&self) -> Snapshot {
        if self.cfg.bugs.volatile_acceptor {
            return Snapshot {
                app: self.last_snap.clone(),
                ..Snapshot::default()
            };
        }
        Snapshot {
            app: self.last_snap.clone(),
            promised: self.acc.promised,
            slots: self
                .acc
                .slots
                .range(self.last_snap.applied..)
                .map(|(s, a)| (*s, a.clone()))
                .collect(),
        }
    }

    /// Counters for the `stats` request.
    pub fn stats(&self) -> BTreeMap<String, u64> {
        let mut m: BTreeMap<String, u64> = self
            .stats
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        m.insert("applied".into(), self.app.applied);
        m.insert(
            "log_length".into(),
            (self.decided.len() + self.acc.slots.len()) as u64,
        );
        m.insert("pending".into(), self.pending.len() as u64);
        m.insert("keys".into(), self.app.kv.len() as u64);
        m.insert("ballot_round".into(), self.acc.promised.round);
        m.insert("is_leader".into(), matches!(self.role, Role::Leader) as u64);
        m
    }

    /// A one-line summary of the learner state, for debugging a simulation seed.
    pub fn debug_state(&self) -> String {
        format!("applied {} known_commit {} peer {} behind {:?} last_catchup {} now {} decided {:?} leader {:?}", self.app.applied, self.known_commit, self.catchup_peer, self.behind_since, self.last_catchup, self.now, self.decided.keys().collect::<Vec<_>>(), self.leader)
    }

    /// Whether this node is the Multi-Paxos leader (as far as it knows).
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader)
    }

    /// The state machine (for tests).
    pub fn app(&self) -> &AppState {
        &self.app
    }

    // ----- plumbing -----

    fn bump(&mut self, k: &'static str, by: u64) {
        *self.stats.entry(k).or_insert(0) += by;
    }

    fn count_msg(&mut self, dir: &str, m: &Msg) {
        let k: &'static str = match (dir, m.kind()) {
            ("sent", "prepare") => "sent.prepare",
            ("sent", "promise") => "sent.promise",
            ("sent", "accept") => "sent.accept",
            ("sent", "accepted") => "sent.accepted",
            ("sent", "nack") => "sent.nack",
            ("sent", "decide") => "sent.decide",
            ("sent", "heartbeat") => "sent.heartbeat",
            ("sent", "heartbeat_ack") => "sent.heartbeat_ack",
            ("sent", "forward") => "sent.forward",
            ("sent", "catchup_req") => "sent.catchup_req",
            ("sent", "catchup_resp") => "sent.catchup_resp",
            ("recv", "prepare") => "recv.prepare",
            ("recv", "promise") => "recv.promise",
            ("recv", "accept") => "recv.accept",
            ("recv", "accepted") => "recv.accepted",
            ("recv", "nack") => "recv.nack",
            ("recv", "decide") => "recv.decide",
            ("recv", "heartbeat") => "recv.heartbeat",
            ("recv", "heartbeat_ack") => "recv.heartbeat_ack",
            ("recv", "forward") => "recv.forward",
            ("recv", "catchup_req") => "recv.catchup_req",
            _ => "recv.catchup_resp",
        };
        self.bump(k, 1);
    }

    fn send(&mut self, to: usize, msg: Msg) {
        if to == self.cfg.me {
            self.loopback.push_back(msg);
        } else {
            self.count_msg("sent", &msg);
            self.out.msgs.push((To::One(to), msg));
        }
    }

    /// To every peer and to this node itself.
    fn broadcast(&mut self, msg: Msg) {
        self.loopback.push_back(msg.clone());
        self.broadcast_others(msg);
    }

    /// A leader's heartbeat; also restarts the count of acks that keeps its lease.
    fn send_heartbeat(&mut self) {
        self.last_hb = self.now;
        self.hb_acks = (self.now, Self::bit(self.cfg.me));
        let m = Msg::Heartbeat {
            ballot: self.my_ballot,
            commit: self.app.applied,
            sent: self.now,
        };
        self.broadcast_others(m);
    }

    fn broadcast_others(&mut self, msg: Msg) {
        for _ in 1..self.cfg.n {
            self.count_msg("sent", &msg);
        }
        if self.cfg.n > 1 {
            self.out.msgs.push((To::All, msg));
        }
    }

    fn drain_loopback(&mut self) {
        while let Some(m) = self.loopback.pop_front() {
            self.on_msg(self.cfg.me, m);
        }
    }

    fn persist(&mut self, r: Record) {
        if !self.cfg.bugs.volatile_acceptor {
            self.out.records.push(r);
        }
    }

    fn reply(&mut self, tag: u64, r: OpResult) {
        self.out.replies.push((tag, r));
    }

    fn majority(&self) -> u32 {
        (self.cfg.n / 2 + 1) as u32
    }

    fn bit(i: usize) -> u64 {
        1 << i
    }

    fn rand_election(&mut self) -> u64 {
        let t = &self.cfg.timing;
        self.now + self.rng.gen_range(t.election_min..=t.election_max)
    }

    fn note_commit(&mut self, commit: Slot, from: usize) {
        if commit > self.known_commit {
            self.known_commit = commit;
            self.catchup_peer = from;
        }
    }

    // ----- clients -----

    fn on_client(&mut self, tag: u64, op: Op) {
        if op.is_read()
            && (self.cfg.bugs.local_read || (self.cfg.bugs.lease_read && self.lease_holds()))
        {
            let r = self.app.execute(&op);
            self.bump("local_reads", 1);
            self.reply(tag, r);
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let done_below = self.pending.keys().next().copied().unwrap_or(seq);
        let id = ReqId {
            origin: self.origin,
            seq,
        };
        if let Some(t) = &mut self.trace_tags {
            t.push((tag, id));
        }
        let cmd = Command { id, done_below, op };
        self.pending.insert(
            seq,
            Pending {
                cmd: cmd.clone(),
                tag,
                since: self.now,
                sent: self.now,
            },
        );
        self.submit(cmd);
    }

    fn submit(&mut self, cmd: Command) {
        match self.cfg.variant {
            Variant::Basic => self.basic_next(),
            Variant::Multi => match self.role {
                Role::Leader | Role::Candidate { .. } => self.queue.push_back(cmd),
                Role::Follower => {
                    if self.leader.is_some() {
                        self.forward_buf.push(cmd)
                    }
                }
            },
        }
    }

    /// Submits again every pending command (`all`) or those waiting longer than `resubmit`.
    fn resubmit(&mut self, all: bool) {
        let low = self.pending.keys().next().copied().unwrap_or(0);
        let mut again = Vec::new();
        for p in self.pending.values_mut() {
            if all || self.now >= p.sent + self.cfg.timing.resubmit {
                p.sent = self.now;
                p.cmd.done_below = low;
                again.push(p.cmd.clone());
            }
        }
        if !again.is_empty() {
            self.bump("resubmits", again.len() as u64);
        }
        for c in again {
            self.submit(c);
        }
    }

    fn lease_holds(&self) -> bool {
        self.cfg.variant == Variant::Multi
            && matches!(self.role, Role::Leader)
            && self.lease_start > 0
            && self.now < self.lease_start + self.cfg.timing.lease
    }

    // ----- timers -----

    fn on_tick(&mut self) {
        let deadline = self.cfg.timing.client_deadline;
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| self.now >= p.since + deadline)
            .map(|(s, _)| *s)
            .collect();
        for s in expired {
            let p = self.pending.remove(&s).expect("listed above");
            self.reply(p.tag, OpResult::Error(0, "not decided in time".into()));
        }
        // Gaps normally fill by themselves (decisions in flight); ask a peer only when this
        // node has been behind without progress for a while.
        if self.behind_since.1 != self.app.applied || self.known_commit <= self.app.applied {
            self.behind_since = (self.now, self.app.applied);
        } else if self.cfg.n > 1
            && self.now >= self.behind_since.0 + self.cfg.timing.catchup
            && self.now >= self.last_catchup + self.cfg.timing.catchup
        {
            self.last_catchup = self.now;
            if self.catchup_peer == self.cfg.me {
                self.catchup_peer = (self.catchup_peer + 1) % self.cfg.n;
            }
            let from = self.app.applied;
            self.send(self.catchup_peer, Msg::CatchupReq { from });
            // If that does not help, the next attempt asks another peer: the one that told us
            // about the commit may be stuck itself.
            self.catchup_peer = (self.catchup_peer + 1) % self.cfg.n;
        }
        match self.cfg.variant {
            Variant::Multi => self.multi_tick(),
            Variant::Basic => self.basic_tick(),
        }
    }

    fn multi_tick(&mut self) {
        match &self.role {
            Role::Leader => {
                if self.now >= self.last_hb + self.cfg.timing.heartbeat {
                    self.send_heartbeat();
                }
                let resend = self.cfg.timing.resend;
                let thrifty_wait = self.cfg.timing.thrifty_wait;
                let mut again = Vec::new();
                for (s, p) in self.proposals.iter_mut() {
                    let stuck_voter = p.voters != 0 && self.now >= p.sent + thrifty_wait;
                    if stuck_voter || self.now >= p.sent + resend {
                        p.sent = self.now;
                        p.voters = 0;
                        again.push((*s, p.value.clone(), p.acks));
                    }
                }
                if !again.is_empty() {
                    // A voter is slow or gone: everyone votes until a slot decides again.
                    self.fast_voters = 0;
                }
                for (slot, value, acks) in again {
                    self.bump("accept_resends", 1);
                    for peer in 0..self.cfg.n {
                        if acks & Self::bit(peer) == 0 {
                            let m = Msg::Accept {
                                ballot: self.my_ballot,
                                slot,
                                value: value.clone(),
                                commit: self.app.applied,
                                decided: Vec::new(),
                                voters: 0,
                            };
                            self.send(peer, m);
                        }
                    }
                }
            }
            Role::Candidate { started, .. } => {
                if self.now >= started + self.cfg.timing.election_max {
                    self.start_election();
                }
            }
            Role::Follower => {
                if self.now >= self.election_at {
                    self.start_election();
                }
            }
        }
        self.resubmit(false);
    }

    fn basic_tick(&mut self) {
        if let Some(i) = &self.inst {
            if self.now >= i.started + self.cfg.timing.basic_timeout {
                self.basic_abort(true);
            }
        }
        if self.now >= self.last_hb + 2 * self.cfg.timing.heartbeat {
            self.last_hb = self.now;
            let m = Msg::Heartbeat {
                ballot: Ballot::ZERO,
                commit: self.app.applied,
                sent: self.now,
            };
            self.broadcast_others(m);
        }
        self.basic_next();
    }

    // ----- messages -----

    fn on_msg(&mut self, from: usize, msg: Msg) {
        match msg {
            Msg::Prepare { ballot, scope } => self.on_prepare(from, ballot, scope),
            Msg::Promise {
                ballot,
                accepted,
                log_start,
                commit,
            } => {
                self.note_commit(commit, from);
                self.on_promise(from, ballot, accepted, log_start);
            }
            Msg::Accept {
                ballot,
                slot,
                value,
                commit,
                decided,
                voters,
            } => {
                self.note_commit(commit, from);
                let vote = voters == 0 || voters & Self::bit(self.cfg.me) != 0;
                self.on_accept(from, ballot, slot, value, vote);
                for s in decided {
                    self.on_decide(from, s, ballot);
                }
            }
            Msg::Accepted { ballot, slot } => self.on_accepted(from, ballot, slot),
            Msg::Nack {
                ballot,
                promised,
                log_start,
                commit,
            } => {
                self.note_commit(commit, from);
                self.on_nack(ballot, promised, log_start);
            }
            Msg::Decide { slot, ballot } => self.on_decide(from, slot, ballot),
            Msg::Heartbeat {
                ballot,
                commit,
                sent,
            } => self.on_heartbeat(from, ballot, commit, sent),
            Msg::HeartbeatAck { ballot, sent } => self.on_hb_ack(from, ballot, sent),
            Msg::Forward { cmds } => {
                if matches!(self.role, Role::Leader | Role::Candidate { .. }) {
                    self.queue.extend(cmds);
                }
            }
            Msg::CatchupReq { from: slot } => self.serve_catchup(from, slot),
            Msg::CatchupResp { snapshot, entries } => self.on_catchup(from, snapshot, entries),
        }
    }

    fn nack(&mut self, to: usize, ballot: Ballot, promised: Ballot) {
        let m = Msg::Nack {
            ballot,
            promised,
            log_start: self.acc.floor,
            commit: self.app.applied,
        };
        self.send(to, m);
    }

    // ----- acceptor -----

    fn on_prepare(&mut self, from: usize, ballot: Ballot, scope: Scope) {
        self.max_round = self.max_round.max(ballot.round);
        let accepted = match scope {
            Scope::Slot(s) => {
                let p = self.acc.promised_for(s);
                if s < self.acc.floor || ballot < p {
                    return self.nack(from, ballot, p);
                }
                let e = self.acc.slots.entry(s).or_default();
                if e.promised != ballot {
                    e.promised = ballot;
                    self.persist(Record::PromiseSlot { slot: s, ballot });
                }
                let e = &self.acc.slots[&s];
                e.accepted.iter().map(|(b, v)| (s, *b, v.clone())).collect()
            }
            Scope::From(s) => {
                let top = self
                    .acc
                    .slots
                    .range(s..)
                    .map(|(_, a)| a.promised)
                    .max()
                    .unwrap_or(Ballot::ZERO)
                    .max(self.acc.promised);
                if ballot < top {
                    return self.nack(from, ballot, top);
                }
                if self.acc.promised != ballot {
                    self.acc.promised = ballot;
                    self.persist(Record::Promise { ballot });
                }
                self.acc
                    .slots
                    .range(s.max(self.acc.floor)..)
                    .filter_map(|(s, a)| a.accepted.as_ref().map(|(b, v)| (*s, *b, v.clone())))
                    .collect()
            }
        };
        let m = Msg::Promise {
            ballot,
            accepted,
            log_start: self.acc.floor,
            commit: self.app.applied,
        };
        self.send(from, m);
        if self.cfg.variant == Variant::Multi && from != self.cfg.me {
            if ballot > self.my_ballot && !matches!(self.role, Role::Follower) {
                self.step_down();
            }
            self.election_at = self.rand_election();
        }
    }

    /// `vote`: answer with `accepted`. A thrifty leader asks only a majority to vote; the others
    /// keep the value (to learn the decision from) without a sync or an answer.
    fn on_accept(&mut self, from: usize, ballot: Ballot, slot: Slot, value: Value, vote: bool) {
        self.max_round = self.max_round.max(ballot.round);
        let p = self.acc.promised_for(slot);
        if slot < self.acc.floor || (ballot < p && !self.cfg.bugs.accept_below_promise) {
            return self.nack(from, ballot, p);
        }
        let multi = self.cfg.variant == Variant::Multi;
        let e = self.acc.slots.entry(slot).or_default();
        if multi {
            self.acc.promised = self.acc.promised.max(ballot);
        } else {
            e.promised = e.promised.max(ballot);
        }
        if e.accepted.as_ref().map(|(b, _)| *b) != Some(ballot) {
            e.accepted = Some((ballot, value));
            self.acc.unwritten.insert(slot);
        }
        if vote {
            if self.acc.unwritten.remove(&slot) {
                let value = self.acc.slots[&slot]
                    .accepted
                    .as_ref()
                    .expect("set above")
                    .1
                    .clone();
                self.persist(Record::Accepted {
                    slot,
                    ballot,
                    value,
                });
            }
            self.send(from, Msg::Accepted { ballot, slot });
        }
        if multi && from != self.cfg.me {
            self.follow(ballot);
        }
    }

    // ----- multi-paxos leadership -----

    /// Hearing from a leader with `ballot`: follow it and hold off elections.
    fn follow(&mut self, ballot: Ballot) {
        if ballot < self.leader_ballot {
            return;
        }
        let node = ballot.node as usize;
        let changed = ballot > self.leader_ballot;
        self.leader_ballot = ballot;
        self.election_at = self.rand_election();
        if changed {
            if ballot > self.my_ballot && !matches!(self.role, Role::Follower) {
                self.step_down();
            }
            if node != self.cfg.me {
                self.leader = Some(node);
                self.resubmit(true);
            }
        }
    }

    fn step_down(&mut self) {
        self.role = Role::Follower;
        self.proposals.clear();
        self.queue.clear();
        self.lease_start = 0;
        if self.leader == Some(self.cfg.me) {
            self.leader = None;
        }
        self.bump("step_downs", 1);
    }

    fn start_election(&mut self) {
        self.max_round = self
            .max_round
            .max(self.acc.promised.round)
            .max(self.leader_ballot.round)
            + 1;
        self.my_ballot = Ballot {
            round: self.max_round,
            node: self.cfg.me as u32,
        };
        let from = self.app.applied;
        self.role = Role::Candidate {
            from,
            promises: 0,
            accepted: BTreeMap::new(),
            log_start: 0,
            started: self.now,
        };
        self.proposals.clear();
        self.bump("phase1_rounds", 1);
        self.election_at = self.rand_election();
        self.broadcast(Msg::Prepare {
            ballot: self.my_ballot,
            scope: Scope::From(from),
        });
    }

    fn on_promise(
        &mut self,
        from: usize,
        ballot: Ballot,
        accepted: Vec<(Slot, Ballot, Value)>,
        log_start: Slot,
    ) {
        if self.cfg.variant == Variant::Basic {
            return self.basic_promise(from, ballot, accepted, log_start);
        }
        let maj = self.majority();
        let Role::Candidate {
            promises,
            accepted: acc,
            log_start: ls,
            ..
        } = &mut self.role
        else {
            return;
        };
        if ballot != self.my_ballot {
            return;
        }
        *promises |= Self::bit(from);
        *ls = (*ls).max(log_start);
        for (s, b, v) in accepted {
            if acc.get(&s).is_none_or(|(b0, _)| b > *b0) {
                acc.insert(s, (b, v));
            }
        }
        if promises.count_ones() >= maj {
            self.become_leader();
        }
    }

    fn become_leader(&mut self) {
        let Role::Candidate {
            from,
            accepted,
            log_start,
            ..
        } = std::mem::replace(&mut self.role, Role::Leader)
        else {
            return;
        };
        self.bump("leader_changes", 1);
        self.leader = Some(self.cfg.me);
        self.fast_voters = 0;
        self.leader_ballot = self.my_ballot;
        let start = from.max(log_start);
        let top_decided = self.decided.keys().next_back().map_or(0, |s| s + 1);
        let top_accepted = accepted.keys().next_back().map_or(0, |s| s + 1);
        for s in start..top_accepted {
            if s < self.app.applied || self.decided.contains_key(&s) {
                continue;
            }
            let found = accepted.get(&s).map(|(_, v)| v.clone());
            let value = match found {
                Some(v) if !self.cfg.bugs.ignore_promised_value => v,
                _ => self.take_batch(),
            };
            self.propose(s, value);
        }
        self.next_slot = start
            .max(self.app.applied)
            .max(top_decided)
            .max(top_accepted);
        self.send_heartbeat();
        let mine: Vec<Command> = self.pending.values().map(|p| p.cmd.clone()).collect();
        self.queue.extend(mine);
    }

    fn take_batch(&mut self) -> Value {
        let k = self.queue.len().min(self.cfg.timing.max_batch);
        let batch: Vec<Command> = self
            .queue
            .drain(..k)
            .filter(|c| !self.app.is_done(c.id.origin, c.id.seq))
            .collect();
        Arc::new(batch)
    }

    fn propose(&mut self, slot: Slot, value: Value) {
        self.bump("proposals", 1);
        let voters = match self.fast_voters {
            0 => 0,
            f => f | Self::bit(self.cfg.me),
        };
        self.proposals.insert(
            slot,
            Proposal {
                value: value.clone(),
                acks: 0,
                sent: self.now,
                voters,
            },
        );
        self.broadcast(Msg::Accept {
            ballot: self.my_ballot,
            slot,
            value,
            commit: self.app.applied,
            decided: Vec::new(),
            voters,
        });
    }

    fn propose_queued(&mut self) {
        if !matches!(self.role, Role::Leader) {
            return;
        }
        while !self.queue.is_empty() && self.proposals.len() < self.cfg.timing.window {
            if !self.proposals.is_empty() && self.queue.len() < self.cfg.timing.pipeline_min {
                break;
            }
            let value = self.take_batch();
            if value.is_empty() {
                continue;
            }
            let slot = self.next_slot;
            self.next_slot += 1;
            self.propose(slot, value);
            self.drain_loopback();
        }
    }

    fn on_accepted(&mut self, from: usize, ballot: Ballot, slot: Slot) {
        if self.cfg.variant == Variant::Basic {
            return self.basic_accepted(from, ballot, slot);
        }
        if !matches!(self.role, Role::Leader) || ballot != self.my_ballot {
            return;
        }
        let maj = self.majority();
        let Some(p) = self.proposals.get_mut(&slot) else {
            return;
        };
        p.acks |= Self::bit(from);
        if p.acks.count_ones() >= maj {
            let p = self.proposals.remove(&slot).expect("present");
            if self.cfg.timing.thrifty {
                // The followers that answered first are asked alone next time.
                self.fast_voters = p.acks & !Self::bit(self.cfg.me);
            }
            self.own_decided.insert(slot);
            self.learn(slot, p.value);
            self.decides_out.push((slot, ballot));
        }
    }

    fn on_nack(&mut self, ballot: Ballot, promised: Ballot, log_start: Slot) {
        self.max_round = self.max_round.max(promised.round);
        match self.cfg.variant {
            Variant::Multi => {
                if ballot == self.my_ballot
                    && promised > self.my_ballot
                    && !matches!(self.role, Role::Follower)
                {
                    self.step_down();
                    self.election_at = self.rand_election();
                }
            }
            Variant::Basic => {
                let Some(i) = &self.inst else { return };
                if i.ballot != ballot {
                    return;
                }
                if promised > ballot {
                    self.basic_abort(true);
                } else if log_start > i.slot {
                    self.basic_abort(false);
                }
            }
        }
    }

    fn on_heartbeat(&mut self, from: usize, ballot: Ballot, commit: Slot, sent: u64) {
        self.note_commit(commit, from);
        if self.cfg.variant == Variant::Basic {
            return;
        }
        if ballot >= self.acc.promised {
            self.follow(ballot);
            self.send(from, Msg::HeartbeatAck { ballot, sent });
        } else {
            self.nack(from, ballot, self.acc.promised);
        }
    }

    fn on_hb_ack(&mut self, from: usize, ballot: Ballot, sent: u64) {
        if !matches!(self.role, Role::Leader) || ballot != self.my_ballot || sent != self.hb_acks.0
        {
            return;
        }
        self.hb_acks.1 |= Self::bit(from);
        if self.hb_acks.1.count_ones() >= self.majority() {
            self.lease_start = self.lease_start.max(sent);
        }
    }

    // ----- basic paxos -----

    fn basic_next(&mut self) {
        if self.inst.is_some() || self.now < self.backoff_until {
            return;
        }
        let Some(p) = self.pending.values().next() else {
            return;
        };
        let mut cmd = p.cmd.clone();
        cmd.done_below = cmd.id.seq;
        let mut slot = self.app.applied;
        while self.decided.contains_key(&slot) {
            slot += 1;
        }
        self.max_round += 1;
        let ballot = Ballot {
            round: self.max_round,
            node: self.cfg.me as u32,
        };
        self.inst = Some(Instance {
            slot,
            ballot,
            cmd,
            promises: 0,
            best: None,
            value: None,
            acks: 0,
            started: self.now,
        });
        self.bump("phase1_rounds", 1);
        self.bump("proposals", 1);
        self.broadcast(Msg::Prepare {
            ballot,
            scope: Scope::Slot(slot),
        });
    }

    fn basic_abort(&mut self, backoff: bool) {
        self.inst = None;
        if backoff {
            self.attempts = (self.attempts + 1).min(6);
            let max = self.cfg.timing.backoff << self.attempts;
            self.backoff_until = self.now + self.rng.gen_range(0..=max);
            self.bump("basic_backoffs", 1);
        } else {
            self.basic_next();
        }
    }

    fn basic_promise(
        &mut self,
        from: usize,
        ballot: Ballot,
        accepted: Vec<(Slot, Ballot, Value)>,
        log_start: Slot,
    ) {
        let maj = self.majority();
        let Some(i) = &mut self.inst else { return };
        if i.ballot != ballot || i.value.is_some() {
            return;
        }
        if log_start > i.slot {
            return self.basic_abort(false);
        }
        i.promises |= Self::bit(from);
        for (s, b, v) in accepted {
            if s == i.slot && i.best.as_ref().is_none_or(|(b0, _)| b > *b0) {
                i.best = Some((b, v));
            }
        }
        if i.promises.count_ones() < maj {
            return;
        }
        let value = match &i.best {
            Some((_, v)) if !self.cfg.bugs.ignore_promised_value => v.clone(),
            _ => Arc::new(vec![i.cmd.clone()]),
        };
        i.value = Some(value.clone());
        let m = Msg::Accept {
            ballot,
            slot: i.slot,
            value,
            commit: self.app.applied,
            decided: Vec::new(),
            voters: 0,
        };
        self.broadcast(m);
    }

    fn basic_accepted(&mut self, from: usize, ballot: Ballot, slot: Slot) {
        let maj = self.majority();
        let Some(i) = &mut self.inst else { return };
        if i.ballot != ballot || i.slot != slot || i.value.is_none() {
            return;
        }
        i.acks |= Self::bit(from);
        if i.acks.count_ones() < maj {
            return;
        }
        let value = i.value.clone().expect("checked");
        self.inst = None;
        self.attempts = 0;
        self.own_decided.insert(slot);
        self.learn(slot, value);
        self.broadcast_others(Msg::Decide { slot, ballot });
        self.basic_next();
    }

    // ----- learner -----

    fn on_decide(&mut self, from: usize, slot: Slot, ballot: Ballot) {
        if slot < self.app.applied || self.decided.contains_key(&slot) {
            return;
        }
        let known = self
            .acc
            .slots
            .get(&slot)
            .and_then(|a| a.accepted.as_ref())
            .filter(|(b, _)| *b == ballot)
            .map(|(_, v)| v.clone());
        match known {
            Some(v) => self.learn(slot, v),
            None => self.note_commit(slot + 1, from),
        }
    }

    fn learn(&mut self, slot: Slot, value: Value) {
        if slot < self.app.applied || self.decided.contains_key(&slot) {
            return;
        }
        if let Some(t) = &mut self.trace {
            t.push((slot, value.clone()));
        }
        self.decided.insert(slot, value);
        // A decision past a gap means this node is behind: the gap is decided somewhere.
        self.known_commit = self.known_commit.max(slot + 1);
        self.proposals.remove(&slot);
        if self.inst.as_ref().is_some_and(|i| i.slot == slot) {
            self.inst = None;
        }
        self.apply_ready();
    }

    fn apply_ready(&mut self) {
        while let Some(v) = self.decided.get(&self.app.applied).cloned() {
            let own = self.own_decided.remove(&self.app.applied);
            for cmd in v.iter() {
                let Some(res) = self.app.apply(cmd) else {
                    continue;
                };
                if cmd.id.origin == self.origin {
                    if let Some(p) = self.pending.remove(&cmd.id.seq) {
                        if own {
                            self.reply(p.tag, res);
                        } else {
                            self.out.free_replies.push((p.tag, res));
                        }
                    }
                }
            }
            self.app.applied += 1;
            self.bump("slots_applied", 1);
            self.bump("commands_applied", v.len() as u64);
        }
        self.known_commit = self.known_commit.max(self.app.applied);
        if self.app.applied >= self.last_snap.applied + self.cfg.timing.snapshot_every {
            self.take_snapshot();
        }
    }

    fn take_snapshot(&mut self) {
        let a = self.app.applied;
        self.last_snap = Arc::new(self.app.clone());
        self.acc.slots = self.acc.slots.split_off(&a);
        self.acc.unwritten = self.acc.unwritten.split_off(&a);
        self.acc.floor = self.acc.floor.max(a);
        self.decided = self
            .decided
            .split_off(&a.saturating_sub(self.cfg.timing.keep_tail));
        self.out.snapshot = Some(self.durable_snapshot());
        self.bump("snapshots", 1);
    }

    /// Answers with the snapshot if `from` is behind it, and every decided slot known from
    /// there on, applied or not (a peer may hold a slot this node lacks and vice versa).
    fn serve_catchup(&mut self, to: usize, from: Slot) {
        let first_kept = self
            .decided
            .keys()
            .next()
            .copied()
            .unwrap_or(self.app.applied);
        let (snapshot, start) = if from < first_kept && self.last_snap.applied > from {
            (Some(self.last_snap.clone()), self.last_snap.applied)
        } else {
            (None, from)
        };
        let entries: Vec<(Slot, Value)> = self
            .decided
            .range(start..)
            .take(MAX_CATCHUP)
            .map(|(s, v)| (*s, v.clone()))
            .collect();
        if snapshot.is_none() && entries.is_empty() {
            return;
        }
        self.send(to, Msg::CatchupResp { snapshot, entries });
    }

    fn on_catchup(
        &mut self,
        from: usize,
        snapshot: Option<Arc<AppState>>,
        entries: Vec<(Slot, Value)>,
    ) {
        let before = self.app.applied;
        if let Some(s) = snapshot {
            if s.applied > self.app.applied {
                self.install(s);
            }
        }
        for (slot, v) in entries {
            self.learn(slot, v);
        }
        if self.app.applied > before && self.app.applied < self.known_commit {
            self.last_catchup = self.now;
            let from_slot = self.app.applied;
            self.send(from, Msg::CatchupReq { from: from_slot });
        }
    }

    fn install(&mut self, s: Arc<AppState>) {
        self.bump("snapshots_installed", 1);
        self.app = (*s).clone();
        let a = s.applied;
        self.decided = self.decided.split_off(&a);
        self.own_decided = self.own_decided.split_off(&a);
        self.acc.slots = self.acc.slots.split_off(&a);
        self.acc.unwritten = self.acc.unwritten.split_off(&a);
        self.acc.floor = self.acc.floor.max(a);
        self.last_snap = s;
        let done: Vec<u64> = self
            .pending
            .keys()
            .copied()
            .filter(|seq| self.app.is_done(self.origin, *seq))
            .collect();
        for seq in done {
            let p = self.pending.remove(&seq).expect("listed");
            let r = match p.cmd.op {
                Op::Write { .. } => OpResult::Write,
                _ => OpResult::Error(0, "applied, result lost in catch-up".into()),
            };
            self.reply(p.tag, r);
        }
        if self.inst.as_ref().is_some_and(|i| i.slot < a) {
            self.inst = None;
        }
        self.proposals = self.proposals.split_off(&a);
        self.next_slot = self.next_slot.max(a);
        self.apply_ready();
        self.out.snapshot = Some(self.durable_snapshot());
    }
}
