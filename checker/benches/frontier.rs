//! `cargo bench -p checker --bench frontier`: the search on register histories of the shapes
//! real faulty runs produce (one register, 10-50 processes, many `info` ops open to the end; see
//! `tests/common/shapes.rs`), one row per shape, each checked against its verdict by
//! construction. Prints the median time (wall and CPU) of several runs, the states explored and the peak
//! memory of the row (each row runs in a process of its own, so peaks do not carry over).
//!
//! Arguments: runs per row (default 3); `--ops N` for the same shapes with N ops; words
//! selecting rows by name. `CHECK_TIME_LIMIT` (seconds, default 20) bounds each check.

#[path = "../tests/common/mod.rs"]
mod common;

use checker::linearizability::check_events;
use checker::{CheckOptions, Verdict};
use common::{shapes, Reg};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 3;
    let mut ops = None;
    let mut words = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ops" => ops = it.next().and_then(|n| n.parse::<usize>().ok()),
            "--bench" => {}
            a if a.parse::<usize>().is_ok() => runs = a.parse().unwrap(),
            a => words.push(a.to_string()),
        }
    }
    let limit = std::env::var("CHECK_TIME_LIMIT")
        .ok()
        .map_or(20.0, |s| s.parse().expect("seconds"));
    let opts = CheckOptions {
        time_limit: Some(Duration::from_secs_f64(limit)),
        ..CheckOptions::default()
    };
    let only = std::env::var("FRONTIER_ROW").ok();
    for shape in shapes::table() {
        let shape = ops.map_or(shape, |n| shape.scaled(n));
        let name = match ops {
            Some(n) => format!("{} @{n}", shape.name),
            None => shape.name.to_string(),
        };
        if !words.is_empty() && !words.iter().any(|w| name.contains(w.as_str())) {
            continue;
        }
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        if only.is_none() {
            let me = std::env::current_exe().expect("the bench's own path");
            let status = std::process::Command::new(me)
                .args(&args)
                .env("FRONTIER_ROW", &name)
                .status()
                .expect("the bench runs itself");
            assert!(status.success(), "{name}: {status}");
            continue;
        }
        let events = shape.events(1);
        let (mut times, mut cpu) = (Vec::new(), Vec::new());
        let mut last = None;
        for _ in 0..runs {
            let (t, c) = (Instant::now(), cpu_secs());
            let r =
                check_events(&Reg, &events, &opts).expect("generated histories are well formed");
            times.push(t.elapsed().as_secs_f64());
            cpu.push(cpu_secs() - c);
            let slow = r.verdict == Verdict::Unknown || times[0] > 5.0;
            last = Some(r);
            if slow {
                break;
            }
        }
        let r = last.expect("one run at least");
        let want = if shape.valid() {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        let verdict = format!("{:?}", r.verdict).to_lowercase();
        let mark = match r.verdict {
            v if v == want => "",
            Verdict::Unknown => " (undecided)",
            _ => " WRONG",
        };
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        cpu.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{name:<36} {:>6} ev  {verdict:>7}{mark:<12} median {:>7.3} s, cpu {:>6.2} s ({} runs)  {:>10} states  peak {:>6.0} MB",
            events.len(),
            times[times.len() / 2],
            cpu[cpu.len() / 2],
            times.len(),
            r.states_explored,
            peak_rss_mb()
        );
        if mark == " WRONG" {
            panic!("{name}: wrong verdict: {}", r.explanation);
        }
        if r.verdict == Verdict::Unknown {
            println!("    {}", r.explanation);
        }
    }
}

/// CPU seconds (user and system) of this process so far: on a machine shared with other work,
/// steadier than the wall clock.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields 14 and 15 (utime, stime, in clock ticks of 1/100 s) come after the name's ')'.
    let after = stat.rsplit_once(')').map_or("", |x| x.1);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    tick(11)
        .zip(tick(12))
        .map_or(f64::NAN, |(u, s)| (u + s) / 100.0)
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
