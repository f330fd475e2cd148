//! `harness`: launches real node processes behind TCP proxies, drives concurrent clients, injects
//! faults, records a history, checks it and stores a run folder with a report.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod bench;
mod check_cmd;
mod client;
mod cluster;
mod history;
mod nemesis;
mod progress;
mod proxy;
mod report_cmd;
mod schedule;
mod store;
mod suite;
mod test_cmd;

#[derive(Parser)]
#[command(name = "harness", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one test (or --test-count N) against a real cluster and store the run.
    Test(test_cmd::TestArgs),
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
    /// Benchmarks (client capacity, proxy overhead, ...).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Test(a) => test_cmd::run(a),
        Command::Check(a) => check_cmd::run_check(a),
        Command::Analyze(a) => check_cmd::run_analyze(a),
        Command::Report(a) => report_cmd::run_report(a),
        Command::Compare(a) => report_cmd::run_compare(a),
        Command::Suite(a) => suite::run(a),
        Command::Bench(a) => bench::run(a),
    };
    ExitCode::from(code)
}
