//! Checking what a test recorded: is the history linearizable, and if not, why.
//!
//! - [`history`]: the recorded [`history::Event`]s and the JSON-lines reader;
//! - [`formats`]: imports of Jepsen, Knossos and Porcupine histories ([`formats::Imported`]);
//! - [`model`]: what a sequential specification is ([`model::Model`], [`model::PartModel`]) and
//!   the paired [`model::Operation`]s it is given; the models themselves live in `workloads`;
//! - [`search`]: the linearizability search over one independent part ([`search::decide`],
//!   [`search::search`], [`search::Budget`]);
//! - [`explain`] and [`shrink`]: a failed search in words and JSON, and the few ops that still
//!   fail;
//! - [`linearizability`]: a whole history checked part by part on all cores
//!   ([`linearizability::check_events`]);
//! - [`counterexample`]: the typed counterexample a failed check carries;
//! - [`verdict`]: what a check concludes ([`Verdict`], [`CheckResult`], [`CheckOptions`]).
//!
//! Layered in that order: `linearizability` uses `explain` and `shrink`, which use `search`.
//! Latency analysis, plots and the HTML report are the `report` crate's, so checking a history
//! pulls in no plotting.
//!
//! Pure library: the search does no I/O. The only readers are [`history::read_jsonl`] and
//! [`formats::import_file`], which name `file:line` on bad input.

pub mod counterexample;
pub mod explain;
pub mod formats;
pub mod history;
pub mod linearizability;
pub mod model;
pub mod search;
pub mod shrink;
pub mod verdict;

pub use verdict::{CheckOptions, CheckResult, Verdict};
