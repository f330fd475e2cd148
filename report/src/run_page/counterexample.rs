//! The report's counterexample section: the failing key, a link to its history, the ops drawn as
//! a timeline (the impossible one in red), the states the key could have been in, and the
//! counterexample as JSON.

use crate::html::short;
use crate::run::Run;
use checker::counterexample::{Counterexample, CounterexampleOp};
use maud::{html, Markup};

/// One op of the timeline.
#[derive(Debug, Clone)]
struct CxOp {
    process: String,
    label: String,
    start: f64,
    end: Option<f64>,
    impossible: bool,
}

/// The ops to draw: the shrunk set (else the concurrent ops), plus the impossible op when the
/// list lacks it.
fn cx_ops(cx: &Counterexample) -> Vec<CxOp> {
    let mut list: Vec<CounterexampleOp> = [&cx.shrunk, &cx.concurrent]
        .into_iter()
        .find(|l| !l.is_empty())
        .cloned()
        .unwrap_or_default();
    let bad = cx.op.as_ref();
    if let Some(b) = bad.filter(|b| !b.f.is_empty() || b.process.is_some()) {
        if !list.iter().any(|o| o.same(b)) {
            list.push(b.clone());
        }
    }
    list.iter()
        .enumerate()
        .map(|(i, op)| CxOp {
            process: op.process.map_or_else(|| "?".into(), |p| p.to_string()),
            label: label(op),
            start: op.start_s.unwrap_or(i as f64),
            end: op.end_s,
            impossible: bad.is_some_and(|b| op.same(b)),
        })
        .collect()
}

/// "write 3", "read null → 1", "cas [1,2] (info)".
fn label(op: &CounterexampleOp) -> String {
    let mut label = if op.f.is_empty() {
        "op".to_string()
    } else {
        op.f.clone()
    };
    if !op.value.is_null() {
        label = format!("{label} {}", short(&op.value));
    }
    // A write's output echoes its value; show outputs that say something.
    if !op.output.is_null() && op.output != op.value {
        label = format!("{label} → {}", short(&op.output));
    }
    if let Some(t) = op.kind.as_deref().filter(|t| *t != "ok") {
        label = format!("{label} ({t})");
    }
    label
}

pub(super) fn section(run: &Run, key_file: Option<&str>) -> Markup {
    let Some(cx) = run.counterexample() else {
        return html! {
            section #counterexample {
                h2 { "Counterexample" }
                p.muted { "The checker gave no counterexample." }
            }
        };
    };
    let ops = cx_ops(cx);
    let pretty = serde_json::to_string_pretty(cx).unwrap_or_default();
    html! {
        section #counterexample {
            h2 { "Counterexample" }
            @if cx.key.is_empty() {
                p { a href="history.jsonl" { "Full history" } "." }
            } @else {
                p {
                    "Key " code { (cx.key) } ". "
                    @match key_file {
                        Some(f) => {
                            "Full history of this key (with nemesis events): "
                            a href=(f) { (f) } "."
                        }
                        None => { a href="history.jsonl" { "Full history" } "." }
                    }
                }
            }
            @if ops.is_empty() {
                p.muted { "The counterexample lists no operations to draw." }
            } @else {
                (timeline_svg(&ops))
            }
            @if !cx.possible_states.is_empty() {
                p {
                    "States the register could have been in: "
                    code { (short(&serde_json::Value::from(cx.possible_states.clone()))) }
                }
            }
            details {
                summary { "Counterexample as JSON" }
                pre { (pretty) }
            }
        }
    }
}

fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// One lane per process, a bar per op from invocation to completion with its value; the
/// impossible op in red. Ops with no completion run to the right edge.
fn timeline_svg(ops: &[CxOp]) -> Markup {
    let mut procs: Vec<&str> = ops.iter().map(|o| o.process.as_str()).collect();
    procs.sort_by_key(|p| (p.parse::<i64>().unwrap_or(i64::MAX), p.to_string()));
    procs.dedup();
    let t0 = ops.iter().map(|o| o.start).fold(f64::INFINITY, f64::min);
    let t1 = ops
        .iter()
        .map(|o| o.end.unwrap_or(o.start))
        .fold(f64::NEG_INFINITY, f64::max);
    let span = (t1 - t0).max(1e-9);
    let (left, width, lane_h) = (110.0, 920.0, 34.0);
    let x = |t: f64| left + (t - t0) / span * width * 0.92;
    let height = procs.len() as f64 * lane_h + 28.0;
    let w = left + width + 10.0;
    let secs = ops.iter().any(|o| o.start.fract() != 0.0);
    let tick = |t: f64| {
        if secs {
            format!("{t:.3} s")
        } else {
            format!("{t}")
        }
    };
    html! {
        figure id="cx-timeline" {
            svg xmlns="http://www.w3.org/2000/svg" width=(w) height=(height)
                viewBox={ "0 0 " (w) " " (height) } font-family="sans-serif" font-size="12" {
                @for (i, p) in procs.iter().enumerate() {
                    @let y = i as f64 * lane_h + 6.0;
                    text x=(left - 8.0) y=(y + 18.0) text-anchor="end" { "process " (p) }
                    line x1=(left) x2=(left + width) y1=(y + lane_h - 4.0) y2=(y + lane_h - 4.0)
                        stroke="#e3e5e8" {}
                }
                @for o in ops {
                    @let lane = procs.iter().position(|p| *p == o.process).unwrap_or(0);
                    @let y = lane as f64 * lane_h + 8.0;
                    @let x0 = x(o.start);
                    @let x1 = o.end.map_or(left + width, x);
                    @let (fill, stroke) = if o.impossible {
                        ("#ffcdd2", "#c62828")
                    } else {
                        ("#d6e6f5", "#1f77b4")
                    };
                    @let label = if o.impossible {
                        format!("✗ {} (impossible)", o.label)
                    } else {
                        o.label.clone()
                    };
                    g class=(if o.impossible { "op impossible" } else { "op" }) {
                        rect x=(px(x0)) y=(y) width=(px((x1 - x0).max(4.0))) height="22" rx="3"
                            fill=(fill) stroke=(stroke)
                            stroke-width=(if o.impossible { 2 } else { 1 })
                            stroke-dasharray=[o.end.is_none().then_some("4 3")] {}
                        text x=(px(x0 + 4.0)) y=(y + 15.0)
                            fill=(if o.impossible { "#b71c1c" } else { "#1d2329" }) { (label) }
                        title { (label) }
                    }
                }
                @for (t, anchor) in [(t0, "start"), (t1, "end")] {
                    text x=(px(x(t))) y=(height - 6.0) text-anchor=(anchor) fill="#6b7480" {
                        (tick(t))
                    }
                }
                text x=(left + width * 0.46) y=(height - 6.0) text-anchor="middle" fill="#6b7480" {
                    "time →  (bars: invocation to completion; dashed: never completed)"
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_counterexample_ops_leniently() {
        let cx = json!({
            "key": "k1",
            "failing_op": {"index": 7},
            "ops": [
                {"index": 3, "process": 1, "f": "write", "value": 1, "invoke_time": 10, "complete_time": 20},
                {"index": 7, "process": 2, "f": "read", "value": 2, "invoke_time": 25, "complete_time": 30},
                {"index": 9, "process": 3, "f": "cas", "value": [1, 2], "invoke_time": 5, "type": "info"}
            ]
        });
        let cx: Counterexample = serde_json::from_value(cx).unwrap();
        let ops = cx_ops(&cx);
        assert_eq!(ops.len(), 3);
        assert!(ops[1].impossible && !ops[0].impossible);
        assert_eq!(ops[2].end, None);
        assert_eq!(ops[2].label, "cas [1,2] (info)");
        let svg = timeline_svg(&ops).into_string();
        assert!(svg.contains("✗ read 2 (impossible)"));
        assert_eq!(svg.matches("class=\"op").count(), 3);
    }
}
