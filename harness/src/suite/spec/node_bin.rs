//! Checking, when the suite file loads, that every `node_bin` it names can start as a node: a
//! missing one is a problem of the file (FILE:LINE), not of a run that fails later.

use super::locate::{Locator, Region, SpecError};
use super::Suite;
use std::path::Path;

/// The first `node_bin` of a loaded suite (all its runs, not filtered) that cannot start, located
/// at its field (in the entry or in `[defaults]`). Not part of [`super::load`]: listing a suite
/// needs no node built.
pub fn check_node_bins(suite: &Suite) -> Result<(), SpecError> {
    let text = std::fs::read_to_string(&suite.file).unwrap_or_default();
    let src = Locator::new(&text, &suite.file);
    // Runs come entry by entry, in the file's order, before any filter.
    let mut entries: Vec<&str> = Vec::new();
    for r in &suite.runs {
        if entries.contains(&r.entry.as_str()) {
            continue;
        }
        entries.push(&r.entry);
        let Some(bin) = &r.node_bin else { continue };
        if let Some(why) = crate::node_bin::node_bin_problem(Path::new(bin)) {
            let from = if Path::new(bin).is_relative() {
                " (a relative path is from the current directory)"
            } else {
                ""
            };
            return Err(src.error(
                Region::Entry(entries.len() - 1),
                Some("node_bin"),
                format!("{bin}{from}: {why}"),
            ));
        }
    }
    Ok(())
}
