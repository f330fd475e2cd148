//! `junit.xml`: the suite as JUnit XML, for CI test reporters.

use super::{first_line, Outcome, Summary};
use std::fmt::Write as _;

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

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;
    use quick_xml::events::Event as X;

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
    fn escaping_removes_what_xml_cannot_hold() {
        assert_eq!(esc("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(esc("x\u{0}y\u{1b}"), "x\u{FFFD}y\u{FFFD}");
        assert_eq!(esc("é ✓"), "é ✓");
    }
}
