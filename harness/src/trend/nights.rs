//! Finding and reading the nights: every `summary.json` under the given folders (a results store,
//! or downloaded CI artifacts), read leniently so that a summary from an older harness still
//! counts, and one that cannot be read is listed with the reason instead of stopping the rest.

use crate::suite::summary::SUMMARY_SCHEMA;
use report::trend_page::Unreadable;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// How deep under a given folder summaries are looked for (`store/suite/stamp/summary.json` is 3;
/// artifacts add a level or two).
const MAX_DEPTH: usize = 6;

/// One run of a night, as far as trends need it. Every field may be missing (older layouts).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NightRun {
    pub name: String,
    pub entry: String,
    pub variant: String,
    pub workload: String,
    pub faults: String,
    pub seed: Option<u64>,
    pub bugs: Vec<String>,
    pub expect: String,
    pub outcome: String,
    pub verdict: Option<String>,
    pub explanation: String,
    pub ops_per_sec: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub availability: Option<f64>,
    pub first_violation_s: Option<f64>,
    pub run_dir: Option<String>,
    pub report: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Layout {
    schema_version: Option<u32>,
    suite: Option<String>,
    started: Option<String>,
    runs: Option<Vec<serde_json::Value>>,
}

/// One suite run.
#[derive(Clone, Debug)]
pub struct Night {
    pub suite: String,
    pub started: String,
    /// The `summary.json`.
    pub path: PathBuf,
    pub schema_version: u32,
    pub runs: Vec<NightRun>,
}

impl Night {
    /// The folder paths in the summary are relative to.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// Every `summary.json` at or under `roots` (symlinks such as `latest` are not followed, so no
/// night counts twice). A root that does not exist is an error; a file that does not read is
/// listed in the second value.
pub fn find(roots: &[PathBuf]) -> Result<(Vec<Night>, Vec<Unreadable>), String> {
    let mut paths = Vec::new();
    for root in roots {
        let meta = std::fs::metadata(root).map_err(|e| format!("{}: {e}", root.display()))?;
        if meta.is_file() {
            paths.push(root.clone());
            continue;
        }
        for e in walkdir::WalkDir::new(root).max_depth(MAX_DEPTH) {
            match e {
                Ok(e) if e.file_type().is_file() && e.file_name() == "summary.json" => {
                    paths.push(e.into_path())
                }
                Ok(_) => {}
                Err(e) => crate::errln!("harness trend: skipping {e}"),
            }
        }
    }
    paths.sort();
    paths.dedup();
    let (mut nights, mut bad) = (Vec::new(), Vec::new());
    for p in paths {
        match read(&p) {
            Ok(n) => nights.push(n),
            Err(reason) => bad.push(Unreadable {
                path: p.display().to_string(),
                reason,
            }),
        }
    }
    nights.sort_by(|a, b| a.started.cmp(&b.started).then(a.path.cmp(&b.path)));
    Ok((nights, bad))
}

/// One summary, or why it cannot be used.
pub fn read(path: &Path) -> Result<Night, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let l: Layout = serde_json::from_str(&text)
        .map_err(|e| format!("not JSON of a summary ({}:{}): {e}", e.line(), e.column()))?;
    let version = l.schema_version.unwrap_or(1);
    if version > SUMMARY_SCHEMA {
        return Err(format!(
            "schema_version {version} is newer than this harness reads (1 to {SUMMARY_SCHEMA})"
        ));
    }
    let runs = l.runs.ok_or("no `runs` list (not a suite summary?)")?;
    let runs = runs
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let r: NightRun =
                serde_json::from_value(v).map_err(|e| format!("run {}: {e}", i + 1))?;
            if r.name.is_empty() {
                return Err(format!("run {} has no name", i + 1));
            }
            Ok(r)
        })
        .collect::<Result<Vec<_>, String>>()?;
    let dir_name = || {
        path.parent()
            .and_then(|d| d.file_name())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    Ok(Night {
        suite: l.suite.unwrap_or_else(|| "(unnamed)".into()),
        started: l.started.unwrap_or_else(dir_name),
        path: path.to_path_buf(),
        schema_version: version,
        runs,
    })
}
