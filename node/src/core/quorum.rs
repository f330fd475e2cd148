//! Sets of nodes as `u64` bitsets (bit `i` = node `i`), and the majority rule.

/// The most nodes a cluster may have. Quorums and the thrifty voter set (`Msg::Accept::voters`)
/// are `u64` bitsets, one bit per node; request origins are `incarnation << 8 | me`, which allows
/// 256. The bitsets set the limit.
pub const MAX_NODES: usize = 64;

/// A set of nodes: who promised, who voted, who acknowledged a heartbeat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Votes(u64);

impl Votes {
    pub const NONE: Votes = Votes(0);

    /// The set holding only `node`.
    pub fn of(node: usize) -> Votes {
        Votes(bit(node))
    }

    /// The set as sent on the wire (`Msg::Accept::voters`).
    pub fn from_bits(bits: u64) -> Votes {
        Votes(bits)
    }

    pub fn bits(self) -> u64 {
        self.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn add(&mut self, node: usize) {
        self.0 |= bit(node);
    }

    pub fn contains(self, node: usize) -> bool {
        self.0 & bit(node) != 0
    }

    pub fn with(self, node: usize) -> Votes {
        Votes(self.0 | bit(node))
    }

    pub fn without(self, node: usize) -> Votes {
        Votes(self.0 & !bit(node))
    }

    /// How many nodes are in the set.
    pub fn count(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the members among these nodes are a majority of `members`.
    pub fn is_quorum_of(self, members: Votes) -> bool {
        Votes(self.0 & members.0).is_majority(members.count())
    }

    /// Whether these nodes are a majority of a cluster of `n`.
    pub fn is_majority(self, n: usize) -> bool {
        self.0.count_ones() as usize > n / 2
    }
}

fn bit(node: usize) -> u64 {
    debug_assert!(node < MAX_NODES, "node {node} beyond MAX_NODES");
    1 << node
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majorities_and_membership() {
        let mut v = Votes::of(0);
        assert!(!v.is_majority(3));
        v.add(2);
        assert!(v.is_majority(3) && !v.is_majority(4) && !v.is_majority(5));
        v.add(63);
        assert!(v.contains(63) && !v.contains(1) && v.is_majority(5));
        assert_eq!(v.without(0).without(2), Votes::of(63));
        assert_eq!(Votes::from_bits(v.bits()), v);
        assert!(Votes::NONE.is_empty() && !Votes::NONE.with(5).is_empty());
    }
}
