//! `report.html` for one run folder: one self-contained page (inline CSS and SVG, no network)
//! with the verdict and its explanation, the counterexample drawn as a timeline, the
//! configuration and replay command, stats tables, the plots, a fault timeline, node statistics
//! and links to the raw files. Odd runs (no history, a truncated one, no results, no node stats)
//! are reported with what is missing rather than failing.

mod counterexample;
mod sections;

use crate::analysis::Analysis;
use crate::html::page;
use crate::plot;
use crate::run::Run;
use maud::{html, PreEscaped};
use serde_json::Value;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};

/// What [`write_run_report`] wrote.
pub struct Written {
    pub report: PathBuf,
    /// What was missing or odd about the run, also shown in the report.
    pub notes: Vec<String>,
}

/// One plot: file name, title, and the SVG or why it could not be drawn.
type Svg<'a> = (&'a str, &'a str, Result<String, String>);

/// Regenerates `latency-raw.svg`, `latency-quantiles.svg`, `rate.svg` and `report.html` in a run
/// folder from its files.
pub fn write_run_report(run_dir: &Path) -> Result<Written, String> {
    let mut run = Run::load(run_dir)?;
    let mut a = std::mem::take(&mut run.analysis);
    a.op_timeout_ms = run.op_timeout_ms();
    add_analysis_notes(&mut run, &a);
    let mut svgs = Vec::new();
    for (file, title, svg) in [
        (
            "latency-raw.svg",
            "Latency of every op",
            plot::latency_raw_svg(&a),
        ),
        (
            "latency-quantiles.svg",
            "Latency quantiles",
            plot::latency_quantiles_svg(&a),
        ),
        ("rate.svg", "Throughput", plot::rate_svg(&a)),
    ] {
        match &svg {
            Ok(svg) => write(&run_dir.join(file), svg)?,
            Err(e) => run.notes.push(format!("{file}: {e}")),
        }
        svgs.push((file, title, svg));
    }
    let key_file = write_key_history(&run, run_dir)?;
    let html = render(&run, &a, &svgs, key_file.as_deref());
    let report = run_dir.join("report.html");
    write(&report, &html)?;
    Ok(Written {
        report,
        notes: run.notes,
    })
}

fn write(path: &Path, s: &str) -> Result<(), String> {
    std::fs::write(path, s).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

fn add_analysis_notes(run: &mut Run, a: &Analysis) {
    let c = a.counts_total();
    if a.ops.is_empty() && a.nemesis_events > 0 {
        run.notes
            .push("the history holds no client operations".into());
    } else if a.ops.is_empty() && run.dir.join("history.jsonl").exists() {
        run.notes.push("the history is empty".into());
    }
    if c.pending > 0 {
        run.notes.push(format!(
            "{} op{} invoked but never completed (the run ended first); left out of latency and \
             availability",
            c.pending,
            plural(c.pending)
        ));
    }
    if !a.ops.is_empty() && c.ok == 0 {
        run.notes
            .push("no operation succeeded: no latency figures for ok ops".into());
    }
    if a.unmatched_completions > 0 {
        run.notes.push(format!(
            "{} completion{} had no matching invocation and {} ignored",
            a.unmatched_completions,
            plural(a.unmatched_completions),
            if a.unmatched_completions == 1 {
                "was"
            } else {
                "were"
            }
        ));
    }
    match &run.node_stats {
        None => run.notes.push(
            "no node-stats.json: node statistics unknown (the node may not answer `stats`)".into(),
        ),
        Some(Value::Object(m)) => {
            let silent: Vec<&str> = m
                .iter()
                .filter(|(_, v)| !v.is_object())
                .map(|(k, _)| k.as_str())
                .collect();
            if !silent.is_empty() {
                run.notes.push(format!(
                    "no stats from {} (did not answer `stats`)",
                    silent.join(", ")
                ));
            }
        }
        Some(_) => run
            .notes
            .push("node-stats.json is not an object of nodes; ignored".into()),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The file [`write_key_history`] writes for `key`: `history-key-<key>.jsonl`, with characters
/// a file name should not hold replaced.
pub fn key_history_file(key: &str) -> String {
    let safe: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    format!("history-key-{safe}.jsonl")
}

/// For an invalid run, writes the failing key's events to `history-key-<key>.jsonl` so the
/// report can link the full key history. Returns the file name.
fn write_key_history(run: &Run, dir: &Path) -> Result<Option<String>, String> {
    let Some(key) = run.counterexample().map(|c| c.key.as_str()) else {
        return Ok(None);
    };
    if key.is_empty() {
        return Ok(None);
    }
    let Ok(history) = std::fs::File::open(dir.join("history.jsonl")) else {
        return Ok(None);
    };
    let name = key_history_file(key);
    #[derive(serde::Deserialize)]
    struct KeyOf<'a> {
        process: Value,
        #[serde(borrow, default)]
        key: Option<std::borrow::Cow<'a, str>>,
    }
    let mut out = String::new();
    for line in std::io::BufReader::new(history)
        .lines()
        .map_while(Result::ok)
    {
        let keep = serde_json::from_str::<KeyOf>(&line)
            .is_ok_and(|e| !e.process.is_u64() || e.key.as_deref() == Some(key));
        if keep {
            out.push_str(&line);
            out.push('\n');
        }
    }
    write(&dir.join(&name), &out)?;
    Ok(Some(name))
}

fn render(run: &Run, a: &Analysis, svgs: &[Svg], key_file: Option<&str>) -> String {
    let name = run.name();
    let verdict = run.verdict();
    let title = format!("{name}: {}", verdict.as_deref().unwrap_or("not checked"));
    let body = html! {
        (sections::banner(run, a, &name, verdict.as_deref()))
        @if let Some(w) = run.results.as_ref().map(|r| &r.warnings).filter(|w| !w.is_empty()) {
            section #warnings {
                h2 { "Warnings" }
                ul.warnings { @for line in w { li { (line) } } }
            }
        }
        @if !run.notes.is_empty() {
            section #notes {
                h2 { "What is missing" }
                ul.notes { @for n in &run.notes { li { (n) } } }
            }
        }
        @if verdict.as_deref() == Some("invalid") {
            (counterexample::section(run, key_file))
        }
        (sections::config(run))
        (sections::stats(a))
        section #plots {
            h2 { "Plots" }
            @for (file, title, svg) in svgs {
                @match svg {
                    Ok(svg) => figure id=(file.trim_end_matches(".svg")) {
                        // Drawn by plotters, which escapes the text it draws.
                        (PreEscaped(svg))
                        figcaption.muted { (title) " · " a href=(file) { (file) } }
                    },
                    Err(e) => p { (title) ": " (e) },
                }
            }
        }
        (sections::faults(a))
        (sections::nodes(run, a))
        (sections::files(run))
    };
    page(&title, body)
}
