//! What a suite concluded: one record per run, and the three summaries CI reads
//! (`summary.json`, `junit.xml`, `summary.md`).

use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// How a run compares with its expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The verdict is the expected one.
    Pass,
    /// The verdict is the opposite of the expected one.
    Fail,
    /// The checker could not decide.
    Unknown,
    /// The run could not be set up or did not produce a verdict.
    Error,
}

/// One run of the suite, as the summaries show it.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub name: String,
    pub entry: String,
    pub variant: String,
    pub workload: String,
    pub faults: String,
    pub seed: u64,
    pub repeat: u32,
    pub bugs: Vec<String>,
    pub expect: String,
    pub outcome: Outcome,
    /// `valid`, `invalid` or `unknown`; absent when the run errored.
    pub verdict: Option<String>,
    /// The checker's explanation, or the error.
    pub explanation: String,
    pub ops_per_sec: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Share of client operations that completed `ok`.
    pub availability: Option<f64>,
    /// Seconds from the start of the run to the first event of the counterexample.
    pub first_violation_s: Option<f64>,
    /// Relative to the suite folder when inside it.
    pub run_dir: Option<String>,
    pub report: Option<String>,
    pub duration_s: f64,
}

/// What results.json says, read leniently (every field may be missing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunStats {
    pub verdict: Option<String>,
    pub explanation: String,
    pub ops_per_sec: Option<f64>,
    pub p99_ms: Option<f64>,
    pub availability: Option<f64>,
    pub first_violation_s: Option<f64>,
}

impl RunStats {
    pub fn from_results_json(v: &Value) -> RunStats {
        let check = v.get("check");
        let verdict = v
            .get("verdict")
            .or_else(|| check.and_then(|c| c.get("verdict")))
            .and_then(Value::as_str)
            .map(str::to_string);
        let explanation = check
            .and_then(|c| c.get("explanation"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let availability = v
            .get("availability")
            .and_then(Value::as_f64)
            .or_else(|| availability_from_counts(v.get("counts")?));
        let first_violation_s = check
            .and_then(|c| c.get("counterexample"))
            .and_then(violation_time);
        RunStats {
            verdict,
            explanation,
            ops_per_sec: v.get("ops_per_sec").and_then(Value::as_f64),
            p99_ms: v.pointer("/latency_ms/p99").and_then(Value::as_f64),
            availability,
            first_violation_s,
        }
    }
}

fn availability_from_counts(c: &Value) -> Option<f64> {
    let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
    let total = n("ok") + n("fail") + n("info");
    (total > 0).then(|| n("ok") as f64 / total as f64)
}

/// Seconds into the run when the violation was observed: the completion of the checker's failing
/// op (`op.end_s`); failing that, the earliest time anywhere in the counterexample (`start_s`
/// seconds or `time` nanoseconds).
fn violation_time(cx: &Value) -> Option<f64> {
    if let Some(t) = cx.pointer("/op/end_s").and_then(Value::as_f64) {
        return Some(t);
    }
    fn earliest(v: &Value) -> Option<f64> {
        let times: Vec<f64> = match v {
            Value::Object(m) => m
                .iter()
                .filter_map(|(k, x)| match (k.as_str(), x) {
                    ("start_s" | "end_s", Value::Number(n)) => n.as_f64(),
                    ("time", Value::Number(n)) => n.as_f64().map(|ns| ns / 1e9),
                    _ => earliest(x),
                })
                .collect(),
            Value::Array(a) => a.iter().filter_map(earliest).collect(),
            _ => return None,
        };
        times.into_iter().reduce(f64::min)
    }
    earliest(cx)
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub pass: usize,
    pub fail: usize,
    pub unknown: usize,
    pub error: usize,
    /// Runs not finished (still running or never started).
    pub pending: usize,
}

/// How the runs of one `[[test]]` entry went: for a seeded-bug entry, its detection rate.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EntryStats {
    pub entry: String,
    pub expect: String,
    pub runs: usize,
    /// Runs whose verdict was the expected one.
    pub met: usize,
    pub rate: f64,
    /// Median over the runs found invalid of the time to the first violation.
    pub median_first_violation_s: Option<f64>,
}

fn entry_stats(runs: &[RunRecord]) -> Vec<EntryStats> {
    let mut order: Vec<&str> = Vec::new();
    for r in runs {
        if !order.contains(&r.entry.as_str()) {
            order.push(&r.entry);
        }
    }
    order
        .into_iter()
        .map(|entry| {
            let mine: Vec<&RunRecord> = runs.iter().filter(|r| r.entry == entry).collect();
            let met = mine.iter().filter(|r| r.outcome == Outcome::Pass).count();
            let mut times: Vec<f64> = mine
                .iter()
                .filter(|r| r.verdict.as_deref() == Some("invalid"))
                .filter_map(|r| r.first_violation_s)
                .collect();
            times.sort_by(f64::total_cmp);
            let median = match times.len() {
                0 => None,
                n if n % 2 == 1 => Some(times[n / 2]),
                n => Some((times[n / 2 - 1] + times[n / 2]) / 2.0),
            };
            EntryStats {
                entry: entry.to_string(),
                expect: mine[0].expect.clone(),
                runs: mine.len(),
                met,
                rate: met as f64 / mine.len() as f64,
                median_first_violation_s: median,
            }
        })
        .collect()
}

/// Which suite, where and when.
#[derive(Clone, Debug, Serialize)]
pub struct Head {
    pub suite: String,
    pub description: Option<String>,
    pub file: String,
    pub dir: String,
    pub started: String,
    pub duration_s: f64,
}

/// The whole suite.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub head: Head,
    pub finished: bool,
    pub counts: Counts,
    pub exit_code: u8,
    pub entries: Vec<EntryStats>,
    pub runs: Vec<RunRecord>,
}

impl Summary {
    /// `total` counts runs not finished yet too.
    pub fn new(head: Head, total: usize, runs: Vec<RunRecord>, finished: bool) -> Summary {
        let mut counts = Counts {
            total,
            ..Counts::default()
        };
        for r in &runs {
            match r.outcome {
                Outcome::Pass => counts.pass += 1,
                Outcome::Fail => counts.fail += 1,
                Outcome::Unknown => counts.unknown += 1,
                Outcome::Error => counts.error += 1,
            }
        }
        counts.pending = total - runs.len();
        Summary {
            head,
            finished,
            exit_code: exit_code(&counts),
            counts,
            entries: entry_stats(&runs),
            runs,
        }
    }
}

/// 1 when any run missed its expectation, 2 when any could not run, 3 when the rest were only
/// undecided, 0 when every run met its expectation.
pub fn exit_code(c: &Counts) -> u8 {
    if c.fail > 0 {
        1
    } else if c.error > 0 {
        2
    } else if c.unknown > 0 {
        3
    } else {
        0
    }
}

/// Writes summary.json, junit.xml and summary.md into `dir`.
pub fn write_all(dir: &Path, s: &Summary) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(s).map_err(std::io::Error::other)?;
    write_atomic(&dir.join("summary.json"), &json)?;
    write_atomic(&dir.join("junit.xml"), &junit(s))?;
    write_atomic(&dir.join("summary.md"), &markdown(s))
}

/// Readers (CI, a human with `cat`) never see a half-written file.
fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// JUnit XML as Jenkins, GitLab and GitHub reporters read it: one `<testcase>` per run. A run that
/// missed its expectation is a `<failure>`; an unknown verdict or a run that could not start is an
/// `<error>`.
pub fn junit(s: &Summary) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let c = &s.counts;
    let attrs = format!(
        "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\" timestamp=\"{}\"",
        c.total,
        c.fail,
        c.unknown + c.error,
        c.pending,
        s.head.duration_s,
        esc(&s.head.started)
    );
    let _ = writeln!(x, "<testsuites name=\"{}\" {attrs}>", esc(&s.head.suite));
    let _ = writeln!(x, "  <testsuite name=\"{}\" {attrs}>", esc(&s.head.suite));
    let _ = writeln!(
        x,
        "    <properties>\n      <property name=\"file\" value=\"{}\"/>\n      <property name=\"dir\" value=\"{}\"/>\n    </properties>",
        esc(&s.head.file),
        esc(&s.head.dir)
    );
    for r in &s.runs {
        let _ = write!(
            x,
            "    <testcase classname=\"{}.{}\" name=\"{}\" time=\"{:.3}\">",
            esc(&s.head.suite),
            esc(&r.entry),
            esc(&r.name),
            r.duration_s
        );
        let verdict = r.verdict.as_deref().unwrap_or("error");
        let report = r
            .report
            .as_deref()
            .or(r.run_dir.as_deref())
            .unwrap_or("(none)");
        let body = format!(
            "verdict: {verdict} (expected {})\n{}\nreport: {report}",
            r.expect, r.explanation
        );
        let (tag, kind, message) = match r.outcome {
            Outcome::Pass => ("", "", String::new()),
            Outcome::Fail => (
                "failure",
                verdict,
                format!("expected {}, got {verdict}", r.expect),
            ),
            Outcome::Unknown => (
                "error",
                "unknown",
                format!("verdict unknown (expected {})", r.expect),
            ),
            Outcome::Error => ("error", "setup-error", first_line(&r.explanation)),
        };
        if !tag.is_empty() {
            let _ = write!(
                x,
                "\n      <{tag} message=\"{}\" type=\"{}\">{}</{tag}>",
                esc(&message),
                esc(kind),
                esc(&body)
            );
        }
        let out = format!(
            "variant={} workload={} faults={} seed={} repeat={} bugs={} expect={} verdict={verdict} run_dir={}",
            r.variant,
            r.workload,
            r.faults,
            r.seed,
            r.repeat,
            if r.bugs.is_empty() { "none".to_string() } else { r.bugs.join(",") },
            r.expect,
            r.run_dir.as_deref().unwrap_or("(none)")
        );
        let _ = writeln!(
            x,
            "\n      <system-out>{}</system-out>\n    </testcase>",
            esc(&out)
        );
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Escapes text for XML attributes and content, dropping characters XML 1.0 cannot carry.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\n' => o.push_str("&#10;"),
            '\r' => o.push_str("&#13;"),
            '\t' => o.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

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
    let _ = writeln!(m, "## {mark} Suite `{}`{state}\n", s.head.suite);
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

pub fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{secs:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::events::Event as X;

    fn rec(name: &str, outcome: Outcome, verdict: Option<&str>, expect: &str) -> RunRecord {
        RunRecord {
            name: name.into(),
            entry: "e".into(),
            variant: "multi".into(),
            workload: "register".into(),
            faults: "partition,kill".into(),
            seed: 1,
            repeat: 1,
            bugs: vec![],
            expect: expect.into(),
            outcome,
            verdict: verdict.map(str::to_string),
            explanation: "read of 3 at <t=1.2s> saw \"2\" & then | stale\nline two \u{1}".into(),
            ops_per_sec: Some(1234.4),
            p99_ms: Some(12.34),
            availability: Some(0.987),
            first_violation_s: Some(4.25),
            run_dir: Some(format!("{name}/20260101T000000.000Z")),
            report: Some(format!("{name}/20260101T000000.000Z/report.html")),
            duration_s: 12.5,
        }
    }

    fn sample() -> Summary {
        Summary::new(
            Head {
                suite: "smoke".into(),
                description: Some("short runs".into()),
                file: "suites/smoke.toml".into(),
                dir: "results/smoke/x".into(),
                started: "2026-01-01T00:00:00Z".into(),
                duration_s: 75.0,
            },
            5,
            vec![
                rec("a-ok", Outcome::Pass, Some("valid"), "valid"),
                rec("b-bad<&>", Outcome::Fail, Some("invalid"), "valid"),
                rec("c-unk", Outcome::Unknown, Some("unknown"), "valid"),
                rec("d-err", Outcome::Error, None, "invalid"),
            ],
            false,
        )
    }

    #[test]
    fn exit_codes_follow_the_worst_outcome() {
        let c = |fail, error, unknown| Counts {
            total: 9,
            pass: 1,
            fail,
            unknown,
            error,
            pending: 0,
        };
        assert_eq!(exit_code(&c(0, 0, 0)), 0);
        assert_eq!(exit_code(&c(0, 0, 2)), 3);
        assert_eq!(exit_code(&c(0, 1, 2)), 2);
        assert_eq!(exit_code(&c(1, 1, 2)), 1);
        let s = sample();
        assert_eq!(s.exit_code, 1);
        assert_eq!(
            (
                s.counts.pass,
                s.counts.fail,
                s.counts.unknown,
                s.counts.error,
                s.counts.pending
            ),
            (1, 1, 1, 1, 1)
        );
    }

    /// (testcase name, child tag, type, message, text)
    type Case = (String, String, String, String, String);

    /// Parses the JUnit XML with a real XML parser and returns each testcase and the root's
    /// attributes.
    fn parse_junit(xml: &str) -> (Vec<Case>, Vec<(String, String)>) {
        let mut r = quick_xml::Reader::from_str(xml);
        let mut cases = Vec::new();
        let mut root = Vec::new();
        let mut stack: Vec<String> = Vec::new();
        let mut cur: Option<Case> = None;
        let attr = |e: &quick_xml::events::BytesStart, k: &str| -> String {
            e.try_get_attribute(k)
                .unwrap()
                .map(|a| a.unescape_value().unwrap().into_owned())
                .unwrap_or_default()
        };
        loop {
            match r.read_event().expect("well-formed XML") {
                X::Start(e) => {
                    let tag = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                    if tag == "testsuites" {
                        for a in e.attributes() {
                            let a = a.unwrap();
                            root.push((
                                String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                                a.unescape_value().unwrap().into_owned(),
                            ));
                        }
                    }
                    if tag == "testcase" {
                        cur = Some((
                            attr(&e, "name"),
                            String::new(),
                            String::new(),
                            String::new(),
                            String::new(),
                        ));
                    }
                    if tag == "failure" || tag == "error" {
                        let c = cur.as_mut().unwrap();
                        c.1 = tag.clone();
                        c.2 = attr(&e, "type");
                        c.3 = attr(&e, "message");
                    }
                    stack.push(tag);
                }
                X::Text(t) => {
                    if matches!(stack.last().map(String::as_str), Some("failure" | "error")) {
                        cur.as_mut().unwrap().4.push_str(&t.unescape().unwrap());
                    }
                }
                X::End(e) => {
                    stack.pop();
                    if e.name().as_ref() == b"testcase" {
                        cases.push(cur.take().unwrap());
                    }
                }
                X::Eof => break,
                _ => {}
            }
        }
        assert!(stack.is_empty(), "unbalanced tags");
        (cases, root)
    }

    #[test]
    fn junit_is_well_formed_and_carries_verdict_explanation_and_report() {
        let xml = junit(&sample());
        let (cases, root) = parse_junit(&xml);
        let get = |k: &str| root.iter().find(|(a, _)| a == k).unwrap().1.clone();
        assert_eq!(get("tests"), "5");
        assert_eq!(get("failures"), "1");
        assert_eq!(get("errors"), "2");
        assert_eq!(cases.len(), 4);
        assert_eq!(cases[0].0, "a-ok");
        assert_eq!(cases[0].1, "", "a passing run has no failure");
        let b = &cases[1];
        assert_eq!(b.0, "b-bad<&>");
        assert_eq!((b.1.as_str(), b.2.as_str()), ("failure", "invalid"));
        assert_eq!(b.3, "expected valid, got invalid");
        assert!(b.4.contains("verdict: invalid (expected valid)"), "{}", b.4);
        assert!(
            b.4.contains("saw \"2\" & then | stale\nline two"),
            "{}",
            b.4
        );
        assert!(b
            .4
            .contains("report: b-bad<&>/20260101T000000.000Z/report.html"));
        assert_eq!(
            (cases[2].1.as_str(), cases[2].2.as_str()),
            ("error", "unknown")
        );
        assert_eq!(
            (cases[3].1.as_str(), cases[3].2.as_str()),
            ("error", "setup-error")
        );
    }

    #[test]
    fn entry_stats_give_detection_rate_and_median_time() {
        let mut runs = Vec::new();
        for (i, (outcome, verdict, t)) in [
            (Outcome::Pass, "invalid", Some(3.0)),
            (Outcome::Pass, "invalid", Some(1.0)),
            (Outcome::Fail, "valid", None),
            (Outcome::Pass, "invalid", Some(10.0)),
            (Outcome::Pass, "invalid", Some(2.0)),
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = rec(&format!("b{i}"), outcome, Some(verdict), "invalid");
            r.entry = "bug".into();
            r.first_violation_s = t;
            runs.push(r);
        }
        let mut ok = rec("ok", Outcome::Pass, Some("valid"), "valid");
        ok.entry = "ok".into();
        runs.push(ok);
        let e = entry_stats(&runs);
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].entry.as_str(), e[0].runs, e[0].met), ("bug", 5, 4));
        assert_eq!(e[0].rate, 0.8);
        assert_eq!(e[0].median_first_violation_s, Some(2.5));
        assert_eq!(
            (e[1].runs, e[1].met, e[1].median_first_violation_s),
            (1, 1, None)
        );
    }

    #[test]
    fn escaping_removes_what_xml_cannot_hold() {
        assert_eq!(esc("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(esc("x\u{0}y\u{1b}"), "x\u{FFFD}y\u{FFFD}");
        assert_eq!(esc("é ✓"), "é ✓");
    }

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

    #[test]
    fn stats_are_read_leniently_from_results_json() {
        let v: Value = serde_json::json!({
            "test": "t", "verdict": "invalid",
            "check": {"verdict": "invalid", "explanation": "stale read",
                      "counterexample": {"op": {"start_s": 5.5, "end_s": 6.25},
                                         "shrunk": [{"start_s": 3.5}, {"start_s": 5.5}]}},
            "counts": {"ok": 90, "fail": 5, "info": 5},
            "ops_per_sec": 250.5,
            "latency_ms": {"p50": 1.0, "p99": 8.5}
        });
        let s = RunStats::from_results_json(&v);
        assert_eq!(s.verdict.as_deref(), Some("invalid"));
        assert_eq!(s.explanation, "stale read");
        assert_eq!(s.ops_per_sec, Some(250.5));
        assert_eq!(s.p99_ms, Some(8.5));
        assert_eq!(s.availability, Some(0.9));
        assert_eq!(
            s.first_violation_s,
            Some(6.25),
            "when the failing op completed"
        );
        let older = serde_json::json!({"check": {"counterexample":
            {"prefix": [{"time": 3_500_000_000u64}, {"start_s": 4.0}]}}});
        assert_eq!(
            RunStats::from_results_json(&older).first_violation_s,
            Some(3.5)
        );
        let empty = RunStats::from_results_json(&serde_json::json!({}));
        assert_eq!(empty, RunStats::default());
    }

    #[test]
    fn write_all_writes_three_files() {
        let dir = std::env::temp_dir().join(format!("suite-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_all(&dir, &sample()).unwrap();
        let j: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(j["counts"]["fail"], 1);
        assert_eq!(j["runs"][1]["outcome"], "fail");
        assert!(dir.join("junit.xml").exists() && dir.join("summary.md").exists());
        assert!(!dir.join("summary.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
