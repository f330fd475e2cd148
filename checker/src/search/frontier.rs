//! A breadth-first search over the history's events (Knossos's "linear" checker with Lowe's
//! just-in-time linearization): after each event it keeps every configuration a valid partial
//! linearization can be in, merging those that differ only in which member of a class of
//! interchangeable ops was used. Where the depth-first search must undo a whole prefix after a
//! failure, this one meets each event once; it decides histories the other gives up on (dozens
//! of concurrent writes of a few values, then reads that cannot all hold).
//!
//! A configuration is the state, the returning ops already linearized before they returned
//! (`placed`), the crashed ops used (counts per class) and `hide`, explained below. Every op
//! that returned is linearized. Ops are linearized only in a *block* just before a return
//! event, ending with the op returning there, and read-only ops as soon as they are legal.
//!
//! **Completeness.** Take a valid linearization σ. At each return of an op `x` not yet placed,
//! place every op σ puts before `x` that is not placed yet: they were all called before `x`
//! returned (σ respects real time), and the ones left out are crashed ops σ puts after every
//! returned op, which may stay out. So blocks alone follow σ. The rules below change σ by
//! exchanges and prune only orders such an exchange turns into one that is kept; each of
//! them shortens a block or moves an op that has not returned later in it, so they end.
//! - *Reads now* (as `legal_read` in the search): a read-only op legal in a configuration is
//!   placed there; moving it earlier in σ changes no state, and everything it must follow is
//!   already placed. A crashed read-only op is never placed: it changes nothing.
//! - *Twins* (as `later_twin` and `twin_waits`): of a class, a block places only the open op
//!   that returns first, or the crashed op called first.
//! - *Hidden blind ops*: a blind op right before another blind op changes no state and nothing
//!   sees it. So a block never places two blind ops in a row: the first one stays open instead,
//!   and when it returns it may be dropped ("hidden", as if placed just before that later blind
//!   op, which lies inside its interval). `hide` is the position of the latest block that
//!   placed a blind op: ops open then and called before it may be hidden at their return.
//! - *Just in time* (as `commutes_with_crashed`): an op `b` that has not returned is not placed
//!   right before an op `y` that returns before it, if `y` is legal without `b` and both
//!   orders reach one state: `b` may move after `y`, inside its interval.
//! - *Overwritten crashed ops* (as `overwrites_crashed`): a blind op is not placed right after
//!   a crashed op with no read between: leaving the crashed op out reaches the same state with
//!   the same reads and one crashed op more left (it shortens the block).
//!
//! After each event, configurations in one state are compared (`dominates`): one that used no
//! more crashed ops of any class (as in `cache`), may hide at least the same ops, placed at
//! least the same reads, and placed the same other ops but for blind ones it may hide, can do
//! whatever the other can, which is dropped.
//!
//! A history that makes the frontier too wide, or its work too large, may be proved valid by
//! the same search keeping only a few configurations ([`prove_valid`]), or is left to the
//! depth-first search: many crashed ops of many kinds, with reads open beside them, give many
//! configurations none of which dominates another, where the depth-first search needs to find
//! only one linearization.

use super::budget::{Budget, Meter};
use super::classes::Classes;
use super::hash::{self, KeyMap, KeySet, OpsHash};
use super::Search;
use crate::model::{PartModel, Timed};
use std::collections::BTreeSet;

/// The most configurations kept after one event before the search gives up (the depth-first
/// search then decides): the frontier's cost grows with its width, the other search's does not.
const WIDEST: usize = 20_000;

/// The work (configurations, block prefixes and comparisons) allowed per op before the search
/// gives up in the same way, and the work allowed on top. Where the frontier stays narrow it
/// needs 2-9 per op (the bench's shapes); past that, the depth-first search usually finds one
/// linearization sooner than the frontier grows.
const WORK_PER_OP: u64 = 10;
const WORK_BASE: u64 = 10_000;

/// The work allowed per returned op so far, on top of `WORK_BASE`, before the exact search
/// gives up early: a frontier going wide spends its whole budget within its first few hundred
/// returns (the bench's valid 100,000-op row with 2,500 crashed ops: 1,000,000 work by the
/// 399th return, 0.9 s, before it gave up all the same). The rows it decides stay far below
/// (at most 19 per return, the unique-decoy row); giving up is always sound, the later stages
/// decide.
const PACE_PER_RETURN: u64 = 200;

/// The work allowed per op and per configuration kept in the beam ([`prove_valid`]): on the
/// valid 20,000-op row with 500 crashed ops it needs about 12.
const BEAM_WORK_PER_WIDTH: u64 = 32;

/// The steps one block may take in the beam before it is cut short, and the configurations it
/// may make: a block chaining hundreds of crashed ops makes thousands of configurations the
/// beam would drop anyway. Cutting it at two (the returning op first, see `x_first`) keeps
/// the cost per event near the beam's width; 4 or 1 emptied the beam on the bench's valid
/// 20,000-op row with 500 crashed ops, 2 proved it with widths 5 to 32.
const BEAM_BLOCK_STEPS: u64 = 128;
const BEAM_BLOCK_OUTS: usize = 2;

/// The longest block tried: a block is placed by recursion, one frame per op, and a search
/// thread's stack is a few MiB. Longer ones (thousands of crashed ops chained) are left to the
/// depth-first search, which keeps its path on the heap.
const DEEPEST: usize = 1_000;

/// No trace node.
const ROOT: u32 = u32::MAX;

#[derive(Clone)]
struct Config<S> {
    state: S,
    /// Returning ops that change the state, placed before their return, sorted.
    placed: Vec<u32>,
    placed_hash: OpsHash,
    /// Returning read-only ops placed before their return, sorted, and their hash (kept as
    /// ops are placed: hashing the list at every block step cost a seventh of the search).
    reads: Vec<u32>,
    reads_hash: OpsHash,
    /// Crashed ops used, as (class, how many), sorted by class: the first ones called.
    crashed: Vec<(u32, u32)>,
    /// Position of the latest block that placed a blind op (0: none).
    hide: usize,
    /// The last op placed, in `Trace`.
    trace: u32,
}

impl<S> Config<S> {
    fn has(&self, op: u32) -> bool {
        self.placed.binary_search(&op).is_ok()
    }

    fn has_read(&self, op: u32) -> bool {
        self.reads.binary_search(&op).is_ok()
    }

    fn place_read(&mut self, op: u32, trace: &mut Trace) {
        if let Err(at) = self.reads.binary_search(&op) {
            self.reads.insert(at, op);
            self.reads_hash = hash::toggle(self.reads_hash, op as usize);
        }
        self.trace = trace.push(op, self.trace);
    }

    fn place(&mut self, op: u32, trace: &mut Trace) {
        if let Err(at) = self.placed.binary_search(&op) {
            self.placed.insert(at, op);
            self.placed_hash = hash::toggle(self.placed_hash, op as usize);
        }
        self.trace = trace.push(op, self.trace);
    }

    fn unplace(&mut self, op: u32) -> bool {
        if let Ok(at) = self.reads.binary_search(&op) {
            self.reads.remove(at);
            self.reads_hash = hash::toggle(self.reads_hash, op as usize);
            return true;
        }
        match self.placed.binary_search(&op) {
            Ok(at) => {
                self.placed.remove(at);
                self.placed_hash = hash::toggle(self.placed_hash, op as usize);
                true
            }
            Err(_) => false,
        }
    }

    fn used(&self, class: u32) -> u32 {
        match self.crashed.binary_search_by_key(&class, |x| x.0) {
            Ok(i) => self.crashed[i].1,
            Err(_) => 0,
        }
    }

    fn use_crashed(&mut self, class: u32) {
        match self.crashed.binary_search_by_key(&class, |x| x.0) {
            Ok(i) => self.crashed[i].1 += 1,
            Err(i) => self.crashed.insert(i, (class, 1)),
        }
    }
}

/// The ops placed on each configuration's path, as a tree of (op, parent) nodes: for the
/// explanation's linearized prefix.
#[derive(Default)]
struct Trace(Vec<(u32, u32)>);

impl Trace {
    fn push(&mut self, op: u32, parent: u32) -> u32 {
        self.0.push((op, parent));
        (self.0.len() - 1) as u32
    }

    fn path(&self, mut at: u32) -> Vec<usize> {
        let mut ops = Vec::new();
        while at != ROOT {
            let (op, parent) = self.0[at as usize];
            ops.push(op as usize);
            at = parent;
        }
        ops.reverse();
        ops
    }
}

/// What is open at the current event, shared by every configuration.
struct Open {
    /// Per class, the open returning ops that change the state, as (return, op).
    by_class: Vec<BTreeSet<(usize, u32)>>,
    /// Classes with an entry in `by_class`.
    classes: Vec<u32>,
    /// Per class, the open returning read-only ops.
    reads: Vec<Vec<u32>>,
    read_classes: Vec<u32>,
    /// Calls of the open returning blind ops (to compare `hide`s).
    blind_calls: BTreeSet<usize>,
    /// The classes with crashed ops (`Ctx::crashed`) whose first one was called, in class
    /// order: a block tries only these (with a thousand crashed ops of unique values, most
    /// classes are not called yet, and trying each at every step cost most of the search).
    crashed_called: Vec<u32>,
}

/// The search's fixed inputs.
struct Ctx<'a, P: PartModel> {
    part: &'a P,
    ops: &'a [Timed<P::Op>],
    class: &'a [u32],
    blind: Vec<bool>,
    read_only: Vec<bool>,
    /// Per class, its crashed ops that change the state, in call order.
    crashed: Vec<Vec<u32>>,
    /// Blocks try the returning op first: the beam cuts blocks short (see [`prove_valid`]).
    x_first: bool,
}

/// Decides `ops` by the frontier search, or None if the frontier grew too wide.
pub(super) fn decide<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    classes: &Classes,
    budget: &Budget,
) -> Option<(Search, u64)> {
    run(part, ops, classes, budget, None)
}

/// Finds `ops` linearizable, if it can, by the frontier search keeping at most `width`
/// configurations after each event (a beam): None if the beam emptied, or it gave up.
///
/// **Soundness.** Only a `Linearizable` outcome is reported, and it needs one configuration
/// to survive the last event. Every configuration the frontier holds is a genuine valid
/// partial linearization (each op it placed, crashed ones used and blind ones hidden, was
/// legal where it was put, within its interval; the exact search's `Linearizable` rests on
/// the same), whichever others were dropped beside it: dropping configurations only loses
/// linearizations, it never makes one. So a survivor is a linearization of `ops`. When the
/// beam empties, the dropped configurations may have led on, so nothing is concluded. For
/// the same reason the beam may cut blocks short (`BEAM_BLOCK_STEPS`, `BEAM_BLOCK_OUTS`) and
/// try the returning op first in them: it loses configurations, never makes a false one.
///
/// **Why.** A valid history with many crashed ops of many kinds makes the exact frontier wide
/// (many count vectors none of which dominates another), yet almost any sensible partial
/// linearization goes on: keeping the ones that used the fewest crashed ops (most left for
/// later) finds one linearization in a pass, as the depth-first search would, without its
/// backtracking over long prefixes.
pub(super) fn prove_valid<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    classes: &Classes,
    budget: &Budget,
    width: usize,
) -> Option<(Search, u64)> {
    run(part, ops, classes, budget, Some(width))
        .filter(|(outcome, _)| !matches!(outcome, Search::NotLinearizable { .. }))
}

fn run<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    classes: &Classes,
    budget: &Budget,
    beam: Option<usize>,
) -> Option<(Search, u64)> {
    let n = ops.len();
    let class = &classes.class;
    let count = class.iter().max().map_or(0, |&c| c as usize + 1);
    let read_only: Vec<bool> = ops.iter().map(|t| part.is_read_only(&t.op)).collect();
    let mut crashed = vec![Vec::new(); count];
    for i in 0..n {
        if ops[i].ret.is_none() && !read_only[i] {
            crashed[class[i] as usize].push(i as u32);
        }
    }
    let ctx = Ctx {
        part,
        ops,
        class,
        blind: ops.iter().map(|t| part.is_blind(&t.op)).collect(),
        read_only,
        crashed,
        x_first: beam.is_some(),
    };
    let events = events(ops);
    let mut open = Open {
        by_class: vec![BTreeSet::new(); count],
        classes: Vec::new(),
        reads: vec![Vec::new(); count],
        read_classes: Vec::new(),
        blind_calls: BTreeSet::new(),
        crashed_called: Vec::new(),
    };
    let mut trace = Trace::default();
    let mut frontier = vec![Config {
        state: part.init(),
        placed: Vec::new(),
        placed_hash: (0, 0),
        reads: Vec::new(),
        reads_hash: (0, 0),
        crashed: Vec::new(),
        hide: 0,
        trace: ROOT,
    }];
    let mut meter = Meter::eager(budget);
    let mut scratch = Scratch::default();
    let per_op = beam.map_or(WORK_PER_OP, |width| BEAM_WORK_PER_WIDTH * width as u64);
    let work = WORK_BASE + per_op * n as u64;
    let (mut explored, mut returned) = (0u64, 0usize);
    for &(now, x, is_return) in &events {
        let (i, c) = (x as usize, class[x as usize] as usize);
        if !is_return {
            if ops[i].ret.is_none() {
                // Crashed ops are found through `ctx.crashed`, once their class is called.
                let called = &mut open.crashed_called;
                if !ctx.read_only[i] && ctx.crashed[c][0] == x {
                    let at = called.partition_point(|&k| (k as usize) < c);
                    called.insert(at, c as u32);
                }
                continue;
            }
            if ctx.read_only[i] {
                add_class(&mut open.read_classes, open.reads[c].is_empty(), c);
                open.reads[c].push(x);
                for cf in &mut frontier {
                    if part.step(&cf.state, &ops[i].op).is_some() {
                        cf.place_read(x, &mut trace);
                    }
                }
            } else {
                add_class(&mut open.classes, open.by_class[c].is_empty(), c);
                open.by_class[c].insert((ops[i].ret.unwrap_or(usize::MAX), x));
                if ctx.blind[i] {
                    open.blind_calls.insert(ops[i].call);
                }
            }
            continue;
        }
        let mut next = Vec::with_capacity(frontier.len());
        let first = frontier[0].trace;
        scratch.next_event(count);
        for cf in frontier.drain(..) {
            let left = work.saturating_sub(explored);
            // The beam needs no block whole: one cut short loses configurations only.
            let left = beam.map_or(left, |_| left.min(BEAM_BLOCK_STEPS));
            let blocks = (&mut trace, &mut next, &mut scratch);
            explored += at_return(&ctx, &open, cf, x, now, blocks, left);
            if explored + next.len() as u64 > work {
                return None;
            }
            let bytes = trace.0.len() * 8 + next.len() * (size_of::<Config<P::State>>() + 32);
            if let Some(reason) = meter.tick(explored, || bytes) {
                let deepest = returned;
                return Some((Search::OutOfBudget { reason, deepest }, explored));
            }
        }
        // `x` is no longer open.
        if ctx.read_only[i] {
            open.reads[c].retain(|&r| r != x);
            drop_class(&mut open.read_classes, open.reads[c].is_empty(), c);
        } else {
            open.by_class[c].remove(&(now, x));
            drop_class(&mut open.classes, open.by_class[c].is_empty(), c);
            if ctx.blind[i] {
                open.blind_calls.remove(&ops[i].call);
            }
        }
        if next.is_empty() && beam.is_some() {
            return None; // the dropped configurations may have gone on
        }
        if next.is_empty() {
            let linearized = trace.path(first);
            return Some((
                Search::NotLinearizable {
                    linearized,
                    blocked: i,
                },
                explored,
            ));
        }

        frontier = merge(&ctx, next, &open, &mut explored);
        if let Some(width) = beam {
            narrow(&mut frontier, width);
        }
        explored += frontier.len() as u64;
        returned += 1;
        let paced = beam.is_none();
        let pace = WORK_BASE + PACE_PER_RETURN * returned as u64;
        if frontier.len() > WIDEST || explored > work || (paced && explored > pace) {
            return None;
        }
    }
    Some((Search::Linearizable, explored))
}

/// Keeps the `width` configurations most likely to go on: those that used the fewest crashed
/// ops (more are left to explain later reads), then those that may hide the most blind ops,
/// then those with the fewest returning ops placed early; ties in frontier order, so the
/// outcome does not depend on hashing.
fn narrow<S>(frontier: &mut Vec<Config<S>>, width: usize) {
    if frontier.len() <= width {
        return;
    }
    let used = |cf: &Config<S>| cf.crashed.iter().map(|c| c.1 as u64).sum::<u64>();
    frontier.sort_by_key(|cf| (used(cf), std::cmp::Reverse(cf.hide), cf.placed.len()));
    frontier.truncate(width);
}

/// The configurations `cf` may be in once `x` returned at `now`, into `next`; returns the
/// block prefixes explored.
fn at_return<P: PartModel>(
    ctx: &Ctx<P>,
    open: &Open,
    mut cf: Config<P::State>,
    x: u32,
    now: usize,
    (trace, next, scratch): (&mut Trace, &mut Vec<Config<P::State>>, &mut Scratch),
    limit: u64,
) -> u64 {
    if cf.unplace(x) {
        next.push(cf);
        return 1;
    }
    if ctx.blind[x as usize] && cf.hide > ctx.ops[x as usize].call {
        // Hidden blind ops.
        let mut hidden = cf.clone();
        hidden.trace = trace.push(x, hidden.trace);
        next.push(hidden);
    }
    let enough = match ctx.x_first {
        true => next.len() + BEAM_BLOCK_OUTS,
        false => usize::MAX,
    };
    let mut block = Block {
        ctx,
        open,
        x,
        now,
        trace,
        out: next,
        scratch,
        steps: 0,
        limit,
        depth: 0,
        enough,
    };
    // Clearing costs the map's capacity: a map one large block grew is dropped instead.
    match block.scratch.seen.capacity() > 1024 {
        true => block.scratch.seen = KeyMap::default(),
        false => block.scratch.seen.clear(),
    }
    block.extend(cf, false, false, None);
    block.steps
}

/// What the blocks of one event share: the prefixes of the current block, and which classes of
/// blind ops can lead anywhere.
#[derive(Default)]
struct Scratch {
    seen: KeyMap<Vec<Vec<(u32, u32)>>>,
    /// Per class: 0 not known yet, 1 a blind op of it may be followed, 2 it may not.
    useful: Vec<u8>,
    useful_set: Vec<u32>,
}

impl Scratch {
    /// Forgets the classes' usefulness: the open ops changed.
    fn next_event(&mut self, classes: usize) {
        self.useful.resize(classes, 0);
        for c in self.useful_set.drain(..) {
            self.useful[c as usize] = 0;
        }
    }
}

/// Every call and return as (time, op, is a return), in time order (ties by op), for the
/// frontier and the coarse frontier alike.
pub(super) fn events<O>(ops: &[Timed<O>]) -> Vec<(usize, u32, bool)> {
    let mut events = Vec::with_capacity(2 * ops.len());
    for (i, t) in ops.iter().enumerate() {
        events.push((t.call, i as u32, false));
        if let Some(r) = t.ret {
            events.push((r, i as u32, true));
        }
    }
    events.sort_unstable();
    events
}

fn add_class(classes: &mut Vec<u32>, empty: bool, c: usize) {
    if empty {
        classes.push(c as u32);
    }
}

fn drop_class(classes: &mut Vec<u32>, empty: bool, c: usize) {
    if empty {
        classes.retain(|&k| k as usize != c);
    }
}

/// The configurations of one block: from one configuration, every order of open ops that ends
/// with `x`, within the rules of the module doc.
struct Block<'a, 'b, P: PartModel> {
    ctx: &'a Ctx<'a, P>,
    open: &'a Open,
    x: u32,
    now: usize,
    trace: &'b mut Trace,
    out: &'b mut Vec<Config<P::State>>,
    /// `seen`: block prefixes already extended, by (state, placed, last op, blind flags), each
    /// with the crashed ops each used (a prefix that used more of every class is dominated: it
    /// reached the same point with fewer crashed ops left; this also ends cycles of them).
    scratch: &'b mut Scratch,
    steps: u64,
    /// Past this many steps the block stops: the search gives up.
    limit: u64,
    /// The block stops once `out` holds this many (the beam needs only a few).
    enough: usize,
    /// Ops placed in the block so far (the recursion's depth).
    depth: usize,
}

impl<P: PartModel> Block<'_, '_, P> {
    /// Extends the block from `cf`. `blind_any`: a blind op was placed in it; `after_blind`:
    /// the last op placed is blind; `last`: the last op placed, if it has not returned and no
    /// read followed it, with the state before it.
    fn extend(
        &mut self,
        cf: Config<P::State>,
        blind_any: bool,
        after_blind: bool,
        last: Option<(u32, &P::State)>,
    ) {
        self.steps += 1;
        if self.depth > DEEPEST {
            self.steps = self.steps.max(self.limit + 1); // give up: see `DEEPEST`
        }
        if self.steps > self.limit || self.out.len() >= self.enough {
            return;
        }
        let ctx = self.ctx;
        let xi = self.x as usize;
        if ctx.read_only[xi] && ctx.part.step(&cf.state, &ctx.ops[xi].op).is_some() {
            // Reads now: nothing need come between.
            self.finish(cf, blind_any);
            return;
        }
        let xk = (self.open.classes.iter())
            .position(|&c| c == ctx.class[xi])
            .filter(|_| ctx.x_first);
        let rest = (0..self.open.classes.len() + self.open.crashed_called.len())
            .filter(|&k| Some(k) != xk);
        for k in xk.into_iter().chain(rest) {
            let (b, crashed) = match k.checked_sub(self.open.classes.len()) {
                None => {
                    let c = self.open.classes[k] as usize;
                    match self.open.by_class[c].iter().find(|e| !cf.has(e.1)) {
                        Some(&(_, b)) => (b, false),
                        None => continue,
                    }
                }
                Some(k) => {
                    let c = self.open.crashed_called[k] as usize;
                    match ctx.crashed[c].get(cf.used(c as u32) as usize) {
                        Some(&b) if ctx.ops[b as usize].call < self.now => (b, true),
                        _ => continue,
                    }
                }
            };
            let bi = b as usize;
            if after_blind && ctx.blind[bi] {
                continue; // hidden blind ops
            }
            let Some(state) = ctx.part.step(&cf.state, &ctx.ops[bi].op) else {
                continue;
            };
            if b != self.x && ctx.blind[bi] && !self.useful(bi, &state) {
                continue;
            }
            if let Some((l, before)) = last {
                if ctx.blind[bi] && ctx.ops[l as usize].ret.is_none() {
                    continue; // a blind op hides a crashed one
                }
                if self.commutes(l, before, b, &state) {
                    continue; // just in time
                }
            }
            let mut to = Config {
                state,
                ..cf.clone()
            };
            let blind_any = blind_any || ctx.blind[bi];
            if b == self.x {
                self.finish(to, blind_any);
                continue;
            }
            match crashed {
                true => {
                    to.use_crashed(ctx.class[bi]);
                    to.trace = self.trace.push(b, to.trace);
                }
                false => to.place(b, self.trace),
            }
            let read = self.reads_now(&mut to);
            let after_blind = !read && ctx.blind[bi];
            let last = (!read).then_some((b, &cf.state));
            // The last op matters only through what it does and when it returns.
            let ret = ctx.ops[bi].ret.unwrap_or(usize::MAX);
            let last_is = last.map(|_| (ctx.class[bi], ret));
            let ops = hash::union(to.placed_hash, to.reads_hash);
            let key = hash::node_key(ops, &(&to.state, last_is));
            let key = key ^ (after_blind as u128) << 1 ^ blind_any as u128;
            if self.first_visit(key, &to.crashed) {
                self.depth += 1;
                self.extend(to, blind_any, after_blind, last);
                self.depth -= 1;
            }
        }
    }

    /// Records a block prefix; false if one with the same key that used no more crashed ops
    /// of any class was extended before.
    fn first_visit(&mut self, key: u128, crashed: &[(u32, u32)]) -> bool {
        let sets = self.scratch.seen.entry(key).or_default();
        if sets.iter().any(|s| counts_within(s, crashed)) {
            return false;
        }
        sets.retain(|s| !counts_within(crashed, s));
        sets.push(crashed.to_vec());
        true
    }

    /// Whether blind op `b`, reaching `u` (whatever the state before it), can be followed in a
    /// block: by a read it makes legal, or by an op that is not blind (`x` or another class,
    /// crashed ones called before now: no other can be placed in this block) legal after it.
    /// If not, every block going on from it ends at once (two blind ops in a row, or nothing
    /// legal). Blind ops of one class reach one state, so this is kept per class for the event.
    fn useful(&mut self, b: usize, u: &P::State) -> bool {
        let c = self.ctx.class[b] as usize;
        if self.scratch.useful[c] == 0 {
            let (ctx, open) = (self.ctx, self.open);
            let legal = |i: u32| ctx.part.step(u, &ctx.ops[i as usize].op).is_some();
            let xi = self.x as usize;
            let read = open
                .read_classes
                .iter()
                .any(|&r| legal(open.reads[r as usize][0]));
            let x = !ctx.blind[xi] && legal(self.x);
            let other = open
                .classes
                .iter()
                .filter_map(|&k| open.by_class[k as usize].first().map(|e| e.1))
                .chain(
                    (open.crashed_called.iter())
                        .filter_map(|&k| ctx.crashed[k as usize].first().copied()),
                )
                .any(|o| !ctx.blind[o as usize] && legal(o));
            self.scratch.useful[c] = if read || x || other { 1 } else { 2 };
            self.scratch.useful_set.push(c as u32);
        }
        self.scratch.useful[c] == 1
    }

    /// Ends the block with `x` placed, reaching `cf`.
    fn finish(&mut self, mut cf: Config<P::State>, blind_any: bool) {
        cf.trace = self.trace.push(self.x, cf.trace);
        if blind_any || self.ctx.blind[self.x as usize] {
            cf.hide = self.now;
        }
        self.reads_now(&mut cf);
        self.out.push(cf);
    }

    /// Whether `b` (not returned, placed from state `before`) followed by `y` (reaching
    /// `after`) may be swapped: `y` returns first, is legal without `b`, and both orders reach
    /// `after`.
    fn commutes(&self, b: u32, before: &P::State, y: u32, after: &P::State) -> bool {
        let (ops, part) = (self.ctx.ops, self.ctx.part);
        let ret = |i: u32| ops[i as usize].ret.unwrap_or(usize::MAX);
        ret(y) < ret(b)
            && part
                .step(before, &ops[y as usize].op)
                .and_then(|s| part.step(&s, &ops[b as usize].op))
                .is_some_and(|s| s == *after)
    }

    /// Places every open read-only op legal in `cf`'s state; true if it placed one.
    fn reads_now(&mut self, cf: &mut Config<P::State>) -> bool {
        let mut any = false;
        for &c in &self.open.read_classes {
            let reads = &self.open.reads[c as usize];
            let op = &self.ctx.ops[reads[0] as usize].op;
            if self.ctx.part.step(&cf.state, op).is_none() {
                continue;
            }
            for &r in reads {
                if r != self.x && !cf.has_read(r) {
                    cf.place_read(r, self.trace);
                    any = true;
                }
            }
        }
        any
    }
}

/// The configurations of `next` none of the others dominates (see the module doc): exact
/// copies go first, then those with the same state and placed ops are compared, then (while
/// few are left) those with the same state. Counts the comparisons in `compared`.
fn merge<P: PartModel>(
    ctx: &Ctx<P>,
    next: Vec<Config<P::State>>,
    open: &Open,
    compared: &mut u64,
) -> Vec<Config<P::State>> {
    // Only the open blind ops called before `hide` matter: the latest of those stands for it.
    let hides = |h: usize| {
        open.blind_calls
            .range(..h)
            .next_back()
            .map_or(0, |&c| c + 1)
    };
    let mut copies = KeySet::with_capacity_and_hasher(next.len(), Default::default());
    let mut unique = Vec::with_capacity(next.len());
    for mut cf in next {
        cf.hide = hides(cf.hide);
        let key = (cf.state.clone(), &cf.crashed, cf.hide);
        let ops = hash::union(cf.placed_hash, cf.reads_hash);
        if copies.insert(hash::node_key(ops, &key)) {
            unique.push(cf);
        }
    }
    let same_placed = |cf: &Config<P::State>| hash::node_key(cf.placed_hash, &cf.state);
    let mut kept = antichain(compared, unique, same_placed, |a, b| {
        a.placed == b.placed && dominates(ctx, a, b)
    });
    // Blind ops a configuration may hide are where placed sets differ most (dozens of open
    // writes, each placed or not): grouped by the rest, fewest placed first, the ones that
    // placed none of those come first and drop the others at once.
    kept.sort_by_key(|cf| (cf.placed.len(), usize::MAX - cf.reads.len()));
    let core = |cf: &Config<P::State>| core_key(ctx, cf);
    let kept = antichain(compared, kept, core, |a, b| dominates(ctx, a, b));
    if kept.len() > 300 {
        return kept;
    }
    antichain(
        compared,
        kept,
        |cf| hash::node_key((0, 0), &cf.state),
        |a, b| dominates(ctx, a, b),
    )
}

/// A configuration's state, `hide` and placed ops but the blind ones it may hide: those that
/// [`dominates`] may tell apart by the other ops placed have the same key.
fn core_key<P: PartModel>(ctx: &Ctx<P>, cf: &Config<P::State>) -> u128 {
    let spare = |&&u: &&u32| {
        let i = u as usize;
        (ctx.blind[i] && ctx.ops[i].call < cf.hide) || replayable(ctx, &cf.state, i)
    };
    let placed =
        (cf.placed.iter().filter(spare)).fold(cf.placed_hash, |h, &u| hash::toggle(h, u as usize));
    hash::node_key(placed, &(&cf.state, cf.hide))
}

/// The configurations of `all` that no other one with the same `group` dominates; counts the
/// comparisons in `compared`.
fn antichain<S>(
    compared: &mut u64,
    all: Vec<Config<S>>,
    group: impl Fn(&Config<S>) -> u128,
    dominates: impl Fn(&Config<S>, &Config<S>) -> bool,
) -> Vec<Config<S>> {
    let mut kept: Vec<Option<Config<S>>> = Vec::with_capacity(all.len());
    let mut buckets = KeyMap::<Vec<usize>>::with_capacity_and_hasher(all.len(), Default::default());
    'each: for cf in all {
        let bucket = buckets.entry(group(&cf)).or_default();
        *compared += 2 * bucket.len() as u64;
        for &k in bucket.iter() {
            if kept[k].as_ref().is_some_and(|o| dominates(o, &cf)) {
                continue 'each;
            }
        }
        bucket.retain(|&k| {
            let gone = kept[k].as_ref().is_some_and(|o| dominates(&cf, o));
            if gone {
                kept[k] = None;
            }
            !gone
        });
        bucket.push(kept.len());
        kept.push(Some(cf));
    }
    kept.into_iter().flatten().collect()
}

/// `a` can do whatever `b` can (both in one state): it used no more crashed ops of any class,
/// hides as much, placed every read `b` placed (a read placed is one less to place, and changes
/// nothing), and placed every other op `b` placed, but for blind ones it may hide (hiding one
/// at its return does what placing it did). Ops (reads too) `b` placed and `a` may place at
/// once (see [`replayable`]) need not be placed by `a`.
fn dominates<P: PartModel>(ctx: &Ctx<P>, a: &Config<P::State>, b: &Config<P::State>) -> bool {
    let replay = |u: &u32| replayable(ctx, &a.state, *u as usize);
    a.state == b.state
        && a.hide >= b.hide
        && a.reads.len() >= b.reads.len()
        && within_but(&b.reads, &a.reads, replay)
        && {
            let hideable = |u: &u32| {
                let i = *u as usize;
                (ctx.blind[i] && ctx.ops[i].call < a.hide) || replay(u)
            };
            let mut theirs = b.placed.iter().peekable();
            a.placed.iter().all(|x| loop {
                match theirs.next() {
                    Some(y) if y == x => break true,
                    Some(y) if hideable(y) => continue,
                    _ => break false,
                }
            }) && theirs.all(hideable)
        }
        && counts_within(&a.crashed, &b.crashed)
}

/// Whether the counts `a` are each at most `b`'s (both sorted by class).
fn counts_within(a: &[(u32, u32)], b: &[(u32, u32)]) -> bool {
    let mut b = b.iter();
    a.iter().all(|x| b.any(|y| y.0 == x.0 && y.1 >= x.1))
}

/// Whether sorted `a` is within sorted `b` but for those `spare` allows.
fn within_but(a: &[u32], b: &[u32], spare: impl Fn(&u32) -> bool) -> bool {
    let mut b = b.iter().peekable();
    a.iter().all(|x| {
        while b.next_if(|y| *y < x).is_some() {}
        b.next_if_eq(&x).is_some() || spare(x)
    })
}

/// Whether op `u` (open, or a read placed) may be placed at once by a configuration in state
/// `t`: it is legal there and leaves `t` as it is. So a configuration that did not place `u`
/// can do what one that did can: it places `u` now, within `u`'s interval (it is open), and is
/// where the other is.
fn replayable<P: PartModel>(ctx: &Ctx<P>, t: &P::State, u: usize) -> bool {
    ctx.part
        .step(t, &ctx.ops[u].op)
        .is_some_and(|after| after == *t)
}
