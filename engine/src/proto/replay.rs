//! Sliding anti-replay window over 64-bit frame counters (the scheme of RFC 6479), and the
//! guard a session receives through: a counter may not jump arbitrarily far ahead, and a jump
//! nobody can vouch for never takes the window away from the peer's own counters.
//!
//! Data frames carry no per-packet MAC, so whoever can send from the peer's address with the
//! session id can pick any counter. One such frame with counter `u64::MAX` used to move the
//! window there for good: every later real frame was "too old". `CounterGuard` keeps the
//! peer's track (`main`) and puts a jump further than the window into a second track
//! (`probe`): a real peer that lost many frames in a row continues there at once; a forged
//! jump sits there harmlessly while the real peer keeps refreshing `main`. The probe replaces
//! `main` only once `main` has been quiet for longer than a live peer ever is (`quiet`, two
//! keepalive intervals); a counter more than `MAX_AHEAD` ahead of the newest one either track
//! holds is refused outright.

use std::time::{Duration, Instant};

const WORDS: usize = 32;
const BITS: u64 = (WORDS * 64) as u64;
/// Counters a window spans: one word of slack keeps every accepted counter's word in the bitmap.
const SPAN: u64 = BITS - 64;
/// How far ahead of the peer's newest counter one frame may start a new track: about a second
/// of frames at the fastest rates measured here, so only a real outage exceeds it.
pub const MAX_AHEAD: u64 = 1 << 20;

/// Accepts each counter at most once, and nothing older than the window behind the newest.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    /// Highest counter accepted so far.
    top: Option<u64>,
    bitmap: [u64; WORDS],
}

impl ReplayWindow {
    /// A window whose newest counter is `top` and that has seen nothing yet.
    fn starting_at(top: u64) -> ReplayWindow {
        ReplayWindow { top: Some(top), bitmap: [0; WORDS] }
    }

    /// Whether `counter` falls inside this window or at most one span ahead of it (where
    /// `accept` slides the window without forgetting counters still inside it).
    fn near(&self, counter: u64) -> bool {
        self.top.is_none_or(|top| top.saturating_sub(counter) < SPAN && counter.saturating_sub(top) <= SPAN)
    }

    /// Returns true and records `counter` if it was not seen and is inside the window.
    pub fn accept(&mut self, counter: u64) -> bool {
        match self.top {
            None => {
                self.bitmap = [0; WORDS];
                self.top = Some(counter);
            }
            Some(top) if counter > top => {
                // Clear the words the window slides over; they belonged to old counters.
                let (old_word, new_word) = (top / 64, counter / 64);
                for i in 1..=(new_word - old_word).min(WORDS as u64) {
                    self.bitmap[((old_word + i) % WORDS as u64) as usize] = 0;
                }
                self.top = Some(counter);
            }
            Some(top) => {
                // One word of slack keeps every accepted counter's word inside the bitmap.
                if top - counter >= SPAN {
                    return false;
                }
            }
        }
        let word = ((counter / 64) % WORDS as u64) as usize;
        let bit = 1u64 << (counter % 64);
        if self.bitmap[word] & bit != 0 {
            return false;
        }
        self.bitmap[word] |= bit;
        true
    }
}

/// Why `CounterGuard` refused a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Seen before, or behind the window: a replay (or a duplicate the network made).
    Replay,
    /// More than `MAX_AHEAD` ahead of the peer's counters.
    TooFarAhead,
}

#[derive(Debug, Clone)]
struct Track {
    window: ReplayWindow,
    /// When this track last accepted a counter.
    last: Instant,
}

impl Track {
    fn top(&self) -> u64 {
        self.window.top.unwrap_or(0)
    }
}

/// The counters one session accepts from its peer (see the module comment).
#[derive(Debug, Clone)]
pub struct CounterGuard {
    /// The peer's counters. Starts at 0, where every sender starts.
    main: Track,
    /// A jump further than `main`'s window, until it proves to be the peer's.
    probe: Option<Track>,
}

impl CounterGuard {
    pub fn new(now: Instant) -> CounterGuard {
        CounterGuard { main: Track { window: ReplayWindow::starting_at(0), last: now }, probe: None }
    }

    /// Records `counter` if it is new and within reach; `quiet` is how long a live peer is
    /// never silent (its track is given up only after that long without a frame).
    pub fn accept(&mut self, counter: u64, now: Instant, quiet: Duration) -> Result<(), Refused> {
        if self.main.window.near(counter) {
            if !self.main.window.accept(counter) {
                return Err(Refused::Replay);
            }
            self.main.last = now;
            // The peer's counters reached where the probe started: one window again.
            if self.probe.as_ref().is_some_and(|p| self.main.top() + SPAN >= p.top()) {
                self.probe = None;
            }
            return Ok(());
        }
        if let Some(probe) = self.probe.as_mut().filter(|p| p.window.near(counter)) {
            if !probe.window.accept(counter) {
                return Err(Refused::Replay);
            }
            probe.last = now;
        } else if counter > self.main.top() {
            // Bounded from the newest counter either track has, so a peer that keeps
            // going (or jumps again) on the probe is never cut off.
            let newest = self.probe.as_ref().map_or(0, Track::top).max(self.main.top());
            if counter.saturating_sub(newest) > MAX_AHEAD {
                return Err(Refused::TooFarAhead);
            }
            // A new probe replaces an older one: a real jump (or the peer's next one) is
            // followed at once, whatever a forger put there before.
            let mut window = ReplayWindow::starting_at(counter);
            window.accept(counter);
            self.probe = Some(Track { window, last: now });
        } else {
            return Err(Refused::Replay);
        }
        // The peer's old track went quiet while the probe is in use: the peer moved there.
        if now.saturating_duration_since(self.main.last) >= quiet {
            self.main = self.probe.take().expect("a probe was just used");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_is_accepted_once() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(0));
        assert!(!w.accept(0));
        assert!(w.accept(5));
        assert!(w.accept(3), "out of order inside the window is fine");
        assert!(!w.accept(3));
        assert!(!w.accept(5));
    }

    #[test]
    fn counters_too_far_behind_are_rejected() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(10_000));
        assert!(!w.accept(10_000 - BITS));
        assert!(w.accept(10_000 - 100));
    }

    #[test]
    fn a_big_jump_forgets_old_bits() {
        let mut w = ReplayWindow::default();
        for c in 0..200 {
            assert!(w.accept(c));
        }
        assert!(w.accept(1_000_000));
        // Same bitmap slot as counter 64 had, but a different counter: must be accepted.
        assert!(w.accept(1_000_000 - 64 * 3));
        assert!(!w.accept(1_000_000 - 64 * 3));
    }

    proptest::proptest! {
        #[test]
        fn matches_a_naive_model(counters in proptest::collection::vec(0u64..5000, 0..400)) {
            let mut w = ReplayWindow::default();
            let mut seen = std::collections::HashSet::new();
            let mut max: Option<u64> = None;
            for c in counters {
                let too_old = max.is_some_and(|m| m >= c && m - c >= BITS - 64);
                let expect = !too_old && !seen.contains(&c);
                proptest::prop_assert_eq!(w.accept(c), expect, "counter {}", c);
                if expect {
                    seen.insert(c);
                    max = Some(max.map_or(c, |m| m.max(c)));
                }
            }
        }
    }

    const Q: Duration = Duration::from_secs(4);
    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// The guard after the peer sent counters `0..n`, all at `t0`.
    fn guard_after(n: u64, t0: Instant) -> CounterGuard {
        let mut g = CounterGuard::new(t0);
        for c in 0..n {
            assert_eq!(g.accept(c, t0, Q), Ok(()));
        }
        g
    }

    #[test]
    fn a_forged_counter_of_u64_max_is_refused_and_the_peers_next_counter_is_accepted() {
        let t0 = Instant::now();
        let mut g = guard_after(10, t0);
        assert_eq!(g.accept(u64::MAX, t0, Q), Err(Refused::TooFarAhead));
        assert_eq!(g.accept(u64::MAX - 1, t0, Q), Err(Refused::TooFarAhead));
        assert_eq!(g.accept(10 + MAX_AHEAD + 1, t0, Q), Err(Refused::TooFarAhead), "the bound is exact");
        for c in 10..3000 {
            assert_eq!(g.accept(c, t0 + MS(c), Q), Ok(()), "counter {c}");
        }
    }

    #[test]
    fn a_forged_jump_within_the_bound_never_stalls_an_active_peer() {
        let t0 = Instant::now();
        let mut g = guard_after(100, t0);
        // A forger (with the peer's address and the session id) jumps, then keeps its track
        // alive with a frame every second for a minute.
        let forged = 99 + MAX_AHEAD;
        assert_eq!(g.accept(forged, t0, Q), Ok(()), "no MAC: a jump within reach cannot be told from a real one");
        let mut next_real = 100;
        for s in 1..=60u64 {
            assert_eq!(g.accept(forged + s, t0 + Duration::from_secs(s), Q), Ok(()));
            // The real peer, idle: one keepalive every 2 s is enough to keep its track.
            if s % 2 == 0 {
                let at = t0 + Duration::from_secs(s) + MS(500);
                assert_eq!(g.accept(next_real, at, Q), Ok(()), "real counter {next_real} at {s} s");
                next_real += 1;
            }
        }
        // Replays on the peer's track are still caught.
        assert_eq!(g.accept(next_real - 1, t0 + Duration::from_secs(61), Q), Err(Refused::Replay));
    }

    #[test]
    fn forged_jumps_repeated_back_to_back_cannot_push_the_peers_track_away() {
        let t0 = Instant::now();
        let mut g = guard_after(50, t0);
        // Ten jumps, each one bound further: every one is a new probe, none touches `main`.
        let mut forged = 49;
        for _ in 0..10 {
            forged += MAX_AHEAD;
            assert_eq!(g.accept(forged, t0, Q), Ok(()));
        }
        assert_eq!(g.accept(50, t0 + MS(10), Q), Ok(()));
        assert_eq!(g.accept(51, t0 + MS(20), Q), Ok(()));
    }

    #[test]
    fn a_real_loss_burst_longer_than_the_window_is_followed_at_once_and_becomes_the_track() {
        let t0 = Instant::now();
        let mut g = guard_after(100, t0);
        // 100 000 frames lost in a row: the next ones start a probe and are all accepted.
        for c in 100_100..100_200 {
            assert_eq!(g.accept(c, t0 + MS(c - 100_000), Q), Ok(()), "counter {c}");
        }
        // Two keepalive intervals without anything on the old track: the probe is the track.
        let later = t0 + Q + MS(1);
        assert_eq!(g.accept(100_200, later, Q), Ok(()));
        assert!(g.probe.is_none(), "promoted");
        assert_eq!(g.main.top(), 100_200);
        assert_eq!(g.accept(99, later, Q), Err(Refused::Replay), "the old track is gone");
        assert_eq!(g.accept(100_150, later, Q), Err(Refused::Replay), "seen on the probe, remembered");
        // And the peer may keep going far beyond the first bound, a jump at a time.
        assert_eq!(g.accept(100_200 + MAX_AHEAD, later, Q), Ok(()));
    }

    #[test]
    fn the_first_frame_of_a_session_may_not_move_the_window_either() {
        let t0 = Instant::now();
        let mut g = CounterGuard::new(t0);
        // A forger that gets in before the real peer's first frame.
        assert_eq!(g.accept(u64::MAX, t0, Q), Err(Refused::TooFarAhead));
        assert_eq!(g.accept(MAX_AHEAD / 2, t0, Q), Ok(()));
        assert_eq!(g.accept(0, t0, Q), Ok(()), "the real peer starts at 0");
        assert_eq!(g.accept(1, t0, Q), Ok(()));
    }

    #[test]
    fn a_probe_the_peers_counters_catch_up_with_is_merged_away() {
        let t0 = Instant::now();
        let mut g = guard_after(10, t0);
        assert_eq!(g.accept(5000, t0, Q), Ok(()));
        assert!(g.probe.is_some());
        for c in 10..3100 {
            assert_eq!(g.accept(c, t0, Q), Ok(()));
        }
        assert!(g.probe.is_none(), "one window again once the tracks meet");
        assert_eq!(g.accept(5000, t0, Q), Ok(()), "main never saw 5000: accepted once more, then never");
        assert_eq!(g.accept(5000, t0, Q), Err(Refused::Replay));
    }

    proptest::proptest! {
        /// Whatever a forger sends in between, every counter of the peer's that the forger
        /// did not take first is accepted, as long as the peer is never silent for `quiet`.
        #[test]
        fn no_forged_counters_stall_a_live_peer(forged in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..200)) {
            let t0 = Instant::now();
            let mut g = CounterGuard::new(t0);
            let mut taken = std::collections::HashSet::new();
            for (i, f) in forged.iter().enumerate() {
                let now = t0 + MS(i as u64 * 100);
                if g.accept(*f, now, Q).is_ok() {
                    taken.insert(*f);
                }
                let real = i as u64;
                let ok = g.accept(real, now, Q).is_ok();
                proptest::prop_assert!(ok || taken.contains(&real), "real {} refused after forged {:?}", real, &forged[..=i]);
            }
        }
    }
}
