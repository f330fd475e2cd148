//! Throughput around membership changes, from a run's history: for each change put in force,
//! completed (`ok`) client operations per second in the seconds before it was asked for and
//! after it was in force, and the longest time with no operation completing from `AROUND`
//! before to `AROUND` after. Written to `membership.json` and printed in the run's summary.

use checker::history::{Event, EventType};
use serde::Serialize;

/// Seconds looked at on each side of a change.
pub const AROUND: f64 = 2.0;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ChangeFigure {
    /// When it was asked for, seconds from the start.
    pub at_s: f64,
    pub label: String,
    /// From the request to `reconfigure_ok`.
    pub took_ms: f64,
    pub ops_per_s_before: f64,
    pub ops_per_s_after: f64,
    pub longest_gap_ms: f64,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// One figure per change in force (a `start-membership` followed by an `ok` stop).
pub fn around_changes(events: &[Event]) -> Vec<ChangeFigure> {
    let done: Vec<f64> = (events.iter())
        .filter(|e| !e.is_nemesis() && e.kind == EventType::Ok)
        .map(|e| secs(e.time))
        .collect();
    let mut out = Vec::new();
    let mut open: Option<(f64, String)> = None;
    for e in events.iter().filter(|e| e.is_nemesis()) {
        match e.f.as_str() {
            "start-membership" => {
                let label = e.value.get("label").and_then(|l| l.as_str());
                open = Some((secs(e.time), label.unwrap_or("").to_string()));
            }
            "stop-membership" => {
                let ok = e.value.get("outcome").and_then(|o| o.as_str()) == Some("ok");
                if let (Some((t0, label)), true) = (open.take(), ok) {
                    out.push(figure(&done, t0, secs(e.time), label));
                }
            }
            _ => {}
        }
    }
    out
}

fn figure(done: &[f64], t0: f64, t1: f64, label: String) -> ChangeFigure {
    let count = |a: f64, b: f64| done.iter().filter(|t| **t >= a && **t < b).count() as f64;
    let (from, to) = (t0 - AROUND, t1 + AROUND);
    let mut last = from.max(0.0);
    let mut gap: f64 = 0.0;
    for t in done.iter().copied().filter(|t| *t >= from && *t < to) {
        gap = gap.max(t - last);
        last = t;
    }
    let end = done.last().map_or(to, |l| to.min(l.max(last)));
    gap = gap.max(end - last);
    ChangeFigure {
        at_s: round3(t0),
        label,
        took_ms: round3((t1 - t0) * 1000.0),
        ops_per_s_before: round3(count(from, t0) / (t0 - from.max(0.0)).max(1e-3)),
        ops_per_s_after: round3(count(t1, to) / AROUND),
        longest_gap_ms: round3(gap * 1000.0),
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Mean, largest and count of the figures, for the summary line.
pub fn summary(figs: &[ChangeFigure]) -> Option<String> {
    if figs.is_empty() {
        return None;
    }
    let n = figs.len() as f64;
    let mean = |f: fn(&ChangeFigure) -> f64| figs.iter().map(f).sum::<f64>() / n;
    let max_gap = figs.iter().map(|f| f.longest_gap_ms).fold(0.0, f64::max);
    Some(format!(
        "{} changes: {:.0} ops/s before, {:.0} after (means), each took {:.0} ms on average; \
         longest gap with no completed op {:.0} ms (mean {:.0} ms)",
        figs.len(),
        mean(|f| f.ops_per_s_before),
        mean(|f| f.ops_per_s_after),
        mean(|f| f.took_ms),
        max_gap,
        mean(|f| f.longest_gap_ms)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: u64, ms: u64, process: &str, kind: &str, f: &str, value: &str) -> Event {
        let line = format!(
            r#"{{"index":{i},"time":{},"process":{process},"type":"{kind}","f":"{f}","value":{value}}}"#,
            ms * 1_000_000
        );
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn a_stall_during_a_change_is_its_longest_gap() {
        let mut e = Vec::new();
        // An op every 100 ms, none from 3000 to 3500 ms.
        for (i, ms) in (0..60)
            .map(|k| k * 100)
            .filter(|ms| !(3000..3500).contains(ms))
            .enumerate()
        {
            e.push(ev(i as u64, ms, "0", "ok", "read", "1"));
        }
        e.push(ev(
            100,
            3000,
            "\"nemesis\"",
            "info",
            "start-membership",
            r#"{"label":"add n4"}"#,
        ));
        e.push(ev(
            101,
            3200,
            "\"nemesis\"",
            "info",
            "stop-membership",
            r#"{"outcome":"ok"}"#,
        ));
        e.sort_by_key(|e| e.time);
        let f = around_changes(&e);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].label, "add n4");
        assert_eq!(f[0].took_ms, 200.0);
        assert_eq!(f[0].longest_gap_ms, 600.0);
        assert_eq!(f[0].ops_per_s_before, 10.0);
    }

    #[test]
    fn failed_changes_have_no_figure() {
        let e = vec![
            ev(0, 10, "\"nemesis\"", "info", "start-membership", "{}"),
            ev(
                1,
                20,
                "\"nemesis\"",
                "info",
                "stop-membership",
                r#"{"outcome":"no-answer"}"#,
            ),
        ];
        assert!(around_changes(&e).is_empty());
    }
}
