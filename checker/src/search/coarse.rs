//! A coarse frontier that can only refute: one configuration per state, each with the open ops
//! that *may* already be linearized, so its width is the number of states, whatever the
//! number of processes or crashed ops. It decides the histories where the exact frontier
//! (`frontier`) blows up on what is placed in which order (dozens of open writes and hundreds
//! of crashed ones, each choice its own configuration) but which are invalid for a reason that
//! does not depend on those choices (a stale read that nothing open can explain).
//!
//! **What it tracks.** The exact frontier's configurations are (state, placed ops, crashed ops
//! used, ...), with blocks of ops placed just before each return (see `frontier`'s doc: every
//! valid linearization is followed by such blocks, with no pruning rule needed). A coarse
//! configuration `(s, maybe)` stands for every exact one in state `s` whose placed open ops are
//! within `maybe`. Forgetting what was used makes every op a configuration could place still
//! available: crashed ops any number of times, open ops too, until they return.
//!
//! **Soundness (by induction over events: every exact configuration is covered).**
//! - *A call*: an exact configuration may place a read-only op now if it is legal; the coarse
//!   one adds it to `maybe` where it is legal.
//! - *A return of `x`*, from an exact `(s, P)` covered by `(s, maybe)`. If `x` is in `P` it is
//!   `(s, P - x)`: the coarse one keeps `(s, maybe - x)` whenever `x` is in `maybe`. Otherwise
//!   the exact one places a block: ops `b1..bk` (open or crashed, each legal in turn, reads
//!   among them), then `x` legal in the state `u` reached, ending in `s' = u.x`. Every `bi`
//!   is an edge of the graph of states whose edges are the open and called crashed ops, so
//!   every state of the block lies on a path from `s` to `u` in it: forward-reachable from `s`
//!   and backward-reachable to `u`. The coarse block adds to `maybe` every open op of a class
//!   with an edge from a forward-reachable state into such a state (so every `bi` open), and
//!   every open read legal in one of them, or legal in `s'` (placed after `x`),
//!   and so covers `(s', P + {bi} + reads - x)`. Coarse configurations in one state are merged
//!   by the union of their `maybe`s, which covers what each covered.
//!
//!   So if no coarse configuration is left after some return, no exact one is either, and (the
//!   exact frontier being complete) no linearization exists. A coarse configuration left at
//!   the end proves nothing: the search gives up then.
//!
//! Ops of one class (`classes`) have the same effect in every state, so the graph has one edge
//! per class; a crashed read-only op changes nothing and is left out. The states
//! must stay few: past `MOST_STATES` reached at one event the search gives up.

use super::budget::{Budget, Meter};
use super::classes::Classes;
use super::slots::{OpSet, Slots};
use super::Search;
use crate::model::{PartModel, Timed};
use std::collections::HashMap;

/// The most states the graph of one event may reach before the search gives up (a model with
/// many states, such as a counter, is not what it is for; states are tracked in a `u64` mask).
const MOST_STATES: usize = 64;

/// A coarse configuration: a state and the open ops that may be linearized.
struct Coarse<S> {
    state: S,
    maybe: OpSet,
}

/// What is open at the current event.
struct Open {
    /// Per class, its open returning ops (reads and the others alike), as a list and a set.
    by_class: Vec<Vec<u32>>,
    sets: Vec<OpSet>,
    /// Classes of ops that change the state (or may) with open ops; and those with crashed ops
    /// called, as (class, the first one).
    classes: Vec<u32>,
    crashed: Vec<(u32, u32)>,
    /// Classes of read-only ops with open ops.
    reads: Vec<u32>,
}

/// The graph of states of one event: the states met so far and, for each once visited, its
/// out-edges (`Some(i)` for the open class `open.classes[i]`, `None` for a crashed class) and
/// the open read classes legal in it (indices into `open.reads`).
struct Graph<S> {
    states: Vec<S>,
    index: HashMap<S, usize>,
    nodes: Vec<Option<Node>>,
}

struct Node {
    edges: Vec<(Option<u32>, usize)>,
    /// The states the edges lead to, as a mask.
    out: u64,
    reads: Vec<u32>,
}

impl<S: Clone + Eq + std::hash::Hash> Graph<S> {
    fn new() -> Self {
        Graph {
            states: Vec::new(),
            index: HashMap::new(),
            nodes: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.states.clear();
        self.index.clear();
        self.nodes.clear();
    }

    /// The index of `s`, or None past `MOST_STATES`.
    fn intern(&mut self, s: &S) -> Option<usize> {
        if let Some(&i) = self.index.get(s) {
            return Some(i);
        }
        if self.states.len() >= MOST_STATES {
            return None;
        }
        self.index.insert(s.clone(), self.states.len());
        self.states.push(s.clone());
        self.nodes.push(None);
        Some(self.states.len() - 1)
    }
}

impl<S> Graph<S> {
    fn node(&self, a: usize) -> &Node {
        self.nodes[a]
            .as_ref()
            .expect("visited states have their edges")
    }
}

/// Fills in the edges and legal reads of state `a`; None past `MOST_STATES`.
fn visit<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    open: &Open,
    graph: &mut Graph<P::State>,
    a: usize,
) -> Option<()> {
    if graph.nodes[a].is_some() {
        return Some(());
    }
    let from = graph.states[a].clone();
    let step = |o: u32| part.step(&from, &ops[o as usize].op);
    let mut edges = Vec::new();
    for (i, &k) in open.classes.iter().enumerate() {
        if let Some(to) = step(open.by_class[k as usize][0]) {
            edges.push((Some(i as u32), graph.intern(&to)?));
        }
    }
    for &(_, rep) in &open.crashed {
        if let Some(to) = step(rep) {
            edges.push((None, graph.intern(&to)?));
        }
    }
    let reads = (0..open.reads.len() as u32)
        .filter(|&i| step(open.by_class[open.reads[i as usize] as usize][0]).is_some())
        .collect();
    let out = edges.iter().fold(0, |m, &(_, b)| m | 1 << b);
    graph.nodes[a] = Some(Node { edges, out, reads });
    Some(())
}

/// Decides `ops` is not linearizable, if the coarse frontier finds so: None if it could not
/// (a coarse configuration was left, or too many states). Returns the op that could not be
/// linearized (with no linearized prefix: the coarse search has none) and the work done.
pub(super) fn refute<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    classes: &Classes,
    budget: &Budget,
) -> Option<(Search, u64)> {
    let class = &classes.class;
    let count = class.iter().max().map_or(0, |&c| c as usize + 1);
    let read_only: Vec<bool> = ops.iter().map(|t| part.is_read_only(&t.op)).collect();
    let events = super::frontier::events(ops);
    let mut slots = Slots::new(ops, &events);
    let mut open = Open {
        by_class: vec![Vec::new(); count],
        sets: vec![slots.empty(); count],
        classes: Vec::new(),
        crashed: Vec::new(),
        reads: Vec::new(),
    };
    let mut crashed_called = vec![false; count];
    let mut frontier = vec![Coarse {
        state: part.init(),
        maybe: slots.empty(),
    }];
    let mut meter = Meter::eager(budget);
    let mut work = 0u64;
    let mut graph = Graph::new();
    for &(_, x, is_return) in &events {
        let (i, c) = (x as usize, class[x as usize]);
        let legal = |s: &P::State, o: u32| part.step(s, &ops[o as usize].op).is_some();
        if !is_return {
            if ops[i].ret.is_none() {
                // A crashed read-only op changes nothing: never needed.
                if !read_only[i] && !std::mem::replace(&mut crashed_called[c as usize], true) {
                    open.crashed.push((c, x));
                }
                continue;
            }
            let list = if read_only[i] {
                &mut open.reads
            } else {
                &mut open.classes
            };
            if open.by_class[c as usize].is_empty() {
                list.push(c);
            }
            open.by_class[c as usize].push(x);
            let slot = slots.take(x);
            open.sets[c as usize].insert(slot);
            if read_only[i] {
                for cf in &mut frontier {
                    if legal(&cf.state, x) {
                        cf.maybe.insert(slot);
                    }
                }
            }
            continue;
        }
        graph.clear();
        let slot = slots.of(x);
        let mut next: Vec<Coarse<P::State>> = Vec::new();
        for mut cf in frontier.drain(..) {
            work += 1;
            block(part, ops, &open, &mut graph, &cf, (x, slot), &mut next)?;
            if cf.maybe.contains(slot) {
                cf.maybe.remove(slot);
                merge_into(&mut next, cf);
            }
        }
        work += graph.states.len() as u64 * (open.classes.len() + open.crashed.len()) as u64;
        let held = || next.len() * 64 * (open.classes.len() + 1);
        if let Some(reason) = meter.tick(work, held) {
            return Some((Search::OutOfBudget { reason, deepest: 0 }, work));
        }
        // `x` is no longer open.
        let members = &mut open.by_class[c as usize];
        members.retain(|&o| o != x);
        open.sets[c as usize].remove(slot);
        slots.give_back(x);
        if members.is_empty() {
            let list = if read_only[i] {
                &mut open.reads
            } else {
                &mut open.classes
            };
            list.retain(|&k| k != c);
        }
        if next.is_empty() {
            let refuted = Search::NotLinearizable {
                linearized: vec![],
                blocked: i,
            };
            return Some((refuted, work));
        }
        frontier = next;
    }
    None
}

/// The coarse block of `cf` ending with `x` (in `slot`; see the module doc), merged into
/// `out`; None if the graph grew past `MOST_STATES`.
fn block<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    open: &Open,
    graph: &mut Graph<P::State>,
    cf: &Coarse<P::State>,
    (x, slot): (u32, u32),
    out: &mut Vec<Coarse<P::State>>,
) -> Option<()> {
    let start = graph.intern(&cf.state)?;
    let reach = forward(part, ops, open, graph, start)?;
    // Per open class, the states its edges from reached states lead to.
    let mut targets = vec![0u64; open.classes.len()];
    for a in members(reach) {
        for &(edge, b) in &graph.node(a).edges {
            if let Some(i) = edge {
                targets[i as usize] |= 1 << b;
            }
        }
    }
    // Per state `x` may end in: the states on some path from `cf`'s state to a state `x` is
    // legal in that leads there. A class is used on the way to it if one of its edges from a
    // reached state enters one of those paths (a union: entering any one path is enough).
    let mut ends: Vec<(usize, u64)> = Vec::new();
    let xop = &ops[x as usize].op;
    for u in members(reach) {
        let Some(after) = part.step(&graph.states[u], xop) else {
            continue;
        };
        let after = graph.intern(&after)?;
        visit(part, ops, open, graph, after)?;
        let on_path = backward(graph, reach, u);
        match ends.iter_mut().find(|e| e.0 == after) {
            Some(end) => end.1 |= on_path,
            None => ends.push((after, on_path)),
        }
    }
    for (after, paths) in ends {
        let mut maybe = cf.maybe.clone();
        for (i, t) in targets.iter().enumerate() {
            if t & paths != 0 {
                maybe.union_with(&open.sets[open.classes[i] as usize]);
            }
        }
        let mut reads = vec![false; open.reads.len()];
        for v in members(paths | 1 << after) {
            for &r in &graph.node(v).reads {
                reads[r as usize] = true;
            }
        }
        for (i, _) in reads.iter().enumerate().filter(|r| *r.1) {
            maybe.union_with(&open.sets[open.reads[i] as usize]);
        }
        maybe.remove(slot);
        let state = graph.states[after].clone();
        merge_into(out, Coarse { state, maybe });
    }
    Some(())
}

/// The states reachable from `start` by open and called crashed ops, as a mask; visits them.
/// None past `MOST_STATES`.
fn forward<P: PartModel>(
    part: &P,
    ops: &[Timed<P::Op>],
    open: &Open,
    graph: &mut Graph<P::State>,
    start: usize,
) -> Option<u64> {
    let mut reach = 1u64 << start;
    let mut todo = vec![start];
    while let Some(a) = todo.pop() {
        visit(part, ops, open, graph, a)?;
        for &(_, b) in &graph.node(a).edges {
            if reach & 1 << b == 0 {
                reach |= 1 << b;
                todo.push(b);
            }
        }
    }
    Some(reach)
}

/// The states of `reach` from which `u` is reachable inside `reach`, as a mask.
fn backward<S>(graph: &Graph<S>, reach: u64, u: usize) -> u64 {
    let mut on = 1u64 << u;
    loop {
        let before = on;
        for a in members(reach & !on) {
            if graph.node(a).out & on != 0 {
                on |= 1 << a;
            }
        }
        if on == before {
            return on;
        }
    }
}

/// The members of `mask`, lowest first.
fn members(mask: u64) -> impl Iterator<Item = usize> {
    let mut left = mask;
    std::iter::from_fn(move || {
        let i = (left != 0).then(|| left.trailing_zeros() as usize)?;
        left &= left - 1;
        Some(i)
    })
}

/// Adds `o` to `next`, merged with a configuration in the same state if there is one.
fn merge_into<S: Eq>(next: &mut Vec<Coarse<S>>, o: Coarse<S>) {
    match next.iter_mut().find(|n| n.state == o.state) {
        Some(n) => n.maybe.union_with(&o.maybe),
        None => next.push(o),
    }
}
