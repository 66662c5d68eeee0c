//! When to repair the tunnel, as a state machine without I/O: statuses from the helper and what
//! the controller did go in with the time, decisions come out (quinn-proto's shape). The
//! controller checks the helper every second, feeds the status in and carries out what `poll`
//! returns.
//!
//! Liveness is the helper's session, not Docker's events: a VM paused by Resource Saver, a
//! dockerd restart or a dead guest send no event we could rely on, but all of them leave the
//! helper without a live session.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dockroute_api::Status;
use dockroute_stdx::Backoff;

/// With no live session for this long (and the guest given this long to start), the guest is
/// recreated.
pub const DEAD_TUNNEL: Duration = Duration::from_secs(8);
/// Longest wait between two repairs that did not bring the tunnel back.
pub const MAX_REPAIR_BACKOFF: Duration = Duration::from_secs(300);

/// What the controller must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The helper has none of our routes (it restarted): sync, which sends them.
    SendRoutes,
    /// The helper's side of the tunnel is down (it could not bring it up): ask it again rather
    /// than blame the guest.
    AskHelperToConnect,
    /// No live session for `dead_for`: remove the guest container and create it again. The
    /// next repair comes `next_after` later at the earliest.
    RecreateGuest { dead_for: Duration, next_after: Duration },
}

#[derive(Debug, Clone)]
pub struct RepairPolicy {
    /// Last moment the helper reported a live session, or the guest or the helper link was
    /// (re)started and deserves time to connect.
    last_alive: Instant,
    /// No repair before this (a crash-looping guest must not be recreated every 8 s).
    not_before: Instant,
    backoff: Backoff,
    /// False after the helper link was made again, until routes were sent over it.
    helper_has_routes: bool,
    /// The latest status said the helper's side is up; None once `poll` has acted on it.
    unchecked: Option<bool>,
    /// The guest is stopped on purpose (no container needs it): no session is expected.
    guest_idle: bool,
    decided: VecDeque<Decision>,
}

impl RepairPolicy {
    /// A controller that just connected: the helper has none of our routes yet, and the guest
    /// gets `DEAD_TUNNEL` to connect.
    pub fn new(now: Instant) -> RepairPolicy {
        RepairPolicy {
            last_alive: now,
            not_before: now,
            backoff: Backoff::new(DEAD_TUNNEL, MAX_REPAIR_BACKOFF),
            helper_has_routes: false,
            unchecked: None,
            guest_idle: false,
            decided: VecDeque::new(),
        }
    }

    /// The guest was stopped on purpose (idle) or started again after it: an idle guest is not
    /// dead, and a woken one gets `DEAD_TUNNEL` to connect like any started one.
    pub fn set_guest_idle(&mut self, now: Instant, idle: bool) {
        self.guest_idle = idle;
        self.last_alive = now;
    }

    /// A status from the helper (the answer to the periodic check, or a pushed event). The
    /// next `poll` decides on the latest one.
    pub fn handle_status(&mut self, now: Instant, status: &Status) {
        if status.session.as_ref().is_some_and(|s| s.alive) {
            self.last_alive = now;
            // The last repair worked: the next failure starts the doubling over.
            self.backoff.reset();
        }
        self.unchecked = Some(status.interface.is_some());
    }

    /// The guest container was created or started: it needs time to connect.
    pub fn guest_started(&mut self, now: Instant) {
        self.last_alive = now;
    }

    /// The helper link was made again (the helper restarted): it knows none of our routes and
    /// the guest needs time to reach it.
    pub fn helper_reconnected(&mut self, now: Instant) {
        self.last_alive = now;
        self.helper_has_routes = false;
    }

    /// The routes were sent over the current helper link.
    pub fn routes_sent(&mut self) {
        self.helper_has_routes = true;
    }

    /// The next thing to do, if any. Decisions are made once per status, in order: routes
    /// first (a restarted helper), then either the helper's side or the guest. Call until None.
    pub fn poll(&mut self, now: Instant) -> Option<Decision> {
        if let Some(helper_side_up) = self.unchecked.take() {
            if !self.helper_has_routes {
                self.decided.push_back(Decision::SendRoutes);
            }
            if !helper_side_up {
                self.decided.push_back(Decision::AskHelperToConnect);
            } else if self.guest_idle {
                // Nothing to repair: no session is expected.
            } else if let Some(repair) = self.repair_due(now) {
                self.decided.push_back(repair);
            }
        }
        self.decided.pop_front()
    }

    fn repair_due(&mut self, now: Instant) -> Option<Decision> {
        let dead_for = now.saturating_duration_since(self.last_alive);
        if dead_for < DEAD_TUNNEL || now < self.not_before {
            return None;
        }
        let next_after = self.backoff.next_delay();
        self.not_before = now + next_after;
        // The new guest gets its time to connect, like any started one.
        self.last_alive = now;
        Some(Decision::RecreateGuest { dead_for, next_after })
    }
}

#[cfg(test)]
mod tests {
    use dockroute_api::{SecretSource, SessionInfo, TunnelRequest};

    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    /// A status with the helper's side up (or not) and a session (alive or not), if any.
    fn status(side_up: bool, session: Option<bool>) -> Status {
        Status {
            helper_version: "test".into(),
            requested: TunnelRequest::Up,
            error: None,
            listen: None,
            interface: side_up.then(|| "dockroute0".into()),
            link: None,
            session: session.map(|alive| SessionInfo {
                fingerprint: "00".repeat(4),
                guest: "198.18.0.2:1".parse().unwrap(),
                alive,
                handshake_age_ms: 0,
                last_seen_ms: 0,
                transport: dockroute_api::Transport::Udp,
            }),
            routes: Vec::new(),
            secret_source: SecretSource::Api,
            dns: None,
            https: None,
            iptables: Vec::new(),
            share: Default::default(),
            transport: dockroute_api::TransportMode::Auto,
        }
    }

    /// All decisions for one status at `at`.
    fn check(p: &mut RepairPolicy, at: Instant, s: &Status) -> Vec<Decision> {
        p.handle_status(at, s);
        std::iter::from_fn(|| p.poll(at)).collect()
    }

    /// A policy whose routes are already with the helper.
    fn synced(t0: Instant) -> RepairPolicy {
        let mut p = RepairPolicy::new(t0);
        p.routes_sent();
        p
    }

    fn repairs(d: &[Decision]) -> Vec<Duration> {
        d.iter()
            .filter_map(|d| match d {
                Decision::RecreateGuest { next_after, .. } => Some(*next_after),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_new_controller_sends_its_routes_and_gives_the_guest_time() {
        let t0 = Instant::now();
        let mut p = RepairPolicy::new(t0);
        let dead = status(true, None);
        assert_eq!(check(&mut p, t0, &dead), [Decision::SendRoutes]);
        assert_eq!(check(&mut p, t0 + S(1), &dead), [Decision::SendRoutes], "again until they are sent");
        p.routes_sent();
        assert_eq!(check(&mut p, t0 + S(7), &dead), []);
        let d = check(&mut p, t0 + S(8), &dead);
        assert_eq!(d, [Decision::RecreateGuest { dead_for: S(8), next_after: S(8) }]);
    }

    #[test]
    fn a_live_session_keeps_the_guest() {
        let t0 = Instant::now();
        let mut p = synced(t0);
        for t in 0..60 {
            assert_eq!(check(&mut p, t0 + S(t), &status(true, Some(true))), [], "second {t}");
        }
        // It died at second 59 (last seen alive): 8 s later, not before.
        let dead = status(true, Some(false));
        assert_eq!(check(&mut p, t0 + S(66), &dead), []);
        assert_eq!(repairs(&check(&mut p, t0 + S(67), &dead)), [S(8)]);
    }

    #[test]
    fn repeated_repairs_back_off_doubling_up_to_five_minutes() {
        let t0 = Instant::now();
        let mut p = synced(t0);
        let dead = status(true, Some(false));
        let mut at = Vec::new();
        for t in 0..=1500 {
            if !repairs(&check(&mut p, t0 + S(t), &dead)).is_empty() {
                at.push(t);
            }
        }
        let gaps: Vec<u64> = at.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(at[0], 8, "the first repair after 8 s without a session");
        assert_eq!(gaps, [8, 16, 32, 64, 128, 256, 300, 300, 300], "repairs at {at:?}");
    }

    #[test]
    fn a_live_session_resets_the_backoff() {
        let t0 = Instant::now();
        let mut p = synced(t0);
        let dead = status(true, Some(false));
        let mut next = Vec::new();
        for t in 0..=100 {
            next.extend(repairs(&check(&mut p, t0 + S(t), &dead)));
        }
        assert_eq!(next, [S(8), S(16), S(32), S(64)]);
        // The last repair (second 64) worked for a moment.
        assert_eq!(check(&mut p, t0 + S(101), &status(true, Some(true))), []);
        let mut later = Vec::new();
        for t in 102..=300 {
            later.extend(repairs(&check(&mut p, t0 + S(t), &dead)));
        }
        assert_eq!(later[..3], [S(8), S(16), S(32)], "the doubling started over");
    }

    #[test]
    fn the_helpers_side_down_asks_the_helper_and_spares_the_guest() {
        let t0 = Instant::now();
        let mut p = synced(t0);
        let side_down = status(false, None);
        for t in [0, 8, 30, 600] {
            assert_eq!(check(&mut p, t0 + S(t), &side_down), [Decision::AskHelperToConnect], "second {t}");
        }
        // Once the helper's side is up, the guest is judged again: it has been dead long.
        assert_eq!(repairs(&check(&mut p, t0 + S(601), &status(true, None))), [S(8)]);
    }

    #[test]
    fn a_reconnected_helper_gets_the_routes_before_anything_else() {
        let t0 = Instant::now();
        let mut p = synced(t0);
        let dead = status(true, Some(false));
        p.helper_reconnected(t0 + S(20));
        assert_eq!(check(&mut p, t0 + S(20), &dead), [Decision::SendRoutes], "and the guest gets time again");
        assert_eq!(check(&mut p, t0 + S(27), &dead), [Decision::SendRoutes], "until they are sent");
        let d = check(&mut p, t0 + S(28), &dead);
        assert_eq!(d[0], Decision::SendRoutes);
        assert_eq!(repairs(&d), [S(8)]);
        p.routes_sent();
        let d = check(&mut p, t0 + S(29), &status(false, None));
        assert_eq!(d, [Decision::AskHelperToConnect]);
        p.helper_reconnected(t0 + S(30));
        assert_eq!(
            check(&mut p, t0 + S(30), &status(false, None)),
            [Decision::SendRoutes, Decision::AskHelperToConnect]
        );
    }

    #[test]
    fn an_idle_guest_is_not_dead_and_a_woken_one_gets_its_time() {
        let t0 = Instant::now();
        let mut p = synced(t0);
        let dead = status(true, Some(false));
        p.set_guest_idle(t0 + S(2), true);
        for t in [2, 10, 100, 3600] {
            assert_eq!(check(&mut p, t0 + S(t), &dead), [], "second {t}: stopped on purpose");
        }
        assert_eq!(check(&mut p, t0 + S(3601), &status(false, None)), [Decision::AskHelperToConnect]);
        p.set_guest_idle(t0 + S(4000), false);
        assert_eq!(check(&mut p, t0 + S(4007), &dead), []);
        assert_eq!(repairs(&check(&mut p, t0 + S(4008), &dead)), [S(8)], "woken but silent: repaired");
    }

    #[test]
    fn a_started_guest_gets_time_to_connect() {
        let t0 = Instant::now();
        let mut p = synced(t0);
        let dead = status(true, Some(false));
        assert_eq!(check(&mut p, t0 + S(5), &dead), []);
        p.guest_started(t0 + S(6)); // e.g. Docker's event said it died and sync started it
        assert_eq!(check(&mut p, t0 + S(13), &dead), []);
        assert_eq!(repairs(&check(&mut p, t0 + S(14), &dead)), [S(8)]);
    }

    #[test]
    fn decisions_come_only_from_a_status_and_once_each() {
        let t0 = Instant::now();
        let mut p = RepairPolicy::new(t0);
        // No status (the helper did not answer): nothing to decide, however long.
        assert_eq!(p.poll(t0 + S(100)), None);
        p.handle_status(t0 + S(100), &status(true, None));
        assert_eq!(p.poll(t0 + S(100)), Some(Decision::SendRoutes));
        assert!(matches!(p.poll(t0 + S(100)), Some(Decision::RecreateGuest { .. })));
        assert_eq!(p.poll(t0 + S(100)), None);
        assert_eq!(p.poll(t0 + S(200)), None, "a decision is not repeated without a new status");
        // Two statuses before a poll (an event, then the check): one round, on the latest.
        p.routes_sent();
        p.handle_status(t0 + S(201), &status(true, None));
        p.handle_status(t0 + S(201), &status(false, None));
        assert_eq!(p.poll(t0 + S(201)), Some(Decision::AskHelperToConnect));
        assert_eq!(p.poll(t0 + S(201)), None);
    }
}
