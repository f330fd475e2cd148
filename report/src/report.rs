//! `report.html` for one run folder: one self-contained page (inline CSS and SVG, no network)
//! with the verdict and its explanation, the counterexample drawn as a timeline, the
//! configuration and replay command, stats tables, the plots, a fault timeline, node statistics
//! and links to the raw files. Every piece of text from a history, a node or a config file is
//! HTML-escaped. Odd runs (no history, a truncated one, no results, no node stats) are reported
//! with what is missing rather than failing.

use crate::analysis::{Analysis, Counts, Latency, PeriodStats};
use crate::plot;
use serde_json::Value;
use std::fmt::Write as _;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};

/// A run folder as read from disk, leniently: anything missing becomes a note.
pub struct Run {
    pub dir: PathBuf,
    /// `test.json`
    pub test: Option<Value>,
    /// `results.json`
    pub results: Option<Value>,
    /// `node-stats.json`
    pub node_stats: Option<Value>,
    /// The history's analysis (empty when there is no history).
    pub analysis: Analysis,
    /// What is missing or odd, in plain words.
    pub notes: Vec<String>,
}

impl Run {
    /// Reads a run folder; fails only when `dir` is not a readable directory.
    pub fn load(dir: &Path) -> Result<Run, String> {
        let mut run = Run::load_meta(dir)?;
        let hist = dir.join("history.jsonl");
        if !hist.exists() {
            run.notes
                .push("no history.jsonl: the run recorded no operations".into());
            return Ok(run);
        }
        match Analysis::from_jsonl(&hist) {
            Ok((a, bad)) => {
                if let Some(e) = bad {
                    run.notes.push(format!(
                        "{e} (the history is cut short, as when a run is aborted; the {} events \
                         before it are shown)",
                        a.client_events + a.nemesis_events
                    ));
                }
                run.analysis = a;
            }
            Err(e) => run.notes.push(format!("history unreadable: {e}")),
        }
        Ok(run)
    }

    /// Reads the small JSON files only (no history): what the index needs.
    pub fn load_meta(dir: &Path) -> Result<Run, String> {
        if !dir.is_dir() {
            return Err(format!(
                "{}: not a run folder (no such directory)",
                dir.display()
            ));
        }
        let mut notes = Vec::new();
        let mut json = |name: &str, missing: &str| match std::fs::read_to_string(dir.join(name)) {
            Ok(s) => match serde_json::from_str::<Value>(&s) {
                Ok(v) => Some(v),
                Err(e) => {
                    notes.push(format!("{}/{name}: not valid JSON: {e}", dir.display()));
                    None
                }
            },
            Err(_) => {
                if !missing.is_empty() {
                    notes.push(missing.to_string());
                }
                None
            }
        };
        let test = json("test.json", "no test.json: the configuration is unknown");
        let results = json(
            "results.json",
            "no results.json: the run was not checked (it may have been aborted); \
             `harness analyze RUN_DIR` checks it",
        );
        let node_stats = json("node-stats.json", "");
        Ok(Run {
            dir: dir.to_path_buf(),
            test,
            results,
            node_stats,
            analysis: Analysis::default(),
            notes,
        })
    }

    /// The test's name: results.json, then test.json, then the parent folder's name.
    pub fn name(&self) -> String {
        let from = |v: &Option<Value>, k: &str| v.as_ref()?.get(k)?.as_str().map(str::to_string);
        from(&self.results, "test")
            .or_else(|| from(&self.test, "name"))
            .or_else(|| from(&self.test, "test"))
            .or_else(|| {
                let parent = self
                    .dir
                    .canonicalize()
                    .ok()?
                    .parent()?
                    .file_name()?
                    .to_owned();
                Some(parent.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "run".into())
    }

    /// `valid` / `invalid` / `unknown`, or `None` when the run was not checked.
    pub fn verdict(&self) -> Option<String> {
        let r = self.results.as_ref()?;
        r.get("verdict")
            .or_else(|| r.get("check")?.get("verdict"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// A field of results.json, then of results.json's `check`.
    pub fn result_field(&self, k: &str) -> Option<&Value> {
        let r = self.results.as_ref()?;
        r.get(k).or_else(|| r.get("check")?.get(k))
    }

    /// The checker's words. The top-level `explanation` (which may add context such as
    /// "interrupted") wins unless a later `harness analyze` rewrote `check` without it.
    pub fn explanation(&self) -> Option<String> {
        let r = self.results.as_ref()?;
        let top = r.get("explanation").and_then(Value::as_str);
        let check = r
            .get("check")
            .and_then(|c| c.get("explanation"))
            .and_then(Value::as_str);
        match (top, check) {
            (Some(t), Some(c)) if !t.contains(c) => Some(c.to_string()),
            (Some(t), _) => Some(t.to_string()),
            (None, c) => c.map(str::to_string),
        }
    }

    /// A configuration field from test.json (top level, or under `options`/`config`/`opts`).
    pub fn config(&self, k: &str) -> Option<&Value> {
        let t = self.test.as_ref()?;
        t.get(k)
            .or_else(|| t.get("options")?.get(k))
            .or_else(|| t.get("config")?.get(k))
            .or_else(|| t.get("opts")?.get(k))
    }

    /// The node variant (`basic`, `multi`) when the config names one.
    pub fn variant(&self) -> Option<String> {
        if let Some(v) = self.config("variant").and_then(Value::as_str) {
            return Some(v.to_string());
        }
        let args = self
            .config("node_args")
            .or_else(|| self.config("node-args"))?;
        let args: Vec<&str> = args.as_array()?.iter().filter_map(Value::as_str).collect();
        let i = args.iter().position(|a| *a == "--variant")?;
        args.get(i + 1).map(|s| s.to_string())
    }
}

/// What [`write_run_report`] wrote.
pub struct Written {
    pub report: PathBuf,
    /// What was missing or odd about the run, also shown in the report.
    pub notes: Vec<String>,
}

/// Regenerates `latency-raw.svg`, `latency-quantiles.svg`, `rate.svg` and `report.html` in a run
/// folder from its files.
pub fn write_run_report(run_dir: &Path) -> Result<Written, String> {
    let mut run = Run::load(run_dir)?;
    let mut a = std::mem::take(&mut run.analysis);
    a.op_timeout_ms = run
        .config("op_timeout")
        .and_then(Value::as_f64)
        .map(|s| s * 1000.0);
    add_analysis_notes(&mut run, &a);
    let mut svgs = Vec::new();
    for (file, title, svg) in [
        (
            "latency-raw.svg",
            "Latency of every op",
            plot::latency_raw_svg(&a),
        ),
        (
            "latency-quantiles.svg",
            "Latency quantiles",
            plot::latency_quantiles_svg(&a),
        ),
        ("rate.svg", "Throughput", plot::rate_svg(&a)),
    ] {
        match svg {
            Ok(svg) => {
                write(&run_dir.join(file), &svg)?;
                svgs.push((file, title, Ok(svg)));
            }
            Err(e) => {
                run.notes.push(format!("{file}: {e}"));
                svgs.push((file, title, Err(e)));
            }
        }
    }
    let key_file = write_key_history(&run, run_dir)?;
    let html = render(&run, &a, &svgs, key_file.as_deref());
    let report = run_dir.join("report.html");
    write(&report, &html)?;
    Ok(Written {
        report,
        notes: run.notes,
    })
}

fn write(path: &Path, s: &str) -> Result<(), String> {
    std::fs::write(path, s).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

fn add_analysis_notes(run: &mut Run, a: &Analysis) {
    let c = a.counts_total();
    if a.ops.is_empty() && a.nemesis_events > 0 {
        run.notes
            .push("the history holds no client operations".into());
    } else if a.ops.is_empty() && run.dir.join("history.jsonl").exists() {
        run.notes.push("the history is empty".into());
    }
    if c.pending > 0 {
        run.notes.push(format!(
            "{} op{} invoked but never completed (the run ended first); left out of latency and \
             availability",
            c.pending,
            plural(c.pending)
        ));
    }
    if !a.ops.is_empty() && c.ok == 0 {
        run.notes
            .push("no operation succeeded: no latency figures for ok ops".into());
    }
    if a.unmatched_completions > 0 {
        run.notes.push(format!(
            "{} completion{} had no matching invocation and {} ignored",
            a.unmatched_completions,
            plural(a.unmatched_completions),
            if a.unmatched_completions == 1 {
                "was"
            } else {
                "were"
            }
        ));
    }
    match &run.node_stats {
        None => run.notes.push(
            "no node-stats.json: node statistics unknown (the node may not answer `stats`)".into(),
        ),
        Some(Value::Object(m)) => {
            let silent: Vec<&str> = m
                .iter()
                .filter(|(_, v)| !v.is_object())
                .map(|(k, _)| k.as_str())
                .collect();
            if !silent.is_empty() {
                run.notes.push(format!(
                    "no stats from {} (did not answer `stats`)",
                    silent.join(", ")
                ));
            }
        }
        Some(_) => run
            .notes
            .push("node-stats.json is not an object of nodes; ignored".into()),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// For an invalid run, writes the failing key's events to `history-key-<key>.jsonl` so the
/// report can link the full key history. Returns the file name.
fn write_key_history(run: &Run, dir: &Path) -> Result<Option<String>, String> {
    let cx = run.result_field("counterexample");
    let Some(key) = cx.and_then(|c| c.get("key")).and_then(Value::as_str) else {
        return Ok(None);
    };
    if key.is_empty() {
        return Ok(None);
    }
    let Ok(history) = std::fs::File::open(dir.join("history.jsonl")) else {
        return Ok(None);
    };
    let safe: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    let name = format!("history-key-{safe}.jsonl");
    #[derive(serde::Deserialize)]
    struct KeyOf<'a> {
        process: Value,
        #[serde(borrow, default)]
        key: Option<std::borrow::Cow<'a, str>>,
    }
    let mut out = String::new();
    for line in std::io::BufReader::new(history)
        .lines()
        .map_while(Result::ok)
    {
        let keep = serde_json::from_str::<KeyOf>(&line)
            .is_ok_and(|e| !e.process.is_u64() || e.key.as_deref() == Some(key));
        if keep {
            out.push_str(&line);
            out.push('\n');
        }
    }
    write(&dir.join(&name), &out)?;
    Ok(Some(name))
}

/// HTML-escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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

/// The page's CSS, shared with the index and comparison pages.
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

/// The start of a page: doctype, title, CSS.
pub fn page_head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body><main>\n",
        esc(title)
    )
}

fn verdict_class(v: Option<&str>) -> &'static str {
    match v {
        Some("valid") => "valid",
        Some("invalid") => "invalid",
        Some("unknown") => "unknown",
        _ => "unchecked",
    }
}

/// A coloured verdict badge for tables.
pub fn badge(v: Option<&str>) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        verdict_class(v),
        esc(v.unwrap_or("not checked"))
    )
}

type Svg<'a> = (&'a str, &'a str, Result<String, String>);

fn render(run: &Run, a: &Analysis, svgs: &[Svg], key_file: Option<&str>) -> String {
    let name = run.name();
    let verdict = run.verdict();
    let mut h = page_head(&format!(
        "{name}: {}",
        verdict.as_deref().unwrap_or("not checked")
    ));
    banner(&mut h, run, a, &name, verdict.as_deref());
    if !run.notes.is_empty() {
        h.push_str("<section id=\"notes\"><h2>What is missing</h2><ul class=\"notes\">");
        for n in &run.notes {
            let _ = write!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul></section>\n");
    }
    if verdict.as_deref() == Some("invalid") {
        counterexample(&mut h, run, key_file);
    }
    config(&mut h, run);
    stats(&mut h, a);
    h.push_str("<section id=\"plots\"><h2>Plots</h2>");
    for (file, title, svg) in svgs {
        match svg {
            Ok(svg) => {
                let _ = write!(
                    h,
                    "<figure id=\"{}\">{svg}<figcaption class=\"muted\">{} · \
                     <a href=\"{file}\">{file}</a></figcaption></figure>",
                    file.trim_end_matches(".svg"),
                    esc(title)
                );
            }
            Err(e) => {
                let _ = write!(h, "<p>{}: {}</p>", esc(title), esc(e));
            }
        }
    }
    h.push_str("</section>\n");
    faults(&mut h, a);
    nodes(&mut h, run, a);
    files(&mut h, run);
    h.push_str("</main></body></html>\n");
    h
}

fn banner(h: &mut String, run: &Run, a: &Analysis, name: &str, verdict: Option<&str>) {
    let explanation = run.explanation().unwrap_or_else(|| {
        if run.results.is_some() {
            "results.json holds no explanation".into()
        } else {
            "This run has not been checked: results.json is missing.".into()
        }
    });
    let started = run
        .results
        .as_ref()
        .and_then(|r| r.get("started"))
        .or_else(|| run.config("started"))
        .map(short)
        .unwrap_or_default();
    let dir = run.dir.display().to_string();
    let _ = write!(
        h,
        "<header id=\"verdict\" class=\"banner {}\"><h1>{} · {}</h1>\
         <div class=\"sub\">{} {}</div><div class=\"figures\">{}</div>\
         <div class=\"explanation\">{}</div></header>",
        verdict_class(verdict),
        esc(&verdict.unwrap_or("not checked").to_uppercase()),
        esc(name),
        esc(&match short_time(&started) {
            t if t != started => format!("{t} UTC"),
            t => t,
        }),
        esc(&dir),
        key_figures(a),
        esc(&explanation)
    );
}

/// The run at a glance: ops, throughput, availability, p99, faults.
fn key_figures(a: &Analysis) -> String {
    let c = a.counts_total();
    let mut parts = vec![
        format!("<b>{}</b> ops in {:.1} s", c.completed(), a.duration_s()),
        format!("<b>{:.1}</b> ops/s", a.throughput(false)),
        format!("availability <b>{}</b>", pct(c.availability())),
    ];
    if let Some(l) = a.latency_ok() {
        parts.push(format!(
            "p50 <b>{}</b> ms · p99 <b>{}</b> ms",
            ms(l.p50),
            ms(l.p99)
        ));
    }
    let kinds = a.fault_kinds();
    parts.push(if kinds.is_empty() {
        "no faults".into()
    } else {
        format!("faults: {}", esc(&kinds.join(", ")))
    });
    parts.join(" · ")
}

/// Shell-quotes a path for the replay command.
fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The command that replays a run: same seed, schedule and configuration.
pub fn replay_command(run_dir: &Path) -> String {
    let dir = run_dir
        .canonicalize()
        .unwrap_or_else(|_| run_dir.to_path_buf());
    format!(
        "harness test --replay {}",
        shell_quote(&dir.display().to_string())
    )
}

/// Configuration rows: top-level scalars and arrays, with `options`/`config`/`opts` objects
/// flattened one level; other nested objects stay in the full JSON below the table.
fn config_rows(m: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    const FIRST: [&str; 8] = [
        "name",
        "workload",
        "nodes",
        "variant",
        "nemesis",
        "faults",
        "seed",
        "node_args",
    ];
    let mut rows: Vec<(String, String)> = Vec::new();
    for (k, v) in m {
        match v {
            Value::Object(sub) if ["options", "config", "opts"].contains(&k.as_str()) => rows
                .extend(
                    sub.iter()
                        .filter(|(_, v)| !v.is_null() && !v.is_object())
                        .map(|(k, v)| (k.clone(), short(v))),
                ),
            Value::Object(_) => {}
            v => rows.push((k.clone(), short(v))),
        }
    }
    rows.sort_by_key(|(k, _)| (FIRST.iter().position(|f| f == k).unwrap_or(99), k.clone()));
    rows.dedup_by(|a, b| a.0 == b.0);
    for (_, v) in &mut rows {
        if v.chars().count() > 300 {
            *v = v.chars().take(300).chain(std::iter::once('…')).collect();
        }
    }
    rows
}

fn config(h: &mut String, run: &Run) {
    h.push_str("<section id=\"config\"><h2>Configuration</h2>");
    match &run.test {
        Some(Value::Object(m)) => {
            h.push_str("<table id=\"config-table\">");
            for pair in config_rows(m).chunks(2) {
                h.push_str("<tr>");
                for (k, v) in pair {
                    let _ = write!(h, "<th>{}</th><td class=\"l\">{}</td>", esc(k), esc(v));
                }
                h.push_str("</tr>");
            }
            let pretty = serde_json::to_string_pretty(m).unwrap_or_default();
            let _ = write!(
                h,
                "</table><details><summary>test.json</summary><pre>{}</pre></details>",
                esc(&pretty)
            );
        }
        Some(v) => {
            let _ = write!(h, "<pre>{}</pre>", esc(&v.to_string()));
        }
        None => h.push_str("<p class=\"muted\">No test.json in this run folder.</p>"),
    }
    let _ = write!(
        h,
        "<h3>Replay</h3><pre id=\"replay\">{}</pre></section>",
        esc(&replay_command(&run.dir))
    );
}

fn latency_cells(l: &Option<Latency>) -> String {
    match l {
        Some(l) => format!(
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            ms(l.p50),
            ms(l.p95),
            ms(l.p99),
            ms(l.max)
        ),
        None => "<td colspan=\"4\" class=\"muted\">no ok ops</td>".into(),
    }
}

fn counts_cells(c: &Counts) -> String {
    format!(
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        c.completed(),
        c.ok,
        c.fail,
        c.info,
        pct(c.availability())
    )
}

fn stats(h: &mut String, a: &Analysis) {
    let total = a.counts_total();
    let _ = write!(
        h,
        "<section id=\"stats\"><h2>Stats</h2><p>{} ops completed over {:.1} s: {:.1} ops/s, \
         {:.1} ok/s; availability {}.{}</p>",
        total.completed(),
        a.duration_s(),
        a.throughput(false),
        a.throughput(true),
        pct(total.availability()),
        if total.pending > 0 {
            format!(" {} ops never completed.", total.pending)
        } else {
            String::new()
        }
    );
    h.push_str(
        "<div class=\"grid\"><div><h3>Operations by f</h3><table id=\"counts\"><tr><th>f</th>\
         <th>completed</th><th>ok</th><th>fail</th><th>info</th><th>availability</th>\
         <th>pending</th></tr>",
    );
    for (i, c) in a.counts_by_f().iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td>{}</td>{}<td>{}</td></tr>",
            esc(&a.fs[i]),
            counts_cells(c),
            c.pending
        );
    }
    let _ = write!(
        h,
        "<tr><th>all</th>{}<td>{}</td></tr></table></div>",
        counts_cells(&total),
        total.pending
    );
    h.push_str(
        "<div><h3>Latency of ok ops (ms)</h3><table id=\"latency\"><tr><th>f</th><th>ok ops</th>\
         <th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>",
    );
    for (i, l) in a.latency_by_f().iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td>{}</tr>",
            esc(&a.fs[i]),
            l.map_or(0, |l| l.n),
            latency_cells(l)
        );
    }
    let all = a.latency_ok();
    let _ = write!(
        h,
        "<tr><th>all</th><td>{}</td>{}</tr></table></div></div>",
        all.map_or(0, |l| l.n),
        latency_cells(&all)
    );
    h.push_str(
        "<h3>Availability in quiet periods and under each fault</h3>\
         <p class=\"muted\">An op counts for the period in which it was invoked.</p>",
    );
    period_table(h, &a.periods());
    h.push_str("</section>\n");
}

/// The quiet-vs-fault table, shared with the comparison page.
pub fn period_table(h: &mut String, periods: &[PeriodStats]) {
    h.push_str(
        "<table id=\"availability\"><tr><th>period</th><th>time (s)</th><th>completed</th>\
         <th>ok</th><th>fail</th><th>info</th><th>availability</th><th>p50 ms</th>\
         <th>p95 ms</th><th>p99 ms</th><th>max ms</th></tr>",
    );
    for p in periods {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{:.1}</td>{}{}</tr>",
            esc(&p.name),
            p.seconds,
            counts_cells(&p.counts),
            latency_cells(&p.latency)
        );
    }
    h.push_str("</table>");
}

fn faults(h: &mut String, a: &Analysis) {
    h.push_str("<section id=\"faults\"><h2>Fault timeline</h2>");
    if a.faults.is_empty() {
        let _ = write!(
            h,
            "<p class=\"muted\">No faults: the history holds {} nemesis events and none started \
             a fault.</p></section>",
            a.nemesis_events
        );
        return;
    }
    h.push_str(&fault_timeline_svg(a));
    h.push_str(
        "<details><summary>Fault intervals</summary><table><tr><th>kind</th><th>target</th>\
         <th>from (s)</th><th>to (s)</th><th>length (s)</th></tr>",
    );
    for f in a.faults.iter().take(500) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}{}</td><td>{:.2}</td></tr>",
            esc(&f.kind),
            esc(f.target.as_deref().unwrap_or("cluster")),
            f.start_ns as f64 / 1e9,
            f.end_ns as f64 / 1e9,
            if f.open { " (never stopped)" } else { "" },
            (f.end_ns - f.start_ns) as f64 / 1e9
        );
    }
    if a.faults.len() > 500 {
        let _ = write!(
            h,
            "<tr><td colspan=\"5\">… {} more</td></tr>",
            a.faults.len() - 500
        );
    }
    h.push_str("</table></details></section>\n");
}

/// One lane per fault kind and target; time on x like the plots.
fn fault_timeline_svg(a: &Analysis) -> String {
    let kinds = a.fault_kinds();
    let mut lanes: Vec<(String, Option<String>)> = Vec::new();
    for f in &a.faults {
        let lane = (f.kind.clone(), f.target.clone());
        if !lanes.contains(&lane) {
            lanes.push(lane);
        }
    }
    lanes.sort();
    let (left, width, lane_h) = (150.0, 900.0, 22.0);
    let height = lanes.len() as f64 * lane_h + 44.0;
    let end = a.duration_s().max(0.001);
    let x = |ns: u64| left + ns as f64 / 1e9 / end * width;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" \
         viewBox=\"0 0 {} {height}\" font-family=\"sans-serif\" font-size=\"12\">",
        left + width + 20.0,
        left + width + 20.0
    );
    for (i, (kind, target)) in lanes.iter().enumerate() {
        let y = i as f64 * lane_h + 4.0;
        let ki = kinds.iter().position(|k| k == kind).unwrap_or(0);
        let c = plot::css(plot::fault_color(kind, ki));
        let label = format!("{kind} {}", target.as_deref().unwrap_or(""));
        let _ = write!(
            s,
            "<rect x=\"{left}\" y=\"{y}\" width=\"{width}\" height=\"{}\" fill=\"#f3f4f6\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            lane_h - 4.0,
            left - 8.0,
            y + 13.0,
            esc(label.trim())
        );
        for f in a
            .faults
            .iter()
            .filter(|f| &f.kind == kind && &f.target == target)
        {
            let (x0, x1) = (x(f.start_ns), x(f.end_ns));
            let _ = write!(
                s,
                "<rect x=\"{x0:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{c}\" \
                 fill-opacity=\"0.75\"><title>{} {:.2}–{:.2} s</title></rect>",
                (x1 - x0).max(1.0),
                lane_h - 4.0,
                esc(label.trim()),
                f.start_ns as f64 / 1e9,
                f.end_ns as f64 / 1e9
            );
        }
    }
    let axis_y = lanes.len() as f64 * lane_h + 6.0;
    let _ = write!(
        s,
        "<line x1=\"{left}\" x2=\"{}\" y1=\"{axis_y}\" y2=\"{axis_y}\" stroke=\"#555\"/>",
        left + width
    );
    let raw = end / 10.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(raw);
    for i in 0..=((end / step).floor() as usize).min(50) {
        let t = step * i as f64;
        let xx = left + t / end * width;
        let _ = write!(
            s,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{axis_y}\" y2=\"{}\" stroke=\"#555\"/>\
             <text x=\"{xx:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            axis_y + 4.0,
            axis_y + 16.0,
            (t * 1000.0).round() / 1000.0
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">time (s)</text></svg>",
        left + width / 2.0,
        axis_y + 32.0
    );
    s
}

/// Node statistics rolled up for the report and the comparison.
#[derive(Clone, Debug, Default)]
pub struct NodeSummary {
    pub answered: Vec<String>,
    pub silent: Vec<String>,
    /// Messages sent, summed over nodes.
    pub messages: Option<f64>,
    pub messages_per_op: Option<f64>,
    pub leader_changes: Option<f64>,
    pub phase1_rounds: Option<f64>,
}

fn sum_counters(v: &Value, pred: impl Fn(&str) -> bool) -> Option<f64> {
    let mut total = None;
    for stats in v.as_object()?.values().filter_map(Value::as_object) {
        for (k, n) in stats {
            if let Some(n) = n.as_f64().filter(|_| pred(&k.to_ascii_lowercase())) {
                *total.get_or_insert(0.0) += n;
            }
        }
    }
    total
}

/// Reads node counters leniently: messages are counters named like `*sent*` (or `*msg*`,
/// `*message*` when none is), leader changes `*leader*change*`, phase-1 rounds `*phase1*`
/// / `*phase_1*` (else prepares sent).
pub fn node_summary(v: &Value, completed_ops: usize) -> NodeSummary {
    let mut s = NodeSummary::default();
    if let Some(m) = v.as_object() {
        for (k, stats) in m {
            if stats.is_object() {
                s.answered.push(k.clone());
            } else {
                s.silent.push(k.clone());
            }
        }
    }
    s.messages = sum_counters(v, |k| k.contains("sent"))
        .or_else(|| sum_counters(v, |k| k.contains("msg") || k.contains("message")));
    s.messages_per_op = s
        .messages
        .filter(|_| completed_ops > 0)
        .map(|m| m / completed_ops as f64);
    s.leader_changes = sum_counters(v, |k| k.contains("leader") && k.contains("change"));
    s.phase1_rounds = sum_counters(v, |k| {
        k.contains("phase1") || k.contains("phase_1") || k.contains("phase-1")
    })
    .or_else(|| sum_counters(v, |k| k.contains("sent") && k.contains("prepare")));
    s
}

fn opt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    })
}

fn nodes(h: &mut String, run: &Run, a: &Analysis) {
    h.push_str("<section id=\"nodes\"><h2>Nodes</h2>");
    let Some(v) = run.node_stats.as_ref().filter(|v| v.is_object()) else {
        h.push_str(
            "<p class=\"muted\">No node statistics: node-stats.json is missing (the node may not \
             answer the optional <code>stats</code> request).</p></section>",
        );
        return;
    };
    let s = node_summary(v, a.counts_total().completed());
    let _ = write!(
        h,
        "<table id=\"node-summary\"><tr><th>messages per op</th><th>leader changes</th>\
         <th>phase-1 rounds</th><th>nodes answering stats</th></tr><tr><td>{}</td><td>{}</td>\
         <td>{}</td><td>{} of {}</td></tr></table>",
        opt(s.messages_per_op),
        opt(s.leader_changes),
        opt(s.phase1_rounds),
        s.answered.len(),
        s.answered.len() + s.silent.len()
    );
    let m = v.as_object().expect("checked above");
    let mut counters: Vec<&String> = m
        .values()
        .filter_map(Value::as_object)
        .flat_map(|o| o.keys())
        .collect();
    counters.sort();
    counters.dedup();
    let _ = write!(
        h,
        "<details><summary>All node counters ({})</summary>",
        counters.len()
    );
    h.push_str("<table id=\"node-stats\"><tr><th>counter</th>");
    for node in m.keys() {
        let _ = write!(h, "<th>{}</th>", esc(node));
    }
    h.push_str("</tr>");
    for c in counters {
        let _ = write!(h, "<tr><td>{}</td>", esc(c));
        for stats in m.values() {
            let cell = match stats.get(c) {
                Some(v) => esc(&short(v)),
                None if stats.is_object() => String::new(),
                None => "<span class=\"muted\">no answer</span>".into(),
            };
            let _ = write!(h, "<td>{cell}</td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</table></details></section>\n");
}

fn files(h: &mut String, run: &Run) {
    h.push_str("<section id=\"files\"><h2>Files</h2><ul>");
    let mut names: Vec<String> = [
        "history.jsonl",
        "results.json",
        "test.json",
        "schedule.json",
        "node-stats.json",
        "harness.log",
    ]
    .iter()
    .filter(|f| run.dir.join(f).exists())
    .map(|f| f.to_string())
    .collect();
    if let Ok(rd) = std::fs::read_dir(run.dir.join("nodes")) {
        let mut logs: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".log"))
            .map(|n| format!("nodes/{n}"))
            .collect();
        logs.sort();
        names.extend(logs);
    }
    if names.is_empty() {
        h.push_str("<li class=\"muted\">no files</li>");
    }
    for n in names {
        let _ = write!(h, "<li><a href=\"{}\">{}</a></li>", esc(&n), esc(&n));
    }
    h.push_str("</ul></section>\n");
}

/// One op of a counterexample, read leniently from the checker's JSON.
#[derive(Debug, Clone)]
struct CxOp {
    process: String,
    label: String,
    start: f64,
    end: Option<f64>,
    impossible: bool,
}

fn num(v: &Value, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| v.get(*k)?.as_f64())
}

/// Finds the op list in a counterexample: the first non-empty array of op-like objects under a
/// known name, plus the impossible op (`op`, `failing_op`, ...) when the list lacks it.
fn cx_ops(cx: &Value) -> Vec<CxOp> {
    const LISTS: [&str; 8] = [
        "shrunk",
        "shrunk_ops",
        "minimal",
        "ops",
        "operations",
        "history",
        "concurrent",
        "prefix",
    ];
    const BAD: [&str; 6] = [
        "op",
        "failing_op",
        "failing",
        "impossible_op",
        "impossible",
        "blocked",
    ];
    const START: [&str; 8] = [
        "start_s",
        "invoke_time",
        "start_ns",
        "start",
        "invoke",
        "call",
        "time",
        "invoke_index",
    ];
    const END: [&str; 8] = [
        "end_s",
        "complete_time",
        "end_ns",
        "end",
        "complete",
        "return",
        "ret",
        "complete_index",
    ];
    let is_op = |v: &Value| v.get("f").is_some() || v.get("process").is_some();
    let mut list: Vec<Value> = LISTS
        .iter()
        .find_map(|n| {
            cx.get(*n)?
                .as_array()
                .filter(|a| !a.is_empty() && a.iter().all(is_op))
        })
        .cloned()
        .unwrap_or_default();
    let bad = BAD
        .iter()
        .find_map(|k| cx.get(*k).filter(|v| v.is_object() || v.is_number()));
    let same = |op: &Value, i: usize| match bad {
        Some(Value::Number(n)) => {
            n.as_u64() == Some(i as u64)
                || (op.get("index").is_some()
                    && op.get("index").and_then(Value::as_u64) == n.as_u64())
        }
        Some(b) => {
            b == op
                || ["index", "id", "invoke_index"]
                    .iter()
                    .any(|k| b.get(*k).is_some() && b.get(*k) == op.get(*k))
        }
        None => false,
    };
    if let Some(b) = bad.filter(|b| is_op(b)) {
        if !list.iter().enumerate().any(|(i, op)| same(op, i)) {
            list.push(b.clone());
        }
    }
    list.iter()
        .enumerate()
        .map(|(i, op)| {
            let start = num(op, &START).unwrap_or(i as f64);
            let end = num(op, &END);
            let mut label = op.get("f").map(short).unwrap_or_else(|| "op".into());
            if let Some(v) = op.get("value").filter(|v| !v.is_null()) {
                label = format!("{label} {}", short(v));
            }
            for k in ["output", "result", "read", "returned"] {
                // A write's output echoes its value; show outputs that say something.
                if let Some(r) = op
                    .get(k)
                    .filter(|v| !v.is_null() && op.get("value") != Some(v))
                {
                    label = format!("{label} → {}", short(r));
                    break;
                }
            }
            if let Some(t) = op
                .get("type")
                .and_then(Value::as_str)
                .filter(|t| *t != "ok")
            {
                label = format!("{label} ({t})");
            }
            let flagged = ["impossible", "failing", "culprit", "bad"]
                .iter()
                .any(|k| op.get(*k).and_then(Value::as_bool) == Some(true));
            CxOp {
                process: op.get("process").map(short).unwrap_or_else(|| "?".into()),
                label,
                start,
                end,
                impossible: flagged || same(op, i),
            }
        })
        .collect()
}

fn counterexample(h: &mut String, run: &Run, key_file: Option<&str>) {
    h.push_str("<section id=\"counterexample\"><h2>Counterexample</h2>");
    let Some(cx) = run.result_field("counterexample") else {
        h.push_str("<p class=\"muted\">The checker gave no counterexample.</p></section>\n");
        return;
    };
    if let Some(k) = cx
        .get("key")
        .map(short)
        .filter(|k| !k.is_empty() && k != "null")
    {
        let _ = write!(h, "<p>Key <code>{}</code>. ", esc(&k));
        match key_file {
            Some(f) => {
                let _ = write!(
                    h,
                    "Full history of this key (with nemesis events): <a href=\"{}\">{}</a>.",
                    esc(f),
                    esc(f)
                );
            }
            None => h.push_str("<a href=\"history.jsonl\">Full history</a>."),
        }
        h.push_str("</p>");
    } else {
        h.push_str("<p><a href=\"history.jsonl\">Full history</a>.</p>");
    }
    let ops = cx_ops(cx);
    if ops.is_empty() {
        h.push_str("<p class=\"muted\">The counterexample lists no operations to draw.</p>");
    } else {
        h.push_str(&cx_timeline_svg(&ops));
    }
    for k in ["possible_states", "states", "prefix_states"] {
        if let Some(v) = cx.get(k) {
            let _ = write!(
                h,
                "<p>States the register could have been in: <code>{}</code></p>",
                esc(&short(v))
            );
            break;
        }
    }
    let pretty = serde_json::to_string_pretty(cx).unwrap_or_default();
    let _ = write!(
        h,
        "<details><summary>Counterexample as JSON</summary><pre>{}</pre></details></section>",
        esc(&pretty)
    );
}

/// One lane per process, a bar per op from invocation to completion with its value; the
/// impossible op in red. Ops with no completion run to the right edge.
fn cx_timeline_svg(ops: &[CxOp]) -> String {
    let mut procs: Vec<&str> = ops.iter().map(|o| o.process.as_str()).collect();
    procs.sort_by_key(|p| (p.parse::<i64>().unwrap_or(i64::MAX), p.to_string()));
    procs.dedup();
    let t0 = ops.iter().map(|o| o.start).fold(f64::INFINITY, f64::min);
    let t1 = ops
        .iter()
        .map(|o| o.end.unwrap_or(o.start))
        .fold(f64::NEG_INFINITY, f64::max);
    let span = (t1 - t0).max(1e-9);
    let (left, width, lane_h) = (110.0, 920.0, 34.0);
    let x = |t: f64| left + (t - t0) / span * width * 0.92;
    let height = procs.len() as f64 * lane_h + 28.0;
    let mut s = format!(
        "<figure id=\"cx-timeline\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" \
         height=\"{height}\" viewBox=\"0 0 {w} {height}\" font-family=\"sans-serif\" \
         font-size=\"12\">",
        w = left + width + 10.0
    );
    for (i, p) in procs.iter().enumerate() {
        let y = i as f64 * lane_h + 6.0;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">process {}</text>\
             <line x1=\"{left}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#e3e5e8\"/>",
            left - 8.0,
            y + 18.0,
            esc(p),
            left + width,
            y + lane_h - 4.0,
            y + lane_h - 4.0
        );
    }
    for o in ops {
        let lane = procs.iter().position(|p| *p == o.process).unwrap_or(0);
        let y = lane as f64 * lane_h + 8.0;
        let x0 = x(o.start);
        let x1 = match o.end {
            Some(e) => x(e),
            None => left + width,
        };
        let (fill, stroke) = if o.impossible {
            ("#ffcdd2", "#c62828")
        } else {
            ("#d6e6f5", "#1f77b4")
        };
        let label = if o.impossible {
            format!("✗ {} (impossible)", o.label)
        } else {
            o.label.clone()
        };
        let _ =
            write!(
            s,
            "<g class=\"{}\"><rect x=\"{x0:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"22\" rx=\"3\" \
             fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{}\"{}/>\
             <text x=\"{:.1}\" y=\"{}\" fill=\"{}\">{}</text><title>{}</title></g>",
            if o.impossible { "op impossible" } else { "op" },
            (x1 - x0).max(4.0),
            if o.impossible { 2 } else { 1 },
            if o.end.is_none() { " stroke-dasharray=\"4 3\"" } else { "" },
            x0 + 4.0,
            y + 15.0,
            if o.impossible { "#b71c1c" } else { "#1d2329" },
            esc(&label),
            esc(&label)
        );
    }
    let secs = ops.iter().any(|o| o.start.fract() != 0.0);
    for (t, anchor) in [(t0, "start"), (t1, "end")] {
        let label = if secs {
            format!("{t:.3} s")
        } else {
            format!("{t}")
        };
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\" fill=\"#6b7480\">{}</text>",
            x(t),
            height - 6.0,
            esc(&label)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#6b7480\">time →  (bars: invocation to completion; \
         dashed: never completed)</text></svg></figure>",
        left + width * 0.46,
        height - 6.0
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("<b a=\"1\">&'"), "&lt;b a=&quot;1&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn reads_counterexample_ops_leniently() {
        let cx = json!({
            "key": "k1",
            "failing_op": {"index": 7},
            "ops": [
                {"index": 3, "process": 1, "f": "write", "value": 1, "invoke_time": 10, "complete_time": 20},
                {"index": 7, "process": 2, "f": "read", "value": 2, "invoke_time": 25, "complete_time": 30},
                {"index": 9, "process": 3, "f": "cas", "value": [1, 2], "invoke_time": 5, "type": "info"}
            ]
        });
        let ops = cx_ops(&cx);
        assert_eq!(ops.len(), 3);
        assert!(ops[1].impossible && !ops[0].impossible);
        assert_eq!(ops[2].end, None);
        assert_eq!(ops[2].label, "cas [1,2] (info)");
        let svg = cx_timeline_svg(&ops);
        assert!(svg.contains("✗ read 2 (impossible)"));
        assert_eq!(svg.matches("class=\"op").count(), 3);
    }

    #[test]
    fn node_summary_finds_counters() {
        let v = json!({"n1": {"msgs_sent": 30, "leader_changes": 1, "phase1_rounds": 2},
                       "n2": {"msgs_sent": 10}, "n3": null});
        let s = node_summary(&v, 20);
        assert_eq!(s.messages_per_op, Some(2.0));
        assert_eq!(s.leader_changes, Some(1.0));
        assert_eq!(s.phase1_rounds, Some(2.0));
        assert_eq!(s.silent, vec!["n3"]);
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

    #[test]
    fn replay_command_quotes_odd_paths() {
        assert_eq!(shell_quote("/a/b"), "/a/b");
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
    }
}
