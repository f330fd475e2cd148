//! `jepsen-log`: the console lines Jepsen's `jepsen.util` logger printed for every op, as in
//! Porcupine's etcd data (Horn & Kroening's benchmarks):
//!
//! ```text
//! (fields are separated by tabs and spaces)
//! INFO  jepsen.util - 2  :invoke  :cas  [3 0]
//! INFO  jepsen.util - 1  :fail  :cas  [0 3]
//! INFO  jepsen.util - 0  :ok  :read  nil
//! INFO  jepsen.util - 4  :info  :write  :timed-out
//! ```
//! Lines without `jepsen.util - ` (other loggers) are skipped. Semantics, as Porcupine's etcd model:
//! - `nil` read = the key is absent: an `ok` read of `null` (the register starts absent);
//! - a `fail` cas is a definite mismatch: `fail` with `error: "precondition-failed"`, which the
//!   checker keeps as an observation that the value differed from `from`;
//! - `:fail :read :timed-out` is an unknown read: a `fail` read (dropped by the checker);
//! - `:info ... :timed-out` is indeterminate: `info` carrying the invoke's value.

use super::edn::{self, describe, Edn};
use super::jepsen_edn::fill_from_invoke;
use super::{parse_type, LineError, ModelKind, Parsed};
use crate::history::{Event, EventType, Process};
use serde_json::Value;
use std::collections::HashMap;

const MARKER: &str = "jepsen.util - ";

pub fn parse(text: &str) -> Result<Parsed, LineError> {
    let mut events = Vec::new();
    let mut invoke_values: HashMap<u64, Value> = HashMap::new();
    let mut skipped_first: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let Some(at) = raw.find(MARKER) else {
            if !raw.trim().is_empty() {
                skipped_first.get_or_insert(line);
            }
            continue;
        };
        let mut e = parse_op(line, &raw[at + MARKER.len()..])?;
        if let Some(p) = e.process.client() {
            apply_semantics(&mut e);
            fill_from_invoke(&mut e, p, &mut invoke_values);
        }
        events.push((line, e));
    }
    if events.is_empty() {
        if let Some(line) = skipped_first {
            return Err(LineError::new(
                line,
                format!(
                    "no `{}` op lines in this file; is it really --format jepsen-log?",
                    MARKER.trim_end()
                ),
            ));
        }
    }
    Ok(Parsed {
        events,
        has_times: false,
        model: ModelKind::Register,
        default_init: None,
    })
}

/// `<process> :<type> :<f> <value>` after the logger prefix.
fn parse_op(line: usize, rest: &str) -> Result<Event, LineError> {
    // Fast path: the first three fields are plain tokens; only a compound value (`[3 0]`) needs
    // the EDN reader. Most of a log is simple lines, and this keeps them allocation-light.
    let mut tail = rest;
    let mut token = || -> Option<Edn> {
        let t = tail.trim_start();
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        let (tok, after) = t.split_at(end);
        tail = after;
        (!tok.is_empty()).then(|| simple(tok))
    };
    let (Some(process), Some(kind), Some(f)) = (token(), token(), token()) else {
        return Err(LineError::new(
            line,
            format!(
                "expected `<process> :<type> :<f> <value>` after `{}`, found `{}`",
                MARKER.trim_end(),
                rest.trim()
            ),
        ));
    };
    let value_text = tail.trim();
    let value = if value_text.is_empty() {
        Edn::Nil
    } else if !value_text.contains(char::is_whitespace)
        && !value_text.starts_with(['[', '(', '{', '"', '#'])
    {
        simple(value_text)
    } else {
        let forms = edn::read_all(value_text)
            .map_err(|e| LineError::new(line, format!("bad EDN: {}", e.msg)))?;
        let mut it = forms.into_iter().map(|(_, f)| f);
        let value = it.next().unwrap_or(Edn::Nil);
        if let Some(extra) = it.next() {
            return Err(LineError::new(
                line,
                format!("unexpected {} after the value", describe(&extra)),
            ));
        }
        value
    };
    let process = match process {
        Edn::Int(p) if p >= 0 => Process::Client(p as u64),
        Edn::Keyword(s) | Edn::Symbol(s) => Process::Named(s.to_string()),
        other => {
            return Err(LineError::new(
                line,
                format!(
                    "bad process {} (expected a non-negative integer or :nemesis)",
                    describe(&other)
                ),
            ))
        }
    };
    let kind = kind.as_name().and_then(parse_type).ok_or_else(|| {
        LineError::new(
            line,
            format!(
                "unknown type {} (expected :invoke, :ok, :fail or :info)",
                describe(&kind)
            ),
        )
    })?;
    let f = f
        .as_name()
        .ok_or_else(|| {
            LineError::new(line, format!("bad f {} (expected a keyword)", describe(&f)))
        })?
        .to_string();
    // A keyword where the value goes is the reason an op failed or timed out (`:timed-out`).
    let (value, error) = match value {
        Edn::Keyword(reason) if kind != EventType::Invoke => {
            (Value::Null, Some(reason.to_string()))
        }
        v => (v.to_json(), None),
    };
    Ok(Event {
        index: 0,
        time: 0,
        process,
        kind,
        f,
        key: None,
        value,
        node: None,
        error,
    })
}

fn apply_semantics(e: &mut Event) {
    match (e.kind, e.f.as_str()) {
        (EventType::Invoke, "read") => e.value = Value::Null,
        (EventType::Fail, "cas") if e.error.is_none() => {
            e.error = Some("precondition-failed".into());
        }
        _ => {}
    }
}

/// A single token: an integer, `nil`, a keyword, or else a symbol (reported as bad later).
fn simple(tok: &str) -> Edn<'_> {
    if let Some(k) = tok.strip_prefix(':') {
        return Edn::Keyword(k);
    }
    if tok == "nil" {
        return Edn::Nil;
    }
    match tok.parse::<i64>() {
        Ok(i) => Edn::Int(i),
        Err(_) => match edn::read_all(tok)
            .ok()
            .and_then(|mut v| (v.len() == 1).then(|| v.remove(0).1))
        {
            Some(e) => e,
            None => Edn::Symbol(tok),
        },
    }
}
