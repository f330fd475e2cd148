//! `harness bench trend`: how long `harness trend` takes over a year of nights and how large its
//! page gets. Writes `--nights` synthetic `summary.json` files of `--runs` runs each (variants ×
//! workloads × fault sets × seeds expected valid, plus seeded-bug runs, with noisy figures), then
//! builds the trend `--repeat` times and prints the median time and the sizes.

use crate::trend::{band, make};
use crate::SetupError;
use serde_json::json;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 365)]
    nights: usize,
    #[arg(long, default_value_t = 50)]
    runs: usize,
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

pub fn run(a: Args) -> Result<u8, SetupError> {
    bench(&a)
        .map(|()| 0)
        .map_err(|e| SetupError::new("harness bench trend", anyhow::anyhow!(e)))
}

fn bench(a: &Args) -> Result<(), String> {
    let root = std::env::temp_dir().join(format!("harness-bench-trend-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let store = root.join("store");
    for n in 0..a.nights {
        let dir = store.join("nightly").join(format!("night{n:04}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let text = synthetic_night(n, a.runs).to_string();
        std::fs::write(dir.join("summary.json"), text).map_err(|e| e.to_string())?;
    }
    let out = root.join("out");
    let mut times = Vec::new();
    let mut alerts = 0;
    for _ in 0..a.repeat.max(1) {
        let t0 = Instant::now();
        let t = make(std::slice::from_ref(&store), &out, band::DEFAULT)?;
        times.push(t0.elapsed().as_secs_f64());
        alerts = t.alerts.len();
    }
    let size = |f: &str| std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0);
    let mid = band::median(&mut times).unwrap_or(0.0);
    crate::outln!(
        "trend over {} nights × {} runs: build {mid:.2} s (median of {}), trend.html {:.2} MB, \
         trend.json {:.2} MB, {alerts} alerts",
        a.nights,
        a.runs,
        times.len(),
        size("trend.html") as f64 / 1e6,
        size("trend.json") as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// A deterministic pseudo-random number in [-1, 1) from two integers.
fn noise(a: usize, b: usize) -> f64 {
    let mut x = (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (b as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x % 2_000_000) as f64 / 1_000_000.0 - 1.0
}

fn synthetic_night(n: usize, runs: usize) -> serde_json::Value {
    let faults = ["none", "partition", "pause", "kill", "partition,pause,kill"];
    let mut rs = Vec::new();
    for i in 0..runs {
        let bug = i % 5 == 4;
        let (variant, workload) = (["basic", "multi"][i % 2], ["register", "kv"][(i / 2) % 2]);
        let f = faults[(i / 4) % faults.len()];
        let seed = i / 20 + 1;
        let entry = if bug { "bug" } else { "faults" };
        let found = !bug || noise(n, i + 7) > -0.6;
        let verdict = if found == bug { "invalid" } else { "valid" };
        rs.push(json!({
            "name": format!("{entry}-{variant}-{workload}-{f}-s{seed}-{i}"),
            "entry": entry, "variant": variant, "workload": workload, "faults": f,
            "seed": seed, "repeat": 1, "bugs": if bug { vec!["local-read"] } else { vec![] },
            "expect": if bug { "invalid" } else { "valid" },
            "outcome": if found { "pass" } else { "fail" },
            "verdict": verdict, "explanation": "",
            "ops_per_sec": 400.0 * (1.0 + 0.05 * noise(n, i)),
            "p50_ms": 3.0 * (1.0 + 0.05 * noise(n, i + 1000)),
            "p99_ms": 40.0 * (1.0 + 0.08 * noise(n, i + 2000)),
            "availability": 0.98 + 0.01 * noise(n, i + 3000),
            "first_violation_s": if bug && found { Some(3.0 + noise(n, i)) } else { None },
            "run_dir": format!("r{i}/x"), "report": format!("r{i}/x/report.html"),
            "duration_s": 15.0,
        }));
    }
    let day = n % 28 + 1;
    let month = (n / 28) % 12 + 1;
    let year = 2026 + n / (28 * 12);
    json!({
        "schema_version": 2, "suite": "nightly", "file": "suites/nightly.toml",
        "dir": "x", "started": format!("{year}-{month:02}-{day:02}T02:17:00Z"),
        "duration_s": 600.0, "finished": true,
        "counts": {"total": runs, "pass": runs, "fail": 0, "unknown": 0, "error": 0, "pending": 0},
        "exit_code": 0, "entries": [], "runs": rs,
    })
}
