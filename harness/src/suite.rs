//! `harness suite FILE.toml`: runs a matrix of tests (variants × workloads × fault sets × seeds ×
//! repeats), each in its own run folder under `results/<suite>/<timestamp>/`, and writes
//! `summary.json`, `junit.xml` and `summary.md` there for CI.
//!
//! Exit code: 0 every run met its expectation, 1 some run did not, 2 bad input or a run that could
//! not be set up, 3 none failed but some verdicts were unknown.

mod merge;
mod shard;
mod spec;
pub mod summary;

use shard::{Shard, ShardInfo};
use spec::{RunSpec, Suite};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use summary::{Outcome, RunRecord, RunStats, Summary};

use crate::error::SetupError;
use crate::options::workload_name;
use crate::test_args::TestArgs;
use crate::test_cmd::{run_test, runtime};
use report::run_files::verdict_name;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SuiteArgs {
    #[command(subcommand)]
    pub action: Option<SuiteAction>,
    /// The suite file (TOML); see suites/smoke.toml.
    #[arg(required = true)]
    pub file: Option<PathBuf>,
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
    /// Run every test of the suite in this network mode (`--net` of `harness test`).
    #[arg(long, value_enum, value_name = "MODE")]
    pub net: Option<crate::net::NetMode>,
    /// Run every test of the suite on these SSH hosts (`--hosts` of `harness test`; each entry's
    /// node count must equal the number of hosts).
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// Run only the K-th of N disjoint slices of the matrix (for a CI job matrix; put the slices
    /// back together with `harness suite merge`). Run i of the expanded matrix (after --filter)
    /// is in shard i mod N + 1, the same on every machine for the same file.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
}

#[derive(clap::Subcommand, Debug)]
pub enum SuiteAction {
    /// Merge the summaries of a suite's shards (`--shard K/N` runs) into one summary.md,
    /// junit.xml and summary.json, with the exit code a single run of the whole suite would have.
    Merge(merge::MergeArgs),
}

pub fn run(args: SuiteArgs) -> Result<u8, SetupError> {
    if let Some(SuiteAction::Merge(m)) = &args.action {
        return merge::run(m)
            .map_err(|e| SetupError::new("harness suite merge", anyhow::anyhow!(e)));
    }
    InProcessRunner::new(args.parallel)
        .and_then(|runner| run_suite(&args, &runner))
        .map_err(|e| SetupError::new("harness suite", anyhow::anyhow!(e)))
}

/// Runs one test of the matrix. The real one calls [`run_test`] in this process; unit tests use a
/// fake.
pub trait Runner: Sync {
    /// Checks every run's configuration before anything starts (bad input is exit 2 up front).
    fn validate(&self, runs: &[RunSpec]) -> Result<(), String>;
    /// Runs one test, its run folder under `store`; returns that folder and what it concluded.
    fn run(&self, run: &RunSpec, store: &Path) -> Result<(PathBuf, RunStats), String>;
    /// True once the user asked to stop (Ctrl-C): start no more runs.
    fn interrupted(&self) -> bool {
        false
    }
}

/// Calls `harness test`'s [`run_test`] in this process, every run on one shared runtime.
struct InProcessRunner {
    rt: tokio::runtime::Runtime,
}

impl InProcessRunner {
    /// Runs one at a time get the one-thread runtime `harness test` uses; parallel runs, which
    /// call `block_on` from threads of their own, a worker per core.
    fn new(parallel: u32) -> Result<Self, String> {
        let rt = if parallel > 1 {
            tokio::runtime::Runtime::new()
        } else {
            runtime()
        };
        let rt = rt.map_err(|e| format!("cannot start the async runtime: {e}"))?;
        Ok(InProcessRunner { rt })
    }

    fn test_args(run: &RunSpec, store: &Path) -> Result<TestArgs, String> {
        let mut argv = run.harness_args(store);
        argv.insert(0, "--quiet".into());
        TestArgs::from_argv(argv).map_err(|e| {
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

impl Runner for InProcessRunner {
    fn validate(&self, runs: &[RunSpec]) -> Result<(), String> {
        let tmp = Path::new("results");
        runs.iter().try_for_each(|r| {
            let a = Self::test_args(r, tmp)?;
            a.validate().map_err(|e| format!("run {}: {e:#}", r.name))
        })
    }

    fn run(&self, run: &RunSpec, store: &Path) -> Result<(PathBuf, RunStats), String> {
        let args = Self::test_args(run, store)?;
        let o = self
            .rt
            .block_on(run_test(&args))
            .map_err(|e| format!("{e:#}"))?;
        if o.interrupted {
            return Err(format!(
                "interrupted (partial run in {})",
                o.run_dir.display()
            ));
        }
        // results.json has the counterexample too; the outcome is the fallback.
        let stats = read_results(&o.run_dir).unwrap_or_else(|_| RunStats {
            verdict: Some(verdict_name(o.verdict).to_string()),
            explanation: o.explanation.clone(),
            ops_per_sec: Some(o.ops_per_sec),
            p50_ms: None,
            p99_ms: o.p99_ms,
            availability: Some(o.availability),
            first_violation_s: None,
        });
        Ok((o.run_dir, stats))
    }

    fn interrupted(&self) -> bool {
        crate::cluster::interrupted()
    }
}

/// Everything but the process exit: load, expand, run, summarize.
pub fn run_suite(args: &SuiteArgs, runner: &dyn Runner) -> Result<u8, String> {
    let Some(file) = &args.file else {
        return Err("no suite file given (harness suite FILE.toml)".into());
    };
    let mut suite = spec::load(file).map_err(|e| e.to_string())?;
    if !args.list {
        spec::check_node_bins(&suite).map_err(|e| e.to_string())?;
    }
    if !args.filter.is_empty() {
        suite
            .runs
            .retain(|r| args.filter.iter().any(|f| r.name.contains(f.as_str())));
        if suite.runs.is_empty() {
            return Err(format!(
                "--filter {:?} matches none of the runs in {} (see --list)",
                args.filter,
                file.display()
            ));
        }
    }
    let shard = args.shard.map(|sh| {
        let matrix_runs = suite.runs.len();
        let mut i = 0;
        suite.runs.retain(|_| {
            i += 1;
            sh.holds(i - 1)
        });
        ShardInfo {
            k: sh.k,
            n: sh.n,
            matrix_runs,
        }
    });
    for r in &mut suite.runs {
        if let Some(mode) = args.net {
            r.harness_args
                .extend(["--net".into(), mode.as_str().into()]);
        }
        if let Some(file) = &args.hosts {
            r.harness_args
                .extend(["--hosts".into(), file.display().to_string()]);
        }
    }
    if args.list {
        use std::io::Write;
        let dir = args.store.join(&suite.name).join("<timestamp>");
        let mut out = std::io::stdout().lock();
        // A closed pipe (`--list | head`) just ends the listing: write errors stop it quietly.
        for r in &suite.runs {
            let line = format!(
                "{}\texpect={}\tharness test {}",
                r.name,
                r.expect.as_str(),
                r.harness_args(&dir).join(" ")
            );
            if writeln!(out, "{line}").is_err() {
                return Ok(0);
            }
        }
        let _ = writeln!(out, "{} runs", suite.runs.len());
        return Ok(0);
    }
    runner.validate(&suite.runs)?;

    let stamp = match &shard {
        Some(sh) => format!("{}-shard-{}-of-{}", timestamp(), sh.k, sh.n),
        None => timestamp(),
    };
    let suite_root = args.store.join(&suite.name);
    let dir = suite_root.join(&stamp);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create the suite folder {}: {e}", dir.display()))?;
    link_latest(&suite_root, &stamp);
    let s = Execution::new(&suite, &dir, args.parallel as usize, shard).run(runner);
    crate::errln!("harness suite: results in {}", dir.display());
    crate::errln!(
        "harness suite: summaries: {0}/summary.md {0}/junit.xml {0}/summary.json",
        dir.display()
    );
    let c = &s.counts;
    // The same counts, by the same names, as summary.md.
    let not_run = match c.pending {
        0 => String::new(),
        n => format!(", {n} not run"),
    };
    let part = match args.shard {
        Some(sh) => format!(" (shard {sh})"),
        None => String::new(),
    };
    crate::outln!(
        "suite {}{part}: {} passed, {} failed, {} unknown, {} errors{not_run}",
        suite.name,
        c.pass,
        c.fail,
        c.unknown,
        c.error
    );
    if c.pending > 0 && c.fail == 0 {
        crate::errln!("harness suite: interrupted; {} runs not run", c.pending);
        return Ok(crate::cluster::interrupt_exit_code());
    }
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
    shard: Option<ShardInfo>,
}

impl<'a> Execution<'a> {
    fn new(suite: &'a Suite, dir: &'a Path, parallel: usize, shard: Option<ShardInfo>) -> Self {
        Execution {
            suite,
            dir,
            parallel: parallel.clamp(1, suite.runs.len().max(1)),
            started: Instant::now(),
            started_at: rfc3339_now(),
            records: Mutex::new(vec![None; suite.runs.len()]),
            shard,
        }
    }

    fn run(&self, runner: &dyn Runner) -> Summary {
        crate::errln!(
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
                    if runner.interrupted() {
                        break;
                    }
                    let t0 = Instant::now();
                    let result = runner.run(run, self.dir);
                    let rec = self.record(run, result, t0.elapsed().as_secs_f64());
                    self.finish(i, rec);
                });
            }
        });
        self.write_summaries(true)
    }

    fn record(
        &self,
        run: &RunSpec,
        result: Result<(PathBuf, RunStats), String>,
        secs: f64,
    ) -> RunRecord {
        let (stats, run_dir, error) = match result {
            Ok((run_dir, stats)) => (stats, Some(run_dir), None),
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
            workload: workload_name(run.workload).into(),
            faults: run.faults_label(),
            seed: run.seed,
            repeat: run.repeat,
            bugs: run.bugs.clone(),
            expect: run.expect.as_str().into(),
            outcome,
            verdict: if error.is_some() { None } else { stats.verdict },
            explanation: error.unwrap_or(stats.explanation),
            ops_per_sec: stats.ops_per_sec,
            p50_ms: stats.p50_ms,
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
            shard: self.shard.clone(),
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
            crate::errln!(
                "harness suite: cannot write summaries to {}: {e}",
                self.dir.display()
            );
        }
        s
    }
}

fn read_results(run_dir: &Path) -> Result<RunStats, String> {
    match report::run_files::ResultsFile::read(run_dir) {
        Ok(r) => Ok(RunStats::from_results(&r)),
        Err(report::run_files::FileError::Missing(p)) => {
            Err(format!("the run left no {}", p.display()))
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a results.json with a verdict chosen from the run's name, as a real run would; no
    /// cluster (that is what the end-to-end test in harness/tests/suite_cli.rs is for).
    pub(super) struct Fake;

    impl Runner for Fake {
        fn validate(&self, runs: &[RunSpec]) -> Result<(), String> {
            match runs.iter().find(|r| r.entry == "rejected") {
                Some(r) => Err(format!("run {}: bad flag", r.name)),
                None => Ok(()),
            }
        }
        fn run(&self, run: &RunSpec, store: &Path) -> Result<(PathBuf, RunStats), String> {
            if run.entry == "broken" {
                return Err("node binary missing".into());
            }
            let dir = store.join(&run.name).join("20260101T000000.000Z");
            std::fs::create_dir_all(&dir).unwrap();
            let verdict = match (run.entry.as_str(), run.seed) {
                ("undecided", _) => "unknown",
                ("bug", 2) => "valid",
                ("bug", _) => "invalid",
                _ => "valid",
            };
            let v = serde_json::json!({"verdict": verdict,
                "check": {"verdict": verdict, "explanation": format!("because {}", run.name),
                          "counterexample": {"op": {"end_s": 2.0 + run.seed as f64}}},
                "counts": {"ok": 3, "fail": 1, "info": 0}, "ops_per_sec": 10.0,
                "latency_ms": {"p99": 2.0}});
            std::fs::write(dir.join("results.json"), v.to_string()).unwrap();
            std::fs::write(dir.join("report.html"), "<html></html>").unwrap();
            let stats = read_results(&dir)?;
            Ok((dir, stats))
        }
    }

    pub(super) fn setup(name: &str, toml: &str) -> (PathBuf, SuiteArgs) {
        // Unique per call: two tests of this binary may set up the same suite name at once.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("suite-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let file = root.join(format!("{name}.toml"));
        std::fs::write(&file, toml).unwrap();
        let args = SuiteArgs {
            action: None,
            file: Some(file),
            shard: None,
            parallel: 1,
            store: root.join("results"),
            filter: vec![],
            list: false,
            net: None,
            hosts: None,
        };
        (root, args)
    }

    pub(super) fn summary(args: &SuiteArgs, suite: &str) -> serde_json::Value {
        let p = args.store.join(suite).join("latest").join("summary.json");
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    pub(super) const GOOD: &str = "[defaults]\nseeds = [1, 2, 3]\n[[test]]\nname = \"ok\"\nvariants = [\"basic\", \"multi\"]\n[[test]]\nname = \"bug\"\nbugs = [\"local-read\"]\nexpect = \"invalid\"\nseeds = [1, 3]\n";

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
        assert_eq!(runs[7]["first_violation_s"], 5.0);
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
    fn in_process_args_are_the_test_commands_flags() {
        let s = spec::parse(
            "[[test]]\nname = \"x\"\nnodes = 3\ntime_limit = 2.5\nconcurrency = 4\nrate = 50\n\
             recovery_time = 1.5\nop_timeout = 0.5\nseeds = [9]\nnode_args = [\"--v\"]\n\
             bugs = [\"local-read\"]\nexpect = \"invalid\"\nvariants = [\"basic\"]\n\
             workloads = [\"kv\"]\nfaults = [\"none\"]\ncheck_time_limit = 7\n",
            Path::new("x.toml"),
        )
        .unwrap();
        let r = &s.runs[0];
        let store = Path::new("/tmp/suite-store");
        let a = InProcessRunner::test_args(r, store).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.nodes, 3);
        assert_eq!(a.time_limit, 2.5);
        assert_eq!(a.concurrency, 4);
        assert_eq!(a.rate, Some(50.0));
        assert_eq!(a.recovery_time, 1.5);
        assert_eq!(a.op_timeout, 0.5);
        assert_eq!(a.check_time_limit, 7.0);
        assert_eq!(a.seed, Some(9));
        assert_eq!(a.variant, crate::options::Variant::Basic);
        assert_eq!(a.workload, workloads::Workload::Kv);
        assert_eq!(a.store, store);
        assert_eq!(a.name.as_deref(), Some(r.name.as_str()));
        assert!(a.quiet, "suites draw their own progress line");
        assert_eq!(a.node_args, ["--v", "--bug", "local-read"]);
        assert_eq!(a.test_name(), r.name);
        assert!(a.nemesis.nemesis.0.is_empty(), "faults = [\"none\"]");

        let s = spec::parse(
            "[[test]]\nname = \"n\"\nfaults = [\"partition,kill\"]\nnemesis_interval = 2\n\
             nemesis_targets = [\"one\", \"majority\"]\npartition_mode = \"reset\"\n\
             net_latency = 1.5\nnet_jitter = 0.5\n",
            Path::new("x.toml"),
        )
        .unwrap();
        let a = InProcessRunner::test_args(&s.runs[0], store).unwrap_or_else(|e| panic!("{e}"));
        use crate::schedule::{FaultKind, Target};
        let n = &a.nemesis;
        assert_eq!(n.nemesis.0, [FaultKind::Partition, FaultKind::Kill]);
        assert_eq!(n.nemesis_interval, 2.0);
        assert_eq!(n.nemesis_targets.0, [Target::One, Target::Majority]);
        assert_eq!(n.partition_mode, crate::proxy::PartitionMode::Reset);
        assert_eq!((n.net_latency, n.net_jitter), (1.5, 0.5));
        assert!(InProcessRunner::new(1).unwrap().validate(&s.runs).is_ok());
    }

    #[test]
    fn in_process_validation_names_the_run() {
        let s = spec::parse(
            "[[test]]\nname = \"n\"\nfaults = [\"kill\"]\nnemesis_targets = [\"bridge\"]\n",
            Path::new("x.toml"),
        )
        .unwrap();
        let e = InProcessRunner::new(1)
            .unwrap()
            .validate(&s.runs)
            .unwrap_err();
        assert!(e.starts_with("run n-multi-register-kill-s1: "), "{e}");
        let s = spec::parse(
            "[[test]]\nname = \"m\"\npartition_mode = \"loud\"\n",
            Path::new("x.toml"),
        )
        .unwrap();
        let e = InProcessRunner::new(1)
            .unwrap()
            .validate(&s.runs)
            .unwrap_err();
        assert!(
            e.contains("harness test rejects its arguments") && e.contains("loud"),
            "{e}"
        );
    }
}
