//! When the guest may sleep, as a state machine without I/O. Docker Desktop's Resource Saver
//! stops its VM only when no container runs, and an always-on guest would keep every VM we are
//! installed on awake. So with no other container running for `IDLE_AFTER`, the guest is
//! stopped (the routes stay with the helper), and the first container that starts brings it
//! back at once. Listings and start events go in with the time, decisions come out.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// No other container for this long: the guest stops. Long enough that `docker run --rm` in a
/// loop does not stop and start it every time; short next to Resource Saver's own wait.
pub const IDLE_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleDecision {
    /// Stop the guest container (keep it, and keep the routes).
    StopGuest,
    /// Start it again: a container wants the tunnel.
    StartGuest,
}

#[derive(Debug, Clone)]
pub struct IdlePolicy {
    /// Off for servers (`--keep-guest-running`, the app's preference).
    enabled: bool,
    /// Since when no other container has run; None while one runs or before the first listing.
    empty_since: Option<Instant>,
    /// The guest is stopped on purpose.
    idle: bool,
    decided: VecDeque<IdleDecision>,
}

impl IdlePolicy {
    pub fn new(enabled: bool) -> IdlePolicy {
        IdlePolicy { enabled, empty_since: None, idle: false, decided: VecDeque::new() }
    }

    /// Whether the guest is stopped on purpose (not to be started, not to be repaired).
    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// A listing of the running containers: `others` of them are not our guest.
    pub fn handle_listing(&mut self, now: Instant, others: usize) {
        if others > 0 {
            self.empty_since = None;
            self.wake();
        } else {
            self.empty_since.get_or_insert(now);
        }
    }

    /// Docker said a container (not ours) started: wake at once, before any listing.
    pub fn handle_container_started(&mut self, _now: Instant) {
        self.empty_since = None;
        self.wake();
    }

    /// The preference changed; switched off while idle, the guest comes back.
    pub fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
        if !enabled {
            self.wake();
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(due) = self.poll_timeout() {
            if now >= due {
                self.idle = true;
                self.decided.push_back(IdleDecision::StopGuest);
            }
        }
    }

    /// When the guest would go idle, if nothing starts before.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.enabled, self.idle, self.empty_since) {
            (true, false, Some(since)) => Some(since + IDLE_AFTER),
            _ => None,
        }
    }

    pub fn poll(&mut self) -> Option<IdleDecision> {
        self.decided.pop_front()
    }

    fn wake(&mut self) {
        if self.idle {
            self.idle = false;
            self.decided.push_back(IdleDecision::StartGuest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn decisions(p: &mut IdlePolicy, now: Instant) -> Vec<IdleDecision> {
        p.handle_timeout(now);
        std::iter::from_fn(|| p.poll()).collect()
    }

    #[test]
    fn with_no_other_container_for_ten_seconds_the_guest_stops() {
        let t0 = Instant::now();
        let mut p = IdlePolicy::new(true);
        assert_eq!(p.poll_timeout(), None, "nothing decided before the first listing");
        p.handle_listing(t0, 0);
        p.handle_listing(t0 + S(3), 0); // a later listing does not restart the wait
        assert_eq!(p.poll_timeout(), Some(t0 + S(10)));
        assert_eq!(decisions(&mut p, t0 + S(9)), []);
        assert!(!p.is_idle());
        assert_eq!(decisions(&mut p, t0 + S(10)), [IdleDecision::StopGuest]);
        assert!(p.is_idle());
        assert_eq!(decisions(&mut p, t0 + S(100)), [], "stopped once");
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn a_container_start_wakes_the_guest_at_once() {
        let t0 = Instant::now();
        let mut p = IdlePolicy::new(true);
        p.handle_listing(t0, 0);
        assert_eq!(decisions(&mut p, t0 + S(10)), [IdleDecision::StopGuest]);
        p.handle_container_started(t0 + S(60));
        assert_eq!(p.poll(), Some(IdleDecision::StartGuest));
        assert!(!p.is_idle());
        // Its listing says one runs: nothing more to do, and no idle timer.
        p.handle_listing(t0 + S(60), 1);
        assert_eq!(decisions(&mut p, t0 + S(200)), []);
        // It stops: ten seconds later the guest sleeps again.
        p.handle_listing(t0 + S(300), 0);
        assert_eq!(decisions(&mut p, t0 + S(310)), [IdleDecision::StopGuest]);
        // A listing that finds a container (an event was missed) wakes it too.
        p.handle_listing(t0 + S(400), 2);
        assert_eq!(p.poll(), Some(IdleDecision::StartGuest));
    }

    #[test]
    fn a_container_starting_within_the_wait_keeps_the_guest_running() {
        let t0 = Instant::now();
        let mut p = IdlePolicy::new(true);
        p.handle_listing(t0, 0);
        p.handle_container_started(t0 + S(9));
        assert_eq!(p.poll(), None, "not idle: nothing to start");
        assert_eq!(decisions(&mut p, t0 + S(30)), []);
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn switched_off_the_guest_never_sleeps_and_a_sleeping_one_wakes() {
        let t0 = Instant::now();
        let mut off = IdlePolicy::new(false);
        off.handle_listing(t0, 0);
        assert_eq!(decisions(&mut off, t0 + S(3600)), []);
        assert_eq!(off.poll_timeout(), None);
        let mut p = IdlePolicy::new(true);
        p.handle_listing(t0, 0);
        assert_eq!(decisions(&mut p, t0 + S(10)), [IdleDecision::StopGuest]);
        p.set_enabled(false);
        assert_eq!(p.poll(), Some(IdleDecision::StartGuest));
        assert_eq!(decisions(&mut p, t0 + S(3600)), []);
        p.set_enabled(true);
        assert_eq!(decisions(&mut p, t0 + S(3600)), [IdleDecision::StopGuest], "still nothing runs");
    }
}
