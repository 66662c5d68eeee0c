//! Doubling delays with a ceiling: retries of anything that may take a while to come back
//! (Docker Desktop booting, a helper being installed, a VM's resolver) without hammering it.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// `initial` is the first delay; each later one doubles, up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let initial = initial.min(max);
        Backoff { initial, max, next: initial }
    }

    /// The delay before the next try, and the one after it doubled.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        d
    }

    #[cfg(test)]
    /// What `next_delay` would return, without advancing.
    pub fn peek(&self) -> Duration {
        self.next
    }

    /// After a success: the next failure waits `initial` again.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }

    /// The delay before try number `attempt` (1-based) of a fresh backoff, without state:
    /// for a sans-IO core that counts its attempts itself.
    pub fn delay_for(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_up_to_the_ceiling_and_reset_starts_over() {
        let mut b = Backoff::new(MS(250), MS(4000));
        let seen: Vec<u64> = (0..7).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(seen, [250, 500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(b.peek(), MS(4000));
        b.reset();
        assert_eq!(b.next_delay(), MS(250));
    }

    #[test]
    fn delay_for_matches_the_stateful_sequence_and_never_overflows() {
        let b = Backoff::new(MS(250), MS(4000));
        let mut s = b.clone();
        for attempt in 1..=8 {
            assert_eq!(b.delay_for(attempt), s.next_delay(), "attempt {attempt}");
        }
        assert_eq!(b.delay_for(0), MS(250));
        assert_eq!(b.delay_for(u32::MAX), MS(4000));
        let huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.delay_for(40), Duration::MAX);
    }

    #[test]
    fn an_initial_delay_above_the_ceiling_is_capped() {
        let mut b = Backoff::new(MS(10_000), MS(300));
        assert_eq!((b.next_delay(), b.next_delay()), (MS(300), MS(300)));
    }
}
