//! `summary.md`: the suite as Markdown, fit for a CI step summary.

use super::{duration, first_line, Outcome, Summary};
use std::fmt::Write as _;

/// A Markdown report fit for a CI step summary.
pub fn markdown(s: &Summary) -> String {
    let c = &s.counts;
    let mut m = String::new();
    let mark = match s.exit_code {
        0 => "✅",
        3 => "❔",
        _ => "❌",
    };
    let state = if s.finished { "" } else { " (in progress)" };
    let part = match &s.head.shard {
        Some(sh) => format!(", shard {}/{} of {} runs", sh.k, sh.n, sh.matrix_runs),
        None => String::new(),
    };
    let _ = writeln!(m, "## {mark} Suite `{}`{part}{state}\n", s.head.suite);
    if let Some(d) = &s.head.description {
        let _ = writeln!(m, "{}\n", d.trim());
    }
    let _ = writeln!(
        m,
        "{} of {} runs met their expectation · {} failed · {} unknown · {} errors{} · {} · `{}`\n",
        c.pass,
        c.total,
        c.fail,
        c.unknown,
        c.error,
        if c.pending > 0 {
            format!(" · {} not run yet", c.pending)
        } else {
            String::new()
        },
        duration(s.head.duration_s),
        s.head.dir
    );
    let bug_runs = s.runs.iter().any(|r| r.expect == "invalid");
    m.push_str("| test | verdict | expected | ops/s | p99 | availability |");
    m.push_str(if bug_runs { " first violation |" } else { "" });
    m.push_str(" report |\n|---|---|---|---:|---:|---:|");
    m.push_str(if bug_runs { "---:|" } else { "" });
    m.push_str("---|\n");
    for r in &s.runs {
        let icon = match r.outcome {
            Outcome::Pass => "✅",
            Outcome::Fail => "❌",
            Outcome::Unknown => "❔",
            Outcome::Error => "💥",
        };
        let verdict = r.verdict.as_deref().unwrap_or("error");
        let link = match r.report.as_deref().or(r.run_dir.as_deref()) {
            Some(p) => format!(
                "[{}]({})",
                if r.report.is_some() { "report" } else { "run" },
                p
            ),
            None => "—".into(),
        };
        let _ = write!(
            m,
            "| {} | {icon} {verdict} | {} | {} | {} | {} |",
            cell(&r.name),
            r.expect,
            r.ops_per_sec.map_or("—".into(), |x| format!("{x:.0}")),
            r.p99_ms.map_or("—".into(), |x| format!("{x:.1} ms")),
            r.availability
                .map_or("—".into(), |x| format!("{:.1}%", x * 100.0)),
        );
        if bug_runs {
            let _ = write!(
                m,
                " {} |",
                r.first_violation_s
                    .map_or("—".into(), |x| format!("{x:.1} s"))
            );
        }
        let _ = writeln!(m, " {link} |");
    }
    m.push_str("\n### By entry\n\n| entry | expected | runs | met | rate |");
    m.push_str(if bug_runs {
        " median time to first violation |\n|---|---|---:|---:|---:|---:|\n"
    } else {
        "\n|---|---|---:|---:|---:|\n"
    });
    for e in &s.entries {
        let _ = write!(
            m,
            "| {} | {} | {} | {} | {:.0}% |",
            cell(&e.entry),
            e.expect,
            e.runs,
            e.met,
            e.rate * 100.0
        );
        if bug_runs {
            let t = e
                .median_first_violation_s
                .map_or("—".into(), |x| format!("{x:.1} s"));
            let _ = write!(m, " {t} |");
        }
        m.push('\n');
    }
    let bad: Vec<_> = s
        .runs
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .collect();
    if !bad.is_empty() {
        m.push_str("\n### Runs that did not meet their expectation\n\n");
        for r in bad {
            let _ = writeln!(
                m,
                "- **{}**: {} (expected {}): {}",
                cell(&r.name),
                r.verdict.as_deref().unwrap_or("error"),
                r.expect,
                cell(&first_line(&r.explanation))
            );
        }
    }
    m
}

/// Table cells are one line and must not close the cell early.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn markdown_has_one_row_per_run_with_figures_and_links() {
        let md = markdown(&sample());
        assert!(
            md.starts_with("## ❌ Suite `smoke` (in progress)\n\nshort runs\n"),
            "{md}"
        );
        assert!(md.contains("1 of 5 runs met their expectation · 1 failed · 1 unknown · 1 errors · 1 not run yet · 1m15s"), "{md}");
        let runs_table = md.split("### By entry").next().unwrap();
        let rows: Vec<&str> = runs_table.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(rows.len(), 1 + 4, "header + one row per run:\n{md}");
        assert!(rows[0].contains("first violation"), "bug runs add a column");
        let a = rows[1];
        assert!(
            a.starts_with("| a-ok | ✅ valid | valid | 1234 | 12.3 ms | 98.7% | 4.2 s |"),
            "{a}"
        );
        assert!(
            a.ends_with("[report](a-ok/20260101T000000.000Z/report.html) |"),
            "{a}"
        );
        assert!(rows[2].contains("❌ invalid | valid"));
        assert!(rows[4].contains("💥 error | invalid"));
        // Every row has the same number of cells as the header (no '|' leaks from text).
        let cells = |l: &str| l.replace("\\|", "").matches('|').count();
        assert!(rows.iter().all(|r| cells(r) == cells(rows[0])), "{md}");
        assert!(md.contains("### Runs that did not meet their expectation"));
        // Every sample run is entry "e": 1 of 4 met, median over the one invalid run.
        assert!(
            md.contains(
                "| entry | expected | runs | met | rate | median time to first violation |"
            ),
            "{md}"
        );
        assert!(md.contains("| e | valid | 4 | 1 | 25% | 4.2 s |"), "{md}");
        assert!(
            md.contains("- **b-bad<&>**: invalid (expected valid): read of 3"),
            "{md}"
        );
    }
}
