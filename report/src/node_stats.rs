//! Node statistics (`node-stats.json`, each node's answer to the optional `stats` request) rolled
//! up for the report and the comparison. Counters are named by the node, so they are matched by
//! name pattern rather than read as a schema.

use serde_json::Value;

/// Node statistics rolled up for the report and the comparison.
#[derive(Clone, Debug, Default)]
pub struct NodeSummary {
    pub answered: Vec<String>,
    pub silent: Vec<String>,
    /// Messages sent, summed over nodes.
    pub messages: Option<f64>,
    pub messages_per_op: Option<f64>,
    pub leader_changes: Option<f64>,
    pub phase1_rounds: Option<f64>,
}

fn sum_counters(v: &Value, pred: impl Fn(&str) -> bool) -> Option<f64> {
    let mut total = None;
    for stats in v.as_object()?.values().filter_map(Value::as_object) {
        for (k, n) in stats {
            if let Some(n) = n.as_f64().filter(|_| pred(&k.to_ascii_lowercase())) {
                *total.get_or_insert(0.0) += n;
            }
        }
    }
    total
}

/// Reads node counters leniently: messages are counters named like `*sent*` (or `*msg*`,
/// `*message*` when none is), leader changes `*leader*change*`, phase-1 rounds `*phase1*`
/// / `*phase_1*` (else prepares sent).
pub fn node_summary(v: &Value, completed_ops: usize) -> NodeSummary {
    let mut s = NodeSummary::default();
    if let Some(m) = v.as_object() {
        for (k, stats) in m {
            if stats.is_object() {
                s.answered.push(k.clone());
            } else {
                s.silent.push(k.clone());
            }
        }
    }
    s.messages = sum_counters(v, |k| k.contains("sent"))
        .or_else(|| sum_counters(v, |k| k.contains("msg") || k.contains("message")));
    s.messages_per_op = s
        .messages
        .filter(|_| completed_ops > 0)
        .map(|m| m / completed_ops as f64);
    s.leader_changes = sum_counters(v, |k| k.contains("leader") && k.contains("change"));
    s.phase1_rounds = sum_counters(v, |k| {
        k.contains("phase1") || k.contains("phase_1") || k.contains("phase-1")
    })
    .or_else(|| sum_counters(v, |k| k.contains("sent") && k.contains("prepare")));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_summary_finds_counters() {
        let v = json!({"n1": {"msgs_sent": 30, "leader_changes": 1, "phase1_rounds": 2},
                       "n2": {"msgs_sent": 10}, "n3": null});
        let s = node_summary(&v, 20);
        assert_eq!(s.messages_per_op, Some(2.0));
        assert_eq!(s.leader_changes, Some(1.0));
        assert_eq!(s.phase1_rounds, Some(2.0));
        assert_eq!(s.silent, vec!["n3"]);
    }
}
