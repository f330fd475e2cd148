//! A small EDN reader: enough of the format for Jepsen and Knossos histories (maps, vectors, lists,
//! sets, keywords, strings, numbers, `nil`, booleans, `;` comments, `#_` discard and tagged values
//! such as `#jepsen.history.Op{...}`). Every form remembers the line it starts on, so importers can
//! name `file:line` in their errors.
//!
//! Hand-written rather than a crate because we need line numbers per form and a streaming read of
//! many top-level forms; both are a few lines here.

use std::borrow::Cow;
use std::fmt;

/// One EDN value.
#[derive(Clone, Debug, PartialEq)]
/// Borrows from the text it was read from: keywords, symbols and escape-free strings cost no
/// allocation.
pub enum Edn<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    /// Without the leading `:`.
    Keyword(&'a str),
    Symbol(&'a str),
    Char(char),
    Vector(Vec<Edn<'a>>),
    List(Vec<Edn<'a>>),
    Set(Vec<Edn<'a>>),
    /// Key-value pairs in file order (histories are small maps; a Vec beats a HashMap here).
    Map(Vec<(Edn<'a>, Edn<'a>)>),
    Tagged(&'a str, Box<Edn<'a>>),
}

impl<'a> Edn<'a> {
    /// Looks up a keyword key in a map (also looks inside a tagged map, e.g. a Jepsen `Op` record).
    pub fn get(&self, keyword: &str) -> Option<&Edn<'a>> {
        match self {
            Edn::Map(pairs) => pairs.iter().find_map(|(k, v)| match k {
                Edn::Keyword(name) if *name == keyword => Some(v),
                _ => None,
            }),
            Edn::Tagged(_, inner) => inner.get(keyword),
            _ => None,
        }
    }

    pub fn is_map(&self) -> bool {
        match self {
            Edn::Map(_) => true,
            Edn::Tagged(_, inner) => inner.is_map(),
            _ => false,
        }
    }

    /// The name of a keyword, symbol or string; `None` for anything else.
    pub fn as_name(&self) -> Option<&str> {
        match self {
            Edn::Keyword(s) | Edn::Symbol(s) => Some(s),
            Edn::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Converts to JSON: keywords become their bare name, sets and lists become arrays, maps with
    /// non-string keys get their keys printed as EDN.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(i) => Value::from(*i),
            Edn::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Edn::Str(s) => Value::String(s.to_string()),
            Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.to_string()),
            Edn::Char(c) => Value::String(c.to_string()),
            Edn::Vector(v) | Edn::List(v) | Edn::Set(v) => {
                Value::Array(v.iter().map(Edn::to_json).collect())
            }
            Edn::Map(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| {
                        let key = match k.as_name() {
                            Some(s) => s.to_string(),
                            None => k.to_string(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
            Edn::Tagged(_, inner) => inner.to_json(),
        }
    }
}

impl fmt::Display for Edn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq(
            f: &mut fmt::Formatter<'_>,
            open: &str,
            items: &[Edn<'_>],
            close: &str,
        ) -> fmt::Result {
            f.write_str(open)?;
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{x}")?;
            }
            f.write_str(close)
        }
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::Float(x) => write!(f, "{x}"),
            Edn::Str(s) => write!(f, "{s:?}"),
            Edn::Keyword(s) => write!(f, ":{s}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::Char(c) => write!(f, "\\{c}"),
            Edn::Vector(v) => seq(f, "[", v, "]"),
            Edn::List(v) => seq(f, "(", v, ")"),
            Edn::Set(v) => seq(f, "#{", v, "}"),
            Edn::Map(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
            Edn::Tagged(tag, inner) => write!(f, "#{tag} {inner}"),
        }
    }
}

/// What went wrong and on which line (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdnError {
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for EdnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

/// Reads every top-level form of `text`, each with the line it starts on.
pub fn read_all(text: &str) -> Result<Vec<(usize, Edn<'_>)>, EdnError> {
    let mut r = Reader::new(text);
    let mut out = Vec::new();
    while let Some(item) = r.next_form()? {
        out.push(item);
    }
    Ok(out)
}

/// Reads a history file's operations: either ONE top-level vector or list of forms (Knossos'
/// `history.edn`) or a stream of top-level forms (Jepsen's newer one-op-per-line `history.edn`,
/// Porcupine's kv files). Returns each op with the line it starts on.
pub fn read_ops(text: &str) -> Result<Vec<(usize, Edn<'_>)>, EdnError> {
    let mut r = Reader::new(text);
    let Some((line, first)) = r.next_form_with(true)? else {
        return Ok(Vec::new());
    };
    match first {
        // The collection's elements were read with their own lines.
        Edn::Vector(_) | Edn::List(_) => {
            let items = std::mem::take(&mut r.element_lines);
            if let Some((extra_line, extra)) = r.next_form()? {
                return Err(EdnError {
                    line: extra_line,
                    msg: format!(
                        "unexpected {} after the history collection that started on line {line}",
                        describe(&extra)
                    ),
                });
            }
            Ok(items)
        }
        other => {
            let mut out = vec![(line, other)];
            while let Some(item) = r.next_form()? {
                out.push(item);
            }
            Ok(out)
        }
    }
}

/// A short description for error messages: the form itself, cut to a readable length.
pub fn describe(e: &Edn<'_>) -> String {
    let s = e.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("`{cut}...`")
    } else {
        format!("`{s}`")
    }
}

struct Reader<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    line: usize,
    /// Filled by `next_form_with(true)`: the elements of the top-level collection with their lines.
    element_lines: Vec<(usize, Edn<'a>)>,
    /// Forms being read, one inside the other (bounded: see [`MAX_DEPTH`]).
    depth: usize,
}

/// How deeply forms may nest (as serde_json's limit): far beyond any history, and a file of a
/// million `[` is refused by name instead of overflowing the stack.
const MAX_DEPTH: usize = 128;

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Reader {
            src: text.as_bytes(),
            text,
            pos: 0,
            line: 1,
            element_lines: Vec::new(),
            depth: 0,
        }
    }

    fn err<T>(&self, line: usize, msg: impl Into<String>) -> Result<T, EdnError> {
        Err(EdnError {
            line,
            msg: msg.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    /// Skips whitespace, commas and `;` comments, counting lines.
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' | b',' | 0x0c => self.pos += 1,
                b';' => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn next_form(&mut self) -> Result<Option<(usize, Edn<'a>)>, EdnError> {
        self.next_form_with(false)
    }

    /// Reads the next form; `None` at end of input. With `record_elements`, a top-level vector or
    /// list also records each element's starting line in `element_lines` (moved, not cloned).
    fn next_form_with(
        &mut self,
        record_elements: bool,
    ) -> Result<Option<(usize, Edn<'a>)>, EdnError> {
        loop {
            self.skip_ws();
            let Some(c) = self.peek() else {
                return Ok(None);
            };
            let line = self.line;
            if c == b'#' && self.src.get(self.pos + 1) == Some(&b'_') {
                self.pos += 2;
                self.read_form()?;
                continue;
            }
            if record_elements && (c == b'[' || c == b'(') {
                self.pos += 1;
                let close = if c == b'[' { b']' } else { b')' };
                let mut items = Vec::new();
                self.read_seq_into(close, line, &mut items)?;
                self.element_lines = items;
                let empty = if c == b'[' {
                    Edn::Vector(Vec::new())
                } else {
                    Edn::List(Vec::new())
                };
                return Ok(Some((line, empty)));
            }
            let form = self.read_form()?;
            return Ok(Some((line, form)));
        }
    }

    /// Reads forms up to `close`, pushing them (with lines) into `out`.
    fn read_seq_into(
        &mut self,
        close: u8,
        open_line: usize,
        out: &mut Vec<(usize, Edn<'a>)>,
    ) -> Result<(), EdnError> {
        self.read_items(close, open_line, &mut |line, form| out.push((line, form)))
    }

    /// Reads forms up to `close`, handing each (with its line) to `item`.
    fn read_items(
        &mut self,
        close: u8,
        open_line: usize,
        item: &mut dyn FnMut(usize, Edn<'a>),
    ) -> Result<(), EdnError> {
        loop {
            self.skip_ws();
            match self.peek() {
                None => {
                    return self.err(
                        self.line,
                        format!(
                        "end of file inside a collection opened on line {open_line} (missing `{}`)",
                        close as char
                    ),
                    )
                }
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b')' | b']' | b'}') => {
                    let c = self.peek().unwrap_or(b'?') as char;
                    return self.err(
                        self.line,
                        format!(
                            "unexpected `{c}`: the collection opened on line {open_line} needs `{}`",
                            close as char
                        ),
                    );
                }
                Some(b'#') if self.src.get(self.pos + 1) == Some(&b'_') => {
                    self.pos += 2;
                    self.read_form()?;
                }
                Some(_) => {
                    let line = self.line;
                    let form = self.read_form()?;
                    item(line, form);
                }
            }
        }
    }

    fn read_seq(&mut self, close: u8, open_line: usize) -> Result<Vec<Edn<'a>>, EdnError> {
        let mut items = Vec::new();
        self.read_items(close, open_line, &mut |_, form| items.push(form))?;
        Ok(items)
    }

    fn read_form(&mut self) -> Result<Edn<'a>, EdnError> {
        if self.depth >= MAX_DEPTH {
            return self.err(
                self.line,
                format!("forms nested more than {MAX_DEPTH} deep"),
            );
        }
        self.depth += 1;
        let form = self.read_one_form();
        self.depth -= 1;
        form
    }

    fn read_one_form(&mut self) -> Result<Edn<'a>, EdnError> {
        self.skip_ws();
        let line = self.line;
        let Some(c) = self.peek() else {
            return self.err(line, "end of file where a value was expected");
        };
        match c {
            b'[' => {
                self.pos += 1;
                Ok(Edn::Vector(self.read_seq(b']', line)?))
            }
            b'(' => {
                self.pos += 1;
                Ok(Edn::List(self.read_seq(b')', line)?))
            }
            b'{' => {
                self.pos += 1;
                let mut pairs = Vec::with_capacity(8);
                let mut key = None;
                let mut count = 0;
                self.read_items(b'}', line, &mut |_, form| {
                    count += 1;
                    match key.take() {
                        None => key = Some(form),
                        Some(k) => pairs.push((k, form)),
                    }
                })?;
                if key.is_some() {
                    return self.err(
                        line,
                        format!("map has an odd number of forms ({count}): a key without a value"),
                    );
                }
                Ok(Edn::Map(pairs))
            }
            b')' | b']' | b'}' => self.err(line, format!("unexpected `{}`", c as char)),
            b'"' => self.read_string(),
            b'#' => {
                self.pos += 1;
                match self.peek() {
                    Some(b'{') => {
                        self.pos += 1;
                        Ok(Edn::Set(self.read_seq(b'}', line)?))
                    }
                    Some(c) if c.is_ascii_alphabetic() => {
                        let tag = self.read_token();
                        let inner = self.read_form()?;
                        Ok(Edn::Tagged(tag, Box::new(inner)))
                    }
                    _ => self.err(
                        line,
                        "unsupported `#` dispatch (expected `#{`, `#_` or a tag)",
                    ),
                }
            }
            b'\\' => {
                self.pos += 1;
                let tok = self.read_token();
                let ch = match tok {
                    "newline" => '\n',
                    "space" => ' ',
                    "tab" => '\t',
                    "return" => '\r',
                    _ => {
                        let mut chars = tok.chars();
                        match (chars.next(), chars.next()) {
                            (Some(c), None) => c,
                            _ => return self.err(line, format!("bad character literal `\\{tok}`")),
                        }
                    }
                };
                Ok(Edn::Char(ch))
            }
            b':' => {
                self.pos += 1;
                let tok = self.read_token();
                if tok.is_empty() {
                    return self.err(line, "`:` without a keyword name");
                }
                Ok(Edn::Keyword(tok))
            }
            _ => {
                let tok = self.read_token();
                if tok.is_empty() {
                    // A byte that cannot start a token: name it and move on no further.
                    let ch = self.text[self.pos..].chars().next().unwrap_or('?');
                    return self.err(line, format!("unexpected character `{ch}`"));
                }
                parse_atom(tok).map_err(|msg| EdnError { line, msg })
            }
        }
    }

    /// A run of symbol/number characters (stops at whitespace, delimiters and `;`).
    fn read_token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace()
                || matches!(
                    c,
                    b',' | b';' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"'
                )
            {
                break;
            }
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn read_string(&mut self) -> Result<Edn<'a>, EdnError> {
        let line = self.line;
        self.pos += 1; // opening quote
        let mut out = String::new();
        let mut escaped = false;
        let mut run_start = self.pos;
        loop {
            let Some(c) = self.peek() else {
                return self.err(
                    line,
                    "unterminated string (end of file before the closing `\"`)",
                );
            };
            match c {
                b'"' => {
                    let run = &self.text[run_start..self.pos];
                    self.pos += 1;
                    if escaped {
                        out.push_str(run);
                        return Ok(Edn::Str(Cow::Owned(out)));
                    }
                    return Ok(Edn::Str(Cow::Borrowed(run)));
                }
                b'\\' => {
                    escaped = true;
                    out.push_str(&self.text[run_start..self.pos]);
                    let esc = self.src.get(self.pos + 1).copied();
                    self.pos += 2;
                    match esc {
                        Some(b'n') => out.push('\n'),
                        Some(b't') => out.push('\t'),
                        Some(b'r') => out.push('\r'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'u') => {
                            let hex = self.text.get(self.pos..self.pos + 4).unwrap_or("");
                            let ch = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                            match ch {
                                Some(ch) if hex.len() == 4 => out.push(ch),
                                _ => {
                                    return self
                                        .err(self.line, format!("bad unicode escape `\\u{hex}`"))
                                }
                            }
                            self.pos += 4;
                        }
                        _ => {
                            return self.err(
                                self.line,
                                format!(
                                    "bad string escape `\\{}`",
                                    esc.map(|b| b as char).unwrap_or(' ')
                                ),
                            )
                        }
                    }
                    run_start = self.pos;
                }
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                _ => self.pos += 1,
            }
        }
    }
}

fn parse_atom(tok: &str) -> Result<Edn<'_>, String> {
    match tok {
        "nil" => return Ok(Edn::Nil),
        "true" => return Ok(Edn::Bool(true)),
        "false" => return Ok(Edn::Bool(false)),
        _ => {}
    }
    let b = tok.as_bytes();
    let numeric = b[0].is_ascii_digit()
        || ((b[0] == b'-' || b[0] == b'+') && b.len() > 1 && b[1].is_ascii_digit());
    if !numeric {
        return Ok(Edn::Symbol(tok));
    }
    // `42N` (bigint) and `1.5M` (bigdec) suffixes are accepted and dropped.
    let t = tok.strip_suffix(['N', 'M']).unwrap_or(tok);
    let t = t.strip_prefix('+').unwrap_or(t);
    if let Ok(i) = t.parse::<i64>() {
        return Ok(Edn::Int(i));
    }
    let digits = t.strip_prefix('-').unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
        // As a float it would be rounded, and two different values could compare equal.
        return Err(format!(
            "integer `{tok}` does not fit in 64 bits; refusing it rather than rounding"
        ));
    }
    if let Ok(f) = t.parse::<f64>() {
        return Ok(Edn::Float(f));
    }
    Err(format!("bad number `{tok}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_knossos_vector_with_comments_and_multiline_maps() {
        let text = "; header\n[{:process 4, :type :invoke, :f :write, :value 2}\n ; note\n {:type :ok,\n  :f :txn,\n  :value [[:read :x nil]], :process 3}]\n";
        let ops = read_ops(text).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].0, 2);
        assert_eq!(ops[1].0, 4);
        assert_eq!(ops[0].1.get("value"), Some(&Edn::Int(2)));
        assert_eq!(ops[1].1.get("type"), Some(&Edn::Keyword("ok")));
        assert_eq!(
            ops[1].1.get("value"),
            Some(&Edn::Vector(vec![Edn::Vector(vec![
                Edn::Keyword("read"),
                Edn::Keyword("x"),
                Edn::Nil
            ])]))
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let e = read_ops(&deep).unwrap_err();
        assert!(e.msg.contains("nested more than 128 deep"), "{e}");
        let ok = "[".repeat(100) + &"]".repeat(100);
        assert!(read_ops(&ok).is_ok());
    }

    #[test]
    fn reads_a_list_and_a_stream_of_maps() {
        assert_eq!(read_ops("({:a 1} {:a 2})").unwrap().len(), 2);
        let ops = read_ops("{:a 1}\n\n{:a \"x \\\"y\\\"\"}\n").unwrap();
        assert_eq!(ops[1].0, 3);
        assert_eq!(ops[1].1.get("a"), Some(&Edn::Str("x \"y\"".into())));
    }

    #[test]
    fn atoms_sets_tags_and_discard() {
        let all =
            read_all("-3 +4 2.5 42N true #{1 2} #_ ignored #inst \"2020\" \\a foo/bar").unwrap();
        let forms: Vec<Edn> = all.into_iter().map(|(_, e)| e).collect();
        assert_eq!(forms[0], Edn::Int(-3));
        assert_eq!(forms[1], Edn::Int(4));
        assert_eq!(forms[2], Edn::Float(2.5));
        assert_eq!(forms[3], Edn::Int(42));
        assert_eq!(forms[4], Edn::Bool(true));
        assert_eq!(forms[5], Edn::Set(vec![Edn::Int(1), Edn::Int(2)]));
        assert_eq!(
            forms[6],
            Edn::Tagged("inst", Box::new(Edn::Str("2020".into())))
        );
        assert_eq!(forms[7], Edn::Char('a'));
        assert_eq!(forms[8], Edn::Symbol("foo/bar"));
    }

    #[test]
    fn errors_name_the_line() {
        let e = read_ops("[{:a 1}\n {:a 2\n").unwrap_err();
        assert!(e.msg.contains("end of file"), "{e}");
        let e = read_ops("[{:a 1}\n {:a}]").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.msg.contains("odd number"), "{e}");
        let e = read_ops("[1 2]\n\n]").unwrap_err();
        assert_eq!(e.line, 3);
        let e = read_ops("{:a \"open\n\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.msg.contains("unterminated"), "{e}");
        let e = read_ops("[1 2)").unwrap_err();
        assert!(e.msg.contains("needs `]`"), "{e}");
    }

    #[test]
    fn converts_to_json() {
        let (_, e) = read_all("{:f :cas, :value [1 2], :error [:timeout nil]}")
            .unwrap()
            .remove(0);
        assert_eq!(
            e.to_json(),
            serde_json::json!({"f": "cas", "value": [1, 2], "error": ["timeout", null]})
        );
    }
}
