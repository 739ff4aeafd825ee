//! Durations as nexus.toml writes them: an integer is milliseconds, a string takes units
//! (`250ms`, `10s`, `5m`, `1h`, and sums such as `1m30s`). Parsing only; no defaults here.

use std::time::Duration;

/// What `parse` takes, as a regular expression (for the JSON Schema): numbers with units,
/// spaces allowed around them.
pub const PATTERN: &str = r"^\s*(([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*(ms|secs?|s|mins?|m|hrs?|h)\s*)+$";

/// Parse a duration string. The error is a sentence fragment for a diagnostic.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".to_string());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{s}` is not a duration"));
        }
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{s}` is not a duration"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = &rest[unit_len..];
        let millis = match unit {
            "ms" => 1.0,
            "s" | "sec" | "secs" => 1_000.0,
            "m" | "min" | "mins" => 60_000.0,
            "h" | "hr" | "hrs" => 3_600_000.0,
            "" => return Err(format!("`{s}` has no unit")),
            _ => return Err(format!("`{s}` has an unknown unit `{unit}`")),
        };
        let ms = number * millis;
        if !ms.is_finite() || ms > 1e13 {
            return Err(format!("`{s}` is too large"));
        }
        total += Duration::from_micros((ms * 1000.0).round() as u64);
    }
    Ok(total)
}

/// Human form for messages and output: `250ms`, `1.5s`, `10s`, `5m`, `1h30m`.
pub fn display(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        if ms % 1000 == 0 {
            format!("{}s", ms / 1000)
        } else {
            format!("{:.1}s", d.as_secs_f64())
        }
    } else {
        let secs = d.as_secs();
        let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
        let mut out = String::new();
        if h > 0 {
            out += &format!("{h}h");
        }
        if m > 0 {
            out += &format!("{m}m");
        }
        if s > 0 {
            out += &format!("{s}s");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn errors() {
        assert_eq!(parse("10"), Err("`10` has no unit".to_string()));
        assert_eq!(
            parse("10x"),
            Err("`10x` has an unknown unit `x`".to_string())
        );
        assert_eq!(parse("soon"), Err("`soon` is not a duration".to_string()));
    }

    #[test]
    fn display_round_trips() {
        for s in ["250ms", "10s", "5m", "1h30m", "1.5s"] {
            assert_eq!(display(parse(s).unwrap()), s);
        }
    }
}
