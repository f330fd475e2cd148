//! Checking what a test recorded: the history format, linearizability search over a sequential
//! [`model::Model`], latency and throughput analysis, plots and the HTML report.
//!
//! Pure library: the search does no I/O. The only reader is [`history::read_jsonl`], which turns a
//! file into events and names `file:line` on bad input.

pub mod analysis;
pub mod compare;
pub mod explain;
pub mod formats;
pub mod history;
pub mod index;
pub mod linearizability;
pub mod model;
pub mod plot;
pub mod report;
pub mod search;
pub mod shrink;
pub mod verdict;

pub use verdict::{CheckOptions, CheckResult, Verdict};
