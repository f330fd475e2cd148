//! What a run looks like, for people: latency, throughput and availability of a history
//! ([`analysis::Analysis`]), SVG plots ([`plot`]), the per-run `report.html`
//! ([`write_run_report`]), the results index over a store ([`index::write_index`]) and the page
//! that puts runs side by side ([`compare::write_comparison`]). It also owns the schema of the
//! files a run folder holds ([`run_files::TestFile`], [`run_files::ResultsFile`]), which the
//! harness writes and these pages read; [`run::Run`] is a run folder as read.
//!
//! Pages are written with maud's `html!` macro: markup is checked when the crate compiles and
//! every spliced value is HTML-escaped unless it is wrapped in `PreEscaped` (only SVG drawn here
//! or by plotters, which escapes its own text), so no hand-placed escaping can be forgotten. A
//! macro rather than template files keeps each section next to the data it shows.
//!
//! Depends on the `checker` crate (history format, the counterexample type); checking a history
//! does not depend on this crate, so it pulls in no plotting.

pub mod analysis;
pub mod browse_page;
pub mod compare;
mod html;
pub mod hunt_page;
pub mod index;
pub mod node_stats;
pub mod plot;
pub mod run;
pub mod run_files;
mod run_page;
pub mod suite_compare;
pub mod trend_page;

pub use run_page::{key_history_file, write_run_report, Written};
