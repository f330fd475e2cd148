//! Deterministic simulation of the protocol core: an in-process network driven by a seeded RNG
//! that drops, duplicates, delays and reorders messages, partitions and heals links, pauses nodes
//! and crashes and restarts them (restoring only what was synced). Like the real shell, a node
//! sends messages that need no sync at once and everything else (with its client replies) only
//! when a later, randomly delayed "sync" makes its records durable; a crash loses what was not
//! synced. Each run checks that no slot is decided with two values (a decision counts once the
//! effects of the batch that learned it may leave), that replicas converge on the same state, and
//! that every client result is linearizable with respect to the decided log.
//!
//! `SIM_TRACE=1` prints every event of a run; with `PAXOS_SIM_SEEDS=1 PAXOS_SIM_FIRST_SEED=N`
//! and `--nocapture` that is the story of one failing seed.

use paxos_node::core::{Bugs, Config, Core, Durable, Input, Record, Snapshot, Timing, To, Variant};
use paxos_node::kv::AppState;
use paxos_node::protocol::{Durability, Msg, Op, OpResult, ReqId, Slot, Value};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, HashMap};

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
    /// The node's disk finishes syncing everything queued (ignored after a restart).
    Sync(usize, u64),
}

/// One batch's effects that wait for the disk: `after_earlier` (with the replies) for every
/// earlier batch's sync, `after_this` for this batch's too.
struct Job {
    /// Decisions this batch learned. They count once the batch's effects may leave: a leader
    /// learns a slot before its own vote is synced, and if it crashes before the sync, that
    /// vote (and the decision, which nobody heard of) is lost.
    learned: Vec<(Slot, Value)>,
    records: Vec<Record>,
    snapshot: Option<Snapshot>,
    after_earlier: Vec<(To, Msg)>,
    replies: Vec<(u64, OpResult)>,
    after_this: Vec<(To, Msg)>,
}

#[derive(Clone, Debug)]
struct OpRec {
    id: usize,
    node: usize,
    op: Op,
    invoke: u64,
    complete: Option<u64>,
    result: Option<OpResult>,
}

#[derive(Default, Clone)]
struct Disk {
    snapshot: Option<Snapshot>,
    records: Vec<Record>,
}

struct Sim {
    rng: SmallRng,
    n: usize,
    variant: Variant,
    bugs: Bugs,
    faults: bool,
    now: u64,
    seq: u64,
    events: BTreeMap<(u64, u64), Ev>,
    nodes: Vec<Option<Core>>,
    disks: Vec<Disk>,
    unsynced: Vec<Vec<Job>>,
    /// A sync is scheduled: some unsynced batch needs one.
    sync_due: Vec<bool>,
    syncs: u64,
    /// Overrides the random choice of thrifty accepts.
    thrifty: Option<bool>,
    /// `SIM_TRACE` is set: print every event.
    trace: bool,
    incarnation: Vec<u64>,
    paused: Vec<bool>,
    inbox: Vec<Vec<Input>>,
    cut: Vec<Vec<bool>>,
    decided: HashMap<Slot, Value>,
    tags: HashMap<u64, ReqId>,
    ops: Vec<OpRec>,
    waiting: Vec<Option<u64>>,
    next_value: i64,
    stop_faults_at: u64,
    stop_clients_at: u64,
    violation: Option<String>,
}

impl Sim {
    fn new(seed: u64, n: usize, variant: Variant, bugs: Bugs, faults: bool) -> Sim {
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
            disks: vec![Disk::default(); n],
            unsynced: (0..n).map(|_| Vec::new()).collect(),
            sync_due: vec![false; n],
            syncs: 0,
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
        }
        s
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.events.insert((t, self.seq), ev);
    }

    fn start(&mut self, i: usize) {
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
        core.trace = Some(Vec::new());
        core.trace_tags = Some(Vec::new());
        // The shell rewrites its state as one snapshot at start-up.
        self.disks[i] = Disk {
            snapshot: Some(core.durable_snapshot()),
            records: Vec::new(),
        };
        self.nodes[i] = Some(core);
    }

    fn run(&mut self, until: u64) {
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
            Ev::Sync(i, inc) => {
                if inc == self.incarnation[i] && self.nodes[i].is_some() {
                    self.sync(i);
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
        let Some(core) = self.nodes[i].as_mut() else {
            return;
        };
        core.step(input);
        core.end_batch();
        let out = core.take_output();
        let trace = std::mem::take(core.trace.as_mut().expect("tracing"));
        let tags = std::mem::take(core.trace_tags.as_mut().expect("tracing"));
        for (tag, id) in tags {
            self.tags.insert(tag, id);
        }
        for (tag, result) in out.free_replies {
            let d = self.rng.gen_range(50..500);
            self.at(self.now + d, Ev::Reply { tag, result });
        }
        let mut job = Job {
            learned: trace,
            records: out.records,
            snapshot: out.snapshot,
            after_earlier: Vec::new(),
            replies: out.replies,
            after_this: Vec::new(),
        };
        for (to, m) in out.msgs {
            match m.durability() {
                Durability::Nothing => self.route(i, to, m),
                Durability::EarlierBatches => job.after_earlier.push((to, m)),
                Durability::ThisBatch => job.after_this.push((to, m)),
            }
        }
        let needs_sync =
            !job.records.is_empty() || job.snapshot.is_some() || !job.after_this.is_empty();
        if !self.sync_due[i] {
            // Every earlier batch that needed a sync has had it.
            self.release(i, &mut job);
            if needs_sync {
                self.sync_due[i] = true;
                let d = self.rng.gen_range(200..3_000);
                self.at(self.now + d, Ev::Sync(i, self.incarnation[i]));
            }
        }
        self.unsynced[i].push(job);
    }

    /// A crash: what was not synced is gone, and so is the sync that was due.
    fn drop_unsynced(&mut self, i: usize) {
        self.unsynced[i].clear();
        self.sync_due[i] = false;
    }

    fn release(&mut self, i: usize, job: &mut Job) {
        for (slot, v) in std::mem::take(&mut job.learned) {
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
        for (to, msg) in std::mem::take(&mut job.after_earlier) {
            self.route(i, to, msg);
        }
        for (tag, result) in std::mem::take(&mut job.replies) {
            let d = self.rng.gen_range(50..500);
            self.at(self.now + d, Ev::Reply { tag, result });
        }
    }

    /// Everything queued for the disk becomes durable; what waited for it leaves.
    fn sync(&mut self, i: usize) {
        self.sync_due[i] = false;
        self.syncs += 1;
        for mut job in std::mem::take(&mut self.unsynced[i]) {
            let disk = &mut self.disks[i];
            disk.records.extend(std::mem::take(&mut job.records));
            if let Some(s) = job.snapshot.take() {
                disk.snapshot = Some(s);
                disk.records.clear();
            }
            self.release(i, &mut job);
            for (to, msg) in std::mem::take(&mut job.after_this) {
                self.route(i, to, msg);
            }
        }
    }

    fn route(&mut self, i: usize, to: To, msg: Msg) {
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

    /// Checks everything; returns the first violation found.
    fn check(&mut self) -> Result<(), String> {
        if let Some(v) = self.violation.take() {
            return Err(v);
        }
        // Replicas that applied the same prefix hold the same state.
        let apps: Vec<&AppState> = self.nodes.iter().flatten().map(|c| c.app()).collect();
        for a in &apps {
            for b in &apps {
                if a.applied == b.applied && a.kv != b.kv {
                    return Err(format!(
                        "replicas diverge at applied {}: {:?} vs {:?}",
                        a.applied, a.kv, b.kv
                    ));
                }
            }
        }
        self.check_linearizable()?;
        self.check_with_checker()
    }

    /// The history as the harness would record it, checked by the project's checker.
    fn check_with_checker(&self) -> Result<(), String> {
        use checker::history::{Event, EventType, Process};
        let mut raw: Vec<(u64, EventType, &OpRec, Json, Option<String>)> = Vec::new();
        let end = self.now;
        for op in &self.ops {
            let f_value = match &op.op {
                Op::Read { .. } => Json::Null,
                Op::Write { value, .. } => value.clone(),
                Op::Cas { from, to, .. } => json!([from, to]),
            };
            raw.push((op.invoke, EventType::Invoke, op, f_value.clone(), None));
            let (kind, value, error) = match &op.result {
                None | Some(OpResult::Error(0, _)) => (EventType::Info, f_value, None),
                Some(OpResult::Read(v)) => (EventType::Ok, v.clone(), None),
                Some(OpResult::Write) | Some(OpResult::Cas) => (EventType::Ok, f_value, None),
                Some(OpResult::Error(20, _)) => (
                    EventType::Fail,
                    f_value,
                    Some("key-does-not-exist".to_string()),
                ),
                Some(OpResult::Error(22, _)) => (
                    EventType::Fail,
                    f_value,
                    Some("precondition-failed".to_string()),
                ),
                Some(OpResult::Error(c, t)) => {
                    (EventType::Fail, f_value, Some(format!("{c}: {t}")))
                }
            };
            raw.push((op.complete.unwrap_or(end), kind, op, value, error));
        }
        raw.sort_by_key(|(t, kind, ..)| (*t, *kind != EventType::Invoke));
        let events: Vec<Event> = raw
            .into_iter()
            .enumerate()
            .map(|(i, (t, kind, op, value, error))| {
                let (f, key) = match &op.op {
                    Op::Read { key } => ("read", key),
                    Op::Write { key, .. } => ("write", key),
                    Op::Cas { key, .. } => ("cas", key),
                };
                Event {
                    index: i as u64,
                    time: t * 1000,
                    // A process per op: a client that timed out goes on as a new process,
                    // as in Jepsen, and its unanswered op stays open to the end.
                    process: Process::Client(op.id as u64),
                    kind,
                    f: f.to_string(),
                    key: Some(key.clone()),
                    value,
                    node: Some(format!("n{}", op.node + 1)),
                    error,
                }
            })
            .collect();
        let opts = checker::CheckOptions {
            time_limit: Some(std::time::Duration::from_secs(20)),
            threads: 1,
            ..Default::default()
        };
        let r = workloads::check(workloads::Workload::Kv, &events, &opts)?;
        match r.verdict {
            checker::Verdict::Invalid => Err(format!("checker: {}", r.explanation)),
            _ => Ok(()),
        }
    }

    /// Replays the decided log and checks each client result against it: every definite result
    /// must be what the log gives at the op's position, positions must respect real time, and a
    /// read answered outside the log must match some state between its invoke and completion.
    fn check_linearizable(&self) -> Result<(), String> {
        let mut app = AppState::default();
        let mut pos_of: HashMap<ReqId, (u64, OpResult)> = HashMap::new();
        let mut changes: HashMap<String, Vec<(u64, Json)>> = HashMap::new();
        let mut pos = 0u64;
        let mut slot = 0;
        while let Some(v) = self.decided.get(&slot) {
            for cmd in v.iter() {
                let before = app.kv.clone();
                if let Some(r) = app.apply(cmd) {
                    pos += 1;
                    pos_of.insert(cmd.id, (pos, r));
                    for (k, val) in &app.kv {
                        if before.get(k) != Some(val) {
                            changes
                                .entry(k.clone())
                                .or_default()
                                .push((pos, val.clone()));
                        }
                    }
                }
            }
            slot += 1;
        }
        // (op index, position) of ops that were applied.
        let placed: Vec<(usize, u64)> = self
            .ops
            .iter()
            .enumerate()
            .filter_map(|(i, _)| {
                let id = self.tags.get(&(i as u64))?;
                pos_of.get(id).map(|(p, _)| (i, *p))
            })
            .collect();
        let definite = |r: &Option<OpResult>| match r {
            None => false,
            Some(OpResult::Error(code, _)) => *code != 0,
            Some(_) => true,
        };
        let pos_map: HashMap<usize, u64> = placed.iter().copied().collect();
        // lo(t): highest position among applied ops that completed definitely before t.
        let mut done: Vec<(u64, u64)> = placed
            .iter()
            .filter(|(i, _)| definite(&self.ops[*i].result))
            .map(|(i, p)| (self.ops[*i].complete.expect("definite"), *p))
            .collect();
        done.sort();
        let mut run = 0;
        let prefix_max: Vec<(u64, u64)> = done
            .iter()
            .map(|(t, p)| {
                run = run.max(*p);
                (*t, run)
            })
            .collect();
        let lo = |t: u64| {
            let k = prefix_max.partition_point(|(c, _)| *c < t);
            if k == 0 {
                0
            } else {
                prefix_max[k - 1].1
            }
        };
        let mut invokes: Vec<(u64, u64)> = placed
            .iter()
            .map(|(i, p)| (self.ops[*i].invoke, *p))
            .collect();
        invokes.sort();
        let mut suffix_min = vec![u64::MAX; invokes.len() + 1];
        for k in (0..invokes.len()).rev() {
            suffix_min[k] = suffix_min[k + 1].min(invokes[k].1);
        }
        let hi = |t: u64| suffix_min[invokes.partition_point(|(c, _)| *c <= t)];
        for (i, op) in self.ops.iter().enumerate() {
            if !definite(&op.result) {
                continue;
            }
            let got = op.result.as_ref().expect("definite");
            let complete = op.complete.expect("definite");
            let floor = lo(op.invoke);
            match pos_map.get(&i) {
                Some(&p) => {
                    let id = self.tags[&(i as u64)];
                    let want = &pos_of[&id].1;
                    let same = match (got, want) {
                        (OpResult::Error(a, _), OpResult::Error(b, _)) => a == b,
                        _ => got == want,
                    };
                    if !same {
                        return Err(format!(
                            "op {i} {:?} at node {} got {got:?} but the log gives {want:?}",
                            op.op, op.node
                        ));
                    }
                    if p <= floor {
                        return Err(format!(
                            "op {i} {:?} placed at {p} though an op at {floor} completed before it began",
                            op.op
                        ));
                    }
                }
                None => {
                    let (Op::Read { key }, OpResult::Read(v)) = (&op.op, got) else {
                        return Err(format!(
                            "op {i} {:?} answered {got:?} but is not in the log",
                            op.op
                        ));
                    };
                    let top = hi(complete);
                    let ch = changes.get(key).map(Vec::as_slice).unwrap_or(&[]);
                    // State after position k: last change at or before k.
                    let at = |k: u64| {
                        ch.iter()
                            .rev()
                            .find(|(p, _)| *p <= k)
                            .map_or(Json::Null, |(_, v)| v.clone())
                    };
                    let mut ok = at(floor) == *v;
                    for (p, val) in ch {
                        if *p > floor && *p < top && val == v {
                            ok = true;
                        }
                    }
                    if !ok {
                        return Err(format!(
                            "stale read: op {i} read {key}={v} at node {} but the state between positions {floor} and {top} never had it (at {floor}: {})",
                            op.node,
                            at(floor)
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn converged(&self) -> bool {
        let nodes: Vec<&Core> = self.nodes.iter().flatten().collect();
        nodes.iter().all(|c| {
            c.app().applied == nodes[0].app().applied && c.stats().get("pending") == Some(&0)
        })
    }

    fn ok_count_after(&self, t: u64) -> usize {
        self.ops
            .iter()
            .filter(|o| {
                o.invoke >= t
                    && matches!(o.result, Some(ref r) if !matches!(r, OpResult::Error(0, _)))
            })
            .count()
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

/// Runs one seed to the end; returns the violation, if any. Panics if the cluster made no
/// progress after healing (a liveness failure).
fn run_seed(seed: u64, n: usize, variant: Variant, bugs: Bugs) -> Result<(), String> {
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
        let applied: Vec<u64> = sim
            .nodes
            .iter()
            .flatten()
            .map(|c| c.app().applied)
            .collect();
        assert!(
            applied.iter().all(|a| *a == applied[0]),
            "seed {seed} {variant:?}: replicas did not converge: {applied:?}"
        );
    }
    Ok(())
}

/// Seeds per variant: `PAXOS_SIM_SEEDS` (default `count`), starting at `PAXOS_SIM_FIRST_SEED`.
fn seeds(variant: Variant, count: u64) {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let count = env("PAXOS_SIM_SEEDS").unwrap_or(count);
    let first = env("PAXOS_SIM_FIRST_SEED").unwrap_or(0);
    for seed in first..first + count {
        let n = if seed % 3 == 2 { 5 } else { 3 };
        if let Err(v) = run_seed(seed, n, variant, Bugs::default()) {
            panic!("seed {seed} {variant:?} n={n}: {v}");
        }
    }
}

#[test]
fn multi_paxos_is_safe_under_faults() {
    seeds(Variant::Multi, 2000);
}

#[test]
fn basic_paxos_is_safe_under_faults() {
    seeds(Variant::Basic, 2000);
}

#[test]
fn quiet_network_makes_progress_on_both_variants() {
    for variant in [Variant::Basic, Variant::Multi] {
        let mut sim = Sim::new(7, 3, variant, Bugs::default(), false);
        sim.run(sim.stop_clients_at + 500_000);
        sim.check().unwrap();
        let ok = sim.ok_count_after(0);
        assert!(
            ok > 100,
            "{variant:?}: only {ok} ops completed without faults"
        );
    }
}

#[test]
fn thrifty_leader_makes_only_a_majority_sync() {
    let syncs_per_slot = |thrifty: bool| {
        let mut sim = Sim::new(11, 5, Variant::Multi, Bugs::default(), false);
        sim.thrifty = Some(thrifty);
        (0..5).for_each(|i| sim.start(i));
        sim.run(sim.stop_clients_at + 500_000);
        sim.check().unwrap();
        assert!(
            sim.ok_count_after(0) > 100,
            "thrifty {thrifty}: no progress"
        );
        sim.syncs as f64 / sim.decided.len() as f64
    };
    let (thrifty, everyone) = (syncs_per_slot(true), syncs_per_slot(false));
    eprintln!("syncs per slot: thrifty {thrifty:.2}, everyone {everyone:.2}");
    // 3 voters of 5 would make 0.6; group commit merges some syncs in both cases.
    assert!(
        thrifty < 0.8 * everyone,
        "thrifty {thrifty:.2} syncs per slot vs {everyone:.2} when everyone votes"
    );
}

/// With `bug` on, some seed must show a violation.
fn finds(bug: &str, variant: Variant, max_seeds: u64) {
    let mut bugs = Bugs::default();
    bugs.enable(bug).unwrap();
    for seed in 0..max_seeds {
        if let Err(v) = run_seed(seed, 3, variant, bugs) {
            eprintln!("{bug}: seed {seed}: {v}");
            return;
        }
    }
    panic!("{bug} ({variant:?}) went unnoticed in {max_seeds} seeds");
}

#[test]
fn finds_volatile_acceptor() {
    finds("volatile-acceptor", Variant::Multi, 200);
}

#[test]
fn finds_ignore_promised_value() {
    finds("ignore-promised-value", Variant::Multi, 200);
}

#[test]
fn finds_ignore_promised_value_in_basic() {
    finds("ignore-promised-value", Variant::Basic, 400);
}

#[test]
fn finds_volatile_acceptor_in_basic() {
    finds("volatile-acceptor", Variant::Basic, 400);
}

#[test]
fn finds_local_read_in_basic() {
    finds("local-read", Variant::Basic, 400);
}

#[test]
fn finds_accept_below_promise() {
    finds("accept-below-promise", Variant::Basic, 200);
}

#[test]
fn finds_local_read() {
    finds("local-read", Variant::Multi, 200);
}

#[test]
fn finds_lease_read() {
    finds("lease-read", Variant::Multi, 200);
}

#[test]
#[ignore]
fn print_counts() {
    for variant in [Variant::Basic, Variant::Multi] {
        for seed in 0..6 {
            let mut sim = Sim::new(seed, 3, variant, Bugs::default(), true);
            sim.run(sim.stop_clients_at + 1_000_000);
            let ok = sim.ok_count_after(0);
            let info = sim.ops.iter().filter(|o| o.result.is_none()).count();
            let applied: Vec<u64> = sim
                .nodes
                .iter()
                .flatten()
                .map(|c| c.app().applied)
                .collect();
            eprintln!("{variant:?} seed {seed}: ops {} ok {ok} noreply {info} after-heal {} applied {applied:?} decided {}", sim.ops.len(), sim.ok_count_after(sim.stop_faults_at), sim.decided.len());
        }
    }
}

#[test]
#[ignore]
fn debug_seed() {
    let seed: u64 = std::env::var("SEED").unwrap().parse().unwrap();
    let n: usize = std::env::var("N").unwrap_or("3".into()).parse().unwrap();
    let mut sim = Sim::new(seed, n, Variant::Multi, Bugs::default(), true);
    sim.run(sim.stop_clients_at + 1_000_000);
    for (i, c) in sim.nodes.iter().enumerate() {
        if let Some(c) = c {
            eprintln!("node {i}: {}\n   {:?}", c.debug_state(), c.stats());
        }
    }
}
