//! Handshakes per source address per second. WireGuard's cookie reply (the library's rate
//! limiter) makes a flooder prove its address first; this then bounds what one proven address
//! can make us compute (each initiation costs Diffie-Hellman operations), so one teammate's
//! address cannot crowd out the others.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Initiations one address may have answered per second (a client sends one per 5 s normally,
/// a few more when it roams or restarts).
pub const PER_SOURCE_PER_SEC: u32 = 8;
/// Addresses tracked at once; beyond this, ones idle for a second are forgotten first, and a
/// new address waits when all are busy.
const MAX_SOURCES: usize = 1024;

#[derive(Debug, Default)]
pub struct HandshakeBudget {
    sources: HashMap<IpAddr, (Instant, u32)>,
}

impl HandshakeBudget {
    /// Whether one more initiation from `from` may be processed now (and counts it if so).
    pub fn allow(&mut self, now: Instant, from: IpAddr) -> bool {
        let expired = |start: Instant| now.saturating_duration_since(start) >= Duration::from_secs(1);
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&from) {
            self.sources.retain(|_, (start, _)| !expired(*start));
            if self.sources.len() >= MAX_SOURCES {
                return false;
            }
        }
        let (start, count) = self.sources.entry(from).or_insert((now, 0));
        if expired(*start) {
            (*start, *count) = (now, 0);
        }
        if *count >= PER_SOURCE_PER_SEC {
            return false;
        }
        *count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_gets_its_budget_per_second_independently() {
        let (mut b, t0) = (HandshakeBudget::default(), Instant::now());
        let (a, c): (IpAddr, IpAddr) = ("198.18.9.1".parse().unwrap(), "198.18.9.2".parse().unwrap());
        let allowed = (0..20).filter(|_| b.allow(t0, a)).count();
        assert_eq!(allowed, PER_SOURCE_PER_SEC as usize);
        assert!(b.allow(t0, c), "another address is not affected");
        assert!(!b.allow(t0 + Duration::from_millis(999), a));
        assert!(b.allow(t0 + Duration::from_secs(1), a), "a new second, a new budget");
    }

    #[test]
    fn a_flood_of_new_addresses_is_bounded_and_idle_ones_make_room() {
        let (mut b, t0) = (HandshakeBudget::default(), Instant::now());
        for i in 0..MAX_SOURCES as u32 {
            assert!(b.allow(t0, IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i))));
        }
        let newcomer: IpAddr = "198.18.9.9".parse().unwrap();
        assert!(!b.allow(t0, newcomer), "table full of busy addresses");
        assert!(b.allow(t0 + Duration::from_secs(1), newcomer), "the idle ones were forgotten");
        assert!(b.sources.len() <= MAX_SOURCES);
    }
}
