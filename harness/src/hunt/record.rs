//! What a hunt leaves in its folder, `STORE/hunt/<timestamp>/`: `hunt.json` (the [`HuntFile`]
//! schema: every run's configuration, verdict and time), `summary.md`, `report.html` (drawn by
//! the report crate), the runs under `runs/`, and `shrink/` when a failure was shrunk.

use crate::test_args::TestArgs;
use anyhow::{Context, Result};
use report::hunt_page::{HuntView, RunRow};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One run of the hunt.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub index: usize,
    /// Seconds from the start of the hunt.
    pub started_s: f64,
    pub duration_s: f64,
    /// `valid`, `invalid`, `unknown`, or `error` when the run could not be set up.
    pub verdict: String,
    pub explanation: String,
    pub run_dir: Option<PathBuf>,
    pub features: Vec<String>,
    /// The corpus entry (run index) this configuration was mutated from; none for a fresh draw.
    pub parent: Option<usize>,
    /// Coverage buckets this run reached first.
    pub new_buckets: usize,
    /// `harness test ...` that reruns this configuration.
    pub command: String,
    pub config: TestArgs,
}

/// `hunt.json`.
#[derive(Clone, Debug, Serialize)]
pub struct HuntFile {
    pub schema_version: u32,
    pub started: String,
    pub seed: u64,
    pub time_s: f64,
    pub elapsed_s: f64,
    /// The option ids the user typed (fixed in every run) and the dimensions drawn.
    pub fixed: Vec<String>,
    pub drawn: Vec<String>,
    pub runs: Vec<RunRecord>,
    /// Index of the first run that found a violation.
    pub first_violation: Option<usize>,
    pub coverage_buckets: usize,
    pub finished: bool,
    /// The shrinking result, once done (also in shrink/shrink.json).
    pub shrink: Option<serde_json::Value>,
}

/// `STORE/hunt/<timestamp>/`, with `STORE/hunt/latest` pointing at it.
pub fn create_dir(store: &Path) -> Result<PathBuf> {
    let root = store.join("hunt");
    let stamp = crate::store::timestamp_now();
    let dir = root.join(&stamp);
    std::fs::create_dir_all(&dir).with_context(|| {
        format!(
            "--store {}: cannot create {}",
            store.display(),
            dir.display()
        )
    })?;
    let latest = root.join("latest");
    let _ = std::fs::remove_file(&latest);
    #[cfg(unix)]
    let _ = std::os::unix::fs::symlink(&stamp, &latest);
    Ok(dir)
}

/// Writes hunt.json, summary.md and report.html.
pub fn write_all(dir: &Path, h: &HuntFile) -> Result<()> {
    let json = serde_json::to_string_pretty(h)?;
    let path = dir.join("hunt.json");
    std::fs::write(&path, json + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::write(dir.join("summary.md"), markdown(h))?;
    report::hunt_page::write(&dir.join("report.html"), &view(dir, h))
        .map_err(|e| anyhow::anyhow!("cannot write the hunt report: {e}"))
}

fn rel(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir).unwrap_or(p).display().to_string()
}

fn view(dir: &Path, h: &HuntFile) -> HuntView {
    HuntView {
        title: format!(
            "hunt {}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        ),
        seed: h.seed,
        time_s: h.time_s,
        elapsed_s: h.elapsed_s,
        fixed: h.fixed.clone(),
        drawn: h.drawn.clone(),
        coverage_buckets: h.coverage_buckets,
        runs: h
            .runs
            .iter()
            .map(|r| RunRow {
                index: r.index,
                started_s: r.started_s,
                duration_s: r.duration_s,
                verdict: r.verdict.clone(),
                explanation: r.explanation.clone(),
                features: r.features.clone(),
                report: r.run_dir.as_ref().map(|d| rel(dir, &d.join("report.html"))),
                new_buckets: r.new_buckets,
                command: r.command.clone(),
            })
            .collect(),
        shrunk: h.shrink.as_ref().and_then(|s| {
            Some((
                s["command"].as_str()?.to_string(),
                s["rate"].as_str()?.to_string(),
            ))
        }),
    }
}

fn markdown(h: &HuntFile) -> String {
    let mut s = String::new();
    let found = h.runs.iter().filter(|r| r.verdict == "invalid").count();
    let _ = writeln!(
        s,
        "# Hunt (seed {})\n\n{} runs in {:.0} s of {:.0} s; {} invalid; {} coverage buckets.\n",
        h.seed,
        h.runs.len(),
        h.elapsed_s,
        h.time_s,
        found,
        h.coverage_buckets
    );
    let _ = writeln!(s, "Fixed: {}. Drawn: {}.\n", list(&h.fixed), list(&h.drawn));
    let _ = writeln!(
        s,
        "| run | start s | time s | verdict | new buckets | features |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for r in &h.runs {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.0} | {} | {} | {} |",
            r.index,
            r.started_s,
            r.duration_s,
            r.verdict,
            r.new_buckets,
            r.features.join(" ")
        );
    }
    for r in h.runs.iter().filter(|r| r.verdict == "invalid") {
        let first = r.explanation.lines().next().unwrap_or("");
        let _ = writeln!(
            s,
            "\n## Run {}: {first}\n\n```\n{}\n```",
            r.index, r.command
        );
        if let Some(d) = &r.run_dir {
            let _ = writeln!(s, "\n```\nharness test --replay {}\n```", d.display());
        }
    }
    if let Some(sh) = &h.shrink {
        let _ = writeln!(
            s,
            "\n## Shrunk\n\nReproduced {}.\n\n```\n{}\n```",
            sh["rate"].as_str().unwrap_or("?"),
            sh["command"].as_str().unwrap_or("?")
        );
    }
    s
}

fn list(xs: &[String]) -> String {
    if xs.is_empty() {
        "nothing".into()
    } else {
        xs.join(", ")
    }
}
