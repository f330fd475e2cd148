//! `harness suite merge DIR...`: the shards of one suite (`--shard K/N` runs, on as many CI
//! machines) put back together into the summaries a single run of the whole suite would write.
//!
//! The merge refuses what would give a wrong summary: shards of different suites or of different
//! splits, a shard given twice, a shard missing, a run in two shards. Runs come back in matrix
//! order (shard k holds matrix runs k-1, k-1+N, ...), links are rewritten to stay valid from the
//! merged folder.

use super::summary::{self, Head, Summary};
use super::ShardInfo;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Shard folders (each holding the summary.json of one `--shard K/N` run), or the
    /// summary.json files themselves.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where the merged summaries go (default: `<store>/<suite>/<timestamp>-merged`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The results store the default output folder is in.
    #[arg(long, default_value = "results")]
    pub store: PathBuf,
}

/// One shard's summary and the folder its links are relative to.
struct Part {
    file: PathBuf,
    dir: PathBuf,
    summary: Summary,
    shard: ShardInfo,
}

/// Merges, writes the summaries, prints the counts; the exit code is the suite's.
pub fn run(args: &MergeArgs) -> Result<u8, String> {
    let parts = args
        .dirs
        .iter()
        .map(|d| read(d))
        .collect::<Result<_, _>>()?;
    let parts = check(parts)?;
    let suite = parts[0].summary.head.suite.clone();
    let out = match &args.out {
        Some(o) => o.clone(),
        None => args
            .store
            .join(&suite)
            .join(format!("{}-merged", super::timestamp())),
    };
    std::fs::create_dir_all(&out)
        .map_err(|e| format!("cannot create the output folder {}: {e}", out.display()))?;
    let merged = merge(&parts, &out)?;
    summary::write_all(&out, &merged)
        .map_err(|e| format!("cannot write summaries to {}: {e}", out.display()))?;
    let c = &merged.counts;
    crate::errln!(
        "harness suite merge: {} shards → {0}/summary.md {0}/junit.xml {0}/summary.json",
        out.display()
    );
    crate::outln!(
        "suite {suite}: {} passed, {} failed, {} unknown, {} errors{}",
        c.pass,
        c.fail,
        c.unknown,
        c.error,
        match c.pending {
            0 => String::new(),
            n => format!(", {n} not run"),
        }
    );
    if c.pending > 0 && c.fail == 0 {
        crate::errln!(
            "harness suite merge: {} runs of the matrix are in no finished shard",
            c.pending
        );
        return Ok(2);
    }
    Ok(merged.exit_code)
}

fn read(path: &Path) -> Result<Part, String> {
    let file = if path.is_dir() {
        path.join("summary.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let summary: Summary = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}:{}: not a suite summary: {e}",
            file.display(),
            e.line(),
            e.column()
        )
    })?;
    // An unsharded summary is the one shard of a split into one.
    let shard = summary.head.shard.clone().unwrap_or(ShardInfo {
        k: 1,
        n: 1,
        matrix_runs: summary.counts.total,
    });
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    Ok(Part {
        file,
        dir,
        summary,
        shard,
    })
}

/// The parts sorted by shard, or what makes them not one whole suite.
fn check(mut parts: Vec<Part>) -> Result<Vec<Part>, String> {
    let first = &parts[0];
    let (suite, n, total) = (
        first.summary.head.suite.clone(),
        first.shard.n,
        first.shard.matrix_runs,
    );
    let first_file = first.file.display().to_string();
    for p in &parts[1..] {
        let f = p.file.display();
        if p.summary.head.suite != suite {
            return Err(format!(
                "{f} is suite {:?} but {first_file} is suite {suite:?}: shards of different suites",
                p.summary.head.suite
            ));
        }
        if p.shard.n != n || p.shard.matrix_runs != total {
            return Err(format!(
                "{f} is shard {}/{} of {} runs but {first_file} is of a split into {n} of {total} \
                 runs: the shards come from different splits or suite files",
                p.shard.k, p.shard.n, p.shard.matrix_runs
            ));
        }
    }
    parts.sort_by_key(|p| p.shard.k);
    for w in parts.windows(2) {
        if w[0].shard.k == w[1].shard.k {
            return Err(format!(
                "shard {}/{n} is given twice: {} and {}",
                w[0].shard.k,
                w[0].file.display(),
                w[1].file.display()
            ));
        }
    }
    let missing: Vec<String> = (1..=n)
        .filter(|k| !parts.iter().any(|p| p.shard.k == *k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "suite {suite}: shard {} missing (given: {})",
            missing.join(", "),
            parts
                .iter()
                .map(|p| format!("{}/{n}", p.shard.k))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(parts)
}

fn merge(parts: &[Part], out: &Path) -> Result<Summary, String> {
    let n = parts.len();
    let total = parts[0].shard.matrix_runs;
    // Matrix run i is the (i / N)-th of shard i mod N + 1; an unfinished shard has fewer.
    let mut next = vec![0usize; n];
    let mut runs = Vec::with_capacity(total);
    let mut names = std::collections::HashSet::new();
    for i in 0..total.max(parts.iter().map(|p| p.summary.runs.len()).sum()) {
        let p = &parts[i % n];
        let Some(r) = p.summary.runs.get(next[i % n]) else {
            continue;
        };
        next[i % n] += 1;
        if !names.insert(r.name.clone()) {
            return Err(format!(
                "run {} is in more than one shard (again in {})",
                r.name,
                p.file.display()
            ));
        }
        let mut r = r.clone();
        r.run_dir = r.run_dir.map(|d| relink(&p.dir, &d, out));
        r.report = r.report.map(|d| relink(&p.dir, &d, out));
        runs.push(r);
    }
    if runs.len() > total {
        return Err(format!(
            "the shards hold {} runs but their matrix has {total}",
            runs.len()
        ));
    }
    let heads: Vec<&Head> = parts.iter().map(|p| &p.summary.head).collect();
    let head = Head {
        suite: heads[0].suite.clone(),
        description: heads[0].description.clone(),
        file: heads[0].file.clone(),
        dir: out.display().to_string(),
        started: heads
            .iter()
            .map(|h| h.started.clone())
            .min()
            .unwrap_or_default(),
        // The shards ran side by side: the suite took as long as the slowest.
        duration_s: heads.iter().map(|h| h.duration_s).fold(0.0, f64::max),
        shard: None,
    };
    let finished = parts.iter().all(|p| p.summary.finished);
    Ok(Summary::new(head, total, runs, finished))
}

/// `link` is relative to `dir` (or absolute); the same place seen from `out`.
fn relink(dir: &Path, link: &str, out: &Path) -> String {
    let target = dir.join(link);
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    pathdiff::diff_paths(abs(&target), abs(out))
        .unwrap_or(target)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{setup, summary, Fake, GOOD};
    use super::super::{run_suite, Shard, SuiteArgs};
    use super::*;

    /// What a summary says about its runs, without where they were stored or how long they took.
    fn outcomes(s: &serde_json::Value) -> Vec<String> {
        s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {}",
                    r["name"], r["outcome"], r["verdict"], r["seed"]
                )
            })
            .collect()
    }

    /// The same suite file as `whole`, shard k of n, stored apart (as on another machine).
    fn shard(whole: &SuiteArgs, root: &Path, k: u32, n: u32) -> SuiteArgs {
        SuiteArgs {
            action: None,
            file: whole.file.clone(),
            parallel: 1,
            store: root.join(format!("shard{k}")),
            filter: vec![],
            list: false,
            net: None,
            hosts: None,
            shard: Some(Shard { k, n }),
        }
    }

    #[test]
    fn merged_shards_equal_the_unsharded_suite() {
        let (root, args) = setup("good", GOOD);
        assert_eq!(run_suite(&args, &Fake), Ok(0));
        let whole = summary(&args, "good");
        let mut dirs = vec![];
        for k in 1..=3 {
            let a = shard(&args, &root, k, 3);
            assert_eq!(run_suite(&a, &Fake), Ok(0));
            let dir = a.store.join("good").join("latest");
            let part = summary(&a, "good");
            assert_eq!(part["shard"]["matrix_runs"], 8);
            assert_eq!(part["counts"]["total"], if k == 3 { 2 } else { 3 });
            dirs.push(dir);
        }
        let out = root.join("merged");
        let m = MergeArgs {
            dirs: dirs.clone(),
            out: Some(out.clone()),
            store: root.join("results"),
        };
        assert_eq!(run(&m), Ok(0));
        let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
        let merged: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(merged["counts"], whole["counts"]);
        assert_eq!(merged["entries"], whole["entries"]);
        assert_eq!(outcomes(&merged), outcomes(&whole));
        assert!(merged.get("shard").is_none());
        // Every link still leads to its run's report from the merged folder.
        for r in merged["runs"].as_array().unwrap() {
            let report = out.join(r["report"].as_str().unwrap());
            assert!(report.exists(), "{}", report.display());
        }
        for f in ["junit.xml", "summary.md"] {
            assert!(out.join(f).exists());
        }

        // Missing, doubled and foreign shards are refused by name.
        let missing = MergeArgs {
            dirs: dirs[..2].to_vec(),
            ..m
        };
        let e = run(&missing).unwrap_err();
        assert!(e.contains("shard 3/3 missing (given: 1/3, 2/3)"), "{e}");
        let twice = MergeArgs {
            dirs: vec![dirs[0].clone(), dirs[1].clone(), dirs[0].clone()],
            ..missing
        };
        let e = run(&twice).unwrap_err();
        assert!(e.contains("shard 1/3 is given twice"), "{e}");
        let foreign = MergeArgs {
            dirs: vec![dirs[0].clone(), args.store.join("good").join("latest")],
            ..twice
        };
        let e = run(&foreign).unwrap_err();
        assert!(e.contains("different splits"), "{e}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_failed_run_in_one_shard_fails_the_merge_and_a_bad_file_is_named() {
        let toml = "[[test]]\nname = \"bug\"\nbugs = [\"local-read\"]\nexpect = \"invalid\"\nseeds = [1, 2, 3, 4]\n";
        let (root, args) = setup("failing", toml);
        let mut dirs = vec![];
        for k in 1..=2 {
            let a = shard(&args, &root, k, 2);
            // Seed 2 (in shard 2) comes out valid: a missed bug.
            assert_eq!(run_suite(&a, &Fake), Ok(if k == 2 { 1 } else { 0 }));
            dirs.push(a.store.join("failing").join("latest"));
        }
        let m = MergeArgs {
            dirs,
            out: Some(root.join("merged")),
            store: root.clone(),
        };
        assert_eq!(run(&m), Ok(1));
        let bad = root.join("bad.json");
        std::fs::write(&bad, "{\n  \"suite\": 3\n}").unwrap();
        let e = run(&MergeArgs {
            dirs: vec![bad.clone()],
            ..m
        })
        .unwrap_err();
        assert!(e.starts_with(&format!("{}:", bad.display())), "{e}");
        assert!(e.contains("not a suite summary"), "{e}");
        std::fs::remove_dir_all(root).unwrap();
    }
}
