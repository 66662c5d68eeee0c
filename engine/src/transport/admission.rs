//! Which TCP connections the helper keeps, without I/O. A connection costs a task and two
//! sockets, so there are at most `max`; one that has not carried a verified handshake (the
//! host's Welcome) within `deadline` is closed; an authenticated connection is never closed to
//! make room. Each source (an IPv4 address, an IPv6 /64) holds at most `per_source`: a source
//! at its limit makes room among its own unauthenticated connections (oldest first), and when
//! all places are taken the oldest unauthenticated connection of the source holding the most
//! makes room. So a flood from one source only ever displaces that source's connections, and
//! a guest connecting from elsewhere gets in at once.
//!
//! Docker Desktop's forwarder connects from 127.0.0.1 like any local process does: there the
//! per-source bound cannot tell the guest from a flood, and what holds is that an established
//! session is never dropped for a newcomer.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What to do with a connection that just arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Serve it under this id.
    Accept { id: u64 },
    /// Serve it under `id`, after closing connection `evict`.
    AcceptEvicting { id: u64, evict: u64 },
    /// Close it: every place is held by an authenticated connection.
    Refuse,
}

#[derive(Debug, Clone)]
struct Conn {
    id: u64,
    source: IpAddr,
    since: Instant,
    authenticated: bool,
}

#[derive(Debug, Clone)]
pub struct Admission {
    max: usize,
    per_source: usize,
    deadline: Duration,
    next_id: u64,
    conns: Vec<Conn>,
}

/// What one source is: an IPv4 address (also written IPv4-mapped), or an IPv6 /64, since
/// whoever has one IPv6 address usually has the whole /64.
pub fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !(u128::MAX >> 64)).into()),
        },
        v4 => v4,
    }
}

impl Admission {
    /// At most `max` connections, none bounded per source (see `per_source`).
    pub fn new(max: usize, deadline: Duration) -> Admission {
        let max = max.max(1);
        Admission { max, per_source: max, deadline, next_id: 1, conns: Vec::new() }
    }

    /// At most `n` connections from one source.
    pub fn per_source(mut self, n: usize) -> Admission {
        self.per_source = n.clamp(1, self.max);
        self
    }

    /// A connection from `from` arrived.
    pub fn admit(&mut self, now: Instant, from: IpAddr) -> Admit {
        let source = source_of(from);
        let mut evict = None;
        let mine = self.conns.iter().filter(|c| c.source == source).count();
        if mine >= self.per_source {
            // Oldest first: `conns` is in arrival order.
            let own = self.conns.iter().position(|c| c.source == source && !c.authenticated);
            let Some(i) = own else { return Admit::Refuse };
            evict = Some(self.conns.remove(i).id);
        } else if self.conns.len() >= self.max {
            let Some(i) = self.victim() else { return Admit::Refuse };
            evict = Some(self.conns.remove(i).id);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.conns.push(Conn { id, source, since: now, authenticated: false });
        match evict {
            Some(evict) => Admit::AcceptEvicting { id, evict },
            None => Admit::Accept { id },
        }
    }

    /// The oldest unauthenticated connection of the source that holds the most connections.
    fn victim(&self) -> Option<usize> {
        let held = |source: IpAddr| self.conns.iter().filter(|c| c.source == source).count();
        // `max_by_key` keeps the last of equals: iterate newest first, so ties go to the oldest.
        let (i, _) = (self.conns.iter().enumerate().rev())
            .filter(|(_, c)| !c.authenticated)
            .max_by_key(|(_, c)| held(c.source))?;
        // The oldest of that source, which may be older than the one found.
        let source = self.conns[i].source;
        self.conns.iter().position(|c| c.source == source && !c.authenticated)
    }

    /// A connection `admit` evicted turned out to be authenticated after all (its Welcome
    /// passed before the eviction reached it): it stays, and `instead` (the newcomer that
    /// evicted it) goes.
    pub fn keep_instead(&mut self, evicted: u64, source: IpAddr, since: Instant, instead: u64) {
        self.closed(instead);
        self.conns.push(Conn { id: evicted, source: source_of(source), since, authenticated: true });
    }

    /// The host answered a verified Auth over connection `id`.
    pub fn authenticated(&mut self, id: u64) {
        if let Some(c) = self.conns.iter_mut().find(|c| c.id == id) {
            c.authenticated = true;
        }
    }

    /// Connection `id` ended (either side closed it, or it was evicted or expired).
    pub fn closed(&mut self, id: u64) {
        self.conns.retain(|c| c.id != id);
    }

    /// Whether connection `id` is past its handshake deadline at `now` without a verified
    /// handshake (the caller closes it).
    pub fn expired(&self, id: u64, now: Instant) -> bool {
        self.conns
            .iter()
            .find(|c| c.id == id)
            .is_some_and(|c| !c.authenticated && now.saturating_duration_since(c.since) >= self.deadline)
    }

    /// When connection `id` expires unless it authenticates first.
    pub fn deadline_of(&self, id: u64) -> Option<Instant> {
        self.conns.iter().find(|c| c.id == id && !c.authenticated).map(|c| c.since + self.deadline)
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    /// The source of the original tests: every connection from one address.
    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn connections_are_bounded_and_the_oldest_unauthenticated_makes_room() {
        let t0 = Instant::now();
        let mut a = Admission::new(3, S(5));
        assert_eq!(a.admit(t0, A), Admit::Accept { id: 1 });
        assert_eq!(a.admit(t0, A), Admit::Accept { id: 2 });
        assert_eq!(a.admit(t0, A), Admit::Accept { id: 3 });
        a.authenticated(1);
        assert_eq!(a.admit(t0, A), Admit::AcceptEvicting { id: 4, evict: 2 }, "1 is the guest: 2 goes");
        assert_eq!(a.admit(t0, A), Admit::AcceptEvicting { id: 5, evict: 3 });
        assert_eq!(a.len(), 3);
        a.authenticated(4);
        a.authenticated(5);
        assert_eq!(a.admit(t0, A), Admit::Refuse, "all places hold verified guests");
        a.closed(4);
        assert_eq!(a.admit(t0, A), Admit::Accept { id: 6 });
    }

    #[test]
    fn an_unauthenticated_connection_expires_at_its_deadline_an_authenticated_one_never() {
        let t0 = Instant::now();
        let mut a = Admission::new(8, S(5));
        let Admit::Accept { id: idle } = a.admit(t0, A) else { panic!() };
        let Admit::Accept { id: guest } = a.admit(t0 + S(1), A) else { panic!() };
        a.authenticated(guest);
        assert_eq!(a.deadline_of(idle), Some(t0 + S(5)));
        assert_eq!(a.deadline_of(guest), None);
        assert!(!a.expired(idle, t0 + S(4)));
        assert!(a.expired(idle, t0 + S(5)));
        assert!(!a.expired(guest, t0 + S(3600)));
        a.closed(idle);
        assert!(!a.expired(idle, t0 + S(6)), "a closed connection is forgotten");
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn a_flood_of_connections_cannot_keep_the_guest_out() {
        let t0 = Instant::now();
        let mut a = Admission::new(4, S(5));
        for i in 0..1000 {
            assert!(matches!(
                a.admit(t0 + Duration::from_millis(i), A),
                Admit::Accept { .. } | Admit::AcceptEvicting { .. }
            ));
        }
        let Admit::AcceptEvicting { id: guest, .. } = a.admit(t0 + S(2), A) else { panic!("the guest gets in") };
        a.authenticated(guest);
        for i in 0..1000 {
            let d = a.admit(t0 + S(3) + Duration::from_millis(i), A);
            assert!(!matches!(d, Admit::AcceptEvicting { evict, .. } if evict == guest), "the guest is never evicted");
        }
        assert_eq!(a.len(), 4);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_flood_from_one_source_only_displaces_its_own_connections_and_a_guest_elsewhere_gets_in() {
        let t0 = Instant::now();
        let mut a = Admission::new(16, S(5)).per_source(4);
        let flood = ip("198.18.0.66");
        let mut evicted = Vec::new();
        for i in 0..10_000u64 {
            match a.admit(t0 + Duration::from_micros(i), flood) {
                Admit::Accept { .. } => {}
                Admit::AcceptEvicting { evict, .. } => evicted.push(evict),
                Admit::Refuse => panic!("the flood's own connections make room"),
            }
        }
        assert_eq!(a.len(), 4, "one source holds 4 places, however many it opens");
        // The guest, from its own address, in the middle of the flood: no one to evict.
        let Admit::Accept { id: guest } = a.admit(t0 + S(1), ip("198.18.0.2")) else { panic!("the guest gets in") };
        for i in 0..10_000u64 {
            let d = a.admit(t0 + S(1) + Duration::from_micros(i), flood);
            assert!(!matches!(d, Admit::AcceptEvicting { evict, .. } if evict == guest), "not even unauthenticated");
        }
        a.authenticated(guest);
        assert!(!a.expired(guest, t0 + S(3600)));
    }

    #[test]
    fn when_every_place_is_taken_the_source_holding_the_most_makes_room() {
        let t0 = Instant::now();
        let mut a = Admission::new(4, S(5)).per_source(3);
        let (x, y, z) = (ip("198.18.0.10"), ip("198.18.0.11"), ip("198.18.0.12"));
        assert_eq!(a.admit(t0, y), Admit::Accept { id: 1 });
        assert_eq!(a.admit(t0, x), Admit::Accept { id: 2 });
        assert_eq!(a.admit(t0, x), Admit::Accept { id: 3 });
        assert_eq!(a.admit(t0, x), Admit::Accept { id: 4 });
        // Full: z's newcomer displaces x's oldest, not y's (older, but y holds one place).
        assert_eq!(a.admit(t0, z), Admit::AcceptEvicting { id: 5, evict: 2 });
        // x and y and z now hold 2, 1, 1: x again.
        assert_eq!(a.admit(t0, y), Admit::AcceptEvicting { id: 6, evict: 3 });
        // All hold... x 1, y 2, z 1: y's oldest, the first connection of all.
        assert_eq!(a.admit(t0, z), Admit::AcceptEvicting { id: 7, evict: 1 });
    }

    #[test]
    fn a_source_whose_places_are_all_authenticated_is_refused_not_made_room_for() {
        let t0 = Instant::now();
        let mut a = Admission::new(16, S(5)).per_source(2);
        let g = ip("127.0.0.1");
        assert_eq!(a.admit(t0, g), Admit::Accept { id: 1 });
        assert_eq!(a.admit(t0, g), Admit::Accept { id: 2 });
        a.authenticated(1);
        a.authenticated(2);
        assert_eq!(a.admit(t0, g), Admit::Refuse);
        assert_eq!(a.admit(t0, ip("127.0.0.2")), Admit::Accept { id: 3 }, "another source is not refused");
    }

    #[test]
    fn ipv6_sources_count_per_64_and_ipv4_mapped_addresses_as_ipv4() {
        assert_eq!(source_of(ip("2001:2:0:1::1")), source_of(ip("2001:2:0:1:ffff::99")));
        assert_ne!(source_of(ip("2001:2:0:1::1")), source_of(ip("2001:2:0:2::1")));
        assert_eq!(source_of(ip("::ffff:198.18.0.1")), ip("198.18.0.1"));
        let t0 = Instant::now();
        let mut a = Admission::new(16, S(5)).per_source(2);
        a.admit(t0, ip("2001:2:0:1::1"));
        a.admit(t0, ip("2001:2:0:1::2"));
        assert_eq!(a.admit(t0, ip("2001:2:0:1::3")), Admit::AcceptEvicting { id: 3, evict: 1 }, "one /64, one source");
    }

    #[test]
    fn an_eviction_that_lost_the_race_to_a_welcome_keeps_the_authenticated_connection() {
        let t0 = Instant::now();
        let mut a = Admission::new(2, S(5));
        let g = ip("127.0.0.1");
        a.admit(t0, g);
        a.admit(t0, g);
        // 1 carried its Welcome just as the listener chose it to make room for 3.
        assert_eq!(a.admit(t0 + S(1), g), Admit::AcceptEvicting { id: 3, evict: 1 });
        a.keep_instead(1, g, t0, 3);
        assert_eq!(a.len(), 2);
        assert_eq!(a.deadline_of(1), None, "kept as authenticated");
        assert_eq!(a.admit(t0 + S(2), g), Admit::AcceptEvicting { id: 4, evict: 2 }, "1 is not evicted again");
    }

    proptest::proptest! {
        /// Whatever arrives from wherever, an authenticated connection is never the one that
        /// makes room, and no source ever holds more than its share.
        #[test]
        fn an_authenticated_connection_is_never_evicted_for_an_unauthenticated_one(
            steps in proptest::collection::vec((0u8..6, 0u8..4), 1..400)
        ) {
            let t0 = Instant::now();
            let mut a = Admission::new(8, S(5)).per_source(3);
            let mut authenticated = std::collections::HashSet::new();
            let mut live: Vec<(u64, u8)> = Vec::new();
            for (i, (source, action)) in steps.into_iter().enumerate() {
                let now = t0 + Duration::from_millis(i as u64);
                match action {
                    // A connection whose handshake verified.
                    0 if !live.is_empty() => {
                        let (id, _) = live[i % live.len()];
                        a.authenticated(id);
                        authenticated.insert(id);
                    }
                    1 if !live.is_empty() => {
                        let (id, _) = live.remove(i % live.len());
                        a.closed(id);
                        authenticated.remove(&id);
                    }
                    _ => {
                        let from = IpAddr::from([198, 18, 0, source]);
                        match a.admit(now, from) {
                            Admit::Accept { id } => live.push((id, source)),
                            Admit::AcceptEvicting { id, evict } => {
                                proptest::prop_assert!(!authenticated.contains(&evict), "evicted {} at step {}", evict, i);
                                live.retain(|(l, _)| *l != evict);
                                live.push((id, source));
                            }
                            Admit::Refuse => {}
                        }
                    }
                }
                proptest::prop_assert!(a.len() <= 8);
                for s in 0..6u8 {
                    proptest::prop_assert!(live.iter().filter(|(_, l)| *l == s).count() <= 3);
                }
                proptest::prop_assert_eq!(a.len(), live.len());
            }
        }
    }
}
