//! Link faults in netns mode, in force for the whole run: packet loss and duplication between
//! nodes (nftables `numgen random`, `dup`), a bandwidth limit per node (tc `tbf`), and latency and
//! jitter (tc `netem`, where the kernel has it: this is detected, and a kernel without the
//! `sch_netem` module gives a clear error).
//!
//! Loss and duplication hit only node-to-node packets, not the harness's clients (as
//! `--net-latency` in proxy mode); the bandwidth limit and netem sit on each node's interface, so
//! they slow its replies to clients too.

use super::netns::NetNs;
use super::nft::in_every_namespace;
use super::tools;
use anyhow::{bail, Result};

const LINK_TABLE: &str = "jepsen_link";

pub use super::link_faults::LinkFaults;

/// Puts `f` in force in every namespace of `net`.
pub fn apply(net: &NetNs, f: &LinkFaults) -> Result<()> {
    if f.latency_ms > 0.0 || f.jitter_ms > 0.0 {
        require_netem(net)?;
    }
    let scripts: Vec<(String, String)> = net
        .nodes
        .iter()
        .map(|n| {
            let peers: Vec<String> = net
                .nodes
                .iter()
                .filter(|p| p.id != n.id)
                .map(|p| p.addr.to_string())
                .collect();
            (n.ns.clone(), link_script(&peers, f))
        })
        .collect();
    in_every_namespace(&scripts)?;
    for n in &net.nodes {
        if let Some(qdisc) = qdisc_args(f) {
            let mut args = vec!["-n", &n.ns, "qdisc", "replace", "dev", "eth0", "root"];
            args.extend(qdisc.iter().map(String::as_str));
            tools::run("tc", &args, None)?;
        }
    }
    Ok(())
}

/// Fails, naming the module, when the kernel has no netem qdisc.
pub fn require_netem(net: &NetNs) -> Result<()> {
    let Some(n) = net.nodes.first() else {
        return Ok(());
    };
    let probe = [
        "-n", &n.ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
    ];
    match tools::run("tc", &probe, None) {
        Ok(_) => {
            let _ = tools::run(
                "tc",
                &["-n", &n.ns, "qdisc", "del", "dev", "lo", "root"],
                None,
            );
            Ok(())
        }
        Err(e) => bail!(
            "--net-latency/--net-jitter with --net netns need the kernel's netem qdisc (module \
             sch_netem), which this kernel lacks ({e:#}); use --net proxy for latency"
        ),
    }
}

/// One namespace's link table: loss on input from peers, duplication on output to them.
pub fn link_script(peers: &[String], f: &LinkFaults) -> String {
    let mut s = format!("add table ip {LINK_TABLE}\ndelete table ip {LINK_TABLE}\n");
    if peers.is_empty() || (f.loss_pct <= 0.0 && f.dup_pct <= 0.0) {
        return s;
    }
    let set = peers.join(", ");
    s.push_str(&format!("table ip {LINK_TABLE} {{\n"));
    if f.loss_pct > 0.0 {
        s.push_str(&format!(
            "  chain input {{\n    type filter hook input priority -20; policy accept;\n    ip saddr {{ {set} }} numgen random mod 10000 < {} drop\n  }}\n",
            per_10k(f.loss_pct)
        ));
    }
    if f.dup_pct > 0.0 {
        s.push_str(&format!(
            "  chain output {{\n    type filter hook output priority -20; policy accept;\n    ip daddr {{ {set} }} numgen random mod 10000 < {} dup to ip daddr device \"eth0\"\n  }}\n",
            per_10k(f.dup_pct)
        ));
    }
    s.push_str("}\n");
    s
}

/// A percentage as a share of `numgen random mod 10000` (which draws 0..9999): two decimals.
pub fn per_10k(pct: f64) -> u32 {
    (pct * 100.0).round() as u32
}

/// The root qdisc for `f`: netem when latency is asked for (it also limits the rate), else tbf
/// for a rate limit, else none.
pub fn qdisc_args(f: &LinkFaults) -> Option<Vec<String>> {
    if f.latency_ms > 0.0 || f.jitter_ms > 0.0 {
        let mut a = vec![
            "netem".to_string(),
            "delay".into(),
            format!("{}ms", f.latency_ms),
            format!("{}ms", f.jitter_ms),
        ];
        if f.rate_kbit > 0.0 {
            a.extend(["rate".to_string(), format!("{}kbit", f.rate_kbit)]);
        }
        return Some(a);
    }
    (f.rate_kbit > 0.0).then(|| {
        // A burst of at least one MTU-sized packet, and up to 50 ms of queue.
        let burst = ((f.rate_kbit * 1000.0 / 8.0 / 100.0) as u64).max(3000);
        vec![
            "tbf".to_string(),
            "rate".into(),
            format!("{}kbit", f.rate_kbit),
            "burst".into(),
            format!("{burst}"),
            "latency".into(),
            "50ms".into(),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_qdiscs_follow_the_options() {
        let peers = vec!["10.77.0.2".to_string()];
        let none = link_script(&peers, &LinkFaults::default());
        assert!(!none.contains("chain"));
        let f = LinkFaults {
            loss_pct: 30.0,
            dup_pct: 5.5,
            ..Default::default()
        };
        let s = link_script(&peers, &f);
        assert!(s.contains("numgen random mod 10000 < 3000 drop"), "{s}");
        assert!(s.contains("< 550 dup to ip daddr"), "{s}");
        assert_eq!(qdisc_args(&f), None);
        let rate = LinkFaults {
            rate_kbit: 800.0,
            ..Default::default()
        };
        assert_eq!(qdisc_args(&rate).unwrap()[..3], ["tbf", "rate", "800kbit"]);
        let lat = LinkFaults {
            latency_ms: 20.0,
            ..rate
        };
        assert_eq!(qdisc_args(&lat).unwrap()[0], "netem");
    }
}
