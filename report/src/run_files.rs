//! The schema of the JSON files a run folder holds: `test.json` ([`TestFile`], what was run) and
//! `results.json` ([`ResultsFile`], what it concluded). The harness writes them through these
//! types; the report, the index, the comparison and the suite read them back through the same.
//!
//! Each file carries a `schema_version`. A file without one is version 1, the layout written
//! before the field existed, and still loads: every field the harness has ever written keeps its
//! name and meaning, and fields an older file lacks have defaults. A file of a version this build
//! does not know is refused with a message naming the file and the version. Fields these types
//! do not know are kept (`extra`) and written back unchanged.

use checker::counterexample::Counterexample;
use checker::CheckResult;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `schema_version` of a file that has none: the layout from before versioning.
pub const UNVERSIONED: u32 = 1;
/// The `schema_version` this build writes into `test.json`. Version 2 adds `variant`.
pub const TEST_SCHEMA: u32 = 2;
/// The `schema_version` this build writes into `results.json`. Version 2 has the layout of 1.
pub const RESULTS_SCHEMA: u32 = 2;

fn unversioned() -> u32 {
    UNVERSIONED
}

/// `test.json`: what was run. `O` is the harness's own options (its `harness test` flags);
/// readers that do not know them use the default, opaque JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestFile<O = Value> {
    #[serde(default = "unversioned")]
    pub schema_version: u32,
    /// The test name (the folder under the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// RFC 3339, when the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_bin: Option<PathBuf>,
    /// Arguments given to every node (for the default node, `--variant` first).
    #[serde(default)]
    pub node_args: Vec<String>,
    /// Each node's whole command line, by node id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_argv: BTreeMap<String, Vec<String>>,
    /// The default node's Paxos variant (`basic`, `multi`); absent for a third-party node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// `register` or `kv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// The harness's options as given.
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub options: Option<O>,
    /// Fields this type does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl<O> TestFile<O> {
    /// A current-version file with only the options set.
    pub fn new(options: O) -> TestFile<O> {
        TestFile {
            schema_version: TEST_SCHEMA,
            name: None,
            seed: None,
            started: None,
            harness_version: None,
            node_bin: None,
            node_args: Vec::new(),
            node_argv: BTreeMap::new(),
            variant: None,
            workload: None,
            options: Some(options),
            extra: Map::new(),
        }
    }
}

impl TestFile<Value> {
    /// Reads the opaque options as the few typed fields a reader needs.
    pub fn options_as<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_value(self.options.clone()?).ok()
    }
}

impl<O: DeserializeOwned> TestFile<O> {
    /// Reads `dir/test.json`.
    pub fn read(dir: &Path) -> Result<TestFile<O>, FileError> {
        let path = dir.join("test.json");
        let mut t: TestFile<O> = read_versioned(&path, TEST_SCHEMA)?;
        if t.schema_version == UNVERSIONED && t.variant.is_none() {
            // Version 1 had the variant only as the default node's first argument.
            t.variant = variant_in_node_args(&t.node_args);
        }
        Ok(t)
    }
}

fn variant_in_node_args(args: &[String]) -> Option<String> {
    let i = args.iter().position(|a| a == "--variant")?;
    args.get(i + 1).cloned()
}

/// The options of `harness test` the report reads (seconds).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ReportedOptions {
    pub op_timeout: Option<f64>,
}

/// `results.json`: what a run concluded.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ResultsFile {
    #[serde(default = "unversioned")]
    pub schema_version: u32,
    /// The test name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// `valid`, `invalid` or `unknown`; may differ from `check.verdict` (an interrupted run is
    /// unknown whatever the prefix checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// The checker's explanation, with context such as "interrupted" added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// The checker's result as it gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<ResultCounts>,
    /// Completed (`ok`) client operations per second during the main phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops_per_sec: Option<f64>,
    /// Share of main-phase operations the cluster answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability: Option<f64>,
    /// Latency of ok operations; null when none succeeded.
    pub latency_ms: Option<LatencyMs>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// Seconds of the whole run, and of its main phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_phase_s: Option<f64>,
    /// Harness CPU seconds during the main phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub harness_cpu_main_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Events in the history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_dir: Option<PathBuf>,
    /// What the harness noticed about the nodes that the verdict does not say (a node that
    /// listens beyond loopback), one sentence each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Fields this type does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResultsFile {
    /// An empty file of the current version.
    pub fn new() -> ResultsFile {
        ResultsFile {
            schema_version: RESULTS_SCHEMA,
            ..ResultsFile::default()
        }
    }

    /// Reads `dir/results.json`.
    pub fn read(dir: &Path) -> Result<ResultsFile, FileError> {
        read_versioned(&dir.join("results.json"), RESULTS_SCHEMA)
    }

    /// The verdict, from `check` when the top level has none.
    pub fn verdict(&self) -> Option<&str> {
        self.verdict
            .as_deref()
            .or_else(|| self.check.as_ref()?.verdict.as_deref())
    }

    pub fn counterexample(&self) -> Option<&Counterexample> {
        self.check.as_ref()?.counterexample.as_ref()
    }
}

/// A [`CheckResult`] as stored: every field optional, the counterexample typed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub states_explored: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl From<&CheckResult> for CheckRecord {
    fn from(r: &CheckResult) -> CheckRecord {
        // The checker builds its counterexample as JSON; one it cannot type stays as it was.
        let (counterexample, extra) = match &r.counterexample {
            None => (None, Map::new()),
            Some(v) => match serde_json::from_value(v.clone()) {
                Ok(cx) => (Some(cx), Map::new()),
                Err(_) => (None, Map::from_iter([("counterexample".into(), v.clone())])),
            },
        };
        CheckRecord {
            verdict: Some(verdict_name(r.verdict).into()),
            explanation: Some(r.explanation.clone()),
            counterexample,
            keys: Some(r.keys),
            ops: Some(r.ops),
            states_explored: Some(r.states_explored),
            elapsed_ms: Some(r.elapsed_ms),
            extra,
        }
    }
}

/// `valid`, `invalid`, `unknown`: the verdict as the files spell it.
pub fn verdict_name(v: checker::Verdict) -> &'static str {
    match v {
        checker::Verdict::Valid => "valid",
        checker::Verdict::Invalid => "invalid",
        checker::Verdict::Unknown => "unknown",
    }
}

/// Client operations by outcome in the main phase.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ResultCounts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<u64>,
    /// The same by `f`, as the client statistics give it.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub by_f: Value,
}

impl ResultCounts {
    /// Share of completed ops that were ok; `None` when none completed.
    pub fn ok_share(&self) -> Option<f64> {
        let n = |c: Option<u64>| c.unwrap_or(0);
        let total = n(self.ok) + n(self.fail) + n(self.info);
        (total > 0).then(|| n(self.ok) as f64 / total as f64)
    }
}

/// Latency quantiles of ok operations, milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LatencyMs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// A run file that is missing, unreadable, of an unknown version or not of its schema.
#[derive(Clone, Debug, PartialEq)]
pub enum FileError {
    Missing(PathBuf),
    Invalid(String),
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::Missing(p) => write!(f, "{}: no such file", p.display()),
            FileError::Invalid(msg) => f.write_str(msg),
        }
    }
}

#[derive(Deserialize)]
struct Version {
    #[serde(default = "unversioned")]
    schema_version: u32,
}

/// Reads a JSON file with a `schema_version` of 1 to `newest` (absent: 1) as `T`.
pub fn read_versioned<T: DeserializeOwned>(path: &Path, newest: u32) -> Result<T, FileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FileError::Missing(path.to_path_buf()))
        }
        Err(e) => return Err(FileError::Invalid(format!("{}: {e}", path.display()))),
    };
    let bad = |e: serde_json::Error| {
        FileError::Invalid(format!(
            "{}:{}:{}: not valid JSON of this file's layout: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    };
    let v: Version = serde_json::from_str(&text).map_err(bad)?;
    if !(UNVERSIONED..=newest).contains(&v.schema_version) {
        return Err(FileError::Invalid(format!(
            "{}: schema_version {} is not one this build reads (1 to {newest}); a newer harness \
             wrote it",
            path.display(),
            v.schema_version
        )));
    }
    serde_json::from_str(&text).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dir_with(name: &str, file: &str, v: &Value) -> tempfile::TempDir {
        let d = tempfile::Builder::new().prefix(name).tempdir().unwrap();
        std::fs::write(d.path().join(file), v.to_string()).unwrap();
        d
    }

    #[test]
    fn unversioned_test_json_loads_with_the_variant_from_node_args() {
        let v = json!({"name": "multi-register", "seed": 7, "node_args": ["--variant", "basic"],
            "options": {"op_timeout": 0.5, "nodes": 3}, "workload": "register", "nodes": 3});
        let d = dir_with("v1-test", "test.json", &v);
        let t: TestFile = TestFile::read(d.path()).unwrap();
        assert_eq!(t.schema_version, UNVERSIONED);
        assert_eq!(t.variant.as_deref(), Some("basic"));
        assert_eq!(t.extra["nodes"], 3);
        let o: ReportedOptions = t.options_as().unwrap();
        assert_eq!(o.op_timeout, Some(0.5));
    }

    #[test]
    fn a_current_test_json_names_its_variant_itself() {
        // A third-party node's own `--variant` flag is not the default node's variant.
        let v = json!({"schema_version": TEST_SCHEMA, "node_args": ["--variant", "x"]});
        let d = dir_with("v2-novariant", "test.json", &v);
        let t: TestFile = TestFile::read(d.path()).unwrap();
        assert_eq!(t.variant, None);
    }

    #[test]
    fn a_current_test_json_round_trips_and_keeps_every_field() {
        let mut t = TestFile::new(json!({"nodes": 5}));
        t.name = Some("x".into());
        t.variant = Some("multi".into());
        t.node_args = vec!["--variant".into(), "multi".into()];
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["schema_version"], TEST_SCHEMA);
        assert_eq!(v["variant"], "multi");
        let d = dir_with("v2-test", "test.json", &v);
        let back: TestFile = TestFile::read(d.path()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), v);
    }

    #[test]
    fn a_newer_version_is_refused_naming_the_file() {
        let d = dir_with("v9", "results.json", &json!({"schema_version": 9}));
        let e = ResultsFile::read(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("results.json") && e.contains("schema_version 9"),
            "{e}"
        );
        let d = dir_with("bad", "results.json", &json!({"verdict": 3}));
        let e = ResultsFile::read(d.path()).unwrap_err().to_string();
        assert!(e.contains("results.json:1:"), "{e}");
        let e = ResultsFile::read(Path::new("/nonexistent")).unwrap_err();
        assert!(matches!(e, FileError::Missing(_)));
    }

    #[test]
    fn results_keep_fields_they_do_not_know() {
        let v = json!({"verdict": "valid", "check": {"verdict": "valid", "later": 1},
            "future": {"a": 1}, "latency_ms": null, "counts": {"ok": 2}});
        let r: ResultsFile = serde_json::from_value(v).unwrap();
        assert_eq!(r.verdict(), Some("valid"));
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["future"], json!({"a": 1}));
        assert_eq!(back["check"]["later"], 1);
        assert_eq!(
            back["counts"],
            json!({"ok": 2}),
            "nothing added to what was there"
        );
    }
}
