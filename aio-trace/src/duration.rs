//! Durations as users write them: seconds (`30`, `1.5`) or a number with a
//! unit (`500ms`, `30s`, `5m`, `1h`, `2d`), positive and at most a year.
//!
//! Layer: a leaf (parsing only). The command line uses it; the fuzz crate
//! runs it on arbitrary text.

use std::time::Duration;

/// The longest duration accepted: longer is a typo, and the deadlines and
/// nanosecond counts derived from a duration must not overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Units a duration may carry; a bare number is seconds.
const DURATION_UNITS: [(&str, f64); 5] = [
    ("ms", 0.001),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
    ("d", 86400.0),
];

/// A positive duration of at most a year: a number of seconds (`30`, `1.5`)
/// or a number with a unit (`500ms`, `30s`, `5m`, `1h`, `2d`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    // "ms" before "m" and "s": the first suffix that matches wins.
    let (number, unit) = DURATION_UNITS
        .iter()
        .find_map(|&(suffix, unit)| Some((text.strip_suffix(suffix)?, unit)))
        .unwrap_or((text, 1.0));
    let value: f64 = number.trim().parse().map_err(|_| {
        format!("{s:?} is not a duration: give seconds (30, 1.5) or a number with a unit (500ms, 30s, 5m, 1h, 2d)")
    })?;
    if !value.is_finite() {
        return Err(format!("{s:?} is not a finite duration"));
    }
    let secs = value * unit;
    if secs > MAX_DURATION.as_secs_f64() {
        return Err(format!(
            "{s} is too long: the duration must be at most 1 year (365d)"
        ));
    }
    let duration = Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO);
    if duration.is_zero() {
        return Err(format!("the duration must be more than 0, not {s}"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_numbers_are_seconds_and_fractions_are_allowed() {
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1e3"), Ok(Duration::from_secs(1000)));
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86400)));
        assert_eq!(parse_duration("365d"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("0.5 s"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn zero_negative_and_words_are_refused() {
        for s in ["0", "0s", "-3", "-1m", "1e-12"] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains("more than 0"), "{s}: {e}");
        }
        for s in ["soon", "", "s", "ms", "5x", "1 week", "5mm"] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains("is not a duration"), "{s}: {e}");
        }
    }

    #[test]
    fn infinite_and_not_a_number_are_refused_as_such() {
        for s in ["inf", "-inf", "infinity", "NaN", "infs"] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains("not a finite duration"), "{s}: {e}");
        }
    }

    #[test]
    fn huge_durations_are_refused_not_a_panic() {
        for s in ["1e20", "1e300", "1e308h", "366d", "31536001", "9000000h"] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains("at most 1 year"), "{s}: {e}");
        }
    }
}
