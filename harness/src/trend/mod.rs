//! `harness trend DIR...`: many nights of suite runs (their `summary.json`, from a results store
//! or downloaded CI artifacts) on one page. Writes `trend.html` (self-contained), `trend.json`
//! (the [`report::trend_page::Trend`] it shows) and `trend.md` (the alerts, for a CI job
//! summary); prints the alerts; `--fail-on-regression` makes them exit 1.
//!
//! Parts: [`nights`] finds and reads the summaries, [`build`] makes the series and alerts,
//! [`band`] is the noise band. The page itself is drawn by the `report` crate.

pub mod band;
pub mod build;
pub mod nights;

use crate::error::SetupError;
use report::trend_page::{BandRule, Trend};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct TrendArgs {
    /// Folders (searched for `summary.json`, symlinks not followed) or summary files.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where trend.html, trend.json and trend.md go.
    #[arg(long, default_value = "trend")]
    pub out: PathBuf,
    /// Exit 1 when the newest night of a suite raised an alert.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// The noise band is made of this many previous nights (at least 7, or all of them when fewer)
    #[arg(long, default_value_t = band::DEFAULT.window as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub band_window: u32,
    /// ...as median ± K · 1.4826 · MAD.
    #[arg(long, default_value_t = band::DEFAULT.k)]
    pub band_k: f64,
    /// Alert when beyond the band by more than this share of the median (0.1 = 10 %).
    #[arg(long, default_value_t = band::DEFAULT.margin)]
    pub band_margin: f64,
}

pub fn run(args: TrendArgs) -> Result<u8, SetupError> {
    let fail = |e: String| SetupError::new("harness trend", anyhow::anyhow!(e));
    for (flag, v) in [
        ("--band-k", args.band_k),
        ("--band-margin", args.band_margin),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(fail(format!("{flag} {v}: must be a finite number ≥ 0")));
        }
    }
    let rule = BandRule {
        window: args.band_window as usize,
        min_points: band::DEFAULT.min_points.min(args.band_window as usize),
        k: args.band_k,
        margin: args.band_margin,
    };
    let t = make(&args.dirs, &args.out, rule).map_err(fail)?;
    for u in &t.unreadable {
        crate::errln!("harness trend: unreadable {}: {}", u.path, u.reason);
    }
    for a in &t.alerts {
        crate::outln!("ALERT {} {} {}: {}", a.kind, a.suite, a.subject, a.message);
    }
    let nights: usize = t.suites.iter().map(|s| s.nights.len()).sum();
    crate::outln!(
        "trend: {} suites, {nights} nights, {} alerts, {} unreadable → {}",
        t.suites.len(),
        t.alerts.len(),
        t.unreadable.len(),
        args.out.join("trend.html").display()
    );
    Ok(if args.fail_on_regression && !t.alerts.is_empty() {
        1
    } else {
        0
    })
}

/// Reads, builds and writes the three files; returns what they hold.
pub fn make(dirs: &[PathBuf], out: &Path, rule: BandRule) -> Result<Trend, String> {
    let (nights, unreadable) = nights::find(dirs)?;
    let t = build::build(&nights, unreadable, rule, out);
    std::fs::create_dir_all(out).map_err(|e| format!("{}: cannot create: {e}", out.display()))?;
    let html = report::trend_page::render(&t)?;
    let json = serde_json::to_string(&t).map_err(|e| e.to_string())?;
    for (name, text) in [
        ("trend.html", html.as_str()),
        ("trend.json", json.as_str()),
        ("trend.md", markdown(&t).as_str()),
    ] {
        let p = out.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: cannot write: {e}", p.display()))?;
    }
    Ok(t)
}

/// The alerts, and one line per suite, for a CI job summary.
pub fn markdown(t: &Trend) -> String {
    let mut m = String::new();
    let mark = if t.alerts.is_empty() { "✅" } else { "❌" };
    let _ = writeln!(m, "## {mark} Trend: {} regression alerts\n", t.alerts.len());
    for s in &t.suites {
        let (first, last) = match (s.nights.first(), s.nights.last()) {
            (Some(f), Some(l)) => (f.started.as_str(), l.started.as_str()),
            _ => ("", ""),
        };
        let _ = writeln!(
            m,
            "- suite `{}`: {} nights, {first} to {last}",
            s.suite,
            s.nights.len()
        );
    }
    if !t.alerts.is_empty() {
        m.push_str("\n| kind | suite | subject | what |\n|---|---|---|---|\n");
        for a in &t.alerts {
            let cell = |s: &str| s.replace('|', "\\|").replace(['\n', '\r'], " ");
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} |",
                a.kind,
                cell(&a.suite),
                cell(&a.subject),
                cell(&a.message)
            );
        }
    }
    if !t.unreadable.is_empty() {
        m.push_str("\n### Unreadable summaries\n\n");
        for u in &t.unreadable {
            let _ = writeln!(m, "- `{}`: {}", u.path, u.reason);
        }
    }
    let b = &t.band;
    let _ = writeln!(
        m,
        "\nNoise band: median ± {} · 1.4826 · MAD of the previous {} nights (at least {}); an alert \
         needs a value beyond it by more than {:.0}% of the median.",
        b.k,
        b.window,
        b.min_points,
        b.margin * 100.0
    );
    m
}
