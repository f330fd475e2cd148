//! Latency, throughput and availability from a history, and the intervals when faults were active.
//!
//! Client invocations are paired with their completions by process (Jepsen's convention: one op
//! in flight per process). An invocation with no completion (an aborted run) is kept as
//! [`Outcome::Pending`] and left out of latency figures and availability.
//!
//! Faults come from nemesis events: `start-partition`/`stop-partition`, `pause`/`resume`,
//! `kill`/`start`, and generally `start-X`/`stop-X`. A fault is counted as active from the first
//! event of its start action to the last event of its stop action, so ops near the edges are
//! attributed to the fault rather than to quiet time. A fault never stopped lasts to the end.

mod faults;
mod read;

use checker::history::{Event, EventType, HistoryError};
use faults::FaultTracker;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// How a client operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Ok,
    Fail,
    /// Indefinite: may or may not have taken effect (timeouts, crashes).
    Info,
    /// Invoked but never completed in the history (the run stopped first).
    Pending,
}

impl Outcome {
    pub const COMPLETED: [Outcome; 3] = [Outcome::Ok, Outcome::Fail, Outcome::Info];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Pending => "pending",
        }
    }
}

/// One client operation: invocation paired with its completion.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    pub process: u64,
    /// Index into [`Analysis::fs`].
    pub f: u32,
    pub start_ns: u64,
    /// Completion time; equals `start_ns` for pending ops.
    pub end_ns: u64,
    pub outcome: Outcome,
    /// A `fail` that still observed the state (a cas whose `from` differed, a missing key): the
    /// service answered, so it counts as available.
    pub observed: bool,
}

impl Op {
    pub fn latency_ms(&self) -> f64 {
        (self.end_ns.saturating_sub(self.start_ns)) as f64 / 1e6
    }
}

/// One fault on one target (or on the whole cluster when `target` is `None`).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultInterval {
    /// `partition`, `pause`, `kill`, `latency`, ...
    pub kind: String,
    pub target: Option<String>,
    pub start_ns: u64,
    pub end_ns: u64,
    /// True when the history ends before the fault was stopped.
    pub open: bool,
}

/// Operation counts by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    pub pending: usize,
    /// Fails that observed the state (see [`Op::observed`]).
    pub observed: usize,
}

impl Counts {
    pub fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Info => self.info += 1,
            Outcome::Pending => self.pending += 1,
        }
    }
    pub fn add_op(&mut self, op: &Op) {
        self.add(op.outcome);
        self.observed += op.observed as usize;
    }
    pub fn completed(&self) -> usize {
        self.ok + self.fail + self.info
    }
    /// Share of completed ops the service answered (ok, or a fail that observed the state, such
    /// as a cas whose `from` differed); `None` when none completed.
    pub fn availability(&self) -> Option<f64> {
        let n = self.completed();
        (n > 0).then(|| (self.ok + self.observed) as f64 / n as f64)
    }
}

/// Latency quantiles in milliseconds over a set of ops.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub n: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// From latencies in ms; sorts the slice. `None` when empty.
    pub fn of(lat: &mut [f64]) -> Option<Latency> {
        if lat.is_empty() {
            return None;
        }
        lat.sort_unstable_by(|a, b| a.total_cmp(b));
        Some(Latency {
            n: lat.len(),
            p50: quantile_sorted(lat, 0.5),
            p95: quantile_sorted(lat, 0.95),
            p99: quantile_sorted(lat, 0.99),
            max: lat[lat.len() - 1],
        })
    }
}

/// Nearest-rank quantile of a sorted, non-empty slice.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let rank = (q * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Availability and latency over one kind of period: everything, quiet time, or one fault kind.
#[derive(Clone, Debug)]
pub struct PeriodStats {
    /// `all`, `quiet`, or a fault kind.
    pub name: String,
    /// Seconds the period covered.
    pub seconds: f64,
    pub counts: Counts,
    /// Latency of ok ops.
    pub latency: Option<Latency>,
}

/// Per time bucket figures.
#[derive(Clone, Debug)]
pub struct Buckets {
    pub width_ns: u64,
    pub count: usize,
    /// `(f, outcome)` -> completions per second in each bucket.
    pub rate: BTreeMap<(u32, Outcome), Vec<f64>>,
    /// `f` -> per bucket latency quantiles of ok ops (`None` where a bucket has none).
    pub quantiles: BTreeMap<u32, Vec<Option<Latency>>>,
}

impl Buckets {
    /// Middle of bucket `i` in seconds.
    pub fn mid_s(&self, i: usize) -> f64 {
        (i as f64 + 0.5) * self.width_ns as f64 / 1e9
    }
}

/// Everything the plots, report and comparison need from one history.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// Distinct client `f`s in order of first appearance.
    pub fs: Vec<String>,
    pub ops: Vec<Op>,
    pub faults: Vec<FaultInterval>,
    /// Time of the last event (ns).
    pub end_ns: u64,
    pub client_events: usize,
    pub nemesis_events: usize,
    /// Completions with no matching invocation (malformed history); ignored.
    pub unmatched_completions: usize,
    /// The run's op timeout, when known: plots draw indefinite (`info`) ops there, as Jepsen
    /// does, since when they took effect (if ever) is unknown.
    pub op_timeout_ms: Option<f64>,
}

impl Analysis {
    pub fn from_events(events: &[Event]) -> Analysis {
        let mut b = Builder::default();
        for e in events {
            match e.process.client() {
                Some(p) => b.client(e.time, p, e.kind, &e.f, observes(e.error.as_deref())),
                None => b.nemesis(e),
            }
        }
        b.finish()
    }

    /// Reads a JSON-lines history straight into an analysis without keeping its events (a
    /// million-op history stays cheap). Like [`checker::history::read_jsonl_prefix`], stops at the
    /// first line that does not parse and returns that error beside the prefix's analysis.
    /// Lines are parsed on all cores, a block at a time; pairing stays in history order.
    pub fn from_jsonl(path: &Path) -> Result<(Analysis, Option<HistoryError>), HistoryError> {
        Analysis::from_jsonl_blocks(path, 16 << 20)
    }

    pub fn f_name(&self, f: u32) -> &str {
        &self.fs[f as usize]
    }

    pub fn duration_s(&self) -> f64 {
        self.end_ns as f64 / 1e9
    }

    /// Fault kinds in order of first appearance.
    pub fn fault_kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = Vec::new();
        for f in &self.faults {
            if !kinds.contains(&f.kind) {
                kinds.push(f.kind.clone());
            }
        }
        kinds
    }

    /// Merged intervals per fault kind (targets folded together), sorted.
    pub fn kind_intervals(&self) -> BTreeMap<String, Vec<(u64, u64)>> {
        let mut by_kind: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
        for f in &self.faults {
            by_kind
                .entry(f.kind.clone())
                .or_default()
                .push((f.start_ns, f.end_ns));
        }
        for v in by_kind.values_mut() {
            *v = merge(std::mem::take(v));
        }
        by_kind
    }

    pub fn counts_total(&self) -> Counts {
        let mut c = Counts::default();
        for op in &self.ops {
            c.add_op(op);
        }
        c
    }

    /// Counts per `f`, in the order of [`Analysis::fs`].
    pub fn counts_by_f(&self) -> Vec<Counts> {
        let mut v = vec![Counts::default(); self.fs.len()];
        for op in &self.ops {
            v[op.f as usize].add_op(op);
        }
        v
    }

    /// Latency of ok ops per `f`, in the order of [`Analysis::fs`].
    pub fn latency_by_f(&self) -> Vec<Option<Latency>> {
        let mut lat = vec![Vec::new(); self.fs.len()];
        for op in self.ops.iter().filter(|o| o.outcome == Outcome::Ok) {
            lat[op.f as usize].push(op.latency_ms());
        }
        lat.iter_mut().map(|l| Latency::of(l)).collect()
    }

    /// Latency of all ok ops.
    pub fn latency_ok(&self) -> Option<Latency> {
        let mut lat: Vec<f64> = self.ok_latencies();
        Latency::of(&mut lat)
    }

    pub fn ok_latencies(&self) -> Vec<f64> {
        self.ops
            .iter()
            .filter(|o| o.outcome == Outcome::Ok)
            .map(|o| o.latency_ms())
            .collect()
    }

    /// Completed ops per second over the whole run (ok only when `ok_only`).
    pub fn throughput(&self, ok_only: bool) -> f64 {
        let secs = self.duration_s();
        if secs <= 0.0 {
            return 0.0;
        }
        let c = self.counts_total();
        (if ok_only { c.ok } else { c.completed() }) as f64 / secs
    }

    /// Availability and latency overall, in quiet periods and during each fault kind. An op
    /// belongs to the period(s) active when it was invoked; an op invoked while two kinds of
    /// fault were active counts for both.
    pub fn periods(&self) -> Vec<PeriodStats> {
        let kinds = self.kind_intervals();
        let names: Vec<&String> = kinds.keys().collect();
        let mut counts = vec![Counts::default(); names.len() + 2];
        let mut lat: Vec<Vec<f64>> = vec![Vec::new(); names.len() + 2];
        for op in &self.ops {
            let mut any = false;
            let mut add = |i: usize| {
                counts[i].add_op(op);
                if op.outcome == Outcome::Ok {
                    lat[i].push(op.latency_ms());
                }
            };
            add(0);
            for (k, iv) in kinds.values().enumerate() {
                if covers(iv, op.start_ns) {
                    add(k + 2);
                    any = true;
                }
            }
            if !any {
                add(1);
            }
        }
        let faulty: u64 = merge(kinds.values().flatten().copied().collect())
            .iter()
            .map(|(s, e)| e.saturating_sub(*s))
            .sum();
        let mut secs = vec![
            self.end_ns as f64 / 1e9,
            self.end_ns.saturating_sub(faulty) as f64 / 1e9,
        ];
        secs.extend(
            kinds
                .values()
                .map(|iv| iv.iter().map(|(s, e)| e - s).sum::<u64>() as f64 / 1e9),
        );
        let mut all_names = vec!["all".to_string(), "quiet".to_string()];
        all_names.extend(names.iter().map(|s| s.to_string()));
        all_names
            .into_iter()
            .zip(counts)
            .zip(lat.iter_mut())
            .zip(secs)
            .map(|(((name, counts), lat), seconds)| PeriodStats {
                name,
                seconds,
                counts,
                latency: Latency::of(lat),
            })
            .collect()
    }

    /// A bucket width that gives 20 to 200 buckets over the run, on a 1-2-5 scale.
    pub fn bucket_width_ns(&self) -> u64 {
        let target = self.end_ns as f64 / 100.0;
        let mut w: f64 = 1e6; // 1 ms
        for _ in 0..60 {
            if w >= target * (1.0 - 1e-9) {
                break;
            }
            let digits = w / 10f64.powf(w.log10().floor());
            w *= if (digits - 2.0).abs() < 1e-6 {
                2.5
            } else {
                2.0
            };
        }
        w.round() as u64
    }

    /// Rate and latency quantiles per bucket of completion time.
    pub fn buckets(&self, width_ns: u64) -> Buckets {
        let width_ns = width_ns.max(1);
        let count = (self.end_ns / width_ns) as usize + 1;
        let mut rate: BTreeMap<(u32, Outcome), Vec<f64>> = BTreeMap::new();
        let mut lat: BTreeMap<u32, Vec<Vec<f64>>> = BTreeMap::new();
        let per_op = 1e9 / width_ns as f64;
        for op in self.ops.iter().filter(|o| o.outcome != Outcome::Pending) {
            let b = ((op.end_ns / width_ns) as usize).min(count - 1);
            rate.entry((op.f, op.outcome))
                .or_insert_with(|| vec![0.0; count])[b] += per_op;
            if op.outcome == Outcome::Ok {
                lat.entry(op.f).or_insert_with(|| vec![Vec::new(); count])[b].push(op.latency_ms());
            }
        }
        let quantiles = lat
            .into_iter()
            .map(|(f, mut bs)| (f, bs.iter_mut().map(|b| Latency::of(b)).collect()))
            .collect();
        Buckets {
            width_ns,
            count,
            rate,
            quantiles,
        }
    }
}

/// Whether sorted, merged intervals contain `t`.
fn covers(iv: &[(u64, u64)], t: u64) -> bool {
    let i = iv.partition_point(|(s, _)| *s <= t);
    i > 0 && t <= iv[i - 1].1
}

fn merge(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Whether a completion's error still observed the state (the service answered).
fn observes(error: Option<&str>) -> bool {
    matches!(error, Some("precondition-failed" | "key-does-not-exist"))
}

/// Pairs invocations with completions and collects faults, one event at a time.
#[derive(Default)]
struct Builder {
    a: Analysis,
    f_ids: HashMap<String, u32>,
    open: HashMap<u64, Op>,
    faults: FaultTracker,
}

impl Builder {
    fn client(&mut self, time: u64, p: u64, kind: EventType, f: &str, observed: bool) {
        let a = &mut self.a;
        a.end_ns = a.end_ns.max(time);
        a.client_events += 1;
        if kind == EventType::Invoke {
            let f = match self.f_ids.get(f) {
                Some(id) => *id,
                None => {
                    let id = a.fs.len() as u32;
                    a.fs.push(f.to_string());
                    self.f_ids.insert(f.to_string(), id);
                    id
                }
            };
            let op = Op {
                process: p,
                f,
                start_ns: time,
                end_ns: time,
                outcome: Outcome::Pending,
                observed: false,
            };
            if let Some(prev) = self.open.insert(p, op) {
                a.ops.push(prev);
            }
            return;
        }
        match self.open.remove(&p) {
            Some(mut op) => {
                op.end_ns = time.max(op.start_ns);
                op.outcome = match kind {
                    EventType::Ok => Outcome::Ok,
                    EventType::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
                op.observed = kind == EventType::Fail && observed;
                a.ops.push(op);
            }
            None => a.unmatched_completions += 1,
        }
    }

    fn nemesis(&mut self, e: &Event) {
        self.a.end_ns = self.a.end_ns.max(e.time);
        self.a.nemesis_events += 1;
        self.faults.event(e);
    }

    fn finish(mut self) -> Analysis {
        let mut a = self.a;
        a.ops.extend(self.open.into_values());
        a.ops.sort_by_key(|o| (o.start_ns, o.process));
        a.faults = std::mem::take(&mut self.faults).finish(a.end_ns);
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::history::parse_line;

    fn events(lines: &[&str]) -> Vec<Event> {
        lines.iter().map(|l| parse_line(l).unwrap()).collect()
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn a_cas_that_observed_another_value_counts_as_available() {
        let h = events(&[
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"cas","value":[1,2]}"#,
            r#"{"index":1,"time":5,"process":0,"type":"fail","f":"cas","value":[1,2],"error":"precondition-failed"}"#,
            r#"{"index":2,"time":6,"process":0,"type":"invoke","f":"write","value":3}"#,
            r#"{"index":3,"time":9,"process":0,"type":"fail","f":"write","value":3,"error":"temporarily-unavailable"}"#,
        ]);
        let c = Analysis::from_events(&h).counts_total();
        assert_eq!((c.fail, c.observed), (2, 1));
        assert_eq!(c.availability(), Some(0.5));
    }

    #[test]
    fn pairs_ops_and_finds_faults() {
        let h = events(&[
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","value":1}"#,
            r#"{"index":1,"time":2000000,"process":0,"type":"ok","f":"write","value":1}"#,
            r#"{"index":2,"time":3000000,"process":"nemesis","type":"invoke","f":"pause","value":["n1"]}"#,
            r#"{"index":3,"time":3500000,"process":"nemesis","type":"info","f":"pause","value":["n1"]}"#,
            r#"{"index":4,"time":4000000,"process":1,"type":"invoke","f":"read","value":null}"#,
            r#"{"index":5,"time":9000000,"process":1,"type":"info","f":"read","value":null,"error":"op-timeout"}"#,
            r#"{"index":6,"time":10000000,"process":"nemesis","type":"invoke","f":"resume","value":["n1"]}"#,
            r#"{"index":7,"time":11000000,"process":"nemesis","type":"info","f":"resume","value":["n1"]}"#,
            r#"{"index":8,"time":12000000,"process":0,"type":"invoke","f":"read","value":null}"#,
            r#"{"index":9,"time":13000000,"process":0,"type":"ok","f":"read","value":1}"#,
            r#"{"index":10,"time":14000000,"process":2,"type":"invoke","f":"cas","value":[1,2]}"#,
        ]);
        let a = Analysis::from_events(&h);
        assert_eq!(a.fs, vec!["write", "read", "cas"]);
        assert_eq!(a.ops.len(), 4);
        assert_eq!(
            a.faults,
            vec![FaultInterval {
                kind: "pause".into(),
                target: Some("n1".into()),
                start_ns: 3 * MS,
                end_ns: 11 * MS,
                open: false
            }]
        );
        let c = a.counts_total();
        assert_eq!((c.ok, c.fail, c.info, c.pending), (2, 0, 1, 1));
        let p = a.periods();
        assert_eq!(p[0].name, "all");
        assert_eq!(p[1].name, "quiet");
        assert_eq!(p[1].counts.ok, 2);
        assert_eq!(p[2].name, "pause");
        assert_eq!(p[2].counts.info, 1);
        assert_eq!(p[2].counts.availability(), Some(0.0));
        assert!((p[2].seconds - 0.008).abs() < 1e-9);
        let lat = a.latency_by_f();
        assert_eq!(lat[0].unwrap().max, 2.0);
    }

    #[test]
    fn unstopped_fault_lasts_to_the_end_and_kill_start_pairs() {
        let h = events(&[
            r#"{"index":0,"time":0,"process":"nemesis","type":"info","f":"start-partition","value":"majority"}"#,
            r#"{"index":1,"time":5,"process":"nemesis","type":"info","f":"kill","value":["n1","n2"]}"#,
            r#"{"index":2,"time":7,"process":"nemesis","type":"info","f":"start","value":["n2"]}"#,
            r#"{"index":3,"time":9,"process":"nemesis","type":"info","f":"start","value":null}"#,
            r#"{"index":4,"time":20,"process":0,"type":"invoke","f":"read","value":null}"#,
        ]);
        let a = Analysis::from_events(&h);
        let spans: Vec<_> = a
            .faults
            .iter()
            .map(|f| {
                (
                    f.kind.as_str(),
                    f.target.as_deref(),
                    f.start_ns,
                    f.end_ns,
                    f.open,
                )
            })
            .collect();
        assert_eq!(
            spans,
            vec![
                ("partition", Some("majority"), 0, 20, true),
                ("kill", Some("n1"), 5, 9, false),
                ("kill", Some("n2"), 5, 7, false)
            ]
        );
    }

    #[test]
    fn membership_steps_are_labelled_by_their_change() {
        let h = events(&[
            r#"{"index":0,"time":2,"process":"nemesis","type":"info","f":"start-membership","value":{"change":"add","label":"add n4","members":["n1","n2","n3","n4"]}}"#,
            r#"{"index":1,"time":6,"process":"nemesis","type":"info","f":"stop-membership","value":{"outcome":"ok","via":"n1"}}"#,
            r#"{"index":2,"time":20,"process":0,"type":"invoke","f":"read","value":null}"#,
        ]);
        let a = Analysis::from_events(&h);
        let spans: Vec<_> = (a.faults.iter())
            .map(|f| (f.kind.as_str(), f.target.as_deref(), f.start_ns, f.end_ns))
            .collect();
        assert_eq!(spans, vec![("membership", Some("add n4"), 2, 6)]);
    }

    #[test]
    fn power_cuts_are_per_node_like_kills() {
        let h = events(&[
            r#"{"index":0,"time":2,"process":"nemesis","type":"info","f":"start-power-cut","value":{"target":"all","nodes":["n1","n2"]}}"#,
            r#"{"index":1,"time":6,"process":"nemesis","type":"info","f":"stop-power-cut","value":{"nodes":["n1","n2"]}}"#,
            r#"{"index":2,"time":20,"process":0,"type":"invoke","f":"read","value":null}"#,
        ]);
        let a = Analysis::from_events(&h);
        let spans: Vec<_> = a
            .faults
            .iter()
            .map(|f| (f.kind.as_str(), f.target.as_deref(), f.start_ns, f.end_ns))
            .collect();
        assert_eq!(
            spans,
            vec![
                ("power-cut", Some("n1"), 2, 6),
                ("power-cut", Some("n2"), 2, 6)
            ]
        );
    }

    #[test]
    fn empty_history_has_no_figures() {
        let a = Analysis::from_events(&[]);
        assert!(a.latency_ok().is_none());
        assert_eq!(a.throughput(false), 0.0);
        assert_eq!(a.periods()[0].counts.availability(), None);
        let b = a.buckets(a.bucket_width_ns());
        assert_eq!(b.count, 1);
    }

    #[test]
    fn bucket_widths_are_round() {
        let mut a = Analysis::default();
        for (end, want) in [(60_000 * MS, 1000 * MS), (10_000 * MS, 100 * MS), (0, MS)] {
            a.end_ns = end;
            assert_eq!(a.bucket_width_ns(), want, "run of {end} ns");
        }
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        let l = Latency::of(&mut v).unwrap();
        assert_eq!((l.p50, l.p95, l.p99, l.max), (50.0, 95.0, 99.0, 100.0));
    }
}
