//! Clock faults in the schedule (`--nemesis clock`): which nodes' wall clocks go wrong, how, and
//! by how much. Targets are node sets, as for pause. Each window draws a mode and an offset:
//!
//! - `bump`: the clock jumps by `offset_ms` (forward or back) and stays off by that much;
//! - `strobe`: it flips between `+offset_ms` and `-offset_ms` every [`STROBE_MS`];
//! - `skew`: it runs fast or slow, gaining `offset_ms` per second of real time.
//!
//! At the window's end the clock is set right again (a jump back to the true time).
//! [`crate::clock`] carries them out.

use super::packet::Amounts;
use super::{target_nodes, Fault, Target};
use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How a clock goes wrong during a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Bump,
    Strobe,
    Skew,
}

/// How often a strobing clock flips.
pub const STROBE_MS: u64 = 100;
/// A skewed clock gains (or loses) at most this many ms per second: between half and one and a
/// half times the true rate.
pub const MAX_SKEW_MS_PER_S: f64 = 500.0;
/// The largest `--nemesis-clock-offset`: a day.
pub const MAX_OFFSET_S: f64 = 86_400.0;

/// A clock fault on `target`'s nodes, its mode and offset still to be drawn.
pub(super) fn make_fault(target: Target, order: &[String]) -> Option<Fault> {
    let nodes = Some(target_nodes(target, order)).filter(|n| !n.is_empty())?;
    Some(Fault::Clock {
        target,
        nodes,
        mode: Mode::Bump,
        offset_ms: 0.0,
    })
}

/// Draws the mode and offset of a clock fault (other faults pass through): bumps and strobes by
/// a quarter to all of `--nemesis-clock-offset`, either way; skews by a fifth to all of
/// [`MAX_SKEW_MS_PER_S`], fast or slow.
pub(super) fn draw(f: Fault, a: &Amounts, rng: &mut StdRng) -> Fault {
    let Fault::Clock { target, nodes, .. } = f else {
        return f;
    };
    let mode = [Mode::Bump, Mode::Strobe, Mode::Skew][rng.gen_range(0..3)];
    let sign = if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
    let size = match mode {
        Mode::Bump | Mode::Strobe => a.clock_offset_s * 1000.0 * rng.gen_range(0.25..=1.0),
        Mode::Skew => MAX_SKEW_MS_PER_S * rng.gen_range(0.2..=1.0),
    };
    Fault::Clock {
        target,
        nodes,
        mode,
        offset_ms: (sign * size).round(),
    }
}

/// `bump +2500 ms`, `strobe ±800 ms`, `skew -120 ms/s`: for the log, the history and the report.
pub fn label(mode: Mode, offset_ms: f64) -> String {
    match mode {
        Mode::Bump => format!("bump {offset_ms:+} ms"),
        Mode::Strobe => format!("strobe ±{} ms", offset_ms.abs()),
        Mode::Skew => format!("skew {offset_ms:+} ms/s"),
    }
}

/// The offset, in ms, of a clock under `mode` at `elapsed_ms` into its window.
pub fn offset_at(mode: Mode, offset_ms: f64, elapsed_ms: f64) -> f64 {
    match mode {
        Mode::Bump => offset_ms,
        Mode::Strobe if (elapsed_ms as u64 / STROBE_MS).is_multiple_of(2) => offset_ms,
        Mode::Strobe => -offset_ms,
        Mode::Skew => offset_ms * elapsed_ms / 1000.0,
    }
}

/// Checks `--nemesis-clock-offset` (`what` names the flag or field): above 0, at most a day.
pub fn check_offset(what: &str, s: f64) -> Result<(), String> {
    if !(s > 0.0 && s <= MAX_OFFSET_S) {
        return Err(format!(
            "{what} {s}: must be above 0 and at most {MAX_OFFSET_S} seconds"
        ));
    }
    Ok(())
}

/// A clock window's offset, for a schedule read from a file.
pub(super) fn check_amount(f: &Fault) -> Result<(), String> {
    let Fault::Clock {
        mode, offset_ms, ..
    } = f
    else {
        return Ok(());
    };
    let max = match mode {
        Mode::Bump | Mode::Strobe => MAX_OFFSET_S * 1000.0,
        Mode::Skew => MAX_SKEW_MS_PER_S,
    };
    if !(offset_ms.is_finite() && offset_ms.abs() <= max) {
        return Err(format!(
            "offset_ms {offset_ms}: a {} clock fault is off by at most {max}",
            label(*mode, 0.0).split(' ').next().unwrap_or("clock")
        ));
    }
    Ok(())
}
