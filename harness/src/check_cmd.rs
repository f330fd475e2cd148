//! `harness check PATH...` checks stored or imported histories for linearizability, and
//! `harness analyze RUN_DIR` re-checks a stored run and rewrites its `results.json` verdict.
//!
//! Exit codes: 0 every file valid, 1 any invalid, 3 any unknown and none invalid, 2 bad input or
//! usage (bad input wins: a file we could not read makes the whole answer untrustworthy).
//! A history that cannot vouch for the system though nothing in it is wrong is never a plain 0:
//! one with no client operation (EMPTY) and one whose torn last line was dropped and whose prefix
//! is valid (TORN) exit 3. See [`Gaps`].

use crate::SetupError;
use checker::formats::{self, Format, ImportOptions, Imported, ModelKind};
use checker::history::{Event, EventType};
use checker::{CheckOptions, CheckResult, Verdict};
use report::run_files::{
    verdict_name, CheckRecord, FileError, ResultsFile, TestFile, RESULTS_SCHEMA,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use workloads::Workload;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ModelArg {
    /// One read/write/cas register.
    Register,
    /// Independent read/write/cas registers per key.
    Kv,
    /// Porcupine's key-value store of strings: get (read), put (write), append.
    Append,
    /// Knossos' multi-register: txns of reads and writes over several registers.
    MultiRegister,
    /// Knossos' mutex: acquire and release.
    Mutex,
}

impl ModelArg {
    fn kind(self) -> ModelKind {
        match self {
            ModelArg::Register => ModelKind::Register,
            ModelArg::Kv => ModelKind::Kv,
            ModelArg::Append => ModelKind::Append,
            ModelArg::MultiRegister => ModelKind::MultiRegister,
            ModelArg::Mutex => ModelKind::Mutex,
        }
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FormatArg {
    /// Ours: one JSON event per line (history.jsonl).
    Jsonl,
    /// Jepsen/Knossos history.edn (Knossos semantics: a nil read is unknown, register starts at 0).
    JepsenEdn,
    /// Jepsen's jepsen.util console lines, as in Porcupine's etcd data.
    JepsenLog,
    /// Porcupine's get/put/append key-value text histories.
    PorcupineKv,
}

impl FormatArg {
    fn format(self) -> Format {
        match self {
            FormatArg::Jsonl => Format::Jsonl,
            FormatArg::JepsenEdn => Format::JepsenEdn,
            FormatArg::JepsenLog => Format::JepsenLog,
            FormatArg::PorcupineKv => Format::PorcupineKv,
        }
    }
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// History files to check (all in one process).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Sequential model; default: the one the data implies (kv if events carry keys).
    #[arg(long, value_enum)]
    pub model: Option<ModelArg>,
    /// Input format; default: guessed per file (.edn, jepsen.util lines, Porcupine kv maps), else jsonl.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Initial value of every register: an integer, nil, or JSON (default: 0 for jepsen-edn,
    /// absent otherwise; "" for append).
    #[arg(long, value_name = "V", allow_hyphen_values = true)]
    pub init: Option<String>,
    /// Give up on a file after S seconds (verdict unknown).
    #[arg(long, value_name = "S")]
    pub time_limit: Option<f64>,
    /// Memory for the search over all keys at once, in MiB (default 1024); past it, unknown.
    #[arg(long, value_name = "MIB")]
    pub memory_limit: Option<f64>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Events by type, for the summary line and results.json.
fn counts(events: &[Event]) -> Value {
    let (mut invoke, mut ok, mut fail, mut info, mut nemesis) = (0, 0, 0, 0, 0);
    for e in events {
        if e.is_nemesis() {
            nemesis += 1;
            continue;
        }
        match e.kind {
            EventType::Invoke => invoke += 1,
            EventType::Ok => ok += 1,
            EventType::Fail => fail += 1,
            EventType::Info => info += 1,
        }
    }
    json!({"invoke": invoke, "ok": ok, "fail": fail, "info": info, "nemesis": nemesis})
}

/// `--memory-limit MIB` as bytes; a value out of range is refused naming the flag.
pub(crate) fn memory_limit_bytes(memory_mib: Option<f64>) -> Result<Option<u64>, String> {
    match memory_mib {
        None => Ok(None),
        Some(m) if m.is_finite() && m >= 1.0 && m <= (1u64 << 20) as f64 => {
            Ok(Some((m * (1u64 << 20) as f64) as u64))
        }
        Some(m) => Err(format!(
            "--memory-limit {m}: give the search's memory in MiB, from 1 to 1048576"
        )),
    }
}

fn check_options(time_limit: Option<f64>, memory_mib: Option<f64>) -> Result<CheckOptions, String> {
    let time_limit = match time_limit {
        None => None,
        Some(s) => {
            crate::duration::check_flag("--time-limit", s, crate::duration::Unit::Seconds, false)?;
            Some(crate::duration::secs(s))
        }
    };
    let memory_limit_bytes = memory_limit_bytes(memory_mib)?;
    Ok(CheckOptions {
        time_limit,
        memory_limit_bytes,
        ..CheckOptions::default()
    })
}

/// The checker names events by index ("event 12: ..."); point at the file's line instead.
fn locate(msg: &str, file: &str, h: &Imported) -> String {
    let rest = msg.strip_prefix("event ").unwrap_or("");
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let line = digits
        .parse::<usize>()
        .ok()
        .and_then(|i| h.line_of(i))
        .filter(|_| rest[digits.len()..].starts_with(':'));
    match line {
        Some(line) => format!("{file}:{line}{}", &rest[digits.len()..]),
        None => format!("{file}: {msg}"),
    }
}

/// Why a read history may not vouch for the system even when nothing in it is wrong. `check` and
/// `analyze` treat both alike: the verdict of what was read stands when it is invalid (more
/// events cannot make it valid), and a valid one is not a plain 0 (exit 3).
#[derive(Clone, Debug, Default)]
struct Gaps {
    /// No client operation at all: far more often a failed write than a correct system.
    empty: bool,
    /// `file:line: why` of a torn last line (no newline at its end, does not parse) that was
    /// dropped: the write was cut short, as by a crash or a full disk.
    torn: Option<String>,
}

impl Gaps {
    fn of(file: &str, h: &Imported) -> Gaps {
        Gaps {
            empty: !h.events.iter().any(|e| !e.is_nemesis()),
            torn: h.torn_last_line.as_ref().map(|t| {
                format!(
                    "{file}:{}: torn last line ignored (no newline at its end, and it does not \
                     parse: {}): the file was cut short, as by a crash or a full disk; checked \
                     the {} events before it",
                    t.line,
                    t.msg,
                    h.events.len()
                )
            }),
        }
    }

    /// What the gaps make of a verdict: `None` when it stands as it is. A torn file is named
    /// first: it says more about what went wrong than its being empty.
    fn shortfall(&self, v: Verdict) -> Option<Shortfall> {
        match v {
            Verdict::Valid if self.torn.is_some() => Some(Shortfall::Torn),
            Verdict::Valid if self.empty => Some(Shortfall::Empty),
            _ => None,
        }
    }

    fn exit_code(&self, v: Verdict) -> u8 {
        match self.shortfall(v) {
            Some(_) => Verdict::Unknown.exit_code(),
            None => v.exit_code(),
        }
    }
}

/// Why a valid verdict is not a plain 0 (exit 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shortfall {
    Torn,
    Empty,
}

impl Shortfall {
    /// The answer's name: `torn`, `empty`.
    fn name(self) -> &'static str {
        match self {
            Shortfall::Torn => "torn",
            Shortfall::Empty => "empty",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Shortfall::Torn => {
                "the events before the torn last line are linearizable, but what came after it \
                 is lost: the history cannot vouch for the system"
            }
            Shortfall::Empty => {
                "no client operations to check: an empty history is far more often a failed \
                 write than a correct system"
            }
        }
    }
}

/// What happened to one file.
struct FileOutcome {
    path: String,
    format: Option<Format>,
    model: Option<ModelKind>,
    parse: Duration,
    check: Duration,
    counts: Option<Value>,
    synthetic_times: bool,
    gaps: Gaps,
    result: Result<CheckResult, String>,
}

impl FileOutcome {
    fn exit_code(&self) -> u8 {
        match &self.result {
            Err(_) => 2,
            Ok(r) => self.gaps.exit_code(r.verdict),
        }
    }

    /// The answer for the summary: a verdict, a shortfall (`torn`, `empty`) or `error`.
    fn answer(&self) -> &'static str {
        match &self.result {
            Err(_) => "error",
            Ok(r) => self
                .gaps
                .shortfall(r.verdict)
                .map_or(verdict_name(r.verdict), Shortfall::name),
        }
    }
}

fn check_file(
    path: &Path,
    args: &CheckArgs,
    opts: &CheckOptions,
    import: &ImportOptions,
) -> FileOutcome {
    let file = path.display().to_string();
    let started = Instant::now();
    let imported = formats::import_file(path, args.format.map(FormatArg::format), import);
    let parse = started.elapsed();
    let mut out = FileOutcome {
        path: file.clone(),
        format: None,
        model: None,
        parse,
        check: Duration::ZERO,
        counts: None,
        synthetic_times: false,
        gaps: Gaps::default(),
        result: Err(String::new()),
    };
    let h = match imported {
        Ok(h) => h,
        Err(e) => {
            out.result = Err(e.to_string());
            return out;
        }
    };
    let model = args.model.map_or(h.model, ModelArg::kind);
    out.format = Some(h.format);
    out.model = Some(model);
    out.counts = Some(counts(&h.events));
    out.synthetic_times = h.synthetic_times;
    out.gaps = Gaps::of(&file, &h);
    if let Some(t) = &out.gaps.torn {
        crate::errln!("harness check: warning: {t}");
    }
    let started = Instant::now();
    out.result = workloads::models::check_with(model, &h.init, &h.events, opts)
        .map_err(|e| locate(&e, &file, &h));
    out.check = started.elapsed();
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_text(o: &FileOutcome) {
    match &o.result {
        Err(e) => crate::outln!("{}: ERROR (bad input)\n  {e}", o.path),
        Ok(r) => {
            let verdict = o.answer().to_uppercase();
            let c = o.counts.clone().unwrap_or(Value::Null);
            crate::outln!(
                "{}: {verdict} ({} model, {} format): {} ops, {} key{}, {} states; \
                 events: {} invoke, {} ok, {} fail, {} info, {} nemesis; parse {:.2} ms, check {:.2} ms",
                o.path,
                o.model.map_or("?", ModelKind::name),
                o.format.map_or("?", Format::name),
                r.ops,
                r.keys,
                if r.keys == 1 { "" } else { "s" },
                r.states_explored,
                c["invoke"],
                c["ok"],
                c["fail"],
                c["info"],
                c["nemesis"],
                ms(o.parse),
                ms(o.check),
            );
            if let Some(t) = &o.gaps.torn {
                crate::outln!("  {t}");
            }
            if let Some(s) = o.gaps.shortfall(r.verdict) {
                crate::outln!("  {}", s.words());
            }
            for line in r.explanation.lines() {
                crate::outln!("  {line}");
            }
            if o.synthetic_times && r.verdict != Verdict::Valid {
                crate::outln!(
                    "  (the file has no times: times above count 1 ms per event, in file order)"
                );
            }
        }
    }
}

fn outcome_json(o: &FileOutcome) -> Value {
    let mut v = json!({
        "path": o.path,
        "format": o.format.map(Format::name),
        "model": o.model.map(ModelKind::name),
        "parse_ms": ms(o.parse),
        "check_ms": ms(o.check),
        "counts": o.counts,
        "empty": o.gaps.empty,
        "torn_last_line": o.gaps.torn,
        "exit_code": o.exit_code(),
    });
    match &o.result {
        Ok(r) => {
            v["verdict"] = json!(r.verdict);
            v["check"] = serde_json::to_value(r).unwrap_or(Value::Null);
        }
        Err(e) => {
            v["verdict"] = json!("error");
            v["error"] = json!(e);
        }
    }
    v
}

/// Checks every file, several at once (one per core), and returns the outcomes in argument
/// order. A corpus of many small files is bound by per-file latency, not by any one search.
fn check_files(args: &CheckArgs, opts: &CheckOptions, import: &ImportOptions) -> Vec<FileOutcome> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(args.paths.len().max(1));
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(p) = args.paths.get(i) else { break };
            done.push((i, check_file(p, args, opts, import)));
        }
        done
    };
    let mut all: Vec<(usize, FileOutcome)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("check thread panicked"))
            .collect()
    });
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, o)| o).collect()
}

pub fn run_check(args: CheckArgs) -> Result<u8, SetupError> {
    let opts = check_options(args.time_limit, args.memory_limit)
        .map_err(|e| SetupError::msg("harness check", e))?;
    let init = args.init.as_deref().map(formats::parse_init).transpose();
    let import = ImportOptions {
        init: init.map_err(|e| SetupError::msg("harness check", e))?,
    };
    let started = Instant::now();
    let outcomes = check_files(&args, &opts, &import);
    if !args.json {
        outcomes.iter().for_each(print_text);
    }
    let total = started.elapsed();
    let n = |want: &str| outcomes.iter().filter(|o| o.answer() == want).count();
    let (valid, invalid, unknown) = (n("valid"), n("invalid"), n("unknown"));
    let (empty, torn, errors) = (n("empty"), n("torn"), n("error"));
    let parse: Duration = outcomes.iter().map(|o| o.parse).sum();
    let check: Duration = outcomes.iter().map(|o| o.check).sum();
    // Bad input wins, then invalid, then any answer short of a plain valid.
    let codes: Vec<u8> = outcomes.iter().map(FileOutcome::exit_code).collect();
    let code = [2, 1, 3]
        .into_iter()
        .find(|c| codes.contains(c))
        .unwrap_or(0);
    if args.json {
        let doc = json!({
            "files": outcomes.iter().map(outcome_json).collect::<Vec<_>>(),
            "summary": {
                "files": outcomes.len(), "valid": valid, "invalid": invalid,
                "unknown": unknown, "empty": empty, "torn": torn, "errors": errors,
                "parse_ms": ms(parse), "check_ms": ms(check), "total_ms": ms(total),
                "exit_code": code,
            }
        });
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else if outcomes.len() > 1 || errors > 0 {
        crate::outln!(
            "{} files: {valid} valid, {invalid} invalid, {unknown} unknown, {empty} empty, \
             {torn} torn, {errors} bad input; parse {:.1} ms + check {:.1} ms = {:.1} ms total",
            outcomes.len(),
            ms(parse),
            ms(check),
            ms(total)
        );
    }
    Ok(code)
}

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// A stored run folder (results/<test>/<timestamp>/).
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
    /// Give up after S seconds (verdict unknown).
    #[arg(long, value_name = "S")]
    pub time_limit: Option<f64>,
    /// Memory for the search over all keys at once, in MiB (default 1024); past it, unknown.
    #[arg(long, value_name = "MIB")]
    pub memory_limit: Option<f64>,
}

pub fn run_analyze(args: AnalyzeArgs) -> Result<u8, SetupError> {
    analyze(&args)
        .map(|v| v.exit_code())
        .map_err(|e| SetupError::msg("harness analyze", e))
}

/// Re-checks `RUN_DIR/history.jsonl` with the workload named in `test.json` and rewrites the
/// `verdict` and `check` fields of `results.json`, keeping every other field.
fn analyze(args: &AnalyzeArgs) -> Result<Verdict, String> {
    let dir = &args.run_dir;
    let opts = check_options(args.time_limit, args.memory_limit)?;
    let test_path = dir.join("test.json");
    let test: TestFile = TestFile::read(dir).map_err(|e| e.to_string())?;
    let Some(name) = test.workload else {
        return Err(format!(
            "{}: no \"workload\" field (expected \"register\" or \"kv\")",
            test_path.display()
        ));
    };
    let workload: Workload = serde_json::from_value(Value::String(name.clone())).map_err(|_| {
        format!(
            "{}: unknown workload {name:?} (expected \"register\" or \"kv\")",
            test_path.display()
        )
    })?;
    let path = dir.join("history.jsonl");
    let file = path.display().to_string();
    let h = formats::import_file(&path, Some(Format::Jsonl), &ImportOptions::default())
        .map_err(|e| e.to_string())?;
    let gaps = Gaps::of(&file, &h);
    if let Some(t) = &gaps.torn {
        crate::errln!("harness analyze: warning: {t}");
    }
    let mut result =
        workloads::models::check_with(workload.model(), &Value::Null, &h.events, &opts)
            .map_err(|e| locate(&e, &file, &h))?;
    // results.json holds the run's verdict as its exit code says it: a gap makes valid unknown.
    if let Some(s) = gaps.shortfall(result.verdict) {
        result.verdict = Verdict::Unknown;
        result.explanation = format!("{} ({})", s.words(), result.explanation);
    }
    if let Some(t) = &gaps.torn {
        result.explanation = format!("{t}. {}", result.explanation);
    }
    let results_path = dir.join("results.json");
    let mut results = match ResultsFile::read(dir) {
        Ok(r) => r,
        Err(FileError::Missing(_)) => ResultsFile::new(),
        Err(e) => return Err(e.to_string()),
    };
    results.schema_version = RESULTS_SCHEMA;
    results.verdict = Some(verdict_name(result.verdict).to_string());
    results.check = Some(CheckRecord::from(&result));
    write_json(&results_path, &results)?;
    crate::outln!(
        "{}: {:?} ({} ops, {} keys, check {:.1} ms); rewrote {}",
        dir.display(),
        result.verdict,
        result.ops,
        result.keys,
        result.elapsed_ms,
        results_path.display()
    );
    for line in result.explanation.lines() {
        crate::outln!("  {line}");
    }
    match crate::report_cmd::after_analyze(dir) {
        Ok(report) => crate::outln!("report: {}", report.display()),
        Err(e) => crate::errln!("harness analyze: report not written: {e}"),
    }
    Ok(result.verdict)
}

/// Writes via a temporary file and a rename, so a crash never leaves half a results.json.
fn write_json(path: &Path, v: &ResultsFile) -> Result<(), String> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(v).map_err(|e| e.to_string())? + "\n";
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}
