//! `harness suite-compare DIR... [--by AXIS]`: the values of one suite axis side by side (Basic
//! against Multi by default) in every cell of one suite run or of several nights. Reads each
//! folder's `summary.json` and every run folder it names, and writes `index.html` (tables and
//! one latency CDF and availability plot per cell) and `compare.md` to `--out`; with one folder,
//! it also puts the Markdown as a section at the end of that folder's `summary.md`, so it lands
//! in a CI job summary.

use crate::error::SetupError;
use crate::trend::nights::{self, NightRun};
use report::compare::Figures;
use report::suite_compare::{Cell, Comparison, Side};
use std::path::{Path, PathBuf};

/// The axes a run record names; any other is looked up in the run's test.json options.
const RECORD_AXES: [&str; 5] = ["variant", "workload", "faults", "entry", "seed"];
/// Where the section starts in summary.md (everything after it is rewritten on each call).
const MARK: &str = "<!-- harness suite-compare -->";

#[derive(clap::Args, Debug)]
pub struct SuiteCompareArgs {
    /// Suite run folders (with a summary.json), e.g. results/nightly/latest; several for nights.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// The axis whose values are put side by side: variant, workload, faults, entry, seed, or
    /// any `harness test` option as test.json records it (net, nodes, partition_mode, ...).
    #[arg(long, default_value = "variant")]
    pub by: String,
    /// Where index.html and compare.md go (default: `compare-<by>` in the first folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: SuiteCompareArgs) -> Result<u8, SetupError> {
    let fail = |e: String| SetupError::new("harness suite-compare", anyhow::anyhow!(e));
    let c = gather(&args.dirs, &args.by).map_err(fail)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.dirs[0].join(format!("compare-{}", args.by)));
    std::fs::create_dir_all(&out)
        .map_err(|e| fail(format!("{}: cannot create: {e}", out.display())))?;
    let md = report::suite_compare::markdown(&c);
    let html = report::suite_compare::render(&c).map_err(fail)?;
    for (name, text) in [("index.html", &html), ("compare.md", &md)] {
        let p = out.join(name);
        std::fs::write(&p, text)
            .map_err(|e| fail(format!("{}: cannot write: {e}", p.display())))?;
    }
    if let [dir] = &args.dirs[..] {
        add_section(&dir.join("summary.md"), &md).map_err(fail)?;
    }
    for s in &c.skipped {
        crate::errln!("harness suite-compare: skipped {s}");
    }
    crate::outln!(
        "suite-compare by {}: {} cells → {}",
        args.by,
        c.cells.len(),
        out.join("index.html").display()
    );
    Ok(0)
}

/// The runs of every folder, grouped into cells and sides.
pub fn gather(dirs: &[PathBuf], by: &str) -> Result<Comparison, String> {
    let mut cells: Vec<(String, Vec<Side>)> = Vec::new();
    let mut skipped = Vec::new();
    for d in dirs {
        let file = if d.is_file() {
            d.clone()
        } else {
            d.join("summary.json")
        };
        let night = nights::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        for r in &night.runs {
            let Some(rel) = &r.run_dir else {
                skipped.push(format!("{}: no run folder (it errored)", r.name));
                continue;
            };
            let run_dir = night.dir().join(rel);
            let fig = match Figures::of(&run_dir) {
                Ok(f) => f,
                Err(e) => {
                    skipped.push(format!("{}: {e}", r.name));
                    continue;
                }
            };
            let value = axis_value(r, &run_dir, by);
            let label = cell_label(r, by);
            let i = match cells.iter().position(|(l, _)| *l == label) {
                Some(i) => i,
                None => {
                    cells.push((label, Vec::new()));
                    cells.len() - 1
                }
            };
            let sides = &mut cells[i].1;
            match sides.iter_mut().find(|s| s.value == value) {
                Some(s) => s.runs.push(fig),
                None => sides.push(Side {
                    value,
                    runs: vec![fig],
                }),
            }
        }
    }
    // Sides in one order everywhere: the order the values first appeared.
    let mut order: Vec<String> = Vec::new();
    for (_, sides) in &cells {
        for s in sides {
            if !order.contains(&s.value) {
                order.push(s.value.clone());
            }
        }
    }
    if order.len() < 2 {
        return Err(format!(
            "--by {by}: every run has the same value ({}); nothing to put side by side",
            order.first().map_or("none", |s| s.as_str())
        ));
    }
    let cells = cells
        .into_iter()
        .filter(|(_, s)| s.len() >= 2)
        .map(|(label, mut sides)| {
            sides.sort_by_key(|s| order.iter().position(|o| *o == s.value));
            Cell { label, sides }
        })
        .collect();
    Ok(Comparison {
        by: by.to_string(),
        sources: dirs.iter().map(|d| d.display().to_string()).collect(),
        cells,
        skipped,
    })
}

/// The entry and the axes other than `by`: the runs that should be alike but for `by`.
fn cell_label(r: &NightRun, by: &str) -> String {
    let mut parts = vec![r.entry.as_str()];
    for (axis, v) in [
        ("variant", &r.variant),
        ("workload", &r.workload),
        ("faults", &r.faults),
    ] {
        if axis != by {
            parts.push(v);
        }
    }
    if by == "entry" {
        parts.remove(0);
    }
    parts.join(" · ")
}

fn axis_value(r: &NightRun, run_dir: &Path, by: &str) -> String {
    match by {
        "variant" => return r.variant.clone(),
        "workload" => return r.workload.clone(),
        "faults" => return r.faults.clone(),
        "entry" => return r.entry.clone(),
        "seed" => return r.seed.map_or("?".into(), |s| s.to_string()),
        _ => debug_assert!(!RECORD_AXES.contains(&by)),
    }
    let options = report::run_files::TestFile::<serde_json::Value>::read(run_dir)
        .ok()
        .and_then(|t| t.options);
    match options.as_ref().and_then(|o| o.get(by)) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        // test.json leaves out options at their default (net = proxy).
        None if by == "net" => "proxy".into(),
        None => "default".into(),
    }
}

/// Replaces the section after [`MARK`] in summary.md (or appends it).
fn add_section(summary_md: &Path, md: &str) -> Result<(), String> {
    let old = std::fs::read_to_string(summary_md).unwrap_or_default();
    let head = old.split(MARK).next().unwrap_or("").trim_end();
    let text = format!("{head}\n\n{MARK}\n{md}");
    std::fs::write(summary_md, text)
        .map_err(|e| format!("{}: cannot write: {e}", summary_md.display()))
}
