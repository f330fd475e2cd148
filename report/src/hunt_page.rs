//! The page of a `harness hunt`: its runs over time (one bar per run, coloured by verdict), which
//! features were on in the runs that found something against how often they were drawn, and
//! every run's configuration.

use crate::html::{badge, page, verdict_class};
use maud::{html, Markup};
use std::collections::BTreeMap;
use std::path::Path;

/// A hunt as the page shows it.
#[derive(Clone, Debug, Default)]
pub struct HuntView {
    pub title: String,
    pub seed: u64,
    pub time_s: f64,
    pub elapsed_s: f64,
    pub fixed: Vec<String>,
    pub drawn: Vec<String>,
    pub coverage_buckets: usize,
    pub runs: Vec<RunRow>,
    /// The shrunk configuration's command line and its reproduction rate.
    pub shrunk: Option<(String, String)>,
}

/// One run of a hunt.
#[derive(Clone, Debug, Default)]
pub struct RunRow {
    pub index: usize,
    pub started_s: f64,
    pub duration_s: f64,
    pub verdict: String,
    pub explanation: String,
    pub features: Vec<String>,
    /// The run's report, relative to the page.
    pub report: Option<String>,
    pub new_buckets: usize,
    pub command: String,
}

/// Writes the page to `path`.
pub fn write(path: &Path, v: &HuntView) -> Result<(), String> {
    std::fs::write(path, render(v)).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn render(v: &HuntView) -> String {
    let found = v.runs.iter().filter(|r| r.verdict == "invalid").count();
    let class = if found > 0 { "invalid" } else { "valid" };
    let body = html! {
        div.banner.(class) {
            h1 { (v.title) }
            div.sub { (v.runs.len()) " runs in " (format!("{:.0}", v.elapsed_s)) " s of "
                (format!("{:.0}", v.time_s)) " s · seed " (v.seed) " · "
                (v.coverage_buckets) " coverage buckets" }
            div.figures { (found) " found a violation" }
        }
        p { "Fixed: " (join(&v.fixed)) ". Drawn: " (join(&v.drawn)) "." }
        @if let Some((cmd, rate)) = &v.shrunk {
            h2 { "Shrunk failure" }
            p { "Reproduced " (rate) "." }
            pre { (cmd) }
        }
        h2 { "Runs over time" }
        figure { (timeline(v)) }
        h2 { "Features of the runs that found something" }
        (feature_table(v))
        h2 { "Runs" }
        (run_table(v))
    };
    page(&v.title, body)
}

fn join(xs: &[String]) -> String {
    if xs.is_empty() {
        "nothing".into()
    } else {
        xs.join(", ")
    }
}

/// One bar per run from its start to its end, coloured by verdict.
fn timeline(v: &HuntView) -> Markup {
    let end = v
        .runs
        .iter()
        .map(|r| r.started_s + r.duration_s)
        .fold(v.time_s.max(1.0), f64::max);
    let (w, row_h) = (1000.0, 14.0);
    let rows = v.runs.len().max(1) as f64;
    let h = rows * row_h + 24.0;
    let x = |s: f64| 40.0 + s / end * (w - 50.0);
    let color = |verdict: &str| match verdict_class(Some(verdict)) {
        "valid" => "#1f8f4e",
        "invalid" => "#c62828",
        "unknown" => "#d98c00",
        _ => "#6b7480",
    };
    let ticks: Vec<f64> = (0..=5).map(|i| end * i as f64 / 5.0).collect();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(w) height=(h) viewBox=(format!("0 0 {w} {h}")) {
            @for (i, r) in v.runs.iter().enumerate() {
                rect x=(x(r.started_s)) y=(i as f64 * row_h + 2.0)
                    width=((x(r.started_s + r.duration_s) - x(r.started_s)).max(1.0))
                    height=(row_h - 3.0) fill=(color(&r.verdict)) {
                    title { "run " (r.index) ": " (r.verdict) " · " (r.features.join(" ")) }
                }
                text x="2" y=(i as f64 * row_h + row_h - 2.0) font-size="10" { (r.index) }
            }
            @for t in &ticks {
                text x=(x(*t)) y=(h - 4.0) font-size="11" text-anchor="middle" { (format!("{t:.0} s")) }
            }
        }
    }
}

/// Feature → (runs with it, finding runs with it), for the features of the finding runs.
fn feature_counts(v: &HuntView) -> BTreeMap<String, (usize, usize)> {
    let mut m: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in &v.runs {
        for f in &r.features {
            let e = m.entry(f.clone()).or_default();
            e.0 += 1;
            if r.verdict == "invalid" {
                e.1 += 1;
            }
        }
    }
    m.retain(|_, (_, found)| *found > 0);
    m
}

fn feature_table(v: &HuntView) -> Markup {
    let counts = feature_counts(v);
    let found = v.runs.iter().filter(|r| r.verdict == "invalid").count();
    html! {
        @if counts.is_empty() {
            p.muted { "No run found a violation." }
        } @else {
            table {
                tr { th { "feature" } th { "in finding runs (of " (found) ")" } th { "in all runs" } th { "finding rate with it" } }
                @for (f, (all, hit)) in &counts {
                    tr { td { (f) } td { (hit) } td { (all) }
                        td { (format!("{:.0}%", *hit as f64 / *all as f64 * 100.0)) } }
                }
            }
        }
    }
}

fn run_table(v: &HuntView) -> Markup {
    html! {
        table {
            tr { th { "run" } th { "start s" } th { "time s" } th { "verdict" } th { "new buckets" }
                 th.l { "features" } th.l { "command" } }
            @for r in &v.runs {
                tr {
                    td { @if let Some(rep) = &r.report { a href=(rep) { (r.index) } } @else { (r.index) } }
                    td { (format!("{:.0}", r.started_s)) }
                    td { (format!("{:.0}", r.duration_s)) }
                    td { (badge(Some(&r.verdict))) }
                    td { (r.new_buckets) }
                    td.l { (r.features.join(" ")) }
                    td.l { code { (r.command) } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize, verdict: &str, features: &[&str]) -> RunRow {
        RunRow {
            index: i,
            started_s: i as f64 * 10.0,
            duration_s: 9.0,
            verdict: verdict.into(),
            features: features.iter().map(|s| s.to_string()).collect(),
            command: "harness test --nodes 3 <x>".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_page_counts_features_of_finding_runs_and_escapes() {
        let v = HuntView {
            title: "hunt t".into(),
            time_s: 60.0,
            runs: vec![
                row(0, "valid", &["pause", "kill"]),
                row(1, "invalid", &["pause"]),
                row(2, "invalid", &["pause", "latency"]),
            ],
            ..Default::default()
        };
        let c = feature_counts(&v);
        assert_eq!(c["pause"], (3, 2));
        assert_eq!(c["latency"], (1, 1));
        assert!(!c.contains_key("kill"), "kill never found anything");
        let html = render(&v);
        assert!(html.contains("&lt;x&gt;") && !html.contains("<x>"));
        assert_eq!(html.matches("<rect").count(), 3);
    }
}
