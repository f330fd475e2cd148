//! The history format: one JSON object per line, in the order events happened.
//!
//! ```text
//! {"index":0,"time":123456,"process":3,"type":"invoke","f":"write","key":"k7","value":4}
//! ```
//! `process` is an integer for clients and the string `"nemesis"` for faults. `time` is integer
//! nanoseconds since the test started. Extra fields (`node`, `error`) are kept but ignored by the
//! checker.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::BufRead;
use std::path::Path;

/// Who performed an event: a client process or the nemesis.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    Client(u64),
    /// Always `"nemesis"` in our histories; other strings are accepted and kept.
    Named(String),
}

impl Process {
    pub fn nemesis() -> Self {
        Process::Named("nemesis".to_string())
    }
    pub fn client(&self) -> Option<u64> {
        match self {
            Process::Client(p) => Some(*p),
            Process::Named(_) => None,
        }
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Named(s) => f.write_str(s),
        }
    }
}

/// Jepsen's four event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One line of a history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub index: u64,
    /// Nanoseconds since the test started (monotonic).
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// `read` | `write` | `cas` for clients; `start-partition`, `pause`, `kill`, ... for the nemesis.
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// read invoke: null; read ok: the value seen; write: the integer; cas: `[from, to]`.
    #[serde(default)]
    pub value: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Event {
    pub fn is_nemesis(&self) -> bool {
        self.process.client().is_none()
    }
}

/// A history that could not be read; says where.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {msg}")]
    Parse {
        file: String,
        line: usize,
        msg: String,
    },
}

/// Reads a JSON-lines history. Blank lines are skipped; a truncated last line (a crashed run) is
/// an error that names it, so callers may choose to keep the prefix via [`read_jsonl_prefix`].
/// `harness check` and `analyze` read through [`crate::formats::import_file`] instead, which
/// drops only a torn last line ([`crate::formats::torn_tail`]) and says so.
pub fn read_jsonl(path: &Path) -> Result<Vec<Event>, HistoryError> {
    let (events, err) = read_jsonl_prefix(path)?;
    match err {
        Some(e) => Err(e),
        None => Ok(events),
    }
}

/// Reads as many events as parse; returns them with the first parse error, if any.
pub fn read_jsonl_prefix(path: &Path) -> Result<(Vec<Event>, Option<HistoryError>), HistoryError> {
    let file = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| HistoryError::Io {
        file: file.clone(),
        source,
    })?;
    let mut events = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|source| HistoryError::Io {
            file: file.clone(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line) {
            Ok(e) => events.push(e),
            Err(msg) => {
                let err = HistoryError::Parse {
                    file: file.clone(),
                    line: i + 1,
                    msg,
                };
                return Ok((events, Some(err)));
            }
        }
    }
    Ok((events, None))
}

/// Parses one history line; the error says what is wrong in words. A number JSON cannot hold
/// exactly (an integer beyond 64 bits, read as a float) is refused rather than rounded, since two
/// different values could then compare equal.
pub fn parse_line(line: &str) -> Result<Event, String> {
    if line.starts_with('\u{feff}') {
        return Err("the line starts with a UTF-8 byte-order mark (U+FEFF); remove it".into());
    }
    let e = serde_json::from_str::<Event>(line).map_err(|e| e.to_string())?;
    inexact_number(&e.value).map_or(Ok(e), Err)
}

/// Integers up to 2^53 are exact as floats too; anything larger read as a float was rounded.
const EXACT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Says why a value holds a number that was rounded on reading, if it does.
pub fn inexact_number(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => n.as_f64().filter(|f| f.abs() > EXACT_LIMIT).map(|f| {
            format!(
                "number {f:e} is beyond 2^53 and outside 64-bit integers, so it cannot be kept \
                 exact; refusing it rather than rounding"
            )
        }),
        Value::Array(a) => a.iter().find_map(inexact_number),
        Value::Object(m) => m.values().find_map(inexact_number),
        _ => None,
    }
}

/// Serializes one event as a single line (no trailing newline).
pub fn to_line(e: &Event) -> String {
    serde_json::to_string(e).expect("events always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_documented_line() {
        let line = r#"{"index":0,"time":123456,"process":3,"type":"invoke","f":"write","key":"k7","value":4}"#;
        let e = parse_line(line).unwrap();
        assert_eq!(e.process, Process::Client(3));
        assert_eq!(e.kind, EventType::Invoke);
        assert_eq!(to_line(&e), line);
    }

    #[test]
    fn nemesis_process_is_a_string() {
        let e = parse_line(
            r#"{"index":1,"time":5,"process":"nemesis","type":"info","f":"kill","value":["n1"]}"#,
        )
        .unwrap();
        assert!(e.is_nemesis());
    }

    #[test]
    fn integers_beyond_64_bits_are_refused_not_rounded() {
        let line = |v: &str| {
            format!(r#"{{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":{v}}}"#)
        };
        let err = parse_line(&line("1180591620717411303424")).unwrap_err();
        assert!(err.contains("beyond 2^53"), "{err}");
        let err = parse_line(&line("[1, -1180591620717411303424]")).unwrap_err();
        assert!(err.contains("cannot be kept exact"), "{err}");
        // What 64-bit integers hold stays exact; small floats are kept as they are.
        let e = parse_line(&line("18446744073709551615")).unwrap();
        assert_eq!(e.value.as_u64(), Some(u64::MAX));
        assert!(parse_line(&line("1.5")).is_ok());
        assert!(parse_line(&line("9007199254740992.0")).is_ok());
    }

    #[test]
    fn a_byte_order_mark_is_named() {
        let err = parse_line("\u{feff}{}").unwrap_err();
        assert!(err.contains("byte-order mark"), "{err}");
    }

    #[test]
    fn bad_type_is_an_error() {
        let err =
            parse_line(r#"{"index":1,"time":5,"process":1,"type":"done","f":"read"}"#).unwrap_err();
        assert!(err.contains("done"), "{err}");
    }
}
