//! Waiting on a core's `poll_timeout()`: a sans-IO core says when it next needs the clock, or
//! `None` when nothing is due; its driver sleeps until then inside a `select!`.

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
