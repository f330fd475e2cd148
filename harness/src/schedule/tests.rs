use super::*;

fn nodes(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

fn set(xs: &[&str]) -> BTreeSet<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

fn links(xs: &[(&str, &str)]) -> BTreeSet<Link> {
    xs.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Every ordered pair across the two sides.
fn across(a: &[&str], b: &[&str]) -> BTreeSet<Link> {
    let mut out = BTreeSet::new();
    for x in a {
        for y in b {
            out.insert((x.to_string(), y.to_string()));
            out.insert((y.to_string(), x.to_string()));
        }
    }
    out
}

#[test]
fn one_isolates_the_first_node_both_ways() {
    let g = topology_grudge(Target::One, &nodes(5)).unwrap();
    assert_eq!(g["n1"], set(&["n2", "n3", "n4", "n5"]));
    assert_eq!(g["n3"], set(&["n1"]));
    assert_eq!(cut_links(&g), across(&["n1"], &["n2", "n3", "n4", "n5"]));
}

#[test]
fn majority_splits_into_halves() {
    let g = topology_grudge(Target::Majority, &nodes(5)).unwrap();
    assert_eq!(cut_links(&g), across(&["n1", "n2"], &["n3", "n4", "n5"]));
    assert_eq!(cut_links(&g).len(), 12);
}

#[test]
fn bridge_keeps_one_node_talking_to_both_halves() {
    let g = topology_grudge(Target::Bridge, &nodes(5)).unwrap();
    assert!(!g.contains_key("n3"));
    assert_eq!(cut_links(&g), across(&["n1", "n2"], &["n4", "n5"]));
}

#[test]
fn majorities_ring_gives_each_node_a_different_majority() {
    for n in [3, 4, 5, 6, 7] {
        let ns = nodes(n);
        let g = topology_grudge(Target::MajoritiesRing, &ns).unwrap();
        let mut seen = BTreeSet::new();
        for x in &ns {
            let blocked = g.get(x).cloned().unwrap_or_default();
            let hears: BTreeSet<String> = ns
                .iter()
                .filter(|y| !blocked.contains(*y))
                .cloned()
                .collect();
            assert!(hears.contains(x), "n={n}: {x} hears itself");
            assert_eq!(hears.len(), n / 2 + 1, "n={n}: {x} hears a majority");
            if n > 3 {
                assert!(seen.insert(hears), "n={n}: {x}'s majority is unique");
            }
        }
    }
    // n=5 on the ring n1..n5: each node hears its two neighbours.
    let g = topology_grudge(Target::MajoritiesRing, &nodes(5)).unwrap();
    assert_eq!(g["n1"], set(&["n3", "n4"]));
    assert_eq!(g["n3"], set(&["n1", "n5"]));
    assert_eq!(cut_links(&g).iter().filter(|(_, to)| to == "n1").count(), 2);
    assert!(cut_links(&g).contains(&("n3".to_string(), "n1".to_string())));
    assert!(!cut_links(&g).contains(&("n2".to_string(), "n1".to_string())));
}

#[test]
fn cut_links_reverse_the_grudge() {
    let mut g = Grudge::new();
    g.insert("n1".into(), set(&["n2"]));
    assert_eq!(cut_links(&g), links(&[("n2", "n1")]));
}

#[test]
fn node_targets_have_the_right_sizes() {
    let ns = nodes(5);
    assert_eq!(target_nodes(Target::One, &ns).len(), 1);
    assert_eq!(target_nodes(Target::Minority, &ns).len(), 2);
    assert_eq!(target_nodes(Target::Majority, &ns).len(), 3);
    assert_eq!(target_nodes(Target::All, &ns), ns);
    assert_eq!(topology_grudge(Target::All, &ns), None);
}

#[test]
fn parse_lists() {
    assert_eq!("none".parse::<Kinds>().unwrap(), Kinds(vec![]));
    assert_eq!(
        "pause, kill".parse::<Kinds>().unwrap(),
        Kinds(vec![FaultKind::Pause, FaultKind::Kill])
    );
    let e = "partition,crash".parse::<Kinds>().unwrap_err();
    assert!(e.contains("'crash'"), "{e}");
    assert_eq!(
        "bridge,majorities-ring".parse::<Targets>().unwrap().0,
        vec![Target::Bridge, Target::MajoritiesRing]
    );
    assert!("ring".parse::<Targets>().is_err());
}

fn plan<'a>(ns: &'a [String], k: &'a Kinds, t: &'a Targets, seed: u64) -> Plan<'a> {
    Plan {
        seed,
        nodes: ns,
        kinds: k,
        targets: t,
        interval_s: 10.0,
        time_limit_s: 120.0,
        turn: None,
        spares: &[],
    }
}

#[test]
fn schedules_are_deterministic_alternating_and_bounded() {
    let ns = nodes(5);
    let k = Kinds(FaultKind::ALL.to_vec());
    let t = Targets::default();
    let a = generate(&plan(&ns, &k, &t, 42)).unwrap();
    assert_eq!(a, generate(&plan(&ns, &k, &t, 42)).unwrap());
    assert_ne!(a.windows, generate(&plan(&ns, &k, &t, 43)).unwrap().windows);
    assert!(a.windows.len() >= 3, "{:?}", a.windows);
    let mut prev_stop = 0.0;
    for w in &a.windows {
        // A quiet gap of at least half an interval before each fault.
        assert!(w.start_s >= prev_stop + 5.0 - 1e-9, "{w:?}");
        assert!(w.stop_s > w.start_s && w.stop_s <= 120.0, "{w:?}");
        assert!(w.stop_s - w.start_s <= 15.0 + 1e-9, "{w:?}");
        prev_stop = w.stop_s;
    }
    let kinds: BTreeSet<FaultKind> = generate(&plan(&ns, &k, &t, 7))
        .unwrap()
        .windows
        .iter()
        .chain(&a.windows)
        .map(|w| w.fault.kind())
        .collect();
    assert_eq!(kinds.len(), 3, "all kinds show up in two schedules");
}

#[test]
fn schedules_respect_kinds_and_targets() {
    let ns = nodes(5);
    let k = Kinds(vec![FaultKind::Partition]);
    let t: Targets = "bridge,one".parse().unwrap();
    let s = generate(&plan(&ns, &k, &t, 1)).unwrap();
    assert!(!s.windows.is_empty());
    for w in &s.windows {
        match &w.fault {
            Fault::Partition { topology, .. } => {
                assert!(matches!(topology, Target::Bridge | Target::One))
            }
            f => panic!("unexpected {f:?}"),
        }
    }
    let none = generate(&plan(&ns, &Kinds(vec![]), &t, 1)).unwrap();
    assert!(none.windows.is_empty());
    let ring: Targets = "bridge,majorities-ring".parse().unwrap();
    let e = generate(&plan(&ns, &Kinds(vec![FaultKind::Pause]), &ring, 1)).unwrap_err();
    assert!(
        e.contains("--nemesis-targets") && e.contains("pause"),
        "{e}"
    );
}

#[test]
fn faults_that_would_hit_nothing_are_never_scheduled() {
    let one = nodes(1);
    let k = Kinds(FaultKind::ALL.to_vec());
    let t = Targets::default();
    let s = generate(&plan(&one, &k, &t, 3)).unwrap();
    assert!(!s.windows.is_empty());
    for w in &s.windows {
        match &w.fault {
            Fault::Pause { nodes, .. } | Fault::Kill { nodes, .. } => {
                assert_eq!(nodes, &one, "{w:?}")
            }
            f => panic!("a one-node cluster cannot be partitioned: {f:?}"),
        }
    }
    let only_partitions = Kinds(vec![FaultKind::Partition]);
    assert!(generate(&plan(&one, &only_partitions, &t, 3))
        .unwrap()
        .windows
        .is_empty());
}

#[test]
fn schedule_json_round_trips_and_is_checked() {
    let ns = nodes(3);
    let k = Kinds(FaultKind::ALL.to_vec());
    let t = Targets::default();
    let s = generate(&plan(&ns, &k, &t, 9)).unwrap();
    let dir = std::env::temp_dir().join(format!("schedule-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("schedule.json");
    s.save(&path).unwrap();
    assert_eq!(Schedule::load(&path).unwrap(), s);
    std::fs::write(&path, "{\"seed\": 1,\n \"nodes\": 3}").unwrap();
    let e = Schedule::load(&path).unwrap_err();
    assert!(e.contains("schedule.json:2:"), "{e}");
    let e = s.check_nodes(&nodes(2)).unwrap_err();
    assert!(e.contains("not in the cluster"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn packet_faults_hit_the_links_or_nodes_of_their_target() {
    use packet::{target_links, Amounts};
    let ns = nodes(5);
    // A node set: every link to and from it.
    let one = target_links(Target::One, &ns);
    assert_eq!(one, across(&["n1"], &["n2", "n3", "n4", "n5"]));
    assert_eq!(target_links(Target::All, &ns).len(), 20);
    // majority: 3 nodes; only the link pair between the other two is spared.
    assert_eq!(target_links(Target::Majority, &ns).len(), 18);
    // A topology: exactly the links that partition would cut.
    assert_eq!(
        target_links(Target::Bridge, &ns),
        across(&["n1", "n2"], &["n4", "n5"])
    );
    let k: Kinds = "loss,dup,rate".parse().unwrap();
    let amounts = Amounts {
        loss_pct: 35.0,
        dup_pct: 5.0,
        rate_kbit: 640.0,
        ..Default::default()
    };
    let t = Targets::default();
    let mut seen = BTreeSet::new();
    for seed in 0..6 {
        let s = generate_with(&plan(&ns, &k, &t, seed), &amounts).unwrap();
        for w in &s.windows {
            seen.insert(w.fault.kind());
            match &w.fault {
                Fault::Loss { links, pct, target } | Fault::Dup { links, pct, target } => {
                    assert!(!links.is_empty(), "{w:?}");
                    check_shape(links, &ns, *target);
                    assert!(*pct == 35.0 || *pct == 5.0, "{w:?}");
                }
                Fault::Rate {
                    nodes,
                    kbit,
                    target,
                } => {
                    assert_eq!(*kbit, 640.0);
                    assert_eq!(nodes.len(), target_nodes(*target, &ns).len(), "{w:?}");
                    assert!(target.name() != "bridge" && target.name() != "majorities-ring");
                }
                f => panic!("not a packet fault: {f:?}"),
            }
        }
    }
    assert_eq!(seen.len(), 3, "all three packet kinds show up: {seen:?}");
    // A one-node cluster has no links: only rate can hit it.
    let s = generate(&plan(&nodes(1), &k, &t, 2)).unwrap();
    assert!(s.windows.iter().all(|w| w.fault.kind() == FaultKind::Rate));
}

/// A generated link set is the target's shape on some shuffled order: for a node set, every
/// link touching the nodes that reach all others; for a topology, as many links as it cuts.
fn check_shape(links: &BTreeSet<Link>, ns: &[String], t: Target) {
    if matches!(t, Target::Bridge | Target::MajoritiesRing) {
        let want = cut_links(&topology_grudge(t, ns).unwrap()).len();
        assert_eq!(links.len(), want, "{t}: {links:?}");
        return;
    }
    let hit: Vec<String> = ns
        .iter()
        .filter(|n| {
            ns.iter()
                .filter(|m| m != n)
                .all(|m| links.contains(&((*n).clone(), m.clone())))
        })
        .cloned()
        .collect();
    assert_eq!(hit.len(), target_nodes(t, ns).len(), "{t}: {links:?}");
    assert_eq!(*links, packet::links_touching(&hit, ns), "{t}");
}

#[test]
fn packet_windows_round_trip_and_bad_amounts_are_named() {
    let ns = nodes(3);
    let k: Kinds = "loss,dup,rate,partition".parse().unwrap();
    let t = Targets::default();
    let s = generate(&plan(&ns, &k, &t, 11)).unwrap();
    assert!(s.windows.iter().any(|w| w.fault.kind().is_packet()));
    let dir = std::env::temp_dir().join(format!("schedule-packet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("schedule.json");
    s.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(Schedule::load(&path).unwrap(), s);
    // A window with a share beyond 100 %, or a link to a node not in the cluster.
    let mut bad = s.clone();
    let i = bad
        .windows
        .iter()
        .position(|w| matches!(w.fault, Fault::Loss { .. } | Fault::Dup { .. }))
        .expect("a loss or dup window");
    if let Fault::Loss { pct, .. } | Fault::Dup { pct, .. } = &mut bad.windows[i].fault {
        *pct = 250.0;
    }
    let e = bad.check_nodes(&ns).unwrap_err();
    assert!(
        e.contains(&format!("window {i}")) && e.contains("pct 250"),
        "{e}"
    );
    let e = s.check_nodes(&nodes(2)).unwrap_err();
    assert!(e.contains("'n3'"), "{e}");
    assert!(
        text.contains("\"kind\": \"") && text.contains("\"links\"") || text.contains("\"kbit\"")
    );
    assert!("loss,flood".parse::<Kinds>().unwrap_err().contains("rate"));
    std::fs::remove_dir_all(&dir).unwrap();
}
