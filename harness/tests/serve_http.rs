//! `harness serve` over HTTP: a real server process on a store of real runs (the tiny node), asked
//! for its pages, and for paths out of the store. Requests are written by hand on a TCP socket:
//! HTTP clients tidy `..` out of a URL before sending it, and sending it is the point here.

mod cli_util;

use cli_util::{harness, run, scratch, tiny_test};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `harness serve`, stopped when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(store: &Path) -> Server {
    let mut child = Command::new(harness())
        .args(["serve", "--port", "0"])
        .arg(store)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Server { child, addr }
}

/// `GET target` as sent, byte for byte: (status, body).
fn get(s: &Server, target: &str) -> (u16, String) {
    let mut c = TcpStream::connect(&s.addr).unwrap();
    write!(
        c,
        "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        s.addr
    )
    .unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).unwrap();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map_or("", |b| b.1).to_string();
    (status, body)
}

/// `store/<test>/<stamp>` of the runs of a test, oldest first.
fn runs_of(store: &Path, test: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.join(test))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| format!("{test}/{}", e.file_name().to_string_lossy()))
        .collect();
    v.sort();
    v
}

/// Two real runs (one valid, one invalid), a suite summary, a run folder from a newer harness, a
/// secret beside the store and two symlinks that point at it.
fn store_with_runs(root: &Path) -> std::path::PathBuf {
    let store = root.join("results");
    let ok = run(tiny_test(&store, "correct", &["--name", "good-run"]));
    assert_eq!(ok.status.code(), Some(0));
    let bad = run(tiny_test(&store, "stale", &["--name", "stale-run"]));
    assert_eq!(bad.status.code(), Some(1));
    let night = store.join("nightly").join("20260101T021700.000Z");
    std::fs::create_dir_all(&night).unwrap();
    let summary = serde_json::json!({"schema_version": 2, "suite": "nightly",
        "started": "2026-01-01T02:17:00Z", "runs": [
        {"name": "a", "outcome": "pass", "verdict": "valid", "expect": "valid"},
        {"name": "b", "outcome": "fail", "verdict": "invalid", "expect": "valid"}]});
    std::fs::write(night.join("summary.json"), summary.to_string()).unwrap();
    let future = store.join("future-run").join("20260101T000000.000Z");
    std::fs::create_dir_all(&future).unwrap();
    std::fs::write(future.join("test.json"), r#"{"schema_version": 99}"#).unwrap();
    std::fs::write(root.join("secret.txt"), "the secret").unwrap();
    std::os::unix::fs::symlink(root.join("secret.txt"), store.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(root, store.join("up")).unwrap();
    store
}

#[test]
fn the_browser_lists_opens_compares_and_stays_in_the_store() {
    let root = scratch("serve-http");
    let store = store_with_runs(&root);
    let s = serve(&store);
    assert!(
        s.addr.starts_with("127.0.0.1:"),
        "loopback by default: {}",
        s.addr
    );
    let good = runs_of(&store, "good-run").remove(0);
    let stale = runs_of(&store, "stale-run").remove(0);

    let (code, list) = get(&s, "/");
    assert_eq!(code, 200);
    assert!(list.contains(&format!("value=\"{good}\"")), "{list}");
    assert!(list.contains(&format!("value=\"{stale}\"")), "{list}");
    assert!(list.contains("2 of 2 runs · 1 suite runs"), "{list}");
    assert!(list.contains("1/1/0/0"), "the suite's counts: {list}");
    assert!(
        list.contains("future-run/20260101T000000.000Z") && list.contains("schema_version 99"),
        "a run from a newer harness is listed as unreadable, with why: {list}"
    );
    let (_, only_invalid) = get(&s, "/?verdict=invalid");
    assert!(only_invalid.contains(&stale) && !only_invalid.contains(&good));
    let (_, by_test) = get(&s, "/?test=good");
    assert!(by_test.contains(&good) && !by_test.contains(&stale));
    let (_, old) = get(&s, "/?date=1999");
    assert!(old.contains("0 of 2 runs"), "{old}");

    let (code, report) = get(&s, &format!("/store/{good}/report.html"));
    assert_eq!(code, 200);
    assert!(report.contains("good-run"), "{report}");
    let (code, cmp) = get(&s, &format!("/compare?run={good}&run={stale}"));
    assert_eq!(code, 200, "{cmp}");
    assert!(cmp.contains("Comparison"), "{cmp}");
    assert!(
        cmp.contains(&format!("href=\"/store/{good}/report.html\"")),
        "{cmp}"
    );
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("harness-serve-{}", s.child.id())))
        .collect();
    assert!(
        left.is_empty(),
        "compare pages are removed once served: {left:?}"
    );
    let (code, one) = get(&s, &format!("/compare?run={good}"));
    assert_eq!(
        (code, one.as_str()),
        (400, "tick at least two runs to compare")
    );
    let (code, trend) = get(&s, "/trend");
    assert_eq!(code, 200);
    assert!(trend.contains("<base href=\"/store/\">") && trend.contains("Suite <code>nightly"));

    for bad in [
        "/store/../secret.txt",
        "/store/%2e%2e/secret.txt",
        "/store/good-run/../../secret.txt",
        "/store/%2Fetc%2Fpasswd",
        "/store/link.txt",
        "/store/up/secret.txt",
        "/compare?run=up&run=good-run",
        "/compare?run=..&run=good-run",
    ] {
        let (code, body) = get(&s, bad);
        assert!(code == 403 || code == 404, "{bad}: {code} {body}");
        assert!(!body.contains("the secret"), "{bad}: {body}");
    }
    let (code, body) = get(&s, "/store/link.txt");
    assert_eq!(
        (code, body.as_str()),
        (403, "link.txt: a link out of the store")
    );
    let (code, _) = get(&s, "/store/nope.html");
    assert_eq!(code, 404);
    drop(s);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_missing_store_is_bad_input() {
    let root = scratch("serve-missing");
    let o = cli_util::harness_on(&["serve"], &[&root.join("nope")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(cli_util::all_output(&o).contains("nope: no such results store"));
    std::fs::remove_dir_all(root).unwrap();
}
