//! What a suite concluded: one record per run, and the three summaries CI reads:
//! `summary.json` (the [`Summary`] type is its schema), [`junit`]`.xml` and [`markdown`]
//! (`summary.md`).

mod junit;
mod markdown;

pub use junit::junit;
pub use markdown::markdown;

use checker::counterexample::Counterexample;
use report::run_files::ResultsFile;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// The `schema_version` this build writes into `summary.json`; a file without one is version 1
/// (the same layout, before the field existed).
pub const SUMMARY_SCHEMA: u32 = 2;

/// How a run compares with its expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The verdict is the expected one.
    Pass,
    /// The verdict is the opposite of the expected one.
    Fail,
    /// The checker could not decide.
    Unknown,
    /// The run could not be set up or did not produce a verdict.
    Error,
}

/// One run of the suite, as the summaries show it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub name: String,
    pub entry: String,
    pub variant: String,
    pub workload: String,
    pub faults: String,
    pub seed: u64,
    pub repeat: u32,
    pub bugs: Vec<String>,
    pub expect: String,
    pub outcome: Outcome,
    /// `valid`, `invalid` or `unknown`; absent when the run errored.
    pub verdict: Option<String>,
    /// The checker's explanation, or the error.
    pub explanation: String,
    pub ops_per_sec: Option<f64>,
    /// Absent in summaries written before it was added (still schema 2: an optional field).
    #[serde(default)]
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Share of client operations that completed `ok`.
    pub availability: Option<f64>,
    /// Seconds from the start of the run to the first event of the counterexample.
    pub first_violation_s: Option<f64>,
    /// Relative to the suite folder when inside it.
    pub run_dir: Option<String>,
    pub report: Option<String>,
    pub duration_s: f64,
}

/// What results.json says, read leniently (every field may be missing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunStats {
    pub verdict: Option<String>,
    pub explanation: String,
    pub ops_per_sec: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub availability: Option<f64>,
    pub first_violation_s: Option<f64>,
}

impl RunStats {
    pub fn from_results(r: &ResultsFile) -> RunStats {
        let check = r.check.as_ref();
        RunStats {
            verdict: r.verdict().map(str::to_string),
            explanation: check
                .and_then(|c| c.explanation.clone())
                .unwrap_or_default(),
            ops_per_sec: r.ops_per_sec,
            p50_ms: r.latency_ms.and_then(|l| l.p50),
            p99_ms: r.latency_ms.and_then(|l| l.p99),
            availability: r.availability.or_else(|| r.counts.as_ref()?.ok_share()),
            first_violation_s: r.counterexample().and_then(violation_time),
        }
    }
}

/// Seconds into the run when the violation was observed: the completion of the checker's failing
/// op (`op.end_s`); failing that (older layouts), the earliest time anywhere in the
/// counterexample (`start_s` seconds or `time` nanoseconds).
fn violation_time(cx: &Counterexample) -> Option<f64> {
    if let Some(t) = cx.op.as_ref().and_then(|o| o.end_s) {
        return Some(t);
    }
    fn earliest(v: &Value) -> Option<f64> {
        let times: Vec<f64> = match v {
            Value::Object(m) => m
                .iter()
                .filter_map(|(k, x)| match (k.as_str(), x) {
                    ("start_s" | "end_s", Value::Number(n)) => n.as_f64(),
                    ("time", Value::Number(n)) => n.as_f64().map(|ns| ns / 1e9),
                    _ => earliest(x),
                })
                .collect(),
            Value::Array(a) => a.iter().filter_map(earliest).collect(),
            _ => return None,
        };
        times.into_iter().reduce(f64::min)
    }
    earliest(&serde_json::to_value(cx).ok()?)
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub pass: usize,
    pub fail: usize,
    pub unknown: usize,
    pub error: usize,
    /// Runs not finished (still running or never started).
    pub pending: usize,
}

/// How the runs of one `[[test]]` entry went: for a seeded-bug entry, its detection rate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EntryStats {
    pub entry: String,
    pub expect: String,
    pub runs: usize,
    /// Runs whose verdict was the expected one.
    pub met: usize,
    pub rate: f64,
    /// Median over the runs found invalid of the time to the first violation.
    pub median_first_violation_s: Option<f64>,
}

fn entry_stats(runs: &[RunRecord]) -> Vec<EntryStats> {
    let mut order: Vec<&str> = Vec::new();
    for r in runs {
        if !order.contains(&r.entry.as_str()) {
            order.push(&r.entry);
        }
    }
    order
        .into_iter()
        .map(|entry| {
            let mine: Vec<&RunRecord> = runs.iter().filter(|r| r.entry == entry).collect();
            let met = mine.iter().filter(|r| r.outcome == Outcome::Pass).count();
            let mut times: Vec<f64> = mine
                .iter()
                .filter(|r| r.verdict.as_deref() == Some("invalid"))
                .filter_map(|r| r.first_violation_s)
                .collect();
            times.sort_by(f64::total_cmp);
            let median = match times.len() {
                0 => None,
                n if n % 2 == 1 => Some(times[n / 2]),
                n => Some((times[n / 2 - 1] + times[n / 2]) / 2.0),
            };
            EntryStats {
                entry: entry.to_string(),
                expect: mine[0].expect.clone(),
                runs: mine.len(),
                met,
                rate: met as f64 / mine.len() as f64,
                median_first_violation_s: median,
            }
        })
        .collect()
}

/// Which suite, where and when.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Head {
    pub suite: String,
    pub description: Option<String>,
    pub file: String,
    pub dir: String,
    pub started: String,
    pub duration_s: f64,
    /// Set when this is one shard (`--shard K/N`) of the suite, not the whole of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<super::ShardInfo>,
}

/// The whole suite: `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    #[serde(default = "unversioned")]
    pub schema_version: u32,
    #[serde(flatten)]
    pub head: Head,
    pub finished: bool,
    pub counts: Counts,
    pub exit_code: u8,
    pub entries: Vec<EntryStats>,
    pub runs: Vec<RunRecord>,
}

impl Summary {
    /// `total` counts runs not finished yet too.
    pub fn new(head: Head, total: usize, runs: Vec<RunRecord>, finished: bool) -> Summary {
        let mut counts = Counts {
            total,
            ..Counts::default()
        };
        for r in &runs {
            match r.outcome {
                Outcome::Pass => counts.pass += 1,
                Outcome::Fail => counts.fail += 1,
                Outcome::Unknown => counts.unknown += 1,
                Outcome::Error => counts.error += 1,
            }
        }
        counts.pending = total - runs.len();
        Summary {
            schema_version: SUMMARY_SCHEMA,
            head,
            finished,
            exit_code: exit_code(&counts),
            counts,
            entries: entry_stats(&runs),
            runs,
        }
    }
}

fn unversioned() -> u32 {
    1
}

/// 1 when any run missed its expectation, 2 when any could not run, 3 when the rest were only
/// undecided, 0 when every run met its expectation.
pub fn exit_code(c: &Counts) -> u8 {
    if c.fail > 0 {
        1
    } else if c.error > 0 {
        2
    } else if c.unknown > 0 {
        3
    } else {
        0
    }
}

/// Writes summary.json, junit.xml and summary.md into `dir`.
pub fn write_all(dir: &Path, s: &Summary) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(s).map_err(std::io::Error::other)?;
    write_atomic(&dir.join("summary.json"), &json)?;
    write_atomic(&dir.join("junit.xml"), &junit(s))?;
    write_atomic(&dir.join("summary.md"), &markdown(s))
}

/// Readers (CI, a human with `cat`) never see a half-written file.
fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

pub fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{secs:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use report::run_files::read_versioned;

    pub(super) fn rec(
        name: &str,
        outcome: Outcome,
        verdict: Option<&str>,
        expect: &str,
    ) -> RunRecord {
        RunRecord {
            name: name.into(),
            entry: "e".into(),
            variant: "multi".into(),
            workload: "register".into(),
            faults: "partition,kill".into(),
            seed: 1,
            repeat: 1,
            bugs: vec![],
            expect: expect.into(),
            outcome,
            verdict: verdict.map(str::to_string),
            explanation: "read of 3 at <t=1.2s> saw \"2\" & then | stale\nline two \u{1}".into(),
            ops_per_sec: Some(1234.4),
            p50_ms: Some(2.5),
            p99_ms: Some(12.34),
            availability: Some(0.987),
            first_violation_s: Some(4.25),
            run_dir: Some(format!("{name}/20260101T000000.000Z")),
            report: Some(format!("{name}/20260101T000000.000Z/report.html")),
            duration_s: 12.5,
        }
    }

    pub(super) fn sample() -> Summary {
        Summary::new(
            Head {
                suite: "smoke".into(),
                description: Some("short runs".into()),
                file: "suites/smoke.toml".into(),
                dir: "results/smoke/x".into(),
                started: "2026-01-01T00:00:00Z".into(),
                duration_s: 75.0,
                shard: None,
            },
            5,
            vec![
                rec("a-ok", Outcome::Pass, Some("valid"), "valid"),
                rec("b-bad<&>", Outcome::Fail, Some("invalid"), "valid"),
                rec("c-unk", Outcome::Unknown, Some("unknown"), "valid"),
                rec("d-err", Outcome::Error, None, "invalid"),
            ],
            false,
        )
    }

    #[test]
    fn exit_codes_follow_the_worst_outcome() {
        let c = |fail, error, unknown| Counts {
            total: 9,
            pass: 1,
            fail,
            unknown,
            error,
            pending: 0,
        };
        assert_eq!(exit_code(&c(0, 0, 0)), 0);
        assert_eq!(exit_code(&c(0, 0, 2)), 3);
        assert_eq!(exit_code(&c(0, 1, 2)), 2);
        assert_eq!(exit_code(&c(1, 1, 2)), 1);
        let s = sample();
        assert_eq!(s.exit_code, 1);
        assert_eq!(
            (
                s.counts.pass,
                s.counts.fail,
                s.counts.unknown,
                s.counts.error,
                s.counts.pending
            ),
            (1, 1, 1, 1, 1)
        );
    }

    #[test]
    fn entry_stats_give_detection_rate_and_median_time() {
        let mut runs = Vec::new();
        for (i, (outcome, verdict, t)) in [
            (Outcome::Pass, "invalid", Some(3.0)),
            (Outcome::Pass, "invalid", Some(1.0)),
            (Outcome::Fail, "valid", None),
            (Outcome::Pass, "invalid", Some(10.0)),
            (Outcome::Pass, "invalid", Some(2.0)),
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = rec(&format!("b{i}"), outcome, Some(verdict), "invalid");
            r.entry = "bug".into();
            r.first_violation_s = t;
            runs.push(r);
        }
        let mut ok = rec("ok", Outcome::Pass, Some("valid"), "valid");
        ok.entry = "ok".into();
        runs.push(ok);
        let e = entry_stats(&runs);
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].entry.as_str(), e[0].runs, e[0].met), ("bug", 5, 4));
        assert_eq!(e[0].rate, 0.8);
        assert_eq!(e[0].median_first_violation_s, Some(2.5));
        assert_eq!(
            (e[1].runs, e[1].met, e[1].median_first_violation_s),
            (1, 1, None)
        );
    }

    #[test]
    fn stats_are_read_leniently_from_results_json() {
        let v: Value = serde_json::json!({
            "test": "t", "verdict": "invalid",
            "check": {"verdict": "invalid", "explanation": "stale read",
                      "counterexample": {"op": {"start_s": 5.5, "end_s": 6.25},
                                         "shrunk": [{"start_s": 3.5}, {"start_s": 5.5}]}},
            "counts": {"ok": 90, "fail": 5, "info": 5},
            "ops_per_sec": 250.5,
            "latency_ms": {"p50": 1.0, "p99": 8.5}
        });
        let s = RunStats::from_results(&serde_json::from_value(v).unwrap());
        assert_eq!(s.verdict.as_deref(), Some("invalid"));
        assert_eq!(s.explanation, "stale read");
        assert_eq!(s.ops_per_sec, Some(250.5));
        assert_eq!(s.p99_ms, Some(8.5));
        assert_eq!(s.p50_ms, Some(1.0));
        assert_eq!(s.availability, Some(0.9));
        assert_eq!(
            s.first_violation_s,
            Some(6.25),
            "when the failing op completed"
        );
        let older = serde_json::json!({"check": {"counterexample":
            {"prefix": [{"time": 3_500_000_000u64}, {"start_s": 4.0}]}}});
        assert_eq!(
            RunStats::from_results(&serde_json::from_value(older).unwrap()).first_violation_s,
            Some(3.5)
        );
        let empty = RunStats::from_results(&serde_json::from_value(serde_json::json!({})).unwrap());
        assert_eq!(empty, RunStats::default());
    }

    #[test]
    fn write_all_writes_three_files() {
        let dir = std::env::temp_dir().join(format!("suite-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_all(&dir, &sample()).unwrap();
        let j: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(j["counts"]["fail"], 1);
        assert_eq!(j["schema_version"], SUMMARY_SCHEMA);
        // Readers use the same type, versioned like the run files.
        let read = |d: &Path| read_versioned::<Summary>(&d.join("summary.json"), SUMMARY_SCHEMA);
        assert_eq!(read(&dir).unwrap().runs[1].outcome, Outcome::Fail);
        std::fs::write(dir.join("summary.json"), r#"{"schema_version": 7}"#).unwrap();
        let e = read(&dir).unwrap_err().to_string();
        assert!(
            e.contains("summary.json") && e.contains("schema_version 7"),
            "{e}"
        );
        assert_eq!(j["runs"][1]["outcome"], "fail");
        assert!(dir.join("junit.xml").exists() && dir.join("summary.md").exists());
        assert!(!dir.join("summary.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
