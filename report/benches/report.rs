//! Report generation for a large history: `cargo bench -p report --bench report [-- OPS]`.
//!
//! Writes a synthetic run folder (OPS client ops, default 1,000,000, over 60 s of 50 processes,
//! with a partition, a pause and a kill), then times `write_run_report` end to end three times
//! and prints the median, a breakdown by phase, and the size of every SVG and the report.
//! Target: under 10 s for 1,000,000 ops; SVGs well under 1 MB.

use report::analysis::Analysis;
use report::plot;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

fn write_history(path: &Path, ops: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let processes = 50u64;
    let per = ops / processes as usize;
    let gap = 60e9 / per.max(1) as f64;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % 1_000_000) as f64 / 1e6
    };
    let mut events: Vec<(u64, u64, u8, u8)> = Vec::with_capacity(2 * ops + 8);
    for p in 0..processes {
        let mut t = p as f64 * 1e5;
        for i in 0..per {
            let f = ((i + p as usize) % 3) as u8;
            let start = t;
            let faulty = (20e9..30e9).contains(&t);
            let lat = (0.3 + next() * 2.0 + if next() < 0.001 { 200.0 } else { 0.0 })
                * 1e6
                * if faulty { 10.0 } else { 1.0 };
            let r = next();
            let kind = if faulty && r < 0.05 {
                3 // info
            } else if faulty && r < 0.3 {
                2 // fail
            } else {
                1 // ok
            };
            events.push((t as u64, p, 0, f));
            t += if kind == 3 { 1e9 } else { lat };
            events.push((t as u64, p, kind, f));
            t = t.max(start + gap * (0.5 + next()));
        }
    }
    events.sort_unstable_by_key(|e| e.0);
    let nemesis = [
        (20e9 as u64, "start-partition", "\"majority\""),
        (30e9 as u64, "stop-partition", "null"),
        (38e9 as u64, "pause", "[\"n1\"]"),
        (42e9 as u64, "resume", "[\"n1\"]"),
        (48e9 as u64, "kill", "[\"n2\"]"),
        (52e9 as u64, "start", "[\"n2\"]"),
    ];
    let (mut n, mut index) = (0, 0u64);
    for (t, p, kind, f) in events {
        while n < nemesis.len() && nemesis[n].0 <= t {
            let (nt, nf, nv) = nemesis[n];
            writeln!(out, r#"{{"index":{index},"time":{nt},"process":"nemesis","type":"info","f":"{nf}","value":{nv}}}"#).unwrap();
            index += 1;
            n += 1;
        }
        let ty = ["invoke", "ok", "fail", "info"][kind as usize];
        let f = ["read", "write", "cas"][f as usize];
        let value = match (f, kind) {
            ("cas", _) => "[1,2]",
            ("read", 0) => "null",
            _ => "3",
        };
        writeln!(out, r#"{{"index":{index},"time":{t},"process":{p},"type":"{ty}","f":"{f}","key":"k{}","value":{value}}}"#, p % 10).unwrap();
        index += 1;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let ops: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("report-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = Instant::now();
    write_history(&dir.join("history.jsonl"), ops);
    let size = std::fs::metadata(dir.join("history.jsonl")).unwrap().len();
    println!(
        "history: {ops} ops, {:.0} MB, written in {:.1} s",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let mut total = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        report::write_run_report(&dir).unwrap();
        total.push(t.elapsed().as_secs_f64());
    }
    println!(
        "write_run_report: median {:.2} s over 3 runs (runs: {})",
        median(total.clone()),
        total
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let t = Instant::now();
    let (a, _) = Analysis::from_jsonl(&dir.join("history.jsonl")).unwrap();
    let read = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _ = (a.periods(), a.latency_by_f(), a.counts_by_f());
    let analyse = t.elapsed().as_secs_f64();
    let t = Instant::now();
    plot::latency_raw_svg(&a).unwrap();
    let raw = t.elapsed().as_secs_f64();
    let t = Instant::now();
    plot::latency_quantiles_svg(&a).unwrap();
    plot::rate_svg(&a).unwrap();
    let others = t.elapsed().as_secs_f64();
    println!(
        "phases: read + pair history {read:.2} s, tables {analyse:.2} s, latency-raw {raw:.2} s, \
         quantiles + rate {others:.2} s"
    );
    for f in [
        "latency-raw.svg",
        "latency-quantiles.svg",
        "rate.svg",
        "report.html",
    ] {
        let len = std::fs::metadata(dir.join(f)).unwrap().len();
        println!("{f}: {:.0} KB", len as f64 / 1e3);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
