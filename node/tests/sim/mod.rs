//! Deterministic simulation of the protocol core: an in-process network driven by a seeded RNG
//! that drops, duplicates, delays and reorders messages, partitions and heals links, pauses nodes
//! and crashes and restarts them (restoring only what was synced). Like the real shell, a node
//! steps through batches of the inputs waiting for it (random sizes up to the shell's
//! `MAX_BATCH`), sends at once what the core's `Ready` says may leave now, and the rest when a
//! later, randomly delayed "sync" makes the batches it waits for durable; a crash loses what was
//! not synced. The oracles are in `check`.
//!
//! Used by the `simulation` test and by the examples (`print_counts`, `debug_seed`).

mod check;
pub mod membership;

use paxos_node::core::{
    Bugs, Config, Core, DiskBatch, Effects, Input, Observer, Timing, To, Variant,
};
use paxos_node::durable::{Durable, Record, Snapshot};
use paxos_node::kv::{Op, OpResult, ReqId};
use paxos_node::protocol::{Msg, Slot, Value};
use paxos_node::shell::MAX_BATCH;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

const TICK: u64 = 5_000; // µs
const CLIENT_TIMEOUT: u64 = 400_000;

#[derive(Debug)]
enum Ev {
    Tick(usize),
    Deliver {
        to: usize,
        from: usize,
        msg: Msg,
    },
    ClientNext(usize),
    Request {
        node: usize,
        tag: u64,
        op: Op,
    },
    Reply {
        tag: u64,
        result: OpResult,
    },
    ClientTimeout {
        client: usize,
        tag: u64,
    },
    Fault,
    Restart(usize),
    Resume(usize),
    Heal,
    /// An admin asks a node to change the configuration (membership runs only).
    Reconfigure,
    /// The node's disk finishes syncing everything queued (ignored after a restart).
    Sync(usize, u64),
    /// The node steps through a batch of the inputs waiting for it (ignored after a restart).
    Batch(usize, u64),
}

/// What a node's observer saw since the driver last looked.
#[derive(Default)]
struct Seen {
    learned: Vec<(Slot, Value)>,
    tags: Vec<(u64, ReqId)>,
}

struct SeenBy(Arc<Mutex<Seen>>);

impl Observer for SeenBy {
    fn learned(&mut self, slot: Slot, value: &Value) {
        let mut s = self.0.lock().unwrap();
        s.learned.push((slot, value.clone()));
    }

    fn request(&mut self, tag: u64, id: ReqId) {
        self.0.lock().unwrap().tags.push((tag, id));
    }
}

#[derive(Clone, Debug)]
pub struct OpRec {
    pub id: usize,
    pub node: usize,
    pub op: Op,
    pub invoke: u64,
    pub complete: Option<u64>,
    pub result: Option<OpResult>,
}

#[derive(Default, Clone)]
struct Disk {
    snapshot: Option<Snapshot>,
    records: Vec<Record>,
}

pub struct Sim {
    rng: SmallRng,
    n: usize,
    variant: Variant,
    bugs: Bugs,
    faults: bool,
    pub now: u64,
    seq: u64,
    events: BTreeMap<(u64, u64), Ev>,
    pub nodes: Vec<Option<Core>>,
    seen: Vec<Arc<Mutex<Seen>>>,
    disks: Vec<Disk>,
    /// Disk batches handed out and not yet synced.
    unsynced: Vec<Vec<DiskBatch>>,
    /// Decisions of batches whose effects wait for a sync. A decision counts once the effects
    /// of the batch that learned it may leave: a leader learns a slot before its own vote is
    /// synced, and if it crashes before the sync, that vote (and the decision, which nobody
    /// heard of) is lost. (With two nodes or more, those effects wait for earlier batches only.)
    unsynced_learned: Vec<Vec<(Slot, Value)>>,
    /// A sync is scheduled: some unsynced batch needs one.
    sync_due: Vec<bool>,
    pub syncs: u64,
    /// Inputs waiting for the node's next batch, and whether that batch is scheduled.
    queued: Vec<VecDeque<Input>>,
    batch_due: Vec<bool>,
    /// Batches stepped, and inputs in them (the largest batch too).
    pub batches: u64,
    pub batched_inputs: u64,
    pub largest_batch: usize,
    /// Accepts that carried decisions, and forwards of more than one command, sent.
    pub folded_decides: u64,
    pub multi_forwards: u64,
    /// Overrides the random choice of thrifty accepts.
    pub thrifty: Option<bool>,
    /// `SIM_TRACE` is set: print every event.
    trace: bool,
    incarnation: Vec<u64>,
    paused: Vec<bool>,
    inbox: Vec<Vec<Input>>,
    cut: Vec<Vec<bool>>,
    pub decided: HashMap<Slot, Value>,
    tags: HashMap<u64, ReqId>,
    pub ops: Vec<OpRec>,
    waiting: Vec<Option<u64>>,
    next_value: i64,
    pub stop_faults_at: u64,
    pub stop_clients_at: u64,
    violation: Option<String>,
    /// The configuration at start (0: every node; else membership changes are drawn too), and
    /// the last one asked for.
    members: u64,
    target: u64,
    /// Configuration changes asked for, and those answered `reconfigure_ok`.
    pub reconfigs_sent: u64,
    pub reconfigs_ok: u64,
}

impl Sim {
    pub fn new(seed: u64, n: usize, variant: Variant, bugs: Bugs, faults: bool) -> Sim {
        Sim::build(seed, n, variant, bugs, faults, 0)
    }

    /// `members`: the configuration at start (0: every node, and no membership changes).
    fn build(seed: u64, n: usize, variant: Variant, bugs: Bugs, faults: bool, members: u64) -> Sim {
        let mut s = Sim {
            rng: SmallRng::seed_from_u64(seed),
            n,
            variant,
            bugs,
            faults,
            now: 0,
            seq: 0,
            events: BTreeMap::new(),
            nodes: (0..n).map(|_| None).collect(),
            seen: (0..n).map(|_| Arc::default()).collect(),
            disks: vec![Disk::default(); n],
            unsynced: (0..n).map(|_| Vec::new()).collect(),
            unsynced_learned: vec![Vec::new(); n],
            sync_due: vec![false; n],
            syncs: 0,
            queued: (0..n).map(|_| VecDeque::new()).collect(),
            batch_due: vec![false; n],
            batches: 0,
            batched_inputs: 0,
            largest_batch: 0,
            folded_decides: 0,
            multi_forwards: 0,
            thrifty: None,
            trace: std::env::var_os("SIM_TRACE").is_some(),
            incarnation: vec![0; n],
            paused: vec![false; n],
            inbox: (0..n).map(|_| Vec::new()).collect(),
            cut: vec![vec![false; n]; n],
            decided: HashMap::new(),
            tags: HashMap::new(),
            ops: Vec::new(),
            waiting: Vec::new(),
            next_value: 1,
            stop_faults_at: 1_500_000,
            stop_clients_at: 2_500_000,
            violation: None,
            members,
            target: members,
            reconfigs_sent: 0,
            reconfigs_ok: 0,
        };
        for i in 0..n {
            s.start(i);
            let phase = s.rng.gen_range(0..TICK);
            s.at(phase, Ev::Tick(i));
        }
        for c in 0..4 {
            s.waiting.push(None);
            let t = s.rng.gen_range(0..20_000);
            s.at(t, Ev::ClientNext(c));
        }
        if faults {
            s.at(100_000, Ev::Fault);
            s.at(s.stop_faults_at, Ev::Heal);
            if members != 0 {
                s.at(150_000, Ev::Reconfigure);
            }
        }
        s
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.events.insert((t, self.seq), ev);
    }

    pub fn start(&mut self, i: usize) {
        self.incarnation[i] += 1;
        self.drop_unsynced(i);
        let timing = Timing {
            snapshot_every: 40,
            keep_tail: 10,
            // Pipeline from the first waiting command: the simulation must keep several slots
            // in flight to test what pipelining can break.
            pipeline_min: 1,
            // Mostly thrifty, so both kinds of leader meet in one run.
            thrifty: self.thrifty.unwrap_or_else(|| self.rng.gen_bool(0.8)),
            ..Timing::default()
        };
        let cfg = Config {
            me: i,
            n: self.n,
            members: self.members,
            variant: self.variant,
            bugs: self.bugs,
            incarnation: self.incarnation[i],
            seed: self.rng.gen(),
            timing,
        };
        let d = self.disks[i].clone();
        let mut core = Core::new(
            cfg,
            Durable {
                snapshot: d.snapshot,
                records: d.records,
            },
        );
        self.seen[i] = Arc::default();
        core.observe(Box::new(SeenBy(self.seen[i].clone())));
        // The shell rewrites its state as one snapshot at start-up.
        self.disks[i] = Disk {
            snapshot: Some(core.durable_snapshot()),
            records: Vec::new(),
        };
        self.nodes[i] = Some(core);
    }

    pub fn run(&mut self, until: u64) {
        while let Some(((t, _), _)) = self.events.first_key_value() {
            if *t > until || self.violation.is_some() {
                break;
            }
            let ((t, _), ev) = self.events.pop_first().expect("non-empty");
            self.now = t;
            self.handle(ev);
        }
    }

    fn handle(&mut self, ev: Ev) {
        if self.trace && !matches!(ev, Ev::Tick(_)) {
            eprintln!("{} {}", self.now, trace_line(&ev));
        }
        match ev {
            Ev::Tick(i) => {
                self.at(self.now + TICK, Ev::Tick(i));
                if !self.paused[i] {
                    self.input(i, Input::Tick);
                }
            }
            Ev::Deliver { to, from, msg } => self.input(to, Input::Peer { from, msg }),
            Ev::Request { node, tag, op } => self.input(node, Input::Client { tag, op }),
            Ev::Reply { tag, result } => self.on_reply(tag, result),
            Ev::ClientNext(c) => self.client_next(c),
            Ev::ClientTimeout { client, tag } => {
                if self.waiting[client] == Some(tag) {
                    self.waiting[client] = None;
                    self.client_next(client);
                }
            }
            Ev::Fault => self.fault(),
            Ev::Restart(i) => {
                if self.nodes[i].is_none() {
                    self.start(i);
                }
            }
            Ev::Resume(i) => self.resume(i),
            Ev::Reconfigure => self.reconfigure(),
            Ev::Sync(i, inc) => {
                if inc == self.incarnation[i] && self.nodes[i].is_some() {
                    self.sync(i);
                }
            }
            Ev::Batch(i, inc) => {
                if inc == self.incarnation[i] && self.nodes[i].is_some() {
                    self.batch_due[i] = false;
                    self.step_batch(i);
                }
            }
            Ev::Heal => {
                for row in self.cut.iter_mut() {
                    row.iter_mut().for_each(|c| *c = false);
                }
                for i in 0..self.n {
                    if self.nodes[i].is_none() {
                        self.start(i);
                    }
                    self.resume(i);
                }
            }
        }
    }

    fn resume(&mut self, i: usize) {
        if !self.paused[i] {
            return;
        }
        self.paused[i] = false;
        let mut inbox = std::mem::take(&mut self.inbox[i]);
        inbox.shuffle(&mut self.rng);
        for input in inbox {
            self.input(i, input);
        }
    }

    fn fault(&mut self) {
        if self.now >= self.stop_faults_at {
            return;
        }
        let next = self.now + self.rng.gen_range(50_000..250_000);
        self.at(next, Ev::Fault);
        let down = (0..self.n)
            .filter(|&i| self.nodes[i].is_none() || self.paused[i])
            .count();
        let may_take = down < (self.n - 1) / 2 + usize::from(self.rng.gen_bool(0.3));
        match self.rng.gen_range(0..4) {
            0 if may_take => {
                let i = self.rng.gen_range(0..self.n);
                self.nodes[i] = None;
                self.drop_unsynced(i);
                self.paused[i] = false;
                self.inbox[i].clear();
                self.queued[i].clear();
                self.batch_due[i] = false;
                let back = self.now + self.rng.gen_range(20_000..400_000);
                self.at(back, Ev::Restart(i));
            }
            1 if may_take => {
                // Pause the leader when there is one: that is where pauses hurt.
                let leader =
                    (0..self.n).find(|&i| self.nodes[i].as_ref().is_some_and(|c| c.is_leader()));
                let i = match leader {
                    Some(l) if self.rng.gen_bool(0.7) => l,
                    _ => self.rng.gen_range(0..self.n),
                };
                if self.nodes[i].is_some() {
                    self.paused[i] = true;
                    let back = self.now + self.rng.gen_range(100_000..500_000);
                    self.at(back, Ev::Resume(i));
                }
            }
            2 => {
                let mut ids: Vec<usize> = (0..self.n).collect();
                ids.shuffle(&mut self.rng);
                let k = self.rng.gen_range(1..=self.n / 2);
                for a in 0..self.n {
                    for b in 0..self.n {
                        let side = |x: usize| ids[..k].contains(&x);
                        self.cut[a][b] = side(a) != side(b);
                    }
                }
            }
            _ => {
                for row in self.cut.iter_mut() {
                    row.iter_mut().for_each(|c| *c = false);
                }
            }
        }
    }

    fn input(&mut self, i: usize, input: Input) {
        if self.paused[i] {
            if !matches!(input, Input::Tick) {
                self.inbox[i].push(input);
            }
            return;
        }
        if self.nodes[i].is_none() {
            return;
        }
        self.queued[i].push_back(input);
        if !self.batch_due[i] {
            // The node's thread is busy for a while (now and then for most of a tick): inputs
            // that arrive meanwhile join the batch.
            self.batch_due[i] = true;
            let d = match self.rng.gen_range(0..10) {
                0..=2 => 0,
                3..=8 => self.rng.gen_range(0..1_000),
                _ => self.rng.gen_range(1_000..4_000),
            };
            self.at(self.now + d, Ev::Batch(i, self.incarnation[i]));
        }
    }

    /// Steps node `i` through a batch of its waiting inputs (as many as a random cap allows, up
    /// to the shell's largest batch) and handles the batch's effects as the shell does.
    fn step_batch(&mut self, i: usize) {
        let cap = match self.rng.gen_range(0..4) {
            0 => 1,
            1 => self.rng.gen_range(2..=8),
            2 => self.rng.gen_range(9..=64),
            _ => MAX_BATCH,
        };
        let k = cap.min(self.queued[i].len());
        let core = self.nodes[i].as_mut().expect("checked by the caller");
        for input in self.queued[i].drain(..k) {
            core.step(input);
        }
        core.end_batch();
        let ready = core.ready();
        self.batches += 1;
        self.batched_inputs += k as u64;
        self.largest_batch = self.largest_batch.max(k);
        if !self.queued[i].is_empty() {
            self.batch_due[i] = true;
            self.at(self.now, Ev::Batch(i, self.incarnation[i]));
        }
        let seen = std::mem::take(&mut *self.seen[i].lock().unwrap());
        self.tags.extend(seen.tags);
        self.release(i, ready.now);
        if self.sync_due[i] {
            self.unsynced_learned[i].extend(seen.learned);
        } else {
            // Every earlier batch is durable: the core let this batch's decisions leave now.
            self.count_decided(seen.learned);
        }
        let Some(batch) = ready.disk else { return };
        if !self.sync_due[i] {
            assert!(
                batch.after_earlier.is_empty(),
                "node {i}: earlier batches are durable, yet batch {} waits for them",
                batch.number
            );
            if batch.needs_sync() {
                self.sync_due[i] = true;
                let d = self.rng.gen_range(200..3_000);
                self.at(self.now + d, Ev::Sync(i, self.incarnation[i]));
            }
        }
        self.unsynced[i].push(batch);
    }

    /// A crash: what was not synced is gone, and so is the sync that was due.
    fn drop_unsynced(&mut self, i: usize) {
        self.unsynced[i].clear();
        self.unsynced_learned[i].clear();
        self.sync_due[i] = false;
        self.queued[i].clear();
        self.batch_due[i] = false;
    }

    fn count_decided(&mut self, learned: Vec<(Slot, Value)>) {
        for (slot, v) in learned {
            match self.decided.get(&slot) {
                Some(old) if *old != v => {
                    self.violation = Some(format!(
                        "slot {slot} decided twice: {:?} and {:?}",
                        old.iter().map(|c| c.id).collect::<Vec<_>>(),
                        v.iter().map(|c| c.id).collect::<Vec<_>>()
                    ));
                }
                Some(_) => {}
                None => {
                    self.decided.insert(slot, v);
                }
            }
        }
    }

    /// Sends messages and schedules the client replies.
    fn release(&mut self, i: usize, e: Effects) {
        for (to, msg) in e.msgs {
            self.route(i, to, msg);
        }
        for (tag, result) in e.replies {
            let d = self.rng.gen_range(50..500);
            self.at(self.now + d, Ev::Reply { tag, result });
        }
    }

    /// Everything queued for the disk becomes durable; what waited for it leaves.
    fn sync(&mut self, i: usize) {
        self.sync_due[i] = false;
        self.syncs += 1;
        let learned = std::mem::take(&mut self.unsynced_learned[i]);
        self.count_decided(learned);
        let batches = std::mem::take(&mut self.unsynced[i]);
        let Some(last) = batches.last().map(|b| b.number) else {
            return;
        };
        for b in batches {
            let disk = &mut self.disks[i];
            if let Some(s) = b.snapshot {
                disk.snapshot = Some(s);
                disk.records.clear();
            }
            disk.records.extend(b.records);
            self.release(i, b.after_earlier);
            self.release(i, b.after_this);
        }
        if let Some(core) = self.nodes[i].as_mut() {
            core.on_persisted(last);
        }
    }

    fn route(&mut self, i: usize, to: To, msg: Msg) {
        match &msg {
            Msg::Accept { decided, .. } if !decided.is_empty() => self.folded_decides += 1,
            Msg::Forward { cmds } if cmds.len() > 1 => self.multi_forwards += 1,
            _ => {}
        }
        match to {
            To::One(t) => self.net_send(i, t, msg),
            To::All => {
                for t in 0..self.n {
                    if t != i {
                        self.net_send(i, t, msg.clone());
                    }
                }
            }
        }
    }

    fn net_send(&mut self, from: usize, to: usize, msg: Msg) {
        if self.cut[from][to] || (self.faults && self.rng.gen_bool(0.05)) {
            return;
        }
        let copies = if self.faults && self.rng.gen_bool(0.03) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut d = self.rng.gen_range(100..2_000);
            if self.faults && self.rng.gen_bool(0.1) {
                d += self.rng.gen_range(0..30_000);
            }
            self.at(
                self.now + d,
                Ev::Deliver {
                    to,
                    from,
                    msg: msg.clone(),
                },
            );
        }
    }

    fn client_next(&mut self, c: usize) {
        if self.now >= self.stop_clients_at {
            return;
        }
        let key = ["a", "b"][self.rng.gen_range(0..2)].to_string();
        let op = match self.rng.gen_range(0..3) {
            0 => Op::Read { key },
            1 => {
                self.next_value += 1;
                Op::Write {
                    key,
                    value: self.next_value.into(),
                }
            }
            _ => {
                // Compare against a recent value so some succeed.
                let from = self.next_value - self.rng.gen_range(0..3);
                self.next_value += 1;
                Op::Cas {
                    key,
                    from: from.into(),
                    to: self.next_value.into(),
                }
            }
        };
        let node = self.rng.gen_range(0..self.n);
        let tag = self.ops.len() as u64;
        self.ops.push(OpRec {
            id: self.ops.len(),
            node,
            op: op.clone(),
            invoke: self.now,
            complete: None,
            result: None,
        });
        self.waiting[c] = Some(tag);
        let d = self.rng.gen_range(50..500);
        self.at(self.now + d, Ev::Request { node, tag, op });
        self.at(
            self.now + CLIENT_TIMEOUT,
            Ev::ClientTimeout { client: c, tag },
        );
    }

    fn on_reply(&mut self, tag: u64, result: OpResult) {
        if membership::is_admin(tag) {
            return self.on_admin_reply(result);
        }
        let Some(c) = self.waiting.iter().position(|w| *w == Some(tag)) else {
            return;
        };
        self.waiting[c] = None;
        let rec = &mut self.ops[tag as usize];
        rec.complete = Some(self.now);
        rec.result = Some(result);
        let think = self.rng.gen_range(0..10_000);
        self.at(self.now + think, Ev::ClientNext(c));
    }
}

/// One event as a line for `SIM_TRACE`: values shortened to their request ids.
fn trace_line(ev: &Ev) -> String {
    match ev {
        Ev::Deliver { to, from, msg } => match msg {
            Msg::Accept {
                ballot,
                slot,
                decided,
                voters,
                ..
            } => format!(
                "{from}->{to} Accept b{}.{} s{slot} dec{decided:?} v{voters:b}",
                ballot.round, ballot.node
            ),
            Msg::Promise {
                ballot,
                accepted,
                log_start,
                commit,
            } => format!(
                "{from}->{to} Promise b{}.{} acc{:?} ls{log_start} c{commit}",
                ballot.round,
                ballot.node,
                accepted
                    .iter()
                    .map(|(s, b, v)| (
                        s,
                        b.round,
                        b.node,
                        v.iter().map(|c| c.id).collect::<Vec<_>>()
                    ))
                    .collect::<Vec<_>>()
            ),
            Msg::CatchupResp { snapshot, entries } => format!(
                "{from}->{to} CatchupResp snap{:?} {:?}",
                snapshot.as_ref().map(|s| s.applied),
                entries.iter().map(|(s, _)| s).collect::<Vec<_>>()
            ),
            m => format!("{from}->{to} {m:?}"),
        },
        e => format!("{e:?}"),
    }
}

impl Sim {
    /// How far each live replica has applied.
    pub fn applied(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .flatten()
            .map(|c| c.app().applied)
            .collect()
    }
}

/// Runs one seed to the end; returns the violation, if any. Panics if the cluster made no
/// progress after healing (a liveness failure).
pub fn run_seed(seed: u64, n: usize, variant: Variant, bugs: Bugs) -> Result<(), String> {
    let mut sim = Sim::new(seed, n, variant, bugs, true);
    sim.run(sim.stop_clients_at);
    // Quiet: run until every replica has applied the same log and answered every request.
    for _ in 0..50 {
        if sim.converged() || sim.violation.is_some() {
            break;
        }
        sim.run(sim.now + 100_000);
    }
    sim.check()?;
    let progress = sim.ok_count_after(sim.stop_faults_at);
    if bugs == Bugs::default() {
        assert!(
            progress >= 5,
            "seed {seed} {variant:?} n={n}: only {progress} ops succeeded after healing"
        );
        // After healing and quiet, every replica has applied the whole log.
        let applied = sim.applied();
        assert!(
            applied.iter().all(|a| *a == applied[0]),
            "seed {seed} {variant:?}: replicas did not converge: {applied:?}"
        );
    }
    Ok(())
}
