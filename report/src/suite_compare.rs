//! Two (or more) values of one suite axis side by side across a whole suite: for every cell
//! (workload × fault set, and the other axes), each side's ops/s, p50/p99, availability overall
//! and under each fault kind, leader changes and messages per op, as median and spread over its
//! runs (seeds, repeats, nights), and whether the difference is larger than that spread. The
//! harness gathers the runs ([`Comparison`]); this module makes the table rows ([`rows`]), the
//! Markdown section and the page with one latency CDF and one availability-per-fault plot per
//! cell.

use crate::compare::Figures;
use crate::html::page;
use crate::plot::{self, Line};
use maud::{html, Markup, PreEscaped};
use plotters::prelude::*;
use std::fmt::Write as _;

/// What to compare: the axis, and the runs of each of its values in each cell.
pub struct Comparison {
    /// The axis (`variant`, `net`, ...).
    pub by: String,
    /// Where the runs came from (suite folders).
    pub sources: Vec<String>,
    pub cells: Vec<Cell>,
    /// Runs that could not be read, with why.
    pub skipped: Vec<String>,
}

pub struct Cell {
    /// e.g. `register · partition`.
    pub label: String,
    pub sides: Vec<Side>,
}

pub struct Side {
    pub value: String,
    pub runs: Vec<Figures>,
}

/// min, median, max over a side's runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(mut v: Vec<f64>) -> Option<Spread> {
        v.retain(|x| x.is_finite());
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        Some(Spread {
            n,
            min: v[0],
            median: (v[(n - 1) / 2] + v[n / 2]) / 2.0,
            max: v[n - 1],
        })
    }
}

/// One figure of one cell: each side's spread, and how the later sides compare with the first.
pub struct Row {
    pub metric: String,
    pub sides: Vec<Option<Spread>>,
    /// Per side after the first: `Some(true)` when its range and the first side's do not
    /// overlap (the difference is larger than the spread over runs), `Some(false)` when they do,
    /// `None` when a side has fewer than two runs (no spread to judge by).
    pub beyond_spread: Vec<Option<bool>>,
}

/// The figures compared, in order; availability per fault kind follows `availability`.
pub fn rows(c: &Cell) -> Vec<Row> {
    type Get = fn(&Figures) -> Option<f64>;
    let fixed: [(&str, Get); 6] = [
        ("ops/s", |f| Some(f.ops_per_s)),
        ("p50 ms", |f| f.latency.map(|l| l.p50)),
        ("p99 ms", |f| f.latency.map(|l| l.p99)),
        ("availability", |f| f.availability),
        ("leader changes", |f| f.nodes.as_ref()?.leader_changes),
        ("messages/op", |f| f.nodes.as_ref()?.messages_per_op),
    ];
    let mut kinds: Vec<String> = Vec::new();
    for f in c.sides.iter().flat_map(|s| &s.runs) {
        for p in &f.periods {
            if p.name != "all" && !kinds.contains(&p.name) {
                kinds.push(p.name.clone());
            }
        }
    }
    let row = |metric: String, get: &dyn Fn(&Figures) -> Option<f64>| {
        let sides: Vec<Option<Spread>> = c
            .sides
            .iter()
            .map(|s| Spread::of(s.runs.iter().filter_map(get).collect()))
            .collect();
        let beyond_spread = sides
            .iter()
            .skip(1)
            .map(|s| match (sides[0], s) {
                (Some(a), Some(b)) if a.n > 1 && b.n > 1 => Some(a.max < b.min || b.max < a.min),
                _ => None,
            })
            .collect();
        Row {
            metric,
            sides,
            beyond_spread,
        }
    };
    let mut out = Vec::new();
    for (name, get) in fixed {
        out.push(row(name.into(), &get));
        if name == "availability" {
            for k in &kinds {
                let get = |f: &Figures| {
                    let p = f.periods.iter().find(|p| &p.name == k)?;
                    p.counts.availability()
                };
                out.push(row(format!("availability under {k}"), &get));
            }
        }
    }
    out
}

fn fmt(metric: &str, v: f64) -> String {
    if metric.starts_with("availability") {
        format!("{:.1}%", v * 100.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn spread_text(metric: &str, s: Option<Spread>) -> String {
    match s {
        None => "–".into(),
        Some(s) if s.n == 1 => fmt(metric, s.median),
        Some(s) => format!(
            "{} ({} – {}, n={})",
            fmt(metric, s.median),
            fmt(metric, s.min),
            fmt(metric, s.max),
            s.n
        ),
    }
}

fn verdict_text(b: &[Option<bool>]) -> &'static str {
    if b.contains(&Some(true)) {
        "**differs**"
    } else if b.iter().all(|x| x.is_none()) {
        "one run a side"
    } else {
        "within spread"
    }
}

fn title(c: &Comparison) -> String {
    let values: Vec<&str> = c
        .cells
        .first()
        .map(|cell| cell.sides.iter().map(|s| s.value.as_str()).collect())
        .unwrap_or_default();
    format!("{} by {}", values.join(" vs "), c.by)
}

/// The Markdown section (for summary.md and a CI job summary).
pub fn markdown(c: &Comparison) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "## {}\n", title(c));
    let _ = writeln!(
        m,
        "Median (min – max, n) over each side's runs; **differs** when the ranges do not overlap.\n"
    );
    for cell in &c.cells {
        let _ = writeln!(m, "### {}\n", cell.label);
        m.push_str("| figure |");
        for s in &cell.sides {
            let _ = write!(m, " {} |", s.value.replace('|', "\\|"));
        }
        m.push_str(" difference |\n|---|");
        m.push_str(&"---:|".repeat(cell.sides.len()));
        m.push_str("---|\n");
        for r in rows(cell) {
            let _ = write!(m, "| {} |", r.metric);
            for s in &r.sides {
                let _ = write!(m, " {} |", spread_text(&r.metric, *s));
            }
            let _ = writeln!(m, " {} |", verdict_text(&r.beyond_spread));
        }
        m.push('\n');
    }
    for s in &c.skipped {
        let _ = writeln!(m, "- skipped: {s}");
    }
    m
}

/// The page: per cell, the table and a pair of plots.
pub fn render(c: &Comparison) -> Result<String, String> {
    let mut cells = Vec::new();
    for cell in &c.cells {
        cells.push(cell_section(cell)?);
    }
    let t = title(c);
    let body = html! {
        style { "td.differs{background:#fde2e1;font-weight:600}" }
        header.banner.unchecked {
            h1 { (t) }
            div.sub { (c.cells.len()) " cells · from " (c.sources.join(", ")) }
        }
        p.muted { "Median (min – max, n) over each side's runs; a difference is marked when the two ranges do not overlap." }
        @if !c.skipped.is_empty() {
            ul.notes { @for s in &c.skipped { li { "skipped: " (s) } } }
        }
        @for m in cells { (m) }
    };
    Ok(page(&t, body))
}

fn cell_section(cell: &Cell) -> Result<Markup, String> {
    let color = |i: usize| plot::PALETTE[i % plot::PALETTE.len()];
    let lines: Vec<Line> = cell
        .sides
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.runs.iter().enumerate().map(move |(k, f)| Line {
                label: if s.runs.len() == 1 {
                    s.value.clone()
                } else {
                    format!("{} #{}", s.value, k + 1)
                },
                color: color(i),
                points: f.cdf.clone(),
            })
        })
        .collect();
    let cdf = plot::lines_svg(
        &format!("Latency CDF · {}", cell.label),
        "latency (ms, log)",
        "fraction of ok ops",
        &lines,
        &[],
        true,
    )?;
    let rows = rows(cell);
    let avail: Vec<&Row> = rows
        .iter()
        .filter(|r| r.metric.starts_with("availability"))
        .collect();
    let bars = availability_svg(cell, &avail)?;
    Ok(html! {
        section.cell {
            h2 { (cell.label) }
            table {
                tr {
                    th { "figure" }
                    @for s in &cell.sides { th { (s.value) " (" (s.runs.len()) " runs)" } }
                    th { "difference" }
                }
                @for r in &rows {
                    @let v = verdict_text(&r.beyond_spread);
                    tr {
                        td { (r.metric) }
                        @for s in &r.sides { td { (spread_text(&r.metric, *s)) } }
                        td.differs[v.contains("differs")] { (v.trim_matches('*')) }
                    }
                }
            }
            div.grid {
                figure.cdf { (PreEscaped(cdf)) }
                figure.availability { (PreEscaped(bars)) }
            }
        }
    })
}

/// Median availability per period (overall, quiet, each fault kind), one bar per side.
fn availability_svg(cell: &Cell, avail: &[&Row]) -> Result<String, String> {
    let err = |e: &dyn std::fmt::Display| format!("availability plot: {e}");
    let groups = avail.len().max(1);
    let sides = cell.sides.len().max(1);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (520, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let names: Vec<String> = avail
            .iter()
            .map(|r| {
                r.metric
                    .trim_start_matches("availability under ")
                    .to_string()
            })
            .map(|s| if s == "availability" { "all".into() } else { s })
            .collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("Availability · {}", cell.label), ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..groups as f64, 0.0..1.0)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(groups * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                let centred = (x - x.floor() - 0.5).abs() < 0.01;
                match names.get(i) {
                    Some(n) if centred => n.clone(),
                    _ => String::new(),
                }
            })
            .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(|e| err(&e))?;
        let w = 0.8 / sides as f64;
        for (gi, r) in avail.iter().enumerate() {
            for (si, s) in r.sides.iter().enumerate() {
                let Some(s) = s else { continue };
                let x0 = gi as f64 + 0.1 + si as f64 * w;
                let c = plot::PALETTE[si % plot::PALETTE.len()];
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, 0.0), (x0 + w * 0.9, s.median)],
                        c.filled(),
                    )))
                    .map_err(|e| err(&e))?;
            }
        }
        for (si, s) in cell.sides.iter().enumerate() {
            let c = plot::PALETTE[si % plot::PALETTE.len()];
            root.draw(&Text::new(
                s.value.clone(),
                (400, 26 + 16 * si as i32),
                ("sans-serif", 12).into_font().color(&c),
            ))
            .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::analysis::{Counts, PeriodStats};

    fn fig(ops: f64, ok_under_kill: usize) -> Figures {
        let counts = Counts {
            ok: ok_under_kill,
            fail: 10 - ok_under_kill,
            ..Counts::default()
        };
        Figures {
            dir: "r".into(),
            name: "r".into(),
            label: String::new(),
            side: String::new(),
            verdict: Some("valid".into()),
            duration_s: 10.0,
            ops_per_s: ops,
            ok_per_s: ops,
            latency: None,
            availability: Some(0.9),
            periods: vec![PeriodStats {
                name: "kill".into(),
                seconds: 3.0,
                counts,
                latency: None,
            }],
            nodes: None,
            cdf: vec![(1.0, 0.5), (2.0, 1.0)],
            ok_rate: vec![],
            faults: vec![],
            notes: vec![],
        }
    }

    fn cell(a: Vec<Figures>, b: Vec<Figures>) -> Cell {
        Cell {
            label: "register · kill".into(),
            sides: vec![
                Side {
                    value: "basic".into(),
                    runs: a,
                },
                Side {
                    value: "multi".into(),
                    runs: b,
                },
            ],
        }
    }

    #[test]
    fn a_difference_counts_only_beyond_the_spread_over_runs() {
        let c = cell(
            vec![fig(100.0, 5), fig(120.0, 6)],
            vec![fig(300.0, 6), fig(330.0, 5)],
        );
        let r = rows(&c);
        let by = |m: &str| r.iter().find(|r| r.metric == m).unwrap();
        assert_eq!(by("ops/s").beyond_spread, [Some(true)]);
        assert_eq!(by("availability").beyond_spread, [Some(false)], "both 0.9");
        let kill = by("availability under kill");
        assert_eq!(kill.beyond_spread, [Some(false)], "0.5–0.6 each");
        assert_eq!(kill.sides[1].unwrap().median, 0.55);
        assert_eq!(by("leader changes").sides, [None, None]);
        let one = cell(vec![fig(100.0, 5)], vec![fig(300.0, 5)]);
        assert_eq!(
            rows(&one)[0].beyond_spread,
            [None],
            "one run a side: no spread"
        );
        let comparison = Comparison {
            by: "variant".into(),
            sources: vec!["night".into()],
            cells: vec![c],
            skipped: vec!["x: no run folder".into()],
        };
        let md = markdown(&comparison);
        assert!(md.starts_with("## basic vs multi by variant\n"), "{md}");
        assert!(
            md.contains("| ops/s | 110 (100 – 120, n=2) | 315 (300 – 330, n=2) | **differs** |"),
            "{md}"
        );
        assert!(
            md.contains("| availability under kill | 55.0% (50.0% – 60.0%, n=2) |"),
            "{md}"
        );
        let html = render(&comparison).unwrap();
        assert_eq!(
            html.matches("<svg").count(),
            2,
            "one pair of plots per cell"
        );
        assert!(html.contains("skipped: x: no run folder"));
    }

    #[test]
    fn spread_is_min_median_max() {
        let s = Spread::of(vec![3.0, 1.0, f64::NAN, 2.0, 10.0]).unwrap();
        assert_eq!((s.n, s.min, s.median, s.max), (4, 1.0, 2.5, 10.0));
        assert_eq!(Spread::of(vec![]), None);
    }
}
