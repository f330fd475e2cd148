//! The results browser's front page (`harness serve`): every stored run and suite, filters by
//! test, variant, verdict and date, and a form that compares the runs ticked. Links point at the
//! server's routes: `/store/<path>` for files, `/compare?run=A&run=B`, `/trend`.

use crate::html::{badge, ms, or_dash, page, short_time};
use crate::index::Entry;
use maud::html;

/// A suite run (a night) as listed.
pub struct SuiteRow {
    /// The suite folder relative to the store.
    pub rel: String,
    pub suite: String,
    pub started: String,
    pub runs: usize,
    /// `pass/fail/unknown/error` counts, as summary.json has them.
    pub counts: String,
}

/// What the list is filtered by (empty: any).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Filters {
    pub test: String,
    pub variant: String,
    pub verdict: String,
    /// A prefix of the start time, e.g. `2026-12` or `2026-12-02`.
    pub date: String,
}

impl Filters {
    pub fn keeps(&self, e: &Entry) -> bool {
        let time = short_time(&e.started);
        e.test.contains(self.test.as_str())
            && (self.variant.is_empty() || e.variant.as_deref() == Some(self.variant.as_str()))
            && (self.verdict.is_empty()
                || e.verdict.as_deref().unwrap_or("not checked") == self.verdict)
            && time.starts_with(self.date.as_str())
    }
}

/// The page; `all` gives the choices of the filter menus, `shown` the rows that passed them.
pub fn list_page(
    all: &[Entry],
    shown: &[&Entry],
    unreadable: &[(String, String)],
    suites: &[SuiteRow],
    f: &Filters,
) -> String {
    let mut variants: Vec<&str> = all.iter().filter_map(|e| e.variant.as_deref()).collect();
    variants.sort_unstable();
    variants.dedup();
    let verdicts = ["valid", "invalid", "unknown", "not checked"];
    let body = html! {
        header.banner.unchecked {
            h1 { "Results" }
            div.sub {
                (shown.len()) " of " (all.len()) " runs · " (suites.len()) " suite runs · "
                a style="color:#fff" href="/trend" { "trend" }
            }
        }
        form #filters method="get" action="/" {
            "test " input name="test" value=(f.test) size="18";
            " variant " select name="variant" {
                option value="" { "any" }
                @for v in &variants { option value=(v) selected[f.variant == *v] { (v) } }
            }
            " verdict " select name="verdict" {
                option value="" { "any" }
                @for v in verdicts { option value=(v) selected[f.verdict == v] { (v) } }
            }
            " date " input name="date" value=(f.date) placeholder="2026-12-02" size="11";
            " " button #filter type="submit" { "filter" }
        }
        @if !suites.is_empty() {
            h2 { "Suite runs" }
            table #suites {
                tr { th { "started (UTC)" } th.l { "suite" } th { "runs" } th.l { "pass/fail/unknown/error" } th.l { "summary" } }
                @for s in suites {
                    tr {
                        td { (short_time(&s.started)) } td.l { (s.suite) } td { (s.runs) }
                        td.l { (s.counts) }
                        td.l { a href={ "/store/" (s.rel) "/summary.md" } { "summary.md" } }
                    }
                }
            }
        }
        h2 { "Runs" }
        form #pick method="get" action="/compare" {
            p { button #compare type="submit" { "compare ticked runs" } " (two or more)" }
            table #runs {
                tr {
                    th { "" } th { "started (UTC)" } th.l { "test" } th.l { "variant" }
                    th.l { "verdict" } th { "ops/s" } th { "p99 (ms)" } th.l { "report" }
                }
                @for e in shown {
                    tr.run data-rel=(e.rel) {
                        td { input type="checkbox" name="run" value=(e.rel); }
                        td { (short_time(&e.started)) }
                        td.l { (e.test) }
                        td.l { (e.variant.as_deref().unwrap_or("–")) }
                        td.l { (badge(e.verdict.as_deref())) }
                        td { (or_dash(e.ops_per_sec, |d| format!("{d:.0}"))) }
                        td { (or_dash(e.p99_ms, ms)) }
                        td.l {
                            @if e.has_report {
                                a.report href={ "/store/" (e.rel) "/report.html" } { "report" }
                            } @else { span.muted { "no report" } }
                        }
                    }
                }
            }
        }
        @if !unreadable.is_empty() {
            h2 { "Unreadable runs" }
            ul #unreadable { @for (rel, why) in unreadable { li { code { (rel) } ": " (why) } } }
        }
    };
    page("Results", body)
}
