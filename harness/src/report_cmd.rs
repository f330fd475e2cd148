//! `harness report RUN_DIR`, `harness report --index [--store DIR]` and
//! `harness compare RUN_A RUN_B [RUN ...] -o DIR`: thin CLI over the `report` crate (run
//! report, index, compare).

use crate::SetupError;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ReportArgs {
    /// The run folder whose plots and report.html to regenerate.
    #[arg(required_unless_present = "index", conflicts_with = "index")]
    pub run_dir: Option<PathBuf>,
    /// Rewrite the results index (STORE/index.html) over every stored run instead.
    #[arg(long)]
    pub index: bool,
    /// Where runs are stored.
    #[arg(long, default_value = "results")]
    pub store: PathBuf,
}

pub fn run_report(args: ReportArgs) -> Result<u8, SetupError> {
    let fail = |e| SetupError::msg("harness report", e);
    if args.index {
        let (path, n) = report::index::write_index(&args.store).map_err(fail)?;
        crate::outln!("{} ({n} runs)", path.display());
        return Ok(0);
    }
    let dir = args.run_dir.expect("clap requires RUN_DIR without --index");
    report::run::check_is_run(&dir).map_err(fail)?;
    let w = report::write_run_report(&dir).map_err(fail)?;
    for n in &w.notes {
        crate::errln!("note: {n}");
    }
    crate::outln!("{}", w.report.display());
    Ok(0)
}

/// Writes a finished run's plots and report, then rewrites the store's index. Never fails the
/// run: problems come back as warnings to log.
pub fn after_run(run_dir: &Path, store: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    match report::write_run_report(run_dir) {
        Ok(w) => warnings.extend(w.notes.into_iter().map(|n| format!("report: {n}"))),
        Err(e) => warnings.push(format!("report not written: {e}")),
    }
    if let Err(e) = report::index::write_index(store) {
        warnings.push(format!("index not written: {e}"));
    }
    warnings
}

/// After `harness analyze`: rewrites the run's report, and the store's index when the run sits
/// in a store that has one (`STORE/<test>/<run>/`). Returns what was written, or why not.
pub fn after_analyze(run_dir: &Path) -> Result<PathBuf, String> {
    let report = report::write_run_report(run_dir)?.report;
    if let Some(store) = run_dir.parent().and_then(Path::parent) {
        if store.join("index.html").is_file() {
            report::index::write_index(store)?;
        }
    }
    Ok(report)
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// Two or more run folders (several per side show the spread; sides are node variants).
    #[arg(num_args = 2.., required = true)]
    pub runs: Vec<PathBuf>,
    /// Folder to write the comparison page (index.html) into.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
}

pub fn run_compare(args: CompareArgs) -> Result<u8, SetupError> {
    let page = report::compare::write_comparison(&args.runs, &args.out)
        .map_err(|e| SetupError::msg("harness compare", e))?;
    crate::outln!("{}", page.display());
    Ok(0)
}
