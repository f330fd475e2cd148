//! Checking what a test recorded: the history format, linearizability search over a sequential
//! [`model::Model`], the explanation of a violation and its shrinking. Latency analysis, plots and
//! the HTML report live in the `report` crate, so checking a history pulls in no plotting.
//!
//! Pure library: the search does no I/O. The only reader is [`history::read_jsonl`], which turns a
//! file into events and names `file:line` on bad input.

pub mod counterexample;
pub mod explain;
pub mod formats;
pub mod history;
pub mod linearizability;
pub mod model;
pub mod shrink;
pub mod verdict;

pub use verdict::{CheckOptions, CheckResult, Verdict};
