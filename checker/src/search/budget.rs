//! Limits on one search, and the meter that checks them while it runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Limits for one search; checked every few thousand steps.
pub struct Budget<'a> {
    pub deadline: Option<Instant>,
    pub memory_limit: Option<u64>,
    /// Bytes held by all searches running at once (shared across threads).
    pub memory_used: &'a AtomicU64,
    /// True when the search is no longer wanted (another key already failed).
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
}

impl Budget<'_> {
    /// Which limit ran out, if any.
    fn exceeded(&self) -> Option<&'static str> {
        if (self.cancelled)() {
            Some("cancelled")
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some("time limit")
        } else if (self.memory_limit).is_some_and(|m| self.memory_used.load(Ordering::Relaxed) > m)
        {
            Some("memory limit")
        } else {
            None
        }
    }
}

/// Counts work and, every 4096 units, reports the bytes this search holds to the shared total
/// and checks the budget. Looking at the clock and the shared counter on every step would cost
/// more than the step. What it reported is given back when the search ends.
pub(super) struct Meter<'a, 'b> {
    budget: &'a Budget<'b>,
    steps: u64,
    next_check: u64,
    reported: u64,
}

impl<'a, 'b> Meter<'a, 'b> {
    pub(super) fn new(budget: &'a Budget<'b>) -> Self {
        Meter {
            budget,
            steps: 0,
            next_check: 4096,
            reported: 0,
        }
    }

    /// A meter whose first step already checks the budget (for searches that may finish in
    /// fewer steps than the others check after).
    pub(super) fn eager(budget: &'a Budget<'b>) -> Self {
        Meter {
            next_check: 0,
            ..Meter::new(budget)
        }
    }

    /// One step, after `extra` units of other work so far (cache comparisons); `held` is asked
    /// for the bytes held only when the budget is checked.
    #[inline]
    pub(super) fn tick(
        &mut self,
        extra: u64,
        held: impl FnOnce() -> usize,
    ) -> Option<&'static str> {
        self.steps += 1;
        let work = self.steps + extra;
        if work < self.next_check {
            return None;
        }
        self.next_check = work + 4096;
        let bytes = held() as u64;
        let used = self.budget.memory_used;
        used.fetch_add(bytes.wrapping_sub(self.reported), Ordering::Relaxed);
        self.reported = bytes;
        self.budget.exceeded()
    }
}

impl Drop for Meter<'_, '_> {
    fn drop(&mut self) {
        let used = self.budget.memory_used;
        used.fetch_sub(self.reported, Ordering::Relaxed);
    }
}
