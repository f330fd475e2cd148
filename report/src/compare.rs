//! One HTML page that puts runs side by side: latency CDFs overlaid, throughput over time,
//! quantiles and throughput per run, availability and latency in quiet periods and under each
//! fault kind, node message counts and leader changes. Runs are grouped into sides by node
//! variant (or test name); a side with several runs also gets its spread (min, median, max).

use crate::analysis::{Latency, PeriodStats};
use crate::html::{badge, ms, or_dash as opt, page, pct};
use crate::node_stats::{node_summary, NodeSummary};
use crate::plot::{self, Line};
use crate::run::Run;
use maud::{html, Markup, PreEscaped};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The figures of one run that the comparison shows.
pub struct Figures {
    pub dir: PathBuf,
    pub name: String,
    /// Short name for legends: the side, numbered when a side has several runs.
    pub label: String,
    /// The side this run belongs to.
    pub side: String,
    pub verdict: Option<String>,
    pub duration_s: f64,
    pub ops_per_s: f64,
    pub ok_per_s: f64,
    pub latency: Option<Latency>,
    pub availability: Option<f64>,
    pub periods: Vec<PeriodStats>,
    pub nodes: Option<NodeSummary>,
    /// Sorted ok latencies thinned to a CDF.
    pub cdf: Vec<(f64, f64)>,
    /// (bucket mid s, ok ops/s)
    pub ok_rate: Vec<(f64, f64)>,
    /// Fault kind -> merged intervals in seconds.
    pub faults: Vec<(String, Vec<(f64, f64)>)>,
    pub notes: Vec<String>,
}

impl Figures {
    pub fn of(dir: &Path) -> Result<Figures, String> {
        crate::run::check_is_run(dir)?;
        let mut run = Run::load(dir)?;
        let a = std::mem::take(&mut run.analysis);
        let mut lat = a.ok_latencies();
        lat.sort_unstable_by(|x, y| x.total_cmp(y));
        let b = a.buckets(a.bucket_width_ns());
        let mut ok_rate = vec![0.0; b.count];
        for ((_, o), r) in &b.rate {
            if *o == crate::analysis::Outcome::Ok {
                for (acc, v) in ok_rate.iter_mut().zip(r) {
                    *acc += v;
                }
            }
        }
        let total = a.counts_total();
        Ok(Figures {
            dir: dir.to_path_buf(),
            name: format!(
                "{} {}",
                run.name(),
                dir.file_name()
                    .map(|s| s.to_string_lossy())
                    .unwrap_or_default()
            ),
            label: String::new(),
            side: run.variant().unwrap_or_else(|| run.name()),
            verdict: run.verdict(),
            duration_s: a.duration_s(),
            ops_per_s: a.throughput(false),
            ok_per_s: a.throughput(true),
            latency: Latency::of(&mut lat.clone()),
            availability: total.availability(),
            periods: a.periods(),
            nodes: run
                .node_stats
                .as_ref()
                .filter(|v| v.is_object())
                .map(|v| node_summary(v, total.completed())),
            cdf: plot::cdf_points(&lat),
            ok_rate: ok_rate
                .iter()
                .enumerate()
                .map(|(i, r)| (b.mid_s(i), *r))
                .collect(),
            faults: a
                .kind_intervals()
                .into_iter()
                .map(|(k, iv)| {
                    let secs = iv.iter().map(|(s, e)| (*s as f64 / 1e9, *e as f64 / 1e9));
                    (k, secs.collect())
                })
                .collect(),
            notes: run.notes,
        })
    }
}

/// Reads every run and writes `out_dir/index.html` (plus the two SVGs). Returns the page.
pub fn write_comparison(runs: &[PathBuf], out_dir: &Path) -> Result<PathBuf, String> {
    if runs.len() < 2 {
        return Err("compare needs at least two run folders".into());
    }
    let mut figs = runs
        .iter()
        .map(|d| Figures::of(d))
        .collect::<Result<Vec<_>, _>>()?;
    // When every run claims the same side, compare them one by one.
    if figs.iter().all(|f| f.side == figs[0].side) {
        for f in &mut figs {
            f.side = f.name.clone();
        }
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("{}: cannot create: {e}", out_dir.display()))?;
    let sides: Vec<String> = figs.iter().fold(Vec::new(), |mut v, f| {
        if !v.contains(&f.side) {
            v.push(f.side.clone());
        }
        v
    });
    for (i, side) in sides.iter().enumerate() {
        let n = figs.iter().filter(|f| &f.side == side).count();
        for (k, f) in figs.iter_mut().filter(|f| &f.side == side).enumerate() {
            f.label = if n == 1 {
                side.clone()
            } else {
                format!("{side} #{}", k + 1)
            };
            if f.label.chars().count() > 24 {
                f.label = format!("run {}", i + k + 1);
            }
        }
    }
    let color = |f: &Figures| {
        let i = sides.iter().position(|s| *s == f.side).unwrap_or(0);
        plot::PALETTE[i % plot::PALETTE.len()]
    };
    let cdf = plot::lines_svg(
        "Latency CDF of ok ops",
        "latency (ms, log)",
        "fraction of ok ops",
        &figs
            .iter()
            .map(|f| Line {
                label: f.label.clone(),
                color: color(f),
                points: f.cdf.clone(),
            })
            .collect::<Vec<_>>(),
        &[],
        true,
    )?;
    let rate = plot::lines_svg(
        "Ok throughput over time",
        "time (s)",
        "ok ops per second",
        &figs
            .iter()
            .map(|f| Line {
                label: f.label.clone(),
                color: color(f),
                points: f.ok_rate.clone(),
            })
            .collect::<Vec<_>>(),
        &shared_faults(&figs),
        false,
    )?;
    for (name, svg) in [("latency-cdf.svg", &cdf), ("throughput.svg", &rate)] {
        std::fs::write(out_dir.join(name), svg)
            .map_err(|e| format!("{}: cannot write: {e}", out_dir.join(name).display()))?;
    }
    let page = out_dir.join("index.html");
    std::fs::write(&page, render(&figs, &sides, &cdf, &rate))
        .map_err(|e| format!("{}: cannot write: {e}", page.display()))?;
    Ok(page)
}

/// The fault intervals, when every run had the same ones (a `--replay` of one schedule, within
/// a second); otherwise none, since one run's faults would mislead about another's.
fn shared_faults(figs: &[Figures]) -> Vec<(String, Vec<(f64, f64)>)> {
    let first = &figs[0].faults;
    let same = figs.iter().all(|f| {
        f.faults.len() == first.len()
            && f.faults.iter().zip(first).all(|((k, a), (l, b))| {
                k == l
                    && a.len() == b.len()
                    && a.iter().zip(b).all(|(x, y)| (x.0 - y.0).abs() < 1.0)
            })
    });
    if same {
        first.clone()
    } else {
        Vec::new()
    }
}

fn render(figs: &[Figures], sides: &[String], cdf: &str, rate: &str) -> String {
    let title = format!("Comparison: {}", sides.join(" vs "));
    let notes: Vec<String> = figs
        .iter()
        .flat_map(|f| f.notes.iter().map(move |n| format!("{}: {n}", f.name)))
        .collect();
    let body = html! {
        header.banner.unchecked { h1 { (title) } div.sub { (figs.len()) " runs" } }
        section #runs {
            h2 { "Runs" }
            table {
                tr {
                    th { "run" } th.l { "folder" } th { "verdict" } th { "duration (s)" }
                    th { "ops/s" } th { "ok/s" } th { "availability" } th { "p50 ms" }
                    th { "p95 ms" } th { "p99 ms" } th { "max ms" } th { "messages/op" }
                    th { "leader changes" }
                }
                @for f in figs { (run_row(f)) }
            }
            @if !notes.is_empty() {
                ul.notes { @for n in &notes { li { (n) } } }
            }
        }
        (spread(figs, sides))
        section #plots {
            h2 { "Plots" }
            // Drawn by plotters, which escapes the text it draws.
            figure #cdf { (PreEscaped(cdf)) }
            figure #throughput { (PreEscaped(rate)) }
        }
        (periods(figs))
    };
    page(&title, body)
}

fn run_row(f: &Figures) -> Markup {
    let report = f
        .dir
        .canonicalize()
        .unwrap_or_else(|_| f.dir.clone())
        .join("report.html");
    let l = f.latency;
    let n = f.nodes.as_ref();
    html! {
        tr {
            td { a href={ "file://" (report.display()) } { (f.label) } }
            td.l { (f.name) }
            td { (badge(f.verdict.as_deref())) }
            td { (format_args!("{:.1}", f.duration_s)) }
            td { (format_args!("{:.1}", f.ops_per_s)) }
            td { (format_args!("{:.1}", f.ok_per_s)) }
            td { (pct(f.availability)) }
            td { (opt(l.map(|l| l.p50), ms)) }
            td { (opt(l.map(|l| l.p95), ms)) }
            td { (opt(l.map(|l| l.p99), ms)) }
            td { (opt(l.map(|l| l.max), ms)) }
            td { (opt(n.and_then(|n| n.messages_per_op), |v| format!("{v:.1}"))) }
            td { (opt(n.and_then(|n| n.leader_changes), |v| format!("{v:.0}"))) }
        }
    }
}

/// min / median / max of a metric over a side's runs.
fn spread_cell(vals: &[f64], f: impl Fn(f64) -> String) -> Markup {
    if vals.is_empty() {
        return html! { "–" };
    }
    let mut v = vals.to_vec();
    v.sort_unstable_by(|a, b| a.total_cmp(b));
    let med = v[(v.len() - 1) / 2];
    html! { (f(med)) " " span.muted { "(" (f(v[0])) " – " (f(v[v.len() - 1])) ")" } }
}

fn spread(figs: &[Figures], sides: &[String]) -> Markup {
    let multi = sides
        .iter()
        .any(|s| figs.iter().filter(|f| &f.side == s).count() > 1);
    if !multi {
        return html! {};
    }
    let one = |v: f64| format!("{v:.1}");
    html! {
        section #spread {
            h2 { "Spread per side" }
            p.muted { "median (min – max) over the side's runs" }
            table {
                tr {
                    th { "side" } th { "runs" } th { "ops/s" } th { "availability" }
                    th { "p50 ms" } th { "p99 ms" } th { "messages/op" } th { "leader changes" }
                }
                @for s in sides {
                    @let runs: Vec<&Figures> = figs.iter().filter(|f| &f.side == s).collect();
                    @let col = |g: &dyn Fn(&Figures) -> Option<f64>| -> Vec<f64> {
                        runs.iter().filter_map(|f| g(f)).collect()
                    };
                    tr {
                        td { (s) }
                        td { (runs.len()) }
                        td { (spread_cell(&col(&|f| Some(f.ops_per_s)), one)) }
                        td { (spread_cell(&col(&|f| f.availability), |v| pct(Some(v)))) }
                        td { (spread_cell(&col(&|f| f.latency.map(|l| l.p50)), ms)) }
                        td { (spread_cell(&col(&|f| f.latency.map(|l| l.p99)), ms)) }
                        td { (spread_cell(&col(&|f| f.nodes.as_ref()?.messages_per_op), one)) }
                        td {
                            (spread_cell(&col(&|f| f.nodes.as_ref()?.leader_changes),
                                |v| format!("{v:.0}")))
                        }
                    }
                }
            }
        }
    }
}

fn periods(figs: &[Figures]) -> Markup {
    let mut by_period: BTreeMap<(usize, String), Vec<(&Figures, &PeriodStats)>> = BTreeMap::new();
    for f in figs {
        for p in &f.periods {
            let rank = match p.name.as_str() {
                "all" => 0,
                "quiet" => 1,
                _ => 2,
            };
            by_period
                .entry((rank, p.name.clone()))
                .or_default()
                .push((f, p));
        }
    }
    html! {
        section #periods {
            h2 { "Quiet periods vs faults" }
            p.muted { "An op counts for the period in which it was invoked." }
            table {
                tr {
                    th { "period" } th { "run" } th { "time (s)" } th { "completed" }
                    th { "availability" } th { "p50 ms" } th { "p99 ms" } th { "max ms" }
                }
                @for ((_, name), rows) in &by_period {
                    @for (i, (f, p)) in rows.iter().enumerate() {
                        @let l = p.latency;
                        tr {
                            td { @if i == 0 { (name) } }
                            td { (f.label) }
                            td { (format_args!("{:.1}", p.seconds)) }
                            td { (p.counts.completed()) }
                            td { (pct(p.counts.availability())) }
                            td { (opt(l.map(|l| l.p50), ms)) }
                            td { (opt(l.map(|l| l.p99), ms)) }
                            td { (opt(l.map(|l| l.max), ms)) }
                        }
                    }
                }
            }
        }
    }
}
