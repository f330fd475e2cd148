//! Suite files: parsing, validation and matrix expansion.
//!
//! ```toml
//! [suite]
//! name = "smoke"                  # default: the file's stem
//!
//! [defaults]                      # shared by every [[test]]; each entry may override any field
//! nodes = 3
//! time_limit = 10                 # seconds
//! seeds = [1, 2]
//!
//! [[test]]
//! name = "faults"
//! variants = ["basic", "multi"]
//! workloads = ["register", "kv"]
//! faults = ["partition", "pause", "kill", "partition,pause,kill"]
//! expect = "valid"                # or "invalid" for seeded-bug entries
//! ```
//!
//! Each entry expands to variants × workloads × fault sets × seeds × repeats runs. Every problem is
//! reported as `FILE:LINE:COL: [[test]] "name" (entry N), field `f`: what is wrong`.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use workloads::Workload;

/// The fault kinds the nemesis knows (`--nemesis a,b,c`).
pub const FAULT_KINDS: &[&str] = &["partition", "pause", "kill"];

/// The seeded bugs of `paxos-node` (docs/seeded-bugs.md); `lease-read` exists only in multi.
pub const BUGS: &[&str] = &[
    "volatile-acceptor",
    "ignore-promised-value",
    "accept-below-promise",
    "local-read",
    "lease-read",
];

/// The harness's default cluster size, used to judge whether a fault can happen at all.
const DEFAULT_NODES: u32 = 5;

pub use crate::options::Variant;

/// What a run is expected to conclude.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    #[default]
    Valid,
    Invalid,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Valid => "valid",
            Expect::Invalid => "invalid",
        }
    }
}

/// The fields shared by `[defaults]` and `[[test]]`. Every one is optional in the file; an entry's
/// value wins over the default's.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    name: Option<String>,
    description: Option<String>,
    variants: Option<Vec<Variant>>,
    workloads: Option<Vec<Workload>>,
    faults: Option<Vec<String>>,
    seeds: Option<Vec<u64>>,
    repeats: Option<u32>,
    expect: Option<Expect>,
    nodes: Option<u32>,
    time_limit: Option<f64>,
    concurrency: Option<u32>,
    rate: Option<f64>,
    recovery_time: Option<f64>,
    op_timeout: Option<f64>,
    nemesis_interval: Option<f64>,
    nemesis_targets: Option<Vec<String>>,
    partition_mode: Option<String>,
    net_latency: Option<f64>,
    net_jitter: Option<f64>,
    check_time_limit: Option<f64>,
    node_bin: Option<String>,
    node_args: Option<Vec<String>>,
    bugs: Option<Vec<String>>,
    /// Passed verbatim to `harness test`, for options this file format does not name.
    harness_args: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    name: Option<String>,
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    suite: Meta,
    #[serde(default)]
    defaults: Fields,
    #[serde(default, rename = "test")]
    tests: Vec<Fields>,
}

/// A parsed, validated suite.
#[derive(Clone, Debug)]
pub struct Suite {
    pub name: String,
    pub description: Option<String>,
    pub file: PathBuf,
    pub runs: Vec<RunSpec>,
}

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
        if let Some(c) = self.concurrency {
            push("--concurrency", c.to_string());
        }
        if let Some(r) = self.rate {
            push("--rate", secs(r));
        }
        if let Some(t) = self.recovery_time {
            push("--recovery-time", secs(t));
        }
        if let Some(t) = self.op_timeout {
            push("--op-timeout", secs(t));
        }
        if let Some(t) = self.nemesis_interval {
            push("--nemesis-interval", secs(t));
        }
        if !self.nemesis_targets.is_empty() {
            push("--nemesis-targets", self.nemesis_targets.join(","));
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

pub fn workload_name(w: Workload) -> &'static str {
    match w {
        Workload::Register => "register",
        Workload::Kv => "kv",
    }
}

/// Seconds (or ops/s) as the shortest decimal that round-trips.
fn secs(x: f64) -> String {
    format!("{x}")
}

/// A problem in a suite file, with as much of a location as is known.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub file: PathBuf,
    pub line: Option<u32>,
    pub col: Option<u32>,
    /// e.g. `[[test]] "partition" (entry 2)` or `[defaults]`.
    pub entry: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.col {
                write!(f, ":{c}")?;
            }
        }
        f.write_str(": ")?;
        match (&self.entry, &self.field) {
            (Some(e), Some(k)) => write!(f, "{e}, field `{k}`: ")?,
            (Some(e), None) => write!(f, "{e}: ")?,
            (None, Some(k)) => write!(f, "field `{k}`: ")?,
            (None, None) => {}
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

/// Reads and parses a suite file.
pub fn load(path: &Path) -> Result<Suite, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| SpecError {
        file: path.to_path_buf(),
        line: None,
        col: None,
        entry: None,
        field: None,
        message: format!("cannot read the suite file: {e}"),
    })?;
    parse(&text, path)
}

/// Parses suite text; `path` names the file in errors and gives the default suite name.
pub fn parse(text: &str, path: &Path) -> Result<Suite, SpecError> {
    let src = Source { text, path };
    // Syntax first, untyped, so typed errors can name the entry they are in.
    let table: toml::Table = toml::from_str(text).map_err(|e| src.toml_error(&e, None))?;
    let file: File = toml::from_str(text).map_err(|e| src.toml_error(&e, Some(&table)))?;

    let name = match &file.suite.name {
        Some(n) => {
            check_name(n).map_err(|m| src.error(Region::Suite, Some("name"), m))?;
            n.clone()
        }
        None => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            check_name(&stem).map_err(|m| {
                src.error(
                    Region::Suite,
                    None,
                    format!("the file name cannot be a suite name ({m}); set [suite] name"),
                )
            })?;
            stem
        }
    };
    for key in ["name", "description"] {
        let present = match key {
            "name" => file.defaults.name.is_some(),
            _ => file.defaults.description.is_some(),
        };
        if present {
            return Err(src.error(
                Region::Defaults,
                Some(key),
                format!("`{key}` belongs in a [[test]] entry, not in [defaults]"),
            ));
        }
    }
    if file.tests.is_empty() {
        return Err(src.error(
            Region::Suite,
            None,
            "the suite has no [[test]] entries".into(),
        ));
    }

    let mut runs = Vec::new();
    let mut entry_names = BTreeSet::new();
    for (i, entry) in file.tests.iter().enumerate() {
        let region = Region::Entry(i);
        let entry_name = entry
            .name
            .clone()
            .ok_or_else(|| src.error(region, None, "missing field `name`".into()))?;
        check_name(&entry_name).map_err(|m| src.error(region, Some("name"), m))?;
        if !entry_names.insert(entry_name.clone()) {
            return Err(src.error(
                region,
                Some("name"),
                format!("another entry is already named \"{entry_name}\""),
            ));
        }
        runs.extend(expand(&src, i, &entry_name, entry, &file.defaults)?);
    }
    let mut seen = BTreeSet::new();
    for r in &runs {
        if !seen.insert(r.name.clone()) {
            return Err(src.error(
                Region::Suite,
                None,
                format!("two runs would both be named \"{}\"", r.name),
            ));
        }
    }
    Ok(Suite {
        name,
        description: file.suite.description,
        file: path.to_path_buf(),
        runs,
    })
}

/// Names become folder names: keep them plain.
fn check_name(n: &str) -> Result<(), String> {
    if n.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = n
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '.'))
    {
        return Err(format!(
            "\"{n}\" contains {c:?}; use letters, digits, '-', '_' or '.'"
        ));
    }
    if n.starts_with('.') {
        return Err(format!("\"{n}\" must not start with '.'"));
    }
    Ok(())
}

/// An entry's value if it set one, else the default's.
fn pick<T: Clone>(e: &Option<T>, d: &Option<T>) -> Option<T> {
    e.clone().or_else(|| d.clone())
}

fn expand(
    src: &Source,
    index: usize,
    entry_name: &str,
    e: &Fields,
    d: &Fields,
) -> Result<Vec<RunSpec>, SpecError> {
    let err = |field: &str, msg: String| src.error(Region::Entry(index), Some(field), msg);

    let variants = pick(&e.variants, &d.variants).unwrap_or_else(|| vec![Variant::Multi]);
    let workloads = pick(&e.workloads, &d.workloads).unwrap_or_else(|| vec![Workload::Register]);
    let fault_sets = pick(&e.faults, &d.faults).unwrap_or_else(|| vec!["none".into()]);
    let seeds = pick(&e.seeds, &d.seeds).unwrap_or_else(|| vec![1]);
    let repeats = pick(&e.repeats, &d.repeats).unwrap_or(1);
    let expect = pick(&e.expect, &d.expect).unwrap_or_default();
    let bugs = pick(&e.bugs, &d.bugs).unwrap_or_default();
    let node_bin = pick(&e.node_bin, &d.node_bin);
    let nodes = pick(&e.nodes, &d.nodes);

    for (field, empty) in [
        ("variants", variants.is_empty()),
        ("workloads", workloads.is_empty()),
        ("faults", fault_sets.is_empty()),
        ("seeds", seeds.is_empty()),
    ] {
        if empty {
            return Err(err(
                field,
                "is empty, so the entry would run nothing (list at least one)".into(),
            ));
        }
    }
    no_duplicates(&variants, |v| v.as_str().to_string()).map_err(|m| err("variants", m))?;
    no_duplicates(&workloads, |w| workload_name(*w).to_string())
        .map_err(|m| err("workloads", m))?;
    no_duplicates(&seeds, |s| s.to_string()).map_err(|m| err("seeds", m))?;
    if repeats == 0 {
        return Err(err(
            "repeats",
            "must be at least 1 (0 would run nothing)".into(),
        ));
    }
    if let Some(n) = nodes {
        if n == 0 {
            return Err(err("nodes", "must be at least 1".into()));
        }
    }
    positive(pick(&e.time_limit, &d.time_limit), false).map_err(|m| err("time_limit", m))?;
    positive(pick(&e.rate, &d.rate), false).map_err(|m| err("rate", m))?;
    positive(pick(&e.op_timeout, &d.op_timeout), false).map_err(|m| err("op_timeout", m))?;
    positive(pick(&e.nemesis_interval, &d.nemesis_interval), false)
        .map_err(|m| err("nemesis_interval", m))?;
    positive(pick(&e.recovery_time, &d.recovery_time), true)
        .map_err(|m| err("recovery_time", m))?;
    positive(pick(&e.net_latency, &d.net_latency), true).map_err(|m| err("net_latency", m))?;
    positive(pick(&e.net_jitter, &d.net_jitter), true).map_err(|m| err("net_jitter", m))?;
    positive(pick(&e.check_time_limit, &d.check_time_limit), false)
        .map_err(|m| err("check_time_limit", m))?;
    if pick(&e.concurrency, &d.concurrency) == Some(0) {
        return Err(err("concurrency", "must be at least 1".into()));
    }

    let mut parsed_faults: Vec<Vec<String>> = Vec::new();
    for set in &fault_sets {
        let kinds = parse_fault_set(set).map_err(|m| err("faults", m))?;
        let cluster = nodes.unwrap_or(DEFAULT_NODES);
        if kinds.iter().any(|k| k == "partition") && cluster < 2 {
            return Err(err(
                "faults",
                format!("\"{set}\" cuts links, but a {cluster}-node cluster has none (nodes >= 2)"),
            ));
        }
        if parsed_faults.contains(&kinds) {
            return Err(err(
                "faults",
                format!("fault set \"{set}\" is listed twice"),
            ));
        }
        parsed_faults.push(kinds);
    }

    no_duplicates(&bugs, |b| b.clone()).map_err(|m| err("bugs", m))?;
    if node_bin.is_none() {
        for b in &bugs {
            if !BUGS.contains(&b.as_str()) {
                return Err(err(
                    "bugs",
                    format!(
                        "unknown seeded bug \"{b}\" (paxos-node has: {})",
                        BUGS.join(", ")
                    ),
                ));
            }
            if b == "lease-read" && variants.contains(&Variant::Basic) {
                return Err(err(
                    "bugs",
                    "\"lease-read\" exists only in the multi variant, but variants include \"basic\""
                        .into(),
                ));
            }
        }
        if expect == Expect::Invalid && bugs.is_empty() {
            return Err(err(
                "expect",
                "\"invalid\" needs a seeded bug (bugs = [...]) or a custom node_bin: \
                 the default node is expected to be correct"
                    .into(),
            ));
        }
    }

    let mut runs = Vec::new();
    for &variant in &variants {
        for &workload in &workloads {
            for kinds in &parsed_faults {
                for &seed in &seeds {
                    for repeat in 1..=repeats {
                        let fault_slug = if kinds.is_empty() {
                            "none".to_string()
                        } else {
                            kinds.join("+")
                        };
                        let mut name = format!(
                            "{entry_name}-{}-{}-{fault_slug}-s{seed}",
                            variant.as_str(),
                            workload_name(workload)
                        );
                        if repeats > 1 {
                            name.push_str(&format!("-r{repeat}"));
                        }
                        runs.push(RunSpec {
                            name,
                            entry: entry_name.to_string(),
                            variant,
                            workload,
                            faults: kinds.clone(),
                            seed,
                            repeat,
                            expect,
                            bugs: bugs.clone(),
                            nodes,
                            time_limit: pick(&e.time_limit, &d.time_limit),
                            concurrency: pick(&e.concurrency, &d.concurrency),
                            rate: pick(&e.rate, &d.rate),
                            recovery_time: pick(&e.recovery_time, &d.recovery_time),
                            op_timeout: pick(&e.op_timeout, &d.op_timeout),
                            nemesis_interval: pick(&e.nemesis_interval, &d.nemesis_interval),
                            nemesis_targets: pick(&e.nemesis_targets, &d.nemesis_targets)
                                .unwrap_or_default(),
                            partition_mode: pick(&e.partition_mode, &d.partition_mode),
                            net_latency: pick(&e.net_latency, &d.net_latency),
                            net_jitter: pick(&e.net_jitter, &d.net_jitter),
                            check_time_limit: pick(&e.check_time_limit, &d.check_time_limit),
                            node_bin: node_bin.clone(),
                            node_args: pick(&e.node_args, &d.node_args).unwrap_or_default(),
                            harness_args: pick(&e.harness_args, &d.harness_args)
                                .unwrap_or_default(),
                        });
                    }
                }
            }
        }
    }
    Ok(runs)
}

/// `"none"` → no faults; `"partition,kill"` → both.
fn parse_fault_set(set: &str) -> Result<Vec<String>, String> {
    let s = set.trim();
    if s == "none" {
        return Ok(Vec::new());
    }
    if s.is_empty() {
        return Err("an empty fault set; write \"none\" for a run without faults".into());
    }
    let mut kinds: Vec<String> = Vec::new();
    for part in s.split(',').map(str::trim) {
        if part == "none" {
            return Err(format!(
                "\"{set}\" mixes \"none\" with faults; \"none\" stands alone"
            ));
        }
        if !FAULT_KINDS.contains(&part) {
            return Err(format!(
                "unknown fault \"{part}\" in \"{set}\" (known: {}, or \"none\")",
                FAULT_KINDS.join(", ")
            ));
        }
        if kinds.iter().any(|k| k == part) {
            return Err(format!("\"{set}\" names \"{part}\" twice"));
        }
        kinds.push(part.to_string());
    }
    Ok(kinds)
}

fn no_duplicates<T>(items: &[T], show: impl Fn(&T) -> String) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for i in items {
        let s = show(i);
        if !seen.insert(s.clone()) {
            return Err(format!("lists {s} twice"));
        }
    }
    Ok(())
}

fn positive(v: Option<f64>, zero_ok: bool) -> Result<(), String> {
    match v {
        Some(x) if !x.is_finite() => Err(format!("must be a finite number, not {x}")),
        Some(x) if zero_ok && x < 0.0 => Err(format!("must not be negative, not {x}")),
        Some(x) if !zero_ok && x <= 0.0 => Err(format!("must be greater than 0, not {x}")),
        _ => Ok(()),
    }
}

#[derive(Clone, Copy)]
enum Region {
    Suite,
    Defaults,
    Entry(usize),
}

/// The file's text, for turning byte offsets and field names into lines.
struct Source<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Source<'_> {
    fn line_col(&self, offset: usize) -> (u32, u32) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line as u32, col as u32)
    }

    /// Every table header: its byte offset and its text without blanks (`[[test]]`).
    fn headers(&self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut off = 0;
        for line in self.text.split_inclusive('\n') {
            let t: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            if t.starts_with('[') {
                let head = t.split('#').next().unwrap_or("").to_string();
                out.push((off, head));
            }
            off += line.len();
        }
        out
    }

    /// The byte range of a region's table, if the file has one.
    fn region_range(&self, region: Region) -> Option<(usize, usize)> {
        let headers = self.headers();
        let start = match region {
            Region::Suite => headers.iter().position(|(_, h)| h == "[suite]")?,
            Region::Defaults => headers.iter().position(|(_, h)| h == "[defaults]")?,
            Region::Entry(i) => {
                headers
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, h))| h == "[[test]]")
                    .nth(i)?
                    .0
            }
        };
        let end = headers.get(start + 1).map_or(self.text.len(), |h| h.0);
        Some((headers[start].0, end))
    }

    /// The offset of the line `field = ...` inside a region's table.
    fn field_offset(&self, region: Region, field: &str) -> Option<usize> {
        let (start, end) = self.region_range(region)?;
        let mut off = start;
        for line in self.text[start..end].split_inclusive('\n') {
            if key_of(line) == Some(field) {
                return Some(off + (line.len() - line.trim_start().len()));
            }
            off += line.len();
        }
        None
    }

    fn entry_label(&self, region: Region, table: Option<&toml::Table>) -> Option<String> {
        match region {
            Region::Suite => None,
            Region::Defaults => Some("[defaults]".into()),
            Region::Entry(i) => {
                let name = table
                    .and_then(|t| t.get("test"))
                    .and_then(|t| t.as_array())
                    .and_then(|a| a.get(i))
                    .and_then(|e| e.get("name"))
                    .and_then(|n| n.as_str());
                Some(match name {
                    Some(n) => format!("[[test]] \"{n}\" (entry {})", i + 1),
                    None => format!("[[test]] entry {}", i + 1),
                })
            }
        }
    }

    /// A semantic error: points at the field's line in the entry, or in `[defaults]` when the
    /// entry inherited the value, or else at the entry's header.
    fn error(&self, region: Region, field: Option<&str>, message: String) -> SpecError {
        let table: Option<toml::Table> = toml::from_str(self.text).ok();
        let mut label = self.entry_label(region, table.as_ref());
        let mut at = field.and_then(|f| self.field_offset(region, f));
        if let (None, Some(f), Region::Entry(_)) = (at, field, region) {
            at = self.field_offset(Region::Defaults, f);
            if at.is_some() {
                label = label.map(|l| format!("{l} (value from [defaults])"));
            }
        }
        let at = at.or_else(|| self.region_range(region).map(|r| r.0));
        let (line, col) = match at {
            Some(o) => {
                let (l, c) = self.line_col(o);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        SpecError {
            file: self.path.to_path_buf(),
            line,
            col,
            entry: label,
            field: field.map(str::to_string),
            message,
        }
    }

    /// A toml error (syntax, unknown key, wrong type): toml gives the span; we add the entry and the
    /// field written on that line.
    fn toml_error(&self, e: &toml::de::Error, table: Option<&toml::Table>) -> SpecError {
        let span = e.span();
        let (line, col) = match &span {
            Some(s) => {
                let (l, c) = self.line_col(s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        let (entry, field) = match &span {
            Some(s) => {
                let region = self.region_at(s.start);
                let line_start = self.text[..s.start.min(self.text.len())]
                    .rfind('\n')
                    .map_or(0, |i| i + 1);
                let field = key_of(&self.text[line_start..]).map(str::to_string);
                (region.and_then(|r| self.entry_label(r, table)), field)
            }
            None => (None, None),
        };
        let message = did_you_mean(e.message().trim());
        // "unknown field `x`" already names the field; don't repeat it as a location.
        let field = field.filter(|f| !message.contains(&format!("`{f}`")));
        SpecError {
            file: self.path.to_path_buf(),
            line,
            col,
            entry,
            field,
            message,
        }
    }

    fn region_at(&self, offset: usize) -> Option<Region> {
        let headers = self.headers();
        let (idx, (_, head)) = headers
            .iter()
            .enumerate()
            .take_while(|(_, (o, _))| *o <= offset)
            .last()?;
        match head.as_str() {
            "[defaults]" => Some(Region::Defaults),
            "[[test]]" => Some(Region::Entry(
                headers[..idx]
                    .iter()
                    .filter(|(_, h)| h == "[[test]]")
                    .count(),
            )),
            _ => None,
        }
    }
}

/// toml lists every field it expected after an unknown one; name the likeliest first.
fn did_you_mean(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|k| (edit_distance(unknown, k), k))
        .min();
    match best {
        Some((d, k)) if d <= 2.max(unknown.len() / 3) => {
            format!("unknown field `{unknown}`, did you mean `{k}`?")
        }
        _ => message.to_string(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The bare key a line assigns (`  nodes = 3` → `nodes`).
fn key_of(line: &str) -> Option<&str> {
    let first = line.lines().next()?;
    let (k, _) = first.split_once('=')?;
    let k = k.trim();
    (!k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then_some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Suite, SpecError> {
        parse(text, Path::new("suites/t.toml"))
    }

    fn err(text: &str) -> String {
        p(text).expect_err("should not parse").to_string()
    }

    #[test]
    fn expands_the_full_matrix_with_defaults_and_overrides() {
        let s = p(r#"
[suite]
name = "mini"

[defaults]
nodes = 3
time_limit = 5
seeds = [1, 2]

[[test]]
name = "a"
variants = ["basic", "multi"]
workloads = ["register", "kv"]
faults = ["none", "partition,kill"]

[[test]]
name = "b"
nodes = 5
seeds = [7]
repeats = 3
bugs = ["local-read"]
expect = "invalid"
"#)
        .unwrap();
        assert_eq!(s.name, "mini");
        let a: Vec<_> = s.runs.iter().filter(|r| r.entry == "a").collect();
        assert_eq!(a.len(), 2 * 2 * 2 * 2);
        assert!(a
            .iter()
            .all(|r| r.nodes == Some(3) && r.time_limit == Some(5.0)));
        assert!(a.iter().all(|r| r.expect == Expect::Valid));
        assert_eq!(
            a.iter().map(|r| r.faults_label()).collect::<BTreeSet<_>>(),
            ["none".to_string(), "partition,kill".to_string()].into()
        );
        assert_eq!(a[0].name, "a-basic-register-none-s1");
        let b: Vec<_> = s.runs.iter().filter(|r| r.entry == "b").collect();
        assert_eq!(b.len(), 3);
        assert!(b.iter().all(|r| r.nodes == Some(5) && r.seed == 7));
        assert_eq!(
            b.iter().map(|r| r.repeat).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(b[2].name, "b-multi-register-none-s7-r3");
        assert_eq!(b[0].expect, Expect::Invalid);
        let names: BTreeSet<_> = s.runs.iter().map(|r| &r.name).collect();
        assert_eq!(names.len(), s.runs.len(), "run names are unique");
    }

    #[test]
    fn suite_name_defaults_to_the_file_stem() {
        let s = p("[[test]]\nname = \"x\"\n").unwrap();
        assert_eq!(s.name, "t");
        assert_eq!(s.runs.len(), 1);
        let r = &s.runs[0];
        assert_eq!(
            (r.variant, r.workload, r.faults.len(), r.seed),
            (Variant::Multi, Workload::Register, 0, 1)
        );
    }

    #[test]
    fn harness_args_name_every_setting_and_pass_bugs_to_the_node() {
        let s = p(r#"
[[test]]
name = "x"
nodes = 3
time_limit = 2.5
concurrency = 4
rate = 100
recovery_time = 1
faults = ["pause,kill"]
nemesis_interval = 2
node_args = ["--verbose"]
bugs = ["lease-read", "local-read"]
expect = "invalid"
harness_args = ["--op-timeout", "2"]
check_time_limit = 45
"#)
        .unwrap();
        let a = s.runs[0].harness_args(Path::new("/tmp/st"));
        let joined = a.join(" ");
        for want in [
            "--variant multi",
            "--workload register",
            "--seed 1",
            "--nemesis pause,kill",
            "--store /tmp/st",
            "--name x-multi-register-pause+kill-s1",
            "--nodes 3",
            "--time-limit 2.5",
            "--concurrency 4",
            "--rate 100",
            "--recovery-time 1",
            "--nemesis-interval 2",
            "--op-timeout 2",
            "--check-time-limit 45",
        ] {
            assert!(joined.contains(want), "{want:?} missing from {joined}");
        }
        assert!(
            joined.ends_with("-- --verbose --bug lease-read --bug local-read"),
            "{joined}"
        );
    }

    #[test]
    fn unknown_key_names_entry_field_and_line() {
        let e = err("[defaults]\nnodes = 3\n\n[[test]]\nname = \"first\"\n\n[[test]]\nname = \"second\"\ntimelimit = 5\n");
        assert!(e.starts_with("suites/t.toml:9:1: "), "{e}");
        assert!(e.contains("[[test]] \"second\" (entry 2)"), "{e}");
        assert!(
            e.contains("unknown field `timelimit`, did you mean `time_limit`?"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_in_defaults_and_suite() {
        let e = err("[defaults]\nnode = 3\n[[test]]\nname = \"a\"\n");
        assert!(e.starts_with("suites/t.toml:2:1: [defaults]"), "{e}");
        assert!(e.contains("unknown field `node`"), "{e}");
        let e = err("[suite]\ntitle = \"x\"\n[[test]]\nname = \"a\"\n");
        assert!(e.contains(":2:1:") && e.contains("`title`"), "{e}");
        let e = err("[suit]\n[[test]]\nname = \"a\"\n");
        assert!(
            e.contains("unknown field `suit`, did you mean `suite`?"),
            "{e}"
        );
        let e = err("[[test]]\nname = \"a\"\nzzzzzzzzzz = 1\n");
        assert!(
            e.contains("unknown field `zzzzzzzzzz`, expected one of"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_entry_field_and_line() {
        let e = err("[[test]]\nname = \"a\"\nvariants = [\"basic\", \"fast\"]\n");
        assert!(e.starts_with("suites/t.toml:3:"), "{e}");
        assert!(
            e.contains("[[test]] \"a\" (entry 1), field `variants`"),
            "{e}"
        );
        assert!(e.contains("fast"), "{e}");
        let e = err("[[test]]\nname = \"a\"\nnodes = \"three\"\n");
        assert!(e.contains(":3:") && e.contains("field `nodes`"), "{e}");
        let e = err("[[test]]\nname = \"a\"\nexpect = \"unknown\"\n");
        assert!(e.contains("field `expect`") && e.contains(":3:"), "{e}");
        let e = err("[[test]]\nname = \"a\"\nnodes = -1\n");
        assert!(e.contains("field `nodes`"), "{e}");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = err("[[test]]\nname = \"a\nnodes = 3\n");
        assert!(e.starts_with("suites/t.toml:2:"), "{e}");
    }

    #[test]
    fn impossible_matrices_are_errors_that_name_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("seeds = []", "seeds", "is empty"),
            ("variants = []", "variants", "is empty"),
            ("faults = []", "faults", "is empty"),
            ("repeats = 0", "repeats", "at least 1"),
            ("nodes = 0", "nodes", "at least 1"),
            ("time_limit = 0", "time_limit", "greater than 0"),
            ("concurrency = 0", "concurrency", "at least 1"),
            ("faults = [\"flood\"]", "faults", "unknown fault \"flood\""),
            ("faults = [\"\"]", "faults", "empty fault set"),
            ("faults = [\"none,kill\"]", "faults", "stands alone"),
            ("faults = [\"kill,kill\"]", "faults", "twice"),
            ("faults = [\"kill\", \"kill\"]", "faults", "listed twice"),
            ("seeds = [1, 1]", "seeds", "twice"),
            (
                "nodes = 1\nfaults = [\"partition\"]",
                "faults",
                "nodes >= 2",
            ),
            ("bugs = [\"typo\"]", "bugs", "unknown seeded bug \"typo\""),
            (
                "variants = [\"basic\"]\nbugs = [\"lease-read\"]\nexpect = \"invalid\"",
                "bugs",
                "only in the multi",
            ),
            ("expect = \"invalid\"", "expect", "needs a seeded bug"),
        ];
        for (body, field, want) in cases {
            let text = format!("[[test]]\nname = \"e\"\n{body}\n");
            let e = err(&text);
            assert!(
                e.contains(&format!("[[test]] \"e\" (entry 1), field `{field}`")),
                "{body}: {e}"
            );
            assert!(e.contains(want), "{body}: {e}");
            assert!(e.starts_with("suites/t.toml:"), "{body}: {e}");
            // The line points at the field (line 3 or later), not at the header.
            let line: usize = e.split(':').nth(1).unwrap().parse().unwrap();
            assert!(line >= 3, "{body}: {e}");
        }
    }

    #[test]
    fn inherited_bad_value_points_at_defaults() {
        let e = err("[defaults]\nseeds = []\n\n[[test]]\nname = \"a\"\n");
        assert!(e.starts_with("suites/t.toml:2:1:"), "{e}");
        assert!(e.contains("(value from [defaults]), field `seeds`"), "{e}");
    }

    #[test]
    fn custom_node_may_expect_invalid_without_bugs() {
        let s = p("[[test]]\nname = \"a\"\nnode_bin = \"/bin/x\"\nexpect = \"invalid\"\nbugs = [\"anything\"]\n").unwrap();
        assert_eq!(s.runs[0].expect, Expect::Invalid);
    }

    #[test]
    fn names_and_entries_are_checked() {
        assert!(err("").contains("no [[test]] entries"));
        let e = err("[[test]]\nvariants = [\"basic\"]\n");
        assert!(
            e.contains("entry 1") && e.contains("missing field `name`"),
            "{e}"
        );
        let e = err("[[test]]\nname = \"a b\"\n");
        assert!(e.contains("field `name`") && e.contains("' '"), "{e}");
        let e = err("[[test]]\nname = \"a\"\n[[test]]\nname = \"a\"\n");
        assert!(e.contains("entry 2") && e.contains("already named"), "{e}");
        let e = err("[defaults]\nname = \"d\"\n[[test]]\nname = \"a\"\n");
        assert!(e.contains("[defaults], field `name`"), "{e}");
    }

    #[test]
    fn shipped_suites_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
        let mut found = 0;
        for f in ["smoke.toml", "nightly.toml", "bugs.toml"] {
            let path = dir.join(f);
            if !path.exists() {
                continue;
            }
            found += 1;
            let s = load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.runs.is_empty());
        }
        assert!(found > 0, "no suite files found in {}", dir.display());
    }
}
