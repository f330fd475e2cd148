//! The options of `harness test`: parsed from the command line, stored in test.json, read back by
//! `--replay`.

use crate::duration::{self, Unit};
use crate::nemesis::NemesisArgs;
use crate::options::{node_count_problem, parse_workload, workload_name, Variant};
use crate::schedule;
use crate::store;
use anyhow::{bail, Result};
use clap::Parser;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use workloads::Workload;

/// Options of `harness test`. Build one in code with [`TestArgs::from_argv`] or
/// [`TestArgs::default`]. Stored as test.json's `options`; a field missing there (a file from an
/// older harness) takes its command-line default.
#[derive(clap::Args, Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct TestArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Extra nodes started outside the first configuration (n4, n5 after n1..n3 for
    /// `--nodes 3 --spare 2`), for `--nemesis membership` to add; every node is given all
    /// nodes' addresses and the first members (`--members`).
    #[arg(long, default_value_t = 0, value_name = "N")]
    #[serde(skip_serializing_if = "is_zero")]
    pub spare: usize,
    /// Paxos variant, passed to the default node as `--variant`.
    #[arg(long, value_enum, default_value_t = Variant::Multi)]
    pub variant: Variant,
    /// Node binary speaking docs/node-contract.md (default: paxos-node next to the harness).
    #[arg(long, value_name = "PATH")]
    pub node_bin: Option<PathBuf>,
    /// What clients do: kv (many independent keys, each read back from every node at the end,
    /// so a lost or stale write stays visible) or register (one key, constantly overwritten).
    #[arg(long, default_value = "kv", value_parser = parse_workload)]
    pub workload: Workload,
    /// Logical client processes, spread over nodes round-robin. Four per node of the default
    /// five, so a stuck node has reads of its own waiting when it wakes (20 found 30 of 50
    /// seeded-bug runs where 10 found 26; docs/seeded-bugs.md). `--concurrency 10`: the old default.
    #[arg(long, default_value_t = 20)]
    pub concurrency: usize,
    /// Total operations per second over all clients (default: as fast as the nodes answer).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds of the main phase.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub time_limit: f64,
    /// Seconds without a reply after which an operation is recorded `info`. Short, so a client
    /// that gave up on a stuck node asks again while the fault still holds (0.5 found 26 of 50
    /// seeded-bug runs where 1 found 22; docs/seeded-bugs.md). `--op-timeout 1`: the old default.
    #[arg(long, default_value_t = 0.5, value_name = "SECONDS")]
    pub op_timeout: f64,
    /// Seconds to wait after healing every fault before the final reads (none if no fault was
    /// scheduled).
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub recovery_time: f64,
    /// Seconds a node may take to accept client connections at start.
    #[arg(long, default_value_t = 20.0, value_name = "SECONDS")]
    pub ready_timeout: f64,
    /// Random seed (default: random; always recorded in test.json).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where runs are stored.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub store: PathBuf,
    /// Run the test this many times (seed, seed+1, ...).
    #[arg(long, default_value_t = 1)]
    pub test_count: usize,
    /// Test name: the folder under the store (default: <variant>-<workload>, or
    /// <node-bin name>-<workload> with --node-bin).
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds the checker may spend before answering unknown.
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    pub check_time_limit: f64,
    /// Memory for the check's search over all keys at once, in MiB (default 1024); past it,
    /// the verdict is unknown.
    #[arg(long, value_name = "MIB")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<f64>,
    /// Skip the linearizability check (verdict unknown); for benchmarks.
    #[arg(long)]
    pub no_check: bool,
    /// No progress line and no summary (used by suites and benchmarks).
    #[arg(long, hide = true)]
    pub quiet: bool,
    #[command(flatten)]
    #[serde(flatten)]
    pub nemesis: Box<NemesisArgs>,
    #[command(flatten)]
    #[serde(flatten)]
    pub net: crate::net::NetArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub hosts: crate::hosts::remote::HostsRunArgs,
    /// Arguments appended verbatim to every node's command line.
    #[arg(last = true, value_name = "NODE_ARGS")]
    pub node_args: Vec<String>,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

#[derive(Parser)]
struct Standalone {
    #[command(flatten)]
    args: TestArgs,
}

impl TestArgs {
    /// Parses `harness test` options from words, e.g. `["--nodes", "3", "--", "--foo"]`.
    pub fn from_argv<I, S>(argv: I) -> Result<TestArgs, clap::Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        let words = std::iter::once(std::ffi::OsString::from("test"))
            .chain(argv.into_iter().map(Into::into));
        Standalone::try_parse_from(words).map(|s| s.args)
    }

    /// The test name used for the run folder.
    pub fn test_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let w = workload_name(self.workload);
        match &self.node_bin {
            Some(bin) => {
                let stem = bin
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "node".into());
                format!("{stem}-{w}")
            }
            None => format!("{}-{w}", self.variant.as_str()),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.nodes == 0 {
            bail!("--nodes 0: need at least one node");
        }
        if let Some(why) = node_count_problem(self.all_nodes(), self.node_bin.is_none()) {
            match self.spare {
                0 => bail!("--nodes {}: {why}", self.nodes),
                s => bail!("--nodes {} with --spare {s}: {why}", self.nodes),
            }
        }
        self.check_spare()?;
        if self.concurrency == 0 {
            bail!("--concurrency 0: need at least one client");
        }
        if self.test_count == 0 {
            bail!("--test-count 0: need at least one test");
        }
        if let Some(r) = self.rate {
            if !r.is_finite() || r <= 0.0 {
                bail!("--rate {r}: must be a positive number of operations per second");
            }
        }
        self.check_durations().map_err(anyhow::Error::msg)?;
        crate::check_cmd::memory_limit_bytes(self.memory_limit).map_err(anyhow::Error::msg)?;
        self.nemesis.validate()?;
        schedule::check_periods(
            &self.nemesis.nemesis,
            self.time_limit,
            self.nemesis.nemesis_interval,
        )
        .map_err(anyhow::Error::msg)?;
        // A kind this network mode cannot inject is the first thing to say, before timing.
        self.net.validate()?;
        if self.hosts.hosts.is_none() {
            // On SSH hosts the packet rules are written on the hosts themselves.
            self.net.check_nemesis(&self.nemesis.nemesis)?;
        }
        self.check_fit().map_err(anyhow::Error::msg)?;
        store::check_test_name(&self.test_name())
    }

    /// Members and spares together: the nodes the run starts.
    pub fn all_nodes(&self) -> usize {
        self.nodes.saturating_add(self.spare)
    }

    /// The names of the spare nodes, after the members'.
    pub fn spare_ids(&self) -> Vec<String> {
        (self.nodes + 1..=self.all_nodes())
            .map(|i| format!("n{i}"))
            .collect()
    }

    /// Spares and the membership nemesis need each other, and a mode that starts them.
    fn check_spare(&self) -> Result<()> {
        let membership = self
            .nemesis
            .nemesis
            .0
            .contains(&schedule::FaultKind::Membership);
        if membership && self.spare == 0 {
            bail!(
                "--nemesis membership needs --spare 1 or more: the spare nodes are the ones it \
                 adds (e.g. --nodes 3 --spare 2)"
            );
        }
        if self.spare > 0 && self.hosts.hosts.is_some() {
            bail!(
                "--spare {}: spare nodes are not supported with --hosts yet",
                self.spare
            );
        }
        if membership && self.hosts.hosts.is_some() {
            bail!("--nemesis membership is not supported with --hosts yet");
        }
        Ok(())
    }

    /// The time limit fits a window of every fault kind (a replayed schedule is taken as it is).
    fn check_fit(&self) -> Result<(), String> {
        let n = &self.nemesis;
        if n.replay.is_some() {
            return Ok(());
        }
        let ids: Vec<String> = (1..=self.all_nodes()).map(|i| format!("n{i}")).collect();
        let spares = self.spare_ids();
        let plan = schedule::Plan {
            seed: 0,
            nodes: &ids,
            kinds: &n.nemesis,
            targets: &n.nemesis_targets,
            interval_s: n.nemesis_interval,
            time_limit_s: self.time_limit,
            turn: n.nemesis_turn,
            spares: &spares,
        };
        schedule::draw::check_fit(&plan, &n.amounts())
    }

    /// Every duration option, checked against the one bound of [`crate::duration`].
    fn check_durations(&self) -> Result<(), String> {
        let n = &self.nemesis;
        for (flag, v, unit, zero_ok) in [
            ("--time-limit", self.time_limit, Unit::Seconds, false),
            ("--op-timeout", self.op_timeout, Unit::Seconds, false),
            ("--recovery-time", self.recovery_time, Unit::Seconds, true),
            ("--ready-timeout", self.ready_timeout, Unit::Seconds, false),
            (
                "--check-time-limit",
                self.check_time_limit,
                Unit::Seconds,
                false,
            ),
            (
                "--nemesis-interval",
                n.nemesis_interval,
                Unit::Seconds,
                false,
            ),
            ("--net-latency", n.net_latency, Unit::Millis, true),
            ("--net-jitter", n.net_jitter, Unit::Millis, true),
        ] {
            duration::check_flag(flag, v, unit, zero_ok)?;
        }
        Ok(())
    }
}

impl Default for TestArgs {
    fn default() -> Self {
        TestArgs::from_argv(Vec::<String>::new()).expect("defaults parse")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_argv_parse() {
        let d = TestArgs::default();
        assert_eq!((d.nodes, d.concurrency, d.variant), (5, 20, Variant::Multi));
        assert_eq!(d.workload, Workload::Kv);
        assert_eq!(d.nemesis.nemesis_interval, 2.0);
        assert_eq!(d.op_timeout, 0.5);
        assert_eq!(d.test_name(), "multi-kv");
        let r = TestArgs::from_argv(["--workload", "register"]).unwrap();
        assert_eq!(r.test_name(), "multi-register");
        let a =
            TestArgs::from_argv(["--nodes", "3", "--workload", "kv", "--", "--x", "1"]).unwrap();
        assert_eq!(a.nodes, 3);
        assert_eq!(a.workload, Workload::Kv);
        assert_eq!(a.node_args, vec!["--x", "1"]);
        assert!(TestArgs::from_argv(["--workload", "queue"]).is_err());
    }

    #[test]
    fn bad_numbers_name_the_flag() {
        let a = TestArgs::from_argv(["--time-limit=-1"]).unwrap();
        let e = a.validate().unwrap_err().to_string();
        assert!(e.contains("--time-limit"), "{e}");
        let a = TestArgs::from_argv(["--nodes", "0"]).unwrap();
        assert!(a.validate().unwrap_err().to_string().contains("--nodes"));
    }

    #[test]
    fn more_nodes_than_the_default_node_supports_are_refused() {
        assert!(TestArgs::from_argv(["--nodes", "64"])
            .unwrap()
            .validate()
            .is_ok());
        let e = TestArgs::from_argv(["--nodes", "65"])
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--nodes 65: the default node (paxos-node) supports at most 64 nodes"
        );
        let a = TestArgs::from_argv(["--nodes", "65", "--node-bin", "/bin/x"]).unwrap();
        assert!(a.validate().is_ok(), "a third-party node is not limited");
    }
}
