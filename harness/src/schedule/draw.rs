//! Drawing the windows of a schedule so that it covers what was asked: every requested fault kind
//! gets a window before any kind repeats, and each kind's targets come round in turn the same way
//! (shuffled bags, refilled when empty). Seeded, so `--replay` and reruns repeat it.
//!
//! Over a suite, the runs of one entry and fault set take turns too: run `j` of them is given
//! `--nemesis-turn j`, and its first round of targets starts at the `j`-th target in the order
//! listed, so the first windows of consecutive runs cover every target before any repeats, even
//! when each run has room for only one window per kind.
//!
//! Quiet and faulty periods alternate, starting quiet, each `interval × U(0.5, 1.5)` long. When the
//! first `2 × kinds` periods drawn would overrun the time limit, they are shortened towards half
//! the interval (never below it), so every kind still gets its window; a time limit below
//! `kinds × interval` cannot fit them even so and is refused by [`check_fit`].

use super::membership::Sim;
use super::{make_fault, millis, packet::Amounts, Fault, FaultKind, Plan, Target, Window};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

/// The kinds that can do something on a cluster of these nodes, each with its targets that can.
/// A one-node cluster has no links and no minority, so a partition there has no target.
pub fn usable(p: &Plan, amounts: &Amounts) -> Vec<(FaultKind, Vec<Target>)> {
    p.kinds
        .0
        .iter()
        // Membership steps are drawn on a track of their own (`super::membership`).
        .filter(|k| **k != FaultKind::Membership)
        .map(|k| {
            let ts: Vec<Target> = p
                .targets
                .0
                .iter()
                .copied()
                .filter(|t| k.applicable(*t))
                .filter(|t| make_fault(*k, *t, &p.members(), amounts).is_some())
                .collect();
            (*k, ts)
        })
        .filter(|(_, ts)| !ts.is_empty())
        .collect()
}

/// The shortest `--time-limit` that fits a window of every usable kind: a quiet and a faulty
/// period of at least half the interval each.
pub fn shortest_fit(kinds: usize, interval_s: f64) -> f64 {
    kinds as f64 * interval_s
}

/// Refuses a time limit too short for one window of each kind; the error says what fits.
pub fn check_fit(p: &Plan, amounts: &Amounts) -> Result<(), String> {
    let kinds = usable(p, amounts);
    let need = shortest_fit(kinds.len(), p.interval_s);
    if p.time_limit_s + 1e-9 >= need {
        return Ok(());
    }
    let show = crate::duration::show;
    let names: Vec<&str> = kinds.iter().map(|(k, _)| k.name()).collect();
    Err(format!(
        "--time-limit {} is too short for a window of each of the {} fault kinds ({}) at \
         --nemesis-interval {}: each needs a quiet and a faulty period of at least half the \
         interval, so use --time-limit {} or more (or --nemesis-interval {} or less, or fewer \
         kinds)",
        show(p.time_limit_s),
        kinds.len(),
        names.join(","),
        show(p.interval_s),
        show(need),
        show(millis_floor(p.time_limit_s / kinds.len() as f64)),
    ))
}

fn millis_floor(s: f64) -> f64 {
    (s * 1000.0).floor() / 1000.0
}

/// A shuffled bag: every item once, in a random order, then again in a new order.
pub(super) struct Bag<T> {
    all: Vec<T>,
    left: Vec<T>,
}

impl<T: Copy> Bag<T> {
    pub(super) fn new(all: Vec<T>) -> Self {
        Bag {
            all,
            left: Vec::new(),
        }
    }

    /// A bag whose first round is `all` in order, starting at `turn` (then shuffled rounds).
    fn turned(all: Vec<T>, turn: u32) -> Self {
        let mut left = all.clone();
        left.rotate_left(turn as usize % all.len().max(1));
        left.reverse();
        Bag { all, left }
    }

    pub(super) fn next(&mut self, rng: &mut StdRng) -> T {
        if self.left.is_empty() {
            self.left = self.all.clone();
            self.left.shuffle(rng);
        }
        self.left.pop().expect("bags are never empty")
    }
}

/// The period lengths, drawn until they pass the time limit; the first `2 × kinds` are shortened
/// (the part above half the interval scaled down) when they would not fit.
fn periods(p: &Plan, kinds: usize, rng: &mut StdRng) -> Vec<f64> {
    let half = p.interval_s / 2.0;
    let mut lens = Vec::new();
    let mut total = 0.0;
    while total < p.time_limit_s || lens.len() < 2 * kinds {
        let len = p.interval_s * rng.gen_range(0.5..1.5);
        lens.push(len);
        total += len;
    }
    let first = (2 * kinds).min(lens.len());
    let sum: f64 = lens[..first].iter().sum();
    if kinds > 0 && sum > p.time_limit_s {
        let spare = (p.time_limit_s - half * first as f64).max(0.0);
        let extra = sum - half * first as f64;
        let g = if extra > 0.0 { spare / extra } else { 0.0 };
        for l in &mut lens[..first] {
            *l = half + (*l - half) * g;
        }
    }
    lens
}

/// The windows of `p`: faulty periods take the next kind from the kinds' bag and that kind's
/// next target from its own bag, among the members of the moment; membership steps (instant
/// windows on a track of their own) are merged in by start.
pub fn windows(p: &Plan, amounts: &Amounts, rng: &mut StdRng) -> Vec<Window> {
    let kinds = usable(p, amounts);
    let mut sim = Sim::new(p);
    if kinds.is_empty() && sim.is_none() {
        return Vec::new();
    }
    let mut kind_bag = Bag::new((0..kinds.len()).collect());
    let mut target_bags: Vec<Bag<Target>> = kinds
        .iter()
        .map(|(_, ts)| match p.turn {
            Some(j) => Bag::turned(ts.clone(), j),
            None => Bag::new(ts.clone()),
        })
        .collect();
    let lens = periods(p, kinds.len(), rng);
    let limit = p.time_limit_s;
    let mut windows = Vec::new();
    let mut steps = Vec::new();
    let mut t = 0.0;
    for (i, len) in lens.into_iter().enumerate() {
        let faulty = i % 2 == 1;
        if faulty && !kinds.is_empty() && limit - t >= 0.1 - 1e-9 {
            if let Some(s) = sim.as_mut() {
                s.until(t, &[], &mut steps);
            }
            let (k, order) = match &sim {
                None => {
                    let mut order = p.members();
                    order.shuffle(rng);
                    (kind_bag.next(rng), order)
                }
                Some(s) => {
                    let k = kind_bag.next(rng);
                    let mut order = pool(kinds[k].0, p, s);
                    order.shuffle(rng);
                    (k, order)
                }
            };
            let target = target_bags[k].next(rng);
            if let Some(fault) = draw_fault(kinds[k].0, target, &order, amounts, rng) {
                let stop = (t + len).min(limit);
                if let Some(s) = sim.as_mut() {
                    s.until(stop, super::membership::down(&fault), &mut steps);
                }
                windows.push(Window {
                    start_s: millis(t),
                    stop_s: millis(stop),
                    fault,
                });
            }
        }
        t += len;
    }
    if let Some(s) = sim.as_mut() {
        s.until(limit, &[], &mut steps);
    }
    windows.extend(steps);
    windows.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    windows
}

/// Whom a fault may hit while the membership changes: a process fault hits members (a node
/// removed or not yet added serves no one), a network fault every node, since a removed node
/// still talks to the others and its links are where a stale vote travels.
fn pool(kind: FaultKind, p: &Plan, sim: &Sim) -> Vec<String> {
    match kind {
        FaultKind::Partition | FaultKind::Loss | FaultKind::Dup => p.nodes.to_vec(),
        _ => sim.members.clone(),
    }
}

/// The fault of `kind` on `target`; clock faults also draw how the clock goes wrong.
fn draw_fault(
    kind: FaultKind,
    target: Target,
    order: &[String],
    amounts: &Amounts,
    rng: &mut StdRng,
) -> Option<Fault> {
    let fault = make_fault(kind, target, order, amounts)?;
    Some(super::clock::draw(fault, amounts, rng))
}
