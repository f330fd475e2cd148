//! What every link between nodes does to packets for a whole run (`--net-loss`, `--net-dup`,
//! `--net-rate`, and latency): the numbers only, which [`super::links`] puts in force and a run's
//! [`super::netns::NetNs`] keeps, so that a scheduled packet fault's heal can restore them.

/// What every link between nodes does to packets.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Share of packets dropped, percent, on each link (each direction).
    pub loss_pct: f64,
    /// Share of packets sent twice, percent.
    pub dup_pct: f64,
    /// Each node's outgoing bandwidth, kbit/s (0: unlimited).
    pub rate_kbit: f64,
    /// Added delay and its ± spread, milliseconds (needs netem).
    pub latency_ms: f64,
    pub jitter_ms: f64,
}

impl LinkFaults {
    pub fn is_none(&self) -> bool {
        *self == LinkFaults::default()
    }
}
