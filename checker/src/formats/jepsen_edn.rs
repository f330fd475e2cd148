//! `jepsen-edn`: Jepsen/Knossos `history.edn`, one EDN vector or list of op maps (Knossos' data
//! files) or one op map per line (newer Jepsen), `;` comments, maps spanning lines, extra keys in
//! any order.
//!
//! Knossos semantics, mapped onto ours:
//! - a read that completes `ok` with `nil` is an *unknown* read (legal in every state): it becomes
//!   a `fail` read with `error: "unknown-read"`, which the checker drops;
//! - `fail` means the op did not happen, for a cas too: the file's `:error` is kept, but never as
//!   our `precondition-failed` (which would make the checker keep the cas as an observation);
//! - the register starts at 0 (what Knossos' own tests use); `--init` changes it;
//! - nemesis ops (`:process :nemesis`) are kept as nemesis events, which the checker ignores.
//!
//! The conversion of one op map is shared with `porcupine-kv` (`op_from_map`).

use super::edn::{self, describe, Edn};
use super::{parse_type, LineError, ModelKind, Parsed};
use crate::history::{Event, EventType, Process};
use serde_json::Value;
use std::collections::HashMap;

pub fn parse(text: &str) -> Result<Parsed, LineError> {
    let ops = edn::read_ops(text)?;
    let has_times = !ops.is_empty() && ops.iter().all(|(_, op)| op.get("time").is_some());
    let mut events = Vec::with_capacity(ops.len());
    let mut invoke_values: HashMap<u64, Value> = HashMap::new();
    let (mut txn, mut mutex, mut keyed) = (false, false, false);
    for (line, op) in &ops {
        let mut e = op_from_map(*line, op)?;
        if let Some(p) = e.process.client() {
            match e.f.as_str() {
                "txn" => txn = true,
                "acquire" | "release" => mutex = true,
                _ => {}
            }
            keyed |= e.key.is_some();
            if e.f == "read" {
                match e.kind {
                    EventType::Invoke => e.value = Value::Null,
                    EventType::Ok if e.value.is_null() => {
                        e.kind = EventType::Fail;
                        e.error = Some("unknown-read".into());
                    }
                    _ => {}
                }
            }
            if e.error.as_deref() == Some("precondition-failed") {
                e.error = Some("knossos:precondition-failed".into());
            }
            fill_from_invoke(&mut e, p, &mut invoke_values);
        }
        events.push((*line, e));
    }
    if txn && mutex {
        return Err(LineError::new(
            0,
            "history mixes :txn and :acquire/:release ops; pick one model",
        ));
    }
    let model = if txn {
        ModelKind::MultiRegister
    } else if mutex {
        ModelKind::Mutex
    } else if keyed {
        ModelKind::Kv
    } else {
        ModelKind::Register
    };
    let default_init = (model != ModelKind::Mutex).then(|| Value::from(0));
    Ok(Parsed {
        events,
        has_times,
        model,
        default_init,
    })
}

/// A completion whose value is missing (Jepsen often writes `nil` on `fail`/`info`) carries the
/// invoke's value, as Knossos' `history/complete` does the other way round.
pub(crate) fn fill_from_invoke(e: &mut Event, p: u64, invoke_values: &mut HashMap<u64, Value>) {
    match e.kind {
        EventType::Invoke => {
            invoke_values.insert(p, e.value.clone());
        }
        _ => {
            let inv = invoke_values.remove(&p);
            if e.value.is_null() && e.f != "read" {
                if let Some(v) = inv {
                    e.value = v;
                }
            }
        }
    }
}

/// Converts one Jepsen op map (`{:process 1, :type :ok, :f :read, :value 3, ...}`) into an event.
/// `index` and (when absent) `time` are filled in later.
pub(crate) fn op_from_map(line: usize, op: &Edn<'_>) -> Result<Event, LineError> {
    if !op.is_map() {
        return Err(LineError::new(
            line,
            format!("expected an op map like {{:process 0, :type :invoke, :f :read, :value nil}}, found {}", describe(op)),
        ));
    }
    let field = |name: &str| -> Result<&Edn<'_>, LineError> {
        op.get(name)
            .ok_or_else(|| LineError::new(line, format!("op has no :{name}: {}", describe(op))))
    };
    let process = match field("process")? {
        Edn::Int(p) if *p >= 0 => Process::Client(*p as u64),
        other @ (Edn::Keyword(_) | Edn::Symbol(_) | Edn::Str(_)) => {
            Process::Named(other.as_name().unwrap_or_default().to_string())
        }
        other => {
            return Err(LineError::new(
                line,
                format!(
                    "bad :process {} (expected a non-negative integer or :nemesis)",
                    describe(other)
                ),
            ))
        }
    };
    let type_edn = field("type")?;
    let kind = type_edn.as_name().and_then(parse_type).ok_or_else(|| {
        LineError::new(
            line,
            format!(
                "unknown :type {} (expected :invoke, :ok, :fail or :info)",
                describe(type_edn)
            ),
        )
    })?;
    let f_edn = field("f")?;
    let f = f_edn
        .as_name()
        .ok_or_else(|| {
            LineError::new(
                line,
                format!("bad :f {} (expected a keyword)", describe(f_edn)),
            )
        })?
        .to_string();
    let key = match op.get("key") {
        None | Some(Edn::Nil) => None,
        Some(Edn::Int(i)) => Some(i.to_string()),
        Some(k) => match k.as_name() {
            Some(s) => Some(s.to_string()),
            None => Some(k.to_string()),
        },
    };
    let time = match op.get("time") {
        None => 0,
        Some(Edn::Int(t)) if *t >= 0 => *t as u64,
        Some(other) => {
            return Err(LineError::new(
                line,
                format!(
                    "bad :time {} (expected non-negative integer nanoseconds)",
                    describe(other)
                ),
            ))
        }
    };
    let error = match op.get("error") {
        None | Some(Edn::Nil) => None,
        Some(e) => Some(error_name(e)),
    };
    let node = op.get("node").map(|n| match n.as_name() {
        Some(s) => s.to_string(),
        None => n.to_string(),
    });
    Ok(Event {
        index: 0,
        time,
        process,
        kind,
        f,
        key,
        value: op.get("value").map(Edn::to_json).unwrap_or(Value::Null),
        node,
        error,
    })
}

/// Jepsen errors are keywords (`:timeout`), vectors led by a keyword (`[:not-found "msg"]`) or
/// strings; we keep the name.
fn error_name(e: &Edn<'_>) -> String {
    if let Some(s) = e.as_name() {
        return s.to_string();
    }
    match e {
        Edn::Vector(v) | Edn::List(v) if !v.is_empty() => error_name(&v[0]),
        other => other.to_string(),
    }
}
