//! `harness`: a Jepsen-style test harness. It launches real node processes behind TCP proxies,
//! drives concurrent clients, injects faults, records a history, checks it and stores a run folder
//! with a report.
//!
//! The job of each part: [`test_cmd`] runs one test ([`test_cmd::run_test`], options
//! [`test_args::TestArgs`], result [`test_cmd::RunOutcome`]); [`cluster::Cluster`] owns the node
//! processes, [`proxy::Network`] the link proxies, [`nemesis`] carries out a
//! [`schedule::Schedule`] of faults, [`client::Clients`] write the [`history::History`];
//! [`suite`] runs a matrix of tests from a suite file, [`hunt`] many drawn ones; [`hosts`] runs
//! the nodes on other machines over SSH (`--hosts`, `harness hosts check`). [`Cli`] and [`run`] are the command line;
//! `main` only maps their result to an exit code.

use clap::{Parser, Subcommand};

/// `println!` that never panics: a closed stdout (`harness test | head -1`) must not end a run
/// half-way with nodes still to stop, so output that cannot be written is dropped.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that never panics (a closed stderr), for the same reason as [`outln!`].
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod bench;
pub mod check_cmd;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod duration;
pub mod error;
pub mod history;
pub mod hosts;
pub mod hunt;
pub mod listen_check;
pub mod membership;
pub mod nemesis;
pub mod net;
pub mod node_bin;
pub mod node_log;
pub mod open_files;
pub mod options;
pub mod ports;
pub mod power;
pub mod progress;
pub mod proxy;
pub mod reaper;
pub mod replay;
pub mod report_cmd;
pub mod run_context;
pub mod schedule;
pub mod serve;
pub mod store;
pub mod suite;
pub mod suite_compare;
pub mod test_args;
pub mod test_cmd;
pub mod trend;

pub use error::SetupError;

#[derive(Parser)]
#[command(name = "harness", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run one test (or --test-count N) against a real cluster and store the run.
    Test(test_args::TestArgs),
    /// Check stored or imported histories for linearizability.
    Check(check_cmd::CheckArgs),
    /// Re-check a stored run and rewrite its results.json and report.
    Analyze(check_cmd::AnalyzeArgs),
    /// Regenerate a run's plots and report, or the results index.
    Report(report_cmd::ReportArgs),
    /// Put several runs side by side in one HTML page.
    Compare(report_cmd::CompareArgs),
    /// Run a suite file (a matrix of tests) and write JUnit / JSON / Markdown summaries.
    Suite(suite::SuiteArgs),
    /// Two values of a suite axis side by side in every cell of one or more suite runs
    /// (`--by variant`: Basic vs Multi), with the spread over seeds and nights.
    SuiteCompare(suite_compare::SuiteCompareArgs),
    /// Hunt for bugs: many short tests with drawn configurations, steered and shrunk.
    Hunt(hunt::args::HuntArgs),
    /// Benchmarks (client capacity, proxy overhead, ...).
    Bench(bench::BenchArgs),
    /// Many nights of suite runs on one page (trend.html / .json / .md), with regression alerts.
    Trend(trend::TrendArgs),
    /// Browse a results store in a web browser: runs, suites, reports, comparisons, the trend.
    Serve(serve::ServeArgs),
    /// Nodes on other machines over SSH: `hosts check FILE` verifies a hosts file's machines.
    Hosts(hosts::HostsArgs),
    /// Remove the network namespaces, bridges and veths that dead runs left (`--net netns`).
    Clean(net::CleanArgs),
}

/// Runs a parsed command line. `Ok` is the exit code of a command that ran to its end: 0 valid,
/// 1 invalid, 3 unknown, 128 + the signal number when interrupted (130 SIGINT, 143 SIGTERM, 129
/// SIGHUP); `Err` is a command that could not get that far (exit 2).
pub fn run(cli: Cli) -> Result<u8, SetupError> {
    let netns = match &cli.command {
        Command::Test(a) => a.net.net == net::NetMode::Netns,
        Command::Suite(a) => a.net == Some(net::NetMode::Netns),
        _ => false,
    };
    net::rootless::enter_if_needed(netns).map_err(|e| SetupError::new("harness", e))?;
    let code = match cli.command {
        Command::Test(a) => test_cmd::run(a),
        Command::Check(a) => check_cmd::run_check(a),
        Command::Analyze(a) => check_cmd::run_analyze(a),
        Command::Report(a) => report_cmd::run_report(a),
        Command::Compare(a) => report_cmd::run_compare(a),
        Command::Suite(a) => suite::run(a),
        Command::Hunt(a) => hunt::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Clean(a) => net::run_clean(a),
        Command::Trend(a) => trend::run(a),
        Command::SuiteCompare(a) => suite_compare::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Hosts(a) => hosts::run(a),
    };
    // Whatever a node left running (a daemon it started) ends with the command.
    reaper::kill_all_descendants();
    code
}
