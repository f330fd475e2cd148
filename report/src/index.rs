//! `results/index.html`: every stored run (`STORE/<test>/<timestamp>/`), newest first, with its
//! verdict, throughput and p99, linking to each run's report. Reads only the small JSON files of
//! each run, so it stays quick over many runs.

use crate::html::{badge, ms, or_dash, page, short_time};
use crate::run::Run;
use maud::html;
use std::path::{Path, PathBuf};

/// One row of the index.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Path relative to the store, `test/timestamp`.
    pub rel: String,
    pub test: String,
    pub variant: Option<String>,
    pub started: String,
    pub duration_s: Option<f64>,
    pub verdict: Option<String>,
    pub ops_per_sec: Option<f64>,
    pub p99_ms: Option<f64>,
    pub has_report: bool,
}

fn is_run(dir: &Path) -> bool {
    ["history.jsonl", "results.json", "test.json"]
        .iter()
        .any(|f| dir.join(f).is_file())
}

/// Real subdirectories (symlinks such as `latest` are skipped so no run is listed twice).
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Every run under `store_dir`, newest first.
pub fn scan(store_dir: &Path) -> Vec<Entry> {
    scan_all(store_dir).0
}

/// Every run under `store_dir`, newest first, and the run folders that could not be read
/// (`test/timestamp`, why), e.g. written by a newer harness.
pub fn scan_all(store_dir: &Path) -> (Vec<Entry>, Vec<(String, String)>) {
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    for test_dir in subdirs(store_dir) {
        for run_dir in subdirs(&test_dir).into_iter().filter(|d| is_run(d)) {
            let rel = || {
                let r = run_dir.strip_prefix(store_dir).unwrap_or(&run_dir);
                r.display().to_string()
            };
            let run = match Run::load_meta(&run_dir) {
                // Its test.json or results.json is there but neither reads (e.g. a newer
                // harness wrote them); a run with no such file yet (aborted) is still listed.
                Ok(run)
                    if run.test.is_none()
                        && run.results.is_none()
                        && ["test.json", "results.json"]
                            .iter()
                            .any(|f| run_dir.join(f).is_file()) =>
                {
                    unreadable.push((rel(), run.notes.join("; ")));
                    continue;
                }
                Ok(run) => run,
                Err(e) => {
                    unreadable.push((rel(), e));
                    continue;
                }
            };
            let ts = run_dir
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let test_name = test_dir
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let r = run.results.as_ref();
            out.push(Entry {
                rel: format!("{test_name}/{ts}"),
                test: run.name(),
                variant: run.variant(),
                started: r.and_then(|r| r.started.clone()).unwrap_or(ts),
                duration_s: r.and_then(|r| r.duration_s),
                verdict: run.verdict(),
                ops_per_sec: r.and_then(|r| r.ops_per_sec),
                p99_ms: r.and_then(|r| r.latency_ms?.p99),
                has_report: run_dir.join("report.html").is_file(),
            });
        }
    }
    // Folder names are `YYYYMMDDTHHMMSS.mmmZ`, so the name orders runs in time.
    out.sort_by(|a, b| {
        let ts = |e: &Entry| e.rel.rsplit('/').next().unwrap_or("").to_string();
        ts(b).cmp(&ts(a)).then_with(|| a.rel.cmp(&b.rel))
    });
    (out, unreadable)
}

/// Writes `store_dir/index.html`; returns its path and how many runs it lists.
pub fn write_index(store_dir: &Path) -> Result<(PathBuf, usize), String> {
    if !store_dir.is_dir() {
        return Err(format!(
            "{}: no such results store (run a test first, or pass --store DIR)",
            store_dir.display()
        ));
    }
    let entries = scan(store_dir);
    let path = store_dir.join("index.html");
    // Runs in parallel (suites) may rewrite the index at once: write aside, then rename.
    let tmp = store_dir.join(format!(".index.html.{}", std::process::id()));
    std::fs::write(&tmp, render(&entries))
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    Ok((path, entries.len()))
}

fn render(entries: &[Entry]) -> String {
    let (valid, invalid) = entries
        .iter()
        .fold((0, 0), |(v, i), e| match e.verdict.as_deref() {
            Some("valid") => (v + 1, i),
            Some("invalid") => (v, i + 1),
            _ => (v, i),
        });
    let body = html! {
        header.banner.unchecked {
            h1 { "Test runs" }
            div.sub {
                (entries.len()) " runs · " (valid) " valid · " (invalid) " invalid · newest first"
            }
        }
        @if entries.is_empty() {
            p.muted { "No runs stored yet." }
        } @else {
            table #runs {
                tr {
                    th { "started (UTC)" } th.l { "test" } th.l { "variant" } th.l { "verdict" }
                    th { "duration (s)" } th { "ops/s" } th { "p99 (ms)" } th.l { "report" }
                }
                @for e in entries {
                    tr {
                        td { (short_time(&e.started)) }
                        td.l { (e.test) }
                        td.l { (e.variant.as_deref().unwrap_or("–")) }
                        td.l { (badge(e.verdict.as_deref())) }
                        td { (or_dash(e.duration_s, |d| format!("{d:.1}"))) }
                        td { (or_dash(e.ops_per_sec, |d| format!("{d:.0}"))) }
                        td { (or_dash(e.p99_ms, ms)) }
                        td.l {
                            @if e.has_report {
                                a href={ (e.rel) "/report.html" } { "report" }
                            } @else {
                                a href={ (e.rel) "/" } { "folder" }
                                " " span.muted { "(no report)" }
                            }
                        }
                    }
                }
            }
        }
    };
    page("Test runs", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_runs_newest_first_and_skips_symlinks() {
        let store = std::env::temp_dir().join(format!("index-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&store);
        for (test, ts, verdict) in [
            ("reg", "20260101T000000.000Z", "valid"),
            ("reg", "20260102T000000.000Z", "invalid"),
            ("kv", "20260103T000000.000Z", "<b>odd</b>"),
        ] {
            let d = store.join(test).join(ts);
            std::fs::create_dir_all(&d).unwrap();
            let r = serde_json::json!({"test": test, "verdict": verdict, "ops_per_sec": 12.0,
                "latency_ms": {"p99": 3.5}, "duration_s": 10.0});
            std::fs::write(d.join("results.json"), r.to_string()).unwrap();
        }
        std::os::unix::fs::symlink(
            store.join("reg/20260102T000000.000Z"),
            store.join("reg/latest"),
        )
        .unwrap();
        std::fs::create_dir_all(store.join("reg/not-a-run")).unwrap();
        let (path, n) = write_index(&store).unwrap();
        assert_eq!(n, 3);
        let e = scan(&store);
        assert_eq!(e[0].rel, "kv/20260103T000000.000Z");
        assert_eq!(e[2].rel, "reg/20260101T000000.000Z");
        let html = std::fs::read_to_string(path).unwrap();
        assert!(html.contains("&lt;b&gt;odd&lt;/b&gt;") && !html.contains("<b>odd"));
        std::fs::remove_dir_all(&store).unwrap();
    }

    #[test]
    fn missing_store_is_an_error() {
        let err = write_index(Path::new("/nonexistent/store")).unwrap_err();
        assert!(err.contains("/nonexistent/store"), "{err}");
    }
}
