//! Shrinking a found failure by re-running it. The system is nondeterministic, so a candidate
//! (the configuration with something taken away) is run up to `--shrink-tries` times and kept
//! as soon as one run is invalid; a candidate that never fails is dropped. In order:
//!
//! 1. less of the cluster: fewer nodes (down to 3), half the clients, each fault kind left out,
//!    no link latency. These change the schedule, which is drawn again from the run's seed.
//! 2. fewer fault windows: the failing run's schedule.json, edited (halves, then quarters, ...,
//!    then single windows left out, as in delta debugging) and run with `--replay`.
//! 3. a shorter run: the main phase cut to just after the last window, then halved.
//! 4. only the keys involved: the failing key's events (and the nemesis's) from the last failing
//!    run, checked again on their own, so the history to read is one key's, not the run's.
//!
//! Options the user typed are left alone. The result is rerun `--reruns` times for its
//! reproduction rate (if it reproduces in none, shrinking backs off once to the configuration
//! before the last kept step, since a step kept on one lucky run can go too far), and stored in `shrink/` of the hunt folder: `shrink.json`, and `final/`, a
//! folder `harness test --replay` takes.

use super::args::{command_line, test_argv, with_store, HuntArgs};
use super::record::RunRecord;
use super::{MIN_RUN_S, RUN_OVERHEAD_S};
use crate::schedule::Schedule;
use crate::test_args::TestArgs;
use crate::test_cmd::run_test;
use checker::Verdict;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One candidate tried.
#[derive(Clone, Debug, Serialize)]
struct Step {
    what: String,
    runs: usize,
    kept: bool,
}

struct Shrinker<'a> {
    rt: &'a tokio::runtime::Runtime,
    dir: PathBuf,
    tries: u32,
    /// No candidate starts after this (the reruns have time reserved after it).
    deadline: Instant,
    steps: Vec<Step>,
    candidates: usize,
    out_of_time: bool,
    /// The current smallest failing configuration, its failing run, and its schedule when the
    /// windows were edited (run with --replay).
    cur: TestArgs,
    cur_run: PathBuf,
    replay: bool,
    /// The states before each kept step, to back off to.
    kept: Vec<(TestArgs, PathBuf, bool)>,
}

/// Shrinks `found` within `--shrink-time`; returns what shrink.json holds.
pub fn shrink(
    rt: &tokio::runtime::Runtime,
    args: &HuntArgs,
    found: &RunRecord,
    hunt_dir: &Path,
    typed: &BTreeSet<String>,
) -> Value {
    let dir = hunt_dir.join("shrink");
    let t0 = Instant::now();
    let Some(run_dir) = found.run_dir.clone() else {
        return json!({"error": "the failing run left no folder"});
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return json!({"error": format!("cannot create {}: {e}", dir.display())});
    }
    let mut cur = found.config.clone();
    cur.store = dir.join("runs");
    let reserve = args.reruns as f64 * (cur.time_limit + cur.recovery_time + RUN_OVERHEAD_S);
    let budget = (args.shrink_time - reserve).max(0.0);
    crate::errln!(
        "harness hunt: shrinking run {} ({:.0} s, then {} reruns)",
        found.index,
        budget,
        args.reruns
    );
    let mut s = Shrinker {
        rt,
        dir: dir.clone(),
        tries: args.shrink_tries,
        deadline: t0 + Duration::from_secs_f64(budget),
        steps: Vec::new(),
        candidates: 0,
        out_of_time: false,
        cur,
        cur_run: run_dir,
        replay: false,
        kept: Vec::new(),
    };
    let windows_before = windows(&s.cur_run).len();
    s.smaller_cluster(typed);
    s.fewer_windows();
    s.shorter(typed);
    let (mut final_dir, mut command) = s.write_final(&args.test.store);
    let mut failed = s.reruns(args.reruns);
    // A candidate is kept on one failing run, so a rare failure can shrink too far: back off
    // once to the configuration before the last step kept.
    if failed == 0 && !crate::cluster::interrupted() {
        if let Some(prev) = s.kept.pop() {
            crate::errln!(
                "harness hunt: the shrunk configuration did not reproduce; backing off one step"
            );
            (s.cur, s.cur_run, s.replay) = prev;
            (final_dir, command) = s.write_final(&args.test.store);
            failed = s.reruns(args.reruns);
        }
    }
    let keys = involved_keys(&s.cur_run, &dir.join("final"));
    let rate = format!("{failed}/{}", args.reruns);
    crate::outln!("harness hunt: shrunk configuration (reproduced {rate}):\n  {command}");
    let out = json!({
        "original": found.command,
        "command": command,
        "replay_dir": final_dir,
        "rate": rate,
        "reproduced": failed,
        "reruns": args.reruns,
        "windows_before": windows_before,
        "windows_after": windows(&s.cur_run).len(),
        "keys": keys,
        "config": s.cur,
        "steps": s.steps,
        "time_s": t0.elapsed().as_secs_f64(),
    });
    let text = serde_json::to_string_pretty(&out).unwrap_or_default();
    if let Err(e) = std::fs::write(dir.join("shrink.json"), text + "\n") {
        crate::errln!("harness hunt: cannot write shrink.json: {e}");
    }
    out
}

/// Step 4: the failing key of `run_dir`'s check, its events (with the nemesis's, as the report
/// wrote them to `history-key-K.jsonl`) copied to `final/history-involved.jsonl`, and that
/// history checked again alone. Null for the single register (one key: nothing to cut).
fn involved_keys(run_dir: &Path, final_dir: &Path) -> Value {
    let results: Value = std::fs::read_to_string(run_dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let Some(key) = results["check"]["counterexample"]["key"].as_str() else {
        return Value::Null;
    };
    let total = results["events"].as_u64();
    let from = run_dir.join(report::key_history_file(key));
    let to = final_dir.join("history-involved.jsonl");
    if let Err(e) = std::fs::create_dir_all(final_dir).and_then(|_| std::fs::copy(&from, &to)) {
        return json!({"keys": [key], "error": format!("cannot copy {}: {e}", from.display())});
    }
    let verdict = recheck(&to);
    let events = std::fs::read_to_string(&to).map_or(0, |t| t.lines().count());
    crate::errln!(
        "harness hunt: shrink: only key {key}: {events} events of {}, {verdict} on their own ({})",
        total.map_or("?".into(), |t| t.to_string()),
        to.display()
    );
    json!({"keys": [key], "history": to, "events": events, "events_before": total,
           "verdict": verdict})
}

/// The verdict of a history file on its own (its model from its contents).
fn recheck(path: &Path) -> String {
    let opts = checker::formats::ImportOptions::default();
    let h = match checker::formats::import_file(path, None, &opts) {
        Ok(h) => h,
        Err(e) => return format!("unreadable: {e}"),
    };
    let budget = checker::CheckOptions {
        time_limit: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    match workloads::models::check_with(h.model, &h.init, &h.events, &budget) {
        Ok(r) => super::verdict_name(r.verdict).to_string(),
        Err(e) => format!("error: {e}"),
    }
}

fn windows(run_dir: &Path) -> Vec<crate::schedule::Window> {
    Schedule::load(&run_dir.join("schedule.json"))
        .map(|s| s.windows)
        .unwrap_or_default()
}

impl Shrinker<'_> {
    /// Reruns the current configuration `n` times; how many came out invalid.
    fn reruns(&self, n: u32) -> u32 {
        let mut failed = 0;
        for i in 0..n {
            if crate::cluster::interrupted() {
                break;
            }
            let fails = self.run_once(&self.cur).is_some();
            failed += fails as u32;
            let v = if fails { "invalid" } else { "not invalid" };
            crate::errln!("harness hunt: rerun {}/{n}: {v}", i + 1);
        }
        failed
    }

    /// Runs `c` once; the run folder if it came out invalid.
    fn run_once(&self, c: &TestArgs) -> Option<PathBuf> {
        match self.rt.block_on(run_test(c)) {
            Ok(o) if o.verdict == Verdict::Invalid => Some(o.run_dir),
            Ok(_) => None,
            Err(e) => {
                crate::errln!("harness hunt: shrinking run failed: {e:#}");
                None
            }
        }
    }

    /// Tries `c` up to `tries` times; keeps it (and its failing run) on the first failure.
    fn attempt(&mut self, what: String, c: TestArgs) -> bool {
        let cost = c.time_limit + c.recovery_time + RUN_OVERHEAD_S;
        if self.out_of_time {
            return false;
        }
        let mut runs = 0;
        let mut kept = None;
        for _ in 0..self.tries {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.as_secs_f64() < cost || crate::cluster::interrupted() {
                break;
            }
            runs += 1;
            if let Some(d) = self.run_once(&c) {
                kept = Some(d);
                break;
            }
        }
        crate::errln!(
            "harness hunt: shrink: {what}: {}",
            match (&kept, runs) {
                (Some(_), _) => "still fails, kept".to_string(),
                (None, 0) => {
                    self.out_of_time = true;
                    "no time left, shrinking stops here".to_string()
                }
                (None, n) => format!("passed {n} time(s), dropped"),
            }
        );
        self.steps.push(Step {
            what,
            runs,
            kept: kept.is_some(),
        });
        match kept {
            Some(d) => {
                let prev = std::mem::replace(&mut self.cur, c);
                let prev_run = std::mem::replace(&mut self.cur_run, d);
                self.kept.push((prev, prev_run, self.replay));
                true
            }
            None => false,
        }
    }

    fn smaller_cluster(&mut self, typed: &BTreeSet<String>) {
        let free = |id: &str| !typed.contains(id);
        while free("nodes") && self.cur.nodes > 3 {
            let mut c = self.cur.clone();
            c.nodes = (c.nodes - 2).max(3);
            if !self.attempt(format!("{} nodes", c.nodes), c) {
                break;
            }
        }
        while free("concurrency") && self.cur.concurrency > 1 {
            let mut c = self.cur.clone();
            c.concurrency /= 2;
            if !self.attempt(format!("{} clients", c.concurrency), c) {
                break;
            }
        }
        if free("nemesis") {
            for k in self.cur.nemesis.nemesis.0.clone() {
                let mut c = self.cur.clone();
                c.nemesis.nemesis.0.retain(|x| *x != k);
                self.attempt(format!("without {k}"), c);
            }
        }
        if free("net_latency") && self.cur.nemesis.net_latency > 0.0 {
            let mut c = self.cur.clone();
            (c.nemesis.net_latency, c.nemesis.net_jitter) = (0.0, 0.0);
            self.attempt("no link latency".into(), c);
        }
    }

    /// A candidate that replays `windows` of the current run's schedule.
    fn replay_candidate(&mut self, sched: &Schedule, c: &TestArgs) -> Option<TestArgs> {
        self.candidates += 1;
        let dir = self.dir.join(format!("cand-{:03}", self.candidates));
        let mut c = c.clone();
        c.nemesis.replay = None;
        if let Err(e) = write_replay_dir(&dir, &c, sched) {
            crate::errln!("harness hunt: shrink: {e}");
            return None;
        }
        c.nemesis.replay = Some(dir);
        Some(c)
    }

    fn fewer_windows(&mut self) {
        let Ok(mut sched) = Schedule::load(&self.cur_run.join("schedule.json")) else {
            return;
        };
        let mut chunk = sched.windows.len().div_ceil(2);
        while chunk >= 1 && !sched.windows.is_empty() {
            let mut i = 0;
            while i < sched.windows.len() {
                let mut cand = sched.clone();
                let end = (i + chunk).min(cand.windows.len());
                cand.windows.drain(i..end);
                let what = format!(
                    "without windows {}..{} of {}",
                    i + 1,
                    end,
                    sched.windows.len()
                );
                let Some(c) = self.replay_candidate(&cand, &self.cur.clone()) else {
                    return;
                };
                if self.attempt(what, c) {
                    sched = cand;
                    self.replay = true;
                } else {
                    i += chunk;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }

    fn shorter(&mut self, typed: &BTreeSet<String>) {
        if typed.contains("time_limit") {
            return;
        }
        loop {
            let sched = Schedule::load(&self.cur_run.join("schedule.json")).ok();
            let last_stop = sched
                .as_ref()
                .and_then(|s| s.windows.iter().map(|w| w.stop_s).reduce(f64::max))
                .unwrap_or(0.0);
            let cut = (last_stop + 1.0).ceil().max(MIN_RUN_S);
            let t = self.cur.time_limit;
            let target = if cut < t { cut } else { (t / 2.0).floor() };
            if target < MIN_RUN_S || target >= t {
                return;
            }
            let mut c = self.cur.clone();
            c.time_limit = target;
            let c = match (&sched, self.replay) {
                (Some(s), true) => {
                    let mut s = s.clone();
                    s.windows.retain(|w| w.start_s < target);
                    for w in &mut s.windows {
                        w.stop_s = w.stop_s.min(target);
                    }
                    s.time_limit_s = target;
                    match self.replay_candidate(&s, &c) {
                        Some(c) => c,
                        None => return,
                    }
                }
                _ => c,
            };
            if !self.attempt(format!("{target} s main phase"), c) {
                return;
            }
        }
    }

    /// `shrink/final/`: the shrunk configuration as a folder `--replay` takes; and the command
    /// line that reproduces it.
    fn write_final(&mut self, store: &Path) -> (PathBuf, String) {
        let dir = self.dir.join("final");
        let sched = Schedule::load(&self.cur_run.join("schedule.json")).ok();
        let mut c = self.cur.clone();
        c.nemesis.replay = None;
        if let Some(s) = &sched {
            if let Err(e) = write_replay_dir(&dir, &c, s) {
                crate::errln!("harness hunt: shrink: {e}");
            }
        }
        let replay_line = format!(
            "harness test --replay {} --store {}",
            dir.display(),
            store.display()
        );
        let line = if self.replay {
            self.cur.nemesis.replay = Some(dir.clone());
            replay_line
        } else {
            command_line(&with_store(test_argv(&c), store))
        };
        (dir, line)
    }
}

/// A folder `--replay` reads: test.json with the options, and schedule.json.
fn write_replay_dir(dir: &Path, c: &TestArgs, sched: &Schedule) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let test = json!({"options": c});
    let text = serde_json::to_string_pretty(&test).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("test.json"), text + "\n")
        .map_err(|e| format!("cannot write {}/test.json: {e}", dir.display()))?;
    sched.save(&dir.join("schedule.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_dir_reads_back_as_the_same_options_and_schedule() {
        let dir = std::env::temp_dir().join(format!("hunt-shrink-{}", std::process::id()));
        let c = TestArgs::from_argv(["--nodes", "3", "--seed", "4", "--", "--bug", "x"]).unwrap();
        let ids: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let n = &c.nemesis;
        let sched = crate::schedule::generate(&crate::schedule::Plan {
            seed: 4,
            nodes: &ids,
            kinds: &n.nemesis,
            targets: &n.nemesis_targets,
            interval_s: 2.0,
            time_limit_s: 20.0,
            turn: None,
            spares: &[],
        })
        .unwrap();
        write_replay_dir(&dir, &c, &sched).unwrap();
        let mut typed = TestArgs::default();
        typed.nemesis.replay = Some(dir.clone());
        let back = crate::replay::replay_args(typed).unwrap();
        assert_eq!((back.nodes, back.seed), (3, Some(4)));
        assert_eq!(back.node_args, ["--bug", "x"]);
        assert_eq!(Schedule::load(&dir.join("schedule.json")).unwrap(), sched);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
