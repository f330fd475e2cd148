//! What a run looks like: latency, throughput and availability analysis of a history, SVG plots,
//! the per-run HTML report, the results index and the comparison page.

pub mod analysis;
pub mod compare;
pub mod index;
pub mod plot;
pub mod report;

pub use crate::report::{write_run_report, Written};
