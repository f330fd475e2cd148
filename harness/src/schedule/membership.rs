//! Drawing membership steps (`--nemesis membership`): every `interval × U(0.5, 1.5)` seconds one
//! change of the configuration, add (a spare joins), remove (a member leaves) or replace (both at
//! once), taken from a shuffled bag. The draw follows the configuration it makes, so the other
//! faults' targets are drawn among the members of their moment, and a step never leaves a
//! configuration without a majority of live members: the nodes a kill, pause or power-cut window
//! holds down when the step comes count as dead, and a change that fails this is redrawn (the
//! next kind of change, other nodes) or, when none fits, skipped. The configuration never gets
//! smaller than the first one. A stream of its own, so adding the kind does not move the
//! draws of the others.

use super::draw::Bag;
use super::{millis, Fault, FaultKind, Plan, Window};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What one step does to the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Add,
    Remove,
    Replace,
}

impl Change {
    const ALL: [Change; 3] = [Change::Add, Change::Remove, Change::Replace];

    pub fn name(self) -> &'static str {
        match self {
            Change::Add => "add",
            Change::Remove => "remove",
            Change::Replace => "replace",
        }
    }
}

/// `add n4`, `remove n2`, `replace n2 by n5`.
pub fn describe(change: Change, f: &Fault) -> String {
    let Fault::Membership { add, remove, .. } = f else {
        return change.name().into();
    };
    match change {
        Change::Add => format!("add {}", add.join(",")),
        Change::Remove => format!("remove {}", remove.join(",")),
        Change::Replace => format!("replace {} by {}", remove.join(","), add.join(",")),
    }
}

/// More than half of `members` are not `down`.
pub fn majority_alive(members: &[String], down: &[String]) -> bool {
    let alive = members.iter().filter(|m| !down.contains(m)).count();
    2 * alive > members.len()
}

/// The nodes a fault holds down while its window lasts.
pub fn down(f: &Fault) -> &[String] {
    match f {
        Fault::Kill { nodes, .. } | Fault::Pause { nodes, .. } | Fault::PowerCut { nodes, .. } => {
            nodes
        }
        _ => &[],
    }
}

/// The configuration as the draw goes along, and when the next step comes.
pub struct Sim<'a> {
    all: &'a [String],
    pub members: Vec<String>,
    smallest: usize,
    interval_s: f64,
    next_at: f64,
    rng: StdRng,
    bag: Bag<Change>,
}

impl<'a> Sim<'a> {
    /// `None` unless the plan asks for membership steps and has spares to add.
    pub fn new(p: &Plan<'a>) -> Option<Sim<'a>> {
        if !p.kinds.0.contains(&FaultKind::Membership) || p.spares.is_empty() {
            return None;
        }
        let mut rng = StdRng::seed_from_u64(p.seed ^ 0x6d65_6d62_6572_7321);
        let next_at = p.interval_s * rng.gen_range(0.5..1.5);
        let members = p.members();
        Some(Sim {
            all: p.nodes,
            smallest: members.len(),
            members,
            interval_s: p.interval_s,
            next_at,
            rng,
            bag: Bag::new(Change::ALL.to_vec()),
        })
    }

    /// Draws every step due before `t` while `down` are down, into `out`.
    pub fn until(&mut self, t: f64, down: &[String], out: &mut Vec<Window>) {
        while self.next_at < t {
            let at = millis(self.next_at);
            if let Some(fault) = self.step(down) {
                out.push(Window {
                    start_s: at,
                    stop_s: at,
                    fault,
                });
            }
            self.next_at += self.interval_s * self.rng.gen_range(0.5..1.5);
        }
    }

    /// The bag's change if it fits, else the others in turn; `None` when the current
    /// configuration cannot choose any (a majority of it is down) or none fits.
    fn step(&mut self, down: &[String]) -> Option<Fault> {
        let first = self.bag.next(&mut self.rng);
        if !majority_alive(&self.members, down) {
            return None;
        }
        let at = Change::ALL.iter().position(|c| *c == first).unwrap_or(0);
        for k in 0..Change::ALL.len() {
            let change = Change::ALL[(at + k) % Change::ALL.len()];
            if let Some(f) = self.try_change(change, down) {
                if let Fault::Membership { members, .. } = &f {
                    self.members = members.clone();
                }
                return Some(f);
            }
        }
        None
    }

    fn try_change(&mut self, change: Change, down: &[String]) -> Option<Fault> {
        let mut spares: Vec<String> = (self.all.iter())
            .filter(|n| !self.members.contains(n) && !down.contains(n))
            .cloned()
            .collect();
        spares.shuffle(&mut self.rng);
        let mut leavers = self.members.clone();
        leavers.shuffle(&mut self.rng);
        let add: Vec<String> = match change {
            Change::Add | Change::Replace => vec![spares.first()?.clone()],
            Change::Remove => vec![],
        };
        let leavers: Vec<Option<&String>> = match change {
            Change::Add => vec![None],
            Change::Remove if self.members.len() <= self.smallest => return None,
            _ => leavers.iter().map(Some).collect(),
        };
        for leaver in leavers {
            let members = self.config(&add, leaver);
            if majority_alive(&members, down) {
                return Some(Fault::Membership {
                    change,
                    add,
                    remove: leaver.into_iter().cloned().collect(),
                    members,
                });
            }
        }
        None
    }

    /// The current members with `add` and without `leaver`, in the nodes' order.
    fn config(&self, add: &[String], leaver: Option<&String>) -> Vec<String> {
        (self.all.iter())
            .filter(|n| (self.members.contains(n) || add.contains(n)) && Some(*n) != leaver)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{generate, Kinds, Targets};

    fn schedule(seed: u64, kinds: &str) -> crate::schedule::Schedule {
        let nodes: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
        let spares = nodes[3..].to_vec();
        let kinds: Kinds = kinds.parse().unwrap();
        generate(&Plan {
            seed,
            nodes: &nodes,
            kinds: &kinds,
            targets: &Targets::default(),
            interval_s: 2.0,
            time_limit_s: 60.0,
            turn: None,
            spares: &spares,
        })
        .unwrap()
    }

    #[test]
    fn steps_keep_a_live_majority_and_faults_hit_members() {
        for seed in 0..40 {
            let s = schedule(seed, "membership,kill,pause,partition");
            let mut members: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
            let mut changes = 0;
            for w in &s.windows {
                match &w.fault {
                    Fault::Membership { members: m, .. } => {
                        let held: Vec<String> = (s.windows.iter())
                            .filter(|o| o.start_s <= w.start_s && w.start_s < o.stop_s)
                            .flat_map(|o| down(&o.fault).to_vec())
                            .collect();
                        assert!(majority_alive(m, &held), "seed {seed}: {w:?} with {held:?}");
                        assert!(majority_alive(&members, &held), "seed {seed}: {w:?}");
                        assert!(m.len() >= 3, "seed {seed}: {m:?}");
                        members = m.clone();
                        changes += 1;
                    }
                    f => {
                        let named = down(f);
                        assert!(
                            named.iter().all(|n| members.contains(n)),
                            "seed {seed}: {f:?}"
                        );
                    }
                }
            }
            assert!(changes > 5, "seed {seed}: only {changes} changes");
        }
    }

    #[test]
    fn the_draw_repeats_and_leaves_other_faults_alone_without_spares() {
        assert_eq!(
            schedule(7, "membership,kill"),
            schedule(7, "membership,kill")
        );
        let s = schedule(3, "membership");
        let kinds: Vec<Change> = (s.windows.iter())
            .filter_map(|w| match &w.fault {
                Fault::Membership { change, .. } => Some(*change),
                _ => None,
            })
            .collect();
        for c in Change::ALL {
            assert!(kinds.contains(&c), "{c:?} never drawn: {kinds:?}");
        }
        let nodes: Vec<String> = (1..=3).map(|i| format!("n{i}")).collect();
        let kinds: Kinds = "kill,membership".parse().unwrap();
        let plan = |k: &Kinds| {
            generate(&Plan {
                seed: 5,
                nodes: &nodes,
                kinds: k,
                targets: &Targets::default(),
                interval_s: 2.0,
                time_limit_s: 30.0,
                turn: None,
                spares: &[],
            })
            .unwrap()
            .windows
        };
        assert_eq!(plan(&kinds), plan(&"kill".parse().unwrap()));
    }
}
