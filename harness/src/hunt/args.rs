//! The options of `harness hunt`, durations as the user types them, and a configuration written
//! back as the `harness test` command line that reproduces it.

use crate::options::{workload_name, DEFAULT_NODE_MAX_NODES};
use crate::schedule::FaultKind;
use crate::test_args::TestArgs;
use anyhow::{bail, Result};
use clap::{parser::ValueSource, ArgMatches};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// `harness hunt`: many short `harness test` runs, each with a configuration drawn at random
/// (swarm testing: every run turns on a random subset of fault kinds, targets, intervals, op
/// timeouts, link latency, workload, variant, node count and concurrency), steered towards
/// configurations that drive the nodes into states not seen yet. Every `harness test` option
/// typed on the command line is fixed for all runs (e.g. `--nodes 5`, `--workload kv`,
/// `-- --bug lease-read`); the others are drawn. `--seed` seeds the whole hunt: the same seed
/// draws the same first configuration and, given the same outcomes, the same sequence.
#[derive(clap::Args, Clone, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct HuntArgs {
    /// Total time of the hunt, e.g. `90s`, `10m`, `1h` or plain seconds. A run that would not
    /// fit is shortened or not started. Shrinking a found failure has its own --shrink-time.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub time: f64,
    /// Keep hunting after a violation (default: stop at the first invalid run).
    #[arg(long)]
    pub all: bool,
    /// How many clusters at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: u32,
    /// Fewest nodes a drawn configuration has (unless --nodes is given).
    #[arg(long, default_value_t = 3)]
    pub min_nodes: usize,
    /// Most nodes a drawn configuration has (unless --nodes is given).
    #[arg(long, default_value_t = 5)]
    pub max_nodes: usize,
    /// Longest main phase of one run, in seconds (unless --time-limit is given).
    #[arg(long, default_value_t = 20.0, value_name = "SECONDS")]
    pub max_run_time: f64,
    /// Time for shrinking a found failure, e.g. `3m`; `0` skips shrinking.
    #[arg(long, default_value = "3m", value_name = "DURATION", value_parser = parse_duration_or_zero)]
    pub shrink_time: f64,
    /// Runs of each shrinking candidate (it is kept if any of them fails).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub shrink_tries: u32,
    /// Reruns of the shrunk configuration to measure how often it reproduces.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub reruns: u32,
    #[command(flatten)]
    pub test: TestArgs,
}

const AFTER_HELP: &str = "\
Every `harness test` option above that you type is fixed for all runs (e.g. --nodes 5, \
--workload kv, --variant multi, -- --bug lease-read); each one you leave out is drawn per run: \
variant, workload, nodes (within --min-nodes..--max-nodes), concurrency, time limit (up to \
--max-run-time), op timeout, fault kinds (each on with probability 1/2), targets, nemesis \
interval, partition mode, link latency. --seed seeds the hunt; each run gets its own seed.
Runs whose node counters reach new buckets are mutated more often (steering). The first invalid \
run stops the hunt (unless --all): its `harness test` command line and --replay form are \
printed, then it is shrunk within --shrink-time. Everything goes to STORE/hunt/<timestamp>/ \
(hunt.json, summary.md, report.html, runs/, shrink/).
Exit codes: 0 nothing found, 1 a violation found, 2 bad input, 3 nothing found but some runs \
unknown, 130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP.";

/// `90`, `90s`, `10m`, `1h`, `1.5m`: seconds, more than zero.
pub fn parse_duration(s: &str) -> Result<f64, String> {
    match parse_duration_or_zero(s)? {
        v if v > 0.0 => Ok(v),
        _ => Err(format!("{s:?}: the duration must be more than zero")),
    }
}

fn parse_duration_or_zero(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let v = match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => v,
        _ => return Err(format!("{s:?} is not a duration (e.g. 90, 90s, 10m, 1h)")),
    };
    let secs = match unit {
        "s" => v,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use s, m or h)")),
    };
    match crate::duration::problem(secs, crate::duration::Unit::Seconds, true) {
        Some(p) => Err(format!("{s:?}: {p}")),
        None => Ok(secs),
    }
}

/// The `harness test` option ids (field names) the user typed, read from clap's matches.
pub fn typed_ids(m: &ArgMatches) -> BTreeSet<String> {
    m.ids()
        .filter(|id| m.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        // Flattened groups (`NemesisArgs`) have ids too; options are the snake_case ones.
        .filter(|id| !id.as_str().chars().any(|c| c.is_ascii_uppercase()))
        .map(|id| id.as_str().to_string())
        .collect()
}

/// The typed option ids of `harness hunt ...` in `argv` (the whole command line).
pub fn typed_in_argv(argv: &[std::ffi::OsString]) -> BTreeSet<String> {
    use clap::Args;
    let Some(pos) = argv.iter().position(|a| a == "hunt") else {
        return BTreeSet::new();
    };
    let cmd = HuntArgs::augment_args(clap::Command::new("hunt"));
    match cmd.try_get_matches_from(&argv[pos..]) {
        Ok(m) => typed_ids(&m),
        Err(_) => BTreeSet::new(),
    }
}

impl HuntArgs {
    /// Bad input the hunt cannot start with; the error names the flag.
    pub fn validate(&self, typed: &BTreeSet<String>) -> Result<()> {
        if self.test.nemesis.replay.is_some() {
            bail!("--replay: a hunt draws its own configurations; replay a run with `harness test --replay`");
        }
        if self.min_nodes == 0 {
            bail!("--min-nodes 0: need at least one node");
        }
        if self.min_nodes > self.max_nodes {
            bail!(
                "--min-nodes {} is above --max-nodes {}: no node count fits",
                self.min_nodes,
                self.max_nodes
            );
        }
        if self.test.node_bin.is_none() && self.max_nodes > DEFAULT_NODE_MAX_NODES {
            bail!(
                "--max-nodes {}: the default node (paxos-node) supports at most \
                 {DEFAULT_NODE_MAX_NODES} nodes",
                self.max_nodes
            );
        }
        if !(self.max_run_time >= 1.0 && self.max_run_time <= crate::duration::MAX_SECS) {
            bail!(
                "--max-run-time {}: must be from 1 to {} seconds (one week)",
                self.max_run_time,
                crate::duration::MAX_SECS
            );
        }
        if self.time < super::MIN_RUN_S + super::RUN_OVERHEAD_S {
            bail!(
                "--time {}s: too short for one run (at least {}s)",
                self.time,
                super::MIN_RUN_S + super::RUN_OVERHEAD_S
            );
        }
        if typed.contains("time_limit") && self.test.time_limit + super::RUN_OVERHEAD_S > self.time
        {
            bail!(
                "--time-limit {} does not fit in --time {}s",
                self.test.time_limit,
                self.time
            );
        }
        // A free --spare is drawn with membership changes (hunt::draw), so check the options
        // as a run would get them.
        let mut test = self.test.clone();
        let membership = test.nemesis.nemesis.0.contains(&FaultKind::Membership);
        if membership && !typed.contains("spare") && test.spare == 0 {
            test.spare = 1;
        }
        test.validate()
    }
}

/// The `harness test` words that rerun `a` (every option that matters, defaults included, so the
/// line stays right if defaults change).
pub fn test_argv(a: &TestArgs) -> Vec<String> {
    let mut w: Vec<String> = Vec::new();
    let mut put = |flag: &str, v: String| {
        w.push(flag.to_string());
        w.push(v);
    };
    put("--nodes", a.nodes.to_string());
    if a.spare > 0 {
        put("--spare", a.spare.to_string());
    }
    match &a.node_bin {
        Some(bin) => put("--node-bin", bin.display().to_string()),
        None => put("--variant", a.variant.as_str().to_string()),
    }
    put("--workload", workload_name(a.workload).to_string());
    put("--concurrency", a.concurrency.to_string());
    if let Some(r) = a.rate {
        put("--rate", r.to_string());
    }
    put("--time-limit", a.time_limit.to_string());
    put("--op-timeout", a.op_timeout.to_string());
    put("--recovery-time", a.recovery_time.to_string());
    put("--check-time-limit", a.check_time_limit.to_string());
    if let Some(m) = a.memory_limit {
        put("--memory-limit", m.to_string());
    }
    if let Some(s) = a.seed {
        put("--seed", s.to_string());
    }
    let n = &a.nemesis;
    put("--nemesis", n.nemesis.to_string());
    put("--nemesis-interval", n.nemesis_interval.to_string());
    put("--nemesis-targets", n.nemesis_targets.to_string());
    if let Some(t) = n.nemesis_turn {
        put("--nemesis-turn", t.to_string());
    }
    put(
        "--partition-mode",
        format!("{:?}", n.partition_mode).to_lowercase(),
    );
    put("--net-latency", n.net_latency.to_string());
    put("--net-jitter", n.net_jitter.to_string());
    put_net(&mut w, &a.net);
    if let Some(h) = &a.hosts.hosts {
        w.extend(["--hosts".into(), h.display().to_string()]);
    }
    if !a.node_args.is_empty() {
        w.push("--".into());
        w.extend(a.node_args.iter().cloned());
    }
    w
}

/// The `--net` words of a run off the default proxies (the packet faults exist only there).
fn put_net(w: &mut Vec<String>, n: &crate::net::NetArgs) {
    if n.net == crate::net::NetMode::Proxy {
        return;
    }
    w.extend(["--net".into(), n.net.as_str().into()]);
    if let Some(s) = &n.net_subnet {
        w.extend(["--net-subnet".into(), s.to_string()]);
    }
    for (flag, v) in [
        ("--net-loss", n.net_loss),
        ("--net-dup", n.net_dup),
        ("--net-rate", n.net_rate),
    ] {
        if v != 0.0 {
            w.extend([flag.into(), v.to_string()]);
        }
    }
}

/// `harness test ...` as one line a shell reads back (words with odd characters quoted).
pub fn command_line(words: &[String]) -> String {
    let quote = |s: &String| {
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./,=:+".contains(c))
        {
            s.clone()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    let mut line = String::from("harness test");
    for w in words {
        line.push(' ');
        line.push_str(&quote(w));
    }
    line
}

/// The store a reproduced run goes to, for the printed command line.
pub fn with_store(mut words: Vec<String>, store: &std::path::Path) -> Vec<String> {
    let at = words.iter().position(|w| w == "--").unwrap_or(words.len());
    words.insert(at, "--store".into());
    words.insert(at + 1, PathBuf::from(store).display().to_string());
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(90.0));
        assert_eq!(parse_duration("90s"), Ok(90.0));
        assert_eq!(parse_duration("10m"), Ok(600.0));
        assert_eq!(parse_duration("1.5h"), Ok(5400.0));
        assert!(parse_duration("0").unwrap_err().contains("more than zero"));
        assert!(parse_duration("abc")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
        assert_eq!(parse_duration_or_zero("0"), Ok(0.0));
    }

    #[test]
    fn test_argv_parses_back_to_the_same_options() {
        let a = TestArgs::from_argv([
            "--nodes",
            "3",
            "--spare",
            "2",
            "--workload",
            "kv",
            "--nemesis",
            "pause,kill",
            "--nemesis-targets",
            "leader,all",
            "--partition-mode",
            "reset",
            "--net-latency",
            "2.5",
            "--seed",
            "7",
            "--op-timeout",
            "0.5",
            "--memory-limit",
            "512",
            "--net",
            "netns",
            "--net-loss",
            "5",
            "--",
            "--bug",
            "lease-read",
        ])
        .unwrap();
        let b = TestArgs::from_argv(test_argv(&a)).unwrap();
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::to_value(&b).unwrap()
        );
        let line = command_line(&with_store(test_argv(&a), std::path::Path::new("results")));
        assert!(
            line.starts_with("harness test --nodes 3 --spare 2 --variant multi"),
            "{line}"
        );
        assert!(
            line.ends_with("--store results -- --bug lease-read"),
            "{line}"
        );
    }

    #[test]
    fn typed_options_are_found_in_the_command_line() {
        let argv: Vec<std::ffi::OsString> = [
            "harness", "hunt", "--time", "1m", "--nodes", "5", "--", "--bug", "x",
        ]
        .iter()
        .map(Into::into)
        .collect();
        let t = typed_in_argv(&argv);
        assert!(t.contains("nodes") && t.contains("node_args"), "{t:?}");
        assert!(
            !t.contains("workload") && !t.contains("concurrency"),
            "{t:?}"
        );
    }
}
