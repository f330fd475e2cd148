//! The sans-I/O protocol core: one replica's acceptor, proposer and learner.
//!
//! Inputs are timer ticks, peer messages and client operations ([`Input`]), given in batches:
//! [`Core::step`] for each input, then [`Core::end_batch`]. [`Core::ready`] then hands out the
//! batch's effects sorted by what must be durable before they may leave, and the driver tells
//! the core with [`Core::on_persisted`] when a batch is durable (see [`ready`] for the rule).
//! The core never waits for the disk. It reads no clock and does no I/O; time is the number of
//! ticks it has been given, randomness a seeded RNG.
//!
//! Files by role: `acceptor` (promises and votes), `learner` (decisions, applying, snapshots,
//! catch-up), `clients` (requests received here), `proposer` (the variant, chosen once) over
//! `basic` and `multi`, `quorum` (node sets, [`MAX_NODES`]), `membership` (which nodes vote on
//! which slot, α: [`alpha`]), `config`, [`ready`] (what waits
//! for the disk). Every file but `ready` and `config` works on the private `Node` (all the
//! replica's state but the proposer) or on its own proposer.

mod acceptor;
mod basic;
mod clients;
mod config;
mod learner;
mod membership;
mod multi;
mod proposer;
mod quorum;
pub mod ready;

pub use config::{Bugs, Config, Timing, Variant};
pub use membership::alpha;
pub use quorum::MAX_NODES;
pub use ready::{DiskBatch, Effects, Ready, To};

use crate::durable::{Durable, Snapshot};
use crate::kv::{AppState, Op, OpResult, ReqId};
use crate::protocol::{Ballot, Msg, Slot, Value};
use acceptor::Acceptor;
use basic::BasicProposer;
use clients::Clients;
use learner::Learner;
use multi::MultiProposer;
use proposer::Proposer;
use quorum::Votes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ready::Outbox;
use std::collections::BTreeMap;
use std::sync::Arc;

pub enum Input {
    Tick,
    Peer { from: usize, msg: Msg },
    Client { tag: u64, op: Op },
}

/// Sees what the core does, for tests: the simulation checks decisions and finds client
/// operations in the log with it.
pub trait Observer: Send {
    /// A decision learned (once per slot per incarnation).
    fn learned(&mut self, _slot: Slot, _value: &Value) {}
    /// The request id given to the client request with `tag`.
    fn request(&mut self, _tag: u64, _id: ReqId) {}
}

pub struct Core {
    node: Node,
    proposer: Proposer,
}

/// Everything but the proposer: what both variants' proposers work with.
struct Node {
    cfg: Config,
    rng: SmallRng,
    now: u64,
    /// The wall clock in ms since the epoch, as the shell last read it (0: never); read only by
    /// the seeded `clock-lease` bug.
    wall_ms: u64,
    /// The highest round seen: a new ballot goes above it.
    max_round: u64,
    acc: Acceptor,
    learner: Learner,
    clients: Clients,
    out: Outbox,
    counters: BTreeMap<&'static str, u64>,
    observer: Option<Box<dyn Observer>>,
}

impl Core {
    /// A node starting from what it finds on disk. `cfg.n` must be at most [`MAX_NODES`].
    pub fn new(cfg: Config, durable: Durable) -> Core {
        assert!(cfg.n <= MAX_NODES, "{} nodes, at most {MAX_NODES}", cfg.n);
        let mut acc = Acceptor {
            promises: cfg.variant.into(),
            ..Acceptor::default()
        };
        let mut app = AppState::default();
        if let Some(s) = durable.snapshot {
            app = (*s.app).clone();
            acc.promised = s.promised;
            acc.slots = s.slots.into_iter().collect();
            acc.floor = app.applied;
        }
        for r in durable.records {
            acc.replay(r);
        }
        let mut rng = SmallRng::seed_from_u64(cfg.seed ^ cfg.incarnation.rotate_left(32));
        // Drawn for both variants: a seed's whole run depends on the RNG's sequence.
        let election_at = rng.gen_range(cfg.timing.election_min..=cfg.timing.election_max);
        let proposer = match cfg.variant {
            Variant::Basic => Proposer::Basic(BasicProposer::default()),
            Variant::Multi => Proposer::Multi(MultiProposer::new(election_at, app.applied)),
        };
        let node = Node {
            rng,
            now: 0,
            wall_ms: 0,
            max_round: acc.max_round(),
            acc,
            learner: Learner::new(app),
            clients: Clients::new(cfg.incarnation, cfg.me),
            out: Outbox::default(),
            counters: BTreeMap::new(),
            observer: None,
            cfg,
        };
        Core { node, proposer }
    }

    /// Shows `o` what the core does from now on.
    pub fn observe(&mut self, o: Box<dyn Observer>) {
        self.node.observer = Some(o);
    }

    /// The wall clock now, in ms since the epoch (the shell reads it before each batch).
    pub fn set_wall_ms(&mut self, ms: u64) {
        self.node.wall_ms = ms;
    }

    /// Handles one input. Call [`Core::end_batch`] after a batch of inputs.
    pub fn step(&mut self, input: Input) {
        match input {
            Input::Tick => {
                self.node.now += 1;
                self.node.expire_requests();
                self.node.catchup_tick();
                self.proposer.on_tick(&mut self.node);
            }
            Input::Peer { from, msg } => {
                if from >= self.node.cfg.n || from == self.node.cfg.me {
                    return;
                }
                self.node.count_msg(Dir::Recv, &msg);
                self.on_msg(from, msg);
            }
            Input::Client { tag, op } => self.on_client(tag, op),
        }
        self.drain_loopback();
    }

    /// Closes a batch of inputs: cuts queued commands into proposals, flushes forwards, and
    /// folds this batch's decisions into its accepts. Then take the effects with [`Core::ready`].
    pub fn end_batch(&mut self) {
        while self.proposer.propose_next(&mut self.node) {
            self.drain_loopback();
        }
        self.proposer.flush_forwards(&mut self.node);
        self.drain_loopback();
        self.proposer.flush_decides(&mut self.node);
    }

    /// The closed batch's effects, sorted by what they wait for (see [`ready`]).
    pub fn ready(&mut self) -> Ready {
        self.node.out.ready(self.node.cfg.n)
    }

    /// Every disk batch up to `number` is durable.
    pub fn on_persisted(&mut self, number: u64) {
        self.node.out.on_persisted(number);
    }

    /// The full durable state now (written by the shell at start-up, replacing the old log).
    pub fn durable_snapshot(&self) -> Snapshot {
        self.node.durable_snapshot()
    }

    /// Counters for the `stats` request.
    pub fn stats(&self) -> BTreeMap<String, u64> {
        let n = &self.node;
        let mut m: BTreeMap<String, u64> = n
            .counters
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        m.insert("applied".into(), n.learner.app.applied);
        m.insert(
            "log_length".into(),
            (n.learner.decided.len() + n.acc.slots.len()) as u64,
        );
        m.insert("pending".into(), n.clients.pending.len() as u64);
        m.insert("keys".into(), n.learner.app.kv.len() as u64);
        m.insert("ballot_round".into(), n.acc.promised.round);
        m.insert("is_leader".into(), self.is_leader() as u64);
        m.insert("is_member".into(), n.is_member() as u64);
        m.insert("members".into(), n.members_now().bits());
        m.insert("config_changes".into(), n.learner.app.changes.len() as u64);
        m
    }

    /// A one-line summary of the learner state, for debugging a simulation seed.
    pub fn debug_state(&self) -> String {
        let l = &self.node.learner;
        format!(
            "applied {} known_commit {} peer {} behind {:?} last_catchup {} now {} decided {:?} leader {:?}",
            l.app.applied,
            l.known_commit,
            l.catchup_peer,
            l.behind_since,
            l.last_catchup,
            self.node.now,
            l.decided.keys().collect::<Vec<_>>(),
            self.proposer.leader()
        )
    }

    /// Whether this node is the Multi-Paxos leader (as far as it knows).
    pub fn is_leader(&self) -> bool {
        self.proposer.is_leader()
    }

    /// The state machine (for tests).
    pub fn app(&self) -> &AppState {
        &self.node.learner.app
    }

    fn on_client(&mut self, tag: u64, op: Op) {
        if let Op::Reconfigure { members } = op {
            if !self.node.valid_members(members) {
                let r = OpResult::Error(12, format!("bad configuration {members:#b}"));
                self.node.out.replies.push((tag, r));
                return;
            }
        }
        if proposer::reads_locally(&self.proposer, &self.node, &op) {
            let r = self.node.learner.app.execute(&op);
            self.node.bump("local_reads", 1);
            self.node.out.replies.push((tag, r));
            return;
        }
        let cmd = self.node.new_request(tag, op);
        self.proposer.submit(&mut self.node, cmd);
    }

    fn on_msg(&mut self, from: usize, msg: Msg) {
        let (n, p) = (&mut self.node, &mut self.proposer);
        match msg {
            Msg::Prepare { ballot, scope } => {
                if n.on_prepare(from, ballot, scope) {
                    p.promised(n, from, ballot);
                }
            }
            Msg::Promise {
                ballot,
                accepted,
                log_start,
                commit,
            } => {
                n.note_commit(commit, from);
                p.on_promise(n, from, ballot, accepted, log_start);
            }
            Msg::Accept {
                ballot,
                slot,
                value,
                commit,
                decided,
                voters,
            } => {
                n.note_commit(commit, from);
                if n.on_accept(from, ballot, slot, value, Votes::from_bits(voters)) {
                    p.accepted_from(n, from, ballot);
                }
                for s in decided {
                    self.on_decide(from, s, ballot);
                }
            }
            Msg::Accepted { ballot, slot } => p.on_accepted(n, from, ballot, slot),
            Msg::Nack {
                ballot,
                promised,
                log_start,
                commit,
            } => {
                n.note_commit(commit, from);
                n.max_round = n.max_round.max(promised.round);
                p.on_nack(n, ballot, promised, log_start);
            }
            Msg::Decide { slot, ballot } => self.on_decide(from, slot, ballot),
            Msg::Heartbeat {
                ballot,
                commit,
                sent,
            } => {
                n.note_commit(commit, from);
                p.on_heartbeat(n, from, ballot, sent);
            }
            Msg::HeartbeatAck { ballot, sent } => p.on_hb_ack(n, from, ballot, sent),
            Msg::Forward { cmds } => p.on_forward(cmds),
            Msg::CatchupReq { from: slot } => n.serve_catchup(from, slot),
            Msg::CatchupResp { snapshot, entries } => self.on_catchup(from, snapshot, entries),
        }
    }

    fn on_decide(&mut self, from: usize, slot: Slot, ballot: Ballot) {
        if self.node.on_decide(from, slot, ballot) {
            self.proposer.forget(slot);
        }
    }

    fn on_catchup(
        &mut self,
        from: usize,
        snapshot: Option<Arc<AppState>>,
        entries: Vec<(Slot, Value)>,
    ) {
        let before = self.node.learner.app.applied;
        if let Some(s) = snapshot {
            if s.applied > before {
                let a = s.applied;
                self.node.install(s);
                self.proposer.forget_below(a);
            }
        }
        for (slot, v) in entries {
            if self.node.learn(slot, v) {
                self.proposer.forget(slot);
            }
        }
        self.node.catch_up_more(from, before);
    }

    fn drain_loopback(&mut self) {
        while let Some(m) = self.node.out.loopback.pop_front() {
            self.on_msg(self.node.cfg.me, m);
        }
    }
}

#[derive(Clone, Copy)]
enum Dir {
    Sent,
    Recv,
}

impl Node {
    fn bump(&mut self, k: &'static str, by: u64) {
        *self.counters.entry(k).or_insert(0) += by;
    }

    fn count_msg(&mut self, dir: Dir, m: &Msg) {
        let k: &'static str = match (dir, m.kind()) {
            (Dir::Sent, "prepare") => "sent.prepare",
            (Dir::Sent, "promise") => "sent.promise",
            (Dir::Sent, "accept") => "sent.accept",
            (Dir::Sent, "accepted") => "sent.accepted",
            (Dir::Sent, "nack") => "sent.nack",
            (Dir::Sent, "decide") => "sent.decide",
            (Dir::Sent, "heartbeat") => "sent.heartbeat",
            (Dir::Sent, "heartbeat_ack") => "sent.heartbeat_ack",
            (Dir::Sent, "forward") => "sent.forward",
            (Dir::Sent, "catchup_req") => "sent.catchup_req",
            (Dir::Sent, _) => "sent.catchup_resp",
            (Dir::Recv, "prepare") => "recv.prepare",
            (Dir::Recv, "promise") => "recv.promise",
            (Dir::Recv, "accept") => "recv.accept",
            (Dir::Recv, "accepted") => "recv.accepted",
            (Dir::Recv, "nack") => "recv.nack",
            (Dir::Recv, "decide") => "recv.decide",
            (Dir::Recv, "heartbeat") => "recv.heartbeat",
            (Dir::Recv, "heartbeat_ack") => "recv.heartbeat_ack",
            (Dir::Recv, "forward") => "recv.forward",
            (Dir::Recv, "catchup_req") => "recv.catchup_req",
            (Dir::Recv, _) => "recv.catchup_resp",
        };
        self.bump(k, 1);
    }

    fn send(&mut self, to: usize, msg: Msg) {
        if to == self.cfg.me {
            self.out.loopback.push_back(msg);
        } else {
            self.count_msg(Dir::Sent, &msg);
            self.out.msgs.push((To::One(to), msg));
        }
    }

    /// To every peer and to this node itself.
    fn broadcast(&mut self, msg: Msg) {
        self.out.loopback.push_back(msg.clone());
        self.broadcast_others(msg);
    }

    fn broadcast_others(&mut self, msg: Msg) {
        for _ in 1..self.cfg.n {
            self.count_msg(Dir::Sent, &msg);
        }
        if self.cfg.n > 1 {
            self.out.msgs.push((To::All, msg));
        }
    }

    fn rand_election(&mut self) -> u64 {
        let t = &self.cfg.timing;
        self.now + self.rng.gen_range(t.election_min..=t.election_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Command;
    use crate::protocol::Ballot;
    use crate::storage::Storage;

    fn core(durable: Durable) -> Core {
        let cfg = Config {
            me: 0,
            n: 3,
            members: 0,
            variant: Variant::Multi,
            bugs: Bugs::default(),
            incarnation: 1,
            seed: 1,
            timing: Timing {
                snapshot_every: 1,
                ..Timing::default()
            },
        };
        Core::new(cfg, durable)
    }

    fn accept(slot: Slot, ballot: Ballot) -> Input {
        let cmd = Command {
            id: ReqId {
                origin: 9,
                seq: slot,
            },
            done_below: 0,
            op: Op::Read { key: "k".into() },
        };
        let msg = Msg::Accept {
            ballot,
            slot,
            value: Arc::new(vec![cmd]),
            commit: 0,
            decided: Vec::new(),
            voters: 0,
        };
        Input::Peer { from: 1, msg }
    }

    /// A batch that takes a snapshot and then votes: the vote is written after the snapshot,
    /// and a restart from the data directory still knows it.
    #[test]
    fn a_vote_after_a_snapshot_in_the_same_batch_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("paxos-core-snap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut disk, durable, _) = Storage::open(&dir).unwrap();
        let b = Ballot { round: 1, node: 1 };
        let mut c = core(durable);
        c.step(accept(0, b));
        c.end_batch();
        let first = c.ready().disk.expect("a vote to write");
        disk.write_batch(first.snapshot.as_ref(), &first.records)
            .unwrap();
        c.step(Input::Peer {
            from: 1,
            msg: Msg::Decide { slot: 0, ballot: b },
        });
        c.step(accept(1, b));
        c.end_batch();
        let d = c.ready().disk.expect("a snapshot and a vote to write");
        assert_eq!(d.snapshot.as_ref().map(|s| s.app.applied), Some(1));
        disk.write_batch(d.snapshot.as_ref(), &d.records).unwrap();
        disk.sync().unwrap();
        drop(disk);
        let (_, durable, _) = Storage::open(&dir).unwrap();
        let slots = core(durable).durable_snapshot().slots;
        assert!(
            slots.iter().any(|(s, a)| *s == 1 && a.accepted.is_some()),
            "slot 1's vote is lost: {slots:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
