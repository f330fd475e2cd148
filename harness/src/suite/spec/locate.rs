//! Where in a suite file a problem is: line and column from the spans toml reports, the entry
//! (`[[test]] "name" (entry N)`, `[defaults]`) and the field.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A problem in a suite file, with as much of a location as is known.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub file: PathBuf,
    pub line: Option<u32>,
    pub col: Option<u32>,
    /// e.g. `[[test]] "partition" (entry 2)` or `[defaults]`.
    pub entry: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.col {
                write!(f, ":{c}")?;
            }
        }
        f.write_str(": ")?;
        match (&self.entry, &self.field) {
            (Some(e), Some(k)) => write!(f, "{e}, field `{k}`: ")?,
            (Some(e), None) => write!(f, "{e}: ")?,
            (None, Some(k)) => write!(f, "field `{k}`: ")?,
            (None, None) => {}
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

/// The part of the file a problem is in.
#[derive(Clone, Copy)]
pub enum Region {
    Suite,
    Defaults,
    Entry(usize),
}

/// A table with the span of every key and value (the table's own span starts at its header).
type SpannedTable = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// The file's tables with their spans, whatever their fields hold.
#[derive(Default, Deserialize)]
struct Layout {
    suite: Option<Spanned<SpannedTable>>,
    defaults: Option<Spanned<SpannedTable>>,
    #[serde(default)]
    test: Vec<Spanned<SpannedTable>>,
}

/// Turns regions, field names and toml's byte spans into located [`SpecError`]s.
pub struct Locator<'a> {
    text: &'a str,
    path: &'a Path,
    layout: Layout,
}

impl<'a> Locator<'a> {
    /// `text` should be valid TOML (else nothing but toml's own spans can be located).
    pub fn new(text: &'a str, path: &'a Path) -> Self {
        let layout = toml::from_str(text).unwrap_or_default();
        Locator { text, path, layout }
    }

    fn line_col(&self, offset: usize) -> (u32, u32) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line as u32, col as u32)
    }

    fn table(&self, region: Region) -> Option<&Spanned<SpannedTable>> {
        match region {
            Region::Suite => self.layout.suite.as_ref(),
            Region::Defaults => self.layout.defaults.as_ref(),
            Region::Entry(i) => self.layout.test.get(i),
        }
    }

    /// Where `field = ...` starts in a region's table.
    fn field_offset(&self, region: Region, field: &str) -> Option<usize> {
        let (key, _) = self.table(region)?.get_ref().get_key_value(field)?;
        Some(key.span().start)
    }

    /// The region whose table holds `offset`.
    fn region_at(&self, offset: usize) -> Option<Region> {
        let inside = |t: &Spanned<SpannedTable>| t.span().contains(&offset);
        let entry = self.layout.test.iter().position(inside).map(Region::Entry);
        entry
            .or_else(|| {
                self.layout
                    .defaults
                    .as_ref()
                    .filter(|t| inside(t))
                    .map(|_| Region::Defaults)
            })
            .or_else(|| {
                self.layout
                    .suite
                    .as_ref()
                    .filter(|t| inside(t))
                    .map(|_| Region::Suite)
            })
    }

    /// The field of `region` whose key or value holds `offset`.
    fn field_at(&self, region: Region, offset: usize) -> Option<String> {
        let holds = |(k, v): &(&Spanned<String>, &Spanned<toml::Value>)| {
            let span: Range<usize> = k.span().start..v.span().end;
            span.contains(&offset)
        };
        let table = self.table(region)?.get_ref();
        table.iter().find(holds).map(|(k, _)| k.get_ref().clone())
    }

    /// A syntax error leaves no layout: read the lines before the broken one, and name the
    /// table the error comes after.
    fn entry_before_syntax_error(&self, offset: usize) -> Option<String> {
        let line_start = self.text[..offset.min(self.text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let before = Locator::new(&self.text[..line_start], self.path);
        let starts = |t: Option<&Spanned<SpannedTable>>| t.map_or(0, |t| t.span().start + 1);
        let last = [
            (Region::Suite, starts(before.layout.suite.as_ref())),
            (Region::Defaults, starts(before.layout.defaults.as_ref())),
            (
                Region::Entry(before.layout.test.len().saturating_sub(1)),
                starts(before.layout.test.last()),
            ),
        ]
        .into_iter()
        .filter(|(_, start)| *start > 0)
        .max_by_key(|(_, start)| *start)?;
        before.entry_label(last.0)
    }

    fn entry_label(&self, region: Region) -> Option<String> {
        match region {
            Region::Suite => None,
            Region::Defaults => Some("[defaults]".into()),
            Region::Entry(i) => {
                let name = self
                    .layout
                    .test
                    .get(i)
                    .and_then(|t| t.get_ref().get("name"))
                    .and_then(|n| n.get_ref().as_str());
                Some(match name {
                    Some(n) => format!("[[test]] \"{n}\" (entry {})", i + 1),
                    None => format!("[[test]] entry {}", i + 1),
                })
            }
        }
    }

    fn at(&self, offset: Option<usize>) -> (Option<u32>, Option<u32>) {
        match offset {
            Some(o) => {
                let (l, c) = self.line_col(o);
                (Some(l), Some(c))
            }
            None => (None, None),
        }
    }

    /// A semantic error: points at the field in the entry, or in `[defaults]` when the entry
    /// inherited the value, or else at the entry's header.
    pub fn error(&self, region: Region, field: Option<&str>, message: String) -> SpecError {
        let mut label = self.entry_label(region);
        let mut at = field.and_then(|f| self.field_offset(region, f));
        if let (None, Some(f), Region::Entry(_)) = (at, field, region) {
            at = self.field_offset(Region::Defaults, f);
            if at.is_some() {
                label = label.map(|l| format!("{l} (value from [defaults])"));
            }
        }
        let at = at.or_else(|| self.table(region).map(|t| t.span().start));
        let (line, col) = self.at(at);
        SpecError {
            file: self.path.to_path_buf(),
            line,
            col,
            entry: label,
            field: field.map(str::to_string),
            message,
        }
    }

    /// A toml error (syntax, unknown key, wrong type): toml gives the span; we add the entry and
    /// the field it falls in.
    pub fn toml_error(&self, e: &toml::de::Error) -> SpecError {
        let start = e.span().map(|s| s.start);
        let (line, col) = self.at(start);
        let region = start.and_then(|s| Some((self.region_at(s)?, s)));
        let mut entry = region.and_then(|(r, _)| self.entry_label(r));
        let field = region.and_then(|(r, s)| self.field_at(r, s));
        if let (None, Some(s)) = (&entry, start) {
            entry = self.entry_before_syntax_error(s);
        }
        let message = did_you_mean(e.message().trim());
        // "unknown field `x`" already names the field; don't repeat it as a location.
        let field = field.filter(|f| !message.contains(&format!("`{f}`")));
        SpecError {
            file: self.path.to_path_buf(),
            line,
            col,
            entry,
            field,
            message,
        }
    }
}

/// toml lists every field it expected after an unknown one; name the likeliest first.
fn did_you_mean(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|k| (edit_distance(unknown, k), k))
        .min();
    match best {
        Some((d, k)) if d <= 2.max(unknown.len() / 3) => {
            format!("unknown field `{unknown}`, did you mean `{k}`?")
        }
        _ => message.to_string(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
