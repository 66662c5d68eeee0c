//! Where the time went: the log lines of several processes (tracing's RFC 3339 UTC timestamps,
//! `2026-12-06T21:38:24.123456Z  INFO …`, or its JSON lines as the guest writes them) merged
//! in time order, each shown as milliseconds
//! after a start the test took, so a slow step (an image load, a handshake, a firewall apply)
//! shows as a gap in the e2e's `MEASURED` output.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A log line's time (µs since the epoch), level and message: tracing's text or JSON format.
fn parse_line(line: &str) -> Option<(i64, String, String)> {
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let at = line_time_us(v.get("timestamp")?.as_str()?)?;
        let level = v.get("level")?.as_str()?.to_string();
        let fields = v.get("fields");
        let message = fields.and_then(|f| f.get("message")).and_then(|m| m.as_str()).unwrap_or_default();
        let target = v.get("target").and_then(|t| t.as_str()).unwrap_or_default();
        return Some((at, level, format!("{target}: {message}")));
    }
    let at = line_time_us(line)?;
    let level = line.split_whitespace().nth(1).unwrap_or_default().to_string();
    Some((at, level, line.split_whitespace().skip(2).collect::<Vec<_>>().join(" ")))
}

/// Microseconds since the Unix epoch of a line's leading timestamp, if it has one.
pub fn line_time_us(line: &str) -> Option<i64> {
    let stamp = line.split_whitespace().next()?;
    let stamp = stamp.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    let digits: String = frac.chars().take_while(char::is_ascii_digit).take(6).collect();
    let micros = format!("{digits:0<6}").parse::<i64>().ok()?;
    let days = days_from_civil(y, m, day);
    Some(((days * 86_400 + h * 3600 + min * 60 + s) * 1_000_000) + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn system_us(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// The INFO/WARN/ERROR lines of each `(who, log)` stamped within `[start - before, start +
/// span]`, in time order, as `+ms who: message` (negative: before the start).
pub fn merge(logs: &[(&str, &str)], start: SystemTime, before: Duration, span: Duration) -> Vec<String> {
    let t0 = system_us(start);
    let (from, to) = (t0 - before.as_micros() as i64, t0 + span.as_micros() as i64);
    let mut lines: Vec<(i64, String)> = Vec::new();
    for (who, log) in logs {
        for line in log.lines() {
            let Some((at, level, msg)) = parse_line(line) else { continue };
            if at < from || at > to || !matches!(level.as_str(), "INFO" | "WARN" | "ERROR") {
                continue;
            }
            let msg: String = msg.chars().take(160).collect();
            lines.push((at, format!("{:+7.1} ms {who}: {msg}", (at - t0) as f64 / 1000.0)));
        }
    }
    lines.sort_by_key(|(at, _)| *at);
    lines.into_iter().map(|(_, l)| l).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracing_timestamps_are_read_and_anything_else_is_not() {
        assert_eq!(line_time_us("1970-01-01T00:00:01.5Z  INFO x"), Some(1_500_000));
        assert_eq!(line_time_us("1970-01-02T00:00:00.000001Z  INFO x"), Some(86_400_000_001));
        // 2026-12-06 is day 20_793 after the epoch.
        assert_eq!(
            line_time_us("2026-12-06T21:38:24.123456Z WARN y"),
            Some((20_793 * 86_400 + 77_904) * 1_000_000 + 123_456)
        );
        for bad in ["", "hello", "2026-13-06T21:38:24Z INFO", "2026-12-06 21:38:24Z", "2026-12-06T25:00:00Z x"] {
            assert_eq!(line_time_us(bad), None, "{bad}");
        }
    }

    #[test]
    fn lines_merge_in_time_order_within_the_window_info_and_above() {
        let start = UNIX_EPOCH + Duration::from_secs(10);
        let a = "1970-01-01T00:00:10.250Z  INFO app: later\n1970-01-01T00:00:09.900Z DEBUG app: noise\n\
                 1970-01-01T00:00:30.000Z  INFO app: too late";
        let b = "1970-01-01T00:00:09.500Z  WARN guest: before\nno stamp\n\
                 {\"timestamp\":\"1970-01-01T00:00:10.100Z\",\"level\":\"INFO\",\"fields\":{\"message\":\"up\"},\"target\":\"g\"}";
        let got = merge(&[("ctl", a), ("guest", b)], start, Duration::from_secs(1), Duration::from_secs(5));
        assert_eq!(got, [" -500.0 ms guest: guest: before", " +100.0 ms guest: g: up", " +250.0 ms ctl: app: later"]);
    }
}
