//! What the HTTPS front lets anyone spend (pure). The front listens where anything that
//! reaches the link address can connect, so: at most `per_source` connections per source
//! (an IPv4 address, an IPv6 /64: `transport::admission::source_of`) and `total` in all, and
//! new leaves for names that no container has are made at a bounded rate (each costs a key
//! and a signature; a flood of made-up names must not turn into a flood of signing).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use dockroute_engine::transport::admission::source_of;

#[derive(Debug)]
pub struct Connections {
    per_source: usize,
    total: usize,
    held: HashMap<IpAddr, usize>,
    in_all: usize,
}

impl Connections {
    pub fn new(per_source: usize, total: usize) -> Connections {
        Connections { per_source, total, held: HashMap::new(), in_all: 0 }
    }

    /// Whether a connection from `peer` may be served; if so, `release` it when it ends.
    pub fn admit(&mut self, peer: IpAddr) -> bool {
        let held = self.held.entry(source_of(peer)).or_default();
        if *held >= self.per_source || self.in_all >= self.total {
            return false;
        }
        *held += 1;
        self.in_all += 1;
        true
    }

    pub fn release(&mut self, peer: IpAddr) {
        let source = source_of(peer);
        if let Some(held) = self.held.get_mut(&source) {
            *held -= 1;
            self.in_all -= 1;
            if *held == 0 {
                self.held.remove(&source);
            }
        }
    }

    pub fn in_all(&self) -> usize {
        self.in_all
    }
}

/// A token bucket: `burst` at once, then one per `every`.
#[derive(Debug)]
pub struct Budget {
    burst: u32,
    every: Duration,
    tokens: u32,
    last: Instant,
}

impl Budget {
    pub fn new(burst: u32, every: Duration, now: Instant) -> Budget {
        Budget { burst, every, tokens: burst, last: now }
    }

    pub fn take(&mut self, now: Instant) -> bool {
        let earned = now.saturating_duration_since(self.last).as_nanos() / self.every.as_nanos().max(1);
        if earned > 0 {
            self.tokens = (self.tokens as u128 + earned).min(self.burst as u128) as u32;
            self.last += self.every * earned.min(u32::MAX as u128) as u32;
            if self.tokens == self.burst {
                self.last = now;
            }
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_from_one_source_is_capped_and_others_still_get_in() {
        let mut c = Connections::new(2, 3);
        let (a, a_too, b, d): (IpAddr, IpAddr, IpAddr, IpAddr) = (
            "198.18.0.5".parse().unwrap(),
            "::ffff:198.18.0.5".parse().unwrap(),
            "198.18.0.6".parse().unwrap(),
            "198.18.0.7".parse().unwrap(),
        );
        assert!(c.admit(a) && c.admit(a_too), "the mapped form is the same source");
        assert!(!c.admit(a), "a third from the same source");
        assert!(c.admit(b));
        assert!(!c.admit(d), "total reached");
        c.release(a);
        assert!(c.admit(d));
        assert_eq!(c.in_all(), 3);
        for p in [a, b, d] {
            c.release(p);
        }
        c.release(d); // a release too many changes nothing
        assert_eq!(c.in_all(), 0);
        let v6: [IpAddr; 2] = ["2001:2::1".parse().unwrap(), "2001:2::ffff".parse().unwrap()];
        assert!(c.admit(v6[0]) && c.admit(v6[1]) && !c.admit("2001:2::9".parse().unwrap()), "one /64, one source");
    }

    #[test]
    fn made_up_names_are_signed_at_a_bounded_rate() {
        let t0 = Instant::now();
        let mut b = Budget::new(3, Duration::from_millis(100), t0);
        assert!((0..3).all(|_| b.take(t0)));
        assert!(!b.take(t0), "burst spent");
        assert!(!b.take(t0 + Duration::from_millis(99)));
        assert!(b.take(t0 + Duration::from_millis(100)));
        assert!(!b.take(t0 + Duration::from_millis(150)));
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| b.take(later)) && !b.take(later), "refills to the burst, no more");
    }
}
