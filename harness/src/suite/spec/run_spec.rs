//! One run of an expanded suite, and the `harness test` arguments it stands for.

use super::format::Expect;
use crate::options::{workload_name, Variant};
use std::path::Path;
use workloads::Workload;

/// A suite run's op timeout where its entry sets none: `harness test`'s default was 1 s when
/// the suites' detection rates were measured, and a suite's outcomes should not move when that
/// default does (it is 0.5 s since 2026-12-03, docs/seeded-bugs.md).
pub const SUITE_OP_TIMEOUT: f64 = 1.0;
/// A suite run's clients where its entry sets none, kept for the same reason (`harness test`
/// has 20 since 2026-12-03).
pub const SUITE_CONCURRENCY: u32 = 10;
/// A suite run's nemesis interval where its entry sets none, kept for the same reason
/// (`harness test` has 2 s since 2026-12-03).
pub const SUITE_NEMESIS_INTERVAL: f64 = 3.0;

/// One run of the expanded matrix: everything `harness test` needs.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    /// Unique within the suite; also the run's folder name.
    pub name: String,
    pub entry: String,
    pub variant: Variant,
    pub workload: Workload,
    /// Fault kinds, in file order; empty means no faults.
    pub faults: Vec<String>,
    pub seed: u64,
    /// 1-based repeat number.
    pub repeat: u32,
    /// Its place among the entry's runs of the same fault set (`--nemesis-turn`), so their
    /// first windows take the targets in turn.
    pub turn: u32,
    pub expect: Expect,
    pub bugs: Vec<String>,
    pub nodes: Option<u32>,
    pub time_limit: Option<f64>,
    pub concurrency: Option<u32>,
    pub rate: Option<f64>,
    pub recovery_time: Option<f64>,
    pub op_timeout: Option<f64>,
    pub nemesis_interval: Option<f64>,
    pub nemesis_targets: Vec<String>,
    pub partition_mode: Option<String>,
    pub net_latency: Option<f64>,
    pub net_jitter: Option<f64>,
    pub check_time_limit: Option<f64>,
    pub node_bin: Option<String>,
    pub node_args: Vec<String>,
    pub harness_args: Vec<String>,
}

impl RunSpec {
    /// The fault set as the nemesis flag spells it, or `none`.
    pub fn faults_label(&self) -> String {
        if self.faults.is_empty() {
            "none".into()
        } else {
            self.faults.join(",")
        }
    }

    /// Arguments for `harness test` (without the subcommand name). `store` is where the run's
    /// folder goes.
    pub fn harness_args(&self, store: &Path) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |flag: &str, v: String| {
            a.push(flag.to_string());
            a.push(v);
        };
        push("--variant", self.variant.as_str().into());
        push("--workload", workload_name(self.workload).into());
        push("--seed", self.seed.to_string());
        push("--nemesis", self.faults_label());
        push("--store", store.display().to_string());
        push("--name", self.name.clone());
        if let Some(n) = self.nodes {
            push("--nodes", n.to_string());
        }
        if let Some(t) = self.time_limit {
            push("--time-limit", secs(t));
        }
        let typed = |f: &str| self.harness_args.iter().any(|x| x.starts_with(f));
        match self.concurrency {
            Some(c) => push("--concurrency", c.to_string()),
            None if !typed("--concurrency") => push("--concurrency", SUITE_CONCURRENCY.to_string()),
            None => {}
        }
        if let Some(r) = self.rate {
            push("--rate", secs(r));
        }
        if let Some(t) = self.recovery_time {
            push("--recovery-time", secs(t));
        }
        match self.op_timeout {
            Some(t) => push("--op-timeout", secs(t)),
            None if !typed("--op-timeout") => push("--op-timeout", secs(SUITE_OP_TIMEOUT)),
            None => {}
        }
        match self.nemesis_interval {
            Some(t) => push("--nemesis-interval", secs(t)),
            None if !typed("--nemesis-interval") => {
                push("--nemesis-interval", secs(SUITE_NEMESIS_INTERVAL))
            }
            None => {}
        }
        if !self.nemesis_targets.is_empty() {
            push("--nemesis-targets", self.nemesis_targets.join(","));
        }
        if !self.faults.is_empty() {
            push("--nemesis-turn", self.turn.to_string());
        }
        if let Some(m) = &self.partition_mode {
            push("--partition-mode", m.clone());
        }
        if let Some(t) = self.net_latency {
            push("--net-latency", secs(t));
        }
        if let Some(t) = self.net_jitter {
            push("--net-jitter", secs(t));
        }
        if let Some(t) = self.check_time_limit {
            push("--check-time-limit", secs(t));
        }
        if let Some(b) = &self.node_bin {
            push("--node-bin", b.clone());
        }
        a.extend(self.harness_args.iter().cloned());
        let node_args = self.node_argv();
        if !node_args.is_empty() {
            a.push("--".into());
            a.extend(node_args);
        }
        a
    }

    /// Extra arguments for the node: the user's, then one `--bug NAME` per seeded bug.
    pub fn node_argv(&self) -> Vec<String> {
        let mut v = self.node_args.clone();
        for b in &self.bugs {
            v.push("--bug".into());
            v.push(b.clone());
        }
        v
    }
}

/// Seconds (or ops/s) as the shortest decimal that round-trips.
fn secs(x: f64) -> String {
    format!("{x}")
}
