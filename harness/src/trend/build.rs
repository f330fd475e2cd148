//! From nights to the [`Trend`] the page, `trend.json` and `trend.md` show: series per suite, and
//! the alerts of each suite's newest night against the nights before it.

use super::band::{self, Worse};
use super::nights::{Night, NightRun};
use report::trend_page::{
    Alert, BandRule, BugSeries, CellSeries, Metric, NightInfo, Strip, StripCell, SuiteTrend, Trend,
    Unreadable, TREND_SCHEMA,
};
use std::collections::BTreeMap;
use std::path::Path;

/// `out_dir` is where the page goes (links to reports are relative to it).
pub fn build(
    nights: &[Night],
    unreadable: Vec<Unreadable>,
    rule: BandRule,
    out_dir: &Path,
) -> Trend {
    let mut by_suite: BTreeMap<&str, Vec<&Night>> = BTreeMap::new();
    for n in nights {
        by_suite.entry(&n.suite).or_default().push(n);
    }
    let out_abs = std::path::absolute(out_dir).unwrap_or_else(|_| out_dir.to_path_buf());
    let mut suites = Vec::new();
    let mut alerts = Vec::new();
    for (name, ns) in by_suite {
        let s = suite(name, &ns, &rule, &out_abs);
        alerts.extend(suite_alerts(&s, &ns, &rule));
        suites.push(s);
    }
    Trend {
        schema_version: TREND_SCHEMA,
        band: rule,
        suites,
        unreadable,
        alerts,
    }
}

/// Names in the order first seen, oldest night first.
fn ordered<'a>(ns: &[&'a Night], key: impl Fn(&'a NightRun) -> Option<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for n in ns {
        for r in &n.runs {
            if let Some(k) = key(r) {
                if seen.insert(k.clone()) {
                    out.push(k);
                }
            }
        }
    }
    out
}

fn suite(name: &str, ns: &[&Night], rule: &BandRule, out_dir: &Path) -> SuiteTrend {
    let nights = ns
        .iter()
        .map(|n| NightInfo {
            started: n.started.clone(),
            path: n.path.display().to_string(),
            runs: n.runs.len(),
            schema_version: n.schema_version,
        })
        .collect();
    let index: Vec<BTreeMap<&str, &NightRun>> = ns
        .iter()
        .map(|n| n.runs.iter().map(|r| (r.name.as_str(), r)).collect())
        .collect();
    let strips = ordered(ns, |r| Some(r.name.clone()))
        .into_iter()
        .map(|run| {
            let cells: Vec<Option<StripCell>> = ns
                .iter()
                .zip(&index)
                .map(|(n, idx)| {
                    idx.get(run.as_str()).map(|r| StripCell {
                        outcome: outcome(r).into(),
                        verdict: r.verdict.clone(),
                        link: link(n, r, out_dir),
                    })
                })
                .collect();
            let expect = index
                .iter()
                .rev()
                .find_map(|i| i.get(run.as_str()))
                .map(|r| r.expect.clone())
                .unwrap_or_default();
            Strip {
                name: run,
                expect,
                cells,
            }
        })
        .collect();
    SuiteTrend {
        suite: name.to_string(),
        nights,
        strips,
        bugs: bugs(ns),
        cells: cells(ns, rule),
    }
}

fn outcome(r: &NightRun) -> &'static str {
    match r.outcome.as_str() {
        "pass" => "pass",
        "fail" => "fail",
        "unknown" => "unknown",
        _ => "error",
    }
}

/// The run's report relative to the page, when the file is there.
fn link(n: &Night, r: &NightRun, out_dir: &Path) -> Option<String> {
    let file = n.dir().join(r.report.as_deref()?);
    if !file.is_file() {
        return None;
    }
    let file = std::path::absolute(&file).ok()?;
    let rel = pathdiff::diff_paths(&file, out_dir)?;
    Some(rel.to_string_lossy().replace('\\', "/"))
}

fn bugs(ns: &[&Night]) -> Vec<BugSeries> {
    let entries = ordered(ns, |r| (r.expect == "invalid").then(|| r.entry.clone()));
    entries
        .into_iter()
        .map(|entry| {
            let mut b = BugSeries {
                entry: entry.clone(),
                bugs: Vec::new(),
                rate: Vec::new(),
                median_first_violation_s: Vec::new(),
            };
            for n in ns {
                let mine: Vec<&NightRun> = n
                    .runs
                    .iter()
                    .filter(|r| r.entry == entry && r.expect == "invalid")
                    .collect();
                if let Some(r) = mine.first() {
                    b.bugs.clone_from(&r.bugs);
                }
                let found = mine.iter().filter(|r| r.outcome == "pass").count();
                b.rate
                    .push((!mine.is_empty()).then(|| found as f64 / mine.len() as f64));
                let mut t: Vec<f64> = mine
                    .iter()
                    .filter(|r| r.verdict.as_deref() == Some("invalid"))
                    .filter_map(|r| r.first_violation_s)
                    .collect();
                b.median_first_violation_s.push(band::median(&mut t));
            }
            b
        })
        .collect()
}

/// The figures a cell shows, and which way is worse for the ones that alert.
pub const FIGURES: [(&str, Option<Worse>); 4] = [
    ("ops/s", Some(Worse::Lower)),
    ("p50 ms", None),
    ("p99 ms", Some(Worse::Higher)),
    ("availability", None),
];

fn figure(r: &NightRun, i: usize) -> Option<f64> {
    match i {
        0 => r.ops_per_sec,
        1 => r.p50_ms,
        2 => r.p99_ms,
        _ => r.availability,
    }
}

fn cells(ns: &[&Night], rule: &BandRule) -> Vec<CellSeries> {
    let key = |r: &NightRun| format!("{}\u{0}{}\u{0}{}", r.variant, r.workload, r.faults);
    let keys = ordered(ns, |r| (r.expect == "valid").then(|| key(r)));
    keys.into_iter()
        .map(|k| {
            let mut parts = k.split('\u{0}').map(str::to_string);
            let mut next = || parts.next().unwrap_or_default();
            let (variant, workload, faults) = (next(), next(), next());
            let metrics = FIGURES
                .iter()
                .enumerate()
                .map(|(fi, (name, _))| {
                    let values: Vec<Option<f64>> = ns
                        .iter()
                        .map(|n| {
                            let mut v: Vec<f64> = n
                                .runs
                                .iter()
                                .filter(|r| r.expect == "valid" && key(r) == k)
                                .filter_map(|r| figure(r, fi))
                                .filter(|v| v.is_finite())
                                .collect();
                            band::median(&mut v)
                        })
                        .collect();
                    Metric {
                        name: name.to_string(),
                        band: band::bands(&values, rule),
                        values,
                    }
                })
                .collect();
            CellSeries {
                variant,
                workload,
                faults,
                metrics,
            }
        })
        .collect()
}

/// What changed on the newest night of one suite, against each run's previous appearance.
fn suite_alerts(s: &SuiteTrend, ns: &[&Night], rule: &BandRule) -> Vec<Alert> {
    let Some(last) = ns.len().checked_sub(1) else {
        return Vec::new();
    };
    let night = s.nights[last].started.clone();
    let mut out = Vec::new();
    let mut alert = |kind: &str, subject: &str, message: String| {
        out.push(Alert {
            suite: s.suite.clone(),
            night: night.clone(),
            kind: kind.into(),
            subject: subject.into(),
            message,
        })
    };
    for st in &s.strips {
        let Some(Some(now)) = st.cells.get(last) else {
            continue;
        };
        let Some((i, before)) = st.cells[..last]
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, c)| c.as_ref().map(|c| (i, c)))
        else {
            continue;
        };
        let was = format!(
            "{} on {}",
            before.verdict.as_deref().unwrap_or("error"),
            s.nights[i].started
        );
        let v = now.verdict.as_deref();
        if st.expect == "valid"
            && before.verdict.as_deref() == Some("valid")
            && v == Some("invalid")
        {
            alert(
                "became-invalid",
                &st.name,
                format!("a correct run checked invalid (was {was})"),
            );
        } else if now.outcome == "unknown" && before.outcome != "unknown" {
            alert(
                "became-unknown",
                &st.name,
                format!("the checker could not decide (was {was})"),
            );
        } else if now.outcome == "error" && before.outcome != "error" {
            alert(
                "became-error",
                &st.name,
                format!("the run produced no verdict (was {was})"),
            );
        }
    }
    for b in &s.bugs {
        let now = b.rate.get(last).copied().flatten();
        let before = b.rate[..last].iter().rev().flatten().next();
        if let (Some(now), Some(before)) = (now, before) {
            if now == 0.0 && *before > 0.0 {
                let msg = format!(
                    "seeded bug {} no longer found (0% of runs; {:.0}% the night before)",
                    b.bugs.join(", "),
                    before * 100.0
                );
                alert("bug-not-found", &b.entry, msg);
            }
        }
    }
    for c in &s.cells {
        let subject = format!("{} · {} · {}", c.variant, c.workload, c.faults);
        for (m, (_, worse)) in c.metrics.iter().zip(FIGURES) {
            let Some(worse) = worse else { continue };
            if let Some((by, b)) = band::regression(&m.values, last, rule, worse) {
                let v = m.values[last].unwrap_or_default();
                let kind = if worse == Worse::Lower {
                    "throughput"
                } else {
                    "p99"
                };
                let msg = format!(
                    "{} {v:.1} is {:.0}% {} the median {:.1} of the previous nights (band {:.1} – {:.1}, margin {:.0}%)",
                    m.name,
                    by * 100.0,
                    if worse == Worse::Lower { "below" } else { "above" },
                    b[1],
                    b[0],
                    b[2],
                    rule.margin * 100.0
                );
                alert(kind, &subject, msg);
            }
        }
    }
    out
}
