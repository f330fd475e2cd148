//! `harness hunt`: looks for bugs without hand-tuning, by running many short tests back to back
//! in this process (each through [`run_test`], which leaves no process behind), each with its own
//! configuration.
//!
//! - Drawing ([`draw`]): swarm testing. Every option the user did not type is drawn per run, and
//!   list-valued ones (fault kinds, targets) turn each member on with probability ½, so each run
//!   tries a random subset of features; two thirds of the fault draws instead focus on one kind
//!   on the targets that hurt most (kill all, pause the leader, ...). Typed options are fixed. The hunt's `--seed` seeds one
//!   generator that draws every configuration and every run's seed.
//! - Steering ([`coverage`]): node counters from each run's node-stats.json, bucketed, form a
//!   coverage map (availability bucketed per fault kind and target); configurations whose runs
//!   reach new buckets enter a corpus, with more energy the less available the cluster was, and
//!   are mutated (greybox fuzzing with protocol counters as feedback).
//! - Shrinking ([`shrink`]): a found failure is rerun with less (fewer nodes, clients, fault kinds
//!   and windows, a shorter run); each candidate is rerun a few times and kept if it still fails.
//!
//! Bounds: `--time` is the hunt's budget (a run that would not fit is shortened or not started;
//! shrinking has its own `--shrink-time`), one cluster at a time unless `--parallel N`.
//! Exit codes as `harness test`: 0 nothing found, 1 a violation found, 2 bad input or no run
//! could be set up, 3 nothing found but some verdicts were unknown, 128 + signal number when
//! interrupted (130 SIGINT, 143 SIGTERM, 129 SIGHUP).

pub mod args;
pub mod coverage;
pub mod draw;
pub mod record;
pub mod shrink;

use crate::error::SetupError;
use crate::schedule::FaultKind;
use crate::test_args::TestArgs;
use crate::test_cmd::{run_test, RunOutcome};
use anyhow::Result;
use args::{command_line, test_argv, with_store, HuntArgs};
use checker::Verdict;
use coverage::{Coverage, Observed};
use draw::Space;
use rand::rngs::StdRng;
use rand::SeedableRng;
use record::{HuntFile, RunRecord};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// The shortest main phase worth starting.
pub const MIN_RUN_S: f64 = 3.0;
/// What a run costs beyond its main phase and recovery: starting nodes, final reads, checking.
pub const RUN_OVERHEAD_S: f64 = 4.0;

/// `harness hunt` from the command line.
pub fn run(args: HuntArgs) -> Result<u8, SetupError> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let typed = args::typed_in_argv(&argv);
    hunt(args, &typed).map_err(|e| SetupError::new("harness hunt", e))
}

/// The hunt: `typed` holds the ids of the options the user typed (fixed for every run).
pub fn hunt(args: HuntArgs, typed: &BTreeSet<String>) -> Result<u8> {
    args.validate(typed)?;
    let seed = args.test.seed.unwrap_or_else(rand::random);
    let dir = record::create_dir(&args.test.store)?;
    let base = base_args(&args, typed, &dir);
    let (kinds, left_out) = fault_kinds(&args.test);
    let space = Space::new(
        base,
        typed,
        (args.min_nodes, args.max_nodes),
        args.max_run_time,
        kinds.clone(),
    );
    crate::cluster::install_guards();
    let rt = if args.parallel > 1 {
        tokio::runtime::Runtime::new()
    } else {
        crate::test_cmd::runtime()
    }?;
    crate::errln!(
        "harness hunt: seed {seed}, {} s, {} at a time → {}\nharness hunt: fixed: {}; drawn: {}",
        args.time,
        args.parallel,
        dir.display(),
        join(fixed(typed)),
        join(space.free_names())
    );
    if !typed.contains("nemesis") {
        let names = kinds.iter().map(|k| k.name().to_string()).collect();
        crate::errln!("harness hunt: fault kinds drawn: {}", join(names));
        for why in &left_out {
            crate::errln!("harness hunt: not drawn: {why}");
        }
    }
    let hunt = Hunt::new(&args, &space, &dir, seed, typed);
    hunt.write(false);
    std::thread::scope(|s| {
        for _ in 0..args.parallel {
            s.spawn(|| hunt.worker(&rt));
        }
    });
    let mut file = hunt.write(true);
    let code = hunt.exit_code();
    if let Some(found) = file.first_violation.map(|i| file.runs[i].clone()) {
        print_found(&found, &args.test.store);
        if args.shrink_time > 0.0 && !crate::cluster::interrupted() {
            let result = shrink::shrink(&rt, &args, &found, &dir, typed);
            file.shrink = Some(result);
            write_or_warn(&dir, &file);
        }
    }
    crate::errln!(
        "harness hunt: {} runs; report {}",
        file.runs.len(),
        dir.join("report.html").display()
    );
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(code)
}

/// The fault kinds a hunt may draw here, and a line for each left out saying why. Partitions,
/// pauses and kills work everywhere; clock faults need libfaketime and power cuts FUSE, probed
/// once here, so a machine without them still hunts with the rest; membership changes start
/// spare nodes, which `--hosts` does not support yet; packet faults need `--net netns`.
pub fn fault_kinds(test: &TestArgs) -> (Vec<FaultKind>, Vec<String>) {
    let mut kinds = FaultKind::ALL.to_vec();
    let mut left_out = Vec::new();
    let hosts = test.hosts.hosts.is_some();
    if hosts {
        left_out.push("clock, power-cut, membership (not drawn with --hosts)".to_string());
    } else {
        match crate::clock::library() {
            Ok(_) => kinds.push(FaultKind::Clock),
            Err(e) => left_out.push(format!("clock ({e:#})")),
        }
        match crate::power::check() {
            Ok(()) => kinds.push(FaultKind::PowerCut),
            Err(e) => left_out.push(format!("power-cut ({e:#})")),
        }
        kinds.push(FaultKind::Membership);
    }
    if test.net.net == crate::net::NetMode::Netns {
        kinds.extend(FaultKind::PACKET);
    } else if !hosts {
        left_out.push("loss, dup, rate (packet faults need --net netns)".to_string());
    }
    (kinds, left_out)
}

/// The user's options with the hunt's own defaults for what the user did not type: runs store
/// under the hunt folder, shorter recovery and check limits, no progress line.
fn base_args(args: &HuntArgs, typed: &BTreeSet<String>, dir: &Path) -> TestArgs {
    let mut b = args.test.clone();
    b.store = dir.join("runs");
    b.quiet = true;
    b.test_count = 1;
    if !typed.contains("recovery_time") {
        b.recovery_time = 2.0;
    }
    if !typed.contains("check_time_limit") {
        b.check_time_limit = 30.0;
    }
    b
}

/// The typed `harness test` options that fix a run's configuration (as flags).
fn fixed(typed: &BTreeSet<String>) -> Vec<String> {
    const NOT_CONFIG: [&str; 12] = [
        "time",
        "all",
        "parallel",
        "min_nodes",
        "max_nodes",
        "max_run_time",
        "shrink_time",
        "shrink_tries",
        "reruns",
        "seed",
        "store",
        "quiet",
    ];
    typed
        .iter()
        .filter(|id| !NOT_CONFIG.contains(&id.as_str()))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect()
}

fn join(xs: Vec<String>) -> String {
    if xs.is_empty() {
        "nothing".into()
    } else {
        xs.join(", ")
    }
}

/// A run about to start.
struct Job {
    index: usize,
    config: TestArgs,
    parent: Option<usize>,
    started_s: f64,
}

/// What the workers share.
struct State {
    rng: StdRng,
    coverage: Coverage,
    runs: Vec<Option<RunRecord>>,
    first_violation: Option<usize>,
    unknown: usize,
    errors: usize,
    stop: bool,
}

struct Hunt<'a> {
    args: &'a HuntArgs,
    space: &'a Space,
    dir: &'a Path,
    seed: u64,
    typed: &'a BTreeSet<String>,
    started: Instant,
    started_at: String,
    state: Mutex<State>,
}

impl<'a> Hunt<'a> {
    fn new(
        args: &'a HuntArgs,
        space: &'a Space,
        dir: &'a Path,
        seed: u64,
        typed: &'a BTreeSet<String>,
    ) -> Self {
        Hunt {
            args,
            space,
            dir,
            seed,
            typed,
            started: Instant::now(),
            started_at: crate::store::rfc3339_now(),
            state: Mutex::new(State {
                rng: StdRng::seed_from_u64(seed),
                coverage: Coverage::default(),
                runs: Vec::new(),
                first_violation: None,
                unknown: 0,
                errors: 0,
                stop: false,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn worker(&self, rt: &tokio::runtime::Runtime) {
        while let Some(job) = self.next_job() {
            let result = rt.block_on(run_test(&job.config));
            self.finish(job, result);
        }
    }

    /// The next configuration, fitted into the time left; `None` once the hunt should stop.
    fn next_job(&self) -> Option<Job> {
        let mut st = self.state();
        if st.stop || crate::cluster::interrupted() {
            return None;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = self.args.time - elapsed;
        let (parent, mut config) = {
            let State { rng, coverage, .. } = &mut *st;
            let parent = match self.space.opening_due() {
                true => None,
                false => coverage.pick_parent(rng),
            };
            match parent {
                Some((run, p)) => (Some(run), self.space.mutate(&p, rng)),
                None => (None, self.space.draw(rng)),
            }
        };
        if !fit(&mut config, left, self.typed.contains("time_limit")) {
            st.stop = true;
            return None;
        }
        let index = st.runs.len();
        config.name = Some(format!("run-{index:03}"));
        st.runs.push(None);
        Some(Job {
            index,
            config,
            parent,
            started_s: elapsed,
        })
    }

    fn finish(&self, job: Job, result: Result<RunOutcome>) {
        let duration_s = self.started.elapsed().as_secs_f64() - job.started_s;
        let mut st = self.state();
        let mut rec = RunRecord {
            index: job.index,
            started_s: job.started_s,
            duration_s,
            verdict: "error".into(),
            explanation: String::new(),
            run_dir: None,
            features: draw::features(&job.config),
            parent: job.parent,
            new_buckets: 0,
            command: command_line(&with_store(test_argv(&job.config), &self.args.test.store)),
            config: job.config.clone(),
        };
        match result {
            Err(e) => {
                rec.explanation = format!("{e:#}");
                st.errors += 1;
                // A setup error before any run worked (a missing binary, a bad option) repeats.
                if st.runs.iter().flatten().all(|r| r.verdict == "error") {
                    st.stop = true;
                }
            }
            Ok(o) => {
                rec.verdict = verdict_name(o.verdict).into();
                rec.explanation = o.explanation.clone();
                rec.run_dir = Some(o.run_dir.clone());
                let faults = draw::fault_label(&job.config);
                let sig = Observed::read(&o.run_dir, o.availability, o.info).signature(&faults);
                rec.new_buckets =
                    st.coverage
                        .add_weighted(job.index, &job.config, sig, o.availability);
                match o.verdict {
                    Verdict::Invalid => {
                        if st.first_violation.is_none() {
                            st.first_violation = Some(job.index);
                        }
                        if !self.args.all {
                            st.stop = true;
                        }
                    }
                    Verdict::Unknown => st.unknown += 1,
                    Verdict::Valid => {}
                }
                if o.interrupted {
                    st.stop = true;
                }
            }
        }
        crate::errln!(
            "[run {} at {:.0}s] {} in {:.0}s{} · {}{}",
            rec.index,
            rec.started_s,
            rec.verdict,
            rec.duration_s,
            if rec.new_buckets > 0 {
                format!(" (+{} buckets)", rec.new_buckets)
            } else {
                String::new()
            },
            rec.features.join(" "),
            if rec.verdict == "valid" {
                String::new()
            } else {
                format!(": {}", rec.explanation.lines().next().unwrap_or(""))
            }
        );
        st.runs[job.index] = Some(rec);
        drop(st);
        self.write(false);
    }

    fn write(&self, finished: bool) -> HuntFile {
        let st = self.state();
        let file = HuntFile {
            schema_version: 1,
            started: self.started_at.clone(),
            seed: self.seed,
            time_s: self.args.time,
            elapsed_s: self.started.elapsed().as_secs_f64(),
            fixed: fixed(self.typed),
            drawn: self.space.free_names(),
            runs: st.runs.iter().flatten().cloned().collect(),
            first_violation: st.first_violation,
            coverage_buckets: st.coverage.seen.len(),
            finished,
            shrink: None,
        };
        drop(st);
        write_or_warn(self.dir, &file);
        file
    }

    fn exit_code(&self) -> u8 {
        let st = self.state();
        let ran = st
            .runs
            .iter()
            .flatten()
            .filter(|r| r.verdict != "error")
            .count();
        if st.first_violation.is_some() {
            1
        } else if crate::cluster::interrupted() {
            crate::cluster::interrupt_exit_code()
        } else if ran == 0 {
            2
        } else if st.unknown > 0 {
            3
        } else {
            0
        }
    }
}

/// Fits a run into `left` seconds: its main phase is shortened (unless the user fixed it) and
/// the checker's limit capped. False when even the shortest run would not fit.
fn fit(c: &mut TestArgs, left: f64, time_fixed: bool) -> bool {
    let recovery = if c.nemesis.nemesis.0.is_empty() {
        0.0
    } else {
        c.recovery_time
    };
    let room = left - recovery - RUN_OVERHEAD_S;
    if time_fixed {
        if c.time_limit > room {
            return false;
        }
    } else if room < MIN_RUN_S {
        return false;
    } else {
        c.time_limit = c.time_limit.min((room * 10.0).floor() / 10.0);
    }
    c.check_time_limit = c
        .check_time_limit
        .min((left - c.time_limit - recovery - 2.0).max(2.0));
    true
}

pub(super) fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Valid => "valid",
        Verdict::Invalid => "invalid",
        Verdict::Unknown => "unknown",
    }
}

fn write_or_warn(dir: &Path, file: &HuntFile) {
    if let Err(e) = record::write_all(dir, file) {
        crate::errln!("harness hunt: cannot write {}: {e:#}", dir.display());
    }
}

fn print_found(r: &RunRecord, store: &Path) {
    crate::outln!(
        "harness hunt: run {} found a violation: {}",
        r.index,
        r.explanation.lines().next().unwrap_or("")
    );
    crate::outln!("reproduce with:\n  {}", r.command);
    if let Some(d) = &r.run_dir {
        crate::outln!(
            "or replay its exact fault schedule:\n  harness test --replay {} --store {}",
            d.display(),
            PathBuf::from(store).display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_shortened_to_fit_or_not_started() {
        let mut c = TestArgs::from_argv(["--time-limit", "20", "--recovery-time", "2"]).unwrap();
        assert!(fit(&mut c, 100.0, false));
        assert_eq!(c.time_limit, 20.0);
        assert!(fit(&mut c, 16.0, false));
        assert_eq!(c.time_limit, 10.0);
        assert!(c.time_limit + c.check_time_limit + 2.0 + 2.0 <= 16.0);
        assert!(!fit(&mut c, 8.0, false), "3 s of main phase do not fit");
        let mut c = TestArgs::from_argv(["--time-limit", "20"]).unwrap();
        assert!(!fit(&mut c, 20.0, true), "a fixed time limit is never cut");
    }
}
