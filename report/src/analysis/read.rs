//! Reading a JSON-lines history straight into an [`Analysis`], a block at a time, lines parsed
//! on all cores; only what the analysis needs is parsed from a client line.

use super::{observes, Analysis, Builder};
use checker::history::{Event, EventType, HistoryError};
use std::path::Path;

impl Analysis {
    pub(super) fn from_jsonl_blocks(
        path: &Path,
        block: usize,
    ) -> Result<(Analysis, Option<HistoryError>), HistoryError> {
        let file = path.display().to_string();
        let io = |source| HistoryError::Io {
            file: file.clone(),
            source,
        };
        let mut r = std::fs::File::open(path).map_err(io)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let mut b = Builder::default();
        let (mut buf, mut line_no) = (Vec::new(), 0usize);
        loop {
            let start = buf.len();
            buf.resize(start + block, 0);
            let n = read_full(&mut r, &mut buf[start..]).map_err(io)?;
            buf.truncate(start + n);
            let eof = n == 0;
            // Parse whole lines only; a partial last line waits for the next block.
            let end = if eof {
                buf.len()
            } else {
                buf.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1)
            };
            let pieces = split_lines(&buf[..end], threads);
            let parsed: Vec<Vec<Parsed>> = std::thread::scope(|sc| {
                let hs: Vec<_> = pieces
                    .iter()
                    .map(|p| {
                        let p = p.strip_suffix(b"\n").unwrap_or(p);
                        sc.spawn(move || p.split(|&c| c == b'\n').map(parse_lite).collect())
                    })
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().expect("parser thread"))
                    .collect()
            });
            let lines = parsed.into_iter().flat_map(|v| v.into_iter());
            for item in lines {
                line_no += 1;
                match item {
                    Parsed::Blank => {}
                    Parsed::Client(time, p, kind, f, obs) => b.client(time, p, kind, &f, obs),
                    Parsed::Nemesis(e) => b.nemesis(&e),
                    Parsed::Bad(msg) => {
                        let err = HistoryError::Parse {
                            file: file.clone(),
                            line: line_no,
                            msg,
                        };
                        return Ok((b.finish(), Some(err)));
                    }
                }
            }
            if eof {
                break;
            }
            buf.drain(..end);
        }
        Ok((b.finish(), None))
    }
}

/// Just what the analysis needs from a client line; the rest is skipped without allocating.
#[derive(serde::Deserialize)]
struct LiteEvent<'a> {
    time: u64,
    process: serde_json::Value,
    #[serde(rename = "type")]
    kind: EventType,
    #[serde(borrow)]
    f: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    error: Option<std::borrow::Cow<'a, str>>,
}

/// One history line, parsed.
enum Parsed<'a> {
    Blank,
    Client(u64, u64, EventType, std::borrow::Cow<'a, str>, bool),
    Nemesis(Event),
    Bad(String),
}

fn parse_lite(line: &[u8]) -> Parsed<'_> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Parsed::Blank;
    }
    match serde_json::from_slice::<LiteEvent>(line) {
        Ok(lite) => match lite.process.as_u64() {
            Some(p) => Parsed::Client(
                lite.time,
                p,
                lite.kind,
                lite.f,
                observes(lite.error.as_deref()),
            ),
            None => match std::str::from_utf8(line)
                .map_err(|e| e.to_string())
                .and_then(checker::history::parse_line)
            {
                Ok(e) => Parsed::Nemesis(e),
                Err(msg) => Parsed::Bad(msg),
            },
        },
        Err(e) => Parsed::Bad(e.to_string()),
    }
}

/// Splits whole lines into about `n` pieces, each ending at a newline (or the end).
fn split_lines(buf: &[u8], n: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(n);
    let mut rest = buf;
    for i in (1..=n).rev() {
        if rest.is_empty() {
            break;
        }
        let want = rest.len() / i;
        let cut = match rest[want..].iter().position(|&c| c == b'\n') {
            Some(j) if i > 1 => want + j + 1,
            _ => rest.len(),
        };
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    pieces
}

/// Reads until `buf` is full or the file ends.
fn read_full(r: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::history::parse_line;

    fn events(lines: &[&str]) -> Vec<Event> {
        lines.iter().map(|l| parse_line(l).unwrap()).collect()
    }

    #[test]
    fn reading_a_file_matches_reading_events() {
        let lines = [
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","value":1}"#,
            r#"{"index":1,"time":3,"process":"nemesis","type":"info","f":"kill","value":["n1"]}"#,
            r#"{"index":2,"time":5,"process":0,"type":"ok","f":"write","value":1}"#,
            r#"{"index":3,"time":6,"process":1,"type":"invoke","f":"r\u0065ad","value":null}"#,
            r#"{"index":4,"time":7,"process":1,"type":"ok","f":"read","val"#,
        ];
        let path = std::env::temp_dir().join(format!("analysis-{}.jsonl", std::process::id()));
        std::fs::write(&path, lines.join("\n")).unwrap();
        let (a, err) = Analysis::from_jsonl(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let b = Analysis::from_events(&events(&lines[..4]));
        let err = err.unwrap().to_string();
        assert!(err.contains(".jsonl:5: EOF"), "{err}");
        assert_eq!(
            (a.fs.clone(), a.ops.len(), a.faults.clone()),
            (b.fs.clone(), b.ops.len(), b.faults.clone())
        );
        assert_eq!(a.fs, vec!["write", "read"]);
        assert_eq!(a.counts_total().pending, 1);
    }

    #[test]
    fn blocks_and_threads_keep_line_numbers() {
        let mut text = String::new();
        for i in 0..500u64 {
            text += &format!(
                "{{\"index\":{},\"time\":{},\"process\":{},\"type\":\"invoke\",\"f\":\"read\"}}\n\n",
                2 * i,
                10 * i,
                i % 7
            );
            text += &format!(
                "{{\"index\":{},\"time\":{},\"process\":{},\"type\":\"ok\",\"f\":\"read\",\"value\":1}}\n",
                2 * i + 1,
                10 * i + 5,
                i % 7
            );
        }
        text += "{\"index\":1000,\"time\":\"late\"}\n";
        text += "{\"index\":1001,\"time\":9999,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n";
        let path =
            std::env::temp_dir().join(format!("analysis-blocks-{}.jsonl", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        for block in [64, 1000, 1 << 20] {
            let (a, err) = Analysis::from_jsonl_blocks(&path, block).unwrap();
            let err = err.expect("bad line found").to_string();
            assert!(err.contains(".jsonl:1501:"), "block {block}: {err}");
            assert_eq!(a.counts_total().ok, 500, "block {block}");
        }
        std::fs::remove_file(&path).unwrap();
    }
}
