//! Waiting on a core's `poll_timeout()`: a sans-IO core says when it next needs the clock, or
//! `None` when nothing is due; its driver sleeps until then inside a `select!`. And
//! `utc_date`: a Unix time as the calendar date people read (a certificate's expiry).

use std::time::Instant;

/// Sleeps until `deadline`, or forever when there is none (the other `select!` arms wake the
/// driver then).
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The earlier of two optional deadlines (`None`: nothing due), for a driver that sleeps on a
/// core's deadline and one of its own.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time in seconds: days to a civil date by the proleptic
/// Gregorian calendar (eras of 400 years, March-based years so the leap day comes last).
pub fn utc_date(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_dates_match_the_calendar_across_leap_days_and_centuries() {
        // Expected values from Python's datetime.utcfromtimestamp.
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(951_868_799), "2000-02-29");
        assert_eq!(utc_date(951_868_800), "2000-03-01");
        assert_eq!(utc_date(2_100_000_000), "2036-07-18");
        assert_eq!(utc_date(4_102_444_799), "2099-12-31");
        assert_eq!(utc_date(4_102_444_800), "2100-01-01");
    }

    #[tokio::test(start_paused = true)]
    async fn wakes_at_the_deadline_and_not_before() {
        let start = tokio::time::Instant::now();
        sleep_until(Some(Instant::now() + Duration::from_secs(5))).await;
        assert!(start.elapsed() >= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_deadline_never_wakes() {
        let woke = tokio::time::timeout(Duration::from_secs(3600), sleep_until(None)).await;
        assert!(woke.is_err(), "no deadline must mean no wake-up");
    }

    #[test]
    fn earliest_takes_the_sooner_deadline_and_ignores_a_missing_one() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        assert_eq!(earliest(Some(later), Some(now)), Some(now));
        assert_eq!(earliest(Some(now), Some(later)), Some(now));
        assert_eq!(earliest(None, Some(later)), Some(later));
        assert_eq!(earliest(Some(later), None), Some(later));
        assert_eq!(earliest(None, None), None);
    }
}
