//! A run folder as the pages read it: its `test.json`, `results.json` and `node-stats.json`
//! through the [`crate::run_files`] schema, and its history's analysis. Reading is lenient about
//! what is missing (an aborted run, an unchecked one): every gap becomes a note in plain words.

use crate::analysis::Analysis;
use crate::run_files::{FileError, ReportedOptions, ResultsFile, TestFile};
use checker::counterexample::Counterexample;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A run folder as read from disk.
pub struct Run {
    pub dir: PathBuf,
    pub test: Option<TestFile>,
    pub results: Option<ResultsFile>,
    /// `node-stats.json`: each node's answer to `stats`, as the node gave it.
    pub node_stats: Option<Value>,
    /// The history's analysis (empty when there is no history).
    pub analysis: Analysis,
    /// What is missing or odd, in plain words.
    pub notes: Vec<String>,
}

impl Run {
    /// Reads a run folder; fails only when `dir` is not a readable directory.
    pub fn load(dir: &Path) -> Result<Run, String> {
        let mut run = Run::load_meta(dir)?;
        let hist = dir.join("history.jsonl");
        if !hist.exists() {
            run.notes
                .push("no history.jsonl: the run recorded no operations".into());
            return Ok(run);
        }
        match Analysis::from_jsonl(&hist) {
            Ok((a, bad)) => {
                if let Some(e) = bad {
                    run.notes.push(format!(
                        "{e} (the history is cut short, as when a run is aborted; the {} events \
                         before it are shown)",
                        a.client_events + a.nemesis_events
                    ));
                }
                run.analysis = a;
            }
            Err(e) => run.notes.push(format!("history unreadable: {e}")),
        }
        Ok(run)
    }

    /// Reads the small JSON files only (no history): what the index needs.
    pub fn load_meta(dir: &Path) -> Result<Run, String> {
        if !dir.is_dir() {
            return Err(format!(
                "{}: not a run folder (no such directory)",
                dir.display()
            ));
        }
        let mut notes = Vec::new();
        fn keep<T>(r: Result<T, FileError>, missing: &str, notes: &mut Vec<String>) -> Option<T> {
            match r {
                Ok(v) => Some(v),
                Err(FileError::Missing(_)) => {
                    notes.push(missing.to_string());
                    None
                }
                Err(e) => {
                    notes.push(e.to_string());
                    None
                }
            }
        }
        let test = keep(
            TestFile::read(dir),
            "no test.json: the configuration is unknown",
            &mut notes,
        );
        let results = keep(
            ResultsFile::read(dir),
            "no results.json: the run was not checked (it may have been aborted); \
             `harness analyze RUN_DIR` checks it",
            &mut notes,
        );
        let node_stats = match std::fs::read_to_string(dir.join("node-stats.json")) {
            Ok(s) => match serde_json::from_str::<Value>(&s) {
                Ok(v) => Some(v),
                Err(e) => {
                    notes.push(format!(
                        "{}/node-stats.json: not valid JSON: {e}",
                        dir.display()
                    ));
                    None
                }
            },
            Err(_) => None,
        };
        Ok(Run {
            dir: dir.to_path_buf(),
            test,
            results,
            node_stats,
            analysis: Analysis::default(),
            notes,
        })
    }

    /// The test's name: results.json, then test.json, then the parent folder's name.
    pub fn name(&self) -> String {
        let results = self.results.as_ref().and_then(|r| r.test.clone());
        results
            .or_else(|| self.test.as_ref()?.name.clone())
            .or_else(|| {
                let parent = self
                    .dir
                    .canonicalize()
                    .ok()?
                    .parent()?
                    .file_name()?
                    .to_owned();
                Some(parent.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "run".into())
    }

    /// `valid` / `invalid` / `unknown`, or `None` when the run was not checked.
    pub fn verdict(&self) -> Option<String> {
        self.results.as_ref()?.verdict().map(str::to_string)
    }

    /// The checker's words. The top-level `explanation` (which may add context such as
    /// "interrupted") wins unless a later `harness analyze` rewrote `check` without it.
    pub fn explanation(&self) -> Option<String> {
        let r = self.results.as_ref()?;
        let top = r.explanation.as_deref();
        let check = r.check.as_ref().and_then(|c| c.explanation.as_deref());
        match (top, check) {
            (Some(t), Some(c)) if !t.contains(c) => Some(c.to_string()),
            (Some(t), _) => Some(t.to_string()),
            (None, c) => c.map(str::to_string),
        }
    }

    pub fn counterexample(&self) -> Option<&Counterexample> {
        self.results.as_ref()?.counterexample()
    }

    /// When the run started (RFC 3339), from results.json or test.json.
    pub fn started(&self) -> Option<String> {
        let results = self.results.as_ref().and_then(|r| r.started.clone());
        results.or_else(|| self.test.as_ref()?.started.clone())
    }

    /// The default node's variant (`basic`, `multi`), when the run used it.
    pub fn variant(&self) -> Option<String> {
        self.test.as_ref()?.variant.clone()
    }

    /// `--op-timeout`, in milliseconds.
    pub fn op_timeout_ms(&self) -> Option<f64> {
        let o: ReportedOptions = self.test.as_ref()?.options_as()?;
        o.op_timeout.map(|s| s * 1000.0)
    }
}

/// Refuses a folder that holds none of a run's files: a page of nothing but notes about what is
/// missing would pass for a run with no data (commands that name runs check this first; reading
/// stays lenient).
pub fn check_is_run(dir: &Path) -> Result<(), String> {
    let files = ["test.json", "results.json", "history.jsonl"];
    if dir.is_dir() && !files.iter().any(|f| dir.join(f).exists()) {
        return Err(format!(
            "{}: not a run folder (it has no test.json, results.json or history.jsonl)",
            dir.display()
        ));
    }
    Ok(())
}

/// Shell-quotes a path for the replay command.
fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The command that replays a run: same seed, schedule and configuration.
pub fn replay_command(run_dir: &Path) -> String {
    let dir = run_dir
        .canonicalize()
        .unwrap_or_else(|_| run_dir.to_path_buf());
    format!(
        "harness test --replay {}",
        shell_quote(&dir.display().to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_command_quotes_odd_paths() {
        assert_eq!(shell_quote("/a/b"), "/a/b");
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
    }
}
