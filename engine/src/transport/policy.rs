//! Which path the guest uses, as a state machine without I/O: session news and probe answers
//! go in with the time, decisions come out (`poll_action`, `poll_timeout`).
//!
//! In `auto`: UDP first. When no session comes up over UDP within `UDP_GIVE_UP`, TCP. While on
//! TCP, a UDP probe every `PROBE_EVERY`; when one is answered, back to UDP. When TCP gets no
//! session within `TCP_GIVE_UP` either (the helper is down, or its port is closed), UDP again,
//! and so on: whichever answers first wins. Switching a path is a new handshake on it; the
//! session rules do not change. `udp` and `tcp` never switch.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dockroute_api::{Transport, TransportMode};

/// UDP handshakes unanswered this long: try TCP.
pub const UDP_GIVE_UP: Duration = Duration::from_secs(3);
/// TCP handshakes unanswered this long: try UDP again.
pub const TCP_GIVE_UP: Duration = Duration::from_secs(6);
/// While on TCP, how often UDP is probed.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How long a probe waits for its answer.
pub const PROBE_WAIT: Duration = Duration::from_secs(1);

/// What the driver must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Move to this path and handshake on it.
    UsePath(Transport),
    /// Send a UDP probe and report an answer with `handle_probe_answered`.
    ProbeUdp,
}

#[derive(Debug, Clone)]
pub struct PathPolicy {
    mode: TransportMode,
    path: Transport,
    /// Since when the current path has been trying without a live session; None while one is up.
    trying_since: Option<Instant>,
    /// While on TCP in `auto`: when the next UDP probe is due.
    next_probe: Option<Instant>,
    actions: VecDeque<Action>,
}

impl PathPolicy {
    /// A guest starting now: it handshakes on `path()` at once.
    pub fn new(mode: TransportMode, now: Instant) -> PathPolicy {
        let path = if mode == TransportMode::Tcp { Transport::Tcp } else { Transport::Udp };
        PathPolicy { mode, path, trying_since: Some(now), next_probe: None, actions: VecDeque::new() }
    }

    /// The path in use (or being tried).
    pub fn path(&self) -> Transport {
        self.path
    }

    /// A session came up on the current path.
    pub fn handle_session_up(&mut self, _now: Instant) {
        self.trying_since = None;
    }

    /// The session was lost (peer silent, or the host forgot it): the guest handshakes again on
    /// the current path, which gets its time from now.
    pub fn handle_session_lost(&mut self, now: Instant) {
        self.trying_since.get_or_insert(now);
    }

    /// A UDP probe was answered: UDP works again.
    pub fn handle_probe_answered(&mut self, now: Instant) {
        if self.mode == TransportMode::Auto && self.path == Transport::Tcp {
            self.switch(Transport::Udp, now);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.mode != TransportMode::Auto {
            return;
        }
        if let Some(since) = self.trying_since {
            if now >= since + self.give_up() {
                let other = match self.path {
                    Transport::Udp => Transport::Tcp,
                    Transport::Tcp => Transport::Udp,
                };
                self.switch(other, now);
                return;
            }
        }
        if let Some(due) = self.next_probe.filter(|d| now >= *d) {
            self.actions.push_back(Action::ProbeUdp);
            // From the due time, not from `now`: a late wakeup does not stretch the rhythm.
            self.next_probe = Some((due + PROBE_EVERY).max(now));
        }
    }

    fn give_up(&self) -> Duration {
        match self.path {
            Transport::Udp => UDP_GIVE_UP,
            Transport::Tcp => TCP_GIVE_UP,
        }
    }

    fn switch(&mut self, to: Transport, now: Instant) {
        self.path = to;
        self.trying_since = Some(now);
        self.next_probe = (to == Transport::Tcp).then(|| now + PROBE_EVERY);
        self.actions.push_back(Action::UsePath(to));
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When `handle_timeout` must run next; None when nothing can change without news.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.mode != TransportMode::Auto {
            return None;
        }
        let give_up = self.trying_since.map(|s| s + self.give_up());
        match (give_up, self.next_probe) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// Runs the policy's timers from `from` to `to` in 100 ms steps, collecting actions with
    /// their time (ms after `t0`).
    fn run(p: &mut PathPolicy, t0: Instant, from: u64, to: u64) -> Vec<(u64, Action)> {
        let mut out = Vec::new();
        let mut t = from;
        while t <= to {
            let now = t0 + MS(t);
            if p.poll_timeout().is_some_and(|d| d <= now) {
                p.handle_timeout(now);
            }
            while let Some(a) = p.poll_action() {
                out.push((t, a));
            }
            t += 100;
        }
        out
    }

    #[test]
    fn auto_starts_on_udp_and_keeps_it_while_it_answers() {
        let t0 = Instant::now();
        let mut p = PathPolicy::new(TransportMode::Auto, t0);
        assert_eq!(p.path(), Transport::Udp);
        p.handle_session_up(t0 + MS(5));
        assert_eq!(p.poll_timeout(), None, "nothing to wait for while the session lives");
        assert_eq!(run(&mut p, t0, 0, 60_000), []);
    }

    #[test]
    fn unanswered_udp_moves_to_tcp_after_three_seconds_and_probes_udp_every_five() {
        let t0 = Instant::now();
        let mut p = PathPolicy::new(TransportMode::Auto, t0);
        assert_eq!(run(&mut p, t0, 0, 2900), []);
        assert_eq!(run(&mut p, t0, 3000, 3000), [(3000, Action::UsePath(Transport::Tcp))]);
        p.handle_session_up(t0 + MS(3050));
        let probes = run(&mut p, t0, 3100, 18_000);
        assert_eq!(probes, [(8000, Action::ProbeUdp), (13_000, Action::ProbeUdp), (18_000, Action::ProbeUdp)]);
        assert_eq!(p.path(), Transport::Tcp, "an unanswered probe changes nothing");
        p.handle_probe_answered(t0 + MS(18_200));
        assert_eq!(p.poll_action(), Some(Action::UsePath(Transport::Udp)));
        assert_eq!(p.path(), Transport::Udp);
        p.handle_session_up(t0 + MS(18_210));
        assert_eq!(run(&mut p, t0, 18_300, 60_000), [], "back on UDP: no more probes");
    }

    #[test]
    fn a_session_lost_on_udp_gets_three_seconds_before_tcp() {
        let t0 = Instant::now();
        let mut p = PathPolicy::new(TransportMode::Auto, t0);
        p.handle_session_up(t0);
        p.handle_session_lost(t0 + MS(10_000));
        p.handle_session_lost(t0 + MS(11_000)); // another loss while trying keeps the first time
        assert_eq!(run(&mut p, t0, 10_000, 12_900), []);
        assert_eq!(run(&mut p, t0, 13_000, 13_000), [(13_000, Action::UsePath(Transport::Tcp))]);
    }

    #[test]
    fn when_neither_answers_the_paths_alternate() {
        let t0 = Instant::now();
        let mut p = PathPolicy::new(TransportMode::Auto, t0);
        let got = run(&mut p, t0, 0, 20_000);
        assert_eq!(
            got,
            [
                (3000, Action::UsePath(Transport::Tcp)),
                (8000, Action::ProbeUdp),
                (9000, Action::UsePath(Transport::Udp)),
                (12_000, Action::UsePath(Transport::Tcp)),
                (17_000, Action::ProbeUdp),
                (18_000, Action::UsePath(Transport::Udp)),
            ]
        );
    }

    #[test]
    fn a_probe_answer_on_udp_changes_nothing() {
        let t0 = Instant::now();
        let mut p = PathPolicy::new(TransportMode::Auto, t0);
        p.handle_probe_answered(t0);
        assert_eq!(p.poll_action(), None);
        assert_eq!(p.path(), Transport::Udp);
    }

    #[test]
    fn forced_modes_never_switch_or_probe() {
        let t0 = Instant::now();
        for (mode, path) in [(TransportMode::Udp, Transport::Udp), (TransportMode::Tcp, Transport::Tcp)] {
            let mut p = PathPolicy::new(mode, t0);
            assert_eq!(p.path(), path);
            assert_eq!(p.poll_timeout(), None);
            p.handle_timeout(t0 + Duration::from_secs(3600));
            p.handle_probe_answered(t0 + Duration::from_secs(3600));
            assert_eq!(p.poll_action(), None, "{mode}");
            assert_eq!(p.path(), path);
        }
    }
}
