//! Human-readable numbers and times for the command line's output.

use std::time::Duration;

/// Bytes in decimal units, as transfer tools print them: `999 B`, `45.2 MB`, `1.07 GB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 999.95 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    format!("{} {}", three_digits(v), UNITS[unit])
}

/// A rate in bytes per second.
pub fn rate(n: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-6);
    format!("{}/s", bytes((n as f64 / secs) as u64))
}

/// A count per second: whole numbers, one decimal below 10 (`0.5`, `243`).
pub fn per_sec(n: u64, elapsed: Duration) -> String {
    let v = n as f64 / elapsed.as_secs_f64().max(1e-6);
    if v < 9.95 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// Seconds with two decimals: `1.23 s`.
pub fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Milliseconds with three decimals: `0.123 ms`.
pub fn millis(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// A signed µs offset in milliseconds: `+12.345 ms`.
pub fn offset_ms(us: i64) -> String {
    format!("{:+.3} ms", us as f64 / 1000.0)
}

/// Three significant digits for values in [1, 1000): `1.23`, `45.2`, `512`.
fn three_digits(v: f64) -> String {
    if v < 9.995 {
        format!("{v:.2}")
    } else if v < 99.95 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// µs since the Unix epoch as UTC `YYYY-MM-DD HH:MM:SS`.
pub fn utc(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_bytes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "1.00 kB");
        assert_eq!(bytes(45_200_000), "45.2 MB");
        assert_eq!(bytes(999_999), "1.00 MB");
        assert_eq!(bytes(512_000_000), "512 MB");
        assert_eq!(bytes(1 << 30), "1.07 GB");
        assert_eq!(rate(36_700_000, Duration::from_secs(1)), "36.7 MB/s");
        assert_eq!(per_sec(243, Duration::from_secs(1)), "243");
        assert_eq!(per_sec(1, Duration::from_secs(2)), "0.5");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_700_000_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc(951_782_400_000_000), "2000-02-29 00:00:00");
        assert_eq!(utc(-1_000_000), "1969-12-31 23:59:59");
    }

    #[test]
    fn small_units() {
        assert_eq!(millis(Duration::from_micros(123)), "0.123 ms");
        assert_eq!(offset_ms(-12_345), "-12.345 ms");
        assert_eq!(seconds(Duration::from_millis(1234)), "1.23 s");
    }
}

/// Parses a duration: a number with an optional unit, `ms`, `s` (the default), `m`, `h` or `d`
/// (`500ms`, `10s`, `5m`, `30d`).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(format!("{s:?}: the unit must be ms, s, m, h or d")),
    };
    num.parse::<f64>()
        .ok()
        .map(|v| v * scale)
        .filter(|v| v.is_finite() && *v > 0.0 && *v < 1e10)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("{s:?} is not a duration (like 500ms, 10s, 5m, 2h, 30d)"))
}

#[cfg(test)]
mod duration_tests {
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(
            super::parse_duration("500ms"),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(super::parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(
            super::parse_duration("30d"),
            Ok(Duration::from_secs(30 * 86400))
        );
        assert!(super::parse_duration("0s").is_err());
        assert!(super::parse_duration("3w").is_err());
        assert!(super::parse_duration("").is_err());
    }
}
