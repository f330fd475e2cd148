//! SVG plots of a run, drawn with plotters' SVG backend only: text is emitted as `<text>`
//! elements, so no font has to be installed where the plots are made.
//!
//! Every time plot shades the intervals when a fault was active, one colour per fault kind, and
//! carries its legend in a strip on the right. Huge histories are thinned to what a screen can
//! show: one point per few-pixel cell per series, plus every point above the series' p99.9.

use crate::analysis::{quantile_sorted, Analysis, Outcome};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

pub const WIDTH: u32 = 1100;
pub const HEIGHT: u32 = 420;
const LEGEND_W: u32 = 190;
/// Upper bound on points in `latency-raw.svg`, to keep it small.
pub const MAX_RAW_POINTS: usize = 8_000;

const FONT: &str = "sans-serif";

/// A categorical palette (Tableau 10), readable on white.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub fn outcome_color(o: Outcome) -> RGBColor {
    match o {
        Outcome::Ok => RGBColor(31, 119, 180),
        Outcome::Fail => RGBColor(214, 39, 40),
        Outcome::Info => RGBColor(255, 150, 0),
        Outcome::Pending => RGBColor(127, 127, 127),
    }
}

/// A fixed colour per well-known fault kind, so reports read alike.
pub fn fault_color(kind: &str, i: usize) -> RGBColor {
    match kind {
        "partition" => RGBColor(230, 85, 80),
        "pause" => RGBColor(240, 190, 40),
        "kill" => RGBColor(150, 90, 200),
        "latency" => RGBColor(70, 160, 230),
        _ => PALETTE[(i + 5) % PALETTE.len()],
    }
}

/// CSS colour string for the HTML side.
pub fn css(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

const QUANTILES: [(&str, RGBColor); 4] = [
    ("p50", RGBColor(44, 160, 44)),
    ("p95", RGBColor(31, 119, 180)),
    ("p99", RGBColor(255, 127, 14)),
    ("max", RGBColor(214, 39, 40)),
];

type Chart<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;
type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;

/// The shared grid, tick labels and axis titles of every plot.
fn draw_mesh<X, Y>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(238, 240, 243))
        .bold_line_style(RGBColor(215, 219, 224))
        .draw()
        .map_err(err)
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("plot failed: {e:?}")
}

/// One legend line: a marker or swatch and its words.
enum Key {
    Point(usize, RGBColor),
    Line(usize, RGBColor),
    Band(RGBColor),
}

fn draw_legend(area: &Area, title: &str, keys: &[(Key, String)]) -> Result<(), String> {
    let style = (FONT, 13).into_font().color(&BLACK);
    area.draw(&Text::new(
        title.to_string(),
        (8, 14),
        (FONT, 13).into_font().style(FontStyle::Bold),
    ))
    .map_err(err)?;
    for (i, (key, label)) in keys.iter().enumerate() {
        let y = 36 + 18 * i as i32;
        if y > HEIGHT as i32 - 10 {
            area.draw(&Text::new("…", (8, y), style.clone()))
                .map_err(err)?;
            break;
        }
        match key {
            Key::Point(shape, c) => marker_at(area, *shape, (18, y), c.filled())?,
            Key::Line(shape, c) => {
                area.draw(&PathElement::new(vec![(8, y), (28, y)], c.stroke_width(2)))
                    .map_err(err)?;
                marker_at(area, *shape, (18, y), c.filled())?;
            }
            Key::Band(c) => area
                .draw(&Rectangle::new(
                    [(8, y - 6), (28, y + 6)],
                    c.mix(0.35).filled(),
                ))
                .map_err(err)?,
        }
        area.draw(&Text::new(label.clone(), (36, y - 7), style.clone()))
            .map_err(err)?;
    }
    Ok(())
}

fn marker_at(area: &Area, shape: usize, at: (i32, i32), s: ShapeStyle) -> Result<(), String> {
    match shape % 4 {
        0 => area.draw(&Circle::new(at, 3, s)),
        1 => area.draw(&TriangleMarker::new(at, 4, s)),
        2 => area.draw(&Cross::new(at, 3, s.stroke_width(2))),
        _ => area.draw(&Rectangle::new(
            [(at.0 - 3, at.1 - 3), (at.0 + 3, at.1 + 3)],
            s,
        )),
    }
    .map_err(err)
}

/// Draws points with one of four marker shapes (circle, triangle, cross, square).
fn draw_points<Y>(
    chart: &mut Chart<'_, '_, Y>,
    pts: &[(f64, f64)],
    shape: usize,
    s: ShapeStyle,
    size: i32,
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64>,
{
    let pts = pts.iter().copied();
    match shape % 4 {
        0 => chart
            .draw_series(pts.map(|p| Circle::new(p, size, s)))
            .map(|_| ()),
        1 => chart
            .draw_series(pts.map(|p| TriangleMarker::new(p, size + 1, s)))
            .map(|_| ()),
        2 => chart
            .draw_series(pts.map(|p| Cross::new(p, size, s.stroke_width(1))))
            .map(|_| ()),
        _ => {
            chart
                .draw_series(pts.map(|p| {
                    EmptyElement::at(p) + Rectangle::new([(-size, -size), (size, size)], s)
                }))
                .map(|_| ())
        }
    }
    .map_err(err)
}

/// Shades fault intervals over the full height; returns legend keys.
fn draw_faults<Y>(
    chart: &mut Chart<'_, '_, Y>,
    a: &Analysis,
    y: (f64, f64),
) -> Result<Vec<(Key, String)>, String>
where
    Y: Ranged<ValueType = f64>,
{
    let mut keys = Vec::new();
    for (i, (kind, iv)) in a.kind_intervals().iter().enumerate() {
        let c = fault_color(kind, i);
        chart
            .draw_series(iv.iter().map(|(s, e)| {
                Rectangle::new(
                    [(*s as f64 / 1e9, y.0), (*e as f64 / 1e9, y.1)],
                    c.mix(0.22).filled(),
                )
            }))
            .map_err(err)?;
        keys.push((Key::Band(c), format!("{kind} (fault)")));
    }
    Ok(keys)
}

/// A log-scale range that holds `lo..hi` (ms), with some air.
fn log_range(lo: f64, hi: f64) -> (f64, f64) {
    let lo = if lo.is_finite() && lo > 0.0 { lo } else { 0.01 };
    let hi = if hi.is_finite() && hi > lo {
        hi
    } else {
        lo * 10.0
    };
    (lo / 1.5, hi * 1.5)
}

fn time_range(a: &Analysis) -> Range<f64> {
    0.0..a.duration_s().max(0.001) * 1.01
}

/// Renders into a string: the plot on the left, a legend strip on the right.
fn render(draw: impl FnOnce(&Area, &Area) -> Result<(), String>) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (plot, legend) = root.split_horizontally(WIDTH - LEGEND_W);
        draw(&plot, &legend)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

fn note(area: &Area, text: &str) -> Result<(), String> {
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        text.to_string(),
        (w as i32 / 2 - 120, h as i32 / 2),
        (FONT, 16).into_font().color(&RGBColor(120, 120, 120)),
    ))
    .map_err(err)
}

/// Keeps one point per `cell`-pixel cell, plus every point at or above `keep_above`.
fn thin(
    pts: &[(f64, f64)],
    to_px: impl Fn((f64, f64)) -> (f64, f64),
    cell: f64,
    keep_above: f64,
) -> Vec<(f64, f64)> {
    let mut seen = HashSet::new();
    pts.iter()
        .copied()
        .filter(|&p| {
            let (x, y) = to_px(p);
            let fresh = seen.insert(((x / cell) as i64, (y / cell) as i64));
            fresh || p.1 >= keep_above
        })
        .collect()
}

/// `latency-raw.svg`: every completed op at its completion time, latency on a log scale,
/// marker shape by `f`, colour by outcome.
pub fn latency_raw_svg(a: &Analysis) -> Result<String, String> {
    let mut series: BTreeMap<(Outcome, u32), Vec<(f64, f64)>> = BTreeMap::new();
    let (mut lo, mut hi) = (f64::INFINITY, 0f64);
    for op in a.ops.iter().filter(|o| o.outcome != Outcome::Pending) {
        let l = match (op.outcome, a.op_timeout_ms) {
            (Outcome::Info, Some(t)) => t,
            _ => op.latency_ms(),
        };
        if l > 0.0 {
            lo = lo.min(l);
        }
        hi = hi.max(l);
        series
            .entry((op.outcome, op.f))
            .or_default()
            .push((op.end_ns as f64 / 1e9, l));
    }
    let (ylo, yhi) = log_range(lo, hi);
    let x = time_range(a);
    let (pw, ph) = ((WIDTH - LEGEND_W - 80) as f64, (HEIGHT - 80) as f64);
    let to_px = |(t, l): (f64, f64)| {
        let fx = (t - x.start) / (x.end - x.start);
        let fy = (l.max(ylo).ln() - ylo.ln()) / (yhi.ln() - ylo.ln());
        (fx * pw, fy * ph)
    };
    let cap = (MAX_RAW_POINTS / series.len().max(1)).max(1000);
    let mut thinned = Vec::new();
    for ((o, f), pts) in &mut series {
        for p in pts.iter_mut() {
            p.1 = p.1.max(ylo);
        }
        let mut ls: Vec<f64> = pts.iter().map(|p| p.1).collect();
        ls.sort_unstable_by(|a, b| a.total_cmp(b));
        let keep_above = quantile_sorted(&ls, 0.999).max(ls[ls.len() - 1] * 0.999);
        let mut cell = 3.0;
        let mut kept = thin(pts, to_px, cell, keep_above);
        while kept.len() > cap && cell < 64.0 {
            cell *= 2.0;
            kept = thin(pts, to_px, cell, keep_above);
        }
        thinned.push((*o, *f, kept));
    }
    let drawn: usize = thinned.iter().map(|s| s.2.len()).sum();
    let total: usize = series.values().map(Vec::len).sum();
    render(|plot, legend| {
        let caption = if drawn < total {
            format!("Latency of every op ({drawn} of {total} points drawn; outliers all kept)")
        } else {
            "Latency of every op".to_string()
        };
        let mut chart = ChartBuilder::on(plot)
            .caption(caption, (FONT, 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x.clone(), (ylo..yhi).log_scale())
            .map_err(err)?;
        draw_mesh(&mut chart, "completion time (s)", "latency (ms, log)")?;
        let mut keys = draw_faults(&mut chart, a, (ylo, yhi))?;
        for (o, f, pts) in &thinned {
            let c = outcome_color(*o);
            let s = if *o == Outcome::Ok {
                c.mix(0.55).filled()
            } else {
                c.mix(0.8).filled()
            };
            draw_points(&mut chart, pts, *f as usize, s, 2)?;
            let at_timeout = *o == Outcome::Info && a.op_timeout_ms.is_some();
            keys.push((
                Key::Point(*f as usize, c),
                format!(
                    "{} {}{}",
                    a.f_name(*f),
                    o.name(),
                    if at_timeout { " (at timeout)" } else { "" }
                ),
            ));
        }
        if total == 0 {
            note(plot, "no completed operations in this history")?;
        }
        draw_legend(legend, "ops", &keys)
    })
}

/// `latency-quantiles.svg`: p50 / p95 / p99 / max of ok latencies per time bucket, per `f`
/// (colour by quantile, marker by `f`).
pub fn latency_quantiles_svg(a: &Analysis) -> Result<String, String> {
    let b = a.buckets(a.bucket_width_ns());
    let (mut lo, mut hi) = (f64::INFINITY, 0f64);
    for l in b.quantiles.values().flatten().flatten() {
        if l.p50 > 0.0 {
            lo = lo.min(l.p50);
        }
        hi = hi.max(l.max);
    }
    let (ylo, yhi) = log_range(lo, hi);
    let x = time_range(a);
    render(|plot, legend| {
        let mut chart = ChartBuilder::on(plot)
            .caption(
                format!(
                    "Latency quantiles of ok ops per {} bucket",
                    human_secs(b.width_ns as f64 / 1e9)
                ),
                (FONT, 17),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x.clone(), (ylo..yhi).log_scale())
            .map_err(err)?;
        draw_mesh(&mut chart, "time (s)", "latency (ms, log)")?;
        let mut keys = draw_faults(&mut chart, a, (ylo, yhi))?;
        for (qi, (qname, c)) in QUANTILES.iter().enumerate() {
            for (f, per_bucket) in &b.quantiles {
                let pts: Vec<(f64, f64)> = per_bucket
                    .iter()
                    .enumerate()
                    .filter_map(|(i, l)| {
                        let l = (*l)?;
                        let v = [l.p50, l.p95, l.p99, l.max][qi];
                        Some((b.mid_s(i), v.max(ylo)))
                    })
                    .collect();
                for seg in contiguous(&pts, b.width_ns as f64 / 1e9) {
                    chart
                        .draw_series(LineSeries::new(seg.iter().copied(), c.stroke_width(1)))
                        .map_err(err)?;
                }
                draw_points(&mut chart, &pts, *f as usize, c.filled(), 2)?;
                keys.push((
                    Key::Line(*f as usize, *c),
                    format!("{} {qname}", a.f_name(*f)),
                ));
            }
        }
        if b.quantiles.is_empty() {
            note(plot, "no ok operations in this history")?;
        }
        draw_legend(legend, "quantiles", &keys)
    })
}

/// `rate.svg`: completions per second per time bucket, per `f` and outcome.
pub fn rate_svg(a: &Analysis) -> Result<String, String> {
    let b = a.buckets(a.bucket_width_ns());
    let hi = b
        .rate
        .values()
        .flatten()
        .fold(0f64, |m, v| m.max(*v))
        .max(1.0);
    let x = time_range(a);
    render(|plot, legend| {
        let mut chart = ChartBuilder::on(plot)
            .caption(
                format!(
                    "Throughput per {} bucket",
                    human_secs(b.width_ns as f64 / 1e9)
                ),
                (FONT, 17),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x.clone(), 0.0..hi * 1.1)
            .map_err(err)?;
        draw_mesh(&mut chart, "time (s)", "completions per second (ops/s)")?;
        let mut keys = draw_faults(&mut chart, a, (0.0, hi * 1.1))?;
        let mut order: Vec<_> = b.rate.iter().collect();
        order.sort_by_key(|((f, o), _)| (*o, *f));
        for ((f, o), rates) in order {
            let c = outcome_color(*o);
            let pts: Vec<(f64, f64)> = rates
                .iter()
                .enumerate()
                .map(|(i, r)| (b.mid_s(i), *r))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(1)))
                .map_err(err)?;
            draw_points(&mut chart, &pts, *f as usize, c.filled(), 2)?;
            keys.push((
                Key::Line(*f as usize, c),
                format!("{} {}", a.f_name(*f), o.name()),
            ));
        }
        if b.rate.is_empty() {
            note(plot, "no completed operations in this history")?;
        }
        draw_legend(legend, "ops", &keys)
    })
}

/// One line in [`lines_svg`].
pub struct Line {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
}

/// Fault intervals to shade behind [`lines_svg`]: kind and `(from, to)` in x units.
pub type Bands = [(String, Vec<(f64, f64)>)];

/// Overlaid lines (e.g. latency CDFs or throughput of several runs) over shaded fault `bands`.
/// `log_x` puts x on a log scale (latency CDFs).
pub fn lines_svg(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
    bands: &Bands,
    log_x: bool,
) -> Result<String, String> {
    let pts = || lines.iter().flat_map(|l| l.points.iter());
    let (mut xlo, mut xhi, mut yhi) = (f64::INFINITY, 0f64, 0f64);
    for (x, y) in pts() {
        if *x > 0.0 {
            xlo = xlo.min(*x);
        }
        xhi = xhi.max(*x);
        yhi = yhi.max(*y);
    }
    let yr = 0.0..(yhi * 1.05).max(1e-9);
    render(|plot, legend| {
        let mut b = ChartBuilder::on(plot);
        b.caption(title, (FONT, 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64);
        let band_color = |i: usize| fault_color(&bands[i].0, i);
        let mut keys: Vec<(Key, String)> = (0..bands.len())
            .map(|i| (Key::Band(band_color(i)), format!("{} (fault)", bands[i].0)))
            .collect();
        keys.extend(
            lines
                .iter()
                .map(|l| (Key::Line(0, l.color), l.label.clone())),
        );
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart.map_err(err)?;
                draw_mesh(&mut chart, x_desc, y_desc)?;
                for (i, (_, iv)) in bands.iter().enumerate() {
                    let c = band_color(i);
                    chart
                        .draw_series(iv.iter().map(|(s, e)| {
                            Rectangle::new([(*s, yr.start), (*e, yr.end)], c.mix(0.22).filled())
                        }))
                        .map_err(err)?;
                }
                for l in lines {
                    chart
                        .draw_series(LineSeries::new(
                            l.points.iter().copied(),
                            l.color.stroke_width(2),
                        ))
                        .map_err(err)?;
                }
            }};
        }
        if log_x {
            let (lo, hi) = log_range(xlo, xhi);
            draw!(b.build_cartesian_2d((lo..hi).log_scale(), yr.clone()));
        } else {
            draw!(b.build_cartesian_2d(0.0..xhi.max(1e-9) * 1.01, yr.clone()));
        }
        if lines.iter().all(|l| l.points.is_empty()) {
            note(plot, "no data")?;
        }
        draw_legend(legend, "runs", &keys)
    })
}

/// The CDF of sorted latencies as at most ~500 points.
pub fn cdf_points(sorted: &[f64]) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let step = (n / 500).max(1);
    let mut pts: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (sorted[i], (i + 1) as f64 / n as f64))
        .collect();
    pts.push((sorted[n - 1], 1.0));
    pts
}

/// Splits points where a gap is longer than one step (a bucket with no data).
fn contiguous(pts: &[(f64, f64)], step: f64) -> Vec<&[(f64, f64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=pts.len() {
        if i == pts.len() || pts[i].0 - pts[i - 1].0 > step * 1.5 {
            out.push(&pts[start..i]);
            start = i;
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// `0.5 s`, `100 ms`, `2 s`.
pub fn human_secs(s: f64) -> String {
    if s < 1.0 {
        format!("{} ms", (s * 1000.0).round())
    } else {
        format!("{} s", (s * 10.0).round() / 10.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::history::parse_line;

    fn sample() -> Analysis {
        let mut lines = Vec::new();
        let mut t = 0u64;
        for i in 0..400u64 {
            let p = i % 4;
            let f = ["read", "write", "cas"][(i % 3) as usize];
            lines.push(format!(
                r#"{{"index":0,"time":{t},"process":{p},"type":"invoke","f":"{f}","value":null}}"#
            ));
            t += 1_000_000 + (i % 7) * 300_000;
            let ty = if i % 17 == 0 {
                "info"
            } else if i % 11 == 0 {
                "fail"
            } else {
                "ok"
            };
            lines.push(format!(
                r#"{{"index":0,"time":{t},"process":{p},"type":"{ty}","f":"{f}","value":null}}"#
            ));
            if i == 100 {
                lines.push(format!(
                    r#"{{"index":0,"time":{t},"process":"nemesis","type":"info","f":"start-partition","value":"majority"}}"#
                ));
            }
            if i == 200 {
                lines.push(format!(
                    r#"{{"index":0,"time":{t},"process":"nemesis","type":"info","f":"stop-partition","value":null}}"#
                ));
            }
        }
        let events: Vec<_> = lines.iter().map(|l| parse_line(l).unwrap()).collect();
        Analysis::from_events(&events)
    }

    #[test]
    fn plots_have_labelled_axes_and_fault_legend() {
        let a = sample();
        for svg in [
            latency_raw_svg(&a).unwrap(),
            latency_quantiles_svg(&a).unwrap(),
            rate_svg(&a).unwrap(),
        ] {
            assert!(svg.starts_with("<svg"), "{}", &svg[..50]);
            assert!(svg.contains("time (s)"));
            assert!(svg.contains("partition (fault)"));
            assert!(svg.contains("<text"));
        }
    }

    #[test]
    fn info_ops_sit_at_the_timeout() {
        let mut a = sample();
        let before = latency_raw_svg(&a).unwrap();
        assert!(!before.contains("(at timeout)") && !before.contains("1000.0"));
        a.op_timeout_ms = Some(5000.0);
        let svg = latency_raw_svg(&a).unwrap();
        assert!(svg.contains("read info (at timeout)"));
        // The y axis now reaches the timeout.
        assert!(svg.contains("1000.0"), "y axis does not reach the timeout");
    }

    #[test]
    fn empty_analysis_still_plots() {
        let a = Analysis::default();
        let svg = latency_raw_svg(&a).unwrap();
        assert!(svg.contains("no completed operations"));
        assert!(rate_svg(&a).unwrap().contains("no completed operations"));
        assert!(latency_quantiles_svg(&a)
            .unwrap()
            .contains("no ok operations"));
        assert!(lines_svg("t", "x", "y", &[], &[], true)
            .unwrap()
            .contains("no data"));
    }

    #[test]
    fn thinning_keeps_outliers() {
        let pts: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (i as f64 / 10_000.0, if i == 5000 { 900.0 } else { 1.0 }))
            .collect();
        let kept = thin(&pts, |(x, y)| (x * 100.0, y), 2.0, 900.0);
        assert!(kept.len() < 200, "{}", kept.len());
        assert!(kept.iter().any(|p| p.1 == 900.0));
    }
}
