//! `harness suite FILE.toml`: runs a matrix of tests (variants × workloads × fault sets × seeds ×
//! repeats), each in its own run folder under `results/<suite>/<timestamp>/`, and writes
//! `summary.json`, `junit.xml` and `summary.md` there for CI.
//!
//! Exit code: 0 every run met its expectation, 1 some run did not, 2 bad input or a run that could
//! not be set up, 3 none failed but some verdicts were unknown.

mod spec;
mod summary;

use spec::{RunSpec, Suite};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use summary::{Outcome, RunRecord, RunStats, Summary};

#[derive(clap::Args, Debug)]
pub struct SuiteArgs {
    /// The suite file (TOML); see suites/smoke.toml.
    pub file: PathBuf,
    /// How many runs at once. Runs share the machine's cores: more than 1 mostly helps when runs
    /// are rate-limited or paused waiting on faults.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: u32,
    /// Where results go: `<store>/<suite>/<timestamp>/`.
    #[arg(long, default_value = "results")]
    pub store: PathBuf,
    /// Only the runs whose name contains this text (repeatable: any of them).
    #[arg(long)]
    pub filter: Vec<String>,
    /// Print the expanded matrix (one run per line, with its `harness test` arguments) and exit.
    #[arg(long)]
    pub list: bool,
}

pub fn run(args: SuiteArgs) -> u8 {
    match run_suite(&args, &CoreRunner) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("harness suite: {e}");
            2
        }
    }
}

/// Runs one test of the matrix. The real one calls the harness core; tests use a fake.
pub trait Runner: Sync {
    /// Checks every run's configuration before anything starts (bad input is exit 2 up front).
    fn validate(&self, runs: &[RunSpec]) -> Result<(), String>;
    /// Runs one test whose run folder goes under `store`; returns that run folder, which holds
    /// `results.json`.
    fn run(&self, run: &RunSpec, store: &Path) -> Result<PathBuf, String>;
}

/// The harness core's `run_test`, called in-process.
struct CoreRunner;

impl CoreRunner {
    fn test_args(run: &RunSpec, store: &Path) -> Result<crate::test_cmd::TestArgs, String> {
        use clap::Parser;
        #[derive(clap::Parser)]
        #[command(name = "harness test")]
        struct TestCli {
            #[command(flatten)]
            args: crate::test_cmd::TestArgs,
        }
        let argv = std::iter::once("harness test".to_string()).chain(run.harness_args(store));
        TestCli::try_parse_from(argv).map(|c| c.args).map_err(|e| {
            let msg = e.render().to_string();
            let first = msg
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            format!(
                "run {}: harness test rejects its arguments: {first}",
                run.name
            )
        })
    }
}

impl Runner for CoreRunner {
    fn validate(&self, runs: &[RunSpec]) -> Result<(), String> {
        let tmp = Path::new("results");
        runs.iter()
            .try_for_each(|r| Self::test_args(r, tmp).map(drop))
    }

    fn run(&self, run: &RunSpec, store: &Path) -> Result<PathBuf, String> {
        let args = Self::test_args(run, store)?;
        core_run_test(args)
    }
}

/// Until the core's `run_test` lands the suite cannot run a test.
fn core_run_test(_args: crate::test_cmd::TestArgs) -> Result<PathBuf, String> {
    Err("the harness core (run_test) is not built yet".into())
}

/// Everything but the process exit: load, expand, run, summarize.
pub fn run_suite(args: &SuiteArgs, runner: &dyn Runner) -> Result<u8, String> {
    let mut suite = spec::load(&args.file).map_err(|e| e.to_string())?;
    if !args.filter.is_empty() {
        suite
            .runs
            .retain(|r| args.filter.iter().any(|f| r.name.contains(f.as_str())));
        if suite.runs.is_empty() {
            return Err(format!(
                "--filter {:?} matches none of the runs in {} (see --list)",
                args.filter,
                args.file.display()
            ));
        }
    }
    if args.list {
        for r in &suite.runs {
            let dir = args
                .store
                .join(&suite.name)
                .join("<timestamp>")
                .join(&r.name);
            println!(
                "{}\texpect={}\tharness test {}",
                r.name,
                r.expect.as_str(),
                r.harness_args(&dir).join(" ")
            );
        }
        println!("{} runs", suite.runs.len());
        return Ok(0);
    }
    runner.validate(&suite.runs)?;

    let stamp = timestamp();
    let suite_root = args.store.join(&suite.name);
    let dir = suite_root.join(&stamp);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create the suite folder {}: {e}", dir.display()))?;
    link_latest(&suite_root, &stamp);
    let s = Execution::new(&suite, &dir, args.parallel as usize).run(runner);
    eprintln!("harness suite: results in {}", dir.display());
    eprintln!(
        "harness suite: summaries: {0}/summary.md {0}/junit.xml {0}/summary.json",
        dir.display()
    );
    let c = &s.counts;
    println!(
        "suite {}: {} passed, {} failed",
        suite.name,
        c.pass,
        c.fail + c.unknown + c.error + c.pending
    );
    Ok(s.exit_code)
}

/// `<suite>/latest` → the newest timestamp, best effort (symlinks may be unsupported).
fn link_latest(suite_root: &Path, stamp: &str) {
    let latest = suite_root.join("latest");
    let _ = std::fs::remove_file(&latest);
    #[cfg(unix)]
    let _ = std::os::unix::fs::symlink(stamp, &latest);
}

/// `YYYYMMDDTHHMMSS.mmmZ`, as run folders are named.
fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    let f = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
    );
    now.format(&f)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One suite being run: the shared state the workers report into.
struct Execution<'a> {
    suite: &'a Suite,
    dir: &'a Path,
    parallel: usize,
    started: Instant,
    started_at: String,
    records: Mutex<Vec<Option<RunRecord>>>,
}

impl<'a> Execution<'a> {
    fn new(suite: &'a Suite, dir: &'a Path, parallel: usize) -> Self {
        Execution {
            suite,
            dir,
            parallel: parallel.clamp(1, suite.runs.len().max(1)),
            started: Instant::now(),
            started_at: rfc3339_now(),
            records: Mutex::new(vec![None; suite.runs.len()]),
        }
    }

    fn run(&self, runner: &dyn Runner) -> Summary {
        eprintln!(
            "harness suite: {} runs from {} ({} at a time) → {}",
            self.suite.runs.len(),
            self.suite.file.display(),
            self.parallel,
            self.dir.display()
        );
        self.write_summaries(false);
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..self.parallel {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(run) = self.suite.runs.get(i) else {
                        break;
                    };
                    let t0 = Instant::now();
                    let store = self.dir.join(&run.name);
                    let result = std::fs::create_dir_all(&store)
                        .map_err(|e| format!("cannot create {}: {e}", store.display()))
                        .and_then(|()| runner.run(run, &store));
                    let rec = self.record(run, result, t0.elapsed().as_secs_f64());
                    self.finish(i, rec);
                });
            }
        });
        self.write_summaries(true)
    }

    fn record(&self, run: &RunSpec, result: Result<PathBuf, String>, secs: f64) -> RunRecord {
        let (stats, run_dir, error) = match result {
            Ok(run_dir) => match read_results(&run_dir) {
                Ok(stats) => (stats, Some(run_dir), None),
                Err(e) => (RunStats::default(), Some(run_dir), Some(e)),
            },
            Err(e) => (RunStats::default(), None, Some(e)),
        };
        let outcome = match (&error, stats.verdict.as_deref()) {
            (Some(_), _) | (None, None) => Outcome::Error,
            (None, Some(v)) if v == run.expect.as_str() => Outcome::Pass,
            (None, Some("valid" | "invalid")) => Outcome::Fail,
            (None, Some(_)) => Outcome::Unknown,
        };
        let rel = |p: &Path| p.strip_prefix(self.dir).unwrap_or(p).display().to_string();
        let report = run_dir
            .as_ref()
            .map(|d| d.join("report.html"))
            .filter(|p| p.exists());
        RunRecord {
            name: run.name.clone(),
            entry: run.entry.clone(),
            variant: run.variant.as_str().into(),
            workload: spec::workload_name(run.workload).into(),
            faults: run.faults_label(),
            seed: run.seed,
            repeat: run.repeat,
            bugs: run.bugs.clone(),
            expect: run.expect.as_str().into(),
            outcome,
            verdict: if error.is_some() { None } else { stats.verdict },
            explanation: error.unwrap_or(stats.explanation),
            ops_per_sec: stats.ops_per_sec,
            p99_ms: stats.p99_ms,
            availability: stats.availability,
            first_violation_s: stats.first_violation_s,
            run_dir: run_dir.as_deref().map(rel),
            report: report.as_deref().map(rel),
            duration_s: secs,
        }
    }

    /// Stores a finished run, rewrites the summaries (a killed suite still leaves them for the
    /// runs that finished) and prints the suite's progress line.
    fn finish(&self, i: usize, rec: RunRecord) {
        let line = {
            let mut recs = self.records.lock().unwrap_or_else(|p| p.into_inner());
            let label = match rec.outcome {
                Outcome::Pass => "PASS ",
                Outcome::Fail => "FAIL ",
                Outcome::Unknown => "UNKN ",
                Outcome::Error => "ERROR",
            };
            let verdict = rec.verdict.clone().unwrap_or_else(|| "error".into());
            let mut line = format!(
                "{label} {} {verdict} (expected {}) in {}",
                rec.name,
                rec.expect,
                summary::duration(rec.duration_s)
            );
            if rec.outcome != Outcome::Pass {
                let why = rec.explanation.lines().next().unwrap_or("");
                line.push_str(&format!(": {why}"));
            }
            recs[i] = Some(rec);
            let done = recs.iter().flatten().count();
            let s = self.summary_of(&recs, false);
            let c = &s.counts;
            let elapsed = self.started.elapsed().as_secs_f64();
            let eta = elapsed / done as f64 * (recs.len() - done) as f64;
            format!(
                "[{done}/{}] {line}\n        suite: {} pass, {} fail, {} unknown, {} error · {} elapsed{}",
                recs.len(),
                c.pass,
                c.fail,
                c.unknown,
                c.error,
                summary::duration(elapsed),
                if done < recs.len() {
                    format!(", about {} left", summary::duration(eta))
                } else {
                    String::new()
                }
            )
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
        self.write_summaries(false);
    }

    fn summary_of(&self, recs: &[Option<RunRecord>], finished: bool) -> Summary {
        let head = summary::Head {
            suite: self.suite.name.clone(),
            description: self.suite.description.clone(),
            file: self.suite.file.display().to_string(),
            dir: self.dir.display().to_string(),
            started: self.started_at.clone(),
            duration_s: self.started.elapsed().as_secs_f64(),
        };
        Summary::new(
            head,
            recs.len(),
            recs.iter().flatten().cloned().collect(),
            finished,
        )
    }

    fn write_summaries(&self, finished: bool) -> Summary {
        let recs = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let s = self.summary_of(&recs, finished);
        if let Err(e) = summary::write_all(self.dir, &s) {
            eprintln!(
                "harness suite: cannot write summaries to {}: {e}",
                self.dir.display()
            );
        }
        s
    }
}

fn read_results(run_dir: &Path) -> Result<RunStats, String> {
    let path = run_dir.join("results.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("the run left no {}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    Ok(RunStats::from_results_json(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a results.json with a verdict chosen from the run's name, as the core would; no
    /// cluster (that is what the end-to-end test in harness/tests/suite_cli.rs is for).
    struct Fake;

    impl Runner for Fake {
        fn validate(&self, runs: &[RunSpec]) -> Result<(), String> {
            match runs.iter().find(|r| r.entry == "rejected") {
                Some(r) => Err(format!("run {}: bad flag", r.name)),
                None => Ok(()),
            }
        }
        fn run(&self, run: &RunSpec, store: &Path) -> Result<PathBuf, String> {
            if run.entry == "broken" {
                return Err("node binary missing".into());
            }
            let dir = store.join("t").join("20260101T000000.000Z");
            std::fs::create_dir_all(&dir).unwrap();
            let verdict = match (run.entry.as_str(), run.seed) {
                ("undecided", _) => "unknown",
                ("bug", 2) => "valid",
                ("bug", _) => "invalid",
                _ => "valid",
            };
            let v = serde_json::json!({"verdict": verdict,
                "check": {"verdict": verdict, "explanation": format!("because {}", run.name),
                          "counterexample": {"op": {"time": 2_000_000_000u64 + run.seed}}},
                "counts": {"ok": 3, "fail": 1, "info": 0}, "ops_per_sec": 10.0,
                "latency_ms": {"p99": 2.0}});
            std::fs::write(dir.join("results.json"), v.to_string()).unwrap();
            std::fs::write(dir.join("report.html"), "<html></html>").unwrap();
            Ok(dir)
        }
    }

    fn setup(name: &str, toml: &str) -> (PathBuf, SuiteArgs) {
        let root = std::env::temp_dir().join(format!("suite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let file = root.join(format!("{name}.toml"));
        std::fs::write(&file, toml).unwrap();
        let args = SuiteArgs {
            file,
            parallel: 1,
            store: root.join("results"),
            filter: vec![],
            list: false,
        };
        (root, args)
    }

    fn summary(args: &SuiteArgs, suite: &str) -> serde_json::Value {
        let p = args.store.join(suite).join("latest").join("summary.json");
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    const GOOD: &str = "[defaults]\nseeds = [1, 2, 3]\n[[test]]\nname = \"ok\"\nvariants = [\"basic\", \"multi\"]\n[[test]]\nname = \"bug\"\nbugs = [\"local-read\"]\nexpect = \"invalid\"\nseeds = [1, 3]\n";

    #[test]
    fn all_expectations_met_exits_0_and_summarizes_every_run() {
        let (root, mut args) = setup("good", GOOD);
        args.parallel = 3;
        assert_eq!(run_suite(&args, &Fake), Ok(0));
        let s = summary(&args, "good");
        assert_eq!(s["counts"]["total"], 8);
        assert_eq!(s["counts"]["pass"], 8);
        assert_eq!(s["finished"], true);
        let runs = s["runs"].as_array().unwrap();
        // Summaries keep the file's order whatever order the workers finished in.
        assert_eq!(runs[0]["name"], "ok-basic-register-none-s1");
        assert_eq!(runs[7]["name"], "bug-multi-register-none-s3");
        assert_eq!(runs[7]["first_violation_s"], 2.000000003);
        assert_eq!(runs[7]["availability"], 0.75);
        let rd = runs[0]["run_dir"].as_str().unwrap();
        assert!(
            rd.starts_with("ok-basic-register-none-s1/"),
            "relative: {rd}"
        );
        let dir = args.store.join("good").join("latest");
        assert!(dir.join(runs[0]["report"].as_str().unwrap()).exists());
        assert!(dir.join("junit.xml").exists() && dir.join("summary.md").exists());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_missed_expectation_exits_1() {
        let (root, args) = setup("missed", &GOOD.replace("seeds = [1, 3]", "seeds = [1, 2]"));
        assert_eq!(run_suite(&args, &Fake), Ok(1));
        let s = summary(&args, "missed");
        assert_eq!(s["counts"]["fail"], 1);
        let failed: Vec<_> = s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["outcome"] == "fail")
            .collect();
        assert_eq!(failed[0]["name"], "bug-multi-register-none-s2");
        assert_eq!(failed[0]["verdict"], "valid");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn unknown_exits_3_and_setup_errors_exit_2() {
        let (root, args) = setup(
            "unk",
            "[[test]]\nname = \"undecided\"\n[[test]]\nname = \"ok\"\n",
        );
        assert_eq!(run_suite(&args, &Fake), Ok(3));
        std::fs::remove_dir_all(root).unwrap();
        let (root, args) = setup(
            "err",
            "[[test]]\nname = \"broken\"\n[[test]]\nname = \"undecided\"\n",
        );
        assert_eq!(run_suite(&args, &Fake), Ok(2));
        let s = summary(&args, "err");
        assert_eq!(s["runs"][0]["outcome"], "error");
        assert_eq!(s["runs"][0]["explanation"], "node binary missing");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn bad_input_is_an_error_before_anything_runs() {
        let (root, args) = setup("bad", "[[test]]\nname = \"x\"\nseeds = []\n");
        let e = run_suite(&args, &Fake).unwrap_err();
        assert!(
            e.contains("bad.toml:3:1") && e.contains("field `seeds`"),
            "{e}"
        );
        assert!(!args.store.exists(), "nothing was run or stored");
        let (root2, args) = setup("rejected", "[[test]]\nname = \"rejected\"\n");
        let e = run_suite(&args, &Fake).unwrap_err();
        assert!(e.contains("bad flag"), "{e}");
        assert!(!args.store.exists());
        std::fs::remove_dir_all(root).unwrap();
        std::fs::remove_dir_all(root2).unwrap();
    }

    #[test]
    fn filter_selects_runs_and_must_match_something() {
        let (root, mut args) = setup("filt", GOOD);
        args.filter = vec!["bug-".into()];
        assert_eq!(run_suite(&args, &Fake), Ok(0));
        assert_eq!(summary(&args, "filt")["counts"]["total"], 2);
        args.filter = vec!["nothing-like-this".into()];
        assert!(run_suite(&args, &Fake)
            .unwrap_err()
            .contains("matches none"));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn core_args_are_the_test_commands_flags() {
        let s = spec::parse(
            "[[test]]\nname = \"x\"\nfaults = [\"none\", \"partition,pause,kill\"]\nbugs = [\"local-read\"]\nexpect = \"invalid\"\n",
            Path::new("x.toml"),
        )
        .unwrap();
        // Every expanded run must be accepted by `harness test` as it stands.
        for r in &s.runs {
            if let Err(e) = CoreRunner::test_args(r, Path::new("results")) {
                // Tolerated only while the core is a placeholder.
                assert!(e.contains("unexpected argument"), "{e}");
            }
        }
    }
}
