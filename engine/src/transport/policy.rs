//! Which path the guest uses, as a state machine without I/O: session news and probe answers
//! go in with the time, decisions come out (`poll_action`, `poll_timeout`).
//!
//! In `auto`: UDP first. When no session comes up over UDP within `UDP_GIVE_UP`, TCP. While a
//! UDP session is up, a UDP probe every `CHECK_EVERY`; when none has been answered for
//! `UDP_SILENT`, TCP. While on TCP, a UDP probe every `PROBE_EVERY`; when one is answered, back
//! to UDP. When TCP gets no session within `TCP_GIVE_UP` either (the helper is down, or its
//! port is closed), UDP again, and so on: whichever answers first wins. Switching a path is a
//! new handshake on it; the session rules do not change. `udp` and `tcp` never switch.
//!
//! Why probes on a live UDP session and not the session's own silence: the session declares
//! its peer dead only after three keepalive intervals (6 s by default), and when only the
//! guest's direction breaks, the guest keeps hearing the host's keepalives until the *host*
//! gives up: that plus the give-up was the 9–10 s users waited. A probe is a question the host
//! must answer over the same UDP path in both directions (Hello → Challenge: one keyed hash on
//! the host, no state), so its silence is news within `UDP_SILENT` whichever direction broke.
//! A TCP side channel from the host would cover only the host's view, and would need a second
//! standing connection per guest; trying both paths at once would double every handshake.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dockroute_api::{Transport, TransportMode};

/// UDP handshakes unanswered this long: try TCP. A working helper answers within a round trip
/// (well under a millisecond here, a few through a VM), so this is mostly the time a loaded
/// machine may take, and what a user waits when UDP is broken from the start.
pub const UDP_GIVE_UP: Duration = Duration::from_millis(700);
/// While a UDP session is up, how often UDP is probed.
pub const CHECK_EVERY: Duration = Duration::from_millis(500);
/// While a UDP session is up but idle, how often its traffic is counted (no probe goes out).
/// Each check wakes the guest (measured: one a second cost an idle guest ~0.035 % of a core, more
/// than all else it does), so rarely; a break met by new traffic is left within
/// `IDLE_CHECK_EVERY + UDP_SILENT` (3.6 s; 2.1 s on a session already carrying data).
pub const IDLE_CHECK_EVERY: Duration = Duration::from_millis(2000);
/// No probe answered on a live UDP session for this long: UDP is broken, TCP. Three probes in a
/// row must go unanswered, so one lost datagram moves nothing.
pub const UDP_SILENT: Duration = Duration::from_millis(1600);
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
    /// On a live UDP session: report the session's data packet count (sent + received) with
    /// `handle_traffic`, which decides whether this check sends a probe.
    CountTraffic,
}

#[derive(Debug, Clone)]
pub struct PathPolicy {
    mode: TransportMode,
    path: Transport,
    /// Since when the current path has been trying without a live session; None while one is up.
    trying_since: Option<Instant>,
    /// In `auto`, on TCP or on a live UDP session: when the next UDP probe is due.
    next_probe: Option<Instant>,
    /// A UDP session is up (in `auto`): its path is checked.
    udp_live: bool,
    /// On a live UDP session: since when a probe has gone unanswered (the first of a run); an
    /// answer clears it, and only an answer does.
    unanswered_since: Option<Instant>,
    /// The data packet count at the last check of a live UDP session: unchanged means idle.
    traffic_seen: Option<u64>,
    /// On a live UDP session: the last check found no new packets and no probe outstanding;
    /// checked every `IDLE_CHECK_EVERY`, not probed.
    udp_idle: bool,
    actions: VecDeque<Action>,
}

impl PathPolicy {
    /// A guest starting now: it handshakes on `path()` at once.
    pub fn new(mode: TransportMode, now: Instant) -> PathPolicy {
        let path = if mode == TransportMode::Tcp { Transport::Tcp } else { Transport::Udp };
        PathPolicy {
            mode,
            path,
            trying_since: Some(now),
            next_probe: None,
            udp_live: false,
            unanswered_since: None,
            traffic_seen: None,
            udp_idle: false,
            actions: VecDeque::new(),
        }
    }

    /// The path in use (or being tried).
    pub fn path(&self) -> Transport {
        self.path
    }

    /// A session came up on the current path.
    pub fn handle_session_up(&mut self, now: Instant) {
        self.trying_since = None;
        if self.mode == TransportMode::Auto && self.path == Transport::Udp {
            self.udp_live = true;
            self.unanswered_since = None;
            self.traffic_seen = None;
            self.udp_idle = false;
            self.next_probe = Some(now + CHECK_EVERY);
        }
    }

    /// The session was lost (peer silent, or the host forgot it): the guest handshakes again on
    /// the current path, which gets its time from now.
    pub fn handle_session_lost(&mut self, now: Instant) {
        self.trying_since.get_or_insert(now);
        if self.path == Transport::Udp {
            // The handshakes' own give-up decides now.
            self.udp_live = false;
            self.unanswered_since = None;
            self.next_probe = None;
        }
    }

    /// A UDP probe was answered: UDP works (again).
    pub fn handle_probe_answered(&mut self, now: Instant) {
        if self.mode != TransportMode::Auto {
            return;
        }
        match self.path {
            Transport::Tcp => self.switch(Transport::Udp, now),
            Transport::Udp => self.unanswered_since = None,
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
        if self.unanswered_since.is_some_and(|since| now >= since + UDP_SILENT) {
            self.switch(Transport::Tcp, now);
            return;
        }
        if let Some(due) = self.next_probe.filter(|d| now >= *d) {
            let (action, every) = match self.path {
                Transport::Udp if self.udp_idle => (Action::CountTraffic, IDLE_CHECK_EVERY),
                Transport::Udp => (Action::CountTraffic, CHECK_EVERY),
                Transport::Tcp => (Action::ProbeUdp, PROBE_EVERY),
            };
            self.actions.push_back(action);
            // From the due time, not from `now`: a late wakeup does not stretch the rhythm.
            self.next_probe = Some((due + every).max(now));
        }
    }

    /// The live UDP session's data packet count, as `CountTraffic` asked. A probe goes out when
    /// packets moved since the last check (the first check of a session always probes), or while
    /// an earlier probe is unanswered; otherwise the session is idle: counted every
    /// `IDLE_CHECK_EVERY`, never probed (the guest's idle CPU), since nobody waits on it. UDP is
    /// left `UDP_SILENT` after the first unanswered probe, whatever the traffic does meanwhile,
    /// so a break met by new traffic is left within `IDLE_CHECK_EVERY + UDP_SILENT`. A path broken
    /// only towards the guest while the Mac calls moves no guest counter: that case is left to
    /// the session's dead-peer time.
    pub fn handle_traffic(&mut self, packets: u64, now: Instant) {
        if self.mode != TransportMode::Auto || self.path != Transport::Udp || !self.udp_live {
            return;
        }
        let moved = self.traffic_seen.replace(packets) != Some(packets);
        if moved || self.unanswered_since.is_some() {
            if self.udp_idle {
                self.udp_idle = false;
                self.next_probe = Some(now + CHECK_EVERY);
            }
            self.unanswered_since.get_or_insert(now);
            self.actions.push_back(Action::ProbeUdp);
        } else {
            self.udp_idle = true;
            self.next_probe = Some(now + IDLE_CHECK_EVERY);
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
        self.udp_live = false;
        self.unanswered_since = None;
        self.udp_idle = false;
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
        let silent = self.unanswered_since.map(|since| since + UDP_SILENT);
        [give_up, self.next_probe, silent].into_iter().flatten().min()
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

    /// Like `run`, answering each probe (after 10 ms) while `answer(t)` says UDP works; the
    /// session carries data all along.
    fn run_answering(
        p: &mut PathPolicy,
        t0: Instant,
        from: u64,
        to: u64,
        answer: impl Fn(u64) -> bool,
    ) -> Vec<(u64, Action)> {
        run_checking(p, t0, from, to, answer, |_| true)
    }

    /// Like `run_answering`; `busy(t)` says whether data moved in the check at `t` (each
    /// `CountTraffic` is answered at once and not listed).
    fn run_checking(
        p: &mut PathPolicy,
        t0: Instant,
        from: u64,
        to: u64,
        answer: impl Fn(u64) -> bool,
        busy: impl Fn(u64) -> bool,
    ) -> Vec<(u64, Action)> {
        let mut out = Vec::new();
        let mut packets = 0;
        let mut t = from;
        while t <= to {
            let mut pending: VecDeque<(u64, Action)> = run(p, t0, t, t).into();
            while let Some((at, a)) = pending.pop_front() {
                match a {
                    Action::CountTraffic => {
                        packets += u64::from(busy(at));
                        p.handle_traffic(packets, t0 + MS(at));
                        pending.extend(std::iter::from_fn(|| p.poll_action()).map(|a| (at, a)));
                    }
                    Action::ProbeUdp if answer(at) => {
                        p.handle_probe_answered(t0 + MS(at + 10));
                        out.push((at, a));
                        out.extend(std::iter::from_fn(|| p.poll_action()).map(|a| (at + 10, a)));
                    }
                    a => out.push((at, a)),
                }
            }
            t += 100;
        }
        out
    }

    #[test]
    fn an_idle_udp_session_sends_no_probes_and_the_first_traffic_is_checked_within_half_a_second() {
        let t0 = Instant::now();
        let mut p = PathPolicy::new(TransportMode::Auto, t0);
        p.handle_session_up(t0);
        // Idle for a minute: the first check has no count to compare with and probes; then not
        // one probe, and no move.
        let idle = run_checking(&mut p, t0, 0, 60_000, |_| true, |_| false);
        assert_eq!(idle, [(500, Action::ProbeUdp)], "an idle session is not probed");
        assert_eq!(p.path(), Transport::Udp);
        // Traffic from 60 s on, UDP broken since 59 s: the next check (idle: once a second) sees
        // it and probes; on TCP 1600 ms after that check.
        let got = run_checking(&mut p, t0, 60_100, 64_000, |t| t < 59_000, |t| t >= 60_000);
        let probes = got.iter().filter(|(_, a)| *a == Action::ProbeUdp).count();
        let moved: Vec<_> = got.iter().filter(|(_, a)| *a != Action::ProbeUdp).collect();
        assert!(probes >= 2, "{got:?}");
        assert_eq!(moved, [&(62_600, Action::UsePath(Transport::Tcp))], "{got:?}");
    }

    /// Found in review: an idle check used to count as an answer, so traffic moving in every
    /// other check (TCP SYN retries, a DNS retry a second) kept a broken UDP path forever.
    #[test]
    fn sparse_traffic_on_a_broken_udp_path_still_moves_to_tcp_within_1600_ms_of_the_first_lost_probe() {
        let t0 = Instant::now();
        let mut p = PathPolicy::new(TransportMode::Auto, t0);
        p.handle_session_up(t0);
        let got = run_checking(&mut p, t0, 0, 3000, |_| false, |t| (t / 500) % 2 == 1);
        let moved: Vec<_> = got.iter().filter(|(_, a)| *a != Action::ProbeUdp).collect();
        assert_eq!(moved, [&(2100, Action::UsePath(Transport::Tcp))], "{got:?}");
    }

    #[test]
    fn idle_then_busy_with_udp_working_stays_on_udp() {
        let t0 = Instant::now();
        let mut p = PathPolicy::new(TransportMode::Auto, t0);
        p.handle_session_up(t0);
        // Busy and idle in turns of 3 s, every probe answered.
        let got = run_checking(&mut p, t0, 0, 30_000, |_| true, |t| (t / 3000) % 2 == 0);
        assert!(got.iter().all(|(_, a)| *a == Action::ProbeUdp), "{got:?}");
        assert!(!got.is_empty());
        assert_eq!(p.path(), Transport::Udp);
    }

    #[test]
    fn auto_starts_on_udp_and_keeps_it_while_its_probes_are_answered() {
        let t0 = Instant::now();
        let mut p = PathPolicy::new(TransportMode::Auto, t0);
        assert_eq!(p.path(), Transport::Udp);
        p.handle_session_up(t0);
        let got = run_answering(&mut p, t0, 0, 60_000, |_| true);
        assert!(got.iter().all(|(_, a)| *a == Action::ProbeUdp), "{got:?}");
        assert_eq!(got.len(), 120, "a probe every 500 ms: {got:?}");
        assert_eq!(p.path(), Transport::Udp);
    }

    #[test]
    fn unanswered_probes_on_a_live_udp_session_move_to_tcp_within_1600_ms() {
        let t0 = Instant::now();
        let mut p = PathPolicy::new(TransportMode::Auto, t0);
        p.handle_session_up(t0);
        // UDP breaks at 10 s (in either direction: the probe or its answer is lost).
        let got = run_answering(&mut p, t0, 0, 12_000, |t| t < 10_000);
        let moved: Vec<_> = got.iter().filter(|(_, a)| *a != Action::ProbeUdp).collect();
        // The probe of 10_000 is the first unanswered: 10_000 + 1600.
        assert_eq!(moved, [&(11_600, Action::UsePath(Transport::Tcp))]);
        assert_eq!(p.path(), Transport::Tcp);
    }

    #[test]
    fn one_or_two_lost_probes_move_nothing() {
        let t0 = Instant::now();
        let mut p = PathPolicy::new(TransportMode::Auto, t0);
        p.handle_session_up(t0);
        // Every third probe answered: never 1600 ms without an answer.
        let got = run_answering(&mut p, t0, 0, 30_000, |t| t % 1500 == 0);
        assert!(got.iter().all(|(_, a)| *a == Action::ProbeUdp), "{got:?}");
        assert_eq!(p.path(), Transport::Udp);
    }

    #[test]
    fn unanswered_udp_at_start_moves_to_tcp_after_700_ms_and_probes_udp_every_five_seconds() {
        let t0 = Instant::now();
        let mut p = PathPolicy::new(TransportMode::Auto, t0);
        assert_eq!(run(&mut p, t0, 0, 600), []);
        assert_eq!(run(&mut p, t0, 700, 700), [(700, Action::UsePath(Transport::Tcp))]);
        p.handle_session_up(t0 + MS(750));
        let probes = run(&mut p, t0, 800, 15_700);
        assert_eq!(probes, [(5700, Action::ProbeUdp), (10_700, Action::ProbeUdp), (15_700, Action::ProbeUdp)]);
        assert_eq!(p.path(), Transport::Tcp, "an unanswered probe changes nothing");
        p.handle_probe_answered(t0 + MS(15_710));
        assert_eq!(p.poll_action(), Some(Action::UsePath(Transport::Udp)));
        assert_eq!(p.path(), Transport::Udp);
        p.handle_session_up(t0 + MS(15_720));
        let after = run_answering(&mut p, t0, 15_800, 60_000, |_| true);
        assert!(after.iter().all(|(_, a)| *a == Action::ProbeUdp), "back on UDP, only checks: {after:?}");
    }

    #[test]
    fn a_session_lost_on_udp_gets_700_ms_before_tcp() {
        let t0 = Instant::now();
        let mut p = PathPolicy::new(TransportMode::Auto, t0);
        p.handle_session_up(t0);
        p.handle_session_lost(t0 + MS(10_000));
        p.handle_session_lost(t0 + MS(10_300)); // another loss while trying keeps the first time
        assert_eq!(run(&mut p, t0, 10_000, 10_600), []);
        assert_eq!(run(&mut p, t0, 10_700, 10_700), [(10_700, Action::UsePath(Transport::Tcp))]);
    }

    #[test]
    fn when_neither_answers_the_paths_alternate() {
        let t0 = Instant::now();
        let mut p = PathPolicy::new(TransportMode::Auto, t0);
        let got = run(&mut p, t0, 0, 15_000);
        assert_eq!(
            got,
            [
                (700, Action::UsePath(Transport::Tcp)),
                (5700, Action::ProbeUdp),
                (6700, Action::UsePath(Transport::Udp)),
                (7400, Action::UsePath(Transport::Tcp)),
                (12_400, Action::ProbeUdp),
                (13_400, Action::UsePath(Transport::Udp)),
                (14_100, Action::UsePath(Transport::Tcp)),
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
