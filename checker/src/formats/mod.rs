//! Import formats: turn a history file from us, Jepsen, Knossos or Porcupine into our
//! [`Event`]s, plus the model the data implies. Every error names `file:line` and what is wrong;
//! nothing here panics on bad input.
//!
//! | format | what | default model |
//! |---|---|---|
//! | `jsonl` | ours ([`crate::history`]) | `kv` if events carry keys, else `register` |
//! | `jepsen-edn` | Jepsen/Knossos `history.edn` (one vector/list of maps, or one map per line) | `register`, initial value 0 |
//! | `jepsen-log` | `jepsen.util` console lines (Porcupine's etcd data) | `register`, initially absent |
//! | `porcupine-kv` | Porcupine's get/put/append key-value histories | `append` |
//!
//! The semantics of each source are mapped onto ours (see `docs` in each module): e.g. a Knossos
//! read of `nil` becomes a `fail` read (an unknown read constrains nothing), a Porcupine `fail`
//! cas becomes `error: "precondition-failed"` (a definite mismatch).

pub mod edn;
pub mod jepsen_edn;
pub mod jepsen_log;
pub mod porcupine_kv;

use crate::history::{Event, EventType, HistoryError};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    JepsenEdn,
    JepsenLog,
    PorcupineKv,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::Jsonl,
        Format::JepsenEdn,
        Format::JepsenLog,
        Format::PorcupineKv,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::JepsenEdn => "jepsen-edn",
            Format::JepsenLog => "jepsen-log",
            Format::PorcupineKv => "porcupine-kv",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Guesses a file's format from its name and first bytes: `.edn` is Jepsen EDN, a log with
    /// `jepsen.util` lines is a Jepsen log, EDN maps with `:f :get|:put|:append` are Porcupine kv,
    /// anything else is ours.
    pub fn detect(path: &Path, text: &str) -> Format {
        let head: &str = match text.char_indices().nth(4096) {
            Some((i, _)) => &text[..i],
            None => text,
        };
        if path.extension().is_some_and(|e| e == "edn") {
            return Format::JepsenEdn;
        }
        if head.contains("jepsen.util - ")
            || (head.trim().is_empty() && path.extension().is_some_and(|e| e == "log"))
        {
            return Format::JepsenLog;
        }
        let first = head.trim_start();
        let json_object = first
            .strip_prefix('{')
            .is_some_and(|rest| rest.trim_start().starts_with('"'));
        if first.starts_with('{') && !json_object {
            let kv = [":f :get", ":f :put", ":f :append"];
            if kv.iter().any(|p| head.contains(p)) {
                return Format::PorcupineKv;
            }
            return Format::JepsenEdn;
        }
        if first.starts_with('[') || first.starts_with('(') || first.starts_with(';') {
            return Format::JepsenEdn;
        }
        Format::Jsonl
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The sequential model a history calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// One register: read, write, cas; events carry no key.
    Register,
    /// Independent registers per key.
    Kv,
    /// Porcupine's key-value store of strings: read (get), write (put), append.
    Append,
    /// Knossos' multi-register (`:txn` of reads and writes over several registers).
    MultiRegister,
    /// Knossos' mutex (`:acquire` / `:release`).
    Mutex,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::Kv => "kv",
            ModelKind::Append => "append",
            ModelKind::MultiRegister => "multi-register",
            ModelKind::Mutex => "mutex",
        }
    }

    /// The client `f`s this model understands.
    pub fn fs(self) -> &'static [&'static str] {
        match self {
            ModelKind::Register | ModelKind::Kv => &["read", "write", "cas"],
            ModelKind::Append => &["read", "write", "append"],
            ModelKind::MultiRegister => &["txn"],
            ModelKind::Mutex => &["acquire", "release"],
        }
    }
}

/// Options that change how a file is read.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// `--init V`: the register's initial value. `None` = the format's default (0 for Knossos
    /// data, absent otherwise).
    pub init: Option<Value>,
}

/// A file turned into our events.
#[derive(Clone, Debug)]
pub struct Imported {
    pub format: Format,
    pub events: Vec<Event>,
    /// The 1-based source line of each event.
    pub lines: Vec<usize>,
    /// True when the file has no times and `time` was made up: 1 ms per event, in file order.
    pub synthetic_times: bool,
    /// The model the data implies (a CLI `--model` may override it).
    pub model: ModelKind,
    /// The initial value of every register (key) for the model: `--init`, else the format's
    /// default; null = absent (never written).
    pub init: Value,
    /// A torn last line that was dropped (see [`torn_tail`]): its line and why it did not parse.
    pub torn_last_line: Option<LineError>,
}

impl Imported {
    /// `file:line` for an event index, for messages about a specific event.
    pub fn line_of(&self, index: usize) -> Option<usize> {
        self.lines.get(index).copied().filter(|&l| l > 0)
    }
}

/// Bad input: which file, which line (when known), and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    pub file: String,
    pub line: Option<usize>,
    pub msg: String,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.msg),
            None => write!(f, "{}: {}", self.file, self.msg),
        }
    }
}

impl std::error::Error for FormatError {}

/// An error on a line, before the file name is attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub msg: String,
}

impl LineError {
    pub fn new(line: usize, msg: impl Into<String>) -> Self {
        LineError {
            line,
            msg: msg.into(),
        }
    }
    fn in_file(self, file: &str) -> FormatError {
        FormatError {
            file: file.to_string(),
            line: (self.line > 0).then_some(self.line),
            msg: self.msg,
        }
    }
}

impl From<edn::EdnError> for LineError {
    fn from(e: edn::EdnError) -> Self {
        LineError::new(e.line, format!("bad EDN: {}", e.msg))
    }
}

/// What a format parser produces before the shared finishing steps.
pub struct Parsed {
    /// Events with their source lines; `index` is assigned later.
    pub events: Vec<(usize, Event)>,
    /// Whether the events' `time` fields came from the file (else they are synthesized).
    pub has_times: bool,
    /// The model the data implies.
    pub model: ModelKind,
    /// The initial value the format implies when `--init` is not given.
    pub default_init: Option<Value>,
}

/// Reads and imports one file. `format: None` guesses it with [`Format::detect`].
pub fn import_file(
    path: &Path,
    format: Option<Format>,
    opts: &ImportOptions,
) -> Result<Imported, FormatError> {
    let file = path.display().to_string();
    let bytes = read_text_file(path).map_err(|msg| FormatError {
        file: file.clone(),
        line: None,
        msg,
    })?;
    // A byte-order mark (as some editors write) carries no data: skip it.
    let bytes = match bytes.strip_prefix("\u{feff}".as_bytes()) {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(FormatError {
                file,
                line: Some(line),
                msg: "not UTF-8 text".into(),
            });
        }
    };
    let format = format.unwrap_or_else(|| Format::detect(path, &text));
    import_str(&text, &file, format, opts)
}

/// Reads a whole file, but looks at its first 64 KiB before the rest: text never holds a NUL
/// byte, so binary data (or `/dev/zero`, which would fill memory) is refused early.
fn read_text_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    const HEAD: u64 = 64 << 10;
    let cannot = |e: std::io::Error| format!("cannot read: {e}");
    let mut f = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    (&mut f)
        .take(HEAD)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(format!(
            "binary data (a NUL byte on line {line}), not a history"
        ));
    }
    f.read_to_end(&mut bytes).map_err(cannot)?;
    Ok(bytes)
}

/// Imports a history held in memory; `file` is only used in error messages.
pub fn import_str(
    text: &str,
    file: &str,
    format: Format,
    opts: &ImportOptions,
) -> Result<Imported, FormatError> {
    let (parsed, torn) = match format {
        Format::Jsonl => parse_jsonl(text),
        Format::JepsenEdn => not_a_json_array(text)
            .and_then(|()| jepsen_edn::parse(text))
            .map(|p| (p, None)),
        Format::JepsenLog => jepsen_log::parse(text).map(|p| (p, None)),
        Format::PorcupineKv => porcupine_kv::parse(text).map(|p| (p, None)),
    }
    .map_err(|e| e.in_file(file))?;
    let mut imported = finish(parsed, format, opts).map_err(|e| e.in_file(file))?;
    imported.torn_last_line = torn;
    Ok(imported)
}

/// A JSON array of event objects looks like EDN to the detector (`[` then `{`): name it instead
/// of reporting bad EDN.
fn not_a_json_array(text: &str) -> Result<(), LineError> {
    let json_array = text
        .trim_start()
        .strip_prefix('[')
        .and_then(|r| r.trim_start().strip_prefix('{'))
        .is_some_and(|r| r.trim_start().starts_with('"'));
    if !json_array {
        return Ok(());
    }
    Err(LineError::new(
        1,
        "this is a JSON array of events, not EDN or JSON lines: put one event object per line \
         (e.g. `jq -c '.[]' FILE`) and check that with --format jsonl",
    ))
}

/// The last line of a JSON-lines file when it is torn, as when a write is cut short (a crash, a
/// full disk): it has no newline at its end and its JSON stops before it is complete. Returns its
/// 1-based line number. A bad line written whole (newline included, or complete JSON that is not
/// an event) is bad input, not a torn write.
pub fn torn_tail(text: &str) -> Option<usize> {
    let start = text.rfind('\n').map_or(0, |i| i + 1);
    let tail = &text[start..];
    let cut_short = serde_json::from_str::<Value>(tail)
        .is_err_and(|e| e.classify() == serde_json::error::Category::Eof);
    if tail.trim().is_empty() || !cut_short {
        return None;
    }
    Some(text[..start].matches('\n').count() + 1)
}

/// Our own JSON lines, via [`crate::history::parse_line`]. A torn last line is dropped and
/// returned apart, so the caller can check the prefix and say so.
fn parse_jsonl(text: &str) -> Result<(Parsed, Option<LineError>), LineError> {
    let mut events = Vec::new();
    let mut keyed = false;
    let torn_line = torn_tail(text);
    let mut torn = None;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let e = match crate::history::parse_line(line) {
            Ok(e) => e,
            Err(msg) if torn_line == Some(i + 1) => {
                torn = Some(LineError::new(i + 1, msg));
                break;
            }
            Err(msg) => return Err(LineError::new(i + 1, msg)),
        };
        keyed |= !e.is_nemesis() && e.key.is_some();
        events.push((i + 1, e));
    }
    let model = if keyed {
        ModelKind::Kv
    } else {
        ModelKind::Register
    };
    let parsed = Parsed {
        events,
        has_times: true,
        model,
        default_init: None,
    };
    Ok((parsed, torn))
}

/// Our history reader's errors as a [`FormatError`].
impl From<HistoryError> for FormatError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::Io { file, source } => FormatError {
                file,
                line: None,
                msg: source.to_string(),
            },
            HistoryError::Parse { file, line, msg } => FormatError {
                file,
                line: Some(line),
                msg,
            },
        }
    }
}

/// Shared steps for every format: number the events, make times strictly increasing in file order
/// (the order is what Jepsen and Knossos go by), check invoke/completion pairing and `f`s, and
/// settle the initial value.
fn finish(parsed: Parsed, format: Format, opts: &ImportOptions) -> Result<Imported, LineError> {
    let Parsed {
        events: raw,
        has_times,
        model,
        default_init,
    } = parsed;
    validate(&raw, model, has_times)?;
    let init = opts.init.clone().or(default_init).unwrap_or(Value::Null);
    let mut events = Vec::with_capacity(raw.len());
    let mut lines = Vec::with_capacity(raw.len());
    const SYNTHETIC_STEP_NS: u64 = 1_000_000; // 1 ms per event when the file has no times
    let mut last: Option<u64> = None;
    for (pos, (line, mut e)) in raw.into_iter().enumerate() {
        let t = if has_times {
            e.time
        } else {
            (pos as u64 + 1) * SYNTHETIC_STEP_NS
        };
        let t = match last {
            Some(prev) if t <= prev => prev.checked_add(1).ok_or_else(|| {
                LineError::new(
                    line,
                    format!("time {prev} leaves no room for a later event"),
                )
            })?,
            _ => t,
        };
        last = Some(t);
        e.time = t;
        events.push(e);
        lines.push(line);
    }
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    Ok(Imported {
        format,
        events,
        lines,
        synthetic_times: !has_times,
        model,
        init,
        torn_last_line: None,
    })
}

/// Pairing rules every history obeys: a completion follows an invoke of the same `f` by the same
/// process, and (when the file has times) not at an earlier time; a process has at most one op
/// open; client `f`s are ones the model knows.
fn validate(events: &[(usize, Event)], model: ModelKind, has_times: bool) -> Result<(), LineError> {
    // process -> (line of the open invoke, its f, its time). A process that reappears after an
    // `info` is accepted (Jepsen would give it a new id): its crashed op simply stays open forever.
    let mut open: HashMap<u64, (usize, &str, u64)> = HashMap::new();
    for (line, e) in events {
        let Some(p) = e.process.client() else {
            continue; // nemesis events are kept for reports and ignored by the checker
        };
        let line = *line;
        if !model.fs().contains(&e.f.as_str()) {
            return Err(LineError::new(
                line,
                format!(
                    "unknown f `{}` for the {} model (expected one of: {})",
                    e.f,
                    model.name(),
                    model.fs().join(", ")
                ),
            ));
        }
        match e.kind {
            EventType::Invoke => {
                if let Some((inv_line, f, _)) = open.get(&p) {
                    return Err(LineError::new(
                        line,
                        format!(
                            "second invoke on busy process {p}: its {f} invoked on line {inv_line} \
                             has not completed"
                        ),
                    ));
                }
                open.insert(p, (line, e.f.as_str(), e.time));
            }
            kind => {
                let Some((inv_line, f, invoked)) = open.remove(&p) else {
                    return Err(LineError::new(
                        line,
                        format!(
                            "completion ({}) of {} by process {p} with no invoke",
                            type_name(kind),
                            e.f
                        ),
                    ));
                };
                if f != e.f {
                    return Err(LineError::new(
                        line,
                        format!(
                            "completion of {} by process {p} does not match its invoke of {f} on \
                             line {inv_line}",
                            e.f
                        ),
                    ));
                }
                if has_times && e.time < invoked {
                    return Err(LineError::new(
                        line,
                        format!(
                            "completion of {f} by process {p} at time {} is earlier than its \
                             invoke on line {inv_line} at time {invoked}",
                            e.time
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn type_name(t: EventType) -> &'static str {
    match t {
        EventType::Invoke => "invoke",
        EventType::Ok => "ok",
        EventType::Fail => "fail",
        EventType::Info => "info",
    }
}

pub(crate) fn parse_type(name: &str) -> Option<EventType> {
    match name {
        "invoke" => Some(EventType::Invoke),
        "ok" => Some(EventType::Ok),
        "fail" => Some(EventType::Fail),
        "info" => Some(EventType::Info),
        _ => None,
    }
}

/// Parses a `--init` value: `nil`/`null` (absent), an integer, or any JSON value. Anything else
/// (a bare word such as the typo `O` for `0`) is refused: taken as a string it would quietly
/// change the verdict. The error names the flag.
pub fn parse_init(s: &str) -> Result<Value, String> {
    if s == "nil" {
        return Ok(Value::Null);
    }
    let v: Value = serde_json::from_str(s).map_err(|_| {
        format!(
            "--init {s}: not a JSON value (expected an integer, nil, or JSON such as '\"text\"' \
             for a string)"
        )
    })?;
    match crate::history::inexact_number(&v) {
        Some(why) => Err(format!("--init {s}: {why}")),
        None => Ok(v),
    }
}

#[cfg(test)]
mod tests;
