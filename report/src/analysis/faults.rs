//! Fault intervals from nemesis events: `start-X`/`stop-X`, `pause`/`resume`, `kill`/`start`.

use super::FaultInterval;
use checker::history::{Event, EventType};
use std::collections::{BTreeMap, BTreeSet};

/// What a nemesis `f` does: starts or stops a kind of fault.
fn classify(f: &str) -> Option<(bool, String)> {
    match f {
        "pause" => return Some((true, "pause".into())),
        "resume" => return Some((false, "pause".into())),
        "kill" => return Some((true, "kill".into())),
        "start" | "restart" => return Some((false, "kill".into())),
        _ => {}
    }
    if let Some(k) = f.strip_prefix("start-") {
        return Some((true, k.to_string()));
    }
    if let Some(k) = f.strip_prefix("stop-") {
        return Some((false, k.to_string()));
    }
    None
}

/// Node names an event acts on; `None` means the whole cluster (or unknown).
fn targets(kind: &str, start: bool, v: &serde_json::Value) -> Option<Vec<String>> {
    if kind == "partition" && start {
        // A partition is labelled by its topology (`majority`, `bridge`, ...) when given.
        let topology = v.get("topology").or(Some(v).filter(|v| v.is_string()));
        return topology
            .and_then(|t| t.as_str())
            .map(|t| vec![t.to_string()]);
    }
    if kind == "clock" && start {
        // A clock window is labelled by how it sets the clock and whose: `bump +2500 ms n1`.
        let label = v.get("label").and_then(|l| l.as_str())?;
        let nodes: Vec<&str> = v
            .get("nodes")?
            .as_array()?
            .iter()
            .filter_map(|n| n.as_str())
            .collect();
        return Some(vec![format!("{label} {}", nodes.join(","))]);
    }
    if kind == "membership" && start {
        // A membership step is labelled by its change: `add n4`, `replace n2 by n5`.
        let label = v.get("label").and_then(|l| l.as_str())?;
        return Some(vec![label.to_string()]);
    }
    if kind != "pause" && kind != "kill" && kind != "power-cut" {
        return None;
    }
    let v = v.get("nodes").unwrap_or(v);
    match v {
        serde_json::Value::String(s) => Some(vec![s.clone()]),
        serde_json::Value::Array(xs) if !xs.is_empty() => {
            let names: Vec<String> = xs
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect();
            (names.len() == xs.len()).then_some(names)
        }
        _ => None,
    }
}

/// Turns nemesis events into fault intervals.
#[derive(Default)]
pub(super) struct FaultTracker {
    /// (kind, target) -> start time of the open fault.
    open: BTreeMap<(String, Option<String>), u64>,
    /// Stop actions invoked but not yet completed: (kind, targets) -> invoke time.
    stopping: Vec<(String, Option<Vec<String>>, u64)>,
    done: Vec<FaultInterval>,
}

impl FaultTracker {
    pub(super) fn event(&mut self, e: &Event) {
        let Some((start, kind)) = classify(&e.f) else {
            return;
        };
        let tg = targets(&kind, start, &e.value);
        if start {
            let keys: Vec<Option<String>> = match &tg {
                Some(names) => names.iter().cloned().map(Some).collect(),
                None => vec![None],
            };
            for t in keys {
                self.open.entry((kind.clone(), t)).or_insert(e.time);
            }
        } else if e.kind == EventType::Invoke {
            self.stopping.push((kind, tg, e.time));
        } else {
            self.stopping.retain(|(k, _, _)| *k != kind);
            self.close(&kind, tg.as_deref(), e.time);
        }
    }

    fn close(&mut self, kind: &str, tg: Option<&[String]>, at: u64) {
        let keys: BTreeSet<(String, Option<String>)> = self
            .open
            .keys()
            .filter(|(k, t)| {
                k == kind
                    && match (tg, t) {
                        (Some(names), Some(t)) => names.contains(t),
                        _ => true,
                    }
            })
            .cloned()
            .collect();
        for key in keys {
            let start = self.open.remove(&key).unwrap_or(at);
            self.done.push(FaultInterval {
                kind: key.0,
                target: key.1,
                start_ns: start,
                end_ns: at.max(start),
                open: false,
            });
        }
    }

    pub(super) fn finish(mut self, end_ns: u64) -> Vec<FaultInterval> {
        for (kind, tg, at) in std::mem::take(&mut self.stopping) {
            self.close(&kind, tg.as_deref(), at);
        }
        for ((kind, target), start) in std::mem::take(&mut self.open) {
            self.done.push(FaultInterval {
                kind,
                target,
                start_ns: start,
                end_ns: end_ns.max(start),
                open: true,
            });
        }
        self.done
            .sort_by(|a, b| (a.start_ns, &a.target).cmp(&(b.start_ns, &b.target)));
        self.done
    }
}
