//! `--shard K/N`: the K-th of N disjoint slices of a suite's expanded matrix, so a CI job matrix
//! can spread one suite over N machines and `harness suite merge` can put it back together.
//!
//! A run's shard is its position in the expanded matrix (before `--filter`) modulo N. The matrix
//! is expanded in file order, so the same file gives every machine the same slices; consecutive
//! runs of one entry (its seeds) go to different shards, which keeps the slices' lengths close.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which slice: `k` counts from 1, as people say "shard 2 of 4".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub k: u32,
    pub n: u32,
}

impl Shard {
    /// Whether the run at `index` of the expanded matrix belongs to this shard.
    pub fn holds(&self, index: usize) -> bool {
        index % self.n as usize == (self.k - 1) as usize
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not K/N (for example 2/4: the second of four)"))?;
        let num = |x: &str, what: &str| {
            x.trim()
                .parse::<u32>()
                .map_err(|_| format!("{s:?}: {what} {x:?} is not a whole number"))
        };
        let (k, n) = (num(k, "K")?, num(n, "N")?);
        if n == 0 {
            return Err(format!("{s:?}: N must be at least 1"));
        }
        if k == 0 || k > n {
            return Err(format!("{s:?}: K must be between 1 and N ({n})"));
        }
        Ok(Shard { k, n })
    }
}

/// What a shard's `summary.json` records so that a merge can tell a whole suite from a part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub k: u32,
    pub n: u32,
    /// Runs in the whole matrix (every shard), after `--filter`.
    pub matrix_runs: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k_of_n_and_names_what_is_wrong() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { k: 2, n: 4 }));
        assert_eq!("1/1".parse::<Shard>(), Ok(Shard { k: 1, n: 1 }));
        for (bad, says) in [
            ("2", "is not K/N"),
            ("0/3", "K must be between 1 and N (3)"),
            ("4/3", "K must be between 1 and N (3)"),
            ("1/0", "N must be at least 1"),
            ("a/3", "K \"a\" is not a whole number"),
            ("1/-2", "N \"-2\" is not a whole number"),
        ] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn every_index_is_in_exactly_one_shard() {
        for n in 1..=7u32 {
            for i in 0..100 {
                let holders = (1..=n).filter(|&k| Shard { k, n }.holds(i)).count();
                assert_eq!(holders, 1, "index {i} with N={n}");
            }
        }
    }
}
