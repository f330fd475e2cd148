//! What every page shares: the CSS, the page frame, the verdict badge and how numbers and times
//! read. Pages are written with maud's `html!`, which escapes every spliced value, so text from a
//! history, a node or a config file cannot become markup; only SVG drawn by this crate goes in
//! pre-escaped.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

/// The page's CSS, shared by the report, the index and the comparison.
pub const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2329;background:#f4f5f7}
main{max-width:1180px;margin:0 auto;padding:0 20px 40px}
h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #d8dce1;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.banner{padding:18px 24px;color:#fff;margin:0 -20px 16px}
.banner h1{margin:0;font-size:26px;letter-spacing:.5px}
.banner .sub{opacity:.92;font-size:14px}
.banner .figures{font-size:16px;margin-top:6px}
#config-table th{text-align:left}
.valid{background:#1f8f4e}.invalid{background:#c62828}.unknown{background:#d98c00}.unchecked{background:#6b7480}
.explanation{white-space:pre-wrap;font:14px/1.5 ui-monospace,Menlo,Consolas,monospace;background:rgba(255,255,255,.14);padding:10px 12px;border-radius:6px;margin:10px 0 0}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600;text-transform:uppercase}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border:1px solid #e0e3e7;text-align:right;vertical-align:top}
th{background:#eef0f3;font-weight:600}
td:first-child,th:first-child{text-align:left}
td.l,th.l{text-align:left;max-width:700px;overflow-wrap:anywhere}
pre{background:#fff;border:1px solid #e0e3e7;padding:8px 10px;overflow-x:auto;border-radius:4px}
.notes{background:#fff8e1;border:1px solid #f0d98c;border-radius:6px;padding:8px 12px 8px 30px}
figure{background:#fff;border:1px solid #e0e3e7;border-radius:6px;margin:10px 0;padding:6px}
figure svg{max-width:100%;height:auto;display:block}
.grid{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.muted{color:#6b7480}
a{color:#1565c0}
"#;

/// A whole page: doctype, title, CSS, then `body` inside `<main>`.
pub fn page(title: &str, body: Markup) -> String {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body { main { (body) } }
        }
    };
    page.into_string() + "\n"
}

/// The CSS class of a verdict's colour.
pub fn verdict_class(v: Option<&str>) -> &'static str {
    match v {
        Some("valid") => "valid",
        Some("invalid") => "invalid",
        Some("unknown") => "unknown",
        _ => "unchecked",
    }
}

/// A coloured verdict badge for tables.
pub fn badge(v: Option<&str>) -> Markup {
    html! { span.badge.(verdict_class(v)) { (v.unwrap_or("not checked")) } }
}

/// Milliseconds for tables: 3 significant-ish digits.
pub fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1}%", v * 100.0))
}

/// A figure that may be missing, formatted by `f`, else a dash.
pub fn or_dash(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "–".into(), f)
}

/// A JSON value as short text (strings unquoted).
pub fn short(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        v => v.to_string(),
    }
}

/// `2026-11-22T19:43:08.026Z` or a run folder name `20261122T194308.026Z` →
/// `2026-11-22 19:43:08`; anything else unchanged.
pub fn short_time(t: &str) -> String {
    fn digits(s: Option<&str>) -> Option<&str> {
        s.filter(|s| s.chars().all(|c| c.is_ascii_digit()))
    }
    if let (Some(d), Some("T"), Some(hms)) = (t.get(..10), t.get(10..11), t.get(11..19)) {
        return format!("{d} {hms}");
    }
    match (digits(t.get(..8)), t.get(8..9), digits(t.get(9..15))) {
        (Some(d), Some("T"), Some(hms)) => format!(
            "{}-{}-{} {}:{}:{}",
            &d[..4],
            &d[4..6],
            &d[6..],
            &hms[..2],
            &hms[2..4],
            &hms[4..]
        ),
        _ => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        let s = "<b a=\"1\">&'";
        assert_eq!(
            html! { p title=(s) { (s) } }.into_string(),
            "<p title=\"&lt;b a=&quot;1&quot;&gt;&amp;'\">&lt;b a=&quot;1&quot;&gt;&amp;'</p>"
        );
    }

    #[test]
    fn times_read_short() {
        assert_eq!(
            short_time("2026-11-22T19:43:08.0264Z"),
            "2026-11-22 19:43:08"
        );
        assert_eq!(short_time("20261122T192126.160Z"), "2026-11-22 19:21:26");
        assert_eq!(short_time("yesterday"), "yesterday");
    }
}
