//! The sequential models histories are checked against, one file per thing modelled, and
//! [`check_with`], which picks the model a [`ModelKind`] names.
//!
//! - [`register`]: one read/write/cas register (the `register` workload);
//! - [`kv`]: a register per key (the `kv` workload);
//! - [`append_kv`]: a key-value store of strings with append (Porcupine's data);
//! - [`multi_register`]: atomic txns over several registers (Knossos' data);
//! - [`mutex`]: one lock (Knossos' data).

pub mod append_kv;
pub mod kv;
pub mod multi_register;
pub mod mutex;
pub mod register;

pub use append_kv::AppendKv;
pub use kv::Kv;
pub use multi_register::MultiRegister;
pub use mutex::Mutex;
pub use register::Register;

use checker::formats::ModelKind;
use checker::history::Event;
use checker::linearizability::check_events;
use checker::{CheckOptions, CheckResult};
use serde_json::Value;

/// Checks `events` with the model `kind` names; `init` is every register's (or key's) value
/// before any write, null for the model's default. Errors name what is wrong: the history (an
/// event index) or an `init` the model cannot use.
pub fn check_with(
    kind: ModelKind,
    init: &Value,
    events: &[Event],
    opts: &CheckOptions,
) -> Result<CheckResult, String> {
    match kind {
        ModelKind::Register => check_events(&Register::new(init.clone()), events, opts),
        ModelKind::Kv => check_events(&Kv::new(init.clone()), events, opts),
        ModelKind::Append => {
            let init = match init {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                v => return Err(format!("--init {v}: the append model needs a string")),
            };
            check_events(&AppendKv::new(init), events, opts)
        }
        ModelKind::MultiRegister => check_events(&MultiRegister::new(init.clone()), events, opts),
        ModelKind::Mutex => check_events(&Mutex, events, opts),
    }
}
