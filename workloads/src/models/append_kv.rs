//! The `append` model, a key-value store of strings (Porcupine's `test_data/kv` model): `read`
//! (get) returns the key's string, `write` (put) replaces it, `append` appends to it; a missing
//! key reads as `""`. Keys are independent, so the history is checked key by key.
//!
//! States are strings that only grow by appends, so a state carries a rolling hash updated in
//! O(1) per append; the search hashes and compares states constantly and only falls back to
//! comparing the text when two hashes agree.

use checker::model::{Model, Operation, Outcome, PartModel};
use serde_json::Value;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The append key-value model; `initial` is every key's value before any op (Porcupine: `""`).
#[derive(Clone, Debug, Default)]
pub struct AppendKv {
    pub initial: String,
}

impl AppendKv {
    pub fn new(initial: String) -> Self {
        AppendKv { initial }
    }
}

/// A string with its rolling hash and `BASE^len` (to extend the hash by this string).
#[derive(Clone, Debug)]
pub struct Text {
    s: Arc<str>,
    hash: u64,
    pow: u64,
}

/// Polynomial hashing modulo the Mersenne prime 2^61 - 1 (not 2^64, where Thue-Morse strings
/// collide for every base).
const P: u64 = (1 << 61) - 1;
const BASE: u64 = 0x1d8e_4e27_c47d_124f % P;

fn mul_mod(a: u64, b: u64) -> u64 {
    let r = a as u128 * b as u128;
    let sum = (r as u64 & P) + (r >> 61) as u64;
    if sum >= P {
        sum - P
    } else {
        sum
    }
}

fn add_mod(a: u64, b: u64) -> u64 {
    let sum = a + b; // both < 2^61: no overflow
    if sum >= P {
        sum - P
    } else {
        sum
    }
}

impl Text {
    fn new(s: &str) -> Self {
        let (mut hash, mut pow) = (0u64, 1u64);
        for b in s.bytes() {
            hash = add_mod(mul_mod(hash, BASE), b as u64 + 1);
            pow = mul_mod(pow, BASE);
        }
        Text {
            s: s.into(),
            hash,
            pow,
        }
    }

    fn concat(&self, tail: &Text) -> Text {
        let mut s = String::with_capacity(self.s.len() + tail.s.len());
        s.push_str(&self.s);
        s.push_str(&tail.s);
        Text {
            s: s.into(),
            hash: add_mod(mul_mod(self.hash, tail.pow), tail.hash),
            pow: mul_mod(self.pow, tail.pow),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.s
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.s.len() == other.s.len() && self.s == other.s
    }
}

impl Eq for Text {}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
        state.write_usize(self.s.len());
    }
}

/// One operation of the append model.
#[derive(Clone, Debug)]
pub enum AppendOp {
    Read(Text),
    Write(Text),
    Append(Text),
}

/// One key of the append model.
#[derive(Clone, Debug)]
pub struct AppendPart {
    init: Text,
}

impl Model for AppendKv {
    type Part = AppendPart;

    fn part_of(&self, op: &Operation) -> Result<String, String> {
        op.key.clone().ok_or_else(|| {
            format!(
                "event {}: {} has no key (append ops need one)",
                op.invoke_index, op.f
            )
        })
    }

    fn build(&self, ops: &[&Operation]) -> Result<(AppendPart, Vec<Option<AppendOp>>), String> {
        let text = |op: &Operation, v: &Value, what: &str| -> Result<Text, String> {
            match v {
                Value::String(s) => Ok(Text::new(s)),
                // A read of a key that does not exist: Porcupine's kv service returns "".
                Value::Null if what == "read" => Ok(Text::new("")),
                v => Err(format!(
                    "event {}: {what} value must be a string, got {v}",
                    op.invoke_index
                )),
            }
        };
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            let done = op.outcome != Outcome::Fail;
            let m = match op.f.as_str() {
                "read" if op.outcome == Outcome::Ok => {
                    Some(AppendOp::Read(text(op, &op.output, "read")?))
                }
                "read" => None,
                "write" if done => Some(AppendOp::Write(text(op, &op.input, "write")?)),
                "append" if done => Some(AppendOp::Append(text(op, &op.input, "append")?)),
                "write" | "append" => None,
                f => {
                    return Err(format!(
                        "event {}: unknown f {f:?} (the append model knows read, write and append)",
                        op.invoke_index
                    ))
                }
            };
            out.push(m);
        }
        Ok((
            AppendPart {
                init: Text::new(&self.initial),
            },
            out,
        ))
    }
}

impl PartModel for AppendPart {
    type Op = AppendOp;
    type State = Text;

    fn init(&self) -> Text {
        self.init.clone()
    }

    fn step(&self, state: &Text, op: &AppendOp) -> Option<Text> {
        match op {
            AppendOp::Read(v) => (v == state).then(|| state.clone()),
            AppendOp::Write(v) => Some(v.clone()),
            AppendOp::Append(v) => Some(state.concat(v)),
        }
    }

    fn is_blind(&self, op: &AppendOp) -> bool {
        matches!(op, AppendOp::Write(_))
    }

    fn show_state(&self, state: &Text) -> String {
        const MAX: usize = 80;
        let s = state.as_str();
        if s.chars().count() <= MAX {
            format!("{s:?}")
        } else {
            let tail: String = s
                .chars()
                .rev()
                .take(MAX)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("\"...{}\" ({} bytes)", tail.escape_debug(), s.len())
        }
    }

    fn state_json(&self, state: &Text) -> Value {
        Value::String(state.as_str().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_like_porcupines_kv_model() {
        let p = AppendPart {
            init: Text::new(""),
        };
        let s0 = p.init();
        assert!(p.step(&s0, &AppendOp::Read(Text::new(""))).is_some());
        assert!(p.step(&s0, &AppendOp::Read(Text::new("x"))).is_none());
        let s1 = p
            .step(&s0, &AppendOp::Append(Text::new("x 0 0 y")))
            .unwrap();
        let s2 = p
            .step(&s1, &AppendOp::Append(Text::new("x 1 0 y")))
            .unwrap();
        assert_eq!(
            s2,
            Text::new("x 0 0 yx 1 0 y"),
            "rolling hash matches a fresh one"
        );
        assert!(p
            .step(&s2, &AppendOp::Read(Text::new("x 0 0 yx 1 0 y")))
            .is_some());
        assert!(p
            .step(&s2, &AppendOp::Read(Text::new("x 1 0 yx 0 0 y")))
            .is_none());
        let s3 = p.step(&s2, &AppendOp::Write(Text::new("z"))).unwrap();
        assert_eq!(s3, Text::new("z"));
        assert_eq!(p.show_state(&s3), "\"z\"");
    }

    #[test]
    fn different_splits_of_the_same_text_are_equal_states() {
        let a = Text::new("ab").concat(&Text::new("c"));
        let b = Text::new("a").concat(&Text::new("bc"));
        assert_eq!(a, b);
        let mut h1 = std::collections::hash_map::DefaultHasher::new();
        let mut h2 = std::collections::hash_map::DefaultHasher::new();
        a.hash(&mut h1);
        b.hash(&mut h2);
        assert_eq!(h1.finish(), h2.finish());
    }

    #[test]
    fn thue_morse_strings_do_not_collide() {
        // Under a hash mod 2^64 the Thue-Morse word and its complement collide for every base.
        let tm: String = (0..4096u32)
            .map(|i| if i.count_ones() % 2 == 0 { 'a' } else { 'b' })
            .collect();
        let complement: String = tm
            .chars()
            .map(|c| if c == 'a' { 'b' } else { 'a' })
            .collect();
        assert_ne!(Text::new(&tm).hash, Text::new(&complement).hash);
    }
}
