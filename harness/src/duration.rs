//! Durations typed by users (command-line flags, suite files, hunt options) are checked here, once,
//! against one bound, so that turning them into a [`Duration`] can never panic and no phase of a
//! run can be asked to last for ages. Callers say where the number came from (a flag, a file:line).

use std::time::Duration;

/// The longest duration any option may ask for: one week.
pub const MAX_SECS: f64 = 7.0 * 24.0 * 3600.0;

/// The unit an option is given in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Millis,
}

impl Unit {
    fn per_sec(self) -> f64 {
        match self {
            Unit::Seconds => 1.0,
            Unit::Millis => 1000.0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Seconds => "seconds",
            Unit::Millis => "milliseconds",
        }
    }
}

/// What is wrong with `v` as a duration in `unit`, without saying where it came from: not a
/// finite number, negative, zero (unless `zero_ok`), or above [`MAX_SECS`].
pub fn problem(v: f64, unit: Unit, zero_ok: bool) -> Option<String> {
    let max = MAX_SECS * unit.per_sec();
    let range = if zero_ok {
        format!("from 0 to {max} {} (one week)", unit.name())
    } else {
        format!(
            "greater than 0 and at most {max} {} (one week)",
            unit.name()
        )
    };
    let bad = !v.is_finite() || v < 0.0 || (!zero_ok && v == 0.0) || v > max;
    bad.then(|| format!("must be {range}, not {}", show(v)))
}

/// A number as a message shows it: plain when of everyday size, else in exponent form (so
/// `1e300` does not print as three hundred digits).
pub fn show(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || !v.is_finite() || (1e-4..1e15).contains(&a) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// Checks a duration flag: the error reads `--flag VALUE: must be ...`.
pub fn check_flag(flag: &str, v: f64, unit: Unit, zero_ok: bool) -> Result<(), String> {
    match problem(v, unit, zero_ok) {
        Some(p) => Err(format!("{flag} {}: {p}", show(v))),
        None => Ok(()),
    }
}

/// Seconds as a [`Duration`]. Values that passed [`problem`] convert exactly; anything else is
/// clamped into `0..=MAX_SECS` (NaN is 0) rather than panicking.
pub fn secs(v: f64) -> Duration {
    let v = if v.is_nan() {
        0.0
    } else {
        v.clamp(0.0, MAX_SECS)
    };
    Duration::from_secs_f64(v)
}

/// Milliseconds as a [`Duration`], clamped like [`secs`].
pub fn millis(v: f64) -> Duration {
    secs(v / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_tiny_and_odd_numbers_are_refused_with_the_bound() {
        for v in [1e300, f64::INFINITY, f64::NAN, -1.0, MAX_SECS * 1.01] {
            let e = check_flag("--time-limit", v, Unit::Seconds, false).unwrap_err();
            assert!(e.starts_with("--time-limit "), "{e}");
            assert!(e.contains("at most 604800 seconds"), "{e}");
        }
        assert!(check_flag("--x", 0.0, Unit::Seconds, false).is_err());
        assert!(check_flag("--x", 0.0, Unit::Seconds, true).is_ok());
        assert!(check_flag("--x", MAX_SECS, Unit::Seconds, false).is_ok());
        let e = check_flag("--net-latency", 1e12, Unit::Millis, true).unwrap_err();
        assert!(e.contains("604800000 milliseconds"), "{e}");
        assert_eq!(
            check_flag("--t", 1e300, Unit::Seconds, true).unwrap_err(),
            "--t 1e300: must be from 0 to 604800 seconds (one week), not 1e300"
        );
    }

    #[test]
    fn conversion_never_panics() {
        assert_eq!(secs(1e300), Duration::from_secs_f64(MAX_SECS));
        assert_eq!(secs(f64::NAN), Duration::ZERO);
        assert_eq!(secs(-5.0), Duration::ZERO);
        assert_eq!(millis(1500.0), Duration::from_millis(1500));
    }
}
