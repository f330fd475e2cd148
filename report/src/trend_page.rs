//! `trend.html`: many nights of suite runs on one self-contained page. The data ([`Trend`], also
//! written as `trend.json`) is built by the harness from the nights' `summary.json`; this module
//! only draws it: a verdict strip per run name, detection rate per seeded bug, and per variant ×
//! workload × fault set the throughput, latency and availability over the nights with the noise
//! band, plus the regression alerts and the files that could not be read.

use crate::html::{page, short_time};
use maud::{html, Markup, PreEscaped};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// The `schema_version` of `trend.json`.
pub const TREND_SCHEMA: u32 = 1;

/// Everything the page shows; the layout of `trend.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trend {
    pub schema_version: u32,
    pub band: BandRule,
    pub suites: Vec<SuiteTrend>,
    /// `summary.json` files that could not be read, with why.
    pub unreadable: Vec<Unreadable>,
    /// What changed on each suite's newest night.
    pub alerts: Vec<Alert>,
}

/// How the noise band is computed (see the harness's `trend::band`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct BandRule {
    /// The band of a night is made of the previous `window` nights that have a value...
    pub window: usize,
    /// ...when there are at least this many; otherwise there is no band (and no alert).
    pub min_points: usize,
    /// Band = median ± k · 1.4826 · MAD.
    pub k: f64,
    /// An alert needs the value beyond the band by more than this share of the median.
    pub margin: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Unreadable {
    pub path: String,
    pub reason: String,
}

/// One suite run (a night).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NightInfo {
    pub started: String,
    /// The `summary.json` it was read from.
    pub path: String,
    pub runs: usize,
    pub schema_version: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteTrend {
    pub suite: String,
    /// Oldest first; every series below has one slot per night.
    pub nights: Vec<NightInfo>,
    pub strips: Vec<Strip>,
    pub bugs: Vec<BugSeries>,
    pub cells: Vec<CellSeries>,
}

/// One run name's outcome night after night.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Strip {
    pub name: String,
    pub expect: String,
    pub cells: Vec<Option<StripCell>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StripCell {
    /// `pass` (the expected verdict), `fail` (the other one), `unknown` or `error`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// The night's report of this run, relative to the page, when the file is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// A seeded-bug entry (`expect = "invalid"`): how often it was found, and how fast.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BugSeries {
    pub entry: String,
    pub bugs: Vec<String>,
    pub rate: Vec<Option<f64>>,
    pub median_first_violation_s: Vec<Option<f64>>,
}

/// A variant × workload × fault set, over the runs expected valid.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellSeries {
    pub variant: String,
    pub workload: String,
    pub faults: String,
    pub metrics: Vec<Metric>,
}

/// One figure over the nights (the median over the cell's runs of that night) and, per night,
/// the band `[low, median, high]` made of the nights before it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub values: Vec<Option<f64>>,
    pub band: Vec<Option<[f64; 3]>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    pub suite: String,
    /// When the night that raised it started.
    pub night: String,
    /// `became-invalid`, `bug-not-found`, `became-unknown`, `became-error`, `throughput`, `p99`.
    pub kind: String,
    pub subject: String,
    pub message: String,
}

const CSS: &str = r#"
.strip{display:flex;gap:1px;flex-wrap:nowrap}
.strip a,.strip span{display:inline-block;width:7px;height:14px;border-radius:1px}
.o-pass{background:#1f8f4e}.o-fail{background:#c62828}.o-unknown{background:#d98c00}.o-error{background:#6a1b9a}.o-none{background:#e3e6ea}
.strips td.s{overflow-x:auto;max-width:860px}
.cells{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:6px}
.cells figure{margin:0}
.alerts li{margin:3px 0}
"#;

/// The whole page.
pub fn render(t: &Trend) -> Result<String, String> {
    let nights: usize = t.suites.iter().map(|s| s.nights.len()).sum();
    let body = html! {
        style { (PreEscaped(CSS)) }
        header.banner.(if t.alerts.is_empty() { "valid" } else { "invalid" }) {
            h1 { "Trend" }
            div.sub {
                (t.suites.len()) " suites · " (nights) " nights · "
                (t.alerts.len()) " alerts · " (t.unreadable.len()) " unreadable"
            }
        }
        (alerts(&t.alerts))
        (unreadable(&t.unreadable))
        @for s in &t.suites { (suite(s)?) }
        section #band {
            h2 { "How the noise band is computed" }
            p {
                "For each night, the previous " (t.band.window) " nights with a value (at least "
                (t.band.min_points) "): median ± " (t.band.k) " · 1.4826 · MAD (median absolute "
                "deviation, scaled to a standard deviation). A throughput below the band, or a "
                "p99 above it, by more than " (format!("{:.0}%", t.band.margin * 100.0))
                " of the median raises an alert on the newest night."
            }
        }
    };
    Ok(page("Trend", body))
}

fn alerts(a: &[Alert]) -> Markup {
    html! {
        section #alerts {
            h2 { "Regression alerts" }
            @if a.is_empty() { p.muted { "None on the newest nights." } }
            ul.alerts {
                @for x in a {
                    li { b { (x.kind) } " · " (x.suite) " · " code { (x.subject) } ": " (x.message) }
                }
            }
        }
    }
}

fn unreadable(u: &[Unreadable]) -> Markup {
    if u.is_empty() {
        return html! {};
    }
    html! {
        section #unreadable {
            h2 { "Unreadable summaries" }
            ul { @for x in u { li { code { (x.path) } ": " (x.reason) } } }
        }
    }
}

fn suite(s: &SuiteTrend) -> Result<Markup, String> {
    let (first, last) = match (s.nights.first(), s.nights.last()) {
        (Some(f), Some(l)) => (short_time(&f.started), short_time(&l.started)),
        _ => Default::default(),
    };
    let mut charts = Vec::new();
    for c in &s.cells {
        let mut figs = Vec::new();
        for m in &c.metrics {
            figs.push(series_svg(&m.name, &m.values, &m.band)?);
        }
        charts.push(figs);
    }
    Ok(html! {
        section.suite data-suite=(s.suite) {
            h2 { "Suite " code { (s.suite) } }
            p.muted { (s.nights.len()) " nights, " (first) " to " (last) ", oldest on the left" }
            h3 { "Verdicts per run" }
            table.strips {
                tr { th { "run" } th { "expected" } th.l { "nights" } }
                @for st in &s.strips {
                    tr {
                        td { (st.name) } td { (st.expect) }
                        td.s { div.strip { @for (i, c) in st.cells.iter().enumerate() {
                            (strip_cell(c.as_ref(), &s.nights[i].started))
                        } } }
                    }
                }
            }
            @if !s.bugs.is_empty() {
                h3 { "Seeded bugs: detection rate" }
                table {
                    tr {
                        th { "entry" } th.l { "bugs" } th { "newest rate" }
                        th { "median rate" } th { "median time to first violation" }
                        th.l { "rate per night" }
                    }
                    @for b in &s.bugs {
                        tr {
                            td { (b.entry) } td.l { (b.bugs.join(", ")) }
                            td { (pct(b.rate.last().copied().flatten())) }
                            td { (pct(median(&b.rate))) }
                            td { (secs(median(&b.median_first_violation_s))) }
                            td.l { (PreEscaped(series_svg("detection rate", &b.rate, &[])?)) }
                        }
                    }
                }
            }
            h3 { "Per variant, workload and fault set" }
            p.muted { "Median over the cell's runs expected valid; shaded: the noise band from the nights before." }
            @for (c, figs) in s.cells.iter().zip(&charts) {
                h3 { (c.variant) " · " (c.workload) " · " (c.faults) }
                div.cells { @for f in figs { figure { (PreEscaped(f)) } } }
            }
        }
    })
}

fn strip_cell(c: Option<&StripCell>, started: &str) -> Markup {
    let when = short_time(started);
    match c {
        None => html! { span.o-none title=(format!("{when}: not run")) {} },
        Some(c) => {
            let class = format!("o-{}", c.outcome);
            let title = format!("{when}: {}", c.verdict.as_deref().unwrap_or("error"));
            match &c.link {
                Some(l) => html! { a class=(class) title=(title) href=(l) {} },
                None => html! { span class=(class) title=(title) {} },
            }
        }
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.0}%", v * 100.0))
}

fn secs(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1} s"))
}

fn median(v: &[Option<f64>]) -> Option<f64> {
    let mut x: Vec<f64> = v.iter().flatten().copied().collect();
    if x.is_empty() {
        return None;
    }
    x.sort_by(f64::total_cmp);
    let n = x.len();
    Some((x[(n - 1) / 2] + x[n / 2]) / 2.0)
}

const W: u32 = 270;
const H: u32 = 130;

/// A small chart of one figure per night (x: night number, oldest 1): the value line over the
/// shaded band. Kept small (few
/// labels, one polyline) so a year of nights stays a light page.
pub fn series_svg(
    title: &str,
    values: &[Option<f64>],
    band: &[Option<[f64; 3]>],
) -> Result<String, String> {
    let err = |e: &dyn std::fmt::Display| format!("plot {title}: {e}");
    let n = values.len().max(2) as f64;
    let ys = values
        .iter()
        .flatten()
        .chain(band.iter().flatten().flat_map(|b| b.iter()))
        .copied()
        .filter(|v| v.is_finite());
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo.is_finite() {
        let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.01).max(1e-9);
        ((lo - pad).max(0.0_f64.min(lo)), hi + pad)
    } else {
        (0.0, 1.0)
    };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 12))
            .margin(4)
            .x_label_area_size(16)
            .y_label_area_size(42)
            .build_cartesian_2d(0.0..(n - 1.0), lo..hi)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(values.len().clamp(2, 5))
            .y_labels(3)
            .label_style(("sans-serif", 9))
            .x_label_formatter(&|x| format!("{:.0}", x + 1.0))
            .y_label_formatter(&|y| short_num(*y))
            .draw()
            .map_err(|e| err(&e))?;
        for seg in runs_of(band) {
            let mut poly: Vec<(f64, f64)> = seg.iter().map(|(i, b)| (*i as f64, b[2])).collect();
            poly.extend(seg.iter().rev().map(|(i, b)| (*i as f64, b[0])));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    poly,
                    RGBColor(31, 119, 180).mix(0.18).filled(),
                )))
                .map_err(|e| err(&e))?;
        }
        for seg in runs_of(values) {
            // A night between two missing ones is a dot, not an invisible one-point line.
            if let [(i, v)] = seg[..] {
                chart
                    .draw_series(std::iter::once(Circle::new(
                        (i as f64, v),
                        2,
                        RGBColor(31, 119, 180).filled(),
                    )))
                    .map_err(|e| err(&e))?;
            }
            let pts = seg.iter().map(|(i, v)| (*i as f64, *v));
            chart
                .draw_series(LineSeries::new(pts, RGBColor(31, 119, 180).stroke_width(1)))
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(out)
}

/// The stretches of consecutive present values, with their index.
fn runs_of<T: Copy>(v: &[Option<T>]) -> Vec<Vec<(usize, T)>> {
    let mut out: Vec<Vec<(usize, T)>> = Vec::new();
    let mut cur = Vec::new();
    for (i, x) in v.iter().enumerate() {
        match x {
            Some(x) => cur.push((i, *x)),
            None if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn short_num(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Trend {
        let nights = (0..3)
            .map(|i| NightInfo {
                started: format!("2026-01-0{}T02:00:00Z", i + 1),
                path: format!("n{i}/summary.json"),
                runs: 2,
                schema_version: 2,
            })
            .collect();
        let cell = |o: &str, link: Option<&str>| {
            Some(StripCell {
                outcome: o.into(),
                verdict: Some("valid".into()),
                link: link.map(str::to_string),
            })
        };
        Trend {
            schema_version: TREND_SCHEMA,
            band: BandRule {
                window: 7,
                min_points: 4,
                k: 3.0,
                margin: 0.1,
            },
            suites: vec![SuiteTrend {
                suite: "smoke<&>".into(),
                nights,
                strips: vec![Strip {
                    name: "ok-multi".into(),
                    expect: "valid".into(),
                    cells: vec![
                        cell("pass", Some("../n0/r/report.html")),
                        None,
                        cell("fail", None),
                    ],
                }],
                bugs: vec![BugSeries {
                    entry: "bug".into(),
                    bugs: vec!["local-read".into()],
                    rate: vec![Some(1.0), Some(0.5), Some(0.0)],
                    median_first_violation_s: vec![Some(2.0), Some(3.0), None],
                }],
                cells: vec![CellSeries {
                    variant: "multi".into(),
                    workload: "kv".into(),
                    faults: "kill".into(),
                    metrics: vec![Metric {
                        name: "ops/s".into(),
                        values: vec![Some(100.0), None, Some(90.0)],
                        band: vec![None, None, Some([95.0, 100.0, 105.0])],
                    }],
                }],
            }],
            unreadable: vec![Unreadable {
                path: "old/summary.json".into(),
                reason: "schema_version 9".into(),
            }],
            alerts: vec![],
        }
    }

    #[test]
    fn page_shows_strips_links_bugs_charts_and_unreadable() {
        let html = render(&sample()).unwrap();
        let doc = scraper::Html::parse_document(&html);
        let sel = |s: &str| scraper::Selector::parse(s).unwrap();
        let cells: Vec<_> = doc.select(&sel(".strip > *")).collect();
        assert_eq!(cells.len(), 3);
        assert_eq!(cells[0].value().attr("href"), Some("../n0/r/report.html"));
        assert_eq!(cells[0].value().attr("class"), Some("o-pass"));
        assert_eq!(cells[1].value().attr("class"), Some("o-none"));
        assert_eq!(cells[2].value().name(), "span", "no report, no link");
        assert!(html.contains("smoke&lt;&amp;&gt;"), "names are escaped");
        assert!(html.contains("schema_version 9"));
        assert_eq!(doc.select(&sel(".cells svg")).count(), 1);
        let bug_row = doc
            .select(&sel("table tr"))
            .find(|r| r.inner_html().contains("local-read"));
        let text: String = bug_row.unwrap().text().collect();
        assert!(text.contains("0%") && text.contains("2.5 s"), "{text}");
        assert!(html.contains("None on the newest nights."));
    }

    #[test]
    fn series_breaks_at_missing_nights() {
        let r = runs_of(&[Some(1), None, Some(2), Some(3), None]);
        assert_eq!(r, vec![vec![(0, 1)], vec![(2, 2), (3, 3)]]);
        let svg = series_svg("x", &[None, None], &[]).unwrap();
        assert!(svg.starts_with("<svg"), "an empty series still draws");
    }
}
