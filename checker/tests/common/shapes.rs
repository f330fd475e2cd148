//! Register histories of the shapes real faulty runs produce: one register, 10-50 processes,
//! values 0..=4, many `info` ops open to the end. Valid ones come from simulating a linearizable
//! register (each op takes effect at one moment between its invoke and its completion; a crashed
//! op before or after taking effect, and if before, maybe later, maybe never). Invalid ones are
//! made so by construction; each kind's comment gives the argument.

use checker::history::{Event, EventType, Process};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::HashSet;

/// The value no background op writes in the invalid kinds (the stale or impossible one).
const RESERVED: i64 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Random reads, writes and cas from `procs` clients: valid.
    Simulated,
    /// Rounds: every client invokes a write, all complete (some crash), then every client
    /// reads: valid.
    WritesInFlight,
    /// Simulated, with a stale read in the middle: a process writes 4, then 0, then reads 4.
    /// Nothing else writes 4 before that read returns (4 is written again later), so every
    /// order puts its write of 4 before its write of 0 before its read: invalid.
    StaleRewritten,
    /// Rounds as in `WritesInFlight`; in the middle round the only write of 4 ever takes effect
    /// first, then a process reads the value (not 4) and then reads 4. Both reads come after
    /// every write of the round returned, and no crashed op writes 4: invalid.
    TwoReads,
    /// Unique values; a process writes z, then z2; a crashed cas from z to u is invoked after
    /// that (it can never apply: z is gone for good); then the process writes u, then u2, then
    /// reads u. Only that write and the cas write u: invalid.
    UniqueDecoy,
    /// Random reads, writes and cas as in `Simulated`, every write and cas of a fresh value:
    /// valid.
    Unique,
}

/// One row of the table: a kind and its size.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub name: &'static str,
    pub kind: Kind,
    pub ops: usize,
    pub procs: usize,
    pub info: usize,
}

impl Shape {
    pub fn valid(&self) -> bool {
        matches!(
            self.kind,
            Kind::Simulated | Kind::WritesInFlight | Kind::Unique
        )
    }

    /// The same shape with `ops` operations (and info ops scaled alike).
    pub fn scaled(&self, ops: usize) -> Shape {
        Shape {
            ops,
            info: self.info * ops / self.ops,
            ..*self
        }
    }

    pub fn events(&self, seed: u64) -> Vec<Event> {
        let mut sim = Sim::new(seed, self);
        match self.kind {
            Kind::Simulated => sim.background(self.ops, None),
            Kind::StaleRewritten => {
                let script = vec![
                    Step::real("write", json!(RESERVED)),
                    Step::real("write", json!(0)),
                    Step::fake_read(json!(RESERVED)),
                ];
                // The script starts halfway and runs among the other clients' ops.
                let half = self.ops / 2;
                sim.background(half, None);
                sim.background(self.procs, Some(script));
                sim.writable = (0..=RESERVED).collect();
                sim.background(self.ops.saturating_sub(half + self.procs), None);
            }
            Kind::UniqueDecoy => sim.unique_decoy(self.ops),
            Kind::Unique => {
                sim.unique = true;
                sim.background(self.ops, None);
            }
            Kind::WritesInFlight => sim.rounds(self.ops, None),
            Kind::TwoReads => sim.rounds(self.ops, Some(self.ops / 2)),
        }
        sim.finish()
    }
}

/// The table, one shape per row (the ranges at one end).
pub fn table() -> Vec<Shape> {
    let s = |name, kind, ops, procs, info| Shape {
        name,
        kind,
        ops,
        procs,
        info,
    };
    vec![
        s("simulated 10k/30p/200i", Kind::Simulated, 10_000, 30, 200),
        s("simulated 20k/50p/500i", Kind::Simulated, 20_000, 50, 500),
        s(
            "simulated no crashes 20k/50p",
            Kind::Simulated,
            20_000,
            50,
            0,
        ),
        s(
            "writes in flight 5k/50p/50i",
            Kind::WritesInFlight,
            5_000,
            50,
            50,
        ),
        s(
            "stale rewritten 5k/10p/50i",
            Kind::StaleRewritten,
            5_000,
            10,
            50,
        ),
        s(
            "stale rewritten 20k/50p/500i",
            Kind::StaleRewritten,
            20_000,
            50,
            500,
        ),
        s("two reads 5k/30p/0i", Kind::TwoReads, 5_000, 30, 0),
        s("two reads 5k/50p/50i", Kind::TwoReads, 5_000, 50, 50),
        s(
            "unique decoy cas 10k/10p/201i",
            Kind::UniqueDecoy,
            10_000,
            10,
            201,
        ),
    ]
}

/// One scripted op of a dedicated process: applied for real, or a read with a made-up result.
#[derive(Clone)]
struct Step {
    f: &'static str,
    input: Value,
    fake: Option<Value>,
    crash: bool,
}

impl Step {
    fn real(f: &'static str, input: Value) -> Step {
        Step {
            f,
            input,
            fake: None,
            crash: false,
        }
    }
    fn fake_read(output: Value) -> Step {
        Step {
            f: "read",
            input: Value::Null,
            fake: Some(output),
            crash: false,
        }
    }
}

/// An op a process has invoked; `done` holds its completion once it took effect.
struct Open {
    f: &'static str,
    input: Value,
    crash: bool,
    done: Option<(EventType, Value, Option<&'static str>)>,
}

struct Sim {
    rng: SmallRng,
    events: Vec<Event>,
    time: u64,
    reg: Option<i64>,
    pids: Vec<u64>,
    open: Vec<Option<Open>>,
    next_pid: u64,
    /// Ops that crashed before taking effect and may still take effect.
    lingering: Vec<(&'static str, Value)>,
    /// Op numbers (in invoke order) that crash.
    crashes: HashSet<usize>,
    invoked: usize,
    /// Values background writes and cas may write.
    writable: Vec<i64>,
    /// Unique values: every write and cas writes a fresh one.
    unique: bool,
    fresh: i64,
}

impl Sim {
    fn new(seed: u64, shape: &Shape) -> Sim {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut crashes = HashSet::new();
        while crashes.len() < shape.info.min(shape.ops) {
            crashes.insert(rng.gen_range(0..shape.ops));
        }
        let reserve = matches!(shape.kind, Kind::StaleRewritten | Kind::TwoReads);
        Sim {
            rng,
            events: Vec::with_capacity(2 * shape.ops + 16),
            time: 0,
            reg: None,
            pids: (0..shape.procs as u64).collect(),
            open: (0..shape.procs).map(|_| None).collect(),
            next_pid: shape.procs as u64,
            lingering: Vec::new(),
            crashes,
            invoked: 0,
            writable: (0..=RESERVED)
                .filter(|&v| !reserve || v != RESERVED)
                .collect(),
            unique: false,
            fresh: 100,
        }
    }

    fn finish(mut self) -> Vec<Event> {
        for (i, e) in self.events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        self.events
    }

    fn emit(&mut self, pid: u64, kind: EventType, f: &str, value: Value, error: Option<&str>) {
        self.time += self.rng.gen_range(1_000..50_000);
        self.events.push(Event {
            index: 0,
            time: self.time,
            process: Process::Client(pid),
            kind,
            f: f.to_string(),
            key: None,
            value,
            node: None,
            error: error.map(str::to_string),
        });
    }

    /// Applies `f` to the register; returns the completion (type, value, error).
    fn apply(&mut self, f: &str, input: &Value) -> (EventType, Value, Option<&'static str>) {
        match f {
            "read" => (EventType::Ok, json!(self.reg), None),
            "write" => {
                self.reg = input.as_i64();
                (EventType::Ok, input.clone(), None)
            }
            _ if self.reg == input[0].as_i64() => {
                self.reg = input[1].as_i64();
                (EventType::Ok, input.clone(), None)
            }
            _ => (EventType::Fail, input.clone(), Some("precondition-failed")),
        }
    }

    fn value(&mut self) -> i64 {
        if self.unique {
            self.fresh += 1;
            self.fresh
        } else {
            *self.writable.choose(&mut self.rng).expect("some value")
        }
    }

    fn random_op(&mut self) -> (&'static str, Value) {
        match self.rng.gen_range(0..10) {
            0..=4 => ("read", Value::Null),
            5..=7 => ("write", json!(self.value())),
            _ => {
                let from = match (self.unique, self.reg) {
                    (true, Some(v)) if self.rng.gen_bool(0.7) => v,
                    (true, _) => self.fresh - self.rng.gen_range(0..3),
                    (false, _) => *self.writable.choose(&mut self.rng).expect("some value"),
                };
                ("cas", json!([from, self.value()]))
            }
        }
    }

    /// Now and then a crashed op takes effect late (or is forgotten: it never will).
    fn maybe_land(&mut self) {
        if !self.lingering.is_empty() && self.rng.gen_bool(0.02) {
            let i = self.rng.gen_range(0..self.lingering.len());
            let (f, input) = self.lingering.swap_remove(i);
            if self.rng.gen_bool(0.7) {
                self.apply(f, &input);
            }
        }
    }

    /// Moves client `s` one step: invoke, take effect, or complete (or crash).
    fn advance(&mut self, s: usize, op: Option<(&'static str, Value)>) {
        let pid = self.pids[s];
        match self.open[s].take() {
            None => {
                let Some((f, input)) = op else { return };
                let crash = self.crashes.contains(&self.invoked);
                self.invoked += 1;
                let shown = if f == "read" {
                    Value::Null
                } else {
                    input.clone()
                };
                self.emit(pid, EventType::Invoke, f, shown, None);
                self.open[s] = Some(Open {
                    f,
                    input,
                    crash,
                    done: None,
                });
            }
            Some(o) if o.done.is_none() => {
                if o.crash && self.rng.gen_bool(0.5) {
                    self.crash(s, o.f, o.input.clone());
                    if o.f != "read" {
                        self.lingering.push((o.f, o.input));
                    }
                    return;
                }
                let done = Some(self.apply(o.f, &o.input));
                self.open[s] = Some(Open { done, ..o });
            }
            Some(o) => {
                if o.crash {
                    self.crash(s, o.f, o.input);
                    return;
                }
                let (kind, value, error) = o.done.expect("took effect");
                self.emit(pid, kind, o.f, value, error);
            }
        }
    }

    /// Client `s`'s op ends `info`; a fresh process takes its place.
    fn crash(&mut self, s: usize, f: &'static str, input: Value) {
        let shown = if f == "read" { Value::Null } else { input };
        self.emit(self.pids[s], EventType::Info, f, shown, Some("timeout"));
        self.pids[s] = self.next_pid;
        self.next_pid += 1;
    }

    fn busy(&self) -> bool {
        self.open.iter().any(|o| o.is_some())
    }

    /// `n` random ops from the clients, interleaved with `script` run by a process of its own.
    fn background(&mut self, n: usize, script: Option<Vec<Step>>) {
        let mut script = script.map(|s| Scripted::new(self.next_pid, s));
        self.next_pid += 1;
        let target = self.invoked + n;
        let procs = self.open.len();
        while self.invoked < target || self.busy() || script.as_ref().is_some_and(|s| !s.over()) {
            let s = self.rng.gen_range(0..=procs);
            if s == procs {
                if let Some(sc) = script.as_mut() {
                    sc.advance(self);
                }
            } else {
                let op = (self.invoked < target).then(|| self.random_op());
                self.advance(s, op);
            }
            self.maybe_land();
        }
    }

    /// Unique values with the decoy construction halfway (see [`Kind::UniqueDecoy`]).
    fn unique_decoy(&mut self, n: usize) {
        self.unique = true;
        self.background(n / 2, None);
        let z = self.fresh + 1;
        let (z2, u, u2) = (z + 1, z + 2, z + 3);
        self.fresh += 4;
        let mut decoy = Step::real("cas", json!([z, u]));
        decoy.crash = true;
        let script = vec![
            Step::real("write", json!(z)),
            Step::real("write", json!(z2)),
            decoy,
            Step::real("write", json!(u)),
            Step::real("write", json!(u2)),
            Step::fake_read(json!(u)),
        ];
        self.background(1, Some(script));
        self.background(n - n / 2 - 1, None);
    }

    /// Rounds of writes in flight then reads; round `bad` (op number) gets the two reads.
    fn rounds(&mut self, n: usize, bad: Option<usize>) {
        let procs = self.open.len();
        let mut bad = bad;
        while self.invoked < n {
            let poisoned = bad.is_some_and(|b| self.invoked >= b);
            let mut order: Vec<usize> = (0..procs).collect();
            order.shuffle(&mut self.rng);
            for &s in &order {
                let v = json!(self.value());
                self.advance(s, Some(("write", v)));
            }
            if poisoned {
                // The only write of 4 takes effect first, a write of another value right after.
                self.force(order[0], json!(RESERVED));
                self.force(order[1], json!(0));
            }
            self.drain();
            if poisoned {
                let script = vec![
                    Step::real("read", Value::Null),
                    Step::fake_read(json!(RESERVED)),
                ];
                let mut sc = Scripted::new(self.next_pid, script);
                self.next_pid += 1;
                while !sc.over() {
                    sc.advance(self);
                }
                bad = None;
            }
            for s in 0..procs {
                self.advance(s, Some(("read", Value::Null)));
            }
            self.drain();
        }
    }

    /// Client `s`'s open write becomes a write of `v` that takes effect now and returns.
    fn force(&mut self, s: usize, v: Value) {
        let o = self.open[s].as_mut().expect("a write in flight");
        o.crash = false;
        let last = self
            .events
            .iter_mut()
            .rev()
            .find(|e| e.process == Process::Client(self.pids[s]))
            .expect("its invoke");
        last.value = v.clone();
        let done = Some(self.apply("write", &v));
        let o = self.open[s].as_mut().expect("a write in flight");
        (o.input, o.done) = (v, done);
    }

    /// Every open op takes effect and completes, in random order.
    fn drain(&mut self) {
        while self.busy() {
            let s = self.rng.gen_range(0..self.open.len());
            self.advance(s, None);
            self.maybe_land();
        }
    }
}

/// A dedicated process running its script, one op at a time.
struct Scripted {
    pid: u64,
    steps: std::vec::IntoIter<Step>,
    /// The step in flight and, once it took effect, the value its completion shows.
    current: Option<(Step, Option<Value>)>,
    done: bool,
}

impl Scripted {
    fn new(pid: u64, steps: Vec<Step>) -> Scripted {
        Scripted {
            pid,
            steps: steps.into_iter(),
            current: None,
            done: false,
        }
    }

    fn over(&self) -> bool {
        self.done
    }

    /// Invoke the next step, take effect, or complete it. A crashing step ends `info` at once
    /// and the script goes on under a new process id.
    fn advance(&mut self, sim: &mut Sim) {
        match self.current.take() {
            None => match self.steps.next() {
                None => self.done = true,
                Some(st) => {
                    let shown = if st.f == "read" {
                        Value::Null
                    } else {
                        st.input.clone()
                    };
                    sim.emit(self.pid, EventType::Invoke, st.f, shown.clone(), None);
                    if st.crash {
                        sim.emit(self.pid, EventType::Info, st.f, shown, Some("timeout"));
                        self.pid = sim.next_pid;
                        sim.next_pid += 1;
                    } else {
                        self.current = Some((st, None));
                    }
                }
            },
            Some((st, None)) => {
                let shown = match &st.fake {
                    Some(v) => v.clone(),
                    None => sim.apply(st.f, &st.input).1,
                };
                self.current = Some((st, Some(shown)));
            }
            Some((st, Some(shown))) => sim.emit(self.pid, EventType::Ok, st.f, shown, None),
        }
    }
}
