//! Suite files: parsing, validation and matrix expansion.
//!
//! ```toml
//! [suite]
//! name = "smoke"                  # default: the file's stem
//!
//! [defaults]                      # shared by every [[test]]; each entry may override any field
//! nodes = 3
//! time_limit = 10                 # seconds
//! seeds = [1, 2]
//!
//! [[test]]
//! name = "faults"
//! variants = ["basic", "multi"]
//! workloads = ["register", "kv"]
//! faults = ["partition", "pause", "kill", "partition,pause,kill"]
//! expect = "valid"                # or "invalid" for seeded-bug entries
//! ```
//!
//! Each entry expands to variants × workloads × fault sets × seeds × repeats runs. Every problem is
//! reported as `FILE:LINE:COL: [[test]] "name" (entry N), field `f`: what is wrong`.

mod expand;
mod format;
mod locate;
mod node_bin;
mod run_spec;

use format::File;
use locate::{Locator, Region};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub use locate::SpecError;
pub use node_bin::check_node_bins;
pub use run_spec::RunSpec;

/// A parsed, validated suite.
#[derive(Clone, Debug)]
pub struct Suite {
    pub name: String,
    pub description: Option<String>,
    pub file: PathBuf,
    pub runs: Vec<RunSpec>,
}

/// Reads and parses a suite file.
pub fn load(path: &Path) -> Result<Suite, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| SpecError {
        file: path.to_path_buf(),
        line: None,
        col: None,
        entry: None,
        field: None,
        message: format!("cannot read the suite file: {e}"),
    })?;
    parse(&text, path)
}

/// Parses suite text; `path` names the file in errors and gives the default suite name.
pub fn parse(text: &str, path: &Path) -> Result<Suite, SpecError> {
    let src = Locator::new(text, path);
    let file: File = toml::from_str(text).map_err(|e| src.toml_error(&e))?;

    let name = match &file.suite.name {
        Some(n) => {
            check_name(n).map_err(|m| src.error(Region::Suite, Some("name"), m))?;
            n.clone()
        }
        None => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            check_name(&stem).map_err(|m| {
                src.error(
                    Region::Suite,
                    None,
                    format!("the file name cannot be a suite name ({m}); set [suite] name"),
                )
            })?;
            stem
        }
    };
    for key in ["name", "description"] {
        let present = match key {
            "name" => file.defaults.name.is_some(),
            _ => file.defaults.description.is_some(),
        };
        if present {
            return Err(src.error(
                Region::Defaults,
                Some(key),
                format!("`{key}` belongs in a [[test]] entry, not in [defaults]"),
            ));
        }
    }
    if file.tests.is_empty() {
        return Err(src.error(
            Region::Suite,
            None,
            "the suite has no [[test]] entries".into(),
        ));
    }

    let mut runs = Vec::new();
    let mut entry_names = BTreeSet::new();
    for (i, entry) in file.tests.iter().enumerate() {
        let region = Region::Entry(i);
        let entry_name = entry
            .name
            .clone()
            .ok_or_else(|| src.error(region, None, "missing field `name`".into()))?;
        check_name(&entry_name).map_err(|m| src.error(region, Some("name"), m))?;
        if !entry_names.insert(entry_name.clone()) {
            return Err(src.error(
                region,
                Some("name"),
                format!("another entry is already named \"{entry_name}\""),
            ));
        }
        runs.extend(expand::expand(&src, i, &entry_name, entry, &file.defaults)?);
    }
    let mut seen = BTreeSet::new();
    for r in &runs {
        if !seen.insert(r.name.clone()) {
            return Err(src.error(
                Region::Suite,
                None,
                format!("two runs would both be named \"{}\"", r.name),
            ));
        }
    }
    Ok(Suite {
        name,
        description: file.suite.description,
        file: path.to_path_buf(),
        runs,
    })
}

/// Names become folder names: keep them plain.
fn check_name(n: &str) -> Result<(), String> {
    if n.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = n
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '.'))
    {
        return Err(format!(
            "\"{n}\" contains {c:?}; use letters, digits, '-', '_' or '.'"
        ));
    }
    if n.starts_with('.') {
        return Err(format!("\"{n}\" must not start with '.'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::format::Expect;
    use super::*;
    use crate::options::Variant;
    use workloads::Workload;

    fn p(text: &str) -> Result<Suite, SpecError> {
        parse(text, Path::new("suites/t.toml"))
    }

    fn err(text: &str) -> String {
        p(text).expect_err("should not parse").to_string()
    }

    #[test]
    fn expands_the_full_matrix_with_defaults_and_overrides() {
        let s = p(r#"
[suite]
name = "mini"

[defaults]
nodes = 3
time_limit = 5
seeds = [1, 2]

[[test]]
name = "a"
variants = ["basic", "multi"]
workloads = ["register", "kv"]
faults = ["none", "partition,kill"]

[[test]]
name = "b"
nodes = 5
seeds = [7]
repeats = 3
bugs = ["local-read"]
expect = "invalid"
"#)
        .unwrap();
        assert_eq!(s.name, "mini");
        let a: Vec<_> = s.runs.iter().filter(|r| r.entry == "a").collect();
        assert_eq!(a.len(), 2 * 2 * 2 * 2);
        assert!(a
            .iter()
            .all(|r| r.nodes == Some(3) && r.time_limit == Some(5.0)));
        assert!(a.iter().all(|r| r.expect == Expect::Valid));
        assert_eq!(
            a.iter().map(|r| r.faults_label()).collect::<BTreeSet<_>>(),
            ["none".to_string(), "partition,kill".to_string()].into()
        );
        assert_eq!(a[0].name, "a-basic-register-none-s1");
        let b: Vec<_> = s.runs.iter().filter(|r| r.entry == "b").collect();
        assert_eq!(b.len(), 3);
        assert!(b.iter().all(|r| r.nodes == Some(5) && r.seed == 7));
        assert_eq!(
            b.iter().map(|r| r.repeat).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(b[2].name, "b-multi-register-none-s7-r3");
        assert_eq!(b[0].expect, Expect::Invalid);
        let names: BTreeSet<_> = s.runs.iter().map(|r| &r.name).collect();
        assert_eq!(names.len(), s.runs.len(), "run names are unique");
    }

    #[test]
    fn suite_name_defaults_to_the_file_stem() {
        let s = p("[[test]]\nname = \"x\"\n").unwrap();
        assert_eq!(s.name, "t");
        assert_eq!(s.runs.len(), 1);
        let r = &s.runs[0];
        assert_eq!(
            (r.variant, r.workload, r.faults.len(), r.seed),
            (Variant::Multi, Workload::Register, 0, 1)
        );
    }

    #[test]
    fn harness_args_name_every_setting_and_pass_bugs_to_the_node() {
        let s = p(r#"
[[test]]
name = "x"
nodes = 3
time_limit = 2.5
concurrency = 4
rate = 100
recovery_time = 1
faults = ["pause,kill"]
nemesis_interval = 2
node_args = ["--verbose"]
bugs = ["lease-read", "local-read"]
expect = "invalid"
harness_args = ["--op-timeout", "2"]
check_time_limit = 45
"#)
        .unwrap();
        let a = s.runs[0].harness_args(Path::new("/tmp/st"));
        let joined = a.join(" ");
        for want in [
            "--variant multi",
            "--workload register",
            "--seed 1",
            "--nemesis pause,kill",
            "--store /tmp/st",
            "--name x-multi-register-pause+kill-s1",
            "--nodes 3",
            "--time-limit 2.5",
            "--concurrency 4",
            "--rate 100",
            "--recovery-time 1",
            "--nemesis-interval 2",
            "--op-timeout 2",
            "--check-time-limit 45",
        ] {
            assert!(joined.contains(want), "{want:?} missing from {joined}");
        }
        assert!(
            joined.ends_with("-- --verbose --bug lease-read --bug local-read"),
            "{joined}"
        );
        assert_eq!(joined.matches("--op-timeout").count(), 1, "{joined}");
    }

    #[test]
    fn a_suite_run_keeps_a_one_second_op_timeout_ten_clients_and_3_s_periods_unless_it_sets_them() {
        let s = p(
            "[[test]]\nname = \"a\"\n[[test]]\nname = \"b\"\nop_timeout = 0.25\nconcurrency = 3\nnemesis_interval = 1.5\n",
        )
        .unwrap();
        // A space after each argument, so "--op-timeout 1" cannot match "--op-timeout 10".
        let joined = |i: usize| s.runs[i].harness_args(Path::new("/tmp/st")).join(" ") + " ";
        assert!(joined(0).contains("--op-timeout 1 "), "{}", joined(0));
        assert!(joined(0).contains("--concurrency 10 "), "{}", joined(0));
        assert!(joined(0).contains("--nemesis-interval 3 "), "{}", joined(0));
        assert!(
            joined(1).contains("--nemesis-interval 1.5 "),
            "{}",
            joined(1)
        );
        assert_eq!(joined(1).matches("--nemesis-interval").count(), 1);
        assert!(joined(1).contains("--op-timeout 0.25"), "{}", joined(1));
        assert!(joined(1).contains("--concurrency 3 "), "{}", joined(1));
        assert_eq!(joined(1).matches("--op-timeout").count(), 1);
        assert_eq!(joined(1).matches("--concurrency").count(), 1);
    }

    #[test]
    fn unknown_key_names_entry_field_and_line() {
        let e = err("[defaults]\nnodes = 3\n\n[[test]]\nname = \"first\"\n\n[[test]]\nname = \"second\"\ntimelimit = 5\n");
        assert!(e.starts_with("suites/t.toml:9:1: "), "{e}");
        assert!(e.contains("[[test]] \"second\" (entry 2)"), "{e}");
        assert!(
            e.contains("unknown field `timelimit`, did you mean `time_limit`?"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_in_defaults_and_suite() {
        let e = err("[defaults]\nnode = 3\n[[test]]\nname = \"a\"\n");
        assert!(e.starts_with("suites/t.toml:2:1: [defaults]"), "{e}");
        assert!(e.contains("unknown field `node`"), "{e}");
        let e = err("[suite]\ntitle = \"x\"\n[[test]]\nname = \"a\"\n");
        assert!(e.contains(":2:1:") && e.contains("`title`"), "{e}");
        let e = err("[suit]\n[[test]]\nname = \"a\"\n");
        assert!(
            e.contains("unknown field `suit`, did you mean `suite`?"),
            "{e}"
        );
        let e = err("[[test]]\nname = \"a\"\nzzzzzzzzzz = 1\n");
        assert!(
            e.contains("unknown field `zzzzzzzzzz`, expected one of"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_entry_field_and_line() {
        let e = err("[[test]]\nname = \"a\"\nvariants = [\"basic\", \"fast\"]\n");
        assert!(e.starts_with("suites/t.toml:3:"), "{e}");
        assert!(
            e.contains("[[test]] \"a\" (entry 1), field `variants`"),
            "{e}"
        );
        assert!(e.contains("fast"), "{e}");
        let e = err("[[test]]\nname = \"a\"\nnodes = \"three\"\n");
        assert!(e.contains(":3:") && e.contains("field `nodes`"), "{e}");
        let e = err("[[test]]\nname = \"a\"\nexpect = \"unknown\"\n");
        assert!(e.contains("field `expect`") && e.contains(":3:"), "{e}");
        let e = err("[[test]]\nname = \"a\"\nnodes = -1\n");
        assert!(e.contains("field `nodes`"), "{e}");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = err("[[test]]\nname = \"a\nnodes = 3\n");
        assert!(e.starts_with("suites/t.toml:2:"), "{e}");
    }

    #[test]
    fn impossible_matrices_are_errors_that_name_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("seeds = []", "seeds", "is empty"),
            ("variants = []", "variants", "is empty"),
            ("faults = []", "faults", "is empty"),
            ("repeats = 0", "repeats", "at least 1"),
            ("nodes = 0", "nodes", "at least 1"),
            ("time_limit = 0", "time_limit", "greater than 0"),
            ("concurrency = 0", "concurrency", "at least 1"),
            ("faults = [\"flood\"]", "faults", "unknown fault 'flood'"),
            ("faults = [\"\"]", "faults", "empty fault set"),
            ("faults = [\"none,kill\"]", "faults", "stands alone"),
            ("faults = [\"kill,kill\"]", "faults", "twice"),
            ("faults = [\"kill\", \"kill\"]", "faults", "listed twice"),
            ("seeds = [1, 1]", "seeds", "twice"),
            (
                "nodes = 1\nfaults = [\"partition\"]",
                "faults",
                "nodes >= 2",
            ),
            ("bugs = [\"typo\"]", "bugs", "unknown seeded bug \"typo\""),
            (
                "variants = [\"basic\"]\nbugs = [\"lease-read\"]\nexpect = \"invalid\"",
                "bugs",
                "only in the multi",
            ),
            ("expect = \"invalid\"", "expect", "needs a seeded bug"),
        ];
        for (body, field, want) in cases {
            let text = format!("[[test]]\nname = \"e\"\n{body}\n");
            let e = err(&text);
            assert!(
                e.contains(&format!("[[test]] \"e\" (entry 1), field `{field}`")),
                "{body}: {e}"
            );
            assert!(e.contains(want), "{body}: {e}");
            assert!(e.starts_with("suites/t.toml:"), "{body}: {e}");
            // The line points at the field (line 3 or later), not at the header.
            let line: usize = e.split(':').nth(1).unwrap().parse().unwrap();
            assert!(line >= 3, "{body}: {e}");
        }
    }

    #[test]
    fn inherited_bad_value_points_at_defaults() {
        let e = err("[defaults]\nseeds = []\n\n[[test]]\nname = \"a\"\n");
        assert!(e.starts_with("suites/t.toml:2:1:"), "{e}");
        assert!(e.contains("(value from [defaults]), field `seeds`"), "{e}");
    }

    #[test]
    fn more_nodes_than_the_default_node_supports_are_refused() {
        assert!(p("[[test]]\nname = \"a\"\nnodes = 64\n").is_ok());
        let e = err("[[test]]\nname = \"a\"\nfaults = [\"none\"]\nnodes = 65\n");
        assert_eq!(
            e,
            "suites/t.toml:4:1: [[test]] \"a\" (entry 1), field `nodes`: is 65, but the default \
             node (paxos-node) supports at most 64 nodes (a custom node_bin is not limited)"
        );
        let e = err("[defaults]\nnodes = 65\n[[test]]\nname = \"a\"\n");
        assert!(e.starts_with("suites/t.toml:2:1: "), "{e}");
        assert!(e.contains("(value from [defaults]), field `nodes`"), "{e}");
        let s = p("[[test]]\nname = \"a\"\nnodes = 65\nnode_bin = \"/bin/x\"\n").unwrap();
        assert_eq!(s.runs[0].nodes, Some(65));
    }

    #[test]
    fn errors_inside_multi_line_values_name_the_field() {
        let e = err("[[test]]\nname = \"a\"\nvariants = [\n  \"basic\",\n  \"fast\",\n]\n");
        assert!(e.starts_with("suites/t.toml:5:"), "{e}");
        assert!(e.contains("field `variants`"), "{e}");
    }

    #[test]
    fn custom_node_may_expect_invalid_without_bugs() {
        let s = p("[[test]]\nname = \"a\"\nnode_bin = \"/bin/x\"\nexpect = \"invalid\"\nbugs = [\"anything\"]\n").unwrap();
        assert_eq!(s.runs[0].expect, Expect::Invalid);
    }

    #[test]
    fn names_and_entries_are_checked() {
        assert!(err("").contains("no [[test]] entries"));
        let e = err("[[test]]\nvariants = [\"basic\"]\n");
        assert!(
            e.contains("entry 1") && e.contains("missing field `name`"),
            "{e}"
        );
        let e = err("[[test]]\nname = \"a b\"\n");
        assert!(e.contains("field `name`") && e.contains("' '"), "{e}");
        let e = err("[[test]]\nname = \"a\"\n[[test]]\nname = \"a\"\n");
        assert!(e.contains("entry 2") && e.contains("already named"), "{e}");
        let e = err("[defaults]\nname = \"d\"\n[[test]]\nname = \"a\"\n");
        assert!(e.contains("[defaults], field `name`"), "{e}");
    }

    #[test]
    fn shipped_suites_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
        let mut found = 0;
        for f in ["smoke.toml", "nightly.toml", "bugs.toml"] {
            let path = dir.join(f);
            if !path.exists() {
                continue;
            }
            found += 1;
            let s = load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.runs.is_empty());
        }
        assert!(found > 0, "no suite files found in {}", dir.display());
    }

    /// The first windows of an entry's runs take its targets in turn: four seeds with room for
    /// one pause each cover the four pause targets, in every variant; a fault-free run has no
    /// turn on its command line.
    #[test]
    fn runs_of_one_fault_set_take_the_targets_in_turn() {
        use crate::schedule::{generate, Plan, Target};
        let s = p(r#"
[suite]
name = "turns"

[[test]]
name = "t"
nodes = 5
time_limit = 2
nemesis_interval = 2
seeds = [11, 12, 13, 14]
variants = ["basic", "multi"]
faults = ["pause", "none"]
"#)
        .unwrap();
        let ids: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
        let mut first = std::collections::BTreeMap::<Variant, Vec<Target>>::new();
        for run in &s.runs {
            let argv = run.harness_args(Path::new("/tmp/store"));
            let a = crate::test_args::TestArgs::from_argv(argv).unwrap();
            let n = &a.nemesis;
            if run.faults.is_empty() {
                assert_eq!(n.nemesis_turn, None, "{}", run.name);
                continue;
            }
            let sched = generate(&Plan {
                seed: run.seed,
                nodes: &ids,
                kinds: &n.nemesis,
                targets: &n.nemesis_targets,
                interval_s: n.nemesis_interval,
                time_limit_s: a.time_limit,
                turn: n.nemesis_turn,
                spares: &[],
            })
            .unwrap();
            assert_eq!(sched.windows.len(), 1, "{}: {:?}", run.name, sched.windows);
            first
                .entry(run.variant)
                .or_default()
                .push(sched.windows[0].fault.target());
        }
        let want = [Target::One, Target::Minority, Target::Majority, Target::All];
        for (variant, mut got) in first {
            got.sort();
            let mut want = want.to_vec();
            want.sort();
            assert_eq!(got, want, "{variant:?}: every pause target once");
        }
    }
}
