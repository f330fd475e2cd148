//! The sections of `report.html` after the verdict: configuration and replay, stats tables, the
//! fault timeline, node statistics and the run's files.

use crate::analysis::{Analysis, Counts, Latency, PeriodStats};
use crate::html::{ms, pct, short, short_time, verdict_class};
use crate::node_stats::node_summary;
use crate::plot;
use crate::run::{replay_command, Run};
use maud::{html, Markup};
use serde_json::{Map, Value};

pub(super) fn banner(run: &Run, a: &Analysis, name: &str, verdict: Option<&str>) -> Markup {
    let explanation = run.explanation().unwrap_or_else(|| {
        if run.results.is_some() {
            "results.json holds no explanation".into()
        } else {
            "This run has not been checked: results.json is missing.".into()
        }
    });
    let started = run.started().unwrap_or_default();
    let when = match short_time(&started) {
        t if t != started => format!("{t} UTC"),
        t => t,
    };
    html! {
        header #verdict .banner .(verdict_class(verdict)) {
            h1 { (verdict.unwrap_or("not checked").to_uppercase()) " · " (name) }
            div.sub { (when) " " (run.dir.display()) }
            div.figures { (key_figures(a)) }
            div.explanation { (explanation) }
        }
    }
}

/// The run at a glance: ops, throughput, availability, p99, faults.
fn key_figures(a: &Analysis) -> Markup {
    let c = a.counts_total();
    let kinds = a.fault_kinds();
    html! {
        b { (c.completed()) } (format_args!(" ops in {:.1} s", a.duration_s()))
        " · " b { (format_args!("{:.1}", a.throughput(false))) } " ops/s"
        " · availability " b { (pct(c.availability())) }
        @if let Some(l) = a.latency_ok() {
            " · p50 " b { (ms(l.p50)) } " ms · p99 " b { (ms(l.p99)) } " ms"
        }
        " · "
        @if kinds.is_empty() { "no faults" } @else { "faults: " (kinds.join(", ")) }
    }
}

/// Configuration rows: top-level scalars and arrays, with the `options` object flattened one
/// level; other nested objects stay in the full JSON below the table.
fn config_rows(m: &Map<String, Value>) -> Vec<(String, String)> {
    const FIRST: [&str; 8] = [
        "name",
        "workload",
        "nodes",
        "variant",
        "nemesis",
        "faults",
        "seed",
        "node_args",
    ];
    let mut rows: Vec<(String, String)> = Vec::new();
    for (k, v) in m {
        match v {
            Value::Object(sub) if k == "options" => rows.extend(
                sub.iter()
                    .filter(|(_, v)| !v.is_null() && !v.is_object())
                    .map(|(k, v)| (k.clone(), short(v))),
            ),
            Value::Object(_) => {}
            v => rows.push((k.clone(), short(v))),
        }
    }
    rows.sort_by_key(|(k, _)| (FIRST.iter().position(|f| f == k).unwrap_or(99), k.clone()));
    rows.dedup_by(|a, b| a.0 == b.0);
    for (_, v) in &mut rows {
        if v.chars().count() > 300 {
            *v = v.chars().take(300).chain(std::iter::once('…')).collect();
        }
    }
    rows
}

pub(super) fn config(run: &Run) -> Markup {
    let test = run.test.as_ref().map(serde_json::to_value);
    html! {
        section #config {
            h2 { "Configuration" }
            @match test {
                Some(Ok(Value::Object(m))) => {
                    table #config-table {
                        @for pair in config_rows(&m).chunks(2) {
                            tr { @for (k, v) in pair { th { (k) } td.l { (v) } } }
                        }
                    }
                    details {
                        summary { "test.json" }
                        pre { (serde_json::to_string_pretty(&m).unwrap_or_default()) }
                    }
                }
                _ => p.muted { "No test.json in this run folder." }
            }
            h3 { "Replay" }
            pre #replay { (replay_command(&run.dir)) }
        }
    }
}

fn latency_cells(l: &Option<Latency>) -> Markup {
    html! {
        @match l {
            Some(l) => { td { (ms(l.p50)) } td { (ms(l.p95)) } td { (ms(l.p99)) } td { (ms(l.max)) } }
            None => td colspan="4" .muted { "no ok ops" }
        }
    }
}

fn counts_cells(c: &Counts) -> Markup {
    html! {
        td { (c.completed()) } td { (c.ok) } td { (c.fail) } td { (c.info) }
        td { (pct(c.availability())) }
    }
}

pub(super) fn stats(a: &Analysis) -> Markup {
    let total = a.counts_total();
    let all = a.latency_ok();
    html! {
        section #stats {
            h2 { "Stats" }
            p {
                (format_args!(
                    "{} ops completed over {:.1} s: {:.1} ops/s, {:.1} ok/s; availability {}.",
                    total.completed(), a.duration_s(), a.throughput(false), a.throughput(true),
                    pct(total.availability())
                ))
                @if total.pending > 0 { " " (total.pending) " ops never completed." }
            }
            div.grid {
                div {
                    h3 { "Operations by f" }
                    table #counts {
                        tr {
                            th { "f" } th { "completed" } th { "ok" } th { "fail" } th { "info" }
                            th { "availability" } th { "pending" }
                        }
                        @for (i, c) in a.counts_by_f().iter().enumerate() {
                            tr { td { (a.fs[i]) } (counts_cells(c)) td { (c.pending) } }
                        }
                        tr { th { "all" } (counts_cells(&total)) td { (total.pending) } }
                    }
                }
                div {
                    h3 { "Latency of ok ops (ms)" }
                    table #latency {
                        tr {
                            th { "f" } th { "ok ops" } th { "p50" } th { "p95" } th { "p99" }
                            th { "max" }
                        }
                        @for (i, l) in a.latency_by_f().iter().enumerate() {
                            tr { td { (a.fs[i]) } td { (l.map_or(0, |l| l.n)) } (latency_cells(l)) }
                        }
                        tr { th { "all" } td { (all.map_or(0, |l| l.n)) } (latency_cells(&all)) }
                    }
                }
            }
            h3 { "Availability in quiet periods and under each fault" }
            p.muted { "An op counts for the period in which it was invoked." }
            (period_table(&a.periods()))
        }
    }
}

/// The quiet-vs-fault table.
fn period_table(periods: &[PeriodStats]) -> Markup {
    html! {
        table #availability {
            tr {
                th { "period" } th { "time (s)" } th { "completed" } th { "ok" } th { "fail" }
                th { "info" } th { "availability" } th { "p50 ms" } th { "p95 ms" }
                th { "p99 ms" } th { "max ms" }
            }
            @for p in periods {
                tr {
                    td { (p.name) } td { (format_args!("{:.1}", p.seconds)) }
                    (counts_cells(&p.counts)) (latency_cells(&p.latency))
                }
            }
        }
    }
}

pub(super) fn faults(a: &Analysis) -> Markup {
    if a.faults.is_empty() {
        return html! {
            section #faults {
                h2 { "Fault timeline" }
                p.muted {
                    "No faults: the history holds " (a.nemesis_events)
                    " nemesis events and none started a fault."
                }
            }
        };
    }
    let secs = |ns: u64| format!("{:.2}", ns as f64 / 1e9);
    html! {
        section #faults {
            h2 { "Fault timeline" }
            (fault_timeline_svg(a))
            details {
                summary { "Fault intervals" }
                table {
                    tr {
                        th { "kind" } th { "target" } th { "from (s)" } th { "to (s)" }
                        th { "length (s)" }
                    }
                    @for f in a.faults.iter().take(500) {
                        tr {
                            td { (f.kind) } td { (f.target.as_deref().unwrap_or("cluster")) }
                            td { (secs(f.start_ns)) }
                            td { (secs(f.end_ns)) @if f.open { " (never stopped)" } }
                            td { (secs(f.end_ns - f.start_ns)) }
                        }
                    }
                    @if a.faults.len() > 500 {
                        tr { td colspan="5" { "… " (a.faults.len() - 500) " more" } }
                    }
                }
            }
        }
    }
}

fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// One lane per fault kind and target; time on x like the plots.
fn fault_timeline_svg(a: &Analysis) -> Markup {
    let kinds = a.fault_kinds();
    let mut lanes: Vec<(String, Option<String>)> = Vec::new();
    for f in &a.faults {
        let lane = (f.kind.clone(), f.target.clone());
        if !lanes.contains(&lane) {
            lanes.push(lane);
        }
    }
    lanes.sort();
    let (left, width, lane_h) = (150.0, 900.0, 22.0);
    let height = lanes.len() as f64 * lane_h + 44.0;
    let end = a.duration_s().max(0.001);
    let x = |ns: u64| left + ns as f64 / 1e9 / end * width;
    let w = left + width + 20.0;
    let axis_y = lanes.len() as f64 * lane_h + 6.0;
    let raw = end / 10.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(raw);
    let ticks = ((end / step).floor() as usize).min(50);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(w) height=(height)
            viewBox={ "0 0 " (w) " " (height) } font-family="sans-serif" font-size="12" {
            @for (i, (kind, target)) in lanes.iter().enumerate() {
                @let y = i as f64 * lane_h + 4.0;
                @let ki = kinds.iter().position(|k| k == kind).unwrap_or(0);
                @let c = plot::css(plot::fault_color(kind, ki));
                @let label = format!("{kind} {}", target.as_deref().unwrap_or(""));
                rect x=(left) y=(y) width=(width) height=(lane_h - 4.0) fill="#f3f4f6" {}
                text x=(left - 8.0) y=(y + 13.0) text-anchor="end" { (label.trim()) }
                @for f in a.faults.iter().filter(|f| &f.kind == kind && &f.target == target) {
                    @let (x0, x1) = (x(f.start_ns), x(f.end_ns));
                    rect x=(px(x0)) y=(y) width=(px((x1 - x0).max(1.0))) height=(lane_h - 4.0)
                        fill=(c) fill-opacity="0.75" {
                        title {
                            (label.trim())
                            (format_args!(" {:.2}–{:.2} s", f.start_ns as f64 / 1e9,
                                f.end_ns as f64 / 1e9))
                        }
                    }
                }
            }
            line x1=(left) x2=(left + width) y1=(axis_y) y2=(axis_y) stroke="#555" {}
            @for i in 0..=ticks {
                @let t = step * i as f64;
                @let xx = px(left + t / end * width);
                line x1=(xx) x2=(xx) y1=(axis_y) y2=(axis_y + 4.0) stroke="#555" {}
                text x=(xx) y=(axis_y + 16.0) text-anchor="middle" {
                    ((t * 1000.0).round() / 1000.0)
                }
            }
            text x=(left + width / 2.0) y=(axis_y + 32.0) text-anchor="middle" { "time (s)" }
        }
    }
}

pub(super) fn nodes(run: &Run, a: &Analysis) -> Markup {
    let stats = run.node_stats.as_ref();
    let Some((v, m)) = stats.and_then(|v| Some((v, v.as_object()?))) else {
        return html! {
            section #nodes {
                h2 { "Nodes" }
                p.muted {
                    "No node statistics: node-stats.json is missing (the node may not answer the \
                     optional " code { "stats" } " request)."
                }
            }
        };
    };
    let s = node_summary(v, a.counts_total().completed());
    let mut counters: Vec<&String> = m
        .values()
        .filter_map(Value::as_object)
        .flat_map(|o| o.keys())
        .collect();
    counters.sort();
    counters.dedup();
    let opt = |v: Option<f64>| {
        v.map_or("–".into(), |v| {
            if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
    };
    html! {
        section #nodes {
            h2 { "Nodes" }
            table #node-summary {
                tr {
                    th { "messages per op" } th { "leader changes" } th { "phase-1 rounds" }
                    th { "nodes answering stats" }
                }
                tr {
                    td { (opt(s.messages_per_op)) } td { (opt(s.leader_changes)) }
                    td { (opt(s.phase1_rounds)) }
                    td { (s.answered.len()) " of " (s.answered.len() + s.silent.len()) }
                }
            }
            details {
                summary { "All node counters (" (counters.len()) ")" }
                table #node-stats {
                    tr { th { "counter" } @for node in m.keys() { th { (node) } } }
                    @for c in counters {
                        tr {
                            td { (c) }
                            @for stats in m.values() {
                                td {
                                    @match stats.get(c) {
                                        Some(v) => (short(v)),
                                        None if stats.is_object() => {},
                                        None => span.muted { "no answer" },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn files(run: &Run) -> Markup {
    let mut names: Vec<String> = [
        "history.jsonl",
        "results.json",
        "test.json",
        "schedule.json",
        "node-stats.json",
        "harness.log",
    ]
    .iter()
    .filter(|f| run.dir.join(f).exists())
    .map(|f| f.to_string())
    .collect();
    if let Ok(rd) = std::fs::read_dir(run.dir.join("nodes")) {
        let mut logs: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".log"))
            .map(|n| format!("nodes/{n}"))
            .collect();
        logs.sort();
        names.extend(logs);
    }
    html! {
        section #files {
            h2 { "Files" }
            ul {
                @if names.is_empty() { li.muted { "no files" } }
                @for n in &names { li { a href=(n) { (n) } } }
            }
        }
    }
}
